import Foundation

/// Character references (`&amp;`, `&nbsp;`, `&#8211;`), decoded in one left-to-right pass so a
/// decoded `&` never starts a second reference (`&amp;lt;` is the text `&lt;`).
enum HTMLEntities {
    /// The five XML escapes: a dump's `<text>` is XML-escaped wikitext.
    static let xml: [String: String] = ["amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'"]

    /// The HTML entities that occur in Wikipedia prose.
    static let html: [String: String] = xml.merging([
        "nbsp": " ", "thinsp": " ", "ensp": " ", "emsp": " ", "ndash": "–", "mdash": "—", "minus": "−",
        "times": "×", "deg": "°", "hellip": "…", "prime": "′", "Prime": "″", "middot": "·", "bull": "•",
        "lsquo": "‘", "rsquo": "’", "ldquo": "“", "rdquo": "”", "laquo": "«", "raquo": "»", "frac12": "½",
        "frac14": "¼", "frac34": "¾", "plusmn": "±", "pound": "£", "euro": "€", "cent": "¢", "sect": "§",
        "copy": "©", "reg": "®", "trade": "™", "zwj": "", "zwnj": "", "shy": "",
    ]) { first, _ in first }

    /// Decodes `names` and numeric references; any other reference becomes `unknown` (or stays
    /// as it is when `unknown` is nil).
    static func decode(_ text: String, names: [String: String] = html, unknown: String? = nil) -> String {
        guard text.contains("&") else { return text }
        let regex = RegexCache.shared.regex(#"&(#x[0-9a-f]+|#[0-9]+|[a-z][a-z0-9]*);"#)
        var result = "", last = text.startIndex
        for match in regex.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
            guard let whole = Range(match.range, in: text), let nameRange = Range(match.range(at: 1), in: text) else { continue }
            result += text[last..<whole.lowerBound]
            result += character(named: String(text[nameRange]), names: names) ?? unknown ?? String(text[whole])
            last = whole.upperBound
        }
        return result + text[last...]
    }

    private static func character(named name: String, names: [String: String]) -> String? {
        if let named = names[name] { return named }
        guard name.hasPrefix("#") else { return nil }
        let digits = name.dropFirst()
        let value = digits.lowercased().hasPrefix("x") ? UInt32(digits.dropFirst(), radix: 16) : UInt32(digits)
        return value.flatMap(Unicode.Scalar.init).map { String(Character($0)) }
    }
}
