import Foundation
import UnmaskKernels
import UnmaskTestSupport
import XCTest

/// `unmask embed` on a corpus through the CLI: killed with SIGKILL at random moments and resumed,
/// sharded by Slurm's and Kubernetes' variables, merged. XCTest, because these tests wait on child
/// processes for seconds (see RobustnessTests).
final class CorpusCLITests: XCTestCase {
    let model = Fixtures.path("models", "smollm-f32")

    func corpus(_ count: Int, in folder: URL) throws -> String {
        var generator = SplitMix64(seed: 11)
        let words = "the a cat dog runs far away blue red green house tree river mountain small large".split(separator: " ")
        let lines = (0..<count).map { i in
            let text = (0...(Int(generator.next() % 24))).map { _ in words[Int(generator.next() % UInt64(words.count))] }.joined(separator: " ")
            return "{\"id\": \"doc-\(i)\", \"text\": \"\(text)\", \"n\": \(i)}"
        }
        let path = folder.appendingPathComponent("corpus.jsonl").path
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    func testARunKilledAtRandomMomentsResumesToTheUninterruptedBytes() throws {
        let folder = try Fixtures.temporaryDirectory("corpus-kill")
        let input = try corpus(1500, in: folder)
        let common = ["embed", "--model", model, "--input", input, "--window", "8", "--keep", "n", "--max-length", "32"]
        let whole = folder.appendingPathComponent("whole.jsonl").path
        let started = Date()
        let result = try Executables.run(common + ["--output", whole])
        XCTAssertEqual(result.status, 0, result.stderr)
        let duration = Date().timeIntervalSince(started)

        let killed = folder.appendingPathComponent("killed.jsonl").path
        let journal = killed + ".resume.json"
        var random = SplitMix64(seed: UInt64(Date().timeIntervalSince1970))
        var kills = 0, killedMidRun = 0, finished = false
        var delays: [Double] = []
        for _ in 0..<30 where !finished {
            let process = Process()
            process.executableURL = Executables.unmask
            process.arguments = common + ["--output", killed, "--resume"]
            process.standardError = FileHandle.nullDevice
            try process.run()
            // Once the run is under way (its journal exists), kill it at a random moment within a
            // third of an uninterrupted run's time: before, between or inside windows' commits.
            let deadline = Date().addingTimeInterval(60)
            while process.isRunning, !FileManager.default.fileExists(atPath: journal), Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
            let delay = Double(random.next() % 1000) / 1000 * duration / 3
            delays.append(delay)
            Thread.sleep(forTimeInterval: delay)
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                kills += 1
                if FileManager.default.fileExists(atPath: journal) { killedMidRun += 1 }
            }
            process.waitUntilExit()
            finished = process.terminationReason == .exit && process.terminationStatus == 0
        }
        if !finished {
            let last = try Executables.run(common + ["--output", killed, "--resume"])
            XCTAssertEqual(last.status, 0, last.stderr)
        }
        XCTAssertGreaterThan(killedMidRun, 0, "no kill landed mid-run (run \(duration) s, delays \(delays))")
        XCTAssertTrue(FileManager.default.contentsEqual(atPath: whole, andPath: killed), "after \(kills) kills at \(delays)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: journal))
        XCTAssertFalse(FileManager.default.fileExists(atPath: killed + ".partial"))
    }

    func testShardsTakeTheirIndexFromSlurmOrKubernetesAndMergeToTheSingleRun() throws {
        let folder = try Fixtures.temporaryDirectory("corpus-shards-cli")
        let input = try corpus(60, in: folder)
        let common = ["embed", "--model", model, "--input", input, "--window", "4", "--max-length", "32", "--format", "npy", "--precision", "int8"]
        let single = folder.appendingPathComponent("single.npy").path
        XCTAssertEqual(try Executables.run(common + ["--output", single]).status, 0)
        let sharded = folder.appendingPathComponent("sharded.npy").path
        // A Slurm array numbered from 5 (--array=5-7), and a Kubernetes completion index.
        for (index, environment) in [(0, ["SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "5"]),
                                     (1, ["SLURM_ARRAY_TASK_ID": "6", "SLURM_ARRAY_TASK_MIN": "5"]),
                                     (2, ["JOB_COMPLETION_INDEX": "2"])] {
            let result = try runWith(environment: environment, common + ["--output", sharded, "--shard", "3"])
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertTrue(FileManager.default.fileExists(atPath: folder.appendingPathComponent(String(format: "sharded-%05d-of-00003.npy", index)).path))
        }
        let merge = try Executables.run(["shards", "merge", "--output", sharded])
        XCTAssertEqual(merge.status, 0, merge.stderr)
        XCTAssertTrue(FileManager.default.contentsEqual(atPath: single, andPath: sharded))
        XCTAssertTrue(FileManager.default.contentsEqual(atPath: folder.appendingPathComponent("single.ids.jsonl").path,
                                                        andPath: folder.appendingPathComponent("sharded.ids.jsonl").path))
        // No index anywhere is a usage error that says where an index comes from.
        let none = try runWith(environment: [:], common + ["--output", sharded, "--shard", "3"])
        XCTAssertEqual(none.status, 64)
        XCTAssertTrue(none.stderr.contains("SLURM_ARRAY_TASK_ID"), none.stderr)
    }

    func testSearchFindsAnIndexedTextAndRefusesQueriesEmbeddedOtherwise() throws {
        let folder = try Fixtures.temporaryDirectory("corpus-search-cli")
        let input = try corpus(80, in: folder)
        let index = folder.appendingPathComponent("index.npy").path
        let common = ["--model", model, "--max-length", "32"]
        XCTAssertEqual(try Executables.run(["embed"] + common + ["--input", input, "--output", index, "--keep", "n"]).status, 0)
        // A record's own text finds it first, with its id and kept field.
        let line = try String(contentsOfFile: input, encoding: .utf8).split(separator: "\n")[41]
        let text = (try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any])["text"] as! String
        let result = try Executables.run(["search"] + common + ["--index", index, "--query", text, "-k", "3"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let answer = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        let results = answer["results"] as! [[String: Any]]
        XCTAssertEqual(results.count, 3)
        XCTAssertEqual(results[0]["id"] as? String, "doc-41")
        XCTAssertEqual(results[0]["n"] as? Int, 41)
        XCTAssertEqual(results[0]["score"] as! Double, 1, accuracy: 1e-4)
        // Queries embedded with another maximum length would not be comparable.
        let other = try Executables.run(["search", "--model", model, "--max-length", "16", "--index", index, "--query", text])
        XCTAssertEqual(other.status, 1)
        XCTAssertTrue(other.stderr.contains("queries must be embedded the same way"), other.stderr)
    }

    /// Runs `unmask` with the test's environment minus any Slurm/Kubernetes index, plus `environment`.
    func runWith(environment: [String: String], _ arguments: [String]) throws -> ProcessResult {
        var base = ProcessInfo.processInfo.environment
        for key in ["SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "JOB_COMPLETION_INDEX"] { base[key] = nil }
        return try Executables.run(arguments, environment: base.merging(environment) { $1 })
    }
}
