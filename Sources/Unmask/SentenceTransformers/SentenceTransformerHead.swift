import Foundation
import UnmaskKernels

/// What sentence-transformers does to a pooled vector: its Dense modules in order, then
/// Normalize; and Matryoshka truncation to `dimensions`, before normalizing, so the shorter
/// vector is unit length whenever the model's is.
public final class SentenceTransformerHead: @unchecked Sendable {
    struct DenseLayer: @unchecked Sendable {
        let weight: WeightTensor
        let bias: WeightTensor?
        let activation: SentenceTransformerConfig.Dense.Activation
    }

    let layers: [DenseLayer]
    public let normalize: Bool
    /// Output size after Dense modules, before truncation.
    public let fullDimension: Int
    /// Output size after Matryoshka truncation.
    public let dimension: Int

    /// Reads each Dense module's `model.safetensors` (`linear.weight` [out, in], `linear.bias`
    /// [out]). A model without sentence-transformers files gets the identity head, normalizing
    /// and truncating only as asked.
    public init(folder: URL, config: SentenceTransformerConfig, inputDimension: Int, normalize extraNormalize: Bool, dimensions: Int?) throws {
        var layers: [DenseLayer] = []
        var width = inputDimension
        for dense in config.dense {
            let url = folder.appendingPathComponent(dense.path).appendingPathComponent("model.safetensors")
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw UnmaskError.fileNotFound(path: url.path, what: "the Dense module's weights (model.safetensors with linear.weight)")
            }
            guard dense.inFeatures == width else {
                throw UnmaskError.invalidField(file: folder.appendingPathComponent(dense.path).appendingPathComponent("config.json").path,
                                               field: "in_features", expected: "\(width), the size of the vector it receives")
            }
            let file = try SafeTensorsFile(path: url.path)
            func tensor(_ name: String, _ shape: [Int]) throws -> WeightTensor {
                guard let info = file.info(name) else { throw UnmaskError.missingTensor(file: url.path, name: name) }
                guard info.shape == shape else {
                    throw UnmaskError.tensorShapeMismatch(file: url.path, name: name, shape: info.shape, expected: shape, because: "in_features/out_features of config.json")
                }
                return try file.float32(name)
            }
            layers.append(DenseLayer(weight: try tensor("linear.weight", [dense.outFeatures, dense.inFeatures]),
                                     bias: dense.bias ? try tensor("linear.bias", [dense.outFeatures]) : nil,
                                     activation: dense.activation))
            width = dense.outFeatures
        }
        self.layers = layers
        fullDimension = width
        if let dimensions {
            guard dimensions >= 1, dimensions <= width else {
                throw UnmaskError.invalidInput(source: "options", reason: "--dimensions must be from 1 to the model's output size \(width), got \(dimensions)")
            }
        }
        dimension = dimensions ?? width
        normalize = config.normalize || extraNormalize
    }

    init(layers: [DenseLayer], normalize: Bool, fullDimension: Int, dimension: Int) {
        self.layers = layers
        self.normalize = normalize
        self.fullDimension = fullDimension
        self.dimension = dimension
    }

    /// The same Dense modules with other output settings (`normalize` adds to the model's own Normalize).
    func with(dimensions: Int?, normalize extraNormalize: Bool, modelNormalizes: Bool) throws -> SentenceTransformerHead {
        if let dimensions, !(1...fullDimension).contains(dimensions) {
            throw UnmaskError.invalidInput(source: "options", reason: "--dimensions must be from 1 to the model's output size \(fullDimension), got \(dimensions)")
        }
        return SentenceTransformerHead(layers: layers, normalize: modelNormalizes || extraNormalize, fullDimension: fullDimension,
                                       dimension: dimensions ?? fullDimension)
    }

    /// Whether the head changes pooled vectors beyond scaling them (training must back-propagate it).
    public var hasDenseLayers: Bool { !layers.isEmpty }

    /// Applies the head to `count` pooled rows [count, inputDimension] → [count][dimension].
    public func apply(_ pooled: [Float], count: Int) -> [[Float]] {
        let outputs = denseForward(FloatBuffer(pooled), count: count)
        let last = outputs.last!, width = last.count / max(count, 1)
        return (0..<count).map { row in
            Self.finish(Array(UnsafeBufferPointer(start: last.pointer + row * width, count: width)), dimensions: dimension, normalize: normalize)
        }
    }

    // MARK: Dense modules, forward and backward

    /// x [count, in] through every Dense module: [x, y₁, …, y_last], each y = act(x·Wᵀ + b).
    public func denseForward(_ x: FloatBuffer, count: Int) -> [FloatBuffer] {
        var outputs = [x]
        for layer in layers {
            let input = outputs.last!, out = layer.weight.shape[0]
            let y = FloatBuffer(count: count * out)
            Kernels.linear(input.pointer, rows: count, inFeatures: layer.weight.shape[1], weight: layer.weight.pointer, outFeatures: out,
                           bias: layer.bias.map { UnsafePointer($0.pointer) }, out: y.pointer)
            if layer.activation == .tanh { for i in 0..<y.count { y[i] = Foundation.tanh(y[i]) } }
            outputs.append(y)
        }
        return outputs
    }

    /// Given dLoss/d(last output) [count, out], dLoss/dx [count, in] through the frozen modules
    /// (tanh' = 1 − y²), from `denseForward`'s outputs.
    public func denseBackward(_ dOut: FloatBuffer, outputs: [FloatBuffer], count: Int) -> FloatBuffer {
        var gradient = dOut
        for (index, layer) in layers.enumerated().reversed() {
            if layer.activation == .tanh {
                let y = outputs[index + 1]
                for i in 0..<gradient.count { gradient[i] *= 1 - y[i] * y[i] }
            }
            let input = FloatBuffer(count: count * layer.weight.shape[1])
            Backward.linear(dOut: gradient.pointer, rows: count, outFeatures: layer.weight.shape[0], weight: layer.weight.pointer,
                            inFeatures: layer.weight.shape[1], dInput: input.pointer)
            gradient = input
        }
        return gradient
    }

    /// Keeps the first `dimensions` values, then L2-normalizes when asked, as
    /// torch.nn.functional.normalize does (x / max(‖x‖, 1e-12)). The server finishes its
    /// per-request `dimensions` / `normalize` with the same arithmetic.
    public static func finish(_ vector: [Float], dimensions: Int?, normalize: Bool) -> [Float] {
        var out = dimensions.map { Array(vector.prefix($0)) } ?? vector
        if normalize {
            let norm = max(out.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot(), 1e-12)
            out = out.map { Float(Double($0) / norm) }
        }
        return out
    }
}
