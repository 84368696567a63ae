import Foundation

/// Reads texts to embed: JSONL with one `{"text": ..., "instruction": ...}` object a line, or a
/// `.txt` file with one text a line. `-` reads standard input (JSONL if it starts with `{`).
public enum TextInputs {
    public static func read(path: String, defaultInstruction: String = "") throws -> [EncoderInput] {
        let (lines, isPlainText) = try lines(path: path)
        let inputs: [EncoderInput]
        if isPlainText {
            inputs = lines.map { EncoderInput(String($0), instruction: defaultInstruction) }
        } else {
            inputs = try lines.enumerated().compactMap { number, line in
                if line.allSatisfy(\.isWhitespace) { return nil }
                return try parseJSONLine(line, source: "\(path):\(number + 1)", defaultInstruction: defaultInstruction)
            }
        }
        guard !inputs.isEmpty else { throw UnmaskError.invalidInput(source: path, reason: "no texts: the input is empty") }
        return inputs
    }

    /// The file's lines (line `i` is the file's line `i + 1`; a final newline ends the last one,
    /// "\r\n" counts as one break) and whether it is plain text rather than JSONL.
    public static func lines(path: String) throws -> (lines: [Substring], isPlainText: Bool) {
        let data: Data
        if path == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw UnmaskError.fileNotFound(path: path, what: "input file") }
            guard !isDirectory.boolValue else {
                throw UnmaskError.invalidInput(source: path, reason: "is a directory; give a .txt or .jsonl file")
            }
            do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
                throw UnmaskError.unreadableFile(path: path, error: error)
            }
        }
        guard let content = String(data: data, encoding: .utf8) else {
            // Name the first line that is not UTF-8, so the user can find it.
            let line = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
                .firstIndex { String(data: Data($0), encoding: .utf8) == nil }.map { $0 + 1 }
            throw UnmaskError.invalidInput(source: line.map { "\(path):\($0)" } ?? path, reason: "not UTF-8 text")
        }
        let isPlainText = path == "-" ? !content.drop(while: { $0.isWhitespace }).hasPrefix("{") : path.lowercased().hasSuffix(".txt")
        // Split on the byte, not the Character: "\r\n" is a single Character in Swift.
        var lines = content.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { line in
            Substring(line.last == UInt8(ascii: "\r") ? line.dropLast() : line)
        }
        if lines.last?.isEmpty == true { lines.removeLast() }
        return (lines, isPlainText)
    }

    static func parseJSONLine(_ line: Substring, source: String, defaultInstruction: String) throws -> EncoderInput {
        try input(from: jsonObject(line, source: source), source: source, defaultInstruction: defaultInstruction)
    }

    /// A JSONL line as its object.
    static func jsonObject(_ line: Substring, source: String) throws -> [String: Any] {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: Data(line.utf8), options: [.fragmentsAllowed]) } catch {
            throw UnmaskError.invalidInput(source: source, reason: "invalid JSON (expected an object like {\"text\": \"...\"})")
        }
        guard let dictionary = object as? [String: Any] else {
            throw UnmaskError.invalidInput(source: source, reason: "expected a JSON object like {\"text\": \"...\"}")
        }
        return dictionary
    }

    /// The text and instruction of a JSONL line's object.
    static func input(from dictionary: [String: Any], source: String, defaultInstruction: String) throws -> EncoderInput {
        guard let text = dictionary["text"] as? String else {
            throw UnmaskError.invalidInput(source: source, reason: "field 'text': expected a string")
        }
        var instruction = defaultInstruction
        if let value = dictionary["instruction"], !(value is NSNull) {
            guard let own = value as? String else { throw UnmaskError.invalidInput(source: source, reason: "field 'instruction': expected a string") }
            instruction = own
        }
        return EncoderInput(text, instruction: instruction)
    }
}
