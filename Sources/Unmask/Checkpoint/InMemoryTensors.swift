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
        let table = Architecture.of(c).tensors
        // Norm factors near 1, stored as the architecture stores them.
        let normCenter = 1 - table.hfNormOffset
        out.set(TensorNameTable.embedding.hf, tensor([c.vocabularySize, c.hiddenSize], scale: 1))
        for i in 0..<c.layerCount {
            for role in table.layerTensors {
                let shape = table.shape(role, config: c).shape
                if role.isNorm {
                    out.set(table.hfName(layer: i, role), tensor(shape, around: normCenter, scale: 0.1))
                } else {
                    out.set(table.hfName(layer: i, role), tensor(shape))
                    if table.hasBias(role, config: c) { out.set(table.hfName(layer: i, role, bias: true), tensor([shape[0]])) }
                }
            }
        }
        out.set(TensorNameTable.finalNorm.hf, tensor([c.hiddenSize], around: normCenter, scale: 0.1))
        return out
    }
}
