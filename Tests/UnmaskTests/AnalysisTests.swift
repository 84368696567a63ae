import Foundation
import Testing
@testable import Unmask
import UnmaskTestSupport

@Suite struct AnalysisTests {
    let model = Fixtures.path("models", "qwen2-bias-f32")

    @Test func layerDriftIsOneForASingleTokenAndLowerOtherwise() throws {
        let encoder = try Encoder(modelPath: model)
        let single = try LayerDrift.run(encoder: encoder, texts: ["a"])
        #expect(try encoder.prepare(EncoderInput("a")).ids.count == 1)
        #expect(single.meanCosine.count == encoder.model.config.layerCount)
        #expect(single.meanCosine.allSatisfy { abs($0 - 1) < 1e-6 })
        let longer = try LayerDrift.run(encoder: encoder, texts: ["A longer sentence where later tokens change earlier ones."])
        #expect(longer.meanCosine.allSatisfy { $0 < 0.9999 && $0 > -1 })
        let markdown = LayerDrift.markdown(longer, model: "tiny")
        #expect(markdown.contains("| 1 |") && LayerDrift.chart(longer, model: "tiny").hasPrefix("<svg"))
    }

    @Test func repetitionBiasSeparatesCausalFromBidirectional() throws {
        let causal = try Encoder(modelPath: model) { $0.attention = .causal }
        let texts = ["The cat sat on the mat.", "Stocks fell sharply."]
        let sentence = "Rain is expected tomorrow."
        let causalRows = try RepetitionBias.run(encoder: causal, texts: texts, sentence: sentence, maxRepeats: 2)
        let bidirectionalRows = try RepetitionBias.run(encoder: causal.withAttention(.bidirectional), texts: texts, sentence: sentence, maxRepeats: 2)
        #expect(causalRows.map(\.repeats) == [0, 1, 2])
        #expect(causalRows[0].shiftTowardSentence == 0 && causalRows[0].attentionFromAll == 0)
        // Under a causal mask the text's own tokens cannot see what is appended after them.
        #expect(causalRows.dropFirst().allSatisfy { $0.attentionFromText == 0 && $0.attentionFromAll > 0 })
        #expect(bidirectionalRows.dropFirst().allSatisfy { $0.attentionFromText > 0 && $0.attentionFromAll <= 1 })
    }
}
