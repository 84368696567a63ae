import Foundation
import Testing
@testable import Unmask
import UnmaskKernels
import UnmaskTestSupport

/// The real Qwen2.5-Coder-0.5B (qwen2 architecture, Q4_K_M mix of Q5_0/Q4_K/Q6_K/Q8_0, q/k/v biases,
/// separate output weight) predicts like the model it is. Runs when installed; CI does not install it.
@Suite(.enabled(if: InstalledModels.qwen25Coder != nil, "Qwen2.5-Coder-0.5B is not installed: run scripts/install_model.sh qwen2.5-coder-0.5b"))
struct QwenGGUFTests {
    @Test func predictsParis() throws {
        let checkpoint = try Checkpoint(path: InstalledModels.qwen25Coder!)
        let c = checkpoint.config
        #expect(c.modelType == "qwen2" && c.layerCount == 24 && c.hiddenSize == 896 && c.kvHeadCount == 2 && c.attentionBias)
        let tokenizer = try checkpoint.loadTokenizer()
        // Parity of the model's arithmetic: the float32 path (stored precision is LinearWeightTests').
        let model = try checkpoint.loadModel(lmHead: true, precision: .float32)
        let ids = tokenizer.encode("The capital of France is").map(Int32.init)
        let hidden = model.forward(TokenBatch(leftPadding: [ids], padding: 0), mode: .causal, workspace: DecoderWorkspace())
        let logits = model.logits(hidden: hidden, rows: [ids.count - 1])[0]
        let top = logits.indices.max { logits[$0] < logits[$1] }!
        #expect(tokenizer.decode([top]) == " Paris")
    }
}
