import Foundation
import UnmaskKernels

/// RoPE tables for one batch length: a cos/sin pair per distinct set of frequencies among the
/// layers (Gemma 3's sliding layers have their own base), and each token's position.
final class RotaryTables {
    let length: Int
    let half: Int
    /// Token t of a [batch, length] batch sits at position t % length (left padding shifts every
    /// position of a row alike, and RoPE only sees differences).
    let positions: [Int32]
    private let tables: [(cos: FloatBuffer, sin: FloatBuffer)]
    private let tableOfLayer: [Int]

    init(config c: DecoderConfig, batch: Int, length: Int) {
        self.length = length
        half = c.headDim / 2
        positions = (0..<(batch * length)).map { Int32($0 % length) }
        var distinct: [[Float]] = []
        var tableOfLayer: [Int] = []
        for layer in 0..<c.layerCount {
            let frequencies = c.inverseFrequencies(layer: layer)
            if let index = distinct.firstIndex(of: frequencies) {
                tableOfLayer.append(index)
            } else {
                tableOfLayer.append(distinct.count)
                distinct.append(frequencies)
            }
        }
        self.tableOfLayer = tableOfLayer
        tables = distinct.map { [half] frequencies in
            let cos = FloatBuffer(count: length * half), sin = FloatBuffer(count: length * half)
            // The angle is rounded to float32 first, as transformers computes it.
            for p in 0..<length {
                for i in 0..<half {
                    let angle = Double(Float(p) * frequencies[i])
                    cos[p * half + i] = Float(Foundation.cos(angle))
                    sin[p * half + i] = Float(Foundation.sin(angle))
                }
            }
            return (cos, sin)
        }
    }

    /// Rotates `x` [tokens, heads·headDim] in place (or back, for gradients) with layer `layer`'s table.
    func apply(_ x: UnsafeMutablePointer<Float>, layer: Int, heads: Int, inverse: Bool = false) {
        let table = tables[tableOfLayer[layer]]
        positions.withUnsafeBufferPointer { p in
            Kernels.rope(x, tokens: positions.count, heads: heads, headDim: 2 * half, positions: p.baseAddress!,
                         cos: table.cos.pointer, sin: table.sin.pointer, inverse: inverse)
        }
    }
}

/// What one layer's forward writes, [tokens, ·] row-major. A training set (with a LoRA rank)
/// holds everything the backward reads, and a tape may keep one per layer; an inference set is
/// reused by every layer, with the MLP run in chunks of `mlpRows` rows to bound its
/// [rows, intermediate] buffers.
final class LayerActivations {
    /// The batch the buffers hold now; at most `capacity` tokens in rows of at most `lengthCapacity`.
    private(set) var batch = TokenBatch(ids: [], batch: 0, length: 0, valid: [])
    private(set) var tokens = 0
    let capacity: Int
    let lengthCapacity: Int
    let mlpRows: Int
    let n1, inv1, q, k, v, attention, mid, n2, inv2: FloatBuffer
    /// q/k before their per-head norms, with those norms' 1/rms (training only).
    let qRaw, kRaw, qInverseRMS, kInverseRMS: FloatBuffer?
    /// o_proj's output before its residual add (a LoRA branch cannot add into the residual, and
    /// Gemma normalizes it first), with the norm's 1/rms.
    let attentionOut, attentionOutInverseRMS: FloatBuffer?
    let gate, up, product: FloatBuffer
    /// down_proj's output, likewise, [mlpRows, hidden].
    let mlpOut, mlpOutInverseRMS: FloatBuffer?
    /// LoRA: a branch's dropped input, [tokens, max(hidden, intermediate, q)], and x·Aᵀ per projection.
    let droppedInput: FloatBuffer?
    let xA: [FloatBuffer]
    let attentionScratch: FloatBuffer

    init(config c: DecoderConfig, capacity t: Int, length: Int, loraRank: Int?, mlpRows: Int? = nil) {
        capacity = t
        lengthCapacity = length
        let training = loraRank != nil
        let rows = training ? t : min(t, mlpRows ?? t)
        self.mlpRows = rows
        let h = c.hiddenSize, f = c.intermediateSize
        let sandwich = c.normPlacement == .sandwich
        let separateOutputs = sandwich || training
        n1 = FloatBuffer(count: t * h); inv1 = FloatBuffer(count: t)
        q = FloatBuffer(count: t * c.qDim); k = FloatBuffer(count: t * c.kvDim); v = FloatBuffer(count: t * c.kvDim)
        let keepRaw = training && c.queryKeyNorm
        qRaw = keepRaw ? FloatBuffer(count: t * c.qDim) : nil
        kRaw = keepRaw ? FloatBuffer(count: t * c.kvDim) : nil
        qInverseRMS = keepRaw ? FloatBuffer(count: t * c.headCount) : nil
        kInverseRMS = keepRaw ? FloatBuffer(count: t * c.kvHeadCount) : nil
        attention = FloatBuffer(count: t * c.qDim)
        attentionOut = separateOutputs ? FloatBuffer(count: t * h) : nil
        attentionOutInverseRMS = sandwich ? FloatBuffer(count: t) : nil
        mid = FloatBuffer(count: t * h); n2 = FloatBuffer(count: t * h); inv2 = FloatBuffer(count: t)
        gate = FloatBuffer(count: rows * f); up = FloatBuffer(count: rows * f); product = FloatBuffer(count: rows * f)
        mlpOut = separateOutputs ? FloatBuffer(count: rows * h) : nil
        mlpOutInverseRMS = sandwich ? FloatBuffer(count: t) : nil
        droppedInput = loraRank != nil ? FloatBuffer(count: t * max(h, f, c.qDim)) : nil
        xA = loraRank.map { r in (0..<LoRAProjection.allCases.count).map { _ in FloatBuffer(count: t * r) } } ?? []
        attentionScratch = FloatBuffer(count: Attention.scratchCount(length: length))
    }

    /// Points the buffers at `batch`, which must fit them.
    func bind(_ batch: TokenBatch) {
        precondition(batch.batch * batch.length <= capacity && batch.length <= lengthCapacity)
        self.batch = batch
        tokens = batch.batch * batch.length
    }

    /// The bytes one layer's kept training activations take for `tokens` tokens.
    static func byteCount(config c: DecoderConfig, rank: Int, tokens t: Int) -> Int {
        let h = c.hiddenSize, f = c.intermediateSize
        var perToken = 5 * h + 2 + 2 * c.qDim + 2 * c.kvDim + 3 * f + h + max(h, f, c.qDim) + LoRAProjection.allCases.count * rank
        if c.queryKeyNorm { perToken += c.qDim + c.kvDim + c.headCount + c.kvHeadCount }
        if c.normPlacement == .sandwich { perToken += h + 2 }
        return perToken * t * MemoryLayout<Float>.size
    }
}

/// LoRA on the seven projections of a layer, for a training forward and its backward:
/// out = x·Wᵀ + b + scaling·(drop(x)·Aᵀ)·Bᵀ.
struct LayerLoRA {
    let parameters: LoRATensors
    let scaling: Float
    /// The masks of this forward (nil: dropout off); the backward's recomputation draws the same.
    let dropout: LayerDropout?
}

/// One decoder layer, running the architecture's plan (`DecoderConfig`): norms before attention
/// and MLP, and after each for the sandwich placement; optional per-head q/k norms; RoPE with the
/// layer's base; attention with the layer's pattern and the configured scale; a gated MLP with
/// the configured activation. The same forward serves inference (frozen weights, one reused
/// activation set) and training (LoRA, activations kept per layer); the backward beside it
/// gives the LoRA gradients and the input gradient.
struct DecoderLayer {
    let index: Int
    let config: DecoderConfig
    let weights: DecoderLayerWeights

    // MARK: Forward

    /// x [T, h] → out [T, h]; `out` may be `x`. With `lora`, x·Aᵀ and the dropped inputs land in
    /// `a`. `probabilities` ([batch, heads, L, L]) receives the softmax when given.
    func forward(_ x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, act a: LayerActivations,
                 pattern: AttentionPattern, rotary: RotaryTables, lora: LayerLoRA?,
                 probabilities: UnsafeMutablePointer<Float>? = nil) {
        let c = config, w = weights
        let t = a.tokens, h = c.hiddenSize
        precondition(lora == nil || a.mlpRows >= t, "LoRA runs the MLP in one chunk")
        Kernels.rmsNorm(x, weight: w.attentionNorm.pointer, rows: t, dim: h, eps: c.rmsNormEps, out: a.n1.pointer, inverseRMS: a.inv1.pointer)
        let qOut = a.qRaw ?? a.q, kOut = a.kRaw ?? a.k
        project(.q, a.n1.pointer, rows: t, out: qOut.pointer, act: a, lora: lora)
        project(.k, a.n1.pointer, rows: t, out: kOut.pointer, act: a, lora: lora)
        project(.v, a.n1.pointer, rows: t, out: a.v.pointer, act: a, lora: lora)
        if let queryNorm = w.queryNorm, let keyNorm = w.keyNorm {
            Kernels.rmsNorm(qOut.pointer, weight: queryNorm.pointer, rows: t * c.headCount, dim: c.headDim, eps: c.rmsNormEps,
                            out: a.q.pointer, inverseRMS: a.qInverseRMS?.pointer)
            Kernels.rmsNorm(kOut.pointer, weight: keyNorm.pointer, rows: t * c.kvHeadCount, dim: c.headDim, eps: c.rmsNormEps,
                            out: a.k.pointer, inverseRMS: a.kInverseRMS?.pointer)
        }
        rotary.apply(a.q.pointer, layer: index, heads: c.headCount)
        rotary.apply(a.k.pointer, layer: index, heads: c.kvHeadCount)
        Attention.forward(q: a.q.pointer, k: a.k.pointer, v: a.v.pointer, out: a.attention.pointer,
                          batch: a.batch.batch, length: a.batch.length, heads: c.headCount, kvHeads: c.kvHeadCount, headDim: c.headDim,
                          valid: a.batch.valid, pattern: pattern, scale: c.attentionScale, scratch: a.attentionScratch,
                          probabilities: probabilities, dropout: lora?.dropout?.attention(layer: index))

        // mid = x + [norm](o(attention))
        if UnsafePointer(a.mid.pointer) != x { a.mid.pointer.update(from: x, count: t * h) }
        if let attentionOut = a.attentionOut {
            project(.o, a.attention.pointer, rows: t, out: attentionOut.pointer, act: a, lora: lora)
            if let norm = w.attentionOutputNorm {
                // n2 is free until the MLP norm below: it holds the normalized branch meanwhile.
                Kernels.rmsNorm(attentionOut.pointer, weight: norm.pointer, rows: t, dim: h, eps: c.rmsNormEps,
                                out: a.n2.pointer, inverseRMS: a.attentionOutInverseRMS?.pointer)
                Kernels.addInPlace(a.mid.pointer, a.n2.pointer, count: t * h)
            } else {
                Kernels.addInPlace(a.mid.pointer, attentionOut.pointer, count: t * h)
            }
        } else {
            // The residual add rides on the product: mid += attention · o_projᵀ.
            project(.o, a.attention.pointer, rows: t, out: a.mid.pointer, accumulate: true, act: a, lora: nil)
        }

        // out = mid + [norm](down(act(gate(n2)) · up(n2))), in chunks of mlpRows rows.
        Kernels.rmsNorm(a.mid.pointer, weight: w.mlpNorm.pointer, rows: t, dim: h, eps: c.rmsNormEps, out: a.n2.pointer, inverseRMS: a.inv2.pointer)
        var start = 0
        while start < t {
            let rows = min(a.mlpRows, t - start)
            let n2 = a.n2.pointer + start * h, mid = a.mid.pointer + start * h, y = out + start * h
            project(.gate, n2, rows: rows, out: a.gate.pointer, act: a, lora: lora)
            project(.up, n2, rows: rows, out: a.up.pointer, act: a, lora: lora)
            Kernels.gatedActivation(c.activation, gate: a.gate.pointer, up: a.up.pointer, out: a.product.pointer, count: rows * c.intermediateSize)
            if let mlpOut = a.mlpOut {
                project(.down, a.product.pointer, rows: rows, out: mlpOut.pointer, act: a, lora: lora)
                if let norm = w.mlpOutputNorm {
                    Kernels.rmsNorm(mlpOut.pointer, weight: norm.pointer, rows: rows, dim: h, eps: c.rmsNormEps,
                                    out: y, inverseRMS: a.mlpOutInverseRMS.map { $0.pointer + start })
                    Kernels.addInPlace(y, mid, count: rows * h)
                } else {
                    y.update(from: mid, count: rows * h)
                    Kernels.addInPlace(y, mlpOut.pointer, count: rows * h)
                }
            } else {
                if y != mid { y.update(from: mid, count: rows * h) }
                project(.down, a.product.pointer, rows: rows, out: y, accumulate: true, act: a, lora: nil)
            }
            start += rows
        }
    }

    private func project(_ p: LoRAProjection, _ x: UnsafePointer<Float>, rows: Int, out: UnsafeMutablePointer<Float>,
                         accumulate: Bool = false, act a: LayerActivations, lora: LayerLoRA?) {
        let linear = weights.linear(p)
        linear.forward(x, rows: rows, out: out, accumulate: accumulate)
        guard let lora else { return }
        let pair = lora.parameters[index, p]
        Backward.loraForward(x, rows: rows, inFeatures: linear.inFeatures, outFeatures: linear.outFeatures,
                             loraA: pair.a.pointer, loraB: pair.b.pointer, rank: pair.rank, scaling: lora.scaling,
                             xA: a.xA[p.rawValue].pointer, out: out,
                             dropout: lora.dropout?.lora(layer: index, projection: p), droppedInput: a.droppedInput?.pointer)
    }

    // MARK: Backward

    /// Given dHidden = dLoss/d(out), adds every LoRA gradient of this layer into `gradients` and
    /// leaves dLoss/dx in dHidden. `a` holds this forward's activations (kept or recomputed).
    func backward(input x: UnsafePointer<Float>, act a: LayerActivations, g: LayerGradientBuffers, dHidden: FloatBuffer,
                  pattern: AttentionPattern, rotary: RotaryTables, lora: LayerLoRA, into gradients: LoRATensors) {
        let c = config, w = weights
        let t = a.tokens, h = c.hiddenSize, f = c.intermediateSize
        precondition(a.mlpRows >= t && a.attentionOut != nil && a.mlpOut != nil && (w.queryNorm == nil || a.qRaw != nil),
                     "backward needs a training forward's activations")
        // out = mid + [norm](mlpOut): dMid = dOut + (through the MLP).
        g.dMid.pointer.update(from: dHidden.pointer, count: t * h)
        var dBranch = UnsafePointer(dHidden.pointer)
        if let norm = w.mlpOutputNorm {
            Backward.rmsNorm(dOut: dHidden.pointer, input: a.mlpOut!.pointer, weight: norm.pointer, inverseRMS: a.mlpOutInverseRMS!.pointer,
                             rows: t, dim: h, dInput: g.dBranch.pointer)
            dBranch = UnsafePointer(g.dBranch.pointer)
        }
        loraBackward(.down, dOut: dBranch, x: a.product.pointer, act: a, dInput: g.dProduct.pointer, accumulateInput: false, g: g, lora: lora, into: gradients)
        Backward.gatedActivation(c.activation, dOut: g.dProduct.pointer, gate: a.gate.pointer, up: a.up.pointer,
                                 dGate: g.dGate.pointer, dUp: g.dUp.pointer, count: t * f)
        loraBackward(.gate, dOut: g.dGate.pointer, x: a.n2.pointer, act: a, dInput: g.dNormed.pointer, accumulateInput: false, g: g, lora: lora, into: gradients)
        loraBackward(.up, dOut: g.dUp.pointer, x: a.n2.pointer, act: a, dInput: g.dNormed.pointer, accumulateInput: true, g: g, lora: lora, into: gradients)
        Backward.rmsNorm(dOut: g.dNormed.pointer, input: a.mid.pointer, weight: w.mlpNorm.pointer, inverseRMS: a.inv2.pointer,
                         rows: t, dim: h, dInput: g.dMid.pointer, accumulate: true)

        // mid = x + [norm](o(attention(rope([qnorm](q(n1))), rope([knorm](k(n1))), v(n1)))).
        dHidden.pointer.update(from: g.dMid.pointer, count: t * h)
        dBranch = UnsafePointer(g.dMid.pointer)
        if let norm = w.attentionOutputNorm {
            Backward.rmsNorm(dOut: g.dMid.pointer, input: a.attentionOut!.pointer, weight: norm.pointer, inverseRMS: a.attentionOutInverseRMS!.pointer,
                             rows: t, dim: h, dInput: g.dBranch.pointer)
            dBranch = UnsafePointer(g.dBranch.pointer)
        }
        loraBackward(.o, dOut: dBranch, x: a.attention.pointer, act: a, dInput: g.dAttention.pointer, accumulateInput: false, g: g, lora: lora, into: gradients)
        Backward.attention(q: a.q.pointer, k: a.k.pointer, v: a.v.pointer, dOut: g.dAttention.pointer,
                           dq: g.dq.pointer, dk: g.dk.pointer, dv: g.dv.pointer,
                           batch: a.batch.batch, length: a.batch.length, heads: c.headCount, kvHeads: c.kvHeadCount, headDim: c.headDim,
                           valid: a.batch.valid, pattern: pattern, scale: c.attentionScale, probabilities: nil, scratch: g.attentionScratch,
                           dropout: lora.dropout?.attention(layer: index))
        rotary.apply(g.dq.pointer, layer: index, heads: c.headCount, inverse: true)
        rotary.apply(g.dk.pointer, layer: index, heads: c.kvHeadCount, inverse: true)
        if let queryNorm = w.queryNorm, let keyNorm = w.keyNorm, let qRaw = a.qRaw, let kRaw = a.kRaw {
            // In place: each row's gradient is read whole before it is written.
            Backward.rmsNorm(dOut: g.dq.pointer, input: qRaw.pointer, weight: queryNorm.pointer, inverseRMS: a.qInverseRMS!.pointer,
                             rows: t * c.headCount, dim: c.headDim, dInput: g.dq.pointer)
            Backward.rmsNorm(dOut: g.dk.pointer, input: kRaw.pointer, weight: keyNorm.pointer, inverseRMS: a.kInverseRMS!.pointer,
                             rows: t * c.kvHeadCount, dim: c.headDim, dInput: g.dk.pointer)
        }
        loraBackward(.q, dOut: g.dq.pointer, x: a.n1.pointer, act: a, dInput: g.dNormed.pointer, accumulateInput: false, g: g, lora: lora, into: gradients)
        loraBackward(.k, dOut: g.dk.pointer, x: a.n1.pointer, act: a, dInput: g.dNormed.pointer, accumulateInput: true, g: g, lora: lora, into: gradients)
        loraBackward(.v, dOut: g.dv.pointer, x: a.n1.pointer, act: a, dInput: g.dNormed.pointer, accumulateInput: true, g: g, lora: lora, into: gradients)
        Backward.rmsNorm(dOut: g.dNormed.pointer, input: x, weight: w.attentionNorm.pointer, inverseRMS: a.inv1.pointer,
                         rows: t, dim: h, dInput: dHidden.pointer, accumulate: true)
    }

    private func loraBackward(_ p: LoRAProjection, dOut: UnsafePointer<Float>, x: UnsafePointer<Float>, act a: LayerActivations,
                              dInput: UnsafeMutablePointer<Float>, accumulateInput: Bool, g: LayerGradientBuffers,
                              lora: LayerLoRA, into gradients: LoRATensors) {
        let linear = weights.linear(p), pair = lora.parameters[index, p], d = gradients[index, p]
        // The frozen weight's part (in its stored format, with any unmerged adapters), then the trained pair's.
        linear.weight.backwardInput(dOut, rows: a.tokens, dInput: dInput, accumulate: accumulateInput)
        Backward.lora(dOut: dOut, input: x, xA: a.xA[p.rawValue].pointer, rows: a.tokens, inFeatures: linear.inFeatures, outFeatures: linear.outFeatures,
                      loraA: pair.a.pointer, loraB: pair.b.pointer, rank: pair.rank, scaling: lora.scaling,
                      dA: d.a.pointer, dB: d.b.pointer, dInput: dInput, scratch: g.dXA.pointer,
                      accumulateParameters: true, accumulateInput: true,
                      dropout: lora.dropout?.lora(layer: index, projection: p), droppedInput: a.droppedInput?.pointer)
    }
}

/// Gradient buffers for one layer's backward, [tokens, ·].
final class LayerGradientBuffers {
    let dMid, dNormed, dBranch, dProduct, dGate, dUp, dAttention, dq, dk, dv, dXA, attentionScratch, layerOutput: FloatBuffer

    init(config c: DecoderConfig, rank: Int, tokens t: Int, length: Int) {
        dMid = FloatBuffer(count: t * c.hiddenSize); dNormed = FloatBuffer(count: t * c.hiddenSize)
        dBranch = FloatBuffer(count: c.normPlacement == .sandwich ? t * c.hiddenSize : 0)
        dProduct = FloatBuffer(count: t * c.intermediateSize)
        dGate = FloatBuffer(count: t * c.intermediateSize); dUp = FloatBuffer(count: t * c.intermediateSize)
        dAttention = FloatBuffer(count: t * c.qDim)
        dq = FloatBuffer(count: t * c.qDim); dk = FloatBuffer(count: t * c.kvDim); dv = FloatBuffer(count: t * c.kvDim)
        dXA = FloatBuffer(count: t * rank)
        layerOutput = FloatBuffer(count: t * c.hiddenSize)
        attentionScratch = FloatBuffer(count: Backward.attentionScratchCount(length: length, recompute: true))
    }
}
