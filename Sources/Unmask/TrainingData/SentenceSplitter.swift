import Foundation

/// Splits prose into sentences: at `.`, `!` or `?` (and any closing quotes or brackets after it)
/// followed by a space and a capital letter, digit or opening quote, except after a known
/// abbreviation, a single-letter initial ("J. R. R. Tolkien") or a dotted token ("U.S.", "e.g.").
/// Errs towards not splitting: a missed boundary makes a long line the length filter drops, a
/// false one makes two broken sentences.
public enum SentenceSplitter {
    /// Lowercased, without the final period.
    static let abbreviations: Set<String> = [
        "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "mt", "ft", "no", "nos", "vol", "vols", "pp", "p", "ch",
        "fig", "figs", "ed", "eds", "gen", "gens", "brig", "maj", "col", "lt", "sgt", "cpl", "pvt", "capt", "cmdr", "adm", "gov", "sen", "rep", "rev",
        "hon", "pres", "inc", "ltd", "co", "corp", "bros", "dept", "univ", "assn", "est", "approx", "ca", "c", "cf",
        "vs", "etc", "al", "viz", "ibid", "op", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept",
        "oct", "nov", "dec", "ave", "blvd", "rd", "messrs", "mme", "mlle", "lit", "var", "subsp", "sp", "spp",
    ]

    static let closers: Set<Character> = ["\"", "'", "”", "’", ")", "]", "»"]
    static let openers: Set<Character> = ["\"", "'", "“", "‘", "(", "[", "«"]

    public static func sentences(in text: String) -> [String] {
        let characters = Array(text)
        var sentences: [String] = []
        var start = 0, index = 0
        while index < characters.count {
            defer { index += 1 }
            guard ".!?".contains(characters[index]) else { continue }
            var end = index + 1
            while end < characters.count, closers.contains(characters[end]) { end += 1 }
            guard end < characters.count, characters[end].isWhitespace else { continue }
            var next = end
            while next < characters.count, characters[next].isWhitespace { next += 1 }
            guard next < characters.count, startsSentence(characters[next]) else { continue }
            if characters[index] == ".", isAbbreviation(wordBefore(index, in: characters)) { continue }
            append(characters[start..<end], to: &sentences)
            start = next
            index = next - 1
        }
        append(characters[start...], to: &sentences)
        return sentences
    }

    static func startsSentence(_ character: Character) -> Bool {
        character.isUppercase || character.isNumber || openers.contains(character)
    }

    /// The token that ends at `index` (a period), without leading brackets or quotes.
    static func wordBefore(_ index: Int, in characters: [Character]) -> String {
        var start = index
        while start > 0, !characters[start - 1].isWhitespace { start -= 1 }
        return String(characters[start..<index].drop(while: { openers.contains($0) }))
    }

    static func isAbbreviation(_ word: String) -> Bool {
        guard !word.isEmpty else { return false }
        if word.contains(".") { return true }  // U.S., e.g., Ph.D.
        if word.count == 1, word.first!.isLetter { return true }  // an initial
        return abbreviations.contains(word.lowercased())
    }

    private static func append(_ characters: ArraySlice<Character>, to sentences: inout [String]) {
        let sentence = String(characters).trimmingCharacters(in: .whitespaces)
        if !sentence.isEmpty { sentences.append(sentence) }
    }
}
