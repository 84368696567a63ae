import Foundation
import XCTest
@testable import Unmask
import UnmaskKernels
import UnmaskTestSupport

/// EmbeddingGemma-300M as shipped (a bidirectional Gemma 3 behind a sentence-transformers
/// pipeline: mean pooling with the prompt, two Dense layers, Normalize) against
/// `SentenceTransformer.encode` (scripts/make_embeddinggemma_reference.py, sentence-transformers
/// 5.1.2 on transformers 4.57.1). Acceptance: identical token ids, cosine ≥ 0.9999 for every
/// text, prompt, ragged batch and Matryoshka size, texts up to 2009 tokens (past the 512 window).
///
/// XCTest rather than Swift Testing: these forwards hold both cores for minutes, and XCTest runs
/// its cases one after another instead of beside the server tests' time-limited async waits.
final class EmbeddingGemmaReferenceTests: XCTestCase {
    struct Case {
        let name: String
        let promptName: String?
        let maxLength: Int
        let batchSize: Int
        let dimensions: Int?
        let texts: [Int]
        let inputIds: [[Int32]]
        let embeddings: [[Float]]
    }

    /// One load for every case: the model is 1.2 GB.
    nonisolated(unsafe) static var loaded: (encoder: Encoder, fixture: [String: Any], cases: [Case])?

    func load() throws -> (encoder: Encoder, fixture: [String: Any], cases: [Case]) {
        guard let path = InstalledModels.embeddingGemma else {
            throw XCTSkip("EmbeddingGemma is not installed: run scripts/install_model.sh embeddinggemma")
        }
        if let loaded = Self.loaded { return loaded }
        let fixture = try Fixtures.json("embeddinggemma", "expected.json") as! [String: Any]
        let cases = (fixture["cases"] as! [[String: Any]]).map { c in
            Case(name: c["name"] as! String, promptName: c["prompt_name"] as? String, maxLength: c["max_seq_length"] as! Int,
                 batchSize: c["batch_size"] as! Int, dimensions: c["truncate_dim"] as? Int, texts: c["texts"] as! [Int],
                 inputIds: (c["input_ids"] as! [[Int]]).map { $0.map(Int32.init) },
                 embeddings: (c["embeddings"] as! [[Double]]).map { $0.map(Float.init) })
        }
        Self.loaded = (try Encoder(modelPath: path), fixture, cases)
        return Self.loaded!
    }

    func testReadsTheSentenceTransformersPipeline() throws {
        let encoder = try load().encoder
        let st = try XCTUnwrap(encoder.sentenceTransformer)
        XCTAssertTrue(st.pooling == [.mean] && st.includePrompt && st.normalize && st.dense.count == 2)
        XCTAssertEqual(st.prompts["query"], "task: search result | query: ")
        XCTAssertNil(st.defaultPromptName)
        XCTAssertTrue(encoder.options.attention == .bidirectional && encoder.options.maxLength == 2048 && encoder.dimension == 768)
        let c = encoder.model.config
        XCTAssertTrue(c.normPlacement == .sandwich && c.queryKeyNorm && c.activation == .geluTanh && c.window(layer: 0) == 512 && c.window(layer: 5) == nil)
        // transformers' bidirectional window: 512 → 257 "exclusive", so 256 keys either side.
        XCTAssertEqual(c.attentionPattern(layer: 0, causal: false), AttentionPattern(causal: false, before: 256, after: 256))
    }

    /// The prompts that differ only in their text run on the short texts; the texts past the
    /// window (1000 and 2000 tokens) run without prompt, with the query prompt, and cut at 512.
    static let longTextCases: Set<String> = ["none", "query", "query-max_seq_length512"]

    func testMatchesSentenceTransformers() throws {
        let (base, fixture, cases) = try load()
        let texts = fixture["texts"] as! [String]
        let counts = fixture["text_token_counts"] as! [Int]
        for testCase in cases {
            let keep = testCase.texts.indices.filter { Self.longTextCases.contains(testCase.name) || counts[testCase.texts[$0]] < 500 }
            let encoder = try Encoder(sharing: base) {
                $0.promptName = testCase.promptName
                $0.maxLength = testCase.maxLength
                $0.batchSize = testCase.batchSize
                $0.dimensions = testCase.dimensions
            }
            let inputs = keep.map { EncoderInput(texts[testCase.texts[$0]]) }
            let prepared = try inputs.enumerated().map { try encoder.prepare($0.element, index: $0.offset) }
            XCTAssertEqual(prepared.map(\.ids), keep.map { testCase.inputIds[$0] }, "\(testCase.name): token ids")
            let embeddings = try encoder.encode(inputs)
            for (i, (got, want)) in zip(embeddings, keep.map { testCase.embeddings[$0] }).enumerated() {
                XCTAssertEqual(got.count, want.count)
                let cosine = Compare.cosine(got, want)
                XCTAssertGreaterThanOrEqual(cosine, 0.9999, "\(testCase.name) text \(testCase.texts[keep[i]])")
            }
        }
    }

    /// The seed's question asked of a state-of-the-art encoder: the same weights with the causal
    /// mask put back give clearly different vectors.
    func testCausalMaskChangesTheEmbedding() throws {
        let encoder = try load().encoder
        let inputs = [EncoderInput("The cat sat on the mat.")]
        let bidirectional = try encoder.encode(inputs)[0], causal = try encoder.withAttention(.causal).encode(inputs)[0]
        XCTAssertLessThan(Compare.cosine(bidirectional, causal), 0.99)
    }
}
