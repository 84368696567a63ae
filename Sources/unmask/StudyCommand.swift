import ArgumentParser
import Foundation
import Unmask

struct StudyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "study",
        abstract: "Does bidirectional attention make the decoder a better encoder? Runs every configuration on the tasks and compares.",
        discussion: """
        Configurations: causal + mean, causal + last-token (the LLM as is), bidirectional + mean (no training), \
        then bidirectional with the MNTP, MNTP + SimCSE and MNTP + supervised adapters when given, and the encoder \
        baseline when given. Writes study.md (per task, per family, average), study.svg, study-families.svg, \
        study.json and each configuration's MTEB JSON files.
        """
    )

    @Option(help: "The decoder: a Hugging Face folder, a .gguf file, or an installed model's name.")
    var model: String

    @Option(help: "MNTP LoRA adapter folder (bidirectional + MNTP).")
    var mntp: String?

    @Option(help: "SimCSE LoRA adapter folder, merged after MNTP.")
    var simcse: String?

    @Option(help: "Supervised contrastive LoRA adapter folder, merged after MNTP.")
    var supervised: String?

    @Option(help: "Encoder baseline: a sentence-transformers BERT folder such as all-MiniLM-L6-v2, or an installed name (minilm).")
    var baseline: String?

    @Option(help: "Maximum tokens per input (default 512).")
    var maxLength: Int?

    @Option(help: "Matrices: auto keeps them as the checkpoint stores them (F16, BF16, ggml quants; adapters on them stay unmerged), f32 converts every one to float32 at load (the reference path).")
    var weightPrecision: WeightPrecision = .auto

    @Option(help: "Texts per forward pass.")
    var batchSize: Int = 16

    @OptionGroup var evaluation: EvaluationArguments

    @Option(help: "Results folder.")
    var output = "results/study"

    func configurations() -> [EvaluationRun.Configuration] {
        let model = self.model, maxLength = self.maxLength, batchSize = self.batchSize, precision = self.weightPrecision
        func decoder(_ adapters: [String], _ attention: AttentionMode, _ pooling: Pooling?) -> () throws -> TextEmbedder {
            {
                try Encoder(modelPath: model, adapterPaths: adapters, precision: precision) { options in
                    options.attention = attention
                    if let pooling { options.pooling = pooling }
                    if let maxLength { options.maxLength = maxLength }
                    options.batchSize = batchSize
                }
            }
        }
        var list: [EvaluationRun.Configuration] = [
            .init(name: "causal + mean", make: decoder([], .causal, .mean)),
            .init(name: "causal + last-token", make: decoder([], .causal, .lastToken)),
            .init(name: "bidirectional + mean", make: decoder([], .bidirectional, .mean)),
        ]
        // Adapter runs take the pooling from the adapter's llm2vec_config.json (else mean).
        if let mntp { list.append(.init(name: "bi + MNTP", make: decoder([mntp], .bidirectional, nil))) }
        if let simcse { list.append(.init(name: "bi + MNTP + SimCSE", make: decoder((mntp.map { [$0] } ?? []) + [simcse], .bidirectional, nil))) }
        if let supervised { list.append(.init(name: "bi + MNTP + supervised", make: decoder((mntp.map { [$0] } ?? []) + [supervised], .bidirectional, nil))) }
        if let baseline { list.append(.init(name: "baseline", make: { try BaselineLoader.load(path: baseline, maxLength: maxLength, batchSize: batchSize) })) }
        return list
    }

    func run() throws {
        try reportingErrors {
            let tasks = try evaluation.loadTasks()
            let output = URL(fileURLWithPath: self.output)
            var settings = evaluation.settings
            settings["max_length"] = maxLength.map(String.init) ?? "512"
            settings["model"] = model
            let outcomes = try EvaluationRun.run(configurations(), tasks: tasks, options: evaluation.options, output: output,
                                                 settings: settings, observer: EvaluationConsole.observer())
            let title = "Study: \((model as NSString).lastPathComponent)"
            try EvaluationRun.writeComparison(outcomes, output: output, title: title, command: EvaluationConsole.commandLine, settings: settings)
            try emit(EvalReports.familyTable(outcomes.map { (name: $0.name, results: $0.results) }), terminator: "")
        }
    }
}

/// The encoder baseline (`--baseline`): a sentence-transformers BERT folder (or the installed
/// name `minilm`), loaded with `Embedders.load`, which picks `BertEncoder` for BERT folders.
enum BaselineLoader {
    static func load(path: String, maxLength: Int?, batchSize: Int) throws -> TextEmbedder {
        // The baseline keeps its own maximum length (MiniLM: 256 tokens), as its users run it.
        try Embedders.load(modelPath: path) { options in options.batchSize = batchSize }
    }
}
