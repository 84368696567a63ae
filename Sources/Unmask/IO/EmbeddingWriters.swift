import Foundation

/// Serializes embeddings for `unmask embed`.
public enum EmbeddingWriters {
    /// One `{"embedding": [...]}` a line; floats in their shortest round-trip form.
    public static func jsonLines(_ embeddings: [[Float]]) -> Data {
        var out = ""
        out.reserveCapacity(embeddings.count * (embeddings.first?.count ?? 0) * 12)
        for embedding in embeddings {
            out += "{\"embedding\": ["
            for (i, value) in embedding.enumerated() {
                if i > 0 { out += ", " }
                out += value.isFinite ? value.description : "null"
            }
            out += "]}\n"
        }
        return Data(out.utf8)
    }

    /// A NumPy `.npy` (format 1.0) float32 array of shape [n, d].
    public static func npy(_ embeddings: [[Float]]) -> Data {
        let d = embeddings.first?.count ?? 0
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(embeddings.count), \(d)), }"
        // Magic (6) + version (2) + length (2) + header, padded with spaces to a multiple of 64, ending in '\n'.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let length = UInt16(header.utf8.count)
        data.append(contentsOf: [UInt8(length & 0xff), UInt8(length >> 8)])
        data.append(contentsOf: Array(header.utf8))
        data.reserveCapacity(data.count + embeddings.count * d * 4)
        for embedding in embeddings {
            for value in embedding { withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        }
        return data
    }
}
