import Crypto
import Foundation

/// SHA-256 hex digests (swift-crypto) for data checksums and embedding-cache keys.
public enum Checksum {
    public static func hex(_ data: Data) -> String { hex(SHA256.hash(data: data)) }

    public static func hex(_ string: String) -> String { hex(Data(string.utf8)) }

    /// A file's digest, read in 1 MiB chunks so large files never sit in memory whole.
    public static func hex(fileAt path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw UnmaskError.fileNotFound(path: path, what: "file to checksum")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
        return hex(hasher.finalize())
    }

    private static func hex(_ digest: SHA256.Digest) -> String { digest.map { String(format: "%02x", $0) }.joined() }
}
