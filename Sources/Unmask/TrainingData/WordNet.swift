import Foundation

/// One line of a WordNet 3.0 `data.*` file (format in wndb(5WN)): a synset's words, its
/// pointers, and its gloss, split into definitions and quoted example sentences.
public struct WordNetSynset: Equatable, Sendable {
    /// Offsets are unique within a data file, so a synset is named by file and offset.
    public struct ID: Hashable, Sendable {
        /// "n", "v", "a" (adjectives and their satellites share data.adj) or "r".
        public var file: String
        public var offset: Int
        public init(file: String, offset: Int) { self.file = file; self.offset = offset }
    }

    public var id: ID
    /// Readable lemmas: underscores as spaces, adjective markers such as "(a)" removed.
    public var lemmas: [String]
    /// Hypernyms ("@", "@i") of nouns and verbs, or the head adjective ("&") of a satellite.
    public var parents: [ID]
    public var definitions: [String]
    public var examples: [String]

    /// Parses a data line; nil for the license header (lines that begin with spaces) or a line
    /// that does not follow the format.
    public static func parse(_ line: Substring) -> WordNetSynset? {
        guard let first = line.first, first.isNumber, let bar = line.range(of: " | ") else { return nil }
        let fields = line[..<bar.lowerBound].split(separator: " ")
        guard fields.count >= 6, let offset = Int(fields[0]), let wordCount = Int(fields[3], radix: 16), fields.count > 4 + 2 * wordCount else { return nil }
        let synsetType = String(fields[2])
        let file = synsetType == "s" ? "a" : synsetType
        let lemmas = stride(from: 4, to: 4 + 2 * wordCount, by: 2).map { readableLemma(fields[$0]) }
        let pointerStart = 5 + 2 * wordCount
        guard let pointerCount = Int(fields[pointerStart - 1]), fields.count >= pointerStart + 4 * pointerCount else { return nil }
        var parents: [ID] = []
        for pointer in 0..<pointerCount {
            let base = pointerStart + 4 * pointer
            let symbol = fields[base]
            guard symbol == "@" || symbol == "@i" || (symbol == "&" && synsetType == "s"), let target = Int(fields[base + 1]) else { continue }
            let targetFile = fields[base + 2] == "s" ? "a" : String(fields[base + 2])
            parents.append(ID(file: targetFile, offset: target))
        }
        let gloss = splitGloss(line[bar.upperBound...])
        return WordNetSynset(id: ID(file: file, offset: offset), lemmas: lemmas, parents: parents,
                             definitions: gloss.definitions, examples: gloss.examples)
    }

    /// "domestic_animal" → "domestic animal"; "able(a)" → "able".
    static func readableLemma(_ word: Substring) -> String {
        var lemma = String(word)
        if lemma.hasSuffix(")"), let open = lemma.lastIndex(of: "(") { lemma = String(lemma[..<open]) }
        return lemma.replacingOccurrences(of: "_", with: " ")
    }

    /// Splits a gloss at semicolons outside double quotes: quoted parts are examples (any
    /// attribution after the closing quote is dropped), the rest definitions, without a leading
    /// usage note such as "(usually followed by `to')".
    static func splitGloss(_ gloss: Substring) -> (definitions: [String], examples: [String]) {
        var parts: [String] = [], current = "", inQuotes = false
        for character in gloss {
            if character == "\"" { inQuotes.toggle() }
            if character == ";" && !inQuotes { parts.append(current); current = "" } else { current.append(character) }
        }
        parts.append(current)
        var definitions: [String] = [], examples: [String] = []
        for part in parts.map({ $0.trimmingCharacters(in: .whitespaces) }) where !part.isEmpty {
            if part.hasPrefix("\"") {
                let quoted = part.dropFirst()
                let example = quoted[..<(quoted.firstIndex(of: "\"") ?? quoted.endIndex)].trimmingCharacters(in: .whitespaces)
                if !example.isEmpty { examples.append(example) }
            } else {
                let definition = part.replacingMatches(of: #"^\([^)]*\)\s*"#, with: "")
                if !definition.isEmpty { definitions.append(definition) }
            }
        }
        return (definitions, examples)
    }
}

/// A line of an `index.*` file: a lemma's senses in one part of speech, most frequent first.
public struct WordNetIndexEntry: Equatable, Sendable {
    public var lemma: String
    public var senses: [WordNetSynset.ID]
    /// How many of the first senses occur in the sense-tagged corpus (`tagsense_cnt`).
    public var taggedSenseCount: Int

    public init(lemma: String, senses: [WordNetSynset.ID], taggedSenseCount: Int) {
        self.lemma = lemma; self.senses = senses; self.taggedSenseCount = taggedSenseCount
    }

    /// Parses "lemma pos synset_cnt p_cnt [ptr_symbol…] sense_cnt tagsense_cnt offset…"; nil for
    /// the license header or a line that does not follow the format.
    public static func parse(_ line: Substring, file: String) -> WordNetIndexEntry? {
        let fields = line.split(separator: " ")
        guard !line.hasPrefix(" "), fields.count >= 4, let pointerCount = Int(fields[3]), fields.count > 6 + pointerCount,
              let taggedSenseCount = Int(fields[5 + pointerCount]) else { return nil }
        let senses = fields[(6 + pointerCount)...].compactMap { Int($0).map { WordNetSynset.ID(file: file, offset: $0) } }
        return WordNetIndexEntry(lemma: WordNetSynset.readableLemma(fields[0]), senses: senses, taggedSenseCount: taggedSenseCount)
    }
}

/// The WordNet 3.0 database (Debian's `wordnet-base`, in /usr/share/wordnet).
public struct WordNetDatabase: Sendable {
    public static let defaultDirectory = URL(fileURLWithPath: "/usr/share/wordnet")
    static let fileNames = ["n": "noun", "v": "verb", "a": "adj", "r": "adv"]

    /// Every synset, nouns, verbs, adjectives then adverbs, in file order.
    public let synsets: [WordNetSynset]
    public let index: [WordNetIndexEntry]

    public init(synsets: [WordNetSynset], index: [WordNetIndexEntry]) {
        self.synsets = synsets
        self.index = index
    }

    /// Reads `data.*` and `index.*` from `directory`.
    public init(directory: URL = defaultDirectory) throws {
        var synsets: [WordNetSynset] = [], index: [WordNetIndexEntry] = []
        for file in ["n", "v", "a", "r"] {
            let name = Self.fileNames[file]!
            synsets += try Self.lines(directory, "data.\(name)").compactMap(WordNetSynset.parse)
            index += try Self.lines(directory, "index.\(name)").compactMap { WordNetIndexEntry.parse($0, file: file) }
        }
        guard !synsets.isEmpty else {
            throw UnmaskError.invalidInput(source: directory.path, reason: "no WordNet synsets in data.noun/verb/adj/adv")
        }
        self.init(synsets: synsets, index: index)
    }

    /// Synsets that are a sense-tagged sense of some lemma: the common vocabulary (~27,000 of
    /// 117,659), without the rare taxonomy that makes up most of WordNet.
    public var taggedSynsets: Set<WordNetSynset.ID> {
        Set(index.flatMap { $0.senses.prefix($0.taggedSenseCount) })
    }

    static func lines(_ directory: URL, _ name: String) throws -> [Substring] {
        let url = directory.appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw UnmaskError.fileNotFound(path: url.path, what: "WordNet 3.0 database; install it with `apt-get install wordnet-base` (it goes to /usr/share/wordnet), or pass --no-wordnet")
        }
        do { return try String(contentsOf: url, encoding: .utf8).split(separator: "\n") } catch {
            throw UnmaskError.unreadableFile(path: url.path, reason: error.localizedDescription)
        }
    }
}
