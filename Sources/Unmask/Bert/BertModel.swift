import Foundation
import UnmaskKernels

/// BERT's weights under transformers' `BertModel` names, with or without a `bert.` prefix
/// (as `BertForMaskedLM` and friends save them). The pooler and any task head are not read.
public final class BertWeights: @unchecked Sendable {
    public struct Linear: Sendable {
        public let weight: WeightTensor
        public let bias: WeightTensor
        public let inFeatures: Int
        public let outFeatures: Int
    }

    public struct Norm: Sendable {
        public let weight: WeightTensor
        public let bias: WeightTensor
    }

    public struct Layer: Sendable {
        public let query, key, value, attentionOutput: Linear
        public let attentionNorm: Norm
        public let intermediate, output: Linear
        public let outputNorm: Norm
    }

    public let wordEmbeddings: WeightTensor
    public let positionEmbeddings: WeightTensor
    public let tokenTypeEmbeddings: WeightTensor
    public let embeddingNorm: Norm
    public let layers: [Layer]
    /// "" or "bert.": what the tensor names start with.
    public let prefix: String

    public static let prefixes = ["", "bert."]

    init(wordEmbeddings: WeightTensor, positionEmbeddings: WeightTensor, tokenTypeEmbeddings: WeightTensor,
         embeddingNorm: Norm, layers: [Layer], prefix: String) {
        self.wordEmbeddings = wordEmbeddings
        self.positionEmbeddings = positionEmbeddings
        self.tokenTypeEmbeddings = tokenTypeEmbeddings
        self.embeddingNorm = embeddingNorm
        self.layers = layers
        self.prefix = prefix
    }

    /// Reads every tensor the encoder needs from `source`, checking shapes against `config`.
    /// `file` names the weights in errors when a tensor is missing.
    public static func load(from source: TensorSource, config: BertConfig, file: String) throws -> BertWeights {
        guard let prefix = prefixes.first(where: { source.info($0 + "embeddings.word_embeddings.weight") != nil }) else {
            throw UnmaskError.missingTensor(file: file, name: "embeddings.word_embeddings.weight (or bert.embeddings.word_embeddings.weight)")
        }
        func tensor(_ name: String, _ shape: [Int], _ because: String) throws -> WeightTensor {
            let full = prefix + name
            guard let info = source.info(full) else { throw UnmaskError.missingTensor(file: file, name: full) }
            guard info.shape == shape else {
                throw UnmaskError.tensorShapeMismatch(file: info.file, name: full, shape: info.shape, expected: shape, because: because)
            }
            return try source.float32(full)
        }
        let h = config.hiddenSize, i = config.intermediateSize
        let hidden = "config.json hidden_size \(h)"
        func linear(_ name: String, out: Int, in inFeatures: Int, _ because: String) throws -> Linear {
            Linear(weight: try tensor(name + ".weight", [out, inFeatures], because),
                   bias: try tensor(name + ".bias", [out], because), inFeatures: inFeatures, outFeatures: out)
        }
        func norm(_ name: String) throws -> Norm {
            Norm(weight: try tensor(name + ".weight", [h], hidden), bias: try tensor(name + ".bias", [h], hidden))
        }
        let layers = try (0..<config.numHiddenLayers).map { l -> Layer in
            let p = "encoder.layer.\(l)."
            let inter = "config.json hidden_size \(h), intermediate_size \(i)"
            return Layer(
                query: try linear(p + "attention.self.query", out: h, in: h, hidden),
                key: try linear(p + "attention.self.key", out: h, in: h, hidden),
                value: try linear(p + "attention.self.value", out: h, in: h, hidden),
                attentionOutput: try linear(p + "attention.output.dense", out: h, in: h, hidden),
                attentionNorm: try norm(p + "attention.output.LayerNorm"),
                intermediate: try linear(p + "intermediate.dense", out: i, in: h, inter),
                output: try linear(p + "output.dense", out: h, in: i, inter),
                outputNorm: try norm(p + "output.LayerNorm"))
        }
        return BertWeights(
            wordEmbeddings: try tensor("embeddings.word_embeddings.weight", [config.vocabSize, h], "config.json vocab_size \(config.vocabSize), hidden_size \(h)"),
            positionEmbeddings: try tensor("embeddings.position_embeddings.weight", [config.maxPositionEmbeddings, h],
                                           "config.json max_position_embeddings \(config.maxPositionEmbeddings), hidden_size \(h)"),
            tokenTypeEmbeddings: try tensor("embeddings.token_type_embeddings.weight", [config.typeVocabSize, h],
                                            "config.json type_vocab_size \(config.typeVocabSize), hidden_size \(h)"),
            embeddingNorm: try norm("embeddings.LayerNorm"),
            layers: layers, prefix: prefix)
    }
}

/// A BERT encoder (post-LayerNorm transformer, absolute positions, bidirectional attention over
/// the non-padding tokens), computing `BertModel(...).last_hidden_state` in float32.
public final class BertModel: @unchecked Sendable {
    public let config: BertConfig
    public let weights: BertWeights
    private let activation: BertActivation

    public init(config: BertConfig, weights: BertWeights) {
        self.config = config
        self.weights = weights
        activation = BertActivation(name: config.hiddenAct) ?? .geluErf
    }

    /// Loads `model.safetensors` (or a sharded index) from a folder whose config.json is a BERT.
    public convenience init(folder: URL) throws {
        let configURL = folder.appendingPathComponent("config.json")
        let config = try BertConfig.load(try Checkpoint.read(configURL, what: "the model's config.json"), file: configURL.path)
        let single = folder.appendingPathComponent("model.safetensors")
        let index = folder.appendingPathComponent("model.safetensors.index.json")
        let source: TensorSource
        let file: String
        if FileManager.default.fileExists(atPath: single.path) {
            source = try SafeTensorsFile(path: single.path)
            file = single.path
        } else if FileManager.default.fileExists(atPath: index.path) {
            source = try ShardedSafeTensors(indexPath: index.path)
            file = index.path
        } else {
            throw UnmaskError.fileNotFound(path: single.path, what: "weights: model.safetensors or model.safetensors.index.json (pytorch_model.bin is not read; convert it to safetensors)")
        }
        self.init(config: config, weights: try BertWeights.load(from: source, config: config, file: file))
    }

    /// Hidden states [batch·length, hidden] after the last layer. `ids` is [batch·length];
    /// `valid[b]` is row b's non-padding span (right padding `0..<n`, or left padding): keys
    /// outside it are masked, and positions count from its start. Token types are all 0.
    public func forward(ids: [Int32], batch: Int, length: Int, valid: [Range<Int>]) -> FloatBuffer {
        precondition(ids.count == batch * length && valid.count == batch)
        let h = config.hiddenSize, n = batch * length
        let heads = config.numAttentionHeads, headDim = config.headDim
        let eps = Float(config.layerNormEps)
        let x = FloatBuffer(count: n * h)
        let q = FloatBuffer(count: n * h), k = FloatBuffer(count: n * h), v = FloatBuffer(count: n * h)
        let context = FloatBuffer(count: n * h), projected = FloatBuffer(count: n * h)
        let inner = FloatBuffer(count: n * config.intermediateSize)
        let scratch = FloatBuffer(count: Attention.scratchCount(length: length))

        // Embeddings: word + position + token type 0, then LayerNorm.
        let word = weights.wordEmbeddings.pointer, position = weights.positionEmbeddings.pointer
        let tokenType = weights.tokenTypeEmbeddings.pointer
        for b in 0..<batch {
            for t in 0..<length {
                let row = b * length + t
                let id = Int(ids[row])
                precondition(id >= 0 && id < config.vocabSize, "token id \(id) outside vocab_size \(config.vocabSize)")
                let p = min(max(t - valid[b].lowerBound, 0), config.maxPositionEmbeddings - 1)
                let out = x.pointer + row * h, w = word + id * h, pe = position + p * h
                for d in 0..<h { out[d] = w[d] + pe[d] + tokenType[d] }
            }
        }
        BertKernels.layerNorm(x.pointer, weight: weights.embeddingNorm.weight.pointer, bias: weights.embeddingNorm.bias.pointer,
                              rows: n, dim: h, eps: eps, out: x.pointer)

        func linear(_ input: FloatBuffer, _ layer: BertWeights.Linear, _ out: FloatBuffer) {
            Kernels.linear(input.pointer, rows: n, inFeatures: layer.inFeatures, weight: layer.weight.pointer,
                           outFeatures: layer.outFeatures, bias: layer.bias.pointer, out: out.pointer)
        }
        let pattern = AttentionPattern(causal: false)
        for layer in weights.layers {
            linear(x, layer.query, q)
            linear(x, layer.key, k)
            linear(x, layer.value, v)
            Attention.forward(q: q.pointer, k: k.pointer, v: v.pointer, out: context.pointer, batch: batch, length: length,
                              heads: heads, kvHeads: heads, headDim: headDim, valid: valid, pattern: pattern, scratch: scratch)
            linear(context, layer.attentionOutput, projected)
            Kernels.addInPlace(projected.pointer, x.pointer, count: n * h)
            BertKernels.layerNorm(projected.pointer, weight: layer.attentionNorm.weight.pointer, bias: layer.attentionNorm.bias.pointer,
                                  rows: n, dim: h, eps: eps, out: x.pointer)
            linear(x, layer.intermediate, inner)
            BertKernels.activate(inner.pointer, count: inner.count, activation)
            linear(inner, layer.output, projected)
            Kernels.addInPlace(projected.pointer, x.pointer, count: n * h)
            BertKernels.layerNorm(projected.pointer, weight: layer.outputNorm.weight.pointer, bias: layer.outputNorm.bias.pointer,
                                  rows: n, dim: h, eps: eps, out: x.pointer)
        }
        return x
    }
}
