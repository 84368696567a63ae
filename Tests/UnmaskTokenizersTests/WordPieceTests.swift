import Foundation
import Testing
import UnmaskTokenizers

/// The real all-MiniLM-L6-v2 tokenizer.json and what transformers 4.44 / tokenizers 0.19 give for
/// it (scripts/make_bert_fixtures.py).
enum WordPieceFixtures {
    static let root: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.lastPathComponent != "Tests" && url.pathComponents.count > 1 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("Fixtures/bert")
    }()

    struct Case: Decodable {
        let text: String
        let ids: [Int]
        let idsNoSpecial: [Int]
        let tokens: [String]
        /// transformers' `decode` (adds its clean_up_tokenization_spaces pass, on by default in 4.44).
        let decoded: String
        let decodedSkipSpecial: String
        /// tokenizers' `decode`: the decoder chain alone.
        let rawDecoded: String
    }

    struct Expected: Decodable {
        let vocabSize: Int
        let clsTokenId: Int
        let sepTokenId: Int
        let padTokenId: Int
        let unkTokenId: Int
        let cases: [Case]
    }

    static let minilm = root.appendingPathComponent("minilm-tokenizer")

    static func expected() throws -> Expected {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(Expected.self, from: Data(contentsOf: minilm.appendingPathComponent("expected.json")))
    }
}

@Suite struct WordPieceConformanceTests {
    @Test func encodesMiniLMLikeHuggingFace() throws {
        let tokenizer = try Tokenizer.load(directory: WordPieceFixtures.minilm)
        let expected = try WordPieceFixtures.expected()
        #expect(expected.cases.count >= 60)
        var mismatches = 0
        for sample in expected.cases {
            let ids = tokenizer.encode(sample.text)
            let plain = tokenizer.encode(sample.text, addSpecialTokens: false)
            #expect(ids == sample.ids, "\(sample.text.debugDescription)")
            #expect(plain == sample.idsNoSpecial, "\(sample.text.debugDescription) without special tokens")
            if ids != sample.ids { mismatches += 1 }
        }
        #expect(mismatches == 0)
    }

    @Test func tokenStringsMatch() throws {
        let tokenizer = try Tokenizer.load(directory: WordPieceFixtures.minilm)
        for sample in try WordPieceFixtures.expected().cases {
            #expect(sample.idsNoSpecial.map { tokenizer.token(forId: $0) } == sample.tokens, "\(sample.text.debugDescription)")
            #expect(sample.tokens.map { tokenizer.id(forToken: $0) } == sample.idsNoSpecial)
        }
    }

    @Test func decodesLikeTokenizers() throws {
        let tokenizer = try Tokenizer.load(directory: WordPieceFixtures.minilm)
        for sample in try WordPieceFixtures.expected().cases {
            #expect(tokenizer.decode(sample.ids) == sample.rawDecoded, "\(sample.text.debugDescription)")
            // transformers' extra cleanup only touches " ' " and the like, absent here.
            if !sample.decoded.contains("'") {
                #expect(tokenizer.decode(sample.ids) == sample.decoded, "\(sample.text.debugDescription)")
                #expect(tokenizer.decode(sample.ids, skipSpecialTokens: true) == sample.decodedSkipSpecial,
                        "\(sample.text.debugDescription) skipping special tokens")
            }
        }
    }

    @Test func describesItself() throws {
        let tokenizer = try Tokenizer.load(directory: WordPieceFixtures.minilm)
        let expected = try WordPieceFixtures.expected()
        #expect(tokenizer.kind == "WordPiece")
        #expect(tokenizer.vocabularySize == expected.vocabSize)
        #expect(tokenizer.prefixTokenIds == [expected.clsTokenId])
        #expect(tokenizer.suffixTokenIds == [expected.sepTokenId])
        #expect(tokenizer.padTokenId == expected.padTokenId)
        #expect(tokenizer.unkTokenId == expected.unkTokenId)
        #expect(tokenizer.specialTokenIds == [0, 100, 101, 102, 103])
        #expect(tokenizer.modelMaxLength == 512)
    }

    @Test func isUsableFromManyThreadsAtOnce() async throws {
        let tokenizer = try Tokenizer.load(directory: WordPieceFixtures.minilm)
        try await encodeConcurrently(tokenizer, try WordPieceFixtures.expected().cases.map { ($0.text, $0.ids) })
    }
}

/// Behaviour pinned with small inline tokenizer.json documents.
@Suite struct WordPieceUnitTests {
    static let vocab = ###"{"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "un": 3, "##aff": 4, "##able": 5, "a": 6, "##a": 7, "##b": 8, "!": 9, "cafe": 10, "café": 11, "中": 12, "b": 13, "ab": 14}"###

    static func tokenizer(
        normalizer: String = #"{"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true}"#,
        maxChars: Int = 100, extra: String = ""
    ) throws -> Tokenizer {
        let json = """
        {"version": "1.0",
         "normalizer": \(normalizer),
         "pre_tokenizer": {"type": "BertPreTokenizer"},
         "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 2], "cls": ["[CLS]", 1]},
         "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
         "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                   "max_input_chars_per_word": \(maxChars), "vocab": \(vocab)}\(extra)}
        """
        return try Tokenizer(tokenizerJSON: Data(json.utf8))
    }

    @Test func greedyLongestMatchFromTheLeft() throws {
        let t = try Self.tokenizer()
        #expect(t.encode("unaffable", addSpecialTokens: false) == [3, 4, 5])
        #expect(t.encode("unaffable") == [1, 3, 4, 5, 2])
        // "ab" is a whole-word entry, so it wins over "a" + "##b".
        #expect(t.encode("ab aab", addSpecialTokens: false) == [14, 6, 7, 8])
        // One unmatched part makes the whole word [UNK], not just that part.
        #expect(t.encode("unaffablez a", addSpecialTokens: false) == [0, 6])
    }

    @Test func longWordsBecomeUnknown() throws {
        let t = try Self.tokenizer(maxChars: 4)
        #expect(t.encode("aaaa", addSpecialTokens: false) == [6, 7, 7, 7])
        #expect(t.encode("aaaaa", addSpecialTokens: false) == [0])
        // Characters, not bytes, are counted: "café" is 4 characters in 5 bytes.
        let keepAccents = try Self.tokenizer(normalizer: #"{"type": "BertNormalizer", "strip_accents": false, "lowercase": true}"#, maxChars: 4)
        #expect(keepAccents.encode("cafe café", addSpecialTokens: false) == [10, 11])
        #expect(keepAccents.encode("cafés", addSpecialTokens: false) == [0])
    }

    @Test func normalizerFollowsLowercaseForAccentsWhenNull() throws {
        #expect(try Self.tokenizer().encode("CAFÉ", addSpecialTokens: false) == [10])
        let keepAccents = try Self.tokenizer(normalizer: #"{"type": "BertNormalizer", "strip_accents": false, "lowercase": true}"#)
        #expect(keepAccents.encode("CAFÉ", addSpecialTokens: false) == [11])
        let cased = try Self.tokenizer(normalizer: #"{"type": "BertNormalizer", "lowercase": false}"#)
        #expect(cased.encode("café Ab", addSpecialTokens: false) == [11, 0])
    }

    @Test func splitsPunctuationAndChineseCharacters() throws {
        let t = try Self.tokenizer()
        #expect(t.encode("a!!b", addSpecialTokens: false) == [6, 9, 9, 13])
        #expect(t.encode("a中b", addSpecialTokens: false) == [6, 12, 13])
        // Control characters vanish; tabs and newlines split like spaces.
        #expect(t.encode("a\u{0}b\tun\naff", addSpecialTokens: false) == [14, 3, 0])
    }

    @Test func decodesPiecesBackTogether() throws {
        let specials = #""added_tokens": [{"id": 1, "content": "[CLS]", "special": true, "normalized": false}, {"id": 2, "content": "[SEP]", "special": true, "normalized": false}]"#
        let t = try Self.tokenizer(extra: ",\n" + specials)
        #expect(t.encode("[CLS] un [SEP]", addSpecialTokens: false) == [1, 3, 2])
        #expect(t.decode([1, 3, 4, 5, 9, 2]) == "[CLS] unaffable! [SEP]")
        #expect(t.decode([1, 3, 4, 5, 9, 2], skipSpecialTokens: true) == "unaffable!")
    }

    @Test func rejectsBadModels() {
        func message(_ json: String) -> String? {
            do { _ = try Tokenizer(tokenizerJSON: Data(json.utf8)); return nil } catch { return "\(error)" }
        }
        #expect(message(#"{"model": {"type": "WordPiece", "vocab": {"a": "x"}}}"#)?
            .hasPrefix(#"tokenizer.json: model.vocab entry "a" must have an integer id"#) == true)
        #expect(message(#"{"model": {"type": "Unigram", "vocab": []}}"#)
            == #"tokenizer.json: model.type "Unigram" is not supported (supported: BPE, WordPiece)"#)
        #expect(message(#"{"model": {"type": "WordPiece", "vocab": {}, "max_input_chars_per_word": -1}}"#)?
            .contains("max_input_chars_per_word must not be negative") == true)
    }
}
