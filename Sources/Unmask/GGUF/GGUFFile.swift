import UnmaskKernels

/// One tensor's entry in a GGUF file's header.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// ggml's `ne`: the extent of each dimension, fastest-varying first. A matrix with
    /// `dimensions == [in, out]` is `out` rows of `in` contiguous elements.
    public let dimensions: [Int]
    public let type: GGMLType
    /// Where the data starts, relative to the file's data section.
    public let offset: Int
    /// Bytes of data, from the type's block geometry.
    public let byteCount: Int
    public let elementCount: Int

    /// The row-major shape (slowest first): `dimensions` reversed, so `[in, out]` is `[out, in]`.
    public var shape: [Int] { dimensions.reversed() }
    /// Elements per row (`dimensions[0]`, 1 for a 0-dimensional tensor).
    public var rowLength: Int { dimensions.first ?? 1 }
    public var rowCount: Int { rowLength == 0 ? 0 : elementCount / rowLength }
}

/// A memory-mapped GGUF file (versions 2 and 3, little-endian): metadata, tensor directory and
/// data. Every count, length, offset and size is checked against the file when it is opened, so
/// later reads cannot leave the mapping, and nothing is allocated beyond a small multiple of
/// the file's size however hostile its contents.
///
/// As a `TensorSource` it serves tensors under their GGUF names (`blk.0.attn_q.weight`) with
/// row-major shapes, dequantized to float32; `GGUFCheckpoint` maps them to Hugging Face names.
public final class GGUFFile: TensorSource, @unchecked Sendable {
    public static let defaultAlignment = 32
    /// Deepest nesting of metadata arrays accepted (the parser recurses once per level).
    static let maximumArrayDepth = 8
    static let maximumDimensions = 4

    public let path: String
    /// The file's name, used in error messages.
    public let fileName: String
    public let version: Int
    /// Metadata by key.
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    /// Where the metadata key/value pairs lie in the file (after magic, version and the two
    /// counts), so a writer can copy them byte for byte instead of re-encoding every value.
    public let metadataByteRange: Range<Int>
    /// Tensors in file order.
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    /// Byte offset of the data section in the file.
    public let dataOffset: Int

    private let file: MappedFile
    private let index: [String: Int]

    public init(path: String) throws {
        file = try MappedFile(path: path)
        self.path = path
        fileName = file.name
        var reader = GGUFByteReader(base: file.base.map { UnsafeRawPointer($0) }, size: file.size, fileName: fileName)

        let magic = try reader.bytes(4, what: "the magic number")
        guard magic.elementsEqual("GGUF".utf8) else {
            throw reader.failure("does not start with the magic bytes 'GGUF' (found \(magic.map { String(format2: $0) }.joined(separator: " ")))")
        }
        let rawVersion = try reader.u32("the version")
        switch rawVersion {
        case 2, 3: break
        case 1: throw reader.failure("GGUF version 1 is not supported (only versions 2 and 3); convert the model again with a current llama.cpp")
        case let v where v & 0xFFFF == 0 && (1...3).contains(v.byteSwapped):
            throw reader.failure("big-endian GGUF files are not supported (version field reads \(v.byteSwapped) byte-swapped)")
        default: throw reader.failure("unsupported GGUF version \(rawVersion) (supported: 2, 3)")
        }
        version = Int(rawVersion)

        let tensorCount = try reader.count("the tensor count", each: GGUFByteReader.minimumTensorInfoSize)
        let keyValueCount = try reader.count("the metadata count", each: GGUFByteReader.minimumKeyValueSize)

        var metadata: [String: GGUFValue] = [:]
        var keys: [String] = []
        keys.reserveCapacity(keyValueCount)
        let metadataStart = reader.position
        for i in 0..<keyValueCount {
            let key = try reader.string("the key of metadata entry \(i)")
            guard metadata[key] == nil else { throw reader.failure("metadata key '\(ggufDisplayName(key))' appears twice") }
            let typeTag = try reader.u32("the type of metadata '\(ggufDisplayName(key))'")
            guard let type = GGUFValueType(rawValue: typeTag) else {
                throw reader.failure("metadata '\(ggufDisplayName(key))' has unknown value type \(typeTag)")
            }
            metadata[key] = try reader.value(of: type, key: key, depth: 0)
            keys.append(key)
        }
        metadataByteRange = metadataStart..<reader.position

        var alignment = GGUFFile.defaultAlignment
        if let value = metadata["general.alignment"] {
            guard case let .uint32(a) = value, a > 0, a & (a - 1) == 0 else {
                throw reader.failure("'general.alignment' must be a uint32 power of two, got \(value.typeName) \(value)")
            }
            alignment = Int(a)
        }

        var infos: [GGUFTensorInfo] = []
        infos.reserveCapacity(tensorCount)
        var index: [String: Int] = [:]
        for i in 0..<tensorCount {
            let name = try reader.string("the name of tensor \(i)")
            guard index[name] == nil else { throw reader.failure("tensor '\(ggufDisplayName(name))' appears twice") }
            let dimensionCount = try reader.u32("the dimension count of tensor '\(ggufDisplayName(name))'")
            guard dimensionCount <= UInt32(GGUFFile.maximumDimensions) else {
                throw reader.failure("tensor '\(ggufDisplayName(name))' has \(dimensionCount) dimensions (at most \(GGUFFile.maximumDimensions))")
            }
            var dimensions: [Int] = []
            var elements = 1
            for d in 0..<Int(dimensionCount) {
                let raw = try reader.u64("dimension \(d) of tensor '\(ggufDisplayName(name))'")
                guard let extent = Int(exactly: raw) else {
                    throw reader.failure("tensor '\(ggufDisplayName(name))': dimension \(d) is \(raw), too large")
                }
                let (product, overflow) = elements.multipliedReportingOverflow(by: extent)
                guard !overflow else { throw reader.failure("tensor '\(ggufDisplayName(name))': dimensions \(dimensions + [extent]) hold too many elements") }
                elements = product
                dimensions.append(extent)
            }
            let typeTag = try reader.u32("the type of tensor '\(ggufDisplayName(name))'")
            guard let type = GGMLType(rawValue: typeTag) else {
                throw reader.failure("tensor '\(ggufDisplayName(name))' has unknown ggml type \(typeTag)")
            }
            let rowLength = dimensions.first ?? 1
            guard rowLength % type.blockSize == 0 else {
                throw reader.failure("tensor '\(ggufDisplayName(name))' of type \(type): first dimension \(rowLength) is not a multiple of the block size \(type.blockSize)")
            }
            let (byteCount, sizeOverflow) = (elements / type.blockSize).multipliedReportingOverflow(by: type.bytesPerBlock)
            guard !sizeOverflow else { throw reader.failure("tensor '\(ggufDisplayName(name))': \(dimensions) of \(type) is too large") }
            let rawOffset = try reader.u64("the data offset of tensor '\(ggufDisplayName(name))'")
            guard let offset = Int(exactly: rawOffset) else {
                throw reader.failure("tensor '\(ggufDisplayName(name))': data offset \(rawOffset) is past the end of the file")
            }
            guard offset % alignment == 0 else {
                throw reader.failure("tensor '\(ggufDisplayName(name))': data offset \(offset) is not a multiple of the alignment \(alignment)")
            }
            index[name] = infos.count
            infos.append(GGUFTensorInfo(name: name, dimensions: dimensions, type: type, offset: offset, byteCount: byteCount, elementCount: elements))
        }

        // The data section starts at the next multiple of the alignment after the header.
        let (padded, paddingOverflow) = reader.position.addingReportingOverflow(alignment - 1)
        let dataOffset = paddingOverflow ? Int.max : padded / alignment * alignment
        if !infos.isEmpty && dataOffset > file.size {
            throw reader.failure("the data section would start at byte \(dataOffset), past the end of the file (\(file.size) bytes; the file may be truncated)")
        }
        let dataSize = max(0, file.size - dataOffset)
        for info in infos {
            let (end, overflow) = info.offset.addingReportingOverflow(info.byteCount)
            guard !overflow, end <= dataSize else {
                throw reader.failure("tensor '\(ggufDisplayName(info.name))': \(info.byteCount) bytes of data at offset \(info.offset) run past the end of the data section (\(dataSize) bytes; the file may be truncated)")
            }
        }
        let ordered = infos.filter { $0.byteCount > 0 }.sorted { $0.offset < $1.offset }
        for (previous, next) in zip(ordered, ordered.dropFirst()) where next.offset < previous.offset + previous.byteCount {
            throw reader.failure("the data of tensors '\(ggufDisplayName(previous.name))' and '\(ggufDisplayName(next.name))' overlap")
        }

        self.metadata = metadata
        metadataKeys = keys
        tensors = infos
        self.index = index
        self.alignment = alignment
        self.dataOffset = dataOffset
    }

    public func tensor(named name: String) -> GGUFTensorInfo? { index[name].map { tensors[$0] } }

    /// The encoded metadata key/value pairs (`metadataByteRange`), inside the mapping (valid
    /// while this file is alive).
    public var metadataBytes: UnsafeRawBufferPointer {
        guard let base = file.base else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + metadataByteRange.lowerBound, count: metadataByteRange.count)
    }

    /// The bytes of a tensor's data, inside the mapping (valid while this file is alive).
    public func data(of tensor: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        guard let base = file.base, tensor.byteCount > 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + dataOffset + tensor.offset, count: tensor.byteCount)
    }

    // MARK: TensorSource (GGUF names)

    public var tensorNames: [String] { tensors.map(\.name) }

    public func info(_ name: String) -> TensorInfo? {
        tensor(named: name).map { TensorInfo(dtype: .f32, shape: $0.shape, file: fileName) }
    }

    /// The tensor as float32 with its row-major shape: a view into the mapping for aligned F32
    /// data, else dequantized into a new buffer.
    public func float32(_ name: String) throws -> WeightTensor {
        guard let info = tensor(named: name) else { throw UnmaskError.missingTensor(file: fileName, name: name) }
        let bytes = data(of: info)
        if info.type == .f32, let start = bytes.baseAddress, Int(bitPattern: start) % MemoryLayout<Float>.alignment == 0 {
            return WeightTensor(shape: info.shape, pointer: UnsafeMutableRawPointer(mutating: start).assumingMemoryBound(to: Float.self), owner: file)
        }
        return try dequantized(info, rowOrder: nil)
    }

    /// Dequantizes a tensor into a new buffer of its row-major shape. With `rowOrder`, output row
    /// `r` receives stored row `rowOrder[r]` (a permutation of `0..<rowCount`).
    func dequantized(_ info: GGUFTensorInfo, rowOrder: [Int]?) throws -> WeightTensor {
        guard info.type.isDequantizable else {
            throw UnmaskError.invalidInput(
                source: fileName,
                reason: "tensor '\(ggufDisplayName(info.name))' has ggml type \(info.type), which Unmask cannot dequantize (supported: \(GGMLType.dequantizable.map(\.description).joined(separator: ", ")))")
        }
        let buffer = FloatBuffer(count: info.elementCount)
        if let source = data(of: info).baseAddress {
            GGMLDequantize.rows(source, type: info.type, rowLength: info.rowLength, rowCount: info.rowCount,
                                into: buffer.pointer, rowOrder: rowOrder)
        }
        return WeightTensor(buffer: buffer, shape: info.shape)
    }
}

/// Reads little-endian fields from the mapping, checking each read against the bytes that remain.
struct GGUFByteReader {
    /// Name length + dimension count + type + offset, with an empty name and no dimensions.
    static let minimumTensorInfoSize = 8 + 4 + 4 + 8
    /// Key length + value type + the smallest value, with an empty key.
    static let minimumKeyValueSize = 8 + 4 + 1

    let base: UnsafeRawPointer?
    let size: Int
    let fileName: String
    private(set) var position = 0

    init(base: UnsafeRawPointer?, size: Int, fileName: String) {
        self.base = base
        self.size = size
        self.fileName = fileName
    }

    var remaining: Int { size - position }

    func failure(_ reason: String) -> UnmaskError {
        .invalidInput(source: fileName, reason: "not a valid GGUF file: \(reason)")
    }

    private mutating func advance(_ count: Int, what: @autoclosure () -> String) throws -> UnsafeRawPointer {
        guard count >= 0, count <= remaining, let base else {
            throw failure("\(what()) at byte \(position) needs \(count) bytes but the file ends after \(remaining) more (the file may be truncated)")
        }
        defer { position += count }
        return base + position
    }

    mutating func bytes(_ count: Int, what: @autoclosure () -> String) throws -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: try advance(count, what: what()), count: count)
    }

    mutating func load<T: FixedWidthInteger>(_ type: T.Type, _ what: @autoclosure () -> String) throws -> T {
        T(littleEndian: try advance(MemoryLayout<T>.size, what: what()).loadUnaligned(as: T.self))
    }

    mutating func u32(_ what: @autoclosure () -> String) throws -> UInt32 { try load(UInt32.self, what()) }
    mutating func u64(_ what: @autoclosure () -> String) throws -> UInt64 { try load(UInt64.self, what()) }

    /// A 64-bit element count, at most what the remaining bytes could hold at `each` bytes apiece.
    mutating func count(_ what: @autoclosure () -> String, each: Int) throws -> Int {
        let raw = try u64(what())
        let limit = remaining / max(1, each)
        guard raw <= UInt64(limit) else {
            throw failure("\(what()) is \(raw), but the \(remaining) bytes left in the file hold at most \(limit) entries of at least \(each) bytes (the file may be truncated)")
        }
        return Int(raw)
    }

    mutating func string(_ what: @autoclosure () -> String) throws -> String {
        let raw = try u64("the length of \(what())")
        guard raw <= UInt64(remaining) else {
            throw failure("\(what()) has length \(raw), more than the \(remaining) bytes left in the file")
        }
        let bytes = try self.bytes(Int(raw), what: what())
        // Invalid UTF-8 is repaired (U+FFFD), never trusted or fatal.
        return String(decoding: bytes, as: UTF8.self)
    }

    mutating func value(of type: GGUFValueType, key: String, depth: Int) throws -> GGUFValue {
        let what = "metadata '\(ggufDisplayName(key))'"
        switch type {
        case .uint8: return .uint8(try load(UInt8.self, what))
        case .int8: return .int8(try load(Int8.self, what))
        case .uint16: return .uint16(try load(UInt16.self, what))
        case .int16: return .int16(try load(Int16.self, what))
        case .uint32: return .uint32(try load(UInt32.self, what))
        case .int32: return .int32(try load(Int32.self, what))
        case .uint64: return .uint64(try load(UInt64.self, what))
        case .int64: return .int64(try load(Int64.self, what))
        case .float32: return .float32(Float(bitPattern: try load(UInt32.self, what)))
        case .float64: return .float64(Double(bitPattern: try load(UInt64.self, what)))
        case .bool:
            let byte = try load(UInt8.self, what)
            guard byte <= 1 else { throw failure("\(what) is a bool stored as \(byte) (expected 0 or 1)") }
            return .bool(byte == 1)
        case .string: return .string(try string(what))
        case .array: return .array(try array(key: key, depth: depth))
        }
    }

    mutating func array(key: String, depth: Int) throws -> GGUFArray {
        let what = "metadata '\(ggufDisplayName(key))'"
        guard depth < GGUFFile.maximumArrayDepth else {
            throw failure("\(what) nests arrays deeper than \(GGUFFile.maximumArrayDepth) levels")
        }
        let tag = try u32("the element type of \(what)")
        guard let elementType = GGUFValueType(rawValue: tag) else {
            throw failure("\(what) is an array of unknown value type \(tag)")
        }
        let count = try self.count("the element count of \(what)", each: elementType.minimumEncodedSize)
        func numbers<T: FixedWidthInteger>(_ type: T.Type) throws -> [T] {
            let raw = try bytes(count * MemoryLayout<T>.size, what: what)
            return (0..<count).map { T(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self)) }
        }
        switch elementType {
        case .uint8: return .uint8(try numbers(UInt8.self))
        case .int8: return .int8(try numbers(Int8.self))
        case .uint16: return .uint16(try numbers(UInt16.self))
        case .int16: return .int16(try numbers(Int16.self))
        case .uint32: return .uint32(try numbers(UInt32.self))
        case .int32: return .int32(try numbers(Int32.self))
        case .uint64: return .uint64(try numbers(UInt64.self))
        case .int64: return .int64(try numbers(Int64.self))
        case .float32: return .float32(try numbers(UInt32.self).map(Float.init(bitPattern:)))
        case .float64: return .float64(try numbers(UInt64.self).map(Double.init(bitPattern:)))
        case .bool:
            let raw = try numbers(UInt8.self)
            if let bad = raw.first(where: { $0 > 1 }) { throw failure("\(what) holds a bool stored as \(bad) (expected 0 or 1)") }
            return .bool(raw.map { $0 == 1 })
        case .string:
            var strings: [String] = []
            strings.reserveCapacity(count)
            for i in 0..<count { strings.append(try string("element \(i) of \(what)")) }
            return .string(strings)
        case .array:
            var arrays: [GGUFArray] = []
            arrays.reserveCapacity(count)
            for _ in 0..<count { arrays.append(try array(key: key, depth: depth + 1)) }
            return .array(arrays)
        }
    }
}

/// A name read from a file, cut to a readable length for error messages (a corrupt length can
/// turn megabytes into one "name").
func ggufDisplayName(_ name: String) -> String {
    let cleaned = String(name.unicodeScalars.map { $0.properties.generalCategory == .control ? "?" : Character($0) })
    return cleaned.count > 64 ? String(cleaned.prefix(64)) + "…" : cleaned
}

private extension String {
    /// A byte as two hex digits.
    init(format2 byte: UInt8) {
        let digits = Array("0123456789abcdef")
        self = String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
    }
}
