import ArgumentParser
import Dispatch
import Foundation
import Unmask
#if canImport(Glibc)
import Glibc
#endif

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a LoRA adapter the LLM2Vec way: mntp, then simcse (or supervised) on the MNTP-merged model.",
        discussion: """
        Each stage writes a PEFT adapter (adapter_config.json + adapter_model.safetensors) into --output, with \
        training_log.jsonl (one JSON object a step) and checkpoint/ (resumable: rerun with --resume; Ctrl-C saves one).
          unmask train mntp --model smollm2 --data text.txt --output runs/mntp
          unmask train simcse --model smollm2 --adapter runs/mntp --data sentences.txt --output runs/simcse
          unmask embed --model smollm2 --adapter runs/mntp --adapter runs/simcse --input texts.txt
        """,
        subcommands: [MNTP.self, SimCSE.self, Supervised.self, Curves.self]
    )

    struct Curves: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "curves", abstract: "Draw a run's loss curves (OUTPUT/loss.svg) from its training_log.jsonl, also while it runs.")

        @Option(help: "The run's output folder.")
        var output: String

        func run() throws {
            try reportingErrors {
                let folder = URL(fileURLWithPath: output)
                let svg = try TrainingCurves.svg(log: folder.appendingPathComponent("training_log.jsonl"), title: folder.lastPathComponent)
                try writeOutput(Data(svg.utf8), to: folder.appendingPathComponent("loss.svg").path)
                FileHandle.standardError.write(Data("wrote \(folder.appendingPathComponent("loss.svg").path)\n".utf8))
            }
        }
    }

    struct MNTP: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "mntp", abstract: "Masked next-token prediction (LLM2Vec stage 2).")
        @OptionGroup var arguments: TrainArguments
        func run() throws { try arguments.train(.mntp) }
    }

    struct SimCSE: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "simcse", abstract: "Unsupervised SimCSE (LLM2Vec stage 3): each sentence twice with dropout.")
        @OptionGroup var arguments: TrainArguments
        func run() throws { try arguments.train(.simcse) }
    }

    struct Supervised: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "supervised", abstract: "Supervised contrastive training on JSONL {query, positive, negative, instruction}.")
        @OptionGroup var arguments: TrainArguments
        func run() throws { try arguments.train(.supervised) }
    }
}

struct TrainArguments: ParsableArguments {
    @Option(help: "Base model: a Hugging Face folder, a .gguf file, or an installed model's name (smollm2, …).")
    var model: String

    @Option(name: .customLong("adapter"), help: "PEFT adapter merged into the base before training, in order (repeatable; e.g. the MNTP adapter for SimCSE).")
    var adapters: [String] = []

    @Option(help: "PEFT adapter to continue training (its rank and alpha are used).")
    var initAdapter: String?

    @Option(help: "The frozen base's matrices: auto keeps them as stored (QLoRA over a quantized GGUF; merged adapters stay unmerged), f32 converts them to float32.")
    var weightPrecision: WeightPrecision = .auto

    @Option(help: "Training data: .txt (one text a line) or .jsonl with \"text\" (mntp, simcse); JSONL {query, positive, negative?, instruction?} (supervised). Default: the files `unmask data training` prepares.")
    var data: String?

    @Option(help: "Output folder for the adapter, log and checkpoint.")
    var output: String

    @Flag(help: "Continue the run in --output from its checkpoint.")
    var resume = false

    @Option(help: "Optimizer steps (default 1000).") var steps: Int?
    @Option(help: "Examples per step (default: mntp 32, simcse 128, supervised 64).") var batchSize: Int?
    @Option(help: "Examples per forward pass; gradients accumulate over the step (default: mntp 8, simcse 32, supervised 16).") var microBatchSize: Int?
    @Option(help: "Peak learning rate (default: mntp 5e-5, simcse 3e-5, supervised 2e-4).") var learningRate: Float?
    @Option(help: "Linear warmup steps (default: supervised 300, else 0).") var warmupSteps: Int?
    @Option(help: "AdamW weight decay (default 0).") var weightDecay: Float?
    @Option(help: "Clip gradients to this global norm; 0: off (default 1).") var maxGradNorm: Float?
    @Option(help: "Seed for LoRA init, data order, masking and dropout (default 42).") var seed: UInt64?
    @Option(help: "LoRA rank (default 16).") var rank: Int?
    @Option(help: "LoRA alpha (default 32).") var alpha: Float?
    @Option(help: "Dropout on LoRA inputs (default 0.05).") var loraDropout: Float?
    @Option(help: "Dropout on attention probabilities (default: simcse 0.3, else 0).") var attentionDropout: Float?
    @Option(help: "Tokens per MNTP block / per contrastive text (default: simcse 128, else 512).") var maxLength: Int?
    @Option(help: "MNTP: share of tokens masked (default 0.2).") var maskProbability: Float?
    @Option(help: "MNTP: mask token, an ordinary vocabulary token (default _).") var maskToken: String?
    @Flag(help: "MNTP: every selected token becomes the mask token (llm2vec's Mistral recipe) instead of 80/10/10.") var allMask = false
    @Option(help: "Contrastive: softmax temperature over cosine similarities (default: simcse 0.05, supervised 0.02).") var temperature: Float?
    @Option(help: "Share of the data held out for evaluation (default 0.05).") var evalFraction: Double?
    @Option(help: "Most held-out examples per evaluation (default 256).") var evalLimit: Int?
    @Option(help: "Evaluate every N steps; 0: at the end only (default 100).") var evalEvery: Int?
    @Option(help: "Save a checkpoint every N steps; 0: at the end only (default 100).") var saveEvery: Int?
    @Flag(help: "Train with causal attention (an ablation; LLM2Vec is bidirectional).") var causal = false

    func options(_ recipe: TrainingRecipe) -> TrainingOptions {
        var o = TrainingOptions.defaults(for: recipe)
        func set<T>(_ path: WritableKeyPath<TrainingOptions, T>, _ value: T?) { if let value { o[keyPath: path] = value } }
        set(\.steps, steps); set(\.batchSize, batchSize); set(\.learningRate, learningRate); set(\.warmupSteps, warmupSteps)
        set(\.weightDecay, weightDecay); set(\.maxGradNorm, maxGradNorm); set(\.seed, seed); set(\.rank, rank); set(\.alpha, alpha)
        set(\.loraDropout, loraDropout); set(\.attentionDropout, attentionDropout); set(\.maxLength, maxLength)
        set(\.maskProbability, maskProbability); set(\.maskToken, maskToken); set(\.temperature, temperature)
        set(\.evalFraction, evalFraction); set(\.evalLimit, evalLimit); set(\.evalEvery, evalEvery); set(\.saveEvery, saveEvery)
        o.microBatchSize = microBatchSize ?? min(o.microBatchSize, o.batchSize)
        if allMask { o.allMask = true }
        if causal { o.bidirectional = false }
        return o
    }

    func train(_ recipe: TrainingRecipe) throws {
        try reportingErrors {
            let log: (String) -> Void = { FileHandle.standardError.write(Data("\($0)\n".utf8)) }
            var options = options(recipe)
            if resume {
                // The saved run's hyperparameters, with the flags that may change on resume.
                let saved = try Trainer.savedOptions(in: URL(fileURLWithPath: output))
                let given = options
                options = saved
                if steps != nil { options.steps = given.steps }
                if evalEvery != nil { options.evalEvery = given.evalEvery }
                if saveEvery != nil { options.saveEvery = given.saveEvery }
            }
            let dataPath = data ?? TrainingDataDefaults.path(for: recipe)
            let trainer = try Trainer.make(TrainingInputs(model: model, mergedAdapters: adapters, initialAdapter: initAdapter, data: dataPath, output: output, precision: weightPrecision),
                                           options: options, resume: resume, log: log)
            let interrupt = InterruptFlag()
            let bar = ProgressBar(label: recipe.rawValue, total: options.steps)
            let completed = try trainer.run(shouldStop: { interrupt.isSet }) { p in
                let detail = String(format: "loss %.4f  lr %.2e  %.0f tok/s", p.loss, p.learningRate, p.tokensPerSecond)
                bar.update(p.step, detail: detail)
                // Without a terminal (a log file, CI), a plain line every 10 steps instead.
                if !bar.enabled, p.step % 10 == 0 || p.step == p.steps {
                    log(String(format: "step %d/%d  %@  ETA %.0fs", p.step, p.steps, detail, p.secondsRemaining))
                }
            }
            bar.finish()
            if completed {
                log("adapter written to \(output) (PEFT format); log: \(trainer.logURL.path)")
            } else {
                log("interrupted after step \(trainer.nextStep); checkpoint saved in \(trainer.checkpointDirectory.path); continue with the same command and --resume")
                throw ExitCode(130)
            }
        }
    }
}

/// The default data files of `unmask data training`.
enum TrainingDataDefaults {
    static func path(for recipe: TrainingRecipe) -> String {
        let folder = DataPreparation.defaultDirectory.appendingPathComponent("training")
        return folder.appendingPathComponent(recipe == .supervised ? "supervised.jsonl" : "unsupervised.txt").path
    }
}

/// Set by the first Ctrl-C (the run stops after its current step and saves a checkpoint); a
/// second Ctrl-C quits at once.
final class InterruptFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var set = false
    private let source: DispatchSourceSignal

    init() {
        signal(SIGINT, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler { [unowned self] in
            lock.lock()
            let again = set
            set = true
            lock.unlock()
            if again { _exit(130) }
            FileHandle.standardError.write(Data("\nstopping after this step and saving a checkpoint (Ctrl-C again to quit without saving)\n".utf8))
        }
        source.resume()
    }

    var isSet: Bool {
        lock.lock(); defer { lock.unlock() }
        return set
    }
}
