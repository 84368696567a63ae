import Foundation
import UnmaskTokenizers

/// Locates the checked-in fixtures relative to this source file, so tests run from any
/// working directory.
enum Fixtures {
    static let root: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.lastPathComponent != "Tests" && url.pathComponents.count > 1 {
            url.deleteLastPathComponent()
        }
        return url.appendingPathComponent("Fixtures/tokenizers")
    }()

    static let families = ["llama3", "qwen2", "smollm", "llama2", "mistral", "gemma3", "metaspace_unk", "added_tokens", "misc"]

    static func directory(_ name: String) -> URL {
        root.appendingPathComponent(name)
    }

    static func tokenizer(_ name: String) throws -> Tokenizer {
        try Tokenizer.load(directory: directory(name))
    }

    static func expected(_ name: String) throws -> Expected {
        let data = try Data(contentsOf: directory(name).appendingPathComponent("expected.json"))
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(Expected.self, from: data)
    }
}

/// What scripts/make_tokenizer_fixtures.py recorded from HF `tokenizers`/`transformers`.
struct Expected: Decodable {
    struct Case: Decodable {
        let text: String
        let ids: [Int]
        let idsNoSpecial: [Int]
        let tokens: [String]
        let decoded: String
        let decodedSkipSpecial: String
    }

    struct DecodeCase: Decodable {
        let ids: [Int]
        let decoded: String
        let decodedSkipSpecial: String
    }

    let name: String
    let kind: String
    let vocabSize: Int
    let specialTokenIds: [Int]
    let addsBos: Bool
    let addsEos: Bool
    let bosToken: String?
    let bosTokenId: Int?
    let eosToken: String?
    let eosTokenId: Int?
    let padToken: String?
    let padTokenId: Int?
    let unkToken: String?
    let unkTokenId: Int?
    let cases: [Case]
    let decodeCases: [DecodeCase]
}

/// Small deterministic generator (SplitMix64) so randomized tests are reproducible.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Encodes samples from 8 tasks at once and fails on any id that differs from the expected: a
/// shared tokenizer must be safe to use concurrently (its word cache is shared).
func encodeConcurrently(_ tokenizer: Tokenizer, _ samples: [(text: String, ids: [Int])]) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
        for worker in 0..<8 {
            group.addTask {
                for round in 0..<20 {
                    let sample = samples[(worker * 7 + round * 13) % samples.count]
                    guard tokenizer.encode(sample.text) == sample.ids else {
                        throw TokenizerError("mismatch for \(sample.text.debugDescription)")
                    }
                }
            }
        }
        try await group.waitForAll()
    }
}
