/// `config.json` of `model_type` "qwen2", with transformers' `Qwen2Config` defaults. Qwen2 always
/// has q/k/v biases and no o_proj bias.
struct Qwen2Config: Decodable {
    static let defaults = CommonConfig(vocabSize: 151936, hiddenSize: 4096, intermediateSize: 22016, numHiddenLayers: 32,
                                       numAttentionHeads: 32, maxPositionEmbeddings: 32768)
    var common: CommonConfig
    var numKeyValueHeads = 32
    var useSlidingWindow = false
    var slidingWindow = 4096

    enum CodingKeys: String, CodingKey {
        case numKeyValueHeads = "num_key_value_heads", useSlidingWindow = "use_sliding_window", slidingWindow = "sliding_window"
    }

    init(from decoder: Decoder) throws {
        common = try CommonConfig(from: decoder, defaults: Self.defaults)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        numKeyValueHeads = try c.decodeIfPresent(Int.self, forKey: .numKeyValueHeads) ?? numKeyValueHeads
        useSlidingWindow = try c.decodeIfPresent(Bool.self, forKey: .useSlidingWindow) ?? useSlidingWindow
        slidingWindow = try c.decodeIfPresent(Int.self, forKey: .slidingWindow) ?? slidingWindow
    }
}

extension Architecture {
    static let qwen2 = Architecture(
        modelType: "qwen2",
        ggufName: "qwen2",
        tensors: TensorNameTable(layer: TensorNameTable.llamaLayer),
        eosPoolingSuffix: { _ in "<|endoftext|>" },
        resolve: { data, file in
            let c = try decodeConfig(Qwen2Config.self, from: data, file: file)
            var config = try c.common.decoderConfig(modelType: "qwen2", kvHeads: c.numKeyValueHeads, headDim: nil, file: file)
            config.attentionBias = true
            config.outputBias = false
            config.slidingWindow = c.useSlidingWindow ? c.slidingWindow : nil
            return config
        })
}
