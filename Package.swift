// swift-tools-version:6.0
import PackageDescription

// Kernels run hot loops over raw pointers across threads; Swift 5 mode keeps them free of
// Sendable ceremony. Everything above the kernels is checked in Swift 6 mode. No unsafe flags:
// a package that sets them cannot be depended on by version. Instructions beyond the baseline
// (AVX2, AVX-512) live in UnmaskCKernels, in functions with their own target attributes,
// chosen at run time.
let kernelSettings: [SwiftSetting] = [.swiftLanguageMode(.v5)]

let package = Package(
    name: "Unmask",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "unmask", targets: ["unmask"]),
        .library(name: "Unmask", targets: ["Unmask"]),
        .library(name: "UnmaskServer", targets: ["UnmaskServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .target(
            name: "UnmaskKernels",
            dependencies: ["UnmaskCKernels", .target(name: "COpenBLAS", condition: .when(platforms: [.linux]))],
            swiftSettings: kernelSettings,
            linkerSettings: [.linkedFramework("Accelerate", .when(platforms: [.macOS, .iOS]))]
        ),
        .target(name: "UnmaskCKernels"),
        .target(name: "UnmaskTokenizers"),
        .target(name: "Unmask", dependencies: ["UnmaskKernels", "UnmaskCKernels", "UnmaskTokenizers", .product(name: "Crypto", package: "swift-crypto"),
                                       .product(name: "HeapModule", package: "swift-collections")],
                exclude: ["Evaluation/README.md", "TrainingData/README.md"]),
        .target(
            name: "UnmaskServer",
            dependencies: [
                "Unmask", "UnmaskTokenizers",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "unmask",
            dependencies: ["Unmask", "UnmaskKernels", "UnmaskServer", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(name: "unmask-bench", dependencies: ["Unmask", "UnmaskKernels", "UnmaskCKernels", "UnmaskTokenizers"]),
        .target(name: "UnmaskTestSupport", dependencies: ["UnmaskKernels"], path: "Tests/UnmaskTestSupport"),
        .testTarget(name: "UnmaskKernelsTests", dependencies: ["UnmaskKernels", "UnmaskTestSupport"]),
        .testTarget(name: "UnmaskTokenizersTests", dependencies: ["UnmaskTokenizers", "UnmaskTestSupport"]),
        .testTarget(name: "UnmaskTests", dependencies: ["Unmask", "UnmaskCKernels", "UnmaskTestSupport"]),
        .testTarget(name: "UnmaskCLITests", dependencies: ["unmask", "UnmaskTestSupport"]),
        .testTarget(name: "UnmaskServerTests", dependencies: ["UnmaskServer", "Unmask", "unmask", "UnmaskTestSupport"]),
    ]
)
