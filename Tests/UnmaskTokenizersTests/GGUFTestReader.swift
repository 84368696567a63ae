import Foundation
import UnmaskTokenizers

/// A minimal GGUF metadata reader for the tokenizer tests (the real reader lives in the
/// `Unmask` module, which these tests cannot import). It reads the header and the key/value
/// section of a version 2 or 3 file and stops before the tensor infos.
enum GGUFTestReader {
    enum Value {
        case int(Int)
        case float(Double)
        case bool(Bool)
        case string(String)
        case strings([String])
        case ints([Int])
        case floats([Float])
        /// Anything the tokenizer keys never use (nested arrays, arrays of bools…).
        case other
    }

    struct ReadError: Error, CustomStringConvertible {
        let description: String
    }

    static func metadata(of url: URL) throws -> [String: Value] {
        let data = try Data(contentsOf: url, options: .alwaysMapped)
        return try data.withUnsafeBytes { raw in
            var cursor = Cursor(bytes: raw, file: url.lastPathComponent)
            guard try cursor.bytes(4).elementsEqual(Array("GGUF".utf8)) else {
                throw ReadError(description: "\(url.lastPathComponent): not a GGUF file")
            }
            let version = try cursor.scalar(UInt32.self)
            guard version == 2 || version == 3 else {
                throw ReadError(description: "\(url.lastPathComponent): GGUF version \(version) is not supported")
            }
            _ = try cursor.scalar(UInt64.self)  // tensor count
            let count = try cursor.scalar(UInt64.self)
            var values: [String: Value] = [:]
            for _ in 0..<count {
                let key = try cursor.string()
                values[key] = try cursor.value(type: try cursor.scalar(UInt32.self))
            }
            return values
        }
    }

    /// The `tokenizer.ggml.*` keys as `GGUFTokenizerData`.
    static func tokenizerData(of url: URL) throws -> GGUFTokenizerData {
        let values = try metadata(of: url)
        typealias Key = GGUFTokenizerData.Key
        func string(_ key: String) -> String? {
            if case .string(let value)? = values[key] { return value }
            return nil
        }
        func int(_ key: String) -> Int? {
            if case .int(let value)? = values[key] { return value }
            return nil
        }
        func bool(_ key: String) -> Bool? {
            if case .bool(let value)? = values[key] { return value }
            return nil
        }
        guard let model = string(Key.model) else {
            throw ReadError(description: "\(url.lastPathComponent): no \(Key.model)")
        }
        guard case .strings(let tokens)? = values[Key.tokens] else {
            throw ReadError(description: "\(url.lastPathComponent): no \(Key.tokens)")
        }
        var types: [Int] = []
        if case .ints(let value)? = values[Key.tokenTypes] { types = value }
        var scores: [Float]?
        if case .floats(let value)? = values[Key.scores] { scores = value }
        var merges: [String]?
        if case .strings(let value)? = values[Key.merges] { merges = value }
        return GGUFTokenizerData(
            model: model, pre: string(Key.pre), tokens: tokens, tokenTypes: types, scores: scores, merges: merges,
            bosId: int(Key.bosId), eosId: int(Key.eosId), unkId: int(Key.unkId), padId: int(Key.padId),
            addBOS: bool(Key.addBOS), addEOS: bool(Key.addEOS), addSpacePrefix: bool(Key.addSpacePrefix),
            modelName: string(Key.modelName))
    }

    private struct Cursor {
        let buffer: UnsafeRawBufferPointer
        let file: String
        var offset = 0

        init(bytes: UnsafeRawBufferPointer, file: String) {
            buffer = bytes
            self.file = file
        }

        mutating func bytes(_ count: Int) throws -> UnsafeRawBufferPointer {
            guard count >= 0, count <= buffer.count - offset else {
                throw ReadError(description: "\(file): truncated at byte \(offset)")
            }
            defer { offset += count }
            return UnsafeRawBufferPointer(rebasing: buffer[offset..<offset + count])
        }

        mutating func scalar<T: FixedWidthInteger>(_: T.Type) throws -> T {
            T(littleEndian: try bytes(MemoryLayout<T>.size).loadUnaligned(as: T.self))
        }

        mutating func string() throws -> String {
            let length = try scalar(UInt64.self)
            guard length <= UInt64(buffer.count - offset) else { throw ReadError(description: "\(file): string past the end") }
            return String(decoding: try bytes(Int(length)), as: UTF8.self)
        }

        mutating func value(type: UInt32) throws -> Value {
            switch type {
            case 0: return .int(Int(try scalar(UInt8.self)))
            case 1: return .int(Int(try scalar(Int8.self)))
            case 2: return .int(Int(try scalar(UInt16.self)))
            case 3: return .int(Int(try scalar(Int16.self)))
            case 4: return .int(Int(try scalar(UInt32.self)))
            case 5: return .int(Int(try scalar(Int32.self)))
            case 6: return .float(Double(Float(bitPattern: try scalar(UInt32.self))))
            case 7: return .bool(try scalar(UInt8.self) != 0)
            case 8: return .string(try string())
            case 9: return try array()
            case 10: return .int(Int(truncatingIfNeeded: try scalar(UInt64.self)))
            case 11: return .int(Int(try scalar(Int64.self)))
            case 12: return .float(Double(bitPattern: try scalar(UInt64.self)))
            default: throw ReadError(description: "\(file): unknown value type \(type) at byte \(offset)")
            }
        }

        mutating func array() throws -> Value {
            let type = try scalar(UInt32.self)
            let count = try scalar(UInt64.self)
            guard count <= UInt64(buffer.count - offset) else { throw ReadError(description: "\(file): array past the end") }
            switch type {
            case 8:
                var strings: [String] = []
                strings.reserveCapacity(Int(count))
                for _ in 0..<count { strings.append(try string()) }
                return .strings(strings)
            case 6:
                return .floats(try (0..<count).map { _ in Float(bitPattern: try scalar(UInt32.self)) })
            case 0...5, 10, 11:
                var ints: [Int] = []
                ints.reserveCapacity(Int(count))
                for _ in 0..<count {
                    guard case .int(let value) = try value(type: type) else { continue }
                    ints.append(value)
                }
                return .ints(ints)
            default:
                for _ in 0..<count { _ = try value(type: type) }
                return .other
            }
        }
    }
}
