/// The type tags of GGUF metadata values, as numbered in the file.
public enum GGUFValueType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, bool = 7
    case string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

    /// The fewest bytes one value of this type occupies in a file: a string is at least its 8-byte
    /// length, an array at least its 4-byte element type and 8-byte count. Used to bound counts
    /// read from a file by the bytes that remain.
    var minimumEncodedSize: Int {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .uint16, .int16: return 2
        case .uint32, .int32, .float32: return 4
        case .uint64, .int64, .float64, .string: return 8
        case .array: return 12
        }
    }

    public var description: String {
        switch self {
        case .uint8: return "uint8"
        case .int8: return "int8"
        case .uint16: return "uint16"
        case .int16: return "int16"
        case .uint32: return "uint32"
        case .int32: return "int32"
        case .float32: return "float32"
        case .bool: return "bool"
        case .string: return "string"
        case .array: return "array"
        case .uint64: return "uint64"
        case .int64: return "int64"
        case .float64: return "float64"
        }
    }
}

/// One metadata value of a GGUF file.
public enum GGUFValue: Sendable, Equatable, CustomStringConvertible {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case uint64(UInt64), int64(Int64), float32(Float), float64(Double), bool(Bool), string(String)
    case array(GGUFArray)

    public var type: GGUFValueType {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .uint64: return .uint64
        case .int64: return .int64
        case .float32: return .float32
        case .float64: return .float64
        case .bool: return .bool
        case .string: return .string
        case .array: return .array
        }
    }

    /// Any integer value that fits an `Int`; nil for other types (floats are not truncated).
    public var int: Int? {
        switch self {
        case let .uint8(v): return Int(v)
        case let .int8(v): return Int(v)
        case let .uint16(v): return Int(v)
        case let .int16(v): return Int(v)
        case let .uint32(v): return Int(v)
        case let .int32(v): return Int(v)
        case let .uint64(v): return Int(exactly: v)
        case let .int64(v): return Int(exactly: v)
        default: return nil
        }
    }

    /// A float or integer value as a `Double`.
    public var double: Double? {
        switch self {
        case let .float32(v): return Double(v)
        case let .float64(v): return v
        default: return int.map(Double.init)
        }
    }

    /// A float or integer value as a `Float` (float32 values exactly as stored).
    public var float: Float? {
        if case let .float32(v) = self { return v }
        return double.map(Float.init)
    }

    public var string: String? {
        if case let .string(v) = self { return v }
        return nil
    }

    public var bool: Bool? {
        if case let .bool(v) = self { return v }
        return nil
    }

    public var array: GGUFArray? {
        if case let .array(v) = self { return v }
        return nil
    }

    /// The value's type, spelled as in error messages ("uint32", "array of string").
    public var typeName: String {
        if case let .array(a) = self { return "array of \(a.elementTypeName)" }
        return type.description
    }

    public var description: String {
        switch self {
        case let .uint8(v): return String(v)
        case let .int8(v): return String(v)
        case let .uint16(v): return String(v)
        case let .int16(v): return String(v)
        case let .uint32(v): return String(v)
        case let .int32(v): return String(v)
        case let .uint64(v): return String(v)
        case let .int64(v): return String(v)
        case let .float32(v): return String(v)
        case let .float64(v): return String(v)
        case let .bool(v): return String(v)
        case let .string(v):
            // Long strings (a chat template, a hostile file's megabyte) are cut for messages.
            return String(reflecting: v.count > 60 ? String(v.prefix(60)) + "…" : v)
        case let .array(a): return a.description
        }
    }
}

/// A metadata array, stored compactly by element type (a tokenizer's 150 000 token types take
/// 600 KB, not an enum per element). Arrays may nest.
public enum GGUFArray: Sendable, Equatable, CustomStringConvertible {
    case uint8([UInt8]), int8([Int8]), uint16([UInt16]), int16([Int16]), uint32([UInt32]), int32([Int32])
    case uint64([UInt64]), int64([Int64]), float32([Float]), float64([Double]), bool([Bool]), string([String])
    case array([GGUFArray])

    public var elementType: GGUFValueType {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .uint64: return .uint64
        case .int64: return .int64
        case .float32: return .float32
        case .float64: return .float64
        case .bool: return .bool
        case .string: return .string
        case .array: return .array
        }
    }

    var elementTypeName: String {
        if case let .array(inner) = self {
            // Nested arrays name their first element's type; an empty one says just "array".
            return inner.first.map { "array of \($0.elementTypeName)" } ?? "array"
        }
        return elementType.description
    }

    public var count: Int {
        switch self {
        case let .uint8(v): return v.count
        case let .int8(v): return v.count
        case let .uint16(v): return v.count
        case let .int16(v): return v.count
        case let .uint32(v): return v.count
        case let .int32(v): return v.count
        case let .uint64(v): return v.count
        case let .int64(v): return v.count
        case let .float32(v): return v.count
        case let .float64(v): return v.count
        case let .bool(v): return v.count
        case let .string(v): return v.count
        case let .array(v): return v.count
        }
    }

    public var isEmpty: Bool { count == 0 }

    /// Element `i` as a value; `i` must be in `0..<count`.
    public subscript(i: Int) -> GGUFValue {
        switch self {
        case let .uint8(v): return .uint8(v[i])
        case let .int8(v): return .int8(v[i])
        case let .uint16(v): return .uint16(v[i])
        case let .int16(v): return .int16(v[i])
        case let .uint32(v): return .uint32(v[i])
        case let .int32(v): return .int32(v[i])
        case let .uint64(v): return .uint64(v[i])
        case let .int64(v): return .int64(v[i])
        case let .float32(v): return .float32(v[i])
        case let .float64(v): return .float64(v[i])
        case let .bool(v): return .bool(v[i])
        case let .string(v): return .string(v[i])
        case let .array(v): return .array(v[i])
        }
    }

    /// Every element as a value.
    public var values: [GGUFValue] { (0..<count).map { self[$0] } }

    public var strings: [String]? {
        if case let .string(v) = self { return v }
        return nil
    }

    /// Integer elements as `Int`s; nil for non-integer arrays or a 64-bit value that does not fit.
    public var ints: [Int]? {
        switch self {
        case let .uint8(v): return v.map(Int.init)
        case let .int8(v): return v.map(Int.init)
        case let .uint16(v): return v.map(Int.init)
        case let .int16(v): return v.map(Int.init)
        case let .uint32(v): return v.map(Int.init)
        case let .int32(v): return v.map(Int.init)
        case let .uint64(v):
            let converted = v.compactMap { Int(exactly: $0) }
            return converted.count == v.count ? converted : nil
        case let .int64(v):
            let converted = v.compactMap { Int(exactly: $0) }
            return converted.count == v.count ? converted : nil
        default: return nil
        }
    }

    /// Numeric elements as `Double`s.
    public var doubles: [Double]? {
        switch self {
        case let .float32(v): return v.map(Double.init)
        case let .float64(v): return v
        default: return ints?.map(Double.init)
        }
    }

    public var bools: [Bool]? {
        if case let .bool(v) = self { return v }
        return nil
    }

    public var arrays: [GGUFArray]? {
        if case let .array(v) = self { return v }
        return nil
    }

    public var description: String {
        let shown = (0..<min(count, 8)).map { self[$0].description }.joined(separator: ", ")
        return "[" + shown + (count > 8 ? ", … (\(count) elements)" : "") + "]"
    }
}
