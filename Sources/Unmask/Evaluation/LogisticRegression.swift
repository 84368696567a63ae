import Foundation

/// L2-regularized logistic regression as scikit-learn's `LogisticRegression()` defines it
/// (C = 1, intercept not penalized; binary problems use one logit, more classes the multinomial
/// model), minimized with L-BFGS. `maxIterations` 100 is scikit-learn's and MTEB's default.
public struct LogisticRegression {
    public var c = 1.0
    public var maxIterations = 100
    public var tolerance = 1e-4

    public private(set) var classes = 0
    /// [outputs][features + 1]: weights, then the intercept.
    public private(set) var weights: [[Double]] = []

    public init(c: Double = 1, maxIterations: Int = 100, tolerance: Double = 1e-4) {
        self.c = c
        self.maxIterations = maxIterations
        self.tolerance = tolerance
    }

    /// `labels` are class indices 0..<classes.
    public mutating func fit(_ features: [[Double]], labels: [Int], classes: Int) {
        self.classes = classes
        let n = features.count, d = features.first?.count ?? 0
        let outputs = classes <= 2 ? 1 : classes
        let width = d + 1
        // scikit-learn's scaling: mean loss + ||W||² / (2 C n), so `tolerance` means what its `tol` does.
        let scale = 1 / Double(max(n, 1)), l2 = 1 / (self.c * Double(max(n, 1)))
        func objective(_ w: [Double]) -> (Double, [Double]) {
            var loss = 0.0
            var gradient = [Double](repeating: 0, count: w.count)
            var z = [Double](repeating: 0, count: outputs)
            for i in 0..<n {
                let xi = features[i]
                for o in 0..<outputs {
                    var s = w[o * width + d]
                    for t in 0..<d { s += w[o * width + t] * xi[t] }
                    z[o] = s
                }
                var residual = [Double](repeating: 0, count: outputs)
                if outputs == 1 {
                    let y = labels[i] == 1 ? 1.0 : 0.0
                    // log(1 + exp(z)) - y z, computed stably.
                    loss += (z[0] > 0 ? z[0] + log1p(exp(-z[0])) : log1p(exp(z[0]))) - y * z[0]
                    residual[0] = 1 / (1 + exp(-z[0])) - y
                } else {
                    let m = z.max()!
                    let sum = z.reduce(0) { $0 + exp($1 - m) }
                    let logSum = m + log(sum)
                    loss += logSum - z[labels[i]]
                    for o in 0..<outputs { residual[o] = exp(z[o] - logSum) - (o == labels[i] ? 1 : 0) }
                }
                for o in 0..<outputs where residual[o] != 0 {
                    let r = scale * residual[o]
                    for t in 0..<d { gradient[o * width + t] += r * xi[t] }
                    gradient[o * width + d] += r
                }
            }
            var value = scale * loss
            for o in 0..<outputs {
                for t in 0..<d {
                    let wt = w[o * width + t]
                    value += 0.5 * l2 * wt * wt
                    gradient[o * width + t] += l2 * wt
                }
            }
            return (value, gradient)
        }
        let solution = LBFGS.minimize(objective, start: [Double](repeating: 0, count: outputs * width), maxIterations: maxIterations, tolerance: tolerance)
        weights = (0..<outputs).map { Array(solution[($0 * width)..<(($0 + 1) * width)]) }
    }

    /// Class probabilities for one sample.
    public func probabilities(_ x: [Double]) -> [Double] {
        let d = x.count
        let z = weights.map { w in (0..<d).reduce(w[d]) { $0 + w[$1] * x[$1] } }
        if z.count == 1 {
            let p = 1 / (1 + exp(-z[0]))
            return [1 - p, p]
        }
        let m = z.max()!
        let e = z.map { exp($0 - m) }
        let sum = e.reduce(0, +)
        return e.map { $0 / sum }
    }

    public func predict(_ x: [Double]) -> Int {
        let p = probabilities(x)
        return p.indices.max { p[$0] < p[$1] || (p[$0] == p[$1] && $0 > $1) }!
    }
}

/// Limited-memory BFGS with a backtracking (Armijo) line search.
enum LBFGS {
    static func minimize(_ f: ([Double]) -> (Double, [Double]), start: [Double], maxIterations: Int, tolerance: Double, memory: Int = 10) -> [Double] {
        var x = start
        var (value, gradient) = f(x)
        var s: [[Double]] = [], y: [[Double]] = [], rho: [Double] = []
        func dot(_ a: [Double], _ b: [Double]) -> Double { var r = 0.0; for i in a.indices { r += a[i] * b[i] }; return r }
        for _ in 0..<maxIterations {
            if gradient.map(abs).max() ?? 0 <= tolerance { break }
            // Two-loop recursion for the search direction.
            var q = gradient
            var alphas = [Double](repeating: 0, count: s.count)
            for i in stride(from: s.count - 1, through: 0, by: -1) {
                alphas[i] = rho[i] * dot(s[i], q)
                for j in q.indices { q[j] -= alphas[i] * y[i][j] }
            }
            let gamma = s.isEmpty ? 1 / max(1, gradient.map(abs).max()!) : dot(s.last!, y.last!) / dot(y.last!, y.last!)
            for j in q.indices { q[j] *= gamma }
            for i in 0..<s.count {
                let beta = rho[i] * dot(y[i], q)
                for j in q.indices { q[j] += s[i][j] * (alphas[i] - beta) }
            }
            var direction = q.map { -$0 }
            var slope = dot(gradient, direction)
            if slope >= 0 { direction = gradient.map { -$0 }; slope = -dot(gradient, gradient); s = []; y = []; rho = [] }
            var step = 1.0
            var candidate = x, next = (value, gradient)
            var accepted = false
            for _ in 0..<40 {
                candidate = zip(x, direction).map { $0 + step * $1 }
                next = f(candidate)
                if next.0 <= value + 1e-4 * step * slope { accepted = true; break }
                step *= 0.5
            }
            if !accepted { break }
            let sk = zip(candidate, x).map { $0 - $1 }
            let yk = zip(next.1, gradient).map { $0 - $1 }
            let sy = dot(sk, yk)
            x = candidate
            let previous = value
            (value, gradient) = next
            if sy > 1e-12 {
                s.append(sk); y.append(yk); rho.append(1 / sy)
                if s.count > memory { s.removeFirst(); y.removeFirst(); rho.removeFirst() }
            }
            // scikit-learn's ftol for lbfgs (64 machine epsilons): no relative progress left.
            if (previous - value) <= 64 * Double.ulpOfOne * max(abs(previous), abs(value), 1) { break }
        }
        return x
    }
}
