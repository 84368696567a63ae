import Foundation
import UnmaskKernels

/// One training pair for the contrastive objectives: a query, its positive, an optional hard negative.
public struct ContrastiveExample: Sendable {
    public var query: Encoder.PreparedInput
    public var positive: Encoder.PreparedInput
    public var negative: Encoder.PreparedInput?
}

/// LLM2Vec's contrastive training (unsupervised SimCSE and supervised): mean-pooled embeddings,
/// cross-entropy over cosine similarity / temperature, query i against every positive and hard
/// negative of the step (target: its own positive). A sentence-transformers model's Dense modules
/// (EmbeddingGemma's 768→3072→768) sit between pooling and the loss, frozen, and the gradient
/// flows back through them.
///
/// The whole step is one contrastive batch however it is split into micro-batches: embeddings
/// are first computed micro-batch by micro-batch, the loss and its gradient with respect to each
/// embedding are taken over the whole batch, then each micro-batch is run again and back-propagated
/// from its embeddings' gradient (gradient caching). With the same dropout masks in both passes
/// the result equals one batch-wide backward, in the memory of a micro-batch. A step that fits in
/// one micro-batch keeps its tapes and skips the second pass.
public final class ContrastiveObjective: TrainingObjective {
    public let train: [ContrastiveExample]
    public let held: [ContrastiveExample]
    public let options: TrainingOptions
    public let padding: Int32
    /// SimCSE: queries and positives are the same text, told apart only by dropout.
    public let isSimCSE: Bool
    /// The model's Dense modules after pooling, when it has any.
    public let head: SentenceTransformerHead?
    private let sampler: EpochSampler

    public init(examples: [ContrastiveExample], options: TrainingOptions, padding: Int32, isSimCSE: Bool,
                head: SentenceTransformerHead? = nil) throws {
        var shuffled = examples
        var random = SplitMix64(seed: TrainingStream.heldOutSplit.seed(options.seed))
        random.shuffle(&shuffled)
        let heldCount = min(options.evalLimit, Int((Double(examples.count) * options.evalFraction).rounded()))
        held = Array(shuffled.suffix(heldCount))
        train = Array(shuffled.dropLast(heldCount))
        guard train.count >= options.batchSize else {
            throw UnmaskError.invalidInput(source: "--data", reason: "\(train.count) training examples after holding out \(heldCount), fewer than --batch-size \(options.batchSize)")
        }
        self.options = options
        self.padding = padding
        self.isSimCSE = isSimCSE
        self.head = head.flatMap { $0.hasDenseLayers ? $0 : nil }
        sampler = EpochSampler(count: train.count, seed: TrainingStream.dataOrder.seed(options.seed))
    }

    public var summary: String {
        "\(train.count) training \(isSimCSE ? "sentences" : "rows"), \(held.count) held out; batch \(options.batchSize) (micro-batches of \(options.microBatchSize)), temperature \(options.temperature)"
    }

    public func step(_ step: Int, decoder: LoRADecoder, into gradients: LoRATensors) throws -> StepResult {
        let examples = sampler.indices(step: step, size: options.batchSize).map { train[$0] }
        let seed = TrainingStream.dropout.seed(options.seed, step)
        let result = run(examples, decoder: decoder, dropoutSeed: seed, gradients: gradients)
        return StepResult(loss: result.loss, tokens: result.tokens)
    }

    public func evaluate(decoder: LoRADecoder) throws -> [String: Double] {
        guard held.count >= 2 else { return [:] }
        var loss = 0.0, correct = 0.0, batches = 0.0
        // SimCSE needs dropout to tell its two views apart; its masks are fixed so evaluations compare.
        let seed: UInt64? = isSimCSE ? TrainingStream.evaluationDropout.seed(options.seed) : nil
        for start in stride(from: 0, to: held.count, by: options.batchSize) {
            let chunk = Array(held[start..<min(held.count, start + options.batchSize)])
            guard chunk.count >= 2 else { continue }
            let result = run(chunk, decoder: decoder, dropoutSeed: seed, gradients: nil)
            loss += result.loss
            correct += result.accuracy
            batches += 1
        }
        return ["eval_loss": loss / batches, "eval_accuracy": correct / batches]
    }

    /// Loss (and, with `gradients`, the LoRA gradients) of one contrastive batch.
    func run(_ examples: [ContrastiveExample], decoder: LoRADecoder, dropoutSeed: UInt64?, gradients: LoRATensors?) -> (loss: Double, accuracy: Double, tokens: Int) {
        let h = decoder.model.config.hiddenSize
        let queries = examples.map(\.query)
        let documents = examples.map(\.positive) + examples.compactMap(\.negative)
        let n = queries.count, m = documents.count
        let mode: AttentionMode = options.bidirectional ? .bidirectional : .causal
        let querySide = Side(inputs: queries, microBatch: options.microBatchSize, padding: padding, seed: dropoutSeed.map { TrainingStream.querySide.seed($0) })
        let documentSide = Side(inputs: documents, microBatch: options.microBatchSize, padding: padding, seed: dropoutSeed.map { TrainingStream.documentSide.seed($0) })
        let keepTapes = gradients != nil && querySide.chunks.count == 1 && documentSide.chunks.count == 1
        let q = FloatBuffer(count: n * h), d = FloatBuffer(count: m * h)
        let qTapes = querySide.embed(decoder, mode: mode, into: q, keepTapes: keepTapes)
        let dTapes = documentSide.embed(decoder, mode: mode, into: d, keepTapes: keepTapes)
        // Through the Dense modules, when the model has them: the loss sees their outputs.
        let qOutputs = head?.denseForward(q, count: n) ?? [q], dOutputs = head?.denseForward(d, count: m) ?? [d]
        let qEmbeddings = qOutputs.last!, dEmbeddings = dOutputs.last!
        let dim = qEmbeddings.count / n
        let dqOut = FloatBuffer(count: n * dim), ddOut = FloatBuffer(count: m * dim)
        let loss = Backward.contrastive(queries: qEmbeddings.pointer, documents: dEmbeddings.pointer, count: n, candidates: m, dim: dim,
                                        scale: 1 / options.temperature, dQueries: dqOut.pointer, dDocuments: ddOut.pointer)
        if let gradients {
            let dq = head?.denseBackward(dqOut, outputs: qOutputs, count: n) ?? dqOut
            let dd = head?.denseBackward(ddOut, outputs: dOutputs, count: m) ?? ddOut
            querySide.backward(decoder, mode: mode, dEmbeddings: dq, tapes: qTapes, into: gradients)
            documentSide.backward(decoder, mode: mode, dEmbeddings: dd, tapes: dTapes, into: gradients)
        }
        let accuracy = Self.topOneAccuracy(queries: qEmbeddings, documents: dEmbeddings, n: n, m: m, dim: dim)
        let tokens = (queries + documents).reduce(0) { $0 + $1.ids.count }
        return (Double(loss), accuracy, tokens)
    }

    /// Fraction of queries whose most similar candidate is their own positive.
    static func topOneAccuracy(queries q: FloatBuffer, documents d: FloatBuffer, n: Int, m: Int, dim: Int) -> Double {
        var correct = 0
        for i in 0..<n {
            var best = (score: -Float.infinity, index: -1)
            for j in 0..<m {
                var dot: Float = 0, nd: Float = 0
                for k in 0..<dim {
                    dot += q[i * dim + k] * d[j * dim + k]
                    nd += d[j * dim + k] * d[j * dim + k]
                }
                let score = dot / max(nd.squareRoot(), 1e-12)
                if score > best.score { best = (score, j) }
            }
            if best.index == i { correct += 1 }
        }
        return Double(correct) / Double(n)
    }

    /// One side of the batch (queries or documents), cut into micro-batches of similar lengths.
    struct Side {
        /// Each micro-batch: its examples' positions in the side, the padded batch, pooling spans and dropout seed.
        struct Chunk { let members: [Int]; let batch: TokenBatch; let pooling: [Range<Int>]; let seed: UInt64? }
        let chunks: [Chunk]

        init(inputs: [Encoder.PreparedInput], microBatch: Int, padding: Int32, seed: UInt64?) {
            // Sorting by length before cutting keeps padding (wasted work) small; order inside the
            // loss is restored through `members`.
            let order = inputs.indices.sorted { inputs[$0].ids.count < inputs[$1].ids.count }
            chunks = stride(from: 0, to: order.count, by: microBatch).enumerated().map { c, start in
                let members = Array(order[start..<min(order.count, start + microBatch)])
                let batch = TokenBatch(leftPadding: members.map { inputs[$0].ids }, padding: padding)
                let pooling = zip(members, batch.valid).map { member, valid in
                    let pooled = inputs[member].pooledCount
                    return pooled > 0 ? (valid.upperBound - pooled)..<valid.upperBound : valid
                }
                return Chunk(members: members, batch: batch, pooling: pooling, seed: seed.map { TrainingStream.microBatch.seed($0, c) })
            }
        }

        func embed(_ decoder: LoRADecoder, mode: AttentionMode, into embeddings: FloatBuffer, keepTapes: Bool) -> [TrainingTape] {
            let h = decoder.model.config.hiddenSize
            var tapes: [TrainingTape] = []
            for chunk in chunks {
                let (tape, pooled) = decoder.meanPooled(chunk.batch, pooling: chunk.pooling, mode: mode, dropoutSeed: chunk.seed)
                for (r, member) in chunk.members.enumerated() {
                    (embeddings.pointer + member * h).update(from: pooled.pointer + r * h, count: h)
                }
                if keepTapes { tapes.append(tape) }
            }
            return tapes
        }

        func backward(_ decoder: LoRADecoder, mode: AttentionMode, dEmbeddings: FloatBuffer, tapes: [TrainingTape], into gradients: LoRATensors) {
            let h = decoder.model.config.hiddenSize
            for (c, chunk) in chunks.enumerated() {
                let tape = c < tapes.count ? tapes[c] : decoder.forward(chunk.batch, mode: mode, dropoutSeed: chunk.seed)
                let dPooled = FloatBuffer(count: chunk.members.count * h)
                for (r, member) in chunk.members.enumerated() {
                    (dPooled.pointer + r * h).update(from: dEmbeddings.pointer + member * h, count: h)
                }
                decoder.backwardMeanPooled(tape, pooling: chunk.pooling, dPooled: dPooled.pointer, into: gradients)
            }
        }
    }
}
