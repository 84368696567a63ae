import Foundation
import Testing
import Unmask
@testable import UnmaskServer
import UnmaskTestSupport

/// Dynamic batching: FIFO packing within the budgets, results independent of batch company,
/// and rows of departed clients dropped before compute.
@Suite struct BatchingTests {
    let encoder = ServerFixtures.encoder

    func rows(_ lengths: [Int]) -> [Encoder.PreparedInput] {
        lengths.map { try! encoder.prepare(tokenIds: Array(repeating: 5, count: $0)) }
    }

    /// A queue whose first forward is held so later requests pile up behind it.
    final class Recorder: @unchecked Sendable {
        let lock = NSLock()
        var batches: [[Int]] = []
        let gate = Gate()
        func record(_ rows: [Encoder.PreparedInput]) {
            let first = lock.withLock { batches.append(rows.map(\.ids.count)); return batches.count == 1 }
            if first { gate.wait() }
        }
    }

    @Test func packsFIFOWithinTokenAndRowBudgets() async throws {
        let recorder = Recorder()
        let queue = BatchQueue(maxBatchTokens: 40, maxBatchRequests: 3, splitByLength: false, metrics: nil) { rows in
            recorder.record(rows)
            return rows.map { [Float($0.ids.count)] }
        }
        queue.start()
        defer { queue.stop(drain: false) }
        let blocker = Task { try await queue.embed(rows([1])) }
        #expect(try await recorder.gate.waitForArrivals(1))
        // Queued while the first forward runs: 10,10,10 | 10 | 5,20 (20×2 = 40) | 30.
        var tasks: [Task<[RowResult], Error>] = []
        var queued = 0
        for lengths in [[10], [10, 10], [10], [5], [20], [30]] {
            let batch = rows(lengths)
            tasks.append(Task { try await queue.embed(batch) })
            queued += lengths.count
            let expected = queued
            #expect(try await eventually { queue.queuedRows == expected })
        }
        recorder.gate.release()
        _ = try await blocker.value
        for (task, lengths) in zip(tasks, [[10], [10, 10], [10], [5], [20], [30]]) {
            #expect(try await task.value.map { Int($0.embedding[0]) } == lengths)
        }
        #expect(recorder.batches == [[1], [10, 10, 10], [10, 5], [20], [30]])
    }

    @Test func batchesSplitIntoForwardPassesOfSimilarLength() {
        #expect(BatchQueue.lengthGroups([10, 10, 10]) == [[0, 1, 2]])
        #expect(BatchQueue.lengthGroups([400, 5, 6, 380, 5]) == [[1, 4, 2], [3, 0]])
        #expect(BatchQueue.lengthGroups([1]) == [[0]])
        #expect(BatchQueue.lengthGroups([]) == [])
        // Every row lands in exactly one group.
        let lengths = (0..<100).map { ($0 * 37) % 300 + 1 }
        #expect(BatchQueue.lengthGroups(lengths).flatMap { $0 }.sorted() == Array(0..<100))
    }

    @Test func departedClientsAndCancelledTasksAreDroppedBeforeCompute() async throws {
        let recorder = Recorder()
        let queue = BatchQueue(maxBatchTokens: 1000, maxBatchRequests: nil, metrics: nil) { rows in
            recorder.record(rows)
            return rows.map { [Float($0.ids.count)] }
        }
        queue.start()
        defer { queue.stop(drain: false) }
        let blocker = Task { try await queue.embed(rows([1])) }
        #expect(try await recorder.gate.waitForArrivals(1))
        let gone = Task { try await queue.embed(rows([7]), isConnected: { false }) }
        let cancelled = Task { try await queue.embed(rows([8])) }
        let kept = Task { try await queue.embed(rows([9])) }
        #expect(try await eventually { queue.queuedRows == 3 })
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        recorder.gate.release()
        _ = try await blocker.value
        await #expect(throws: ClientGone.self) { try await gone.value }
        #expect(try await kept.value.map { Int($0.embedding[0]) } == [9])
        #expect(recorder.batches == [[1], [9]])
    }

    @Test func concurrentSinglesEqualOneBatchAndTheEncoder() async throws {
        let texts = ServerFixtures.texts + (0..<11).map { "request number \($0) " + String(repeating: "word ", count: $0 * 3) }
        let want = try encoder.encode(texts.map { EncoderInput($0) })
        // Hold the first forward so the rest are queued together and batched across requests.
        let gate = Gate()
        let batches = LockedArray()
        try await ServerFixtures.withServer(beforeForward: { rows in
            batches.append(rows.count)
            if batches.count == 1 { gate.wait() }
        }) { client, server, _ in
            async let first = client.post("/embed", ["inputs": "warm-up", "normalize": false])
            #expect(try await gate.waitForArrivals(1))
            let results = try await withThrowingTaskGroup(of: (Int, [Float]).self) { group in
                for (i, text) in texts.enumerated() {
                    group.addTask { (i, try await client.post("/embed", ["inputs": text, "normalize": false]).vectors()[0]) }
                }
                // Release the held forward once every request is queued behind it.
                #expect(try await eventually { server.service.queue.queuedRows == texts.count })
                gate.release()
                var out = [[Float]](repeating: [], count: texts.count)
                for try await (i, vector) in group { out[i] = vector }
                return out
            }
            _ = try await first
            for (got, expected) in zip(results, want) { expectClose(got, expected) }
            // The held batch had the warm-up alone; the others were batched across requests.
            #expect(batches.values.first == 1)
            #expect(batches.values.dropFirst().contains { $0 > 1 })
            #expect(batches.values.reduce(0, +) == texts.count + 1)
        }
        // With batching off every input gets its own forward, and the same vectors.
        let singles = LockedArray()
        try await ServerFixtures.withServer({ $0.maxBatchRequests = 1 }, beforeForward: { singles.append($0.count) }) { client, _, _ in
            let vectors = try await client.post("/embed", ["inputs": texts, "normalize": false]).vectors()
            for (got, expected) in zip(vectors, want) { expectClose(got, expected) }
            #expect(singles.values == Array(repeating: 1, count: texts.count))
        }
    }
}

final class LockedArray: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [Int] = []
    func append(_ value: Int) { lock.withLock { storage.append(value) } }
    var values: [Int] { lock.withLock { storage } }
    var count: Int { lock.withLock { storage.count } }
}
