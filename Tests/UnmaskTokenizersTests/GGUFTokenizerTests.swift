import Foundation
import Testing
import UnmaskTestSupport
@testable import UnmaskTokenizers

/// Tokenizers built from GGUF vocabularies (`Tokenizer(gguf:source:)`), checked against the
/// committed fixtures in Tests/Fixtures/gguf-vocab (see make_fixtures.py there), which need no
/// download: a byte-level BPE vocabulary against HF `tokenizers` under each supported
/// pre-tokenizer, a SentencePiece vocabulary against the `sentencepiece` library.
@Suite struct GGUFTokenizerTests {
    struct Case: Decodable {
        let text: String
        let ids: [Int]
    }

    struct Expected: Decodable {
        let byteLevel: [String: [Case]]
        let sentencepiece: [Case]

        enum CodingKeys: String, CodingKey {
            case byteLevel = "byte-level"
            case sentencepiece
        }
    }

    static func expected() throws -> Expected {
        try JSONDecoder().decode(Expected.self, from: Data(contentsOf: GGUFFixtures.folder.appendingPathComponent("expected.json")))
    }

    static func data(_ name: String) throws -> GGUFTokenizerData {
        try GGUFTestReader.tokenizerData(of: GGUFFixtures.folder.appendingPathComponent(name))
    }

    static func tokenizer(_ data: GGUFTokenizerData) throws -> Tokenizer {
        try Tokenizer(gguf: data, source: "test.gguf")
    }

    /// Compares every case and prints one summary line.
    static func check(_ tokenizer: Tokenizer, _ cases: [Case], label: String) {
        var identical = 0
        for sample in cases {
            let ids = tokenizer.encode(sample.text, addSpecialTokens: false)
            if ids == sample.ids {
                identical += 1
            } else {
                Issue.record("\(label) \(sample.text.debugDescription): \(ids) instead of \(sample.ids)")
            }
        }
        print("\(label): \(identical)/\(cases.count) identical")
        #expect(identical == cases.count && !cases.isEmpty)
    }

    // MARK: Conformance on the committed fixtures

    @Test(arguments: ["gpt-2", "llama-bpe", "qwen2", "smollm", "default", "falcon"])
    func byteLevelMatchesHuggingFace(pre: String) throws {
        var data = try Self.data("byte-level.gguf")
        data.pre = pre
        let cases = try #require(try Self.expected().byteLevel[pre])
        Self.check(try Self.tokenizer(data), cases, label: "gguf-vocab byte-level (pre \(pre))")
    }

    @Test func sentencePieceMatchesSentencePiece() throws {
        let tokenizer = try Self.tokenizer(try Self.data("sentencepiece.gguf"))
        #expect(tokenizer.kind == "SentencePiece BPE")
        Self.check(tokenizer, try Self.expected().sentencepiece, label: "gguf-vocab sentencepiece")
    }

    // MARK: SmolLM2 against HF's layout of the same vocabulary

    // Needs the installed model (scripts/install_model.sh smollm2; CI installs it).
    @Test(.enabled(if: InstalledModels.smollm2 != nil, "skipped: SmolLM2 is not installed: run scripts/install_model.sh smollm2"))
    func smolLM2MatchesHuggingFaceLayout() throws {
        struct Recorded: Decodable { let cases: [Case] }
        let data = try GGUFTestReader.tokenizerData(of: URL(fileURLWithPath: try #require(InstalledModels.smollm2)))
        #expect(data.model == "gpt2" && data.pre == "smollm")
        let tokenizer = try Self.tokenizer(data)
        #expect(tokenizer.vocabularySize == 49152)
        #expect(tokenizer.addsBOS == false && tokenizer.addsEOS == false)
        let recorded = try JSONDecoder().decode(
            Recorded.self, from: Data(contentsOf: GGUFFixtures.folder.appendingPathComponent("smollm2-expected.json")))
        Self.check(tokenizer, recorded.cases, label: "SmolLM2-135M GGUF vs HF tokenizer.json")
        for sample in recorded.cases {
            #expect(tokenizer.decode(sample.ids) == sample.text, "\(sample.text.debugDescription)")
        }
    }

    // MARK: Special tokens, BOS/EOS, decoding

    @Test func byteLevelSpecialTokensAndDefaults() throws {
        var data = try Self.data("byte-level.gguf")
        let control = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"].map { data.tokens.firstIndex(of: $0)! }
        let tool = data.tokens.firstIndex(of: "<tool>")!

        data.pre = "llama-bpe"
        let llama3 = try Self.tokenizer(data)
        #expect(llama3.kind == "byte-level BPE")
        #expect(llama3.vocabularySize == data.tokens.count)
        #expect(llama3.specialTokenIds == Set(control))
        #expect(llama3.bosTokenId == data.bosId && llama3.eosTokenId == data.eosId)
        // llama.cpp adds BOS for Llama-3-style pre-tokenizers unless the file says otherwise.
        #expect(llama3.addsBOS && !llama3.addsEOS)
        #expect(llama3.encode("Hi") == [data.bosId!] + llama3.encode("Hi", addSpecialTokens: false))
        #expect(llama3.encode("") == [data.bosId!])

        data.pre = "gpt-2"
        #expect(try Self.tokenizer(data).addsBOS == false)
        data.addBOS = true
        data.addEOS = true
        let both = try Self.tokenizer(data)
        #expect(both.encode("Hi") == [data.bosId!] + both.encode("Hi", addSpecialTokens: false) + [data.eosId!])
        data.pre = "llama-bpe"
        data.addBOS = false
        data.addEOS = nil
        #expect(try Self.tokenizer(data).addsBOS == false)

        // Control and user-defined tokens are cut out before the words are split.
        let ids = llama3.encode("x<|im_start|>y<tool>z", addSpecialTokens: false)
        let x = llama3.encode("x", addSpecialTokens: false), y = llama3.encode("y", addSpecialTokens: false)
        let z = llama3.encode("z", addSpecialTokens: false)
        #expect(ids == x + [control[1]] + y + [tool] + z)
        #expect(llama3.decode(ids) == "x<|im_start|>y<tool>z")
        #expect(llama3.decode(ids, skipSpecialTokens: true) == "xy<tool>z")
        let text = "Grüße, 東京! 🦙 'ſ\n\t  end"
        #expect(llama3.decode(llama3.encode(text)) == "<|im_start|>" + text)
    }

    @Test func sentencePieceSpacesAndSpecialTokens() throws {
        var data = try Self.data("sentencepiece.gguf")
        let spm = try Self.tokenizer(data)
        let tool = data.tokens.firstIndex(of: "<tool>")!
        #expect(spm.addsBOS && !spm.addsEOS)
        #expect(spm.bosTokenId == 1 && spm.eosTokenId == 2 && spm.unkTokenId == 0)
        #expect(spm.specialTokenIds == [0, 1, 2])
        #expect(spm.encode("Hello") == [1] + spm.encode("Hello", addSpecialTokens: false))

        // llama.cpp puts a `▁` in front of the text and of every stretch after a special or
        // user-defined token.
        func plain(_ text: String) -> [Int] { spm.encode(text, addSpecialTokens: false) }
        #expect(plain("Hello<tool>world") == plain("Hello") + [tool] + plain("world"))
        #expect(plain("Hello</s>world") == plain("Hello") + [2] + plain("world"))
        #expect(plain("<s>") == [1])
        #expect(plain("Hello").first == data.tokens.firstIndex(of: "▁Hello"))

        // Characters outside the vocabulary become their UTF-8 bytes.
        let bytes = plain("\u{10FFFD}")
        #expect(bytes.count == 5 && bytes.dropFirst().allSatisfy { data.tokens[$0].hasPrefix("<0x") })

        for text in ["Hello world", "  two  spaces ", "Grüße 東京 🦙", "a\nb\tc"] {
            #expect(spm.decode(spm.encode(text), skipSpecialTokens: true) == text, "\(text.debugDescription)")
        }

        data.addSpacePrefix = false
        let bare = try Self.tokenizer(data)
        #expect(bare.encode(" Hello", addSpecialTokens: false) == plain("Hello"))
        #expect(bare.decode(bare.encode("Hello world"), skipSpecialTokens: true) == "Hello world")
    }

    @Test func gemma4KeepsNewlineRunsAndMergesWholeLines() throws {
        // Ids: 0 <pad>, 1 <eos>, 2 <bos>, 3 \n, 4 \n\n, 5 \n\n\n, 6 a, 7 ▁, 8 ▁a, 9 a▁, 10 <0x62> (b),
        // 11 <start_of_turn>.
        let tokens = ["<pad>", "<eos>", "<bos>", "\n", "\n\n", "\n\n\n", "a", "▁", "▁a", "a▁", "<0x62>", "<start_of_turn>"]
        let data = GGUFTokenizerData(
            model: "gemma4", tokens: tokens, tokenTypes: [3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 6, 3],
            merges: ["\n \n", "▁ a", "a ▁"], bosId: 2, eosId: 1, padId: 0, addBOS: false)
        let gemma = try Tokenizer(gguf: data, source: "gemma.gguf")
        // BOS is added even though the file says no, as llama.cpp does for Gemma 4.
        #expect(gemma.addsBOS)
        #expect(gemma.encode("a") == [2, 6])
        // A run of newlines that is a token stays whole; merges alone would give "\n\n" + "\n".
        #expect(gemma.encode("\n\n\n", addSpecialTokens: false) == [5])
        #expect(gemma.encode("\n\n\n\n", addSpecialTokens: false) == [4, 4])
        // Spaces become ▁ with no prefix; a line is merged as one word ("▁a" ranks first).
        #expect(gemma.encode("a a\na", addSpecialTokens: false) == [6, 8, 3, 6])
        #expect(gemma.encode(" aa", addSpecialTokens: false) == [8, 6])
        // Bytes outside the vocabulary fall back to <0xNN> when the token exists, else vanish.
        #expect(gemma.encode("ab", addSpecialTokens: false) == [6, 10])
        #expect(gemma.encode("<start_of_turn>a", addSpecialTokens: false) == [11, 6])
        #expect(gemma.decode([2, 6, 8, 3, 10]) == "<bos>a a\nb")
    }

    @Test func phi3SpecialTokensSwallowTheSpacesAfterThem() throws {
        var data = try Self.data("sentencepiece.gguf")
        let tool = data.tokens.firstIndex(of: "<tool>")!
        func plain(_ tokenizer: Tokenizer, _ text: String) -> [Int] { tokenizer.encode(text, addSpecialTokens: false) }
        let plainSPM = try Self.tokenizer(data)
        #expect(plain(plainSPM, "<tool>  hi") == [tool] + plain(plainSPM, "  hi"))
        // llama.cpp gives every special token of a model named like Phi-3 an rstrip, except
        // <unk>, <s> and <|endoftext|>.
        data.modelName = "Phi3 Mini"
        let phi3 = try Self.tokenizer(data)
        #expect(plain(phi3, "<tool>  hi") == [tool] + plain(phi3, "hi"))
        #expect(plain(phi3, "</s> \nhi") == [2] + plain(phi3, "hi"))
        #expect(plain(phi3, "<s> hi") == [1] + plain(phi3, " hi"))
    }

    // MARK: Errors

    @Test func rejectsWhatItCannotRun() throws {
        let data = try Self.data("byte-level.gguf")

        var model = data
        model.model = "t5"
        #expect(throws: TokenizerError("x.gguf: tokenizer.ggml.model \"t5\" is not supported (supported: gpt2, llama, gemma4)")) {
            try Tokenizer(gguf: model, source: "x.gguf")
        }

        var pre = data
        pre.pre = "tekken"
        do {
            _ = try Tokenizer(gguf: pre, source: "x.gguf")
            Issue.record("an unknown pre-tokenizer must be rejected")
        } catch let error as TokenizerError {
            #expect(error.description.hasPrefix("x.gguf: tokenizer.ggml.pre \"tekken\" is not supported (supported: default, llama3,"))
            for name in ["gpt-2", "llama-bpe", "smollm", "qwen2", "deepseek-llm"] {
                #expect(error.description.contains(name))
            }
        }

        var noMerges = data
        noMerges.merges = nil
        #expect(throws: TokenizerError("x.gguf: tokenizer.ggml.merges is missing (a gpt2 vocabulary needs its merges)")) {
            try Tokenizer(gguf: noMerges, source: "x.gguf")
        }

        var types = data
        types.tokenTypes = [1, 1]
        #expect(throws: TokenizerError("x.gguf: tokenizer.ggml.token_type has 2 entries for \(data.tokens.count) tokens")) {
            try Tokenizer(gguf: types, source: "x.gguf")
        }

        var duplicate = data
        duplicate.tokens[5] = duplicate.tokens[4]
        #expect(throws: TokenizerError.self) { try Tokenizer(gguf: duplicate, source: "x.gguf") }

        var noBOS = data
        noBOS.bosId = nil
        noBOS.addBOS = true
        #expect(throws: TokenizerError("x.gguf: tokenizer.ggml.add_bos_token is true but the vocabulary has no BOS token")) {
            try Tokenizer(gguf: noBOS, source: "x.gguf")
        }
        // An id past the vocabulary is named as such, not blamed on add_bos_token.
        var badBOS = data
        badBOS.bosId = data.tokens.count + 7
        badBOS.addBOS = true
        #expect(throws: TokenizerError("x.gguf: tokenizer.ggml.bos_token_id must be below the vocabulary size \(data.tokens.count) (add_bos_token is true), got \(data.tokens.count + 7)")) {
            try Tokenizer(gguf: badBOS, source: "x.gguf")
        }

        var empty = data
        empty.tokens = []
        empty.tokenTypes = []
        #expect(throws: TokenizerError("x.gguf: tokenizer.ggml.tokens is empty")) {
            try Tokenizer(gguf: empty, source: "x.gguf")
        }
    }

    @Test func toleratesWhatLlamaCppTolerates() throws {
        // Canonically equivalent tokens are distinct (bytes differ).
        var data = GGUFTokenizerData(
            model: "llama", tokens: ["<unk>", "<s>", "</s>", "▁", "e", "\u{301}", "é", "e\u{301}", "", "▁é"],
            scores: [0, 0, 0, -1, -2, -3, -4, -5, -6, -7])
        let spm = try Tokenizer(gguf: data, source: "x.gguf")
        // An empty token is renamed as llama.cpp renames it.
        #expect(spm.token(forId: 8) == "[EMPTY_8]")
        #expect(spm.encode("é", addSpecialTokens: false) == [9])
        #expect(spm.encode("e\u{301}", addSpecialTokens: false) == [3, 7])
        // Special-token ids outside the vocabulary are ignored.
        data.bosId = 99
        #expect(try Tokenizer(gguf: data, source: "x.gguf").bosTokenId == 1)
    }
}

/// llama.cpp's spelling of the Llama-3 and Qwen2 expressions (contractions as `'[sS]|…`).
@Suite struct GGUFSplitPatternTests {
    struct Recorded: Decodable {
        struct Case: Decodable {
            let text: String
            let llama3: [String]
            let qwen2: [String]
        }
        let cases: [Case]
    }

    static func pieces(_ pattern: SplitPattern, _ text: String) -> [String] {
        let bytes = Array(text.utf8)
        var ranges: [Range<Int>] = []
        bytes.withUnsafeBufferPointer { pattern.matches(in: $0, 0..<bytes.count, into: &ranges) }
        return ranges.map { String(decoding: bytes[$0], as: UTF8.self) }
    }

    @Test func recognizesTheExplicitCaseSources() throws {
        let node = JSONNode(.null, file: "test")
        guard case .llama3ExplicitCase = try SplitPattern.fromRegex(SplitPattern.llama3ExplicitCaseSource, node: node),
              case .qwen2ExplicitCase = try SplitPattern.fromRegex(SplitPattern.qwen2ExplicitCaseSource, node: node)
        else {
            Issue.record("the explicit-case expressions must map to their scanners")
            return
        }
    }

    /// The explicit-case expressions split like the `(?i:…)` ones HF recorded, except that
    /// `'ſ` (U+017F) is no contraction; where HF recorded one, the explicit-case scanner must
    /// agree with NSRegularExpression running the explicit-case source.
    @Test func splitLikeTheCaseInsensitiveOnesButForLongS() throws {
        let data = try Data(contentsOf: Fixtures.root.appendingPathComponent("split_patterns.json"))
        let recorded = try JSONDecoder().decode(Recorded.self, from: data)
        let llama3Regex = SplitPattern.regex(try CompiledRegex(SplitPattern.llama3ExplicitCaseSource))
        let qwen2Regex = SplitPattern.regex(try CompiledRegex(SplitPattern.qwen2ExplicitCaseSource))
        var longS = 0
        for sample in recorded.cases {
            let llama3 = Self.pieces(.llama3ExplicitCase, sample.text)
            let qwen2 = Self.pieces(.qwen2ExplicitCase, sample.text)
            if sample.text.unicodeScalars.contains("\u{17F}") {
                longS += 1
                #expect(llama3 == Self.pieces(llama3Regex, sample.text), "llama3 \(sample.text.debugDescription)")
                #expect(qwen2 == Self.pieces(qwen2Regex, sample.text), "qwen2 \(sample.text.debugDescription)")
            } else {
                #expect(llama3 == sample.llama3, "llama3 \(sample.text.debugDescription)")
                #expect(qwen2 == sample.qwen2, "qwen2 \(sample.text.debugDescription)")
            }
        }
        #expect(longS > 0)
        #expect(Self.pieces(.llama3ExplicitCase, "it'ſ") == ["it", "'ſ"])
        #expect(Self.pieces(.llama3, "it'ſ") == ["it", "'ſ"])
        #expect(Self.pieces(.llama3ExplicitCase, "'ſx") == ["'ſx"])
        #expect(Self.pieces(.llama3, "'ſx") == ["'ſ", "x"])
    }
}
