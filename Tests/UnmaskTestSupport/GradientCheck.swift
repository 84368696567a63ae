/// Central finite differences shared by the backward tests. Each check turns a kernel's output into
/// the scalar L = Σ out ⊙ R for a fixed random R, so dOut = R and the analytic gradients of the
/// backward pass must match the slopes of L.
public enum GradientCheck {
    /// (f(x + h·eᵢ) − f(x − h·eᵢ)) / (actual step) for every i. The step is measured after rounding
    /// to Float, so representation error in x ± h does not bias the quotient.
    public static func numeric(_ x: [Float], step h: Float, _ f: ([Float]) -> Double) -> [Double] {
        var x = x
        var slopes = [Double](repeating: 0, count: x.count)
        for i in x.indices {
            let original = x[i]
            x[i] = original + h
            let up = f(x), hi = x[i]
            x[i] = original - h
            let down = f(x), lo = x[i]
            x[i] = original
            slopes[i] = (up - down) / (Double(hi) - Double(lo))
        }
        return slopes
    }

    /// ‖analytic − numeric‖ / ‖numeric‖ over the whole gradient: one number per tensor, robust to
    /// the tiny entries whose element-wise relative error is all noise.
    public static func relativeError(_ analytic: [Float], _ numeric: [Double]) -> Double {
        precondition(analytic.count == numeric.count)
        var diff = 0.0, norm = 0.0
        for (a, n) in zip(analytic, numeric) { diff += (Double(a) - n) * (Double(a) - n); norm += n * n }
        return (diff / max(norm, 1e-300)).squareRoot()
    }

    /// Σ a ⊙ r in Double.
    public static func dot(_ a: [Float], _ r: [Float]) -> Double {
        zip(a, r).reduce(0) { $0 + Double($1.0) * Double($1.1) }
    }

    /// Float forwards (fast kernels) carry ~1e-7 relative noise per output, which a step of 1e-2
    /// keeps well under the 1e-3 tolerance while the O(h²) truncation stays near 1e-5.
    public static let floatStep: Float = 1e-2
    public static let tolerance = 1e-3
}
