extension Backward {
    /// Backward of `Attention.forward`: dq [batch·length, heads·headDim], dk/dv [batch·length,
    /// kvHeads·headDim] (overwritten), from q/k/v and dOut in the forward's layouts.
    ///
    /// `probabilities` is the forward's saved softmax [batch, heads, length, length]; nil
    /// recomputes it from q and k (activation recomputation: a B·H·L² tensor per layer is the
    /// largest activation at long lengths). `scratch` must hold `scratchCount(length:recompute:)`.
    ///
    /// Masked keys have probability exactly 0, so their score gradient P·(dP − Σ P·dP) is 0 without
    /// a mask. A query with no allowed key (a causal padding query) is uniform in the forward,
    /// independent of its scores: its score gradient is 0, but v still receives the uniform weights.
    ///
    /// With `dropout` (the forward's, same seed) the output was (P ⊙ M)·v: v's gradient uses the
    /// dropped P ⊙ M and the softmax backward gets dP ⊙ M. It needs the recompute scratch size.
    public static func attention(
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        dOut: UnsafePointer<Float>,
        dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
        batch: Int, length: Int, heads: Int, kvHeads: Int, headDim: Int,
        valid: [Range<Int>], pattern: AttentionPattern, scale: Float? = nil,
        probabilities: UnsafePointer<Float>?, scratch: FloatBuffer, dropout: Dropout? = nil
    ) {
        precondition(valid.count == batch && heads % kvHeads == 0)
        let qStride = heads * headDim, kvStride = kvHeads * headDim
        let group = heads / kvHeads
        let scale = scale ?? 1 / Float(headDim).squareRoot()
        let square = length * length
        let perWorker = probabilities == nil || dropout != nil ? 2 * square : square
        let workers = Parallel.coreCount
        precondition(scratch.count >= workers * perWorker, "attention backward scratch too small")
        BLAS.singleThreaded {
            // One item per (row, kv head): the heads of a group all add into the same dk/dv slice,
            // so a single worker owns that slice and no reduction across workers is needed.
            Parallel.forEach(batch * kvHeads, workers: workers) { worker, item in
                let b = item / kvHeads, g = item % kvHeads
                let dS = scratch.pointer + worker * perWorker
                let kb = k + b * length * kvStride + g * headDim
                let vb = v + b * length * kvStride + g * headDim
                let dkb = dk + b * length * kvStride + g * headDim
                let dvb = dv + b * length * kvStride + g * headDim
                for h in (g * group)..<((g + 1) * group) {
                    let beta: Float = h == g * group ? 0 : 1
                    let qb = q + b * length * qStride + h * headDim
                    let dob = dOut + b * length * qStride + h * headDim
                    let maskOffset = (b * heads + h) * square
                    let p: UnsafeMutablePointer<Float>
                    if let probabilities {
                        if dropout == nil {
                            p = UnsafeMutablePointer(mutating: probabilities + maskOffset)
                        } else {
                            // Dropout needs P and P ⊙ M in turn; the saved tensor stays untouched.
                            p = dS + square
                            p.update(from: probabilities + maskOffset, count: square)
                        }
                    } else {
                        // Same products and softmax as the forward, so the recomputed P is the one it used.
                        let recomputed = dS + square
                        BLAS.sgemm(transposeA: false, transposeB: true, m: length, n: length, k: headDim, alpha: scale,
                                   a: qb, lda: qStride, b: kb, ldb: kvStride, c: recomputed, ldc: length)
                        for i in 0..<length {
                            Kernels.maskedSoftmax(recomputed + i * length, length: length, allowed: pattern.allowedKeys(query: i, valid: valid[b]))
                        }
                        p = recomputed
                    }
                    // dP = dOut·vᵀ (⊙ M), then dS = P ⊙ (dP − rowsum(P ⊙ dP)) over the allowed keys only.
                    BLAS.sgemm(transposeA: false, transposeB: true, m: length, n: length, k: headDim,
                               a: dob, lda: qStride, b: vb, ldb: kvStride, c: dS, ldc: length)
                    dropout?.apply(dS, count: square, offset: maskOffset)
                    for i in 0..<length {
                        let row = dS + i * length, pr = p + i * length
                        let allowed = pattern.allowedKeys(query: i, valid: valid[b])
                        if allowed.isEmpty { row.update(repeating: 0, count: length); continue }
                        var dot: Float = 0
                        for j in allowed { dot += pr[j] * row[j] }
                        for j in allowed { row[j] = pr[j] * (row[j] - dot) }
                        if allowed.lowerBound > 0 { row.update(repeating: 0, count: allowed.lowerBound) }
                        if allowed.upperBound < length { (row + allowed.upperBound).update(repeating: 0, count: length - allowed.upperBound) }
                    }
                    // Scores were scale·q·kᵀ: dq = scale·dS·k, dk (+)= scale·dSᵀ·q.
                    BLAS.sgemm(transposeA: false, transposeB: false, m: length, n: headDim, k: length, alpha: scale,
                               a: dS, lda: length, b: kb, ldb: kvStride, c: dq + b * length * qStride + h * headDim, ldc: qStride)
                    BLAS.sgemm(transposeA: true, transposeB: false, m: length, n: headDim, k: length, alpha: scale,
                               a: dS, lda: length, b: qb, ldb: qStride, beta: beta, c: dkb, ldc: kvStride)
                    // dv (+)= (P ⊙ M)ᵀ·dOut; P is no longer needed, so it is dropped in place.
                    dropout?.apply(p, count: square, offset: maskOffset)
                    BLAS.sgemm(transposeA: true, transposeB: false, m: length, n: headDim, k: length,
                               a: p, lda: length, b: dob, ldb: qStride, beta: beta, c: dvb, ldc: kvStride)
                }
            }
        }
    }

    /// Floats of scratch `attention` needs for rows of `length` tokens.
    public static func attentionScratchCount(length: Int, recompute: Bool) -> Int {
        Parallel.coreCount * length * length * (recompute ? 2 : 1)
    }
}
