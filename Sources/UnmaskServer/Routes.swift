import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Unmask

/// The HTTP routes: OpenAI's `/v1/embeddings`, TEI's `/embed`, `/tokenize`, `/decode`,
/// `/similarity`, `/info`, `/health`, `/metrics`, and `/search` when an index is loaded.
struct Routes: Sendable {
    let service: EmbeddingService
    let index: VectorIndex?
    let rescoring: VectorIndex?
    let logger: Logger

    var configuration: ServerConfiguration { service.configuration }
    var metrics: ServerMetrics { service.metrics }

    enum Flavor { case tei, openAI }

    func register(on router: Router<ServerRequestContext>) {
        for path in ["/health", "/", "/ping"] {
            router.get(RouterPath(path)) { _, _ in Response(status: .ok) }
        }
        router.get("/metrics") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: metrics.render())))
        }
        router.get("/info") { request, _ in
            try await guarded(request, .tei) { _ in json(info()) }
        }
        router.post("/embed") { request, context in
            try await guarded(request, .tei) { body in try await embed(body, context) }
        }
        for path in ["/v1/embeddings", "/embeddings"] {
            router.post(RouterPath(path)) { request, context in
                try await guarded(request, .openAI) { body in try await openAIEmbed(body, context) }
            }
        }
        router.post("/similarity") { request, context in
            try await guarded(request, .tei) { body in try await similarity(body, context) }
        }
        if index != nil {
            router.post("/search") { request, context in
                try await guarded(request, .tei) { body in try await search(body, context) }
            }
        }
        router.post("/tokenize") { request, _ in
            try await guarded(request, .tei) { body in try tokenize(body) }
        }
        router.post("/decode") { request, _ in
            try await guarded(request, .tei) { body in try decode(body) }
        }
    }

    // MARK: - Plumbing

    /// Checks the API key, reads the body within the payload limit, runs `handler`, and turns
    /// failures into the route's error shape.
    private func guarded(_ request: Request, _ flavor: Flavor, _ handler: (ByteBuffer) async throws -> Response) async throws -> Response {
        if let key = configuration.apiKey, request.headers[.authorization] != "Bearer \(key)" {
            return Response(status: .unauthorized)
        }
        do {
            var request = request
            let body = try await readBody(&request)
            return try await handler(body)
        } catch let error as APIError {
            metrics.failure(error.metricLabel)
            if error.type != .Overloaded && error.status != .contentTooLarge {
                logger.debug("\(request.uri.path): \(error.status.code) \(error.message)")
            }
            return errorResponse(error, flavor)
        }
    }

    /// How long the rest of an oversized body is read and thrown away before the 413, as nginx's
    /// lingering close does: a client that writes its whole body before reading (Python's urllib)
    /// then gets the answer instead of a reset connection. A body still coming after this is cut off.
    static let drainTime: Duration = .seconds(10)

    /// The body, up to the payload limit. Past it the rest is read and discarded (kept bytes stay
    /// at the limit) for up to `drainTime`, then 413; the reply closes the connection.
    private func readBody(_ request: inout Request) async throws(APIError) -> ByteBuffer {
        guard request.method == .post else { return ByteBuffer() }
        let limit = configuration.payloadLimit
        var body = ByteBuffer()
        var received = 0
        var draining: ContinuousClock.Instant?
        do {
            for try await chunk in request.body {
                received += chunk.readableBytes
                if received <= limit {
                    var chunk = chunk
                    body.writeBuffer(&chunk)
                } else if let since = draining {
                    if ContinuousClock.now - since > Self.drainTime { break }
                } else {
                    draining = .now
                }
            }
        } catch {
            throw APIError(.Validation, "Failed to buffer the request body: \(error)", status: .badRequest)
        }
        if received > limit { throw APIError.payloadTooLarge }
        return body
    }

    private func decodeBody<T: Decodable>(_ type: T.Type, _ body: ByteBuffer) throws(APIError) -> T {
        let tooDeep = body.withUnsafeReadableBytes { JSONLimits.nestingExceeds(configuration.maxJSONDepth, in: $0) }
        if tooDeep { throw APIError.unparseable("recursion limit exceeded") }
        do {
            return try JSONDecoder().decode(T.self, from: Data(body.readableBytesView))
        } catch let error as DecodingError {
            if case .dataCorrupted(let context) = error, context.codingPath.isEmpty {
                let reason = (context.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String ?? context.debugDescription
                throw APIError.unparseable(reason)
            }
            throw APIError.undecodable(error.summary)
        } catch {
            throw APIError.unparseable("\(error)")
        }
    }

    private func json(_ writer: JSONWriter, headers extra: HTTPFields = [:]) -> Response {
        var headers = extra
        headers[.contentType] = "application/json"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: writer.bytes)))
    }

    private func errorResponse(_ error: APIError, _ flavor: Flavor) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        // The connection may hold unread body bytes: end it with the reply.
        if error.status == .contentTooLarge { headers[.connection] = "close" }
        let bytes = flavor == .openAI ? error.openAIBody : error.teiBody
        return Response(status: error.status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    private func isConnected(_ context: ServerRequestContext) -> @Sendable () -> Bool {
        let channel = context.channel
        return { channel.isActive }
    }

    /// TEI's x-compute-* headers (milliseconds).
    private func computeHeaders(_ output: EmbeddingService.Output, start: ContinuousClock.Instant) -> HTTPFields {
        func ms(_ d: Duration) -> String {
            let (s, atto) = d.components
            return String(s * 1000 + atto / 1_000_000_000_000_000)
        }
        let total = ContinuousClock.now - start
        var headers = HTTPFields()
        let values: [(String, String)] = [
            ("x-compute-type", "cpu"),
            ("x-compute-time", ms(total)),
            ("x-compute-characters", String(output.characters)),
            ("x-compute-tokens", String(output.tokens)),
            ("x-total-time", ms(total)),
            ("x-tokenization-time", ms(output.tokenization)),
            ("x-queue-time", ms(output.queue)),
            ("x-inference-time", ms(output.inference)),
        ]
        for (name, value) in values { headers[HTTPField.Name(name)!] = value }
        metrics.requestDuration.record(total)
        metrics.tokenizationDuration.record(output.tokenization)
        metrics.queueDuration.record(output.queue)
        metrics.inferenceDuration.record(output.inference)
        return headers
    }

    /// The request's inputs, checked for emptiness and the client batch size.
    private func items(_ inputs: Inputs) throws(APIError) -> (items: [InputItem], method: String) {
        switch inputs {
        case .single(let item):
            metrics.requestCount("single")
            return ([item], "single")
        case .batch(let items):
            metrics.requestCount("batch")
            guard !items.isEmpty else { throw APIError.emptyInputs }
            guard items.count <= configuration.maxClientBatchSize else {
                throw APIError.batchTooLarge(items.count, configuration.maxClientBatchSize)
            }
            return (items, "batch")
        }
    }

    // MARK: - Routes

    private func embed(_ body: ByteBuffer, _ context: ServerRequestContext) async throws(APIError) -> Response {
        let start = ContinuousClock.now
        let request = try decodeBody(EmbedRequest.self, body)
        let (items, method) = try items(request.inputs)
        let options = EmbeddingService.Options(
            truncate: request.truncate ?? configuration.autoTruncate,
            direction: request.truncation_direction ?? .right,
            promptName: request.prompt_name,
            instruction: request.instruction,
            normalize: request.normalize ?? true,
            dimensions: request.dimensions
        )
        let output = try await service.embed(items, options: options, isConnected: isConnected(context))
        metrics.requestSuccess(method)
        var out = JSONWriter(reserving: output.embeddings.count * service.encoder.dimension * 12 + 16)
        out.array(output.embeddings) { $0.floats($1) }
        return json(out, headers: computeHeaders(output, start: start))
    }

    private func openAIEmbed(_ body: ByteBuffer, _ context: ServerRequestContext) async throws(APIError) -> Response {
        let start = ContinuousClock.now
        let request = try decodeBody(OpenAIRequest.self, body)
        if let model = request.model, model != service.modelName {
            logger.debug("request names model '\(model)'; serving '\(service.modelName)'")
        }
        let (items, method) = try items(request.input)
        let options = EmbeddingService.Options(truncate: configuration.autoTruncate, normalize: true, dimensions: request.dimensions)
        let output = try await service.embed(items, options: options, isConnected: isConnected(context))
        metrics.requestSuccess(method)
        let base64 = request.encoding_format == .base64
        var out = JSONWriter(reserving: output.embeddings.count * service.encoder.dimension * 12 + 256)
        out.object { o in
            o.field("object") { $0.string("list") }
            o.field("data") { data in
                data.array(output.embeddings.enumerated()) { w, pair in
                    w.object { e in
                        e.field("object") { $0.string("embedding") }
                        e.field("embedding") { value in
                            if base64 { value.string(Self.base64(pair.element)) } else { value.floats(pair.element) }
                        }
                        e.field("index") { $0.int(pair.offset) }
                    }
                }
            }
            o.field("model") { $0.string(service.modelName) }
            o.field("usage") { u in
                u.object { usage in
                    usage.field("prompt_tokens") { $0.int(output.tokens) }
                    usage.field("total_tokens") { $0.int(output.tokens) }
                }
            }
        }
        return json(out, headers: computeHeaders(output, start: start))
    }

    /// The vector's float32 bytes, little-endian, in base64 (OpenAI's `encoding_format: base64`).
    static func base64(_ vector: [Float]) -> String {
        var bytes = [UInt8]()
        bytes.reserveCapacity(vector.count * 4)
        for value in vector {
            let bits = value.bitPattern.littleEndian
            withUnsafeBytes(of: bits) { bytes.append(contentsOf: $0) }
        }
        return Data(bytes).base64EncodedString()
    }

    private func similarity(_ body: ByteBuffer, _ context: ServerRequestContext) async throws(APIError) -> Response {
        let start = ContinuousClock.now
        let request = try decodeBody(SimilarityRequest.self, body)
        guard !request.inputs.sentences.isEmpty else { throw APIError(.Empty, "`inputs.sentences` cannot be empty") }
        let batchSize = request.inputs.sentences.count + 1
        guard batchSize <= configuration.maxClientBatchSize else {
            throw APIError.batchTooLarge(batchSize, configuration.maxClientBatchSize)
        }
        metrics.requestCount("batch")
        let parameters = request.parameters
        let options = EmbeddingService.Options(
            truncate: parameters?.truncate ?? configuration.autoTruncate,
            direction: parameters?.truncation_direction ?? .right,
            promptName: parameters?.prompt_name,
            normalize: false
        )
        let items = [InputItem.text(request.inputs.source_sentence)] + request.inputs.sentences.map(InputItem.text)
        let output = try await service.embed(items, options: options, isConnected: isConnected(context))
        metrics.requestSuccess("batch")
        let source = output.embeddings[0]
        var out = JSONWriter()
        out.array(output.embeddings.dropFirst()) { $0.float(Float(Self.cosine(source, $1))) }
        return json(out, headers: computeHeaders(output, start: start))
    }

    /// Embeds the queries as `/embed` would (the server's prompt unless the request names one),
    /// then returns, per query, the index's k best records: `{"id", <kept fields>, "score"}`.
    private func search(_ body: ByteBuffer, _ context: ServerRequestContext) async throws(APIError) -> Response {
        guard let index else { throw APIError(.Validation, "no index is loaded (serve --index)") }
        let start = ContinuousClock.now
        let request = try decodeBody(SearchRequest.self, body)
        let k = request.k ?? 10
        guard (1...1000).contains(k) else { throw APIError.validation("`k` must be from 1 to 1000, got \(k)") }
        let multiplier = request.rescore_multiplier ?? 4
        guard (1...100).contains(multiplier) else { throw APIError.validation("`rescore_multiplier` must be from 1 to 100, got \(multiplier)") }
        let (items, method) = try items(request.inputs)
        let options = EmbeddingService.Options(truncate: request.truncate ?? configuration.autoTruncate,
                                               direction: request.truncation_direction ?? .right, promptName: request.prompt_name,
                                               instruction: request.instruction, normalize: false)
        let output = try await service.embed(items, options: options, isConnected: isConnected(context))
        // Scanning a large index takes a while: off the cooperative threads.
        let found: Result<[[String]], UnmaskError> = await withCheckedContinuation { done in
            DispatchQueue.global().async {
                do {
                    let hits = try index.search(output.embeddings, k: k, rescoreMultiplier: multiplier, rescoring: rescoring)
                    done.resume(returning: .success(try hits.map { try $0.map(index.result) }))
                } catch let error as UnmaskError {
                    done.resume(returning: .failure(error))
                } catch {
                    done.resume(returning: .failure(.invalidInput(source: "index", reason: "\(error)")))
                }
            }
        }
        let results: [[String]]
        switch found {
        case .success(let value): results = value
        case .failure(let error): throw APIError(.Backend, error.description)
        }
        metrics.requestSuccess(method)
        var out = JSONWriter()
        out.array(results) { w, hits in
            w.array(hits) { w, hit in w.raw(hit) }
        }
        return json(out, headers: computeHeaders(output, start: start))
    }

    static func cosine(_ a: [Float], _ b: [Float]) -> Double {
        var dot = 0.0, na = 0.0, nb = 0.0
        for (x, y) in zip(a, b) {
            dot += Double(x) * Double(y)
            na += Double(x) * Double(x)
            nb += Double(y) * Double(y)
        }
        let denominator = (na * nb).squareRoot()
        return denominator > 0 ? dot / denominator : 0
    }

    private func tokenize(_ body: ByteBuffer) throws(APIError) -> Response {
        let request = try decodeBody(TokenizeRequest.self, body)
        let texts: [String]
        switch request.inputs {
        case .single(let text): texts = [text]
        case .batch(let batch):
            guard !batch.isEmpty else { throw APIError.emptyInputs }
            guard batch.count <= configuration.maxClientBatchSize else {
                throw APIError.batchTooLarge(batch.count, configuration.maxClientBatchSize)
            }
            texts = batch
        }
        // Tokenization is CPU work: it takes permits like embedding does, so a flood gets 429s.
        guard service.permits.tryAcquire(texts.count) else { throw APIError.overloaded }
        defer { service.permits.release(texts.count) }
        let prompt = try service.instruction(promptName: request.prompt_name, instruction: nil)
        var out = JSONWriter()
        var results: [[TokenSpan]] = []
        for text in texts {
            guard !text.isEmpty else { throw APIError.emptyInput }
            let limit = service.maxCharacters
            guard text.count <= limit else { throw APIError.tooManyCharacters(limit, given: text.count) }
            let input = prompt.isEmpty ? text : prompt.trimmingCharacters(in: .whitespacesAndNewlines) + " " + text
            results.append(TokenSpan.spans(of: input, tokenizer: service.encoder.tokenizer, addSpecialTokens: request.add_special_tokens ?? true))
        }
        out.array(results) { w, tokens in
            w.array(tokens) { w, token in
                w.object { o in
                    o.field("id") { $0.int(token.id) }
                    o.field("text") { $0.string(token.text) }
                    o.field("special") { $0.bool(token.special) }
                    o.field("start") { w in if let s = token.start { w.int(s) } else { w.null() } }
                    o.field("stop") { w in if let s = token.stop { w.int(s) } else { w.null() } }
                }
            }
        }
        return json(out)
    }

    private func decode(_ body: ByteBuffer) throws(APIError) -> Response {
        let request = try decodeBody(DecodeRequest.self, body)
        let batch: [[Int]]
        switch request.ids {
        case .single(let ids): batch = [ids]
        case .batch(let ids):
            guard !ids.isEmpty else { throw APIError(.Empty, "`ids` cannot be empty") }
            guard ids.count <= configuration.maxClientBatchSize else {
                throw APIError.batchTooLarge(ids.count, configuration.maxClientBatchSize)
            }
            batch = ids
        }
        let tokenizer = service.encoder.tokenizer
        var texts: [String] = []
        for ids in batch {
            guard !ids.isEmpty else { throw APIError(.Empty, "Input validation error: `input_ids` cannot be empty") }
            texts.append(tokenizer.decode(ids, skipSpecialTokens: request.skip_special_tokens ?? true))
        }
        var out = JSONWriter()
        out.array(texts) { $0.string($1) }
        return json(out)
    }

    private func info() -> JSONWriter {
        let encoder = service.encoder
        var out = JSONWriter()
        out.object { o in
            o.field("model_id") { $0.string(service.modelName) }
            o.field("model_sha") { $0.null() }
            o.field("model_dtype") { $0.string("float32") }
            o.field("served_model_name") { $0.string(service.modelName) }
            o.field("model_type") { t in
                t.object { o in
                    o.field("embedding") { e in e.object { $0.field("pooling") { $0.string(encoder.options.pooling.rawValue) } } }
                }
            }
            o.field("max_concurrent_requests") { $0.int(configuration.maxConcurrentRequests) }
            o.field("max_input_length") { $0.int(service.maxInputLength) }
            o.field("max_batch_tokens") { $0.int(configuration.maxBatchTokens) }
            o.field("max_batch_requests") { w in if let n = configuration.maxBatchRequests { w.int(n) } else { w.null() } }
            o.field("max_client_batch_size") { $0.int(configuration.maxClientBatchSize) }
            o.field("auto_truncate") { $0.bool(configuration.autoTruncate) }
            o.field("tokenization_workers") { $0.int(ProcessInfo.processInfo.activeProcessorCount) }
            o.field("version") { $0.string(serverVersion) }
            o.field("sha") { $0.null() }
            o.field("docker_label") { $0.null() }
            // Unmask's own additions.
            o.field("model_path") { $0.string(encoder.checkpoint.path) }
            o.field("model_architecture") { $0.string(encoder.checkpoint.config.modelType) }
            o.field("attention") { $0.string(encoder.options.attention.rawValue) }
            o.field("dimension") { $0.int(encoder.dimension) }
            o.field("batching") { $0.bool(configuration.batching) }
            o.field("index") { w in
                if let index { w.object { i in
                    i.field("rows") { $0.int(index.rows) }
                    i.field("precision") { $0.string(index.manifest.precision.rawValue) }
                    i.field("parts") { $0.int(index.parts.count) }
                } } else { w.null() }
            }
            o.field("prompts") { p in p.object { o in for name in configuration.prompts.keys.sorted() { o.field(name) { $0.string(configuration.prompts[name]!) } } } }
        }
        return out
    }
}

let serverVersion = "0.1.0"
