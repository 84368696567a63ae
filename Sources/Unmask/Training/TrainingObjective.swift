import Foundation
import UnmaskKernels

/// What one optimizer step of an objective produced.
public struct StepResult: Sendable {
    /// The step's loss (mean over its examples, as the reference reports it).
    public var loss: Double
    /// Non-padding tokens the step's forward passes read.
    public var tokens: Int
}

/// A training objective: the data, how a step's batch is built from (seed, step), and the loss.
/// Batches are pure functions of the step number, so a resumed run sees exactly the batches the
/// interrupted one would have.
public protocol TrainingObjective: AnyObject {
    /// Adds the gradient of step `step`'s loss into `gradients` (accumulated over micro-batches).
    func step(_ step: Int, decoder: LoRADecoder, into gradients: LoRATensors) throws -> StepResult
    /// Metrics on the held-out split (`eval_loss`, …); empty when nothing is held out.
    func evaluate(decoder: LoRADecoder) throws -> [String: Double]
    /// One line describing the data, for the log.
    var summary: String { get }
}

/// A per-epoch permutation of `count` examples and the slice a step takes: the order is drawn
/// from (seed, epoch) alone, so any step's examples can be recomputed without replaying the run.
struct EpochSampler {
    let count: Int
    let seed: UInt64

    /// Example indices of `step`, `size` of them, continuing into the next epoch's order at the end of one.
    func indices(step: Int, size: Int) -> [Int] {
        var result: [Int] = []
        result.reserveCapacity(size)
        var position = step * size
        var cached: (epoch: Int, order: [Int])?
        while result.count < size {
            let epoch = position / count
            if cached?.epoch != epoch { cached = (epoch, order(epoch: epoch)) }
            result.append(cached!.order[position % count])
            position += 1
        }
        return result
    }

    func order(epoch: Int) -> [Int] {
        var random = SplitMix64(seed: SplitMix64.derive(seed, UInt64(epoch)))
        var order = Array(0..<count)
        random.shuffle(&order)
        return order
    }
}

/// The independent random streams of a run, each derived from (seed, stream, index).
enum TrainingStream: UInt64 {
    case heldOutSplit = 1, dataOrder, dropout, evaluationDropout, querySide, documentSide, microBatch

    func seed(_ base: UInt64, _ index: Int = 0) -> UInt64 { SplitMix64.derive(base, rawValue, UInt64(index)) }
}
