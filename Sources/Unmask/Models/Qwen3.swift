/// `config.json` of `model_type` "qwen3" (Qwen3, Qwen3-Embedding), with transformers'
/// `Qwen3Config` defaults: Qwen2's layer without q/k/v biases, per-head q/k RMSNorms before
/// RoPE, an explicit `head_dim`, and sliding windows on the layers from `max_window_layers` on
/// (when `use_sliding_window`), or as `layer_types` lists them.
struct Qwen3Config: Decodable {
    static let defaults = CommonConfig(vocabSize: 151936, hiddenSize: 4096, intermediateSize: 22016, numHiddenLayers: 32,
                                       numAttentionHeads: 32, maxPositionEmbeddings: 32768)
    var common: CommonConfig
    var numKeyValueHeads = 32
    var headDim = 128
    var attentionBias = false
    var useSlidingWindow = false
    var slidingWindow: Int? = 4096
    var maxWindowLayers = 28
    var layerTypes: [String]?
    var ropeScaling: RopeScalingJSON?

    enum CodingKeys: String, CodingKey {
        case numKeyValueHeads = "num_key_value_heads", headDim = "head_dim", attentionBias = "attention_bias"
        case useSlidingWindow = "use_sliding_window", slidingWindow = "sliding_window", maxWindowLayers = "max_window_layers"
        case layerTypes = "layer_types", ropeScaling = "rope_scaling"
    }

    init(from decoder: Decoder) throws {
        common = try CommonConfig(from: decoder, defaults: Self.defaults)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        numKeyValueHeads = try c.decodeIfPresent(Int.self, forKey: .numKeyValueHeads) ?? numKeyValueHeads
        headDim = try c.decodeIfPresent(Int.self, forKey: .headDim) ?? headDim
        attentionBias = try c.decodeIfPresent(Bool.self, forKey: .attentionBias) ?? attentionBias
        useSlidingWindow = try c.decodeIfPresent(Bool.self, forKey: .useSlidingWindow) ?? useSlidingWindow
        if c.contains(.slidingWindow) { slidingWindow = try c.decodeIfPresent(Int.self, forKey: .slidingWindow) }
        maxWindowLayers = try c.decodeIfPresent(Int.self, forKey: .maxWindowLayers) ?? maxWindowLayers
        layerTypes = try c.decodeIfPresent([String].self, forKey: .layerTypes)
        ropeScaling = try c.decodeIfPresent(RopeScalingJSON.self, forKey: .ropeScaling)
    }
}

extension Architecture {
    static let qwen3 = Architecture(
        modelType: "qwen3",
        ggufName: "qwen3",
        tensors: TensorNameTable(layer: TensorNameTable.llamaLayer.merging(TensorNameTable.queryKeyNorms) { a, _ in a }),
        eosPoolingSuffix: { _ in "<|endoftext|>" },
        resolve: { data, file in
            let c = try decodeConfig(Qwen3Config.self, from: data, file: file)
            var config = try c.common.decoderConfig(modelType: "qwen3", kvHeads: c.numKeyValueHeads, headDim: c.headDim, file: file)
            config.ropeScaling = try c.ropeScaling?.resolve(file: file) ?? .none
            config.attentionBias = c.attentionBias
            config.outputBias = c.attentionBias
            config.queryKeyNorm = true
            // transformers drops the window unless use_sliding_window is set.
            config.slidingWindow = c.useSlidingWindow ? c.slidingWindow : nil
            if config.slidingWindow != nil {
                config.slidingLayers = try slidingLayers(c.layerTypes, count: config.layerCount, file: file)
                    ?? Set(min(c.maxWindowLayers, config.layerCount)..<config.layerCount)
            }
            config.bidirectionalWindow = .symmetricExclusive
            return config
        },
        ggufPlan: { config, _ in
            config.queryKeyNorm = true
            config.bidirectionalWindow = .symmetricExclusive
        })

    /// The layers `layer_types` marks "sliding_attention", or nil when the key is absent.
    static func slidingLayers(_ layerTypes: [String]?, count: Int, file: String) throws -> Set<Int>? {
        guard let layerTypes else { return nil }
        guard layerTypes.count == count, layerTypes.allSatisfy({ $0 == "sliding_attention" || $0 == "full_attention" }) else {
            throw UnmaskError.invalidField(file: file, field: "layer_types",
                                           expected: "\(count) entries (num_hidden_layers), each \"sliding_attention\" or \"full_attention\"")
        }
        return Set(layerTypes.indices.filter { layerTypes[$0] == "sliding_attention" })
    }
}
