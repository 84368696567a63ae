import Foundation
import Testing
import UnmaskTokenizers

/// Broken or unsupported inputs must fail with one line naming the file and the field.
@Suite struct LoadingTests {
    func message(_ body: () throws -> Tokenizer) -> String? {
        do {
            _ = try body()
            return nil
        } catch {
            return (error as? TokenizerError)?.description ?? "unexpected \(type(of: error)): \(error)"
        }
    }

    @Test func missingFileNamesThePath() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("no-such-tokenizer-\(UUID())")
        let text = try #require(message { try Tokenizer.load(directory: directory) })
        #expect(text == "\(directory.appendingPathComponent("tokenizer.json").path): file not found")
    }

    @Test func malformedJSONNamesTheFileAndPosition() throws {
        let text = try #require(message { try Tokenizer(tokenizerJSON: Data(#"{"model": {"type": "BPE",, }}"#.utf8)) })
        #expect(text == "tokenizer.json: malformed JSON at line 1, column 26: expected a string key")
        let truncated = try #require(message { try Tokenizer(tokenizerJSON: Data(#"{"model": {"vocab": ["#.utf8)) })
        #expect(truncated.hasPrefix("tokenizer.json: malformed JSON at end of file"))
        let deep = Data((String(repeating: "[", count: 100_000)).utf8)
        #expect(message { try Tokenizer(tokenizerJSON: deep) }?.contains("nesting deeper than") == true)
        #expect(message { try Tokenizer(tokenizerJSON: Data("[]".utf8)) } == "tokenizer.json: must be an object, found an array")
    }

    @Test func unsupportedComponentsNameTheirField() {
        #expect(message { try Inline.tokenizer(model: #"{"type": "Unigram", "vocab": []}"#) }
            == #"tokenizer.json: model.type "Unigram" is not supported (supported: BPE, WordPiece)"#)
        #expect(message {
            try Inline.tokenizer(#""pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Digits"}, {"type": "Whitespace"}]}"#)
        } == #"tokenizer.json: pre_tokenizer.pretokenizers[1].type "Whitespace" is not supported (supported: ByteLevel, Split, Digits, Metaspace, BertPreTokenizer, Sequence)"#)
        #expect(message { try Inline.tokenizer(#""normalizer": {"type": "Precompiled"}"#) }?
            .hasPrefix(#"tokenizer.json: normalizer.type "Precompiled" is not supported"#) == true)
        #expect(message { try Inline.tokenizer(#""decoder": {"type": "CTC"}"#) }?
            .hasPrefix(#"tokenizer.json: decoder.type "CTC" is not supported"#) == true)
        #expect(message { try Inline.tokenizer(#""post_processor": {"type": "Custom"}"#) }?
            .hasPrefix(#"tokenizer.json: post_processor.type "Custom" is not supported"#) == true)
        #expect(message {
            try Inline.tokenizer(#""pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "Sideways"}"#)
        } == #"tokenizer.json: pre_tokenizer.behavior "Sideways" is not one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous"#)
    }

    @Test func inconsistentModelsNameTheirField() {
        #expect(message { try Tokenizer(tokenizerJSON: Data(#"{"version": "1.0"}"#.utf8)) } == "tokenizer.json: model is missing")
        #expect(message { try Inline.tokenizer(model: #"{"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}"#) }
            == #"tokenizer.json: model.merges[0] uses "b", which is not in model.vocab"#)
        #expect(message { try Inline.tokenizer(model: #"{"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b c"]}"#) }
            == #"tokenizer.json: model.merges[0] "a b c" must be two tokens separated by one space"#)
        #expect(message { try Inline.tokenizer(model: #"{"type": "BPE", "vocab": {"a": "zero"}, "merges": []}"#) }?
            .hasPrefix(#"tokenizer.json: model.vocab entry "a" must have an integer id"#) == true)
        #expect(message { try Inline.tokenizer(model: #"{"type": "BPE", "dropout": 0.1, "vocab": {}, "merges": []}"#) }?
            .hasPrefix("tokenizer.json: model.dropout 0.1 is not supported") == true)
        #expect(message { try Inline.tokenizer(model: #"{"type": "BPE", "vocab": {}, "merges": {}}"#) }
            == "tokenizer.json: model.merges must be an array, found an object")
        #expect(message {
            try Inline.tokenizer(#""post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}], "special_tokens": {}}"#)
        } == #"tokenizer.json: post_processor uses "<s>", which special_tokens does not define"#)
    }

    @Test func configProblemsNameTheConfigFile() {
        #expect(message { try Tokenizer(tokenizerJSON: Inline.json(), tokenizerConfig: Data(#"{"bos_token": 1}"#.utf8)) }
            == "tokenizer_config.json: bos_token must be a string or an AddedToken object, found a number")
        #expect(message { try Tokenizer(tokenizerJSON: Inline.json(), tokenizerConfig: Data("{".utf8)) }?
            .hasPrefix("tokenizer_config.json: malformed JSON") == true)
        #expect(message { try Tokenizer(tokenizerJSON: Inline.json(), specialTokensMap: Data(#"{"eos_token": {"lstrip": false}}"#.utf8)) }
            == "special_tokens_map.json: eos_token.content is missing")
    }

    @Test func specialTokensMapOverridesTheConfig() throws {
        let tokenizer = try Tokenizer(
            tokenizerJSON: Inline.json(),
            tokenizerConfig: Data(#"{"bos_token": "a", "eos_token": {"__type": "AddedToken", "content": "b"}, "pad_token": null, "model_max_length": 1e30}"#.utf8),
            specialTokensMap: Data(#"{"bos_token": {"content": "c", "lstrip": false}}"#.utf8))
        #expect(tokenizer.bosToken == "c")
        #expect(tokenizer.bosTokenId == 3)
        #expect(tokenizer.eosToken == "b")
        #expect(tokenizer.padToken == nil)
        #expect(tokenizer.unkToken == nil)  // a config exists, so the model's unk_token is not guessed
        #expect(tokenizer.modelMaxLength == nil)
    }

    @Test func withoutConfigTheTokenizerJSONNamesItsOwnTokens() throws {
        let tokenizer = try Inline.tokenizer(#"""
        "post_processor": {"type": "TemplateProcessing",
          "single": [{"SpecialToken": {"id": "a", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "c", "type_id": 0}}],
          "special_tokens": {"a": {"id": "a", "ids": [1], "tokens": ["a"]}, "c": {"id": "c", "ids": [3], "tokens": ["c"]}}}
        """#)
        #expect(tokenizer.bosToken == "a")
        #expect(tokenizer.eosToken == "c")
        #expect(tokenizer.unkToken == "<unk>")
        #expect(tokenizer.addsBOS && tokenizer.addsEOS)
        #expect(tokenizer.encode("b") == [1, 2, 3])
        #expect(tokenizer.encode("b", addSpecialTokens: false) == [2])
        #expect(tokenizer.kind == "BPE")
    }
}

@Suite struct EdgeCaseTests {
    @Test func emptyTextNeverReachesThePreTokenizers() throws {
        // GPT-2 style: ByteLevel adds a prefix space to every piece, and Strip can empty a piece.
        let tokenizer = try Inline.tokenizer(#"""
        "normalizer": {"type": "Strip", "strip_left": true, "strip_right": true},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
          {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true},
          {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}]}
        """#)
        #expect(tokenizer.encode("") == [])
        #expect(tokenizer.encode("   \n\t ") == [])
        #expect(tokenizer.decode([]) == "")
    }

    @Test func fallbackRegexesAreSafeToShare() async throws {
        let tokenizer = try Fixtures.tokenizer("misc")
        let samples = try Fixtures.expected("misc").cases
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    for round in 0..<30 {
                        let sample = samples[(worker * 11 + round * 7) % samples.count]
                        guard tokenizer.encode(sample.text) == sample.ids else {
                            throw TokenizerError("mismatch for \(sample.text.debugDescription)")
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    @Test func unknownIdsAreSkippedWhenDecoding() throws {
        let tokenizer = try Fixtures.tokenizer("llama2")
        let hello = tokenizer.encode("hello", addSpecialTokens: false)
        #expect(tokenizer.decode([-1] + hello + [1_000_000]) == "hello")
        #expect(tokenizer.token(forId: -5) == nil)
        #expect(tokenizer.id(forToken: "definitely not a token") == nil)
    }
}
