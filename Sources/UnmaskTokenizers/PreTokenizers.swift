/// Text being cut into words. All pieces share one UTF-8 buffer, so a split only rewrites
/// ranges; only transformations (byte mapping, meta-space replacement) copy bytes.
struct Pieces {
    var bytes: [UInt8]
    var ranges: [Range<Int>]
    /// Whether the first piece begins at offset 0 of the caller's text; Metaspace's
    /// `prepend_scheme: "first"` only prefixes such a piece.
    var firstAtOrigin: Bool
}

/// HF's `SplitDelimiterBehavior`: what happens to the matched delimiters.
enum SplitBehavior: String, Sendable, CaseIterable {
    case removed = "Removed"
    case isolated = "Isolated"
    case mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext"
    case contiguous = "Contiguous"

    /// Appends the pieces of `range` given the delimiter `matches` found in it, folding them
    /// exactly as HF's `NormalizedString::split` does. Empty pieces are dropped.
    func apply(to range: Range<Int>, matches: [Range<Int>], invert: Bool, into out: inout [Range<Int>]) {
        var events: [(range: Range<Int>, isMatch: Bool)] {
            var events: [(range: Range<Int>, isMatch: Bool)] = []
            var cursor = range.lowerBound
            for match in matches {
                if cursor < match.lowerBound { events.append((cursor..<match.lowerBound, invert)) }
                events.append((match, !invert))
                cursor = match.upperBound
            }
            if cursor < range.upperBound { events.append((cursor..<range.upperBound, invert)) }
            return events
        }
        var pieces: [Range<Int>] = []
        var previousMatch = false
        switch self {
        case .isolated:
            // Every match and every gap becomes a piece, whichever side is "the match"; this
            // is the hot path, so it skips building the event list.
            var cursor = range.lowerBound
            for match in matches {
                if cursor < match.lowerBound { out.append(cursor..<match.lowerBound) }
                out.append(match)
                cursor = match.upperBound
            }
            if cursor < range.upperBound { out.append(cursor..<range.upperBound) }
            return
        case .removed:
            pieces = events.filter { !$0.isMatch }.map(\.range)
        case .mergedWithPrevious:
            for event in events {
                if event.isMatch && !previousMatch, let last = pieces.last {
                    pieces[pieces.count - 1] = last.lowerBound..<event.range.upperBound
                } else {
                    pieces.append(event.range)
                }
                previousMatch = event.isMatch
            }
        case .mergedWithNext:
            for event in events.reversed() {
                if event.isMatch && !previousMatch, let last = pieces.last {
                    pieces[pieces.count - 1] = event.range.lowerBound..<last.upperBound
                } else {
                    pieces.append(event.range)
                }
                previousMatch = event.isMatch
            }
            pieces.reverse()
        case .contiguous:
            for event in events {
                if event.isMatch == previousMatch, let last = pieces.last {
                    pieces[pieces.count - 1] = last.lowerBound..<event.range.upperBound
                } else {
                    pieces.append(event.range)
                }
                previousMatch = event.isMatch
            }
        }
        out.append(contentsOf: pieces.filter { !$0.isEmpty })
    }
}

enum PrependScheme: String, Sendable {
    case first, always, never
}

/// SentencePiece-style whitespace handling: spaces become `replacement` (normally `▁`).
struct Metaspace: Sendable {
    let replacement: [UInt8]
    let prependScheme: PrependScheme
    let split: Bool

    static func parse(_ node: JSONNode) throws -> Metaspace {
        let replacementNode = try node.required("replacement")
        let replacement = try replacementNode.string()
        guard replacement.unicodeScalars.count == 1 else { throw replacementNode.error("must be a single character") }
        var scheme = PrependScheme.always
        if let schemeNode = try node.optional("prepend_scheme") {
            let name = try schemeNode.string()
            guard let parsed = PrependScheme(rawValue: name) else {
                throw schemeNode.error("\"\(name)\" is not one of first, always, never")
            }
            scheme = parsed
        }
        // Older files only have `add_prefix_space`; false there means "never".
        if try node.bool("add_prefix_space", default: true) == false { scheme = .never }
        return Metaspace(replacement: Array(replacement.utf8), prependScheme: scheme,
                         split: try node.bool("split", default: true))
    }
}

enum PreTokenizer: Sendable {
    case sequence([PreTokenizer])
    case split(SplitPattern, SplitBehavior, invert: Bool)
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    case digits(individual: Bool)
    case metaspace(Metaspace)
    case bert

    static let supported = ["ByteLevel", "Split", "Digits", "Metaspace", "BertPreTokenizer", "Sequence"]

    static func parse(_ node: JSONNode) throws -> PreTokenizer {
        let type = try node.typeTag()
        switch type {
        case "Sequence":
            return .sequence(try node.required("pretokenizers").array().map(parse))
        case "Split":
            let behaviorNode = try node.required("behavior")
            let name = try behaviorNode.string()
            guard let behavior = SplitBehavior(rawValue: name) else {
                let names = SplitBehavior.allCases.map(\.rawValue).joined(separator: ", ")
                throw behaviorNode.error("\"\(name)\" is not one of \(names)")
            }
            return .split(try SplitPattern.parse(try node.required("pattern")), behavior,
                          invert: try node.bool("invert", default: false))
        case "ByteLevel":
            return .byteLevel(addPrefixSpace: try node.bool("add_prefix_space", default: true),
                              useRegex: try node.bool("use_regex", default: true))
        case "Digits":
            return .digits(individual: try node.bool("individual_digits", default: false))
        case "Metaspace":
            return .metaspace(try Metaspace.parse(node))
        case "BertPreTokenizer":
            return .bert
        default:
            throw node.unsupported(type, supported: supported)
        }
    }

    var containsByteLevel: Bool {
        switch self {
        case .byteLevel: true
        case .sequence(let steps): steps.contains { $0.containsByteLevel }
        default: false
        }
    }

    var containsMetaspace: Bool {
        switch self {
        case .metaspace: true
        case .sequence(let steps): steps.contains { $0.containsMetaspace }
        default: false
        }
    }

    func apply(_ pieces: inout Pieces) {
        switch self {
        case .bert:
            BertPreTokenizer.apply(&pieces)
        case .sequence(let steps):
            for step in steps { step.apply(&pieces) }
        case .split(let pattern, let behavior, let invert):
            splitEach(&pieces, behavior: behavior, invert: invert) { text, range, matches in
                pattern.matches(in: text, range, into: &matches)
            }
        case .byteLevel(let addPrefixSpace, let useRegex):
            if addPrefixSpace {
                transformEach(&pieces) { text, range, _, out in
                    if text[range.lowerBound] != 0x20 { out.append(0x20) }
                    out.append(contentsOf: text[range])
                }
            }
            if useRegex {
                splitEach(&pieces, behavior: .isolated, invert: false) { text, range, matches in
                    SplitPattern.gpt2.matches(in: text, range, into: &matches)
                }
            }
            transformEach(&pieces) { text, range, _, out in ByteLevel.map(text, range, into: &out) }
        case .digits(let individual):
            // Rust's `char::is_numeric` is exactly the \p{N} class the scanners use.
            CharacterClass.basicPlane.withUnsafeBufferPointer { classes in
                splitEach(&pieces, behavior: individual ? .isolated : .contiguous, invert: false) { text, range, matches in
                    var index = range.lowerBound
                    while index < range.upperBound {
                        let (scalar, length) = decodeScalar(text, index)
                        if CharacterClass.of(scalar, classes) == CharacterClass.number {
                            matches.append(index..<index + length)
                        }
                        index += length
                    }
                }
            }
        case .metaspace(let metaspace):
            let firstAtOrigin = pieces.firstAtOrigin
            transformEach(&pieces) { text, range, index, out in
                let startsWithSpace = text[range.lowerBound] == 0x20
                let startsWithReplacement = startsWithSpace
                    || text[range].starts(with: metaspace.replacement)
                let prepend = switch metaspace.prependScheme {
                case .always: !startsWithReplacement
                case .first: !startsWithReplacement && index == 0 && firstAtOrigin
                case .never: false
                }
                if prepend { out.append(contentsOf: metaspace.replacement) }
                for byte in text[range] {
                    if byte == 0x20 {
                        out.append(contentsOf: metaspace.replacement)
                    } else {
                        out.append(byte)
                    }
                }
            }
            if metaspace.split {
                let delimiter = SplitPattern.literal(metaspace.replacement)
                splitEach(&pieces, behavior: .mergedWithNext, invert: false) { text, range, matches in
                    delimiter.matches(in: text, range, into: &matches)
                }
            }
        }
    }

    /// Re-splits every piece; the buffer is untouched.
    private func splitEach(
        _ pieces: inout Pieces, behavior: SplitBehavior, invert: Bool,
        findMatches: (UnsafeBufferPointer<UInt8>, Range<Int>, inout [Range<Int>]) -> Void
    ) {
        var ranges: [Range<Int>] = []
        ranges.reserveCapacity(pieces.ranges.count)
        var matches: [Range<Int>] = []
        pieces.bytes.withUnsafeBufferPointer { text in
            for range in pieces.ranges {
                matches.removeAll(keepingCapacity: true)
                findMatches(text, range, &matches)
                behavior.apply(to: range, matches: matches, invert: invert, into: &ranges)
            }
        }
        if let first = pieces.ranges.first, ranges.first?.lowerBound != first.lowerBound {
            pieces.firstAtOrigin = false
        }
        pieces.ranges = ranges
    }

    /// Rewrites every piece into a new buffer; `write` gets the piece's index.
    private func transformEach(
        _ pieces: inout Pieces,
        write: (UnsafeBufferPointer<UInt8>, Range<Int>, Int, inout [UInt8]) -> Void
    ) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(pieces.bytes.count + pieces.bytes.count / 2)
        var ranges: [Range<Int>] = []
        ranges.reserveCapacity(pieces.ranges.count)
        pieces.bytes.withUnsafeBufferPointer { text in
            for (index, range) in pieces.ranges.enumerated() {
                let start = bytes.count
                write(text, range, index, &bytes)
                ranges.append(start..<bytes.count)
            }
        }
        pieces.bytes = bytes
        pieces.ranges = ranges
    }
}
