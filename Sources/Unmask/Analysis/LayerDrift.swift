import Foundation
import UnmaskKernels

/// The LLM2Vec paper's analysis: per layer, how similar each token's hidden state is under causal
/// and under bidirectional attention. Models whose states barely move when the mask is removed
/// adapt to bidirectional attention easily.
public enum LayerDrift {
    public struct Result: Sendable {
        /// Mean over tokens and texts of cos(h_causal, h_bidirectional), one value per layer.
        public let meanCosine: [Double]
        /// The same, for the first token of each text only (it sees nothing under causal attention).
        public let firstTokenCosine: [Double]
        public let texts: Int
        public let tokens: Int
    }

    public static func run(encoder: Encoder, texts: [String]) throws -> Result {
        let model = encoder.model
        let h = model.config.hiddenSize, layers = model.config.layerCount
        var sums = [Double](repeating: 0, count: layers), firstSums = [Double](repeating: 0, count: layers)
        var tokenCount = 0
        let workspace = DecoderWorkspace()
        for (index, text) in texts.enumerated() {
            let ids = try encoder.prepare(EncoderInput(text), index: index).ids
            let batch = TokenBatch(leftPadding: [ids], padding: 0)
            let tokens = ids.count
            var causal = [[Float]](repeating: [], count: layers)
            _ = model.forward(batch, mode: .causal, workspace: workspace,
                              observer: ForwardObserver(layer: { layer, hidden in
                                  causal[layer] = Array(UnsafeBufferPointer(start: hidden, count: tokens * h))
                              }))
            _ = model.forward(batch, mode: .bidirectional, workspace: workspace,
                              observer: ForwardObserver(layer: { layer, hidden in
                                  for t in 0..<tokens {
                                      let similarity = cosine(causal[layer], t * h, hidden + t * h, h)
                                      sums[layer] += similarity
                                      if t == 0 { firstSums[layer] += similarity }
                                  }
                              }))
            tokenCount += tokens
        }
        return Result(meanCosine: sums.map { $0 / Double(max(tokenCount, 1)) },
                      firstTokenCosine: firstSums.map { $0 / Double(max(texts.count, 1)) },
                      texts: texts.count, tokens: tokenCount)
    }

    public static func markdown(_ result: Result, model: String) -> String {
        var lines = ["Layer-wise cosine similarity of token states, causal vs bidirectional attention (\(model); \(result.texts) texts, \(result.tokens) tokens)", "",
                     "| layer | mean cosine (all tokens) | first token |", "|---|---|---|"]
        for (layer, value) in result.meanCosine.enumerated() {
            lines.append(String(format: "| %d | %.4f | %.4f |", layer + 1, value, result.firstTokenCosine[layer]))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public static func chart(_ result: Result, model: String) -> String {
        SVGLineChart(title: "Causal vs bidirectional token states, \(model)", xLabel: "layer", yLabel: "cosine similarity",
                     xValues: (1...result.meanCosine.count).map(Double.init),
                     series: [("all tokens", result.meanCosine), ("first token", result.firstTokenCosine)]).svg
    }
}

@inline(__always)
func cosine(_ a: [Float], _ offset: Int, _ b: UnsafePointer<Float>, _ n: Int) -> Double {
    var dot = 0.0, na = 0.0, nb = 0.0
    for i in 0..<n {
        let x = Double(a[offset + i]), y = Double(b[i])
        dot += x * y; na += x * x; nb += y * y
    }
    let norm = (na * nb).squareRoot()
    return norm > 0 ? dot / norm : 0
}
