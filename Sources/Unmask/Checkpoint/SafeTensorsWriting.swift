import Foundation
import UnmaskKernels

extension SafeTensorsFile {
    /// A float32 tensor to write.
    public struct OutputTensor {
        public let name: String
        public let shape: [Int]
        public let values: UnsafeBufferPointer<Float>

        public init(name: String, shape: [Int], values: UnsafeBufferPointer<Float>) {
            precondition(shape.reduce(1, *) == values.count, "\(name): shape \(shape) does not match \(values.count) values")
            self.name = name
            self.shape = shape
            self.values = values
        }
    }

    /// Writes F32 tensors as a safetensors file (the header sorted by name, data in that order),
    /// through a temporary file renamed into place, so an interrupted write never leaves a
    /// truncated file under the final name.
    public static func write(_ tensors: [OutputTensor], metadata: [String: String] = [:], to url: URL) throws {
        let ordered = tensors.sorted { $0.name < $1.name }
        var data = try header(ordered.map { ($0.name, $0.shape) }, metadata: metadata)
        for t in ordered {
            // Little-endian hosts only (x86-64, arm64), as the reader assumes.
            data.append(UnsafeBufferPointer(start: UnsafeRawPointer(t.values.baseAddress!).assumingMemoryBound(to: UInt8.self),
                                            count: t.values.count * MemoryLayout<Float>.size))
        }
        try writeAtomically(data, to: url)
    }

    /// The file's start for F32 tensors whose data follows in the order given: the header's byte
    /// count (u64, little-endian) and the JSON header, padded with spaces so the data starts
    /// 8-byte aligned, as the safetensors writer does.
    static func header(_ tensors: [(name: String, shape: [Int])], metadata: [String: String]) throws -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for (name, shape) in tensors {
            let bytes = shape.reduce(1, *) * MemoryLayout<Float>.size
            header[name] = ["dtype": "F32", "shape": shape, "data_offsets": [offset, offset + bytes]] as [String: Any]
            offset += bytes
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var data = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(json)
        return data
    }
}

/// Writes `data` next to `url` and renames it into place.
func writeAtomically(_ data: Data, to url: URL) throws {
    do {
        try data.write(to: url, options: .atomic)
    } catch {
        throw UnmaskError.unwritableFile(path: url.path, error: error)
    }
}
