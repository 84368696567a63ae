import Foundation
import UnmaskKernels

/// Mini-batch k-means as scikit-learn's `MiniBatchKMeans` runs it for MTEB (k-means++ seeding on
/// a sample of `3 * batchSize` points, one initialization, per-center learning rates 1/count,
/// early stop after `maxNoImprovement` steps without a better smoothed batch inertia), then every
/// point labelled with its nearest center.
public struct MiniBatchKMeans {
    public var clusters: Int
    public var batchSize = 512
    public var maxIterations = 100
    public var maxNoImprovement = 10

    public init(clusters: Int, batchSize: Int = 512) {
        self.clusters = clusters
        self.batchSize = batchSize
    }

    /// Cluster index for each point.
    public func fit(_ points: [[Float]], seed: UInt64) -> (labels: [Int], centers: [[Double]]) {
        let n = points.count
        guard n > 0 else { return ([], []) }
        let k = min(clusters, n)
        let d = points[0].count
        var random = SplitMix64(seed: seed)
        let x = points.map { $0.map(Double.init) }

        // k-means++ on a sample of the points.
        let initSize = min(n, max(3 * batchSize, k))
        let sample = initSize == n ? Array(0..<n) : Array((0..<n).shuffled(using: &random).prefix(initSize))
        var centers = Self.kMeansPlusPlus(sample.map { x[$0] }, k: k, random: &random)

        var counts = [Double](repeating: 0, count: k)
        let batch = min(batchSize, n)
        let steps = max(1, maxIterations * n / batch)
        var smoothed: Double?
        var best = Double.infinity
        var stale = 0
        for _ in 0..<steps {
            let indices = (0..<batch).map { _ in Int.random(in: 0..<n, using: &random) }
            var inertia = 0.0
            var assignment = [Int](repeating: 0, count: batch)
            for (j, i) in indices.enumerated() {
                let (c, distance) = Self.nearest(x[i], centers)
                assignment[j] = c
                inertia += distance
            }
            for (j, i) in indices.enumerated() {
                let c = assignment[j]
                counts[c] += 1
                let rate = 1 / counts[c]
                for t in 0..<d { centers[c][t] += rate * (x[i][t] - centers[c][t]) }
            }
            inertia /= Double(batch)
            let alpha = min(1, Double(batch) * 2 / Double(n + 1))
            let ewa = smoothed.map { $0 * (1 - alpha) + inertia * alpha } ?? inertia
            smoothed = ewa
            if ewa < best { best = ewa; stale = 0 } else {
                stale += 1
                if stale >= maxNoImprovement { break }
            }
        }
        return (x.map { Self.nearest($0, centers).index }, centers)
    }

    static func nearest(_ point: [Double], _ centers: [[Double]]) -> (index: Int, distance: Double) {
        var best = 0, bestDistance = Double.infinity
        for (c, center) in centers.enumerated() {
            var sum = 0.0
            for t in point.indices { let diff = point[t] - center[t]; sum += diff * diff }
            if sum < bestDistance { bestDistance = sum; best = c }
        }
        return (best, bestDistance)
    }

    /// Greedy k-means++ (2 + log k candidates per step, as scikit-learn does).
    static func kMeansPlusPlus(_ x: [[Double]], k: Int, random: inout SplitMix64) -> [[Double]] {
        let n = x.count
        var centers = [x[Int.random(in: 0..<n, using: &random)]]
        var closest = x.map { point in zip(point, centers[0]).reduce(0.0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } }
        let candidates = 2 + Int(log(Double(k)))
        while centers.count < k {
            let total = closest.reduce(0, +)
            var bestCandidate = 0, bestPotential = Double.infinity, bestDistances = closest
            for _ in 0..<candidates {
                var target = Double.random(in: 0..<max(total, .leastNonzeroMagnitude), using: &random)
                var chosen = n - 1
                for i in 0..<n { target -= closest[i]; if target < 0 { chosen = i; break } }
                let distances = x.indices.map { i in
                    min(closest[i], zip(x[i], x[chosen]).reduce(0.0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) })
                }
                let potential = distances.reduce(0, +)
                if potential < bestPotential { bestPotential = potential; bestCandidate = chosen; bestDistances = distances }
            }
            centers.append(x[bestCandidate])
            closest = bestDistances
        }
        return centers
    }
}
