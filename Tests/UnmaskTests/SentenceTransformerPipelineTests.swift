import Foundation
import Testing
import UnmaskKernels
import UnmaskTestSupport
@testable import Unmask

/// A decoder behind a sentence-transformers pipeline (the tiny Gemma 3 fixture with modules.json,
/// a prompt-including Pooling, two Dense modules and Normalize, as EmbeddingGemma ships): loading,
/// prompts, Matryoshka, the Dense backward, and supervised training through the pipeline.
@Suite struct SentenceTransformerPipelineTests {
    /// A copy of a model fixture with sentence-transformers files added: `files` maps each
    /// relative path to its JSON object.
    static func stFolder(from fixture: String, _ files: [String: Any]) throws -> URL {
        let folder = try Fixtures.temporaryDirectory("unmask-st-\(fixture)")
        let source = URL(fileURLWithPath: Fixtures.path("models", fixture))
        for file in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"] {
            try FileManager.default.copyItem(at: source.appendingPathComponent(file), to: folder.appendingPathComponent(file))
        }
        for (path, object) in files {
            let url = folder.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try JSONSerialization.data(withJSONObject: object).write(to: url)
        }
        return folder
    }

    static func module(_ index: Int, _ path: String, _ type: String) -> [String: Any] {
        ["idx": index, "name": "\(index)", "path": path, "type": "sentence_transformers.models.\(type)"]
    }

    /// The gemma3 fixture as EmbeddingGemma ships: prompt-including mean pooling, Dense, Dense
    /// (tanh), Normalize; returns the folder and the Dense weights.
    static func makeFolder(includePrompt: Bool = true) throws -> (URL, [[Float]]) {
        var random = SeededRandom(seed: 41)
        let first = random.floats(96 * 64, scale: 0.1), second = random.floats(64 * 96, scale: 0.05)
        let folder = try stFolder(from: "gemma3-tiny-f32", [
            "modules.json": [module(0, "", "Transformer"), module(1, "1_Pooling", "Pooling"), module(2, "2_Dense", "Dense"),
                             module(3, "3_Dense", "Dense"), module(4, "4_Normalize", "Normalize")],
            "1_Pooling/config.json": ["pooling_mode_mean_tokens": true, "include_prompt": includePrompt],
            "sentence_bert_config.json": ["max_seq_length": 64],
            "config_sentence_transformers.json": ["prompts": ["query": "task: search | query: ", "document": "title: none | text: "],
                                                  "default_prompt_name": NSNull()],
            "2_Dense/config.json": ["in_features": 64, "out_features": 96, "bias": false, "activation_function": "torch.nn.modules.linear.Identity"],
            "3_Dense/config.json": ["in_features": 96, "out_features": 64, "bias": false, "activation_function": "torch.nn.modules.activation.Tanh"],
        ])
        try SafeTensorsWriter.data([.init(name: "linear.weight", shape: [96, 64], floats: first)]).write(to: folder.appendingPathComponent("2_Dense/model.safetensors"))
        try SafeTensorsWriter.data([.init(name: "linear.weight", shape: [64, 96], floats: second)]).write(to: folder.appendingPathComponent("3_Dense/model.safetensors"))
        return (folder, [first, second])
    }
    @Test func embedsThroughPromptPoolingDenseAndNormalize() throws {
        let (folder, dense) = try Self.makeFolder()
        let encoder = try Encoder(modelPath: folder.path) { $0.promptName = "query" }
        #expect(encoder.sentenceTransformer != nil && encoder.options.attention == .causal && encoder.options.maxLength == 64)
        let text = "The cat sat on the mat."
        let prepared = try encoder.prepare(EncoderInput(text))
        // The prompt is prepended as text and pooled with it (include_prompt).
        #expect(prepared.ids == [2] + encoder.tokenizer.encode("task: search | query: " + text, addSpecialTokens: false).map(Int32.init))
        #expect(prepared.pooledCount == prepared.ids.count)
        // By hand: mean of the final states, W₂ then tanh, W₁ first, then L2 normalization.
        let plain = try Encoder(modelPath: Fixtures.path("models", "gemma3-tiny-f32")) { $0.attention = .causal; $0.pooling = .mean; $0.skipInstruction = false }
        let workspace = DecoderWorkspace()
        let hidden = plain.model.forward(TokenBatch(leftPadding: [prepared.ids], padding: 0), mode: .causal, workspace: workspace)
        var pooled = [Float](repeating: 0, count: 64)
        for t in 0..<prepared.ids.count { for d in 0..<64 { pooled[d] += hidden[t * 64 + d] / Float(prepared.ids.count) } }
        withExtendedLifetime(workspace) {}
        let middle = (0..<96).map { o in (0..<64).reduce(Float(0)) { $0 + dense[0][o * 64 + $1] * pooled[$1] } }
        var out = (0..<64).map { o in Foundation.tanh((0..<96).reduce(Float(0)) { $0 + dense[1][o * 96 + $1] * middle[$1] }) }
        let norm = out.reduce(0) { $0 + $1 * $1 }.squareRoot()
        out = out.map { $0 / norm }
        let got = try encoder.encode([EncoderInput(text)])[0]
        #expect(Compare.maxAbs(got, out) < 1e-5)
        // Matryoshka: the first 16 values, normalized again.
        let short = try Encoder(sharing: encoder) { $0.dimensions = 16 }.encode([EncoderInput(text)])[0]
        #expect(short.count == 16 && Compare.cosine(short, Array(got.prefix(16))) > 0.99999)
        #expect(abs(short.reduce(0) { $0 + $1 * $1 } - 1) < 1e-5)
        #expect(throws: UnmaskError.self) { try Encoder(sharing: encoder) { $0.dimensions = 65 } }
        #expect(throws: UnmaskError.self) { try Encoder(sharing: encoder) { $0.promptName = "passage" } }
    }

    @Test func leavesThePromptOutOfPoolingWhenAsked() throws {
        let (folder, _) = try Self.makeFolder(includePrompt: false)
        let encoder = try Encoder(modelPath: folder.path) { $0.promptName = "query" }
        let prepared = try encoder.prepare(EncoderInput("The cat sat on the mat."))
        let promptTokens = 1 + encoder.tokenizer.encode("task: search | query: ", addSpecialTokens: false).count
        #expect(prepared.pooledCount == prepared.ids.count - promptTokens)
    }

    @Test func denseBackwardMatchesFiniteDifferences() throws {
        let (folder, _) = try Self.makeFolder()
        let head = try Encoder(modelPath: folder.path).head
        var random = SeededRandom(seed: 42)
        let count = 3
        let x = random.floats(count * 64), r = random.floats(count * 64)
        func loss(_ input: [Float]) -> Double { GradientCheck.dot(head.denseForward(FloatBuffer(input), count: count).last!.array, r) }
        let outputs = head.denseForward(FloatBuffer(x), count: count)
        let analytic = head.denseBackward(FloatBuffer(r), outputs: outputs, count: count).array
        let numeric = GradientCheck.numeric(x, step: GradientCheck.floatStep, loss)
        #expect(GradientCheck.relativeError(analytic, numeric) < GradientCheck.tolerance)
    }

    /// Supervised contrastive LoRA through the pipeline (queries with the "query" prompt,
    /// documents with "document"): a few steps lower the loss of the pipeline's outputs on a fixed batch.
    @Test func supervisedTrainingRunsThroughTheDenseModules() throws {
        let (folder, _) = try Self.makeFolder()
        let rows = (0..<12).map { i in
            #"{"query": "question number \#(i) about cats", "positive": "answer \#(i): cats sleep a lot", "negative": "unrelated text \#(i) on trains"}"#
        }
        let data = try TrainerTests.dataFile(rows, name: "pairs.jsonl")
        var options = TrainerTests.options(.supervised, steps: 6)
        options.evalFraction = 0
        options.learningRate = 5e-3
        options.maxLength = 64
        let output = try Fixtures.temporaryDirectory("unmask-st-train")
        let trainer = try Trainer.make(TrainingInputs(model: folder.path, data: data, output: output.path), options: options)
        let objective = try #require(trainer.objective as? ContrastiveObjective)
        #expect(objective.head?.hasDenseLayers == true)
        let batch = Array(objective.train.prefix(4))
        let before = objective.run(batch, decoder: trainer.decoder, dropoutSeed: nil, gradients: nil).loss
        var losses: [Double] = []
        #expect(try trainer.run(progress: { losses.append($0.loss) }))
        #expect(losses.count == 6 && losses.allSatisfy(\.isFinite))
        let after = objective.run(batch, decoder: trainer.decoder, dropoutSeed: nil, gradients: nil).loss
        #expect(after < before, "loss on a fixed batch: \(before) → \(after)")
    }

    /// Qwen3-Embedding's usage: a sentence-transformers folder with last-token pooling, the
    /// "Instruct: …\nQuery:" prompt glued to the text, causal attention, left padding, Normalize.
    @Test func qwen3EmbeddingStyleLastTokenPooling() throws {
        let prompt = "Instruct: Given a question, retrieve passages that answer it\nQuery:"
        let folder = try Self.stFolder(from: "qwen3-tiny-bf16", [
            "modules.json": [Self.module(0, "", "Transformer"), Self.module(1, "1_Pooling", "Pooling"), Self.module(2, "2_Normalize", "Normalize")],
            "1_Pooling/config.json": ["pooling_mode_lasttoken": true, "include_prompt": true],
            "config_sentence_transformers.json": ["prompts": ["query": prompt, "document": ""]],
        ])

        let encoder = try Encoder(modelPath: folder.path) { $0.promptName = "query" }
        #expect(encoder.options.attention == .causal && encoder.options.pooling == .lastToken)
        let texts = ["What is 2+2?", "How do transformers use attention to encode a sentence?"]
        let got = try encoder.encode(texts.map { EncoderInput($0) })
        for (text, vector) in zip(texts, got) {
            let ids = encoder.tokenizer.encode(prompt + text).map(Int32.init)
            #expect(try encoder.prepare(EncoderInput(text)).ids == ids)
            // The text alone, unpadded: its last token's final state, normalized.
            let workspace = DecoderWorkspace()
            let hidden = encoder.model.forward(TokenBatch(leftPadding: [ids], padding: 0), mode: .causal, workspace: workspace)
            let h = encoder.model.config.hiddenSize
            var last = Array(UnsafeBufferPointer(start: hidden + (ids.count - 1) * h, count: h))
            withExtendedLifetime(workspace) {}
            let norm = last.reduce(0) { $0 + $1 * $1 }.squareRoot()
            last = last.map { $0 / norm }
            #expect(Compare.cosine(vector, last) > 0.99999)
        }
    }
}
