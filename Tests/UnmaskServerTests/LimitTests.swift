import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import Unmask
@testable import UnmaskServer
import UnmaskTestSupport

/// Every error code, with TEI's bodies (and OpenAI's shape on the OpenAI routes).
@Suite struct LimitTests {
    func errorBody(_ reply: Reply) throws -> [String: String] { try reply.json() as! [String: String] }

    @Test func emptyInputsAre400() async throws {
        try await ServerFixtures.withServer { client, _, _ in
            // `[]` reads as empty token ids (TEI's untagged enum tries a single input first).
            let empty = try await client.post("/embed", ["inputs": [String]()])
            #expect(empty.status == 400)
            #expect(try errorBody(empty) == ["error": "Input validation error: `inputs` cannot be empty", "error_type": "Empty"])
            let emptyString = try await client.post("/embed", ["inputs": ""])
            #expect(emptyString.status == 400)
            #expect(try errorBody(emptyString)["error_type"] == "Empty")
            let openAI = try await client.post("/v1/embeddings", ["input": [String]()])
            #expect(openAI.status == 400)
            let body = try openAI.json() as! [String: Any]
            #expect(body["message"] as? String == "Input validation error: `inputs` cannot be empty")
            #expect(body["code"] as? Int == 400)
            #expect(body["type"] as? String == "Empty")
            #expect(try await client.post("/decode", ["ids": [[Int]]()]).status == 400)
            #expect(try await client.post("/tokenize", ["inputs": [String]()]).status == 400)
        }
    }

    @Test func malformedJSONIs400AndWrongShapeIs422() async throws {
        try await ServerFixtures.withServer { client, _, _ in
            let broken = try await client.post("/embed", raw: "{\"inputs\": ")
            #expect(broken.status == 400)
            #expect(try errorBody(broken)["error"]!.hasPrefix("Failed to parse the request body as JSON"))
            let wrong = try await client.post("/embed", raw: "{\"inputz\": \"x\"}")
            #expect(wrong.status == 422)
            #expect(try errorBody(wrong)["error"]!.contains("missing field `inputs`"))
            let wrongType = try await client.post("/embed", raw: "{\"inputs\": {\"a\": 1}}")
            #expect(wrongType.status == 422)
            // Deep nesting is refused by a scan before any parser recursion.
            let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
            let nested = try await client.post("/embed", raw: "{\"inputs\": \(deep)}")
            #expect(nested.status == 400)
            #expect(try errorBody(nested)["error"]!.contains("recursion limit exceeded"))
        }
    }

    @Test func apiKeyGuardsAllButHealthAndMetrics() async throws {
        try await ServerFixtures.withServer({ $0.apiKey = "s3cret" }) { authorized, _, running in
            let anonymous = Client(port: running.port)
            let wrong = Client(port: running.port, apiKey: "nope")
            for client in [anonymous, wrong] {
                for (method, path, body) in [("POST", "/embed", "{\"inputs\":\"a\"}"), ("POST", "/v1/embeddings", "{\"input\":\"a\"}"), ("POST", "/embeddings", "{\"input\":\"a\"}"),
                                             ("POST", "/tokenize", "{\"inputs\":\"a\"}"), ("POST", "/decode", "{\"ids\":[1]}"), ("GET", "/info", ""),
                                             ("POST", "/similarity", "{\"inputs\":{\"source_sentence\":\"a\",\"sentences\":[\"b\"]}}")] {
                    let reply = try await client.request(method, path, body: body.isEmpty ? nil : Data(body.utf8))
                    #expect(reply.status == 401, "\(path)")
                    #expect(reply.body.isEmpty, "\(path)")
                }
                #expect(try await client.get("/health").status == 200)
                #expect(try await client.get("/metrics").status == 200)
            }
            #expect(try await authorized.post("/embed", ["inputs": "a"]).status == 200)
            #expect(try await authorized.get("/info").status == 200)
        }
    }

    @Test func payloadLimitIs413() async throws {
        try await ServerFixtures.withServer({ $0.payloadLimit = 1000 }) { client, _, _ in
            let big = String(repeating: "x", count: 5000)
            for path in ["/embed", "/tokenize"] {
                let reply = try await client.post(path, ["inputs": big])
                #expect(reply.status == 413, "\(path)")
                #expect(try errorBody(reply)["error_type"] == "Validation")
            }
            let openAI = try await client.post("/v1/embeddings", ["input": big])
            #expect(openAI.status == 413)
            #expect((try openAI.json() as! [String: Any])["code"] as? Int == 413)
            // The connection stays usable and small bodies still pass.
            #expect(try await client.post("/embed", ["inputs": "small"]).status == 200)
        }
    }

    /// A client that writes its whole body before reading, with `Connection: close` (Python's
    /// urllib), gets its 413 at once and a closed connection, not a wait until its timeout.
    @Test func oversizedBodyWrittenInFullStillGets413() async throws {
        try await ServerFixtures.withServer({ $0.payloadLimit = 1_000_000 }) { client, _, _ in
            let port = client.port
            // 5 MB, and 60 MB (60 times the limit, far past any multiple a server would buffer).
            for size in [5_000_000, 60_000_000] {
                let (reply, sentAll) = try await Task.detached { try WriteAllThenRead.post(port: port, path: "/embed", bodySize: size, timeout: 120) }.value
                // Without draining, the server stops reading and the client's writes stall until its
                // timeout; the bound is generous because on a loaded machine other suites can hold the
                // cooperative threads the server's handler needs.
                #expect(sentAll, "\(size)")
                #expect(reply.hasPrefix("HTTP/1.1 413"), "\(size): \(reply.prefix(200))")
                #expect(reply.lowercased().contains("connection: close"))
            }
            // The server is still fine.
            #expect(try await client.post("/embed", ["inputs": "small"]).status == 200)
        }
    }

    @Test func clientBatchSizeIs422() async throws {
        try await ServerFixtures.withServer({ $0.maxClientBatchSize = 3 }) { client, _, _ in
            let inputs = ["a", "b", "c", "d"]
            let reply = try await client.post("/embed", ["inputs": inputs])
            #expect(reply.status == 422)
            #expect(try errorBody(reply) == ["error": "batch size 4 > maximum allowed batch size 3", "error_type": "Validation"])
            #expect(try await client.post("/v1/embeddings", ["input": inputs]).status == 422)
            #expect(try await client.post("/tokenize", ["inputs": inputs]).status == 422)
            #expect(try await client.post("/decode", ["ids": [[1], [1], [1], [1]]]).status == 422)
            #expect(try await client.post("/similarity", ["inputs": ["source_sentence": "a", "sentences": ["b", "c", "d"]]]).status == 422)
            #expect(try await client.post("/embed", ["inputs": ["a", "b", "c"]]).status == 200)
        }
    }

    @Test func dimensionsAreValidated() async throws {
        try await ServerFixtures.withServer { client, _, _ in
            let zero = try await client.post("/embed", ["inputs": "a", "dimensions": 0])
            #expect(zero.status == 422)
            #expect(try errorBody(zero)["error"] == "Input validation error: `dimensions` should be positive")
            let tooMany = try await client.post("/v1/embeddings", ["input": "a", "dimensions": 65])
            #expect(tooMany.status == 422)
            #expect((try tooMany.json() as! [String: Any])["type"] as? String == "Validation")
        }
    }

    @Test func tooLongTextsAreRefusedByCharactersBeforeTokenizing() async throws {
        let encoder = try Encoder(modelPath: ServerFixtures.modelPath) { $0.maxLength = 4 }
        try await ServerFixtures.withServer(encoder: encoder, { $0.autoTruncate = false }) { client, _, _ in
            let text = String(repeating: "y", count: 1001)
            for path in ["/embed", "/tokenize"] {
                let reply = try await client.post(path, ["inputs": text])
                #expect(reply.status == 422, "\(path)")
                #expect(try errorBody(reply)["error"] == "Input validation error: `inputs` must have less than 1000 characters. Given: 1001")
            }
        }
    }

    @Test func overloadIsAnImmediate429() async throws {
        // Two permits: a request with three inputs can never get them all.
        try await ServerFixtures.withServer({ $0.maxConcurrentRequests = 2 }) { client, _, _ in
            let reply = try await client.post("/embed", ["inputs": ["a", "b", "c"]])
            #expect(reply.status == 429)
            #expect(try errorBody(reply) == ["error": "Model is overloaded", "error_type": "Overloaded"])
            let openAI = try await client.post("/v1/embeddings", ["input": ["a", "b", "c"]])
            #expect(openAI.status == 429)
            #expect((try openAI.json() as! [String: Any])["code"] as? Int == 429)
            #expect(try await client.post("/embed", ["inputs": ["a", "b"]]).status == 200)
        }
    }

    @Test func overloadWhilePermitsAreHeld() async throws {
        // One request holds the only permit inside a held forward pass; the next is refused at once.
        let gate = Gate()
        try await ServerFixtures.withServer({ $0.maxConcurrentRequests = 1 }, beforeForward: { _ in gate.wait() }) { client, _, _ in
            async let first = client.post("/embed", ["inputs": "held"])
            #expect(try await gate.waitForArrivals(1))
            let second = try await client.post("/embed", ["inputs": "refused"])
            #expect(second.status == 429)
            gate.release()
            #expect(try await first.status == 200)
            #expect(try await client.post("/embed", ["inputs": "after"]).status == 200)
        }
    }
}

/// A blocking HTTP/1.1 client over a plain socket that sends everything, then reads the reply until
/// the server closes, as urllib does. Throws after `timeout` seconds of silence.
enum WriteAllThenRead {
    struct Failure: Error, CustomStringConvertible { let description: String }

    /// The reply, and whether the whole request went out before the server closed or stalled.
    static func post(port: Int, path: String, bodySize: Int, timeout: Int) throws -> (reply: String, sentAll: Bool) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket() failed") }
        defer { close(fd) }
        var seconds = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &seconds, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &seconds, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw Failure(description: "connect() failed") }
        let head = "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: \(bodySize)\r\n\r\n"
        var request = Data(head.utf8)
        request.append(Data(repeating: UInt8(ascii: "a"), count: bodySize))
        var sent = 0
        while sent < request.count {
            let n = request.withUnsafeBytes { send(fd, $0.baseAddress! + sent, request.count - sent, Int32(MSG_NOSIGNAL)) }
            // The server may close once it has answered; what it sent is still readable.
            if n <= 0 { break }
            sent += n
        }
        var reply = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n > 0 { reply.append(contentsOf: buffer[0..<n]); continue }
            if n < 0 && reply.isEmpty { throw Failure(description: "no reply within \(timeout) s (errno \(errno))") }
            break
        }
        return (String(decoding: reply, as: UTF8.self), sent == request.count)
    }
}
