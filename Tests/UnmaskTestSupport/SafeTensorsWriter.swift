import Foundation

/// Writes safetensors files for tests, including deliberately broken ones.
public enum SafeTensorsWriter {
    public struct Tensor {
        public var name: String
        public var dtype: String
        public var shape: [Int]
        public var bytes: [UInt8]
        public init(name: String, dtype: String = "F32", shape: [Int], bytes: [UInt8]) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
            self.bytes = bytes
        }
        public init(name: String, shape: [Int], floats: [Float]) {
            self.init(name: name, shape: shape, bytes: floats.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) })
        }
    }

    /// The file's bytes; `edit` may alter each header entry (e.g. corrupt its offsets) before writing.
    public static func data(_ tensors: [Tensor], edit: (String, inout [String: Any]) -> Void = { _, _ in }) -> Data {
        var header: [String: Any] = [:]
        var offset = 0
        var payload: [UInt8] = []
        for tensor in tensors {
            var entry: [String: Any] = ["dtype": tensor.dtype, "shape": tensor.shape, "data_offsets": [offset, offset + tensor.bytes.count]]
            edit(tensor.name, &entry)
            header[tensor.name] = entry
            payload += tensor.bytes
            offset += tensor.bytes.count
        }
        var json = try! JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var data = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(json)
        data.append(contentsOf: payload)
        return data
    }
}
