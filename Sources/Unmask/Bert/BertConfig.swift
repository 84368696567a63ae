import Foundation

/// A BERT `config.json` (transformers' `BertConfig`), with its defaults for absent keys.
public struct BertConfig: Decodable, Sendable, Equatable {
    public var modelType: String
    public var vocabSize: Int
    public var hiddenSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var intermediateSize: Int
    /// "gelu" (erf form), or "gelu_new" / "gelu_pytorch_tanh" / "gelu_fast" (tanh form), or "relu".
    public var hiddenAct: String
    public var maxPositionEmbeddings: Int
    public var typeVocabSize: Int
    public var layerNormEps: Double
    public var padTokenId: Int
    public var positionEmbeddingType: String

    enum CodingKeys: String, CodingKey {
        case modelType = "model_type"
        case vocabSize = "vocab_size"
        case hiddenSize = "hidden_size"
        case numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads"
        case intermediateSize = "intermediate_size"
        case hiddenAct = "hidden_act"
        case maxPositionEmbeddings = "max_position_embeddings"
        case typeVocabSize = "type_vocab_size"
        case layerNormEps = "layer_norm_eps"
        case padTokenId = "pad_token_id"
        case positionEmbeddingType = "position_embedding_type"
    }

    public init(
        modelType: String = "bert", vocabSize: Int = 30522, hiddenSize: Int = 768, numHiddenLayers: Int = 12,
        numAttentionHeads: Int = 12, intermediateSize: Int = 3072, hiddenAct: String = "gelu",
        maxPositionEmbeddings: Int = 512, typeVocabSize: Int = 2, layerNormEps: Double = 1e-12, padTokenId: Int = 0,
        positionEmbeddingType: String = "absolute"
    ) {
        self.modelType = modelType
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.intermediateSize = intermediateSize
        self.hiddenAct = hiddenAct
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.typeVocabSize = typeVocabSize
        self.layerNormEps = layerNormEps
        self.padTokenId = padTokenId
        self.positionEmbeddingType = positionEmbeddingType
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = BertConfig()
        modelType = try c.decodeIfPresent(String.self, forKey: .modelType) ?? d.modelType
        vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? d.vocabSize
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? d.hiddenSize
        numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? d.numHiddenLayers
        numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? d.numAttentionHeads
        intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? d.intermediateSize
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? d.hiddenAct
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? d.maxPositionEmbeddings
        typeVocabSize = try c.decodeIfPresent(Int.self, forKey: .typeVocabSize) ?? d.typeVocabSize
        layerNormEps = try c.decodeIfPresent(Double.self, forKey: .layerNormEps) ?? d.layerNormEps
        padTokenId = try c.decodeIfPresent(Int.self, forKey: .padTokenId) ?? d.padTokenId
        positionEmbeddingType = try c.decodeIfPresent(String.self, forKey: .positionEmbeddingType) ?? d.positionEmbeddingType
    }

    public var headDim: Int { hiddenSize / numAttentionHeads }

    /// The model types this forward pass computes.
    public static let supportedModelTypes = ["bert"]

    /// Reads and checks `config.json`; `file` names it in errors.
    public static func load(_ data: Data, file: String) throws -> BertConfig {
        let config: BertConfig
        do {
            config = try JSONDecoder().decode(BertConfig.self, from: data)
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw UnmaskError.invalidField(file: file, field: field, expected: context.debugDescription)
        } catch {
            throw UnmaskError.malformedJSON(file: file, reason: "not a JSON object (\(error))")
        }
        try config.validate(file: file)
        return config
    }

    func validate(file: String) throws {
        guard Self.supportedModelTypes.contains(modelType) else {
            throw UnmaskError.unsupportedArchitecture(file: file, modelType: modelType, supported: Self.supportedModelTypes)
        }
        func positive(_ value: Int, _ field: String) throws {
            guard value >= 1 else { throw UnmaskError.invalidField(file: file, field: field, expected: "a positive integer, got \(value)") }
        }
        try positive(vocabSize, "vocab_size")
        try positive(hiddenSize, "hidden_size")
        try positive(numHiddenLayers, "num_hidden_layers")
        try positive(numAttentionHeads, "num_attention_heads")
        try positive(intermediateSize, "intermediate_size")
        try positive(maxPositionEmbeddings, "max_position_embeddings")
        try positive(typeVocabSize, "type_vocab_size")
        guard hiddenSize % numAttentionHeads == 0 else {
            throw UnmaskError.invalidField(file: file, field: "num_attention_heads", expected: "a divisor of hidden_size \(hiddenSize), got \(numAttentionHeads)")
        }
        guard BertActivation(name: hiddenAct) != nil else {
            throw UnmaskError.invalidField(file: file, field: "hidden_act", expected: "one of \(BertActivation.names.joined(separator: ", ")), got \"\(hiddenAct)\"")
        }
        guard positionEmbeddingType == "absolute" else {
            throw UnmaskError.invalidField(file: file, field: "position_embedding_type", expected: "\"absolute\" (relative position embeddings are not supported), got \"\(positionEmbeddingType)\"")
        }
        guard layerNormEps > 0, layerNormEps.isFinite else {
            throw UnmaskError.invalidField(file: file, field: "layer_norm_eps", expected: "a positive number")
        }
    }
}

/// The feed-forward activation, by transformers' `ACT2FN` name.
public enum BertActivation: Sendable, Equatable {
    /// x·Φ(x) with the exact normal CDF (transformers' "gelu").
    case geluErf
    /// The tanh approximation ("gelu_new", "gelu_pytorch_tanh", "gelu_fast").
    case geluTanh
    case relu

    static let names = ["gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "relu"]

    public init?(name: String) {
        switch name {
        case "gelu": self = .geluErf
        case "gelu_new", "gelu_pytorch_tanh", "gelu_fast": self = .geluTanh
        case "relu": self = .relu
        default: return nil
        }
    }
}
