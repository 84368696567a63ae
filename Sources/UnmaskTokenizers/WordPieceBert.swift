import Foundation

/// The BERT text classes HF `tokenizers` uses. Its category tests come from the
/// `unicode_categories` crate, whose tables are Unicode 8.0: a scalar assigned later is
/// neither punctuation, nor a nonspacing mark, nor a control/format character there (checked
/// against tokenizers 0.19: U+2E44 and U+1E944 are left alone, U+2E42 and U+1AB0 are not).
/// White_Space and lowercasing use current Unicode, as Rust's `char` does.
enum BertCharacterClass {
    static let removed: UInt8 = 1       // NUL, U+FFFD, or Cc/Cf/Co other than \t \n \r
    static let whitespace: UInt8 = 2    // \t \n \r or White_Space
    static let punctuation: UInt8 = 4   // ASCII punctuation or P*
    static let nonspacingMark: UInt8 = 8
    static let chinese: UInt8 = 16      // the CJK ideograph blocks BERT spaces out

    static let basicPlane: [UInt8] = (0..<0x10000).map { value in
        Unicode.Scalar(UInt32(value)).map(classify) ?? 0
    }

    @inline(__always)
    static func of(_ value: UInt32) -> UInt8 {
        if value < 0x10000 { return basicPlane[Int(value)] }
        return Unicode.Scalar(value).map(classify) ?? 0
    }

    static func classify(_ scalar: Unicode.Scalar) -> UInt8 {
        let value = scalar.value
        let properties = scalar.properties
        var flags: UInt8 = 0
        let isTabOrNewline = value == 0x09 || value == 0x0A || value == 0x0D
        if isTabOrNewline || properties.isWhitespace { flags |= whitespace }
        if isChinese(value) { flags |= chinese }
        if value < 0x80 {
            if (0x21...0x2F).contains(value) || (0x3A...0x40).contains(value)
                || (0x5B...0x60).contains(value) || (0x7B...0x7E).contains(value) {
                flags |= punctuation
            }
        }
        if value == 0 || value == 0xFFFD { flags |= removed }
        guard let age = properties.age, age.major < 8 || (age.major == 8 && age.minor == 0) else { return flags }
        switch properties.generalCategory {
        case .control, .format, .privateUse, .surrogate:
            if !isTabOrNewline { flags |= removed }
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            flags |= punctuation
        case .nonspacingMark:
            flags |= nonspacingMark
        default:
            break
        }
        return flags
    }

    static func isChinese(_ value: UInt32) -> Bool {
        switch value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F,
             0x2B740...0x2B81F, 0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }
}

/// HF's `BertNormalizer`: drop control characters and map whitespace to spaces, put spaces
/// around CJK ideographs, strip accents (NFD, then drop nonspacing marks; by default only when
/// lowercasing) and lowercase, in that order.
struct BertNormalizer: Sendable, Equatable {
    var cleanText = true
    var handleChineseChars = true
    var stripAccents = true
    var lowercase = true

    static func parse(_ node: JSONNode) throws -> BertNormalizer {
        let lowercase = try node.bool("lowercase", default: true)
        return BertNormalizer(
            cleanText: try node.bool("clean_text", default: true),
            handleChineseChars: try node.bool("handle_chinese_chars", default: true),
            // null means "whatever lowercase is", as in HF.
            stripAccents: try node.optional("strip_accents")?.bool() ?? lowercase,
            lowercase: lowercase)
    }

    func apply(_ text: [UInt8]) -> [UInt8] {
        if text.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) {
            // Printable ASCII: only lowercasing can change anything.
            return lowercase ? text.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 } : text
        }
        var scalars = Array(String(decoding: text, as: UTF8.self).unicodeScalars)
        if cleanText {
            scalars = scalars.compactMap { scalar in
                let flags = BertCharacterClass.of(scalar.value)
                if flags & BertCharacterClass.removed != 0 { return nil }
                return flags & BertCharacterClass.whitespace != 0 ? " " : scalar
            }
        }
        if handleChineseChars {
            var spaced: [Unicode.Scalar] = []
            spaced.reserveCapacity(scalars.count)
            for scalar in scalars {
                if BertCharacterClass.isChinese(scalar.value) {
                    spaced += [" ", scalar, " "]
                } else {
                    spaced.append(scalar)
                }
            }
            scalars = spaced
        }
        if stripAccents {
            var string = String.UnicodeScalarView()
            string.append(contentsOf: scalars)
            scalars = String(string).decomposedStringWithCanonicalMapping.unicodeScalars.filter {
                BertCharacterClass.of($0.value) & BertCharacterClass.nonspacingMark == 0
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(text.count + 8)
        for scalar in scalars {
            if lowercase {
                if scalar.isASCII {
                    let byte = UInt8(scalar.value)
                    out.append(byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte)
                } else {
                    // Rust's `char::to_lowercase`: the full mapping, no context rules.
                    out.append(contentsOf: scalar.properties.lowercaseMapping.utf8)
                }
            } else {
                out.append(contentsOf: String(scalar).utf8)
            }
        }
        return out
    }
}

/// HF's `BertPreTokenizer`: split on whitespace (dropped), then make every punctuation
/// character a word of its own.
enum BertPreTokenizer {
    static func apply(_ pieces: inout Pieces) {
        var ranges: [Range<Int>] = []
        ranges.reserveCapacity(pieces.ranges.count * 2)
        pieces.bytes.withUnsafeBufferPointer { text in
            for range in pieces.ranges {
                var wordStart = range.lowerBound
                var index = range.lowerBound
                while index < range.upperBound {
                    let (value, length) = decodeScalar(text, index)
                    let flags = BertCharacterClass.of(value)
                    if flags & (BertCharacterClass.whitespace | BertCharacterClass.punctuation) != 0 {
                        if wordStart < index { ranges.append(wordStart..<index) }
                        if flags & BertCharacterClass.whitespace == 0 { ranges.append(index..<index + length) }
                        wordStart = index + length
                    }
                    index += length
                }
                if wordStart < range.upperBound { ranges.append(wordStart..<range.upperBound) }
            }
        }
        if let first = pieces.ranges.first, ranges.first?.lowerBound != first.lowerBound {
            pieces.firstAtOrigin = false
        }
        pieces.ranges = ranges
    }
}

/// HF's `WordPiece` decoder: pieces starting with the prefix join the previous token, others
/// get a space before them; `cleanup` then removes the spaces transformers' tokenization
/// cleanup removes, token by token.
struct WordPieceDecoder: Sendable, Equatable {
    var prefix = "##"
    var cleanup = true

    static func parse(_ node: JSONNode) throws -> WordPieceDecoder {
        WordPieceDecoder(prefix: try node.string("prefix") ?? "##", cleanup: try node.bool("cleanup", default: true))
    }

    func decodeChain(_ tokens: [String]) -> [String] {
        tokens.enumerated().map { index, token in
            var token = token
            if index != 0 {
                if !prefix.isEmpty, token.utf8.starts(with: prefix.utf8) {
                    token = String(decoding: token.utf8.dropFirst(prefix.utf8.count), as: UTF8.self)
                } else {
                    token = " " + token
                }
            }
            return cleanup ? Self.cleanUp(token) : token
        }
    }

    /// `tokenizers::decoders::wordpiece::cleanup`.
    static func cleanUp(_ text: String) -> String {
        let rules = [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                     (" 'm", "'m"), (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")]
        return rules.reduce(text) { $0.replacingScalars(of: $1.0, with: $1.1) }
    }
}
