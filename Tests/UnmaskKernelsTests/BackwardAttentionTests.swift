import Testing
import UnmaskKernels
import UnmaskTestSupport

@Suite struct BackwardAttentionTests {
    struct Case: Sendable, CustomStringConvertible {
        var heads: Int, kvHeads: Int, valid: [Range<Int>], pattern: AttentionPattern, recompute: Bool, scale: Float? = nil
        var description: String {
            "heads \(heads)/\(kvHeads) valid \(valid) causal \(pattern.causal) reach \(pattern.before ?? -1)/\(pattern.after ?? -1) recompute \(recompute) scale \(scale ?? 0)"
        }
    }

    static let length = 5, headDim = 4

    // Left padding in both modes, GQA groups of 2 and 4, a sliding window, and a row with no
    // valid token at all (every query uniform).
    static let cases: [Case] = [
        Case(heads: 4, kvHeads: 2, valid: [1..<5, 0..<5], pattern: AttentionPattern(causal: true), recompute: false),
        Case(heads: 4, kvHeads: 2, valid: [2..<5, 0..<5], pattern: AttentionPattern(causal: false), recompute: false),
        Case(heads: 4, kvHeads: 1, valid: [1..<5, 3..<5], pattern: AttentionPattern(causal: true), recompute: true),
        Case(heads: 2, kvHeads: 2, valid: [0..<5, 1..<5], pattern: AttentionPattern(causal: false, slidingWindow: 1), recompute: true),
        Case(heads: 2, kvHeads: 1, valid: [0..<0, 2..<5], pattern: AttentionPattern(causal: true, slidingWindow: 2), recompute: false),
        // Gemma 3: a bidirectional window reaching 1 each side, scores scaled by 1/√query_pre_attn_scalar.
        Case(heads: 4, kvHeads: 2, valid: [1..<5, 0..<5], pattern: AttentionPattern(causal: false, before: 1, after: 1), recompute: true, scale: 0.3),
        Case(heads: 2, kvHeads: 2, valid: [0..<5, 2..<5], pattern: AttentionPattern(causal: true, before: 2), recompute: false, scale: 0.7),
    ]

    @Test(arguments: cases)
    func gradientsMatchFiniteDifferences(_ c: Case) {
        let (length, headDim) = (Self.length, Self.headDim)
        let batch = c.valid.count
        var rng = SeededRandom(seed: 31)
        let q = rng.floats(batch * length * c.heads * headDim, scale: 1.5)
        let k = rng.floats(batch * length * c.kvHeads * headDim, scale: 1.5)
        let v = rng.floats(batch * length * c.kvHeads * headDim)
        let r = rng.floats(q.count)
        let scratch = FloatBuffer(count: Attention.scratchCount(length: length))
        func forward(_ q: [Float], _ k: [Float], _ v: [Float], probabilities: UnsafeMutablePointer<Float>? = nil) -> [Float] {
            var out = [Float](repeating: 0, count: q.count)
            Attention.forward(q: q, k: k, v: v, out: &out, batch: batch, length: length, heads: c.heads, kvHeads: c.kvHeads, headDim: headDim,
                              valid: c.valid, pattern: c.pattern, scale: c.scale, scratch: scratch, probabilities: probabilities)
            return out
        }
        let probabilities = FloatBuffer(count: batch * c.heads * length * length)
        let out = forward(q, k, v, probabilities: probabilities.pointer)
        let reference = ReferenceKernels.attention(q: q, k: k, v: v, batch: batch, length: length, heads: c.heads, kvHeads: c.kvHeads,
                                                   headDim: headDim, valid: c.valid, pattern: c.pattern, scale: c.scale)
        #expect(Compare.maxAbs(out, reference) < 1e-5)

        var dq = [Float](repeating: .nan, count: q.count), dk = [Float](repeating: .nan, count: k.count), dv = [Float](repeating: .nan, count: v.count)
        let backwardScratch = FloatBuffer(count: Backward.attentionScratchCount(length: length, recompute: c.recompute))
        Backward.attention(q: q, k: k, v: v, dOut: r, dq: &dq, dk: &dk, dv: &dv, batch: batch, length: length,
                           heads: c.heads, kvHeads: c.kvHeads, headDim: headDim, valid: c.valid, pattern: c.pattern, scale: c.scale,
                           probabilities: c.recompute ? nil : UnsafePointer(probabilities.pointer), scratch: backwardScratch)
        let h = GradientCheck.floatStep
        let nq = GradientCheck.numeric(q, step: h) { GradientCheck.dot(forward($0, k, v), r) }
        let nk = GradientCheck.numeric(k, step: h) { GradientCheck.dot(forward(q, $0, v), r) }
        let nv = GradientCheck.numeric(v, step: h) { GradientCheck.dot(forward(q, k, $0), r) }
        #expect(GradientCheck.relativeError(dq, nq) < GradientCheck.tolerance)
        #expect(GradientCheck.relativeError(dk, nk) < GradientCheck.tolerance)
        #expect(GradientCheck.relativeError(dv, nv) < GradientCheck.tolerance)

        // Queries with no allowed key are uniform whatever their scores: exactly zero gradient.
        let qStride = c.heads * headDim
        for b in 0..<batch {
            for i in 0..<length where c.pattern.allowedKeys(query: i, valid: c.valid[b]).isEmpty {
                #expect(dq[(b * length + i) * qStride..<(b * length + i + 1) * qStride].allSatisfy { $0 == 0 })
            }
        }
    }

    @Test func savedAndRecomputedProbabilitiesAgree() {
        let (batch, length, heads, kvHeads, headDim) = (3, 17, 6, 2, 8)
        let valid = [0..<17, 5..<17, 16..<17]
        let pattern = AttentionPattern(causal: false)
        var rng = SeededRandom(seed: 32)
        let q = rng.floats(batch * length * heads * headDim), k = rng.floats(batch * length * kvHeads * headDim)
        let v = rng.floats(k.count), r = rng.floats(q.count)
        var out = [Float](repeating: 0, count: q.count)
        let probabilities = FloatBuffer(count: batch * heads * length * length)
        Attention.forward(q: q, k: k, v: v, out: &out, batch: batch, length: length, heads: heads, kvHeads: kvHeads, headDim: headDim,
                          valid: valid, pattern: pattern, scratch: FloatBuffer(count: 0), probabilities: probabilities.pointer)
        func backward(_ saved: UnsafePointer<Float>?) -> [[Float]] {
            var dq = [Float](repeating: 0, count: q.count), dk = [Float](repeating: 0, count: k.count), dv = [Float](repeating: 0, count: v.count)
            Backward.attention(q: q, k: k, v: v, dOut: r, dq: &dq, dk: &dk, dv: &dv, batch: batch, length: length, heads: heads, kvHeads: kvHeads,
                               headDim: headDim, valid: valid, pattern: pattern, probabilities: saved,
                               scratch: FloatBuffer(count: Backward.attentionScratchCount(length: length, recompute: saved == nil)))
            return [dq, dk, dv]
        }
        let saved = backward(UnsafePointer(probabilities.pointer)), recomputed = backward(nil)
        for (a, b) in zip(saved, recomputed) { #expect(Compare.maxAbs(a, b) < 1e-6) }
    }
}
