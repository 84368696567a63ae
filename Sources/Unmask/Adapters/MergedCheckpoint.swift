import Foundation
import UnmaskKernels

/// `unmask merge`: base weights with PEFT adapters merged, written as a checkpoint of the base's
/// format, so the result loads (here, in transformers or in llama.cpp) without the adapters.
///
/// - Hugging Face folder → `output` is a folder: the model's other files (config, tokenizer, …)
///   copied, and `model.safetensors` with every decoder tensor in float32 under Hugging Face
///   names (`model.`-prefixed, plus `lm_head.weight` when the model has an untied one).
/// - GGUF file → `output` is the `.gguf` file to write, or, when it does not end in `.gguf`, a
///   folder that receives `model.gguf`. The file is the base's with the seven LoRA-target
///   projections of every layer in float32; every other tensor and all metadata are copied byte
///   for byte. GGUF has no place for `llm2vec_config.json`, so an adapter's pooling defaults
///   are not carried over (pass the flags to `embed` instead).
///
/// Nothing is overwritten: an output that already holds any file to be written, or model
/// weights, is an error. Files are written under temporary names and renamed into place when
/// all are complete, so a failure leaves no partial model behind.
public enum MergedCheckpoint {
    /// Returns the names of the files written, in the folder that receives them.
    public static func write(model: String, adapters: [String], to output: URL) throws -> [String] {
        guard !adapters.isEmpty else {
            throw UnmaskError.invalidInput(source: "merge", reason: "no adapter to merge: give at least one --adapter DIR")
        }
        let checkpoint = try Checkpoint(path: model)
        // Check the destination before the expensive part, and the adapters before touching it.
        let plan = try OutputPlan(checkpoint: checkpoint, adapters: adapters, output: output)
        let loaded = try adapters.map { try LoRAAdapter(directory: $0) }
        // Merging writes float32 weights, so the model is read as float32.
        let decoder = try checkpoint.loadModel(precision: .float32)
        for adapter in loaded { try adapter.merge(into: decoder.weights) }

        let staging = try StagedOutput(folder: plan.folder)
        do {
            for (name, source) in plan.copies {
                try staging.stage(name) { try $0.write(Checkpoint.read(source, what: name)) }
            }
            switch checkpoint.format {
            case .huggingFace:
                let tensors = try huggingFaceTensors(decoder.weights, config: checkpoint.config, source: checkpoint.tensors, lmHead: untiedLMHead(checkpoint, decoder.weights))
                try staging.stage(plan.modelFile) { try writeSafeTensors(tensors, metadata: ["format": "pt"], into: $0) }
            case let .gguf(gguf):
                try staging.stage(plan.modelFile) { try writeGGUF(gguf, merged: decoder.weights, into: $0) }
            }
            return try staging.commit()
        } catch {
            staging.discard()
            throw error
        }
    }

    // MARK: Hugging Face

    /// The output projection to write: only a separate `lm_head.weight` (a tied model has none,
    /// and transformers ties it to the embedding again on load).
    static func untiedLMHead(_ checkpoint: Checkpoint, _ weights: DecoderWeights) throws -> WeightTensor? {
        guard !checkpoint.config.tieWordEmbeddings, checkpoint.tensors.info("lm_head.weight") != nil else { return nil }
        return try weights.lmHead(from: checkpoint.tensors, config: checkpoint.config, precision: .float32).dequantized()
    }

    /// Every decoder tensor under the name `*ForCausalLM.save_pretrained` gives it. Norms, which no
    /// adapter changes, are the source's own values where its convention differs from the kernels'
    /// (Gemma stores w for a 1 + w scale, and (1 + w) − 1 need not round back to w).
    static func huggingFaceTensors(_ weights: DecoderWeights, config: DecoderConfig, source: TensorSource,
                                   lmHead: WeightTensor?) throws -> [(name: String, tensor: WeightTensor)] {
        let table = Architecture.of(config).tensors
        let prefix = source.info(TensorNameTable.embedding.hf) != nil ? "" : "model."
        func stored(_ norm: WeightTensor, _ name: String) throws -> WeightTensor {
            guard table.hfNormOffset != 0 else { return norm }
            return try source.float32(prefix.isEmpty ? name : String(name.dropFirst(prefix.count)))
        }
        var named: [(name: String, tensor: WeightTensor)] = [(TensorNameTable.embedding.hf, weights.embedTokens.dequantized()),
                                                             (TensorNameTable.finalNorm.hf, try stored(weights.norm, TensorNameTable.finalNorm.hf))]
        for (i, layer) in weights.layers.enumerated() {
            for tensor in table.layerTensors {
                if let projection = tensor.projection {
                    let linear = layer.linear(projection)
                    named.append((table.hfName(layer: i, tensor), linear.weight.dequantized()))
                    if let bias = linear.bias { named.append((table.hfName(layer: i, tensor, bias: true), bias)) }
                } else if let norm = layer.norm(tensor) {
                    named.append((table.hfName(layer: i, tensor), try stored(norm, table.hfName(layer: i, tensor))))
                }
            }
        }
        if let lmHead { named.append((TensorNameTable.lmHead.hf, lmHead)) }
        return named
    }

    /// Writes F32 tensors as `SafeTensorsFile.write(_:metadata:to:)` does (header sorted by name,
    /// data in that order), but tensor by tensor into `out` instead of through one buffer.
    static func writeSafeTensors(_ tensors: [(name: String, tensor: WeightTensor)], metadata: [String: String], into out: OutputFile) throws {
        let ordered = tensors.sorted { $0.name < $1.name }
        try out.write(SafeTensorsFile.header(ordered.map { ($0.name, $0.tensor.shape) }, metadata: metadata))
        // Little-endian hosts only (x86-64, arm64), as the reader assumes.
        for (_, tensor) in ordered { try out.write(tensor) }
    }

    // MARK: GGUF

    /// The seven LoRA targets by GGUF name, with the head count llama.cpp permuted their rows by
    /// (nil: stored in Hugging Face row order).
    static func ggufProjections(_ config: DecoderConfig) -> [(tensor: LayerTensor, projection: LoRAProjection, permutedHeads: Int?)] {
        let permutes = Architecture.of(config).tensors.ggufPermutesQueryKey
        return LoRAProjection.allCases.map { p in
            let heads: Int? = switch p {
            case .q: permutes ? config.headCount : nil
            case .k: permutes ? config.kvHeadCount : nil
            default: nil
            }
            return (LayerTensor.allCases.first { $0.projection == p }!, p, heads)
        }
    }

    /// A merged projection as the GGUF file stores it: float32, rows in the file's order.
    struct GGUFReplacement {
        let weight: WeightTensor
        let permutedHeads: Int?
    }

    /// Writes `gguf` with its LoRA-target projections replaced by the merged float32 weights:
    /// version 3, the source's metadata bytes (so also its alignment), its tensors in its order,
    /// every other tensor's data copied as stored.
    static func writeGGUF(_ gguf: GGUFCheckpoint, merged weights: DecoderWeights, into out: OutputFile) throws {
        let source = gguf.file
        var replacements: [String: GGUFReplacement] = [:]
        for (i, layer) in weights.layers.enumerated() {
            for projection in ggufProjections(gguf.config) {
                replacements[gguf.architecture.tensors.ggufName(layer: i, projection.tensor)] =
                    GGUFReplacement(weight: layer.linear(projection.projection).weight.dequantized(), permutedHeads: projection.permutedHeads)
            }
        }
        func aligned(_ n: Int) -> Int { (n + source.alignment - 1) / source.alignment * source.alignment }

        var header = Data("GGUF".utf8)
        header.appendLittleEndian(UInt32(3))
        header.appendLittleEndian(UInt64(source.tensors.count))
        header.appendLittleEndian(UInt64(source.metadataKeys.count))
        header.append(contentsOf: source.metadataBytes)
        var offset = 0
        for tensor in source.tensors {
            let replaced = replacements[tensor.name] != nil
            header.appendLittleEndian(UInt64(tensor.name.utf8.count))
            header.append(contentsOf: tensor.name.utf8)
            header.appendLittleEndian(UInt32(tensor.dimensions.count))
            for extent in tensor.dimensions { header.appendLittleEndian(UInt64(extent)) }
            header.appendLittleEndian((replaced ? GGMLType.f32 : tensor.type).rawValue)
            header.appendLittleEndian(UInt64(offset))
            offset = aligned(offset + (replaced ? tensor.elementCount * MemoryLayout<Float>.size : tensor.byteCount))
        }
        try out.write(header)
        for tensor in source.tensors {
            // The data section and every tensor in it start at a multiple of the alignment.
            try out.writeZeros(aligned(out.count) - out.count)
            if let replacement = replacements[tensor.name] {
                try writeGGUFRows(replacement, into: out)
            } else {
                try out.write(source.data(of: tensor))
            }
        }
    }

    /// A merged projection in the file's row order: llama.cpp's Q/K permutation applied again
    /// where `GGUFCheckpoint` undid it on load.
    static func writeGGUFRows(_ replacement: GGUFReplacement, into out: OutputFile) throws {
        let weight = replacement.weight
        guard let heads = replacement.permutedHeads else { return try out.write(weight) }
        let rows = weight.shape[0], columns = weight.count / rows
        let stored = WeightTensor(buffer: FloatBuffer(count: weight.count), shape: weight.shape)
        for (row, storedRow) in GGUFCheckpoint.llamaRowOrder(rows: rows, heads: heads).enumerated() {
            (stored.pointer + storedRow * columns).update(from: weight.pointer + row * columns, count: columns)
        }
        try out.write(stored)
    }
}

// MARK: - Where the output goes

/// The files a merge writes: the model file, and (Hugging Face) the source folder's other files.
struct OutputPlan {
    let folder: URL
    let modelFile: String
    let copies: [(name: String, source: URL)]

    init(checkpoint: Checkpoint, adapters: [String], output: URL) throws {
        switch checkpoint.format {
        case let .huggingFace(source):
            try OutputPlan.requireFolder(output, for: "a Hugging Face model merges into a folder")
            folder = output
            modelFile = "model.safetensors"
            copies = try OutputPlan.huggingFaceCopies(from: source, llm2vecConfigFrom: adapters.last.map { URL(fileURLWithPath: $0) })
            // A folder is one model: other weights beside ours would make it ambiguous.
            let written = Set([modelFile] + copies.map(\.name))
            try refuseExisting { written.contains($0) || OutputPlan.isWeightFile($0) }
        case .gguf:
            if output.pathExtension.lowercased() == "gguf" {
                folder = output.deletingLastPathComponent()
                modelFile = output.lastPathComponent
            } else {
                try OutputPlan.requireFolder(output, for: "a GGUF model merges into a .gguf file, or into a folder (any other path) that receives model.gguf")
                folder = output
                modelFile = "model.gguf"
            }
            copies = []
            let name = modelFile
            try refuseExisting { $0 == name }
        }
    }

    /// The model folder's top-level files except weights, with `llm2vec_config.json` as
    /// base + adapters would use it: llm2vec (and `Encoder`) read only the last adapter's when
    /// adapters are given, so the merged model gets that one or none.
    static func huggingFaceCopies(from source: URL, llm2vecConfigFrom lastAdapter: URL?) throws -> [(name: String, source: URL)] {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: source.path).sorted() } catch {
            throw UnmaskError.unreadableFile(path: source.path, reason: error.localizedDescription)
        }
        var copies: [(name: String, source: URL)] = []
        for name in names where !name.hasPrefix(".") && !isWeightFile(name) && name != llm2vecConfig {
            let url = source.appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue { copies.append((name, url)) }
        }
        if let config = lastAdapter?.appendingPathComponent(llm2vecConfig), FileManager.default.fileExists(atPath: config.path) {
            copies.append((llm2vecConfig, config))
        }
        return copies
    }

    static let llm2vecConfig = "llm2vec_config.json"

    /// Weights (and the indexes of sharded weights), in any format a model folder may hold them.
    static func isWeightFile(_ name: String) -> Bool {
        let lowered = name.lowercased()
        return [".safetensors", ".bin", ".pth", ".pt", ".ckpt", ".gguf", ".h5", ".msgpack", ".index.json"].contains { lowered.hasSuffix($0) }
    }

    /// `url` is a folder, or nothing yet (it will be created).
    static func requireFolder(_ url: URL, for reason: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw UnmaskError.unwritableFile(path: url.path, reason: "is a file, not a folder (\(reason))")
        }
    }

    /// Merging never replaces a file.
    private func refuseExisting(_ clashes: (String) -> Bool) throws {
        let existing = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        if let clash = existing.sorted().first(where: clashes) {
            throw UnmaskError.unwritableFile(path: folder.appendingPathComponent(clash).path,
                                             reason: "already exists; merge never overwrites a model or adds one beside it, choose another --output")
        }
    }
}

/// Files written under hidden temporary names in `folder` and renamed to their names only once
/// every one is complete; `discard` removes them (and the folder, if it was created for them).
final class StagedOutput {
    let folder: URL
    private let createdFolder: Bool
    private var staged: [(temporary: URL, name: String)] = []

    init(folder: URL) throws {
        self.folder = folder
        createdFolder = !FileManager.default.fileExists(atPath: folder.path)
        do { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) } catch {
            throw UnmaskError.unwritableFile(path: folder.path, reason: error.localizedDescription)
        }
    }

    func stage(_ name: String, _ write: (OutputFile) throws -> Void) throws {
        let temporary = folder.appendingPathComponent(".\(name).\(UUID().uuidString).partial")
        staged.append((temporary, name))
        let file = try OutputFile(url: temporary)
        try write(file)
        try file.close()
    }

    /// Renames every file into place (never over an existing one); returns their names.
    func commit() throws -> [String] {
        var committed: [URL] = []
        for (temporary, name) in staged {
            let destination = folder.appendingPathComponent(name)
            do { try FileManager.default.moveItem(at: temporary, to: destination) } catch {
                // Undo the renames already done: those names did not exist before.
                for url in committed { try? FileManager.default.removeItem(at: url) }
                throw UnmaskError.unwritableFile(path: destination.path, reason: error.localizedDescription)
            }
            committed.append(destination)
        }
        return staged.map(\.name)
    }

    func discard() {
        for (temporary, _) in staged { try? FileManager.default.removeItem(at: temporary) }
        if createdFolder { try? FileManager.default.removeItem(at: folder) }
    }
}

/// Appends to a new file tensor by tensor, so no copy of the whole model is built in memory.
final class OutputFile {
    let url: URL
    private let handle: FileHandle
    /// Bytes written so far.
    private(set) var count = 0

    init(url: URL) throws {
        self.url = url
        guard FileManager.default.createFile(atPath: url.path, contents: nil), let handle = FileHandle(forWritingAtPath: url.path) else {
            throw UnmaskError.unwritableFile(path: url.path, reason: "cannot create the file")
        }
        self.handle = handle
    }

    func write(_ data: Data) throws {
        do { try handle.write(contentsOf: data) } catch {
            throw UnmaskError.unwritableFile(path: url.path, reason: error.localizedDescription)
        }
        count += data.count
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        try write(Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: base), count: bytes.count, deallocator: .none))
    }

    /// A tensor's float32 values; the tensor keeps its memory alive during the write.
    func write(_ tensor: WeightTensor) throws {
        try withExtendedLifetime(tensor) {
            try write(UnsafeRawBufferPointer(start: tensor.pointer, count: tensor.count * MemoryLayout<Float>.size))
        }
    }

    func writeZeros(_ n: Int) throws {
        if n > 0 { try write(Data(count: n)) }
    }

    /// Flushes to disk before the rename that publishes the file, so a crash cannot leave a
    /// renamed file with missing data.
    func close() throws {
        do {
            try handle.synchronize()
            try handle.close()
        } catch {
            throw UnmaskError.unwritableFile(path: url.path, reason: error.localizedDescription)
        }
    }
}

private extension Data {
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }
}
