import Foundation
import UnmaskKernels

/// The two kernels a BERT layer needs beyond `UnmaskKernels`: LayerNorm (with bias) and the
/// feed-forward activation. `BertReferenceKernels` holds their plain twins for the tests.
public enum BertKernels {
    /// out[rows, dim] = (x − mean) / sqrt(var + eps) · weight + bias, with the biased variance
    /// (PyTorch's `nn.LayerNorm`). `out` may be `x`.
    public static func layerNorm(
        _ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
        rows: Int, dim: Int, eps: Float, out: UnsafeMutablePointer<Float>
    ) {
        Parallel.chunks(rows, minimumPerChunk: 32) { _, range in
            for r in range {
                let xr = x + r * dim, yr = out + r * dim
                var acc = SIMD16<Float>()
                var i = 0
                while i + 16 <= dim {
                    acc += UnsafeRawPointer(xr + i).loadUnaligned(as: SIMD16<Float>.self)
                    i += 16
                }
                var sum = acc.sum()
                while i < dim { sum += xr[i]; i += 1 }
                let mean = sum / Float(dim)
                let meanVector = SIMD16<Float>(repeating: mean)
                acc = SIMD16<Float>()
                i = 0
                while i + 16 <= dim {
                    let d = UnsafeRawPointer(xr + i).loadUnaligned(as: SIMD16<Float>.self) - meanVector
                    acc += d * d
                    i += 16
                }
                var squares = acc.sum()
                while i < dim { let d = xr[i] - mean; squares += d * d; i += 1 }
                let inv = 1 / (squares / Float(dim) + eps).squareRoot()
                for j in 0..<dim { yr[j] = (xr[j] - mean) * inv * weight[j] + bias[j] }
            }
        }
    }

    /// Applies `activation` to `count` floats in place.
    public static func activate(_ x: UnsafeMutablePointer<Float>, count: Int, _ activation: BertActivation) {
        Parallel.chunks(count, minimumPerChunk: 1 << 14) { _, range in
            let p = x + range.lowerBound
            let n = range.count
            switch activation {
            case .geluErf:
                let inverseSqrt2: Float = 0.70710678118654752
                for i in 0..<n { let v = p[i]; p[i] = 0.5 * v * (1 + erf(v * inverseSqrt2)) }
            case .geluTanh:
                let c: Float = 0.79788456080286536  // sqrt(2/π)
                for i in 0..<n { let v = p[i]; p[i] = 0.5 * v * (1 + tanh(c * (v + 0.044715 * v * v * v))) }
            case .relu:
                for i in 0..<n { p[i] = max(p[i], 0) }
            }
        }
    }
}

/// Plain versions of `BertKernels`, in Double, straight from the definitions.
public enum BertReferenceKernels {
    public static func layerNorm(_ x: [Float], weight: [Float], bias: [Float], rows: Int, dim: Int, eps: Float) -> [Float] {
        var out = x
        for r in 0..<rows {
            let row = (0..<dim).map { Double(x[r * dim + $0]) }
            let mean = row.reduce(0, +) / Double(dim)
            let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(dim)
            let inv = 1 / (variance + Double(eps)).squareRoot()
            for i in 0..<dim { out[r * dim + i] = Float((row[i] - mean) * inv * Double(weight[i]) + Double(bias[i])) }
        }
        return out
    }

    public static func activate(_ x: [Float], _ activation: BertActivation) -> [Float] {
        x.map { value in
            let v = Double(value)
            switch activation {
            case .geluErf: return Float(0.5 * v * (1 + erf(v / 2.0.squareRoot())))
            case .geluTanh: return Float(0.5 * v * (1 + tanh((2 / Double.pi).squareRoot() * (v + 0.044715 * v * v * v))))
            case .relu: return Float(max(v, 0))
            }
        }
    }
}
