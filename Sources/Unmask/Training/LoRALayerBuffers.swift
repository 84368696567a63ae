import Foundation
import UnmaskKernels

/// One layer's activations for a batch (forward, recomputed in the backward).
final class LoRALayerActivations {
    /// Same token count as the one the buffers were made for (`bind` changes the rest).
    private(set) var batch: TokenBatch
    let tokens: Int
    let n1, inv1, q, k, v, attention, mid, n2, inv2, gate, up, product: FloatBuffer
    /// A LoRA branch's dropped input, [tokens, max(hidden, intermediate)].
    let droppedInput: FloatBuffer
    let xA: [FloatBuffer]
    let attentionScratch: FloatBuffer
    let cos, sin: FloatBuffer
    let positions: [Int32]
    let headDim: Int

    init(config c: DecoderConfig, rank: Int, batch: TokenBatch, inverseFrequencies: [Float]) {
        self.batch = batch
        let t = batch.batch * batch.length
        tokens = t
        headDim = c.headDim
        n1 = FloatBuffer(count: t * c.hiddenSize); inv1 = FloatBuffer(count: t)
        q = FloatBuffer(count: t * c.qDim); k = FloatBuffer(count: t * c.kvDim); v = FloatBuffer(count: t * c.kvDim)
        attention = FloatBuffer(count: t * c.qDim)
        mid = FloatBuffer(count: t * c.hiddenSize); n2 = FloatBuffer(count: t * c.hiddenSize); inv2 = FloatBuffer(count: t)
        gate = FloatBuffer(count: t * c.intermediateSize); up = FloatBuffer(count: t * c.intermediateSize)
        product = FloatBuffer(count: t * c.intermediateSize)
        droppedInput = FloatBuffer(count: t * max(c.hiddenSize, c.intermediateSize, c.qDim))
        xA = (0..<LoRAProjection.allCases.count).map { _ in FloatBuffer(count: t * rank) }
        attentionScratch = FloatBuffer(count: Attention.scratchCount(length: batch.length))
        let half = c.headDim / 2
        cos = FloatBuffer(count: batch.length * half); sin = FloatBuffer(count: batch.length * half)
        // Same tables as DecoderModel: the angle rounded to float32 first, as transformers does.
        for p in 0..<batch.length {
            for i in 0..<half {
                let angle = Double(Float(p) * inverseFrequencies[i])
                cos[p * half + i] = Float(Foundation.cos(angle))
                sin[p * half + i] = Float(Foundation.sin(angle))
            }
        }
        positions = (0..<t).map { Int32($0 % batch.length) }
    }

    /// Reuses the buffers for another batch of the same shape (its ids and padding differ).
    func bind(_ other: TokenBatch) {
        precondition(other.batch * other.length == tokens && other.length == batch.length)
        batch = other
    }

    /// The floats one layer's activations hold for `tokens` tokens, in bytes.
    static func byteCount(config c: DecoderConfig, rank: Int, tokens t: Int) -> Int {
        let perToken = 3 * c.hiddenSize + 2 + c.qDim * 2 + 2 * c.kvDim + 3 * c.intermediateSize
            + max(c.hiddenSize, c.intermediateSize, c.qDim) + LoRAProjection.allCases.count * rank
        return perToken * t * MemoryLayout<Float>.size
    }

    func rope(_ x: UnsafeMutablePointer<Float>, heads: Int, inverse: Bool) {
        positions.withUnsafeBufferPointer { p in
            if inverse {
                Backward.rope(x, tokens: tokens, heads: heads, headDim: headDim, positions: p.baseAddress!, cos: cos.pointer, sin: sin.pointer)
            } else {
                Kernels.rope(x, tokens: tokens, heads: heads, headDim: headDim, positions: p.baseAddress!, cos: cos.pointer, sin: sin.pointer)
            }
        }
    }
}

/// Gradient buffers for one layer's backward.
final class LoRALayerGradientBuffers {
    let dMid, dNormed, dProduct, dGate, dUp, dAttention, dq, dk, dv, dXA, attentionScratch, layerOutput: FloatBuffer
    /// The masks of the layer being differentiated.
    var dropout: LayerDropout?

    init(config c: DecoderConfig, rank: Int, tokens t: Int, length: Int) {
        dMid = FloatBuffer(count: t * c.hiddenSize); dNormed = FloatBuffer(count: t * c.hiddenSize)
        dProduct = FloatBuffer(count: t * c.intermediateSize)
        dGate = FloatBuffer(count: t * c.intermediateSize); dUp = FloatBuffer(count: t * c.intermediateSize)
        dAttention = FloatBuffer(count: t * c.qDim)
        dq = FloatBuffer(count: t * c.qDim); dk = FloatBuffer(count: t * c.kvDim); dv = FloatBuffer(count: t * c.kvDim)
        dXA = FloatBuffer(count: t * rank)
        layerOutput = FloatBuffer(count: t * c.hiddenSize)
        attentionScratch = FloatBuffer(count: Backward.attentionScratchCount(length: length, recompute: true))
    }
}

/// The dropout masks of one forward pass: an independent stream per layer and site.
struct LayerDropout {
    let loraMask: Dropout?
    let attentionMask: Dropout?

    /// nil when both probabilities are 0.
    init?(seed: UInt64, lora: Float, attention: Float) {
        loraMask = Dropout(probability: lora, seed: seed)
        attentionMask = Dropout(probability: attention, seed: seed ^ 0xA77E_4710_0000_0000)
        if loraMask == nil, attentionMask == nil { return nil }
    }

    func lora(layer: Int, projection: LoRAProjection) -> Dropout? {
        loraMask?.derived(UInt64(layer * LoRAProjection.allCases.count + projection.rawValue))
    }

    func attention(layer: Int) -> Dropout? { attentionMask?.derived(UInt64(layer)) }
}

/// Layer activations of released tapes, reused by the next forward of the same shape (allocating
/// and page-faulting a gigabyte per step would cost more than a few percent).
final class ActivationPool: @unchecked Sendable {
    private let lock = NSLock()
    private var free: [LoRALayerActivations] = []

    /// `count` activations for batches of `tokens` tokens in rows of `length`: pooled ones where
    /// they fit, `make()`'s otherwise.
    func take(_ count: Int, tokens: Int, length: Int, make: () -> LoRALayerActivations) -> [LoRALayerActivations] {
        lock.lock()
        var taken: [LoRALayerActivations] = []
        // Shapes change rarely; buffers of other shapes are dropped rather than hoarded.
        free.removeAll { $0.tokens != tokens || $0.batch.length != length }
        while taken.count < count, let a = free.popLast() { taken.append(a) }
        lock.unlock()
        while taken.count < count { taken.append(make()) }
        return taken
    }

    func give(_ activations: [LoRALayerActivations]) {
        lock.lock()
        free.append(contentsOf: activations)
        lock.unlock()
    }
}
