import Foundation

/// Float scratch buffers lent to one call at a time and kept for the next, so products that need
/// a staging area (a weight panel converted from its stored format) do not allocate per call.
/// Concurrent callers get different buffers.
public final class ScratchPool: @unchecked Sendable {
    public static let shared = ScratchPool()

    private let lock = NSLock()
    private var free: [FloatBuffer] = []

    public init() {}

    /// Runs `body` with a buffer of at least `count` floats (contents undefined).
    public func with<R>(count: Int, _ body: (UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
        let buffer = take(count)
        defer { give(buffer) }
        return try body(buffer.pointer)
    }

    private func take(_ count: Int) -> FloatBuffer {
        lock.lock()
        defer { lock.unlock() }
        if let i = free.firstIndex(where: { $0.count >= count }) { return free.remove(at: i) }
        // A too-small buffer is dropped rather than kept beside its replacement.
        if !free.isEmpty { free.removeFirst() }
        return FloatBuffer(count: count)
    }

    private func give(_ buffer: FloatBuffer) {
        lock.lock()
        free.append(buffer)
        lock.unlock()
    }
}
