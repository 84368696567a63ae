import ArgumentParser
import Foundation
import Unmask
import UnmaskKernels

struct SimilarityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "similarity",
        abstract: "Embed texts and print their cosine similarity matrix and each text's nearest neighbour, for causal and bidirectional attention side by side (or one of them with --attention).")

    @OptionGroup var encoder: EncoderArguments

    @Option(help: "JSONL or .txt file of texts.")
    var input: String

    /// Above this many texts the n × n matrix is left out (it grows with the square of the input)
    /// and each text's nearest neighbours are printed instead.
    static let largestMatrix = 32

    func run() throws {
        try reportingErrors {
            let inputs = try TextInputs.read(path: input, defaultInstruction: encoder.instruction)
            let modes = encoder.attention.map { [$0] } ?? [.causal, .bidirectional]
            let first = try encoder.makeEncoder(attention: modes[0])
            var neighbours: [[[(index: Int, score: Double)]]] = []
            try emit("model: \(first.checkpoint.path) (\(first.checkpoint.config.modelType), pooling \(first.options.pooling.rawValue))\n")
            let showMatrix = inputs.count <= Self.largestMatrix
            if !showMatrix {
                try emit("\(inputs.count) texts: the similarity matrix is printed for at most \(Self.largestMatrix); each text's 3 nearest neighbours follow\n")
            }
            for mode in modes {
                let model = mode == modes[0] ? first : first.withAttention(mode)
                let embeddings = try model.encode(inputs)
                if showMatrix {
                    try emit("cosine similarity, \(mode.rawValue) attention")
                    try emit(Similarity.matrix(embeddings.map { a in embeddings.map { b in Similarity.cosine(a, b) } }) + "\n")
                }
                neighbours.append(Similarity.nearest(embeddings, count: showMatrix ? 1 : 3))
            }
            try emit(Similarity.neighbours(neighbours, modes: modes.map(\.rawValue), labels: inputs.map(\.text)))
        }
    }
}

enum Similarity {
    static func cosine(_ a: [Float], _ b: [Float]) -> Double {
        var dot = 0.0, na = 0.0, nb = 0.0
        for (x, y) in zip(a, b) { dot += Double(x) * Double(y); na += Double(x) * Double(x); nb += Double(y) * Double(y) }
        let norm = (na * nb).squareRoot()
        return norm > 0 ? dot / norm : 0
    }

    /// The matrix with numbered rows and columns.
    static func matrix(_ matrix: [[Double]]) -> String {
        var lines = ["     " + (0..<matrix.count).map { String(format: "%7d", $0 + 1) }.joined()]
        for (i, row) in matrix.enumerated() {
            lines.append(String(format: "%4d ", i + 1) + row.map { String(format: "%7.3f", $0) }.joined())
        }
        return lines.joined(separator: "\n")
    }

    /// Each text's `count` most similar other texts by cosine, best first: row blocks of the
    /// normalized vectors' product through BLAS, so memory stays at a block × n whatever n is.
    static func nearest(_ embeddings: [[Float]], count k: Int) -> [[(index: Int, score: Double)]] {
        let n = embeddings.count, d = embeddings.first?.count ?? 0
        guard n > 1, d > 0 else { return Array(repeating: [], count: n) }
        let unit = FloatBuffer(count: n * d)
        for (i, e) in embeddings.enumerated() {
            let norm = e.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
            for j in 0..<d { unit[i * d + j] = norm > 0 ? Float(Double(e[j]) / norm) : 0 }
        }
        let block = 256
        let scores = FloatBuffer(count: min(block, n) * n)
        var result: [[(index: Int, score: Double)]] = []
        for start in stride(from: 0, to: n, by: block) {
            let rows = min(block, n - start)
            BLAS.sgemm(transposeA: false, transposeB: true, m: rows, n: n, k: d, a: unit.pointer + start * d, lda: d,
                       b: unit.pointer, ldb: d, c: scores.pointer, ldc: n)
            for r in 0..<rows {
                var best: [(index: Int, score: Double)] = []
                for j in 0..<n where j != start + r {
                    let score = Double(scores[r * n + j])
                    if best.count < k || score > best[best.count - 1].score {
                        best.append((j, score))
                        best.sort { $0.score > $1.score }
                        if best.count > k { best.removeLast() }
                    }
                }
                result.append(best)
            }
        }
        return result
    }

    /// Each text's nearest other texts under each attention mode.
    static func neighbours(_ nearest: [[[(index: Int, score: Double)]]], modes: [String], labels: [String]) -> String {
        let many = (nearest.first?.first?.count ?? 1) > 1
        var lines = ["nearest neighbour\(many ? "s" : "") (" + modes.joined(separator: " | ") + ")"]
        for i in labels.indices {
            var line = String(format: "%4d %@", i + 1, short(labels[i]).padding(toLength: 40, withPad: " ", startingAt: 0))
            for mode in nearest {
                line += "  ->" + mode[i].map { String(format: "  %2d (%.3f)", $0.index + 1, $0.score) }.joined(separator: ",")
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }

    private static func short(_ text: String) -> String {
        let flat = text.replacingOccurrences(of: "\n", with: " ")
        return flat.count <= 40 ? flat : String(flat.prefix(39)) + "…"
    }
}
