import Foundation
import Testing
@testable import Unmask
import UnmaskKernels
import UnmaskTestSupport

/// The real SmolLM2-135M-Instruct GGUF against references computed without Unmask
/// (scripts/make_gguf_reference.py: the `gguf` package's dequantization in transformers and llm2vec).
/// Runs when the model is installed (`scripts/install_model.sh smollm2`; CI installs it).
@Suite(.enabled(if: InstalledModels.smollm2 != nil, "SmolLM2 is not installed: run scripts/install_model.sh smollm2"))
struct SmolLM2ReferenceTests {
    let reference = try! Fixtures.json("smollm2", "reference.json") as! [String: Any]

    @Test func nextTokenLogitsMatchTransformers() throws {
        let checkpoint = try Checkpoint(path: InstalledModels.smollm2!)
        #expect(checkpoint.config.layerCount == 30 && checkpoint.config.hiddenSize == 576 && checkpoint.config.tieWordEmbeddings)
        // Parity of the model's arithmetic: the float32 path (stored precision is LinearWeightTests').
        let model = try checkpoint.loadModel(lmHead: true, precision: .float32)
        let probeIds = reference["probe_ids"] as! [Int]
        let tokenizer = try checkpoint.loadTokenizer()
        for prompt in reference["prompts"] as! [[String: Any]] {
            #expect(tokenizer.encode(prompt["prompt"] as! String) == prompt["ids"] as! [Int], "the GGUF's tokenizer gives HF's ids")
            let ids = (prompt["ids"] as! [Int]).map(Int32.init)
            let batch = TokenBatch(leftPadding: [ids], padding: 2)
            let hidden = model.forward(batch, mode: .causal, workspace: DecoderWorkspace())
            let logits = model.logits(hidden: hidden, rows: [ids.count - 1])[0]
            let topIds = prompt["top_ids"] as! [Int]
            let want = (prompt["top_logits"] as! [Double]).map(Float.init) + (prompt["probe_logits"] as! [Double]).map(Float.init)
            let got = topIds.map { logits[$0] } + probeIds.map { logits[$0] }
            let error = Compare.relativeL2(got, want)
            #expect(error <= 1e-3, "\(prompt["prompt"]!): relative error \(error)")
            #expect(logits.indices.max { logits[$0] < logits[$1] } == topIds[0], "\(prompt["prompt"]!): top token")
        }
        // "The capital of France is" → " Paris"
        let first = (reference["prompts"] as! [[String: Any]])[0]
        #expect(first["top_token"] as? String == " Paris")
    }

    @Test(arguments: [AttentionMode.bidirectional, .causal])
    func meanPooledEmbeddingsMatchLLM2Vec(attention: AttentionMode) throws {
        // The float32 path: parity of the arithmetic (stored precision: LinearWeightTests).
        let encoder = try Encoder(modelPath: InstalledModels.smollm2!, precision: .float32) { $0.attention = attention; $0.batchSize = 2 }
        let texts = reference["texts"] as! [String]
        let expected = (reference["embeddings"] as! [String: [[Double]]])[attention.rawValue]!
        let embeddings = try encoder.encode(texts.map { EncoderInput($0) })
        for (i, (got, want)) in zip(embeddings, expected).enumerated() {
            let cosine = Compare.cosine(got, want.map(Float.init))
            #expect(cosine >= 0.9999, "\(attention) text \(i): cosine \(cosine)")
        }
    }
}
