/// Inverted dropout whose mask is a pure function of (seed, element index): each element is kept
/// with probability 1 − p and then scaled by 1/(1 − p), as `torch.nn.Dropout` does in training.
///
/// A counter-based mask instead of a stream: the backward recomputes activations layer by layer
/// (gradient checkpointing) and must see exactly the masks the forward used, in whatever order
/// and on whatever thread it asks for them, and a resumed run must repeat them.
public struct Dropout: Sendable, Equatable {
    public let probability: Float
    public let seed: UInt64
    /// Elements whose 24-bit hash falls below this are dropped.
    private let threshold: UInt32
    private let keptScale: Float

    /// nil when `probability` is 0: no dropout, no work.
    public init?(probability: Float, seed: UInt64) {
        precondition(probability >= 0 && probability < 1, "dropout probability must be in [0, 1)")
        guard probability > 0 else { return nil }
        self.probability = probability
        self.seed = seed
        threshold = UInt32((Double(probability) * Double(1 << 24)).rounded())
        keptScale = 1 / (1 - probability)
    }

    /// The same probability with an independent mask for `stream` (a layer, a site in the layer, a pass).
    public func derived(_ stream: UInt64) -> Dropout {
        Dropout(probability: probability, seed: SplitMix64.derive(seed, stream))!
    }

    /// 0 for a dropped element, 1/(1 − p) for a kept one.
    @inline(__always)
    public func factor(_ index: Int) -> Float {
        let bits = UInt32(truncatingIfNeeded: SplitMix64.mix(seed &+ UInt64(bitPattern: Int64(index)) &* 0x9E37_79B9_7F4A_7C15) >> 40)
        return bits < threshold ? 0 : keptScale
    }

    /// x[i] *= factor(offset + i).
    @inline(__always)
    public func apply(_ x: UnsafeMutablePointer<Float>, count: Int, offset: Int) {
        for i in 0..<count { x[i] *= factor(offset + i) }
    }

    /// out[i] = x[i] · factor(offset + i).
    @inline(__always)
    public func apply(_ x: UnsafePointer<Float>, count: Int, offset: Int, out: UnsafeMutablePointer<Float>) {
        for i in 0..<count { out[i] = x[i] * factor(offset + i) }
    }
}
