import Foundation
import Testing
@testable import Unmask
import UnmaskTestSupport

/// The Swift metrics against scipy / scikit-learn values from scripts/make_eval_fixtures.py.
@Suite struct EvaluationMetricsTests {
    nonisolated(unsafe) static let fixture = try! Fixtures.json("eval", "metrics.json") as! [String: Any]
    static func cases(_ key: String) -> [[String: Any]] { fixture[key] as! [[String: Any]] }
    static func doubles(_ value: Any?) -> [Double] { (value as! [NSNumber]).map(\.doubleValue) }
    static func ints(_ value: Any?) -> [Int] { (value as! [NSNumber]).map(\.intValue) }

    @Test func spearmanAndPearsonMatchScipy() {
        for entry in Self.cases("correlation") {
            let x = Self.doubles(entry["x"]), y = Self.doubles(entry["y"])
            #expect(Metrics.ranks(x) == Self.doubles(entry["ranks_x"]))
            #expect(abs(Metrics.spearman(x, y) - (entry["spearman"] as! Double)) < 1e-12)
            #expect(abs(Metrics.pearson(x, y) - (entry["pearson"] as! Double)) < 1e-12)
        }
    }

    @Test func constantInputsCorrelateToZero() {
        #expect(Metrics.pearson([1, 1, 1], [1, 2, 3]) == 0)
        #expect(Metrics.spearman([1, 2, 3], [3, 2, 1]) == -1)
    }

    @Test func retrievalMeasuresMatchReferences() {
        for entry in Self.cases("retrieval") {
            let scores = Self.doubles(entry["scores"]), gains = Self.doubles(entry["relevance"])
            var relevance: [Int: Double] = [:]
            for (i, g) in gains.enumerated() where g > 0 { relevance[i] = g }
            let ranked = Metrics.ranking(scores)
            for k in [1, 3, 5, 10, 100] {
                #expect(abs(Metrics.ndcg(ranked: ranked, relevance: relevance, k: k) - (entry["ndcg_at_\(k)"] as! Double)) < 1e-12, "ndcg@\(k)")
                #expect(abs(Metrics.recall(ranked: ranked, relevance: relevance, k: k) - (entry["recall_at_\(k)"] as! Double)) < 1e-12, "recall@\(k)")
                #expect(abs(Metrics.averagePrecision(ranked: ranked, relevance: relevance, k: k) - (entry["map_at_\(k)"] as! Double)) < 1e-12, "map@\(k)")
            }
            #expect(abs(Metrics.reciprocalRank(ranked: ranked, relevance: relevance, k: 10) - (entry["mrr_at_10"] as! Double)) < 1e-12)
        }
    }

    @Test func vMeasureMatchesSklearn() {
        for entry in Self.cases("v_measure") {
            let result = Metrics.vMeasure(labels: Self.ints(entry["labels"]), clusters: Self.ints(entry["clusters"]))
            #expect(abs(result.homogeneity - (entry["homogeneity"] as! Double)) < 1e-12)
            #expect(abs(result.completeness - (entry["completeness"] as! Double)) < 1e-12)
            #expect(abs(result.vMeasure - (entry["v_measure"] as! Double)) < 1e-12)
        }
    }

    @Test func classificationMetricsMatchSklearn() {
        for entry in Self.cases("classification") {
            let truth = Self.ints(entry["truth"]), predicted = Self.ints(entry["predicted"])
            #expect(abs(Metrics.accuracy(truth: truth, predicted: predicted) - (entry["accuracy"] as! Double)) < 1e-12)
            #expect(abs(Metrics.f1(truth: truth, predicted: predicted) - (entry["f1_macro"] as! Double)) < 1e-12)
            #expect(abs(Metrics.f1(truth: truth, predicted: predicted, weighted: true) - (entry["f1_weighted"] as! Double)) < 1e-12)
        }
    }

    @Test func logisticRegressionReachesSklearnsOptimum() {
        for entry in Self.cases("logistic_regression") {
            let classes = entry["classes"] as! Int
            let x = (entry["x"] as! [[NSNumber]]).map { $0.map(\.doubleValue) }
            let test = (entry["test"] as! [[NSNumber]]).map { $0.map(\.doubleValue) }
            var model = LogisticRegression(maxIterations: 5000, tolerance: 1e-10)
            model.fit(x, labels: Self.ints(entry["y"]), classes: classes)
            let coef = (entry["coef"] as! [[NSNumber]]).map { $0.map(\.doubleValue) }
            let intercept = Self.doubles(entry["intercept"])
            #expect(model.weights.count == coef.count)
            for (row, want) in zip(model.weights, coef) {
                for (got, expected) in zip(row.dropLast(), want) { #expect(abs(got - expected) < 1e-4, "coefficient") }
            }
            for (row, want) in zip(model.weights, intercept) { #expect(abs(row.last! - want) < 1e-4, "intercept") }
            let probabilities = (entry["probabilities"] as! [[NSNumber]]).map { $0.map(\.doubleValue) }
            for (sample, want) in zip(test, probabilities) {
                for (got, expected) in zip(model.probabilities(sample), want) { #expect(abs(got - expected) < 1e-5, "probability") }
                let best = want.indices.max { want[$0] < want[$1] }!
                #expect(model.predict(sample) == best)
            }
        }
    }

    @Test func miniBatchKMeansSeparatesBlobsLikeSklearn() {
        let entry = Self.fixture["kmeans"] as! [String: Any]
        let points = (entry["points"] as! [[NSNumber]]).map { $0.map(\.floatValue) }
        let labels = Self.ints(entry["labels"])
        for seed in UInt64(0)..<5 {
            let fitted = MiniBatchKMeans(clusters: 4).fit(points, seed: seed)
            let v = Metrics.vMeasure(labels: labels, clusters: fitted.labels).vMeasure
            #expect(v > 0.99 || abs(v - (entry["sklearn_v_measure"] as! Double)) < 0.05, "seed \(seed): V = \(v)")
        }
        // Same seed, same answer.
        #expect(MiniBatchKMeans(clusters: 4).fit(points, seed: 3).labels == MiniBatchKMeans(clusters: 4).fit(points, seed: 3).labels)
    }

    @Test func checksumsAreSHA256Hex() throws {
        #expect(Checksum.hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Checksum.hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        // A file larger than one read chunk hashes like the same bytes in memory.
        let data = Data((0..<(3 << 20)).map { UInt8($0 % 251) })
        let file = try Fixtures.temporaryDirectory("checksum").appendingPathComponent("data.bin")
        try data.write(to: file)
        #expect(try Checksum.hex(fileAt: file.path) == Checksum.hex(data))
    }
}
