// swift-tools-version:6.0
import PackageDescription

// Kernels run hot loops over raw pointers across threads; Swift 5 mode keeps them free of
// Sendable ceremony. Everything above the kernels is checked in Swift 6 mode.
var kernelFlags = ["-Ounchecked"]
#if arch(x86_64)
// AVX2 + FMA (every x86-64 server CPU since 2013): the SIMD exp/softmax/SiLU loops run twice as
// wide as with the SSE2 baseline.
kernelFlags += ["-target-cpu", "haswell"]
#endif
let kernelSettings: [SwiftSetting] = [.swiftLanguageMode(.v5), .unsafeFlags(kernelFlags)]

let package = Package(
    name: "Unmask",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "unmask", targets: ["unmask"]),
        .library(name: "Unmask", targets: ["Unmask"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .target(
            name: "UnmaskKernels",
            dependencies: [.target(name: "COpenBLAS", condition: .when(platforms: [.linux]))],
            swiftSettings: kernelSettings,
            linkerSettings: [.linkedFramework("Accelerate", .when(platforms: [.macOS, .iOS]))]
        ),
        .target(name: "UnmaskTokenizers"),
        .target(name: "Unmask", dependencies: ["UnmaskKernels", "UnmaskTokenizers"]),
        .executableTarget(
            name: "unmask",
            dependencies: ["Unmask", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(name: "unmask-bench", dependencies: ["Unmask", "UnmaskKernels", "UnmaskTokenizers"]),
        .target(name: "UnmaskTestSupport", path: "Tests/UnmaskTestSupport"),
        .testTarget(name: "UnmaskKernelsTests", dependencies: ["UnmaskKernels", "UnmaskTestSupport"]),
        .testTarget(name: "UnmaskTokenizersTests", dependencies: ["UnmaskTokenizers", "UnmaskTestSupport"]),
        .testTarget(name: "UnmaskTests", dependencies: ["Unmask", "UnmaskTestSupport"]),
        .testTarget(name: "UnmaskCLITests", dependencies: ["unmask", "UnmaskTestSupport"]),
    ]
)
