import Foundation
import UnmaskKernels

/// A PEFT LoRA adapter (`adapter_config.json` + `adapter_model.safetensors`), as the published
/// LLM2Vec checkpoints ship them. Applied by merging W += (alpha / r) · B · A into the weights.
public struct LoRAAdapter: Sendable {
    public struct Pair: Sendable {
        public let a: WeightTensor  // [r, in]
        public let b: WeightTensor  // [out, r]
    }

    public let directory: String
    public let rank: Int
    public let alpha: Double
    public let scaling: Float
    public let targetModules: [String]
    /// Keyed by module path relative to the decoder, e.g. `layers.3.self_attn.q_proj`.
    public let pairs: [String: Pair]

    public init(directory: String) throws {
        self.directory = directory
        let configURL = URL(fileURLWithPath: directory).appendingPathComponent("adapter_config.json")
        let configFile = configURL.path
        let data = try Checkpoint.read(configURL, what: "the adapter's adapter_config.json")
        guard let config = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw UnmaskError.malformedJSON(file: configFile, reason: "not a JSON object")
        }
        func invalid(_ field: String, _ expected: String) -> UnmaskError { .invalidField(file: configFile, field: field, expected: expected) }
        if let type = config["peft_type"] as? String, type != "LORA" { throw invalid("peft_type", "\"LORA\", got \"\(type)\"") }
        guard let rank = (config["r"] as? NSNumber)?.intValue, rank > 0 else { throw invalid("r", "a positive integer") }
        guard let alpha = (config["lora_alpha"] as? NSNumber)?.doubleValue else { throw invalid("lora_alpha", "a number") }
        if (config["use_dora"] as? Bool) == true { throw invalid("use_dora", "false (DoRA adapters are not supported)") }
        if (config["fan_in_fan_out"] as? Bool) == true { throw invalid("fan_in_fan_out", "false (Conv1D-style weights are not used by these models)") }
        if let bias = config["bias"] as? String, bias != "none" { throw invalid("bias", "\"none\", got \"\(bias)\"") }
        if let patterns = config["rank_pattern"] as? [String: Any], !patterns.isEmpty { throw invalid("rank_pattern", "empty (per-module ranks are not supported)") }
        if let patterns = config["alpha_pattern"] as? [String: Any], !patterns.isEmpty { throw invalid("alpha_pattern", "empty (per-module alphas are not supported)") }
        if let saved = config["modules_to_save"] as? [Any], !saved.isEmpty { throw invalid("modules_to_save", "null (fully trained modules are not supported)") }
        let useRSLoRA = (config["use_rslora"] as? Bool) ?? false
        self.rank = rank
        self.alpha = alpha
        self.scaling = Float(useRSLoRA ? alpha / Double(rank).squareRoot() : alpha / Double(rank))
        if let list = config["target_modules"] as? [String] { targetModules = list.sorted() }
        else if let single = config["target_modules"] as? String { targetModules = [single] }
        else { throw invalid("target_modules", "a list of module names") }
        // PEFT refuses target modules the model lacks; a regex string (PEFT's other form) is not read.
        let known = Set(LoRAProjection.allCases.map(\.moduleName))
        if let unknown = targetModules.first(where: { !known.contains($0) }) {
            throw invalid("target_modules", "names among \(known.sorted().joined(separator: ", ")); '\(unknown)' is not a module of these models (regular expressions are not supported)")
        }
        if let replication = config["layer_replication"], !(replication is NSNull) {
            throw invalid("layer_replication", "null (replicated layers are not supported)")
        }
        // PEFT matches layer indices under the `layers` module list; other patterns name other models.
        if let pattern = config["layers_pattern"], !(pattern is NSNull) {
            let patterns = (pattern as? [String]) ?? (pattern as? String).map { [$0] } ?? []
            guard patterns.contains("layers") else { throw invalid("layers_pattern", "null or \"layers\", the name of these models' layer list") }
        }
        // layers_to_transform: LoRA on those layers only, as PEFT builds it (their tensors alone apply).
        var onlyLayers: Set<Int>?
        if let layers = config["layers_to_transform"], !(layers is NSNull) {
            if let one = layers as? Int { onlyLayers = [one] }
            else if let list = layers as? [Int] { onlyLayers = Set(list) }
            else { throw invalid("layers_to_transform", "null, a layer index or a list of them") }
        }

        let weightsPath = URL(fileURLWithPath: directory).appendingPathComponent("adapter_model.safetensors").path
        guard FileManager.default.fileExists(atPath: weightsPath) else {
            let hasBin = FileManager.default.fileExists(atPath: URL(fileURLWithPath: directory).appendingPathComponent("adapter_model.bin").path)
            throw UnmaskError.fileNotFound(path: weightsPath, what: hasBin ? "adapter weights; adapter_model.bin (pickle) is not supported, convert it to safetensors" : "adapter weights")
        }
        let file = try SafeTensorsFile(path: weightsPath)
        var halves: [String: (a: WeightTensor?, b: WeightTensor?)] = [:]
        for name in file.tensorNames {
            guard let (module, half) = LoRAAdapter.parse(name) else {
                throw UnmaskError.invalidAdapter(path: weightsPath, reason: "unexpected tensor '\(name)' (expected base_model.model.….lora_A.weight / lora_B.weight)")
            }
            let tensor = try file.float32(name)
            guard tensor.shape.count == 2 else {
                throw UnmaskError.invalidAdapter(path: weightsPath, reason: "tensor '\(name)' has shape \(tensor.shape), expected a matrix")
            }
            if half == "A" { halves[module, default: (nil, nil)].a = tensor } else { halves[module, default: (nil, nil)].b = tensor }
        }
        var pairs: [String: Pair] = [:]
        for (module, half) in halves where Self.applies(module, layers: onlyLayers, targets: Set(targetModules)) {
            guard let a = half.a, let b = half.b else {
                throw UnmaskError.invalidAdapter(path: weightsPath, reason: "module '\(module)' has only one of lora_A and lora_B")
            }
            guard a.shape[0] == rank, b.shape[1] == rank else {
                throw UnmaskError.invalidAdapter(path: weightsPath, reason: "module '\(module)': lora_A \(a.shape) and lora_B \(b.shape) do not have rank r=\(rank) from adapter_config.json")
            }
            pairs[module] = Pair(a: a, b: b)
        }
        guard !pairs.isEmpty else {
            throw UnmaskError.invalidAdapter(path: weightsPath, reason: "no LoRA tensors for the modules and layers adapter_config.json targets")
        }
        self.pairs = pairs
    }

    /// Whether PEFT would build LoRA for `module` (`layers.3.self_attn.q_proj`) under the config's
    /// `layers_to_transform` and `target_modules`; tensors for other modules are left out, as PEFT ignores them.
    static func applies(_ module: String, layers: Set<Int>?, targets: Set<String>) -> Bool {
        let parts = module.split(separator: ".")
        guard let name = parts.last, targets.contains(String(name)) else { return false }
        guard let layers else { return true }
        return parts.count >= 2 && parts[0] == "layers" && Int(parts[1]).map(layers.contains) == true
    }

    /// `base_model.model.[model.]layers.3.self_attn.q_proj.lora_A[.default].weight` →
    /// (`layers.3.self_attn.q_proj`, "A").
    static func parse(_ key: String) -> (module: String, half: String)? {
        var name = key
        guard name.hasPrefix("base_model.model.") else { return nil }
        name.removeFirst("base_model.model.".count)
        if name.hasPrefix("model.") { name.removeFirst("model.".count) }
        for half in ["A", "B"] {
            for suffix in [".lora_\(half).weight", ".lora_\(half).default.weight"] where name.hasSuffix(suffix) {
                return (String(name.dropLast(suffix.count)), half)
            }
        }
        return nil
    }

    /// Adds scaling · B · A to every targeted float32 weight. Weights are written in place: mapped
    /// F32 files are private copy-on-write mappings, so the checkpoint on disk is never changed.
    /// A weight in a stored format gets the pair attached unmerged instead (merging would mean
    /// requantizing, which loses what the adapter adds).
    public func merge(into weights: DecoderWeights) throws {
        var linears: [String: Linear] = [:]
        for (i, layer) in weights.layers.enumerated() {
            for (name, linear) in layer.linears {
                let group = ["q_proj", "k_proj", "v_proj", "o_proj"].contains(name) ? "self_attn" : "mlp"
                linears["layers.\(i).\(group).\(name)"] = linear
            }
        }
        for module in pairs.keys.sorted() {
            guard let linear = linears[module] else {
                throw UnmaskError.invalidAdapter(path: directory, reason: "module '\(module)' does not exist in this model (\(weights.layers.count) layers)")
            }
            let pair = pairs[module]!
            guard pair.a.shape[1] == linear.inFeatures, pair.b.shape[0] == linear.outFeatures else {
                throw UnmaskError.invalidAdapter(path: directory, reason: "module '\(module)': lora_B·lora_A is [\(pair.b.shape[0]), \(pair.a.shape[1])] but the weight is \(linear.weight.shape)")
            }
        }
        for (module, pair) in pairs {
            let linear = linears[module]!
            guard let dense = linear.weight.float32 else {
                linear.weight.attach(UnmergedLoRA(a: pair.a, b: pair.b, scaling: scaling))
                continue
            }
            BLAS.sgemm(transposeA: false, transposeB: false, m: linear.outFeatures, n: linear.inFeatures, k: rank, alpha: scaling,
                       a: pair.b.pointer, lda: rank, b: pair.a.pointer, ldb: linear.inFeatures, beta: 1,
                       c: dense.pointer, ldc: linear.inFeatures)
        }
    }
}
