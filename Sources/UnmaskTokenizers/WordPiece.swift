import Foundation

/// What the tokenizer pipeline needs from a `tokenizer.json` model: a vocabulary and a way to
/// turn one pre-tokenized word into ids. `BPEModel` and `WordPieceModel` provide it.
protocol TokenizerModel: Sendable {
    var vocabulary: ByteStringTable { get }
    /// Token text by id; nil for ids the vocabulary skips.
    var tokens: [String?] { get }
    var unknownToken: String? { get }
    var usesByteFallback: Bool { get }
    /// Appends the ids for one pre-tokenized (and normalized) word.
    func encode(_ word: UnsafeBufferPointer<UInt8>, into out: inout [Int32])
}

extension BPEModel: TokenizerModel {}

/// The `model` section of tokenizer.json: WordPiece (BERT family) or BPE (everything else).
func parseTokenizerModel(_ node: JSONNode) throws -> any TokenizerModel {
    let type = try node.typeTag()
    switch type {
    case "WordPiece": return try WordPieceModel(node)
    case "BPE": return try BPEModel(node)
    default: throw node.unsupported(type, supported: ["BPE", "WordPiece"])
    }
}

/// HF's WordPiece model (BERT): each word is cut greedily into the longest vocabulary entries
/// from the left, pieces after the first carrying `continuing_subword_prefix` ("##"). A word
/// longer than `max_input_chars_per_word` characters, or one with a part no entry matches,
/// becomes the single unknown token.
final class WordPieceModel: Sendable {
    let vocabulary: ByteStringTable
    let tokens: [String?]
    let unknownToken: String?
    let unknownId: Int32?
    let continuingSubwordPrefix: [UInt8]
    let maxInputCharsPerWord: Int

    var usesByteFallback: Bool { false }

    init(_ node: JSONNode) throws {
        let type = try node.typeTag()
        guard type == "WordPiece" else { throw node.unsupported(type, supported: ["WordPiece"]) }
        let (vocabulary, tokens) = try readVocabulary(try node.required("vocab"))
        self.vocabulary = vocabulary
        self.tokens = tokens
        // HF's defaults: "[UNK]", "##", 100.
        let unknown = try node.string("unk_token") ?? "[UNK]"
        unknownToken = unknown
        unknownId = vocabulary.lookup(unknown)
        continuingSubwordPrefix = Array((try node.string("continuing_subword_prefix") ?? "##").utf8)
        let maxChars = try node.optional("max_input_chars_per_word")?.int() ?? 100
        guard maxChars >= 0 else {
            throw node.error("max_input_chars_per_word must not be negative, found \(maxChars)")
        }
        maxInputCharsPerWord = maxChars
    }

    init(tokens: [String], unknownToken: String = "[UNK]", continuingSubwordPrefix: String = "##",
         maxInputCharsPerWord: Int = 100) {
        var vocabulary = ByteStringTable(minimumCapacity: tokens.count)
        for (id, token) in tokens.enumerated() { vocabulary.insert(token, value: Int32(id)) }
        self.vocabulary = vocabulary
        self.tokens = tokens
        self.unknownToken = unknownToken
        unknownId = vocabulary.lookup(unknownToken)
        self.continuingSubwordPrefix = Array(continuingSubwordPrefix.utf8)
        self.maxInputCharsPerWord = maxInputCharsPerWord
    }

    func encode(_ word: UnsafeBufferPointer<UInt8>, into out: inout [Int32]) {
        guard !word.isEmpty else { return }
        // Scalar boundaries: pieces are cut only between characters.
        var boundaries: [Int] = [0]
        boundaries.reserveCapacity(word.count + 1)
        var index = 0
        while index < word.count {
            index += decodeScalar(word, index).length
            boundaries.append(index)
            if boundaries.count - 1 > maxInputCharsPerWord { break }
        }
        if boundaries.count - 1 > maxInputCharsPerWord {
            if let unknownId { out.append(unknownId) }
            return
        }
        let mark = out.count
        var scratch: [UInt8] = continuingSubwordPrefix
        var startIndex = 0  // index into boundaries
        let last = boundaries.count - 1
        while startIndex < last {
            let start = boundaries[startIndex]
            var endIndex = last
            var found: Int32?
            while endIndex > startIndex {
                let piece = UnsafeBufferPointer(rebasing: word[start..<boundaries[endIndex]])
                if startIndex == 0 {
                    found = vocabulary.lookup(piece)
                } else {
                    scratch.removeSubrange(continuingSubwordPrefix.count...)
                    scratch.append(contentsOf: piece)
                    found = vocabulary.lookup(scratch)
                }
                if found != nil { break }
                endIndex -= 1
            }
            guard let id = found else {
                out.removeSubrange(mark...)
                if let unknownId { out.append(unknownId) }
                return
            }
            out.append(id)
            startIndex = endIndex
        }
    }
}

extension WordPieceModel: TokenizerModel {}
