import Foundation
import Testing
import UnmaskKernels
import UnmaskTestSupport

/// Losses have no fast forward elsewhere; their finite differences come from plain Double
/// definitions, which also check the loss values the kernels return.
@Suite struct BackwardLossTests {
    static func referenceCrossEntropy(_ logits: [Float], rows: Int, vocabulary: Int, targets: [Int32], ignoreIndex: Int32 = -100) -> Double {
        var sum = 0.0, count = 0
        for r in 0..<rows where targets[r] != ignoreIndex {
            let row = logits[(r * vocabulary)..<((r + 1) * vocabulary)].map(Double.init)
            let m = row.max()!
            sum += log(row.reduce(0) { $0 + exp($1 - m) }) + m - row[Int(targets[r])]
            count += 1
        }
        return count == 0 ? 0 : sum / Double(count)
    }

    @Test func crossEntropyGradientMatchesFiniteDifferences() {
        var rng = SeededRandom(seed: 41)
        let (rows, vocabulary) = (6, 11)
        let logits = rng.floats(rows * vocabulary, scale: 3)
        let targets: [Int32] = [3, -100, 0, 10, -100, 7]
        var d = [Float](repeating: .nan, count: logits.count)
        let loss = Backward.crossEntropy(logits: logits, rows: rows, vocabulary: vocabulary, targets: targets, dLogits: &d)
        let expected = Self.referenceCrossEntropy(logits, rows: rows, vocabulary: vocabulary, targets: targets)
        #expect(abs(Double(loss) - expected) < 1e-5 * max(1, expected))
        let numeric = GradientCheck.numeric(logits, step: 1e-3) { Self.referenceCrossEntropy($0, rows: rows, vocabulary: vocabulary, targets: targets) }
        #expect(GradientCheck.relativeError(d, numeric) < GradientCheck.tolerance)
        #expect(d[vocabulary..<(2 * vocabulary)].allSatisfy { $0 == 0 })

        // In place over the logits, and with an outside normalizer (an accumulated batch of 8
        // counted tokens, of which this micro-batch has 4).
        var inPlace = logits
        inPlace.withUnsafeMutableBufferPointer { p in
            _ = Backward.crossEntropy(logits: p.baseAddress!, rows: rows, vocabulary: vocabulary, targets: targets, dLogits: p.baseAddress!)
        }
        #expect(inPlace == d)
        var half = [Float](repeating: 0, count: logits.count)
        let halfLoss = Backward.crossEntropy(logits: logits, rows: rows, vocabulary: vocabulary, targets: targets, normalizer: 8, dLogits: &half)
        #expect(abs(halfLoss - loss / 2) < 1e-6)
        #expect(Compare.maxAbs(half, d.map { $0 / 2 }) < 1e-7)
    }

    @Test func crossEntropyWithNothingCountedIsZero() {
        var d = [Float](repeating: .nan, count: 2 * 5)
        let loss = Backward.crossEntropy(logits: [Float](repeating: 1, count: 10), rows: 2, vocabulary: 5, targets: [-100, -100], dLogits: &d)
        #expect(loss == 0 && d.allSatisfy { $0 == 0 })
    }

    @Test func meanPoolGradientMatchesFiniteDifferences() {
        var rng = SeededRandom(seed: 42)
        let (batch, length, dim) = (3, 4, 5)
        let spans = [1..<4, 0..<4, 2..<2]
        let hidden = rng.floats(batch * length * dim), r = rng.floats(batch * dim)
        func pool(_ h: [Float]) -> [Float] {
            var out = [Float](repeating: .nan, count: batch * dim)
            Backward.meanPoolForward(hidden: h, batch: batch, length: length, dim: dim, spans: spans, pooled: &out)
            return out
        }
        let pooled = pool(hidden)
        for j in 0..<dim {
            let expected = (1..<4).map { Double(hidden[$0 * dim + j]) }.reduce(0, +) / 3
            #expect(abs(Double(pooled[j]) - expected) < 1e-6)
        }
        #expect(pooled[(2 * dim)...].allSatisfy { $0 == 0 })
        var d = [Float](repeating: .nan, count: hidden.count)
        Backward.meanPool(dPooled: r, batch: batch, length: length, dim: dim, spans: spans, dHidden: &d)
        let numeric = GradientCheck.numeric(hidden, step: GradientCheck.floatStep) { GradientCheck.dot(pool($0), r) }
        #expect(GradientCheck.relativeError(d, numeric) < GradientCheck.tolerance)
    }

    static func referenceContrastive(_ q: [Float], _ d: [Float], n: Int, m: Int, dim: Int, scale: Double) -> Double {
        func unit(_ x: [Float], _ r: Int) -> [Double] {
            let v = (0..<dim).map { Double(x[r * dim + $0]) }
            let norm = max(v.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
            return v.map { $0 / norm }
        }
        let qs = (0..<n).map { unit(q, $0) }, ds = (0..<m).map { unit(d, $0) }
        var loss = 0.0
        for i in 0..<n {
            let scores = ds.map { doc in scale * zip(qs[i], doc).reduce(0) { $0 + $1.0 * $1.1 } }
            let top = scores.max()!
            loss += log(scores.reduce(0) { $0 + exp($1 - top) }) + top - scores[i]
        }
        return loss / Double(n)
    }

    @Test(arguments: [(4, 4, Float(20)), (3, 6, Float(50))])
    func contrastiveGradientsMatchFiniteDifferences(n: Int, m: Int, scale: Float) {
        var rng = SeededRandom(seed: 43)
        let dim = 8
        let q = rng.floats(n * dim), docs = rng.floats(m * dim)
        var dq = [Float](repeating: .nan, count: q.count), dd = [Float](repeating: .nan, count: docs.count)
        let loss = Backward.contrastive(queries: q, documents: docs, count: n, candidates: m, dim: dim, scale: scale, dQueries: &dq, dDocuments: &dd)
        let expected = Self.referenceContrastive(q, docs, n: n, m: m, dim: dim, scale: Double(scale))
        #expect(abs(Double(loss) - expected) < 1e-4 * max(1, expected))
        // Scores are scale·cos with scale up to 50: a small step keeps the O(h²·scale³) truncation down.
        let nq = GradientCheck.numeric(q, step: 1e-3) { Self.referenceContrastive($0, docs, n: n, m: m, dim: dim, scale: Double(scale)) }
        let nd = GradientCheck.numeric(docs, step: 1e-3) { Self.referenceContrastive(q, $0, n: n, m: m, dim: dim, scale: Double(scale)) }
        #expect(GradientCheck.relativeError(dq, nq) < GradientCheck.tolerance)
        #expect(GradientCheck.relativeError(dd, nd) < GradientCheck.tolerance)
    }
}
