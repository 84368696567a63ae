import Foundation
import UnmaskKernels

/// LLM2Vec's first stage: masked next-token prediction over packed blocks of text, the step's
/// batch accumulated over micro-batches (each micro-batch's mean loss weighted equally, as the
/// Hugging Face Trainer divides by the accumulation steps).
public final class MNTPObjective: TrainingObjective {
    public let data: MNTPData
    public let options: TrainingOptions
    private let mode: AttentionMode

    public init(data: MNTPData, options: TrainingOptions) throws {
        guard !data.trainingBlocks.isEmpty else {
            throw UnmaskError.invalidInput(source: "--data", reason: "no training block of \(data.corpus.blockLength) tokens: give more text or a smaller --max-length")
        }
        self.data = data
        self.options = options
        mode = options.bidirectional ? .bidirectional : .causal
    }

    public var summary: String {
        "\(data.trainingBlocks.count) training blocks of \(data.corpus.blockLength) tokens, \(data.validationBlocks.count) held out; batch \(options.batchSize) (micro-batches of \(options.microBatchSize)); \(Int(data.masking.probability * 100))% masked"
    }

    public func step(_ step: Int, decoder: LoRADecoder, into gradients: LoRATensors) throws -> StepResult {
        let batch = data.batch(step: step, batchSize: options.batchSize)
        let micro = options.microBatchSize
        let parts = stride(from: 0, to: batch.tokens.batch, by: micro).map { $0..<min(batch.tokens.batch, $0 + micro) }
        var loss = 0.0
        for (index, rows) in parts.enumerated() {
            let (tokens, labels) = Self.rows(rows, of: batch)
            loss += Double(decoder.mntp(tokens, labels: labels, mode: mode, dropoutSeed: TrainingStream.dropout.seed(options.seed, step * parts.count + index),
                                        gradientDivisor: parts.count, into: gradients))
        }
        return StepResult(loss: loss / Double(parts.count), tokens: batch.tokens.ids.count)
    }

    /// Mean loss and accuracy over every held-out target (run_mntp's eval_loss and accuracy), no dropout.
    public func evaluate(decoder: LoRADecoder) throws -> [String: Double] {
        let batches = data.validationBatches(batchSize: options.microBatchSize)
        var lossSum = 0.0, accuracy = MNTPAccuracy()
        var blocks = 0
        for batch in batches where blocks < options.evalLimit {
            blocks += batch.tokens.batch
            let result = decoder.mntpEvaluate(batch.tokens, labels: batch.labels, mode: mode)
            lossSum += result.lossSum
            accuracy.add(predictions: result.predictions, targets: result.targets)
        }
        guard accuracy.total > 0 else { return [:] }
        return ["eval_loss": lossSum / Double(accuracy.total), "eval_accuracy": accuracy.value]
    }

    /// Rows `rows` of a batch as a batch of their own, with their labels.
    static func rows(_ rows: Range<Int>, of batch: MNTPBatch) -> (TokenBatch, [Int32]) {
        let length = batch.tokens.length
        let span = rows.lowerBound * length..<rows.upperBound * length
        let tokens = TokenBatch(ids: Array(batch.tokens.ids[span]), batch: rows.count, length: length, valid: Array(batch.tokens.valid[rows]))
        return (tokens, Array(batch.labels[span]))
    }
}
