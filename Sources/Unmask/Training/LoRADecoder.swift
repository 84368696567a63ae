import Foundation
import UnmaskKernels

/// What a training forward keeps for its backward: each layer's input hidden state, the last
/// layer's output and the final norm's output; and, when they fit the decoder's
/// `activationBudget`, every layer's activations. Otherwise the backward recomputes each layer's
/// activations from its input (gradient checkpointing): a third more arithmetic, a fraction of the memory.
public final class TrainingTape: @unchecked Sendable {
    public let batch: TokenBatch
    public let mode: AttentionMode
    /// The masks this forward drew (nil: no dropout); the backward's recomputation draws the same.
    let dropout: LayerDropout?
    let layerInputs: [FloatBuffer]
    let finalHidden: FloatBuffer
    let finalInverseRMS: FloatBuffer
    /// Per layer, when kept (nil: recomputed in the backward).
    var activations: [LayerActivations]?
    let rotary: RotaryTables
    /// Where kept activations go back to when the tape is released.
    weak var pool: ActivationPool?
    /// The model's output (final norm), [batch·length, hidden].
    public let output: FloatBuffer

    init(batch: TokenBatch, mode: AttentionMode, dropout: LayerDropout?, rotary: RotaryTables, layers: Int, tokens: Int, hidden: Int) {
        self.batch = batch
        self.mode = mode
        self.rotary = rotary
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
    /// Layer activations and gradient buffers of the last batch shape, reused while it repeats
    /// (training batches mostly share one shape). Not thread-safe: one decoder trains on one thread.
    private var workspace: (tokens: Int, length: Int, activations: LayerActivations, gradients: LayerGradientBuffers)?

    /// LoRA initialized as PEFT does by default: A uniform in ±1/√in (Kaiming-uniform with a=√5),
    /// B zero, so the adapted model starts equal to the base.
    public init(model: DecoderModel, rank: Int = 8, alpha: Float = 16, seed: UInt64 = 0) {
        self.model = model
        self.rank = rank
        self.alpha = alpha
        parameters = LoRATensors(model: model, rank: rank)
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

    private func lora(_ dropout: LayerDropout?) -> LayerLoRA {
        LayerLoRA(parameters: parameters, scaling: scaling, dropout: dropout)
    }

    // MARK: Forward

    /// Runs the batch, keeping what the backward needs. With a `dropoutSeed`, dropout is on.
    public func forward(_ batch: TokenBatch, mode: AttentionMode, dropoutSeed: UInt64? = nil) -> TrainingTape {
        let c = model.config
        let tokens = batch.batch * batch.length, h = c.hiddenSize
        let dropout = dropoutSeed.flatMap { LayerDropout(seed: $0, lora: loraDropout, attention: attentionDropout) }
        let rotary = RotaryTables(config: c, batch: batch.batch, length: batch.length)
        let tape = TrainingTape(batch: batch, mode: mode, dropout: dropout, rotary: rotary, layers: c.layerCount, tokens: tokens, hidden: h)
        let keep = LayerActivations.byteCount(config: c, rank: rank, tokens: tokens) * c.layerCount <= activationBudget
        if keep {
            tape.activations = pool.take(c.layerCount, tokens: tokens, length: batch.length) {
                LayerActivations(config: c, capacity: tokens, length: batch.length, loraRank: rank)
            }
            for a in tape.activations! { a.bind(batch) }
            tape.pool = pool
        }
        let shared = keep ? nil : buffers(for: batch).activations
        let hidden = FloatBuffer(count: tokens * h)
        model.embeddingForward(ids: batch.ids, out: hidden.pointer)
        let layerLoRA = lora(dropout)
        for layer in model.layers {
            let l = layer.index
            tape.layerInputs[l].pointer.update(from: hidden.pointer, count: tokens * h)
            layer.forward(tape.layerInputs[l].pointer, out: hidden.pointer, act: tape.activations?[l] ?? shared!,
                          pattern: model.attentionPattern(layer: l, mode: mode), rotary: rotary, lora: layerLoRA)
        }
        tape.finalHidden.pointer.update(from: hidden.pointer, count: tokens * h)
        Kernels.rmsNorm(hidden.pointer, weight: model.weights.norm.pointer, rows: tokens, dim: h, eps: c.rmsNormEps,
                        out: tape.output.pointer, inverseRMS: tape.finalInverseRMS.pointer)
        return tape
    }

    /// The buffers for a batch's shape, allocated when the shape changes.
    private func buffers(for batch: TokenBatch) -> (activations: LayerActivations, gradients: LayerGradientBuffers) {
        let tokens = batch.batch * batch.length
        if let w = workspace, w.tokens == tokens, w.length == batch.length {
            w.activations.bind(batch)
            return (w.activations, w.gradients)
        }
        let activations = LayerActivations(config: model.config, capacity: tokens, length: batch.length, loraRank: rank)
        activations.bind(batch)
        let gradients = LayerGradientBuffers(config: model.config, rank: rank, tokens: tokens, length: batch.length)
        workspace = (tokens, batch.length, activations, gradients)
        return (activations, gradients)
    }

    // MARK: Backward

    /// Adds the gradient of every LoRA A and B into `gradients`, given dOutput, the loss gradient
    /// of `tape.output` [batch·length, hidden]. Each layer's activations are those the tape kept,
    /// or are recomputed from its saved input.
    public func backward(_ tape: TrainingTape, dOutput: UnsafePointer<Float>, into gradients: LoRATensors) {
        let c = model.config, batch = tape.batch
        let tokens = batch.batch * batch.length, h = c.hiddenSize
        let (act, g) = buffers(for: batch)
        let dHidden = FloatBuffer(count: tokens * h)
        Backward.rmsNorm(dOut: dOutput, input: tape.finalHidden.pointer, weight: model.weights.norm.pointer,
                         inverseRMS: tape.finalInverseRMS.pointer, rows: tokens, dim: h, dInput: dHidden.pointer)
        let layerLoRA = lora(tape.dropout)
        for layer in model.layers.reversed() {
            let l = layer.index
            let x = tape.layerInputs[l].pointer
            let pattern = model.attentionPattern(layer: l, mode: tape.mode)
            let layerActivations: LayerActivations
            if let kept = tape.activations {
                layerActivations = kept[l]
            } else {
                layerActivations = act
                layer.forward(x, out: g.layerOutput.pointer, act: act, pattern: pattern, rotary: tape.rotary, lora: layerLoRA)
            }
            layer.backward(input: x, act: layerActivations, g: g, dHidden: dHidden, pattern: pattern, rotary: tape.rotary,
                           lora: layerLoRA, into: gradients)
        }
    }
}
