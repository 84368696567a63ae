/// `config.json` of `model_type` "qwen2", with transformers' `Qwen2Config` defaults. Qwen2 always
/// has q/k/v biases and no o_proj bias.
struct Qwen2Config: Decodable {
    var vocabSize = 151936
    var hiddenSize = 4096
    var intermediateSize = 22016
    var numHiddenLayers = 32
    var numAttentionHeads = 32
    var numKeyValueHeads = 32
    var hiddenAct = "silu"
    var maxPositionEmbeddings = 32768
    var rmsNormEps: Float = 1e-6
    var tieWordEmbeddings = false
    var ropeTheta: Double = 10000
    var useSlidingWindow = false
    var slidingWindow = 4096
    var nameOrPath = ""

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads", hiddenAct = "hidden_act"
        case maxPositionEmbeddings = "max_position_embeddings", rmsNormEps = "rms_norm_eps"
        case tieWordEmbeddings = "tie_word_embeddings", ropeTheta = "rope_theta"
        case useSlidingWindow = "use_sliding_window", slidingWindow = "sliding_window", nameOrPath = "_name_or_path"
    }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? vocabSize
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? hiddenSize
        intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? intermediateSize
        numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? numHiddenLayers
        numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? numAttentionHeads
        numKeyValueHeads = try c.decodeIfPresent(Int.self, forKey: .numKeyValueHeads) ?? numKeyValueHeads
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? hiddenAct
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? maxPositionEmbeddings
        rmsNormEps = try c.decodeIfPresent(Float.self, forKey: .rmsNormEps) ?? rmsNormEps
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? tieWordEmbeddings
        ropeTheta = try c.decodeIfPresent(Double.self, forKey: .ropeTheta) ?? ropeTheta
        useSlidingWindow = try c.decodeIfPresent(Bool.self, forKey: .useSlidingWindow) ?? useSlidingWindow
        slidingWindow = try c.decodeIfPresent(Int.self, forKey: .slidingWindow) ?? slidingWindow
        nameOrPath = try c.decodeIfPresent(String.self, forKey: .nameOrPath) ?? nameOrPath
    }
}

extension Architecture {
    static let qwen2 = Architecture(
        modelType: "qwen2",
        eosPoolingSuffix: { _ in "<|endoftext|>" },
        resolve: { data, file in
            let c = try decodeConfig(Qwen2Config.self, from: data, file: file)
            try requireSiLU(c.hiddenAct, file: file)
            return DecoderConfig(
                modelType: "qwen2", hiddenSize: c.hiddenSize, intermediateSize: c.intermediateSize,
                layerCount: c.numHiddenLayers, headCount: c.numAttentionHeads, kvHeadCount: c.numKeyValueHeads,
                headDim: c.numAttentionHeads > 0 ? c.hiddenSize / c.numAttentionHeads : 0,
                vocabularySize: c.vocabSize, rmsNormEps: c.rmsNormEps, ropeTheta: c.ropeTheta, ropeScaling: .none,
                attentionBias: true, mlpBias: false, tieWordEmbeddings: c.tieWordEmbeddings,
                maxPositionEmbeddings: c.maxPositionEmbeddings,
                slidingWindow: c.useSlidingWindow ? c.slidingWindow : nil, nameOrPath: c.nameOrPath)
        })
}
