import Foundation
import Unmask
import UnmaskKernels

/// Training step speed at the LLM2Vec recipes' shapes (`unmask-bench --train`), the rows
/// BENCHMARKS.md sets beside scripts/bench_training_pytorch.py's: LoRA r=16 on every projection,
/// AdamW, random token ids.
enum TrainingBench {
    static func rows(model: DecoderModel, arguments: Arguments) -> [(String, String)] {
        let batch = arguments.int("--train-batch", 8), length = arguments.int("--train-length", 128)
        let simcseBatch = arguments.int("--simcse-batch", 32), simcseLength = arguments.int("--simcse-length", 64)
        let steps = arguments.int("--train-steps", 3)
        let vocabulary = model.config.vocabularySize
        var random = SplitMix64(seed: 7)
        func ids(_ count: Int) -> [Int32] { (0..<count).map { _ in Int32(random.next() % UInt64(vocabulary)) } }

        let decoder = LoRADecoder(model: model, rank: 16, alpha: 32, seed: 1)
        decoder.loraDropout = 0.05
        let optimizer = AdamW(like: decoder.parameters)
        let gradients = LoRATensors(like: decoder.parameters)
        var rows: [(String, String)] = []

        // MNTP: 20% of positions are targets, as the recipe masks them.
        let tokens = TokenBatch(ids: ids(batch * length), batch: batch, length: length, valid: Array(repeating: 0..<length, count: batch))
        let labels = tokens.ids.enumerated().map { i, id in random.next() % 5 == 0 && i % length > 0 ? id : -100 }
        let mntp = time(steps) { step in
            gradients.zero()
            decoder.mntp(tokens, labels: labels, dropoutSeed: UInt64(step), into: gradients)
            optimizer.update(decoder.parameters, gradients: gradients, lr: 5e-5)
        }
        rows.append(("MNTP step \(batch)×\(length), mean of \(steps)", String(format: "%.2f s (%.3f steps/s)", mntp, 1 / mntp)))
        rows.append(("MNTP tokens/s", String(format: "%.0f", Double(batch * length) / mntp)))

        // SimCSE: each sentence twice (two dropout masks), in-batch negatives, one backward.
        decoder.attentionDropout = 0.3
        let sentences = TokenBatch(ids: ids(simcseBatch * simcseLength), batch: simcseBatch, length: simcseLength,
                                   valid: Array(repeating: 0..<simcseLength, count: simcseBatch))
        let simcse = time(steps) { step in
            gradients.zero()
            decoder.contrastive(queries: sentences, documents: sentences, dropoutSeed: UInt64(step), into: gradients)
            optimizer.update(decoder.parameters, gradients: gradients, lr: 3e-5)
        }
        rows.append(("SimCSE step \(simcseBatch) sentences × \(simcseLength) tokens, two passes, mean of \(steps)", String(format: "%.2f s (%.3f steps/s)", simcse, 1 / simcse)))
        rows.append(("SimCSE tokens/s (both passes counted)", String(format: "%.0f", Double(2 * simcseBatch * simcseLength) / simcse)))
        rows.append(("peak RSS after training steps", String(format: "%.0f MB", Double(Bench.peakResidentBytes()) / 1e6)))
        return rows
    }

    /// Mean seconds per call over `steps` calls after one warm-up call.
    static func time(_ steps: Int, _ body: (Int) -> Void) -> Double {
        body(0)
        let start = DispatchTime.now().uptimeNanoseconds
        for step in 1...steps { body(step) }
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 / Double(steps)
    }
}
