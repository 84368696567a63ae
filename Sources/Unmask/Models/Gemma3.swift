/// `config.json` of `model_type` "gemma3_text" (Gemma 3's text decoder, EmbeddingGemma), with
/// transformers' `Gemma3TextConfig` defaults.
///
/// The layer differs from Llama's in its plan, not its code: GELU-tanh gated MLP, RMSNorms
/// around both attention and MLP (the sandwich) with weights stored as w for a (1 + w) scale,
/// per-head q/k norms, scores scaled by 1/√query_pre_attn_scalar, embeddings scaled by
/// √hidden_size, and sliding-window layers (per `layer_types`, or every `sliding_window_pattern`-th
/// layer full) whose RoPE base is `rope_local_base_freq`.
struct Gemma3TextConfig: Decodable {
    static let defaults: CommonConfig = {
        var c = CommonConfig(vocabSize: 262_208, hiddenSize: 2304, intermediateSize: 9216, numHiddenLayers: 26,
                             numAttentionHeads: 8, maxPositionEmbeddings: 131_072)
        c.tieWordEmbeddings = true
        c.ropeTheta = 1_000_000
        return c
    }()
    var common: CommonConfig
    var numKeyValueHeads = 4
    var headDim = 256
    var hiddenActivation = "gelu_pytorch_tanh"
    var attentionBias = false
    var queryPreAttnScalar: Float = 256
    var slidingWindow = 4096
    var slidingWindowPattern = 6
    var layerTypes: [String]?
    var ropeLocalBaseFreq: Double = 10_000
    var ropeScaling: RopeScalingJSON?
    var useBidirectionalAttention = false
    var finalLogitSoftcapping: Float?
    var attnLogitSoftcapping: Float?

    enum CodingKeys: String, CodingKey {
        case numKeyValueHeads = "num_key_value_heads", headDim = "head_dim", hiddenActivation = "hidden_activation"
        case attentionBias = "attention_bias", queryPreAttnScalar = "query_pre_attn_scalar", slidingWindow = "sliding_window"
        case slidingWindowPattern = "sliding_window_pattern", layerTypes = "layer_types", ropeLocalBaseFreq = "rope_local_base_freq"
        case ropeScaling = "rope_scaling", useBidirectionalAttention = "use_bidirectional_attention"
        case finalLogitSoftcapping = "final_logit_softcapping", attnLogitSoftcapping = "attn_logit_softcapping"
    }

    init(from decoder: Decoder) throws {
        common = try CommonConfig(from: decoder, defaults: Self.defaults)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func read<T: Decodable>(_ key: CodingKeys, _ value: inout T) throws {
            if let decoded = try c.decodeIfPresent(T.self, forKey: key) { value = decoded }
        }
        try read(.numKeyValueHeads, &numKeyValueHeads)
        try read(.headDim, &headDim)
        try read(.hiddenActivation, &hiddenActivation)
        try read(.attentionBias, &attentionBias)
        try read(.queryPreAttnScalar, &queryPreAttnScalar)
        try read(.slidingWindow, &slidingWindow)
        try read(.slidingWindowPattern, &slidingWindowPattern)
        try read(.ropeLocalBaseFreq, &ropeLocalBaseFreq)
        try read(.useBidirectionalAttention, &useBidirectionalAttention)
        layerTypes = try c.decodeIfPresent([String].self, forKey: .layerTypes)
        ropeScaling = try c.decodeIfPresent(RopeScalingJSON.self, forKey: .ropeScaling)
        finalLogitSoftcapping = try c.decodeIfPresent(Float.self, forKey: .finalLogitSoftcapping)
        attnLogitSoftcapping = try c.decodeIfPresent(Float.self, forKey: .attnLogitSoftcapping)
    }
}

extension Architecture {
    static let gemma3 = Architecture(
        modelType: "gemma3_text",
        ggufName: "gemma3",
        // Llama's projections and Gemma's four norms (its post_attention_layernorm normalizes the
        // attention output; the pre-MLP norm is pre_feedforward_layernorm).
        tensors: TensorNameTable(
            layer: TensorNameTable.llamaLayer.merging(TensorNameTable.queryKeyNorms) { a, _ in a }.merging([
                .attentionOutputNorm: TensorName(hf: "post_attention_layernorm", gguf: "post_attention_norm"),
                .mlpNorm: TensorName(hf: "pre_feedforward_layernorm", gguf: "ffn_norm"),
                .mlpOutputNorm: TensorName(hf: "post_feedforward_layernorm", gguf: "post_ffw_norm"),
            ]) { _, gemma in gemma },
            hfNormOffset: 1),
        eosPoolingSuffix: { _ in "<eos>" },
        resolve: { data, file in
            let c = try decodeConfig(Gemma3TextConfig.self, from: data, file: file)
            for (value, key) in [(c.finalLogitSoftcapping, "final_logit_softcapping"), (c.attnLogitSoftcapping, "attn_logit_softcapping")] where value != nil {
                throw UnmaskError.invalidField(file: file, field: key, expected: "null (logit soft-capping is Gemma 2's, not supported)")
            }
            var common = c.common
            common.hiddenAct = c.hiddenActivation
            var config = try common.decoderConfig(modelType: "gemma3_text", kvHeads: c.numKeyValueHeads, headDim: c.headDim, file: file)
            config.ropeScaling = try c.ropeScaling?.resolve(file: file) ?? .none
            config.attentionBias = c.attentionBias
            config.outputBias = c.attentionBias
            guard c.slidingWindowPattern > 0 else {
                throw UnmaskError.invalidField(file: file, field: "sliding_window_pattern", expected: "a positive integer")
            }
            gemma3Plan(&config, queryPreAttnScalar: c.queryPreAttnScalar, window: c.slidingWindow,
                       slidingLayers: try slidingLayers(c.layerTypes, count: config.layerCount, file: file)
                           ?? gemma3SlidingLayers(count: config.layerCount, pattern: c.slidingWindowPattern),
                       localRopeTheta: c.ropeLocalBaseFreq)
            config.trainedBidirectional = c.useBidirectionalAttention
            return config
        },
        // llama.cpp keeps most of Gemma 3's plan in code: every 6th layer full, a local RoPE base
        // of 10000, and 1/√head_dim scores (1/√(hidden/heads) for the 62-layer 27B).
        ggufPlan: { config, metadata in
            guard let window = try metadata.integer("attention.sliding_window") else {
                throw UnmaskError.invalidField(file: metadata.file.fileName, field: "gemma3.attention.sliding_window", expected: "a positive integer, but the key is missing")
            }
            let scalar = config.layerCount == 62 ? Float(config.hiddenSize / config.headCount) : Float(config.headDim)
            gemma3Plan(&config, queryPreAttnScalar: scalar, window: window,
                       slidingLayers: gemma3SlidingLayers(count: config.layerCount, pattern: 6), localRopeTheta: 10_000)
        })

    /// What Gemma 3's layers do besides Llama's, whichever format told the sizes.
    static func gemma3Plan(_ config: inout DecoderConfig, queryPreAttnScalar: Float, window: Int, slidingLayers: Set<Int>, localRopeTheta: Double) {
        config.normPlacement = .sandwich
        config.queryKeyNorm = true
        config.activation = .geluTanh
        config.attentionScaleOverride = 1 / queryPreAttnScalar.squareRoot()
        // transformers multiplies by the Python float hidden_size**0.5 rounded to the weights' dtype.
        config.embeddingScale = Float(Double(config.hiddenSize).squareRoot())
        config.slidingWindow = window
        config.slidingLayers = slidingLayers
        config.localRopeTheta = localRopeTheta
        config.bidirectionalWindow = .halved
    }

    /// Every `pattern`-th layer full, the others sliding (transformers' default `layer_types`).
    static func gemma3SlidingLayers(count: Int, pattern: Int) -> Set<Int> {
        Set((0..<count).filter { ($0 + 1) % pattern != 0 })
    }
}
