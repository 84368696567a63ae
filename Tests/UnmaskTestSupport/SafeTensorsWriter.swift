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

extension SafeTensorsWriter {
    /// Every tensor of an F32 safetensors file, in file order: for tests that rewrite a fixture.
    public static func readF32(_ path: String) throws -> [(name: String, shape: [Int], floats: [Float])] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let headerLength = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerLength))) as! [String: Any]
        let payload = data.subdata(in: (8 + headerLength)..<data.count)
        return header.compactMap { name, value -> (String, [Int], [Float], Int)? in
            guard let entry = value as? [String: Any], entry["dtype"] as? String == "F32" else { return nil }
            let offsets = entry["data_offsets"] as! [Int]
            let floats = payload.subdata(in: offsets[0]..<offsets[1]).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            return (name, entry["shape"] as! [Int], floats, offsets[0])
        }.sorted { $0.3 < $1.3 }.map { ($0.0, $0.1, $0.2) }
    }
}
