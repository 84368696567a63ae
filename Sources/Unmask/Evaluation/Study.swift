import Foundation

/// Runs tasks for one or several embedders and writes the reports.
public enum EvaluationRun {
    /// A configuration of the study: a name for tables and a way to build its embedder (built
    /// when its turn comes, so only one model is in memory at a time).
    public struct Configuration {
        public var name: String
        public var make: () throws -> TextEmbedder
        public init(name: String, make: @escaping () throws -> TextEmbedder) { self.name = name; self.make = make }
    }

    public struct Outcome {
        public var name: String
        public var label: String
        public var results: [TaskResult]
        /// Seconds, model loading included.
        public var seconds: Double
    }

    /// Called before each task (configuration, task, index, count) and with embedding progress.
    public struct Observer {
        public var taskStarted: (String, String, Int, Int) -> Void = { _, _, _, _ in }
        public var taskFinished: (String, TaskResult) -> Void = { _, _ in }
        public var progress: EvaluationProgress = { _, _, _ in }
        public init() {}
    }

    /// File-name-safe form of a name.
    public static func slug(_ name: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-_.")
        var out = ""
        for c in name.lowercased() { out.append(allowed.contains(c) ? c : "-") }
        while out.contains("--") { out = out.replacingOccurrences(of: "--", with: "-") }
        return out.trimmingCharacters(in: CharacterSet(charactersIn: "-"))
    }

    /// Runs `tasks` for each configuration, writing `<output>/<slug>/<Task>.json` as each finishes.
    public static func run(_ configurations: [Configuration], tasks: [EvalTask], options: EvaluationOptions,
                           output: URL, settings: [String: String], observer: Observer = Observer()) throws -> [Outcome] {
        var outcomes: [Outcome] = []
        // The output must be a folder we can write, checked before the first model loads.
        try makeFolder(output)
        for configuration in configurations {
            let start = Date()
            let embedder = try configuration.make()
            let evaluator = try Evaluator(embedder: embedder, options: options)
            let folder = output.appendingPathComponent(slug(configuration.name))
            try makeFolder(folder)
            var results: [TaskResult] = []
            for (index, task) in tasks.enumerated() {
                observer.taskStarted(configuration.name, task.spec.name, index, tasks.count)
                let result = try evaluator.run(task, progress: observer.progress)
                var taskSettings = settings
                taskSettings["configuration"] = configuration.name
                taskSettings["embedder"] = embedder.label
                taskSettings["dimension"] = String(embedder.dimension)
                try writeAtomically(try EvalReports.mtebJSON(result, model: embedder.label, settings: taskSettings),
                                    to: folder.appendingPathComponent("\(task.spec.name).json"))
                observer.taskFinished(configuration.name, result)
                results.append(result)
            }
            outcomes.append(Outcome(name: configuration.name, label: embedder.label, results: results, seconds: Date().timeIntervalSince(start)))
        }
        return outcomes
    }

    /// `results.md` and `results.svg` for a single configuration.
    public static func writeSingle(_ outcome: Outcome, output: URL, command: String, settings: [String: String]) throws {
        var md = "# Evaluation: \(outcome.label)\n\n"
        md += "Command: `\(command)`\n\n"
        md += settings.sorted { $0.key < $1.key }.map { "- \($0.key): \($0.value)" }.joined(separator: "\n") + "\n\n"
        md += "Scores ×100; main metric per MTEB.\n\n" + EvalReports.markdownTable(outcome.results) + "\n"
        md += "Family averages: " + EvalReports.familyAverages(outcome.results).map { "\($0.family) \(EvalReports.percent($0.score))" }.joined(separator: ", ") + "\n\n"
        md += EvalReports.promptList(outcome.results)
        md += String(format: "Total time: %.1f s (model loading included).\n\n![scores](results.svg)\n", outcome.seconds)
        try writeAtomically(Data(md.utf8), to: output.appendingPathComponent("results.md"))
        let chart = EvalReports.barChart(title: outcome.label, categories: outcome.results.map(\.task),
                                         series: [(outcome.name, outcome.results.map { Optional($0.mainScore) })])
        try writeAtomically(Data(chart.utf8), to: output.appendingPathComponent("results.svg"))
    }

    /// `study.md`, `study.svg` (per task) and `study-families.svg` for a comparison.
    public static func writeComparison(_ outcomes: [Outcome], output: URL, title: String, command: String, settings: [String: String]) throws {
        let runs = outcomes.map { (name: $0.name, results: $0.results) }
        var md = "# \(title)\n\nCommand: `\(command)`\n\n"
        md += settings.sorted { $0.key < $1.key }.map { "- \($0.key): \($0.value)" }.joined(separator: "\n") + "\n\n"
        md += "## Configurations\n\n| Configuration | Embedder | Time (s) |\n|---|---|---:|\n"
        for o in outcomes { md += "| \(o.name) | \(o.label) | \(String(format: "%.1f", o.seconds)) |\n" }
        md += "\n## Per task (main score ×100; best in bold)\n\n" + EvalReports.comparisonTable(runs)
        md += "\n## Per family and average\n\n" + EvalReports.familyTable(runs)
        md += "\n![per task](study.svg)\n\n![per family](study-families.svg)\n"
        try writeAtomically(Data(md.utf8), to: output.appendingPathComponent("study.md"))
        let tasks = EvalReports.orderedUnique(outcomes.flatMap { $0.results.map(\.task) })
        let perTask = outcomes.map { o in (name: o.name, values: tasks.map { t in o.results.first { $0.task == t }?.mainScore }) }
        try writeAtomically(Data(EvalReports.barChart(title: title + ": main score per task", categories: tasks, series: perTask).utf8),
                            to: output.appendingPathComponent("study.svg"))
        let families = EvalReports.orderedUnique(outcomes.flatMap { $0.results.map(\.family) })
        let perFamily = outcomes.map { o -> (name: String, values: [Double?]) in
            let averages = EvalReports.familyAverages(o.results)
            let values: [Double?] = families.map { f in averages.first { $0.family == f }?.score }
            let overall: Double? = o.results.isEmpty ? nil : Metrics.mean(o.results.map(\.mainScore).filter(\.isFinite))
            return (o.name, values + [overall])
        }
        try writeAtomically(Data(EvalReports.barChart(title: title + ": family averages", categories: families + ["Average"], series: perFamily).utf8),
                            to: output.appendingPathComponent("study-families.svg"))
        // A machine-readable summary.
        let summary: [[String: Any]] = outcomes.map { o in
            ["configuration": o.name, "embedder": o.label, "seconds": o.seconds,
             "scores": Dictionary(uniqueKeysWithValues: o.results.map { ($0.task, $0.mainScore) })]
        }
        try writeAtomically(try JSONSerialization.data(withJSONObject: summary, options: [.prettyPrinted, .sortedKeys]),
                            to: output.appendingPathComponent("study.json"))
    }

    /// Creates `folder` (and its parents), or says in one line why it cannot be one.
    static func makeFolder(_ folder: URL) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw UnmaskError.unwritableFile(path: folder.path, reason: "it exists and is not a folder; --output takes a folder") }
            return
        }
        do { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) } catch {
            throw UnmaskError.unwritableFile(path: folder.path, error: error)
        }
    }
}
