/// A small, fast, seedable generator (SplitMix64): random weights, sampling in evaluation
/// protocols and randomized tests all need reproducible streams, not cryptographic ones.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        return Self.mix(state)
    }

    /// SplitMix64's output function alone: a bijective avalanche of 64 bits, for hashing counters.
    @inline(__always)
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
}

// Draws written out here rather than taken from the standard library (`Double.random(in:using:)`,
// `shuffled(using:)`), whose algorithms may change between Swift releases: saved seeds (a
// training run's data order, masks and dropout) must keep giving the same draws.
extension SplitMix64 {
    /// A seed for the stream named by `keys` under `base`: each key is mixed in through a
    /// generator step, so neighbouring keys give unrelated streams.
    public static func derive(_ base: UInt64, _ keys: UInt64...) -> UInt64 {
        func step(_ state: UInt64) -> UInt64 {
            var generator = SplitMix64(seed: state)
            return generator.next()
        }
        return keys.reduce(step(base)) { state, key in step(state ^ key) }
    }

    /// Uniform in [0, 1), 53 bits.
    public mutating func unit() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Uniform in 0..<bound, unbiased (Lemire's multiply-and-reject).
    public mutating func below(_ bound: UInt64) -> UInt64 {
        var product = next().multipliedFullWidth(by: bound)
        if product.low < bound {
            let threshold = (0 &- bound) % bound
            while product.low < threshold { product = next().multipliedFullWidth(by: bound) }
        }
        return product.high
    }

    /// Fisher–Yates shuffle of `elements`.
    public mutating func shuffle<T>(_ elements: inout [T]) {
        for i in stride(from: elements.count - 1, to: 0, by: -1) {
            elements.swapAt(i, Int(below(UInt64(i + 1))))
        }
    }
}
