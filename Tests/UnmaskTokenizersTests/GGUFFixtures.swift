import Foundation

/// Paths shared by the GGUF tokenizer tests, found from this file's location.
enum GGUFFixtures {
    /// The package root (the folder holding `Package.swift`).
    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `Tests/Fixtures/gguf-vocab`.
    static let folder = repositoryRoot.appendingPathComponent("Tests/Fixtures/gguf-vocab")
}
