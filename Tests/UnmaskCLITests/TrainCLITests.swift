import Foundation
import Testing
import UnmaskTestSupport

/// `unmask train` and its adapters, end to end through the binary.
@Suite struct TrainCLITests {
    let model = Fixtures.path("models", "smollm-f32")

    func sentences() throws -> URL {
        let file = try Fixtures.temporaryDirectory("train-cli").appendingPathComponent("sentences.txt")
        let lines = ["The cat sat on the mat.", "A dog barked at the mailman.", "Paris is the capital of France.", "Rain fell all day.",
                     "She planted tomatoes in spring.", "The train left late.", "He read the letter twice.", "Birds sang before sunrise."]
        try lines.joined(separator: "\n").write(to: file, atomically: true, encoding: .utf8)
        return file
    }

    @Test func mntpThenSimCSEThenEmbedWithBothAdapters() throws {
        let data = try sentences().path
        let root = try Fixtures.temporaryDirectory("train-cli")
        let mntp = root.appendingPathComponent("mntp").path, simcse = root.appendingPathComponent("simcse").path
        let small = ["--rank", "4", "--alpha", "8", "--batch-size", "4", "--micro-batch-size", "2", "--max-length", "16", "--learning-rate", "1e-2"]
        var result = try Executables.run(["train", "mntp", "--model", model, "--data", data, "--output", mntp, "--steps", "3"] + small)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("adapter written to"))
        result = try Executables.run(["train", "simcse", "--model", model, "--adapter", mntp, "--data", data, "--output", simcse, "--steps", "3"] + small)
        #expect(result.status == 0, "\(result.stderr)")
        for file in ["adapter_config.json", "adapter_model.safetensors", "training_log.jsonl", "checkpoint/trainer_state.json", "checkpoint/optimizer.safetensors"] {
            #expect(FileManager.default.fileExists(atPath: simcse + "/" + file), "\(file)")
        }
        let log = try String(contentsOfFile: simcse + "/training_log.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(log.filter { $0.contains("\"loss\"") }.count == 3)
        try FileManager.default.removeItem(atPath: simcse + "/loss.svg")
        #expect(try Executables.run(["train", "curves", "--output", simcse]).status == 0)
        #expect(try String(contentsOfFile: simcse + "/loss.svg", encoding: .utf8).contains("training loss"))

        // The trained adapters change the embedding; base + both adapters embeds.
        let base = try Executables.run(["embed", "--model", model, "--input", data])
        let trained = try Executables.run(["embed", "--model", model, "--adapter", mntp, "--adapter", simcse, "--input", data])
        #expect(base.status == 0 && trained.status == 0, "\(trained.stderr)")
        #expect(base.stdout != trained.stdout)
        #expect(trained.stdout.split(separator: "\n").count == 8)
    }

    @Test func resumeContinuesWhereTheRunStopped() throws {
        let data = try sentences().path
        let output = try Fixtures.temporaryDirectory("train-cli").appendingPathComponent("run").path
        let common = ["train", "simcse", "--model", model, "--data", data, "--output", output, "--rank", "4", "--batch-size", "4", "--max-length", "16"]
        #expect(try Executables.run(common + ["--steps", "2"]).status == 0)
        // A longer run resumes from step 2 with the saved hyperparameters.
        let resumed = try Executables.run(common + ["--steps", "4", "--resume"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("resuming at step 2 of 4"))
        let steps = try String(contentsOfFile: output + "/training_log.jsonl", encoding: .utf8).split(separator: "\n").filter { $0.contains("\"loss\"") }
        #expect(steps.count == 4)
    }

    @Test func badInputsGetOneLineErrors() throws {
        let data = try sentences().path
        let out = try Fixtures.temporaryDirectory("train-cli").path
        let cases: [([String], String)] = [
            (["train", "mntp", "--model", model, "--data", "/nonexistent/text.txt", "--output", out], "/nonexistent/text.txt"),
            (["train", "simcse", "--model", model, "--data", data, "--output", out, "--batch-size", "4", "--micro-batch-size", "8"], "--micro-batch-size"),
            (["train", "mntp", "--model", model, "--data", data, "--output", out, "--mask-token", "<nope>"], "mask token '<nope>'"),
            (["train", "supervised", "--model", model, "--data", data, "--output", out], "\(data):1"),
            (["train", "simcse", "--model", model, "--data", data, "--output", out, "--resume"], "trainer_state.json"),
        ]
        for (arguments, expected) in cases {
            let result = try Executables.run(arguments)
            #expect(result.status != 0)
            let errorLine = result.stderr.split(separator: "\n").first { $0.hasPrefix("error: ") }
            #expect(errorLine?.contains(expected) == true, "\(arguments): \(result.stderr)")
        }
    }
}
