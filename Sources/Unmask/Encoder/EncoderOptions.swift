import Foundation

/// How token states become one vector, with llm2vec's semantics.
public enum Pooling: String, CaseIterable, Sendable {
    /// Average over the text's tokens (instruction tokens excluded).
    case mean
    /// Weights 1…n over the text's n tokens, normalized: later tokens, which saw more context in
    /// a causal model, count more.
    case weightedMean = "weighted-mean"
    /// The last token's state.
    case lastToken = "last-token"
    /// The last token's state after appending the family's EOS text, as llm2vec does.
    case eosToken = "eos-token"
    /// The BOS token's state.
    case bosToken = "bos-token"

    /// llm2vec's spelling (`llm2vec_config.json`'s `pooling_mode`).
    public init?(llm2vecName: String) {
        switch llm2vecName {
        case "mean": self = .mean
        case "weighted_mean": self = .weightedMean
        case "last_token": self = .lastToken
        case "eos_token": self = .eosToken
        case "bos_token": self = .bosToken
        default: return nil
        }
    }
}

/// What happens to an input longer than the maximum length.
public enum LongInputs: String, CaseIterable, Sendable {
    /// Cut it (llm2vec's and sentence-transformers' behaviour).
    case truncate
    /// Embed overlapping windows of it and average their vectors, weighted by their tokens.
    case chunk
}

public enum AttentionMode: String, CaseIterable, Sendable {
    case bidirectional, causal
}

/// Encoder settings. Defaults are llm2vec's; `llm2vec_config.json` in the model or last adapter
/// folder overrides them, and explicit settings override that.
public struct EncoderOptions: Sendable, Equatable {
    public var attention: AttentionMode = .bidirectional
    public var pooling: Pooling = .mean
    public var maxLength = 512
    public var docMaxLength = 400
    /// Pool only the text's tokens, not the instruction's.
    public var skipInstruction = true
    public var normalize = false
    public var batchSize = 32
    /// Sentence-transformers models: the prompt by name (`config_sentence_transformers.json`),
    /// or its text; an input's own instruction wins over both.
    public var promptName: String?
    public var prompt: String?
    /// Matryoshka: keep the first `dimensions` values (then normalize when the model does).
    public var dimensions: Int?
    public var longInputs: LongInputs = .truncate
    /// Tokens that consecutive chunks share (default: an eighth of a window).
    public var chunkOverlap: Int?

    public init() {}

    /// Applies the keys of an `llm2vec_config.json`.
    mutating func apply(llm2vecConfig data: Data, file: String) throws {
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw UnmaskError.malformedJSON(file: file, reason: "not a JSON object")
        }
        if let value = object["pooling_mode"] {
            guard let name = value as? String, let pooling = Pooling(llm2vecName: name) else {
                throw UnmaskError.invalidField(file: file, field: "pooling_mode", expected: "one of mean, weighted_mean, last_token, eos_token, bos_token")
            }
            self.pooling = pooling
        }
        if let value = object["max_length"] {
            guard let n = (value as? NSNumber)?.intValue else { throw UnmaskError.invalidField(file: file, field: "max_length", expected: "an integer") }
            maxLength = n
        }
        if let value = object["doc_max_length"] {
            guard let n = (value as? NSNumber)?.intValue else { throw UnmaskError.invalidField(file: file, field: "doc_max_length", expected: "an integer") }
            docMaxLength = n
        }
        if let value = object["skip_instruction"] {
            guard let flag = value as? Bool else { throw UnmaskError.invalidField(file: file, field: "skip_instruction", expected: "true or false") }
            skipInstruction = flag
        }
    }

    func validate() throws {
        guard maxLength >= 1 else { throw UnmaskError.invalidInput(source: "options", reason: "max length must be at least 1, got \(maxLength)") }
        guard docMaxLength >= 1 else { throw UnmaskError.invalidInput(source: "options", reason: "doc max length must be at least 1, got \(docMaxLength)") }
        guard batchSize >= 1 else { throw UnmaskError.invalidInput(source: "options", reason: "batch size must be at least 1, got \(batchSize)") }
        if let dimensions, dimensions < 1 { throw UnmaskError.invalidInput(source: "options", reason: "dimensions must be at least 1, got \(dimensions)") }
        if let chunkOverlap, chunkOverlap < 0 { throw UnmaskError.invalidInput(source: "options", reason: "chunk overlap must be at least 0, got \(chunkOverlap)") }
    }
}

/// One text to embed, with an optional instruction (E5/LLM2Vec style) that conditions the
/// text's tokens but is left out of pooling.
public struct EncoderInput: Sendable, Equatable {
    public var instruction: String
    public var text: String

    public init(_ text: String, instruction: String = "") {
        self.text = text
        self.instruction = instruction
    }
}
