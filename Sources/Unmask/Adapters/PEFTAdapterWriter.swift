import Foundation

extension LoRATensors {
    /// PEFT's tensor name for a LoRA matrix of a model saved as llm2vec saves it (the bare decoder,
    /// `LlamaBiModel`, under PEFT's `base_model.model.` prefix), as in McGill-NLP's adapters.
    public static func peftName(layer: Int, projection: LoRAProjection, isA: Bool) -> String {
        "base_model.model.\(name(layer: layer, projection: projection, isA: isA)).weight"
    }

    /// Writes a PEFT LoRA adapter folder: `adapter_config.json` (PEFT 0.12's fields) and
    /// `adapter_model.safetensors`, loadable by `PeftModel.from_pretrained` on llm2vec's
    /// bidirectional model, by llm2vec's `peft_model_name_or_path` and by `LoRAAdapter`.
    public func writePEFTAdapter(to directory: URL, alpha: Float, dropout: Float, baseModel: String) throws {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw UnmaskError.unwritableFile(path: directory.path, reason: error.localizedDescription)
        }
        var tensors: [SafeTensorsFile.OutputTensor] = []
        for (l, layer) in layers.enumerated() {
            for p in LoRAProjection.allCases {
                let pair = layer[p.rawValue]
                tensors.append(.init(name: Self.peftName(layer: l, projection: p, isA: true), shape: [pair.rank, pair.inFeatures],
                                     values: UnsafeBufferPointer(start: pair.a.pointer, count: pair.a.count)))
                tensors.append(.init(name: Self.peftName(layer: l, projection: p, isA: false), shape: [pair.outFeatures, pair.rank],
                                     values: UnsafeBufferPointer(start: pair.b.pointer, count: pair.b.count)))
            }
        }
        try SafeTensorsFile.write(tensors, metadata: ["format": "pt"], to: directory.appendingPathComponent("adapter_model.safetensors"))
        let config: [String: Any] = [
            "alpha_pattern": [String: Any](), "auto_mapping": NSNull(), "base_model_name_or_path": baseModel, "bias": "none",
            "fan_in_fan_out": false, "inference_mode": true, "init_lora_weights": true, "layer_replication": NSNull(),
            "layers_pattern": NSNull(), "layers_to_transform": NSNull(), "loftq_config": [String: Any](), "lora_alpha": Self.decimal(alpha),
            "lora_dropout": Self.decimal(dropout), "megatron_config": NSNull(), "megatron_core": "megatron.core", "modules_to_save": NSNull(),
            "peft_type": "LORA", "r": rank, "rank_pattern": [String: Any](), "revision": NSNull(),
            "target_modules": LoRAProjection.allCases.map { $0.moduleName }.sorted(),
            "task_type": NSNull(), "use_dora": false, "use_rslora": false,
        ]
        let json = try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
        try writeAtomically(json, to: directory.appendingPathComponent("adapter_config.json"))
    }

    /// The Float as its shortest decimal (0.05, not 0.05000000074505806 from widening to Double).
    static func decimal(_ value: Float) -> Double { Double("\(value)") ?? Double(value) }
}
