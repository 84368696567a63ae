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
/// allocates. Not thread-safe: one workspace per concurrent forward.
public final class DecoderWorkspace: @unchecked Sendable {
    /// MLP rows per chunk: bounds the [tokens, intermediate] activations for long batches while
    /// keeping products large enough for BLAS to run at full speed.
    static let mlpChunk = 1024

    private(set) var tokenCapacity = 0
    private(set) var lengthCapacity = 0
    var hidden = FloatBuffer(count: 0)
    var normed = FloatBuffer(count: 0)
    var q = FloatBuffer(count: 0)
    var k = FloatBuffer(count: 0)
    var v = FloatBuffer(count: 0)
    var attention = FloatBuffer(count: 0)
    var gate = FloatBuffer(count: 0)
    var up = FloatBuffer(count: 0)
    var attentionScratch = FloatBuffer(count: 0)
    var cos = FloatBuffer(count: 0)
    var sin = FloatBuffer(count: 0)
    var positions: [Int32] = []

    public init() {}

    func reserve(tokens: Int, length: Int, config c: DecoderConfig) {
        if tokens > tokenCapacity {
            tokenCapacity = tokens
            hidden = FloatBuffer(count: tokens * c.hiddenSize)
            normed = FloatBuffer(count: tokens * c.hiddenSize)
            q = FloatBuffer(count: tokens * c.qDim)
            k = FloatBuffer(count: tokens * c.kvDim)
            v = FloatBuffer(count: tokens * c.kvDim)
            attention = FloatBuffer(count: tokens * c.qDim)
            let chunk = min(tokens, Self.mlpChunk)
            gate = FloatBuffer(count: chunk * c.intermediateSize)
            up = FloatBuffer(count: chunk * c.intermediateSize)
            positions = [Int32](repeating: 0, count: tokens)
        }
        if length > lengthCapacity {
            lengthCapacity = length
            attentionScratch = FloatBuffer(count: Attention.scratchCount(length: length))
        }
    }
}

/// The decoder stack shared by every supported architecture: embedding, then per layer
/// RMSNorm → attention (GQA, RoPE, optional causal mask) → residual → RMSNorm → SwiGLU → residual,
/// then the final norm. Returns the last hidden state, as `LlamaModel` / llm2vec's `...BiModel` do.
public final class DecoderModel: @unchecked Sendable {
    public let config: DecoderConfig
    public let weights: DecoderWeights
    /// The output projection, loaded only for next-token prediction.
    public let lmHead: WeightTensor?
    private let inverseFrequencies: [Float]

    public init(config: DecoderConfig, weights: DecoderWeights, lmHead: WeightTensor? = nil) {
        self.config = config
        self.weights = weights
        self.lmHead = lmHead
        self.inverseFrequencies = config.inverseFrequencies
    }

    /// Runs the batch; the result, [batch·length, hidden_size], lives in `workspace` until its next use.
    /// An `observer` sees each layer's output and, if it asks, its attention probabilities.
    public func forward(_ batch: TokenBatch, pattern: AttentionPattern, workspace ws: DecoderWorkspace,
                        observer: ForwardObserver? = nil) -> UnsafePointer<Float> {
        let c = config
        let tokens = batch.batch * batch.length
        ws.reserve(tokens: tokens, length: batch.length, config: c)
        fillRotaryTables(length: batch.length, workspace: ws)
        for t in 0..<tokens { ws.positions[t] = Int32(t % batch.length) }

        embeddingForward(ids: batch.ids, out: ws.hidden.pointer)
        let probabilities = observer?.attention != nil ? FloatBuffer(count: batch.batch * c.headCount * batch.length * batch.length) : nil
        for (index, layer) in weights.layers.enumerated() {
            layerForward(layer, batch: batch, pattern: pattern, workspace: ws, probabilities: probabilities?.pointer)
            if let probabilities { observer?.attention?(index, UnsafePointer(probabilities.pointer)) }
            observer?.layer?(index, UnsafePointer(ws.hidden.pointer))
        }
        Kernels.rmsNorm(ws.hidden.pointer, weight: weights.norm.pointer, rows: tokens, dim: c.hiddenSize, eps: c.rmsNormEps, out: ws.normed.pointer)
        return UnsafePointer(ws.normed.pointer)
    }

    // hidden[t, :] = embed_tokens[ids[t], :]
    private func embeddingForward(ids: [Int32], out: UnsafeMutablePointer<Float>) {
        let h = config.hiddenSize
        let table = weights.embedTokens.pointer
        Parallel.chunks(ids.count, minimumPerChunk: 256) { _, range in
            for t in range { (out + t * h).update(from: table + Int(ids[t]) * h, count: h) }
        }
    }

    // hidden[T, H] ← hidden + attn(norm(hidden)); hidden ← hidden + mlp(norm(hidden))
    private func layerForward(_ w: DecoderLayerWeights, batch: TokenBatch, pattern: AttentionPattern, workspace ws: DecoderWorkspace,
                              probabilities: UnsafeMutablePointer<Float>?) {
        let c = config
        let tokens = batch.batch * batch.length
        let h = c.hiddenSize, f = c.intermediateSize
        Kernels.rmsNorm(ws.hidden.pointer, weight: w.inputLayernorm.pointer, rows: tokens, dim: h, eps: c.rmsNormEps, out: ws.normed.pointer)
        linear(ws.normed.pointer, rows: tokens, w.qProj, out: ws.q.pointer)
        linear(ws.normed.pointer, rows: tokens, w.kProj, out: ws.k.pointer)
        linear(ws.normed.pointer, rows: tokens, w.vProj, out: ws.v.pointer)
        ws.positions.withUnsafeBufferPointer { positions in
            Kernels.rope(ws.q.pointer, tokens: tokens, heads: c.headCount, headDim: c.headDim, positions: positions.baseAddress!, cos: ws.cos.pointer, sin: ws.sin.pointer)
            Kernels.rope(ws.k.pointer, tokens: tokens, heads: c.kvHeadCount, headDim: c.headDim, positions: positions.baseAddress!, cos: ws.cos.pointer, sin: ws.sin.pointer)
        }
        Attention.forward(q: ws.q.pointer, k: ws.k.pointer, v: ws.v.pointer, out: ws.attention.pointer,
                          batch: batch.batch, length: batch.length, heads: c.headCount, kvHeads: c.kvHeadCount, headDim: c.headDim,
                          valid: batch.valid, pattern: pattern, scratch: ws.attentionScratch, probabilities: probabilities)
        // The residual add rides on the product: hidden += attention · o_projᵀ.
        linear(ws.attention.pointer, rows: tokens, w.oProj, out: ws.hidden.pointer, accumulate: true)

        Kernels.rmsNorm(ws.hidden.pointer, weight: w.postAttentionLayernorm.pointer, rows: tokens, dim: h, eps: c.rmsNormEps, out: ws.normed.pointer)
        var start = 0
        while start < tokens {
            let rows = min(DecoderWorkspace.mlpChunk, tokens - start)
            linear(ws.normed.pointer + start * h, rows: rows, w.gateProj, out: ws.gate.pointer)
            linear(ws.normed.pointer + start * h, rows: rows, w.upProj, out: ws.up.pointer)
            Kernels.siluMul(gate: ws.gate.pointer, up: ws.up.pointer, out: ws.gate.pointer, count: rows * f)
            linear(ws.gate.pointer, rows: rows, w.downProj, out: ws.hidden.pointer + start * h, accumulate: true)
            start += rows
        }
    }

    /// Next-token logits [rows.count, vocab] for the given rows of a forward's hidden output.
    /// Needs a model loaded with its LM head.
    public func logits(hidden: UnsafePointer<Float>, rows: [Int]) -> [[Float]] {
        guard let lmHead else { preconditionFailure("logits need a model loaded with lmHead: true") }
        let h = config.hiddenSize, vocabulary = lmHead.shape[0]
        let selected = FloatBuffer(count: rows.count * h)
        for (i, row) in rows.enumerated() { (selected.pointer + i * h).update(from: hidden + row * h, count: h) }
        let out = FloatBuffer(count: rows.count * vocabulary)
        Kernels.linear(selected.pointer, rows: rows.count, inFeatures: h, weight: lmHead.pointer, outFeatures: vocabulary, bias: nil, out: out.pointer)
        return (0..<rows.count).map { Array(UnsafeBufferPointer(start: out.pointer + $0 * vocabulary, count: vocabulary)) }
    }

    @inline(__always)
    private func linear(_ x: UnsafePointer<Float>, rows: Int, _ layer: Linear, out: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
        Kernels.linear(x, rows: rows, inFeatures: layer.inFeatures, weight: layer.weight.pointer, outFeatures: layer.outFeatures,
                       bias: layer.bias.map { UnsafePointer($0.pointer) }, out: out, accumulate: accumulate)
    }

    /// cos/sin of position · frequency, the angle rounded to float32 first as transformers does.
    private func fillRotaryTables(length: Int, workspace ws: DecoderWorkspace) {
        let half = config.headDim / 2
        if ws.cos.count < length * half {
            ws.cos = FloatBuffer(count: length * half)
            ws.sin = FloatBuffer(count: length * half)
        }
        for p in 0..<length {
            for i in 0..<half {
                let angle = Double(Float(p) * inverseFrequencies[i])
                ws.cos[p * half + i] = Float(_cos(angle))
                ws.sin[p * half + i] = Float(_sin(angle))
            }
        }
    }
}

@inline(__always) private func _cos(_ x: Double) -> Double { Foundation.cos(x) }
@inline(__always) private func _sin(_ x: Double) -> Double { Foundation.sin(x) }
