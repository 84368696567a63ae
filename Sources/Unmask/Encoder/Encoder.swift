import Foundation
import UnmaskKernels
import UnmaskTokenizers

/// A decoder LLM used as a text encoder, in one of two input conventions:
/// - the LLM2Vec way (any decoder folder or GGUF): optional bidirectional attention,
///   instructions kept out of pooling, llm2vec's truncation and pooling rules;
/// - the sentence-transformers way (a folder with modules.json: EmbeddingGemma, Qwen3-Embedding):
///   the prompt prepended to the text and pooled as `1_Pooling` says, truncation at
///   `max_seq_length`, then the Dense and Normalize modules, as `SentenceTransformer.encode` does.
public final class Encoder: @unchecked Sendable {
    public let checkpoint: Checkpoint
    public let model: DecoderModel
    public let tokenizer: Tokenizer
    public let options: EncoderOptions
    public let adapters: [LoRAAdapter]
    /// How the matrices were loaded: as stored, or converted to float32 (`--weight-precision`).
    public let weightPrecision: WeightPrecision
    /// The model's sentence-transformers pipeline, when its folder has one.
    public let sentenceTransformer: SentenceTransformerConfig?
    /// Dense modules, normalization and Matryoshka truncation after pooling.
    public private(set) var head: SentenceTransformerHead
    /// The prompt prepended to inputs without an instruction of their own (sentence-transformers models).
    public private(set) var defaultPrompt: String
    private let workspace = DecoderWorkspace()
    private let lock = NSLock()
    private let tokens = TokenCounter()

    /// Loads `modelPath`, merges `adapterPaths` in order, and resolves options:
    /// defaults (llm2vec's, or the sentence-transformers files') ← `llm2vec_config.json` (last
    /// adapter's, else the model's) ← `configure`. `lmHead` also loads the output projection
    /// (MNTP training predicts tokens). `precision` `.auto` keeps matrices in their stored
    /// format, with adapters on such matrices applied unmerged.
    public init(modelPath: String, adapterPaths: [String] = [], lmHead: Bool = false, precision: WeightPrecision = .auto,
                configure: (inout EncoderOptions) -> Void = { _ in }) throws {
        checkpoint = try Checkpoint(path: modelPath)
        tokenizer = try checkpoint.loadTokenizer()
        model = try checkpoint.loadModel(lmHead: lmHead, precision: precision)
        weightPrecision = precision
        adapters = try adapterPaths.map { try LoRAAdapter(directory: $0) }
        for adapter in adapters { try adapter.merge(into: model.weights) }

        var options = EncoderOptions()
        var sentenceTransformer: SentenceTransformerConfig?
        if let folder = checkpoint.folder, FileManager.default.fileExists(atPath: folder.appendingPathComponent("modules.json").path) {
            let st = try SentenceTransformerConfig.load(folder: folder)
            try Self.applyDefaults(of: st, config: model.config, to: &options, folder: folder)
            sentenceTransformer = st
        }
        let configFolder = adapterPaths.last.map { URL(fileURLWithPath: $0) } ?? checkpoint.folder
        if let llm2vecConfig = configFolder?.appendingPathComponent("llm2vec_config.json"),
           FileManager.default.fileExists(atPath: llm2vecConfig.path) {
            try options.apply(llm2vecConfig: try Checkpoint.read(llm2vecConfig, what: "llm2vec_config.json"), file: llm2vecConfig.path)
        }
        configure(&options)
        try options.validate()
        // Positions past the model's limit are not ones it was trained on, and attention memory
        // grows with the square of the length: cap at max_position_embeddings.
        options.maxLength = min(options.maxLength, model.config.maxPositionEmbeddings)
        if options.pooling == .bosToken, !tokenizer.addsBOS || tokenizer.bosTokenId == nil {
            throw UnmaskError.invalidInput(source: "options", reason: "bos-token pooling needs a tokenizer that adds a BOS token; this one adds none (use mean, weighted-mean, last-token or eos-token)")
        }
        defaultPrompt = try Self.prompt(options, sentenceTransformer)
        if sentenceTransformer != nil, options.pooling == .eosToken {
            throw UnmaskError.invalidInput(source: "options", reason: "eos-token pooling is llm2vec's; a sentence-transformers model pools mean, weighted-mean, last-token or bos-token")
        }
        head = try SentenceTransformerHead(folder: checkpoint.folder ?? URL(fileURLWithPath: "."), config: sentenceTransformer ?? SentenceTransformerConfig(),
                                           inputDimension: model.config.hiddenSize, normalize: options.normalize, dimensions: options.dimensions)
        self.sentenceTransformer = sentenceTransformer
        self.options = options
    }

    private init(sharing other: Encoder, options: EncoderOptions) {
        checkpoint = other.checkpoint
        tokenizer = other.tokenizer
        model = other.model
        adapters = other.adapters
        weightPrecision = other.weightPrecision
        sentenceTransformer = other.sentenceTransformer
        head = other.head
        defaultPrompt = other.defaultPrompt
        self.options = options
    }

    /// The same loaded model with options changed by `configure` (prompt, lengths, dimensions, …).
    public convenience init(sharing other: Encoder, configure: (inout EncoderOptions) -> Void) throws {
        var options = other.options
        configure(&options)
        try options.validate()
        self.init(sharing: other, options: options)
        if options.promptName != other.options.promptName || options.prompt != other.options.prompt {
            defaultPrompt = try Self.prompt(options, sentenceTransformer)
        }
        head = try other.head.with(dimensions: options.dimensions, normalize: options.normalize,
                                   modelNormalizes: sentenceTransformer?.normalize ?? false)
    }

    /// What a sentence-transformers folder sets: pooling, `max_seq_length`, whether the prompt is
    /// pooled, and the attention the model was trained with (causal unless its config says
    /// `use_bidirectional_attention`).
    private static func applyDefaults(of st: SentenceTransformerConfig, config: DecoderConfig, to options: inout EncoderOptions, folder: URL) throws {
        let poolingFile = folder.appendingPathComponent("modules.json").path
        guard st.pooling.count == 1 else {
            throw UnmaskError.invalidField(file: poolingFile, field: "Pooling", expected: "one pooling mode for a decoder model, got \(st.pooling.map(\.rawValue).joined(separator: "+"))")
        }
        switch st.pooling[0] {
        case .mean: options.pooling = .mean
        case .weightedMean: options.pooling = .weightedMean
        case .lastToken: options.pooling = .lastToken
        case .cls: options.pooling = .bosToken
        case .max, .meanSqrtLen:
            throw UnmaskError.invalidField(file: poolingFile, field: "Pooling", expected: "mean, weightedmean, lasttoken or cls for a decoder model, got \(st.pooling[0].rawValue)")
        }
        options.attention = config.trainedBidirectional ? .bidirectional : .causal
        options.maxLength = st.maxSequenceLength ?? config.maxPositionEmbeddings
        options.skipInstruction = !st.includePrompt
    }

    /// The prompt of `--prompt`, else of `--prompt-name`, else the model's default prompt.
    private static func prompt(_ options: EncoderOptions, _ st: SentenceTransformerConfig?) throws -> String {
        if let prompt = options.prompt { return prompt }
        guard let st else {
            if let name = options.promptName {
                throw UnmaskError.invalidInput(source: "options", reason: "--prompt-name \(name): this model has no config_sentence_transformers.json prompts; give --instruction instead")
            }
            return ""
        }
        guard let name = options.promptName ?? st.defaultPromptName else { return "" }
        guard let text = st.prompts[name] else {
            throw UnmaskError.invalidInput(source: "options", reason: "no prompt named '\(name)'; the model has \(st.prompts.keys.sorted().joined(separator: ", "))")
        }
        return text
    }

    /// The same loaded model with another attention mode: comparisons need not load it twice.
    public func withAttention(_ attention: AttentionMode) -> Encoder {
        var options = self.options
        options.attention = attention
        return Encoder(sharing: self, options: options)
    }

    public var dimension: Int { head.dimension }

    public var tokensProcessed: Int { tokens.value }

    /// The id left padding uses (masked out of attention and pooling, so only its validity matters).
    public var paddingTokenId: Int32 { Int32(tokenizer.padTokenId ?? tokenizer.eosTokenId ?? 0) }

    /// Embeds `inputs`, returning one vector per input in input order. `progress(done, total)` is
    /// called after each batch.
    public func encode(_ inputs: [EncoderInput], progress: ((Int, Int) -> Void)? = nil) throws -> [[Float]] {
        // Rows to run: one per input, or one per window of an over-long input in chunk mode.
        var prepared: [PreparedInput] = [], owner: [Int] = [], weight: [Int] = []
        for (index, input) in inputs.enumerated() {
            if options.longInputs == .chunk, let chunks = try prepareChunks(input, index: index) {
                for chunk in chunks { prepared.append(chunk.row); owner.append(index); weight.append(chunk.weight) }
            } else {
                prepared.append(try prepare(input, index: index)); owner.append(index); weight.append(1)
            }
        }
        // Longest first, as llm2vec does, so each batch pads little; ties keep input order.
        let order = prepared.indices.sorted { (prepared[$0].ids.count, $1) > (prepared[$1].ids.count, $0) }
        var rows = [[Float]](repeating: [], count: prepared.count)
        var start = 0
        while start < order.count {
            let batchIndices = Array(order[start..<min(start + options.batchSize, order.count)])
            for (row, embedding) in zip(batchIndices, embed(batchIndices.map { prepared[$0] })) {
                guard embedding.allSatisfy(\.isFinite) else { throw UnmaskError.nonFiniteEmbedding(input: owner[row] + 1) }
                rows[row] = embedding
            }
            start += batchIndices.count
            progress?(start, order.count)
        }
        return gather(rows, owners: owner, weights: weight, inputCount: inputs.count)
    }

    /// One vector per input from the vectors of its rows (`owners[row]` is the row's input): a
    /// single row as it is, an input's windows as their token-weighted mean (`weights[row]`),
    /// normalized again when the model's vectors are normalized.
    public func gather(_ rows: [[Float]], owners: [Int], weights: [Int], inputCount: Int) -> [[Float]] {
        guard rows.count > inputCount else { return rows }
        var parts = [[(vector: [Float], weight: Int)]](repeating: [], count: inputCount)
        for row in rows.indices { parts[owners[row]].append((rows[row], weights[row])) }
        return parts.map { $0.count == 1 ? $0[0].vector : combineChunks($0) }
    }

    /// The windows of an input longer than one window (nil when it fits): its text's tokens in
    /// windows that fit `max_length` (and llm2vec's `doc_max_length`) beside the special tokens
    /// and the instruction or prompt, consecutive windows sharing `chunkOverlap` tokens. Each
    /// window is framed and pooled as a whole input would be; its weight is its text tokens.
    public func prepareChunks(_ input: EncoderInput, index: Int = 0) throws -> [(row: PreparedInput, weight: Int)]? {
        let prefix: [Int32], text: [Int32], poolsPrefix: Bool
        if let sentenceTransformer {
            let prompt = input.instruction.isEmpty ? defaultPrompt : input.instruction
            prefix = prompt.isEmpty ? [] : encode(prompt)
            text = encode(PythonString.strip(input.text))
            poolsPrefix = sentenceTransformer.includePrompt
        } else {
            prefix = input.instruction.isEmpty ? [] : encode(PythonString.strip(input.instruction) + " ")
            text = encode(input.text)
            poolsPrefix = !options.skipInstruction
        }
        let bos = tokenizer.addsBOS ? tokenizer.bosTokenId.map { [Int32($0)] } ?? [] : []
        let eos = tokenizer.addsEOS ? tokenizer.eosTokenId.map { [Int32($0)] } ?? [] : []
        var room = options.maxLength - bos.count - eos.count - prefix.count
        if sentenceTransformer == nil { room = min(room, options.docMaxLength) }
        guard text.count > room else { return nil }
        guard room >= 2 else {
            throw UnmaskError.invalidInput(source: "input \(index + 1)", reason: "the instruction or prompt (\(prefix.count) tokens) leaves no room for text in max length \(options.maxLength); nothing to chunk")
        }
        let overlap = min(options.chunkOverlap ?? room / 8, room - 1)
        var chunks: [(row: PreparedInput, weight: Int)] = []
        var start = 0
        while true {
            let window = text[start..<min(start + room, text.count)]
            let ids = bos + prefix + window + eos
            let pooled = poolsPrefix ? ids.count : window.count + (sentenceTransformer == nil ? 0 : eos.count)
            chunks.append((PreparedInput(ids: ids, pooledCount: pooled, untruncatedLength: ids.count), window.count))
            if start + room >= text.count { break }
            start += room - overlap
        }
        return chunks
    }

    private func combineChunks(_ parts: [(vector: [Float], weight: Int)]) -> [Float] {
        let total = Double(parts.reduce(0) { $0 + $1.weight })
        var sum = [Double](repeating: 0, count: parts[0].vector.count)
        for part in parts { for d in sum.indices { sum[d] += Double(part.weight) * Double(part.vector[d]) } }
        return SentenceTransformerHead.finish(sum.map { Float($0 / total) }, dimensions: nil, normalize: head.normalize)
    }

    /// Runs one forward pass over `rows` (left-padded to the longest) and pools each; results in
    /// the order given. Callers that batch across requests (the server) use this with `prepare`.
    /// Serialized: one forward at a time per encoder.
    public func embed(_ rows: [PreparedInput]) -> [[Float]] {
        guard !rows.isEmpty else { return [] }
        lock.lock()
        defer { lock.unlock() }
        tokens.add(rows.reduce(0) { $0 + $1.ids.count })
        let batch = TokenBatch(leftPadding: rows.map(\.ids), padding: paddingTokenId)
        let hidden = model.forward(batch, mode: options.attention, workspace: workspace)
        var pooled: [Float] = []
        pooled.reserveCapacity(rows.count * model.config.hiddenSize)
        for row in rows.indices { pooled += pool(hidden, batch: batch, row: row, pooledCount: rows[row].pooledCount) }
        return head.apply(pooled, count: rows.count)
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

    /// Which end of an over-long input `max_length` cuts: the reference tokenizers keep the
    /// start; a server may keep the end (TEI's `truncation_direction: left`).
    public enum Truncation: Sendable { case keepStart, keepEnd }

    /// The input as the model's convention tokenizes it (see the type's documentation). Callers
    /// that refuse over-long inputs compare `untruncatedLength` with `options.maxLength`.
    public func prepare(_ input: EncoderInput, index: Int = 0, truncation: Truncation = .keepStart) throws -> PreparedInput {
        guard let sentenceTransformer else { return try prepareLLM2Vec(input, index: index, truncation: truncation) }
        // sentence-transformers prepends the prompt and strips the result; with include_prompt
        // off, the prompt's tokens (BOS included, a trailing EOS not) are left out of pooling.
        let prompt = input.instruction.isEmpty ? defaultPrompt : input.instruction
        let textIds = encode(PythonString.strip(prompt + input.text))
        let (ids, untruncated) = try framed(textIds, index: index, truncation: truncation)
        var pooled = ids.count
        if !sentenceTransformer.includePrompt, !prompt.isEmpty {
            let promptLength = tokenizer.encode(prompt, addSpecialTokens: false).count + (tokenizer.addsBOS ? 1 : 0)
            pooled = max(0, ids.count - promptLength)
        }
        return PreparedInput(ids: ids, pooledCount: pooled, untruncatedLength: untruncated)
    }

    /// llm2vec's `_convert_to_str` + `prepare_for_tokenization` + `tokenize`, per input.
    private func prepareLLM2Vec(_ input: EncoderInput, index: Int, truncation: Truncation) throws -> PreparedInput {
        var text = input.text
        // doc_max_length: cut whole words in proportion until the text alone fits.
        // The reference measures texts with its tokenizer truncating at max_length; the whole
        // encoding is kept so that callers can truncate at the other end or refuse.
        var fullTextIds = encode(text)
        var textIds = fullTextIds.prefix(options.maxLength)
        while textIds.count > options.docMaxLength {
            let words = PythonString.split(text)
            let keep = Int(Double(words.count) * (Double(options.docMaxLength) / Double(textIds.count)))
            if keep >= 1 {
                text = words.prefix(keep).joined(separator: " ")
                fullTextIds = encode(text)
                textIds = fullTextIds.prefix(options.maxLength)
            } else {
                // Few long "words" (CJK, base64, URLs): llm2vec's proportion rounds to no word and
                // leaves an empty text. Cut by tokens instead (a deliberate difference).
                fullTextIds = Array(textIds.prefix(options.docMaxLength))
                textIds = fullTextIds[...]
                text = tokenizer.decode(fullTextIds.map(Int.init))
            }
        }
        // llm2vec joins "<instruction.strip()> " and the text; for eos-token pooling it strips the
        // joined string and appends the family's EOS text, which then counts as part of the text.
        var instructionPart = input.instruction.isEmpty ? "" : PythonString.strip(input.instruction) + " "
        if options.pooling == .eosToken {
            if instructionPart == " " { instructionPart = "" }
            text = PythonString.rstrip(text) + checkpoint.architecture.eosPoolingSuffix(model.config.nameOrPath)
            fullTextIds = encode(text)
            textIds = fullTextIds.prefix(options.maxLength)
        }
        let joinedIds = instructionPart.isEmpty ? fullTextIds : encode(instructionPart + text)
        let (ids, untruncatedLength) = try framed(joinedIds, index: index, truncation: truncation)
        // Keeping the end keeps the text's last tokens, so all of its kept tokens are pooled.
        let textCount = truncation == .keepStart ? textIds.count : fullTextIds.count
        let pooled = options.skipInstruction ? min(textCount, ids.count) : ids.count
        return PreparedInput(ids: ids, pooledCount: pooled, untruncatedLength: untruncatedLength)
    }

    /// The tokenizer's special tokens around `content`, cut to `max_length` as Hugging Face
    /// tokenizers truncate (the content shortens, the special tokens stay); with the untruncated length.
    private func framed(_ content: [Int32], index: Int, truncation: Truncation) throws -> (ids: [Int32], untruncatedLength: Int) {
        var ids: [Int32] = []
        let specials = (tokenizer.addsBOS ? 1 : 0) + (tokenizer.addsEOS ? 1 : 0)
        let room = max(0, options.maxLength - specials)
        if tokenizer.addsBOS, let bos = tokenizer.bosTokenId { ids.append(Int32(bos)) }
        ids.append(contentsOf: truncation == .keepStart ? content.prefix(room) : content.suffix(room))
        if tokenizer.addsEOS, let eos = tokenizer.eosTokenId { ids.append(Int32(eos)) }
        ids = Array(ids.prefix(options.maxLength))
        guard !ids.isEmpty else {
            throw UnmaskError.invalidInput(source: "input \(index + 1)", reason: "the text is empty and the tokenizer adds no special token, so there is nothing to embed")
        }
        let vocabulary = model.config.vocabularySize
        if let bad = ids.first(where: { Int($0) >= vocabulary }) {
            throw UnmaskError.invalidInput(source: "input \(index + 1)", reason: "token id \(bad) from tokenizer.json is outside the model's vocab_size \(vocabulary)")
        }
        return (ids, specials + content.count)
    }

    private func encode(_ text: String) -> [Int32] {
        tokenizer.encode(text, addSpecialTokens: false).map(Int32.init)
    }

    private func pool(_ hidden: UnsafePointer<Float>, batch: TokenBatch, row b: Int, pooledCount: Int) -> [Float] {
        let h = model.config.hiddenSize
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
        return out
    }
}

