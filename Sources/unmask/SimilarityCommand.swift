import ArgumentParser
import Foundation
import Unmask

struct SimilarityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "similarity",
        abstract: "Embed texts and print their cosine similarity matrix and each text's nearest neighbour.")

    @OptionGroup var encoder: EncoderArguments

    @Option(help: "JSONL or .txt file of texts.")
    var input: String

    func run() throws {
        try reportingErrors {
            let inputs = try TextInputs.read(path: input, defaultInstruction: encoder.instruction)
            let embeddings = try encoder.makeEncoder().encode(inputs)
            let similarity = embeddings.map { a in embeddings.map { b in Similarity.cosine(a, b) } }
            print("attention: \(encoder.attention.rawValue)")
            print(Similarity.table(similarity, labels: inputs.map(\.text)))
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

    /// The matrix with numbered rows, then each text's most similar other text.
    static func table(_ matrix: [[Double]], labels: [String]) -> String {
        let n = matrix.count
        var lines = ["     " + (0..<n).map { String(format: "%7d", $0 + 1) }.joined()]
        for i in 0..<n {
            lines.append(String(format: "%4d ", i + 1) + matrix[i].map { String(format: "%7.3f", $0) }.joined())
        }
        lines.append("")
        for i in 0..<n {
            let neighbour = (0..<n).filter { $0 != i }.max { matrix[i][$0] < matrix[i][$1] }
            let label = short(labels[i])
            if let j = neighbour {
                lines.append(String(format: "%4d %@  ->  %d %@ (%.3f)", i + 1, label, j + 1, short(labels[j]), matrix[i][j]))
            } else {
                lines.append(String(format: "%4d %@", i + 1, label))
            }
        }
        return lines.joined(separator: "\n")
    }

    private static func short(_ text: String) -> String {
        let flat = text.replacingOccurrences(of: "\n", with: " ")
        return flat.count <= 48 ? flat : String(flat.prefix(47)) + "…"
    }
}
