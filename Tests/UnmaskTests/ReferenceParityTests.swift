import Foundation
import Testing
@testable import Unmask
import UnmaskTestSupport

/// Embeddings against llm2vec 0.2.3 on transformers 4.44.2, from fixtures that
/// scripts/make_model_fixtures.py made. Acceptance: cosine ≥ 0.99999 and relative L2 ≤ 1e-4 for
/// every embedding; identical token ids for every input.
@Suite struct ReferenceParityTests {
    static let models = ["llama3-tied-f32", "llama2-bf16", "mistral-f16-sharded", "qwen2-bias-f32", "smollm-f32", "gemma3-tiny-f32", "qwen3-tiny-bf16"]

    struct Case {
        let name: String
        let options: EncoderOptions
        let inputs: [EncoderInput]
        let inputIds: [[Int32]]
        let pooledCounts: [Int]
        let embeddings: [[Float]]

        init(_ json: [String: Any]) throws {
            name = json["name"] as! String
            var options = EncoderOptions()
            options.attention = AttentionMode(rawValue: json["attention"] as! String)!
            options.pooling = Pooling(llm2vecName: json["pooling"] as! String)!
            options.maxLength = json["max_length"] as! Int
            options.docMaxLength = json["doc_max_length"] as! Int
            options.batchSize = json["batch_size"] as! Int
            self.options = options
            inputs = (json["inputs"] as! [[String: String]]).map { EncoderInput($0["text"]!, instruction: $0["instruction"]!) }
            inputIds = (json["input_ids"] as! [[Int]]).map { $0.map(Int32.init) }
            pooledCounts = json["pooled_counts"] as! [Int]
            embeddings = (json["embeddings"] as! [[Double]]).map { $0.map(Float.init) }
        }
    }

    static func cases(_ model: String) throws -> [Case] {
        let json = try Fixtures.json("models", model, "expected.json") as! [String: Any]
        return try (json["cases"] as! [[String: Any]]).map(Case.init)
    }

    @Test(arguments: models)
    func embeddingsMatchLLM2Vec(model: String) throws {
        let path = Fixtures.path("models", model)
        for testCase in try Self.cases(model) {
            let encoder = try Encoder(modelPath: path) { $0 = testCase.options }
            let prepared = try testCase.inputs.enumerated().map { try encoder.prepare($0.element, index: $0.offset) }
            #expect(prepared.map(\.ids) == testCase.inputIds, "\(model) \(testCase.name): token ids")
            #expect(prepared.map(\.pooledCount) == testCase.pooledCounts, "\(model) \(testCase.name): pooled token counts")
            let embeddings = try encoder.encode(testCase.inputs)
            for (i, (got, want)) in zip(embeddings, testCase.embeddings).enumerated() {
                #expect(got.allSatisfy { $0.isFinite }, "\(model) \(testCase.name) input \(i): non-finite values")
                if testCase.options.pooling == .weightedMean && testCase.pooledCounts[i] == 0 {
                    // llm2vec returns a zero vector here (its weights are all zero); we weight the
                    // unpadded row instead, a documented difference.
                    #expect(want.allSatisfy { $0 == 0 } && got.contains { $0 != 0 })
                    continue
                }
                let cosine = Compare.cosine(got, want), error = Compare.relativeL2(got, want)
                #expect(cosine >= 0.99999 && error <= 1e-4, "\(model) \(testCase.name) input \(i): cosine \(cosine), relative L2 \(error)")
            }
        }
    }

    /// Bidirectional and causal must differ clearly on these fixtures, or the test above could not
    /// tell a missing mask from a correct one.
    @Test(arguments: models)
    func attentionModesDiffer(model: String) throws {
        let cases = try Self.cases(model)
        let bidirectional = try #require(cases.first { $0.name == "bidirectional-mean" })
        let causal = try #require(cases.first { $0.name == "causal-mean" })
        for (a, b) in zip(bidirectional.embeddings, causal.embeddings) { #expect(Compare.cosine(a, b) < 0.999) }
    }

    @Test(arguments: [["mntp"], ["mntp", "simcse"]])
    func peftAdaptersMatchLLM2Vec(adapters: [String]) throws {
        let base = Fixtures.path("models", "llama2-bf16")
        let json = try Fixtures.json("models", "llama2-bf16", "adapters", "expected.json") as! [String: Any]
        let entries = json["cases"] as! [[String: Any]]
        let entry = try #require(entries.first { ($0["adapters"] as? [String]) == adapters })
        let testCase = try Case(entry)
        let encoder = try Encoder(modelPath: base, adapterPaths: adapters.map { base + "/adapters/" + $0 }) { $0 = testCase.options }
        let embeddings = try encoder.encode(testCase.inputs)
        let plain = try Encoder(modelPath: base) { $0 = testCase.options }.encode(testCase.inputs)
        for (i, (got, want)) in zip(embeddings, testCase.embeddings).enumerated() {
            let cosine = Compare.cosine(got, want), error = Compare.relativeL2(got, want)
            #expect(cosine >= 0.99999 && error <= 1e-4, "adapters \(adapters) input \(i): cosine \(cosine), relative L2 \(error)")
            #expect(Compare.cosine(got, plain[i]) < 0.9999, "the adapter must change the embedding")
        }
    }
}
