import Foundation
import UnmaskKernels

/// The training losses on top of the decoder's forward and backward.
extension LoRADecoder {
    /// The rows of `batch`'s output that predict a label and the labels: `labels[b·length + i]` is the
    /// target of token i (−100: none), predicted from position i−1 of the same row.
    public static func mntpTargets(_ batch: TokenBatch, labels: [Int32]) -> [MNTPTarget] {
        precondition(labels.count == batch.ids.count)
        var targets: [MNTPTarget] = []
        for b in 0..<batch.batch {
            for i in 1..<max(1, batch.length) where labels[b * batch.length + i] != -100 {
                targets.append(MNTPTarget(outputRow: b * batch.length + i - 1, label: labels[b * batch.length + i]))
            }
        }
        return targets
    }

    /// The LM head's logits at the target rows only (MNTP needs no others) [targets, vocabulary],
    /// and the gathered hidden states they came from.
    private func targetLogits(_ tape: TrainingTape, targets: [MNTPTarget]) -> (selected: FloatBuffer, logits: FloatBuffer, vocabulary: Int) {
        guard let lmHead = model.lmHead else { preconditionFailure("MNTP needs a model loaded with lmHead: true") }
        let h = model.config.hiddenSize, vocabulary = lmHead.rows
        let selected = FloatBuffer(count: targets.count * h)
        for (j, t) in targets.enumerated() { (selected.pointer + j * h).update(from: tape.output.pointer + t.outputRow * h, count: h) }
        let logits = FloatBuffer(count: targets.count * vocabulary)
        lmHead.forward(selected.pointer, rows: targets.count, bias: nil, out: logits.pointer)
        return (selected, logits, vocabulary)
    }

    /// Masked next-token prediction (llm2vec's MNTP, as `LlamaBiForMNTP` with labels computes it):
    /// mean cross-entropy over the targets of `labels` (see `mntpTargets`), the LM head applied
    /// only at their rows. Adds the LoRA gradients of loss / `gradientDivisor` into `gradients`
    /// (the divisor averages micro-batches of an accumulated step) and returns the loss.
    @discardableResult
    public func mntp(_ batch: TokenBatch, labels: [Int32], mode: AttentionMode = .bidirectional,
                     dropoutSeed: UInt64? = nil, gradientDivisor: Int = 1, into gradients: LoRATensors) -> Float {
        let h = model.config.hiddenSize
        let targets = Self.mntpTargets(batch, labels: labels)
        guard !targets.isEmpty else { return 0 }
        let tape = forward(batch, mode: mode, dropoutSeed: dropoutSeed)
        let (selected, logits, vocabulary) = targetLogits(tape, targets: targets)
        let loss = targets.map(\.label).withUnsafeBufferPointer { t in
            Backward.crossEntropy(logits: logits.pointer, rows: targets.count, vocabulary: vocabulary, targets: t.baseAddress!,
                                  normalizer: targets.count * gradientDivisor, dLogits: logits.pointer)
        }
        model.lmHead!.backwardInput(logits.pointer, rows: targets.count, dInput: selected.pointer)
        let dOutput = FloatBuffer(count: batch.ids.count * h)
        for (j, t) in targets.enumerated() { (dOutput.pointer + t.outputRow * h).update(from: selected.pointer + j * h, count: h) }
        backward(tape, dOutput: dOutput.pointer, into: gradients)
        return loss * Float(gradientDivisor)
    }

    /// MNTP without gradients: the summed cross-entropy over the targets and the argmax prediction at each.
    public func mntpEvaluate(_ batch: TokenBatch, labels: [Int32], mode: AttentionMode = .bidirectional)
        -> (lossSum: Double, targets: [MNTPTarget], predictions: [Int32]) {
        let targets = Self.mntpTargets(batch, labels: labels)
        guard !targets.isEmpty else { return (0, [], []) }
        let tape = forward(batch, mode: mode)
        let (_, logits, vocabulary) = targetLogits(tape, targets: targets)
        let predictions = (0..<targets.count).map { j -> Int32 in
            let row = logits.pointer + j * vocabulary
            var best = 0
            for v in 1..<vocabulary where row[v] > row[best] { best = v }
            return Int32(best)
        }
        let loss = targets.map(\.label).withUnsafeBufferPointer { t in
            Backward.crossEntropy(logits: logits.pointer, rows: targets.count, vocabulary: vocabulary, targets: t.baseAddress!, dLogits: logits.pointer)
        }
        return (Double(loss) * Double(targets.count), targets, predictions)
    }

    /// Mean-pooled model outputs [batch, hidden] over `pooling[b]` (positions of row b; llm2vec's
    /// embed mask), with the tape for `backwardMeanPooled`.
    public func meanPooled(_ batch: TokenBatch, pooling: [Range<Int>], mode: AttentionMode = .bidirectional,
                           dropoutSeed: UInt64? = nil) -> (tape: TrainingTape, pooled: FloatBuffer) {
        let h = model.config.hiddenSize
        let tape = forward(batch, mode: mode, dropoutSeed: dropoutSeed)
        let pooled = FloatBuffer(count: batch.batch * h)
        Backward.meanPoolForward(hidden: tape.output.pointer, batch: batch.batch, length: batch.length, dim: h, spans: pooling, pooled: pooled.pointer)
        return (tape, pooled)
    }

    /// Adds the LoRA gradients of a loss whose gradient with respect to `meanPooled`'s output is `dPooled`.
    public func backwardMeanPooled(_ tape: TrainingTape, pooling: [Range<Int>], dPooled: UnsafePointer<Float>, into gradients: LoRATensors) {
        let h = model.config.hiddenSize, batch = tape.batch
        let dHidden = FloatBuffer(count: batch.ids.count * h)
        Backward.meanPool(dPooled: dPooled, batch: batch.batch, length: batch.length, dim: h, spans: pooling, dHidden: dHidden.pointer)
        backward(tape, dOutput: dHidden.pointer, into: gradients)
    }

    /// LLM2Vec's contrastive loss over mean-pooled embeddings (`pooling` spans, by default every
    /// non-padding token): cross-entropy of scale·cos(query i, document j) with target j = i;
    /// documents beyond the query count are hard negatives. Returns the loss and adds the LoRA
    /// gradients into `gradients`. The two sides draw independent dropout masks from `dropoutSeed`.
    @discardableResult
    public func contrastive(queries: TokenBatch, documents: TokenBatch, queryPooling: [Range<Int>]? = nil, documentPooling: [Range<Int>]? = nil,
                            scale: Float = 20, mode: AttentionMode = .bidirectional, dropoutSeed: UInt64? = nil,
                            into gradients: LoRATensors) -> Float {
        let h = model.config.hiddenSize
        let n = queries.batch, m = documents.batch
        let qSpans = queryPooling ?? queries.valid, dSpans = documentPooling ?? documents.valid
        let (qTape, qPooled) = meanPooled(queries, pooling: qSpans, mode: mode, dropoutSeed: dropoutSeed)
        let (dTape, dPooled) = meanPooled(documents, pooling: dSpans, mode: mode, dropoutSeed: dropoutSeed.map { ~$0 })
        let dq = FloatBuffer(count: n * h), dd = FloatBuffer(count: m * h)
        let loss = Backward.contrastive(queries: qPooled.pointer, documents: dPooled.pointer, count: n, candidates: m, dim: h, scale: scale,
                                        dQueries: dq.pointer, dDocuments: dd.pointer)
        backwardMeanPooled(qTape, pooling: qSpans, dPooled: dq.pointer, into: gradients)
        backwardMeanPooled(dTape, pooling: dSpans, dPooled: dd.pointer, into: gradients)
        return loss
    }
}
