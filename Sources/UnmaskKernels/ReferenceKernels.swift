import Foundation

/// Plain, obviously-correct versions of every fast kernel, in Double, for the tests to compare with.
public enum ReferenceKernels {
    /// [rows, n] = x[rows, k] · w[n, k]ᵀ + bias
    public static func linear(_ x: [Float], rows: Int, inFeatures k: Int, weight: [Float], outFeatures n: Int, bias: [Float]?) -> [Float] {
        var out = [Float](repeating: 0, count: rows * n)
        for r in 0..<rows {
            for j in 0..<n {
                var s = Double(bias?[j] ?? 0)
                for i in 0..<k { s += Double(x[r * k + i]) * Double(weight[j * k + i]) }
                out[r * n + j] = Float(s)
            }
        }
        return out
    }

    public static func rmsNorm(_ x: [Float], weight: [Float], rows: Int, dim: Int, eps: Float) -> [Float] {
        var out = x
        for r in 0..<rows {
            var s = 0.0
            for i in 0..<dim { s += Double(x[r * dim + i]) * Double(x[r * dim + i]) }
            let inv = 1 / (s / Double(dim) + Double(eps)).squareRoot()
            for i in 0..<dim { out[r * dim + i] = Float(Double(weight[i]) * Double(x[r * dim + i]) * inv) }
        }
        return out
    }

    /// Rotary embedding straight from the definition: q·cos + rotate_half(q)·sin, with
    /// rotate_half(x) = [-x₂, x₁] and angle(p, i) = p · theta^(-2i/d).
    public static func rope(_ x: [Float], tokens: Int, heads: Int, headDim: Int, positions: [Int], inverseFrequencies: [Double]) -> [Float] {
        var out = x
        let half = headDim / 2
        for t in 0..<tokens {
            for h in 0..<heads {
                let base = t * heads * headDim + h * headDim
                for i in 0..<half {
                    let angle = Double(positions[t]) * inverseFrequencies[i]
                    let a = Double(x[base + i]), b = Double(x[base + i + half])
                    out[base + i] = Float(a * cos(angle) - b * sin(angle))
                    out[base + i + half] = Float(b * cos(angle) + a * sin(angle))
                }
            }
        }
        return out
    }

    public static func siluMul(gate: [Float], up: [Float]) -> [Float] {
        zip(gate, up).map { g, u in Float(Double(g) / (1 + Foundation.exp(-Double(g))) * Double(u)) }
    }

    /// gelu_tanh(gate) · up in double precision with Foundation's tanh.
    public static func geluTanhMul(gate: [Float], up: [Float]) -> [Float] {
        zip(gate, up).map { g, u in
            let x = Double(g)
            return Float(0.5 * x * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x))) * Double(u))
        }
    }

    /// Attention with an explicit additive mask, the way the Python reference computes it:
    /// scores + (0 or the float minimum), softmax over the whole row.
    public static func attention(
        q: [Float], k: [Float], v: [Float], batch: Int, length: Int, heads: Int, kvHeads: Int, headDim: Int,
        valid: [Range<Int>], pattern: AttentionPattern, scale: Float? = nil
    ) -> [Float] {
        let qStride = heads * headDim, kvStride = kvHeads * headDim
        var out = [Float](repeating: 0, count: batch * length * qStride)
        let minimum = -Double(Float.greatestFiniteMagnitude)
        for b in 0..<batch {
            for h in 0..<heads {
                let g = h / (heads / kvHeads)
                for i in 0..<length {
                    let allowed = pattern.allowedKeys(query: i, valid: valid[b])
                    var scores = [Double](repeating: 0, count: length)
                    for j in 0..<length {
                        var s = 0.0
                        for d in 0..<headDim {
                            s += Double(q[(b * length + i) * qStride + h * headDim + d]) * Double(k[(b * length + j) * kvStride + g * headDim + d])
                        }
                        s *= Double(scale ?? 1 / Float(headDim).squareRoot())
                        // Adding the minimum swamps the score, as it does in float32.
                        scores[j] = allowed.contains(j) ? s : minimum
                    }
                    let m = scores.max()!
                    let e = scores.map { Foundation.exp($0 - m) }
                    let z = e.reduce(0, +)
                    for d in 0..<headDim {
                        var s = 0.0
                        for j in 0..<length { s += e[j] / z * Double(v[(b * length + j) * kvStride + g * headDim + d]) }
                        out[(b * length + i) * qStride + h * headDim + d] = Float(s)
                    }
                }
            }
        }
        return out
    }
}
