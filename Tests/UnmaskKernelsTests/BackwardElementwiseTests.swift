import Foundation
import Testing
import UnmaskKernels
import UnmaskTestSupport

/// RMSNorm, RoPE and SwiGLU backward passes against finite differences of the fast forwards.
@Suite struct BackwardElementwiseTests {
    // Not dim 1: there y ≈ w·sign(x), whose true dx ≈ 0 leaves a relative check only noise.
    @Test(arguments: [3, 20, 48])
    func rmsNormGradientsMatchFiniteDifferences(dim: Int) {
        var rng = SeededRandom(seed: 21)
        let rows = 4
        let x = rng.floats(rows * dim, scale: 2), w = rng.floats(dim), r = rng.floats(rows * dim)
        func loss(_ x: [Float], _ w: [Float]) -> Double {
            var out = [Float](repeating: 0, count: rows * dim)
            Kernels.rmsNorm(x, weight: w, rows: rows, dim: dim, eps: 1e-5, out: &out)
            return GradientCheck.dot(out, r)
        }
        var out = [Float](repeating: 0, count: rows * dim), inverse = [Float](repeating: 0, count: rows)
        Kernels.rmsNorm(x, weight: w, rows: rows, dim: dim, eps: 1e-5, out: &out, inverseRMS: &inverse)
        var dx = [Float](repeating: 0, count: rows * dim), dw = [Float](repeating: 0, count: dim)
        Backward.rmsNorm(dOut: r, input: x, weight: w, inverseRMS: inverse, rows: rows, dim: dim, dInput: &dx, dWeight: &dw)
        let h = GradientCheck.floatStep
        #expect(GradientCheck.relativeError(dx, GradientCheck.numeric(x, step: h) { loss($0, w) }) < GradientCheck.tolerance)
        #expect(GradientCheck.relativeError(dw, GradientCheck.numeric(w, step: h) { loss(x, $0) }) < GradientCheck.tolerance)

        // The residual stream's gradient arrives first; the norm's adds to it.
        let start = rng.floats(dx.count), startW = rng.floats(dim)
        var acc = start, accW = startW
        Backward.rmsNorm(dOut: r, input: x, weight: w, inverseRMS: inverse, rows: rows, dim: dim, dInput: &acc, dWeight: &accW, accumulate: true)
        #expect(Compare.maxAbs(acc, zip(start, dx).map(+)) < 1e-5)
        #expect(Compare.maxAbs(accW, zip(startW, dw).map(+)) < 1e-5)
    }

    @Test func ropeGradientIsTheInverseRotation() {
        var rng = SeededRandom(seed: 22)
        let (tokens, heads, headDim, maxPosition) = (5, 2, 8, 9)
        let half = headDim / 2
        var cosTable = [Float](), sinTable = [Float]()
        for p in 0..<maxPosition {
            for i in 0..<half {
                let angle = Double(p) / pow(10000.0, Double(2 * i) / Double(headDim))
                cosTable.append(Float(cos(angle)))
                sinTable.append(Float(sin(angle)))
            }
        }
        let positions: [Int32] = [0, 3, 8, 2, 5]
        let x = rng.floats(tokens * heads * headDim), r = rng.floats(tokens * heads * headDim)
        for inverse in [false, true] {
            let numeric = GradientCheck.numeric(x, step: GradientCheck.floatStep) { x in
                var y = x
                Kernels.rope(&y, tokens: tokens, heads: heads, headDim: headDim, positions: positions, cos: cosTable, sin: sinTable, inverse: inverse)
                return GradientCheck.dot(y, r)
            }
            var dx = r
            Backward.rope(&dx, tokens: tokens, heads: heads, headDim: headDim, positions: positions, cos: cosTable, sin: sinTable, forwardWasInverse: inverse)
            #expect(GradientCheck.relativeError(dx, numeric) < GradientCheck.tolerance)
        }
    }

    @Test(arguments: [7, 37])
    func siluMulGradientsMatchFiniteDifferences(count n: Int) {
        var rng = SeededRandom(seed: 23)
        let gate = rng.floats(n, scale: 4), up = rng.floats(n, scale: 2), r = rng.floats(n)
        func loss(_ g: [Float], _ u: [Float]) -> Double {
            var out = [Float](repeating: 0, count: n)
            Kernels.siluMul(gate: g, up: u, out: &out, count: n)
            return GradientCheck.dot(out, r)
        }
        var dg = [Float](repeating: 0, count: n), du = [Float](repeating: 0, count: n)
        Backward.siluMul(dOut: r, gate: gate, up: up, dGate: &dg, dUp: &du, count: n)
        let h = GradientCheck.floatStep
        #expect(GradientCheck.relativeError(dg, GradientCheck.numeric(gate, step: h) { loss($0, up) }) < GradientCheck.tolerance)
        #expect(GradientCheck.relativeError(du, GradientCheck.numeric(up, step: h) { loss(gate, $0) }) < GradientCheck.tolerance)

        // In place over the activations gives the same gradients.
        var g = gate, u = up
        g.withUnsafeMutableBufferPointer { gp in
            u.withUnsafeMutableBufferPointer { up in
                Backward.siluMul(dOut: r, gate: gp.baseAddress!, up: up.baseAddress!, dGate: gp.baseAddress!, dUp: up.baseAddress!, count: n)
            }
        }
        #expect(g == dg && u == du)
    }

    @Test(arguments: [7, 37])
    func geluTanhMulGradientsMatchFiniteDifferences(count n: Int) {
        var rng = SeededRandom(seed: 24)
        let gate = rng.floats(n, scale: 4), up = rng.floats(n, scale: 2), r = rng.floats(n)
        func loss(_ g: [Float], _ u: [Float]) -> Double {
            var out = [Float](repeating: 0, count: n)
            Kernels.geluTanhMul(gate: g, up: u, out: &out, count: n)
            return GradientCheck.dot(out, r)
        }
        var dg = [Float](repeating: 0, count: n), du = [Float](repeating: 0, count: n)
        Backward.gatedActivation(.geluTanh, dOut: r, gate: gate, up: up, dGate: &dg, dUp: &du, count: n)
        let h = GradientCheck.floatStep
        #expect(GradientCheck.relativeError(dg, GradientCheck.numeric(gate, step: h) { loss($0, up) }) < GradientCheck.tolerance)
        #expect(GradientCheck.relativeError(du, GradientCheck.numeric(up, step: h) { loss(gate, $0) }) < GradientCheck.tolerance)
    }
}
