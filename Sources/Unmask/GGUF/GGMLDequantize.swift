import UnmaskCKernels
import UnmaskKernels

/// Float32 from ggml's storage types. Each block type is decoded exactly as ggml lays it out
/// (`ggml-common.h`), with the arithmetic in the same order as the reference dequantizers, so
/// results match them bit for bit: a scale times a quant, then the minimum added or subtracted,
/// never fused.
public enum GGMLDequantize {
    /// Dequantizes rows `range` (default: all) of a matrix of `rowCount` rows of `rowLength`
    /// elements stored contiguously at `source` into `out` (row-major, `range.count * rowLength`
    /// floats). With `rowOrder`, logical row `r` is stored row `rowOrder[r]`; each entry must be
    /// in `0..<rowCount`. Work is split across cores. `type` must be dequantizable and `rowLength`
    /// a multiple of its block size; `source` must hold `rowCount * rowLength / blockSize *
    /// bytesPerBlock` bytes.
    public static func rows(
        _ source: UnsafeRawPointer, type: GGMLType, rowLength: Int, rowCount: Int,
        into out: UnsafeMutablePointer<Float>, rowOrder: [Int]? = nil, range: Range<Int>? = nil
    ) {
        let range = range ?? 0..<rowCount
        precondition(type.isDequantizable && rowLength % type.blockSize == 0, "cannot dequantize \(type) rows of \(rowLength)")
        precondition(rowOrder.map { $0.count == rowCount } ?? true)
        precondition(range.lowerBound >= 0 && range.upperBound <= rowCount)
        let blocksPerRow = rowLength / type.blockSize
        let rowBytes = blocksPerRow * type.bytesPerBlock
        // About 64 K elements per worker at least: below that a thread hop costs more than the work.
        let grain = 1 << 16
        if let rowOrder {
            rowOrder.withUnsafeBufferPointer { order in
                Parallel.chunks(range.count, minimumPerChunk: max(1, grain / max(1, rowLength))) { _, chunk in
                    for i in chunk {
                        blocks(source + order[range.lowerBound + i] * rowBytes, type: type, count: blocksPerRow, into: out + i * rowLength)
                    }
                }
            }
        } else {
            // Rows are contiguous on both sides: split the rows' blocks, so even a single long
            // row uses every core.
            let first = source + range.lowerBound * rowBytes
            Parallel.chunks(blocksPerRow * range.count, minimumPerChunk: max(1, grain / type.blockSize)) { _, chunk in
                blocks(first + chunk.lowerBound * type.bytesPerBlock, type: type, count: chunk.count,
                       into: out + chunk.lowerBound * type.blockSize)
            }
        }
    }

    /// Dequantizes `count` consecutive blocks on the calling thread: the types with fused kernels
    /// (Q4_0 … Q8_0, Q4_K, Q5_K, Q6_K) by SIMD where the CPU has it (`unmask_dequantize_blocks`,
    /// the same bits), the rest, and those elsewhere, by the plain loops below.
    public static func blocks(_ source: UnsafeRawPointer, type: GGMLType, count: Int, into out: UnsafeMutablePointer<Float>) {
        if unmask_dequantize_blocks(type.rawValue, source, Int64(count), out) != 0 { return }
        reference(source, type: type, count: count, into: out)
    }

    /// `blocks` in plain Swift, the SIMD kernels' reference.
    static func reference(_ source: UnsafeRawPointer, type: GGMLType, count: Int, into out: UnsafeMutablePointer<Float>) {
        let p = source.assumingMemoryBound(to: UInt8.self)
        switch type {
        case .f32: f32(p, count, out)
        case .f16: f16(p, count, out)
        case .bf16: bf16(p, count, out)
        case .f64: f64(p, count, out)
        case .q4_0: q4_0(p, count, out)
        case .q4_1: q4_1(p, count, out)
        case .q5_0: q5_0(p, count, out)
        case .q5_1: q5_1(p, count, out)
        case .q8_0: q8_0(p, count, out)
        case .q2_K: q2_K(p, count, out)
        case .q3_K: q3_K(p, count, out)
        case .q4_K: q4_K(p, count, out)
        case .q5_K: q5_K(p, count, out)
        case .q6_K: q6_K(p, count, out)
        default: preconditionFailure("cannot dequantize \(type)")
        }
    }

    // MARK: Scalars

    /// Every float16 bit pattern widened to float32 (256 KB, built on first use): one load per
    /// value instead of a software conversion on CPUs without F16C.
    nonisolated(unsafe) private static let halfTable: UnsafeMutablePointer<Float> = {
        let table = UnsafeMutablePointer<Float>.allocate(capacity: 1 << 16)
        for bits in 0..<(1 << 16) { table[bits] = Float(Float16(bitPattern: UInt16(bits))) }
        return table
    }()

    @inline(__always) static func half(_ p: UnsafePointer<UInt8>, _ offset: Int) -> Float {
        halfTable[Int(p[offset]) | Int(p[offset + 1]) << 8]
    }

    @inline(__always) private static func u32(_ p: UnsafePointer<UInt8>, _ offset: Int) -> UInt32 {
        UInt32(littleEndian: UnsafeRawPointer(p + offset).loadUnaligned(as: UInt32.self))
    }

    // MARK: Plain types

    private static func f32(_ p: UnsafePointer<UInt8>, _ count: Int, _ out: UnsafeMutablePointer<Float>) {
        for i in 0..<count { out[i] = Float(bitPattern: u32(p, 4 * i)) }
    }

    private static func f16(_ p: UnsafePointer<UInt8>, _ count: Int, _ out: UnsafeMutablePointer<Float>) {
        for i in 0..<count { out[i] = half(p, 2 * i) }
    }

    private static func bf16(_ p: UnsafePointer<UInt8>, _ count: Int, _ out: UnsafeMutablePointer<Float>) {
        for i in 0..<count { out[i] = Float(bitPattern: UInt32(p[2 * i]) << 16 | UInt32(p[2 * i + 1]) << 24) }
    }

    private static func f64(_ p: UnsafePointer<UInt8>, _ count: Int, _ out: UnsafeMutablePointer<Float>) {
        for i in 0..<count {
            out[i] = Float(Double(bitPattern: UInt64(littleEndian: UnsafeRawPointer(p + 8 * i).loadUnaligned(as: UInt64.self))))
        }
    }

    // MARK: Legacy quants: 32 values per block, one float16 scale (and minimum)

    /// `d` (f16), then 16 bytes: value j is the low nibble of byte j, value j + 16 its high
    /// nibble, both offset by -8.
    private static func q4_0(_ p: UnsafePointer<UInt8>, _ count: Int, _ out: UnsafeMutablePointer<Float>) {
        for b in 0..<count {
            let block = p + b * 18, y = out + b * 32
            let d = half(block, 0)
            let qs = block + 2
            for j in 0..<16 {
                y[j] = d * Float(Int32(qs[j] & 0x0F) - 8)
                y[j + 16] = d * Float(Int32(qs[j] >> 4) - 8)
            }
        }
    }

    /// `d`, `m` (f16), then nibbles as in Q4_0, unsigned: `d * q + m`.
    private static func q4_1(_ p: UnsafePointer<UInt8>, _ count: Int, _ out: UnsafeMutablePointer<Float>) {
        for b in 0..<count {
            let block = p + b * 20, y = out + b * 32
            let d = half(block, 0), m = half(block, 2)
            let qs = block + 4
            for j in 0..<16 {
                y[j] = d * Float(qs[j] & 0x0F) + m
                y[j + 16] = d * Float(qs[j] >> 4) + m
            }
        }
    }

    /// `d` (f16), `qh` (32 fifth bits, bit j for value j), nibbles as in Q4_0; offset -16.
    private static func q5_0(_ p: UnsafePointer<UInt8>, _ count: Int, _ out: UnsafeMutablePointer<Float>) {
        for b in 0..<count {
            let block = p + b * 22, y = out + b * 32
            let d = half(block, 0)
            let qh = u32(block, 2)
            let qs = block + 6
            for j in 0..<16 {
                let low = UInt32(qs[j] & 0x0F) | (qh >> UInt32(j) & 1) << 4
                let high = UInt32(qs[j] >> 4) | (qh >> UInt32(j + 16) & 1) << 4
                y[j] = d * Float(Int32(low) - 16)
                y[j + 16] = d * Float(Int32(high) - 16)
            }
        }
    }

    /// `d`, `m` (f16), `qh`, nibbles: `d * q + m` with 5-bit unsigned q.
    private static func q5_1(_ p: UnsafePointer<UInt8>, _ count: Int, _ out: UnsafeMutablePointer<Float>) {
        for b in 0..<count {
            let block = p + b * 24, y = out + b * 32
            let d = half(block, 0), m = half(block, 2)
            let qh = u32(block, 4)
            let qs = block + 8
            for j in 0..<16 {
                let low = UInt32(qs[j] & 0x0F) | (qh >> UInt32(j) & 1) << 4
                let high = UInt32(qs[j] >> 4) | (qh >> UInt32(j + 16) & 1) << 4
                y[j] = d * Float(low) + m
                y[j + 16] = d * Float(high) + m
            }
        }
    }

    /// `d` (f16), then 32 signed bytes.
    private static func q8_0(_ p: UnsafePointer<UInt8>, _ count: Int, _ out: UnsafeMutablePointer<Float>) {
        for b in 0..<count {
            let block = p + b * 34, y = out + b * 32
            let d = half(block, 0)
            let qs = block + 2
            for j in 0..<32 { y[j] = d * Float(Int8(bitPattern: qs[j])) }
        }
    }

    // MARK: K-quants: 256 values per block in sub-blocks with their own scales

    /// 16 scale bytes (low nibble scale, high nibble minimum, one per 16 values), 64 bytes of
    /// 2-bit quants, `d`, `dmin` (f16). Values 128h + 32j + l take bits 2j of byte 32h + l.
    private static func q2_K(_ p: UnsafePointer<UInt8>, _ count: Int, _ out: UnsafeMutablePointer<Float>) {
        for b in 0..<count {
            let block = p + b * 84, y = out + b * 256
            let scales = block, qs = block + 16
            let d = half(block, 80), dmin = half(block, 82)
            for g in 0..<16 {
                let dl = d * Float(scales[g] & 0x0F)
                let ml = dmin * Float(scales[g] >> 4)
                let shift = UInt8(2 * ((g % 8) / 2))
                let q = qs + 32 * (g / 8) + 16 * (g % 2)
                let yg = y + 16 * g
                for t in 0..<16 { yg[t] = dl * Float(q[t] >> shift & 3) - ml }
            }
        }
    }

    /// 32 bytes of high bits (bit k of byte l for value 32k + l; a clear bit subtracts 4),
    /// 64 bytes of 2-bit quants as in Q2_K, 12 bytes of sixteen 6-bit scales (offset -32), `d`.
    private static func q3_K(_ p: UnsafePointer<UInt8>, _ count: Int, _ out: UnsafeMutablePointer<Float>) {
        for b in 0..<count {
            let block = p + b * 110, y = out + b * 256
            let hmask = block, qs = block + 32, sc = block + 96
            let d = half(block, 108)
            for g in 0..<16 {
                let low = g < 8 ? sc[g] & 0x0F : sc[g - 8] >> 4
                let high = sc[8 + g % 4] >> UInt8(2 * (g / 4)) & 3
                let dl = d * Float(Int32(low | high << 4) - 32)
                let k = g / 2                      // which 32-value chunk
                let shift = UInt8(2 * (k % 4))
                let lBase = 16 * (g % 2)
                let q = qs + 32 * (k / 4) + lBase, h = hmask + lBase
                let yg = y + 16 * g
                for t in 0..<16 {
                    let value = Int32(q[t] >> shift & 3) - (h[t] >> UInt8(k) & 1 == 0 ? 4 : 0)
                    yg[t] = dl * Float(value)
                }
            }
        }
    }

    /// The eight 6-bit (scale, minimum) pairs of Q4_K/Q5_K, packed in 12 bytes.
    @inline(__always) private static func scaleMin(_ s: UnsafePointer<UInt8>, _ j: Int) -> (UInt8, UInt8) {
        if j < 4 { return (s[j] & 63, s[j + 4] & 63) }
        return ((s[j + 4] & 0x0F) | (s[j - 4] >> 6) << 4, (s[j + 4] >> 4) | (s[j] >> 6) << 4)
    }

    /// `d`, `dmin` (f16), 12 bytes of scales/minimums, 128 bytes of nibbles: sub-block 2c takes
    /// the low nibbles of bytes 32c..<32c+32, sub-block 2c+1 the high ones.
    private static func q4_K(_ p: UnsafePointer<UInt8>, _ count: Int, _ out: UnsafeMutablePointer<Float>) {
        for b in 0..<count {
            let block = p + b * 144, y = out + b * 256
            let d = half(block, 0), dmin = half(block, 2)
            let scales = block + 4, qs = block + 16
            for sb in 0..<8 {
                let (sc, m) = scaleMin(scales, sb)
                let dd = d * Float(sc), dm = dmin * Float(m)
                let q = qs + 32 * (sb / 2), shift = UInt8(4 * (sb % 2))
                let ys = y + 32 * sb
                for l in 0..<32 { ys[l] = dd * Float(q[l] >> shift & 0x0F) - dm }
            }
        }
    }

    /// Q4_K plus 32 bytes of fifth bits (bit sb of byte l for value 32sb + l) before the nibbles.
    private static func q5_K(_ p: UnsafePointer<UInt8>, _ count: Int, _ out: UnsafeMutablePointer<Float>) {
        for b in 0..<count {
            let block = p + b * 176, y = out + b * 256
            let d = half(block, 0), dmin = half(block, 2)
            let scales = block + 4, qh = block + 16, qs = block + 48
            for sb in 0..<8 {
                let (sc, m) = scaleMin(scales, sb)
                let dd = d * Float(sc), dm = dmin * Float(m)
                let q = qs + 32 * (sb / 2), shift = UInt8(4 * (sb % 2))
                let ys = y + 32 * sb
                for l in 0..<32 {
                    let value = q[l] >> shift & 0x0F | (qh[l] >> UInt8(sb) & 1) << 4
                    ys[l] = dd * Float(value) - dm
                }
            }
        }
    }

    /// 128 bytes of low nibbles, 64 bytes of 2-bit highs, 16 signed scales (one per 16
    /// values), `d`. In each half h of 128 values, chunk c (32 values) takes nibble c / 2 of
    /// bytes 64h + 32(c % 2) + l and bits 2c of byte 32h + l; offset -32.
    private static func q6_K(_ p: UnsafePointer<UInt8>, _ count: Int, _ out: UnsafeMutablePointer<Float>) {
        for b in 0..<count {
            let block = p + b * 210, y = out + b * 256
            let ql = block, qh = block + 128, scales = block + 192
            let d = half(block, 208)
            for g in 0..<16 {
                let dl = d * Float(Int8(bitPattern: scales[g]))
                let h = g / 8, c = (g % 8) / 2, lBase = 16 * (g % 2)
                let low = ql + 64 * h + 32 * (c % 2) + lBase, lowShift = UInt8(4 * (c / 2))
                let high = qh + 32 * h + lBase, highShift = UInt8(2 * c)
                let yg = y + 16 * g
                for t in 0..<16 {
                    let q = Int32(low[t] >> lowShift & 0x0F | (high[t] >> highShift & 3) << 4) - 32
                    yg[t] = dl * Float(q)
                }
            }
        }
    }
}
