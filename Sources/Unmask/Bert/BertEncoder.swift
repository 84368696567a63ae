import Foundation
import UnmaskKernels
import UnmaskTokenizers

/// An encoder-only baseline (all-MiniLM-L6-v2 and other sentence-transformers BERTs) behind the
/// same `TextEmbedder` protocol as the LLM2Vec `Encoder`; its output matches
/// `SentenceTransformer.encode`.
///
/// Settings: the model's sentence-transformers files give pooling, normalization and the maximum
/// length; `configure` may then change `maxLength`, `batchSize`, `pooling` (mean, weighted-mean,
/// last-token, and bos-token meaning [CLS]) and turn `normalize` on (it cannot turn the model's
/// own Normalize module off); the folder's Dense modules apply after pooling, and `dimensions`
/// truncates the result (Matryoshka). `attention` (always bidirectional), `docMaxLength` and
/// `skipInstruction` do not apply; instructions are ignored (MiniLM's model card has none).
public final class BertEncoder: TextEmbedder, @unchecked Sendable {
    public let model: BertModel
    public let tokenizer: Tokenizer
    public let folder: URL
    public let sentenceTransformer: SentenceTransformerConfig
    /// The pooling actually used (the model's, unless `configure` chose another).
    public let pooling: [SentenceTransformerConfig.PoolingMode]
    public let normalize: Bool
    /// The folder's Dense modules and Normalize after pooling, and Matryoshka truncation.
    public let head: SentenceTransformerHead
    /// Tokens per input including [CLS] and [SEP]; longer inputs are truncated.
    public let maxLength: Int
    public let batchSize: Int
    private let name: String

    /// Loads a sentence-transformers BERT folder: config.json (`model_type: "bert"`),
    /// model.safetensors, tokenizer.json, and when present modules.json, 1_Pooling/config.json,
    /// sentence_bert_config.json. `displayName` names it in `label` (default: the folder's name).
    public init(folder path: String, displayName: String? = nil, configure: (inout EncoderOptions) -> Void = { _ in }) throws {
        let folder = URL(fileURLWithPath: path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw UnmaskError.fileNotFound(path: folder.path, what: "a BERT model folder (config.json, model.safetensors, tokenizer.json)")
        }
        self.folder = folder
        model = try BertModel(folder: folder)
        tokenizer = try Checkpoint.loadTokenizer(directory: folder.path)
        sentenceTransformer = try SentenceTransformerConfig.load(folder: folder)
        let config = model.config

        let modelMaximum = sentenceTransformer.maxSequenceLength
            ?? min(tokenizer.modelMaxLength ?? config.maxPositionEmbeddings, config.maxPositionEmbeddings)
        var options = EncoderOptions()
        options.maxLength = modelMaximum
        options.normalize = false
        let defaultPooling = Self.encoderPooling(sentenceTransformer.pooling)
        options.pooling = defaultPooling ?? .mean
        configure(&options)
        try options.validate()
        guard options.longInputs == .truncate else {
            throw UnmaskError.invalidInput(source: "--long chunk", reason: "chunks inputs for decoder models; this BERT encoder truncates at \(options.maxLength) tokens")
        }
        guard options.maxLength <= config.maxPositionEmbeddings else {
            throw UnmaskError.invalidInput(source: "options", reason: "max length \(options.maxLength) exceeds the model's max_position_embeddings \(config.maxPositionEmbeddings)")
        }
        let specials = tokenizer.prefixTokenIds.count + tokenizer.suffixTokenIds.count
        guard options.maxLength > specials else {
            throw UnmaskError.invalidInput(source: "options", reason: "max length \(options.maxLength) leaves no room for text after the \(specials) special tokens")
        }
        if let defaultPooling, options.pooling == defaultPooling {
            pooling = sentenceTransformer.pooling
        } else if defaultPooling == nil, options.pooling == .mean {
            // The model's own combination (max, mean_sqrt_len, several modes), untouched.
            pooling = sentenceTransformer.pooling
        } else {
            switch options.pooling {
            case .mean: pooling = [.mean]
            case .weightedMean: pooling = [.weightedMean]
            case .lastToken: pooling = [.lastToken]
            case .bosToken: pooling = [.cls]
            case .eosToken:
                throw UnmaskError.invalidInput(source: "options", reason: "eos-token pooling is llm2vec's and does not apply to a BERT encoder (use mean, weighted-mean, last-token or bos-token for [CLS])")
            }
        }
        normalize = sentenceTransformer.normalize || options.normalize
        head = try SentenceTransformerHead(folder: folder, config: sentenceTransformer, inputDimension: config.hiddenSize * pooling.count,
                                           normalize: options.normalize, dimensions: options.dimensions)
        maxLength = options.maxLength
        batchSize = options.batchSize
        name = displayName ?? Self.displayName(folder)
    }

    /// The `EncoderOptions` pooling equal to the model's, when there is one.
    private static func encoderPooling(_ modes: [SentenceTransformerConfig.PoolingMode]) -> Pooling? {
        guard modes.count == 1 else { return nil }
        switch modes[0] {
        case .mean: return .mean
        case .weightedMean: return .weightedMean
        case .lastToken: return .lastToken
        case .cls: return .bosToken
        case .max, .meanSqrtLen: return nil
        }
    }

    private static func displayName(_ folder: URL) -> String {
        let last = folder.lastPathComponent
        // PyPI packages keep the model in <package>/model.
        return last == "model" ? folder.deletingLastPathComponent().lastPathComponent : last
    }

    public var dimension: Int { head.dimension }

    public var tokensProcessed: Int { tokens.value }
    private let tokens = TokenCounter()

    public var label: String {
        let modes = pooling.map(\.rawValue).joined(separator: "+")
        return "\(name), bert, \(modes) pooling" + (normalize ? ", normalized" : "")
    }

    /// Token ids as fed to the model: [CLS] + the text's word pieces cut to fit + [SEP].
    public func tokenize(_ text: String) -> [Int32] {
        let input = sentenceTransformer.lowercase ? text.lowercased() : text
        let prefix = tokenizer.prefixTokenIds, suffix = tokenizer.suffixTokenIds
        let body = tokenizer.encode(input, addSpecialTokens: false).prefix(maxLength - prefix.count - suffix.count)
        return (prefix + body + suffix).map(Int32.init)
    }

    /// Embeds `inputs` (instructions ignored), one vector per input in input order; inputs are
    /// sorted by length so each batch pads little. `progress(done, total)` after each batch.
    public func encode(_ inputs: [EncoderInput], progress: ((Int, Int) -> Void)? = nil) throws -> [[Float]] {
        let rows = inputs.map { tokenize($0.text) }
        for (index, row) in rows.enumerated() {
            if let bad = row.first(where: { $0 < 0 || Int($0) >= model.config.vocabSize }) {
                throw UnmaskError.invalidInput(source: "input \(index + 1)", reason: "token id \(bad) from tokenizer.json is outside the model's vocab_size \(model.config.vocabSize)")
            }
            if row.isEmpty {
                throw UnmaskError.invalidInput(source: "input \(index + 1)", reason: "the tokenizer adds no special tokens and the text is empty, so there is nothing to embed")
            }
        }
        let order = rows.indices.sorted { (rows[$0].count, $1) > (rows[$1].count, $0) }
        var results = [[Float]](repeating: [], count: inputs.count)
        var start = 0
        while start < order.count {
            let batch = Array(order[start..<min(start + batchSize, order.count)])
            for (index, embedding) in zip(batch, embed(batch.map { rows[$0] })) { results[index] = embedding }
            start += batch.count
            progress?(start, order.count)
        }
        return results
    }

    /// One forward pass over `rows` (right-padded to the longest), pooled per row.
    public func embed(_ rows: [[Int32]]) -> [[Float]] {
        guard !rows.isEmpty else { return [] }
        tokens.add(rows.reduce(0) { $0 + $1.count })
        let length = rows.map(\.count).max() ?? 0
        var ids = [Int32](repeating: Int32(model.config.padTokenId), count: rows.count * length)
        for (b, row) in rows.enumerated() {
            for (t, id) in row.enumerated() { ids[b * length + t] = id }
        }
        let valid = rows.map { 0..<$0.count }
        let hidden = model.forward(ids: ids, batch: rows.count, length: length, valid: valid)
        let pooled = rows.indices.flatMap { b in pool(hidden.pointer + b * length * model.config.hiddenSize, count: valid[b].count) }
        return head.apply(pooled, count: rows.count)
    }

    /// sentence-transformers' Pooling (modes concatenated in its order); the head does the rest.
    private func pool(_ states: UnsafePointer<Float>, count n: Int) -> [Float] {
        let h = model.config.hiddenSize
        var out: [Float] = []
        out.reserveCapacity(h * pooling.count)
        for mode in pooling {
            var part = [Double](repeating: 0, count: h)
            switch mode {
            case .cls:
                for d in 0..<h { part[d] = Double(states[d]) }
            case .lastToken:
                for d in 0..<h { part[d] = Double(states[(n - 1) * h + d]) }
            case .max:
                for d in 0..<h { part[d] = -.infinity }
                for t in 0..<n { for d in 0..<h { part[d] = max(part[d], Double(states[t * h + d])) } }
            case .mean, .meanSqrtLen, .weightedMean:
                var total = 0.0
                for t in 0..<n {
                    let weight = mode == .weightedMean ? Double(t + 1) : 1
                    total += weight
                    for d in 0..<h { part[d] += weight * Double(states[t * h + d]) }
                }
                let divisor = mode == .meanSqrtLen ? Double(n).squareRoot() : total
                for d in 0..<h { part[d] /= divisor }
            }
            out += part.map { Float($0) }
        }
        return out
    }
}
