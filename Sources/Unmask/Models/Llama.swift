/// `config.json` of `model_type` "llama" (Llama 2 and 3, SmolLM, TinyLlama), with transformers'
/// `LlamaConfig` defaults.
struct LlamaConfig: Decodable {
    var vocabSize = 32000
    var hiddenSize = 4096
    var intermediateSize = 11008
    var numHiddenLayers = 32
    var numAttentionHeads = 32
    var numKeyValueHeads: Int?
    var hiddenAct = "silu"
    var maxPositionEmbeddings = 2048
    var rmsNormEps: Float = 1e-6
    var tieWordEmbeddings = false
    var ropeTheta: Double = 10000
    var ropeScaling: RopeScalingJSON?
    var attentionBias = false
    var mlpBias = false
    var nameOrPath = ""

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads", hiddenAct = "hidden_act"
        case maxPositionEmbeddings = "max_position_embeddings", rmsNormEps = "rms_norm_eps"
        case tieWordEmbeddings = "tie_word_embeddings", ropeTheta = "rope_theta", ropeScaling = "rope_scaling"
        case attentionBias = "attention_bias", mlpBias = "mlp_bias", nameOrPath = "_name_or_path"
    }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? vocabSize
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? hiddenSize
        intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? intermediateSize
        numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? numHiddenLayers
        numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? numAttentionHeads
        numKeyValueHeads = try c.decodeIfPresent(Int.self, forKey: .numKeyValueHeads)
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? hiddenAct
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? maxPositionEmbeddings
        rmsNormEps = try c.decodeIfPresent(Float.self, forKey: .rmsNormEps) ?? rmsNormEps
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? tieWordEmbeddings
        ropeTheta = try c.decodeIfPresent(Double.self, forKey: .ropeTheta) ?? ropeTheta
        ropeScaling = try c.decodeIfPresent(RopeScalingJSON.self, forKey: .ropeScaling)
        attentionBias = try c.decodeIfPresent(Bool.self, forKey: .attentionBias) ?? attentionBias
        mlpBias = try c.decodeIfPresent(Bool.self, forKey: .mlpBias) ?? mlpBias
        nameOrPath = try c.decodeIfPresent(String.self, forKey: .nameOrPath) ?? nameOrPath
    }
}

extension Architecture {
    static let llama = Architecture(
        modelType: "llama",
        eosPoolingSuffix: { name in name == "meta-llama/Meta-Llama-3-8B" ? "<|end_of_text|>" : " </s>" },
        resolve: { data, file in
            let c = try decodeConfig(LlamaConfig.self, from: data, file: file)
            try requireSiLU(c.hiddenAct, file: file)
            return DecoderConfig(
                modelType: "llama", hiddenSize: c.hiddenSize, intermediateSize: c.intermediateSize,
                layerCount: c.numHiddenLayers, headCount: c.numAttentionHeads,
                kvHeadCount: c.numKeyValueHeads ?? c.numAttentionHeads,
                headDim: c.numAttentionHeads > 0 ? c.hiddenSize / c.numAttentionHeads : 0,
                vocabularySize: c.vocabSize, rmsNormEps: c.rmsNormEps, ropeTheta: c.ropeTheta,
                ropeScaling: try c.ropeScaling?.resolve(file: file) ?? .none,
                attentionBias: c.attentionBias, mlpBias: c.mlpBias, tieWordEmbeddings: c.tieWordEmbeddings,
                maxPositionEmbeddings: c.maxPositionEmbeddings, slidingWindow: nil, nameOrPath: c.nameOrPath)
        })
}
