import Foundation
import Testing
@testable import Unmask
import UnmaskKernels
import UnmaskTestSupport

/// EmbeddingGemma-300M as shipped (a bidirectional Gemma 3 behind a sentence-transformers
/// pipeline: mean pooling with the prompt, two Dense layers, Normalize) against
/// `SentenceTransformer.encode` (scripts/make_embeddinggemma_reference.py, sentence-transformers
/// 5.1.2 on transformers 4.57.1). Acceptance: identical token ids, cosine ≥ 0.9999 for every
/// text, prompt, ragged batch and Matryoshka size, texts up to 2009 tokens (past the 512 window).
@Suite(.enabled(if: InstalledModels.embeddingGemma != nil, "EmbeddingGemma is not installed: run scripts/install_model.sh embeddinggemma"))
struct EmbeddingGemmaReferenceTests {
    nonisolated(unsafe) static let fixture = try! Fixtures.json("embeddinggemma", "expected.json") as! [String: Any]

    struct Case: Sendable, CustomStringConvertible {
        let name: String
        let promptName: String?
        let maxLength: Int
        let batchSize: Int
        let dimensions: Int?
        let texts: [Int]
        let inputIds: [[Int32]]
        let embeddings: [[Float]]
        var description: String { name }
    }

    static let cases: [Case] = (fixture["cases"] as! [[String: Any]]).map { c in
        Case(name: c["name"] as! String, promptName: c["prompt_name"] as? String, maxLength: c["max_seq_length"] as! Int,
             batchSize: c["batch_size"] as! Int, dimensions: c["truncate_dim"] as? Int, texts: c["texts"] as! [Int],
             inputIds: (c["input_ids"] as! [[Int]]).map { $0.map(Int32.init) },
             embeddings: (c["embeddings"] as! [[Double]]).map { $0.map(Float.init) })
    }

    /// One load for every case: the model is 1.2 GB.
    static let encoder = Result { try Encoder(modelPath: InstalledModels.embeddingGemma!) }

    @Test func readsTheSentenceTransformersPipeline() throws {
        let encoder = try Self.encoder.get()
        let st = try #require(encoder.sentenceTransformer)
        #expect(st.pooling == [.mean] && st.includePrompt && st.normalize && st.dense.count == 2)
        #expect(st.prompts["query"] == "task: search result | query: " && st.defaultPromptName == nil)
        #expect(encoder.options.attention == .bidirectional && encoder.options.maxLength == 2048 && encoder.dimension == 768)
        let c = encoder.model.config
        #expect(c.normPlacement == .sandwich && c.queryKeyNorm && c.activation == .geluTanh && c.window(layer: 0) == 512 && c.window(layer: 5) == nil)
        // transformers' bidirectional window: 512 → 257 "exclusive", so 256 keys either side.
        #expect(c.attentionPattern(layer: 0, causal: false) == AttentionPattern(causal: false, before: 256, after: 256))
    }

    /// The prompts that differ only in their text run on the short texts; the texts past the
    /// window (1000 and 2000 tokens) run without prompt, with the query prompt, and cut at 512.
    static let longTextCases: Set<String> = ["none", "query", "query-max_seq_length512"]

    @Test(arguments: cases)
    func matchesSentenceTransformers(_ testCase: Case) throws {
        let texts = Self.fixture["texts"] as! [String]
        let counts = Self.fixture["text_token_counts"] as! [Int]
        let keep = testCase.texts.indices.filter { Self.longTextCases.contains(testCase.name) || counts[testCase.texts[$0]] < 500 }
        let base = try Self.encoder.get()
        let encoder = try Encoder(sharing: base) {
            $0.promptName = testCase.promptName
            $0.maxLength = testCase.maxLength
            $0.batchSize = testCase.batchSize
            $0.dimensions = testCase.dimensions
        }
        let inputs = keep.map { EncoderInput(texts[testCase.texts[$0]]) }
        let prepared = try inputs.enumerated().map { try encoder.prepare($0.element, index: $0.offset) }
        #expect(prepared.map(\.ids) == keep.map { testCase.inputIds[$0] }, "\(testCase.name): token ids")
        let embeddings = try encoder.encode(inputs)
        for (i, (got, want)) in zip(embeddings, keep.map { testCase.embeddings[$0] }).enumerated() {
            #expect(got.count == want.count)
            let cosine = Compare.cosine(got, want)
            #expect(cosine >= 0.9999, "\(testCase.name) text \(testCase.texts[keep[i]]): cosine \(cosine)")
        }
    }

    /// The seed's question asked of a state-of-the-art encoder: the same weights with the causal
    /// mask put back give clearly different vectors.
    @Test func causalMaskChangesTheEmbedding() throws {
        let encoder = try Self.encoder.get()
        let inputs = [EncoderInput("The cat sat on the mat.")]
        let bidirectional = try encoder.encode(inputs)[0], causal = try encoder.withAttention(.causal).encode(inputs)[0]
        #expect(Compare.cosine(bidirectional, causal) < 0.99)
    }
}
