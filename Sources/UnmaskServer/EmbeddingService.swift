import Foundation
import Unmask
import UnmaskTokenizers

/// TEI's request semantics on top of Unmask's encoder: validation, prompts, truncation,
/// permits, then the shared batch queue.
final class EmbeddingService: Sendable {
    let encoder: Encoder
    let configuration: ServerConfiguration
    let metrics: ServerMetrics
    let queue: BatchQueue
    let permits: PermitPool
    let maxInputLength: Int
    let modelName: String
    /// The model's sentence-transformers prompts, with `--prompt NAME=TEXT` added over them.
    let prompts: [String: String]
    let defaultPromptName: String?

    /// TEI's per-input character cap before tokenization: max_input_length × 250.
    var maxCharacters: Int { maxInputLength * 250 }

    /// `beforeForward` runs on the batcher thread before each forward pass (tests hold batches with it).
    init(encoder: Encoder, configuration: ServerConfiguration, beforeForward: (@Sendable ([Encoder.PreparedInput]) -> Void)? = nil) throws {
        self.encoder = encoder
        self.configuration = configuration
        maxInputLength = encoder.options.maxLength
        if let wanted = configuration.maxInputLength, wanted != maxInputLength {
            throw UnmaskError.invalidInput(source: "--max-input-length", reason: "\(wanted) differs from the encoder's max length \(maxInputLength); load the encoder with options.maxLength = \(wanted)")
        }
        guard configuration.maxBatchTokens >= maxInputLength else {
            throw UnmaskError.invalidInput(source: "--max-batch-tokens", reason: "\(configuration.maxBatchTokens) must be at least the max input length \(maxInputLength)")
        }
        guard configuration.maxClientBatchSize >= 1, configuration.maxConcurrentRequests >= 1, configuration.payloadLimit >= 1 else {
            throw UnmaskError.invalidInput(source: "options", reason: "--max-client-batch-size, --max-concurrent-requests and --payload-limit must be at least 1")
        }
        let prompts = (encoder.sentenceTransformer?.prompts ?? [:]).merging(configuration.prompts) { _, given in given }
        self.prompts = prompts
        defaultPromptName = configuration.defaultPromptName ?? encoder.sentenceTransformer?.defaultPromptName
        if let name = configuration.defaultPromptName, prompts[name] == nil {
            throw UnmaskError.invalidInput(source: "--default-prompt-name", reason: "no --prompt named '\(name)', and the model has none")
        }
        metrics = ServerMetrics(maxInputLength: maxInputLength)
        queue = BatchQueue(maxBatchTokens: configuration.maxBatchTokens, maxBatchRequests: configuration.maxBatchRequests, metrics: metrics) { rows in
            beforeForward?(rows)
            return encoder.embed(rows)
        }
        permits = PermitPool(configuration.maxConcurrentRequests)
        modelName = configuration.servedModelName ?? ((encoder.checkpoint.path as NSString).lastPathComponent)
    }

    struct Options: Sendable {
        var truncate: Bool
        var direction: TruncationDirection = .right
        var promptName: String?
        var instruction: String?
        var normalize = true
        var dimensions: Int?
    }

    struct Output: Sendable {
        var embeddings: [[Float]]
        var tokens: Int
        var characters: Int
        var tokenization: Duration
        var queue: Duration
        var inference: Duration
    }

    /// The instruction for a request: its own, else its prompt's, else the default prompt's.
    func instruction(promptName: String?, instruction: String?) throws(APIError) -> String {
        if let instruction { return instruction }
        guard let name = promptName ?? defaultPromptName else { return encoder.defaultPrompt }
        if prompts.isEmpty {
            throw APIError.validation("`default-prompt-name` is set to `\(name)` but no prompts were found in the Sentence Transformers configuration")
        }
        guard let text = prompts[name] else {
            let names = prompts.keys.sorted().map { "\"\($0)\"" }.joined(separator: ", ")
            throw APIError.validation("`default-prompt-name` is set to `\(name)` but it was not found in the Sentence Transformers prompts. Available prompts: [\(names)]")
        }
        return text
    }

    /// Tokenizes and checks one input; over-long inputs are truncated (right as llm2vec does, or
    /// left) when `truncate`, else chunked when the server runs with `--long chunk`, else refused
    /// with TEI's message. One row, or a chunked input's windows with their weights.
    func prepare(_ item: InputItem, instruction: String, options: Options, index: Int) throws(APIError) -> [(row: Encoder.PreparedInput, weight: Int)] {
        if !options.truncate, encoder.options.longInputs == .chunk, case .text(let text) = item, !text.isEmpty, text.count <= maxCharacters {
            do {
                if let chunks = try encoder.prepareChunks(EncoderInput(text, instruction: instruction), index: index) { return chunks }
            } catch let error as UnmaskError {
                throw APIError.validation(error.description)
            } catch {
                throw APIError(.Tokenizer, "tokenizer error \(error)")
            }
        }
        return [(try prepareOne(item, instruction: instruction, options: options, index: index), 1)]
    }

    private func prepareOne(_ item: InputItem, instruction: String, options: Options, index: Int) throws(APIError) -> Encoder.PreparedInput {
        let limit = maxInputLength
        do {
            switch item {
            case .ids(let ids):
                guard !ids.isEmpty else { throw APIError.emptyInput }
                if ids.count > limit {
                    guard options.truncate else { throw APIError.tooManyTokens(limit, given: ids.count) }
                    if options.direction == .left { return try encoder.prepare(tokenIds: Array(ids.suffix(limit)), index: index) }
                }
                return try encoder.prepare(tokenIds: ids, index: index)
            case .text(var text):
                guard !text.isEmpty else { throw APIError.emptyInput }
                let characters = text.count
                if characters > maxCharacters {
                    guard options.truncate else { throw APIError.tooManyCharacters(maxCharacters, given: characters) }
                    text = options.direction == .left ? String(text.suffix(maxCharacters)) : String(text.prefix(maxCharacters))
                }
                // The encoder's own preparation: one instruction join, one truncation.
                let row = try encoder.prepare(EncoderInput(text, instruction: instruction), index: index,
                                              truncation: options.direction == .left ? .keepEnd : .keepStart)
                if row.untruncatedLength > limit, !options.truncate { throw APIError.tooManyTokens(limit, given: row.untruncatedLength) }
                return row
            }
        } catch let error as APIError {
            throw error
        } catch let error as UnmaskError {
            throw APIError.validation(error.description)
        } catch {
            throw APIError(.Tokenizer, "tokenizer error \(error)")
        }
    }

    /// Validates, takes one permit per input (429 when short), tokenizes, queues, and finishes
    /// each vector (Matryoshka truncation, then L2 normalization).
    func embed(_ items: [InputItem], options: Options, isConnected: @escaping @Sendable () -> Bool) async throws(APIError) -> Output {
        if let dimensions = options.dimensions {
            guard dimensions > 0 else { throw APIError.validation("`dimensions` should be positive") }
            guard dimensions <= encoder.dimension else {
                throw APIError.validation("`dimensions` should be smaller than the maximum embedding dimension.")
            }
        }
        guard permits.tryAcquire(items.count) else { throw APIError.overloaded }
        defer { permits.release(items.count) }

        metrics.embedCount.increment(by: items.count)
        let instruction = try self.instruction(promptName: options.promptName, instruction: options.instruction)
        let tokenizationStart = ContinuousClock.now
        var rows: [Encoder.PreparedInput] = [], owner: [Int] = [], weight: [Int] = []
        rows.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            for (row, share) in try prepare(item, instruction: instruction, options: options, index: index) {
                metrics.inputLength.record(row.ids.count)
                rows.append(row); owner.append(index); weight.append(share)
            }
        }
        let tokenization = ContinuousClock.now - tokenizationStart

        let results: [RowResult]
        do {
            results = try await queue.embed(rows, isConnected: isConnected)
        } catch is ClientGone {
            throw APIError(.Backend, "client disconnected", metric: "client_gone")
        } catch is CancellationError {
            throw APIError(.Backend, "request cancelled", metric: "cancelled")
        } catch {
            throw APIError(.Backend, "Backend error: \(error)")
        }
        // Chunked inputs: one vector each from their windows'.
        let vectors = encoder.gather(results.map(\.embedding), owners: owner, weights: weight, inputCount: items.count)
        let embeddings = vectors.map { SentenceTransformerHead.finish($0, dimensions: options.dimensions, normalize: options.normalize) }
        let n = Double(max(1, results.count))
        func mean(_ durations: [Duration]) -> Duration { durations.reduce(.zero, +) / n }
        metrics.embedSuccess.increment(by: items.count)
        return Output(
            embeddings: embeddings,
            tokens: rows.reduce(0) { $0 + $1.ids.count },
            characters: items.reduce(0) { $0 + $1.characterCount },
            tokenization: tokenization / n,
            queue: mean(results.map(\.queueTime)),
            inference: mean(results.map(\.inferenceTime))
        )
    }
}

/// Counting semaphore that never waits: TEI's `try_acquire` (one permit per input).
final class PermitPool: @unchecked Sendable {
    private let lock = NSLock()
    private var available: Int
    let capacity: Int

    init(_ capacity: Int) {
        self.capacity = capacity
        available = capacity
    }

    func tryAcquire(_ count: Int = 1) -> Bool {
        lock.locked {
            guard count <= available else { return false }
            available -= count
            return true
        }
    }

    func release(_ count: Int = 1) { lock.locked { available += count } }

    var inUse: Int { lock.locked { capacity - available } }
}
