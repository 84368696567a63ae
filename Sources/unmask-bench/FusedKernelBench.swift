import Foundation
import Unmask
import UnmaskCKernels
import UnmaskKernels

/// `unmask-bench --fused-kernel yes [--kernel-rows 1536] [--kernel-columns 512]
/// [--kernel-input-rows 1,8]`: the fused stored-precision kernels alone, one thread, every variant
/// this CPU has, for each type at each count of input rows. A matrix small enough to stay in cache (1536 × 512 Q4_1 is 0.5 MB; F16 1.5 MB),
/// so the figure is the kernel's arithmetic, not memory bandwidth. Weights are random bytes with
/// scales of trained weights' size: the AVX2 kernels read each block's float16 scale from a
/// table, whose lookups a scale drawn from the whole float16 range would scatter over 256 KB.
enum FusedKernelBench {
    static let types: [GGMLType] = [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q5_K, .q6_K, .f16, .bf16]

    static func rows(arguments: Arguments) -> [(String, String)] {
        let rows = arguments.int("--kernel-rows", 1536), columns = arguments.int("--kernel-columns", 512)
        var generator = SplitMix64(seed: 3)
        var out: [(String, String)] = [("fused kernel matrix", "\(rows) × \(columns), one thread, best of 5 trials of ≥ 20 ms")]
        let inputRows = (arguments.string("--kernel-input-rows") ?? "1,8").split(separator: ",").compactMap { Int($0) }.filter { $0 > 0 }
        let most = inputRows.max() ?? 1
        let x = (0..<(most * columns)).map { _ in Float(generator.unit()) - 0.5 }
        var result = [Float](repeating: 0, count: most * rows)
        for type in types where columns % type.blockSize == 0 {
            let rowBytes = columns / type.blockSize * type.bytesPerBlock
            // Random bytes, but F16 and BF16 values and block scales finite and normal: subnormals
            // cost some CPUs extra cycles that trained weights would not.
            var weights = (0..<(rows * rowBytes)).map { i in
                let byte = UInt8(truncatingIfNeeded: generator.next())
                guard type == .f16 || type == .bf16, i % 2 == 1 else { return byte }
                return (byte & 0x80) | (type == .f16 ? 0x20 | (byte & 0x0F) : 0x3C | (byte & 0x01))
            }
            for block in 0..<(rows * rowBytes / type.bytesPerBlock) {
                for offset in type.halfScaleOffsets {
                    let scale = Float16(Float(generator.unit()) * 0.1 - 0.05).bitPattern
                    weights[block * type.bytesPerBlock + offset] = UInt8(scale & 0xFF)
                    weights[block * type.bytesPerBlock + offset + 1] = UInt8(scale >> 8)
                }
            }
            var cells: [String] = []
            for level in 0...Int(unmask_best_kernel_level()) {
                unmask_set_kernel_level(Int32(level))
                defer { unmask_set_kernel_level(-1) }
                let rates = inputRows.map { m in
                    var best = Double.infinity
                    weights.withUnsafeBytes { w in
                        // Each trial runs products for at least 20 ms (the plain C loops take far longer
                        // per product than the vector kernels).
                        for _ in 0..<5 {
                            let start = DispatchTime.now().uptimeNanoseconds
                            var products = 0, elapsed: UInt64 = 0
                            while elapsed < 20_000_000 {
                                unmask_quantized_matmul(type.rawValue, w.baseAddress, Int64(rowBytes), nil, 0, Int64(rows), Int64(columns),
                                                        x, Int64(m), &result, Int64(rows), 0)
                                products += 1
                                elapsed = DispatchTime.now().uptimeNanoseconds - start
                            }
                            best = min(best, Double(elapsed) / 1e9 / Double(products))
                        }
                    }
                    return Double(rows * columns * m) / best / 1e9
                }
                let figures = rates.map { String(format: "%.1f", $0) }.joined(separator: " / ")
                cells.append("\(String(cString: unmask_kernel_name(Int32(level)))) \(figures)")
            }
            let counts = inputRows.map(String.init).joined(separator: " / ")
            out.append(("\(type) GMAC/s at \(counts) rows", cells.joined(separator: "; ")))
        }
        return out
    }
}
