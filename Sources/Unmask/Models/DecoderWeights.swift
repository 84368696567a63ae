import UnmaskKernels

/// A linear layer's weight [out, in] and optional bias [out].
public struct Linear: Sendable {
    public let weight: LinearWeight
    public let bias: WeightTensor?
    public var outFeatures: Int { weight.rows }
    public var inFeatures: Int { weight.columns }

    /// out[rows, out] (+)= x[rows, in] · Wᵀ + bias (+ the weight's unmerged adapters).
    func forward(_ x: UnsafePointer<Float>, rows: Int, out: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
        weight.forward(x, rows: rows, bias: bias.map { UnsafePointer($0.pointer) }, out: out, accumulate: accumulate)
    }
}

/// One decoder block's weights by role. Norm weights are the factors the kernels multiply by
/// (Gemma's 1 + w already added); the norms an architecture lacks are nil.
public struct DecoderLayerWeights: Sendable {
    public let attentionNorm: WeightTensor
    public let queryNorm, keyNorm: WeightTensor?
    public let attentionOutputNorm: WeightTensor?
    public let mlpNorm: WeightTensor
    public let mlpOutputNorm: WeightTensor?
    public let qProj, kProj, vProj, oProj: Linear
    public let gateProj, upProj, downProj: Linear

    public func norm(_ tensor: LayerTensor) -> WeightTensor? {
        switch tensor {
        case .attentionNorm: attentionNorm
        case .queryNorm: queryNorm
        case .keyNorm: keyNorm
        case .attentionOutputNorm: attentionOutputNorm
        case .mlpNorm: mlpNorm
        case .mlpOutputNorm: mlpOutputNorm
        default: nil
        }
    }

    public func linear(_ projection: LoRAProjection) -> Linear {
        switch projection {
        case .q: qProj
        case .k: kProj
        case .v: vProj
        case .o: oProj
        case .gate: gateProj
        case .up: upProj
        case .down: downProj
        }
    }

    /// The linear layers by PEFT's `target_modules` names.
    public var linears: [String: Linear] {
        Dictionary(uniqueKeysWithValues: LoRAProjection.allCases.map { ($0.moduleName, linear($0)) })
    }

    /// Every norm the layer has, by role.
    public var norms: [(LayerTensor, WeightTensor)] {
        LayerTensor.allCases.compactMap { t in norm(t).map { (t, $0) } }
    }
}

/// All weights of a decoder, read by Hugging Face tensor names (through the architecture's name
/// table) from any `TensorSource`.
public struct DecoderWeights: Sendable {
    /// [vocab, hidden]: looked up row by row, and the output projection of tied models.
    public let embedTokens: LinearWeight
    public let layers: [DecoderLayerWeights]
    public let norm: WeightTensor

    /// Every tensor a decoder with `c` needs, by Hugging Face name (as `source` spells it), with
    /// its expected shape and the config fields that decide that shape.
    static func plan(_ source: TensorSource, config c: DecoderConfig) -> [(name: String, shape: [Int], because: String)] {
        let table = Architecture.of(c).tensors
        // `model.`-prefixed names (`*ForCausalLM` checkpoints) or bare ones (`LlamaModel`, llm2vec's `...BiModel` saves).
        let prefix = source.info(TensorNameTable.embedding.hf) != nil ? "model." : ""
        func name(_ hf: String) -> String { prefix + String(hf.dropFirst("model.".count)) }
        let h = c.hiddenSize
        var tensors = [(name(TensorNameTable.embedding.hf), [c.vocabularySize, h], "vocab_size=\(c.vocabularySize), hidden_size=\(h)")]
        for i in 0..<c.layerCount {
            for role in table.layerTensors {
                let (shape, because) = table.shape(role, config: c)
                tensors.append((name(table.hfName(layer: i, role)), shape, because))
                if table.hasBias(role, config: c) { tensors.append((name(table.hfName(layer: i, role, bias: true)), [shape[0]], because)) }
            }
        }
        tensors.append((name(TensorNameTable.finalNorm.hf), [h], "hidden_size=\(h)"))
        return tensors
    }

    /// Checks that `source` holds every tensor of `c` with its shape, reading no data: sizes from
    /// a config are checked against the files before anything is sized by them (a config claiming
    /// a billion layers fails on the first missing tensor, not in an allocation).
    public static func checkShapes(_ source: TensorSource, config c: DecoderConfig, configName: String = "config.json") throws {
        // The last layer first: a wrong layer count is the commonest mismatch and the cheapest to find.
        if c.layerCount > 1, let last = Architecture.of(c).tensors.layerTensors.first {
            let prefix = source.info(TensorNameTable.embedding.hf) != nil ? "model." : ""
            let name = prefix + String(Architecture.of(c).tensors.hfName(layer: c.layerCount - 1, last).dropFirst("model.".count))
            guard source.info(name) != nil else {
                throw UnmaskError.invalidField(file: configName, field: "num_hidden_layers",
                                               expected: "the number of layers the weights hold; \(c.layerCount) needs '\(name)', which is missing")
            }
        }
        for (name, expected, because) in plan(source, config: c) {
            guard let info = source.info(name) else {
                throw UnmaskError.missingTensor(file: source.tensorNames.isEmpty ? "weights" : (source.info(source.tensorNames[0])?.file ?? "weights"), name: name)
            }
            guard info.shape == expected else {
                throw UnmaskError.tensorShapeMismatch(file: info.file, name: name, shape: info.shape, expected: expected, because: "from \(configName): " + because)
            }
        }
    }

    /// Loads every tensor the encoder needs, after `checkShapes`. `configName` says where the
    /// hyperparameters came from, for errors; `normOffset` is added to norm weights (the
    /// architecture's `hfNormOffset` for safetensors, 0 for GGUF). Under `precision` `.auto`
    /// the embedding and projections stay in their stored formats; norms and biases, which are
    /// small, are float32 either way.
    public static func load(from source: TensorSource, config c: DecoderConfig, normOffset: Float? = nil,
                            configName: String = "config.json", precision: WeightPrecision = .auto) throws -> DecoderWeights {
        try checkShapes(source, config: c, configName: configName)
        let table = Architecture.of(c).tensors
        let offset = normOffset ?? table.hfNormOffset
        var planned = plan(source, config: c).makeIterator()
        // Tensors come in `plan`'s order.
        func next() throws -> WeightTensor {
            let (name, _, _) = planned.next()!
            let tensor = try source.float32(name)
            // One pass at load: a NaN in a weight would otherwise surface as silent NaN embeddings.
            if let bad = firstNonFinite(tensor) {
                throw UnmaskError.nonFiniteTensor(file: source.info(name)?.file ?? "weights", name: name, index: bad, value: tensor.pointer[bad])
            }
            return tensor
        }
        func matrix() throws -> LinearWeight {
            let (name, _, _) = planned.next()!
            return try checkedMatrix(source, name, precision: precision)
        }
        func norm() throws -> WeightTensor {
            let weight = try next()
            guard offset != 0 else { return weight }
            let shifted = FloatBuffer(count: weight.count)
            for i in 0..<weight.count { shifted[i] = weight.pointer[i] + offset }
            return WeightTensor(buffer: shifted, shape: weight.shape)
        }
        let embed = try matrix()
        var layers: [DecoderLayerWeights] = []
        for i in 0..<c.layerCount {
            var norms: [LayerTensor: WeightTensor] = [:]
            var linears: [LoRAProjection: Linear] = [:]
            for role in table.layerTensors {
                if let projection = role.projection {
                    let weight = try matrix()
                    linears[projection] = Linear(weight: weight, bias: table.hasBias(role, config: c) ? try next() : nil)
                } else {
                    norms[role] = try norm()
                }
            }
            guard let attentionNorm = norms[.attentionNorm], let mlpNorm = norms[.mlpNorm], linears.count == LoRAProjection.allCases.count else {
                preconditionFailure("\(c.modelType)'s name table lacks a pre-norm or a projection (layer \(i))")
            }
            layers.append(DecoderLayerWeights(
                attentionNorm: attentionNorm, queryNorm: norms[.queryNorm], keyNorm: norms[.keyNorm],
                attentionOutputNorm: norms[.attentionOutputNorm], mlpNorm: mlpNorm, mlpOutputNorm: norms[.mlpOutputNorm],
                qProj: linears[.q]!, kProj: linears[.k]!, vProj: linears[.v]!, oProj: linears[.o]!,
                gateProj: linears[.gate]!, upProj: linears[.up]!, downProj: linears[.down]!))
        }
        let final = try norm()
        return DecoderWeights(embedTokens: embed, layers: layers, norm: final)
    }

    /// Every matrix the encoder multiplies by (the embedding, which is also a tied LM head, last).
    public var matrices: [LinearWeight] {
        layers.flatMap { layer in LoRAProjection.allCases.map { layer.linear($0).weight } } + [embedTokens]
    }

    /// Number of weights the encoder holds (embedding, norms, projections and biases).
    public var parameterCount: Int {
        layers.reduce(embedTokens.rows * embedTokens.columns + norm.count) { total, layer in
            total + layer.norms.reduce(0) { $0 + $1.1.count }
                + layer.linears.values.reduce(0) { $0 + $1.weight.rows * $1.weight.columns + ($1.bias?.count ?? 0) }
        }
    }

    /// Bytes those weights take as held (stored formats count their stored size).
    public var byteCount: Int {
        layers.reduce(embedTokens.byteCount + norm.count * 4) { total, layer in
            total + layer.norms.reduce(0) { $0 + $1.1.count * 4 }
                + layer.linears.values.reduce(0) { $0 + $1.weight.byteCount + ($1.bias?.count ?? 0) * 4 }
        }
    }

    /// The output projection [vocab, hidden]: `lm_head.weight`, or the embedding when tied (or when
    /// the checkpoint has no separate head, as tied GGUF files do). Only next-token prediction
    /// needs it, so encoders never load it.
    public func lmHead(from source: TensorSource, config c: DecoderConfig, configName: String = "config.json",
                       precision: WeightPrecision = .auto) throws -> LinearWeight {
        guard !c.tieWordEmbeddings, let info = source.info(TensorNameTable.lmHead.hf) else { return embedTokens }
        guard info.shape == [c.vocabularySize, c.hiddenSize] else {
            throw UnmaskError.tensorShapeMismatch(file: info.file, name: TensorNameTable.lmHead.hf, shape: info.shape,
                                                  expected: [c.vocabularySize, c.hiddenSize], because: "from \(configName): vocab_size, hidden_size")
        }
        return try checkedMatrix(source, TensorNameTable.lmHead.hf, precision: precision)
    }
}

/// A matrix from `source`, refused when any weight is NaN or infinite: such a weight would
/// otherwise surface as silent NaN embeddings.
private func checkedMatrix(_ source: TensorSource, _ name: String, precision: WeightPrecision) throws -> LinearWeight {
    let matrix = try source.matrix(name, precision: precision)
    if let bad = matrix.firstNonFinite() {
        var value: Float = 0
        withUnsafeTemporaryAllocation(of: Float.self, capacity: matrix.columns) { row in
            matrix.row(bad / matrix.columns, into: row.baseAddress!)
            value = row[bad % matrix.columns]
        }
        throw UnmaskError.nonFiniteTensor(file: source.info(name)?.file ?? "weights", name: name, index: bad, value: value)
    }
    return matrix
}

/// The index of the first NaN or infinity in `tensor`, nil when every value is finite.
func firstNonFinite(_ tensor: WeightTensor) -> Int? {
    firstNonFinite(tensor.pointer, count: tensor.count)
}

/// The index of the first NaN or infinity among `n` floats at `p`.
func firstNonFinite(_ p: UnsafePointer<Float>, count n: Int) -> Int? {
    var i = 0
    while i + 16 <= n {
        let v = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self)
        // x − x is 0 for finite x and NaN for NaN and ±∞.
        if (v - v) != SIMD16<Float>(repeating: 0) { break }
        i += 16
    }
    while i < n {
        if !p[i].isFinite { return i }
        i += 1
    }
    return nil
}
