import UnmaskKernels

/// Float32 tensors held in memory under Hugging Face names: random models for benchmarks and tests.
public struct InMemoryTensors: TensorSource, @unchecked Sendable {
    public private(set) var tensors: [String: WeightTensor] = [:]

    public init() {}

    public mutating func set(_ name: String, _ tensor: WeightTensor) { tensors[name] = tensor }

    public var tensorNames: [String] { tensors.keys.sorted() }
    public func info(_ name: String) -> TensorInfo? { tensors[name].map { TensorInfo(dtype: .f32, shape: $0.shape, file: "memory") } }
    public func float32(_ name: String) throws -> WeightTensor {
        guard let tensor = tensors[name] else { throw UnmaskError.missingTensor(file: "memory", name: name) }
        return tensor
    }

    /// Every weight of a decoder with `config`'s shapes, uniform in ±scale (norm weights near 1),
    /// from a fixed seed.
    public static func random(config c: DecoderConfig, seed: UInt64, scale: Float = 0.05) -> InMemoryTensors {
        var generator = SplitMix64(seed: seed)
        func tensor(_ shape: [Int], around center: Float = 0, scale: Float = scale) -> WeightTensor {
            let count = shape.reduce(1, *)
            let buffer = FloatBuffer(count: count)
            for i in 0..<count {
                // The top 24 bits → uniform float in [-1, 1).
                buffer[i] = center + scale * (Float(generator.next() >> 40) / Float(1 << 23) - 1)
            }
            return WeightTensor(buffer: buffer, shape: shape)
        }
        var out = InMemoryTensors()
        let h = c.hiddenSize, f = c.intermediateSize
        out.set("model.embed_tokens.weight", tensor([c.vocabularySize, h], scale: 1))
        for i in 0..<c.layerCount {
            let p = "model.layers.\(i)."
            out.set(p + "input_layernorm.weight", tensor([h], around: 1, scale: 0.1))
            out.set(p + "post_attention_layernorm.weight", tensor([h], around: 1, scale: 0.1))
            for (name, rows, cols) in [("q_proj", c.qDim, h), ("k_proj", c.kvDim, h), ("v_proj", c.kvDim, h), ("o_proj", h, c.qDim)] {
                out.set(p + "self_attn.\(name).weight", tensor([rows, cols]))
                if c.attentionBias && (name != "o_proj" || c.modelType != "qwen2") { out.set(p + "self_attn.\(name).bias", tensor([rows])) }
            }
            for (name, rows, cols) in [("gate_proj", f, h), ("up_proj", f, h), ("down_proj", h, f)] {
                out.set(p + "mlp.\(name).weight", tensor([rows, cols]))
                if c.mlpBias { out.set(p + "mlp.\(name).bias", tensor([rows])) }
            }
        }
        out.set("model.norm.weight", tensor([h], around: 1, scale: 0.1))
        return out
    }
}
