import Foundation
import UnmaskKernels

/// The seven projections of a decoder layer that carry LoRA, in PEFT's module names.
public enum LoRAProjection: Int, CaseIterable, Sendable {
    case q, k, v, o, gate, up, down

    /// `self_attn.q_proj`, …, `mlp.down_proj`: the module path inside a layer, as Hugging Face names it.
    public var modulePath: String {
        switch self {
        case .q: "self_attn.q_proj"
        case .k: "self_attn.k_proj"
        case .v: "self_attn.v_proj"
        case .o: "self_attn.o_proj"
        case .gate: "mlp.gate_proj"
        case .up: "mlp.up_proj"
        case .down: "mlp.down_proj"
        }
    }

    func linear(_ w: DecoderLayerWeights) -> Linear {
        switch self {
        case .q: w.qProj
        case .k: w.kProj
        case .v: w.vProj
        case .o: w.oProj
        case .gate: w.gateProj
        case .up: w.upProj
        case .down: w.downProj
        }
    }
}

/// One LoRA pair (or its gradient): A [rank, in] and B [out, rank], PEFT's lora_A / lora_B.
public final class LoRAPair: @unchecked Sendable {
    public let rank: Int, inFeatures: Int, outFeatures: Int
    public let a: FloatBuffer
    public let b: FloatBuffer

    public init(rank: Int, inFeatures: Int, outFeatures: Int) {
        self.rank = rank
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        a = FloatBuffer(count: rank * inFeatures)
        b = FloatBuffer(count: outFeatures * rank)
    }

    func zero() {
        a.pointer.update(repeating: 0, count: a.count)
        b.pointer.update(repeating: 0, count: b.count)
    }
}

/// LoRA tensors for every layer and projection: `layers[l][p.rawValue]`. Holds either the
/// parameters or their gradients.
public final class LoRATensors: @unchecked Sendable {
    public let rank: Int
    public let layers: [[LoRAPair]]

    public init(model: DecoderModel, rank: Int) {
        self.rank = rank
        layers = model.weights.layers.map { w in
            LoRAProjection.allCases.map { p in
                let l = p.linear(w)
                return LoRAPair(rank: rank, inFeatures: l.inFeatures, outFeatures: l.outFeatures)
            }
        }
    }

    public subscript(layer: Int, projection: LoRAProjection) -> LoRAPair { layers[layer][projection.rawValue] }

    public func zero() { for layer in layers { for pair in layer { pair.zero() } } }

    /// PEFT-style name of a tensor: `layers.{l}.{modulePath}.lora_{A|B}`.
    public static func name(layer: Int, projection: LoRAProjection, isA: Bool) -> String {
        "layers.\(layer).\(projection.modulePath).lora_\(isA ? "A" : "B")"
    }

    /// Copies every tensor from `source`, whose names end with `name(...)` (optionally followed
    /// by `.weight` or `.default.weight`, and preceded by any prefix such as PEFT's
    /// `base_model.model.model.`).
    public func load(from source: TensorSource) throws {
        let names = source.tensorNames
        for (l, layer) in layers.enumerated() {
            for p in LoRAProjection.allCases {
                for isA in [true, false] {
                    let key = Self.name(layer: l, projection: p, isA: isA)
                    let candidates = names.filter { n in
                        [key, key + ".weight", key + ".default.weight"].contains { n == $0 || n.hasSuffix("." + $0) }
                    }
                    guard candidates.count == 1 else {
                        throw UnmaskError.missingTensor(file: "LoRA tensors", name: key + (candidates.isEmpty ? "" : " (\(candidates.count) matches)"))
                    }
                    let tensor = try source.float32(candidates[0])
                    let target = isA ? layer[p.rawValue].a : layer[p.rawValue].b
                    let expected = isA ? [layer[p.rawValue].rank, layer[p.rawValue].inFeatures] : [layer[p.rawValue].outFeatures, layer[p.rawValue].rank]
                    guard tensor.shape == expected else {
                        throw UnmaskError.tensorShapeMismatch(file: "LoRA tensors", name: key, shape: tensor.shape, expected: expected, because: "LoRA rank \(rank)")
                    }
                    target.pointer.update(from: tensor.pointer, count: target.count)
                }
            }
        }
    }
}

/// What a training forward keeps for its backward: each layer's input hidden state (the rest is
/// recomputed layer by layer in the backward: gradient checkpointing), the last layer's output,
/// and the final norm's output.
public final class TrainingTape: @unchecked Sendable {
    public let batch: TokenBatch
    public let pattern: AttentionPattern
    let layerInputs: [FloatBuffer]
    let finalHidden: FloatBuffer
    let finalInverseRMS: FloatBuffer
    /// The model's output (final norm), [batch·length, hidden].
    public let output: FloatBuffer

    init(batch: TokenBatch, pattern: AttentionPattern, layers: Int, tokens: Int, hidden: Int) {
        self.batch = batch
        self.pattern = pattern
        layerInputs = (0..<layers).map { _ in FloatBuffer(count: tokens * hidden) }
        finalHidden = FloatBuffer(count: tokens * hidden)
        finalInverseRMS = FloatBuffer(count: tokens)
        output = FloatBuffer(count: tokens * hidden)
    }
}

/// A frozen `DecoderModel` with LoRA on q, k, v, o, gate, up and down of every layer
/// (out = x·Wᵀ + b + (alpha/rank)·(x·Aᵀ)·Bᵀ), and the backward that gives every LoRA A and B
/// its loss gradient. No dropout.
public final class LoRADecoder: @unchecked Sendable {
    public let model: DecoderModel
    public let rank: Int
    public let alpha: Float
    public var scaling: Float { alpha / Float(rank) }
    public let parameters: LoRATensors
    private let inverseFrequencies: [Float]

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

    /// Runs the batch, keeping what the backward needs.
    public func forward(_ batch: TokenBatch, pattern: AttentionPattern) -> TrainingTape {
        let c = model.config
        let tokens = batch.batch * batch.length, h = c.hiddenSize
        let tape = TrainingTape(batch: batch, pattern: pattern, layers: c.layerCount, tokens: tokens, hidden: h)
        let act = LoRALayerActivations(config: c, rank: rank, batch: batch, inverseFrequencies: inverseFrequencies)
        let hidden = FloatBuffer(count: tokens * h)
        let table = model.weights.embedTokens.pointer
        for t in 0..<tokens { (hidden.pointer + t * h).update(from: table + Int(batch.ids[t]) * h, count: h) }
        for l in 0..<c.layerCount {
            tape.layerInputs[l].pointer.update(from: hidden.pointer, count: tokens * h)
            layerForward(l, input: tape.layerInputs[l].pointer, act: act, out: hidden.pointer, pattern: pattern)
        }
        tape.finalHidden.pointer.update(from: hidden.pointer, count: tokens * h)
        Kernels.rmsNorm(hidden.pointer, weight: model.weights.norm.pointer, rows: tokens, dim: h, eps: c.rmsNormEps,
                        out: tape.output.pointer, inverseRMS: tape.finalInverseRMS.pointer)
        return tape
    }

    private func lora(_ l: Int, _ p: LoRAProjection, _ x: UnsafePointer<Float>, rows: Int, xA: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>) {
        let w = p.linear(model.weights.layers[l]), pair = parameters[l, p]
        Backward.loraForward(x, rows: rows, inFeatures: w.inFeatures, weight: w.weight.pointer, outFeatures: w.outFeatures,
                             bias: w.bias.map { UnsafePointer($0.pointer) }, loraA: pair.a.pointer, loraB: pair.b.pointer,
                             rank: rank, scaling: scaling, xA: xA, out: out)
    }

    /// One layer from `input`, keeping its activations in `act`; writes the layer output to `out`.
    private func layerForward(_ l: Int, input x: UnsafePointer<Float>, act a: LoRALayerActivations, out: UnsafeMutablePointer<Float>, pattern: AttentionPattern) {
        let c = model.config, w = model.weights.layers[l]
        let tokens = a.tokens, h = c.hiddenSize
        Kernels.rmsNorm(x, weight: w.inputLayernorm.pointer, rows: tokens, dim: h, eps: c.rmsNormEps, out: a.n1.pointer, inverseRMS: a.inv1.pointer)
        lora(l, .q, a.n1.pointer, rows: tokens, xA: a.xA[0].pointer, out: a.q.pointer)
        lora(l, .k, a.n1.pointer, rows: tokens, xA: a.xA[1].pointer, out: a.k.pointer)
        lora(l, .v, a.n1.pointer, rows: tokens, xA: a.xA[2].pointer, out: a.v.pointer)
        a.rope(a.q.pointer, heads: c.headCount, inverse: false)
        a.rope(a.k.pointer, heads: c.kvHeadCount, inverse: false)
        Attention.forward(q: a.q.pointer, k: a.k.pointer, v: a.v.pointer, out: a.attention.pointer,
                          batch: a.batch.batch, length: a.batch.length, heads: c.headCount, kvHeads: c.kvHeadCount, headDim: c.headDim,
                          valid: a.batch.valid, pattern: pattern, scratch: a.attentionScratch)
        lora(l, .o, a.attention.pointer, rows: tokens, xA: a.xA[3].pointer, out: a.mid.pointer)
        Kernels.addInPlace(a.mid.pointer, x, count: tokens * h)
        Kernels.rmsNorm(a.mid.pointer, weight: w.postAttentionLayernorm.pointer, rows: tokens, dim: h, eps: c.rmsNormEps, out: a.n2.pointer, inverseRMS: a.inv2.pointer)
        lora(l, .gate, a.n2.pointer, rows: tokens, xA: a.xA[4].pointer, out: a.gate.pointer)
        lora(l, .up, a.n2.pointer, rows: tokens, xA: a.xA[5].pointer, out: a.up.pointer)
        Kernels.siluMul(gate: a.gate.pointer, up: a.up.pointer, out: a.product.pointer, count: tokens * c.intermediateSize)
        lora(l, .down, a.product.pointer, rows: tokens, xA: a.xA[6].pointer, out: out)
        Kernels.addInPlace(out, a.mid.pointer, count: tokens * h)
    }

    // MARK: Backward

    /// Adds the gradient of every LoRA A and B into `gradients`, given dOutput, the loss gradient
    /// of `tape.output` [batch·length, hidden]. Each layer's activations are recomputed from its
    /// saved input.
    public func backward(_ tape: TrainingTape, dOutput: UnsafePointer<Float>, into gradients: LoRATensors) {
        let c = model.config, batch = tape.batch
        let tokens = batch.batch * batch.length, h = c.hiddenSize
        let act = LoRALayerActivations(config: c, rank: rank, batch: batch, inverseFrequencies: inverseFrequencies)
        let dHidden = FloatBuffer(count: tokens * h)
        Backward.rmsNorm(dOut: dOutput, input: tape.finalHidden.pointer, weight: model.weights.norm.pointer,
                         inverseRMS: tape.finalInverseRMS.pointer, rows: tokens, dim: h, dInput: dHidden.pointer)
        let scratchOut = FloatBuffer(count: tokens * h)
        let g = LoRALayerGradientBuffers(config: c, rank: rank, tokens: tokens, length: batch.length)
        for l in stride(from: c.layerCount - 1, through: 0, by: -1) {
            let x = tape.layerInputs[l].pointer
            layerForward(l, input: x, act: act, out: scratchOut.pointer, pattern: tape.pattern)
            layerBackward(l, input: x, act: act, g: g, dHidden: dHidden, pattern: tape.pattern, into: gradients)
        }
    }

    private func loraBackward(_ l: Int, _ p: LoRAProjection, dOut: UnsafePointer<Float>, x: UnsafePointer<Float>, xA: UnsafePointer<Float>,
                              rows: Int, dInput: UnsafeMutablePointer<Float>, accumulateInput: Bool, g: LoRALayerGradientBuffers, into gradients: LoRATensors) {
        let w = p.linear(model.weights.layers[l]), pair = parameters[l, p], d = gradients[l, p]
        Backward.lora(dOut: dOut, input: x, xA: xA, rows: rows, inFeatures: w.inFeatures, outFeatures: w.outFeatures,
                      weight: w.weight.pointer, loraA: pair.a.pointer, loraB: pair.b.pointer, rank: rank, scaling: scaling,
                      dA: d.a.pointer, dB: d.b.pointer, dInput: dInput, scratch: g.dXA.pointer,
                      accumulateParameters: true, accumulateInput: accumulateInput)
    }

    /// dHidden: gradient of the layer's output in, of its input out (in place).
    private func layerBackward(_ l: Int, input x: UnsafePointer<Float>, act a: LoRALayerActivations, g: LoRALayerGradientBuffers, dHidden: FloatBuffer,
                               pattern: AttentionPattern, into gradients: LoRATensors) {
        let c = model.config, w = model.weights.layers[l]
        let tokens = a.tokens, h = c.hiddenSize, f = c.intermediateSize
        // out = mid + down(siluMul(gate(n2), up(n2))): dMid = dOut + (through the MLP).
        g.dMid.pointer.update(from: dHidden.pointer, count: tokens * h)
        loraBackward(l, .down, dOut: dHidden.pointer, x: a.product.pointer, xA: a.xA[6].pointer, rows: tokens,
                     dInput: g.dProduct.pointer, accumulateInput: false, g: g, into: gradients)
        Backward.siluMul(dOut: g.dProduct.pointer, gate: a.gate.pointer, up: a.up.pointer, dGate: g.dGate.pointer, dUp: g.dUp.pointer, count: tokens * f)
        loraBackward(l, .gate, dOut: g.dGate.pointer, x: a.n2.pointer, xA: a.xA[4].pointer, rows: tokens,
                     dInput: g.dNormed.pointer, accumulateInput: false, g: g, into: gradients)
        loraBackward(l, .up, dOut: g.dUp.pointer, x: a.n2.pointer, xA: a.xA[5].pointer, rows: tokens,
                     dInput: g.dNormed.pointer, accumulateInput: true, g: g, into: gradients)
        Backward.rmsNorm(dOut: g.dNormed.pointer, input: a.mid.pointer, weight: w.postAttentionLayernorm.pointer, inverseRMS: a.inv2.pointer,
                         rows: tokens, dim: h, dInput: g.dMid.pointer, accumulate: true)
        // mid = x + o(attention(rope(q(n1)), rope(k(n1)), v(n1))).
        dHidden.pointer.update(from: g.dMid.pointer, count: tokens * h)
        loraBackward(l, .o, dOut: g.dMid.pointer, x: a.attention.pointer, xA: a.xA[3].pointer, rows: tokens,
                     dInput: g.dAttention.pointer, accumulateInput: false, g: g, into: gradients)
        Backward.attention(q: a.q.pointer, k: a.k.pointer, v: a.v.pointer, dOut: g.dAttention.pointer,
                           dq: g.dq.pointer, dk: g.dk.pointer, dv: g.dv.pointer,
                           batch: a.batch.batch, length: a.batch.length, heads: c.headCount, kvHeads: c.kvHeadCount, headDim: c.headDim,
                           valid: a.batch.valid, pattern: pattern, probabilities: nil, scratch: g.attentionScratch)
        a.rope(g.dq.pointer, heads: c.headCount, inverse: true)
        a.rope(g.dk.pointer, heads: c.kvHeadCount, inverse: true)
        loraBackward(l, .q, dOut: g.dq.pointer, x: a.n1.pointer, xA: a.xA[0].pointer, rows: tokens,
                     dInput: g.dNormed.pointer, accumulateInput: false, g: g, into: gradients)
        loraBackward(l, .k, dOut: g.dk.pointer, x: a.n1.pointer, xA: a.xA[1].pointer, rows: tokens,
                     dInput: g.dNormed.pointer, accumulateInput: true, g: g, into: gradients)
        loraBackward(l, .v, dOut: g.dv.pointer, x: a.n1.pointer, xA: a.xA[2].pointer, rows: tokens,
                     dInput: g.dNormed.pointer, accumulateInput: true, g: g, into: gradients)
        Backward.rmsNorm(dOut: g.dNormed.pointer, input: x, weight: w.inputLayernorm.pointer, inverseRMS: a.inv1.pointer,
                         rows: tokens, dim: h, dInput: dHidden.pointer, accumulate: true)
    }

    // MARK: Losses

    /// Masked next-token prediction (llm2vec's MNTP, as `LlamaBiForMNTP` with labels computes it):
    /// `labels[b·length + i]` is the target of token i (−100: none), predicted from the logits at
    /// position i−1 of the same row. The LM head is applied only at those rows. Returns the mean
    /// cross-entropy over counted targets and adds the LoRA gradients into `gradients`.
    @discardableResult
    public func mntp(_ batch: TokenBatch, labels: [Int32], pattern: AttentionPattern = AttentionPattern(causal: false),
                     into gradients: LoRATensors) -> Float {
        guard let lmHead = model.lmHead else { preconditionFailure("MNTP needs a model loaded with lmHead: true") }
        precondition(labels.count == batch.ids.count)
        let h = model.config.hiddenSize, vocabulary = lmHead.shape[0]
        var rows: [Int] = [], targets: [Int32] = []
        for b in 0..<batch.batch {
            for i in 1..<max(1, batch.length) where labels[b * batch.length + i] != -100 {
                rows.append(b * batch.length + i - 1)
                targets.append(labels[b * batch.length + i])
            }
        }
        guard !rows.isEmpty else { return 0 }
        let tape = forward(batch, pattern: pattern)
        let selected = FloatBuffer(count: rows.count * h)
        for (j, r) in rows.enumerated() { (selected.pointer + j * h).update(from: tape.output.pointer + r * h, count: h) }
        let logits = FloatBuffer(count: rows.count * vocabulary)
        Kernels.linear(selected.pointer, rows: rows.count, inFeatures: h, weight: lmHead.pointer, outFeatures: vocabulary, bias: nil, out: logits.pointer)
        let loss = targets.withUnsafeBufferPointer { t in
            Backward.crossEntropy(logits: logits.pointer, rows: rows.count, vocabulary: vocabulary, targets: t.baseAddress!, dLogits: logits.pointer)
        }
        Backward.linear(dOut: logits.pointer, rows: rows.count, outFeatures: vocabulary, weight: lmHead.pointer, inFeatures: h, dInput: selected.pointer)
        let dOutput = FloatBuffer(count: batch.ids.count * h)
        for (j, r) in rows.enumerated() { (dOutput.pointer + r * h).update(from: selected.pointer + j * h, count: h) }
        backward(tape, dOutput: dOutput.pointer, into: gradients)
        return loss
    }

    /// LLM2Vec's contrastive loss over mean-pooled embeddings (non-padding tokens):
    /// cross-entropy of scale·cos(query i, document j) with target j = i; documents beyond the
    /// query count are hard negatives. Returns the loss and adds the LoRA gradients into `gradients`.
    @discardableResult
    public func contrastive(queries: TokenBatch, documents: TokenBatch, scale: Float = 20,
                            pattern: AttentionPattern = AttentionPattern(causal: false), into gradients: LoRATensors) -> Float {
        let h = model.config.hiddenSize
        let n = queries.batch, m = documents.batch
        let qTape = forward(queries, pattern: pattern), dTape = forward(documents, pattern: pattern)
        let qPooled = FloatBuffer(count: n * h), dPooled = FloatBuffer(count: m * h)
        Backward.meanPoolForward(hidden: qTape.output.pointer, batch: n, length: queries.length, dim: h, spans: queries.valid, pooled: qPooled.pointer)
        Backward.meanPoolForward(hidden: dTape.output.pointer, batch: m, length: documents.length, dim: h, spans: documents.valid, pooled: dPooled.pointer)
        let dq = FloatBuffer(count: n * h), dd = FloatBuffer(count: m * h)
        let loss = Backward.contrastive(queries: qPooled.pointer, documents: dPooled.pointer, count: n, candidates: m, dim: h, scale: scale,
                                        dQueries: dq.pointer, dDocuments: dd.pointer)
        let dqHidden = FloatBuffer(count: queries.ids.count * h), ddHidden = FloatBuffer(count: documents.ids.count * h)
        Backward.meanPool(dPooled: dq.pointer, batch: n, length: queries.length, dim: h, spans: queries.valid, dHidden: dqHidden.pointer)
        Backward.meanPool(dPooled: dd.pointer, batch: m, length: documents.length, dim: h, spans: documents.valid, dHidden: ddHidden.pointer)
        backward(qTape, dOutput: dqHidden.pointer, into: gradients)
        backward(dTape, dOutput: ddHidden.pointer, into: gradients)
        return loss
    }
}

/// One layer's activations for a batch (forward, recomputed in the backward).
final class LoRALayerActivations {
    let batch: TokenBatch
    let tokens: Int
    let n1, inv1, q, k, v, attention, mid, n2, inv2, gate, up, product: FloatBuffer
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
    let dMid, dNormed, dProduct, dGate, dUp, dAttention, dq, dk, dv, dXA, attentionScratch: FloatBuffer

    init(config c: DecoderConfig, rank: Int, tokens t: Int, length: Int) {
        dMid = FloatBuffer(count: t * c.hiddenSize); dNormed = FloatBuffer(count: t * c.hiddenSize)
        dProduct = FloatBuffer(count: t * c.intermediateSize)
        dGate = FloatBuffer(count: t * c.intermediateSize); dUp = FloatBuffer(count: t * c.intermediateSize)
        dAttention = FloatBuffer(count: t * c.qDim)
        dq = FloatBuffer(count: t * c.qDim); dk = FloatBuffer(count: t * c.kvDim); dv = FloatBuffer(count: t * c.kvDim)
        dXA = FloatBuffer(count: t * rank)
        attentionScratch = FloatBuffer(count: Backward.attentionScratchCount(length: length, recompute: true))
    }
}
