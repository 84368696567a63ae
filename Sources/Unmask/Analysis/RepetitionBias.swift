import Foundation
import UnmaskKernels

/// Does attention favour repeated material? Each text gets an irrelevant sentence appended k times
/// (k = 0…maxRepeats); we measure how far the pooled embedding moves toward that sentence's own
/// embedding, and the share of attention mass landing on the repeated tokens, per attention mode.
public enum RepetitionBias {
    public struct Row: Sendable {
        public let repeats: Int
        /// Mean over texts of cos(e(text + k·S), e(S)) − cos(e(text), e(S)).
        public let shiftTowardSentence: Double
        /// Mean share of attention (over layers, heads and the original text's query tokens) on
        /// the repeated tokens.
        public let attentionFromText: Double
        /// The same over every query token.
        public let attentionFromAll: Double
    }

    public static func run(encoder: Encoder, texts: [String], sentence: String, maxRepeats: Int = 8) throws -> [Row] {
        let sentenceEmbedding = try encoder.encode([EncoderInput(sentence)])[0]
        let model = encoder.model
        let heads = model.config.headCount, layers = model.config.layerCount
        var rows: [Row] = []
        var baseline: [Double] = []
        let workspace = DecoderWorkspace()
        for k in 0...maxRepeats {
            var shift = 0.0, fromText = 0.0, fromAll = 0.0
            for (index, text) in texts.enumerated() {
                let padded = ([text] + Array(repeating: sentence, count: k)).joined(separator: " ")
                let embedding = try encoder.encode([EncoderInput(padded)])[0]
                let similarity = cosine(embedding, 0, sentenceEmbedding, sentenceEmbedding.count)
                if k == 0 { baseline.append(similarity) }
                shift += similarity - baseline[index]
                guard k > 0 else { continue }
                let textLength = try encoder.prepare(EncoderInput(text), index: index).ids.count
                let ids = try encoder.prepare(EncoderInput(padded), index: index).ids
                let length = ids.count
                let repeated = min(textLength, length)..<length
                var textMass = 0.0, allMass = 0.0
                _ = model.forward(TokenBatch(leftPadding: [ids], padding: 0),
                                  mode: encoder.options.attention,
                                  workspace: workspace,
                                  observer: ForwardObserver(attention: { _, probabilities in
                                      for head in 0..<heads {
                                          for query in 0..<length {
                                              let row = probabilities + (head * length + query) * length
                                              var mass = 0.0
                                              for key in repeated { mass += Double(row[key]) }
                                              allMass += mass
                                              if query < repeated.lowerBound { textMass += mass }
                                          }
                                      }
                                  }))
                fromText += textMass / Double(layers * heads * max(repeated.lowerBound, 1))
                fromAll += allMass / Double(layers * heads * length)
            }
            let n = Double(texts.count)
            rows.append(Row(repeats: k, shiftTowardSentence: shift / n, attentionFromText: fromText / n, attentionFromAll: fromAll / n))
        }
        return rows
    }

    private static func cosine(_ a: [Float], _ offset: Int, _ b: [Float], _ n: Int) -> Double {
        b.withUnsafeBufferPointer { Unmask.cosine(a, offset, $0.baseAddress!, n) }
    }

    public static func markdown(_ results: [(String, [Row])], model: String, sentence: String) -> String {
        var lines = ["Repetition bias (\(model)): the sentence \"\(sentence)\" appended k times", "",
                     "| attention | k | Δ cos(embedding, sentence) | attention on repeats, from the text's tokens | from all tokens |",
                     "|---|---|---|---|---|"]
        for (mode, rows) in results {
            for row in rows {
                lines.append(String(format: "| %@ | %d | %+.4f | %.4f | %.4f |", mode, row.repeats, row.shiftTowardSentence, row.attentionFromText, row.attentionFromAll))
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public static func chart(_ results: [(String, [Row])], model: String) -> String {
        SVGLineChart(title: "Pull of a repeated sentence on the embedding, \(model)", xLabel: "times the sentence is repeated",
                     yLabel: "Δ cosine to the sentence", xValues: results.first.map { $0.1.map { Double($0.repeats) } } ?? [],
                     series: results.map { ($0.0, $0.1.map(\.shiftTowardSentence)) }).svg
    }
}
