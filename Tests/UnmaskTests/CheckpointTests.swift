import Foundation
import Testing
@testable import Unmask
import UnmaskTestSupport

/// Loading model folders, and the one-line errors for broken ones.
@Suite struct CheckpointTests {
    /// A copy of a fixture model that a test may break.
    func copyOfFixture(_ name: String = "llama2-bf16") throws -> URL {
        let directory = try Fixtures.temporaryDirectory("checkpoint")
        let source = URL(fileURLWithPath: Fixtures.path("models", name))
        for file in try FileManager.default.contentsOfDirectory(atPath: source.path) where file != "adapters" {
            try FileManager.default.copyItem(at: source.appendingPathComponent(file), to: directory.appendingPathComponent(file))
        }
        return directory
    }

    func editConfig(_ directory: URL, _ edit: (inout [String: Any]) -> Void) throws {
        let url = directory.appendingPathComponent("config.json")
        var object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        edit(&object)
        try JSONSerialization.data(withJSONObject: object).write(to: url)
    }

    func loadError(_ directory: URL) -> String {
        do { _ = try Encoder(modelPath: directory.path); return "no error" } catch { return String(describing: error) }
    }

    @Test func loadsEveryFixtureArchitecture() throws {
        for name in ["llama3-tied-f32", "llama2-bf16", "mistral-f16-sharded", "qwen2-bias-f32", "smollm-f32"] {
            let checkpoint = try Checkpoint(path: Fixtures.path("models", name))
            let model = try checkpoint.loadModel()
            #expect(model.weights.layers.count == checkpoint.config.layerCount)
        }
    }

    @Test func llamaConfigDefaultsFollowTransformers() throws {
        let json = #"{"model_type": "llama", "hidden_size": 64, "num_attention_heads": 4}"#
        let (architecture, config) = try Architecture.load(configJSON: Data(json.utf8))
        #expect(architecture.modelType == "llama")
        #expect(config.kvHeadCount == 4 && config.headDim == 16)
        #expect(config.intermediateSize == 11008 && config.layerCount == 32 && config.vocabularySize == 32000)
        #expect(config.rmsNormEps == 1e-6 && config.ropeTheta == 10000 && !config.tieWordEmbeddings)
    }

    @Test func qwen2AlwaysHasQKVBias() throws {
        let json = #"{"model_type": "qwen2", "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2}"#
        let (_, config) = try Architecture.load(configJSON: Data(json.utf8))
        #expect(config.attentionBias && config.slidingWindow == nil && config.vocabularySize == 151936)
    }

    @Test func mistralSlidingWindowDefaultsAndNull() throws {
        let withDefault = try Architecture.load(configJSON: Data(#"{"model_type": "mistral"}"#.utf8)).1
        #expect(withDefault.slidingWindow == 4096 && withDefault.kvHeadCount == 8 && withDefault.headDim == 128)
        let withNull = try Architecture.load(configJSON: Data(#"{"model_type": "mistral", "sliding_window": null}"#.utf8)).1
        #expect(withNull.slidingWindow == nil)
    }

    @Test func llama3RopeScalingMatchesTransformers() throws {
        // inv_freq from transformers' _compute_llama3_parameters for head_dim 128, theta 500000,
        // factor 8, low 1, high 4, original 8192 (Llama 3.1 8B), entries 0, 40, 48 and 63.
        let json = #"{"model_type": "llama", "hidden_size": 4096, "num_attention_heads": 32, "rope_theta": 500000, "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}"#
        let (_, config) = try Architecture.load(configJSON: Data(json.utf8))
        let frequencies = config.inverseFrequencies
        let unscaled = (0..<64).map { 1 / Float(pow(500000.0, Double(Float(2 * $0) / 128))) }
        #expect(frequencies[0] == unscaled[0])
        #expect(abs(frequencies[63] - unscaled[63] / 8) <= 1e-6 * unscaled[63])
        // The medium band is interpolated between the two.
        let medium = (0..<64).filter { frequencies[$0] != unscaled[$0] && abs(frequencies[$0] - unscaled[$0] / 8) > 1e-3 * unscaled[$0] }
        #expect(!medium.isEmpty)
        for i in medium { #expect(frequencies[i] < unscaled[i] && frequencies[i] > unscaled[i] / 8) }
    }

    @Test func unsupportedModelTypeListsSupportedOnes() throws {
        let directory = try copyOfFixture()
        try editConfig(directory) { $0["model_type"] = "gpt_neox" }
        let message = loadError(directory)
        #expect(message.contains("config.json") && message.contains("'gpt_neox' is not supported") && message.contains("llama, mistral, qwen2"))
    }

    @Test func missingConfigIsNamed() throws {
        let directory = try copyOfFixture()
        try FileManager.default.removeItem(at: directory.appendingPathComponent("config.json"))
        #expect(loadError(directory).contains("config.json: not found"))
    }

    @Test func malformedConfigIsNamed() throws {
        let directory = try copyOfFixture()
        try Data("{\"model_type\": \"llama\",".utf8).write(to: directory.appendingPathComponent("config.json"))
        #expect(loadError(directory).contains("config.json: malformed JSON"))
    }

    @Test func wrongFieldTypeNamesTheField() throws {
        let directory = try copyOfFixture()
        try editConfig(directory) { $0["hidden_size"] = "sixty-four" }
        let message = loadError(directory)
        #expect(message.contains("config.json: field 'hidden_size'"))
    }

    @Test func inconsistentHeadsAreRejected() throws {
        let directory = try copyOfFixture()
        try editConfig(directory) { $0["num_key_value_heads"] = 3 }
        #expect(loadError(directory).contains("field 'num_key_value_heads': expected a positive divisor of num_attention_heads"))
    }

    @Test func shapeThatDoesNotFitTheArchitectureIsNamed() throws {
        let directory = try copyOfFixture()
        try editConfig(directory) { $0["intermediate_size"] = 96 }
        let message = loadError(directory)
        #expect(message.contains("model.safetensors: tensor 'model.layers.0.mlp.gate_proj.weight' has shape [160, 64], expected [96, 64]"))
    }

    @Test func missingWeightsAndTokenizerAreNamed() throws {
        let directory = try copyOfFixture()
        try FileManager.default.removeItem(at: directory.appendingPathComponent("tokenizer.json"))
        #expect(loadError(directory).contains("tokenizer.json: not found"))
        try FileManager.default.removeItem(at: directory.appendingPathComponent("model.safetensors"))
        #expect(loadError(directory).contains("model.safetensors: not found"))
    }

    @Test func truncatedWeightsAreReported() throws {
        let directory = try copyOfFixture()
        let weights = directory.appendingPathComponent("model.safetensors")
        let data = try Data(contentsOf: weights)
        try data.prefix(data.count / 2).write(to: weights)
        #expect(loadError(directory).contains("model.safetensors: not a valid safetensors file"))
    }

    @Test func missingShardIsNamed() throws {
        let directory = try copyOfFixture("mistral-f16-sharded")
        try FileManager.default.removeItem(at: directory.appendingPathComponent("model-00002-of-00003.safetensors"))
        #expect(loadError(directory).contains("model-00002-of-00003.safetensors: not found"))
    }

    @Test func llm2vecConfigSetsDefaults() throws {
        let directory = try copyOfFixture()
        try Data(#"{"pooling_mode": "weighted_mean", "max_length": 64, "doc_max_length": 32, "skip_instruction": false}"#.utf8)
            .write(to: directory.appendingPathComponent("llm2vec_config.json"))
        let encoder = try Encoder(modelPath: directory.path)
        #expect(encoder.options.pooling == .weightedMean && encoder.options.maxLength == 64)
        #expect(encoder.options.docMaxLength == 32 && !encoder.options.skipInstruction)
        let overridden = try Encoder(modelPath: directory.path) { $0.pooling = .lastToken }
        #expect(overridden.options.pooling == .lastToken && overridden.options.maxLength == 64)
    }
}
