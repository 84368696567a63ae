import Foundation

/// Finds training text that overlaps the evaluation data, so it can be left out.
///
/// A text overlaps when it shares a run of `gramLength` words with any evaluation text (GPT-3's
/// decontamination rule), or, when shorter than that, equals one. Words are compared lowercased
/// with everything but letters removed, the form Orange's 20 Newsgroups and Reuters files
/// already have, so a cased, punctuated copy of an evaluation text is caught too.
public struct EvaluationOverlap: Sendable {
    public static let gramLength = 13

    private var grams = Set<UInt64>()
    private var shortTexts = Set<String>()

    public init(evaluationTexts: [String]) {
        for text in evaluationTexts {
            let words = Self.normalizedWords(text)
            if words.count < Self.gramLength { shortTexts.insert(words.joined(separator: " ")) }
            grams.formUnion(Self.gramHashes(words))
        }
    }

    public func overlaps(_ text: String) -> Bool {
        let words = Self.normalizedWords(text)
        if words.count < Self.gramLength { return shortTexts.contains(words.joined(separator: " ")) }
        return Self.gramHashes(words).contains(where: grams.contains)
    }

    /// Every task `TaskCatalog` builds, from the installed packages.
    public static func evaluationTasks(from sources: SourceReader) throws -> [EvalTask] {
        try TaskCatalog.names.map { try TaskCatalog.build($0, from: sources) }
    }

    /// Every text of a task, training splits of classification tasks included (a classifier's
    /// training examples are evaluation data too).
    public static func texts(of task: EvalTask) -> [String] {
        switch task.data {
        case let .sts(pairs): return pairs.flatMap { [$0.sentence1, $0.sentence2] }
        case let .retrieval(corpus, queries, _): return corpus.map(\.text) + queries.map(\.text)
        case let .clustering(items), let .classification(items): return items.map(\.text)
        }
    }

    static func normalizedWords(_ text: String) -> [String] {
        text.lowercased().split(whereSeparator: { !$0.isLetter }).map(String.init)
    }

    /// FNV-1a over each word's bytes, then over the word hashes of each run of `gramLength` words.
    static func gramHashes(_ words: [String]) -> [UInt64] {
        guard words.count >= gramLength else { return [] }
        let offsetBasis: UInt64 = 0xcbf2_9ce4_8422_2325, prime: UInt64 = 0x100_0000_01b3
        let wordHashes = words.map { word in word.utf8.reduce(offsetBasis) { ($0 ^ UInt64($1)) &* prime } }
        return (0...(wordHashes.count - gramLength)).map { start in
            wordHashes[start..<(start + gramLength)].reduce(offsetBasis) { ($0 ^ $1) &* prime }
        }
    }
}
