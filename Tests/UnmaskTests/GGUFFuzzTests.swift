import Foundation
import Testing
@testable import Unmask
import UnmaskTestSupport

/// Seeded random mutations of valid GGUF files (byte flips, truncations, huge values spliced
/// into length and count fields, inserted and deleted bytes): the reader must open each input or
/// throw an `UnmaskError` naming the file, never crash or allocate without bound.
///
/// Each input is written to a fixed path in the temporary folder before it is opened, so if a
/// run ever crashes, that file is the input that did it: copy it to
/// `Tests/Fixtures/gguf/regressions/` (any name ending in `.gguf`), where
/// `regressionInputsNeverCrash` replays it forever after. `UNMASK_GGUF_FUZZ_ITERATIONS=N` runs N
/// inputs per test (with `UNMASK_GGUF_FUZZ_SEED` for another sequence) for a longer campaign.
@Suite struct GGUFFuzzTests {
    static let environment = ProcessInfo.processInfo.environment
    static func iterations(_ standard: Int) -> Int { environment["UNMASK_GGUF_FUZZ_ITERATIONS"].flatMap(Int.init) ?? standard }
    static let seedOffset = environment["UNMASK_GGUF_FUZZ_SEED"].flatMap(UInt64.init) ?? 0

    struct Outcome {
        var opened = 0
        var rejected = 0
        var messages: [String: Int] = [:]
    }

    /// Where the input being tried lives (kept after a crash).
    static func inputPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("unmask-gguf-fuzz-\(name).gguf").path
    }

    /// The offset of the data section: mutations mostly hit the header before it.
    static func headerSize(_ data: Data) -> Int {
        let path = try! Fixtures.temporaryDirectory("gguf-fuzz-probe").appendingPathComponent("probe.gguf").path
        try! data.write(to: URL(fileURLWithPath: path))
        return try! GGUFFile(path: path).dataOffset
    }

    static func mutate(_ input: Data, header: Int, using rng: inout SeededRandom) -> Data {
        var data = input
        func position() -> Int {
            guard !data.isEmpty else { return 0 }
            let limit = Double.random(in: 0..<1, using: &rng) < 0.85 ? min(header, data.count) : data.count
            return Int.random(in: 0..<max(1, limit), using: &rng)
        }
        func splice(_ bytes: [UInt8]) {
            guard data.count >= bytes.count else { return }
            let at = min(position(), data.count - bytes.count)
            data.replaceSubrange(at..<at + bytes.count, with: bytes)
        }
        let hugeValues: [UInt64] = [.max, 1 << 63, 1 << 62, 1 << 40, 1 << 32, UInt64(UInt32.max), UInt64(Int64.max),
                                    UInt64(input.count), UInt64(input.count + 1), UInt64(input.count - 8), 0, 1, 255]
        let smallValues: [UInt32] = [.max, 0x8000_0000, 0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 30, 31, 40, 64, 256]
        for _ in 0..<Int.random(in: 1...3, using: &rng) {
            switch Int.random(in: 0..<7, using: &rng) {
            case 0:  // flip bits
                for _ in 0..<Int.random(in: 1...4, using: &rng) where !data.isEmpty {
                    data[position()] ^= UInt8.random(in: 1...255, using: &rng)
                }
            case 1:  // truncate
                data = data.prefix(position())
            case 2:  // a huge or boundary 64-bit value, as a count, length, dimension or offset
                let value = Bool.random(using: &rng) ? hugeValues.randomElement(using: &rng)! : UInt64.random(in: 0...UInt64.max, using: &rng)
                splice(withUnsafeBytes(of: value.littleEndian, Array.init))
            case 3:  // a 32-bit value: type tags, dimension counts, version
                splice(withUnsafeBytes(of: smallValues.randomElement(using: &rng)!.littleEndian, Array.init))
            case 4:  // insert bytes
                let at = position()
                data.insert(contentsOf: (0..<Int.random(in: 1...16, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }, at: at)
            case 5:  // delete bytes
                let at = position()
                data.removeSubrange(at..<min(data.count, at + Int.random(in: 1...16, using: &rng)))
            default:  // duplicate a chunk of the header over another place
                let from = position(), length = Int.random(in: 1...24, using: &rng)
                let chunk = Array(data[from..<min(data.count, from + length)])
                splice(chunk)
            }
        }
        return data
    }

    /// Opens `data` (and, when it opens, reads everything) through `body`.
    static func run(_ data: Data, path: String, outcome: inout Outcome, _ body: (String) throws -> Void) {
        try! data.write(to: URL(fileURLWithPath: path))
        do {
            try body(path)
            outcome.opened += 1
        } catch let error as UnmaskError {
            outcome.rejected += 1
            let message = error.description
            let name = (path as NSString).lastPathComponent
            #expect(message.hasPrefix(name + ": "), "\(message)")
            #expect(message.count < 600, "overlong message: \(message.prefix(200))…")
            // Group by the message's shape (digits and names vary).
            let shape = String(message.dropFirst(name.count + 2).prefix(40))
            outcome.messages[shape, default: 0] += 1
        } catch {
            Issue.record("not an UnmaskError: \(error)")
        }
    }

    /// Everything a caller might do with a raw GGUF file.
    static func readFile(_ path: String) throws {
        let file = try GGUFFile(path: path)
        for key in file.metadataKeys { _ = file.metadata[key]!.description }
        for info in file.tensors {
            if info.type.isDequantizable {
                let tensor = try file.float32(info.name)
                precondition(tensor.count == info.elementCount)
            } else {
                _ = try? file.float32(info.name)
            }
        }
        _ = try? GGUFCheckpoint.decoderConfig(from: file)
    }

    /// Everything the encoder does with a GGUF model before running it.
    static func readModel(_ path: String) throws {
        let checkpoint = try GGUFCheckpoint(path: path)
        let model = try checkpoint.loadModel()
        precondition(model.weights.layers.count == checkpoint.config.layerCount)
    }

    @Test func mutatedQuantsFileNeverCrashes() throws {
        let original = try Data(contentsOf: URL(fileURLWithPath: GGUFFixtures.path("quants.gguf")))
        let header = Self.headerSize(original)
        var rng = SeededRandom(seed: 0x6775_6666 &+ Self.seedOffset)
        var outcome = Outcome()
        let path = Self.inputPath("quants")
        let count = Self.iterations(3000)
        for _ in 0..<count {
            Self.run(Self.mutate(original, header: header, using: &rng), path: path, outcome: &outcome, Self.readFile)
        }
        try? FileManager.default.removeItem(atPath: path)
        #expect(outcome.opened > count / 30 && outcome.rejected > count / 3, "\(outcome.opened) opened, \(outcome.rejected) rejected")
        print("GGUF fuzz (quants.gguf, \(count) inputs): \(outcome.opened) opened, \(outcome.rejected) rejected; errors: \(outcome.messages.sorted { $0.value > $1.value }.prefix(12).map { "\($0.value)× \($0.key)…" })")
    }

    @Test func mutatedModelNeverCrashes() throws {
        let original = GGUFBuilder.tinyLlama(seed: 3).data()
        try Self.readModel(try GGUFFixtures.write(original, in: try Fixtures.temporaryDirectory("gguf-fuzz"), name: "tiny.gguf"))
        let header = Self.headerSize(original)
        var rng = SeededRandom(seed: 0x6c6c_616d_61 &+ Self.seedOffset)
        var outcome = Outcome()
        let path = Self.inputPath("model")
        let count = Self.iterations(2000)
        for _ in 0..<count {
            Self.run(Self.mutate(original, header: header, using: &rng), path: path, outcome: &outcome, Self.readModel)
        }
        try? FileManager.default.removeItem(atPath: path)
        #expect(outcome.opened > count / 70 && outcome.rejected > count / 4, "\(outcome.opened) opened, \(outcome.rejected) rejected")
        print("GGUF fuzz (tiny llama model, \(count) inputs): \(outcome.opened) loaded, \(outcome.rejected) rejected; errors: \(outcome.messages.sorted { $0.value > $1.value }.prefix(12).map { "\($0.value)× \($0.key)…" })")
    }

    /// The hostile seeds `make_gguf_fixtures.py` writes, and the error each must get.
    static let seeds = [
        "deep_nesting.gguf": "metadata 'deep' nests arrays deeper than 8 levels",
        "huge_tensor_count.gguf": "the tensor count is 9223372036854775808, but the 72 bytes left",
        "huge_kv_count.gguf": "the metadata count is 18446744073709551615",
        "huge_key_length.gguf": "the key of metadata entry 0 has length 18446744073709551615, more than the 19 bytes left",
        "huge_array_count.gguf": "the element count of metadata 'a' is 4611686018427387904",
        "huge_string_array.gguf": "the element count of metadata 'a' is 1099511627776",
        "dims_overflow.gguf": "tensor 't': dimensions [1099511627776, 1099511627776] hold too many elements",
        "dims_negative.gguf": "tensor 't': dimension 0 is 18446744073709551615, too large",
        "offset_overflow.gguf": "tensor 't': data offset 18446744073709551584 is past the end of the file",
        "too_many_dims.gguf": "tensor 't' has 100 dimensions (at most 4)",
        "zero_alignment.gguf": "'general.alignment' must be a uint32 power of two, got uint32 0",
        "unknown_type.gguf": "tensor 't' has unknown ggml type 4294967295",
        "version_1.gguf": "GGUF version 1 is not supported",
    ]

    @Test func regressionInputsNeverCrash() throws {
        let folder = GGUFFixtures.path("regressions")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".gguf") }.sorted()
        #expect(Set(Self.seeds.keys).isSubset(of: Set(names)))
        let scratch = try Fixtures.temporaryDirectory("gguf-regression")
        var outcome = Outcome()
        for name in names {
            let data = try Data(contentsOf: URL(fileURLWithPath: folder).appendingPathComponent(name))
            let path = scratch.appendingPathComponent(name).path
            Self.run(data, path: path, outcome: &outcome, Self.readFile)
            Self.run(data, path: path, outcome: &outcome) { _ = try GGUFCheckpoint(path: $0).loadModel() }
            if let fragment = Self.seeds[name] {
                #expect {
                    _ = try GGUFFile(path: path)
                } throws: { error in
                    String(describing: error).hasPrefix("\(name): not a valid GGUF file: \(fragment)")
                }
            }
        }
        #expect(outcome.opened + outcome.rejected == 2 * names.count)
    }
}
