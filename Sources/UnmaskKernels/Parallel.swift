import Dispatch
import Foundation

/// Splits loops across the machine's cores.
public enum Parallel {
    public static let coreCount = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Calls `body(worker, range)` for contiguous chunks of `0..<count`, one chunk per worker.
    /// Small loops run inline: a thread hop costs more than the work.
    public static func chunks(_ count: Int, minimumPerChunk: Int = 1, _ body: (_ worker: Int, _ range: Range<Int>) -> Void) {
        guard count > 0 else { return }
        let workers = min(coreCount, max(1, count / max(1, minimumPerChunk)))
        if workers == 1 { body(0, 0..<count); return }
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let lo = count * w / workers, hi = count * (w + 1) / workers
            if lo < hi { body(w, lo..<hi) }
        }
    }

    /// Calls `body(worker, item)` for every item, items dealt round-robin to a fixed set of workers
    /// so each worker can own a scratch buffer.
    public static func forEach(_ count: Int, workers requested: Int = coreCount, _ body: (_ worker: Int, _ item: Int) -> Void) {
        guard count > 0 else { return }
        let workers = min(requested, count)
        if workers == 1 { for i in 0..<count { body(0, i) }; return }
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            var i = w
            while i < count { body(w, i); i += workers }
        }
    }
}
