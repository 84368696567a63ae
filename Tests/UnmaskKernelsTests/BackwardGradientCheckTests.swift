import Testing
import UnmaskTestSupport

@Suite struct BackwardGradientCheckTests {
    @Test func numericGradientOfACubicIsExact() {
        var rng = SeededRandom(seed: 100)
        let x = rng.floats(9, scale: 2)
        let numeric = GradientCheck.numeric(x, step: 1e-2) { v in v.reduce(0) { $0 + Double($1) * Double($1) * Double($1) } }
        let analytic = x.map { 3 * $0 * $0 }
        #expect(GradientCheck.relativeError(analytic, numeric) < 1e-4)
    }
}
