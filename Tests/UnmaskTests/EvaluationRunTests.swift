import Foundation
import Testing
@testable import Unmask
import UnmaskTestSupport

/// A deterministic bag-of-words embedder: each word adds 1 to a hashed dimension. It records what
/// it was asked to embed.
final class BagOfWordsEmbedder: TextEmbedder, @unchecked Sendable {
    let dimension = 64
    var label: String { "bag-of-words" }
    var seen: [EncoderInput] = []

    func encode(_ inputs: [EncoderInput], progress: ((Int, Int) -> Void)?) throws -> [[Float]] {
        seen += inputs
        let vectors = inputs.map { input -> [Float] in
            var v = [Float](repeating: 0, count: dimension)
            for word in input.text.lowercased().split(whereSeparator: { !$0.isLetter && !$0.isNumber }) {
                v[Int(Checksum.hex(String(word)).prefix(8), radix: 16)! % dimension] += 1
            }
            return v
        }
        progress?(inputs.count, inputs.count)
        return vectors
    }
}

@Suite struct EvaluationRunTests {
    /// One small task of each type, with words the bag-of-words embedder can match.
    static func tinyTasks() -> [EvalTask] {
        let colors = ["red", "green", "blue"], animals = ["cat", "dog", "horse"]
        let sts = EvalTask(spec: EvalTaskSpec(name: "TinySTS", type: .sts, family: "STS", description: "", source: "test", instruction: "Retrieve semantically similar text"),
                           data: .sts([ScoredPair("red cat", "red cat", score: 5), ScoredPair("red cat", "red dog", score: 3),
                                       ScoredPair("red cat", "blue horse", score: 0), ScoredPair("green dog", "green dog sleeps", score: 4)]))
        let corpus = colors.flatMap { c in animals.map { a in IdentifiedText(id: "\(c)-\(a)", text: "the \(c) \(a) runs far away") } }
        let queries = corpus.map { IdentifiedText(id: "q-\($0.id)", text: $0.id.replacingOccurrences(of: "-", with: " ")) }
        let qrels = corpus.map { RelevanceJudgement(queryId: "q-\($0.id)", corpusId: $0.id) }
        let retrieval = EvalTask(spec: EvalTaskSpec(name: "TinyRetrieval", type: .retrieval, family: "Retrieval", description: "", source: "test", instruction: "Find the sentence"),
                                 data: .retrieval(corpus: corpus, queries: queries, qrels: qrels))
        var items: [LabeledText] = []
        for i in 0..<24 { items.append(LabeledText("\(colors[i % 3]) \(colors[i % 3]) thing \(i)", label: colors[i % 3], split: i % 4 == 3 ? "test" : "train")) }
        let clustering = EvalTask(spec: EvalTaskSpec(name: "TinyClustering", type: .clustering, family: "Clustering", description: "", source: "test", instruction: "Identify the color"),
                                  data: .clustering(items.map { LabeledText($0.text, label: $0.label) }))
        let classification = EvalTask(spec: EvalTaskSpec(name: "TinyClassification", type: .classification, family: "Classification", description: "", source: "test", instruction: "Classify the color"),
                                      data: .classification(items))
        return [sts, retrieval, clustering, classification]
    }

    @Test func everyTaskTypeScoresAnEasyProblemWell() throws {
        let embedder = BagOfWordsEmbedder()
        let evaluator = try Evaluator(embedder: embedder, options: EvaluationOptions())
        let results = try Self.tinyTasks().map { try evaluator.run($0) }
        #expect(results[0].mainScoreName == "cosine_spearman" && results[0].mainScore == 1)
        #expect(results[1].mainScoreName == "ndcg_at_10" && results[1].mainScore == 1)
        #expect(results[1].scores["mrr_at_10"] == 1 && results[1].scores["recall_at_100"] == 1)
        #expect(results[2].mainScoreName == "v_measure" && results[2].mainScore > 0.99)
        #expect(results[3].mainScoreName == "accuracy" && results[3].mainScore == 1 && results[3].scores["f1"] == 1)
        // Each distinct text is embedded once per task.
        #expect(results[0].textsEmbedded == 5)
    }

    @Test func instructionsGoToQueriesOnlyAndCanBeSwitchedOff() throws {
        let retrieval = Self.tinyTasks()[1]
        let embedder = BagOfWordsEmbedder()
        _ = try Evaluator(embedder: embedder, options: EvaluationOptions()).run(retrieval)
        #expect(embedder.seen.filter { $0.text.hasPrefix("the ") }.allSatisfy { $0.instruction.isEmpty })
        #expect(embedder.seen.filter { !$0.text.hasPrefix("the ") }.allSatisfy { $0.instruction == "Find the sentence" })
        let plain = BagOfWordsEmbedder()
        var options = EvaluationOptions()
        options.useInstructions = false
        _ = try Evaluator(embedder: plain, options: options).run(Self.tinyTasks()[0])
        #expect(plain.seen.allSatisfy { $0.instruction.isEmpty })
    }

    @Test func theCacheServesRepeatedRuns() throws {
        var options = EvaluationOptions()
        options.cacheDirectory = try Fixtures.temporaryDirectory("eval-cache")
        let first = BagOfWordsEmbedder()
        let before = try Self.tinyTasks().map { try Evaluator(embedder: first, options: options).run($0) }
        #expect(before.allSatisfy { $0.textsFromCache == 0 })
        let second = BagOfWordsEmbedder()
        let after = try Self.tinyTasks().map { try Evaluator(embedder: second, options: options).run($0) }
        #expect(second.seen.isEmpty)
        #expect(after.allSatisfy { $0.textsFromCache == $0.textsEmbedded })
        for (a, b) in zip(before, after) { #expect(a.scores == b.scores) }
        // Another identity does not share entries.
        let cache = try EmbeddingCache(directory: options.cacheDirectory!, identity: "other", dimension: 64)
        #expect(cache.count == 0)
    }

    @Test func reportsAreMTEBJSONMarkdownAndSVG() throws {
        let evaluator = try Evaluator(embedder: BagOfWordsEmbedder(), options: EvaluationOptions())
        let results = try Self.tinyTasks().map { try evaluator.run($0) }
        let json = try JSONSerialization.jsonObject(with: EvalReports.mtebJSON(results[1], model: "bow", settings: [:])) as! [String: Any]
        #expect(json["task_name"] as? String == "TinyRetrieval")
        let test = ((json["scores"] as! [String: Any])["test"] as! [[String: Any]])[0]
        #expect(test["main_score"] as? Double == 1 && test["ndcg_at_10"] as? Double == 1 && test["hf_subset"] as? String == "default")

        let table = EvalReports.markdownTable(results)
        #expect(table.contains("| TinyRetrieval | Retrieval | ndcg_at_10 | 100.00 |"))
        let runs = [(name: "a", results: results), (name: "b", results: Array(results.prefix(2)))]
        let comparison = EvalReports.comparisonTable(runs)
        #expect(comparison.contains("| TinyClustering | v_measure |") && comparison.contains("| – |"))
        #expect(EvalReports.familyTable(runs).contains("**Average (tasks)**"))
        let svg = EvalReports.barChart(title: "t <&>", categories: results.map(\.task), series: [("a", results.map { Optional($0.mainScore) }), ("b", [0.5, nil, -0.2, 0.1])])
        #expect(svg.hasPrefix("<svg") && svg.hasSuffix("</svg>\n") && svg.contains("t &lt;&amp;&gt;"))
        #expect(svg.components(separatedBy: "<rect").count - 1 == 1 + 4 + 3 + 2) // background, bars, legend
    }

    @Test func aStudyWritesEveryConfigurationAndTheComparison() throws {
        let output = try Fixtures.temporaryDirectory("eval-study")
        let configurations = [EvaluationRun.Configuration(name: "bag one") { BagOfWordsEmbedder() },
                              EvaluationRun.Configuration(name: "bag two") { BagOfWordsEmbedder() }]
        var finished: [String] = []
        var observer = EvaluationRun.Observer()
        observer.taskFinished = { configuration, result in finished.append("\(configuration)/\(result.task)") }
        let outcomes = try EvaluationRun.run(configurations, tasks: Self.tinyTasks(), options: EvaluationOptions(), output: output, settings: ["limit": "none"], observer: observer)
        #expect(finished.count == 8)
        try EvaluationRun.writeComparison(outcomes, output: output, title: "Tiny", command: "unmask study", settings: [:])
        for file in ["study.md", "study.svg", "study-families.svg", "study.json", "bag-one/TinySTS.json", "bag-two/TinyClassification.json"] {
            #expect(FileManager.default.fileExists(atPath: output.appendingPathComponent(file).path), "\(file)")
        }
        let markdown = try String(contentsOf: output.appendingPathComponent("study.md"), encoding: .utf8)
        #expect(markdown.contains("| Retrieval | ") && markdown.contains("bag one"))
    }
}
