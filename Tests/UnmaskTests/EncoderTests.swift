import Foundation
import Testing
@testable import Unmask
import UnmaskTestSupport

@Suite struct EncoderTests {
    let texts = [
        "A short one.",
        "A much longer text that needs several more tokens than the others in the batch, so the others get padded.",
        "Unicode: naïve café, 東京, 🙂",
        "Mid-length text about attention masks.",
    ]

    @Test(arguments: [AttentionMode.bidirectional, .causal], [Pooling.mean, .weightedMean, .lastToken, .eosToken])
    func embeddingDoesNotDependOnTheBatch(attention: AttentionMode, pooling: Pooling) throws {
        let path = Fixtures.path("models", "qwen2-bias-f32")
        let batched = try Encoder(modelPath: path) { $0.attention = attention; $0.pooling = pooling; $0.batchSize = 4 }
        let single = try Encoder(modelPath: path) { $0.attention = attention; $0.pooling = pooling; $0.batchSize = 1 }
        let inputs = texts.map { EncoderInput($0) }
        let together = try batched.encode(inputs)
        let alone = try single.encode(inputs)
        for (a, b) in zip(together, alone) {
            #expect(Compare.cosine(a, b) > 0.999999 && Compare.relativeL2(a, b) < 1e-5)
        }
    }

    @Test func resultsComeBackInInputOrder() throws {
        let encoder = try Encoder(modelPath: Fixtures.path("models", "llama3-tied-f32")) { $0.batchSize = 2 }
        let inputs = texts.map { EncoderInput($0) }
        let all = try encoder.encode(inputs)
        for (i, input) in inputs.enumerated() {
            #expect(Compare.cosine(try encoder.encode([input])[0], all[i]) > 0.999999)
        }
    }

    @Test func emptyTextWithBOSIsFinite() throws {
        let encoder = try Encoder(modelPath: Fixtures.path("models", "llama2-bf16"))
        let embeddings = try encoder.encode([EncoderInput(""), EncoderInput("", instruction: "Represent this:"), EncoderInput("words")])
        for embedding in embeddings { #expect(embedding.allSatisfy { $0.isFinite } && embedding.contains { $0 != 0 }) }
    }

    @Test func emptyTextWithoutSpecialTokensIsAnError() throws {
        let encoder = try Encoder(modelPath: Fixtures.path("models", "smollm-f32"))
        #expect(throws: UnmaskError.invalidInput(source: "input 2", reason: "the text is empty and the tokenizer adds no special token, so there is nothing to embed")) {
            _ = try encoder.encode([EncoderInput("fine"), EncoderInput("")])
        }
    }

    @Test func bosPoolingNeedsABOSToken() throws {
        #expect {
            _ = try Encoder(modelPath: Fixtures.path("models", "smollm-f32")) { $0.pooling = .bosToken }
        } throws: { String(describing: $0).contains("bos-token pooling needs a tokenizer that adds a BOS token") }
    }

    @Test func longInputsAreTruncatedToMaxLength() throws {
        let encoder = try Encoder(modelPath: Fixtures.path("models", "llama2-bf16")) { $0.maxLength = 16 }
        let long = String(repeating: "tokens and more tokens ", count: 200)
        let prepared = try encoder.prepare(EncoderInput(long), index: 0)
        #expect(prepared.ids.count == 16 && prepared.pooledCount == 16)
        #expect(try encoder.encode([EncoderInput(long)])[0].allSatisfy { $0.isFinite })
    }

    @Test func normalizeGivesUnitVectors() throws {
        let encoder = try Encoder(modelPath: Fixtures.path("models", "mistral-f16-sharded")) { $0.normalize = true }
        for embedding in try encoder.encode(texts.map { EncoderInput($0) }) {
            let norm = embedding.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
            #expect(abs(norm - 1) < 1e-5)
        }
    }

    @Test func instructionIsKeptOutOfPooling() throws {
        let encoder = try Encoder(modelPath: Fixtures.path("models", "llama2-bf16"))
        let plain = try encoder.prepare(EncoderInput("The cat sat."), index: 0)
        let instructed = try encoder.prepare(EncoderInput("The cat sat.", instruction: "  Retrieve similar text:  "), index: 0)
        #expect(instructed.ids.count > plain.ids.count)
        #expect(instructed.pooledCount == plain.pooledCount)
        let skipping = try Encoder(modelPath: Fixtures.path("models", "llama2-bf16")) { $0.skipInstruction = false }
        #expect(try skipping.prepare(EncoderInput("The cat sat.", instruction: "Retrieve:"), index: 0).pooledCount
            == skipping.prepare(EncoderInput("The cat sat.", instruction: "Retrieve:"), index: 0).ids.count)
    }

    @Test func invalidOptionsAreRejected() {
        #expect(throws: UnmaskError.invalidInput(source: "options", reason: "max length must be at least 1, got 0")) {
            _ = try Encoder(modelPath: Fixtures.path("models", "llama2-bf16")) { $0.maxLength = 0 }
        }
        #expect(throws: UnmaskError.invalidInput(source: "options", reason: "batch size must be at least 1, got 0")) {
            _ = try Encoder(modelPath: Fixtures.path("models", "llama2-bf16")) { $0.batchSize = 0 }
        }
    }

    @Test func pythonStringHelpersMatchPython() {
        #expect(PythonString.split("  a\tb\n\nc  ") == ["a", "b", "c"])
        #expect(PythonString.split("e\u{301} x") == ["e\u{301}", "x"])
        #expect(PythonString.strip(" \u{1F}x y\u{3000} ") == "x y")
        #expect(PythonString.rstrip(" x \n") == " x")
    }
}
