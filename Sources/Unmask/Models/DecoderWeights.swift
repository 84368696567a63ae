/// A linear layer's weight [out, in] and optional bias [out].
public struct Linear: Sendable {
    public let weight: WeightTensor
    public let bias: WeightTensor?
    public var outFeatures: Int { weight.shape[0] }
    public var inFeatures: Int { weight.shape[1] }
}

/// One decoder block's weights, named after their Hugging Face modules.
public struct DecoderLayerWeights: Sendable {
    public let inputLayernorm: WeightTensor
    public let qProj, kProj, vProj, oProj: Linear
    public let postAttentionLayernorm: WeightTensor
    public let gateProj, upProj, downProj: Linear

    /// The linear layers by PEFT's `target_modules` names.
    public var linears: [String: Linear] {
        ["q_proj": qProj, "k_proj": kProj, "v_proj": vProj, "o_proj": oProj,
         "gate_proj": gateProj, "up_proj": upProj, "down_proj": downProj]
    }
}

/// All weights of a Llama-family decoder, read by Hugging Face tensor names from any `TensorSource`.
public struct DecoderWeights: Sendable {
    public let embedTokens: WeightTensor
    public let layers: [DecoderLayerWeights]
    public let norm: WeightTensor

    /// Loads and shape-checks every tensor the encoder needs. Accepts both `model.`-prefixed names
    /// (`LlamaForCausalLM` checkpoints) and bare ones (`LlamaModel` / llm2vec `...BiModel` saves).
    /// `configName` says where the hyperparameters came from, for shape errors.
    public static func load(from source: TensorSource, config c: DecoderConfig, configName: String = "config.json") throws -> DecoderWeights {
        let prefix = source.info("model.embed_tokens.weight") != nil ? "model." : ""
        func tensor(_ name: String, _ expected: [Int], _ because: @autoclosure () -> String) throws -> WeightTensor {
            let full = prefix + name
            guard let info = source.info(full) else {
                throw UnmaskError.missingTensor(file: source.tensorNames.isEmpty ? "weights" : (source.info(source.tensorNames[0])?.file ?? "weights"), name: full)
            }
            guard info.shape == expected else {
                throw UnmaskError.tensorShapeMismatch(file: info.file, name: full, shape: info.shape, expected: expected, because: "from \(configName): " + because())
            }
            return try source.float32(full)
        }
        func linear(_ name: String, out: Int, in inFeatures: Int, bias: Bool, _ because: String) throws -> Linear {
            Linear(weight: try tensor(name + ".weight", [out, inFeatures], because),
                   bias: bias ? try tensor(name + ".bias", [out], because) : nil)
        }
        let h = c.hiddenSize, f = c.intermediateSize
        let heads = "hidden_size=\(h), num_attention_heads=\(c.headCount), num_key_value_heads=\(c.kvHeadCount), head_dim=\(c.headDim)"
        let embed = try tensor("embed_tokens.weight", [c.vocabularySize, h], "vocab_size=\(c.vocabularySize), hidden_size=\(h)")
        var layers: [DecoderLayerWeights] = []
        layers.reserveCapacity(c.layerCount)
        for i in 0..<c.layerCount {
            let p = "layers.\(i)."
            layers.append(DecoderLayerWeights(
                inputLayernorm: try tensor(p + "input_layernorm.weight", [h], "hidden_size=\(h)"),
                qProj: try linear(p + "self_attn.q_proj", out: c.qDim, in: h, bias: c.attentionBias, heads),
                kProj: try linear(p + "self_attn.k_proj", out: c.kvDim, in: h, bias: c.attentionBias, heads),
                vProj: try linear(p + "self_attn.v_proj", out: c.kvDim, in: h, bias: c.attentionBias, heads),
                oProj: try linear(p + "self_attn.o_proj", out: h, in: c.qDim, bias: c.attentionBias && c.modelType != "qwen2", heads),
                postAttentionLayernorm: try tensor(p + "post_attention_layernorm.weight", [h], "hidden_size=\(h)"),
                gateProj: try linear(p + "mlp.gate_proj", out: f, in: h, bias: c.mlpBias, "intermediate_size=\(f), hidden_size=\(h)"),
                upProj: try linear(p + "mlp.up_proj", out: f, in: h, bias: c.mlpBias, "intermediate_size=\(f), hidden_size=\(h)"),
                downProj: try linear(p + "mlp.down_proj", out: h, in: f, bias: c.mlpBias, "intermediate_size=\(f), hidden_size=\(h)")))
        }
        let norm = try tensor("norm.weight", [h], "hidden_size=\(h)")
        return DecoderWeights(embedTokens: embed, layers: layers, norm: norm)
    }

    /// Number of float32 values the encoder holds (embedding, norms, projections and biases).
    public var floatCount: Int {
        layers.reduce(embedTokens.count + norm.count) { total, layer in
            total + layer.inputLayernorm.count + layer.postAttentionLayernorm.count
                + layer.linears.values.reduce(0) { $0 + $1.weight.count + ($1.bias?.count ?? 0) }
        }
    }

    /// The output projection [vocab, hidden]: `lm_head.weight`, or the embedding when tied (or when
    /// the checkpoint has no separate head, as tied GGUF files do). Only next-token prediction
    /// needs it, so encoders never load it.
    public func lmHead(from source: TensorSource, config c: DecoderConfig, configName: String = "config.json") throws -> WeightTensor {
        guard !c.tieWordEmbeddings, let info = source.info("lm_head.weight") else { return embedTokens }
        guard info.shape == [c.vocabularySize, c.hiddenSize] else {
            throw UnmaskError.tensorShapeMismatch(file: info.file, name: "lm_head.weight", shape: info.shape,
                                                  expected: [c.vocabularySize, c.hiddenSize], because: "from \(configName): vocab_size, hidden_size")
        }
        return try source.float32("lm_head.weight")
    }
}
