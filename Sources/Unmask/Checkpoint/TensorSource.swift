/// Element types a checkpoint may store.
public enum StorageType: String, Sendable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"
    case f8e4m3 = "F8_E4M3", f8e5m2 = "F8_E5M2", u16 = "U16", u32 = "U32", u64 = "U64"

    var byteSize: Int {
        switch self {
        case .f64, .i64, .u64: return 8
        case .f32, .i32, .u32: return 4
        case .f16, .bf16, .i16, .u16: return 2
        case .i8, .u8, .bool, .f8e4m3, .f8e5m2: return 1
        }
    }
}

public struct TensorInfo: Sendable, Equatable {
    public let dtype: StorageType
    public let shape: [Int]
    /// The file the tensor lives in, for error messages.
    public let file: String
}

/// Named tensors from any checkpoint format; the model code reads weights only through this,
/// so one model definition serves safetensors and GGUF alike.
public protocol TensorSource: Sendable {
    var tensorNames: [String] { get }
    func info(_ name: String) -> TensorInfo?
    /// The tensor as float32, converted once if stored otherwise.
    func float32(_ name: String) throws -> WeightTensor
    /// A 2-D tensor for products: in its stored format when `precision` is `.auto` and the
    /// format is one products compute from, else float32.
    func matrix(_ name: String, precision: WeightPrecision) throws -> LinearWeight
}

extension TensorSource {
    public func matrix(_ name: String, precision: WeightPrecision) throws -> LinearWeight {
        LinearWeight(try float32(name))
    }
}
