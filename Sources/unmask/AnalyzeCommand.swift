import ArgumentParser
import Foundation
import Unmask

struct AnalyzeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyze",
        abstract: "Analyses behind the causal-vs-bidirectional question, each as a Markdown table and an SVG chart.",
        subcommands: [LayersCommand.self, RepetitionCommand.self])

    /// The model and the texts every analysis reads.
    struct Source: ParsableArguments {
        @Option(help: "Model: a Hugging Face folder, a .gguf file, or an installed model's name.")
        var model: String
        @Option(name: .customLong("adapter"), help: "PEFT LoRA adapter folder (repeatable).")
        var adapters: [String] = []
        @Option(help: "JSONL or .txt file of texts.")
        var input: String

        func texts() throws -> [String] { try TextInputs.read(path: input).map(\.text) }
    }

    struct Output: ParsableArguments {
        @Option(help: "Folder for the Markdown table and SVG chart (default: print the table only).")
        var output: String?

        func write(_ name: String, markdown: String, svg: String) throws {
            try emit(markdown)
            guard let output else { return }
            let folder = URL(fileURLWithPath: output)
            do {
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            } catch {
                throw UnmaskError.unwritableFile(path: output, error: error)
            }
            try writeOutput(Data(markdown.utf8), to: folder.appendingPathComponent("\(name).md").path)
            try writeOutput(Data(svg.utf8), to: folder.appendingPathComponent("\(name).svg").path)
        }
    }

    struct LayersCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "layers",
            abstract: "Per layer, the cosine similarity between each token's state under causal and under bidirectional attention.")

        @OptionGroup var source: Source
        @OptionGroup var output: Output

        func run() throws {
            try reportingErrors {
                let encoder = try Encoder(modelPath: source.model, adapterPaths: source.adapters)
                let result = try LayerDrift.run(encoder: encoder, texts: try source.texts())
                let name = encoder.label.components(separatedBy: ",")[0]
                try output.write("layer-drift", markdown: LayerDrift.markdown(result, model: name), svg: LayerDrift.chart(result, model: name))
            }
        }
    }

    struct RepetitionCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "repetition",
            abstract: "How far a sentence repeated k times pulls the pooled embedding, and the attention it draws, causal vs bidirectional.")

        @OptionGroup var source: Source
        @Option(help: "The irrelevant sentence to repeat.")
        var sentence = "The weather report for tomorrow predicts light rain in the afternoon."
        @Option(help: "Largest number of repeats.")
        var maxRepeats = 8
        @Option(help: "Pooling for the embeddings.")
        var pooling: Pooling = .mean
        @OptionGroup var output: Output

        func run() throws {
            try reportingErrors {
                guard maxRepeats >= 1 else { throw UnmaskError.invalidInput(source: "--max-repeats", reason: "must be at least 1, got \(maxRepeats)") }
                let texts = try source.texts()
                let causal = try Encoder(modelPath: source.model, adapterPaths: source.adapters) { $0.attention = .causal; $0.pooling = pooling }
                var results: [(String, [RepetitionBias.Row])] = []
                for encoder in [causal, causal.withAttention(.bidirectional)] {
                    results.append((encoder.options.attention.rawValue, try RepetitionBias.run(encoder: encoder, texts: texts, sentence: sentence, maxRepeats: maxRepeats)))
                }
                let name = causal.label.components(separatedBy: ",")[0]
                try output.write("repetition-bias", markdown: RepetitionBias.markdown(results, model: name, sentence: sentence),
                                 svg: RepetitionBias.chart(results, model: name))
            }
        }
    }
}
