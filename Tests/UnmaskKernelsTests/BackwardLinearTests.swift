import Testing
import UnmaskKernels
import UnmaskTestSupport

@Suite struct BackwardLinearTests {
    @Test(arguments: [false, true])
    func linearGradientsMatchFiniteDifferences(withBias: Bool) {
        var rng = SeededRandom(seed: 11)
        let (rows, k, n) = (5, 12, 7)
        let x = rng.floats(rows * k), w = rng.floats(n * k), bias = withBias ? rng.floats(n) : nil, r = rng.floats(rows * n)
        func loss(_ x: [Float], _ w: [Float], _ bias: [Float]?) -> Double {
            var out = [Float](repeating: 0, count: rows * n)
            out.withUnsafeMutableBufferPointer { Kernels.linear(x, rows: rows, inFeatures: k, weight: w, outFeatures: n, bias: bias, out: $0.baseAddress!) }
            return GradientCheck.dot(out, r)
        }
        var dx = [Float](repeating: 0, count: rows * k), dw = [Float](repeating: 0, count: n * k), db = [Float](repeating: 0, count: n)
        Backward.linear(dOut: r, rows: rows, outFeatures: n, weight: w, inFeatures: k, dInput: &dx)
        db.withUnsafeMutableBufferPointer { dbp in
            Backward.linearParameters(dOut: r, input: x, rows: rows, inFeatures: k, outFeatures: n, dWeight: &dw, dBias: withBias ? dbp.baseAddress! : nil)
        }
        let h = GradientCheck.floatStep
        #expect(GradientCheck.relativeError(dx, GradientCheck.numeric(x, step: h) { loss($0, w, bias) }) < GradientCheck.tolerance)
        #expect(GradientCheck.relativeError(dw, GradientCheck.numeric(w, step: h) { loss(x, $0, bias) }) < GradientCheck.tolerance)
        if let bias {
            #expect(GradientCheck.relativeError(db, GradientCheck.numeric(bias, step: h) { loss(x, w, $0) }) < GradientCheck.tolerance)
        }
    }

    struct LoRACase: Sendable, CustomStringConvertible {
        var rows: Int, k: Int, n: Int, rank: Int, scaling: Float
        var description: String { "rows \(rows) in \(k) out \(n) r \(rank) s \(scaling)" }
    }

    @Test(arguments: [LoRACase(rows: 5, k: 12, n: 7, rank: 3, scaling: 2), LoRACase(rows: 1, k: 4, n: 9, rank: 1, scaling: 0.5)])
    func loraGradientsMatchFiniteDifferences(_ c: LoRACase) {
        var rng = SeededRandom(seed: 12)
        let x = rng.floats(c.rows * c.k), w = rng.floats(c.n * c.k), bias = rng.floats(c.n)
        let a = rng.floats(c.rank * c.k), b = rng.floats(c.n * c.rank), r = rng.floats(c.rows * c.n)
        func forward(_ x: [Float], _ a: [Float], _ b: [Float], xA: inout [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: c.rows * c.n)
            // The frozen layer, then the adapter's branch added to it.
            Kernels.linear(x, rows: c.rows, inFeatures: c.k, weight: w, outFeatures: c.n, bias: bias, out: &out)
            Backward.loraForward(x, rows: c.rows, inFeatures: c.k, outFeatures: c.n,
                                 loraA: a, loraB: b, rank: c.rank, scaling: c.scaling, xA: &xA, out: &out)
            return out
        }
        func loss(_ x: [Float], _ a: [Float], _ b: [Float]) -> Double {
            var xA = [Float](repeating: 0, count: c.rows * c.rank)
            return GradientCheck.dot(forward(x, a, b, xA: &xA), r)
        }
        var xA = [Float](repeating: 0, count: c.rows * c.rank)
        let out = forward(x, a, b, xA: &xA)
        // The adapter adds s·x·Aᵀ·Bᵀ to the frozen layer: check against composing plain linears.
        let base = ReferenceKernels.linear(x, rows: c.rows, inFeatures: c.k, weight: w, outFeatures: c.n, bias: bias)
        let low = ReferenceKernels.linear(x, rows: c.rows, inFeatures: c.k, weight: a, outFeatures: c.rank, bias: nil)
        let delta = ReferenceKernels.linear(low, rows: c.rows, inFeatures: c.rank, weight: b, outFeatures: c.n, bias: nil)
        #expect(Compare.maxAbs(out, zip(base, delta).map { $0 + c.scaling * $1 }) < 1e-4)

        var dA = [Float](repeating: 0, count: c.rank * c.k), dB = [Float](repeating: 0, count: c.n * c.rank)
        var dx = [Float](repeating: 0, count: c.rows * c.k), scratch = [Float](repeating: 0, count: c.rows * c.rank)
        // The branch writes its part of dx, the frozen weight's is added to it.
        Backward.lora(dOut: r, input: x, xA: xA, rows: c.rows, inFeatures: c.k, outFeatures: c.n,
                      loraA: a, loraB: b, rank: c.rank, scaling: c.scaling,
                      dA: &dA, dB: &dB, dInput: &dx, scratch: &scratch)
        Backward.linear(dOut: r, rows: c.rows, outFeatures: c.n, weight: w, inFeatures: c.k, dInput: &dx, accumulate: true)
        let h = GradientCheck.floatStep
        #expect(GradientCheck.relativeError(dA, GradientCheck.numeric(a, step: h) { loss(x, $0, b) }) < GradientCheck.tolerance)
        #expect(GradientCheck.relativeError(dB, GradientCheck.numeric(b, step: h) { loss(x, a, $0) }) < GradientCheck.tolerance)
        #expect(GradientCheck.relativeError(dx, GradientCheck.numeric(x, step: h) { loss($0, a, b) }) < GradientCheck.tolerance)

        // Accumulating adds onto what is there (micro-batches for A/B, graph fan-in for x).
        let startA = rng.floats(dA.count), startB = rng.floats(dB.count), startX = rng.floats(dx.count)
        var accA = startA, accB = startB, accX = startX
        Backward.lora(dOut: r, input: x, xA: xA, rows: c.rows, inFeatures: c.k, outFeatures: c.n,
                      loraA: a, loraB: b, rank: c.rank, scaling: c.scaling,
                      dA: &accA, dB: &accB, dInput: &accX, scratch: &scratch,
                      accumulateParameters: true, accumulateInput: true)
        Backward.linear(dOut: r, rows: c.rows, outFeatures: c.n, weight: w, inFeatures: c.k, dInput: &accX, accumulate: true)
        #expect(Compare.maxAbs(accA, zip(startA, dA).map(+)) < 1e-5)
        #expect(Compare.maxAbs(accB, zip(startB, dB).map(+)) < 1e-5)
        #expect(Compare.maxAbs(accX, zip(startX, dx).map(+)) < 1e-5)
    }

    @Test func loraWithZeroBGivesGradientOnlyToB() {
        // PEFT initializes B to zero: the first step must move B and leave A's gradient at zero.
        var rng = SeededRandom(seed: 13)
        let (rows, k, n, rank) = (4, 6, 5, 2)
        let x = rng.floats(rows * k), w = rng.floats(n * k), a = rng.floats(rank * k), r = rng.floats(rows * n)
        let b = [Float](repeating: 0, count: n * rank)
        var xA = [Float](repeating: 0, count: rows * rank), out = [Float](repeating: 0, count: rows * n)
        Kernels.linear(x, rows: rows, inFeatures: k, weight: w, outFeatures: n, bias: nil, out: &out)
        Backward.loraForward(x, rows: rows, inFeatures: k, outFeatures: n, loraA: a, loraB: b, rank: rank, scaling: 2, xA: &xA, out: &out)
        var dA = [Float](repeating: 1, count: rank * k), dB = [Float](repeating: 0, count: n * rank), scratch = [Float](repeating: 0, count: rows * rank)
        Backward.lora(dOut: r, input: x, xA: xA, rows: rows, inFeatures: k, outFeatures: n, loraA: a, loraB: b, rank: rank, scaling: 2,
                      dA: &dA, dB: &dB, dInput: nil, scratch: &scratch)
        #expect(dA.allSatisfy { $0 == 0 })
        #expect(dB.contains { $0 != 0 })
    }
}
