import Testing
import UnmaskKernels

/// Which OpenBLAS kernels a process re-executes itself with, as a function of what OpenBLAS chose
/// and the CPU's flags.
@Suite struct BLASCoreTypeTests {
    static let avx512: Set<String> = ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni"]
    static let avx2: Set<String> = ["sse4_2", "avx", "avx2", "fma"]

    @Test func onlyGenericFallbacksAreOverridden() {
        // OpenBLAS 0.3.21 on a Sapphire Rapids-class Xeon: Prescott; the CPU runs SkylakeX kernels.
        #expect(BLASCoreType.preferred(current: "Prescott", cpuFlags: Self.avx512) == "SkylakeX")
        #expect(BLASCoreType.preferred(current: "Prescott", cpuFlags: Self.avx2) == "Haswell")
        #expect(BLASCoreType.preferred(current: "Sandybridge", cpuFlags: Self.avx2) == "Haswell")
        // A choice OpenBLAS made for the CPU stands (Zen 3, Cooperlake, Haswell).
        for core in ["Zen", "Cooperlake", "SkylakeX", "Haswell"] {
            #expect(BLASCoreType.preferred(current: core, cpuFlags: Self.avx512) == nil, "\(core)")
        }
        // A CPU without AVX2 has nothing better than the fallback.
        #expect(BLASCoreType.preferred(current: "Prescott", cpuFlags: ["sse4_2", "avx"]) == nil)
        // AVX-512F alone (Knights Landing) is not SkylakeX.
        #expect(BLASCoreType.preferred(current: "Prescott", cpuFlags: Self.avx2.union(["avx512f"])) == "Haswell")
    }

    @Test func theFlagsAreThisMachines() {
        // On Linux /proc/cpuinfo names at least the x86-64 baseline or an ARM feature; elsewhere nothing.
        let flags = BLASCoreType.cpuFlags
        #if os(Linux) && arch(x86_64)
        #expect(flags.contains("sse2"))
        #endif
        _ = flags
    }
}
