import Foundation

/// News text from parts of the data packages that no evaluation task reads. BBC News, Rotten
/// Tomatoes and the election tweets are used whole by evaluation tasks and are not read here.
public enum NewsText {
    /// gensim's `lee_background.cor`: 300 Australian news stories, one a line (the Lee STS task
    /// uses the 50 stories of the separate `lee.cor`).
    public static func leeBackgroundStories(_ sources: SourceReader) throws -> [String] {
        try sources.text("gensim", "gensim/test/test_data/lee_background.cor").split(separator: "\n")
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
    }

    /// 20 Newsgroups' training split (clustering evaluates on the test split).
    public static func newsgroupsTrain(_ sources: SourceReader) throws -> [String] {
        try TaskCatalog.orangeItems(sources, "20newsgroups-train.tab", text: "Text", label: "Category").map(\.text)
    }

    /// Reuters R52's training split without R8's eight categories: R8 is R52's eight largest
    /// categories, and both R8 splits are evaluation data.
    public static func reutersOutsideR8(_ sources: SourceReader) throws -> [String] {
        let r8Labels = Set(try TaskCatalog.orangeItems(sources, "reuters-r8-train.tab", text: "Text", label: "Category").map(\.label))
        return try TaskCatalog.orangeItems(sources, "reuters-r52-train.tab", text: "Text", label: "Category")
            .filter { !r8Labels.contains($0.label) }.map(\.text)
    }

    /// The first `TrainingText.wordRange.upperBound` words of a document (subject and opening
    /// for these files, which have no punctuation left to split sentences at); nil when it has
    /// fewer than the minimum.
    public static func opening(of document: String) -> String? {
        let words = document.split(whereSeparator: { $0.isWhitespace })
        guard words.count >= TrainingText.wordRange.lowerBound else { return nil }
        return words.prefix(TrainingText.wordRange.upperBound).joined(separator: " ")
    }
}
