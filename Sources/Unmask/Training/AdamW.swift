import Foundation
import UnmaskKernels

/// AdamW as `torch.optim.AdamW` computes it (decoupled weight decay, bias-corrected moments),
/// over every LoRA tensor.
public final class AdamW: @unchecked Sendable {
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var epsilon: Float = 1e-8
    public var weightDecay: Float
    /// Steps taken; the bias corrections use it.
    public private(set) var step = 0
    /// First and second moments, shaped like the parameters.
    public let firstMoment: LoRATensors
    public let secondMoment: LoRATensors

    public init(like parameters: LoRATensors, weightDecay: Float = 0) {
        self.weightDecay = weightDecay
        firstMoment = LoRATensors(like: parameters)
        secondMoment = LoRATensors(like: parameters)
    }

    /// One update of `parameters` with `gradients` at learning rate `lr`.
    public func update(_ parameters: LoRATensors, gradients: LoRATensors, lr: Float) {
        step += 1
        let correction1 = 1 - Float(pow(Double(beta1), Double(step)))
        let correction2 = 1 - Float(pow(Double(beta2), Double(step)))
        let stepSize = lr / correction1
        let (b1, b2, eps) = (beta1, beta2, epsilon)
        let decay = 1 - lr * weightDecay
        for (p, (g, (m, v))) in zip(parameters.tensors, zip(gradients.tensors, zip(firstMoment.tensors, secondMoment.tensors))) {
            let (pp, gp, mp, vp) = (p.pointer, g.pointer, m.pointer, v.pointer)
            for i in 0..<p.count {
                pp[i] *= decay
                mp[i] = b1 * mp[i] + (1 - b1) * gp[i]
                vp[i] = b2 * vp[i] + (1 - b2) * gp[i] * gp[i]
                // torch: denom = sqrt(v) / sqrt(1 − β2^t) + eps; p −= lr / (1 − β1^t) · m / denom.
                pp[i] -= stepSize * mp[i] / ((vp[i].squareRoot() / correction2.squareRoot()) + eps)
            }
        }
    }

    /// Restores a saved optimizer (moments and step count).
    public func restore(step: Int, firstMoment m: TensorSource, secondMoment v: TensorSource) throws {
        try firstMoment.load(from: m)
        try secondMoment.load(from: v)
        self.step = step
    }
}

extension LoRATensors {
    /// Zeroed tensors of the same shapes.
    public convenience init(like other: LoRATensors) {
        self.init(rank: other.rank, shapes: other.layers.map { $0.map { ($0.inFeatures, $0.outFeatures) } })
    }

    /// Every A and B, layer by layer, A before B.
    public var tensors: [FloatBuffer] { layers.flatMap { $0.flatMap { [$0.a, $0.b] } } }

    /// √(Σ g²) over every tensor, in Double.
    public func globalNorm() -> Double {
        var sum = 0.0
        for t in tensors {
            var partial: Float = 0
            for i in 0..<t.count { partial += t[i] * t[i] }
            sum += Double(partial)
        }
        return sum.squareRoot()
    }

    /// Multiplies every tensor by `factor`.
    public func scale(by factor: Float) {
        for t in tensors { for i in 0..<t.count { t.pointer[i] *= factor } }
    }
}
