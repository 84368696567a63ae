import Foundation
import Testing
import Unmask
import UnmaskTestSupport

/// End to end: the built `unmask serve` binary, started as a user would, answers over HTTP with
/// the encoder's vectors and exits cleanly on SIGTERM.
@Suite struct ServeCommandTests {
    static let binary = Executables.unmask

    /// Reads lines from the child's stdout on a background thread until the listening line.
    final class LineReader: @unchecked Sendable {
        private let condition = NSCondition()
        private var port: Int?
        private var ended = false

        init(_ handle: FileHandle) {
            Thread {
                var buffer = Data()
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { break }
                    buffer.append(chunk)
                    let text = String(decoding: buffer, as: UTF8.self)
                    if let range = text.range(of: #"listening on http://127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                        let port = Int(text[range].split(separator: ":").last!)
                        self.condition.lock(); self.port = port; self.condition.broadcast(); self.condition.unlock()
                    }
                }
                self.condition.lock(); self.ended = true; self.condition.broadcast(); self.condition.unlock()
            }.start()
        }

        func waitForPort(timeout: TimeInterval) -> Int? {
            condition.lock()
            defer { condition.unlock() }
            let deadline = Date().addingTimeInterval(timeout)
            while port == nil, !ended, condition.wait(until: deadline) {}
            return port
        }
    }

    @Test func serveBinaryAnswersAndStopsOnSIGTERM() async throws {
        let model = Fixtures.path("models", "llama2-bf16")
        let process = Process()
        process.executableURL = Self.binary
        process.arguments = ["serve", "--model", model, "--port", "0", "--api-key", "k", "--prompt", "query=Retrieve passages:", "--log-level", "error"]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        let reader = LineReader(out.fileHandleForReading)
        let port = try #require(reader.waitForPort(timeout: 60), "no listening line")
        let client = Client(port: port, apiKey: "k")

        let texts = ["Hello world", "An embedding server for decoder models."]
        let encoder = try Encoder(modelPath: model)
        let want = try encoder.encode(texts.map { EncoderInput($0) }).map(ServerFixtures.normalized)
        let reply = try await client.post("/v1/embeddings", ["input": texts])
        #expect(reply.status == 200)
        let data = (try reply.json() as! [String: Any])["data"] as! [[String: Any]]
        for (entry, expected) in zip(data, want) {
            expectClose((entry["embedding"] as! [NSNumber]).map { Float(truncating: $0) }, expected)
        }
        let query = try await client.post("/embed", ["inputs": texts[0], "prompt_name": "query", "normalize": false]).vectors()[0]
        expectClose(query, try encoder.encode([EncoderInput(texts[0], instruction: "Retrieve passages:")])[0])
        #expect(try await Client(port: port).post("/embed", ["inputs": "x"]).status == 401)

        // A request in flight when SIGTERM arrives still gets its answer.
        async let inFlight = client.post("/embed", ["inputs": Array(repeating: texts[1], count: 32)])
        try await Task.sleep(for: .milliseconds(20))
        process.terminate()
        let last = try? await inFlight
        if let last { #expect(last.status == 200) }
        let exited = try await eventually { !process.isRunning }
        #expect(exited)
        #expect(process.terminationStatus == 0)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(stderr.contains("unmask serve: stopped"), "\(stderr)")
    }
}
