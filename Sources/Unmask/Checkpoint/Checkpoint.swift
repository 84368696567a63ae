import Foundation
import UnmaskTokenizers

/// A model to load: a Hugging Face folder (config.json, safetensors weights, tokenizer files), a
/// GGUF file (weights, hyperparameters and tokenizer in one), or the name of an installed known
/// model (`KnownModels`). Nothing is read from the network.
public struct Checkpoint: Sendable {
    public enum Format: Sendable {
        case huggingFace(folder: URL)
        case gguf(GGUFCheckpoint)
    }

    public let path: String
    public let format: Format
    public let architecture: Architecture
    public let config: DecoderConfig
    public let tensors: TensorSource

    public init(path model: String) throws {
        let path = try KnownModels.resolve(model)
        self.path = path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw UnmaskError.fileNotFound(path: path, what: "model: a Hugging Face model folder, a .gguf file, or one of \(KnownModels.all.map(\.name).joined(separator: ", "))")
        }
        if !isDirectory.boolValue {
            guard path.lowercased().hasSuffix(".gguf") else {
                throw UnmaskError.invalidInput(source: path, reason: "expected a model folder (config.json, model.safetensors, tokenizer.json) or a .gguf file")
            }
            let gguf = try GGUFCheckpoint(path: path)
            format = .gguf(gguf)
            architecture = gguf.architecture
            config = gguf.config
            tensors = gguf
            return
        }
        let folder = URL(fileURLWithPath: path)
        format = .huggingFace(folder: folder)
        let configURL = folder.appendingPathComponent("config.json")
        let data = try Checkpoint.read(configURL, what: "the model's config.json")
        (architecture, config) = try Architecture.load(configJSON: data, file: configURL.path)

        let single = folder.appendingPathComponent("model.safetensors")
        let index = folder.appendingPathComponent("model.safetensors.index.json")
        if FileManager.default.fileExists(atPath: single.path) {
            tensors = try SafeTensorsFile(path: single.path)
        } else if FileManager.default.fileExists(atPath: index.path) {
            tensors = try ShardedSafeTensors(indexPath: index.path)
        } else {
            throw UnmaskError.fileNotFound(path: single.path, what: "weights: model.safetensors or model.safetensors.index.json")
        }
    }

    /// The folder whose `llm2vec_config.json` sets encoder defaults (Hugging Face folders only).
    public var folder: URL? {
        if case let .huggingFace(folder) = format { return folder }
        return nil
    }

    public func loadTokenizer() throws -> Tokenizer {
        switch format {
        case let .huggingFace(folder): return try Checkpoint.loadTokenizer(directory: folder.path)
        case let .gguf(gguf): return try gguf.loadTokenizer()
        }
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

    /// The decoder; with `lmHead`, also the output projection for next-token logits. `precision`
    /// says whether matrices stay in their stored format (`.auto`) or become float32.
    public func loadModel(lmHead: Bool = false, precision: WeightPrecision = .auto) throws -> DecoderModel {
        let weights: DecoderWeights
        switch format {
        case .huggingFace: weights = try DecoderWeights.load(from: tensors, config: config, configName: configName, precision: precision)
        case let .gguf(gguf): weights = try gguf.loadModel(precision: precision).weights
        }
        let head = lmHead ? try weights.lmHead(from: tensors, config: config, configName: configName, precision: precision) : nil
        return DecoderModel(config: config, weights: weights, lmHead: head)
    }

    /// Where the hyperparameters came from, for error messages.
    private var configName: String {
        switch format {
        case .huggingFace: return "config.json"
        case .gguf: return "GGUF metadata"
        }
    }

    static func read(_ url: URL, what: String) throws -> Data {
        guard FileManager.default.fileExists(atPath: url.path) else { throw UnmaskError.fileNotFound(path: url.path, what: what) }
        do { return try Data(contentsOf: url) } catch {
            throw UnmaskError.unreadableFile(path: url.path, reason: error.localizedDescription)
        }
    }
}
