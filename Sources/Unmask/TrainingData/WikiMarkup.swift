import Foundation

/// A heading and the plain-text paragraphs under it; the lead section has no heading.
public struct WikiSection: Equatable, Sendable {
    public var heading: String?
    public var paragraphs: [String]

    public init(heading: String?, paragraphs: [String]) {
        self.heading = heading
        self.paragraphs = paragraphs
    }
}

/// Turns MediaWiki source into plain paragraphs.
///
/// Markup that renders as text the stripper cannot reproduce (an inline `{{convert}}`, `<math>`,
/// a bare external link, an unknown entity) becomes `dropMarker`, and the sentence holding it is
/// dropped later (`TrainingText.hasMarkupResidue`): a sentence with a hole in it is worse
/// training text than no sentence.
public enum WikiMarkup {
    /// Stands in for rendered text that could not be recovered.
    public static let dropMarker = "\u{FFFC}"

    /// The page's sections, in order, each with its prose paragraphs (lists, tables, indented
    /// lines and media are left out).
    public static func sections(of wikitext: String) -> [WikiSection] {
        var text = removeCommentsAndReferences(wikitext)
        text = replaceBalanced(in: text, open: "{{", close: "}}", with: renderTemplate)
        text = removeTables(text)
        text = replaceBalanced(in: text, open: "[[", close: "]]", with: renderLink)
        text = replaceInlineFormatting(text)
        return splitSections(text)
    }

    // MARK: Whole-text passes (these constructs may span lines)

    /// Tags whose content is not prose: the whole element becomes `dropMarker`.
    static let nonProseElements = ["math", "gallery", "timeline", "imagemap", "syntaxhighlight", "source", "pre",
                                   "score", "chem", "ce", "hiero", "graph", "mapframe", "sup", "sub"]

    static func removeCommentsAndReferences(_ text: String) -> String {
        var result = text.replacingMatches(of: #"<!--.*?(-->|\z)"#, with: "")
        result = result.replacingMatches(of: #"<ref\b[^>]*/>"#, with: "")
        result = result.replacingMatches(of: #"<ref\b[^>]*>.*?</ref\s*>"#, with: "")
        let elements = nonProseElements.joined(separator: "|")
        return result.replacingMatches(of: #"<(\#(elements))\b[^>]*>.*?</\1\s*>"#, with: dropMarker)
    }

    /// Citation, footnote and maintenance templates that render nothing (or only a bracketed
    /// note) inside a sentence, so removing them leaves the sentence intact.
    static let silentTemplates: Set<String> = [
        "citation needed", "cn", "fact", "by whom", "who", "when", "which", "clarify", "clarification needed",
        "dubious", "according to whom", "vague", "page needed", "better source", "failed verification",
        "dead link", "verify source", "original research", "specify", "full citation needed", "sic", "anchor",
        "rp", "r", "sfn", "sfnp", "efn", "refn", "harvnb", "citation", "reflist", "self-published inline",
    ]

    /// A template's rendering: nothing for silent ones, the text for a few text wrappers,
    /// `dropMarker` for the rest. Templates on a line of their own (infoboxes, hatnotes, navboxes)
    /// leave a line holding only the marker, which `splitSections` skips.
    static func renderTemplate(_ inner: String) -> String {
        let parts = splitTopLevel(inner, separator: "|")
        let name = parts[0].trimmingCharacters(in: .whitespacesAndNewlines).lowercased().replacingOccurrences(of: "_", with: " ")
        if silentTemplates.contains(name) || name.hasPrefix("cite ") || name.hasPrefix("use ") { return "" }
        switch name {
        case "lang" where parts.count >= 3: return parts.last!
        case "nowrap" where parts.count == 2: return parts[1]
        case "ndash", "snd": return " – "
        case "mdash": return "—"
        default: return dropMarker
        }
    }

    /// Blanks `{| … |}` tables (which nest) line by line; the blank lines keep the paragraphs
    /// before and after a table apart.
    static func removeTables(_ text: String) -> String {
        var depth = 0
        var lines: [Substring] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.drop(while: { $0 == " " || $0 == "\t" })
            if trimmed.hasPrefix("{|") { depth += 1 } else if depth > 0, trimmed.hasPrefix("|}") { depth -= 1 } else if depth == 0 {
                lines.append(line)
                continue
            }
            lines.append("")
        }
        return lines.joined(separator: "\n")
    }

    static let mediaNamespaces: Set<String> = ["file", "image", "media", "category"]

    /// `[[target|label]]` → label, `[[target]]` → target; media, categories and interlanguage
    /// links render nothing here (a figure caption is not running text).
    static func renderLink(_ inner: String) -> String {
        let parts = splitTopLevel(inner, separator: "|")
        var target = parts[0].trimmingCharacters(in: .whitespaces)
        let isEscaped = target.hasPrefix(":")  // [[:Category:X|y]] is an ordinary link to the category page
        if isEscaped { target.removeFirst() }
        if let colon = target.firstIndex(of: ":") {
            let namespace = target[..<colon].lowercased()
            if mediaNamespaces.contains(namespace) && !isEscaped { return "" }
            // Interlanguage links ([[de:Anarchismus]]) show nothing; a bare [[wikt:x]] would show its prefix.
            if parts.count == 1 { return namespace.count <= 3 && !isEscaped ? "" : dropMarker }
        }
        guard parts.count > 1 else { return target }
        let label = parts.last!.trimmingCharacters(in: .whitespaces)
        // The pipe trick: [[Paris, Texas|]] shows "Paris", [[Mercury (planet)|]] shows "Mercury".
        if label.isEmpty { return target.replacingMatches(of: #"\s*(\([^)]*\)|,.*)$"#, with: "") }
        return replaceBalanced(in: label, open: "[[", close: "]]", with: renderLink)
    }

    /// External links, bold/italic quotes, remaining HTML tags, magic words and entities.
    static func replaceInlineFormatting(_ text: String) -> String {
        var result = text.replacingMatches(of: #"\[(?:https?:|ftp:|//)[^\s\]]+\s+([^\]]+)\]"#, with: "$1")
        result = result.replacingMatches(of: #"\[(?:https?:|ftp:|//)[^\s\]]*\]"#, with: dropMarker)
        result = result.replacingMatches(of: #"'{2,}"#, with: "")
        result = result.replacingMatches(of: #"<br\s*/?>"#, with: " ")
        result = result.replacingMatches(of: #"</?[A-Za-z][A-Za-z0-9]*\b[^>]*>"#, with: "")
        result = result.replacingMatches(of: #"__[A-Z]+__"#, with: "")
        result = result.replacingMatches(of: #"\[[0-9]{1,3}\]"#, with: "")  // footnote numbers typed as text
        return HTMLEntities.decode(result, unknown: dropMarker)
    }

    // MARK: Lines

    /// Splits on headings; keeps prose lines, joining consecutive ones into a paragraph.
    static func splitSections(_ text: String) -> [WikiSection] {
        var sections = [WikiSection(heading: nil, paragraphs: [])]
        var paragraph: [String] = []
        func endParagraph() {
            if !paragraph.isEmpty { sections[sections.count - 1].paragraphs.append(paragraph.joined(separator: " ")) }
            paragraph = []
        }
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = collapseWhitespace(String(rawLine))
            if let heading = heading(line) {
                endParagraph()
                sections.append(WikiSection(heading: heading, paragraphs: []))
            } else if line.replacingOccurrences(of: dropMarker, with: "").trimmingCharacters(in: .whitespaces).isEmpty {
                endParagraph()
            } else if let first = line.first, "*#:;|!{}=".contains(first) {
                endParagraph()  // list items, indents, table or template leftovers
            } else {
                paragraph.append(line)
            }
        }
        endParagraph()
        return sections.filter { !$0.paragraphs.isEmpty || $0.heading != nil }
    }

    /// `== History ==` → "History".
    static func heading(_ line: String) -> String? {
        guard line.hasPrefix("="), line.hasSuffix("="), line.count > 2 else { return nil }
        let title = line.trimmingCharacters(in: CharacterSet(charactersIn: "= "))
        return title.isEmpty ? nil : title
    }

    /// Single spaces, none before punctuation (removed references leave "word ." behind).
    static func collapseWhitespace(_ text: String) -> String {
        let single = text.replacingMatches(of: #"\s+"#, with: " ")
        return single.replacingMatches(of: #" ([.,;:!?)])"#, with: "$1").trimmingCharacters(in: .whitespaces)
    }

    // MARK: Helpers

    /// Replaces every outermost `open … close` span (nesting allowed) by `render(inner)`; an
    /// opener without a closer is left as it is, so the residue filter drops its sentence.
    static func replaceBalanced(in text: String, open: String, close: String, with render: (String) -> String) -> String {
        let scalars = Array(text.unicodeScalars)
        let openScalars = Array(open.unicodeScalars), closeScalars = Array(close.unicodeScalars)
        func matches(_ pattern: [Unicode.Scalar], at index: Int) -> Bool {
            index + pattern.count <= scalars.count && scalars[index..<(index + pattern.count)].elementsEqual(pattern)
        }
        var result = String.UnicodeScalarView()
        var index = 0
        while index < scalars.count {
            guard matches(openScalars, at: index) else { result.append(scalars[index]); index += 1; continue }
            var depth = 0, cursor = index, end: Int? = nil
            while cursor < scalars.count {
                if matches(openScalars, at: cursor) { depth += 1; cursor += openScalars.count }
                else if matches(closeScalars, at: cursor) {
                    depth -= 1; cursor += closeScalars.count
                    if depth == 0 { end = cursor; break }
                } else { cursor += 1 }
            }
            guard let end else { result.append(scalars[index]); index += 1; continue }
            let inner = String(String.UnicodeScalarView(scalars[(index + openScalars.count)..<(end - closeScalars.count)]))
            result.append(contentsOf: render(inner).unicodeScalars)
            index = end
        }
        return String(result)
    }

    /// Splits on `separator` outside nested `{{ }}` and `[[ ]]`.
    static func splitTopLevel(_ text: String, separator: Character) -> [String] {
        var parts: [String] = [], current = "", depth = 0
        var previous: Character? = nil
        for character in text {
            if (character == "{" || character == "[") && previous == character { depth += 1 }
            if (character == "}" || character == "]") && previous == character { depth = max(0, depth - 1) }
            if character == separator && depth == 0 { parts.append(current); current = "" } else { current.append(character) }
            previous = character
        }
        parts.append(current)
        return parts
    }
}
