import Foundation
import Testing
@testable import UnmaskTokenizers

/// The hand-coded scanners must split exactly as the regular expressions they replace.
@Suite struct SplitPatternTests {
    struct Recorded: Decodable {
        struct Case: Decodable {
            let text: String
            let llama3: [String]
            let qwen2: [String]
            let gpt2: [String]
        }
        let patterns: [String: String]
        let cases: [Case]
    }

    static let scanners: [(name: String, pattern: SplitPattern, source: String)] = [
        ("gpt2", .gpt2, SplitPattern.gpt2Source),
        ("llama3", .llama3, SplitPattern.llama3Source),
        ("qwen2", .qwen2, SplitPattern.qwen2Source),
    ]

    func pieces(_ pattern: SplitPattern, _ text: String) -> [String] {
        let bytes = Array(text.utf8)
        var ranges: [Range<Int>] = []
        bytes.withUnsafeBufferPointer { pattern.matches(in: $0, 0..<bytes.count, into: &ranges) }
        return ranges.map { String(decoding: bytes[$0], as: UTF8.self) }
    }

    @Test func matchesHuggingFaceOnRecordedStrings() throws {
        let data = try Data(contentsOf: Fixtures.root.appendingPathComponent("split_patterns.json"))
        let recorded = try JSONDecoder().decode(Recorded.self, from: data)
        #expect(recorded.cases.count > 200)
        for sample in recorded.cases {
            #expect(pieces(.llama3, sample.text) == sample.llama3, "llama3 \(sample.text.debugDescription)")
            #expect(pieces(.qwen2, sample.text) == sample.qwen2, "qwen2 \(sample.text.debugDescription)")
            #expect(pieces(.gpt2, sample.text) == sample.gpt2, "gpt2 \(sample.text.debugDescription)")
        }
    }

    @Test func recognizesTheFamiliesPatterns() throws {
        let data = try Data(contentsOf: Fixtures.root.appendingPathComponent("split_patterns.json"))
        let recorded = try JSONDecoder().decode(Recorded.self, from: data)
        let node = JSONNode(.null, file: "test")
        for (name, _, source) in Self.scanners {
            #expect(recorded.patterns[name] == source)
            let parsed = try SplitPattern.fromRegex(source, node: node)
            switch (name, parsed) {
            case ("gpt2", .gpt2), ("llama3", .llama3), ("qwen2", .qwen2): break
            default: Issue.record("\(name) pattern not mapped to its scanner")
            }
        }
        if case .regex = try SplitPattern.fromRegex(#"\p{L}+|\s+"#, node: node) {} else {
            Issue.record("an unknown pattern must fall back to NSRegularExpression")
        }
    }

    /// Characters on which ICU and Oniguruma share a Unicode version and semantics, mixed so
    /// that every alternative and backtracking path of the expressions is exercised.
    static let pools: [[Unicode.Scalar]] = [
        Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".unicodeScalars),
        Array("0123456789".unicodeScalars),
        Array("      ".unicodeScalars),
        Array("\t\n\r\n\r".unicodeScalars),
        Array("'''sStTmMdDlLrReEvV".unicodeScalars),
        Array(".,;:!?-_()[]{}<>\"/\\@#$%^&*+=|~`".unicodeScalars),
        Array("éüñçøßÅÉĳſKΩжя".unicodeScalars),
        ["\u{301}", "\u{308}", "\u{200D}", "\u{FE0F}"],
        Array("你好世界東京한국어".unicodeScalars),
        Array("😀🚀👍🏽❤🇫🇷".unicodeScalars),
        ["\u{A0}", "\u{3000}", "\u{2028}", "\u{85}", "\u{B}", "\u{C}", "\u{2009}", "\u{1680}"],
        Array("٣४²½Ⅻ①𝟙".unicodeScalars),
        ["\u{0}", "\u{7}", "\u{1B}", "\u{7F}", "\u{AD}", "\u{E000}", "\u{10FFFD}"],
    ]

    static func randomText(_ generator: inout SeededGenerator, length: Int) -> String {
        var scalars = String.UnicodeScalarView()
        for _ in 0..<length {
            let pool = pools[Int.random(in: 0..<pools.count, using: &generator)]
            scalars.append(pool[Int.random(in: 0..<pool.count, using: &generator)])
        }
        return String(scalars)
    }

    @Test(arguments: scanners.map(\.name))
    func agreesWithNSRegularExpression(_ name: String) throws {
        let (_, scanner, source) = Self.scanners.first { $0.name == name }!
        let regex = SplitPattern.regex(try CompiledRegex(source))
        var generator = SeededGenerator(state: 42)
        var texts = (0..<3000).map { _ in Self.randomText(&generator, length: Int.random(in: 0..<48, using: &generator)) }
        texts.append(Self.randomText(&generator, length: 20_000))
        for text in texts {
            let expected = pieces(regex, text)
            #expect(pieces(scanner, text) == expected, "\(name) \(text.debugDescription)")
            if pieces(scanner, text) != expected { break }
        }
    }

    @Test func scannersCoverEveryByte() {
        var generator = SeededGenerator(state: 7)
        for _ in 0..<500 {
            let text = Self.randomText(&generator, length: 40)
            for (_, scanner, _) in Self.scanners {
                #expect(pieces(scanner, text).joined() == text)
            }
        }
    }
}
