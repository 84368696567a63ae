import ArgumentParser
import Foundation
import Unmask

struct SimilarityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "similarity",
        abstract: "Embed texts and print their cosine similarity matrix and each text's nearest neighbour, for causal and bidirectional attention side by side (or one of them with --attention).")

    @OptionGroup var encoder: EncoderArguments

    @Option(help: "JSONL or .txt file of texts.")
    var input: String

    func run() throws {
        try reportingErrors {
            let inputs = try TextInputs.read(path: input, defaultInstruction: encoder.instruction)
            let modes = encoder.attention.map { [$0] } ?? [.causal, .bidirectional]
            let first = try encoder.makeEncoder(attention: modes[0])
            var matrices: [[[Double]]] = []
            for mode in modes {
                let model = mode == modes[0] ? first : try first.withAttention(mode)
                let embeddings = try model.encode(inputs)
                matrices.append(embeddings.map { a in embeddings.map { b in Similarity.cosine(a, b) } })
            }
            print("model: \(first.checkpoint.path) (\(first.checkpoint.config.modelType), pooling \(first.options.pooling.rawValue))\n")
            for (mode, matrix) in zip(modes, matrices) {
                print("cosine similarity, \(mode.rawValue) attention")
                print(Similarity.matrix(matrix) + "\n")
            }
            print(Similarity.neighbours(matrices, modes: modes.map(\.rawValue), labels: inputs.map(\.text)))
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

    /// Each text's most similar other text under each attention mode.
    static func neighbours(_ matrices: [[[Double]]], modes: [String], labels: [String]) -> String {
        var lines = ["nearest neighbour (" + modes.joined(separator: " | ") + ")"]
        for i in labels.indices {
            var line = String(format: "%4d %@", i + 1, short(labels[i]).padding(toLength: 40, withPad: " ", startingAt: 0))
            for matrix in matrices {
                guard let j = labels.indices.filter({ $0 != i }).max(by: { matrix[i][$0] < matrix[i][$1] }) else { continue }
                line += String(format: "  ->  %2d (%.3f)", j + 1, matrix[i][j])
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
