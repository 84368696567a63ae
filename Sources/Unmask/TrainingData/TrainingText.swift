import Foundation

/// The quality checks every source of training text goes through.
public enum TrainingText {
    /// Words per line: shorter lines are mostly captions and fragments, longer ones mostly missed
    /// sentence boundaries or lists run together.
    public static let wordRange = 5...60

    public static func wordCount(_ text: String) -> Int {
        text.split(whereSeparator: { $0.isWhitespace }).count
    }

    /// Leftovers of markup (or of a removal that left a hole): any of these drops the line.
    static let residue = [WikiMarkup.dropMarker, "[[", "]]", "{{", "}}", "|", "<", ">", "=", "''", "http", "www.",
                          "()", "( )", "(,", "(;", ",)", "[]", ",,", " ,", "\u{FFFD}"]

    public static func hasMarkupResidue(_ text: String) -> Bool {
        residue.contains { text.contains($0) }
    }

    /// A complete sentence of prose: starts with a capital, digit or opening quote; ends with
    /// `.`, `!` or `?` (closing quotes or brackets may follow); brackets and quotes balance; no
    /// markup residue; `wordRange` words.
    public static func isWellFormedSentence(_ sentence: String) -> Bool {
        guard let first = sentence.first, SentenceSplitter.startsSentence(first),
              let last = sentence.last(where: { !SentenceSplitter.closers.contains($0) }), ".!?".contains(last),
              wordRange.contains(wordCount(sentence)), !hasMarkupResidue(sentence) else { return false }
        func count(_ character: Character) -> Int { sentence.reduce(0) { $0 + ($1 == character ? 1 : 0) } }
        return count("(") == count(")") && count("[") == count("]") && count("\"") % 2 == 0 && count("“") == count("”")
    }

    /// The first occurrence of each text, in order.
    public static func deduplicated(_ texts: [String]) -> [String] {
        var seen = Set<String>()
        return texts.filter { seen.insert($0).inserted }
    }
}
