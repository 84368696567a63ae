import Foundation
import UnmaskKernels

/// Token ids of a batch of left-padded rows, flattened [batch, length].
public struct TokenBatch: Sendable {
    public var ids: [Int32]
    public var batch: Int
    public var length: Int
    /// Row b's non-padding span (left padding: `pad..<length`).
    public var valid: [Range<Int>]

    public init(ids: [Int32], batch: Int, length: Int, valid: [Range<Int>]) {
        precondition(ids.count == batch * length && valid.count == batch)
        self.ids = ids
        self.batch = batch
        self.length = length
        self.valid = valid
    }

    /// Left-pads `rows` with `padding` to the longest row, as llm2vec does.
    public init(leftPadding rows: [[Int32]], padding: Int32) {
        let length = rows.map(\.count).max() ?? 0
        var ids = [Int32](repeating: padding, count: rows.count * length)
        var valid: [Range<Int>] = []
        for (b, row) in rows.enumerated() {
            let start = length - row.count
            for (j, id) in row.enumerated() { ids[b * length + start + j] = id }
            valid.append(start..<length)
        }
        self.init(ids: ids, batch: rows.count, length: length, valid: valid)
    }
}

/// Looks inside a forward pass, for analyses. Both are called once per layer, in order, with
/// buffers that are only valid during the call.
public struct ForwardObserver {
    /// (layer, hidden [batch·length, hidden_size]): the residual stream after the layer.
    public var layer: ((Int, UnsafePointer<Float>) -> Void)?
    /// (layer, probabilities [batch, heads, length, length]): softmax outputs; setting this costs
    /// batch·heads·length² floats.
    public var attention: ((Int, UnsafePointer<Float>) -> Void)?

    public init(layer: ((Int, UnsafePointer<Float>) -> Void)? = nil, attention: ((Int, UnsafePointer<Float>) -> Void)? = nil) {
        self.layer = layer
        self.attention = attention
    }
}

/// Buffers for one forward pass, grown on demand and reused across batches so the hot path never
/// allocates (RoPE tables are remade when the batch shape changes). Not thread-safe: one
/// workspace per concurrent forward.
public final class DecoderWorkspace: @unchecked Sendable {
    /// MLP rows per chunk: bounds the [tokens, intermediate] activations for long batches while
    /// keeping products large enough for BLAS to run at full speed.
    static let mlpChunk = 1024

    var hidden = FloatBuffer(count: 0)
    var normed = FloatBuffer(count: 0)
    var activations: LayerActivations?
    var rotary: RotaryTables?
    private var rotaryShape = (batch: 0, length: 0)

    public init() {}

    func reserve(_ batch: TokenBatch, config c: DecoderConfig) -> (LayerActivations, RotaryTables) {
        let tokens = batch.batch * batch.length
        if tokens * c.hiddenSize > hidden.count {
            hidden = FloatBuffer(count: tokens * c.hiddenSize)
            normed = FloatBuffer(count: tokens * c.hiddenSize)
        }
        if let a = activations, a.capacity >= tokens, a.lengthCapacity >= batch.length {
            a.bind(batch)
        } else {
            let a = LayerActivations(config: c, capacity: max(tokens, activations?.capacity ?? 0),
                                     length: max(batch.length, activations?.lengthCapacity ?? 0), loraRank: nil, mlpRows: Self.mlpChunk)
            a.bind(batch)
            activations = a
        }
        if rotary == nil || rotaryShape != (batch.batch, batch.length) {
            rotary = RotaryTables(config: c, batch: batch.batch, length: batch.length)
            rotaryShape = (batch.batch, batch.length)
        }
        return (activations!, rotary!)
    }
}

/// The decoder stack shared by every supported architecture: the (scaled) embedding, then the
/// layers of `DecoderLayer` as the config's plan wires them, then the final norm. Returns the
/// last hidden state, as `LlamaModel` / llm2vec's `...BiModel` do.
public final class DecoderModel: @unchecked Sendable {
    public let config: DecoderConfig
    public let weights: DecoderWeights
    /// The output projection, loaded only for next-token prediction.
    public let lmHead: LinearWeight?
    let layers: [DecoderLayer]

    public init(config: DecoderConfig, weights: DecoderWeights, lmHead: LinearWeight? = nil) {
        self.config = config
        self.weights = weights
        self.lmHead = lmHead
        layers = weights.layers.enumerated().map { DecoderLayer(index: $0.offset, config: config, weights: $0.element) }
    }

    /// The keys layer `layer` lets a query see in `mode`, windows included.
    public func attentionPattern(layer: Int, mode: AttentionMode) -> AttentionPattern {
        config.attentionPattern(layer: layer, causal: mode == .causal)
    }

    /// Runs the batch; the result, [batch·length, hidden_size], lives in `workspace` until its next use.
    /// An `observer` sees each layer's output and, if it asks, its attention probabilities.
    public func forward(_ batch: TokenBatch, mode: AttentionMode, workspace ws: DecoderWorkspace,
                        observer: ForwardObserver? = nil) -> UnsafePointer<Float> {
        let c = config
        let tokens = batch.batch * batch.length
        let (activations, rotary) = ws.reserve(batch, config: c)
        embeddingForward(ids: batch.ids, out: ws.hidden.pointer)
        let probabilities = observer?.attention != nil ? FloatBuffer(count: batch.batch * c.headCount * batch.length * batch.length) : nil
        for layer in layers {
            layer.forward(ws.hidden.pointer, out: ws.hidden.pointer, act: activations, pattern: attentionPattern(layer: layer.index, mode: mode),
                          rotary: rotary, lora: nil, probabilities: probabilities?.pointer)
            if let probabilities { observer?.attention?(layer.index, UnsafePointer(probabilities.pointer)) }
            observer?.layer?(layer.index, UnsafePointer(ws.hidden.pointer))
        }
        Kernels.rmsNorm(ws.hidden.pointer, weight: weights.norm.pointer, rows: tokens, dim: c.hiddenSize, eps: c.rmsNormEps, out: ws.normed.pointer)
        return UnsafePointer(ws.normed.pointer)
    }

    /// hidden[t, :] = embed_tokens[ids[t], :] · embeddingScale
    func embeddingForward(ids: [Int32], out: UnsafeMutablePointer<Float>) {
        let h = config.hiddenSize
        let table = weights.embedTokens
        let scale = config.embeddingScale
        Parallel.chunks(ids.count, minimumPerChunk: 256) { _, range in
            for t in range {
                let row = out + t * h
                table.row(Int(ids[t]), into: row)
                if let scale { for j in 0..<h { row[j] *= scale } }
            }
        }
    }

    /// Next-token logits [rows.count, vocab] for the given rows of a forward's hidden output.
    /// Needs a model loaded with its LM head.
    public func logits(hidden: UnsafePointer<Float>, rows: [Int]) -> [[Float]] {
        guard let lmHead else { preconditionFailure("logits need a model loaded with lmHead: true") }
        let h = config.hiddenSize, vocabulary = lmHead.rows
        let selected = FloatBuffer(count: rows.count * h)
        for (i, row) in rows.enumerated() { (selected.pointer + i * h).update(from: hidden + row * h, count: h) }
        let out = FloatBuffer(count: rows.count * vocabulary)
        lmHead.forward(selected.pointer, rows: rows.count, bias: nil, out: out.pointer)
        return (0..<rows.count).map { Array(UnsafeBufferPointer(start: out.pointer + $0 * vocabulary, count: vocabulary)) }
    }
}
