import Foundation
import Testing
@testable import Unmask
import UnmaskKernels
import UnmaskTestSupport

/// `MergedCheckpoint`: a merged checkpoint loads back as the base with its adapters merged, in
/// the base's format, and nothing is overwritten or left half-written.
@Suite struct MergeTests {
    let directory = try! Fixtures.temporaryDirectory("merge")
    let texts = ["The cat sat on the mat.", "A dog barked at the mailman.", "Stocks fell sharply on Monday.", "x"].map { EncoderInput($0) }

    /// A PEFT adapter with random A and non-zero random B on the seven projections of every layer.
    func randomAdapter(for c: DecoderConfig, seed: UInt64, llm2vecConfig: String? = nil) throws -> String {
        let folder = directory.appendingPathComponent("adapter-\(seed)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let rank = 4
        let shapes = ["self_attn.q_proj": (c.qDim, c.hiddenSize), "self_attn.k_proj": (c.kvDim, c.hiddenSize), "self_attn.v_proj": (c.kvDim, c.hiddenSize),
                      "self_attn.o_proj": (c.hiddenSize, c.qDim), "mlp.gate_proj": (c.intermediateSize, c.hiddenSize),
                      "mlp.up_proj": (c.intermediateSize, c.hiddenSize), "mlp.down_proj": (c.hiddenSize, c.intermediateSize)]
        var rng = SeededRandom(seed: seed)
        var tensors: [SafeTensorsWriter.Tensor] = []
        for layer in 0..<c.layerCount {
            for (module, (out, inFeatures)) in shapes.sorted(by: { $0.key < $1.key }) {
                let prefix = "base_model.model.layers.\(layer).\(module)"
                tensors.append(.init(name: prefix + ".lora_A.weight", shape: [rank, inFeatures], floats: rng.floats(rank * inFeatures, scale: 0.2)))
                tensors.append(.init(name: prefix + ".lora_B.weight", shape: [out, rank], floats: rng.floats(out * rank, scale: 0.2)))
            }
        }
        try SafeTensorsWriter.data(tensors).write(to: folder.appendingPathComponent("adapter_model.safetensors"))
        let config = #"{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "bias": "none", "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}"#
        try Data(config.utf8).write(to: folder.appendingPathComponent("adapter_config.json"))
        if let llm2vecConfig { try Data(llm2vecConfig.utf8).write(to: folder.appendingPathComponent("llm2vec_config.json")) }
        return folder.path
    }

    /// The base with the adapters merged in memory, as `Encoder` does.
    func mergedInMemory(_ model: String, _ adapters: [String]) throws -> DecoderModel {
        let decoder = try Checkpoint(path: model).loadModel(precision: .float32)
        for adapter in adapters { try LoRAAdapter(directory: adapter).merge(into: decoder.weights) }
        return decoder
    }

    func expectSameWeights(_ a: DecoderWeights, _ b: DecoderWeights) {
        func same(_ x: WeightTensor?, _ y: WeightTensor?, _ what: String) {
            #expect(x?.shape == y?.shape && x?.values == y?.values, "\(what)")
        }
        same(a.embedTokens.dequantized(), b.embedTokens.dequantized(), "embed_tokens")
        same(a.norm, b.norm, "norm")
        #expect(a.layers.count == b.layers.count)
        for (i, (x, y)) in zip(a.layers, b.layers).enumerated() {
            for ((role, norm), (_, other)) in zip(x.norms, y.norms) { same(norm, other, "layer \(i) \(role)") }
            #expect(x.norms.map(\.0) == y.norms.map(\.0))
            for (name, linear) in x.linears {
                same(linear.weight.dequantized(), y.linears[name]?.weight.dequantized(), "layer \(i) \(name)")
                same(linear.bias, y.linears[name]?.bias, "layer \(i) \(name) bias")
            }
        }
    }

    func expectSameEmbeddings(merged: String, base: String, adapters: [String], inputs: [EncoderInput]? = nil) throws {
        let got = try Encoder(modelPath: merged).encode(inputs ?? texts)
        let want = try Encoder(modelPath: base, adapterPaths: adapters).encode(inputs ?? texts)
        for (g, w) in zip(got, want) { #expect(Compare.cosine(g, w) >= 0.99999) }
    }

    /// For GGUF files without a usable tokenizer: mean-pooled bidirectional states of fixed ids.
    func expectSameStates(merged: String, base: String, adapters: [String]) throws {
        let ids: [[Int32]] = [[1, 5, 9, 2, 7, 3], [4, 8, 6]]
        func pooled(_ model: DecoderModel) -> [[Float]] {
            let batch = TokenBatch(leftPadding: ids, padding: 0)
            let states = GGUFCheckpointTests().hiddenStates(model, batch, .bidirectional)
            let h = model.config.hiddenSize
            return batch.valid.enumerated().map { row, positions in
                var sum = [Float](repeating: 0, count: h)
                for p in positions {
                    for d in 0..<h { sum[d] += states[(row * batch.length + p) * h + d] }
                }
                return sum.map { $0 / Float(positions.count) }
            }
        }
        let got = pooled(try Checkpoint(path: merged).loadModel()), want = pooled(try mergedInMemory(base, adapters))
        let unmerged = pooled(try Checkpoint(path: base).loadModel())
        for ((g, w), u) in zip(zip(got, want), unmerged) {
            #expect(Compare.cosine(g, w) >= 0.99999)
            #expect(Compare.cosine(g, u) < 0.9999, "the adapter should change the states, or this test proves nothing")
        }
    }

    // MARK: Hugging Face folders

    /// The llm2vec reference for the fixture adapters, and the same from base + adapters.
    @Test func huggingFaceFolderMatchesTheReference() throws {
        let base = Fixtures.path("models", "llama2-bf16")
        let adapters = ["mntp", "simcse"].map { Fixtures.path("models", "llama2-bf16", "adapters", $0) }
        let output = directory.appendingPathComponent("llama2-merged")
        let written = try MergedCheckpoint.write(model: base, adapters: adapters, to: output)
        let copied = ["config.json", "expected.json", "generation_config.json", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"]
        #expect(written == copied + ["model.safetensors"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: output.path).sorted() == (copied + ["model.safetensors"]).sorted())
        for name in copied {
            #expect(FileManager.default.contentsEqual(atPath: base + "/" + name, andPath: output.appendingPathComponent(name).path), "\(name)")
        }

        let file = try SafeTensorsFile(path: output.appendingPathComponent("model.safetensors").path)
        #expect(file.metadata == ["format": "pt"])
        #expect(file.tensorNames.contains("lm_head.weight") && file.tensorNames.contains("model.layers.1.mlp.down_proj.weight"))
        #expect(file.tensorNames.allSatisfy { ($0.hasPrefix("model.") || $0 == "lm_head.weight") && file.info($0)?.dtype == .f32 })
        #expect(Set(file.tensorNames) == Set(try SafeTensorsFile(path: base + "/model.safetensors").tensorNames))

        let checkpoint = try Checkpoint(path: output.path)
        let merged = try checkpoint.loadModel(lmHead: true)
        expectSameWeights(merged.weights, try mergedInMemory(base, adapters).weights)
        let sameHead = try merged.lmHead?.dequantized().values == Checkpoint(path: base).loadModel(lmHead: true).lmHead?.dequantized().values
        #expect(sameHead, "lm_head.weight (no adapter targets it)")

        let expected = try Fixtures.json("models", "llama2-bf16", "adapters", "expected.json") as! [String: Any]
        let reference = (expected["cases"] as! [[String: Any]]).first { $0["name"] as? String == "bidirectional-mean-mntp+simcse" }!
        let inputs = (reference["inputs"] as! [[String: String]]).map { EncoderInput($0["text"]!, instruction: $0["instruction"]!) }
        let embeddings = try Encoder(modelPath: output.path) { $0.batchSize = 3 }.encode(inputs)
        for (got, want) in zip(embeddings, reference["embeddings"] as! [[Double]]) {
            #expect(Compare.cosine(got, want.map(Float.init)) >= 0.99999)
        }
        try expectSameEmbeddings(merged: output.path, base: base, adapters: adapters, inputs: inputs)
    }

    /// Tied embeddings write no lm_head, biases are kept, sharded F16 weights become one file, and
    /// norms go back in the architecture's own convention (Gemma's w for a 1 + w scale; q/k norms).
    @Test(arguments: ["qwen2-bias-f32", "mistral-f16-sharded", "smollm-f32", "gemma3-tiny-f32", "qwen3-tiny-bf16"])
    func huggingFaceVariants(model: String) throws {
        let base = Fixtures.path("models", model)
        let config = try Checkpoint(path: base).config
        let adapter = try randomAdapter(for: config, seed: 3)
        let output = directory.appendingPathComponent(model)
        let written = try MergedCheckpoint.write(model: base, adapters: [adapter], to: output)
        #expect(!written.contains { $0.hasSuffix(".index.json") || $0.hasPrefix("model-") })
        let file = try SafeTensorsFile(path: output.appendingPathComponent("model.safetensors").path)
        #expect(file.tensorNames.contains("lm_head.weight") == !config.tieWordEmbeddings)
        #expect(file.tensorNames.contains("model.layers.0.self_attn.q_proj.bias") == config.attentionBias)
        let source = try Checkpoint(path: base).tensors
        for name in source.tensorNames where name.hasSuffix("norm.weight") {
            #expect(try file.float32(name).values == source.float32(name).values, "\(name)")
        }
        expectSameWeights(try Checkpoint(path: output.path).loadModel().weights, try mergedInMemory(base, [adapter]).weights)
        try expectSameEmbeddings(merged: output.path, base: base, adapters: [adapter])
    }

    /// The merged folder holds the llm2vec_config.json base + adapters would use: the last
    /// adapter's, or none (llm2vec ignores the model's when an adapter is given).
    @Test func llm2vecConfigFollowsTheLastAdapter() throws {
        let base = directory.appendingPathComponent("smollm-with-config")
        try FileManager.default.copyItem(atPath: Fixtures.path("models", "smollm-f32"), toPath: base.path)
        try Data(#"{"pooling_mode": "weighted_mean"}"#.utf8).write(to: base.appendingPathComponent("llm2vec_config.json"))
        let config = try Checkpoint(path: base.path).config
        let plain = try randomAdapter(for: config, seed: 4)
        let configured = try randomAdapter(for: config, seed: 5, llm2vecConfig: #"{"pooling_mode": "last_token"}"#)
        for (adapters, expected) in [([plain], nil), ([plain, configured], Pooling.lastToken)] {
            let output = directory.appendingPathComponent("smollm-merged-\(adapters.count)")
            let written = try MergedCheckpoint.write(model: base.path, adapters: adapters, to: output)
            #expect(written.contains("llm2vec_config.json") == (expected != nil))
            let merged = try Encoder(modelPath: output.path), unmerged = try Encoder(modelPath: base.path, adapterPaths: adapters)
            #expect(merged.options.pooling == unmerged.options.pooling && merged.options.pooling == expected ?? .mean)
        }
    }

    // MARK: GGUF

    /// A llama file: projections in F32 with llama.cpp's Q/K row order, everything else as stored.
    @Test func llamaGGUFIsWrittenAsLlamaCppStoresIt() throws {
        let base = GGUFFixtures.path("llama3-tied.gguf")
        let adapter = try randomAdapter(for: try Checkpoint(path: base).config, seed: 6)
        let output = directory.appendingPathComponent("llama3-merged.gguf")
        #expect(try MergedCheckpoint.write(model: base, adapters: [adapter], to: output) == ["llama3-merged.gguf"])

        let merged = try GGUFFile(path: output.path), source = try GGUFFile(path: base)
        try expectCopiedVerbatim(merged, from: source)
        let expected = try mergedInMemory(base, [adapter]).weights
        let config = try Checkpoint(path: base).config
        for (i, layer) in expected.layers.enumerated() {
            for (module, weight, heads) in [("attn_q", layer.qProj.weight, config.headCount), ("attn_k", layer.kProj.weight, config.kvHeadCount)] {
                let stored = try merged.float32("blk.\(i).\(module).weight")
                let rows = weight.shape[0], columns = weight.shape[1]
                let asLlamaCpp = stored.values == GGUFCheckpointTests().llamaCppPermute(weight.values, rows: rows, columns: columns, heads: heads)
                #expect(asLlamaCpp, "layer \(i) \(module): not in llama.cpp's row order")
            }
            let downProj = try merged.float32("blk.\(i).ffn_down.weight").values == layer.downProj.weight.values
            #expect(downProj, "layer \(i) ffn_down")
        }
        expectSameWeights(try Checkpoint(path: output.path).loadModel().weights, expected)
        try expectSameStates(merged: output.path, base: base, adapters: [adapter])
    }

    /// Quantized tensors stay quantized, byte for byte; a version 2 file with a 64-byte alignment
    /// becomes version 3 with the same alignment; a path not ending in .gguf is a folder.
    @Test func quantizedGGUFKeepsItsOtherTensors() throws {
        var builder = GGUFBuilder.tinyLlama(seed: 11)
        builder.version = 2
        builder.alignment = 64
        builder.set("general.alignment", .uint32(64))
        let base = try GGUFFixtures.write(builder.data(), in: directory, name: "tiny.gguf")
        let adapter = try randomAdapter(for: try Checkpoint(path: base).config, seed: 7)
        let output = directory.appendingPathComponent("tiny-merged")
        #expect(try MergedCheckpoint.write(model: base, adapters: [adapter], to: output) == ["model.gguf"])
        let path = output.appendingPathComponent("model.gguf").path
        let merged = try GGUFFile(path: path)
        #expect(merged.alignment == 64 && merged.dataOffset % 64 == 0)
        let source = try GGUFFile(path: base)
        // Metadata follows magic, version, tensor count and metadata count (4 + 4 + 8 + 8 bytes).
        #expect(source.metadataByteRange.lowerBound == 24 && source.metadataByteRange.upperBound < source.dataOffset)
        try expectCopiedVerbatim(merged, from: source)
        #expect(merged.tensor(named: "token_embd.weight")?.type == .q8_0)
        expectSameWeights(try Checkpoint(path: path).loadModel().weights, try mergedInMemory(base, [adapter]).weights)
    }

    /// qwen2 files are not permuted: the merged projections are stored as loaded; biases are kept.
    @Test func qwen2GGUFKeepsHuggingFaceRowOrder() throws {
        let (base, _) = try GGUFCheckpointTests().qwen2GGUF()
        let adapter = try randomAdapter(for: try Checkpoint(path: base).config, seed: 8)
        let output = directory.appendingPathComponent("qwen2-merged.gguf")
        _ = try MergedCheckpoint.write(model: base, adapters: [adapter], to: output)
        let merged = try GGUFFile(path: output.path)
        try expectCopiedVerbatim(merged, from: try GGUFFile(path: base))
        let expected = try mergedInMemory(base, [adapter]).weights
        let qProj = try merged.float32("blk.1.attn_q.weight").values == expected.layers[1].qProj.weight.values
        let qBias = try merged.float32("blk.1.attn_q.bias").values == expected.layers[1].qProj.bias?.values
        #expect(qProj && qBias)
        expectSameWeights(try Checkpoint(path: output.path).loadModel().weights, expected)
        try expectSameStates(merged: output.path, base: base, adapters: [adapter])
    }

    /// The real SmolLM2-135M GGUF (Q4_1, llama, tokenizer from metadata), through `Encoder`.
    @Test(.enabled(if: InstalledModels.smollm2 != nil, "SmolLM2 is not installed: run scripts/install_model.sh smollm2"))
    func smollm2GGUFEmbedsLikeBasePlusAdapter() throws {
        let base = InstalledModels.smollm2!
        let adapter = try randomAdapter(for: try Checkpoint(path: base).config, seed: 12)
        let output = directory.appendingPathComponent("smollm2-merged.gguf")
        _ = try MergedCheckpoint.write(model: base, adapters: [adapter], to: output)
        try expectCopiedVerbatim(try GGUFFile(path: output.path), from: try GGUFFile(path: base))
        try expectSameEmbeddings(merged: output.path, base: base, adapters: [adapter])
    }

    /// Version 3, the source's metadata bytes, its tensors in order with their shapes; the seven
    /// projections in F32, every other tensor with its type and bytes.
    func expectCopiedVerbatim(_ merged: GGUFFile, from source: GGUFFile) throws {
        #expect(merged.version == 3 && merged.alignment == source.alignment)
        #expect(Array(merged.metadataBytes) == Array(source.metadataBytes) && merged.metadataKeys == source.metadataKeys)
        #expect(merged.tensors.map(\.name) == source.tensors.map(\.name) && merged.tensors.map(\.dimensions) == source.tensors.map(\.dimensions))
        let projections = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]
        for (got, original) in zip(merged.tensors, source.tensors) {
            let parts = original.name.split(separator: ".")
            if parts.count == 4, projections.contains(String(parts[2])), parts[3] == "weight" {
                #expect(got.type == .f32, "\(got.name)")
            } else {
                #expect(got.type == original.type && Array(merged.data(of: got)) == Array(source.data(of: original)), "\(got.name)")
            }
        }
    }

    // MARK: Errors and partial writes

    @Test func refusesToOverwrite() throws {
        let base = GGUFFixtures.path("llama3-tied.gguf")
        let adapter = try randomAdapter(for: try Checkpoint(path: base).config, seed: 9)
        let existing = directory.appendingPathComponent("existing.gguf")
        try Data("keep me".utf8).write(to: existing)
        #expect { try MergedCheckpoint.write(model: base, adapters: [adapter], to: existing) } throws: {
            String(describing: $0) == "\(existing.path): cannot write: already exists; merge never overwrites a model or adds one beside it, choose another --output"
        }
        #expect(try Data(contentsOf: existing) == Data("keep me".utf8))
        // A Hugging Face folder that holds weights, or any file the merge would write, is refused.
        let hf = Fixtures.path("models", "smollm-f32")
        let hfAdapter = try randomAdapter(for: try Checkpoint(path: hf).config, seed: 10)
        for name in ["model-00001-of-00002.safetensors", "tokenizer.json"] {
            let folder = directory.appendingPathComponent("occupied-\(name)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try Data().write(to: folder.appendingPathComponent(name))
            #expect { try MergedCheckpoint.write(model: hf, adapters: [hfAdapter], to: folder) } throws: {
                String(describing: $0).hasPrefix(folder.appendingPathComponent(name).path + ": cannot write: already exists")
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == [name])
        }
        #expect { try MergedCheckpoint.write(model: hf, adapters: [hfAdapter], to: existing) } throws: {
            String(describing: $0).contains("is a file, not a folder (a Hugging Face model merges into a folder)")
        }
    }

    @Test func failedMergeLeavesNothing() throws {
        let output = directory.appendingPathComponent("never")
        // LLM2Vec adapters for llama2-bf16 (4 kv heads) do not fit qwen2-bias-f32 (2 kv heads).
        #expect {
            try MergedCheckpoint.write(model: Fixtures.path("models", "qwen2-bias-f32"),
                                       adapters: [Fixtures.path("models", "llama2-bf16", "adapters", "mntp")], to: output)
        } throws: { String(describing: $0).contains("invalid LoRA adapter") }
        #expect { try MergedCheckpoint.write(model: Fixtures.path("models", "qwen2-bias-f32"), adapters: [], to: output) } throws: {
            String(describing: $0) == "merge: no adapter to merge: give at least one --adapter DIR"
        }
        #expect(!FileManager.default.fileExists(atPath: output.path))
    }

    /// A write that fails part-way removes its temporary files and the folder it created.
    @Test func stagedOutputDiscardsPartialFiles() throws {
        struct Interrupted: Error {}
        let folder = directory.appendingPathComponent("staged")
        let staging = try StagedOutput(folder: folder)
        try staging.stage("config.json") { try $0.write(Data("{}".utf8)) }
        #expect(throws: Interrupted.self) {
            try staging.stage("model.safetensors") { file in
                try file.write(Data(count: 100))
                throw Interrupted()
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).allSatisfy { $0.hasPrefix(".") && $0.hasSuffix(".partial") })
        staging.discard()
        #expect(!FileManager.default.fileExists(atPath: folder.path))
    }

    /// A file that appears under a final name before the commit is kept, and the commit undone.
    @Test func commitNeverReplacesAFile() throws {
        let staging = try StagedOutput(folder: directory)
        try staging.stage("a.json") { try $0.write(Data("a".utf8)) }
        try staging.stage("b.json") { try $0.write(Data("b".utf8)) }
        try Data("theirs".utf8).write(to: directory.appendingPathComponent("b.json"))
        #expect(throws: UnmaskError.self) { try staging.commit() }
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("a.json").path))
        #expect(try Data(contentsOf: directory.appendingPathComponent("b.json")) == Data("theirs".utf8))
    }
}
