/// The element-wise and row-wise kernels of a decoder layer, over flat row-major buffers.
/// Each has a plain twin in `ReferenceKernels` that the tests compare it with.
public enum Kernels {
    /// out[rows, n] = x[rows, k] · w[n, k]ᵀ + bias[n]: a PyTorch `nn.Linear` on row-major data.
    public static func linear(
        _ x: UnsafePointer<Float>, rows: Int, inFeatures k: Int,
        weight: UnsafePointer<Float>, outFeatures n: Int, bias: UnsafePointer<Float>?,
        out: UnsafeMutablePointer<Float>, accumulate: Bool = false
    ) {
        if let bias, !accumulate {
            for r in 0..<rows { (out + r * n).update(from: bias, count: n) }
            BLAS.sgemm(transposeA: false, transposeB: true, m: rows, n: n, k: k, a: x, lda: k, b: weight, ldb: k, beta: 1, c: out, ldc: n)
        } else {
            BLAS.sgemm(transposeA: false, transposeB: true, m: rows, n: n, k: k, a: x, lda: k, b: weight, ldb: k, beta: accumulate ? 1 : 0, c: out, ldc: n)
            if let bias { addBias(out, rows: rows, columns: n, bias: bias) }
        }
    }

    /// out[r, j] += bias[j] for every row.
    public static func addBias(_ out: UnsafeMutablePointer<Float>, rows: Int, columns n: Int, bias: UnsafePointer<Float>) {
        for r in 0..<rows { let o = out + r * n; for j in 0..<n { o[j] += bias[j] } }
    }

    /// out[rows, dim] = x / sqrt(mean(x²) + eps) · weight; also writes 1/rms per row when asked
    /// (the backward pass needs it).
    public static func rmsNorm(
        _ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, rows: Int, dim: Int, eps: Float,
        out: UnsafeMutablePointer<Float>, inverseRMS: UnsafeMutablePointer<Float>? = nil
    ) {
        Parallel.chunks(rows, minimumPerChunk: 64) { _, range in
            for r in range {
                let xr = x + r * dim, yr = out + r * dim
                var acc = SIMD16<Float>()
                var i = 0
                while i + 16 <= dim {
                    let v = UnsafeRawPointer(xr + i).loadUnaligned(as: SIMD16<Float>.self)
                    acc += v * v
                    i += 16
                }
                var sum = acc.sum()
                while i < dim { sum += xr[i] * xr[i]; i += 1 }
                let inv = 1 / (sum / Float(dim) + eps).squareRoot()
                inverseRMS?[r] = inv
                for j in 0..<dim { yr[j] = weight[j] * (xr[j] * inv) }
            }
        }
    }

    /// Rotary position embedding in Hugging Face's split-half layout, in place: for each head,
    /// element i pairs with element i + headDim/2. `cos`/`sin` are [positions, headDim/2] tables
    /// and `positions[t]` gives token t's row in them.
    public static func rope(
        _ x: UnsafeMutablePointer<Float>, tokens: Int, heads: Int, headDim: Int,
        positions: UnsafePointer<Int32>, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>,
        inverse: Bool = false
    ) {
        let half = headDim / 2
        let stride = heads * headDim
        Parallel.chunks(tokens, minimumPerChunk: 64) { _, range in
            for t in range {
                let c = cos + Int(positions[t]) * half, s = sin + Int(positions[t]) * half
                for h in 0..<heads {
                    let v = x + t * stride + h * headDim
                    for i in 0..<half {
                        let a = v[i], b = v[i + half]
                        let si = inverse ? -s[i] : s[i]
                        v[i] = a * c[i] - b * si
                        v[i + half] = b * c[i] + a * si
                    }
                }
            }
        }
    }

    /// out = silu(gate) · up, element-wise (Llama's SwiGLU), with silu(x) = x / (1 + e^-x).
    public static func siluMul(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, count n: Int) {
        Parallel.chunks(n, minimumPerChunk: 1 << 14) { _, range in
            var i = range.lowerBound
            while i + 16 <= range.upperBound {
                let g = UnsafeRawPointer(gate + i).loadUnaligned(as: SIMD16<Float>.self)
                let u = UnsafeRawPointer(up + i).loadUnaligned(as: SIMD16<Float>.self)
                let y = g / (1 + FastMath.exp(-g)) * u
                UnsafeMutableRawPointer(out + i).storeBytes(of: y, as: SIMD16<Float>.self)
                i += 16
            }
            while i < range.upperBound {
                out[i] = gate[i] / (1 + FastMath.exp(-gate[i])) * up[i]
                i += 1
            }
        }
    }

    /// x += y over n floats (the residual connections).
    public static func addInPlace(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count n: Int) {
        Parallel.chunks(n, minimumPerChunk: 1 << 15) { _, range in
            for i in range { x[i] += y[i] }
        }
    }

    /// Softmax of row[lo..<hi] in place, zero elsewhere in row[0..<length]. A row with no allowed
    /// entry becomes uniform over the whole row: that is what adding the dtype's minimum to every
    /// score gives in PyTorch, and it keeps such rows finite.
    @inline(__always)
    public static func maskedSoftmax(_ row: UnsafeMutablePointer<Float>, length: Int, allowed: Range<Int>) {
        if allowed.isEmpty {
            row.update(repeating: 1 / Float(length), count: length)
            return
        }
        let first = row + allowed.lowerBound
        let maxValue = FastMath.maximum(first, count: allowed.count)
        let sum = FastMath.expShifted(first, count: allowed.count, shift: maxValue)
        FastMath.scale(first, count: allowed.count, by: 1 / sum)
        if allowed.lowerBound > 0 { row.update(repeating: 0, count: allowed.lowerBound) }
        if allowed.upperBound < length { (row + allowed.upperBound).update(repeating: 0, count: length - allowed.upperBound) }
    }
}
