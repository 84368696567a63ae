/// The activation of a gated MLP: out = act(gate) · up. Llama, Mistral and Qwen use SiLU
/// (SwiGLU); Gemma uses GELU with the tanh approximation (`gelu_pytorch_tanh`, GeGLU).
public enum GatedActivation: String, Sendable, CaseIterable {
    case silu
    case geluTanh = "gelu_pytorch_tanh"

    /// The activation named by config.json's `hidden_act` / `hidden_activation`.
    public init?(huggingFaceName name: String) {
        switch name {
        case "silu", "swish": self = .silu
        // transformers maps both to the tanh approximation for Gemma (`gelu` with a warning).
        case "gelu_pytorch_tanh", "gelu_new", "gelu_fast": self = .geluTanh
        default: return nil
        }
    }
}

extension Kernels {
    /// out = act(gate) · up over n floats; `out` may be `gate`.
    public static func gatedActivation(_ activation: GatedActivation, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
                                       out: UnsafeMutablePointer<Float>, count n: Int) {
        switch activation {
        case .silu: siluMul(gate: gate, up: up, out: out, count: n)
        case .geluTanh: geluTanhMul(gate: gate, up: up, out: out, count: n)
        }
    }

    /// out = gelu_tanh(gate) · up, with gelu_tanh(x) = ½·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))),
    /// PyTorch's `gelu(approximate="tanh")`; tanh(z) = 1 − 2 / (1 + e^{2z}) stays finite for any z.
    public static func geluTanhMul(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, count n: Int) {
        Parallel.chunks(n, minimumPerChunk: 1 << 14) { _, range in
            var i = range.lowerBound
            while i + 16 <= range.upperBound {
                let g = UnsafeRawPointer(gate + i).loadUnaligned(as: SIMD16<Float>.self)
                let u = UnsafeRawPointer(up + i).loadUnaligned(as: SIMD16<Float>.self)
                UnsafeMutableRawPointer(out + i).storeBytes(of: GeluTanh.value(g) * u, as: SIMD16<Float>.self)
                i += 16
            }
            while i < range.upperBound {
                out[i] = GeluTanh.value(SIMD16<Float>(repeating: gate[i]))[0] * up[i]
                i += 1
            }
        }
    }
}

/// GELU's tanh approximation and its derivative, 16 lanes at a time.
enum GeluTanh {
    static let beta: Float = 0.797_884_560_802_865_4  // √(2/π)
    static let kappa: Float = 0.044715

    @inline(__always)
    static func tanhOfInner(_ x: SIMD16<Float>) -> SIMD16<Float> {
        let cube: SIMD16<Float> = x * x * x
        let inner: SIMD16<Float> = beta * (x + kappa * cube)
        let e: SIMD16<Float> = FastMath.exp(2 * inner)
        return 1 - 2 / (1 + e)
    }

    @inline(__always)
    static func value(_ x: SIMD16<Float>) -> SIMD16<Float> {
        let t: SIMD16<Float> = tanhOfInner(x)
        return 0.5 * x * (1 + t)
    }

    /// d gelu_tanh / dx = ½(1 + t) + ½·x·(1 − t²)·√(2/π)·(1 + 3·0.044715·x²).
    @inline(__always)
    static func derivative(_ x: SIMD16<Float>) -> SIMD16<Float> {
        let t: SIMD16<Float> = tanhOfInner(x)
        let slope: SIMD16<Float> = beta * (1 + 3 * kappa * x * x)
        let left: SIMD16<Float> = 0.5 * (1 + t)
        let right: SIMD16<Float> = 0.5 * x * (1 - t * t) * slope
        return left + right
    }
}
