import Foundation

/// Picks the right `TextEmbedder` for a model: a `BertEncoder` for a folder whose config.json
/// says `model_type: "bert"` (or the known name `minilm`), else the LLM2Vec `Encoder`.
public enum Embedders {
    /// Encoder-only model types people may try; named in the error so it is clear they are
    /// encoders Unmask does not run yet rather than unknown decoders.
    static let otherEncoderTypes: Set<String> = [
        "roberta", "xlm-roberta", "distilbert", "mpnet", "nomic_bert", "new", "electra", "deberta", "deberta-v2",
        "albert", "modernbert", "camembert", "t5",
    ]

    public static func load(
        modelPath: String, adapterPaths: [String] = [], precision: WeightPrecision = .auto, configure: (inout EncoderOptions) -> Void = { _ in }
    ) throws -> TextEmbedder {
        let resolved = try KnownModels.resolve(modelPath)
        if let modelType = try modelType(ofFolder: resolved) {
            let configFile = URL(fileURLWithPath: resolved).appendingPathComponent("config.json").path
            if BertConfig.supportedModelTypes.contains(modelType) {
                guard adapterPaths.isEmpty else {
                    throw UnmaskError.invalidAdapter(path: adapterPaths[0], reason: "LoRA adapters apply to decoder models; \(resolved) is a BERT encoder")
                }
                let isKnownName = KnownModels.all.contains { $0.name == modelPath }
                return try BertEncoder(folder: resolved, displayName: isKnownName ? modelPath : nil, configure: configure)
            }
            if otherEncoderTypes.contains(modelType) {
                throw UnmaskError.unsupportedArchitecture(
                    file: configFile, modelType: modelType,
                    supported: (BertConfig.supportedModelTypes + Architecture.all.keys.sorted()))
            }
        }
        return try Encoder(modelPath: resolved, adapterPaths: adapterPaths, precision: precision, configure: configure)
    }

    /// config.json's `model_type` for a folder, nil for a file (GGUF) or a folder without one
    /// (the `Encoder` then reports what is missing).
    static func modelType(ofFolder path: String) throws -> String? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else { return nil }
        let url = URL(fileURLWithPath: path).appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        let data = try Checkpoint.read(url, what: "the model's config.json")
        let parsed: Any
        do { parsed = try JSONSerialization.jsonObject(with: data) } catch {
            throw UnmaskError.malformedJSON(file: url.path, reason: (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "cannot parse (truncated?)")
        }
        guard let object = parsed as? [String: Any] else {
            throw UnmaskError.malformedJSON(file: url.path, reason: "the top level is not an object")
        }
        return object["model_type"] as? String
    }
}
