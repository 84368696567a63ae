import Foundation
import UnmaskKernels

/// Where a run stands, for progress displays.
public struct TrainingProgress: Sendable {
    public var step: Int
    public var steps: Int
    public var loss: Double
    public var learningRate: Float
    public var tokensPerSecond: Double
    public var secondsRemaining: Double
}

/// The optimization loop shared by every recipe: micro-batch accumulation (inside the objective),
/// global-norm clipping, AdamW on a linear warmup/decay schedule, periodic evaluation and
/// checkpoints, a JSONL log of every step, and exact resumption.
///
/// Output folder: the final PEFT adapter (`adapter_config.json`, `adapter_model.safetensors`),
/// `training_log.jsonl`, its curves (`loss.svg`), and `checkpoint/` (the adapter so far, the optimizer moments and
/// `trainer_state.json`), replaced atomically at each save.
public final class Trainer {
    public let decoder: LoRADecoder
    public let objective: TrainingObjective
    public private(set) var options: TrainingOptions
    public let output: URL
    /// Recorded in adapter_config.json's base_model_name_or_path.
    public let baseModel: String
    private let optimizer: AdamW
    private var step = 0
    private var log: FileHandle?

    public init(decoder: LoRADecoder, objective: TrainingObjective, options: TrainingOptions, output: URL, baseModel: String) {
        self.decoder = decoder
        self.objective = objective
        self.options = options
        self.output = output
        self.baseModel = baseModel
        optimizer = AdamW(like: decoder.parameters, weightDecay: options.weightDecay)
        decoder.loraDropout = options.loraDropout
        decoder.attentionDropout = options.attentionDropout
    }

    public var checkpointDirectory: URL { output.appendingPathComponent("checkpoint") }
    public var logURL: URL { output.appendingPathComponent("training_log.jsonl") }
    /// The optimizer step the next `run` starts at.
    public var nextStep: Int { step }

    /// Runs steps until `options.steps` or until `shouldStop` says so (checked between steps; a
    /// resumable checkpoint is saved then). Returns whether the run completed.
    @discardableResult
    public func run(shouldStop: () -> Bool = { false }, progress: (TrainingProgress) -> Void = { _ in }) throws -> Bool {
        try prepareOutput()
        let gradients = LoRATensors(like: decoder.parameters)
        let start = Date()
        var tokens = 0
        let firstStep = step
        while step < options.steps {
            if shouldStop() {
                try saveCheckpoint()
                return false
            }
            gradients.zero()
            let stepStart = Date()
            let result = try objective.step(step, decoder: decoder, into: gradients)
            guard result.loss.isFinite else {
                throw UnmaskError.trainingDiverged(step: step, what: "loss \(result.loss)")
            }
            let norm = gradients.globalNorm()
            guard norm.isFinite else { throw UnmaskError.trainingDiverged(step: step, what: "gradient norm \(norm)") }
            if options.maxGradNorm > 0, norm > Double(options.maxGradNorm) {
                gradients.scale(by: Float(Double(options.maxGradNorm) / (norm + 1e-6)))
            }
            let lr = options.learningRate(at: step)
            optimizer.update(decoder.parameters, gradients: gradients, lr: lr)
            step += 1
            tokens += result.tokens
            let elapsed = Date().timeIntervalSince(start)
            let rate = Double(tokens) / max(elapsed, 1e-9)
            try writeLog([
                "step": step, "loss": result.loss, "learning_rate": Double(lr), "grad_norm": norm, "tokens": result.tokens,
                "step_seconds": Date().timeIntervalSince(stepStart), "tokens_per_second": rate,
            ])
            progress(TrainingProgress(step: step, steps: options.steps, loss: result.loss, learningRate: lr, tokensPerSecond: rate,
                                      secondsRemaining: elapsed / Double(step - firstStep) * Double(options.steps - step)))
            if options.evalEvery > 0, step % options.evalEvery == 0, step < options.steps { try evaluate() }
            if options.saveEvery > 0, step % options.saveEvery == 0, step < options.steps { try saveCheckpoint() }
        }
        try evaluate()
        try saveCheckpoint()
        try decoder.parameters.writePEFTAdapter(to: output, alpha: options.alpha, dropout: options.loraDropout, baseModel: baseModel)
        let curves = try TrainingCurves.svg(log: logURL, title: "\(options.recipe.rawValue): \(baseModel)")
        try writeAtomically(Data(curves.utf8), to: output.appendingPathComponent("loss.svg"))
        return true
    }

    /// Held-out metrics, logged with the step they were taken at.
    @discardableResult
    public func evaluate() throws -> [String: Double] {
        let metrics = try objective.evaluate(decoder: decoder)
        guard !metrics.isEmpty else { return metrics }
        var entry: [String: Any] = ["step": step]
        for (k, v) in metrics { entry[k] = v }
        try writeLog(entry)
        return metrics
    }

    // MARK: Checkpoints

    struct State: Codable {
        var step: Int
        var options: TrainingOptions
        var baseModel: String
        var optimizerStep: Int
    }

    /// Writes `checkpoint/` through a temporary folder renamed into place: an interrupted save
    /// leaves the previous checkpoint intact.
    public func saveCheckpoint() throws {
        let temporary = output.appendingPathComponent("checkpoint.partial")
        try? FileManager.default.removeItem(at: temporary)
        try decoder.parameters.writePEFTAdapter(to: temporary, alpha: options.alpha, dropout: options.loraDropout, baseModel: baseModel)
        var moments: [SafeTensorsFile.OutputTensor] = []
        for (prefix, tensors) in [("exp_avg", optimizer.firstMoment), ("exp_avg_sq", optimizer.secondMoment)] {
            for (l, layer) in tensors.layers.enumerated() {
                for p in LoRAProjection.allCases {
                    let pair = layer[p.rawValue]
                    moments.append(.init(name: "\(prefix).\(LoRATensors.name(layer: l, projection: p, isA: true))", shape: [pair.rank, pair.inFeatures],
                                         values: UnsafeBufferPointer(start: pair.a.pointer, count: pair.a.count)))
                    moments.append(.init(name: "\(prefix).\(LoRATensors.name(layer: l, projection: p, isA: false))", shape: [pair.outFeatures, pair.rank],
                                         values: UnsafeBufferPointer(start: pair.b.pointer, count: pair.b.count)))
                }
            }
        }
        try SafeTensorsFile.write(moments, to: temporary.appendingPathComponent("optimizer.safetensors"))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let state = State(step: step, options: options, baseModel: baseModel, optimizerStep: optimizer.step)
        try writeAtomically(try encoder.encode(state), to: temporary.appendingPathComponent("trainer_state.json"))
        try? FileManager.default.removeItem(at: checkpointDirectory)
        do {
            try FileManager.default.moveItem(at: temporary, to: checkpointDirectory)
        } catch {
            throw UnmaskError.unwritableFile(path: checkpointDirectory.path, reason: error.localizedDescription)
        }
    }

    /// The options saved in `output/checkpoint`, to build the same run before `resume()`.
    public static func savedOptions(in output: URL) throws -> TrainingOptions {
        try readState(output.appendingPathComponent("checkpoint")).options
    }

    /// Continues from `checkpoint/`: parameters, optimizer moments and step. `options.steps`,
    /// `evalEvery` and `saveEvery` may differ from the saved run's; nothing else may.
    public func resume() throws {
        let state = try Self.readState(checkpointDirectory)
        var comparable = options
        comparable.steps = state.options.steps
        comparable.evalEvery = state.options.evalEvery
        comparable.saveEvery = state.options.saveEvery
        guard comparable == state.options else {
            throw UnmaskError.invalidInput(source: checkpointDirectory.appendingPathComponent("trainer_state.json").path,
                                           reason: "the checkpoint was trained with other hyperparameters; resume without changing them (only --steps, --eval-every and --save-every may change)")
        }
        guard options.steps >= state.step else {
            throw UnmaskError.invalidInput(source: "--steps", reason: "\(options.steps) is before the checkpoint's step \(state.step)")
        }
        try decoder.parameters.load(from: SafeTensorsFile(path: checkpointDirectory.appendingPathComponent("adapter_model.safetensors").path))
        let moments = try SafeTensorsFile(path: checkpointDirectory.appendingPathComponent("optimizer.safetensors").path)
        try optimizer.restore(step: state.optimizerStep,
                              firstMoment: PrefixedTensors(source: moments, prefix: "exp_avg."),
                              secondMoment: PrefixedTensors(source: moments, prefix: "exp_avg_sq."))
        step = state.step
        try truncateLog(after: step)
    }

    static func readState(_ directory: URL) throws -> State {
        let url = directory.appendingPathComponent("trainer_state.json")
        let data = try Checkpoint.read(url, what: "a training checkpoint to resume (written by `unmask train`)")
        do {
            return try JSONDecoder().decode(State.self, from: data)
        } catch {
            throw UnmaskError.malformedJSON(file: url.path, reason: "\(error)")
        }
    }

    // MARK: Log

    private func prepareOutput() throws {
        do {
            try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
            // A file that cannot be created shows as FileHandle's error just below.
            if !FileManager.default.fileExists(atPath: logURL.path) { _ = FileManager.default.createFile(atPath: logURL.path, contents: nil) }
            let handle = try FileHandle(forWritingTo: logURL)
            try handle.seekToEnd()
            log = handle
        } catch {
            throw UnmaskError.unwritableFile(path: logURL.path, reason: error.localizedDescription)
        }
    }

    private func writeLog(_ entry: [String: Any]) throws {
        let line = try JSONSerialization.data(withJSONObject: entry, options: [.sortedKeys]) + Data("\n".utf8)
        log?.write(line)
    }

    /// Drops log lines of steps after `step`: the resumed run writes them again.
    private func truncateLog(after step: Int) throws {
        guard let data = FileManager.default.contents(atPath: logURL.path) else { return }
        let kept = String(decoding: data, as: UTF8.self).split(separator: "\n").filter { line in
            guard let entry = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let s = entry["step"] as? Int else { return false }
            return s <= step
        }
        try writeAtomically(Data((kept.map { $0 + "\n" }.joined()).utf8), to: logURL)
    }
}

/// The tensors of `source` whose names start with `prefix`, with it removed.
struct PrefixedTensors: TensorSource {
    let source: TensorSource
    let prefix: String

    var tensorNames: [String] { source.tensorNames.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) } }
    func info(_ name: String) -> TensorInfo? { source.info(prefix + name) }
    func float32(_ name: String) throws -> WeightTensor { try source.float32(prefix + name) }
}
