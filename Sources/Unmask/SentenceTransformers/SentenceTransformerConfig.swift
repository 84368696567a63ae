import Foundation

/// How sentence-transformers turns a transformer's token states into one vector: the
/// modules.json pipeline (Transformer → Pooling → Dense… → optional Normalize),
/// `1_Pooling/config.json`, each Dense module's config, `sentence_bert_config.json` and the
/// prompts of `config_sentence_transformers.json`. A folder without modules.json gets
/// sentence-transformers' fallback: mean pooling, no normalization.
public struct SentenceTransformerConfig: Sendable, Equatable {
    /// A `sentence_transformers.models.Dense` module: y = act(x·Wᵀ + b).
    public struct Dense: Sendable, Equatable {
        public enum Activation: String, Sendable { case identity, tanh }
        /// The module's folder (e.g. `2_Dense`), holding config.json and model.safetensors.
        public var path: String
        public var inFeatures: Int
        public var outFeatures: Int
        public var bias: Bool
        public var activation: Activation
    }

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
    /// Whether the folder has a modules.json pipeline at all.
    public var hasModules = false
    /// The Dense modules after pooling, in order.
    public var dense: [Dense] = []
    /// `include_prompt`: the prompt's tokens are pooled with the text's.
    public var includePrompt = true
    /// `prompts` by name, and the one used when none is asked for.
    public var prompts: [String: String] = [:]
    public var defaultPromptName: String?

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

        let promptsURL = folder.appendingPathComponent("config_sentence_transformers.json")
        if let root = try object(promptsURL) {
            guard let root = root as? [String: Any] else {
                throw UnmaskError.malformedJSON(file: promptsURL.path, reason: "not a JSON object")
            }
            if let prompts = root["prompts"], !(prompts is NSNull) {
                guard let prompts = prompts as? [String: String] else {
                    throw UnmaskError.invalidField(file: promptsURL.path, field: "prompts", expected: "an object of prompt name → prompt text")
                }
                config.prompts = prompts
            }
            if let name = root["default_prompt_name"], !(name is NSNull) {
                guard let name = name as? String, config.prompts[name] != nil else {
                    throw UnmaskError.invalidField(file: promptsURL.path, field: "default_prompt_name",
                                                   expected: "null or one of the prompts' names (\(config.prompts.keys.sorted().joined(separator: ", ")))")
                }
                config.defaultPromptName = name
            }
        }

        let modulesURL = folder.appendingPathComponent("modules.json")
        guard let modulesRoot = try object(modulesURL) else { return config }
        config.hasModules = true
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
            case "Dense":
                guard !config.normalize else {
                    throw UnmaskError.invalidField(file: modulesURL.path, field: "[\(index)].type", expected: "Normalize as the last module, not before a Dense one")
                }
                config.dense.append(try dense(folder: folder, path: module["path"] as? String ?? "", modulesFile: modulesURL.path, index: index, read: object))
            case "Normalize":
                config.normalize = true
            default:
                throw UnmaskError.invalidField(file: modulesURL.path, field: "[\(index)].type",
                                               expected: "sentence_transformers.models.Transformer, Pooling, Dense or Normalize (\"\(type)\" is not supported)")
            }
        }
        if let poolingPath {
            let url = folder.appendingPathComponent(poolingPath).appendingPathComponent("config.json")
            if let root = try object(url) {
                guard let root = root as? [String: Any] else {
                    throw UnmaskError.malformedJSON(file: url.path, reason: "not a JSON object")
                }
                config.pooling = try parsePooling(root, file: url.path)
                config.includePrompt = root["include_prompt"] as? Bool ?? true
            }
        }
        return config
    }

    /// A Dense module's `config.json` (its weights are read by `SentenceTransformerHead`).
    private static func dense(folder: URL, path: String, modulesFile: String, index: Int, read: (URL) throws -> Any?) throws -> Dense {
        let url = folder.appendingPathComponent(path).appendingPathComponent("config.json")
        guard let root = try read(url) else { throw UnmaskError.fileNotFound(path: url.path, what: "the Dense module's config.json (modules.json [\(index)])") }
        guard let root = root as? [String: Any] else { throw UnmaskError.malformedJSON(file: url.path, reason: "not a JSON object") }
        func size(_ key: String) throws -> Int {
            guard let n = (root[key] as? NSNumber)?.intValue, n >= 1, (root[key] as? NSNumber)?.doubleValue == Double(n) else {
                throw UnmaskError.invalidField(file: url.path, field: key, expected: "a positive integer")
            }
            return n
        }
        let activationName = root["activation_function"] as? String ?? "torch.nn.modules.linear.Identity"
        let activation: Dense.Activation
        switch activationName.split(separator: ".").last.map(String.init) ?? activationName {
        case "Identity": activation = .identity
        case "Tanh": activation = .tanh
        default:
            throw UnmaskError.invalidField(file: url.path, field: "activation_function", expected: "torch.nn.modules.linear.Identity or torch.nn.modules.activation.Tanh, got \"\(activationName)\"")
        }
        return Dense(path: path, inFeatures: try size("in_features"), outFeatures: try size("out_features"),
                     bias: root["bias"] as? Bool ?? true, activation: activation)
    }

    static func parsePooling(_ root: [String: Any], file: String) throws -> [PoolingMode] {
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
