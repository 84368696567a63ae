import Foundation
import Testing
import UnmaskTokenizers

@Suite struct JSONTests {
    @Test func canonicallyEquivalentVocabularyEntriesStayDistinct() throws {
        // "é" precomposed and "e" + U+0301 are different tokens to HF, though Swift strings
        // compare equal.
        let tokenizer = try Inline.tokenizer(model: #"""
        {"type": "BPE", "vocab": {"\u00e9": 0, "e": 1, "\u0301": 2, "e\u0301": 3}, "merges": ["e \u0301"]}
        """#)
        #expect(tokenizer.encode("\u{E9}") == [0])
        #expect(tokenizer.encode("e\u{301}") == [3])
        #expect(tokenizer.id(forToken: "e\u{301}") == 3)
        #expect(tokenizer.token(forId: 3)?.unicodeScalars.count == 2)
        #expect(tokenizer.vocabularySize == 4)
    }

    @Test func mergesMayBeStringsOrPairs() throws {
        let pairs = try Inline.tokenizer(model: #"""
        {"type": "BPE", "vocab": {"a": 1, "b": 2, "c": 3, "ab": 5, "abc": 6}, "merges": [["a", "b"], ["ab", "c"]]}
        """#)
        let strings = try Inline.tokenizer(model: #"""
        {"type": "BPE", "vocab": {"a": 1, "b": 2, "c": 3, "ab": 5, "abc": 6}, "merges": ["#version: 0.2", "a b", "ab c"]}
        """#)
        for text in ["abc", "abcab", "cba", "aabbcc"] {
            #expect(pairs.encode(text) == strings.encode(text))
        }
        #expect(pairs.encode("abcab") == [6, 5])
    }

    @Test func mergeTokensMayContainCombiningCharacters() throws {
        // " \u{301}" is a single Character in Swift; the merge must still split on the space.
        let tokenizer = try Inline.tokenizer(model: #"""
        {"type": "BPE", "vocab": {"x": 0, "\u0301": 1, "x\u0301": 2}, "merges": ["x \u0301"]}
        """#)
        #expect(tokenizer.encode("x\u{301}x") == [2, 0])
    }

    @Test func escapesAndSurrogatePairsDecode() throws {
        let tokenizer = try Inline.tokenizer(model: #"""
        {"type": "BPE", "vocab": {"\ud83d\ude00": 0, "\"\\\/\t": 1, "\u00e9": 2}, "merges": []}
        """#)
        #expect(tokenizer.id(forToken: "😀") == 0)
        #expect(tokenizer.id(forToken: "\"\\/\t") == 1)
        #expect(tokenizer.encode("😀é") == [0, 2])
    }
}
