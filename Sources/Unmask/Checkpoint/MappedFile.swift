#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A whole file mapped copy-on-write: reads come from the page cache, and writes (a LoRA merged
/// into an F32 weight) copy only the pages they touch, never the file.
final class MappedFile: @unchecked Sendable {
    let path: String
    let base: UnsafeMutableRawPointer?
    let size: Int

    init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            if errno == ENOENT { throw UnmaskError.fileNotFound(path: path, what: "weights file") }
            throw UnmaskError.unreadableFile(path: path, reason: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw UnmaskError.unreadableFile(path: path, reason: String(cString: strerror(errno))) }
        size = Int(info.st_size)
        if size == 0 { base = nil; return }
        let mapped = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0)
        guard let mapped, mapped != MAP_FAILED else {
            throw UnmaskError.unreadableFile(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        base = mapped
    }

    deinit { if let base { munmap(base, size) } }

    var name: String { (path as NSString).lastPathComponent }
}
