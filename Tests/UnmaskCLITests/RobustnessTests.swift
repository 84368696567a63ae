import Foundation
import XCTest
import UnmaskTestSupport

/// Bad or unusual inputs through the built binary: each gets its exit code (1 bad data, 64 bad
/// usage) and a one-line message naming what is wrong, never a crash, a hang or a NaN.
///
/// XCTest, run one case after another: each case waits on child processes, and under Swift
/// Testing those waits would hold the cooperative threads the async server tests need.
final class RobustnessTests: XCTestCase {
    let model = Fixtures.path("models", "smollm-f32")

    func textFile(_ lines: [String], name: String = "texts.txt") throws -> String {
        let url = try Fixtures.temporaryDirectory("robust").appendingPathComponent(name)
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: url)
        return url.path
    }

    /// A copy of the smollm fixture whose files `edit` may change.
    func modelCopy(_ edit: (URL) throws -> Void) throws -> String {
        let folder = try Fixtures.temporaryDirectory("robust-model")
        for file in try FileManager.default.contentsOfDirectory(atPath: model) {
            try FileManager.default.copyItem(atPath: model + "/" + file, toPath: folder.appendingPathComponent(file).path)
        }
        try edit(folder)
        return folder.path
    }

    struct Case: CustomStringConvertible {
        let arguments: [String]
        let status: Int32
        let message: String
        var description: String { arguments.joined(separator: " ") }
    }

    /// Flag values that cannot work are usage errors, refused before any model loads.
    static let usage: [Case] = [
        Case(arguments: ["embed", "--max-length", "0"], status: 64, message: "--max-length must be at least 1"),
        Case(arguments: ["embed", "--max-length=-5"], status: 64, message: "--max-length must be at least 1"),
        Case(arguments: ["embed", "--batch-size", "0"], status: 64, message: "--batch-size must be at least 1"),
        Case(arguments: ["embed", "--dimensions", "0"], status: 64, message: "--dimensions must be at least 1"),
        Case(arguments: ["embed", "--prompt-name", "query", "--prompt", "x"], status: 64, message: "not both"),
        Case(arguments: ["eval", "--limit", "0"], status: 64, message: "--limit must be at least 1"),
        Case(arguments: ["eval", "--limit=-1"], status: 64, message: "--limit must be at least 1"),
        Case(arguments: ["eval", "--tasks", ""], status: 64, message: "--tasks names no task"),
    ]

    func testBadFlagsAreUsageErrors() throws {
        let input = try textFile(["hello"])
        for c in Self.usage {
            let result = try Executables.run(c.arguments + ["--model", model] + (c.arguments[0] == "embed" ? ["--input", input] : []))
            XCTAssertEqual(result.status, c.status, "\(c): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(c.message), "\(c): \(result.stderr)")
        }
    }

    func testADirectoryAsOutputIsNamed() throws {
        let directory = try Fixtures.temporaryDirectory("robust-out")
        let result = try Executables.run(["embed", "--model", model, "--input", try textFile(["hello"]), "--output", directory.path])
        XCTAssertTrue(result.status == 1 && result.stderr.contains("is a directory"), result.stderr)
    }

    /// A full device on standard output is one error line and exit 1 (it was SIGILL).
    func testAFullStandardOutputIsAnError() throws {
        guard FileManager.default.fileExists(atPath: "/dev/full") else { throw XCTSkip("no /dev/full here") }
        for command in [["embed"], ["tokenize"], ["embed", "--format", "npy"], ["similarity"], ["inspect"]] {
        let process = Process()
        process.executableURL = Executables.unmask
        process.arguments = command + ["--model", model] + (command[0] == "inspect" ? [] : ["--input", try textFile(["hello", "world"])])
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/full")
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertTrue(process.terminationReason == .exit && process.terminationStatus == 1, "\(command): \(message)")
        XCTAssertTrue(message.contains("standard output: cannot write"), "\(command): \(message)")
        }
    }

    /// A failed write leaves the previous output as it was: files are renamed into place.
    func testOutputsAreReplacedAtomically() throws {
        let output = try Fixtures.temporaryDirectory("robust-atomic").appendingPathComponent("out.jsonl")
        try Data("previous\n".utf8).write(to: output)
        let result = try Executables.run(["embed", "--model", model, "--input", "/nonexistent/input.txt", "--output", output.path])
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(try String(contentsOf: output, encoding: .utf8), "previous\n")
        XCTAssertEqual(try Executables.run(["embed", "--model", model, "--input", try textFile(["hello"]), "--output", output.path]).status, 0)
        XCTAssertTrue(try String(contentsOf: output, encoding: .utf8).hasPrefix("{\"id\": 1, \"embedding\""))
    }

    /// Devices are written in place (renaming onto /dev/null would replace it) and links are
    /// followed (the file they name is replaced, the link stays).
    func testDevicesAndLinksAsOutput() throws {
        let input = try textFile(["hello"])
        XCTAssertEqual(try Executables.run(["embed", "--model", model, "--input", input, "--output", "/dev/null"]).status, 0)
        let attributes = try FileManager.default.attributesOfItem(atPath: "/dev/null")
        XCTAssertEqual(attributes[.type] as? FileAttributeType, .typeCharacterSpecial)
        let folder = try Fixtures.temporaryDirectory("robust-link")
        let real = folder.appendingPathComponent("real.jsonl"), link = folder.appendingPathComponent("link.jsonl")
        try Data("old\n".utf8).write(to: real)
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: real)
        XCTAssertEqual(try Executables.run(["embed", "--model", model, "--input", input, "--output", link.path]).status, 0)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: link.path)[.type] as? FileAttributeType, .typeSymbolicLink)
        XCTAssertTrue(try String(contentsOf: real, encoding: .utf8).hasPrefix("{\"id\": 1, \"embedding\""))
    }

    func testANaNWeightIsNamedAtLoad() throws {
        let corrupt = try modelCopy { folder in
            let url = folder.appendingPathComponent("model.safetensors")
            let file = try SafeTensorsWriter.readF32(url.path)
            let tensors = file.map { name, shape, values -> SafeTensorsWriter.Tensor in
                var values = values
                if name == "model.norm.weight" { values[3] = .nan }
                return .init(name: name, shape: shape, floats: values)
            }
            try SafeTensorsWriter.data(tensors).write(to: url)
        }
        let result = try Executables.run(["embed", "--model", corrupt, "--input", try textFile(["hello"])])
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("model.norm.weight") && result.stderr.contains("nan at element 3"), result.stderr)
        XCTAssertTrue(result.stdout.isEmpty)
    }

    func testAHugeLayerCountIsRefusedBeforeAllocating() throws {
        let huge = try modelCopy { folder in
            let url = folder.appendingPathComponent("config.json")
            var config = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
            config["num_hidden_layers"] = 1_000_000_000
            try JSONSerialization.data(withJSONObject: config).write(to: url)
        }
        let result = try Executables.run(["embed", "--model", huge, "--input", try textFile(["hello"])])
        XCTAssertTrue(result.status == 1 && result.stderr.contains("num_hidden_layers"), result.stderr)
        // inspect checks what it describes too.
        let inspect = try Executables.run(["inspect", "--model", huge])
        XCTAssertTrue(inspect.status == 1 && inspect.stderr.contains("num_hidden_layers") && inspect.stdout.isEmpty, inspect.stderr)
    }

    /// Long texts without spaces (CJK, base64) are cut by tokens when llm2vec's word cut would
    /// leave nothing, so they embed as themselves, not as an empty text.
    func testLongTextsWithoutSpacesEmbed() throws {
        let chinese = String(repeating: "东京是日本的首都，也是世界上人口最多的城市之一。", count: 65)
        let base64 = Data((0..<3000).map { UInt8($0 % 251) }).base64EncodedString()
        let result = try Executables.run(["embed", "--model", model, "--input", try textFile([chinese, base64, "short text"])])
        XCTAssertEqual(result.status, 0, result.stderr)
        let vectors = try result.stdout.split(separator: "\n").map { line in
            ((try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any])["embedding"] as! [Double]).map(Float.init)
        }
        XCTAssertTrue(vectors.count == 3 && vectors.allSatisfy { $0.allSatisfy(\.isFinite) })
        XCTAssertLessThan(Compare.cosine(vectors[0], vectors[1]), 0.999)
    }

    /// `--model` takes a GGUF file or an installed model's name everywhere, tokenize included.
    func testTokenizeTakesGGUFFilesAndModelNames() throws {
        guard let smollm2 = InstalledModels.smollm2 else { throw XCTSkip("SmolLM2 is not installed: run scripts/install_model.sh smollm2") }
        let input = try textFile(["hello world"])
        let byName = try Executables.run(["tokenize", "--model", "smollm2", "--input", input])
        let byPath = try Executables.run(["tokenize", "--model", smollm2, "--input", input])
        XCTAssertTrue(byName.status == 0 && byName.stdout.hasPrefix("{\"ids\": ["), byName.stderr)
        XCTAssertEqual(byPath.stdout, byName.stdout)
    }

    /// Many texts print each one's nearest neighbours, not an n × n matrix.
    func testSimilarityOfManyTextsPrintsNeighbours() throws {
        let lines = (0..<40).map { "sentence number \($0) about \($0 % 3 == 0 ? "cats" : "trains")" }
        let result = try Executables.run(["similarity", "--model", model, "--attention", "bidirectional", "--input", try textFile(lines)])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("40 texts") && result.stdout.contains("nearest neighbours") && !result.stdout.contains("cosine similarity,"))
        XCTAssertLessThan(result.stdout.split(separator: "\n").count, 60)
    }

    /// Messages that name the field, line or file instead of a generic parse error.
    func testMessagesNameWhatIsWrong() throws {
        func config(_ edit: @escaping (inout [String: Any]) -> Void) throws -> String {
            try modelCopy { folder in
                let url = folder.appendingPathComponent("config.json")
                var config = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
                edit(&config)
                try JSONSerialization.data(withJSONObject: config).write(to: url)
            }
        }
        let input = try textFile(["hello"])
        for (value, shown) in [(64.5, "64.5"), (1e300, "1e+300")] {
            let result = try Executables.run(["embed", "--model", try config { $0["hidden_size"] = value }, "--input", input])
            XCTAssertTrue(result.status == 1 && result.stderr.contains("field 'hidden_size': expected an integer, got \(shown)"), result.stderr)
        }
        let truncated = try modelCopy { folder in
            let url = folder.appendingPathComponent("config.json")
            try Data(contentsOf: url).prefix(60).write(to: url)
        }
        let cut = try Executables.run(["embed", "--model", truncated, "--input", input])
        XCTAssertTrue(cut.status == 1 && cut.stderr.contains("config.json: malformed JSON") && !cut.stderr.contains("not a JSON object"), cut.stderr)
        let bytes = try Fixtures.temporaryDirectory("robust-utf8").appendingPathComponent("bad.txt")
        try Data("fine\n".utf8 + [0xFF, 0xFE] + Data(" not text\n".utf8)).write(to: bytes)
        let notUTF8 = try Executables.run(["embed", "--model", model, "--input", bytes.path])
        XCTAssertTrue(notUTF8.status == 1 && notUTF8.stderr.contains("bad.txt:2: not UTF-8"), notUTF8.stderr)
        let emptyVocabulary = try modelCopy { folder in
            let url = folder.appendingPathComponent("tokenizer.json")
            var tokenizer = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
            var model = tokenizer["model"] as! [String: Any]
            model["vocab"] = [String: Int]()
            model["merges"] = [String]()
            tokenizer["model"] = model
            tokenizer["added_tokens"] = [Any]()
            try JSONSerialization.data(withJSONObject: tokenizer).write(to: url)
        }
        let noTokens = try Executables.run(["embed", "--model", emptyVocabulary, "--input", input])
        XCTAssertTrue(noTokens.status == 1 && noTokens.stderr.contains("model.vocab is empty") && !noTokens.stderr.contains("text is empty"), noTokens.stderr)
        let directory = try Executables.run(["embed", "--model", model, "--input", try Fixtures.temporaryDirectory("robust-dir").path])
        XCTAssertTrue(directory.status == 1 && directory.stderr.contains("is a directory"), directory.stderr)
    }

    /// Property: random mutations of config.json and of JSONL input never crash the binary,
    /// exit with 0, 1 or 64 only, and a success never prints a non-finite value.
    func testRandomConfigAndInputMutationsFailCleanly() throws {
        var random = SeededRandom(seed: 20261202)
        let values: [Any] = [0, -1, 1, 3, 2.5, 1e300, -1e300, 1_000_000_000, 65536, "x", "", NSNull(), true, false, [Any](), [String: Any](), [1, 2]]
        let original = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: model + "/config.json"))) as! [String: Any]
        let keys = original.keys.sorted()
        let input = try textFile(["The cat sat on the mat.", "Another text."])
        func check(_ result: ProcessResult, _ what: String) {
            XCTAssertTrue([0, 1, 64].contains(result.status), "\(what): exit \(result.status): \(result.stderr)")
            if result.status == 0 {
                XCTAssertFalse(result.stdout.contains("nan") || result.stdout.contains("inf") || result.stdout.contains("null"), what)
            } else {
                XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, "\(what): \(result.stderr)")
            }
        }
        for round in 0..<16 {
            var config = original
            let key = keys[Int.random(in: 0..<keys.count, using: &random)]
            if Int.random(in: 0..<5, using: &random) == 0 { config.removeValue(forKey: key) } else { config[key] = values[Int.random(in: 0..<values.count, using: &random)] }
            let folder = try modelCopy { try JSONSerialization.data(withJSONObject: config).write(to: $0.appendingPathComponent("config.json")) }
            check(try Executables.run(["embed", "--model", folder, "--input", input]), "round \(round): config \(key) = \(config[key] ?? "removed")")
        }
        let pieces = ["{\"text\": \"ok\"}", "{\"text\": \"\"}", "{\"text\": 5}", "{\"text\": null}", "{\"instruction\": \"x\"}", "[1, 2]",
                      "{\"text\": \"a\", \"instruction\": 7}", "{\"text\": \"\\u0000\"}", "{broken", "\"just a string\"", "",
                      "{\"text\": \"" + String(repeating: "長", count: 3000) + "\"}", "{\"text\": \"emoji 🙂 and ünïcode\"}"]
        for round in 0..<12 {
            let lines = (0..<(1 + Int.random(in: 0..<4, using: &random))).map { _ in pieces[Int.random(in: 0..<pieces.count, using: &random)] }
            let file = try textFile(lines, name: "mutated.jsonl")
            check(try Executables.run(["embed", "--model", model, "--input", file]), "round \(round): \(lines)")
        }
    }
}
