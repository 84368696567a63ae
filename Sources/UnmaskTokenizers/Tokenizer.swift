import Foundation

/// A Hugging Face `tokenizer.json` BPE tokenizer (byte-level as in GPT-2/Llama-3/Qwen2, or
/// SentencePiece-style as in Llama-2/Mistral) that produces the same ids as the `tokenizers`
/// library. Immutable after loading and safe to share between threads.
public final class Tokenizer: Sendable {
    private let normalizer: Normalizer?
    private let preTokenizer: PreTokenizer?
    private let model: any TokenizerModel
    private let addedVocabulary: AddedVocabulary
    private let postProcessor: PostProcessor
    private let decoder: TokenDecoder?
    private let cleanUpTokenizationSpaces: Bool

    /// "byte-level BPE", "SentencePiece BPE" or "BPE".
    public let kind: String
    /// Distinct tokens in the model vocabulary and the added tokens together, as HF's
    /// `get_vocab_size(with_added_tokens=True)`.
    public let vocabularySize: Int
    /// Ids of the added tokens marked special (those `skipSpecialTokens` drops).
    public let specialTokenIds: Set<Int>
    public let bosToken: String?
    public let eosToken: String?
    public let padToken: String?
    public let unkToken: String?
    /// tokenizer_config.json's `model_max_length`, or nil when absent or unlimited.
    public let modelMaxLength: Int?
    /// tokenizer_config.json's `chat_template` (the "default" one when several are named).
    public let chatTemplate: String?

    public var bosTokenId: Int? { bosToken.flatMap(id(forToken:)) }
    public var eosTokenId: Int? { eosToken.flatMap(id(forToken:)) }
    public var padTokenId: Int? { padToken.flatMap(id(forToken:)) }
    public var unkTokenId: Int? { unkToken.flatMap(id(forToken:)) }
    /// Whether encoding with special tokens puts tokens before the text (a BOS).
    public var addsBOS: Bool { !postProcessor.prefix.isEmpty }
    /// Whether encoding with special tokens puts tokens after the text (an EOS).
    public var addsEOS: Bool { !postProcessor.suffix.isEmpty }
    /// The ids encoding with special tokens puts before the text (BERT's [CLS], a BOS).
    public var prefixTokenIds: [Int] { postProcessor.prefix.map(Int.init) }
    /// The ids encoding with special tokens puts after the text (BERT's [SEP], an EOS).
    public var suffixTokenIds: [Int] { postProcessor.suffix.map(Int.init) }

    /// Loads `tokenizer.json` from `directory`, with `tokenizer_config.json` and
    /// `special_tokens_map.json` when present.
    public static func load(directory: URL) throws -> Tokenizer {
        func read(_ name: String, required: Bool) throws -> Data? {
            let url = directory.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: url.path) else {
                if required { throw TokenizerError("\(url.path): file not found") }
                return nil
            }
            do {
                return try Data(contentsOf: url)
            } catch {
                throw TokenizerError("\(url.path): cannot be read (\(error.localizedDescription))")
            }
        }
        let tokenizerURL = directory.appendingPathComponent("tokenizer.json")
        return try Tokenizer(
            tokenizerJSON: try read("tokenizer.json", required: true)!,
            tokenizerConfig: try read("tokenizer_config.json", required: false),
            specialTokensMap: try read("special_tokens_map.json", required: false),
            source: tokenizerURL.path,
            configSource: directory.appendingPathComponent("tokenizer_config.json").path,
            specialTokensSource: directory.appendingPathComponent("special_tokens_map.json").path)
    }

    /// Builds a tokenizer from file contents. `source` names tokenizer.json in error messages.
    public convenience init(
        tokenizerJSON: Data, tokenizerConfig: Data? = nil, specialTokensMap: Data? = nil,
        source: String = "tokenizer.json"
    ) throws {
        try self.init(tokenizerJSON: tokenizerJSON, tokenizerConfig: tokenizerConfig, specialTokensMap: specialTokensMap,
                      source: source, configSource: "tokenizer_config.json",
                      specialTokensSource: "special_tokens_map.json")
    }

    private init(
        tokenizerJSON: Data, tokenizerConfig: Data?, specialTokensMap: Data?,
        source: String, configSource: String, specialTokensSource: String
    ) throws {
        let root = JSONNode(try JSONValue.parse(tokenizerJSON, file: source), file: source)
        _ = try root.members()
        let normalizer = try root.optional("normalizer").map(Normalizer.parse)
        let preTokenizer = try root.optional("pre_tokenizer").map(PreTokenizer.parse)
        let model = try parseTokenizerModel(try root.required("model"))
        // An empty vocabulary encodes every text to nothing; say so here rather than blame the text.
        guard model.vocabulary.count > 0 else { throw TokenizerError("\(source): model.vocab is empty; the tokenizer has no tokens") }
        let postProcessor = try root.optional("post_processor").map(PostProcessor.parse) ?? PostProcessor()
        let addedTokens = try root.optional("added_tokens")?.array().map(AddedToken.parse) ?? []
        let addedVocabulary = AddedVocabulary(tokens: addedTokens, vocabulary: model.vocabulary, normalizer: normalizer)
        self.normalizer = normalizer
        self.preTokenizer = preTokenizer
        self.model = model
        self.postProcessor = postProcessor
        self.addedVocabulary = addedVocabulary
        decoder = try root.optional("decoder").map(TokenDecoder.parse)

        var config = TokenizerConfig()
        if let tokenizerConfig { try config.read(config: tokenizerConfig, file: configSource) }
        if let specialTokensMap { try config.read(specialTokensMap: specialTokensMap, file: specialTokensSource) }
        cleanUpTokenizationSpaces = config.cleanUpTokenizationSpaces
        modelMaxLength = config.modelMaxLength
        chatTemplate = config.chatTemplate

        // With a config, its names are final (as in transformers); with tokenizer.json alone,
        // fall back to what the post-processor and model imply.
        let hasConfig = tokenizerConfig != nil || specialTokensMap != nil
        func named(_ key: String, fallback: [String]) -> String? {
            if hasConfig { return config.specialTokens[key] ?? nil }
            return fallback.count == 1 ? fallback[0] : nil
        }
        bosToken = named("bos_token", fallback: postProcessor.prefixTokens)
        eosToken = named("eos_token", fallback: postProcessor.suffixTokens)
        padToken = named("pad_token", fallback: [])
        unkToken = named("unk_token", fallback: model.unknownToken.map { [$0] } ?? [])

        specialTokenIds = Set(addedVocabulary.ids.filter { addedVocabulary.token(for: $0)?.special == true })
        vocabularySize = model.vocabulary.count
            + addedVocabulary.contents.filter { model.vocabulary.lookup($0) == nil }.count
        if model is WordPieceModel {
            kind = "WordPiece"
        } else if preTokenizer?.containsByteLevel == true {
            kind = "byte-level BPE"
        } else if model.usesByteFallback || preTokenizer?.containsMetaspace == true
                    || normalizer?.writesMetaspace == true {
            kind = "SentencePiece BPE"
        } else {
            kind = "BPE"
        }
    }

    /// Assembles a tokenizer from parts built elsewhere (a GGUF file's vocabulary, see
    /// `GGUFTokenizer.swift`), with the special-token names given directly.
    init(
        kind: String, normalizer: Normalizer?, preTokenizer: PreTokenizer?, model: BPEModel,
        addedTokens: [AddedToken], postProcessor: PostProcessor, decoder: TokenDecoder?,
        bosToken: String?, eosToken: String?, padToken: String?, unkToken: String?
    ) {
        let addedVocabulary = AddedVocabulary(tokens: addedTokens, vocabulary: model.vocabulary, normalizer: normalizer)
        self.kind = kind
        self.normalizer = normalizer
        self.preTokenizer = preTokenizer
        self.model = model
        self.addedVocabulary = addedVocabulary
        self.postProcessor = postProcessor
        self.decoder = decoder
        self.bosToken = bosToken
        self.eosToken = eosToken
        self.padToken = padToken
        self.unkToken = unkToken
        cleanUpTokenizationSpaces = false
        modelMaxLength = nil
        chatTemplate = nil
        specialTokenIds = Set(addedVocabulary.ids.filter { addedVocabulary.token(for: $0)?.special == true })
        vocabularySize = model.vocabulary.count
            + addedVocabulary.contents.filter { model.vocabulary.lookup($0) == nil }.count
    }

    /// Token ids for `text`; with `addSpecialTokens` the post-processor's BOS/EOS are added.
    public func encode(_ text: String, addSpecialTokens: Bool = true) -> [Int] {
        var ids: [Int32] = []
        var input = text
        input.withUTF8 { raw in
            ids.reserveCapacity(raw.count / 3)
            for segment in addedVocabulary.splitRaw(raw, 0..<raw.count) {
                switch segment {
                case .token(let id):
                    ids.append(id)
                case .text(let range):
                    let original = Array(raw[range])
                    let normalized = normalizer?.apply(original) ?? original
                    normalized.withUnsafeBufferPointer { text in
                        for part in addedVocabulary.splitNormalized(text, 0..<text.count) {
                            switch part {
                            case .token(let id):
                                ids.append(id)
                            case .text(let span):
                                encodeText(text, span, atOrigin: range.lowerBound == 0 && span.lowerBound == 0,
                                           into: &ids)
                            }
                        }
                    }
                }
            }
        }
        if addSpecialTokens {
            ids = postProcessor.prefix + ids + postProcessor.suffix
        }
        return ids.map(Int.init)
    }

    private func encodeText(_ text: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, atOrigin: Bool, into ids: inout [Int32]) {
        var pieces = Pieces(bytes: Array(text[range]), ranges: [0..<range.count], firstAtOrigin: atOrigin)
        preTokenizer?.apply(&pieces)
        pieces.bytes.withUnsafeBufferPointer { buffer in
            for piece in pieces.ranges {
                model.encode(UnsafeBufferPointer(rebasing: buffer[piece]), into: &ids)
            }
        }
    }

    /// Text for `ids`, as transformers' `decode` gives it (including its
    /// `clean_up_tokenization_spaces` pass when tokenizer_config.json asks for it).
    /// Unknown ids are skipped.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        var tokens: [String] = []
        tokens.reserveCapacity(ids.count)
        for id in ids {
            guard let token = token(forId: id) else { continue }
            if skipSpecialTokens && addedVocabulary.isSpecial(token) { continue }
            tokens.append(token)
        }
        let text = decoder?.decode(tokens) ?? tokens.joined(separator: " ")
        return cleanUpTokenizationSpaces ? Self.cleanUpTokenization(text) : text
    }

    public func id(forToken token: String) -> Int? {
        (addedVocabulary.id(for: token) ?? model.vocabulary.lookup(token)).map(Int.init)
    }

    public func token(forId id: Int) -> String? {
        if let added = addedVocabulary.token(for: id) { return added.content }
        guard id >= 0, id < model.tokens.count else { return nil }
        return model.tokens[id]
    }

    /// transformers' `clean_up_tokenization`: removes the space before some punctuation and
    /// English contractions.
    private static func cleanUpTokenization(_ text: String) -> String {
        let rules = [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                     (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")]
        return rules.reduce(text) { $0.replacingScalars(of: $1.0, with: $1.1) }
    }
}
