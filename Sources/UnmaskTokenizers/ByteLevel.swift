/// GPT-2's reversible byte ↔ character mapping. Byte-level vocabularies are written in
/// printable characters: bytes that are printable Latin-1 (`!`…`~`, `¡`…`¬`, `®`…`ÿ`) stand
/// for themselves and the other 68 bytes map, in order, to U+0100 onwards (space → `Ġ`).
enum ByteLevel {
    /// The character for each byte.
    static let scalarForByte: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            let printable = (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
            if printable {
                table[byte] = UInt32(byte)
            } else {
                table[byte] = next
                next += 1
            }
        }
        return table
    }()

    /// The byte for each character of the mapping (indexed by scalar value), or -1.
    static let byteForScalar: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x144)
        for (byte, scalar) in scalarForByte.enumerated() { table[Int(scalar)] = Int16(byte) }
        return table
    }()

    /// UTF-8 of each byte's character: one byte, or two (all characters are below U+0800).
    private static let encoded: [(UInt8, UInt8)] = scalarForByte.map { scalar in
        scalar < 0x80 ? (UInt8(scalar), 0) : (UInt8(0xC0 | scalar >> 6), UInt8(0x80 | scalar & 0x3F))
    }

    /// Appends the mapped form of `bytes[range]`.
    static func map(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, into out: inout [UInt8]) {
        encoded.withUnsafeBufferPointer { table in
            for index in range {
                let (lead, trail) = table[Int(bytes[index])]
                out.append(lead)
                if trail != 0 { out.append(trail) }
            }
        }
    }

    /// The bytes a byte-level token stands for, or nil when it contains a character outside
    /// the mapping (HF then keeps the token's own UTF-8, e.g. for added tokens with spaces).
    static func unmap(_ token: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(token.utf8.count)
        for scalar in token.unicodeScalars {
            guard scalar.value < 0x144 else { return nil }
            let byte = byteForScalar[Int(scalar.value)]
            guard byte >= 0 else { return nil }
            bytes.append(UInt8(byte))
        }
        return bytes
    }
}
