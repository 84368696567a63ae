import Dispatch
import Foundation
import Testing
import UnmaskKernels

/// `Parallel`'s loops run every item exactly once however the work is handed out: on the polling
/// pool, with its threads asleep or polling, from inside another loop, and from several threads at once.
@Suite struct ParallelTests {
    /// How often each of `count` items ran when `loop` is given a marking body.
    private func hits(_ count: Int, _ loop: (_ mark: (Int) -> Void) -> Void) -> [Int] {
        let counts = UnsafeMutablePointer<Int>.allocate(capacity: count)
        counts.initialize(repeating: 0, count: count)
        defer { counts.deallocate() }
        loop { counts[$0] += 1 }
        return Array(UnsafeBufferPointer(start: counts, count: count))
    }

    @Test func chunksCoverEveryItemOnceAcrossManyJobs() {
        for round in 0..<400 {
            let count = 1 + round % 37
            let seen = hits(count) { mark in
                Parallel.chunks(count) { _, range in range.forEach(mark) }
            }
            #expect(seen == [Int](repeating: 1, count: count), "round \(round)")
            // Now and then long enough for the pool's threads to stop polling and sleep.
            if round % 50 == 0 { usleep(2000) }
        }
    }

    @Test func forEachWithMoreWorkersThanCoresRunsEachItemOnce() {
        for workers in [2, 3, 5, 8] {
            var owners = [Int](repeating: -1, count: 50)
            let seen = hits(50) { mark in
                owners.withUnsafeMutableBufferPointer { owner in
                    Parallel.forEach(50, workers: workers) { worker, item in
                        owner[item] = worker
                        mark(item)
                    }
                }
            }
            #expect(seen == [Int](repeating: 1, count: 50))
            // Round-robin: item i belongs to worker i mod workers, so a worker can own scratch.
            #expect(owners == (0..<50).map { $0 % workers })
        }
    }

    @Test func nestedLoopsComplete() {
        let seen = hits(8 * 64) { mark in
            Parallel.chunks(8) { _, outer in
                for i in outer {
                    Parallel.chunks(64) { _, inner in inner.forEach { mark(i * 64 + $0) } }
                }
            }
        }
        #expect(seen == [Int](repeating: 1, count: 8 * 64))
    }

    @Test func concurrentCallersEachGetTheirWorkDone() {
        let callers = 4, count = 97
        nonisolated(unsafe) let results = UnsafeMutablePointer<Bool>.allocate(capacity: callers)
        results.initialize(repeating: false, count: callers)
        defer { results.deallocate() }
        DispatchQueue.concurrentPerform(iterations: callers) { caller in
            var ok = true
            for _ in 0..<100 {
                let seen = hits(count) { mark in Parallel.chunks(count) { _, range in range.forEach(mark) } }
                ok = ok && seen == [Int](repeating: 1, count: count)
            }
            results[caller] = ok
        }
        #expect(Array(UnsafeBufferPointer(start: results, count: callers)) == [Bool](repeating: true, count: callers))
    }
}
