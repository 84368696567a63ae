/// An entry of tokenizer.json's `added_tokens`.
struct AddedToken: Sendable, Hashable {
    let content: String
    let singleWord: Bool
    let lstrip: Bool
    let rstrip: Bool
    let normalized: Bool
    let special: Bool

    static func parse(_ node: JSONNode) throws -> AddedToken {
        let special = try node.bool("special", default: false)
        return AddedToken(
            content: try node.required("content").string(),
            singleWord: try node.bool("single_word", default: false),
            lstrip: try node.bool("lstrip", default: false),
            rstrip: try node.bool("rstrip", default: false),
            normalized: try node.bool("normalized", default: !special),
            special: special)
    }
}

/// A stretch of input: either text for the model, or an added token already recognized.
enum Segment {
    case text(Range<Int>)
    case token(Int32)
}

/// HF's `AddedVocabulary`: tokens matched in the text before the model sees it.
struct AddedVocabulary: Sendable {
    private let idForContent: ByteStringTable
    private let tokenForId: [Int: AddedToken]
    private let specialContents: ByteStringTable
    /// Tokens matched against the raw input, and (after normalization) against normalized text.
    private let rawMatcher: TokenMatcher
    private let normalizedMatcher: TokenMatcher

    /// Registers `tokens` the way HF does when it loads tokenizer.json: ids come from the
    /// model vocabulary when the content is already there, otherwise they are handed out
    /// after the model's vocabulary (the `id` written in the file is only a cross-check).
    init(tokens: [AddedToken], vocabulary: ByteStringTable, normalizer: Normalizer?) {
        var idForContent = ByteStringTable()
        var tokenForId: [Int: AddedToken] = [:]
        var specialContents = ByteStringTable()
        var specialTokens: [AddedToken] = []
        var classicTokens: [AddedToken] = []
        var seen = Set<AddedToken>()
        var maxAddedId: Int32?

        for token in tokens where token.special && !token.content.isEmpty {
            if specialContents.lookup(token.content) == nil {
                specialContents.insert(token.content, value: 1)
                specialTokens.append(token)
            }
        }
        for token in tokens where !token.content.isEmpty && !seen.contains(token) {
            let id: Int32
            if let existing = idForContent.lookup(token.content) ?? vocabulary.lookup(token.content) {
                id = existing
            } else if let maxAddedId, Int(maxAddedId) >= vocabulary.count || vocabulary.count == 0 {
                id = maxAddedId + 1
            } else {
                id = Int32(vocabulary.count)
            }
            idForContent.insert(token.content, value: id)
            maxAddedId = max(maxAddedId ?? id, id)
            tokenForId[Int(id)] = token
            seen.insert(token)
            if specialContents.lookup(token.content) == nil { classicTokens.append(token) }
        }

        var raw: [(pattern: [UInt8], id: Int32, token: AddedToken)] = []
        var normalized: [(pattern: [UInt8], id: Int32, token: AddedToken)] = []
        for token in specialTokens + classicTokens {
            guard let id = idForContent.lookup(token.content) ?? vocabulary.lookup(token.content) else { continue }
            let content = Array(token.content.utf8)
            if token.normalized {
                normalized.append((normalizer?.apply(content) ?? content, id, token))
            } else {
                raw.append((content, id, token))
            }
        }
        self.idForContent = idForContent
        self.tokenForId = tokenForId
        self.specialContents = specialContents
        rawMatcher = TokenMatcher(raw)
        normalizedMatcher = TokenMatcher(normalized)
    }

    var ids: Dictionary<Int, AddedToken>.Keys { tokenForId.keys }

    func id(for content: String) -> Int32? { idForContent.lookup(content) }

    func token(for id: Int) -> AddedToken? { tokenForId[id] }

    func isSpecial(_ content: String) -> Bool { specialContents.lookup(content) != nil }

    /// The contents of all added tokens, for counting the combined vocabulary.
    var contents: [String] { tokenForId.values.map(\.content) }

    func splitRaw(_ text: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> [Segment] {
        rawMatcher.split(text, range)
    }

    func splitNormalized(_ text: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> [Segment] {
        normalizedMatcher.split(text, range)
    }
}

/// A byte trie over added-token contents with leftmost-longest, non-overlapping matching,
/// which is what HF's Aho-Corasick automaton (`MatchKind::LeftmostLongest`) reports.
struct TokenMatcher: Sendable {
    private var edges = PairTable(minimumCapacity: 64)
    /// Per trie node: index into `entries` of the token ending there, or -1.
    private var terminal: [Int32] = [-1]
    private var startsMatch = [Bool](repeating: false, count: 256)
    private var entries: [(id: Int32, token: AddedToken)] = []

    init(_ patterns: [(pattern: [UInt8], id: Int32, token: AddedToken)]) {
        for (pattern, id, token) in patterns where !pattern.isEmpty {
            var node = 0
            for byte in pattern {
                let key = UInt64(node) << 8 | UInt64(byte)
                if let child = edges.lookup(key) {
                    node = Int(child)
                } else {
                    terminal.append(-1)
                    edges.insert(key, UInt64(terminal.count - 1))
                    node = terminal.count - 1
                }
            }
            // With duplicate patterns the automaton reports the first one registered.
            if terminal[node] < 0 {
                terminal[node] = Int32(entries.count)
                entries.append((id, token))
            }
            startsMatch[Int(pattern[0])] = true
        }
    }

    /// Cuts `range` into text and token segments, applying each token's `single_word`,
    /// `lstrip` and `rstrip` rules as HF's `AddedVocabulary::find_matches` does.
    func split(_ text: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> [Segment] {
        // Like HF, empty text yields nothing for the model (not even an empty word).
        guard !range.isEmpty else { return [] }
        guard !entries.isEmpty else { return [.text(range)] }
        var segments: [Segment] = []
        var cursor = range.lowerBound
        var position = range.lowerBound
        while position < range.upperBound {
            guard startsMatch[Int(text[position])], let (end, entry) = longestMatch(text, position, range.upperBound)
            else {
                position += 1
                continue
            }
            let matchStart = position
            position = end
            let (id, token) = entries[entry]
            var start = matchStart
            var stop = end
            if token.singleWord {
                let before = start == range.lowerBound
                    || !isWordScalar(text, previousScalarStart(text, before: start))
                let after = stop == range.upperBound || !isWordScalar(text, stop)
                if !before || !after { continue }
            }
            if token.lstrip {
                var newStart = start
                while newStart > range.lowerBound {
                    let previous = previousScalarStart(text, before: newStart)
                    guard isWhitespaceScalar(text, previous) else { break }
                    newStart = previous
                }
                // Spaces already consumed by the previous token's rstrip stay with it.
                start = max(newStart, cursor)
            }
            if token.rstrip {
                while stop < range.upperBound, isWhitespaceScalar(text, stop) {
                    stop += decodeScalar(text, stop).length
                }
            }
            if cursor < start { segments.append(.text(cursor..<start)) }
            segments.append(.token(id))
            cursor = stop
        }
        if cursor < range.upperBound { segments.append(.text(cursor..<range.upperBound)) }
        return segments
    }

    private func longestMatch(_ text: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> (end: Int, entry: Int)? {
        var node = 0
        var best: (end: Int, entry: Int)?
        var position = start
        while position < end, let child = edges.lookup(UInt64(node) << 8 | UInt64(text[position])) {
            node = Int(child)
            position += 1
            if terminal[node] >= 0 { best = (position, Int(terminal[node])) }
        }
        return best
    }

    private func isWordScalar(_ text: UnsafeBufferPointer<UInt8>, _ index: Int) -> Bool {
        Unicode.Scalar(decodeScalar(text, index).value).map(CharacterClass.isWordCharacter) ?? false
    }

    private func isWhitespaceScalar(_ text: UnsafeBufferPointer<UInt8>, _ index: Int) -> Bool {
        Unicode.Scalar(decodeScalar(text, index).value)?.properties.isWhitespace ?? false
    }
}
