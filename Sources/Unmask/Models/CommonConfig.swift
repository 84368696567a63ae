import UnmaskKernels

/// The keys every Llama-family `config.json` shares. Each architecture passes transformers' own
/// defaults for them (they differ: Qwen2's vocabulary is 151936, Mistral's FFN is 14336, …).
struct CommonConfig {
    var vocabSize: Int
    var hiddenSize: Int
    var intermediateSize: Int
    var numHiddenLayers: Int
    var numAttentionHeads: Int
    var maxPositionEmbeddings: Int
    var hiddenAct = "silu"
    var rmsNormEps: Float = 1e-6
    var tieWordEmbeddings = false
    var ropeTheta: Double = 10000
    var nameOrPath = ""

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case maxPositionEmbeddings = "max_position_embeddings", hiddenAct = "hidden_act", rmsNormEps = "rms_norm_eps"
        case tieWordEmbeddings = "tie_word_embeddings", ropeTheta = "rope_theta", nameOrPath = "_name_or_path"
    }

    /// Reads the shared keys, keeping `defaults` for the absent ones.
    init(from decoder: Decoder, defaults: CommonConfig) throws {
        self = defaults
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func read<T: Decodable>(_ key: CodingKeys, _ value: inout T) throws {
            if let decoded = try c.decodeIfPresent(T.self, forKey: key) { value = decoded }
        }
        try read(.vocabSize, &vocabSize)
        try read(.hiddenSize, &hiddenSize)
        try read(.intermediateSize, &intermediateSize)
        try read(.numHiddenLayers, &numHiddenLayers)
        try read(.numAttentionHeads, &numAttentionHeads)
        try read(.maxPositionEmbeddings, &maxPositionEmbeddings)
        try read(.hiddenAct, &hiddenAct)
        try read(.rmsNormEps, &rmsNormEps)
        try read(.tieWordEmbeddings, &tieWordEmbeddings)
        try read(.ropeTheta, &ropeTheta)
        try read(.nameOrPath, &nameOrPath)
    }

    init(vocabSize: Int, hiddenSize: Int, intermediateSize: Int, numHiddenLayers: Int, numAttentionHeads: Int, maxPositionEmbeddings: Int) {
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.maxPositionEmbeddings = maxPositionEmbeddings
    }

    /// The resolved hyperparameters; architecture-specific ones are filled in by the caller.
    func decoderConfig(modelType: String, kvHeads: Int, headDim: Int?, file: String) throws -> DecoderConfig {
        guard let activation = GatedActivation(huggingFaceName: hiddenAct) else {
            throw UnmaskError.invalidField(file: file, field: "hidden_act", expected: "\"silu\" or \"gelu_pytorch_tanh\", got \"\(hiddenAct)\"")
        }
        var config = DecoderConfig(
            modelType: modelType, hiddenSize: hiddenSize, intermediateSize: intermediateSize, layerCount: numHiddenLayers,
            headCount: numAttentionHeads, kvHeadCount: kvHeads,
            headDim: headDim ?? (numAttentionHeads > 0 ? hiddenSize / numAttentionHeads : 0),
            vocabularySize: vocabSize, rmsNormEps: rmsNormEps, ropeTheta: ropeTheta,
            tieWordEmbeddings: tieWordEmbeddings, maxPositionEmbeddings: maxPositionEmbeddings, nameOrPath: nameOrPath)
        config.activation = activation
        return config
    }
}
