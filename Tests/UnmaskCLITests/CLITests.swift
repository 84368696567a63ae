import Foundation
import Testing
import UnmaskTestSupport

/// End-to-end: the built `unmask` binary, run as a user would.
@Suite struct CLITests {
    func run(_ arguments: [String]) throws -> ProcessResult { try Executables.run(arguments) }

    let model = Fixtures.path("models", "llama2-bf16")

    /// The fixture case's inputs as a JSONL file, with its expected embeddings.
    func referenceCase(_ name: String) throws -> (file: String, expected: [[Float]], ids: [[Int]], inputs: [[String: String]]) {
        let json = try Fixtures.json("models", "llama2-bf16", "expected.json") as! [String: Any]
        let entry = (json["cases"] as! [[String: Any]]).first { $0["name"] as? String == name }!
        let inputs = entry["inputs"] as! [[String: String]]
        let lines = try inputs.map { String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) }
        let file = try Fixtures.temporaryDirectory("cli").appendingPathComponent("inputs.jsonl")
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: file)
        let expected = (entry["embeddings"] as! [[Double]]).map { $0.map(Float.init) }
        return (file.path, expected, entry["input_ids"] as! [[Int]], inputs)
    }

    @Test(arguments: [("bidirectional-mean", ["--attention", "bidirectional"]), ("causal-last_token", ["--attention", "causal", "--pooling", "last-token"])])
    func embedMatchesTheReference(name: String, flags: [String]) throws {
        let reference = try referenceCase(name)
        let result = try run(["embed", "--model", model, "--input", reference.file, "--batch-size", "3"] + flags)
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count == reference.expected.count)
        for (line, want) in zip(lines, reference.expected) {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let got = (object["embedding"] as! [Double]).map(Float.init)
            #expect(Compare.cosine(got, want) >= 0.99999 && Compare.relativeL2(got, want) <= 1e-4)
        }
    }

    @Test func embedWritesNpy() throws {
        let reference = try referenceCase("bidirectional-mean")
        let output = try Fixtures.temporaryDirectory("cli").appendingPathComponent("out.npy")
        let result = try run(["embed", "--model", model, "--input", reference.file, "--output", output.path, "--normalize"])
        try #require(result.status == 0, "\(result.stderr)")
        let data = try Data(contentsOf: output)
        let headerLength = Int(data[8]) | Int(data[9]) << 8
        let header = String(decoding: data[10..<(10 + headerLength)], as: UTF8.self)
        #expect(header.contains("'shape': (\(reference.expected.count), 64)"))
        #expect(data.count == 10 + headerLength + reference.expected.count * 64 * 4)
    }

    @Test func tokenizeMatchesHuggingFace() throws {
        let reference = try referenceCase("bidirectional-mean")
        let result = try run(["tokenize", "--model", model, "--input", reference.file])
        try #require(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        try #require(lines.count == reference.inputs.count)
        // Inputs without an instruction are tokenized exactly as llm2vec fed them to the model.
        for (i, input) in reference.inputs.enumerated() where input["instruction"] == "" {
            let object = try JSONSerialization.jsonObject(with: Data(lines[i].utf8)) as! [String: [Int]]
            #expect(object["ids"] == reference.ids[i])
        }
        let bare = try run(["tokenize", "--model", model, "--input", reference.file, "--no-special-tokens"])
        let firstLine = try #require(bare.stdout.split(separator: "\n").first)
        let first = try JSONSerialization.jsonObject(with: Data(firstLine.utf8)) as! [String: [Int]]
        #expect(first["ids"] == Array(reference.ids[0].dropFirst()))
    }

    @Test func inspectDescribesTheModel() throws {
        let result = try run(["inspect", "--model", model])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("architecture:   llama"))
        #expect(result.stdout.contains("BF16"))
        #expect(result.stdout.contains("4 heads, 4 kv heads"))
        #expect(result.stdout.contains("SentencePiece"))
    }

    @Test func similarityPrintsMatrixAndNeighbours() throws {
        let samples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("samples/sentences.txt").path
        let result = try run(["similarity", "--model", model, "--input", samples])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains(" 1.000"))
        #expect(result.stdout.contains("->"))
    }

    @Test func errorsAreOneLineWithNonZeroExit() throws {
        let directory = try Fixtures.temporaryDirectory("cli-errors")
        let invalid = directory.appendingPathComponent("bad.jsonl")
        try Data("{\"text\": \"fine\"}\nnot json\n".utf8).write(to: invalid)
        let empty = directory.appendingPathComponent("empty.txt")
        try Data().write(to: empty)
        let good = directory.appendingPathComponent("good.txt")
        try Data("hello\n".utf8).write(to: good)
        let cases: [([String], String)] = [
            (["embed", "--model", "/nonexistent", "--input", good.path], "/nonexistent: not found (model: a Hugging Face model folder, a .gguf file, or one of smollm2"),
            (["embed", "--model", model, "--input", invalid.path], "bad.jsonl:2: invalid JSON"),
            (["embed", "--model", model, "--input", empty.path], "empty.txt: no texts"),
            (["embed", "--model", model, "--input", directory.appendingPathComponent("missing.txt").path], "missing.txt: not found (input file)"),
            (["embed", "--model", model, "--input", good.path, "--pooling", "max"], "'max'"),
            (["embed", "--model", model, "--input", good.path, "--attention", "sideways"], "'sideways'"),
            (["tokenize", "--model", directory.path, "--input", good.path], "tokenizer.json: not found"),
        ]
        for (arguments, message) in cases {
            let result = try run(arguments)
            #expect(result.status != 0, "\(arguments)")
            #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
            #expect(!result.stderr.contains("Fatal error") && !result.stderr.contains("Stack dump"))
        }
    }
}
