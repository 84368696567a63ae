import Foundation

/// The tokenizer a GGUF model file carries in its `tokenizer.ggml.*` metadata, independent of
/// how the file is read. Field names follow the keys:
///
/// | field | key |
/// |---|---|
/// | `model` | `tokenizer.ggml.model` (`gpt2`: byte-level BPE; `llama`: SentencePiece with scores) |
/// | `pre` | `tokenizer.ggml.pre` (how `gpt2` vocabularies split text into words) |
/// | `tokens` | `tokenizer.ggml.tokens` |
/// | `tokenTypes` | `tokenizer.ggml.token_type` (1 normal, 2 unknown, 3 control, 4 user defined, 5 unused, 6 byte) |
/// | `scores` | `tokenizer.ggml.scores` (SentencePiece piece scores) |
/// | `merges` | `tokenizer.ggml.merges` (`"left right"`, by rank) |
/// | `bosId`, `eosId`, `unkId`, `padId` | `tokenizer.ggml.{bos,eos,unknown,padding}_token_id` |
/// | `addBOS`, `addEOS` | `tokenizer.ggml.add_{bos,eos}_token` |
/// | `addSpacePrefix` | `tokenizer.ggml.add_space_prefix` |
/// | `modelName` | `general.name` (llama.cpp keys a few per-model quirks on it) |
///
/// Absent keys are nil (or empty), and take llama.cpp's defaults when the tokenizer is built.
public struct GGUFTokenizerData: Sendable, Equatable {
    public enum Key {
        public static let model = "tokenizer.ggml.model"
        public static let pre = "tokenizer.ggml.pre"
        public static let tokens = "tokenizer.ggml.tokens"
        public static let tokenTypes = "tokenizer.ggml.token_type"
        public static let scores = "tokenizer.ggml.scores"
        public static let merges = "tokenizer.ggml.merges"
        public static let bosId = "tokenizer.ggml.bos_token_id"
        public static let eosId = "tokenizer.ggml.eos_token_id"
        public static let unkId = "tokenizer.ggml.unknown_token_id"
        public static let padId = "tokenizer.ggml.padding_token_id"
        public static let addBOS = "tokenizer.ggml.add_bos_token"
        public static let addEOS = "tokenizer.ggml.add_eos_token"
        public static let addSpacePrefix = "tokenizer.ggml.add_space_prefix"
        public static let modelName = "general.name"
    }

    /// llama.cpp's token types (`tokenizer.ggml.token_type`).
    public enum TokenType {
        public static let normal = 1
        public static let unknown = 2
        public static let control = 3
        public static let userDefined = 4
        public static let unused = 5
        public static let byte = 6
    }

    public var model: String
    public var pre: String?
    public var tokens: [String]
    /// One per token; empty when the file has no `token_type` (every token is then normal).
    public var tokenTypes: [Int]
    public var scores: [Float]?
    public var merges: [String]?
    public var bosId: Int?
    public var eosId: Int?
    public var unkId: Int?
    public var padId: Int?
    public var addBOS: Bool?
    public var addEOS: Bool?
    public var addSpacePrefix: Bool?
    public var modelName: String?

    public init(
        model: String, pre: String? = nil, tokens: [String], tokenTypes: [Int] = [], scores: [Float]? = nil,
        merges: [String]? = nil, bosId: Int? = nil, eosId: Int? = nil, unkId: Int? = nil, padId: Int? = nil,
        addBOS: Bool? = nil, addEOS: Bool? = nil, addSpacePrefix: Bool? = nil, modelName: String? = nil
    ) {
        self.model = model
        self.pre = pre
        self.tokens = tokens
        self.tokenTypes = tokenTypes
        self.scores = scores
        self.merges = merges
        self.bosId = bosId
        self.eosId = eosId
        self.unkId = unkId
        self.padId = padId
        self.addBOS = addBOS
        self.addEOS = addEOS
        self.addSpacePrefix = addSpacePrefix
        self.modelName = modelName
    }

    /// `tokenizer.ggml.model` values a `Tokenizer` can be built for.
    public static let supportedModels = ["gpt2", "llama", "gemma4"]
    /// `tokenizer.ggml.pre` values understood for `gpt2` vocabularies (`llama` ignores `pre`,
    /// as llama.cpp does).
    public static var supportedPreTokenizers: [String] { GGUFPreTokenization.supportedNames }
}

public extension Tokenizer {
    /// A tokenizer that gives the ids llama.cpp gives for the GGUF vocabulary `gguf`;
    /// `source` names the file in error messages.
    ///
    /// - `gpt2`: byte-level BPE over the words of the `pre` splitting, merges by rank.
    /// - `llama`: SentencePiece BPE: spaces become `▁` (with one in front of the text and after
    ///   every special token when `add_space_prefix`, the default), pieces merge highest score
    ///   first, and characters outside the vocabulary fall back to `<0xNN>` byte tokens.
    ///
    /// Unknown (2), control (3) and user-defined (4) tokens are matched in the text before
    /// the model sees it, as llama.cpp does when it parses special tokens; control and unknown
    /// tokens count as special (`specialTokenIds`, `decode(skipSpecialTokens:)`).
    /// `encode(_:addSpecialTokens: true)` adds BOS/EOS per `add_bos_token`/`add_eos_token`,
    /// with llama.cpp's defaults when absent (`llama` and Llama-3-style `pre`: BOS; others: none).
    convenience init(gguf: GGUFTokenizerData, source: String) throws {
        let parts = try GGUFTokenizerBuilder(gguf, source: source).build()
        self.init(kind: parts.kind, normalizer: parts.normalizer, preTokenizer: parts.preTokenizer, model: parts.model,
                  addedTokens: parts.addedTokens, postProcessor: parts.postProcessor, decoder: parts.decoder,
                  bosToken: parts.bos, eosToken: parts.eos, padToken: parts.pad, unkToken: parts.unk)
    }
}

/// Turns `GGUFTokenizerData` into the pieces of the tokenizer.json pipeline that behave like
/// llama.cpp's tokenizer for it.
private struct GGUFTokenizerBuilder {
    struct Parts {
        var kind: String
        var normalizer: Normalizer?
        var preTokenizer: PreTokenizer?
        var model: BPEModel
        var addedTokens: [AddedToken]
        var postProcessor: PostProcessor
        var decoder: TokenDecoder?
        var bos, eos, pad, unk: String?
    }

    let data: GGUFTokenizerData
    let source: String
    /// Token texts, with empty ones renamed `[EMPTY_<id>]` as llama.cpp does.
    let tokens: [String]
    /// Id by token text, compared as bytes (Swift's String equality would merge canonically
    /// equivalent tokens such as "é" and "e\u{301}", which are distinct tokens).
    let vocabulary: ByteStringTable
    /// The first two ids that share a text, which llama.cpp refuses.
    let duplicate: (first: Int, second: Int)?

    init(_ data: GGUFTokenizerData, source: String) {
        self.data = data
        self.source = source
        tokens = data.tokens.enumerated().map { $0.element.isEmpty ? "[EMPTY_\($0.offset)]" : $0.element }
        var vocabulary = ByteStringTable(minimumCapacity: tokens.count)
        var duplicate: (Int, Int)?
        for (id, token) in tokens.enumerated() {
            if let first = vocabulary.lookup(token) {
                duplicate = duplicate ?? (Int(first), id)
            } else {
                vocabulary.insert(token, value: Int32(id))
            }
        }
        self.vocabulary = vocabulary
        self.duplicate = duplicate
    }

    func error(_ key: String, _ message: String) -> TokenizerError {
        TokenizerError("\(source): \(key) \(message)")
    }

    func build() throws -> Parts {
        guard !tokens.isEmpty else { throw error(GGUFTokenizerData.Key.tokens, "is empty") }
        guard tokens.count < BPEModel.maxTokenId else {
            throw error(GGUFTokenizerData.Key.tokens,
                        "has \(tokens.count) tokens, more than the \(BPEModel.maxTokenId) supported")
        }
        if !data.tokenTypes.isEmpty && data.tokenTypes.count < tokens.count {
            throw error(GGUFTokenizerData.Key.tokenTypes, "has \(data.tokenTypes.count) entries for \(tokens.count) tokens")
        }
        if let (first, second) = duplicate {
            throw error(GGUFTokenizerData.Key.tokens,
                        "lists \(tokens[first].debugDescription) twice (ids \(first) and \(second))")
        }
        switch data.model {
        case "gpt2": return try buildByteLevel()
        case "llama": return try buildSentencePiece()
        case "gemma4": return try buildGemma4()
        default:
            let supported = GGUFTokenizerData.supportedModels.joined(separator: ", ")
            throw error(GGUFTokenizerData.Key.model, "\"\(data.model)\" is not supported (supported: \(supported))")
        }
    }

    func type(of id: Int) -> Int {
        id < data.tokenTypes.count ? data.tokenTypes[id] : GGUFTokenizerData.TokenType.normal
    }

    /// A special-token id from the file, or llama.cpp's default for the model; llama.cpp
    /// ignores (with a warning) ids outside the vocabulary, and so does this.
    func specialId(_ value: Int?, default fallback: Int?) -> Int? {
        for candidate in [value, fallback] {
            if let candidate, candidate >= 0, candidate < tokens.count { return candidate }
        }
        return nil
    }

    /// Tokens llama.cpp matches in the text before tokenizing (types 2, 3 and 4). llama.cpp
    /// gives `phi-3` models' special tokens an rstrip, keyed on `general.name`.
    func addedTokens() -> [AddedToken] {
        let name = data.modelName?.lowercased() ?? ""
        let isPhi3 = name.contains("phi-3") || name.contains("phi3")
        let noRStrip: Set<String> = ["<unk>", "<s>", "<|endoftext|>"]
        var added: [AddedToken] = []
        for (id, token) in tokens.enumerated() {
            let kind = type(of: id)
            guard kind == GGUFTokenizerData.TokenType.unknown || kind == GGUFTokenizerData.TokenType.control
                    || kind == GGUFTokenizerData.TokenType.userDefined else { continue }
            added.append(AddedToken(content: token, singleWord: false, lstrip: false,
                                    rstrip: isPhi3 && !noRStrip.contains(token), normalized: false,
                                    special: kind != GGUFTokenizerData.TokenType.userDefined))
        }
        return added
    }

    func postProcessor(addBOS: Bool, bos: Int?, addEOS: Bool, eos: Int?) throws -> PostProcessor {
        var processor = PostProcessor()
        if addBOS {
            guard let bos else {
                // Blame the id when the file gives one outside the vocabulary.
                if let given = data.bosId {
                    throw error(GGUFTokenizerData.Key.bosId, "must be below the vocabulary size \(tokens.count) (add_bos_token is true), got \(given)")
                }
                throw error(GGUFTokenizerData.Key.addBOS, "is true but the vocabulary has no BOS token")
            }
            processor.prefix = [Int32(bos)]
        }
        if addEOS {
            guard let eos else {
                if let given = data.eosId {
                    throw error(GGUFTokenizerData.Key.eosId, "must be below the vocabulary size \(tokens.count) (add_eos_token is true), got \(given)")
                }
                throw error(GGUFTokenizerData.Key.addEOS, "is true but the vocabulary has no EOS token")
            }
            processor.suffix = [Int32(eos)]
        }
        return processor
    }

    func name(_ id: Int?) -> String? { id.map { tokens[$0] } }

    // MARK: gpt2

    func buildByteLevel() throws -> Parts {
        guard let pre = GGUFPreTokenization.named(data.pre) else {
            let supported = GGUFPreTokenization.supportedNames.joined(separator: ", ")
            throw error(GGUFTokenizerData.Key.pre, "\"\(data.pre ?? "")\" is not supported (supported: \(supported))")
        }
        let model = BPEModel(tokens: tokens, vocabulary: vocabulary, merges: try rankedMerges(), unknownId: nil,
                             byteFallback: false, ignoreMerges: pre.ignoresMerges)
        let bos = specialId(data.bosId, default: nil)
        let eos = specialId(data.eosId, default: nil)
        return Parts(
            kind: "byte-level BPE", normalizer: nil, preTokenizer: try pre.preTokenizer(source: source), model: model,
            addedTokens: addedTokens(),
            postProcessor: try postProcessor(addBOS: data.addBOS ?? pre.addsBOSByDefault, bos: bos,
                                             addEOS: data.addEOS ?? false, eos: eos),
            decoder: .byteLevel, bos: name(bos), eos: name(eos), pad: name(specialId(data.padId, default: nil)),
            unk: name(specialId(data.unkId, default: nil)))
    }

    /// `tokenizer.ggml.merges` resolved to token ids, ranked by line.
    func rankedMerges() throws -> PairTable {
        guard let lines = data.merges else {
            throw error(GGUFTokenizerData.Key.merges, "is missing (a \(data.model) vocabulary needs its merges)")
        }
        var merges = PairTable(minimumCapacity: lines.count)
        var joined: [UInt8] = []
        for (rank, line) in lines.enumerated() {
            // As llama.cpp: split at the first space after the first byte; pairs that do not
            // resolve to tokens can never be formed from tokens, so they are left out.
            let bytes = Array(line.utf8)
            guard bytes.count > 2, let space = bytes[1...].firstIndex(of: 0x20) else { continue }
            let left = bytes[..<space], right = bytes[(space + 1)...]
            joined.removeAll(keepingCapacity: true)
            joined.append(contentsOf: left)
            joined.append(contentsOf: right)
            guard let leftId = vocabulary.lookup(Array(left)), let rightId = vocabulary.lookup(Array(right)),
                  let mergedId = vocabulary.lookup(joined) else { continue }
            let key = UInt64(UInt32(leftId)) << 32 | UInt64(UInt32(rightId))
            // llama.cpp keeps the first rank of a repeated pair.
            if merges.lookup(key) == nil {
                merges.insert(key, UInt64(rank) << 32 | UInt64(UInt32(mergedId)))
            }
        }
        return merges
    }

    // MARK: gemma4 (SentencePiece-style BPE)

    /// Gemma 4: spaces become `▁` (no prefix), the text is cut only into runs of newlines and
    /// runs of anything else, and each run is merged by rank over its raw UTF-8 characters, with
    /// `<0xNN>` tokens for characters outside the vocabulary. A run of newlines that is itself a
    /// token stays whole. llama.cpp always adds the BOS token for it.
    func buildGemma4() throws -> Parts {
        let model = BPEModel(tokens: tokens, vocabulary: vocabulary, merges: try rankedMerges(), unknownId: nil,
                             byteFallback: true, ignoreMerges: false, keepsNewlineRuns: true)
        let space = Array("▁".utf8)
        let bos = specialId(data.bosId, default: nil)
        let eos = specialId(data.eosId, default: nil)
        return Parts(
            kind: "SentencePiece BPE", normalizer: .replace(.literal([0x20]), with: space),
            preTokenizer: .split(.literal([0x0A]), .contiguous, invert: false), model: model,
            addedTokens: addedTokens(),
            postProcessor: try postProcessor(addBOS: true, bos: bos, addEOS: data.addEOS ?? false, eos: eos),
            decoder: .sequence([.replace(.literal(space), with: [0x20]), .byteFallback, .fuse]),
            bos: name(bos), eos: name(eos), pad: name(specialId(data.padId, default: nil)),
            unk: name(specialId(data.unkId, default: nil)))
    }

    // MARK: llama (SentencePiece)

    func buildSentencePiece() throws -> Parts {
        let scores = data.scores ?? Array(repeating: 0, count: tokens.count)
        guard scores.count >= tokens.count else {
            throw error(GGUFTokenizerData.Key.scores, "has \(scores.count) entries for \(tokens.count) tokens")
        }
        let model = BPEModel(tokens: tokens, vocabulary: vocabulary, merges: sentencePieceMerges(scores: scores),
                             unknownId: specialId(data.unkId, default: 0).map(Int32.init), byteFallback: true,
                             ignoreMerges: false)
        let addSpacePrefix = data.addSpacePrefix ?? true
        let space = Array("▁".utf8)
        var normalizers: [Normalizer] = []
        if addSpacePrefix { normalizers.append(.prepend(space)) }
        normalizers.append(.replace(.literal([0x20]), with: space))
        var decoders: [TokenDecoder] = [.replace(.literal(space), with: [0x20]), .byteFallback, .fuse]
        if addSpacePrefix { decoders.append(.strip(" ", start: 1, stop: 0)) }
        let bos = specialId(data.bosId, default: 1)
        let eos = specialId(data.eosId, default: 2)
        return Parts(
            kind: "SentencePiece BPE", normalizer: .sequence(normalizers), preTokenizer: nil, model: model,
            addedTokens: addedTokens(),
            postProcessor: try postProcessor(addBOS: data.addBOS ?? true, bos: bos,
                                             addEOS: data.addEOS ?? false, eos: eos),
            decoder: .sequence(decoders), bos: name(bos), eos: name(eos),
            pad: name(specialId(data.padId, default: nil)), unk: name(specialId(data.unkId, default: 0)))
    }

    /// llama.cpp's SentencePiece merging as BPE merges: any two adjacent pieces whose
    /// concatenation is a token merge, the token with the highest score first and the
    /// leftmost pair among equal scores. So every split of every token into two tokens is a
    /// merge, ranked by the token's place among the distinct scores, best first.
    func sentencePieceMerges(scores: [Float]) -> PairTable {
        let distinct = Array(Set(scores[0..<tokens.count].filter { !$0.isNaN })).sorted(by: >)
        var rankOfScore: [Float: Int] = [:]
        for (rank, score) in distinct.enumerated() { rankOfScore[score] = rank }
        var merges = PairTable(minimumCapacity: tokens.count * 4)
        for (id, token) in tokens.enumerated() {
            let bytes = Array(token.utf8)
            guard bytes.count > 1, let rank = rankOfScore[scores[id]] else { continue }
            for cut in 1..<bytes.count where bytes[cut] & 0xC0 != 0x80 {
                guard let left = vocabulary.lookup(Array(bytes[..<cut])),
                      let right = vocabulary.lookup(Array(bytes[cut...])) else { continue }
                merges.insert(UInt64(UInt32(left)) << 32 | UInt64(UInt32(right)), UInt64(rank) << 32 | UInt64(id))
            }
        }
        return merges
    }
}
