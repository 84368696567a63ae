import Foundation
import UnmaskCKernels

/// Runs `body` with the fused kernels capped at `level` (`unmask_set_kernel_level`, which is
/// process-wide). Tests run in parallel: one forcing a level while another forces its own would
/// measure the other's level, so every test that forces one goes through this lock.
func withKernelLevel<T>(_ level: Int32, _ body: () throws -> T) rethrows -> T {
    kernelLevelLock.lock()
    unmask_set_kernel_level(level)
    defer {
        unmask_set_kernel_level(-1)
        kernelLevelLock.unlock()
    }
    return try body()
}

private let kernelLevelLock = NSLock()
