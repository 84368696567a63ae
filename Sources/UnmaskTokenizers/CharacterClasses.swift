/// The character classes the split patterns are written in: `\p{L}`, `\p{N}` and `\s`
/// (Oniguruma's `\s` is the Unicode White_Space property), everything else being "other".
enum CharacterClass {
    static let other: UInt8 = 0
    static let letter: UInt8 = 1
    static let number: UInt8 = 2
    static let whitespace: UInt8 = 3

    /// Classes of the Basic Multilingual Plane, computed once; the scanners index it for
    /// every scalar, and `Unicode.Scalar.Properties` is too slow to ask each time.
    static let basicPlane: [UInt8] = (0..<0x10000).map { value in
        Unicode.Scalar(UInt32(value)).map(classify) ?? other
    }

    static func classify(_ scalar: Unicode.Scalar) -> UInt8 {
        let properties = scalar.properties
        if properties.isWhitespace { return whitespace }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return number
        default:
            return other
        }
    }

    @inline(__always)
    static func of(_ value: UInt32, _ table: UnsafeBufferPointer<UInt8>) -> UInt8 {
        if value < 0x10000 { return table[Int(value)] }
        return Unicode.Scalar(value).map(classify) ?? other
    }

    /// Rust regex's Unicode `\w` (Alphabetic, marks, decimal digits, connector punctuation,
    /// join controls), which HF uses to decide whether a single-word added token touches a word.
    static func isWordCharacter(_ scalar: Unicode.Scalar) -> Bool {
        let properties = scalar.properties
        if properties.isAlphabetic || properties.isJoinControl { return true }
        switch properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation:
            return true
        default:
            return false
        }
    }
}

/// Decodes the scalar starting at `index` of well-formed UTF-8 (all text reaching the
/// tokenizer pipeline comes from Swift strings or our own transformations of them).
@inline(__always)
func decodeScalar(_ bytes: UnsafeBufferPointer<UInt8>, _ index: Int) -> (value: UInt32, length: Int) {
    let lead = UInt32(bytes[index])
    if lead < 0x80 { return (lead, 1) }
    if lead < 0xE0 {
        return ((lead & 0x1F) << 6 | UInt32(bytes[index + 1] & 0x3F), 2)
    }
    if lead < 0xF0 {
        return ((lead & 0x0F) << 12 | UInt32(bytes[index + 1] & 0x3F) << 6 | UInt32(bytes[index + 2] & 0x3F), 3)
    }
    return ((lead & 0x07) << 18 | UInt32(bytes[index + 1] & 0x3F) << 12
        | UInt32(bytes[index + 2] & 0x3F) << 6 | UInt32(bytes[index + 3] & 0x3F), 4)
}

/// Start of the scalar that ends at `index` (exclusive).
@inline(__always)
func previousScalarStart(_ bytes: UnsafeBufferPointer<UInt8>, before index: Int) -> Int {
    var start = index - 1
    while start > 0, bytes[start] & 0xC0 == 0x80 { start -= 1 }
    return start
}
