import Foundation
import UnmaskKernels

/// A memory-mapped `.safetensors` file. Every length, offset and shape is validated when the file
/// is opened, so later reads cannot run past the mapping.
public final class SafeTensorsFile: TensorSource, @unchecked Sendable {
    private struct Entry {
        let info: TensorInfo
        let begin: Int
        let end: Int
    }

    private let file: MappedFile
    private let dataStart: Int
    private let entries: [String: Entry]
    public let metadata: [String: String]

    public init(path: String) throws {
        file = try MappedFile(path: path)
        let name = file.name
        func fail(_ reason: String) -> UnmaskError { .malformedSafeTensors(file: name, reason: reason) }
        guard file.size >= 8, let base = file.base else {
            throw fail("file is \(file.size) bytes, shorter than the 8-byte header length")
        }
        let headerLength = base.loadUnaligned(as: UInt64.self).littleEndian
        guard headerLength <= UInt64(file.size - 8) else {
            throw fail("header length \(headerLength) runs past the end of the file (\(file.size) bytes)")
        }
        dataStart = 8 + Int(headerLength)
        let headerData = Data(bytesNoCopy: base + 8, count: Int(headerLength), deallocator: .none)
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: headerData) } catch {
            throw fail("header is not valid JSON")
        }
        guard let header = json as? [String: Any] else { throw fail("header is not a JSON object") }
        let dataSize = file.size - dataStart
        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        for (key, value) in header {
            if key == "__metadata__" {
                if let pairs = value as? [String: Any] {
                    for (k, v) in pairs { if let s = v as? String { metadata[k] = s } }
                }
                continue
            }
            guard let object = value as? [String: Any] else { throw fail("entry '\(key)' is not an object") }
            guard let dtypeName = object["dtype"] as? String, let dtype = StorageType(rawValue: dtypeName) else {
                throw fail("tensor '\(key)': unknown dtype \(String(describing: object["dtype"] ?? "nil"))")
            }
            guard let shapeValues = object["shape"] as? [Any],
                  let shape = shapeValues.map({ ($0 as? NSNumber)?.intValue }) as? [Int], shape.allSatisfy({ $0 >= 0 })
            else { throw fail("tensor '\(key)': 'shape' must be a list of non-negative integers") }
            guard let offsets = object["data_offsets"] as? [Any], offsets.count == 2,
                  let begin = (offsets[0] as? NSNumber)?.intValue, let end = (offsets[1] as? NSNumber)?.intValue,
                  begin >= 0, begin <= end
            else { throw fail("tensor '\(key)': 'data_offsets' must be [begin, end] with 0 <= begin <= end") }
            guard end <= dataSize else {
                throw fail("tensor '\(key)': data_offsets [\(begin), \(end)] run past the data section (\(dataSize) bytes; the file may be truncated)")
            }
            var elements = 1
            for d in shape {
                let (product, overflow) = elements.multipliedReportingOverflow(by: d)
                guard !overflow else { throw fail("tensor '\(key)': shape \(shape) is too large") }
                elements = product
            }
            guard elements.multipliedReportingOverflow(by: dtype.byteSize).partialValue == end - begin,
                  !elements.multipliedReportingOverflow(by: dtype.byteSize).overflow
            else {
                throw fail("tensor '\(key)': shape \(shape) of \(dtype.rawValue) needs \(elements * dtype.byteSize) bytes but data_offsets span \(end - begin)")
            }
            entries[key] = Entry(info: TensorInfo(dtype: dtype, shape: shape, file: name), begin: begin, end: end)
        }
        let ordered = entries.sorted { $0.value.begin < $1.value.begin }
        for (previous, next) in zip(ordered, ordered.dropFirst()) where next.value.begin < previous.value.end {
            throw fail("tensors '\(previous.key)' and '\(next.key)' overlap")
        }
        self.entries = entries
        self.metadata = metadata
    }

    public var tensorNames: [String] { entries.keys.sorted() }
    public func info(_ name: String) -> TensorInfo? { entries[name]?.info }

    public func float32(_ name: String) throws -> WeightTensor {
        guard let entry = entries[name], let base = file.base else { throw UnmaskError.missingTensor(file: file.name, name: name) }
        let source = base + dataStart + entry.begin
        let count = entry.info.shape.reduce(1, *)
        switch entry.info.dtype {
        case .f32 where Int(bitPattern: source) % MemoryLayout<Float>.alignment == 0:
            return WeightTensor(shape: entry.info.shape, pointer: source.assumingMemoryBound(to: Float.self), owner: file)
        case .f32, .f16, .bf16:
            let buffer = FloatBuffer(count: count)
            GGMLDequantize.rows(source, type: entry.info.dtype.floatType!, rowLength: count, rowCount: 1, into: buffer.pointer)
            return WeightTensor(shape: entry.info.shape, pointer: buffer.pointer, owner: buffer)
        default:
            throw UnmaskError.unsupportedDType(file: file.name, name: name, dtype: entry.info.dtype.rawValue)
        }
    }

    /// F16 and BF16 matrices stay in the mapping under `.auto`.
    public func matrix(_ name: String, precision: WeightPrecision) throws -> LinearWeight {
        guard precision == .auto, let entry = entries[name], let base = file.base, entry.info.shape.count == 2,
              let type = entry.info.dtype.floatType, type != .f32
        else { return LinearWeight(try float32(name)) }
        return LinearWeight(type: type, data: base + dataStart + entry.begin, rows: entry.info.shape[0], columns: entry.info.shape[1], owner: file)
    }
}

extension StorageType {
    /// The ggml type with the same layout, for the float types (read by `GGMLDequantize`).
    var floatType: GGMLType? {
        switch self {
        case .f32: .f32
        case .f16: .f16
        case .bf16: .bf16
        default: nil
        }
    }
}

/// A checkpoint split over several safetensors files by `model.safetensors.index.json`.
public final class ShardedSafeTensors: TensorSource, @unchecked Sendable {
    private let shards: [String: SafeTensorsFile]
    private let location: [String: String]

    public init(indexPath: String) throws {
        let indexName = (indexPath as NSString).lastPathComponent
        let directory = (indexPath as NSString).deletingLastPathComponent
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: indexPath)) } catch {
            throw UnmaskError.unreadableFile(path: indexPath, reason: error.localizedDescription)
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw UnmaskError.malformedJSON(file: indexName, reason: "not a JSON object")
        }
        guard let weightMap = object["weight_map"] as? [String: String] else {
            throw UnmaskError.invalidField(file: indexName, field: "weight_map", expected: "an object mapping tensor names to shard file names")
        }
        var shards: [String: SafeTensorsFile] = [:]
        for shard in Set(weightMap.values).sorted() {
            guard !shard.contains("/") else {
                throw UnmaskError.invalidField(file: indexName, field: "weight_map", expected: "shard file names without a path, got '\(shard)'")
            }
            shards[shard] = try SafeTensorsFile(path: (directory as NSString).appendingPathComponent(shard))
        }
        for (name, shard) in weightMap where shards[shard]?.info(name) == nil {
            throw UnmaskError.missingTensor(file: shard, name: name)
        }
        self.shards = shards
        self.location = weightMap
    }

    public var tensorNames: [String] { location.keys.sorted() }
    public func info(_ name: String) -> TensorInfo? { location[name].flatMap { shards[$0]?.info(name) } }
    public func float32(_ name: String) throws -> WeightTensor {
        guard let shard = location[name], let file = shards[shard] else { throw UnmaskError.missingTensor(file: "model.safetensors.index.json", name: name) }
        return try file.float32(name)
    }
    public func matrix(_ name: String, precision: WeightPrecision) throws -> LinearWeight {
        guard let shard = location[name], let file = shards[shard] else { throw UnmaskError.missingTensor(file: "model.safetensors.index.json", name: name) }
        return try file.matrix(name, precision: precision)
    }
}
