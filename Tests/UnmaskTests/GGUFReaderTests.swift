import Foundation
import Testing
@testable import Unmask
import UnmaskTestSupport

/// Parsing GGUF headers and metadata, and the one-line errors for broken files.
@Suite struct GGUFReaderTests {
    let directory = try! Fixtures.temporaryDirectory("gguf-reader")

    func open(_ data: Data, name: String = "model.gguf") throws -> GGUFFile {
        try GGUFFile(path: try GGUFFixtures.write(data, in: directory, name: name))
    }

    /// Opening `data` fails with a message naming the file and containing `fragment`.
    func expectError(_ data: Data, containing fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try open(data, name: "broken.gguf")
            Issue.record("opened a broken file (expected an error containing '\(fragment)')", sourceLocation: sourceLocation)
        } catch {
            let message = String(describing: error)
            #expect(error is UnmaskError, sourceLocation: sourceLocation)
            #expect(message.hasPrefix("broken.gguf: "), "\(message)", sourceLocation: sourceLocation)
            #expect(message.contains(fragment), "\(message)", sourceLocation: sourceLocation)
        }
    }

    func fixtureData() throws -> Data { try Data(contentsOf: URL(fileURLWithPath: GGUFFixtures.path("quants.gguf"))) }

    /// A small valid file: a few metadata values and one F32 tensor.
    func simpleBuilder() -> GGUFBuilder {
        var b = GGUFBuilder()
        b.set("general.architecture", .string("test"))
        b.set("test.count", .uint32(7))
        b.addF32("w", shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        return b
    }

    // MARK: Valid files

    @Test func readsEveryMetadataValueType() throws {
        let file = try GGUFFile(path: GGUFFixtures.path("quants.gguf"))
        #expect(file.version == 3)
        #expect(file.alignment == 64)
        #expect(file.dataOffset % 64 == 0)
        let m = file.metadata
        #expect(m["general.architecture"] == .string("test"))
        #expect(m["general.alignment"] == .uint32(64))
        #expect(m["test.uint8"] == .uint8(200))
        #expect(m["test.int8"] == .int8(-100))
        #expect(m["test.uint16"] == .uint16(60000))
        #expect(m["test.int16"] == .int16(-30000))
        #expect(m["test.uint32"] == .uint32(4_000_000_000))
        #expect(m["test.int32"] == .int32(-2_000_000_000))
        #expect(m["test.uint64"] == .uint64(18_000_000_000_000_000_000))
        #expect(m["test.int64"] == .int64(-9_000_000_000_000_000_000))
        #expect(m["test.float32"] == .float32(0.1))
        #expect(m["test.float64"] == .float64(0.1))
        #expect(m["test.bool_true"] == .bool(true))
        #expect(m["test.bool_false"] == .bool(false))
        #expect(m["test.string"] == .string("héllo, wörld ✓"))
        #expect(m["test.empty_string"] == .string(""))
        #expect(m["test.array_uint16"] == .array(.uint16([1, 2, 65535])))
        #expect(m["test.array_int32"] == .array(.int32([-1, 0, 7])))
        #expect(m["test.array_float32"] == .array(.float32([0.5, -1.25])))
        #expect(m["test.array_bool"] == .array(.bool([true, false, true])))
        #expect(m["test.array_string"] == .array(.string(["a", "", "ünï"])))
        #expect(m["test.array_nested"] == .array(.array([.int32([1, 2]), .int32([3]), .int32([4, 5, 6])])))

        // Every key the script wrote is there, in file order after the writer's own.
        let written = try GGUFFixtures.json("quants.json")["metadata"] as! [String: Any]
        #expect(Set(written.keys).isSubset(of: Set(file.metadataKeys)))
        #expect(file.metadataKeys.count == m.count)
        #expect(Array(file.metadataKeys.prefix(2)) == ["general.architecture", "general.alignment"])
    }

    @Test func valueAccessors() throws {
        #expect(GGUFValue.uint8(200).int == 200 && GGUFValue.int64(-5).int == -5)
        #expect(GGUFValue.uint64(.max).int == nil)
        #expect(GGUFValue.float32(0.5).int == nil && GGUFValue.float32(0.5).double == 0.5)
        #expect(GGUFValue.uint32(3).double == 3 && GGUFValue.float64(0.1).float == Float(0.1))
        #expect(GGUFValue.string("x").string == "x" && GGUFValue.uint8(1).string == nil)
        #expect(GGUFValue.bool(true).bool == true && GGUFValue.uint8(1).bool == nil)
        let nested = GGUFValue.array(.array([.string(["a"]), .string([])]))
        #expect(nested.typeName == "array of array of string")
        #expect(nested.array?.count == 2 && nested.array?[0] == .array(.string(["a"])))
        #expect(nested.array?.arrays?[0].strings == ["a"])
        #expect(GGUFArray.uint64([1, .max]).ints == nil && GGUFArray.int16([-1, 2]).ints == [-1, 2])
        #expect(GGUFArray.float32([0.5]).doubles == [0.5] && GGUFArray.bool([true]).bools == [true])
        #expect(GGUFArray.uint8(Array(repeating: 1, count: 20)).description.hasSuffix("… (20 elements)]"))
        #expect(GGUFValue.string(String(repeating: "x", count: 1000)).description.count < 70)
    }

    @Test func readsTensorDirectory() throws {
        let file = try GGUFFile(path: GGUFFixtures.path("quants.gguf"))
        let expected = try GGUFFixtures.json("quants.json")["tensors"] as! [String: [String: Any]]
        #expect(Set(file.tensorNames) == Set(expected.keys))
        for info in file.tensors {
            let e = expected[info.name]!
            #expect(info.type.rawValue == UInt32(e["type"] as! Int), "\(info.name)")
            #expect(info.type.description == e["type_name"] as! String)
            #expect(info.dimensions == e["ne"] as! [Int], "\(info.name)")
            #expect(info.shape == Array((e["ne"] as! [Int]).reversed()))
            #expect(info.elementCount == e["elements"] as! Int)
            #expect(info.offset % 64 == 0)
            #expect(file.info(info.name) == TensorInfo(dtype: .f32, shape: info.shape, file: "quants.gguf"))
        }
        let q4k = try #require(file.tensor(named: "Q4_K"))
        #expect(q4k.rowLength == 512 && q4k.rowCount == 2 && q4k.byteCount == 4 * 144)
        #expect(file.tensor(named: "F32_3d")?.shape == [2, 3, 4])
        #expect(file.info("nope") == nil)
        #expect(throws: UnmaskError.missingTensor(file: "quants.gguf", name: "nope")) { try file.float32("nope") }
    }

    @Test func f32TensorsAreMappedNotCopied() throws {
        let file = try open(simpleBuilder().data())
        let tensor = try file.float32("w")
        #expect(tensor.shape == [2, 3] && tensor.values == [1, 2, 3, 4, 5, 6])
        let data = file.data(of: file.tensor(named: "w")!)
        #expect(UnsafeRawPointer(tensor.pointer) == data.baseAddress)
    }

    @Test func acceptsVersion2() throws {
        var b = simpleBuilder()
        b.version = 2
        let file = try open(b.data())
        #expect(file.version == 2 && file.metadata["test.count"] == .uint32(7))
        #expect(try file.float32("w").values == [1, 2, 3, 4, 5, 6])
    }

    @Test func acceptsNoTensorsAndEmptyTensors() throws {
        var b = GGUFBuilder()
        b.set("k", .string("v"))
        let empty = try open(b.data())
        #expect(empty.tensors.isEmpty && empty.metadata["k"] == .string("v"))
        b.addRaw("zero", dimensions: [32, 0], type: .q8_0, bytes: [])
        b.addF32("scalar", shape: [], values: [2.5])
        let file = try open(b.data())
        #expect(try file.float32("zero").shape == [0, 32])
        #expect(try file.float32("zero").count == 0)
        #expect(try file.float32("scalar").values == [2.5])
    }

    @Test func honoursCustomAlignment() throws {
        var b = simpleBuilder()
        b.alignment = 128
        b.set("general.alignment", .uint32(128))
        b.addF32("v", shape: [3], values: [7, 8, 9])
        let file = try open(b.data())
        #expect(file.alignment == 128 && file.dataOffset % 128 == 0 && file.tensor(named: "v")?.offset == 128)
        #expect(try file.float32("v").values == [7, 8, 9])
    }

    // MARK: Broken files

    @Test func rejectsBadMagicAndVersions() throws {
        expectError(Data(), containing: "the magic number")
        expectError(Data("GGML".utf8) + Data(count: 40), containing: "does not start with the magic bytes 'GGUF'")
        var b = simpleBuilder()
        b.version = 1
        expectError(b.data(), containing: "GGUF version 1 is not supported (only versions 2 and 3)")
        b.version = 4
        expectError(b.data(), containing: "unsupported GGUF version 4 (supported: 2, 3)")
        b.version = UInt32(3).byteSwapped
        expectError(b.data(), containing: "big-endian GGUF files are not supported")
    }

    @Test func rejectsTruncationAnywhere() throws {
        let data = try fixtureData()
        let file = try open(data)
        // Every cut inside the header fails cleanly; cuts in the data section name the tensor.
        for cut in stride(from: 0, to: data.count, by: 11) {
            do { _ = try open(data.prefix(cut), name: "cut.gguf") } catch {
                #expect(String(describing: error).hasPrefix("cut.gguf: not a valid GGUF file: "))
                continue
            }
            // Only a cut in the padding after the last tensor may still open.
            let last = file.tensors.map { file.dataOffset + $0.offset + $0.byteCount }.max()!
            #expect(cut >= last, "cut at \(cut) opened")
        }
        expectError(data.prefix(30), containing: "may be truncated")
        expectError(data.dropLast(64), containing: "run past the end of the data section")
    }

    @Test func rejectsHugeCountsAndLengths() throws {
        var data = simpleBuilder().data()
        // tensor count at 8, metadata count at 16, first key length at 24
        data.replaceSubrange(8..<16, with: withUnsafeBytes(of: UInt64(1 << 62).littleEndian, Array.init))
        expectError(data, containing: "the tensor count is 4611686018427387904, but the")
        data = simpleBuilder().data()
        data.replaceSubrange(16..<24, with: withUnsafeBytes(of: UInt64.max.littleEndian, Array.init))
        expectError(data, containing: "the metadata count is 18446744073709551615")
        data = simpleBuilder().data()
        data.replaceSubrange(24..<32, with: withUnsafeBytes(of: UInt64(1 << 40).littleEndian, Array.init))
        expectError(data, containing: "the key of metadata entry 0 has length 1099511627776, more than the")

        var b = GGUFBuilder()
        b.set("list", .array(.uint32([1, 2, 3])))
        data = b.data()
        // the element count follows magic 4, version 4, counts 16, key 8+4, type 4, element type 4
        let countOffset = 4 + 4 + 16 + 8 + 4 + 4 + 4
        data.replaceSubrange(countOffset..<countOffset + 8, with: withUnsafeBytes(of: UInt64(1 << 61).littleEndian, Array.init))
        expectError(data, containing: "the element count of metadata 'list' is 2305843009213693952, but the")
    }

    @Test func rejectsBadValues() throws {
        var b = GGUFBuilder()
        b.set("flag", .bool(true))
        var data = b.data()
        data[4 + 4 + 16 + 8 + 4 + 4] = 2  // after the counts, the key "flag" and the type
        expectError(data, containing: "metadata 'flag' is a bool stored as 2")

        b = GGUFBuilder()
        b.set("x", .uint8(1))
        data = b.data()
        data.replaceSubrange(4 + 4 + 16 + 8 + 1..<4 + 4 + 16 + 8 + 1 + 4, with: [99, 0, 0, 0])
        expectError(data, containing: "metadata 'x' has unknown value type 99")

        b = GGUFBuilder()
        b.metadata = [("k", .uint8(1)), ("k", .uint8(2))]
        expectError(b.data(), containing: "metadata key 'k' appears twice")

        var deep = GGUFArray.uint8([1])
        for _ in 0..<9 { deep = .array([deep]) }
        b = GGUFBuilder()
        b.set("deep", .array(deep))
        expectError(b.data(), containing: "metadata 'deep' nests arrays deeper than 8 levels")

        b = GGUFBuilder()
        b.set("general.alignment", .uint32(48))
        expectError(b.data(), containing: "'general.alignment' must be a uint32 power of two, got uint32 48")
        b.set("general.alignment", .uint64(32))
        expectError(b.data(), containing: "'general.alignment' must be a uint32 power of two, got uint64 32")
    }

    @Test func rejectsBadTensorEntries() throws {
        var b = simpleBuilder()
        b.addF32("w", shape: [1], values: [0])
        expectError(b.data(), containing: "tensor 'w' appears twice")

        b = GGUFBuilder()
        b.addRaw("q", dimensions: [48, 2], type: .q8_0, bytes: [UInt8](repeating: 0, count: 102))
        expectError(b.data(), containing: "tensor 'q' of type Q8_0: first dimension 48 is not a multiple of the block size 32")

        b = GGUFBuilder()
        b.addRaw("t", dimensions: [1, 1, 1, 1, 1], type: .f32, bytes: [0, 0, 0, 0])
        expectError(b.data(), containing: "tensor 't' has 5 dimensions (at most 4)")

        b = GGUFBuilder()
        b.addRaw("odd", dimensions: [4], type: .f32, bytes: [UInt8](repeating: 0, count: 16))
        var data = b.data()
        // the type follows magic, version, counts, name (8 + 3), dimension count, one dimension
        let typeOffset = 4 + 4 + 16 + 8 + 3 + 4 + 8
        data.replaceSubrange(typeOffset..<typeOffset + 4, with: [200, 0, 0, 0])
        expectError(data, containing: "tensor 'odd' has unknown ggml type 200")

        data = b.data()
        data.replaceSubrange(typeOffset + 4..<typeOffset + 12, with: withUnsafeBytes(of: UInt64(8).littleEndian, Array.init))
        expectError(data, containing: "tensor 'odd': data offset 8 is not a multiple of the alignment 32")
        data.replaceSubrange(typeOffset + 4..<typeOffset + 12, with: withUnsafeBytes(of: UInt64.max.littleEndian, Array.init))
        expectError(data, containing: "tensor 'odd': data offset 18446744073709551615 is past the end of the file")
        data.replaceSubrange(typeOffset + 4..<typeOffset + 12, with: withUnsafeBytes(of: UInt64(1 << 62).littleEndian, Array.init))
        expectError(data, containing: "tensor 'odd': 16 bytes of data at offset 4611686018427387904 run past the end of the data section")

        b = GGUFBuilder()
        b.addRaw("huge", dimensions: [1 << 40, 1 << 40], type: .f32, bytes: [])
        expectError(b.data(), containing: "tensor 'huge': dimensions [1099511627776, 1099511627776] hold too many elements")

        b = GGUFBuilder()
        b.addF32("a", shape: [16], values: Array(repeating: 1, count: 16))
        b.addF32("b", shape: [16], values: Array(repeating: 2, count: 16))
        data = b.data()
        // point b's offset (the last 8 bytes before the padding) at a's data + 32
        let bOffset = 4 + 4 + 16 + (8 + 1 + 4 + 8 + 4 + 8) + (8 + 1 + 4 + 8 + 4)
        data.replaceSubrange(bOffset..<bOffset + 8, with: withUnsafeBytes(of: UInt64(32).littleEndian, Array.init))
        expectError(data, containing: "the data of tensors 'a' and 'b' overlap")
    }

    @Test func unsupportedTypesOpenButDoNotDequantize() throws {
        var b = GGUFBuilder()
        b.addRaw("blk.0.attn_q.weight", dimensions: [256, 1], type: .iq2_XXS, bytes: [UInt8](repeating: 0, count: 66))
        let file = try open(b.data())
        #expect(file.tensor(named: "blk.0.attn_q.weight")?.type == .iq2_XXS)
        #expect {
            _ = try file.float32("blk.0.attn_q.weight")
        } throws: { error in
            let message = String(describing: error)
            return message.hasPrefix("model.gguf: tensor 'blk.0.attn_q.weight' has ggml type IQ2_XXS, which Unmask cannot dequantize (supported: F32, F16, Q4_0")
        }
    }

    @Test func repairsInvalidUTF8() throws {
        var b = GGUFBuilder()
        b.set("s", .string("ab"))
        var data = b.data()
        data[4 + 4 + 16 + 8 + 1 + 4 + 8 + 1] = 0xFF  // the "b" of the value
        #expect(try open(data).metadata["s"] == .string("a\u{FFFD}"))
    }
}
