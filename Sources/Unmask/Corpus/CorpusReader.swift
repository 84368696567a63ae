import Crypto
import Foundation

/// One input of a corpus: the text to embed and what its output line carries along.
public struct CorpusRecord: Sendable {
    /// Position among the corpus's records (0-based; blank JSONL lines are not records).
    public let index: Int
    /// The line of the input file it came from (1-based).
    public let line: Int
    public let input: EncoderInput
    /// The record's id as JSON text: a JSONL line's `id`, else its line number.
    public let id: String
    /// The `--keep` fields as JSON text, in the order asked (`null` where the line has none).
    public let kept: [String]
}

/// Streams the records of a `.txt` file (one text a line, id = line number) or a JSONL file
/// (`{"text", "instruction"?, "id"?, ...}` a line; blank lines skipped). `-` is standard input.
public final class CorpusReader {
    public let path: String
    public let isPlainText: Bool
    private let reader: LineReader
    private let keep: [String]
    private let defaultInstruction: String
    private var nextIndex = 0

    /// `observe` sees the file's bytes block by block as they are read.
    public init(path: String, keep: [String] = [], defaultInstruction: String = "", observe: ((Data) -> Void)? = nil) throws {
        if path != "-" {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw UnmaskError.fileNotFound(path: path, what: "input file") }
            guard !isDirectory.boolValue else { throw UnmaskError.invalidInput(source: path, reason: "is a directory; give a .txt or .jsonl file") }
        }
        self.path = path
        reader = try LineReader(path: path, observe: observe)
        self.keep = keep
        self.defaultInstruction = defaultInstruction
        if path == "-" {
            let start = try reader.peek(4096).drop { [9, 10, 13, 32].contains($0) }
            isPlainText = start.first != UInt8(ascii: "{")
        } else {
            isPlainText = path.lowercased().hasSuffix(".txt")
        }
    }

    /// The next record, or nil at the end of the input.
    public func next() throws -> CorpusRecord? {
        while let bytes = try reader.next() {
            let line = reader.lineNumber
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw UnmaskError.invalidInput(source: "\(path):\(line)", reason: "not UTF-8 text")
            }
            let record: CorpusRecord
            if isPlainText {
                record = CorpusRecord(index: nextIndex, line: line, input: EncoderInput(text, instruction: defaultInstruction),
                                      id: String(line), kept: keep.map { _ in "null" })
            } else {
                if text.allSatisfy(\.isWhitespace) { continue }
                record = try parse(text, line: line)
            }
            nextIndex += 1
            return record
        }
        return nil
    }

    private func parse(_ text: String, line: Int) throws -> CorpusRecord {
        let source = "\(path):\(line)"
        let object = try TextInputs.jsonObject(Substring(text), source: source)
        let input = try TextInputs.input(from: object, source: source, defaultInstruction: defaultInstruction)
        func json(_ value: Any?) throws -> String {
            guard let value, !(value is NSNull) else { return "null" }
            return try JSONText.of(value)
        }
        let id = object["id"] == nil ? String(line) : try json(object["id"])
        return CorpusRecord(index: nextIndex, line: line, input: input, id: id, kept: try keep.map { try json(object[$0]) })
    }
}

/// JSON values as the text records carry them: compact, keys sorted, slashes as they are.
public enum JSONText {
    public static func of(_ value: Any) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .withoutEscapingSlashes, .sortedKeys]), as: UTF8.self)
    }

    /// A string as a JSON string literal.
    public static func string(_ text: String) -> String {
        // A String always serializes.
        try! of(text)
    }
}

/// What one pass over an input file tells before any model loads: how many records it holds,
/// its SHA-256 (a resumed run must read the same input), and that every line parses.
public struct CorpusScan: Sendable, Equatable, Codable {
    public let records: Int
    public let sha256: String
    public let isPlainText: Bool

    public init(path: String) throws {
        guard path != "-" else { throw UnmaskError.invalidInput(source: path, reason: "standard input cannot be scanned twice; give a file") }
        var hasher = SHA256()
        let reader = try CorpusReader(path: path) { hasher.update(data: $0) }
        var count = 0
        while try reader.next() != nil { count += 1 }
        guard count > 0 else { throw UnmaskError.invalidInput(source: path, reason: "no texts: the input is empty") }
        records = count
        sha256 = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        isPlainText = reader.isPlainText
    }
}
