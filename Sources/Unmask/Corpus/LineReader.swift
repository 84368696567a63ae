import Foundation

/// A file's lines, read a block at a time so that memory does not grow with the file: line `n`
/// (1-based) without its "\n" or "\r\n". A final newline ends the last line.
public final class LineReader {
    private let handle: FileHandle
    private let closes: Bool
    private var buffer: [UInt8] = []
    private var position = 0
    private var atEnd = false
    private let blockSize: Int
    private let observe: ((Data) -> Void)?
    /// The number of the line `next()` returned last.
    public private(set) var lineNumber = 0

    /// `observe` sees every block as it is read (to hash the file in the same pass).
    public init(path: String, blockSize: Int = 1 << 20, observe: ((Data) -> Void)? = nil) throws {
        if path == "-" {
            handle = FileHandle.standardInput
            closes = false
        } else {
            guard let handle = FileHandle(forReadingAtPath: path) else {
                throw UnmaskError.unreadableFile(path: path, reason: "cannot open it for reading")
            }
            self.handle = handle
            closes = true
        }
        self.blockSize = blockSize
        self.observe = observe
    }

    deinit { if closes { try? handle.close() } }

    /// The next line's bytes, or nil at the end of the file.
    public func next() throws -> ArraySlice<UInt8>? {
        while true {
            if let newline = buffer[position...].firstIndex(of: UInt8(ascii: "\n")) {
                var line = buffer[position..<newline]
                position = newline + 1
                if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
                lineNumber += 1
                return line
            }
            if atEnd {
                guard position < buffer.count else { return nil }
                var line = buffer[position...]
                position = buffer.count
                if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
                lineNumber += 1
                return line
            }
            // Keep the unfinished line, read the next block after it.
            buffer.removeSubrange(0..<position)
            position = 0
            try readBlock()
        }
    }

    private func readBlock() throws {
        let block = try handle.read(upToCount: blockSize) ?? Data()
        if block.isEmpty { atEnd = true; return }
        observe?(block)
        buffer.append(contentsOf: block)
    }

    /// The first bytes of the file without consuming them (to tell JSONL from text on stdin).
    public func peek(_ count: Int) throws -> ArraySlice<UInt8> {
        while buffer.count - position < count, !atEnd { try readBlock() }
        return buffer[position..<min(buffer.count, position + count)]
    }
}
