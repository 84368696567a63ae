extension Backward {
    /// For out[n] = silu(g)·u: dGate[n] = dy·u·σ(g)·(1 + g·(1 − σ(g))), dUp[n] = dy·g·σ(g).
    /// Gradients may overwrite gate/up in place (each element is read before it is written), which
    /// saves two activation-sized buffers per layer.
    public static func siluMul(
        dOut: UnsafePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
        dGate: UnsafeMutablePointer<Float>, dUp: UnsafeMutablePointer<Float>, count n: Int
    ) {
        Parallel.chunks(n, minimumPerChunk: 1 << 14) { _, range in
            var i = range.lowerBound
            while i + 16 <= range.upperBound {
                let g = UnsafeRawPointer(gate + i).loadUnaligned(as: SIMD16<Float>.self)
                let u = UnsafeRawPointer(up + i).loadUnaligned(as: SIMD16<Float>.self)
                let dy = UnsafeRawPointer(dOut + i).loadUnaligned(as: SIMD16<Float>.self)
                let s = 1 / (1 + FastMath.exp(-g))
                let silu = g * s
                UnsafeMutableRawPointer(dGate + i).storeBytes(of: dy * u * (s + silu * (1 - s)), as: SIMD16<Float>.self)
                UnsafeMutableRawPointer(dUp + i).storeBytes(of: dy * silu, as: SIMD16<Float>.self)
                i += 16
            }
            while i < range.upperBound {
                let g = gate[i], u = up[i], dy = dOut[i]
                let s = 1 / (1 + FastMath.exp(-g))
                dGate[i] = dy * u * (s + g * s * (1 - s))
                dUp[i] = dy * g * s
                i += 1
            }
        }
    }
}
