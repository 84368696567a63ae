import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import Testing
import Unmask
@testable import UnmaskServer
import UnmaskTestSupport

/// A reply as the client saw it.
struct Reply: Sendable {
    let status: Int
    let headers: [String: String]
    let body: Data

    var text: String { String(decoding: body, as: UTF8.self) }
    func json() throws -> Any { try JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]) }
    func header(_ name: String) -> String? { headers.first { $0.key.lowercased() == name.lowercased() }?.value }
    /// `[[Float]]` from a TEI `/embed` reply.
    func vectors() throws -> [[Float]] { try (json() as! [[Any]]).map { $0.map { Float(truncating: $0 as! NSNumber) } } }
}

/// A real HTTP client (URLSession) for a server on 127.0.0.1.
struct Client: Sendable {
    let port: Int
    var apiKey: String?

    static let session: URLSession = {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 60
        configuration.httpMaximumConnectionsPerHost = 64
        return URLSession(configuration: configuration)
    }()

    func request(_ method: String, _ path: String, body: Data? = nil, headers: [String: String] = [:]) async throws -> Reply {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = method
        request.httpBody = body
        if body != nil { request.setValue("application/json", forHTTPHeaderField: "Content-Type") }
        if let apiKey { request.setValue("Bearer \(apiKey)", forHTTPHeaderField: "Authorization") }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let (data, response) = try await Self.session.data(for: request)
        let http = response as! HTTPURLResponse
        var fields: [String: String] = [:]
        for (key, value) in http.allHeaderFields { fields["\(key)"] = "\(value)" }
        return Reply(status: http.statusCode, headers: fields, body: data)
    }

    func get(_ path: String) async throws -> Reply { try await request("GET", path) }

    func post(_ path: String, _ object: Any) async throws -> Reply {
        try await request("POST", path, body: try JSONSerialization.data(withJSONObject: object, options: [.fragmentsAllowed]))
    }

    func post(_ path: String, raw: String) async throws -> Reply {
        try await request("POST", path, body: Data(raw.utf8))
    }
}

enum ServerFixtures {
    static let modelPath = Fixtures.path("models", "llama2-bf16")

    /// One encoder shared by the suite (tiny fixture; loading it once keeps the tests fast).
    static let encoder: Encoder = try! Encoder(modelPath: modelPath) { $0.normalize = false }

    static func configuration(_ change: (inout ServerConfiguration) -> Void = { _ in }) -> ServerConfiguration {
        var configuration = ServerConfiguration()
        configuration.port = 0
        change(&configuration)
        return configuration
    }

    static var quietLogger: Logger {
        var logger = Logger(label: "unmask.serve.test")
        logger.logLevel = .critical
        return logger
    }

    /// Starts a server on an ephemeral loopback port, runs `body`, and shuts it down gracefully.
    static func withServer<T>(
        encoder: Encoder = encoder,
        index: VectorIndex? = nil,
        rescoring: VectorIndex? = nil,
        _ change: (inout ServerConfiguration) -> Void = { _ in },
        beforeForward: (@Sendable ([Encoder.PreparedInput]) -> Void)? = nil,
        _ body: (Client, EmbeddingServer, RunningServer) async throws -> T
    ) async throws -> T {
        let server = try EmbeddingServer(encoder: encoder, configuration: configuration(change), index: index, rescoring: rescoring, logger: quietLogger, beforeForward: beforeForward)
        let running = try await server.start()
        do {
            let result = try await body(Client(port: running.port, apiKey: server.configuration.apiKey), server, running)
            try await running.shutdown()
            return result
        } catch {
            try? await running.shutdown()
            throw error
        }
    }

    /// What `unmask embed --normalize` gives: the encoder's vectors, L2-normalized the same way.
    static func normalized(_ vector: [Float]) -> [Float] {
        let norm = vector.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
        return norm > 0 ? vector.map { Float(Double($0) / norm) } : vector
    }

    static let texts = [
        "The quick brown fox jumps over the lazy dog.",
        "Hello world",
        "Embeddings from a decoder, the LLM2Vec way: bidirectional attention and mean pooling.",
        "a",
        "Ünïcödé text — with dashes, émojis 🙂 and 数字 123.",
    ]
}

/// A gate a test opens to let held forward passes go on.
final class Gate: @unchecked Sendable {
    private let condition = NSCondition()
    private var open = false
    private var arrivals = 0

    func wait() {
        condition.lock()
        arrivals += 1
        condition.broadcast()
        while !open { condition.wait() }
        condition.unlock()
    }

    func release() {
        condition.lock()
        open = true
        condition.broadcast()
        condition.unlock()
    }

    var arrived: Int {
        condition.lock()
        defer { condition.unlock() }
        return arrivals
    }

    /// Waits (bounded, without blocking a cooperative thread) until `count` callers are held.
    func waitForArrivals(_ count: Int, timeout: Duration = .seconds(120)) async throws -> Bool {
        try await eventually(timeout: timeout) { arrived >= count }
    }
}

/// Polls `condition` every 10 ms until it holds or `timeout` passes. The bound is generous: on a
/// loaded 2-core machine the other suites' synchronous tests can hold both cooperative threads
/// for tens of seconds, and these waits check that something happens, not how fast.
func eventually(timeout: Duration = .seconds(120), _ condition: () -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

func expectClose(_ got: [Float], _ want: [Float], _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(got.count == want.count, comment, sourceLocation: sourceLocation)
    #expect(Compare.maxAbs(got, want) <= 1e-5, comment, sourceLocation: sourceLocation)
}
