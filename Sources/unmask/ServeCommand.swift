import ArgumentParser
import Dispatch
import Foundation
import Logging
import Unmask
import UnmaskServer

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve embeddings over HTTP: OpenAI's /v1/embeddings and TEI's /embed, /tokenize, /decode, /similarity, /info, /health, /metrics.",
        discussion: "Requests from all clients are batched together (up to --max-batch-tokens padded tokens and --max-batch-requests rows per forward pass). SIGTERM or SIGINT stops accepting connections, finishes every accepted request, then exits."
    )

    @Option(help: "Model: a Hugging Face folder, a .gguf file, or an installed model's name (smollm2, qwen2.5-coder-0.5b).")
    var model: String

    @Option(name: .customLong("adapter"), help: "PEFT LoRA adapter folder, merged in the order given (repeatable).")
    var adapters: [String] = []

    @Option(help: "Matrices: auto keeps them as the checkpoint stores them (F16, BF16, ggml quants; adapters on them stay unmerged), f32 converts every one to float32 at load (the reference path).")
    var weightPrecision: WeightPrecision = .auto

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on (0: any free port, printed at start).")
    var port = 8080

    @Option(help: "Attention: bidirectional (LLM2Vec; the default) or causal.")
    var attention: AttentionMode?

    @Option(help: "Pooling (default: llm2vec_config.json's pooling_mode, else mean).")
    var pooling: Pooling?

    @Option(help: "Padded tokens (rows × longest row) per forward batch.")
    var maxBatchTokens = 16384

    @Option(help: "Rows per forward batch (default: no limit beyond --max-batch-tokens).")
    var maxBatchRequests: Int?

    @Flag(help: "Turn cross-request batching off (each input gets a forward pass of its own; same as --max-batch-requests 1).")
    var noBatching = false

    @Option(help: "Inputs per request.")
    var maxClientBatchSize = 32

    @Option(help: "Tokens per input, special tokens included (default: the model's max length, 512 unless llm2vec_config.json says otherwise).")
    var maxInputLength: Int?

    @Flag(inversion: .prefixedNo, help: "Truncate over-long inputs (requests may override with \"truncate\") instead of answering 422.")
    var autoTruncate = true

    @Option(help: "Largest request body in bytes (413 beyond).")
    var payloadLimit = 2_000_000

    @Option(help: "Inputs in flight at once; more get 429 at once.")
    var maxConcurrentRequests = 512

    @Option(help: "Require 'Authorization: Bearer <key>' on every route but /health and /metrics (default: $UNMASK_API_KEY if set).")
    var apiKey: String?

    @Option(help: "Model name reported by /info and the OpenAI responses (default: the model's file or folder name).")
    var servedModelName: String?

    @Option(name: .customLong("prompt"), help: "A named instruction for prompt_name, as NAME=TEXT (repeatable).")
    var prompts: [String] = []

    @Option(help: "Prompt applied to requests that name none.")
    var defaultPromptName: String?

    @Option(help: "Inputs over the max length in requests with truncate: false: refuse them (413/422, TEI's behaviour), or chunk them into overlapping windows averaged into one vector.")
    var long: LongInputs = .truncate

    @Option(help: "--long chunk: tokens consecutive windows share (default: an eighth of a window).")
    var chunkOverlap: Int?

    @Option(help: "An index written by `unmask embed --format npy` (folder, .npy or manifest) to serve POST /search over; embedded with this model and options.")
    var index: String?

    @Option(help: "With a binary --index: a float32/float16/int8 index of the same corpus that rescores its candidates.")
    var rescoreIndex: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    func validate() throws {
        for prompt in prompts where !prompt.contains("=") {
            throw ValidationError("--prompt takes NAME=TEXT, got '\(prompt)'")
        }
        if let n = maxBatchRequests, n < 1 { throw ValidationError("--max-batch-requests must be at least 1") }
        if let n = maxInputLength, n < 1 { throw ValidationError("--max-input-length must be at least 1") }
    }

    func makeConfiguration() -> ServerConfiguration {
        var configuration = ServerConfiguration()
        configuration.host = host
        configuration.port = port
        configuration.maxBatchTokens = maxBatchTokens
        configuration.maxBatchRequests = noBatching ? 1 : maxBatchRequests
        configuration.maxClientBatchSize = maxClientBatchSize
        configuration.maxInputLength = maxInputLength
        configuration.autoTruncate = autoTruncate
        configuration.payloadLimit = payloadLimit
        configuration.maxConcurrentRequests = maxConcurrentRequests
        configuration.apiKey = apiKey ?? ProcessInfo.processInfo.environment["UNMASK_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        configuration.servedModelName = servedModelName
        for prompt in prompts {
            let parts = prompt.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            configuration.prompts[String(parts[0])] = String(parts[1])
        }
        configuration.defaultPromptName = defaultPromptName
        return configuration
    }

    func run() throws {
        var logger = Logger(label: "unmask.serve")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let configuration = makeConfiguration()
        let server: EmbeddingServer
        do {
            let encoder = try Encoder(modelPath: model, adapterPaths: adapters, precision: weightPrecision) { options in
                if let attention { options.attention = attention }
                if let pooling { options.pooling = pooling }
                if let maxInputLength { options.maxLength = maxInputLength }
                options.normalize = false
                options.longInputs = long
                options.chunkOverlap = chunkOverlap
            }
            let loaded = try index.map { try VectorIndex(path: $0) }
            let rescoring = try rescoreIndex.map { try VectorIndex(path: $0) }
            server = try EmbeddingServer(encoder: encoder, configuration: configuration, index: loaded, rescoring: rescoring, logger: logger)
        } catch let error as UnmaskError {
            FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
            throw ExitCode.failure
        }
        let encoder = server.encoder
        let done = DispatchSemaphore(value: 0)
        let outcome = Outcome()
        Task {
            do {
                try await server.run { port in
                    // One parseable line for scripts and tests.
                    let line = "unmask serve: listening on http://\(configuration.host):\(port) (model \(encoder.label), dimension \(encoder.dimension), batching \(configuration.batching ? "on" : "off"))\n"
                    FileHandle.standardOutput.write(Data(line.utf8))
                }
            } catch {
                outcome.error = error
            }
            done.signal()
        }
        done.wait()
        if let error = outcome.error {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode.failure
        }
        FileHandle.standardError.write(Data("unmask serve: stopped\n".utf8))
    }
}

private final class Outcome: @unchecked Sendable {
    var error: Error?
}
