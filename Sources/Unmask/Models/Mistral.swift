/// `config.json` of `model_type` "mistral", with transformers' `MistralConfig` defaults.
struct MistralConfig: Decodable {
    static let defaults = CommonConfig(vocabSize: 32000, hiddenSize: 4096, intermediateSize: 14336, numHiddenLayers: 32,
                                       numAttentionHeads: 32, maxPositionEmbeddings: 4096 * 32)
    var common: CommonConfig
    var numKeyValueHeads = 8
    var headDim: Int?
    var slidingWindow: Int? = 4096

    enum CodingKeys: String, CodingKey {
        case numKeyValueHeads = "num_key_value_heads", headDim = "head_dim", slidingWindow = "sliding_window"
    }

    init(from decoder: Decoder) throws {
        common = try CommonConfig(from: decoder, defaults: Self.defaults)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        numKeyValueHeads = try c.decodeIfPresent(Int.self, forKey: .numKeyValueHeads) ?? numKeyValueHeads
        headDim = try c.decodeIfPresent(Int.self, forKey: .headDim)
        // An explicit null turns the window off; a missing key keeps the default.
        if c.contains(.slidingWindow) { slidingWindow = try c.decodeIfPresent(Int.self, forKey: .slidingWindow) }
    }
}

extension Architecture {
    static let mistral = Architecture(
        modelType: "mistral",
        ggufName: String?.none,
        tensors: TensorNameTable(layer: TensorNameTable.llamaLayer),
        eosPoolingSuffix: { _ in " </s>" },
        resolve: { data, file in
            let c = try decodeConfig(MistralConfig.self, from: data, file: file)
            var config = try c.common.decoderConfig(modelType: "mistral", kvHeads: c.numKeyValueHeads, headDim: c.headDim, file: file)
            config.slidingWindow = c.slidingWindow
            return config
        })
}
