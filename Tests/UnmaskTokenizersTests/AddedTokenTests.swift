import Foundation
import Testing
import UnmaskTokenizers

@Suite struct AddedTokenTests {
    let plain = #""single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true"#

    @Test func longestTokenWinsAtTheLeftmostPosition() throws {
        let tokenizer = try Inline.tokenizer(Inline.addedTokens([
            ("<x>", plain), ("<x><y>", plain), ("<y>", plain), ("x><", plain),
        ]))
        let x = try #require(tokenizer.id(forToken: "<x>"))
        let xy = try #require(tokenizer.id(forToken: "<x><y>"))
        let y = try #require(tokenizer.id(forToken: "<y>"))
        #expect(tokenizer.encode("<x><y><x>a<y>") == [xy, x, 1, y])
        // Matches don't overlap: "x><" inside "<x><y>" is never considered.
        #expect(tokenizer.encode("<x><y>") == [xy])
        #expect(tokenizer.encode("ab<x>c") == [5, x, 3])
    }

    @Test func tokensNotInTheModelGetIdsAfterItsVocabulary() throws {
        // The ids written in added_tokens are ignored, exactly like HF: new tokens are
        // numbered from the model's vocabulary size, tokens already in it keep their id.
        let tokenizer = try Inline.tokenizer(Inline.addedTokens([("<s>", plain), ("abc", plain), ("</s>", plain)]))
        #expect(tokenizer.id(forToken: "<s>") == 8)
        #expect(tokenizer.id(forToken: "abc") == 6)
        #expect(tokenizer.id(forToken: "</s>") == 9)
        #expect(tokenizer.vocabularySize == 10)
        #expect(tokenizer.token(forId: 9) == "</s>")
        #expect(tokenizer.specialTokenIds == [6, 8, 9])
    }

    @Test func skippingSpecialTokensKeepsOrdinaryAddedTokens() throws {
        let ordinary = #""single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": false"#
        let tokenizer = try Inline.tokenizer(Inline.addedTokens([("<s>", plain), ("<tool>", ordinary)]))
        let ids = tokenizer.encode("<s>ab<tool>c")
        #expect(ids == [8, 5, 9, 3])
        #expect(tokenizer.decode(ids) == "<s> ab <tool> c")  // no decoder: tokens joined by spaces
        #expect(tokenizer.decode(ids, skipSpecialTokens: true) == "ab <tool> c")
        #expect(tokenizer.specialTokenIds == [8])
    }

    @Test func stripFlagsSwallowNeighbouringWhitespace() throws {
        let tokenizer = try Inline.tokenizer(Inline.addedTokens([
            ("[L]", #""single_word": false, "lstrip": true, "rstrip": false, "normalized": false, "special": true"#),
            ("[R]", #""single_word": false, "lstrip": false, "rstrip": true, "normalized": false, "special": true"#),
        ]))
        let left = try #require(tokenizer.id(forToken: "[L]"))
        let right = try #require(tokenizer.id(forToken: "[R]"))
        #expect(tokenizer.encode("a  [L]  b") == [1, left, 4, 4, 2])
        #expect(tokenizer.encode("a  [R]  b") == [1, 4, 4, right, 2])
    }

    @Test func singleWordTokensOnlyMatchWholeWords() throws {
        let tokenizer = try Inline.tokenizer(Inline.addedTokens([
            ("ab", #""single_word": true, "lstrip": false, "rstrip": false, "normalized": false, "special": false"#),
        ]))
        let word = try #require(tokenizer.id(forToken: "ab"))
        #expect(word == 5)  // already in the model vocabulary
        #expect(tokenizer.encode("ab c") == [5, 4, 3])
        #expect(tokenizer.encode("abc") == [6])  // inside a word: the model merges it instead
        #expect(tokenizer.encode("cab") == [3, 5])
    }
}
