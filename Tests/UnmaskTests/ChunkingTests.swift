import Foundation
import Testing
@testable import Unmask
import UnmaskTestSupport

/// `--long chunk`: an over-long input as overlapping windows whose vectors are averaged by tokens.
@Suite struct ChunkingTests {
    static let longText = (1...60).map { "word\($0 % 13) and" }.joined(separator: " ")

    static func encoder(_ change: (inout EncoderOptions) -> Void = { _ in }) throws -> Encoder {
        try Encoder(modelPath: Fixtures.path("models", "smollm-f32")) {
            $0.maxLength = 24
            $0.longInputs = .chunk
            $0.chunkOverlap = 4
            change(&$0)
        }
    }

    @Test func windowsFitTheMaximumLengthAndCoverTheTextWithTheirOverlap() throws {
        let encoder = try Self.encoder()
        let textIds = encoder.tokenizer.encode(Self.longText, addSpecialTokens: false).map(Int32.init)
        let chunks = try #require(try encoder.prepareChunks(EncoderInput(Self.longText)))
        #expect(chunks.count > 3)
        #expect(chunks.allSatisfy { $0.row.ids.count <= 24 })
        let bos = encoder.tokenizer.addsBOS ? 1 : 0
        var stitched: [Int32] = []
        for (i, chunk) in chunks.enumerated() {
            let window = Array(chunk.row.ids.dropFirst(bos).prefix(chunk.weight))
            #expect(chunk.row.pooledCount == chunk.weight)
            stitched += i == 0 ? window : Array(window.dropFirst(4))
        }
        #expect(stitched == textIds)
        // With an instruction, every window carries it and pools only its text.
        let instructed = try #require(try encoder.prepareChunks(EncoderInput(Self.longText, instruction: "Represent the text")))
        let instruction = encoder.tokenizer.encode("Represent the text ", addSpecialTokens: false).map(Int32.init)
        #expect(instructed.allSatisfy { Array($0.row.ids.dropFirst(bos).prefix(instruction.count)) == instruction })
        #expect(instructed.allSatisfy { $0.row.pooledCount == $0.weight && $0.row.ids.count <= 24 })
        // A text that fits is not chunked.
        #expect(try encoder.prepareChunks(EncoderInput("short text")) == nil)
    }

    @Test func theVectorIsTheTokenWeightedMeanOfTheWindows() throws {
        let encoder = try Self.encoder()
        let chunks = try #require(try encoder.prepareChunks(EncoderInput(Self.longText)))
        let windows = chunks.map { encoder.embed([$0.row])[0] }
        let total = Float(chunks.reduce(0) { $0 + $1.weight })
        var expected = [Float](repeating: 0, count: encoder.dimension)
        for (vector, chunk) in zip(windows, chunks) { for d in expected.indices { expected[d] += Float(chunk.weight) * vector[d] / total } }
        let got = try encoder.encode([EncoderInput("short"), EncoderInput(Self.longText), EncoderInput("another short one")])
        #expect(Compare.maxAbs(got[1], expected) <= 1e-5)
        // Inputs that fit are embedded as without chunking (batched with other rows: padding moves
        // the last bits).
        let truncating = try Encoder(sharing: encoder) { $0.longInputs = .truncate }
        let plain = try truncating.encode([EncoderInput("short"), EncoderInput("another short one")])
        #expect(Compare.maxAbs(got[0], plain[0]) <= 1e-5 && Compare.maxAbs(got[2], plain[1]) <= 1e-5)
        // Different from truncating the long one, and in the cache's identity.
        #expect(Compare.cosine(got[1], try truncating.encode([EncoderInput(Self.longText)])[0]) < 0.99999)
        #expect(EmbeddingCache.identity(of: encoder) != EmbeddingCache.identity(of: truncating))
    }

    @Test func aSentenceTransformersPromptStartsEveryWindow() throws {
        let st = try TaskPromptsTests.promptedEncoder()
        let encoder = try Encoder(sharing: st) { $0.maxLength = 20; $0.longInputs = .chunk }
        let chunks = try #require(try encoder.prepareChunks(EncoderInput(Self.longText)))
        let prompt = encoder.tokenizer.encode(encoder.defaultPrompt, addSpecialTokens: false).map(Int32.init)
        let bos = encoder.tokenizer.addsBOS ? 1 : 0
        #expect(!prompt.isEmpty && chunks.count > 2)
        #expect(chunks.allSatisfy { Array($0.row.ids.dropFirst(bos).prefix(prompt.count)) == prompt && $0.row.ids.count <= 20 })
        // The prompt is pooled, as the folder's Pooling says (include_prompt defaults to true).
        #expect(chunks.allSatisfy { $0.row.pooledCount == $0.row.ids.count })
        #expect(try encoder.encode([EncoderInput(Self.longText)])[0].allSatisfy(\.isFinite))
    }
}
