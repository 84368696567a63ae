import Foundation
import Testing
@testable import Unmask
import UnmaskTestSupport

@Suite struct LoRAAdapterTests {
    @Test func parsesPEFTKeyNames() {
        #expect(LoRAAdapter.parse("base_model.model.layers.3.self_attn.q_proj.lora_A.weight")! == ("layers.3.self_attn.q_proj", "A"))
        #expect(LoRAAdapter.parse("base_model.model.model.layers.0.mlp.down_proj.lora_B.weight")! == ("layers.0.mlp.down_proj", "B"))
        #expect(LoRAAdapter.parse("base_model.model.layers.0.mlp.up_proj.lora_B.default.weight")! == ("layers.0.mlp.up_proj", "B"))
        #expect(LoRAAdapter.parse("layers.0.mlp.up_proj.weight") == nil)
    }

    @Test func mergeAddsScaledProductOfAAndB() throws {
        let config = DecoderConfig(modelType: "llama", hiddenSize: 8, intermediateSize: 12, layerCount: 1, headCount: 2, kvHeadCount: 1,
                                   headDim: 4, vocabularySize: 10, rmsNormEps: 1e-5, ropeTheta: 10000, maxPositionEmbeddings: 64)
        let weights = try DecoderWeights.load(from: InMemoryTensors.random(config: config, seed: 1), config: config)
        let before = weights.layers[0].qProj.weight.values
        let directory = try Fixtures.temporaryDirectory("lora")
        var rng = SeededRandom(seed: 2)
        let a = rng.floats(2 * 8), b = rng.floats(8 * 2)
        try Data(#"{"peft_type": "LORA", "r": 2, "lora_alpha": 8, "target_modules": ["q_proj"], "bias": "none"}"#.utf8)
            .write(to: directory.appendingPathComponent("adapter_config.json"))
        try SafeTensorsWriter.data([
            .init(name: "base_model.model.layers.0.self_attn.q_proj.lora_A.weight", shape: [2, 8], floats: a),
            .init(name: "base_model.model.layers.0.self_attn.q_proj.lora_B.weight", shape: [8, 2], floats: b),
        ]).write(to: directory.appendingPathComponent("adapter_model.safetensors"))
        let adapter = try LoRAAdapter(directory: directory.path)
        #expect(adapter.scaling == 4)
        try adapter.merge(into: weights)
        let after = weights.layers[0].qProj.weight.values
        for i in 0..<8 {
            for j in 0..<8 {
                let delta = 4 * (b[i * 2] * a[j] + b[i * 2 + 1] * a[8 + j])
                #expect(abs(after[i * 8 + j] - before[i * 8 + j] - delta) < 1e-5)
            }
        }
    }

    @Test func adapterErrorsNameTheProblem() throws {
        let directory = try Fixtures.temporaryDirectory("lora-bad")
        #expect { try LoRAAdapter(directory: directory.path) } throws: { String(describing: $0).contains("adapter_config.json: not found") }
        try Data(#"{"r": 4, "lora_alpha": 8, "target_modules": ["q_proj"], "use_dora": true}"#.utf8).write(to: directory.appendingPathComponent("adapter_config.json"))
        #expect { try LoRAAdapter(directory: directory.path) } throws: { String(describing: $0).contains("field 'use_dora'") }
        try Data(#"{"r": 4, "lora_alpha": 8, "target_modules": ["q_proj"]}"#.utf8).write(to: directory.appendingPathComponent("adapter_config.json"))
        #expect { try LoRAAdapter(directory: directory.path) } throws: { String(describing: $0).contains("adapter_model.safetensors: not found") }
        try SafeTensorsWriter.data([.init(name: "base_model.model.layers.0.self_attn.q_proj.lora_A.weight", shape: [4, 64], floats: .init(repeating: 0, count: 256))])
            .write(to: directory.appendingPathComponent("adapter_model.safetensors"))
        #expect { try LoRAAdapter(directory: directory.path) } throws: { String(describing: $0).contains("has only one of lora_A and lora_B") }
    }

    @Test func adapterForAnotherModelIsRejected() throws {
        let model = Fixtures.path("models", "llama2-bf16")
        #expect {
            _ = try Encoder(modelPath: Fixtures.path("models", "qwen2-bias-f32"), adapterPaths: [model + "/adapters/mntp"])
        } throws: { String(describing: $0).contains("invalid LoRA adapter") }
    }

    /// PEFT's adapter_config fields are honoured or refused by name, never ignored.
    @Test func honoursLayersToTransformAndRefusesWhatItCannotApply() throws {
        let config = DecoderConfig(modelType: "llama", hiddenSize: 8, intermediateSize: 12, layerCount: 2, headCount: 2, kvHeadCount: 1,
                                   headDim: 4, vocabularySize: 10, rmsNormEps: 1e-5, ropeTheta: 10000, maxPositionEmbeddings: 64)
        let directory = try Fixtures.temporaryDirectory("lora-fields")
        var rng = SeededRandom(seed: 3)
        try SafeTensorsWriter.data((0..<2).flatMap { l -> [SafeTensorsWriter.Tensor] in [
            .init(name: "base_model.model.layers.\(l).self_attn.q_proj.lora_A.weight", shape: [2, 8], floats: rng.floats(16)),
            .init(name: "base_model.model.layers.\(l).self_attn.q_proj.lora_B.weight", shape: [8, 2], floats: rng.floats(16)),
        ] }).write(to: directory.appendingPathComponent("adapter_model.safetensors"))
        func adapter(_ config: String) throws -> LoRAAdapter {
            try Data(config.utf8).write(to: directory.appendingPathComponent("adapter_config.json"))
            return try LoRAAdapter(directory: directory.path)
        }
        let only = try adapter(#"{"r": 2, "lora_alpha": 4, "target_modules": ["q_proj"], "layers_to_transform": [0], "layers_pattern": "layers"}"#)
        #expect(only.pairs.keys.sorted() == ["layers.0.self_attn.q_proj"])
        let weights = try DecoderWeights.load(from: InMemoryTensors.random(config: config, seed: 1), config: config)
        let layerOne = weights.layers[1].qProj.weight.values
        try only.merge(into: weights)
        #expect(weights.layers[1].qProj.weight.values == layerOne)
        #expect(try adapter(#"{"r": 2, "lora_alpha": 4, "target_modules": ["q_proj"]}"#).pairs.count == 2)
        // Tensors for modules the config does not target are not applied (PEFT builds no LoRA there).
        #expect(throws: UnmaskError.self) { try adapter(#"{"r": 2, "lora_alpha": 4, "target_modules": ["v_proj"]}"#) }
        #expect { try adapter(#"{"r": 2, "lora_alpha": 4, "target_modules": ["q_proj", "c_attn"]}"#) } throws: { String(describing: $0).contains("'c_attn' is not a module") }
        #expect { try adapter(#"{"r": 2, "lora_alpha": 4, "target_modules": ["q_proj"], "layers_pattern": "h"}"#) } throws: { String(describing: $0).contains("layers_pattern") }
        #expect { try adapter(#"{"r": 2, "lora_alpha": 4, "target_modules": ["q_proj"], "layers_to_transform": "all"}"#) } throws: { String(describing: $0).contains("layers_to_transform") }
        #expect { try adapter(#"{"r": 2, "lora_alpha": 4, "target_modules": ["q_proj"], "layer_replication": [[0, 1]]}"#) } throws: { String(describing: $0).contains("layer_replication") }
    }
}
