import Foundation
import UnmaskKernels

/// Everything a run reads, by path: what `unmask train` passes on.
public struct TrainingInputs: Sendable {
    /// A model folder, .gguf file or installed model name.
    public var model: String
    /// PEFT adapters merged into the base before training (e.g. the MNTP adapter under SimCSE).
    public var mergedAdapters: [String] = []
    /// A PEFT adapter whose LoRA training continues (its rank and alpha replace the options').
    public var initialAdapter: String?
    /// MNTP and SimCSE: .txt (one text a line) or JSONL with "text"; supervised: JSONL rows.
    public var data: String
    public var output: String
    /// How the frozen base holds its matrices (`.auto`: as stored, adapters unmerged).
    public var precision: WeightPrecision

    public init(model: String, mergedAdapters: [String] = [], initialAdapter: String? = nil, data: String, output: String,
                precision: WeightPrecision = .auto) {
        self.precision = precision
        self.model = model
        self.mergedAdapters = mergedAdapters
        self.initialAdapter = initialAdapter
        self.data = data
        self.output = output
    }
}

extension Trainer {
    /// Loads the base (adapters merged), the data for `options.recipe`, and a fresh LoRA (or the
    /// initial adapter's), and returns a trainer writing into `inputs.output`; with `resume`, the
    /// run continues from the output's checkpoint with its saved options.
    public static func make(_ inputs: TrainingInputs, options requested: TrainingOptions, resume: Bool = false,
                            log: (String) -> Void = { _ in }) throws -> Trainer {
        var options = requested
        if let path = inputs.initialAdapter {
            let adapter = try LoRAAdapter(directory: path)
            guard Set(adapter.targetModules) == Set(LoRAProjection.allCases.map { $0.moduleName }) else {
                throw UnmaskError.invalidAdapter(path: path, reason: "target_modules \(adapter.targetModules): training continues adapters on q, k, v, o, gate, up and down_proj")
            }
            options.rank = adapter.rank
            options.alpha = Float(adapter.alpha)
        }
        try options.validate()
        let encoder = try Encoder(modelPath: inputs.model, adapterPaths: inputs.mergedAdapters, lmHead: options.recipe == .mntp,
                                  precision: inputs.precision) {
            $0.maxLength = options.maxLength
            $0.pooling = .mean
            $0.attention = options.bidirectional ? .bidirectional : .causal
        }
        log("model: \(inputs.model) (\(encoder.model.config.modelType), \(encoder.model.config.layerCount) layers)" +
            (inputs.mergedAdapters.isEmpty ? "" : ", merged: \(inputs.mergedAdapters.joined(separator: ", "))"))
        let decoder = LoRADecoder(model: encoder.model, rank: options.rank, alpha: options.alpha, seed: options.seed)
        if let path = inputs.initialAdapter {
            try decoder.parameters.load(from: SafeTensorsFile(path: URL(fileURLWithPath: path).appendingPathComponent("adapter_model.safetensors").path))
            log("continuing adapter \(path) (rank \(options.rank), alpha \(options.alpha))")
        }
        let objective: TrainingObjective
        switch options.recipe {
        case .mntp:
            let masking = try MNTPMasking(tokenizer: encoder.tokenizer, maskToken: options.maskToken,
                                          probability: Double(options.maskProbability), allMask: options.allMask)
            let corpus = try MNTPCorpus.read(path: inputs.data, tokenizer: encoder.tokenizer, maxLength: options.maxLength)
            objective = try MNTPObjective(data: MNTPData(corpus: corpus, masking: masking, validationFraction: options.evalFraction, seed: options.seed),
                                          options: options)
        case .simcse:
            let texts = try TextInputs.read(path: inputs.data).map(\.text).filter { !$0.allSatisfy(\.isWhitespace) }
            let examples = try texts.enumerated().map { i, text -> ContrastiveExample in
                let prepared = try encoder.prepare(EncoderInput(text), index: i)
                return ContrastiveExample(query: prepared, positive: prepared, negative: nil)
            }
            objective = try ContrastiveObjective(examples: examples, options: options, padding: encoder.paddingTokenId, isSimCSE: true,
                                                 head: encoder.head)
        case .supervised:
            let rows = try SupervisedRow.read(path: inputs.data)
            // llm2vec: "<instruction>; <query>" with only the query pooled; documents bare. A
            // sentence-transformers model takes a row's instruction as its query prompt, else its
            // own "query" prompt, and its "document" prompt for documents, as it was trained.
            let prompts = encoder.sentenceTransformer?.prompts
            let documentPrompt = prompts?["document"] ?? ""
            let examples = try rows.enumerated().map { i, row -> ContrastiveExample in
                let instruction = prompts != nil ? row.instruction ?? prompts?["query"] ?? ""
                                                 : row.instruction.map { PythonString.strip($0) + ";" } ?? ""
                return ContrastiveExample(query: try encoder.prepare(EncoderInput(row.query, instruction: instruction), index: i),
                                          positive: try encoder.prepare(EncoderInput(row.positive, instruction: documentPrompt), index: i),
                                          negative: try row.negative.map { try encoder.prepare(EncoderInput($0, instruction: documentPrompt), index: i) })
            }
            objective = try ContrastiveObjective(examples: examples, options: options, padding: encoder.paddingTokenId, isSimCSE: false,
                                                 head: encoder.head)
        }
        log("data: \(inputs.data): \(objective.summary)")
        let output = URL(fileURLWithPath: inputs.output)
        // The resolved path, not an installed model's short name: PEFT treats base_model_name_or_path
        // as a folder or a Hub id and would try to look a bare name up online.
        let trainer = Trainer(decoder: decoder, objective: objective, options: options, output: output, baseModel: encoder.checkpoint.path)
        if resume {
            try trainer.resume()
            log("resuming at step \(trainer.nextStep) of \(options.steps)")
        }
        return trainer
    }
}

/// A supervised training row: JSONL `{"query", "positive", "negative"?, "instruction"?}`.
public struct SupervisedRow: Sendable, Equatable {
    public var query: String
    public var positive: String
    public var negative: String?
    public var instruction: String?

    public static func read(path: String) throws -> [SupervisedRow] {
        var rows: [SupervisedRow] = []
        for (n, line) in try TextInputs.lines(path: path).lines.enumerated() {
            guard !line.allSatisfy(\.isWhitespace) else { continue }
            let source = "\(path):\(n + 1)"
            guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
                throw UnmaskError.malformedJSON(file: source, reason: "expected one JSON object a line")
            }
            func text(_ key: String, required: Bool) throws -> String? {
                guard let value = object[key], !(value is NSNull) else {
                    if required { throw UnmaskError.invalidField(file: source, field: key, expected: "a non-empty string") }
                    return nil
                }
                guard let string = value as? String, !string.allSatisfy(\.isWhitespace) else {
                    throw UnmaskError.invalidField(file: source, field: key, expected: "a non-empty string")
                }
                return string
            }
            rows.append(SupervisedRow(query: try text("query", required: true)!, positive: try text("positive", required: true)!,
                                      negative: try text("negative", required: false), instruction: try text("instruction", required: false)))
        }
        guard !rows.isEmpty else { throw UnmaskError.invalidInput(source: path, reason: "no rows") }
        return rows
    }
}
