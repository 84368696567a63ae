/// `config.json` of `model_type` "llama" (Llama 2 and 3, SmolLM, TinyLlama), with transformers'
/// `LlamaConfig` defaults.
struct LlamaConfig: Decodable {
    static let defaults = CommonConfig(vocabSize: 32000, hiddenSize: 4096, intermediateSize: 11008, numHiddenLayers: 32,
                                       numAttentionHeads: 32, maxPositionEmbeddings: 2048)
    var common: CommonConfig
    var numKeyValueHeads: Int?
    var ropeScaling: RopeScalingJSON?
    var attentionBias = false
    var mlpBias = false

    enum CodingKeys: String, CodingKey {
        case numKeyValueHeads = "num_key_value_heads", ropeScaling = "rope_scaling", attentionBias = "attention_bias", mlpBias = "mlp_bias"
    }

    init(from decoder: Decoder) throws {
        common = try CommonConfig(from: decoder, defaults: Self.defaults)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        numKeyValueHeads = try c.decodeIfPresent(Int.self, forKey: .numKeyValueHeads)
        ropeScaling = try c.decodeIfPresent(RopeScalingJSON.self, forKey: .ropeScaling)
        attentionBias = try c.decodeIfPresent(Bool.self, forKey: .attentionBias) ?? attentionBias
        mlpBias = try c.decodeIfPresent(Bool.self, forKey: .mlpBias) ?? mlpBias
    }
}

extension Architecture {
    static let llama = Architecture(
        modelType: "llama",
        ggufName: "llama",
        tensors: TensorNameTable(layer: TensorNameTable.llamaLayer, ggufPermutesQueryKey: true),
        eosPoolingSuffix: { name in name == "meta-llama/Meta-Llama-3-8B" ? "<|end_of_text|>" : " </s>" },
        resolve: { data, file in
            let c = try decodeConfig(LlamaConfig.self, from: data, file: file)
            var config = try c.common.decoderConfig(modelType: "llama", kvHeads: c.numKeyValueHeads ?? c.common.numAttentionHeads, headDim: nil, file: file)
            config.ropeScaling = try c.ropeScaling?.resolve(file: file) ?? .none
            config.attentionBias = c.attentionBias
            config.outputBias = c.attentionBias
            config.mlpBias = c.mlpBias
            return config
        },
        // attention_bias covers o_proj too, so a file with q/k/v biases must have its o_proj bias.
        ggufPlan: { config, _ in config.outputBias = config.attentionBias })
}
