import Foundation
import UnmaskKernels
import UnmaskTokenizers

/// A decoder LLM used as a text encoder the LLM2Vec way: optional bidirectional attention,
/// instructions kept out of pooling, llm2vec's truncation and pooling rules.
public final class Encoder: @unchecked Sendable {
    public let checkpoint: Checkpoint
    public let model: DecoderModel
    public let tokenizer: Tokenizer
    public let options: EncoderOptions
    public let adapters: [LoRAAdapter]
    private let workspace = DecoderWorkspace()
    private let lock = NSLock()

    /// Loads `modelPath`, merges `adapterPaths` in order, and resolves options:
    /// llm2vec defaults ← `llm2vec_config.json` (last adapter's, else the model's) ← `configure`.
    /// `lmHead` also loads the output projection (MNTP training predicts tokens).
    public init(modelPath: String, adapterPaths: [String] = [], lmHead: Bool = false, configure: (inout EncoderOptions) -> Void = { _ in }) throws {
        checkpoint = try Checkpoint(path: modelPath)
        tokenizer = try checkpoint.loadTokenizer()
        model = try checkpoint.loadModel(lmHead: lmHead)
        adapters = try adapterPaths.map { try LoRAAdapter(directory: $0) }
        for adapter in adapters { try adapter.merge(into: model.weights) }

        var options = EncoderOptions()
        let configFolder = adapterPaths.last.map { URL(fileURLWithPath: $0) } ?? checkpoint.folder
        if let llm2vecConfig = configFolder?.appendingPathComponent("llm2vec_config.json"),
           FileManager.default.fileExists(atPath: llm2vecConfig.path) {
            try options.apply(llm2vecConfig: try Checkpoint.read(llm2vecConfig, what: "llm2vec_config.json"), file: llm2vecConfig.path)
        }
        configure(&options)
        try options.validate()
        if options.pooling == .bosToken, !tokenizer.addsBOS || tokenizer.bosTokenId == nil {
            throw UnmaskError.invalidInput(source: "options", reason: "bos-token pooling needs a tokenizer that adds a BOS token; this one adds none (use mean, weighted-mean, last-token or eos-token)")
        }
        self.options = options
    }

    private init(sharing other: Encoder, options: EncoderOptions) {
        checkpoint = other.checkpoint
        tokenizer = other.tokenizer
        model = other.model
        adapters = other.adapters
        self.options = options
    }

    /// The same loaded model with another attention mode: comparisons need not load it twice.
    public func withAttention(_ attention: AttentionMode) -> Encoder {
        var options = self.options
        options.attention = attention
        return Encoder(sharing: self, options: options)
    }

    public var dimension: Int { model.config.hiddenSize }

    /// The id left padding uses (masked out of attention and pooling, so only its validity matters).
    public var paddingTokenId: Int32 { Int32(tokenizer.padTokenId ?? tokenizer.eosTokenId ?? 0) }

    /// Embeds `inputs`, returning one vector per input in input order. `progress(done, total)` is
    /// called after each batch.
    public func encode(_ inputs: [EncoderInput], progress: ((Int, Int) -> Void)? = nil) throws -> [[Float]] {
        let prepared = try inputs.enumerated().map { try prepare($0.element, index: $0.offset) }
        // Longest first, as llm2vec does, so each batch pads little; ties keep input order.
        let order = prepared.indices.sorted { (prepared[$0].ids.count, $1) > (prepared[$1].ids.count, $0) }
        var results = [[Float]](repeating: [], count: inputs.count)
        var start = 0
        while start < order.count {
            let batchIndices = Array(order[start..<min(start + options.batchSize, order.count)])
            for (index, embedding) in zip(batchIndices, embed(batchIndices.map { prepared[$0] })) { results[index] = embedding }
            start += batchIndices.count
            progress?(start, order.count)
        }
        return results
    }

    /// Runs one forward pass over `rows` (left-padded to the longest) and pools each; results in
    /// the order given. Callers that batch across requests (the server) use this with `prepare`.
    /// Serialized: one forward at a time per encoder.
    public func embed(_ rows: [PreparedInput]) -> [[Float]] {
        guard !rows.isEmpty else { return [] }
        lock.lock()
        defer { lock.unlock() }
        let batch = TokenBatch(leftPadding: rows.map(\.ids), padding: paddingTokenId)
        let pattern = AttentionPattern(causal: options.attention == .causal, slidingWindow: model.config.slidingWindow)
        let hidden = model.forward(batch, pattern: pattern, workspace: workspace)
        return rows.indices.map { pool(hidden, batch: batch, row: $0, pooledCount: rows[$0].pooledCount) }
    }

    /// Token ids as fed to the model, and how many trailing positions belong to the text.
    public struct PreparedInput: Sendable, Equatable {
        public let ids: [Int32]
        public let pooledCount: Int
        /// Tokens before `max_length` truncation, so callers can refuse over-long inputs instead.
        public let untruncatedLength: Int
    }

    /// Input already tokenized (ids without special tokens added): truncated to `max_length`,
    /// every token pooled.
    public func prepare(tokenIds: [Int], index: Int = 0) throws -> PreparedInput {
        guard !tokenIds.isEmpty else { throw UnmaskError.invalidInput(source: "input \(index + 1)", reason: "no token ids") }
        let vocabulary = model.config.vocabularySize
        if let bad = tokenIds.first(where: { $0 < 0 || $0 >= vocabulary }) {
            throw UnmaskError.invalidInput(source: "input \(index + 1)", reason: "token id \(bad) is outside the model's vocabulary (0..<\(vocabulary))")
        }
        let ids = tokenIds.prefix(options.maxLength).map(Int32.init)
        return PreparedInput(ids: ids, pooledCount: ids.count, untruncatedLength: tokenIds.count)
    }

    /// llm2vec's `_convert_to_str` + `prepare_for_tokenization` + `tokenize`, per input.
    public func prepare(_ input: EncoderInput, index: Int = 0) throws -> PreparedInput {
        var text = input.text
        // doc_max_length: cut whole words in proportion until the text alone fits.
        var textIds = encodeTruncated(text)
        while textIds.count > options.docMaxLength {
            let words = PythonString.split(text)
            let keep = Int(Double(words.count) * (Double(options.docMaxLength) / Double(textIds.count)))
            text = words.prefix(keep).joined(separator: " ")
            textIds = encodeTruncated(text)
        }
        // llm2vec joins "<instruction.strip()> " and the text; for eos-token pooling it strips the
        // joined string and appends the family's EOS text, which then counts as part of the text.
        var instructionPart = input.instruction.isEmpty ? "" : PythonString.strip(input.instruction) + " "
        if options.pooling == .eosToken {
            if instructionPart == " " { instructionPart = "" }
            text = PythonString.rstrip(text) + checkpoint.architecture.eosPoolingSuffix(model.config.nameOrPath)
            textIds = encodeTruncated(text)
        }
        let joinedIds = instructionPart.isEmpty ? textIds : tokenizer.encode(instructionPart + text, addSpecialTokens: false).map(Int32.init)
        var ids: [Int32] = []
        let specials = (tokenizer.addsBOS ? 1 : 0) + (tokenizer.addsEOS ? 1 : 0)
        let untruncatedLength = specials + joinedIds.count
        if tokenizer.addsBOS, let bos = tokenizer.bosTokenId { ids.append(Int32(bos)) }
        ids.append(contentsOf: joinedIds.prefix(max(0, options.maxLength - specials)))
        if tokenizer.addsEOS, let eos = tokenizer.eosTokenId { ids.append(Int32(eos)) }
        ids = Array(ids.prefix(options.maxLength))
        guard !ids.isEmpty else {
            throw UnmaskError.invalidInput(source: "input \(index + 1)", reason: "the text is empty and the tokenizer adds no special token, so there is nothing to embed")
        }
        let vocabulary = model.config.vocabularySize
        if let bad = ids.first(where: { Int($0) >= vocabulary }) {
            throw UnmaskError.invalidInput(source: "input \(index + 1)", reason: "token id \(bad) from tokenizer.json is outside the model's vocab_size \(vocabulary)")
        }
        let pooled = options.skipInstruction ? min(textIds.count, ids.count) : ids.count
        return PreparedInput(ids: ids, pooledCount: pooled, untruncatedLength: untruncatedLength)
    }

    /// The text's tokens without special tokens, cut at max_length as the reference's tokenizer call does.
    private func encodeTruncated(_ text: String) -> [Int32] {
        tokenizer.encode(text, addSpecialTokens: false).prefix(options.maxLength).map(Int32.init)
    }

    private func pool(_ hidden: UnsafePointer<Float>, batch: TokenBatch, row b: Int, pooledCount: Int) -> [Float] {
        let h = dimension
        let valid = batch.valid[b]
        let rowStart = b * batch.length
        // With no text tokens llm2vec averages the whole row; we average the unpadded row, which is
        // what llm2vec gives for the input alone, so the result does not depend on the batch.
        let span = pooledCount > 0 ? (valid.upperBound - pooledCount)..<valid.upperBound : valid
        var out = [Float](repeating: 0, count: h)
        switch options.pooling {
        case .mean, .weightedMean:
            let weighted = options.pooling == .weightedMean
            let total = weighted ? Double(span.count * (span.count + 1)) / 2 : Double(span.count)
            var sum = [Double](repeating: 0, count: h)
            for (k, position) in span.enumerated() {
                let weight = weighted ? Double(k + 1) : 1
                let state = hidden + (rowStart + position) * h
                for d in 0..<h { sum[d] += weight * Double(state[d]) }
            }
            for d in 0..<h { out[d] = Float(sum[d] / total) }
        case .lastToken, .eosToken:
            let state = hidden + (rowStart + valid.upperBound - 1) * h
            for d in 0..<h { out[d] = state[d] }
        case .bosToken:
            let bos = Int32(tokenizer.bosTokenId ?? -1)
            let position = valid.first { batch.ids[rowStart + $0] == bos } ?? valid.lowerBound
            let state = hidden + (rowStart + position) * h
            for d in 0..<h { out[d] = state[d] }
        }
        if options.normalize {
            let norm = out.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
            if norm > 0 { out = out.map { Float(Double($0) / norm) } }
        }
        return out
    }
}

