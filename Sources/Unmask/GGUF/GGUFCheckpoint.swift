import Foundation
import UnmaskKernels

/// A GGUF model (llama.cpp's architectures that have an Unmask `Architecture`: `llama`, `qwen2`,
/// `qwen3`, `gemma3`) served under Hugging Face tensor names with Hugging Face layouts, through
/// the architecture's name table, so `DecoderWeights.load` and the rest of Unmask read it like a
/// safetensors checkpoint.
///
/// llama.cpp's converter reorders the rows of `q_proj` / `k_proj` in `llama` files (each head's
/// split-half RoPE layout becomes interleaved pairs); this source puts them back, so the shared
/// HF-layout RoPE code applies unchanged. Other architectures keep the HF layout.
public final class GGUFCheckpoint: TensorSource, @unchecked Sendable {
    /// GGUF `general.architecture` values this reader understands.
    public static var supportedArchitectures: [String] { Architecture.byGGUFName.keys.sorted() }

    public let file: GGUFFile
    public let architecture: Architecture
    public let config: DecoderConfig
    /// HF name → GGUF name, for every tensor served.
    public let hfToGGUF: [String: String]

    public init(path: String) throws {
        let file = try GGUFFile(path: path)
        self.file = file
        config = try GGUFCheckpoint.decoderConfig(from: file)
        architecture = Architecture.of(config)
        var map: [String: String] = [:]
        for info in file.tensors {
            if let hf = architecture.tensors.hfName(forGGUFName: info.name) { map[hf] = info.name }
        }
        hfToGGUF = map
        // Name a missing tensor the way the file would (DecoderWeights only knows HF names).
        if let missing = GGUFCheckpoint.requiredTensorNames(config).first(where: { file.tensor(named: $0) == nil }) {
            throw UnmaskError.missingTensor(file: file.fileName, name: missing)
        }
    }

    /// The GGUF tensors a decoder with `config` needs.
    public static func requiredTensorNames(_ config: DecoderConfig) -> [String] {
        let table = Architecture.of(config).tensors
        var names = [TensorNameTable.embedding.gguf, TensorNameTable.finalNorm.gguf]
        for i in 0..<config.layerCount {
            for tensor in table.layerTensors {
                names.append(table.ggufName(layer: i, tensor))
                if table.hasBias(tensor, config: config) { names.append(table.ggufName(layer: i, tensor, bias: true)) }
            }
        }
        return names
    }

    /// GGUF files store norm weights as the factor the kernels use (llama.cpp's converter adds
    /// Gemma's 1), so no offset applies.
    public func loadModel(precision: WeightPrecision = .auto) throws -> DecoderModel {
        DecoderModel(config: config, weights: try DecoderWeights.load(from: self, config: config, normOffset: 0, configName: "GGUF metadata",
                                                                     precision: precision))
    }

    // MARK: TensorSource (Hugging Face names)

    public var tensorNames: [String] { hfToGGUF.keys.sorted() }

    public func info(_ name: String) -> TensorInfo? {
        hfToGGUF[name].flatMap { file.info($0) }
    }

    public func float32(_ name: String) throws -> WeightTensor {
        guard let ggufName = hfToGGUF[name], let info = file.tensor(named: ggufName) else {
            throw UnmaskError.missingTensor(file: file.fileName, name: name)
        }
        guard architecture.tensors.ggufPermutesQueryKey, let heads = permutedHeadCount(hfName: name) else {
            return try file.float32(ggufName)
        }
        let rows = info.shape.first ?? 1
        guard heads > 0, rows % (2 * heads) == 0 else {
            throw UnmaskError.tensorShapeMismatch(
                file: file.fileName, name: ggufName, shape: info.shape, expected: [config.headDim * heads] + info.shape.dropFirst(),
                because: "llama Q/K rows must split into \(heads) heads of an even size to undo llama.cpp's RoPE permutation")
        }
        if info.dimensions.count <= 1 {
            // A bias: the permutation acts on its elements.
            let stored = try file.float32(ggufName)
            let order = GGUFCheckpoint.llamaRowOrder(rows: rows, heads: heads)
            return WeightTensor(shape: stored.shape, values: order.map { stored.pointer[$0] })
        }
        return try file.dequantized(info, rowOrder: GGUFCheckpoint.llamaRowOrder(rows: rows, heads: heads))
    }

    /// Matrices in any ggml type Unmask dequantizes stay in the mapping under `.auto` (llama's
    /// permuted Q/K rows are read through their row order, never moved).
    public func matrix(_ name: String, precision: WeightPrecision) throws -> LinearWeight {
        guard precision == .auto, let ggufName = hfToGGUF[name], let info = file.tensor(named: ggufName), info.dimensions.count == 2,
              info.type != .f32, let data = file.data(of: info).baseAddress
        else { return LinearWeight(try float32(name)) }
        guard info.type.isDequantizable else { return LinearWeight(try float32(name)) }  // float32 names the type it cannot read
        var order: [Int]?
        if architecture.tensors.ggufPermutesQueryKey, let heads = permutedHeadCount(hfName: name) {
            guard heads > 0, info.rowCount % (2 * heads) == 0 else { return LinearWeight(try float32(name)) }  // float32 explains the shape
            order = GGUFCheckpoint.llamaRowOrder(rows: info.rowCount, heads: heads)
        }
        return LinearWeight(type: info.type, data: data, rows: info.rowCount, columns: info.rowLength, rowOrder: order, owner: file)
    }

    /// The head count llama.cpp permuted a llama tensor with, or nil for tensors it leaves alone.
    private func permutedHeadCount(hfName: String) -> Int? {
        if hfName.hasSuffix(".self_attn.q_proj.weight") || hfName.hasSuffix(".self_attn.q_proj.bias") { return config.headCount }
        if hfName.hasSuffix(".self_attn.k_proj.weight") || hfName.hasSuffix(".self_attn.k_proj.bias") { return config.kvHeadCount }
        return nil
    }

    // MARK: The Q/K permutation

    /// For each row of the Hugging Face layout, the row of a llama.cpp `llama` file it is stored
    /// in. llama.cpp's `LlamaModel.permute` views the `rows` rows as [heads, 2, rows/heads/2] and
    /// swaps the last two axes, so HF row `h·D + s·D/2 + i` (head h of size D, half s) is
    /// stored at row `h·D + 2i + s`.
    public static func llamaRowOrder(rows: Int, heads: Int) -> [Int] {
        precondition(heads > 0 && rows % (2 * heads) == 0)
        let headSize = rows / heads, half = headSize / 2
        var order = [Int](repeating: 0, count: rows)
        for h in 0..<heads {
            for s in 0..<2 {
                for i in 0..<half { order[h * headSize + s * half + i] = h * headSize + 2 * i + s }
            }
        }
        return order
    }

    /// Undoes llama.cpp's Q/K permutation on a row-major [rows, columns] matrix (a vector when
    /// `columns` is 1).
    public static func unpermuteLlamaRows(_ matrix: [Float], rows: Int, columns: Int, heads: Int) -> [Float] {
        precondition(matrix.count == rows * columns)
        var out = [Float](repeating: 0, count: matrix.count)
        for (r, stored) in llamaRowOrder(rows: rows, heads: heads).enumerated() {
            for c in 0..<columns { out[r * columns + c] = matrix[stored * columns + c] }
        }
        return out
    }

    // MARK: Configuration

    /// The decoder's hyperparameters from a GGUF file's metadata (`<arch>.block_count`,
    /// `.embedding_length`, `.feed_forward_length`, `.attention.head_count[_kv]`,
    /// `.attention.layer_norm_rms_epsilon`, `.rope.freq_base`, `.context_length`, `.vocab_size`
    /// or the token list's size (or the embedding's rows), the head size from
    /// `.attention.key_length` or `embedding_length / head_count` (`.rope.dimension_count`, when
    /// present, must equal it), RoPE scaling from `.rope.scaling.*` or a Llama 3
    /// `rope_freqs.weight`), biases when the file has them (always for qwen2), tied embeddings
    /// when `output.weight` is absent, and `general.name` as `nameOrPath`.
    public static func decoderConfig(from file: GGUFFile) throws -> DecoderConfig {
        let fileName = file.fileName
        let metadata = file.metadata
        func invalid(_ key: String, _ expected: String) -> UnmaskError {
            .invalidField(file: fileName, field: key, expected: expected)
        }
        guard let archValue = metadata["general.architecture"] else {
            throw invalid("general.architecture", "a string naming the architecture (one of \(supportedArchitectures.joined(separator: ", "))), but the key is missing")
        }
        guard let arch = archValue.string else {
            throw invalid("general.architecture", "a string, got \(archValue.typeName)")
        }
        guard let architecture = Architecture.byGGUFName[arch] else {
            throw invalid("general.architecture", "one of \(supportedArchitectures.joined(separator: ", ")); architecture '\(ggufDisplayName(arch))' is not supported")
        }

        // Sizes are capped far above any real model so that products of them cannot overflow.
        func integer(_ suffix: String, default fallback: Int? = nil, maximum: Int = 1 << 31) throws -> Int {
            let key = "\(arch).\(suffix)"
            guard let value = metadata[key] else {
                if let fallback { return fallback }
                throw invalid(key, "a positive integer, but the key is missing")
            }
            guard let n = value.int else { throw invalid(key, "an integer, got \(value.typeName) \(value)") }
            guard n >= 1, n <= maximum else { throw invalid(key, "an integer from 1 to \(maximum), got \(n)") }
            return n
        }
        func number(_ suffix: String, default fallback: Double? = nil) throws -> Double {
            let key = "\(arch).\(suffix)"
            guard let value = metadata[key] else {
                if let fallback { return fallback }
                throw invalid(key, "a positive number, but the key is missing")
            }
            guard let x = value.double, x.isFinite, x > 0 else { throw invalid(key, "a positive number, got \(value.typeName) \(value)") }
            return x
        }

        let layers = try integer("block_count", maximum: 1 << 16)
        let hidden = try integer("embedding_length")
        let intermediate = try integer("feed_forward_length")
        let heads = try integer("attention.head_count")
        let kvHeads = try integer("attention.head_count_kv", default: heads)
        guard heads % kvHeads == 0 else {
            throw invalid("\(arch).attention.head_count_kv", "a divisor of \(arch).attention.head_count (\(heads)), got \(kvHeads)")
        }
        let ropeDimensions = try metadata["\(arch).rope.dimension_count"] == nil ? nil : integer("rope.dimension_count")
        // llama.cpp's head size: key_length when given, else embedding_length / head_count.
        let headDim = try integer("attention.key_length", default: hidden / heads)
        if let ropeDimensions, ropeDimensions != headDim {
            throw invalid("\(arch).rope.dimension_count", "the head size \(headDim) (partial rotary embeddings are not supported), got \(ropeDimensions)")
        }
        let valueLength = try integer("attention.value_length", default: headDim)
        guard valueLength == headDim else {
            throw invalid("\(arch).attention.value_length", "the key length \(headDim), got \(valueLength)")
        }
        guard headDim % 2 == 0 else { throw invalid("\(arch).rope.dimension_count", "an even head size, got \(headDim)") }

        let vocabulary: Int
        if metadata["\(arch).vocab_size"] != nil {
            vocabulary = try integer("vocab_size")
        } else if let tokens = metadata["tokenizer.ggml.tokens"] {
            guard let list = tokens.array, list.elementType == .string, !list.isEmpty else {
                throw invalid("tokenizer.ggml.tokens", "a non-empty array of strings, got \(tokens.typeName)")
            }
            vocabulary = list.count
        } else if let embedding = file.tensor(named: "token_embd.weight"), embedding.dimensions.count == 2, embedding.dimensions[1] > 0 {
            vocabulary = embedding.dimensions[1]
        } else {
            throw invalid("\(arch).vocab_size", "the vocabulary size; neither it nor tokenizer.ggml.tokens nor token_embd.weight gives it")
        }

        guard let epsilonValue = metadata["\(arch).attention.layer_norm_rms_epsilon"] else {
            throw invalid("\(arch).attention.layer_norm_rms_epsilon", "a positive number, but the key is missing")
        }
        guard let epsilon = epsilonValue.float, epsilon.isFinite, epsilon > 0 else {
            throw invalid("\(arch).attention.layer_norm_rms_epsilon", "a positive number, got \(epsilonValue.typeName) \(epsilonValue)")
        }
        // llama.cpp's default when the key is absent.
        let ropeTheta = try number("rope.freq_base", default: 10000)
        let context = try integer("context_length")
        let name = metadata["general.name"]?.string ?? ""

        var config = DecoderConfig(
            modelType: architecture.modelType, hiddenSize: hidden, intermediateSize: intermediate, layerCount: layers, headCount: heads,
            kvHeadCount: kvHeads, headDim: headDim, vocabularySize: vocabulary, rmsNormEps: epsilon, ropeTheta: ropeTheta,
            // Biases are there when the converted model had them (Qwen2's q/k/v always).
            ropeScaling: .none, attentionBias: file.tensor(named: "blk.0.attn_q.bias") != nil,
            mlpBias: file.tensor(named: "blk.0.ffn_up.bias") != nil,
            tieWordEmbeddings: file.tensor(named: "output.weight") == nil, maxPositionEmbeddings: context,
            slidingWindow: nil, nameOrPath: name)
        config.outputBias = file.tensor(named: "blk.0.attn_output.bias") != nil
        config.ropeScaling = try ropeScaling(file: file, arch: arch, config: config)
        try architecture.ggufPlan?(&config, GGUFMetadataReader(file: file, arch: arch))
        try config.validate(file: fileName)
        return config
    }

    /// RoPE scaling from `<arch>.rope.scaling.type` / `.factor` (or the older `.rope.scale_linear`),
    /// or the per-frequency factors llama.cpp stores in `rope_freqs.weight` for Llama 3 scaling.
    static func ropeScaling(file: GGUFFile, arch: String, config: DecoderConfig) throws -> RopeScaling {
        let metadata = file.metadata
        let typeKey = "\(arch).rope.scaling.type", factorKey = "\(arch).rope.scaling.factor"
        func factor(_ key: String) throws -> Float? {
            guard let value = metadata[key] else { return nil }
            guard let f = value.float, f.isFinite, f > 0 else {
                throw UnmaskError.invalidField(file: file.fileName, field: key, expected: "a positive number, got \(value.typeName) \(value)")
            }
            return f
        }
        var scaling = RopeScaling.none
        if let typeValue = metadata[typeKey] {
            switch typeValue.string {
            case "none"?: break
            case "linear"?:
                guard let f = try factor(factorKey) else {
                    throw UnmaskError.invalidField(file: file.fileName, field: factorKey, expected: "a positive number for linear RoPE scaling, but the key is missing")
                }
                if f != 1 { scaling = .linear(factor: f) }
            default:
                throw UnmaskError.invalidField(file: file.fileName, field: typeKey, expected: "\"none\" or \"linear\" (other RoPE scaling is not supported), got \(typeValue)")
            }
        } else if let f = try factor("\(arch).rope.scale_linear"), f != 1 {
            scaling = .linear(factor: f)
        }
        if let freqs = file.tensor(named: "rope_freqs.weight") {
            guard case .none = scaling else {
                throw UnmaskError.invalidInput(source: file.fileName, reason: "has both \(typeKey) and rope_freqs.weight; combining RoPE scalings is not supported")
            }
            guard freqs.elementCount == config.headDim / 2 else {
                throw UnmaskError.tensorShapeMismatch(file: file.fileName, name: "rope_freqs.weight", shape: freqs.shape, expected: [config.headDim / 2],
                                                      because: "one factor per rotary frequency, head size \(config.headDim)")
            }
            let factors = try file.float32("rope_freqs.weight").values
            guard let recovered = llama3Scaling(factors: factors, config: config) else {
                throw UnmaskError.invalidInput(
                    source: file.fileName,
                    reason: "rope_freqs.weight holds per-frequency RoPE factors \(factors.prefix(8)) that do not follow Llama 3 scaling, the only kind supported")
            }
            scaling = recovered
        }
        return scaling
    }

    /// The Llama 3 RoPE scaling that reproduces llama.cpp's per-frequency factors (frequency i is
    /// divided by `factors[i]`), or nil when none does.
    ///
    /// The factors are 1 for short wavelengths, `factor` for long ones, and `1 / ((1-s)/factor + s)`
    /// in between with `s = (original/wavelength - low) / (high - low)`. Only the two wavelength
    /// thresholds `original/low` and `original/high` matter, so `low` is taken as 1; `original`
    /// and `high` are solved from the smoothed factors (least squares with two or more, `high` = 4
    /// as in every Llama 3 release with one, any consistent value with none), and the result is
    /// accepted only if it reproduces every factor.
    static func llama3Scaling(factors: [Float], config: DecoderConfig) -> RopeScaling? {
        var base = config
        base.ropeScaling = .none
        let frequencies = base.inverseFrequencies
        guard factors.count == frequencies.count, factors.allSatisfy({ $0.isFinite && $0 > 0 }) else { return nil }
        if factors.allSatisfy({ $0 == 1 }) { return RopeScaling.none }
        let factor = factors.max()!
        guard factor > 1, factors.allSatisfy({ $0 >= 1 - 1e-6 }) else { return nil }
        if factors.allSatisfy({ abs($0 - factor) <= 1e-6 * factor }) { return .linear(factor: factor) }

        let wavelengths = frequencies.map { Double(2 * Float.pi / $0) }
        var unchanged: [Double] = [], divided: [Double] = [], smoothed: [(wavelength: Double, s: Double)] = []
        for (w, r) in zip(wavelengths, factors) {
            if abs(r - 1) <= 1e-6 { unchanged.append(w) } else if abs(r - factor) <= 1e-6 * factor { divided.append(w) } else {
                // 1/r = (1 - s)/F + s
                let s = (1 / Double(r) - 1 / Double(factor)) / (1 - 1 / Double(factor))
                smoothed.append((w, s))
            }
        }
        var original: Double, high: Double
        switch smoothed.count {
        case 0:
            // No frequency falls between the thresholds: any pair around the gap works.
            guard let longestUnchanged = unchanged.max(), let shortestDivided = divided.min(), longestUnchanged < shortestDivided else { return nil }
            original = shortestDivided.rounded(.down)
            if original >= shortestDivided { original -= 1 }
            guard original > longestUnchanged else { return nil }
            high = original / ((longestUnchanged + original) / 2)
        case 1:
            high = 4
            original = smoothed[0].wavelength * (1 + (high - 1) * smoothed[0].s)
        default:
            // original·(1/w) − (high − 1)·s = 1 for every smoothed frequency: least squares in (original, high − 1).
            var a11 = 0.0, a12 = 0.0, a22 = 0.0, b1 = 0.0, b2 = 0.0
            for (w, s) in smoothed {
                let x = 1 / w, y = -s
                a11 += x * x; a12 += x * y; a22 += y * y; b1 += x; b2 += y
            }
            let determinant = a11 * a22 - a12 * a12
            guard determinant != 0 else { return nil }
            original = (b1 * a22 - b2 * a12) / determinant
            high = 1 + (a11 * b2 - a12 * b1) / determinant
        }
        guard original.isFinite, high.isFinite, original >= 1, original < Double(Int32.max), high > 1 else { return nil }

        // The config stores `original` as an integer: scale (original, low, high) together if
        // rounding it alone would move the thresholds.
        var candidates: [(Int, Float, Float)] = [(Int(original.rounded()), 1, Float(high))]
        let scale = 1024.0
        if original * scale < Double(Int32.max) {
            candidates.append((Int((original * scale).rounded()), Float(scale), Float(high * scale)))
        }
        for (originalPositions, low, highFactor) in candidates {
            var trial = config
            trial.ropeScaling = .llama3(factor: factor, lowFrequencyFactor: low, highFrequencyFactor: highFactor, originalMaxPositions: originalPositions)
            let scaled = trial.inverseFrequencies
            let matches = zip(zip(frequencies, factors), scaled).allSatisfy { pair, got in
                let expected = pair.0 / pair.1
                return abs(got - expected) <= 1e-5 * expected
            }
            if matches { return trial.ropeScaling }
        }
        return nil
    }
}
