import ArgumentParser
import Foundation
import Unmask

struct EmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "embed", abstract: "Embed texts from a JSONL or .txt file.")

    enum Format: String, ExpressibleByArgument, CaseIterable { case jsonl, npy }

    @OptionGroup var encoder: EncoderArguments

    @Option(help: "JSONL with {\"text\", \"instruction\"?} a line, or a .txt file with one text a line; - for stdin.")
    var input: String

    @Option(help: "Output file (default: standard output).")
    var output: String?

    @Option(help: "Output format: jsonl ({\"embedding\": [...]} a line) or npy (float32 [n, d]).")
    var format: Format?

    func run() throws {
        try reportingErrors {
            let inputs = try TextInputs.read(path: input, defaultInstruction: encoder.instruction)
            let model = try encoder.makeEmbedder()
            let progress = ProgressBar(label: "embedding", total: inputs.count)
            let embeddings = try model.encode(inputs) { done, _ in progress.update(done) }
            progress.finish()
            let chosen = format ?? (output?.lowercased().hasSuffix(".npy") == true ? .npy : .jsonl)
            try writeOutput(chosen == .npy ? EmbeddingWriters.npy(embeddings) : EmbeddingWriters.jsonLines(embeddings), to: output)
        }
    }
}
