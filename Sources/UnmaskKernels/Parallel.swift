import Dispatch
import Foundation
import UnmaskCKernels

/// Splits loops across the machine's cores.
public enum Parallel {
    public static let coreCount = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Calls `body(worker, range)` for contiguous chunks of `0..<count`, one chunk per worker.
    /// Small loops run inline: a thread hop costs more than the work.
    public static func chunks(_ count: Int, minimumPerChunk: Int = 1, _ body: (_ worker: Int, _ range: Range<Int>) -> Void) {
        guard count > 0 else { return }
        let workers = min(coreCount, max(1, count / max(1, minimumPerChunk)))
        if workers == 1 { body(0, 0..<count); return }
        run(workers) { w in
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
        run(workers) { w in
            var i = w
            while i < count { body(w, i); i += workers }
        }
    }

    /// `body(w)` for w in 0..<workers, on the polling pool (`unmask_pool_run`), whose threads see
    /// a new job at once, where libdispatch's have to be woken (BENCHMARKS.md: one-token SmolLM2
    /// 94 → 169 tokens/s). When the pool is taken (another thread's loop, or a loop inside a
    /// loop) the work goes to libdispatch.
    private static func run(_ workers: Int, _ body: (Int) -> Void) {
        if usePool {
            let ran = withoutActuallyEscaping(body) { body in
                withUnsafePointer(to: body) { pointer in
                    unmask_pool_run(Int32(workers), { context, worker in
                        context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(Int(worker))
                    }, UnsafeMutableRawPointer(mutating: pointer))
                }
            }
            if ran != 0 { return }
        }
        DispatchQueue.concurrentPerform(iterations: workers, execute: body)
    }

    /// `UNMASK_POOL=off` sends every parallel loop to libdispatch (to compare the two).
    private static let usePool = ProcessInfo.processInfo.environment["UNMASK_POOL"] != "off"
}
