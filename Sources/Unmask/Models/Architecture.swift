import Foundation

/// One supported `model_type`, described in one file: how to read its config.json into the
/// sizes and layer plan (`DecoderConfig`), its tensor names in both formats, its GGUF
/// architecture name, and what llm2vec appends for `eos-token` pooling. The layer code is shared.
public struct Architecture: Sendable {
    public let modelType: String
    /// `general.architecture` of its GGUF files, when Unmask reads them.
    public let ggufName: String?
    public let tensors: TensorNameTable
    /// The text llm2vec appends before tokenizing for `eos_token` pooling, given `_name_or_path`.
    public let eosPoolingSuffix: @Sendable (_ nameOrPath: String) -> String
    let resolve: @Sendable (_ configJSON: Data, _ file: String) throws -> DecoderConfig
    /// Completes a config read from GGUF metadata with what the common keys do not say (the
    /// layer plan llama.cpp keeps in its own code or architecture-specific keys).
    var ggufPlan: (@Sendable (_ config: inout DecoderConfig, _ metadata: GGUFMetadataReader) throws -> Void)? = nil

    /// Every supported architecture; adding one means adding its file and its entry here.
    static let registered: [Architecture] = [llama, mistral, qwen2, qwen3, gemma3]

    /// The registry, keyed by `model_type`.
    public static let all: [String: Architecture] = Dictionary(uniqueKeysWithValues: registered.map { ($0.modelType, $0) })

    /// The architectures with GGUF files, keyed by `general.architecture`.
    public static let byGGUFName: [String: Architecture] = Dictionary(uniqueKeysWithValues: registered.compactMap { a in a.ggufName.map { ($0, a) } })

    /// The architecture a resolved config belongs to.
    public static func of(_ config: DecoderConfig) -> Architecture {
        guard let architecture = all[config.modelType] else { preconditionFailure("no architecture registered for model_type \(config.modelType)") }
        return architecture
    }

    public static func named(_ modelType: String, file: String) throws -> Architecture {
        guard let architecture = all[modelType] else {
            throw UnmaskError.unsupportedArchitecture(file: file, modelType: modelType, supported: all.keys.sorted())
        }
        return architecture
    }

    /// config.json's size keys, which must be integers in every architecture.
    static let integerKeys = ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                              "num_key_value_heads", "head_dim", "max_position_embeddings", "sliding_window", "max_window_layers",
                              "sliding_window_pattern", "query_pre_attn_scalar"]

    /// Reads config.json: picks the architecture by `model_type` and resolves its hyperparameters.
    public static func load(configJSON data: Data, file: String = "config.json") throws -> (Architecture, DecoderConfig) {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw UnmaskError.malformedJSON(file: file, reason: (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "cannot parse")
        }
        guard let dictionary = object as? [String: Any] else { throw UnmaskError.malformedJSON(file: file, reason: "top level is not an object") }
        guard let modelType = dictionary["model_type"] as? String else {
            throw UnmaskError.invalidField(file: file, field: "model_type", expected: "a string naming the architecture (one of \(all.keys.sorted().joined(separator: ", ")))")
        }
        let architecture = try named(modelType, file: file)
        // Foundation's decoder reports a size that is not an integer (64.5, 1e300) as invalid JSON
        // without the key: check the sizes here, by name.
        for key in integerKeys {
            guard let value = dictionary[key], !(value is NSNull) else { continue }
            guard let number = value as? NSNumber,
                  number.doubleValue.rounded() == number.doubleValue, abs(number.doubleValue) < Double(1 << 40) else {
                throw UnmaskError.invalidField(file: file, field: key, expected: "an integer, got \(value)")
            }
        }
        let config = try architecture.resolve(data, file)
        try config.validate(file: file)
        return (architecture, config)
    }
}

func decodeConfig<T: Decodable>(_ type: T.Type, from data: Data, file: String) throws -> T {
    do { return try JSONDecoder().decode(type, from: data) } catch let DecodingError.typeMismatch(expected, context) {
        throw UnmaskError.invalidField(file: file, field: context.codingPath.map(\.stringValue).joined(separator: "."), expected: "a value of type \(expected)")
    } catch let DecodingError.valueNotFound(expected, context) {
        throw UnmaskError.invalidField(file: file, field: context.codingPath.map(\.stringValue).joined(separator: "."), expected: "a value of type \(expected), not null")
    } catch let DecodingError.dataCorrupted(context) {
        // A value that parses but does not fit (hidden_size: 64.5 or 1e300) has a coding path: name the field.
        guard context.codingPath.isEmpty else {
            throw UnmaskError.invalidField(file: file, field: context.codingPath.map(\.stringValue).joined(separator: "."),
                                           expected: "a value that fits its type (\(context.debugDescription))")
        }
        throw UnmaskError.malformedJSON(file: file, reason: context.debugDescription + (context.underlyingError.map { " (\($0))" } ?? ""))
    }
}
