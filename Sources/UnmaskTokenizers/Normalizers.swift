import Foundation

/// Text rewriting applied to each stretch of input between added tokens, before
/// pre-tokenization. Works on UTF-8 bytes.
enum Normalizer: Sendable {
    case sequence([Normalizer])
    case nfc, nfd, nfkc, nfkd
    case lowercase
    case prepend([UInt8])
    case replace(SplitPattern, with: [UInt8])
    case strip(left: Bool, right: Bool)
    case bert(BertNormalizer)

    static let supported = ["NFC", "NFD", "NFKC", "NFKD", "Lowercase", "Prepend", "Replace", "Strip", "BertNormalizer", "Sequence"]

    static func parse(_ node: JSONNode) throws -> Normalizer {
        let type = try node.typeTag()
        switch type {
        case "Sequence": return .sequence(try node.required("normalizers").array().map(parse))
        case "NFC": return .nfc
        case "NFD": return .nfd
        case "NFKC": return .nfkc
        case "NFKD": return .nfkd
        case "Lowercase": return .lowercase
        case "BertNormalizer": return .bert(try BertNormalizer.parse(node))
        case "Prepend": return .prepend(Array(try node.required("prepend").string().utf8))
        case "Replace":
            return .replace(try SplitPattern.parse(try node.required("pattern")),
                            with: Array(try node.required("content").string().utf8))
        case "Strip":
            return .strip(left: try node.bool("strip_left", default: true),
                          right: try node.bool("strip_right", default: true))
        default:
            throw node.unsupported(type, supported: supported)
        }
    }

    /// Whether the normalizer turns spaces into SentencePiece's `▁` (Llama-2 style).
    var writesMetaspace: Bool {
        switch self {
        case .sequence(let steps): steps.contains { $0.writesMetaspace }
        case .prepend(let text), .replace(_, let text): text == Array("▁".utf8)
        default: false
        }
    }

    func apply(_ text: [UInt8]) -> [UInt8] {
        switch self {
        case .sequence(let steps):
            return steps.reduce(text) { $1.apply($0) }
        case .nfc:
            // Scalars below U+0300 (lead bytes below 0xCC) are all NFC-stable and never
            // compose, which covers ASCII and Latin-1 text without calling into Foundation.
            if text.allSatisfy({ $0 < 0xCC }) { return text }
            return Array(String(decoding: text, as: UTF8.self).precomposedStringWithCanonicalMapping.utf8)
        case .nfd:
            if text.allSatisfy({ $0 < 0x80 }) { return text }
            return Array(String(decoding: text, as: UTF8.self).decomposedStringWithCanonicalMapping.utf8)
        case .nfkc:
            if text.allSatisfy({ $0 < 0x80 }) { return text }
            return Array(String(decoding: text, as: UTF8.self).precomposedStringWithCompatibilityMapping.utf8)
        case .nfkd:
            if text.allSatisfy({ $0 < 0x80 }) { return text }
            return Array(String(decoding: text, as: UTF8.self).decomposedStringWithCompatibilityMapping.utf8)
        case .lowercase:
            // Per-scalar full lowercase mapping without context rules, like Rust's
            // `char::to_lowercase` (so no final-sigma special case).
            var out: [UInt8] = []
            out.reserveCapacity(text.count)
            for scalar in String(decoding: text, as: UTF8.self).unicodeScalars {
                if scalar.isASCII {
                    let byte = UInt8(scalar.value)
                    out.append(byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte)
                } else {
                    out.append(contentsOf: scalar.properties.lowercaseMapping.utf8)
                }
            }
            return out
        case .prepend(let prefix):
            return text.isEmpty ? text : prefix + text
        case .replace(let pattern, let content):
            return replaceAll(pattern, with: content, in: text)
        case .strip(let left, let right):
            return String(decoding: text, as: UTF8.self).unicodeScalars.withStripping(left: left, right: right)
        case .bert(let normalizer):
            return normalizer.apply(text)
        }
    }
}

/// Replaces every non-overlapping match of `pattern` in `text`.
func replaceAll(_ pattern: SplitPattern, with content: [UInt8], in text: [UInt8]) -> [UInt8] {
    var matches: [Range<Int>] = []
    text.withUnsafeBufferPointer { pattern.matches(in: $0, 0..<text.count, into: &matches) }
    guard !matches.isEmpty else { return text }
    var out: [UInt8] = []
    out.reserveCapacity(text.count)
    var cursor = 0
    for match in matches {
        out.append(contentsOf: text[cursor..<match.lowerBound])
        out.append(contentsOf: content)
        cursor = match.upperBound
    }
    out.append(contentsOf: text[cursor...])
    return out
}

extension String.UnicodeScalarView {
    /// UTF-8 with White_Space scalars removed from the chosen ends.
    func withStripping(left: Bool, right: Bool) -> [UInt8] {
        var slice = self[...]
        if left { slice = slice.drop { $0.properties.isWhitespace } }
        if right {
            while let last = slice.last, last.properties.isWhitespace { slice = slice.dropLast() }
        }
        return Array(String(String.UnicodeScalarView(slice)).utf8)
    }
}
