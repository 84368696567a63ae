/// What a tensor of a decoder layer does, whatever a file format calls it.
public enum LayerTensor: String, CaseIterable, Sendable {
    /// The norm before attention (`input_layernorm`).
    case attentionNorm
    /// Per-head RMSNorms of queries and keys before RoPE.
    case queryNorm, keyNorm
    /// Gemma's norm of the attention output, before the residual add (its `post_attention_layernorm`).
    case attentionOutputNorm
    /// The norm before the MLP (Llama's `post_attention_layernorm`, Gemma's `pre_feedforward_layernorm`).
    case mlpNorm
    /// Gemma's norm of the MLP output, before the residual add.
    case mlpOutputNorm
    case q, k, v, o, gate, up, down

    public var isNorm: Bool { projection == nil }

    /// The LoRA-carrying projection this tensor is, or nil for norms.
    public var projection: LoRAProjection? {
        switch self {
        case .q: .q
        case .k: .k
        case .v: .v
        case .o: .o
        case .gate: .gate
        case .up: .up
        case .down: .down
        default: nil
        }
    }
}

/// A tensor's module path in both formats: inside `model.layers.{i}.` for Hugging Face, inside
/// `blk.{i}.` for GGUF (weights end in `.weight`, biases in `.bias`).
public struct TensorName: Sendable, Equatable {
    public let hf: String
    public let gguf: String
}

/// One architecture's tensor names and how its files store them. Loading, `merge` (both
/// formats), the GGUF mapping and random checkpoints all read this table, so an architecture's
/// names are spelled once.
public struct TensorNameTable: Sendable {
    /// The layer tensors the architecture has, with their names.
    public let layer: [LayerTensor: TensorName]
    /// Added to a norm weight as Hugging Face stores it to get the factor the kernels multiply
    /// by: Gemma stores w and scales by (1 + w); llama.cpp's converter stores 1 + w in GGUF.
    public let hfNormOffset: Float
    /// llama.cpp's converter interleaves the RoPE halves of q/k rows in this architecture's GGUF files.
    public let ggufPermutesQueryKey: Bool

    public static let embedding = TensorName(hf: "model.embed_tokens.weight", gguf: "token_embd.weight")
    public static let finalNorm = TensorName(hf: "model.norm.weight", gguf: "output_norm.weight")
    public static let lmHead = TensorName(hf: "lm_head.weight", gguf: "output.weight")

    /// Llama's layer: pre-norms and the seven projections (Mistral and Qwen2 share it).
    public static let llamaLayer: [LayerTensor: TensorName] = [
        .attentionNorm: TensorName(hf: "input_layernorm", gguf: "attn_norm"),
        .mlpNorm: TensorName(hf: "post_attention_layernorm", gguf: "ffn_norm"),
        .q: TensorName(hf: "self_attn.q_proj", gguf: "attn_q"),
        .k: TensorName(hf: "self_attn.k_proj", gguf: "attn_k"),
        .v: TensorName(hf: "self_attn.v_proj", gguf: "attn_v"),
        .o: TensorName(hf: "self_attn.o_proj", gguf: "attn_output"),
        .gate: TensorName(hf: "mlp.gate_proj", gguf: "ffn_gate"),
        .up: TensorName(hf: "mlp.up_proj", gguf: "ffn_up"),
        .down: TensorName(hf: "mlp.down_proj", gguf: "ffn_down"),
    ]

    public static let queryKeyNorms: [LayerTensor: TensorName] = [
        .queryNorm: TensorName(hf: "self_attn.q_norm", gguf: "attn_q_norm"),
        .keyNorm: TensorName(hf: "self_attn.k_norm", gguf: "attn_k_norm"),
    ]

    public init(layer: [LayerTensor: TensorName], hfNormOffset: Float = 0, ggufPermutesQueryKey: Bool = false) {
        self.layer = layer
        self.hfNormOffset = hfNormOffset
        self.ggufPermutesQueryKey = ggufPermutesQueryKey
    }

    /// The tensors of a layer in a fixed order (norms, then projections).
    public var layerTensors: [LayerTensor] { LayerTensor.allCases.filter { layer[$0] != nil } }

    public func hfName(layer index: Int, _ tensor: LayerTensor, bias: Bool = false) -> String {
        "model.layers.\(index).\(layer[tensor]!.hf).\(bias ? "bias" : "weight")"
    }

    public func ggufName(layer index: Int, _ tensor: LayerTensor, bias: Bool = false) -> String {
        "blk.\(index).\(layer[tensor]!.gguf).\(bias ? "bias" : "weight")"
    }

    /// The Hugging Face name of a GGUF tensor (`blk.3.attn_q.weight` → `model.layers.3.self_attn.q_proj.weight`),
    /// or nil for tensors the decoder does not use (`rope_freqs.weight`, …).
    public func hfName(forGGUFName name: String) -> String? {
        for global in [Self.embedding, Self.finalNorm, Self.lmHead] where global.gguf == name { return global.hf }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "blk", let index = Int(parts[1]), index >= 0, String(index) == parts[1],
              parts[3] == "weight" || parts[3] == "bias",
              let tensor = layer.first(where: { $0.value.gguf == parts[2] })?.key
        else { return nil }
        // Norms have weights only.
        if tensor.isNorm && parts[3] != "weight" { return nil }
        return hfName(layer: index, tensor, bias: parts[3] == "bias")
    }

    /// Whether layer tensor `tensor` has a bias under `config`.
    public func hasBias(_ tensor: LayerTensor, config c: DecoderConfig) -> Bool {
        switch tensor {
        case .q, .k, .v: c.attentionBias
        case .o: c.outputBias
        case .gate, .up, .down: c.mlpBias
        default: false
        }
    }

    /// The shape of layer tensor `tensor` ([out, in] for projections), and the config fields that decide it.
    public func shape(_ tensor: LayerTensor, config c: DecoderConfig) -> (shape: [Int], because: String) {
        let h = c.hiddenSize, f = c.intermediateSize
        let heads = "hidden_size=\(h), num_attention_heads=\(c.headCount), num_key_value_heads=\(c.kvHeadCount), head_dim=\(c.headDim)"
        let mlp = "intermediate_size=\(f), hidden_size=\(h)"
        switch tensor {
        case .attentionNorm, .attentionOutputNorm, .mlpNorm, .mlpOutputNorm: return ([h], "hidden_size=\(h)")
        case .queryNorm, .keyNorm: return ([c.headDim], "head_dim=\(c.headDim)")
        case .q: return ([c.qDim, h], heads)
        case .k, .v: return ([c.kvDim, h], heads)
        case .o: return ([h, c.qDim], heads)
        case .gate, .up: return ([f, h], mlp)
        case .down: return ([h, f], mlp)
        }
    }
}

/// The seven projections of a decoder layer that carry LoRA, in PEFT's module names.
public enum LoRAProjection: Int, CaseIterable, Sendable {
    case q, k, v, o, gate, up, down

    /// `self_attn.q_proj`, …, `mlp.down_proj`: the module path inside a layer, as Hugging Face
    /// names it in every supported architecture.
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

    /// `q_proj`, …, `down_proj`: PEFT's `target_modules` name.
    public var moduleName: String { String(modulePath.split(separator: ".").last!) }
}
