import Foundation
import Testing
@testable import Unmask
import UnmaskCKernels
import UnmaskTestSupport

/// Dequantization against `gguf.quants.dequantize` (the `gguf` Python package's reference).
@Suite struct GGUFDequantizeTests {
    static let tensorNames = ["F32", "F32_3d", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1",
                              "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]

    @Test(arguments: tensorNames)
    func matchesReference(name: String) throws {
        let file = try GGUFFile(path: GGUFFixtures.path("quants.gguf"))
        let info = try #require(file.tensor(named: name))
        let expected = try GGUFFixtures.floats("quants.\(name).f32")
        let tensor = try file.float32(name)
        #expect(tensor.shape == info.shape)
        #expect(tensor.count == expected.count)
        let got = tensor.values
        // Same operations in the same order as the reference: bit-identical (inf and -0 included).
        let mismatches = zip(got, expected).enumerated().filter { $0.element.0.bitPattern != $0.element.1.bitPattern }
        #expect(mismatches.isEmpty, "\(name): \(mismatches.count) values differ, first \(mismatches.prefix(3).map { "#\($0.offset): \($0.element.0) vs \($0.element.1)" })")
        // And never off by more than 1e-6 relative, in case a platform fuses a multiply-add.
        for (g, e) in zip(got, expected) where e.isFinite {
            #expect(abs(g - e) <= 1e-6 * max(abs(e), 1e-30), "\(name): \(g) vs \(e)")
        }
    }

    @Test func referenceCoversEveryDequantizableType() throws {
        let file = try GGUFFile(path: GGUFFixtures.path("quants.gguf"))
        let covered = Set(file.tensors.map(\.type))
        // F64 is dequantized too but `gguf` has no reference for it; checked below.
        #expect(covered == Set(GGMLType.dequantizable).subtracting([.f64]))
    }

    @Test func blockTableMatchesTheGGUFPackage() throws {
        let sizes = try GGUFFixtures.json("quants.json")["ggml_quant_sizes"] as! [String: [Int]]
        for type in GGMLType.allCases {
            let entry = try #require(sizes[type.description], "\(type) missing from gguf's table")
            #expect(entry == [type.blockSize, type.bytesPerBlock, Int(type.rawValue)], "\(type)")
        }
    }

    @Test func f64() throws {
        var b = GGUFBuilder()
        let values: [Double] = [1.5, -2e-3, 1e300, 0]
        b.addRaw("d", dimensions: [4], type: .f64, bytes: values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) })
        let path = try GGUFFixtures.write(b.data(), in: try Fixtures.temporaryDirectory("gguf-f64"))
        #expect(try GGUFFile(path: path).float32("d").values == values.map(Float.init))
    }

    /// The SIMD block conversion (the panels') gives the plain loops' bits, random bytes as
    /// scales included (subnormal, negative, infinite and NaN float16 scales among them).
    @Test(arguments: [GGMLType.f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q5_K, .q6_K])
    func simdBlocksMatchThePlainLoops(type: GGMLType) {
        var rng = SeededRandom(seed: 40 + UInt64(type.rawValue))
        let blocks = type.blockSize == 1 ? 1003 : 1000  // one-value blocks: a tail past the vectors too
        let bytes = (0..<blocks * type.bytesPerBlock).map { _ in UInt8.random(in: 0...255, using: &rng) }
        var plain = [Float](repeating: 0, count: blocks * type.blockSize)
        bytes.withUnsafeBytes { GGMLDequantize.reference($0.baseAddress!, type: type, count: blocks, into: &plain) }
        for level in Int32(UNMASK_KERNEL_AVX2)...unmask_best_kernel_level() {
            var simd = [Float](repeating: -1, count: blocks * type.blockSize)
            let ran = withKernelLevel(level) {
                bytes.withUnsafeBytes { unmask_dequantize_blocks(type.rawValue, $0.baseAddress!, Int64(blocks), &simd) }
            }
            #expect(ran == 1)
            let differ = zip(simd, plain).filter { $0.bitPattern != $1.bitPattern && !($0.isNaN && $1.isNaN) }
            #expect(differ.isEmpty, "\(type) at kernel level \(level): \(differ.count) values differ, first \(differ.prefix(3))")
        }
        // Without SIMD the caller converts.
        var untouched = [Float](repeating: 7, count: type.blockSize)
        let ran = withKernelLevel(Int32(UNMASK_KERNEL_REFERENCE)) {
            bytes.withUnsafeBytes { unmask_dequantize_blocks(type.rawValue, $0.baseAddress!, 1, &untouched) }
        }
        #expect(ran == 0)
        #expect(untouched == [Float](repeating: 7, count: type.blockSize))
    }

    /// The parallel split (by blocks, or by rows with a row order) gives what one thread does.
    @Test(arguments: [GGMLType.q4_K, .q6_K, .q8_0, .q5_1, .f16])
    func parallelSplitMatchesSerial(type: GGMLType) throws {
        var rng = SeededRandom(seed: UInt64(type.rawValue))
        let rowLength = 2 * max(256, type.blockSize), rows = 301
        let blocks = rows * rowLength / type.blockSize
        var bytes = (0..<blocks * type.bytesPerBlock).map { _ in UInt8.random(in: 0...255, using: &rng) }
        // finite float16 scales where the layout has them, so NaNs do not hide differences
        for b in 0..<blocks {
            for o in type.halfScaleOffsets {
                let bits = Float16(Float.random(in: -1...1, using: &rng)).bitPattern
                bytes[b * type.bytesPerBlock + o] = UInt8(bits & 0xFF)
                bytes[b * type.bytesPerBlock + o + 1] = UInt8(bits >> 8)
            }
        }
        if type == .f16 { for i in stride(from: 1, to: bytes.count, by: 2) { bytes[i] &= 0x7B } }  // no inf/NaN
        let count = rows * rowLength
        var serial = [Float](repeating: 0, count: count)
        var split = [Float](repeating: 0, count: count)
        var reordered = [Float](repeating: 0, count: count)
        let order = (0..<rows).map { (($0 * 7) + 3) % rows }
        let part = 140..<301
        var partial = [Float](repeating: 0, count: part.count * rowLength), partialReordered = partial
        bytes.withUnsafeBytes { raw in
            GGMLDequantize.blocks(raw.baseAddress!, type: type, count: blocks, into: &serial)
            GGMLDequantize.rows(raw.baseAddress!, type: type, rowLength: rowLength, rowCount: rows, into: &split)
            GGMLDequantize.rows(raw.baseAddress!, type: type, rowLength: rowLength, rowCount: rows, into: &reordered, rowOrder: order)
            GGMLDequantize.rows(raw.baseAddress!, type: type, rowLength: rowLength, rowCount: rows, into: &partial, range: part)
            GGMLDequantize.rows(raw.baseAddress!, type: type, rowLength: rowLength, rowCount: rows, into: &partialReordered, rowOrder: order, range: part)
        }
        #expect(serial.map(\.bitPattern) == split.map(\.bitPattern))
        // A range of rows is that slice of the whole, in either order.
        let slice = (part.lowerBound * rowLength)..<(part.upperBound * rowLength)
        #expect(partial.map(\.bitPattern) == serial[slice].map(\.bitPattern))
        #expect(partialReordered.map(\.bitPattern) == reordered[slice].map(\.bitPattern))
        for r in [0, 1, 150, 300] {
            let stored = order[r]
            #expect(Array(reordered[r * rowLength..<(r + 1) * rowLength]).map(\.bitPattern)
                    == Array(serial[stored * rowLength..<(stored + 1) * rowLength]).map(\.bitPattern))
        }
    }
}
