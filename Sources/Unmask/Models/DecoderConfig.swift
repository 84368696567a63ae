import Foundation
import UnmaskKernels

/// The hyperparameters the shared decoder needs, resolved from an architecture's own config
/// (config.json or GGUF metadata), so the forward pass never looks at file formats. Besides the
/// sizes it holds the layer plan: where the norms sit, the MLP's activation, q/k norms, the
/// attention scale, each layer's window and RoPE base, and the embedding scale. The defaults
/// are Llama's; each architecture file sets what differs.
public struct DecoderConfig: Sendable, Equatable {
    public var modelType: String
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var kvHeadCount: Int
    public var headDim: Int
    public var vocabularySize: Int
    public var rmsNormEps: Float
    public var ropeTheta: Double
    public var ropeScaling: RopeScaling
    public var attentionBias: Bool
    public var mlpBias: Bool
    public var tieWordEmbeddings: Bool
    public var maxPositionEmbeddings: Int
    public var slidingWindow: Int?
    /// `_name_or_path`, which decides llm2vec's special cases.
    public var nameOrPath: String

    // MARK: The layer plan

    /// o_proj has a bias (Llama's `attention_bias` covers q, k, v and o; Qwen2's covers q, k, v).
    public var outputBias: Bool
    /// Norms only before attention and MLP (Llama), or also after each (Gemma's sandwich).
    public var normPlacement: NormPlacement = .before
    public var activation: GatedActivation = .silu
    /// An RMSNorm over each query and key head before RoPE (Qwen3, Gemma 3).
    public var queryKeyNorm = false
    /// Scores are q·k times this; nil: 1/√head_dim (Gemma: 1/√query_pre_attn_scalar).
    public var attentionScaleOverride: Float?
    /// Token embeddings are multiplied by this (Gemma: √hidden_size); nil: not scaled.
    public var embeddingScale: Float?
    /// The layers that use `slidingWindow`; nil: all of them (Mistral, Qwen2).
    public var slidingLayers: Set<Int>?
    /// The RoPE base of sliding-window layers (Gemma 3's `rope_local_base_freq`); nil: `ropeTheta`.
    public var localRopeTheta: Double?
    /// How far a sliding window reaches on each side when attention is bidirectional.
    public var bidirectionalWindow: BidirectionalWindow = .symmetric
    /// The checkpoint was trained with bidirectional attention (`use_bidirectional_attention`,
    /// EmbeddingGemma), so that is how it runs unless asked otherwise.
    public var trainedBidirectional = false

    public enum NormPlacement: String, Sendable {
        case before, sandwich
    }

    public enum BidirectionalWindow: Sendable {
        /// Keys within w positions on either side: flash-attention's window (w, w), Unmask's
        /// convention for Mistral and Qwen2.
        case symmetric
        /// Keys less than w positions away, the bound of transformers' `_bidirectional_window_overlay`.
        case symmetricExclusive
        /// Gemma 3 with `use_bidirectional_attention`: transformers' config turns the window into
        /// w // 2 + 1 ("exclusive bounds" for flash-attention) and the overlay keeps keys less than
        /// that away, so keys within w // 2 on either side.
        case halved
    }

    public init(
        modelType: String, hiddenSize: Int, intermediateSize: Int, layerCount: Int, headCount: Int, kvHeadCount: Int,
        headDim: Int, vocabularySize: Int, rmsNormEps: Float, ropeTheta: Double, ropeScaling: RopeScaling = .none,
        attentionBias: Bool = false, mlpBias: Bool = false, tieWordEmbeddings: Bool = false, maxPositionEmbeddings: Int,
        slidingWindow: Int? = nil, nameOrPath: String = ""
    ) {
        self.modelType = modelType
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.layerCount = layerCount
        self.headCount = headCount
        self.kvHeadCount = kvHeadCount
        self.headDim = headDim
        self.vocabularySize = vocabularySize
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.ropeScaling = ropeScaling
        self.attentionBias = attentionBias
        self.mlpBias = mlpBias
        self.tieWordEmbeddings = tieWordEmbeddings
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.slidingWindow = slidingWindow
        self.nameOrPath = nameOrPath
        self.outputBias = attentionBias
    }

    public var qDim: Int { headCount * headDim }
    public var kvDim: Int { kvHeadCount * headDim }
    public var attentionScale: Float { attentionScaleOverride ?? 1 / Float(headDim).squareRoot() }

    /// Layer `layer`'s sliding window, or nil for full attention.
    public func window(layer: Int) -> Int? {
        guard let slidingWindow, slidingLayers?.contains(layer) ?? true else { return nil }
        return slidingWindow
    }

    /// The keys layer `layer` lets a query see: the model owns its attention pattern, so every
    /// caller (encoder, training, analyses) gets the configured windows.
    public func attentionPattern(layer: Int, causal: Bool) -> AttentionPattern {
        guard let w = window(layer: layer) else { return AttentionPattern(causal: causal) }
        switch bidirectionalWindow {
        case .symmetric: return AttentionPattern(causal: causal, slidingWindow: w)
        case .symmetricExclusive: return AttentionPattern(causal: causal, before: w - 1, after: w - 1)
        case .halved: return causal ? AttentionPattern(causal: true, slidingWindow: w) : AttentionPattern(causal: false, before: w / 2, after: w / 2)
        }
    }

    /// The RoPE base of layer `layer`.
    public func ropeTheta(layer: Int) -> Double {
        window(layer: layer) != nil ? localRopeTheta ?? ropeTheta : ropeTheta
    }

    /// Checks what the forward pass relies on; `file` names the config in errors.
    func validate(file: String) throws {
        func require(_ ok: Bool, _ field: String, _ expected: String) throws {
            if !ok { throw UnmaskError.invalidField(file: file, field: field, expected: expected) }
        }
        try require(hiddenSize > 0, "hidden_size", "a positive integer")
        try require(intermediateSize > 0, "intermediate_size", "a positive integer")
        try require(layerCount > 0, "num_hidden_layers", "a positive integer")
        try require(headCount > 0, "num_attention_heads", "a positive integer")
        try require(kvHeadCount > 0 && headCount % kvHeadCount == 0, "num_key_value_heads", "a positive divisor of num_attention_heads (\(headCount)), got \(kvHeadCount)")
        try require(headDim > 0 && headDim % 2 == 0, "head_dim", "a positive even integer, got \(headDim)")
        try require(vocabularySize > 0, "vocab_size", "a positive integer")
        try require(rmsNormEps > 0, "rms_norm_eps", "a positive number")
        try require(ropeTheta > 0, "rope_theta", "a positive number")
        try require((slidingWindow ?? 1) > 0, "sliding_window", "a positive integer or null")
        try require(attentionScaleOverride.map { $0.isFinite && $0 > 0 } ?? true, "query_pre_attn_scalar", "a positive number")
        try require((localRopeTheta ?? 1) > 0, "rope_local_base_freq", "a positive number")
        try require(slidingLayers.map { $0.allSatisfy { (0..<layerCount).contains($0) } } ?? true, "layer_types", "one entry per layer")
    }

    /// RoPE inverse frequencies of the full-attention layers.
    public var inverseFrequencies: [Float] { inverseFrequencies(layer: nil) }

    /// RoPE inverse frequencies of layer `layer` (nil: a full-attention layer), computed in
    /// float32 as transformers does, so the angles match the reference to the last bit wherever
    /// possible. Sliding layers with their own base (Gemma 3) use it unscaled, as transformers'
    /// `rotary_emb_local` does.
    public func inverseFrequencies(layer: Int?) -> [Float] {
        let half = headDim / 2
        let local = layer.map { window(layer: $0) != nil && localRopeTheta != nil } ?? false
        let base = local ? localRopeTheta! : ropeTheta
        var frequencies = (0..<half).map { i -> Float in
            let exponent = Float(2 * i) / Float(headDim)
            return 1 / Float(Foundation.pow(base, Double(exponent)))
        }
        if local { return frequencies }
        switch ropeScaling {
        case .none:
            break
        case let .linear(factor):
            frequencies = frequencies.map { $0 / factor }
        case let .llama3(factor, low, high, original):
            let lowWavelength = Float(original) / low
            let highWavelength = Float(original) / high
            frequencies = frequencies.map { f in
                let wavelength = 2 * Float.pi / f
                if wavelength < highWavelength { return f }
                if wavelength > lowWavelength { return f / factor }
                let smooth = (Float(original) / wavelength - low) / (high - low)
                return (1 - smooth) * f / factor + smooth * f
            }
        }
        return frequencies
    }
}

/// Position scaling schemes of `rope_scaling`.
public enum RopeScaling: Sendable, Equatable {
    case none
    /// Positions divided by `factor` (frequencies likewise).
    case linear(factor: Float)
    /// Llama 3.1's frequency-dependent scaling.
    case llama3(factor: Float, lowFrequencyFactor: Float, highFrequencyFactor: Float, originalMaxPositions: Int)
}

/// `rope_scaling` as config.json spells it (`type` in older files, `rope_type` in newer).
struct RopeScalingJSON: Decodable, Equatable {
    var type: String?
    var ropeType: String?
    var factor: Float?
    var lowFreqFactor: Float?
    var highFreqFactor: Float?
    var originalMaxPositionEmbeddings: Int?

    enum CodingKeys: String, CodingKey {
        case type
        case ropeType = "rope_type"
        case factor
        case lowFreqFactor = "low_freq_factor"
        case highFreqFactor = "high_freq_factor"
        case originalMaxPositionEmbeddings = "original_max_position_embeddings"
    }

    func resolve(file: String) throws -> RopeScaling {
        let kind = ropeType ?? type ?? "default"
        func field<T>(_ value: T?, _ name: String) throws -> T {
            guard let value else { throw UnmaskError.invalidField(file: file, field: "rope_scaling.\(name)", expected: "a number for rope type '\(kind)'") }
            return value
        }
        switch kind {
        case "default": return .none
        case "linear": return .linear(factor: try field(factor, "factor"))
        case "llama3":
            return .llama3(
                factor: try field(factor, "factor"),
                lowFrequencyFactor: try field(lowFreqFactor, "low_freq_factor"),
                highFrequencyFactor: try field(highFreqFactor, "high_freq_factor"),
                originalMaxPositions: try field(originalMaxPositionEmbeddings, "original_max_position_embeddings"))
        default:
            throw UnmaskError.invalidField(file: file, field: "rope_scaling.rope_type", expected: "one of default, linear, llama3; got '\(kind)'")
        }
    }
}

/// `eos_token_id` is an integer or a list of them.
enum TokenIDs: Decodable, Equatable {
    case one(Int), many([Int])
    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let id = try? container.decode(Int.self) { self = .one(id) } else { self = .many(try container.decode([Int].self)) }
    }
    var first: Int? { switch self { case let .one(id): return id; case let .many(ids): return ids.first } }
}
