import Foundation
import Unmask
import UnmaskCKernels
import UnmaskKernels
import UnmaskTokenizers
#if canImport(Glibc)
import Glibc
#endif

/// Speed and memory of the encoder's hot paths, printed as a Markdown table for BENCHMARKS.md.
/// Usage: unmask-bench [--model PATH|NAME] [--weight-precision auto|f32] [--fused-rows N] [--batch 32] [--length 128] [--repeats 3] [--tokenizer DIR] [--text FILE]
///                     [--search yes [--rows 1000000] [--dimension 576] [--queries 100] [--k 10]]
///                     [--fused-kernel yes [--kernel-rows 1536] [--kernel-columns 512]]
///                     [--train yes [--train-batch 8] [--train-length 128] [--simcse-batch 32] [--simcse-length 64] [--train-steps 3]]
/// Without --model the weights are random with SmolLM2-135M's shapes. With --search or
/// --fused-kernel, only that is measured (SearchBench, FusedKernelBench). With --train, only the
/// training steps are measured (see TrainingBench).
@main
struct Bench {
    static func main() throws {
        let arguments = Arguments(CommandLine.arguments.dropFirst())
        let batch = arguments.int("--batch", 32), length = arguments.int("--length", 128), repeats = arguments.int("--repeats", 3)
        var rows: [(String, String)] = []
        rows.append(("BLAS", BLAS.description))
        rows.append(("OPENBLAS_CORETYPE", ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "(unset)"))
        rows.append(("cores", "\(Parallel.coreCount)"))
        rows.append(("fused kernels", String(cString: unmask_kernel_name(unmask_kernel_level()))))

        if arguments.string("--search") != nil || arguments.string("--fused-kernel") != nil {
            rows += arguments.string("--search") != nil ? try SearchBench.rows(arguments: arguments) : FusedKernelBench.rows(arguments: arguments)
            print("| measure | value |\n|---|---|")
            for (name, value) in rows { print("| \(name) | \(value) |") }
            return
        }
        let peak = sgemmPeak()
        rows.append(("sgemm 4096×1536×576", String(format: "%.1f GFLOP/s", peak)))

        let model: DecoderModel
        let precisionName = arguments.string("--weight-precision") ?? "auto"
        guard let precision = WeightPrecision(rawValue: precisionName) else {
            throw UnmaskError.invalidInput(source: "--weight-precision", reason: "expected auto or f32, got '\(precisionName)'")
        }
        if let path = arguments.string("--model") {
            let checkpoint = try Checkpoint(path: path)
            let start = DispatchTime.now().uptimeNanoseconds
            model = try checkpoint.loadModel(lmHead: arguments.string("--train") != nil, precision: precision)
            rows.append(("model", "\(checkpoint.path), --weight-precision \(precision.rawValue)"))
            rows.append(("load (map + check, or convert)", String(format: "%.3f s", Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)))
        } else {
            // SmolLM2-135M's shapes with random weights.
            let config = DecoderConfig(
                modelType: "llama", hiddenSize: 576, intermediateSize: 1536, layerCount: 30, headCount: 9, kvHeadCount: 3, headDim: 64,
                vocabularySize: 49152, rmsNormEps: 1e-5, ropeTheta: 100000, ropeScaling: .none, attentionBias: false, mlpBias: false,
                tieWordEmbeddings: true, maxPositionEmbeddings: 8192, slidingWindow: nil, nameOrPath: "random SmolLM2-135M shapes")
            let tensors = InMemoryTensors.random(config: config, seed: 42)
            let weights = try DecoderWeights.load(from: tensors, config: config)
            model = DecoderModel(config: config, weights: weights, lmHead: weights.embedTokens)  // tied, as SmolLM2
            rows.append(("model", "random weights, SmolLM2-135M shapes"))
        }
        if let limit = arguments.string("--fused-rows").flatMap(Int.init) {
            // Products with at most this many rows take the fused path (0: always panels).
            for matrix in model.weights.matrices + [model.lmHead].compactMap({ $0 }) { matrix.fusedRowLimit = limit }
            rows.append(("fused path up to", "\(limit) rows"))
        } else {
            rows.append(("fused path up to", "\(LinearWeight.defaultFusedRowLimit) rows (default)"))
        }
        if arguments.string("--train") != nil {
            rows += TrainingBench.rows(model: model, arguments: arguments)
            print("| measure | value |\n|---|---|")
            for (name, value) in rows { print("| \(name) | \(value) |") }
            return
        }
        let config = model.config
        let weightBytes = model.weights.byteCount
        let workspace = DecoderWorkspace()
        var generator = SystemRandomNumberGenerator()
        let ids = (0..<(batch * length)).map { _ in Int32.random(in: 0..<Int32(config.vocabularySize), using: &generator) }
        let tokenBatch = TokenBatch(ids: ids, batch: batch, length: length, valid: Array(repeating: 0..<length, count: batch))
        _ = model.forward(tokenBatch, mode: .bidirectional, workspace: workspace)
        var best = Double.infinity
        for _ in 0..<repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = model.forward(tokenBatch, mode: .bidirectional, workspace: workspace)
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        let tokens = Double(batch * length)
        let flops = forwardFlops(config, batch: batch, length: length)
        rows.append(("forward \(batch)×\(length) bidirectional, best of \(repeats)", String(format: "%.3f s", best)))
        rows.append(("tokens/s", String(format: "%.0f", tokens / best)))
        rows.append(("achieved", String(format: "%.1f GFLOP/s (%.0f%% of the sgemm figure)", flops / best / 1e9, 100 * flops / best / 1e9 / peak)))
        let rss = peakResidentBytes()
        rows.append(("weights as held", String(format: "%.0f MB", Double(weightBytes) / 1e6)))
        rows.append(("peak RSS", String(format: "%.0f MB (%.2f× the weights as held)", Double(rss) / 1e6, Double(rss) / Double(weightBytes))))

        if let directory = arguments.string("--tokenizer") {
            rows += try tokenizerRows(directory: directory, textFile: arguments.string("--text"))
        }

        print("| measure | value |\n|---|---|")
        for (name, value) in rows { print("| \(name) | \(value) |") }
    }

    /// Best GFLOP/s of a product shaped like the MLP's, over a few runs.
    static func sgemmPeak() -> Double {
        let (m, n, k) = (4096, 1536, 576)
        let a = FloatBuffer(count: m * k), b = FloatBuffer(count: n * k), c = FloatBuffer(count: m * n)
        for i in 0..<a.count { a[i] = Float(i % 7) * 0.01 }
        for i in 0..<b.count { b[i] = Float(i % 5) * 0.01 }
        var best = Double.infinity
        for _ in 0..<5 {
            let start = DispatchTime.now().uptimeNanoseconds
            BLAS.sgemm(transposeA: false, transposeB: true, m: m, n: n, k: k, a: a.pointer, lda: k, b: b.pointer, ldb: k, c: c.pointer, ldc: n)
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return 2 * Double(m * n * k) / best / 1e9
    }

    /// Multiply-adds ×2 of the projections, MLP and attention products.
    static func forwardFlops(_ c: DecoderConfig, batch: Int, length: Int) -> Double {
        let tokens = Double(batch * length)
        let linear = Double(c.hiddenSize * (2 * c.qDim + 2 * c.kvDim) + 3 * c.hiddenSize * c.intermediateSize)
        let attention = Double(2 * length * c.headDim * c.headCount)
        return 2 * tokens * (linear + attention) * Double(c.layerCount)
    }

    static func tokenizerRows(directory: String, textFile: String?) throws -> [(String, String)] {
        let start = DispatchTime.now().uptimeNanoseconds
        let tokenizer = try Tokenizer.load(directory: URL(fileURLWithPath: directory))
        let loadSeconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let text: String
        if let textFile { text = try String(contentsOfFile: textFile, encoding: .utf8) } else { text = sampleEnglish(bytes: 4_000_000) }
        let lines = text.split(separator: "\n").map(String.init)
        var count = 0
        let encodeStart = DispatchTime.now().uptimeNanoseconds
        for line in lines { count += tokenizer.encode(line).count }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - encodeStart) / 1e9
        let megabytes = Double(text.utf8.count) / 1e6
        return [
            ("tokenizer", "\(tokenizer.kind), \(tokenizer.vocabularySize) tokens"),
            ("tokenizer load", String(format: "%.3f s", loadSeconds)),
            ("tokenize (1 thread)", String(format: "%.2f MB/s (%.1f MB, %d tokens)", megabytes / seconds, megabytes, count)),
        ]
    }

    /// Varied English prose, built deterministically, so runs compare without a data download.
    static func sampleEnglish(bytes: Int) -> String {
        let subjects = ["The committee", "A young engineer", "Our neighbour's dog", "The government", "Scientists in Geneva", "She", "Nobody"]
        let verbs = ["announced", "couldn't explain", "quietly rejected", "has been studying", "will review", "didn't expect"]
        let objects = ["the new budget for 2024", "a 3.5% rise in prices", "the results of the trial", "why the bridge collapsed",
                       "an unusual pattern in the data", "the recipe's secret ingredient", "what happened on Tuesday"]
        let tails = ["", " yesterday.", ", according to reports.", " — again!", " before the deadline?", " (see page 12)."]
        var out = ""
        var i = 0
        while out.utf8.count < bytes {
            out += subjects[i % subjects.count] + " " + verbs[(i / 3) % verbs.count] + " " + objects[(i / 7) % objects.count]
            out += tails[(i / 11) % tails.count] + (i % 5 == 4 ? "\n" : " ")
            i += 1
        }
        return out
    }

    static func peakResidentBytes() -> Int {
        var usage = rusage()
        #if canImport(Glibc)
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        #else
        getrusage(RUSAGE_SELF, &usage)
        #endif
        #if canImport(Glibc)
        return usage.ru_maxrss * 1024  // kilobytes on Linux
        #else
        return usage.ru_maxrss  // bytes on macOS
        #endif
    }
}

struct Arguments {
    private var values: [String: String] = [:]
    init(_ arguments: ArraySlice<String>) {
        var iterator = arguments.makeIterator()
        while let key = iterator.next() { values[key] = iterator.next() }
    }
    func int(_ key: String, _ fallback: Int) -> Int { values[key].flatMap(Int.init) ?? fallback }
    func string(_ key: String) -> String? { values[key] }
}
