import Foundation
import Testing
import Unmask
@testable import UnmaskServer
import UnmaskTestSupport

/// Every route over real HTTP on loopback, results checked against the encoder itself.
@Suite struct RouteTests {
    let encoder = ServerFixtures.encoder
    let texts = ServerFixtures.texts

    @Test func healthRoutesAnswerEmpty200() async throws {
        try await ServerFixtures.withServer { client, _, _ in
            for path in ["/health", "/", "/ping"] {
                let reply = try await client.get(path)
                #expect(reply.status == 200, "\(path)")
                #expect(reply.body.isEmpty, "\(path)")
            }
        }
    }

    @Test func infoDescribesTheServer() async throws {
        try await ServerFixtures.withServer({ $0.servedModelName = "tiny"; $0.maxClientBatchSize = 7 }) { client, _, _ in
            let info = try await client.get("/info").json() as! [String: Any]
            #expect(info["model_id"] as? String == "tiny")
            #expect((info["model_type"] as? [String: Any])?["embedding"] as? [String: String] == ["pooling": "mean"])
            #expect(info["max_input_length"] as? Int == 512)
            #expect(info["max_batch_tokens"] as? Int == 16384)
            #expect(info["max_client_batch_size"] as? Int == 7)
            #expect(info["max_concurrent_requests"] as? Int == 512)
            #expect(info["auto_truncate"] as? Bool == true)
            #expect(info["max_batch_requests"] is NSNull)
            #expect(info["version"] is String)
            #expect(info["dimension"] as? Int == 64)
        }
    }

    @Test func embedEqualsTheEncoder() async throws {
        let want = try encoder.encode(texts.map { EncoderInput($0) })
        try await ServerFixtures.withServer { client, _, _ in
            // A batch, unnormalized: the encoder's own vectors.
            let raw = try await client.post("/embed", ["inputs": texts, "normalize": false])
            #expect(raw.status == 200)
            for (got, expected) in zip(try raw.vectors(), want) { expectClose(got, expected) }
            // Default normalize = true: `unmask embed --normalize`.
            let normalized = try await client.post("/embed", ["inputs": texts])
            for (got, expected) in zip(try normalized.vectors(), want) { expectClose(got, ServerFixtures.normalized(expected)) }
            // A single string gives a one-element list.
            let single = try await client.post("/embed", ["inputs": texts[0]])
            let vectors = try single.vectors()
            #expect(vectors.count == 1)
            expectClose(vectors[0], ServerFixtures.normalized(want[0]))
            // TEI's headers.
            for header in ["x-compute-type", "x-compute-time", "x-compute-characters", "x-compute-tokens", "x-total-time", "x-tokenization-time", "x-queue-time", "x-inference-time"] {
                #expect(single.header(header) != nil, "\(header)")
            }
            #expect(single.header("x-compute-characters") == String(texts[0].count))
            #expect(single.header("x-compute-tokens") == String(try encoder.prepare(EncoderInput(texts[0])).ids.count))
        }
    }

    @Test func searchEmbedsTheQueryAndAnswersFromTheIndex() async throws {
        let folder = try Fixtures.temporaryDirectory("server-search")
        let input = folder.appendingPathComponent("docs.txt").path
        try Data((texts.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: input))
        var options = CorpusJobOptions(input: input)
        options.format = .npy
        options.output = folder.appendingPathComponent("index.npy").path
        try CorpusJob(options: options).run(embedder: encoder, identity: EmbeddingCache.identity(of: encoder))
        let index = try VectorIndex(path: options.output!)
        try await ServerFixtures.withServer(index: index) { client, _, _ in
            let reply = try await client.post("/search", ["inputs": [texts[2], texts[0]], "k": 2])
            #expect(reply.status == 200)
            let results = try reply.json() as! [[[String: Any]]]
            #expect(results.count == 2 && results.allSatisfy { $0.count == 2 })
            // A document's own text finds it first (ids are line numbers of the .txt input).
            #expect(results[0][0]["id"] as? Int == 3 && results[1][0]["id"] as? Int == 1)
            #expect(abs((results[0][0]["score"] as! Double) - 1) < 1e-4)
            let bad = try await client.post("/search", ["inputs": texts[0], "k": 0])
            #expect(bad.status == 422)
            let info = try await client.get("/info").json() as! [String: Any]
            #expect((info["index"] as? [String: Any])?["rows"] as? Int == texts.count)
        }
        // A binary index, its candidates rescored by cosine from the float one.
        options.precision = .ubinary
        options.output = folder.appendingPathComponent("binary.npy").path
        try CorpusJob(options: options).run(embedder: encoder, identity: EmbeddingCache.identity(of: encoder))
        let binary = try VectorIndex(path: options.output!)
        try await ServerFixtures.withServer(index: binary, rescoring: index) { client, _, _ in
            let results = try await client.post("/search", ["inputs": texts[2], "k": 1]).json() as! [[[String: Any]]]
            #expect(results[0][0]["id"] as? Int == 3 && abs((results[0][0]["score"] as! Double) - 1) < 1e-4)
        }
        #expect(throws: UnmaskError.self) { try EmbeddingServer(encoder: encoder, configuration: ServerFixtures.configuration(), index: index, rescoring: binary) }
        // Without an index there is no /search; an index of another model is refused at start.
        try await ServerFixtures.withServer { client, _, _ in
            let missing = try await client.post("/search", ["inputs": "x"])
            #expect(missing.status == 404)
        }
        let other = try Encoder(sharing: encoder) { $0.maxLength = 16 }
        #expect(throws: UnmaskError.self) { try EmbeddingServer(encoder: other, configuration: ServerFixtures.configuration(), index: index) }
    }

    @Test func openAIEmbeddingsFloatAndBase64() async throws {
        let want = try encoder.encode(texts.map { EncoderInput($0) }).map(ServerFixtures.normalized)
        try await ServerFixtures.withServer({ $0.servedModelName = "unmask-tiny" }) { client, _, _ in
            for path in ["/v1/embeddings", "/embeddings"] {
                let reply = try await client.post(path, ["input": texts, "model": "whatever", "user": "u1"])
                #expect(reply.status == 200)
                let object = try reply.json() as! [String: Any]
                #expect(object["object"] as? String == "list")
                #expect(object["model"] as? String == "unmask-tiny")
                let data = object["data"] as! [[String: Any]]
                #expect(data.map { $0["index"] as? Int } == Array(0..<texts.count))
                #expect(data.allSatisfy { $0["object"] as? String == "embedding" })
                let floats = data.map { ($0["embedding"] as! [NSNumber]).map { Float(truncating: $0) } }
                for (got, expected) in zip(floats, want) { expectClose(got, expected) }
                let tokens = try texts.reduce(0) { $0 + (try encoder.prepare(EncoderInput($1)).ids.count) }
                #expect(object["usage"] as? [String: Int] == ["prompt_tokens": tokens, "total_tokens": tokens])

                let encoded = try await client.post(path, ["input": texts, "encoding_format": "base64"]).json() as! [String: Any]
                for (entry, float) in zip(encoded["data"] as! [[String: Any]], floats) {
                    let bytes = Data(base64Encoded: entry["embedding"] as! String)!
                    #expect(bytes.count == float.count * 4)
                    let decoded = bytes.withUnsafeBytes { raw in
                        (0..<(bytes.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
                    }
                    // Base64 carries the floats (two requests agree to float32 rounding: a forward's
                    // last bits depend on how BLAS splits it, which other tests' load changes).
                    expectClose(decoded, float)
                }
            }
        }
    }

    @Test func dimensionsTruncateThenNormalize() async throws {
        let full = try encoder.encode([EncoderInput(texts[2])])[0]
        let want = ServerFixtures.normalized(Array(full.prefix(16)))
        try await ServerFixtures.withServer { client, _, _ in
            let tei = try await client.post("/embed", ["inputs": texts[2], "dimensions": 16]).vectors()[0]
            expectClose(tei, want)
            let norm = tei.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
            #expect(abs(norm - 1) < 1e-5)
            let openAI = try await client.post("/v1/embeddings", ["input": texts[2], "dimensions": 16]).json() as! [String: Any]
            let vector = ((openAI["data"] as! [[String: Any]])[0]["embedding"] as! [NSNumber]).map { Float(truncating: $0) }
            expectClose(vector, want)
            // Unnormalized TEI keeps the raw prefix.
            let raw = try await client.post("/embed", ["inputs": texts[2], "dimensions": 16, "normalize": false]).vectors()[0]
            expectClose(raw, Array(full.prefix(16)))
        }
    }

    @Test func tokenIdInputsMatchThePreparedPath() async throws {
        let ids = encoder.tokenizer.encode(texts[0], addSpecialTokens: true)
        let want = encoder.embed([try encoder.prepare(tokenIds: ids)])[0]
        try await ServerFixtures.withServer { client, _, _ in
            let single = try await client.post("/embed", ["inputs": ids, "normalize": false]).vectors()
            #expect(single.count == 1)
            expectClose(single[0], want)
            let batch = try await client.post("/embed", ["inputs": [ids, ids], "normalize": false]).vectors()
            #expect(batch.count == 2)
            for vector in batch { expectClose(vector, want) }
            let openAI = try await client.post("/v1/embeddings", ["input": [ids]])
            #expect(openAI.status == 200)
            // An id outside the vocabulary is a validation error.
            let bad = try await client.post("/embed", ["inputs": [1, 999_999]])
            #expect(bad.status == 422)
            #expect((try bad.json() as! [String: String])["error_type"] == "Validation")
        }
    }

    @Test func promptNameAndInstructionUseLLM2VecInstructions() async throws {
        let instruction = "Given a question, retrieve passages that answer it:"
        let want = try encoder.encode([EncoderInput(texts[0], instruction: instruction)])[0]
        let plain = try encoder.encode([EncoderInput(texts[0])])[0]
        try await ServerFixtures.withServer({ $0.prompts = ["query": instruction] }) { client, _, _ in
            let named = try await client.post("/embed", ["inputs": texts[0], "prompt_name": "query", "normalize": false]).vectors()[0]
            expectClose(named, want)
            #expect(Compare.maxAbs(named, plain) > 1e-4)
            let explicit = try await client.post("/embed", ["inputs": texts[0], "instruction": instruction, "normalize": false]).vectors()[0]
            expectClose(explicit, want)
            let unknown = try await client.post("/embed", ["inputs": texts[0], "prompt_name": "passage"])
            #expect(unknown.status == 422)
            #expect((try unknown.json() as! [String: String])["error"]!.contains("Available prompts: [\"query\"]"))
        }
    }

    @Test func truncation() async throws {
        let long = Array(repeating: "token", count: 60).joined(separator: " ")
        let encoder = try Encoder(modelPath: ServerFixtures.modelPath) { $0.maxLength = 16 }
        try await ServerFixtures.withServer(encoder: encoder, { $0.autoTruncate = false }) { client, _, _ in
            let refused = try await client.post("/embed", ["inputs": long])
            #expect(refused.status == 422)
            let given = encoder.tokenizer.encode(long, addSpecialTokens: true).count
            #expect(try refused.json() as! [String: String] == ["error": "Input validation error: `inputs` must have less than 16 tokens. Given: \(given)", "error_type": "Validation"])
            let right = try await client.post("/embed", ["inputs": long, "truncate": true, "normalize": false])
            #expect(right.status == 200)
            expectClose(try right.vectors()[0], try encoder.encode([EncoderInput(long)])[0])
            let left = try await client.post("/embed", ["inputs": "first words then " + long, "truncate": true, "truncation_direction": "left", "normalize": false])
            #expect(left.status == 200)
            // Left truncation keeps the end: the same as the tail alone.
            let tail = Array(encoder.tokenizer.encode("first words then " + long, addSpecialTokens: false).suffix(15))
            let want = encoder.embed([try encoder.prepare(tokenIds: [encoder.tokenizer.bosTokenId!] + tail)])[0]
            expectClose(try left.vectors()[0], want)
            // Token-id inputs follow the same rule.
            let ids = Array(repeating: 5, count: 40)
            #expect(try await client.post("/embed", ["inputs": ids]).status == 422)
            #expect(try await client.post("/embed", ["inputs": ids, "truncate": true]).status == 200)
        }
    }

    @Test func aChunkingServerAnswersOverLongInputsWithOneVector() async throws {
        let long = (1...60).map { "word\($0 % 7)" }.joined(separator: " ")
        let encoder = try Encoder(modelPath: ServerFixtures.modelPath) { $0.maxLength = 16; $0.longInputs = .chunk; $0.normalize = false }
        try await ServerFixtures.withServer(encoder: encoder, { $0.autoTruncate = false }) { client, _, _ in
            // truncate: false (here the default) chunks instead of refusing; the vector is the encoder's.
            let reply = try await client.post("/embed", ["inputs": ["short one", long], "normalize": false])
            #expect(reply.status == 200)
            let vectors = try reply.vectors()
            #expect(vectors.count == 2)
            let want = try encoder.encode([EncoderInput("short one"), EncoderInput(long)])
            for (got, expected) in zip(vectors, want) { expectClose(got, expected) }
            // truncate: true still truncates.
            let truncated = try await client.post("/embed", ["inputs": long, "truncate": true, "normalize": false])
            let plain = try Encoder(sharing: encoder) { $0.longInputs = .truncate }
            expectClose(try truncated.vectors()[0], try plain.encode([EncoderInput(long)])[0])
        }
    }

    @Test func tokenizeGivesSpansAndSpecialTokens() async throws {
        try await ServerFixtures.withServer { client, _, _ in
            let text = "Hello world, héllo"
            let reply = try await client.post("/tokenize", ["inputs": text])
            #expect(reply.status == 200)
            let tokens = (try reply.json() as! [[[String: Any]]])
            #expect(tokens.count == 1)
            let ids = tokens[0].map { $0["id"] as! Int }
            #expect(ids == encoder.tokenizer.encode(text, addSpecialTokens: true))
            #expect(tokens[0][0]["special"] as? Bool == true)
            #expect(tokens[0][0]["start"] is NSNull)
            let bytes = Array(text.utf8)
            var covered: [UInt8] = []
            for token in tokens[0].dropFirst() {
                #expect(token["special"] as? Bool == false)
                let start = token["start"] as! Int, stop = token["stop"] as! Int
                #expect(token["text"] as? String == String(decoding: bytes[start..<stop], as: UTF8.self))
                covered += bytes[start..<stop]
            }
            #expect(covered == bytes)
            let batch = try await client.post("/tokenize", ["inputs": ["a b", "c"], "add_special_tokens": false]).json() as! [[[String: Any]]]
            #expect(batch.count == 2)
            #expect(batch[0].map { $0["id"] as! Int } == encoder.tokenizer.encode("a b", addSpecialTokens: false))
        }
    }

    @Test func decodeInvertsTokenize() async throws {
        let text = "The quick brown fox"
        let ids = encoder.tokenizer.encode(text, addSpecialTokens: true)
        try await ServerFixtures.withServer { client, _, _ in
            let single = try await client.post("/decode", ["ids": ids]).json() as! [String]
            #expect(single == [encoder.tokenizer.decode(ids, skipSpecialTokens: true)])
            #expect(single[0].contains("quick brown fox"))
            let batch = try await client.post("/decode", ["ids": [ids, ids], "skip_special_tokens": false]).json() as! [String]
            #expect(batch == Array(repeating: encoder.tokenizer.decode(ids, skipSpecialTokens: false), count: 2))
        }
    }

    @Test func similarityIsCosine() async throws {
        let sentences = ["a dog", "the stock market", "a cat"]
        let vectors = try encoder.encode((["a cat"] + sentences).map { EncoderInput($0) })
        try await ServerFixtures.withServer { client, _, _ in
            let reply = try await client.post("/similarity", ["inputs": ["source_sentence": "a cat", "sentences": sentences]])
            #expect(reply.status == 200)
            let scores = (try reply.json() as! [NSNumber]).map(\.doubleValue)
            #expect(scores.count == 3)
            for (score, vector) in zip(scores, vectors.dropFirst()) {
                #expect(abs(score - Compare.cosine(vectors[0], vector)) < 1e-5)
            }
            #expect(abs(scores[2] - 1) < 1e-5)
            let empty = try await client.post("/similarity", ["inputs": ["source_sentence": "a", "sentences": [String]()]])
            #expect(empty.status == 400)
        }
    }

    @Test func metricsUseTEINames() async throws {
        try await ServerFixtures.withServer { client, _, _ in
            _ = try await client.post("/embed", ["inputs": ["one", "two"]])
            _ = try await client.post("/embed", ["inputs": [String]()])
            let reply = try await client.get("/metrics")
            #expect(reply.status == 200)
            #expect(reply.header("Content-Type")?.hasPrefix("text/plain") == true)
            for name in ["te_request_count", "te_request_success", "te_request_failure", "te_embed_count", "te_embed_success", "te_queue_size",
                         "te_request_duration", "te_request_tokenization_duration", "te_request_queue_duration", "te_request_inference_duration",
                         "te_request_input_length", "te_batch_next_size", "te_batch_next_tokens"] {
                #expect(reply.text.contains(name), "\(name)")
            }
            #expect(reply.text.contains("te_request_count{method=\"batch\"} 1"))
            #expect(reply.text.contains("te_request_count{method=\"single\"} 1"))
            #expect(reply.text.contains("te_request_success{method=\"batch\"} 1"))
            #expect(reply.text.contains("te_request_failure{err=\"validation\"} 1"))
        }
    }
}
