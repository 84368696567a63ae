extension Backward {
    /// Backward of `Kernels.gatedActivation`; gradients may overwrite gate/up in place.
    public static func gatedActivation(
        _ activation: GatedActivation, dOut: UnsafePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
        dGate: UnsafeMutablePointer<Float>, dUp: UnsafeMutablePointer<Float>, count n: Int
    ) {
        switch activation {
        case .silu: siluMul(dOut: dOut, gate: gate, up: up, dGate: dGate, dUp: dUp, count: n)
        case .geluTanh: geluTanhMul(dOut: dOut, gate: gate, up: up, dGate: dGate, dUp: dUp, count: n)
        }
    }

    /// For out[n] = gelu_tanh(g)·u: dGate = dy·u·gelu_tanh'(g), dUp = dy·gelu_tanh(g).
    /// Each element is read before it is written, so gradients may overwrite gate/up.
    public static func geluTanhMul(
        dOut: UnsafePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
        dGate: UnsafeMutablePointer<Float>, dUp: UnsafeMutablePointer<Float>, count n: Int
    ) {
        @inline(__always) func step(_ g: SIMD16<Float>, _ u: SIMD16<Float>, _ dy: SIMD16<Float>) -> (SIMD16<Float>, SIMD16<Float>) {
            (dy * u * GeluTanh.derivative(g), dy * GeluTanh.value(g))
        }
        Parallel.chunks(n, minimumPerChunk: 1 << 14) { _, range in
            var i = range.lowerBound
            while i + 16 <= range.upperBound {
                let (dg, du) = step(UnsafeRawPointer(gate + i).loadUnaligned(as: SIMD16<Float>.self),
                                    UnsafeRawPointer(up + i).loadUnaligned(as: SIMD16<Float>.self),
                                    UnsafeRawPointer(dOut + i).loadUnaligned(as: SIMD16<Float>.self))
                UnsafeMutableRawPointer(dGate + i).storeBytes(of: dg, as: SIMD16<Float>.self)
                UnsafeMutableRawPointer(dUp + i).storeBytes(of: du, as: SIMD16<Float>.self)
                i += 16
            }
            while i < range.upperBound {
                let (dg, du) = step(SIMD16(repeating: gate[i]), SIMD16(repeating: up[i]), SIMD16(repeating: dOut[i]))
                dGate[i] = dg[0]
                dUp[i] = du[0]
                i += 1
            }
        }
    }
}
