import ArgumentParser
import Foundation
import Unmask

extension CorpusFormat: ExpressibleByArgument {}
extension EmbeddingPrecision: ExpressibleByArgument {}

struct EmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Embed a corpus: streamed, resumable, shardable.",
        discussion: """
        Reads a window of records at a time, embeds it (sorted by length inside the window) and writes it \
        in input order, so memory does not grow with the input. With --output, finished files appear by \
        rename and a journal commits each window: after a crash or kill, the same command with --resume \
        finishes the run, every record written once. --shard K/N embeds the K-th of N contiguous parts \
        (K from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX when only N is given); `unmask shards merge` \
        joins them.
        """
    )

    @OptionGroup var encoder: EncoderArguments

    @Option(help: "JSONL with {\"text\", \"instruction\"?, \"id\"?, ...} a line, or a .txt file with one text a line; - for stdin.")
    var input: String

    @Option(help: "Output file (default: standard output). npy writes <base>.npy, <base>.ids.jsonl and <base>.manifest.json.")
    var output: String?

    @Option(help: "Output format: jsonl ({\"id\", ..., \"embedding\": [...]} a line) or npy. Default: npy for a .npy output, else jsonl.")
    var format: CorpusFormat?

    @Option(help: "Stored precision: float32, float16, int8, uint8, binary or ubinary (sentence-transformers' quantize_embeddings).")
    var precision: EmbeddingPrecision = .float32

    @Option(name: .customLong("keep"), help: "A JSONL field to copy into each output line, after the id (repeatable).")
    var keep: [String] = []

    @Option(help: "Records read and length-sorted together; memory is bounded by it.")
    var window: Int = 1024

    @Option(help: "K/N: embed the K-th (0-based) of N parts; N alone takes K from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX.")
    var shard: String?

    @Flag(help: "Continue an interrupted run of the same command (refused if the input, model or options changed).")
    var resume = false

    @Option(help: "int8/uint8: texts (.txt or JSONL) whose vectors set each dimension's range (default: the input's first --calibration-size records).")
    var calibration: String?

    @Option(help: "int8/uint8: how many of the input's first records calibrate the ranges.")
    var calibrationSize: Int = 1000

    func validate() throws {
        if window < 1 { throw ValidationError("--window must be at least 1, got \(window)") }
        if calibrationSize < 1 { throw ValidationError("--calibration-size must be at least 1, got \(calibrationSize)") }
        if let shard { _ = try Self.parseShard(shard, environment: ProcessInfo.processInfo.environment) }
    }

    /// "K/N", or "N" with K from Slurm's array task (relative to the array's first) or Kubernetes' completion index.
    static func parseShard(_ text: String, environment: [String: String]) throws -> CorpusShard {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let count = Int(parts.last!) else {
            throw ValidationError("--shard must be K/N or N (e.g. 2/4), got '\(text)'")
        }
        let index: Int
        if parts.count == 2 {
            guard let k = Int(parts[0]) else { throw ValidationError("--shard must be K/N or N (e.g. 2/4), got '\(text)'") }
            index = k
        } else if let task = environment["SLURM_ARRAY_TASK_ID"].flatMap({ Int($0) }) {
            index = task - (environment["SLURM_ARRAY_TASK_MIN"].flatMap { Int($0) } ?? 0)
        } else if let completion = environment["JOB_COMPLETION_INDEX"].flatMap({ Int($0) }) {
            index = completion
        } else {
            throw ValidationError("--shard \(text) gives no index: use K/\(text), or run in a Slurm array (SLURM_ARRAY_TASK_ID) or a Kubernetes Indexed Job (JOB_COMPLETION_INDEX)")
        }
        do { return try CorpusShard(index: index, count: count) } catch let error as UnmaskError { throw ValidationError(error.description) }
    }

    func run() throws {
        try reportingErrors {
            var options = CorpusJobOptions(input: input)
            options.output = output
            options.format = format ?? (output?.lowercased().hasSuffix(".npy") == true ? .npy : .jsonl)
            options.precision = precision
            options.keep = keep
            options.instruction = encoder.instruction
            options.window = window
            options.shard = try shard.map { try Self.parseShard($0, environment: ProcessInfo.processInfo.environment) }
            options.resume = resume
            options.calibration = calibration
            options.calibrationSize = calibrationSize
            // The input is scanned (counted, hashed, every line parsed) before the model loads.
            let job = try CorpusJob(options: options)
            let model = try encoder.makeEmbedder()
            let progress = ProgressBar(label: "embedding", total: job.range?.count ?? 0)
            let written = try job.run(embedder: model, identity: EmbeddingCache.identity(of: model)) { state in
                let textsPerSecond = Double(state.done) / max(state.seconds, 1e-9)
                let detail = String(format: "%.1f texts/s, %.0f tokens/s", textsPerSecond, Double(state.tokens) / max(state.seconds, 1e-9))
                progress.update(state.done, total: state.total, detail: detail)
            }
            progress.finish()
            if job.wasFinished, let paths = job.paths {
                FileHandle.standardError.write(Data("\(paths.data) is already complete: nothing to resume (delete it to embed again)\n".utf8))
            } else if let paths = job.paths, job.options.shard != nil || options.format == .npy {
                FileHandle.standardError.write(Data("wrote \(written) records to \(paths.data)\n".utf8))
            }
        }
    }
}

struct ShardsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "shards", abstract: "Work with the parts of a sharded `unmask embed`.",
                                                    subcommands: [Merge.self])

    struct Merge: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Join the shards of an embed output in input order (checks that every shard is there, finished, and from the same job).")

        @Option(help: "The output the shards were made for (the embed command's --output).")
        var output: String

        @Option(help: "jsonl or npy (default: npy for a .npy output, else jsonl).")
        var format: CorpusFormat?

        func run() throws {
            try reportingErrors {
                let records = try CorpusMerge.merge(output: output, format: format ?? (output.lowercased().hasSuffix(".npy") ? .npy : .jsonl))
                FileHandle.standardError.write(Data("merged \(records) records into \(output)\n".utf8))
            }
        }
    }
}
