import Foundation
import Testing
import Unmask
@testable import UnmaskServer
import UnmaskTestSupport

/// Graceful shutdown: accepted requests all complete; the batcher drains before it stops.
@Suite struct ShutdownTests {
    @Test func shutdownWithRequestsInFlightLosesNone() async throws {
        let encoder = ServerFixtures.encoder
        let texts = (0..<12).map { "in flight \($0) " + String(repeating: "more ", count: $0) }
        let want = try encoder.encode(texts.map { EncoderInput($0) })
        let gate = Gate()
        let server = try EmbeddingServer(encoder: encoder, configuration: ServerFixtures.configuration(), logger: ServerFixtures.quietLogger, beforeForward: { _ in gate.wait() })
        let running = try await server.start()
        let client = Client(port: running.port)
        let requests = texts.map { text in Task { try await client.post("/embed", ["inputs": text, "normalize": false]) } }
        // Every request is inside the server (queued or in the held forward) before shutdown starts.
        #expect(try await eventually { server.service.permits.inUse == texts.count })
        await running.beginShutdown()
        gate.release()
        for (request, expected) in zip(requests, want) {
            let reply = try await request.value
            #expect(reply.status == 200)
            expectClose(try reply.vectors()[0], expected)
        }
        try await running.waitUntilStopped()
        // Nothing listens any more.
        await #expect(throws: (any Error).self) { try await Client(port: running.port).get("/health") }
    }
}
