import Foundation

/// The scores MTEB reports, with scikit-learn / scipy / pytrec_eval definitions. Each is checked
/// against those libraries in `Tests/UnmaskTests/EvaluationMetricsTests.swift`.
public enum Metrics {
    // MARK: Vectors

    public static func cosine(_ a: [Float], _ b: [Float]) -> Double {
        var dot = 0.0, na = 0.0, nb = 0.0
        for i in a.indices {
            dot += Double(a[i]) * Double(b[i]); na += Double(a[i]) * Double(a[i]); nb += Double(b[i]) * Double(b[i])
        }
        let norm = (na * nb).squareRoot()
        return norm > 0 ? dot / norm : 0
    }

    public static func euclidean(_ a: [Float], _ b: [Float]) -> Double {
        var sum = 0.0
        for i in a.indices { let d = Double(a[i]) - Double(b[i]); sum += d * d }
        return sum.squareRoot()
    }

    /// Unit-length copies (zero vectors stay zero), for cosine similarity as dot products.
    public static func normalized(_ vectors: [[Float]]) -> [[Float]] {
        vectors.map { v in
            let norm = v.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            return norm > 0 ? v.map { Float(Double($0) / norm) } : v
        }
    }

    // MARK: Correlation (scipy.stats)

    /// Pearson's r (`scipy.stats.pearsonr`); 0 when either side is constant.
    public static func pearson(_ x: [Double], _ y: [Double]) -> Double {
        precondition(x.count == y.count)
        guard x.count > 1 else { return 0 }
        let mx = x.reduce(0, +) / Double(x.count), my = y.reduce(0, +) / Double(y.count)
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for i in x.indices {
            let dx = x[i] - mx, dy = y[i] - my
            sxy += dx * dy; sxx += dx * dx; syy += dy * dy
        }
        guard sxx > 0, syy > 0 else { return 0 }
        return max(-1, min(1, sxy / (sxx * syy).squareRoot()))
    }

    /// Ranks from 1, ties given their average rank (`scipy.stats.rankdata(method="average")`).
    public static func ranks(_ values: [Double]) -> [Double] {
        let order = values.indices.sorted { values[$0] < values[$1] }
        var result = [Double](repeating: 0, count: values.count)
        var start = 0
        while start < order.count {
            var end = start
            while end + 1 < order.count, values[order[end + 1]] == values[order[start]] { end += 1 }
            let average = Double(start + end) / 2 + 1
            for k in start...end { result[order[k]] = average }
            start = end + 1
        }
        return result
    }

    /// Spearman's ρ (`scipy.stats.spearmanr`): Pearson's r of the average ranks.
    public static func spearman(_ x: [Double], _ y: [Double]) -> Double {
        pearson(ranks(x), ranks(y))
    }

    // MARK: Retrieval (pytrec_eval / BEIR definitions, as MTEB reports them)

    /// For each query, corpus indices sorted by score, highest first; ties by corpus order.
    public static func ranking(_ scores: [Double]) -> [Int] {
        scores.indices.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
    }

    /// nDCG@k with linear gains and log2(rank + 1) discounts; the ideal ranking comes from all
    /// judged documents (`ndcg_cut_k` in trec_eval, `sklearn.metrics.ndcg_score` when every
    /// judged document is in the corpus).
    public static func ndcg(ranked: [Int], relevance: [Int: Double], k: Int) -> Double {
        var dcg = 0.0
        for (position, doc) in ranked.prefix(k).enumerated() {
            if let gain = relevance[doc], gain > 0 { dcg += gain / log2(Double(position) + 2) }
        }
        let ideal = relevance.values.filter { $0 > 0 }.sorted(by: >)
        var idcg = 0.0
        for (position, gain) in ideal.prefix(k).enumerated() { idcg += gain / log2(Double(position) + 2) }
        return idcg > 0 ? dcg / idcg : 0
    }

    /// Reciprocal rank of the first relevant document within the top k, else 0.
    public static func reciprocalRank(ranked: [Int], relevance: [Int: Double], k: Int) -> Double {
        for (position, doc) in ranked.prefix(k).enumerated() where (relevance[doc] ?? 0) > 0 { return 1 / Double(position + 1) }
        return 0
    }

    /// Share of the relevant documents found in the top k.
    public static func recall(ranked: [Int], relevance: [Int: Double], k: Int) -> Double {
        let relevant = relevance.filter { $0.value > 0 }.count
        guard relevant > 0 else { return 0 }
        return Double(ranked.prefix(k).filter { (relevance[$0] ?? 0) > 0 }.count) / Double(relevant)
    }

    /// Average precision cut at k, divided by the number of relevant documents (trec_eval `map_cut_k`).
    public static func averagePrecision(ranked: [Int], relevance: [Int: Double], k: Int) -> Double {
        let relevant = relevance.filter { $0.value > 0 }.count
        guard relevant > 0 else { return 0 }
        var hits = 0, sum = 0.0
        for (position, doc) in ranked.prefix(k).enumerated() where (relevance[doc] ?? 0) > 0 {
            hits += 1
            sum += Double(hits) / Double(position + 1)
        }
        return sum / Double(relevant)
    }

    // MARK: Clustering (sklearn.metrics.cluster)

    private static func entropy(_ counts: [Int], total: Int) -> Double {
        var h = 0.0
        for count in counts where count > 0 {
            let p = Double(count) / Double(total)
            h -= p * log(p)
        }
        return h
    }

    /// Homogeneity, completeness and V-measure (`homogeneity_completeness_v_measure`, beta 1).
    public static func vMeasure<A: Hashable, B: Hashable>(labels: [A], clusters: [B]) -> (homogeneity: Double, completeness: Double, vMeasure: Double) {
        precondition(labels.count == clusters.count)
        let n = labels.count
        guard n > 0 else { return (1, 1, 1) }
        var joint: [Pair<A, B>: Int] = [:], classCounts: [A: Int] = [:], clusterCounts: [B: Int] = [:]
        for i in 0..<n {
            joint[Pair(a: labels[i], b: clusters[i]), default: 0] += 1
            classCounts[labels[i], default: 0] += 1
            clusterCounts[clusters[i], default: 0] += 1
        }
        let hC = entropy(Array(classCounts.values), total: n)
        let hK = entropy(Array(clusterCounts.values), total: n)
        // Mutual information of the contingency table.
        var mi = 0.0
        for (pair, count) in joint {
            let pxy = Double(count) / Double(n)
            mi += pxy * log(Double(count) * Double(n) / (Double(classCounts[pair.a]!) * Double(clusterCounts[pair.b]!)))
        }
        let homogeneity = hC > 0 ? mi / hC : 1
        let completeness = hK > 0 ? mi / hK : 1
        let v = homogeneity + completeness > 0 ? 2 * homogeneity * completeness / (homogeneity + completeness) : 0
        return (homogeneity, completeness, v)
    }

    struct Pair<A: Hashable, B: Hashable>: Hashable { let a: A; let b: B }

    // MARK: Classification (sklearn.metrics)

    public static func accuracy<L: Equatable>(truth: [L], predicted: [L]) -> Double {
        guard !truth.isEmpty else { return 0 }
        return Double(zip(truth, predicted).filter { $0 == $1 }.count) / Double(truth.count)
    }

    /// Per-label F1 over the labels in `truth` ∪ `predicted` (zero_division = 0), averaged plainly
    /// (`average="macro"`) or weighted by support (`average="weighted"`).
    public static func f1<L: Hashable & Comparable>(truth: [L], predicted: [L], weighted: Bool = false) -> Double {
        let labels = Set(truth).union(predicted).sorted()
        guard !labels.isEmpty else { return 0 }
        var total = 0.0, weights = 0.0
        for label in labels {
            var tp = 0, fp = 0, fn = 0
            for (t, p) in zip(truth, predicted) {
                if p == label && t == label { tp += 1 } else if p == label { fp += 1 } else if t == label { fn += 1 }
            }
            let denominator = 2 * tp + fp + fn
            let f = denominator > 0 ? 2 * Double(tp) / Double(denominator) : 0
            let weight = weighted ? Double(tp + fn) : 1
            total += weight * f
            weights += weight
        }
        return weights > 0 ? total / weights : 0
    }

    // MARK: Summaries

    public static func mean(_ values: [Double]) -> Double { values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count) }

    /// Population standard deviation (numpy's default, as MTEB's `*_stderr` fields use).
    public static func standardDeviation(_ values: [Double]) -> Double {
        guard values.count > 1 else { return 0 }
        let m = mean(values)
        return (values.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(values.count)).squareRoot()
    }
}
