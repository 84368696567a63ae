import Foundation

/// What a `Split` pre-tokenizer or a `Replace` normalizer/decoder searches for.
///
/// The regular expressions used by the GPT-2, Llama-3 and Qwen2 families are recognized by
/// their exact source text and run by hand-written scanners; any other expression falls back
/// to `NSRegularExpression`, which is far slower but understands the same syntax for the
/// constructs tokenizers use.
enum SplitPattern: Sendable {
    case gpt2
    case llama3
    case qwen2
    /// Llama-3 and Qwen2 with the contractions spelled `'[sS]|'[tT]|…` instead of
    /// `(?i:'s|'t|…)`, as llama.cpp runs them: the same except that U+017F (ſ) is not an `s`.
    case llama3ExplicitCase
    case qwen2ExplicitCase
    case literal([UInt8])
    case regex(CompiledRegex)

    static let gpt2Source = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let llama3Source =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Source =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    static let llama3ExplicitCaseSource =
        #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2ExplicitCaseSource =
        #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// Reads HF's `{"String": …}` / `{"Regex": …}` pattern object.
    static func parse(_ node: JSONNode) throws -> SplitPattern {
        if let literal = try node.optional("String") {
            return .literal(Array(try literal.string().utf8))
        }
        if let regex = try node.optional("Regex") {
            return try fromRegex(try regex.string(), node: regex)
        }
        throw node.error("must be {\"String\": …} or {\"Regex\": …}")
    }

    static func fromRegex(_ source: String, node: JSONNode) throws -> SplitPattern {
        switch source {
        case gpt2Source: return .gpt2
        case llama3Source: return .llama3
        case qwen2Source: return .qwen2
        case llama3ExplicitCaseSource: return .llama3ExplicitCase
        case qwen2ExplicitCaseSource: return .qwen2ExplicitCase
        default:
            do {
                return .regex(try CompiledRegex(source))
            } catch {
                throw node.error("is not a regular expression this tokenizer can run: \(source)")
            }
        }
    }

    /// Appends the non-empty, non-overlapping matches inside `range`, in order.
    func matches(in text: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, into out: inout [Range<Int>]) {
        switch self {
        case .gpt2:
            CharacterClass.basicPlane.withUnsafeBufferPointer { PatternScanner.gpt2(text, range, $0, into: &out) }
        case .llama3:
            CharacterClass.basicPlane.withUnsafeBufferPointer {
                PatternScanner.llama3(text, range, $0, maxDigits: 3, into: &out)
            }
        case .qwen2:
            CharacterClass.basicPlane.withUnsafeBufferPointer {
                PatternScanner.llama3(text, range, $0, maxDigits: 1, into: &out)
            }
        case .llama3ExplicitCase:
            CharacterClass.basicPlane.withUnsafeBufferPointer {
                PatternScanner.llama3(text, range, $0, maxDigits: 3, foldsLongS: false, into: &out)
            }
        case .qwen2ExplicitCase:
            CharacterClass.basicPlane.withUnsafeBufferPointer {
                PatternScanner.llama3(text, range, $0, maxDigits: 1, foldsLongS: false, into: &out)
            }
        case .literal(let needle):
            literalMatches(needle, in: text, range, into: &out)
        case .regex(let regex):
            regex.matches(in: text, range, into: &out)
        }
    }

    private func literalMatches(
        _ needle: [UInt8], in text: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, into out: inout [Range<Int>]
    ) {
        guard let first = needle.first else { return }
        var index = range.lowerBound
        let last = range.upperBound - needle.count
        while index <= last {
            if text[index] == first && needle.withUnsafeBufferPointer({
                memcmp(text.baseAddress! + index, $0.baseAddress!, needle.count) == 0
            }) {
                out.append(index..<index + needle.count)
                index += needle.count
            } else {
                index += 1
            }
        }
    }
}

/// Hand-coded equivalents of the GPT-2 and Llama-3/Qwen2 split expressions under
/// Oniguruma's leftmost-first alternation. Each function walks Unicode scalars and, at each
/// position, tries the alternatives in the order the expression lists them.
enum PatternScanner {
    private static let apostrophe: UInt32 = 0x27
    private static let space: UInt32 = 0x20
    private static let carriageReturn: UInt32 = 0x0D
    private static let lineFeed: UInt32 = 0x0A

    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    static func gpt2(
        _ text: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ classes: UnsafeBufferPointer<UInt8>,
        into out: inout [Range<Int>]
    ) {
        let end = range.upperBound
        var start = range.lowerBound
        while start < end {
            let (scalar, length) = decodeScalar(text, start)
            let kind = CharacterClass.of(scalar, classes)
            var stop = start + length
            if scalar == apostrophe, let suffix = contraction(text, stop, end, ignoringCase: false) {
                stop += suffix
            } else if kind != CharacterClass.whitespace {
                stop = skipRun(of: kind, text, from: stop, end, classes)
            } else if scalar == space, stop < end,
                      case let (next, nextLength) = decodeScalar(text, stop),
                      case let nextKind = CharacterClass.of(next, classes), nextKind != CharacterClass.whitespace {
                stop = skipRun(of: nextKind, text, from: stop + nextLength, end, classes)
            } else {
                stop = whitespaceMatchEnd(text, start, end, classes, stopAfterNewline: false)
            }
            out.append(start..<stop)
            start = stop
        }
    }

    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,maxDigits}|`
    /// ` ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+` (Llama-3: 3 digits, Qwen2: 1).
    /// Without `foldsLongS` the contractions are ASCII-case-insensitive only (`'[sS]|…`).
    static func llama3(
        _ text: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ classes: UnsafeBufferPointer<UInt8>,
        maxDigits: Int, foldsLongS: Bool = true, into out: inout [Range<Int>]
    ) {
        let end = range.upperBound
        var start = range.lowerBound
        while start < end {
            let (scalar, length) = decodeScalar(text, start)
            let kind = CharacterClass.of(scalar, classes)
            var stop = start + length
            let isNewline = scalar == carriageReturn || scalar == lineFeed
            if scalar == apostrophe,
               let suffix = contraction(text, stop, end, ignoringCase: true, foldsLongS: foldsLongS) {
                stop += suffix
            } else if kind == CharacterClass.letter {
                stop = skipRun(of: CharacterClass.letter, text, from: stop, end, classes)
            } else if kind != CharacterClass.number, !isNewline, stop < end,
                      case let (next, nextLength) = decodeScalar(text, stop),
                      CharacterClass.of(next, classes) == CharacterClass.letter {
                stop = skipRun(of: CharacterClass.letter, text, from: stop + nextLength, end, classes)
            } else if kind == CharacterClass.number {
                var digits = 1
                while digits < maxDigits, stop < end {
                    let (next, nextLength) = decodeScalar(text, stop)
                    guard CharacterClass.of(next, classes) == CharacterClass.number else { break }
                    stop += nextLength
                    digits += 1
                }
            } else if kind == CharacterClass.other {
                stop = skipNewlines(text, from: skipRun(of: CharacterClass.other, text, from: stop, end, classes), end)
            } else if scalar == space, stop < end,
                      case let (next, nextLength) = decodeScalar(text, stop),
                      CharacterClass.of(next, classes) == CharacterClass.other {
                let others = skipRun(of: CharacterClass.other, text, from: stop + nextLength, end, classes)
                stop = skipNewlines(text, from: others, end)
            } else {
                stop = whitespaceMatchEnd(text, start, end, classes, stopAfterNewline: true)
            }
            out.append(start..<stop)
            start = stop
        }
    }

    /// Length of the contraction suffix after an apostrophe (`s`, `t`, `re`, `ve`, `m`, `ll`,
    /// `d`), or nil. Oniguruma's case folding also maps U+017F LATIN SMALL LETTER LONG S to `s`.
    @inline(__always)
    private static func contraction(
        _ text: UnsafeBufferPointer<UInt8>, _ index: Int, _ end: Int, ignoringCase: Bool, foldsLongS: Bool = true
    ) -> Int? {
        guard index < end else { return nil }
        func fold(_ value: UInt32) -> UInt32 {
            guard ignoringCase else { return value }
            if value >= 0x41 && value <= 0x5A { return value | 0x20 }
            return value == 0x17F && foldsLongS ? 0x73 : value
        }
        let (first, firstLength) = decodeScalar(text, index)
        let letter = fold(first)
        switch letter {
        case 0x73, 0x74, 0x6D, 0x64:  // s t m d
            return firstLength
        case 0x72, 0x76, 0x6C:  // r v l
            guard index + firstLength < end else { return nil }
            let (second, secondLength) = decodeScalar(text, index + firstLength)
            let expected: UInt32 = letter == 0x6C ? 0x6C : 0x65  // "ll", "re", "ve"
            return fold(second) == expected ? firstLength + secondLength : nil
        default:
            return nil
        }
    }

    @inline(__always)
    private static func skipRun(
        of kind: UInt8, _ text: UnsafeBufferPointer<UInt8>, from index: Int, _ end: Int,
        _ classes: UnsafeBufferPointer<UInt8>
    ) -> Int {
        var position = index
        while position < end {
            let byte = text[position]
            // ASCII fast path: no decoding, and the table lookup is a plain index.
            if byte < 0x80 {
                guard classes[Int(byte)] == kind else { break }
                position += 1
                continue
            }
            let (scalar, length) = decodeScalar(text, position)
            guard CharacterClass.of(scalar, classes) == kind else { break }
            position += length
        }
        return position
    }

    @inline(__always)
    private static func skipNewlines(_ text: UnsafeBufferPointer<UInt8>, from index: Int, _ end: Int) -> Int {
        var position = index
        while position < end, text[position] == 0x0D || text[position] == 0x0A { position += 1 }
        return position
    }

    /// End of the match for a whitespace run starting at `start`:
    /// `\s*[\r\n]+` (only when `stopAfterNewline`) ends after the run's last CR/LF;
    /// `\s+(?!\S)` takes the run, minus its last scalar unless the run ends the text;
    /// `\s+` covers a single whitespace scalar before a non-space.
    @inline(__always)
    private static func whitespaceMatchEnd(
        _ text: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, _ classes: UnsafeBufferPointer<UInt8>,
        stopAfterNewline: Bool
    ) -> Int {
        var position = start
        var lastStart = start
        var afterNewline = -1
        while position < end {
            let (scalar, length) = decodeScalar(text, position)
            guard CharacterClass.of(scalar, classes) == CharacterClass.whitespace else { break }
            if scalar == carriageReturn || scalar == lineFeed { afterNewline = position + length }
            lastStart = position
            position += length
        }
        if stopAfterNewline && afterNewline >= 0 { return afterNewline }
        if position == end || lastStart == start { return position }
        return lastStart
    }
}

/// A regular expression outside the hand-coded set, run through `NSRegularExpression`
/// (ICU). ICU agrees with Oniguruma on `\s`, `\p{…}`, `(?i:…)` and lookahead, which covers
/// what tokenizer patterns use.
final class CompiledRegex: @unchecked Sendable {
    // NSRegularExpression is immutable once built and documented as safe to share.
    private let expression: NSRegularExpression

    init(_ source: String) throws {
        expression = try NSRegularExpression(pattern: source)
    }

    func matches(in text: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, into out: inout [Range<Int>]) {
        let string = String(decoding: UnsafeBufferPointer(rebasing: text[range]), as: UTF8.self)
        // NSRegularExpression reports UTF-16 offsets; map them back to UTF-8 offsets.
        var utf8Offset = [Int]()
        utf8Offset.reserveCapacity(string.utf16.count + 1)
        var offset = range.lowerBound
        for scalar in string.unicodeScalars {
            let width = UTF8.width(scalar)
            utf8Offset.append(offset)
            if scalar.value > 0xFFFF { utf8Offset.append(offset) }
            offset += width
        }
        utf8Offset.append(offset)
        let all = NSRange(location: 0, length: string.utf16.count)
        for match in expression.matches(in: string, range: all) where match.range.length > 0 {
            out.append(utf8Offset[match.range.location]..<utf8Offset[match.range.location + match.range.length])
        }
    }
}
