import Foundation
import UnmaskTokenizers

/// A Hugging Face model folder: config.json, safetensors weights (single or sharded) and the
/// tokenizer files. Nothing is read from the network.
public struct Checkpoint: Sendable {
    public let directory: URL
    public let architecture: Architecture
    public let config: DecoderConfig
    public let tensors: TensorSource

    public init(directory path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw UnmaskError.fileNotFound(path: path, what: "model folder")
        }
        guard isDirectory.boolValue else {
            throw UnmaskError.invalidInput(source: path, reason: "expected a model folder holding config.json, model.safetensors and tokenizer.json")
        }
        directory = URL(fileURLWithPath: path)
        let configURL = directory.appendingPathComponent("config.json")
        let data = try Checkpoint.read(configURL, what: "the model's config.json")
        (architecture, config) = try Architecture.load(configJSON: data, file: configURL.path)

        let single = directory.appendingPathComponent("model.safetensors")
        let index = directory.appendingPathComponent("model.safetensors.index.json")
        if FileManager.default.fileExists(atPath: single.path) {
            tensors = try SafeTensorsFile(path: single.path)
        } else if FileManager.default.fileExists(atPath: index.path) {
            tensors = try ShardedSafeTensors(indexPath: index.path)
        } else {
            throw UnmaskError.fileNotFound(path: single.path, what: "weights: model.safetensors or model.safetensors.index.json")
        }
    }

    public func loadTokenizer() throws -> Tokenizer {
        try Checkpoint.loadTokenizer(directory: directory.path)
    }

    /// The tokenizer of a model folder (tokenizer.json, plus tokenizer_config.json and
    /// special_tokens_map.json when present), without reading the weights.
    public static func loadTokenizer(directory: String) throws -> Tokenizer {
        let file = URL(fileURLWithPath: directory).appendingPathComponent("tokenizer.json")
        guard FileManager.default.fileExists(atPath: file.path) else {
            throw UnmaskError.fileNotFound(path: file.path, what: "tokenizer.json")
        }
        do { return try Tokenizer.load(directory: URL(fileURLWithPath: directory)) } catch {
            throw UnmaskError.tokenizer(String(describing: error))
        }
    }

    public func loadModel() throws -> DecoderModel {
        DecoderModel(config: config, weights: try DecoderWeights.load(from: tensors, config: config))
    }

    static func read(_ url: URL, what: String) throws -> Data {
        guard FileManager.default.fileExists(atPath: url.path) else { throw UnmaskError.fileNotFound(path: url.path, what: what) }
        do { return try Data(contentsOf: url) } catch {
            throw UnmaskError.unreadableFile(path: url.path, reason: error.localizedDescription)
        }
    }
}
