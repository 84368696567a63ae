import Foundation
import UnmaskKernels

/// What a training forward keeps for its backward: each layer's input hidden state, the last
/// layer's output and the final norm's output; and, when they fit the decoder's
/// `activationBudget`, every layer's activations. Otherwise the backward recomputes each layer's
/// activations from its input (gradient checkpointing): a third more arithmetic, a fraction of the memory.
public final class TrainingTape: @unchecked Sendable {
    public let batch: TokenBatch
    public let pattern: AttentionPattern
    /// The masks this forward drew (nil: no dropout); the backward's recomputation draws the same.
    let dropout: LayerDropout?
    let layerInputs: [FloatBuffer]
    let finalHidden: FloatBuffer
    let finalInverseRMS: FloatBuffer
    /// Per layer, when kept (nil: recomputed in the backward).
    var activations: [LoRALayerActivations]?
    /// Where kept activations go back to when the tape is released.
    weak var pool: ActivationPool?
    /// The model's output (final norm), [batch·length, hidden].
    public let output: FloatBuffer

    init(batch: TokenBatch, pattern: AttentionPattern, dropout: LayerDropout?, layers: Int, tokens: Int, hidden: Int) {
        self.batch = batch
        self.pattern = pattern
        self.dropout = dropout
        layerInputs = (0..<layers).map { _ in FloatBuffer(count: tokens * hidden) }
        finalHidden = FloatBuffer(count: tokens * hidden)
        finalInverseRMS = FloatBuffer(count: tokens)
        output = FloatBuffer(count: tokens * hidden)
    }

    deinit { if let activations { pool?.give(activations) } }
}

/// A frozen `DecoderModel` with LoRA on q, k, v, o, gate, up and down of every layer
/// (out = x·Wᵀ + b + (alpha/rank)·(x·Aᵀ)·Bᵀ), and the backward that gives every LoRA A and B
/// its loss gradient.
///
/// Dropout, as PEFT and transformers apply it in training: `loraDropout` on each LoRA branch's
/// input (an independent mask per projection), `attentionDropout` on the attention probabilities.
/// It is on for a forward given a `dropoutSeed`; each (seed, layer, site) draws its own mask.
public final class LoRADecoder: @unchecked Sendable {
    public let model: DecoderModel
    public let rank: Int
    public let alpha: Float
    public var scaling: Float { alpha / Float(rank) }
    public let parameters: LoRATensors
    public var loraDropout: Float = 0
    public var attentionDropout: Float = 0
    /// Bytes of layer activations a tape may keep to spare the backward their recomputation.
    public var activationBudget = 3 << 30
    private let pool = ActivationPool()
    private let inverseFrequencies: [Float]
    /// Layer activations and gradient buffers of the last batch shape, reused while it repeats
    /// (training batches mostly share one shape). Not thread-safe: one decoder trains on one thread.
    private var workspace: (tokens: Int, length: Int, activations: LoRALayerActivations, gradients: LoRALayerGradientBuffers)?

    /// LoRA initialized as PEFT does by default: A uniform in ±1/√in (Kaiming-uniform with a=√5),
    /// B zero, so the adapted model starts equal to the base.
    public init(model: DecoderModel, rank: Int = 8, alpha: Float = 16, seed: UInt64 = 0) {
        self.model = model
        self.rank = rank
        self.alpha = alpha
        parameters = LoRATensors(model: model, rank: rank)
        inverseFrequencies = model.config.inverseFrequencies
        var state = seed &+ 0x9E37_79B9_7F4A_7C15
        func next() -> Float {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(state >> 40) / Float(1 << 24)
        }
        for layer in parameters.layers {
            for pair in layer {
                let bound = 1 / Float(pair.inFeatures).squareRoot()
                for i in 0..<pair.a.count { pair.a[i] = (2 * next() - 1) * bound }
            }
        }
    }

    // MARK: Forward

    /// Runs the batch, keeping what the backward needs. With a `dropoutSeed`, dropout is on.
    public func forward(_ batch: TokenBatch, pattern: AttentionPattern, dropoutSeed: UInt64? = nil) -> TrainingTape {
        let c = model.config
        let tokens = batch.batch * batch.length, h = c.hiddenSize
        let dropout = dropoutSeed.flatMap { LayerDropout(seed: $0, lora: loraDropout, attention: attentionDropout) }
        let tape = TrainingTape(batch: batch, pattern: pattern, dropout: dropout, layers: c.layerCount, tokens: tokens, hidden: h)
        let keep = LoRALayerActivations.byteCount(config: c, rank: rank, tokens: tokens) * c.layerCount <= activationBudget
        if keep {
            tape.activations = pool.take(c.layerCount, tokens: tokens, length: batch.length) {
                LoRALayerActivations(config: c, rank: rank, batch: batch, inverseFrequencies: inverseFrequencies)
            }
            for a in tape.activations! { a.bind(batch) }
            tape.pool = pool
        }
        let shared = keep ? nil : buffers(for: batch).activations
        let hidden = FloatBuffer(count: tokens * h)
        let table = model.weights.embedTokens.pointer
        for t in 0..<tokens { (hidden.pointer + t * h).update(from: table + Int(batch.ids[t]) * h, count: h) }
        for l in 0..<c.layerCount {
            tape.layerInputs[l].pointer.update(from: hidden.pointer, count: tokens * h)
            layerForward(l, input: tape.layerInputs[l].pointer, act: tape.activations?[l] ?? shared!, out: hidden.pointer, pattern: pattern, dropout: dropout)
        }
        tape.finalHidden.pointer.update(from: hidden.pointer, count: tokens * h)
        Kernels.rmsNorm(hidden.pointer, weight: model.weights.norm.pointer, rows: tokens, dim: h, eps: c.rmsNormEps,
                        out: tape.output.pointer, inverseRMS: tape.finalInverseRMS.pointer)
        return tape
    }

    /// The buffers for a batch's shape, allocated when the shape changes.
    private func buffers(for batch: TokenBatch) -> (activations: LoRALayerActivations, gradients: LoRALayerGradientBuffers) {
        let tokens = batch.batch * batch.length
        if let w = workspace, w.tokens == tokens, w.length == batch.length {
            w.activations.bind(batch)
            return (w.activations, w.gradients)
        }
        let activations = LoRALayerActivations(config: model.config, rank: rank, batch: batch, inverseFrequencies: inverseFrequencies)
        let gradients = LoRALayerGradientBuffers(config: model.config, rank: rank, tokens: tokens, length: batch.length)
        workspace = (tokens, batch.length, activations, gradients)
        return (activations, gradients)
    }

    private func lora(_ l: Int, _ p: LoRAProjection, _ x: UnsafePointer<Float>, act a: LoRALayerActivations, out: UnsafeMutablePointer<Float>, dropout: LayerDropout?) {
        let w = p.linear(model.weights.layers[l]), pair = parameters[l, p]
        Backward.loraForward(x, rows: a.tokens, inFeatures: w.inFeatures, weight: w.weight.pointer, outFeatures: w.outFeatures,
                             bias: w.bias.map { UnsafePointer($0.pointer) }, loraA: pair.a.pointer, loraB: pair.b.pointer,
                             rank: rank, scaling: scaling, xA: a.xA[p.rawValue].pointer, out: out,
                             dropout: dropout?.lora(layer: l, projection: p), droppedInput: a.droppedInput.pointer)
    }

    /// One layer from `input`, keeping its activations in `act`; writes the layer output to `out`.
    private func layerForward(_ l: Int, input x: UnsafePointer<Float>, act a: LoRALayerActivations, out: UnsafeMutablePointer<Float>,
                              pattern: AttentionPattern, dropout: LayerDropout?) {
        let c = model.config, w = model.weights.layers[l]
        let tokens = a.tokens, h = c.hiddenSize
        Kernels.rmsNorm(x, weight: w.inputLayernorm.pointer, rows: tokens, dim: h, eps: c.rmsNormEps, out: a.n1.pointer, inverseRMS: a.inv1.pointer)
        lora(l, .q, a.n1.pointer, act: a, out: a.q.pointer, dropout: dropout)
        lora(l, .k, a.n1.pointer, act: a, out: a.k.pointer, dropout: dropout)
        lora(l, .v, a.n1.pointer, act: a, out: a.v.pointer, dropout: dropout)
        a.rope(a.q.pointer, heads: c.headCount, inverse: false)
        a.rope(a.k.pointer, heads: c.kvHeadCount, inverse: false)
        Attention.forward(q: a.q.pointer, k: a.k.pointer, v: a.v.pointer, out: a.attention.pointer,
                          batch: a.batch.batch, length: a.batch.length, heads: c.headCount, kvHeads: c.kvHeadCount, headDim: c.headDim,
                          valid: a.batch.valid, pattern: pattern, scratch: a.attentionScratch, dropout: dropout?.attention(layer: l))
        lora(l, .o, a.attention.pointer, act: a, out: a.mid.pointer, dropout: dropout)
        Kernels.addInPlace(a.mid.pointer, x, count: tokens * h)
        Kernels.rmsNorm(a.mid.pointer, weight: w.postAttentionLayernorm.pointer, rows: tokens, dim: h, eps: c.rmsNormEps, out: a.n2.pointer, inverseRMS: a.inv2.pointer)
        lora(l, .gate, a.n2.pointer, act: a, out: a.gate.pointer, dropout: dropout)
        lora(l, .up, a.n2.pointer, act: a, out: a.up.pointer, dropout: dropout)
        Kernels.siluMul(gate: a.gate.pointer, up: a.up.pointer, out: a.product.pointer, count: tokens * c.intermediateSize)
        lora(l, .down, a.product.pointer, act: a, out: out, dropout: dropout)
        Kernels.addInPlace(out, a.mid.pointer, count: tokens * h)
    }

    // MARK: Backward

    /// Adds the gradient of every LoRA A and B into `gradients`, given dOutput, the loss gradient
    /// of `tape.output` [batch·length, hidden]. Each layer's activations are recomputed from its
    /// saved input.
    public func backward(_ tape: TrainingTape, dOutput: UnsafePointer<Float>, into gradients: LoRATensors) {
        let c = model.config, batch = tape.batch
        let tokens = batch.batch * batch.length, h = c.hiddenSize
        let (act, g) = buffers(for: batch)
        let dHidden = FloatBuffer(count: tokens * h)
        Backward.rmsNorm(dOut: dOutput, input: tape.finalHidden.pointer, weight: model.weights.norm.pointer,
                         inverseRMS: tape.finalInverseRMS.pointer, rows: tokens, dim: h, dInput: dHidden.pointer)
        for l in stride(from: c.layerCount - 1, through: 0, by: -1) {
            let x = tape.layerInputs[l].pointer
            let layerActivations: LoRALayerActivations
            if let kept = tape.activations {
                layerActivations = kept[l]
            } else {
                layerActivations = act
                layerForward(l, input: x, act: act, out: g.layerOutput.pointer, pattern: tape.pattern, dropout: tape.dropout)
            }
            layerBackward(l, input: x, act: layerActivations, g: g, dHidden: dHidden, pattern: tape.pattern, dropout: tape.dropout, into: gradients)
        }
    }

    private func loraBackward(_ l: Int, _ p: LoRAProjection, dOut: UnsafePointer<Float>, x: UnsafePointer<Float>, act a: LoRALayerActivations,
                              dInput: UnsafeMutablePointer<Float>, accumulateInput: Bool, g: LoRALayerGradientBuffers, into gradients: LoRATensors) {
        let w = p.linear(model.weights.layers[l]), pair = parameters[l, p], d = gradients[l, p]
        Backward.lora(dOut: dOut, input: x, xA: a.xA[p.rawValue].pointer, rows: a.tokens, inFeatures: w.inFeatures, outFeatures: w.outFeatures,
                      weight: w.weight.pointer, loraA: pair.a.pointer, loraB: pair.b.pointer, rank: rank, scaling: scaling,
                      dA: d.a.pointer, dB: d.b.pointer, dInput: dInput, scratch: g.dXA.pointer,
                      accumulateParameters: true, accumulateInput: accumulateInput,
                      dropout: g.dropout?.lora(layer: l, projection: p), droppedInput: a.droppedInput.pointer)
    }

    /// dHidden: gradient of the layer's output in, of its input out (in place).
    private func layerBackward(_ l: Int, input x: UnsafePointer<Float>, act a: LoRALayerActivations, g: LoRALayerGradientBuffers, dHidden: FloatBuffer,
                               pattern: AttentionPattern, dropout: LayerDropout?, into gradients: LoRATensors) {
        let c = model.config, w = model.weights.layers[l]
        let tokens = a.tokens, h = c.hiddenSize, f = c.intermediateSize
        g.dropout = dropout
        // out = mid + down(siluMul(gate(n2), up(n2))): dMid = dOut + (through the MLP).
        g.dMid.pointer.update(from: dHidden.pointer, count: tokens * h)
        loraBackward(l, .down, dOut: dHidden.pointer, x: a.product.pointer, act: a,
                     dInput: g.dProduct.pointer, accumulateInput: false, g: g, into: gradients)
        Backward.siluMul(dOut: g.dProduct.pointer, gate: a.gate.pointer, up: a.up.pointer, dGate: g.dGate.pointer, dUp: g.dUp.pointer, count: tokens * f)
        loraBackward(l, .gate, dOut: g.dGate.pointer, x: a.n2.pointer, act: a,
                     dInput: g.dNormed.pointer, accumulateInput: false, g: g, into: gradients)
        loraBackward(l, .up, dOut: g.dUp.pointer, x: a.n2.pointer, act: a,
                     dInput: g.dNormed.pointer, accumulateInput: true, g: g, into: gradients)
        Backward.rmsNorm(dOut: g.dNormed.pointer, input: a.mid.pointer, weight: w.postAttentionLayernorm.pointer, inverseRMS: a.inv2.pointer,
                         rows: tokens, dim: h, dInput: g.dMid.pointer, accumulate: true)
        // mid = x + o(attention(rope(q(n1)), rope(k(n1)), v(n1))).
        dHidden.pointer.update(from: g.dMid.pointer, count: tokens * h)
        loraBackward(l, .o, dOut: g.dMid.pointer, x: a.attention.pointer, act: a,
                     dInput: g.dAttention.pointer, accumulateInput: false, g: g, into: gradients)
        Backward.attention(q: a.q.pointer, k: a.k.pointer, v: a.v.pointer, dOut: g.dAttention.pointer,
                           dq: g.dq.pointer, dk: g.dk.pointer, dv: g.dv.pointer,
                           batch: a.batch.batch, length: a.batch.length, heads: c.headCount, kvHeads: c.kvHeadCount, headDim: c.headDim,
                           valid: a.batch.valid, pattern: pattern, probabilities: nil, scratch: g.attentionScratch, dropout: dropout?.attention(layer: l))
        a.rope(g.dq.pointer, heads: c.headCount, inverse: true)
        a.rope(g.dk.pointer, heads: c.kvHeadCount, inverse: true)
        loraBackward(l, .q, dOut: g.dq.pointer, x: a.n1.pointer, act: a,
                     dInput: g.dNormed.pointer, accumulateInput: false, g: g, into: gradients)
        loraBackward(l, .k, dOut: g.dk.pointer, x: a.n1.pointer, act: a,
                     dInput: g.dNormed.pointer, accumulateInput: true, g: g, into: gradients)
        loraBackward(l, .v, dOut: g.dv.pointer, x: a.n1.pointer, act: a,
                     dInput: g.dNormed.pointer, accumulateInput: true, g: g, into: gradients)
        Backward.rmsNorm(dOut: g.dNormed.pointer, input: x, weight: w.inputLayernorm.pointer, inverseRMS: a.inv1.pointer,
                         rows: tokens, dim: h, dInput: dHidden.pointer, accumulate: true)
    }
}
