import Foundation
import Testing
@testable import Unmask
import UnmaskTestSupport

/// Which prompt each task's texts get: a sentence-transformers model's own, by MTEB's names, else
/// the suite's instruction. No model needed: the choice is a function of the task and the prompts.
@Suite struct TaskPromptsTests {
    /// EmbeddingGemma's `config_sentence_transformers.json` prompts (the ones the suite can use).
    static let embeddingGemma = [
        "query": "task: search result | query: ", "document": "title: none | text: ",
        "Clustering": "task: clustering | query: ", "Classification": "task: classification | query: ",
        "Retrieval": "task: search result | query: ", "Retrieval-query": "task: search result | query: ",
        "Retrieval-document": "title: none | text: ", "STS": "task: sentence similarity | query: ",
    ]

    static func spec(_ type: EvalTaskType, family: String) -> EvalTaskSpec {
        EvalTaskSpec(name: "Tiny", type: type, family: family, description: "", source: "test", instruction: "Suite instruction")
    }

    @Test func theModelsPromptsByTaskType() {
        let prompts = Self.embeddingGemma
        #expect(TaskPrompts.select(Self.spec(.sts, family: "STS"), role: .text, modelPrompts: prompts) == TaskPrompt(name: "STS", text: "task: sentence similarity | query: "))
        // Word similarity is scored as STS, so it takes the STS prompt.
        #expect(TaskPrompts.select(Self.spec(.sts, family: "Word similarity"), role: .text, modelPrompts: prompts).name == "STS")
        #expect(TaskPrompts.select(Self.spec(.clustering, family: "Clustering"), role: .text, modelPrompts: prompts).name == "Clustering")
        #expect(TaskPrompts.select(Self.spec(.classification, family: "Classification"), role: .text, modelPrompts: prompts).name == "Classification")
        let retrieval = Self.spec(.retrieval, family: "Retrieval")
        #expect(TaskPrompts.select(retrieval, role: .query, modelPrompts: prompts) == TaskPrompt(name: "Retrieval-query", text: "task: search result | query: "))
        #expect(TaskPrompts.select(retrieval, role: .document, modelPrompts: prompts) == TaskPrompt(name: "Retrieval-document", text: "title: none | text: "))
    }

    @Test func retrievalFallsBackToTheTypeThenQueryAndDocument() {
        let retrieval = Self.spec(.retrieval, family: "Retrieval")
        let generic = ["query": "Q: ", "document": "D: "]
        #expect(TaskPrompts.select(retrieval, role: .query, modelPrompts: generic) == TaskPrompt(name: "query", text: "Q: "))
        #expect(TaskPrompts.select(retrieval, role: .document, modelPrompts: generic) == TaskPrompt(name: "document", text: "D: "))
        // MTEB prefers the task type's prompt over the generic role's.
        #expect(TaskPrompts.select(retrieval, role: .document, modelPrompts: generic.merging(["Retrieval": "R: "]) { $1 }).name == "Retrieval")
        // "query" is a retrieval role, not a prompt for every task.
        #expect(TaskPrompts.select(Self.spec(.sts, family: "STS"), role: .text, modelPrompts: generic) == TaskPrompt(name: nil, text: "Suite instruction"))
    }

    @Test func withoutAMatchingPromptTheSuitesInstruction() {
        // An LLM2Vec decoder (no prompts): queries and other texts get the instruction, documents none.
        let retrieval = Self.spec(.retrieval, family: "Retrieval")
        #expect(TaskPrompts.select(retrieval, role: .query, modelPrompts: [:]) == TaskPrompt(name: nil, text: "Suite instruction"))
        #expect(TaskPrompts.select(retrieval, role: .document, modelPrompts: [:]) == TaskPrompt(name: nil, text: ""))
        #expect(TaskPrompts.select(Self.spec(.clustering, family: "Clustering"), role: .text, modelPrompts: ["STS": "S: "]) == TaskPrompt(name: nil, text: "Suite instruction"))
        #expect(TaskPrompts.roles(of: .retrieval) == [.query, .document] && TaskPrompts.roles(of: .classification) == [.text])
    }

    @Test func anLLM2VecRunRecordsTheSuitesInstructions() throws {
        // The evaluator's choice for an embedder that is not a sentence-transformers Encoder.
        let tasks = EvaluationRunTests.tinyTasks()
        let evaluator = try Evaluator(embedder: BagOfWordsEmbedder(), options: EvaluationOptions())
        #expect(evaluator.prompts(for: tasks[1].spec) == [.query: TaskPrompt(name: nil, text: "Find the sentence"), .document: TaskPrompt(name: nil, text: "")])
        var off = EvaluationOptions()
        off.useInstructions = false
        let result = try Evaluator(embedder: BagOfWordsEmbedder(), options: off).run(tasks[0])
        #expect(result.prompts == ["text": TaskPrompt(name: nil, text: "")])
    }

    /// The tiny Gemma 3 fixture as a sentence-transformers folder with STS, query and document
    /// prompts (no Clustering one) and a default prompt.
    static func promptedEncoder() throws -> Encoder {
        let folder = try Fixtures.temporaryDirectory("unmask-task-prompts")
        let source = URL(fileURLWithPath: Fixtures.path("models", "gemma3-tiny-f32"))
        for file in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"] {
            try FileManager.default.copyItem(at: source.appendingPathComponent(file), to: folder.appendingPathComponent(file))
        }
        let modules: [[String: Any]] = [["idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"]]
        let config: [String: Any] = ["prompts": ["STS": "S: ", "query": "Q: ", "document": "D: "], "default_prompt_name": "query"]
        try JSONSerialization.data(withJSONObject: modules).write(to: folder.appendingPathComponent("modules.json"))
        try JSONSerialization.data(withJSONObject: config).write(to: folder.appendingPathComponent("config_sentence_transformers.json"))
        return try Encoder(modelPath: folder.path)
    }

    @Test func aSentenceTransformersEncoderIsEvaluatedWithItsOwnPrompts() throws {
        let encoder = try Self.promptedEncoder()
        let tasks = EvaluationRunTests.tinyTasks()
        let evaluator = try Evaluator(embedder: encoder, options: EvaluationOptions())
        #expect(evaluator.prompts(for: tasks[0].spec) == [.text: TaskPrompt(name: "STS", text: "S: ")])
        #expect(evaluator.prompts(for: tasks[1].spec) == [.query: TaskPrompt(name: "query", text: "Q: "), .document: TaskPrompt(name: "document", text: "D: ")])
        #expect(evaluator.prompts(for: tasks[2].spec) == [.text: TaskPrompt(name: nil, text: "Identify the color")])
        // A prompt chosen for the encoder applies to every text.
        let chosen = try Evaluator(embedder: Encoder(sharing: encoder) { $0.promptName = "document" }, options: EvaluationOptions())
        #expect(chosen.prompts(for: tasks[1].spec)[.query] == TaskPrompt(name: "document", text: "D: "))
        // No instructions: no prompt, not even the model's default one.
        var off = EvaluationOptions()
        off.useInstructions = false
        let plain = try Evaluator(embedder: encoder, options: off)
        #expect(plain.prompts(for: tasks[0].spec) == [.text: TaskPrompt(name: nil, text: "")])
        #expect((plain.embedder as? Encoder)?.defaultPrompt == "")
        // Vectors of another Matryoshka size or default prompt never share a cache file.
        let identities = Set([encoder, try Encoder(sharing: encoder) { $0.dimensions = 32 }, plain.embedder as! Encoder].map { EmbeddingCache.identity(of: $0) })
        #expect(identities.count == 3)
    }

    @Test func aMatryoshkaSizeIsCutFromTheFullSizeVectorsAndTheirCache() throws {
        let encoder = try Self.promptedEncoder()
        let small = try Encoder(sharing: encoder) { $0.dimensions = 8 }
        var cached = EvaluationOptions()
        cached.cacheDirectory = try Fixtures.temporaryDirectory("eval-matryoshka-cache")
        let task = EvaluationRunTests.tinyTasks()[0]
        #expect(try Evaluator(embedder: encoder, options: cached).run(task).textsFromCache == 0)
        let fromCache = try Evaluator(embedder: small, options: cached).run(task)
        #expect(fromCache.textsEmbedded > 0 && fromCache.textsFromCache == fromCache.textsEmbedded)
        // The cut vectors are the ones the encoder computes at that size.
        let texts = ["a red apple", "the blue sky above", "x"]
        let cut = try Evaluator(embedder: small, options: EvaluationOptions()).embed(texts, instruction: "S: ", stage: "test", progress: nil)
        let direct = try small.encode(texts.map { EncoderInput($0, instruction: "S: ") })
        #expect(cut.map(\.count) == [8, 8, 8])
        for (a, b) in zip(cut, direct) { #expect(zip(a, b).allSatisfy { abs($0 - $1) <= 1e-6 * max(1, abs($1)) }) }
        let computed = try Evaluator(embedder: small, options: EvaluationOptions()).run(task)
        // Not bit for bit: while other tests run, `BLAS.singleThreaded` can change OpenBLAS's thread
        // count between the two runs, and with it the order of some sums (seen: 5.5e-8).
        for (name, score) in computed.scores { #expect(abs(score - (fromCache.scores[name] ?? .nan)) <= 1e-6) }
    }
}
