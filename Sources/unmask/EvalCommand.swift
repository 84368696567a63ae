import ArgumentParser
import Foundation
import Unmask

/// Options shared by `eval` and `study`: which tasks, how big, where data and results live.
struct EvaluationArguments: ParsableArguments {
    @Option(help: "Comma-separated task names (default: every prepared task).")
    var tasks: String?

    @Option(help: "Cap each task's size for a quick run (pairs, queries, or items; see README).")
    var limit: Int?

    @Flag(help: "Embed texts without the per-task instructions.")
    var noInstructions = false

    @Option(help: "Prepared data folder (default: $UNMASK_HOME/data; see `unmask data prepare`).")
    var data: String?

    @Option(help: "Embedding cache folder (default: $UNMASK_HOME/cache/embeddings).")
    var cache: String?

    @Flag(help: "Do not read or write the embedding cache.")
    var noCache = false

    /// Bad values are usage errors (exit 64): a non-positive limit or an empty task list would
    /// otherwise "succeed" with nothing measured.
    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1, got \(limit)") }
        if let tasks, tasks.split(separator: ",").allSatisfy({ $0.trimmingCharacters(in: .whitespaces).isEmpty }) {
            throw ValidationError("--tasks names no task; give comma-separated task names (see `unmask data list`) or leave it out for all")
        }
    }

    func loadTasks() throws -> [EvalTask] {
        let names = tasks?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let directory = data.map { URL(fileURLWithPath: $0) } ?? DataPreparation.defaultDirectory
        return try DataPreparation.loadTasks(dataDirectory: directory, names: names)
    }

    var options: EvaluationOptions {
        var options = EvaluationOptions()
        options.limit = limit
        options.useInstructions = !noInstructions
        if !noCache {
            options.cacheDirectory = cache.map { URL(fileURLWithPath: $0) } ?? KnownModels.home.appendingPathComponent("cache/embeddings")
        }
        return options
    }

    var settings: [String: String] {
        ["limit": limit.map(String.init) ?? "none", "instructions": noInstructions ? "off" : "on"]
    }
}

/// Terminal reporting for evaluation runs: a progress bar with ETA per task, a line per result.
enum EvaluationConsole {
    static func observer() -> EvaluationRun.Observer {
        var observer = EvaluationRun.Observer()
        nonisolated(unsafe) var bar: ProgressBar?
        nonisolated(unsafe) var current = ""
        observer.taskStarted = { configuration, task, index, count in
            current = "[\(index + 1)/\(count)] \(configuration): \(task)"
            bar = nil
        }
        observer.progress = { stage, done, total in
            if done == 0 { bar?.finish(); bar = total > 0 ? ProgressBar(label: "\(current) \(stage)", total: total) : nil }
            bar?.update(done)
        }
        observer.taskFinished = { configuration, result in
            bar?.finish(); bar = nil
            let line = String(format: "%@ %@: %@ = %.2f (%d texts, %d cached, %.1f s)\n", configuration, result.task, result.mainScoreName,
                              result.mainScore * 100, result.textsEmbedded, result.textsFromCache, result.evaluationTime)
            FileHandle.standardError.write(Data(line.utf8))
        }
        return observer
    }

    static var commandLine: String {
        (["unmask"] + CommandLine.arguments.dropFirst()).map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")
    }
}

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate one model configuration on the MTEB-style tasks (STS, retrieval, clustering, classification).",
        discussion: "Writes <output>/<configuration>/<Task>.json (MTEB format), results.md and results.svg. Prepare the data first with `unmask data prepare`. --instruction is not used: each task has its own."
    )

    @OptionGroup var encoder: EncoderArguments
    @OptionGroup var evaluation: EvaluationArguments

    @Option(help: "Results folder.")
    var output = "results/eval"

    func run() throws {
        try reportingErrors {
            let tasks = try evaluation.loadTasks()
            let output = URL(fileURLWithPath: self.output)
            let name = encoder.adapters.isEmpty ? "\(encoder.attention?.rawValue ?? "bidirectional")" : "adapters"
            var settings = evaluation.settings
            settings["max_length"] = encoder.maxLength.map(String.init) ?? "512"
            let encoder = self.encoder
            // Embedders.load picks the BERT baseline for a BERT folder, else the LLM2Vec Encoder.
            let configuration = EvaluationRun.Configuration(name: name) {
                try Embedders.load(modelPath: encoder.model, adapterPaths: encoder.adapters) { options in
                    encoder.configure(&options, attention: nil)
                }
            }
            let outcomes = try EvaluationRun.run([configuration], tasks: tasks, options: evaluation.options, output: output,
                                                 settings: settings, observer: EvaluationConsole.observer())
            try EvaluationRun.writeSingle(outcomes[0], output: output, command: EvaluationConsole.commandLine, settings: settings)
            try emit(EvalReports.markdownTable(outcomes[0].results), terminator: "")
        }
    }
}
