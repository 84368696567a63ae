import Foundation
import XCTest
@testable import Unmask
import UnmaskTestSupport

/// The real Gemma 3 270M Q4_K_M GGUF (gemma3 architecture: sandwich norms stored +1, q/k norms,
/// GELU-tanh MLP, 5 sliding : 1 full layers with their own RoPE base, √hidden embedding scale,
/// Gemma's 262k SentencePiece vocabulary) against transformers 4.57.1 on the gguf-dequantized
/// weights (scripts/make_gemma3_gguf_reference.py). Acceptance: identical token ids, next-token
/// logits within relative L2 1e-3, mean-pooled embeddings causal and bidirectional cos ≥ 0.9999.
/// XCTest, like the EmbeddingGemma suite: long forwards run apart from the async server tests.
final class Gemma3GGUFReferenceTests: XCTestCase {
    nonisolated(unsafe) static var loaded: (encoder: Encoder, fixture: [String: Any])?

    func load() throws -> (encoder: Encoder, fixture: [String: Any]) {
        guard let path = InstalledModels.gemma3 else { throw XCTSkip("Gemma 3 270M is not installed: run scripts/install_model.sh gemma3-270m") }
        if let loaded = Self.loaded { return loaded }
        // The float32 path: parity of the arithmetic (stored precision: LinearWeightTests).
        Self.loaded = (try Encoder(modelPath: path, lmHead: true, precision: .float32), try Fixtures.json("gemma3-270m", "expected.json") as! [String: Any])
        return Self.loaded!
    }

    func testReadsTheLayerPlanFromGGUF() throws {
        let c = try load().encoder.model.config
        XCTAssertTrue(c.modelType == "gemma3_text" && c.layerCount == 18 && c.hiddenSize == 640 && c.headDim == 256 && c.kvHeadCount == 1)
        XCTAssertTrue(c.normPlacement == .sandwich && c.queryKeyNorm && c.activation == .geluTanh && c.embeddingScale != nil)
        XCTAssertEqual((0..<18).filter { c.window(layer: $0) == nil }, [5, 11, 17])
        XCTAssertEqual(c.window(layer: 0), 512)
        XCTAssertTrue(c.ropeTheta(layer: 0) == 10_000 && c.ropeTheta(layer: 5) == 1_000_000)
    }

    func testTokenizesLikeLlamaCpp() throws {
        let (encoder, fixture) = try load()
        let tokenizer = encoder.tokenizer
        let texts = fixture["texts"] as! [String], ids = fixture["text_ids"] as! [[Int]]
        for (text, want) in zip(texts, ids) { XCTAssertEqual(tokenizer.encode(text), want, text) }
        let probes = (fixture["tokenizer"] as! [String: Any])["probes"] as! [[String: Any]]
        // The reference port reads "<bos>" in text as characters (llama.cpp's parse_special off);
        // Unmask reads it as the control token, as Gemma's tokenizer.json does.
        for probe in probes where !(probe["text"] as! String).contains("<bos>") {
            XCTAssertEqual(tokenizer.encode(probe["text"] as! String), probe["ids"] as! [Int], "\(probe["text"]!)")
        }
    }

    func testNextTokenLogitsMatchTransformers() throws {
        let (encoder, fixture) = try load()
        let model = encoder.model
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("gemma3-270m", "logits.f32")))
        let vocabulary = model.config.vocabularySize
        // logits.f32 holds the full rows of the first prompts; the others have their top ids only.
        let stored = data.count / (4 * vocabulary)
        let workspace = DecoderWorkspace()
        for (p, prompt) in (fixture["prompts"] as! [[String: Any]]).enumerated() {
            let ids = (prompt["ids"] as! [Int]).map(Int32.init)
            let hidden = model.forward(TokenBatch(leftPadding: [ids], padding: 0), mode: .causal, workspace: workspace)
            let got = model.logits(hidden: hidden, rows: [ids.count - 1])[0]
            if p < stored {
                let want = data.withUnsafeBytes { raw in
                    (0..<vocabulary).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: (p * vocabulary + $0) * 4, as: UInt32.self))) }
                }
                let error = Compare.relativeL2(got, want)
                XCTAssertLessThanOrEqual(error, 1e-3, "\(prompt["prompt"]!)")
            }
            let top = got.indices.sorted { got[$0] > got[$1] }.prefix(5)
            XCTAssertEqual(Array(top), prompt["top_ids"] as! [Int])
        }
    }

    func testMeanPooledEmbeddingsMatchTransformers() throws {
        let (base, fixture) = try load()
        for mode in [AttentionMode.causal, .bidirectional] {
            let encoder = base.withAttention(mode)
            let texts = fixture["texts"] as! [String]
            let want = ((fixture["embeddings"] as! [String: Any])[mode.rawValue] as! [String: Any])["mean_text"] as! [[Double]]
            // llm2vec's mean pooling of a text without instruction skips <bos>; a ragged batch.
            let got = try encoder.encode(texts.map { EncoderInput($0) })
            for (i, (g, w)) in zip(got, want).enumerated() {
                XCTAssertGreaterThanOrEqual(Compare.cosine(g, w.map(Float.init)), 0.9999, "\(mode) text \(i)")
            }
        }
    }
}
