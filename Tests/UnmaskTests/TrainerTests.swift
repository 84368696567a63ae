import Foundation
import Testing
import UnmaskKernels
import UnmaskTestSupport
@testable import Unmask

/// The optimization loop: optimizer, schedule, accumulation, checkpoints, resumption and the
/// adapters it writes. Runs on the tiny fixtures, a few steps each.
@Suite struct TrainerTests {
    static let sentences = [
        "The cat sat on the mat.", "A dog barked at the mailman.", "Paris is the capital of France.",
        "Rain fell all day in the valley.", "She planted tomatoes in spring.", "The train left the station late.",
        "He read the letter twice.", "Birds sang before sunrise.", "The river froze in January.", "Our team won the final.",
    ]

    static func dataFile(_ lines: [String], name: String = "data.txt") throws -> String {
        let url = try Fixtures.temporaryDirectory("unmask-train-data").appendingPathComponent(name)
        try lines.joined(separator: "\n").write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    static func options(_ recipe: TrainingRecipe, steps: Int = 4) -> TrainingOptions {
        var o = TrainingOptions.defaults(for: recipe)
        o.steps = steps
        o.batchSize = 4
        o.microBatchSize = 2
        o.maxLength = 16
        o.rank = 4
        o.alpha = 8
        o.learningRate = 1e-2
        o.evalFraction = 0.2
        o.evalEvery = 2
        o.saveEvery = 2
        o.warmupSteps = 0
        return o
    }

    static func makeTrainer(_ recipe: TrainingRecipe, output: URL, steps: Int = 4, resume: Bool = false) throws -> Trainer {
        let data = try dataFile(recipe == .mntp ? Array(repeating: sentences, count: 4).flatMap { $0 } : sentences)
        return try Trainer.make(TrainingInputs(model: Fixtures.path("models", "smollm-f32"), data: data, output: output.path),
                                options: options(recipe, steps: steps), resume: resume)
    }

    static func values(_ tensors: LoRATensors) -> [Float] { tensors.tensors.flatMap { Array(UnsafeBufferPointer(start: $0.pointer, count: $0.count)) } }

    @Test func adamWMatchesTorchsUpdateRule() {
        // torch.optim.AdamW, written out in Double for one scalar over three steps.
        let (lr, wd, b1, b2, eps) = (0.1, 0.01, 0.9, 0.999, 1e-8)
        var p = 0.5, m = 0.0, v = 0.0
        let grads = [0.3, -1.2, 0.05]
        let parameters = LoRATensors(rank: 1, shapes: [[(1, 1)]]), gradients = LoRATensors(rank: 1, shapes: [[(1, 1)]])
        parameters.layers[0][0].a[0] = 0.5
        let optimizer = AdamW(like: parameters, weightDecay: Float(wd))
        for (t, g) in grads.enumerated() {
            p *= 1 - lr * wd
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            let step = Double(t + 1)
            p -= lr / (1 - pow(b1, step)) * m / ((v.squareRoot() / (1 - pow(b2, step)).squareRoot()) + eps)
            gradients.layers[0][0].a[0] = Float(g)
            optimizer.update(parameters, gradients: gradients, lr: Float(lr))
            #expect(abs(Double(parameters.layers[0][0].a[0]) - p) < 1e-6)
        }
        // B had zero gradient and zero weight: it must not move.
        #expect(parameters.layers[0][0].b[0] == 0)
    }

    @Test func learningRateFollowsTransformersLinearSchedule() {
        var o = TrainingOptions.defaults(for: .supervised)
        o.steps = 10
        o.warmupSteps = 2
        o.learningRate = 1
        #expect([0, 1, 2, 6, 9].map(o.learningRate(at:)) == [0, 0.5, 1, 0.5, 0.125])
        o.warmupSteps = 0
        #expect(o.learningRate(at: 0) == 1)
    }

    @Test func invalidOptionsNameTheirFlag() {
        var o = TrainingOptions.defaults(for: .mntp)
        o.microBatchSize = 5
        #expect(throws: UnmaskError.invalidInput(source: "--micro-batch-size", reason: "expected a divisor of --batch-size (32) for MNTP")) { try o.validate() }
        o = .defaults(for: .simcse)
        o.loraDropout = 1
        #expect(throws: UnmaskError.invalidInput(source: "--lora-dropout", reason: "expected a probability in [0, 1)")) { try o.validate() }
    }

    /// Gradient caching over micro-batches gives the gradient of the one batch-wide loss.
    @Test func microBatchedContrastiveStepEqualsTheFullBatch() throws {
        let model = try Checkpoint(path: Fixtures.path("models", "qwen2-bias-f32")).loadModel()
        let decoder = LoRADecoder(model: model, rank: 4, alpha: 8, seed: 1)
        var rng = SeededRandom(seed: 5)
        for t in decoder.parameters.tensors { for i in 0..<t.count { t[i] += rng.floats(1, scale: 0.05)[0] } }
        // Dropout masks are drawn per micro-batch, so they depend on the split; without dropout
        // the split must not change the step at all.
        let rows: [[Int32]] = [[5, 9, 17], [8, 4, 61, 7, 9], [3, 3, 3, 3], [11, 40], [12, 13, 14, 15, 16, 17], [21, 22, 23]]
        func prepared(_ ids: [Int32], pooled: Int? = nil) -> Encoder.PreparedInput {
            Encoder.PreparedInput(ids: ids, pooledCount: pooled ?? ids.count, untruncatedLength: ids.count)
        }
        // Supervised shape: queries pool only their last tokens (an instruction before them), hard negatives.
        let examples = (0..<3).map { i in
            ContrastiveExample(query: prepared(rows[i], pooled: 2), positive: prepared(rows[i + 3]), negative: prepared(rows[(i + 1) % 3 + 3].reversed()))
        }
        func gradients(microBatch: Int) throws -> ([Float], Double) {
            var o = Self.options(.supervised)
            o.batchSize = 3
            o.microBatchSize = microBatch
            o.evalFraction = 0
            let objective = try ContrastiveObjective(examples: examples, options: o, padding: 0, isSimCSE: false)
            let g = LoRATensors(like: decoder.parameters)
            let result = objective.run(examples, decoder: decoder, dropoutSeed: 99, gradients: g)
            return (Self.values(g), result.loss)
        }
        let (whole, wholeLoss) = try gradients(microBatch: 3)
        for micro in [1, 2] {
            let (split, splitLoss) = try gradients(microBatch: micro)
            #expect(abs(splitLoss - wholeLoss) < 1e-5 * max(1, abs(wholeLoss)))
            #expect(Compare.relativeL2(split, whole) < 1e-4, "micro-batch \(micro)")
        }
    }

    @Test(arguments: [TrainingRecipe.mntp, .simcse])
    func resumedRunEqualsAnUninterruptedOne(_ recipe: TrainingRecipe) throws {
        let straight = try Fixtures.temporaryDirectory(), split = try Fixtures.temporaryDirectory()
        let reference = try Self.makeTrainer(recipe, output: straight)
        #expect(try reference.run())
        // Stop after two steps (as Ctrl-C does), then continue in a fresh process-like trainer.
        var calls = 0
        let first = try Self.makeTrainer(recipe, output: split)
        #expect(try first.run(shouldStop: { calls += 1; return calls > 2 }) == false)
        #expect(try Trainer.readState(first.checkpointDirectory).step == 2)
        let second = try Self.makeTrainer(recipe, output: split, resume: true)
        #expect(second.nextStep == 2)
        #expect(try second.run())
        // Bit-identical when this test runs alone (`swift test --no-parallel --filter resumed`);
        // beside other tests, their switching of OpenBLAS's global thread count (attention runs
        // single-threaded BLAS) moves sgemm's rounding, which Adam's normalized steps amplify to
        // ~1e-4. A resume that lost the moments, the step or the data order is off by far more.
        #expect(Compare.relativeL2(Self.values(second.decoder.parameters), Self.values(reference.decoder.parameters)) < 1e-3)
        // The log holds each step once, as if never interrupted.
        let steps = try String(contentsOf: second.logURL, encoding: .utf8).split(separator: "\n").compactMap { line -> Int? in
            let entry = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            return entry["loss"] != nil ? entry["step"] as? Int : nil
        }
        #expect(steps == [1, 2, 3, 4])
        // The final adapter loads as a PEFT adapter.
        let curves = try String(contentsOf: split.appendingPathComponent("loss.svg"), encoding: .utf8)
        #expect(curves.hasPrefix("<svg") && curves.contains("held-out loss"))
        let adapter = try LoRAAdapter(directory: split.path)
        #expect(adapter.rank == 4 && adapter.scaling == 2 && adapter.pairs.count == 7 * reference.decoder.model.config.layerCount)
    }

    @Test func trainingLowersTheMNTPLoss() throws {
        var o = Self.options(.mntp, steps: 40)
        o.learningRate = 3e-2
        o.evalEvery = 0
        o.saveEvery = 0
        let output = try Fixtures.temporaryDirectory()
        let data = try Self.dataFile(Array(repeating: Self.sentences, count: 4).flatMap { $0 })
        let trainer = try Trainer.make(TrainingInputs(model: Fixtures.path("models", "smollm-f32"), data: data, output: output.path), options: o)
        let before = try trainer.evaluate()["eval_loss"]!
        try trainer.run()
        let after = try trainer.evaluate()["eval_loss"]!
        #expect(after < before - 0.3, "eval loss \(before) → \(after)")
    }

    @Test func divergenceIsReportedNotTrainedThrough() throws {
        let trainer = try Self.makeTrainer(.simcse, output: try Fixtures.temporaryDirectory())
        trainer.decoder.parameters.layers[0][0].b[0] = .nan
        #expect(throws: UnmaskError.trainingDiverged(step: 0, what: "loss nan")) { try trainer.run() }
    }

    @Test func resumeRefusesChangedHyperparameters() throws {
        let output = try Fixtures.temporaryDirectory()
        var calls = 0
        _ = try Self.makeTrainer(.simcse, output: output).run(shouldStop: { calls += 1; return calls > 1 })
        var changed = Self.options(.simcse)
        changed.learningRate = 0.5
        let data = try Self.dataFile(Self.sentences)
        #expect(throws: UnmaskError.self) {
            try Trainer.make(TrainingInputs(model: Fixtures.path("models", "smollm-f32"), data: data, output: output.path), options: changed, resume: true)
        }
    }

    /// The written adapter, merged into the base by `LoRAAdapter`, gives the outputs of the LoRA model it came from.
    @Test func writtenAdapterMergesIntoTheSameModel() throws {
        let path = Fixtures.path("models", "qwen2-bias-f32")
        let decoder = LoRADecoder(model: try Checkpoint(path: path).loadModel(), rank: 4, alpha: 8, seed: 2)
        var rng = SeededRandom(seed: 8)
        for t in decoder.parameters.tensors { for i in 0..<t.count { t[i] += rng.floats(1, scale: 0.1)[0] } }
        let folder = try Fixtures.temporaryDirectory()
        try decoder.parameters.writePEFTAdapter(to: folder, alpha: 8, dropout: 0.05, baseModel: path)
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("adapter_config.json"))) as! [String: Any]
        #expect(config["peft_type"] as? String == "LORA" && config["r"] as? Int == 4 && config["lora_alpha"] as? Double == 8)
        #expect((config["target_modules"] as? [String])?.sorted() == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"])
        let file = try SafeTensorsFile(path: folder.appendingPathComponent("adapter_model.safetensors").path)
        #expect(file.tensorNames.contains("base_model.model.layers.0.self_attn.q_proj.lora_A.weight"))
        #expect(file.metadata["format"] == "pt")

        let merged = try Checkpoint(path: path).loadModel()
        try LoRAAdapter(directory: folder.path).merge(into: merged.weights)
        let batch = TokenBatch(leftPadding: [[5, 9, 17, 4], [8, 4]], padding: 0)
        let expected = decoder.forward(batch, mode: .bidirectional).output
        let workspace = DecoderWorkspace()
        let actual = merged.forward(batch, mode: .bidirectional, workspace: workspace)
        let valid = batch.valid.enumerated().flatMap { b, span in span.map { b * batch.length + $0 } }
        let h = merged.config.hiddenSize
        let a = valid.flatMap { r in (0..<h).map { actual[r * h + $0] } }, e = valid.flatMap { r in (0..<h).map { expected[r * h + $0] } }
        withExtendedLifetime(workspace) { #expect(Compare.relativeL2(a, e) < 1e-5) }
    }

    @Test func supervisedRowsReportTheirLine() throws {
        let good = try Self.dataFile(["{\"query\": \"q\", \"positive\": \"p\", \"negative\": \"n\", \"instruction\": \"Find it\"}", "", "{\"query\": \"q2\", \"positive\": \"p2\"}"], name: "rows.jsonl")
        #expect(try SupervisedRow.read(path: good) == [SupervisedRow(query: "q", positive: "p", negative: "n", instruction: "Find it"),
                                                      SupervisedRow(query: "q2", positive: "p2", negative: nil, instruction: nil)])
        let missing = try Self.dataFile(["{\"query\": \"q\", \"positive\": \"p\"}", "{\"query\": \"q\"}"], name: "rows.jsonl")
        #expect(throws: UnmaskError.invalidField(file: "\(missing):2", field: "positive", expected: "a non-empty string")) { try SupervisedRow.read(path: missing) }
        let broken = try Self.dataFile(["{\"query\": "], name: "rows.jsonl")
        #expect(throws: UnmaskError.malformedJSON(file: "\(broken):1", reason: "expected one JSON object a line")) { try SupervisedRow.read(path: broken) }
    }

    /// `--init-adapter`: training continues from a PEFT adapter, with its rank and alpha.
    @Test func trainingContinuesFromAPEFTAdapter() throws {
        let first = try Self.makeTrainer(.simcse, output: try Fixtures.temporaryDirectory())
        try first.run()
        let adapter = first.output.path
        var options = Self.options(.simcse)
        options.rank = 16  // replaced by the adapter's 4
        let data = try Self.dataFile(Self.sentences)
        let second = try Trainer.make(TrainingInputs(model: Fixtures.path("models", "smollm-f32"), initialAdapter: adapter, data: data,
                                                     output: try Fixtures.temporaryDirectory().path), options: options)
        #expect(second.options.rank == 4 && second.options.alpha == 8)
        #expect(Self.values(second.decoder.parameters) == Self.values(first.decoder.parameters))
    }
}
