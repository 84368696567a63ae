import Foundation
import Testing
import UnmaskKernels
import UnmaskTestSupport

/// Each fast kernel against its plain twin in `ReferenceKernels`.
@Suite struct KernelTests {
    @Test(arguments: [(1, 3, 5, false), (7, 64, 33, true), (130, 96, 200, true)])
    func linearMatchesReference(rows: Int, k: Int, n: Int, withBias: Bool) {
        var rng = SeededRandom(seed: 1)
        let x = rng.floats(rows * k), w = rng.floats(n * k), bias = withBias ? rng.floats(n) : nil
        var out = [Float](repeating: 0, count: rows * n)
        out.withUnsafeMutableBufferPointer { o in
            Kernels.linear(x, rows: rows, inFeatures: k, weight: w, outFeatures: n, bias: bias, out: o.baseAddress!)
        }
        let expected = ReferenceKernels.linear(x, rows: rows, inFeatures: k, weight: w, outFeatures: n, bias: bias)
        #expect(Compare.maxAbs(out, expected) < 1e-4)
    }

    @Test func linearAccumulatesIntoOutput() {
        var rng = SeededRandom(seed: 2)
        let (rows, k, n) = (5, 8, 6)
        let x = rng.floats(rows * k), w = rng.floats(n * k), bias = rng.floats(n), start = rng.floats(rows * n)
        var out = start
        out.withUnsafeMutableBufferPointer { o in
            Kernels.linear(x, rows: rows, inFeatures: k, weight: w, outFeatures: n, bias: bias, out: o.baseAddress!, accumulate: true)
        }
        let product = ReferenceKernels.linear(x, rows: rows, inFeatures: k, weight: w, outFeatures: n, bias: bias)
        #expect(Compare.maxAbs(out, zip(start, product).map(+)) < 1e-5)
    }

    @Test(arguments: [1, 17, 576])
    func rmsNormMatchesReference(dim: Int) {
        var rng = SeededRandom(seed: 3)
        let rows = 9
        let x = rng.floats(rows * dim, scale: 3), w = rng.floats(dim)
        var out = [Float](repeating: 0, count: rows * dim)
        var inverse = [Float](repeating: 0, count: rows)
        out.withUnsafeMutableBufferPointer { o in
            inverse.withUnsafeMutableBufferPointer { r in
                Kernels.rmsNorm(x, weight: w, rows: rows, dim: dim, eps: 1e-5, out: o.baseAddress!, inverseRMS: r.baseAddress!)
            }
        }
        #expect(Compare.maxAbs(out, ReferenceKernels.rmsNorm(x, weight: w, rows: rows, dim: dim, eps: 1e-5)) < 1e-5)
        #expect(inverse.allSatisfy { $0.isFinite && $0 > 0 })
    }

    @Test func ropeMatchesDefinitionAndInverts() {
        var rng = SeededRandom(seed: 4)
        let (tokens, heads, headDim) = (12, 3, 16)
        let half = headDim / 2
        let inverseFrequencies = (0..<half).map { 1 / pow(10000.0, Double(2 * $0) / Double(headDim)) }
        let positions = (0..<tokens).map { ($0 * 7) % 11 }
        var cosTable = [Float](), sinTable = [Float]()
        for p in 0..<11 {
            for i in 0..<half {
                cosTable.append(Float(cos(Double(p) * inverseFrequencies[i])))
                sinTable.append(Float(sin(Double(p) * inverseFrequencies[i])))
            }
        }
        let x = rng.floats(tokens * heads * headDim)
        var y = x
        let positions32 = positions.map(Int32.init)
        y.withUnsafeMutableBufferPointer {
            Kernels.rope($0.baseAddress!, tokens: tokens, heads: heads, headDim: headDim, positions: positions32, cos: cosTable, sin: sinTable)
        }
        let expected = ReferenceKernels.rope(x, tokens: tokens, heads: heads, headDim: headDim, positions: positions, inverseFrequencies: inverseFrequencies)
        #expect(Compare.maxAbs(y, expected) < 1e-5)
        y.withUnsafeMutableBufferPointer {
            Kernels.rope($0.baseAddress!, tokens: tokens, heads: heads, headDim: headDim, positions: positions32, cos: cosTable, sin: sinTable, inverse: true)
        }
        #expect(Compare.maxAbs(y, x) < 1e-5)
    }

    @Test func siluMulMatchesReference() {
        var rng = SeededRandom(seed: 5)
        let n = 1000
        let gate = rng.floats(n, scale: 20), up = rng.floats(n, scale: 2)
        var out = [Float](repeating: 0, count: n)
        out.withUnsafeMutableBufferPointer { Kernels.siluMul(gate: gate, up: up, out: $0.baseAddress!, count: n) }
        let expected = ReferenceKernels.siluMul(gate: gate, up: up)
        #expect(zip(out, expected).allSatisfy { abs($0 - $1) <= 1e-6 * max(1, abs($1)) })
    }

    @Test func geluTanhMulMatchesReference() {
        var rng = SeededRandom(seed: 6)
        let n = 1000
        // Wide inputs reach tanh's saturation on both sides (where e^{2z} overflows to infinity).
        var gate = rng.floats(n, scale: 20)
        gate[0] = 200
        gate[1] = -200
        let up = rng.floats(n, scale: 2)
        var out = [Float](repeating: 0, count: n)
        out.withUnsafeMutableBufferPointer { Kernels.geluTanhMul(gate: gate, up: up, out: $0.baseAddress!, count: n) }
        let expected = ReferenceKernels.geluTanhMul(gate: gate, up: up)
        #expect(zip(out, expected).allSatisfy { abs($0 - $1) <= 2e-6 * max(1, abs($1)) })
        #expect(out.allSatisfy { $0.isFinite })
    }

    /// Scoring queries in blocks (the long-input path) gives every row the same result as scoring
    /// them at once, dropout masks included; and past `queryBlock` rows it matches the reference.
    @Test func blockedAttentionMatchesWholeRows() {
        let (batch, length, heads, kvHeads, headDim) = (2, 9, 4, 2, 8)
        var rng = SeededRandom(seed: 61)
        let q = rng.floats(batch * length * heads * headDim), k = rng.floats(batch * length * kvHeads * headDim)
        let v = rng.floats(k.count)
        let valid = [2..<9, 0..<9]
        let scratch = FloatBuffer(count: Parallel.coreCount * length * length)
        for dropout in [nil, Dropout(probability: 0.3, seed: 5)] {
            func run(block: Int) -> [Float] {
                var out = [Float](repeating: 0, count: q.count)
                Attention.forward(q: q, k: k, v: v, out: &out, batch: batch, length: length, heads: heads, kvHeads: kvHeads, headDim: headDim,
                                  valid: valid, pattern: AttentionPattern(causal: false, before: 3, after: 3), scratch: scratch,
                                  dropout: dropout, queryBlock: block)
                return out
            }
            let whole = run(block: length)
            for block in [1, 2, 4] { #expect(Compare.maxAbs(run(block: block), whole) < 1e-6) }
        }
        let long = Attention.queryBlock + 44
        let ql = rng.floats(long * 2 * 4), kl = rng.floats(long * 1 * 4), vl = rng.floats(kl.count)
        var out = [Float](repeating: 0, count: ql.count)
        Attention.forward(q: ql, k: kl, v: vl, out: &out, batch: 1, length: long, heads: 2, kvHeads: 1, headDim: 4, valid: [3..<long],
                          pattern: AttentionPattern(causal: true), scratch: FloatBuffer(count: Attention.scratchCount(length: long)))
        let expected = ReferenceKernels.attention(q: ql, k: kl, v: vl, batch: 1, length: long, heads: 2, kvHeads: 1, headDim: 4,
                                                  valid: [3..<long], pattern: AttentionPattern(causal: true))
        #expect(Compare.maxAbs(out, expected) < 1e-5)
    }

    @Test func fastExpIsAccurateAndFinite() {
        var worst: Double = 0
        var x: Float = -87
        while x < 88 {
            let got = Double(FastMath.exp(x)), want = Foundation.exp(Double(x))
            worst = max(worst, abs(got - want) / want)
            x += 0.0137
        }
        #expect(worst < 5e-7)
        #expect(FastMath.exp(-Float.greatestFiniteMagnitude).isFinite)
        #expect(FastMath.exp(Float.greatestFiniteMagnitude).isFinite)
    }

    @Test func maskedSoftmaxSumsToOneAndHandlesEmptyRows() {
        var row: [Float] = [3, -1, 1000, 2, 5]
        row.withUnsafeMutableBufferPointer { Kernels.maskedSoftmax($0.baseAddress!, length: 5, allowed: 1..<4) }
        #expect(row[0] == 0 && row[4] == 0)
        #expect(abs(row.reduce(0, +) - 1) < 1e-6)
        #expect(row[2] > 0.999)
        var empty: [Float] = [1, 2, 3, 4]
        empty.withUnsafeMutableBufferPointer { Kernels.maskedSoftmax($0.baseAddress!, length: 4, allowed: 2..<2) }
        #expect(empty == [0.25, 0.25, 0.25, 0.25])
    }

    static let attentionCases: [(AttentionPattern, [Range<Int>])] = [
        (AttentionPattern(causal: false), [0..<9, 3..<9, 9..<9]),
        (AttentionPattern(causal: true), [0..<9, 3..<9, 9..<9]),
        (AttentionPattern(causal: false, slidingWindow: 3), [0..<9, 5..<9, 1..<9]),
        (AttentionPattern(causal: true, slidingWindow: 3), [0..<9, 5..<9, 1..<9]),
    ]

    @Test(arguments: attentionCases)
    func attentionMatchesReference(pattern: AttentionPattern, valid: [Range<Int>]) {
        var rng = SeededRandom(seed: 6)
        let (batch, length, heads, kvHeads, headDim) = (3, 9, 4, 2, 8)
        let q = rng.floats(batch * length * heads * headDim, scale: 2)
        let k = rng.floats(batch * length * kvHeads * headDim, scale: 2)
        let v = rng.floats(batch * length * kvHeads * headDim)
        var out = [Float](repeating: .nan, count: q.count)
        let scratch = FloatBuffer(count: Attention.scratchCount(length: length))
        out.withUnsafeMutableBufferPointer { o in
            Attention.forward(q: q, k: k, v: v, out: o.baseAddress!, batch: batch, length: length, heads: heads, kvHeads: kvHeads,
                              headDim: headDim, valid: valid, pattern: pattern, scratch: scratch)
        }
        let expected = ReferenceKernels.attention(q: q, k: k, v: v, batch: batch, length: length, heads: heads, kvHeads: kvHeads,
                                                  headDim: headDim, valid: valid, pattern: pattern)
        #expect(out.allSatisfy { $0.isFinite })
        #expect(Compare.maxAbs(out, expected) < 1e-5)
    }

    @Test func attentionKeepsProbabilitiesWhenAsked() {
        var rng = SeededRandom(seed: 7)
        let (batch, length, heads, headDim) = (2, 5, 2, 4)
        let q = rng.floats(batch * length * heads * headDim), k = rng.floats(q.count), v = rng.floats(q.count)
        var out = [Float](repeating: 0, count: q.count)
        let probabilities = FloatBuffer(count: batch * heads * length * length)
        out.withUnsafeMutableBufferPointer { o in
            Attention.forward(q: q, k: k, v: v, out: o.baseAddress!, batch: batch, length: length, heads: heads, kvHeads: heads,
                              headDim: headDim, valid: [1..<5, 0..<5], pattern: AttentionPattern(causal: true),
                              scratch: FloatBuffer(count: 0), probabilities: probabilities.pointer)
        }
        for row in 0..<(batch * heads * length) {
            let sum = (0..<length).reduce(Float(0)) { $0 + probabilities[row * length + $1] }
            #expect(abs(sum - 1) < 1e-5)
        }
        // Row 0 of batch 0 is padding under a causal mask: no allowed key, uniform weights.
        #expect(probabilities[0] == 0.2)
    }
}
