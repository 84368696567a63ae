import ArgumentParser
import Foundation
import Unmask
import UnmaskKernels

@main
struct UnmaskCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unmask",
        abstract: "Decoder LLMs as text encoders, the LLM2Vec way.",
        subcommands: [EmbedCommand.self, ShardsCommand.self, SearchCommand.self, SimilarityCommand.self, TokenizeCommand.self, InspectCommand.self, AnalyzeCommand.self, DataCommand.self, TrainCommand.self, MergeCommand.self, EvalCommand.self, StudyCommand.self, ServeCommand.self]
    )

    static func main() {
        // Before any BLAS call: the kernels OpenBLAS chose at load time are final for the process.
        BLASCoreType.reexecIfFallback()
        main(nil)
    }
}

extension AttentionMode: ExpressibleByArgument {}
extension Pooling: ExpressibleByArgument {}
extension LongInputs: ExpressibleByArgument {}
extension WeightPrecision: ExpressibleByArgument {}

/// Options shared by every command that runs the encoder.
struct EncoderArguments: ParsableArguments {
    @Option(help: "Model: a Hugging Face folder (config.json, model.safetensors, tokenizer.json), a .gguf file, or an installed model's name (smollm2, qwen2.5-coder-0.5b, minilm).")
    var model: String

    @Option(name: .customLong("adapter"), help: "PEFT LoRA adapter folder, merged in the order given (repeatable).")
    var adapters: [String] = []

    @Option(help: "Matrices: auto keeps them as the checkpoint stores them (F16, BF16, ggml quants; adapters on them stay unmerged), f32 converts every one to float32 at load (the reference path).")
    var weightPrecision: WeightPrecision = .auto

    @Option(help: "Attention: bidirectional (LLM2Vec; the default) or causal (the LLM as is). A sentence-transformers model defaults to the attention it was trained with.")
    var attention: AttentionMode?

    @Option(help: "Pooling (default: llm2vec_config.json's pooling_mode, else mean).")
    var pooling: Pooling?

    @Option(help: "Instruction for inputs that have none of their own; kept out of pooling.")
    var instruction: String = ""

    @Option(help: "Maximum tokens per input; longer inputs are truncated (default 512).")
    var maxLength: Int?

    @Option(help: "Texts per forward pass.")
    var batchSize: Int = 32

    @Flag(help: "L2-normalize the embeddings.")
    var normalize = false

    @Option(help: "Sentence-transformers models: the prompt to prepend, by name (config_sentence_transformers.json: query, document, ...).")
    var promptName: String?

    @Option(help: "Sentence-transformers models: the prompt text to prepend (wins over --prompt-name).")
    var prompt: String?

    @Option(help: "Matryoshka: keep the first N dimensions (normalized again when the model normalizes).")
    var dimensions: Int?

    @Option(help: "Inputs longer than the maximum length: truncate, or chunk (overlapping windows, their vectors averaged by tokens).")
    var long: LongInputs = .truncate

    @Option(help: "--long chunk: tokens consecutive windows share (default: an eighth of a window).")
    var chunkOverlap: Int?

    func makeEncoder(attention chosen: AttentionMode? = nil) throws -> Encoder {
        try Encoder(modelPath: model, adapterPaths: adapters, precision: weightPrecision) { configure(&$0, attention: chosen) }
    }

    /// The decoder encoder, or an encoder-only baseline (BERT, e.g. `minilm`) when the model is one.
    func makeEmbedder() throws -> TextEmbedder {
        try Embedders.load(modelPath: model, adapterPaths: adapters, precision: weightPrecision) { configure(&$0, attention: nil) }
    }

    /// Bad values are usage errors (exit 64), caught before any model loads.
    func validate() throws {
        if let maxLength, maxLength < 1 { throw ValidationError("--max-length must be at least 1, got \(maxLength)") }
        if batchSize < 1 { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        if let dimensions, dimensions < 1 { throw ValidationError("--dimensions must be at least 1, got \(dimensions)") }
        if let chunkOverlap, chunkOverlap < 0 { throw ValidationError("--chunk-overlap must be at least 0, got \(chunkOverlap)") }
        if promptName != nil, prompt != nil { throw ValidationError("give --prompt-name or --prompt, not both") }
    }

    func configure(_ options: inout EncoderOptions, attention chosen: AttentionMode?) {
        if let mode = chosen ?? attention { options.attention = mode }
        if let pooling { options.pooling = pooling }
        if let maxLength { options.maxLength = maxLength }
        options.batchSize = batchSize
        options.normalize = normalize
        options.promptName = promptName
        options.prompt = prompt
        options.dimensions = dimensions
        options.longInputs = long
        options.chunkOverlap = chunkOverlap
    }
}

/// Runs `body`, turning Unmask's errors into one line on stderr and exit code 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do { try body() } catch let error as UnmaskError {
        FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
        throw ExitCode.failure
    }
}

/// Writes `data` to `path`, or to standard output without one. A file is written under a
/// temporary name beside it and renamed into place, so a failed write (a full disk) leaves the old
/// file as it was; a write error is one line naming the destination, never a crash.
func writeOutput(_ data: Data, to path: String?) throws {
    guard let path else { return try writeStandardOutput(data) }
    var isDirectory: ObjCBool = false
    let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
    if exists, isDirectory.boolValue {
        throw UnmaskError.unwritableFile(path: path, reason: "it is a directory; give a file name")
    }
    // A link is followed, so the rename replaces the file it names, not the link. Devices and
    // pipes (/dev/null, a FIFO) are written in place: renaming onto them would replace them.
    let target = URL(fileURLWithPath: path).resolvingSymlinksInPath()
    let type = exists ? (try? FileManager.default.attributesOfItem(atPath: target.path)[.type] as? FileAttributeType) : nil
    do {
        if !exists || type == .typeRegular {
            try data.write(to: target, options: .atomic)
        } else {
            let handle = try FileHandle(forWritingTo: target)
            defer { try? handle.close() }
            try handle.write(contentsOf: data)
        }
    } catch {
        throw UnmaskError.unwritableFile(path: path, error: error)
    }
}

/// Standard output through a checked write: `print` and `FileHandle.write(_:)` lose or trap on
/// errors (a closed pipe, /dev/full).
func writeStandardOutput(_ data: Data) throws {
    do { try FileHandle.standardOutput.write(contentsOf: data) } catch {
        throw UnmaskError.unwritableFile(path: "standard output", error: error)
    }
}

/// `print` for command results: a line on standard output that fails loudly.
func emit(_ text: String, terminator: String = "\n") throws {
    try writeStandardOutput(Data((text + terminator).utf8))
}
