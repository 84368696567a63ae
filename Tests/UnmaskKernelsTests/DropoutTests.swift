import Testing
import UnmaskKernels
import UnmaskTestSupport

@Suite struct DropoutTests {
    @Test func maskDropsTheRequestedFractionAndScalesTheRest() throws {
        let dropout = try #require(Dropout(probability: 0.3, seed: 7))
        let n = 200_000
        let factors = (0..<n).map(dropout.factor)
        let dropped = factors.filter { $0 == 0 }.count
        #expect(abs(Double(dropped) / Double(n) - 0.3) < 0.005)
        #expect(factors.allSatisfy { $0 == 0 || abs($0 - 1 / 0.7) < 1e-6 })
        // A pure function of (seed, index): asking again, or out of order, gives the same mask.
        #expect((0..<n).reversed().map(dropout.factor).reversed() == factors)
        #expect(Dropout(probability: 0, seed: 7) == nil)
    }

    @Test func derivedStreamsAreIndependent() throws {
        let base = try #require(Dropout(probability: 0.5, seed: 1))
        let a = (0..<10_000).map(base.derived(1).factor), b = (0..<10_000).map(base.derived(2).factor)
        let same = zip(a, b).filter { $0 == $1 }.count
        #expect(abs(Double(same) / 10_000 - 0.5) < 0.03)
        #expect(a == (0..<10_000).map(base.derived(1).factor))
    }

    @Test(arguments: [false, true])
    func attentionDropoutGradientsMatchFiniteDifferences(recompute: Bool) throws {
        let (batch, length, heads, kvHeads, headDim) = (2, 5, 4, 2, 4)
        let valid = [1..<5, 0..<5]
        let pattern = AttentionPattern(causal: false)
        let dropout = try #require(Dropout(probability: 0.3, seed: 99))
        var rng = SeededRandom(seed: 41)
        let q = rng.floats(batch * length * heads * headDim, scale: 1.5), k = rng.floats(batch * length * kvHeads * headDim, scale: 1.5)
        let v = rng.floats(k.count), r = rng.floats(q.count)
        let scratch = FloatBuffer(count: Attention.scratchCount(length: length))
        func forward(_ q: [Float], _ k: [Float], _ v: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: q.count)
            Attention.forward(q: q, k: k, v: v, out: &out, batch: batch, length: length, heads: heads, kvHeads: kvHeads, headDim: headDim,
                              valid: valid, pattern: pattern, scratch: scratch, dropout: dropout)
            return out
        }
        // Forward: the undropped probabilities, masked by hand, times v.
        let probabilities = FloatBuffer(count: batch * heads * length * length)
        var plain = [Float](repeating: 0, count: q.count)
        Attention.forward(q: q, k: k, v: v, out: &plain, batch: batch, length: length, heads: heads, kvHeads: kvHeads, headDim: headDim,
                          valid: valid, pattern: pattern, scratch: scratch, probabilities: probabilities.pointer)
        var expected = [Float](repeating: 0, count: q.count)
        for b in 0..<batch {
            for h in 0..<heads {
                for i in 0..<length {
                    for d in 0..<headDim {
                        var sum: Float = 0
                        for j in 0..<length {
                            let index = ((b * heads + h) * length + i) * length + j
                            sum += probabilities[index] * dropout.factor(index) * v[(b * length + j) * kvHeads * headDim + (h / 2) * headDim + d]
                        }
                        expected[(b * length + i) * heads * headDim + h * headDim + d] = sum
                    }
                }
            }
        }
        #expect(Compare.maxAbs(forward(q, k, v), expected) < 1e-5)

        var dq = [Float](repeating: .nan, count: q.count), dk = [Float](repeating: .nan, count: k.count), dv = [Float](repeating: .nan, count: v.count)
        Backward.attention(q: q, k: k, v: v, dOut: r, dq: &dq, dk: &dk, dv: &dv, batch: batch, length: length,
                           heads: heads, kvHeads: kvHeads, headDim: headDim, valid: valid, pattern: pattern,
                           probabilities: recompute ? nil : UnsafePointer(probabilities.pointer),
                           scratch: FloatBuffer(count: Backward.attentionScratchCount(length: length, recompute: true)), dropout: dropout)
        let h = GradientCheck.floatStep
        #expect(GradientCheck.relativeError(dq, GradientCheck.numeric(q, step: h) { GradientCheck.dot(forward($0, k, v), r) }) < GradientCheck.tolerance)
        #expect(GradientCheck.relativeError(dk, GradientCheck.numeric(k, step: h) { GradientCheck.dot(forward(q, $0, v), r) }) < GradientCheck.tolerance)
        #expect(GradientCheck.relativeError(dv, GradientCheck.numeric(v, step: h) { GradientCheck.dot(forward(q, k, $0), r) }) < GradientCheck.tolerance)
    }

    @Test func loraDropoutGradientsMatchFiniteDifferences() throws {
        let (rows, k, n, rank, scaling): (Int, Int, Int, Int, Float) = (6, 10, 7, 3, 2)
        let dropout = try #require(Dropout(probability: 0.4, seed: 5))
        var rng = SeededRandom(seed: 13)
        let x = rng.floats(rows * k), w = rng.floats(n * k), a = rng.floats(rank * k), b = rng.floats(n * rank), r = rng.floats(rows * n)
        var dropped = [Float](repeating: 0, count: rows * k)
        func forward(_ x: [Float], _ a: [Float], _ b: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: rows * n), xA = [Float](repeating: 0, count: rows * rank)
            Kernels.linear(x, rows: rows, inFeatures: k, weight: w, outFeatures: n, bias: nil, out: &out)
            Backward.loraForward(x, rows: rows, inFeatures: k, outFeatures: n, loraA: a, loraB: b, rank: rank,
                                 scaling: scaling, xA: &xA, out: &out, dropout: dropout, droppedInput: &dropped)
            return out
        }
        // PEFT: base(x) + s·B·A·dropout(x); the base layer sees x undropped.
        let masked = x.indices.map { x[$0] * dropout.factor($0) }
        let base = ReferenceKernels.linear(x, rows: rows, inFeatures: k, weight: w, outFeatures: n, bias: nil)
        let low = ReferenceKernels.linear(masked, rows: rows, inFeatures: k, weight: a, outFeatures: rank, bias: nil)
        let delta = ReferenceKernels.linear(low, rows: rows, inFeatures: rank, weight: b, outFeatures: n, bias: nil)
        #expect(Compare.maxAbs(forward(x, a, b), zip(base, delta).map { $0 + scaling * $1 }) < 1e-4)

        var xA = [Float](repeating: 0, count: rows * rank), out = [Float](repeating: 0, count: rows * n)
        Kernels.linear(x, rows: rows, inFeatures: k, weight: w, outFeatures: n, bias: nil, out: &out)
        Backward.loraForward(x, rows: rows, inFeatures: k, outFeatures: n, loraA: a, loraB: b, rank: rank,
                             scaling: scaling, xA: &xA, out: &out, dropout: dropout, droppedInput: &dropped)
        var dA = [Float](repeating: 0, count: a.count), dB = [Float](repeating: 0, count: b.count), dx = [Float](repeating: 0, count: x.count)
        var scratch = [Float](repeating: 0, count: rows * rank)
        Backward.lora(dOut: r, input: x, xA: xA, rows: rows, inFeatures: k, outFeatures: n, loraA: a, loraB: b, rank: rank,
                      scaling: scaling, dA: &dA, dB: &dB, dInput: &dx, scratch: &scratch, dropout: dropout, droppedInput: &dropped)
        Backward.linear(dOut: r, rows: rows, outFeatures: n, weight: w, inFeatures: k, dInput: &dx, accumulate: true)
        let h = GradientCheck.floatStep
        #expect(GradientCheck.relativeError(dA, GradientCheck.numeric(a, step: h) { GradientCheck.dot(forward(x, $0, b), r) }) < GradientCheck.tolerance)
        #expect(GradientCheck.relativeError(dB, GradientCheck.numeric(b, step: h) { GradientCheck.dot(forward(x, a, $0), r) }) < GradientCheck.tolerance)
        #expect(GradientCheck.relativeError(dx, GradientCheck.numeric(x, step: h) { GradientCheck.dot(forward($0, a, b), r) }) < GradientCheck.tolerance)
    }
}
