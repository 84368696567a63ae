/// `config.json` of `model_type` "mistral", with transformers' `MistralConfig` defaults.
struct MistralConfig: Decodable {
    var vocabSize = 32000
    var hiddenSize = 4096
    var intermediateSize = 14336
    var numHiddenLayers = 32
    var numAttentionHeads = 32
    var numKeyValueHeads = 8
    var headDim: Int?
    var hiddenAct = "silu"
    var maxPositionEmbeddings = 4096 * 32
    var rmsNormEps: Float = 1e-6
    var tieWordEmbeddings = false
    var ropeTheta: Double = 10000
    var slidingWindow: Int? = 4096
    var nameOrPath = ""

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads", headDim = "head_dim", hiddenAct = "hidden_act"
        case maxPositionEmbeddings = "max_position_embeddings", rmsNormEps = "rms_norm_eps"
        case tieWordEmbeddings = "tie_word_embeddings", ropeTheta = "rope_theta"
        case slidingWindow = "sliding_window", nameOrPath = "_name_or_path"
    }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? vocabSize
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? hiddenSize
        intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? intermediateSize
        numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? numHiddenLayers
        numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? numAttentionHeads
        numKeyValueHeads = try c.decodeIfPresent(Int.self, forKey: .numKeyValueHeads) ?? numKeyValueHeads
        headDim = try c.decodeIfPresent(Int.self, forKey: .headDim)
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? hiddenAct
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? maxPositionEmbeddings
        rmsNormEps = try c.decodeIfPresent(Float.self, forKey: .rmsNormEps) ?? rmsNormEps
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? tieWordEmbeddings
        ropeTheta = try c.decodeIfPresent(Double.self, forKey: .ropeTheta) ?? ropeTheta
        // An explicit null turns the window off; a missing key keeps the default.
        slidingWindow = c.contains(.slidingWindow) ? try c.decodeIfPresent(Int.self, forKey: .slidingWindow) : slidingWindow
        nameOrPath = try c.decodeIfPresent(String.self, forKey: .nameOrPath) ?? nameOrPath
    }
}

extension Architecture {
    static let mistral = Architecture(
        modelType: "mistral",
        eosPoolingSuffix: { _ in " </s>" },
        resolve: { data, file in
            let c = try decodeConfig(MistralConfig.self, from: data, file: file)
            try requireSiLU(c.hiddenAct, file: file)
            return DecoderConfig(
                modelType: "mistral", hiddenSize: c.hiddenSize, intermediateSize: c.intermediateSize,
                layerCount: c.numHiddenLayers, headCount: c.numAttentionHeads, kvHeadCount: c.numKeyValueHeads,
                headDim: c.headDim ?? (c.numAttentionHeads > 0 ? c.hiddenSize / c.numAttentionHeads : 0),
                vocabularySize: c.vocabSize, rmsNormEps: c.rmsNormEps, ropeTheta: c.ropeTheta, ropeScaling: .none,
                attentionBias: false, mlpBias: false, tieWordEmbeddings: c.tieWordEmbeddings,
                maxPositionEmbeddings: c.maxPositionEmbeddings, slidingWindow: c.slidingWindow, nameOrPath: c.nameOrPath)
        })
}
