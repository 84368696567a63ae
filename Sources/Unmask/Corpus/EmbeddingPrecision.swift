import Foundation

/// How vectors are stored, as sentence-transformers' `quantize_embeddings` defines the
/// precisions: float32; float16; int8/uint8 scaled per dimension over a calibration set's
/// [min, max] into 256 steps; binary/ubinary one bit per dimension (value > 0), packed
/// big-endian into bytes, binary shifted by −128 into int8.
public enum EmbeddingPrecision: String, Sendable, Codable, CaseIterable {
    case float32, float16, int8, uint8, binary, ubinary

    /// int8 and uint8 need per-dimension ranges from a calibration set.
    public var needsCalibration: Bool { self == .int8 || self == .uint8 }

    /// Stored values per vector of `dimension` floats.
    public func width(dimension: Int) -> Int {
        switch self {
        case .binary, .ubinary: return (dimension + 7) / 8
        default: return dimension
        }
    }

    /// Bytes per stored value.
    public var bytesPerValue: Int {
        switch self {
        case .float32: return 4
        case .float16: return 2
        default: return 1
        }
    }

    /// The `.npy` descr of the stored values.
    public var npyDescriptor: String {
        switch self {
        case .float32: return "<f4"
        case .float16: return "<f2"
        case .int8, .binary: return "|i1"
        case .uint8, .ubinary: return "|u1"
        }
    }
}

/// int8/uint8 scaling: `starts` = per-dimension minimum over the calibration vectors, `steps` =
/// (max − min) / 255, as sentence-transformers computes them.
public struct QuantizationRanges: Sendable, Codable, Equatable {
    public let starts: [Float]
    public let steps: [Float]

    public init(starts: [Float], steps: [Float]) {
        self.starts = starts
        self.steps = steps
    }

    public init(calibration vectors: [[Float]]) throws {
        guard let width = vectors.first?.count, width > 0 else {
            throw UnmaskError.invalidInput(source: "calibration", reason: "int8/uint8 need at least one calibration vector")
        }
        var low = vectors[0], high = vectors[0]
        for vector in vectors.dropFirst() {
            for d in 0..<width {
                low[d] = min(low[d], vector[d])
                high[d] = max(high[d], vector[d])
            }
        }
        starts = low
        steps = zip(low, high).map { ($1 - $0) / 255 }
    }
}

/// Turns finished float vectors into a precision's stored values.
public enum EmbeddingQuantizer {
    /// The stored values of `vector` as raw little-endian bytes (`precision.width × bytesPerValue`).
    public static func bytes(_ vector: [Float], precision: EmbeddingPrecision, ranges: QuantizationRanges?) -> [UInt8] {
        switch precision {
        case .float32:
            var out = [UInt8](); out.reserveCapacity(vector.count * 4)
            for value in vector { withUnsafeBytes(of: value.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
            return out
        case .float16:
            var out = [UInt8](); out.reserveCapacity(vector.count * 2)
            for value in vector { withUnsafeBytes(of: Float16(value).bitPattern.littleEndian) { out.append(contentsOf: $0) } }
            return out
        case .int8, .uint8:
            return scaled(vector, ranges: ranges!, signed: precision == .int8).map { UInt8(bitPattern: Int8(truncatingIfNeeded: $0)) }
        case .binary, .ubinary:
            let packed = packBits(vector)
            return precision == .ubinary ? packed : packed.map { $0 ^ 0x80 }
        }
    }

    /// The stored values as numbers, for JSON output.
    public static func values(_ vector: [Float], precision: EmbeddingPrecision, ranges: QuantizationRanges?) -> [Double] {
        switch precision {
        case .float32: return vector.map(Double.init)
        case .float16: return vector.map { Double(Float(Float16($0))) }
        case .int8, .uint8: return scaled(vector, ranges: ranges!, signed: precision == .int8).map(Double.init)
        case .ubinary: return packBits(vector).map(Double.init)
        case .binary: return packBits(vector).map { Double(Int($0) - 128) }
        }
    }

    /// ((x − start) / step) [− 128], truncated toward zero as numpy's astype does, in float32
    /// arithmetic. Values outside the calibration range are clamped (numpy would wrap them).
    static func scaled(_ vector: [Float], ranges: QuantizationRanges, signed: Bool) -> [Int] {
        vector.indices.map { d in
            var x = (vector[d] - ranges.starts[d]) / ranges.steps[d]
            if signed { x -= 128 }
            // A constant dimension (step 0) gives NaN or ±Inf: numpy's cast is undefined there.
            if !x.isFinite { x = x.isNaN ? (signed ? -128 : 0) : (x > 0 ? 255 : -255) }
            let value = Int(x.rounded(.towardZero))
            return signed ? min(127, max(-128, value)) : min(255, max(0, value))
        }
    }

    /// numpy.packbits(vector > 0): the first value is the most significant bit; zero-padded.
    static func packBits(_ vector: [Float]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: (vector.count + 7) / 8)
        for (d, value) in vector.enumerated() where value > 0 { out[d / 8] |= 0x80 >> UInt8(d % 8) }
        return out
    }

    /// Float vectors back from stored bytes (search over a quantized index): floats as they are,
    /// int8/uint8 as (q [+ 128]) · step + start, bits as 0/1 (what sentence-transformers rescores with).
    public static func dequantize(_ bytes: UnsafeRawBufferPointer, precision: EmbeddingPrecision, dimension: Int,
                                  ranges: QuantizationRanges?, into out: UnsafeMutablePointer<Float>) {
        switch precision {
        case .float32:
            for d in 0..<dimension { out[d] = Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4 * d, as: UInt32.self))) }
        case .float16:
            for d in 0..<dimension { out[d] = Float(Float16(bitPattern: UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2 * d, as: UInt16.self)))) }
        case .int8, .uint8:
            let ranges = ranges!
            for d in 0..<dimension {
                let q = precision == .int8 ? Float(Int8(bitPattern: bytes[d])) + 128 : Float(bytes[d])
                out[d] = q * ranges.steps[d] + ranges.starts[d]
            }
        case .binary, .ubinary:
            for d in 0..<dimension {
                let byte = precision == .binary ? bytes[d / 8] ^ 0x80 : bytes[d / 8]
                out[d] = (byte >> (7 - UInt8(d % 8))) & 1 == 1 ? 1 : 0
            }
        }
    }
}
