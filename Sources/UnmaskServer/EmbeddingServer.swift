import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals
import Unmask

/// The request context: Hummingbird's, plus the connection so queued work can be dropped once
/// its client has gone.
public struct ServerRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    /// Bodies are read by the routes themselves, against `--payload-limit`.
    public var maxUploadSize: Int { Int.max }
}

/// `unmask serve`: an OpenAI- and TEI-compatible embedding server over one `Encoder`, with
/// cross-request dynamic batching, TEI's limits and metrics, and graceful shutdown.
///
/// ```swift
/// let server = try EmbeddingServer(encoder: encoder, configuration: configuration)
/// try await server.run()                 // until SIGTERM/SIGINT, then drains and returns
/// let running = try await server.start() // or in the background (tests): running.port
/// try await running.shutdown()           // graceful: finishes accepted requests
/// ```
public final class EmbeddingServer: Sendable {
    public let configuration: ServerConfiguration
    public let encoder: Encoder
    /// The index `/search` searches, if any, and for a binary one the index that rescores its candidates.
    public let index: VectorIndex?
    public let rescoring: VectorIndex?
    let service: EmbeddingService
    let logger: Logger

    /// `index` must have been embedded by this encoder's model and options (its prompt may differ).
    public convenience init(encoder: Encoder, configuration: ServerConfiguration, index: VectorIndex? = nil, rescoring: VectorIndex? = nil,
                            logger: Logger = Logger(label: "unmask.serve")) throws {
        try self.init(encoder: encoder, configuration: configuration, index: index, rescoring: rescoring, logger: logger, beforeForward: nil)
    }

    init(encoder: Encoder, configuration: ServerConfiguration, index: VectorIndex? = nil, rescoring: VectorIndex? = nil, logger: Logger,
         beforeForward: (@Sendable ([Encoder.PreparedInput]) -> Void)?) throws {
        if let rescoring {
            guard let index else { throw UnmaskError.invalidInput(source: "--rescore-index", reason: "rescores a binary --index; give one") }
            try index.checkRescoring(rescoring)
        }
        try index?.checkQueries(embeddedBy: EmbeddingCache.identity(of: encoder), source: "--index")
        self.encoder = encoder
        self.index = index
        self.rescoring = rescoring
        self.configuration = configuration
        self.logger = logger
        service = try EmbeddingService(encoder: encoder, configuration: configuration, beforeForward: beforeForward)
    }

    /// The metrics this server records (what `GET /metrics` renders).
    public var metrics: ServerMetrics { service.metrics }

    /// Serves until SIGTERM or SIGINT, then stops accepting, finishes every accepted request,
    /// and returns. `onRunning` gets the bound port.
    public func run(onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let group = makeServiceGroup(signals: [.sigterm, .sigint], onRunning: onRunning)
        try await group.run()
    }

    /// Starts serving in the background; returns once the port is bound.
    public func start() async throws -> RunningServer {
        let ready = PortSignal()
        let group = makeServiceGroup(signals: [], onRunning: { ready.succeed($0) })
        let task = Task {
            do { try await group.run() } catch { ready.fail(error); throw error }
            ready.fail(CancellationError())
        }
        let port = try await ready.wait()
        return RunningServer(port: port, group: group, task: task)
    }

    private func makeServiceGroup(signals: [UnixSignal], onRunning: @escaping @Sendable (Int) async -> Void) -> ServiceGroup {
        let router = Router(context: ServerRequestContext.self)
        Routes(service: service, index: index, rescoring: rescoring, logger: logger).register(on: router)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
            logger: logger
        )
        // Shutdown runs in reverse order: the HTTP server drains first, then the batcher.
        return ServiceGroup(configuration: .init(
            services: [.init(service: BatcherService(queue: service.queue)), .init(service: app)],
            gracefulShutdownSignals: signals,
            cancellationSignals: [],
            logger: logger
        ))
    }
}

/// A server started with `EmbeddingServer.start()`.
public final class RunningServer: Sendable {
    public let port: Int
    let group: ServiceGroup
    let task: Task<Void, Error>

    init(port: Int, group: ServiceGroup, task: Task<Void, Error>) {
        self.port = port
        self.group = group
        self.task = task
    }

    /// Graceful shutdown, as SIGTERM does: stop accepting, finish accepted requests, stop.
    public func shutdown() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
    }

    /// Triggers graceful shutdown without waiting for it.
    public func beginShutdown() async { await group.triggerGracefulShutdown() }

    /// Waits until the server has stopped.
    public func waitUntilStopped() async throws { try await task.value }
}

/// Runs the batch queue's thread for the server's lifetime; on graceful shutdown (after the
/// HTTP server has finished its requests) drains the queue and stops.
struct BatcherService: Service {
    let queue: BatchQueue

    func run() async throws {
        queue.start()
        try? await gracefulShutdown()
        queue.stop(drain: true)
        await queue.waitUntilStopped()
    }
}

/// A one-shot rendezvous for the bound port.
final class PortSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<Int, Error>?
    private var waiter: CheckedContinuation<Int, Error>?

    func succeed(_ port: Int) { complete(.success(port)) }
    func fail(_ error: Error) { complete(.failure(error)) }

    private func complete(_ value: Result<Int, Error>) {
        let waiter: CheckedContinuation<Int, Error>? = lock.locked {
            guard result == nil else { return nil }
            result = value
            defer { self.waiter = nil }
            return self.waiter
        }
        waiter?.resume(with: value)
    }

    func wait() async throws -> Int {
        try await withCheckedThrowingContinuation { continuation in
            let ready: Result<Int, Error>? = lock.locked {
                if result == nil { waiter = continuation }
                return result
            }
            if let ready { continuation.resume(with: ready) }
        }
    }
}
