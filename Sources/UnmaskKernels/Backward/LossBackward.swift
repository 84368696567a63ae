import Foundation

extension Backward {
    /// Token cross-entropy over logits[rows, vocab] with targets[rows] (rows whose target is
    /// `ignoreIndex` do not count): returns Σ loss / normalizer and writes dLogits[rows, vocab] =
    /// (softmax − onehot) / normalizer, zero on ignored rows. `normalizer` defaults to the number of
    /// counted rows (PyTorch's mean); pass the whole accumulated batch's count so micro-batches sum
    /// to its mean. With nothing counted the loss and gradient are 0 (PyTorch gives NaN).
    /// dLogits may be logits itself: a vocabulary-wide buffer per token is worth not having twice.
    @discardableResult
    public static func crossEntropy(
        logits: UnsafePointer<Float>, rows: Int, vocabulary: Int,
        targets: UnsafePointer<Int32>, ignoreIndex: Int32 = -100, normalizer: Int? = nil,
        dLogits: UnsafeMutablePointer<Float>
    ) -> Float {
        var counted = 0
        for r in 0..<rows where targets[r] != ignoreIndex {
            precondition(targets[r] >= 0 && Int(targets[r]) < vocabulary, "target \(targets[r]) outside the vocabulary")
            counted += 1
        }
        let denominator = normalizer ?? counted
        guard denominator > 0 else {
            dLogits.update(repeating: 0, count: rows * vocabulary)
            return 0
        }
        let inverse = 1 / Float(denominator)
        var partial = [Double](repeating: 0, count: Parallel.coreCount)
        partial.withUnsafeMutableBufferPointer { partial in
            Parallel.chunks(rows, minimumPerChunk: 4) { worker, range in
                var sum = 0.0
                for r in range {
                    let d = dLogits + r * vocabulary
                    let target = targets[r]
                    if target == ignoreIndex { d.update(repeating: 0, count: vocabulary); continue }
                    let l = logits + r * vocabulary
                    if UnsafePointer(d) != l { d.update(from: l, count: vocabulary) }
                    let targetLogit = l[Int(target)]
                    let maxValue = FastMath.maximum(d, count: vocabulary)
                    let z = FastMath.expShifted(d, count: vocabulary, shift: maxValue)
                    sum += Foundation.log(Double(z)) + Double(maxValue) - Double(targetLogit)
                    FastMath.scale(d, count: vocabulary, by: inverse / z)
                    d[Int(target)] -= inverse
                }
                partial[worker] += sum
            }
        }
        return Float(partial.reduce(0, +) / Double(denominator))
    }

    /// pooled[batch, dim] = mean of hidden[b·length + t, dim] over t ∈ spans[b] (zero for an empty span).
    public static func meanPoolForward(
        hidden: UnsafePointer<Float>, batch: Int, length: Int, dim: Int, spans: [Range<Int>],
        pooled: UnsafeMutablePointer<Float>
    ) {
        precondition(spans.count == batch)
        for b in 0..<batch {
            let out = pooled + b * dim
            out.update(repeating: 0, count: dim)
            let span = spans[b]
            guard !span.isEmpty else { continue }
            for t in span {
                let h = hidden + (b * length + t) * dim
                for j in 0..<dim { out[j] += h[j] }
            }
            let inverse = 1 / Float(span.count)
            for j in 0..<dim { out[j] *= inverse }
        }
    }

    /// dHidden[batch·length, dim] (+)= dPooled[b] / |spans[b]| on each span; other tokens get 0
    /// (or keep what they had when accumulating).
    public static func meanPool(
        dPooled: UnsafePointer<Float>, batch: Int, length: Int, dim: Int, spans: [Range<Int>],
        dHidden: UnsafeMutablePointer<Float>, accumulate: Bool = false
    ) {
        precondition(spans.count == batch)
        if !accumulate { dHidden.update(repeating: 0, count: batch * length * dim) }
        for b in 0..<batch where !spans[b].isEmpty {
            let inverse = 1 / Float(spans[b].count), g = dPooled + b * dim
            for t in spans[b] {
                let d = dHidden + (b * length + t) * dim
                for j in 0..<dim { d[j] += g[j] * inverse }
            }
        }
    }

    /// LLM2Vec's contrastive loss (`HardNegativeNLLLoss`): scores[n, m] = scale · cos(queries[i],
    /// documents[j]), loss = mean_i cross-entropy(scores[i], label i). documents [m, dim] with m ≥ n:
    /// the first n are the positives (SimCSE: the second dropout pass), the rest hard negatives.
    /// Writes dQueries [n, dim] and dDocuments [m, dim]; returns the loss. scale = 1/temperature.
    /// Norms are clamped at 1e-12 as `F.normalize` does.
    @discardableResult
    public static func contrastive(
        queries: UnsafePointer<Float>, documents: UnsafePointer<Float>, count n: Int, candidates m: Int, dim: Int,
        scale: Float = 20,
        dQueries: UnsafeMutablePointer<Float>, dDocuments: UnsafeMutablePointer<Float>
    ) -> Float {
        precondition(m >= n && n > 0)
        let epsilon = 1e-12
        // Called once per step on n·m scores: plain arrays are cheap next to the encoder passes.
        var qn = [Float](repeating: 0, count: n * dim), dn = [Float](repeating: 0, count: m * dim)
        var qNorm = [Double](repeating: 0, count: n), dNorm = [Double](repeating: 0, count: m)
        var scores = [Float](repeating: 0, count: n * m)
        var loss = 0.0
        func normalize(_ x: UnsafePointer<Float>, rows: Int, into out: UnsafeMutablePointer<Float>, norms: inout [Double]) {
            for r in 0..<rows {
                var s = 0.0
                for j in 0..<dim { s += Double(x[r * dim + j]) * Double(x[r * dim + j]) }
                norms[r] = max(s.squareRoot(), epsilon)
                let inverse = Float(1 / norms[r])
                for j in 0..<dim { out[r * dim + j] = x[r * dim + j] * inverse }
            }
        }
        qn.withUnsafeMutableBufferPointer { qn in
            dn.withUnsafeMutableBufferPointer { dn in
                scores.withUnsafeMutableBufferPointer { scores in
                    let qp = qn.baseAddress!, dp = dn.baseAddress!, sp = scores.baseAddress!
                    normalize(queries, rows: n, into: qp, norms: &qNorm)
                    normalize(documents, rows: m, into: dp, norms: &dNorm)
                    BLAS.sgemm(transposeA: false, transposeB: true, m: n, n: m, k: dim, alpha: scale,
                               a: qp, lda: dim, b: dp, ldb: dim, c: sp, ldc: m)
                    // Scores become d loss / d cosine: scale·(softmax − onehot)/n.
                    for i in 0..<n {
                        let row = sp + i * m
                        let target = Double(row[i])
                        var maxValue = -Double.infinity
                        for j in 0..<m { maxValue = max(maxValue, Double(row[j])) }
                        var z = 0.0
                        for j in 0..<m { z += Foundation.exp(Double(row[j]) - maxValue) }
                        loss += Foundation.log(z) + maxValue - target
                        for j in 0..<m {
                            let softmax = Foundation.exp(Double(row[j]) - maxValue) / z
                            row[j] = Float((softmax - (j == i ? 1 : 0)) * Double(scale) / Double(n))
                        }
                    }
                    // Gradients with respect to the unit vectors, then through the normalization:
                    // d x = (d x̂ − x̂·(x̂ · d x̂)) / ‖x‖ (only d x̂ / ε below the clamp, where it is linear).
                    BLAS.sgemm(transposeA: false, transposeB: false, m: n, n: dim, k: m,
                               a: sp, lda: m, b: dp, ldb: dim, c: dQueries, ldc: dim)
                    BLAS.sgemm(transposeA: true, transposeB: false, m: m, n: dim, k: n,
                               a: sp, lda: m, b: qp, ldb: dim, c: dDocuments, ldc: dim)
                    func project(_ unit: UnsafePointer<Float>, _ norms: [Double], rows: Int, _ grad: UnsafeMutablePointer<Float>) {
                        for r in 0..<rows {
                            let u = unit + r * dim, g = grad + r * dim
                            let inverse = Float(1 / norms[r])
                            if norms[r] <= epsilon { for j in 0..<dim { g[j] *= inverse }; continue }
                            var dot: Float = 0
                            for j in 0..<dim { dot += u[j] * g[j] }
                            for j in 0..<dim { g[j] = (g[j] - u[j] * dot) * inverse }
                        }
                    }
                    project(qp, qNorm, rows: n, dQueries)
                    project(dp, dNorm, rows: m, dDocuments)
                }
            }
        }
        return Float(loss / Double(n))
    }
}
