import Foundation
import Unmask

/// One row's result: its vector and how long it waited and computed.
struct RowResult: Sendable {
    var embedding: [Float]
    var queueTime: Duration
    var inferenceTime: Duration
}

/// Thrown to a request whose client went away (or whose task was cancelled) before its rows
/// reached a forward pass.
struct ClientGone: Error {}
/// Thrown to requests still queued when the server stops without draining.
struct ServerStopping: Error {}

/// The rows of one request waiting for compute; resumes its caller once every row is done.
final class Ticket: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [RowResult?]
    private var remaining: Int
    private var continuation: CheckedContinuation<[RowResult], Error>?
    private var finished = false
    let isConnected: @Sendable () -> Bool

    init(rows: Int, isConnected: @escaping @Sendable () -> Bool) {
        results = Array(repeating: nil, count: rows)
        remaining = rows
        self.isConnected = isConnected
    }

    var isFinished: Bool { lock.locked { finished } }

    func attach(_ continuation: CheckedContinuation<[RowResult], Error>) {
        let early: Error? = lock.locked {
            if finished { return CancellationError() }
            self.continuation = continuation
            return nil
        }
        if let early { continuation.resume(throwing: early) }
    }

    func deliver(_ result: RowResult, at index: Int) {
        let done: (CheckedContinuation<[RowResult], Error>, [RowResult])? = lock.locked {
            guard !finished else { return nil }
            results[index] = result
            remaining -= 1
            guard remaining == 0, let continuation else { return nil }
            finished = true
            self.continuation = nil
            return (continuation, results.map { $0! })
        }
        if let done { done.0.resume(returning: done.1) }
    }

    /// Ends the ticket with `error` unless it already ended; true when this call ended it.
    @discardableResult
    func fail(_ error: Error) -> Bool {
        let continuation: CheckedContinuation<[RowResult], Error>?? = lock.locked {
            guard !finished else { return .none }
            finished = true
            defer { self.continuation = nil }
            return .some(self.continuation)
        }
        guard case .some(let waiting) = continuation else { return false }
        waiting?.resume(throwing: error)
        return true
    }
}

/// The single queue of prepared rows and the batcher that drains it: rows are packed first in,
/// first out into forward batches of at most `maxBatchTokens` padded tokens (rows × longest) and
/// `maxBatchRequests` rows, and run one at a time on a dedicated thread so the blocking forward
/// never occupies Swift's cooperative pool. Tokenization happens in the request handlers, so
/// the rows of the next batch are being prepared while a forward runs; the next batch is cut
/// from the queue the moment the forward ends, dropping rows whose request was cancelled or
/// whose client disconnected.
final class BatchQueue: @unchecked Sendable {
    struct Entry {
        let ticket: Ticket
        let index: Int
        let row: Encoder.PreparedInput
        let enqueued: ContinuousClock.Instant
    }

    private let condition = NSCondition()
    private var entries: [Entry] = []
    private var head = 0
    private var stopping = false
    private var draining = true
    private var thread: Thread?
    private let finished = DispatchSemaphore(value: 0)

    let maxBatchTokens: Int
    let maxBatchRequests: Int
    /// Split each batch into forward passes of similar lengths (see `lengthGroups`).
    let splitByLength: Bool
    private let compute: @Sendable ([Encoder.PreparedInput]) -> [[Float]]
    private let metrics: ServerMetrics?

    init(maxBatchTokens: Int, maxBatchRequests: Int?, splitByLength: Bool = true, metrics: ServerMetrics?, compute: @escaping @Sendable ([Encoder.PreparedInput]) -> [[Float]]) {
        self.maxBatchTokens = maxBatchTokens
        self.maxBatchRequests = max(1, maxBatchRequests ?? Int.max)
        self.splitByLength = splitByLength
        self.compute = compute
        self.metrics = metrics
    }

    /// Rows waiting for a forward pass.
    var queuedRows: Int { condition.locked { entries.count - head } }

    func start() {
        let thread = Thread { [self] in
            while let batch = nextBatch() { run(batch) }
            finished.signal()
        }
        thread.name = "unmask-batcher"
        thread.stackSize = 8 << 20
        self.thread = thread
        thread.start()
    }

    /// Stops the batcher once the queue is empty (`drain`), or at once failing what is queued.
    func stop(drain: Bool) {
        let dropped: [Entry] = condition.locked {
            stopping = true
            draining = drain
            condition.broadcast()
            guard !drain else { return [] }
            defer { entries.removeAll(); head = 0 }
            return Array(entries[head...])
        }
        for entry in dropped { entry.ticket.fail(ServerStopping()) }
    }

    /// Waits (off the cooperative pool) for the batcher thread to end.
    func waitUntilStopped() async {
        guard thread != nil else { return }
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async { [finished] in
                finished.wait()
                finished.signal()
                done.resume()
            }
        }
    }

    /// Queues `rows` and waits for their vectors. Cancellation (or the client going away, as
    /// `isConnected` tells) drops rows not yet computed.
    func embed(_ rows: [Encoder.PreparedInput], isConnected: @escaping @Sendable () -> Bool = { true }) async throws -> [RowResult] {
        guard !rows.isEmpty else { return [] }
        let ticket = Ticket(rows: rows.count, isConnected: isConnected)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                ticket.attach(continuation)
                let now = ContinuousClock.now
                let accepted: Bool = condition.locked {
                    guard !stopping || draining else { return false }
                    for (index, row) in rows.enumerated() {
                        entries.append(Entry(ticket: ticket, index: index, row: row, enqueued: now))
                    }
                    condition.signal()
                    return true
                }
                if accepted { metrics?.queueSize.record(queuedRows) } else { ticket.fail(ServerStopping()) }
            }
        } onCancel: {
            ticket.fail(CancellationError())
        }
    }

    /// The next batch, FIFO within the budgets; blocks while the queue is empty; nil once stopped.
    private func nextBatch() -> [Entry]? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            // Rows of ended tickets (cancelled, disconnected, failed) are dropped before compute.
            while head < entries.count, entries[head].ticket.isFinished || !entries[head].ticket.isConnected() {
                let entry = entries[head]
                head += 1
                if entry.ticket.fail(ClientGone()) { metrics?.droppedRequests.increment() }
            }
            if head < entries.count { break }
            entries.removeAll(keepingCapacity: entries.capacity < 4096)
            head = 0
            if stopping { return nil }
            condition.wait()
        }
        var batch: [Entry] = []
        var longest = 0
        while head < entries.count, batch.count < maxBatchRequests {
            let entry = entries[head]
            if entry.ticket.isFinished || !entry.ticket.isConnected() {
                head += 1
                if entry.ticket.fail(ClientGone()) { metrics?.droppedRequests.increment() }
                continue
            }
            let candidateLongest = max(longest, entry.row.ids.count)
            // The first row always goes, so an input at the length limit is never stuck.
            if !batch.isEmpty, (batch.count + 1) * candidateLongest > maxBatchTokens { break }
            longest = candidateLongest
            batch.append(entry)
            head += 1
        }
        if head > 1024, head * 2 > entries.count {
            entries.removeFirst(head)
            head = 0
        }
        return batch
    }

    private func run(_ batch: [Entry]) {
        metrics?.queueSize.record(queuedRows)
        let groups = splitByLength ? Self.lengthGroups(batch.map(\.row.ids.count)) : [Array(batch.indices)]
        for group in groups {
            let rows = group.map { batch[$0] }
            let start = ContinuousClock.now
            metrics?.batchSize.record(rows.count)
            metrics?.batchTokens.record(rows.count * (rows.map(\.row.ids.count).max() ?? 0))
            let vectors = compute(rows.map(\.row))
            let inference = ContinuousClock.now - start
            for (entry, vector) in zip(rows, vectors) {
                entry.ticket.deliver(RowResult(embedding: vector, queueTime: start - entry.enqueued, inferenceTime: inference), at: entry.index)
            }
        }
    }

    /// Forward passes for one batch: rows sorted by length and grouped while padding stays under
    /// a quarter of the real tokens. On CPU a padded position costs as much as a real one (and
    /// attention grows with the square of the padded length), so one pass over a 5-token and a
    /// 400-token input would cost 80 times the short one's work; grouped, the batch keeps the
    /// per-pass savings without the padding. Returns indices into `lengths`, shortest group first.
    static func lengthGroups(_ lengths: [Int], maxPaddingRatio: Double = 1.25) -> [[Int]] {
        let order = lengths.indices.sorted { (lengths[$0], $0) < (lengths[$1], $1) }
        var groups: [[Int]] = []
        var current: [Int] = []
        var sum = 0
        for index in order {
            let length = lengths[index]
            if !current.isEmpty, Double((current.count + 1) * length) > maxPaddingRatio * Double(sum + length) {
                groups.append(current)
                current = []
                sum = 0
            }
            current.append(index)
            sum += length
        }
        if !current.isEmpty { groups.append(current) }
        return groups
    }
}

extension NSLocking {
    func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}
