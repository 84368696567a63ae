import Foundation
#if !canImport(Accelerate)
import COpenBLAS
#endif

/// OpenBLAS picks its kernels once, when the library loads, from its own CPU table. Older
/// releases (0.3.21, Debian 12's) do not know newer cores and fall back to `Prescott`, the
/// generic SSE3 kernels: sgemm then runs at a quarter of the speed it reaches with the kernels the
/// CPU supports. Only `OPENBLAS_CORETYPE` in the environment at load time changes the choice, so
/// a process that finds itself on the fallback sets it and executes itself again.
public enum BLASCoreType {
    /// The kernel family OpenBLAS should use on a CPU with `flags` (from /proc/cpuinfo) when it
    /// chose `current`, or nil when its choice stands: only its generic fallbacks are overridden.
    public static func preferred(current: String, cpuFlags flags: Set<String>) -> String? {
        let fallbacks: Set<String> = ["prescott", "core2", "katmai", "coppermine", "northwood", "banias", "atom", "penryn", "dunnington", "nehalem", "sandybridge"]
        guard fallbacks.contains(current.lowercased()) else { return nil }
        if flags.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq"]) { return "SkylakeX" }
        if flags.isSuperset(of: ["avx2", "fma"]) { return "Haswell" }
        return nil
    }

    /// The CPU's feature flags (Linux: the first `flags` line of /proc/cpuinfo; empty elsewhere).
    public static var cpuFlags: Set<String> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }

    /// The kernel family OpenBLAS chose in this process.
    public static var current: String? {
        #if canImport(Accelerate)
        return nil
        #else
        return openblas_get_corename().map { String(cString: $0) }
        #endif
    }

    /// When OpenBLAS fell back to generic kernels on a CPU that has better ones and the user has
    /// not chosen (`OPENBLAS_CORETYPE` unset), sets the better family and re-executes the process
    /// with the same arguments; returns only when nothing is to be done (or exec failed).
    public static func reexecIfFallback() {
        #if os(Linux)
        let environment = ProcessInfo.processInfo.environment
        guard environment["OPENBLAS_CORETYPE"] == nil, environment["UNMASK_BLAS_REEXEC"] == nil,
              let current, let better = preferred(current: current, cpuFlags: cpuFlags) else { return }
        setenv("OPENBLAS_CORETYPE", better, 1)
        setenv("UNMASK_BLAS_REEXEC", current, 1)  // once: never loop
        let arguments = CommandLine.arguments.map { strdup($0) } + [nil]
        execv("/proc/self/exe", arguments)
        // exec failed: carry on with the fallback kernels.
        unsetenv("OPENBLAS_CORETYPE")
        #endif
    }
}
