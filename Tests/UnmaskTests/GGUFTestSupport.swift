import Foundation
@testable import Unmask
import UnmaskTestSupport

/// Where the GGUF fixtures live, and a scratch folder for files the tests write.
enum GGUFFixtures {
    static func path(_ name: String) -> String { Fixtures.path("gguf", name) }

    static func json(_ name: String) throws -> [String: Any] {
        try Fixtures.json("gguf", name) as! [String: Any]
    }

    /// Little-endian float32s from a `.f32` reference file.
    static func floats(_ name: String) throws -> [Float] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path(name)))
        return data.withUnsafeBytes { raw in
            (0..<data.count / 4).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
        }
    }

    static func write(_ data: Data, in directory: URL, name: String = "model.gguf") throws -> String {
        let url = directory.appendingPathComponent(name)
        try data.write(to: url)
        return url.path
    }
}

/// Builds GGUF files byte by byte, for crafted and broken inputs (independent of Unmask's reader).
struct GGUFBuilder {
    struct Tensor {
        var name: String
        var dimensions: [Int]
        var type: GGMLType
        var bytes: [UInt8]
    }

    var version: UInt32 = 3
    /// Padding used for tensor data; write `general.alignment` yourself to change the file's.
    var alignment = 32
    var metadata: [(String, GGUFValue)] = []
    var tensors: [Tensor] = []

    mutating func set(_ key: String, _ value: GGUFValue) {
        metadata.removeAll { $0.0 == key }
        metadata.append((key, value))
    }

    /// A float32 tensor with a row-major `shape` (stored with `dimensions` = shape reversed).
    mutating func addF32(_ name: String, shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count)
        tensors.append(Tensor(name: name, dimensions: shape.reversed(), type: .f32,
                              bytes: values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }))
    }

    mutating func addRaw(_ name: String, dimensions: [Int], type: GGMLType, bytes: [UInt8]) {
        tensors.append(Tensor(name: name, dimensions: dimensions, type: type, bytes: bytes))
    }

    func data() -> Data {
        var out = Data()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func string(_ s: String) { u64(UInt64(s.utf8.count)); out.append(contentsOf: Array(s.utf8)) }
        func payload(_ v: GGUFValue) {
            switch v {
            case let .uint8(x): out.append(x)
            case let .int8(x): out.append(UInt8(bitPattern: x))
            case let .uint16(x): withUnsafeBytes(of: x.littleEndian) { out.append(contentsOf: $0) }
            case let .int16(x): withUnsafeBytes(of: x.littleEndian) { out.append(contentsOf: $0) }
            case let .uint32(x): u32(x)
            case let .int32(x): u32(UInt32(bitPattern: x))
            case let .uint64(x): u64(x)
            case let .int64(x): u64(UInt64(bitPattern: x))
            case let .float32(x): u32(x.bitPattern)
            case let .float64(x): u64(x.bitPattern)
            case let .bool(x): out.append(x ? 1 : 0)
            case let .string(x): string(x)
            case let .array(a): array(a)
            }
        }
        func array(_ a: GGUFArray) {
            u32(a.elementType.rawValue)
            u64(UInt64(a.count))
            for i in 0..<a.count { payload(a[i]) }
        }
        out.append(contentsOf: Array("GGUF".utf8))
        u32(version)
        u64(UInt64(tensors.count))
        u64(UInt64(metadata.count))
        for (key, value) in metadata {
            string(key)
            u32(value.type.rawValue)
            payload(value)
        }
        var offset = 0
        for t in tensors {
            string(t.name)
            u32(UInt32(t.dimensions.count))
            for d in t.dimensions { u64(UInt64(d)) }
            u32(t.type.rawValue)
            u64(UInt64(offset))
            offset += (t.bytes.count + alignment - 1) / alignment * alignment
        }
        while out.count % alignment != 0 { out.append(0) }
        for t in tensors {
            out.append(contentsOf: t.bytes)
            while out.count % alignment != 0 { out.append(0) }
        }
        return out
    }

    /// Random blocks of any type Unmask dequantizes, with finite scales: random quants, and the
    /// float16 scale fields (F16 and BF16 values themselves) set to small finite numbers.
    static func randomBlocks(_ type: GGMLType, count: Int, using rng: inout SeededRandom) -> [UInt8] {
        var bytes = (0..<count * type.bytesPerBlock).map { _ in UInt8.random(in: 0...255, using: &rng) }
        if type == .bf16 {
            for i in 0..<count {
                let bits = UInt16(Float.random(in: -0.05...0.05, using: &rng).bitPattern >> 16)
                bytes[2 * i] = UInt8(bits & 0xFF)
                bytes[2 * i + 1] = UInt8(bits >> 8)
            }
            return bytes
        }
        // F16's values are drawn as the block types' scales are.
        let scaleOffsets = type == .f16 ? [0] : type.halfScaleOffsets
        precondition(!scaleOffsets.isEmpty, "no random blocks for \(type)")
        for b in 0..<count {
            for offset in scaleOffsets {
                let scale = Float16(Float.random(in: -0.05...0.05, using: &rng)).bitPattern
                bytes[b * type.bytesPerBlock + offset] = UInt8(scale & 0xFF)
                bytes[b * type.bytesPerBlock + offset + 1] = UInt8(scale >> 8)
            }
        }
        return bytes
    }

    /// The `llama.*` hyperparameters of `config` as llama.cpp writes them.
    mutating func setHyperparameters(_ config: DecoderConfig, architecture: String) {
        let a = architecture
        set("general.architecture", .string(a))
        set("general.name", .string(config.nameOrPath))
        set("\(a).block_count", .uint32(UInt32(config.layerCount)))
        set("\(a).context_length", .uint32(UInt32(config.maxPositionEmbeddings)))
        set("\(a).embedding_length", .uint32(UInt32(config.hiddenSize)))
        set("\(a).feed_forward_length", .uint32(UInt32(config.intermediateSize)))
        set("\(a).attention.head_count", .uint32(UInt32(config.headCount)))
        set("\(a).attention.head_count_kv", .uint32(UInt32(config.kvHeadCount)))
        set("\(a).rope.freq_base", .float32(Float(config.ropeTheta)))
        set("\(a).attention.layer_norm_rms_epsilon", .float32(config.rmsNormEps))
        set("\(a).vocab_size", .uint32(UInt32(config.vocabularySize)))
        set("\(a).rope.dimension_count", .uint32(UInt32(config.headDim)))
    }

    /// A tiny llama-arch model with mixed quant types (random weights), for fuzzing the whole
    /// path from bytes to `DecoderWeights`.
    static func tinyLlama(seed: UInt64) -> GGUFBuilder {
        var rng = SeededRandom(seed: seed)
        let config = DecoderConfig(modelType: "llama", hiddenSize: 32, intermediateSize: 64, layerCount: 1, headCount: 2,
                                   kvHeadCount: 1, headDim: 16, vocabularySize: 12, rmsNormEps: 1e-5, ropeTheta: 10000,
                                   maxPositionEmbeddings: 64, nameOrPath: "tiny")
        var b = GGUFBuilder()
        b.setHyperparameters(config, architecture: "llama")
        b.set("tokenizer.ggml.tokens", .array(.string((0..<12).map { "t\($0)" })))
        func add(_ name: String, _ dims: [Int], _ type: GGMLType) {
            let elements = dims.reduce(1, *)
            if type == .f32 {
                b.addF32(name, shape: dims.reversed(), values: rng.floats(elements))
            } else {
                b.addRaw(name, dimensions: dims, type: type, bytes: randomBlocks(type, count: elements / type.blockSize, using: &rng))
            }
        }
        add("token_embd.weight", [32, 12], .q8_0)
        add("blk.0.attn_norm.weight", [32], .f32)
        add("blk.0.attn_q.weight", [32, 32], .q4_0)
        add("blk.0.attn_k.weight", [32, 16], .q5_1)
        add("blk.0.attn_v.weight", [32, 16], .q4_1)
        add("blk.0.attn_output.weight", [32, 32], .f16)
        add("blk.0.ffn_norm.weight", [32], .f32)
        add("blk.0.ffn_gate.weight", [32, 64], .q5_0)
        add("blk.0.ffn_up.weight", [32, 64], .q8_0)
        add("blk.0.ffn_down.weight", [64, 32], .q4_1)
        add("output_norm.weight", [32], .f32)
        return b
    }
}
