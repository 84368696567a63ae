import Foundation

/// A minimal JSON writer straight into bytes: responses are mostly long float arrays, which it
/// writes in Swift's shortest round-trip form without an intermediate object tree.
struct JSONWriter {
    var bytes: [UInt8] = []

    init(reserving capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    mutating func raw(_ text: String) { bytes.append(contentsOf: text.utf8) }

    mutating func string(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        for unit in text.utf8 {
            switch unit {
            case UInt8(ascii: "\""): raw("\\\"")
            case UInt8(ascii: "\\"): raw("\\\\")
            case 0x0A: raw("\\n")
            case 0x0D: raw("\\r")
            case 0x09: raw("\\t")
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                raw("\\u00")
                bytes.append(hex[Int(unit >> 4)])
                bytes.append(hex[Int(unit & 0xF)])
            default: bytes.append(unit)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func int(_ value: Int) { raw(String(value)) }
    mutating func bool(_ value: Bool) { raw(value ? "true" : "false") }
    mutating func null() { raw("null") }

    /// Non-finite values have no JSON spelling; they are written as null.
    mutating func float(_ value: Float) {
        if value.isFinite { raw(value.description) } else { null() }
    }

    mutating func floats(_ values: [Float]) {
        bytes.append(UInt8(ascii: "["))
        for (i, value) in values.enumerated() {
            if i > 0 { bytes.append(UInt8(ascii: ",")) }
            float(value)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    mutating func array<S: Sequence>(_ items: S, _ element: (inout JSONWriter, S.Element) -> Void) {
        bytes.append(UInt8(ascii: "["))
        var first = true
        for item in items {
            if !first { bytes.append(UInt8(ascii: ",")) }
            first = false
            element(&self, item)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    mutating func object(_ body: (inout ObjectWriter) -> Void) {
        bytes.append(UInt8(ascii: "{"))
        var writer = ObjectWriter(json: self)
        bytes = []
        body(&writer)
        self = writer.json
        bytes.append(UInt8(ascii: "}"))
    }

    struct ObjectWriter {
        var json: JSONWriter
        var first = true
        mutating func field(_ name: String, _ value: (inout JSONWriter) -> Void) {
            if !first { json.bytes.append(UInt8(ascii: ",")) }
            first = false
            json.string(name)
            json.bytes.append(UInt8(ascii: ":"))
            value(&json)
        }
    }
}

enum JSONLimits {
    /// The deepest `[`/`{` nesting in `bytes` (strings skipped), stopping early past `limit`.
    /// Run before parsing so a body of a million `[` costs a scan, not a recursion.
    static func nestingExceeds(_ limit: Int, in bytes: UnsafeRawBufferPointer) -> Bool {
        var depth = 0
        var inString = false
        var escaped = false
        for byte in bytes {
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                if depth > limit { return true }
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
            default: break
            }
        }
        return false
    }
}

// MARK: - Request bodies

/// One input: text, or token ids (without special tokens).
enum InputItem: Decodable, Sendable {
    case text(String)
    case ids([Int])

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) { self = .text(text); return }
        if let ids = try? container.decode([Int].self) { self = .ids(ids); return }
        throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected a string or an array of token ids")
    }

    var characterCount: Int {
        switch self {
        case .text(let text): return text.count
        case .ids(let ids): return ids.count
        }
    }
}

/// `inputs`/`input`: a string, token ids, or an array of either (TEI's untagged `Input`).
enum Inputs: Decodable, Sendable {
    case single(InputItem)
    case batch([InputItem])

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) { self = .single(.text(text)); return }
        if let ids = try? container.decode([Int].self) { self = .single(.ids(ids)); return }
        if let items = try? container.decode([InputItem].self) { self = .batch(items); return }
        throw DecodingError.dataCorruptedError(in: container, debugDescription: "data did not match any variant of untagged enum Input")
    }
}

enum TruncationDirection: String, Decodable, Sendable {
    case left, right
    init(from decoder: Decoder) throws {
        let raw = try decoder.singleValueContainer().decode(String.self)
        switch raw {
        case "left", "Left": self = .left
        case "right", "Right": self = .right
        default:
            throw DecodingError.dataCorruptedError(in: try decoder.singleValueContainer(), debugDescription: "unknown variant `\(raw)`, expected `Left` or `Right`")
        }
    }
}

/// Unmask's `/search`: queries embedded like `/embed` does, then searched in the loaded index.
struct SearchRequest: Decodable, Sendable {
    var inputs: Inputs
    var k: Int?
    var truncate: Bool?
    var truncation_direction: TruncationDirection?
    var prompt_name: String?
    var instruction: String?
    var rescore_multiplier: Int?
}

struct EmbedRequest: Decodable, Sendable {
    var inputs: Inputs
    var truncate: Bool?
    var truncation_direction: TruncationDirection?
    var prompt_name: String?
    /// Unmask's addition: an LLM2Vec instruction for every input of the request.
    var instruction: String?
    var normalize: Bool?
    var dimensions: Int?
}

enum EncodingFormat: String, Decodable, Sendable { case float, base64 }

struct OpenAIRequest: Decodable, Sendable {
    var input: Inputs
    var model: String?
    var user: String?
    var encoding_format: EncodingFormat?
    var dimensions: Int?
}

struct TokenizeRequest: Decodable, Sendable {
    enum TokenizeInputs: Decodable, Sendable {
        case single(String), batch([String])
        init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let text = try? container.decode(String.self) { self = .single(text); return }
            if let texts = try? container.decode([String].self) { self = .batch(texts); return }
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "data did not match any variant of untagged enum TokenizeInput")
        }
    }
    var inputs: TokenizeInputs
    var add_special_tokens: Bool?
    var prompt_name: String?
}

struct DecodeRequest: Decodable, Sendable {
    enum Ids: Decodable, Sendable {
        case single([Int]), batch([[Int]])
        init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let ids = try? container.decode([Int].self) { self = .single(ids); return }
            if let batch = try? container.decode([[Int]].self) { self = .batch(batch); return }
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "data did not match any variant of untagged enum InputIds")
        }
    }
    var ids: Ids
    var skip_special_tokens: Bool?
}

struct SimilarityRequest: Decodable, Sendable {
    struct Input: Decodable, Sendable {
        var source_sentence: String
        var sentences: [String]
    }
    struct Parameters: Decodable, Sendable {
        var truncate: Bool?
        var truncation_direction: TruncationDirection?
        var prompt_name: String?
    }
    var inputs: Input
    var parameters: Parameters?
}

extension DecodingError {
    /// A one-line account of what did not decode and where.
    var summary: String {
        func path(_ context: Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            return keys.isEmpty ? "" : " at `\(keys.joined(separator: "."))`"
        }
        switch self {
        case .keyNotFound(let key, let context): return "missing field `\(key.stringValue)`\(path(context))"
        case .typeMismatch(_, let context): return "\(context.debugDescription)\(path(context))"
        case .valueNotFound(_, let context): return "\(context.debugDescription)\(path(context))"
        case .dataCorrupted(let context): return "\(context.debugDescription)\(path(context))"
        @unknown default: return "\(self)"
        }
    }
}
