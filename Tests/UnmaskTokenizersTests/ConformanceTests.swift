import Foundation
import Testing
import UnmaskTokenizers

/// Every fixture tokenizer must reproduce HF's ids and decoded text exactly.
@Suite struct ConformanceTests {
    @Test(arguments: Fixtures.families)
    func encodesLikeHuggingFace(_ name: String) throws {
        let tokenizer = try Fixtures.tokenizer(name)
        for sample in try Fixtures.expected(name).cases {
            #expect(tokenizer.encode(sample.text) == sample.ids, "\(name) \(sample.text.debugDescription)")
            #expect(tokenizer.encode(sample.text, addSpecialTokens: false) == sample.idsNoSpecial,
                    "\(name) \(sample.text.debugDescription) without special tokens")
        }
    }

    @Test(arguments: Fixtures.families)
    func tokenStringsMatch(_ name: String) throws {
        let tokenizer = try Fixtures.tokenizer(name)
        for sample in try Fixtures.expected(name).cases {
            #expect(sample.idsNoSpecial.map { tokenizer.token(forId: $0) } == sample.tokens, "\(name) \(sample.text.debugDescription)")
            #expect(sample.tokens.map { tokenizer.id(forToken: $0) } == sample.idsNoSpecial)
        }
    }

    @Test(arguments: Fixtures.families)
    func decodesLikeHuggingFace(_ name: String) throws {
        let tokenizer = try Fixtures.tokenizer(name)
        let expected = try Fixtures.expected(name)
        for sample in expected.cases {
            #expect(tokenizer.decode(sample.ids) == sample.decoded, "\(name) \(sample.text.debugDescription)")
            #expect(tokenizer.decode(sample.ids, skipSpecialTokens: true) == sample.decodedSkipSpecial,
                    "\(name) \(sample.text.debugDescription) skipping special tokens")
        }
        for sample in expected.decodeCases {
            #expect(tokenizer.decode(sample.ids) == sample.decoded, "\(name) \(sample.ids)")
            #expect(tokenizer.decode(sample.ids, skipSpecialTokens: true) == sample.decodedSkipSpecial, "\(name) \(sample.ids)")
        }
    }

    @Test(arguments: Fixtures.families)
    func describesItselfLikeHuggingFace(_ name: String) throws {
        let tokenizer = try Fixtures.tokenizer(name)
        let expected = try Fixtures.expected(name)
        #expect(tokenizer.kind == expected.kind)
        #expect(tokenizer.vocabularySize == expected.vocabSize)
        #expect(tokenizer.specialTokenIds == Set(expected.specialTokenIds))
        #expect(tokenizer.addsBOS == expected.addsBos)
        #expect(tokenizer.addsEOS == expected.addsEos)
        #expect(tokenizer.bosToken == expected.bosToken)
        #expect(tokenizer.bosTokenId == expected.bosTokenId)
        #expect(tokenizer.eosToken == expected.eosToken)
        #expect(tokenizer.eosTokenId == expected.eosTokenId)
        #expect(tokenizer.padToken == expected.padToken)
        #expect(tokenizer.padTokenId == expected.padTokenId)
        #expect(tokenizer.unkToken == expected.unkToken)
        #expect(tokenizer.unkTokenId == expected.unkTokenId)
    }

    @Test func readsTokenizerConfig() throws {
        let llama3 = try Fixtures.tokenizer("llama3")
        #expect(llama3.modelMaxLength == 131_072)
        #expect(llama3.chatTemplate?.contains("<|start_header_id|>") == true)
        let llama2 = try Fixtures.tokenizer("llama2")
        #expect(llama2.modelMaxLength == 4096)
        #expect(llama2.chatTemplate == nil)
    }

    @Test func isUsableFromManyThreadsAtOnce() async throws {
        let tokenizer = try Fixtures.tokenizer("llama3")
        try await encodeConcurrently(tokenizer, try Fixtures.expected("llama3").cases.map { ($0.text, $0.ids) })
    }
}
