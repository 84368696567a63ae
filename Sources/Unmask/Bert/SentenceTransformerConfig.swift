import Foundation

/// How sentence-transformers turns a BERT's token states into one vector: the modules.json
/// pipeline (Transformer → Pooling → optional Normalize), `1_Pooling/config.json` and
/// `sentence_bert_config.json`. A folder without modules.json gets sentence-transformers'
/// fallback: mean pooling, no normalization.
public struct SentenceTransformerConfig: Sendable, Equatable {
    /// sentence-transformers' pooling modes, in the order it concatenates them.
    public enum PoolingMode: String, Sendable, CaseIterable {
        case cls, max, mean, meanSqrtLen = "mean_sqrt_len", weightedMean = "weightedmean", lastToken = "lasttoken"

        var configKey: String {
            switch self {
            case .cls: "pooling_mode_cls_token"
            case .max: "pooling_mode_max_tokens"
            case .mean: "pooling_mode_mean_tokens"
            case .meanSqrtLen: "pooling_mode_mean_sqrt_len_tokens"
            case .weightedMean: "pooling_mode_weightedmean_tokens"
            case .lastToken: "pooling_mode_lasttoken"
            }
        }
    }

    public var pooling: [PoolingMode] = [.mean]
    public var normalize = false
    /// `max_seq_length`, or nil when the folder does not say.
    public var maxSequenceLength: Int?
    /// `do_lower_case`: sentence-transformers lowercases the text before tokenizing.
    public var lowercase = false

    public init(pooling: [PoolingMode] = [.mean], normalize: Bool = false, maxSequenceLength: Int? = nil, lowercase: Bool = false) {
        self.pooling = pooling
        self.normalize = normalize
        self.maxSequenceLength = maxSequenceLength
        self.lowercase = lowercase
    }

    /// Reads the sentence-transformers files of `folder` (all optional).
    public static func load(folder: URL) throws -> SentenceTransformerConfig {
        var config = SentenceTransformerConfig()
        func object(_ url: URL) throws -> Any? {
            guard FileManager.default.fileExists(atPath: url.path) else { return nil }
            let data = try Checkpoint.read(url, what: url.lastPathComponent)
            do { return try JSONSerialization.jsonObject(with: data) } catch {
                throw UnmaskError.malformedJSON(file: url.path, reason: "cannot parse")
            }
        }
        let bertConfigURL = folder.appendingPathComponent("sentence_bert_config.json")
        if let root = try object(bertConfigURL) {
            guard let root = root as? [String: Any] else {
                throw UnmaskError.malformedJSON(file: bertConfigURL.path, reason: "not a JSON object")
            }
            if let value = root["max_seq_length"], !(value is NSNull) {
                guard let length = (value as? NSNumber)?.intValue, length >= 1 else {
                    throw UnmaskError.invalidField(file: bertConfigURL.path, field: "max_seq_length", expected: "a positive integer")
                }
                config.maxSequenceLength = length
            }
            config.lowercase = (root["do_lower_case"] as? Bool) ?? false
        }

        let modulesURL = folder.appendingPathComponent("modules.json")
        guard let modulesRoot = try object(modulesURL) else { return config }
        guard let modules = modulesRoot as? [[String: Any]] else {
            throw UnmaskError.malformedJSON(file: modulesURL.path, reason: "expected an array of modules")
        }
        var poolingPath: String?
        for (index, module) in modules.enumerated() {
            let type = module["type"] as? String ?? ""
            let name = type.split(separator: ".").last.map(String.init) ?? type
            switch name {
            case "Transformer":
                continue
            case "Pooling":
                poolingPath = module["path"] as? String ?? ""
            case "Normalize":
                config.normalize = true
            default:
                throw UnmaskError.invalidField(file: modulesURL.path, field: "[\(index)].type",
                                               expected: "sentence_transformers.models.Transformer, Pooling or Normalize (\"\(type)\" is not supported)")
            }
        }
        if let poolingPath {
            let url = folder.appendingPathComponent(poolingPath).appendingPathComponent("config.json")
            if let root = try object(url) {
                guard let root = root as? [String: Any] else {
                    throw UnmaskError.malformedJSON(file: url.path, reason: "not a JSON object")
                }
                config.pooling = try parsePooling(root, file: url.path)
            }
        }
        return config
    }

    static func parsePooling(_ root: [String: Any], file: String) throws -> [PoolingMode] {
        if let include = root["include_prompt"] as? Bool, !include {
            throw UnmaskError.invalidField(file: file, field: "include_prompt", expected: "true (pooling that leaves out the prompt is not supported)")
        }
        if let mode = root["pooling_mode"] as? String {
            let name = mode == "mean_tokens" ? "mean" : mode == "cls_token" ? "cls" : mode == "max_tokens" ? "max" : mode
            guard let parsed = PoolingMode(rawValue: name) else {
                throw UnmaskError.invalidField(file: file, field: "pooling_mode", expected: "one of \(PoolingMode.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return [parsed]
        }
        let modes = PoolingMode.allCases.filter { (root[$0.configKey] as? Bool) == true }
        guard !modes.isEmpty else {
            throw UnmaskError.invalidField(file: file, field: "pooling_mode_mean_tokens", expected: "at least one pooling_mode_* set to true")
        }
        return modes
    }
}
