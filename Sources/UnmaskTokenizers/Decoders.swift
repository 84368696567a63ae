/// Turns token strings back into text. Each decoder maps the list of token strings to a new
/// list (HF's `decode_chain`); the final list is concatenated.
enum TokenDecoder: Sendable {
    case sequence([TokenDecoder])
    case byteLevel
    case replace(SplitPattern, with: [UInt8])
    case byteFallback
    case fuse
    case strip(Unicode.Scalar, start: Int, stop: Int)
    case metaspace(Metaspace)
    case wordPiece(WordPieceDecoder)

    static let supported = ["ByteLevel", "Replace", "ByteFallback", "Fuse", "Strip", "Metaspace", "WordPiece", "Sequence"]

    static func parse(_ node: JSONNode) throws -> TokenDecoder {
        let type = try node.typeTag()
        switch type {
        case "Sequence": return .sequence(try node.required("decoders").array().map(parse))
        case "ByteLevel": return .byteLevel
        case "ByteFallback": return .byteFallback
        case "Fuse": return .fuse
        case "Metaspace": return .metaspace(try Metaspace.parse(node))
        case "WordPiece": return .wordPiece(try WordPieceDecoder.parse(node))
        case "Replace":
            return .replace(try SplitPattern.parse(try node.required("pattern")),
                            with: Array(try node.required("content").string().utf8))
        case "Strip":
            let contentNode = try node.required("content")
            let content = try contentNode.string().unicodeScalars
            guard content.count == 1, let scalar = content.first else {
                throw contentNode.error("must be a single character")
            }
            let start = try node.optional("start")?.int() ?? 0
            let stop = try node.optional("stop")?.int() ?? 0
            guard start >= 0, stop >= 0 else { throw node.error("start and stop must not be negative") }
            return .strip(scalar, start: start, stop: stop)
        default:
            throw node.unsupported(type, supported: supported)
        }
    }

    func decode(_ tokens: [String]) -> String {
        decodeChain(tokens).joined()
    }

    func decodeChain(_ tokens: [String]) -> [String] {
        switch self {
        case .sequence(let steps):
            return steps.reduce(tokens) { $1.decodeChain($0) }
        case .wordPiece(let decoder):
            return decoder.decodeChain(tokens)
        case .byteLevel:
            var bytes: [UInt8] = []
            for token in tokens {
                if let raw = ByteLevel.unmap(token) {
                    bytes += raw
                } else {
                    bytes += token.utf8
                }
            }
            return [String(decoding: bytes, as: UTF8.self)]
        case .replace(let pattern, let content):
            return tokens.map { String(decoding: replaceAll(pattern, with: content, in: Array($0.utf8)), as: UTF8.self) }
        case .byteFallback:
            return Self.decodeByteTokens(tokens)
        case .fuse:
            return [tokens.joined()]
        case .strip(let content, let start, let stop):
            return tokens.map { token in
                let scalars = Array(token.unicodeScalars)
                var lower = 0
                while lower < min(start, scalars.count), scalars[lower] == content { lower += 1 }
                var upper = scalars.count
                while scalars.count - upper < stop, upper > lower, scalars[upper - 1] == content { upper -= 1 }
                return String(String.UnicodeScalarView(scalars[lower..<upper]))
            }
        case .metaspace(let metaspace):
            let replacement = String(decoding: metaspace.replacement, as: UTF8.self)
            return tokens.enumerated().map { index, token in
                // HF drops every replacement character of the first token, not only a leading one.
                let dropped = index == 0 && metaspace.prependScheme != .never
                return token.replacingScalars(of: replacement, with: dropped ? "" : " ")
            }
        }
    }

    /// Runs of `<0xNN>` tokens become the text their bytes spell, or one U+FFFD per byte
    /// when the run is not valid UTF-8.
    private static func decodeByteTokens(_ tokens: [String]) -> [String] {
        var out: [String] = []
        var pending: [UInt8] = []
        func flush() {
            guard !pending.isEmpty else { return }
            if isValidUTF8(pending) {
                out.append(String(decoding: pending, as: UTF8.self))
            } else {
                out += Array(repeating: "\u{FFFD}", count: pending.count)
            }
            pending.removeAll()
        }
        for token in tokens {
            if let byte = byteToken(token) {
                pending.append(byte)
            } else {
                flush()
                out.append(token)
            }
        }
        flush()
        return out
    }

    private static func byteToken(_ token: String) -> UInt8? {
        let bytes = Array(token.utf8)
        guard bytes.count == 6, bytes.starts(with: Array("<0x".utf8)), bytes[5] == UInt8(ascii: ">") else { return nil }
        return UInt8(String(decoding: bytes[3..<5], as: UTF8.self), radix: 16)
    }
}

func isValidUTF8(_ bytes: [UInt8]) -> Bool {
    var iterator = bytes.makeIterator()
    var parser = Unicode.UTF8.ForwardParser()
    while true {
        switch parser.parseScalar(from: &iterator) {
        case .valid: continue
        case .emptyInput: return true
        case .error: return false
        }
    }
}

extension String {
    /// Scalar-wise replacement (Foundation's `replacingOccurrences` matches whole grapheme
    /// clusters, which would miss a `▁` followed by a combining mark).
    func replacingScalars(of target: String, with replacement: String) -> String {
        String(decoding: replaceAll(.literal(Array(target.utf8)), with: Array(replacement.utf8), in: Array(utf8)),
               as: UTF8.self)
    }
}
