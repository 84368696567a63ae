import Foundation
import UnmaskKernels

/// One LoRA pair (or its gradient): A [rank, in] and B [out, rank], PEFT's lora_A / lora_B.
public final class LoRAPair: @unchecked Sendable {
    public let rank: Int, inFeatures: Int, outFeatures: Int
    public let a: FloatBuffer
    public let b: FloatBuffer

    public init(rank: Int, inFeatures: Int, outFeatures: Int) {
        self.rank = rank
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        a = FloatBuffer(count: rank * inFeatures)
        b = FloatBuffer(count: outFeatures * rank)
    }

    func zero() {
        a.pointer.update(repeating: 0, count: a.count)
        b.pointer.update(repeating: 0, count: b.count)
    }
}

/// LoRA tensors for every layer and projection: `layers[l][p.rawValue]`. Holds either the
/// parameters or their gradients.
public final class LoRATensors: @unchecked Sendable {
    public let rank: Int
    public let layers: [[LoRAPair]]

    public convenience init(model: DecoderModel, rank: Int) {
        self.init(rank: rank, shapes: model.weights.layers.map { w in
            LoRAProjection.allCases.map { p in (w.linear(p).inFeatures, w.linear(p).outFeatures) }
        })
    }

    /// `shapes[l][p]` = (in, out) of projection p in layer l.
    init(rank: Int, shapes: [[(Int, Int)]]) {
        self.rank = rank
        layers = shapes.map { layer in layer.map { LoRAPair(rank: rank, inFeatures: $0.0, outFeatures: $0.1) } }
    }

    public subscript(layer: Int, projection: LoRAProjection) -> LoRAPair { layers[layer][projection.rawValue] }

    public func zero() { for layer in layers { for pair in layer { pair.zero() } } }

    /// PEFT-style name of a tensor: `layers.{l}.{modulePath}.lora_{A|B}`.
    public static func name(layer: Int, projection: LoRAProjection, isA: Bool) -> String {
        "layers.\(layer).\(projection.modulePath).lora_\(isA ? "A" : "B")"
    }

    /// Copies every tensor from `source`, whose names end with `name(...)` (optionally followed
    /// by `.weight` or `.default.weight`, and preceded by any prefix such as PEFT's
    /// `base_model.model.model.`).
    public func load(from source: TensorSource) throws {
        let names = source.tensorNames
        for (l, layer) in layers.enumerated() {
            for p in LoRAProjection.allCases {
                for isA in [true, false] {
                    let key = Self.name(layer: l, projection: p, isA: isA)
                    let candidates = names.filter { n in
                        [key, key + ".weight", key + ".default.weight"].contains { n == $0 || n.hasSuffix("." + $0) }
                    }
                    guard candidates.count == 1 else {
                        throw UnmaskError.missingTensor(file: "LoRA tensors", name: key + (candidates.isEmpty ? "" : " (\(candidates.count) matches)"))
                    }
                    let tensor = try source.float32(candidates[0])
                    let target = isA ? layer[p.rawValue].a : layer[p.rawValue].b
                    let expected = isA ? [layer[p.rawValue].rank, layer[p.rawValue].inFeatures] : [layer[p.rawValue].outFeatures, layer[p.rawValue].rank]
                    guard tensor.shape == expected else {
                        throw UnmaskError.tensorShapeMismatch(file: "LoRA tensors", name: key, shape: tensor.shape, expected: expected, because: "LoRA rank \(rank)")
                    }
                    target.pointer.update(from: tensor.pointer, count: target.count)
                }
            }
        }
    }
}
