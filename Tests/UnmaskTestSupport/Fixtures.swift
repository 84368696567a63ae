import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import UnmaskKernels

/// Where the committed fixtures live, found from this file's path so tests run from any folder.
public enum Fixtures {
    public static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")

    public static func path(_ components: String...) -> String {
        components.reduce(root) { $0.appendingPathComponent($1) }.path
    }

    public static func json(_ components: String...) throws -> Any {
        let url = components.reduce(root) { $0.appendingPathComponent($1) }
        return try JSONSerialization.jsonObject(with: Data(contentsOf: url))
    }

    /// A fresh empty folder inside this test process's scratch root, which goes when the process exits.
    public static func temporaryDirectory(_ name: String = "unmask-test") throws -> URL {
        let url = ScratchRoot.url.appendingPathComponent("\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// One folder per test process under the system temporary directory, `unmask-tests-<pid>`.
///
/// Test runs write thousands of small models, checkpoints and corpora; without this every run
/// left them all behind (tens of gigabytes after a few days of development). The root is removed
/// at normal exit, and roots of processes that are gone (a run killed mid-way) are removed when
/// the next run starts.
enum ScratchRoot {
    static let prefix = "unmask-tests-"

    static let url: URL = {
        let temporary = FileManager.default.temporaryDirectory
        removeAbandoned(in: temporary)
        let root = temporary.appendingPathComponent("\(prefix)\(getpid())")
        try? FileManager.default.removeItem(at: root)
        try? FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(at: ScratchRoot.url) }
        return root
    }()

    private static func removeAbandoned(in temporary: URL) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: temporary.path)) ?? []
        for name in names where name.hasPrefix(prefix) {
            guard let pid = pid_t(name.dropFirst(prefix.count)), pid != getpid() else { continue }
            // kill(pid, 0) fails with ESRCH only when no such process exists.
            if kill(pid, 0) != 0 && errno == ESRCH {
                try? FileManager.default.removeItem(at: temporary.appendingPathComponent(name))
            }
        }
    }
}

/// Seeded randomness for reproducible tests: the project's own generator.
public typealias SeededRandom = SplitMix64

extension SplitMix64 {
    /// `count` floats uniform in [-scale, scale).
    public mutating func floats(_ count: Int, scale: Float = 1) -> [Float] {
        (0..<count).map { _ in Float.random(in: -scale..<scale, using: &self) }
    }
}

/// Closeness measures the fixtures' tolerances are stated in.
public enum Compare {
    public static func cosine(_ a: [Float], _ b: [Float]) -> Double {
        var dot = 0.0, na = 0.0, nb = 0.0
        for (x, y) in zip(a, b) { dot += Double(x) * Double(y); na += Double(x) * Double(x); nb += Double(y) * Double(y) }
        return dot / max((na * nb).squareRoot(), 1e-300)
    }

    /// ‖a − b‖ / ‖b‖
    public static func relativeL2(_ a: [Float], _ b: [Float]) -> Double {
        var diff = 0.0, norm = 0.0
        for (x, y) in zip(a, b) { diff += Double(x - y) * Double(x - y); norm += Double(y) * Double(y) }
        return (diff / max(norm, 1e-300)).squareRoot()
    }

    public static func maxAbs(_ a: [Float], _ b: [Float]) -> Float {
        zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }
}

/// Pretrained models that some tests use when they are installed (CI installs them).
public enum InstalledModels {
    /// SmolLM2-135M-Instruct's GGUF: `UNMASK_SMOLLM2_GGUF`, else where `scripts/install_model.sh smollm2` puts it.
    public static var smollm2: String? {
        installed(override: "UNMASK_SMOLLM2_GGUF", "smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    }

    /// Qwen2.5-Coder-0.5B-Instruct's GGUF (`scripts/install_model.sh qwen2.5-coder-0.5b`; 491 MB, not in CI).
    public static var qwen25Coder: String? {
        installed(override: "UNMASK_QWEN_GGUF", "qwen2.5-coder-0.5b/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
    }

    /// EmbeddingGemma-300M's sentence-transformers folder (`scripts/install_model.sh embeddinggemma`; 1.2 GB).
    public static var embeddingGemma: String? {
        installed(override: "UNMASK_EMBEDDINGGEMMA", "embeddinggemma/config.json").map { ($0 as NSString).deletingLastPathComponent }
    }

    /// Gemma 3 270M's Q4_K_M GGUF (`scripts/install_model.sh gemma3-270m`; 253 MB).
    public static var gemma3: String? {
        installed(override: "UNMASK_GEMMA3_GGUF", "gemma3-270m/gemma-3-270m-q4_k_m.gguf")
    }

    private static func installed(override: String, _ relativePath: String) -> String? {
        let environment = ProcessInfo.processInfo.environment
        let home = environment["UNMASK_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (NSHomeDirectory() + "/.cache/unmask")
        let candidates = [environment[override], home + "/models/" + relativePath]
        return candidates.compactMap { $0 }.first { FileManager.default.fileExists(atPath: $0) }
    }
}

/// The built `unmask` binary, which `swift build` puts beside the test bundle.
public enum Executables {
    public static let unmask: URL = {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("unmask")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory.deleteLastPathComponent()
        }
        return Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("unmask")
    }()
}

/// What a finished process printed and returned.
public struct ProcessResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

extension Executables {
    /// Runs `executable` (default: the built `unmask`) to completion. Standard error is drained on
    /// another thread so a chatty process cannot fill its pipe and hang the test.
    /// `environment` replaces the inherited one when given.
    public static func run(_ arguments: [String], executable: URL = unmask, environment: [String: String]? = nil) throws -> ProcessResult {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let environment { process.environment = environment }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        nonisolated(unsafe) var errorData = Data()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { errorData = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return ProcessResult(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: errorData, as: UTF8.self))
    }
}
