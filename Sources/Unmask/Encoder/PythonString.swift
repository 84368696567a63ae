/// Python's whitespace-based `str` methods, which llm2vec's text handling is written in terms of.
/// Python's `isspace` and Unicode's White_Space differ only in four ASCII separators, included here.
enum PythonString {
    static func isSpace(_ s: Unicode.Scalar) -> Bool {
        s.properties.isWhitespace || (0x1C...0x1F).contains(s.value)
    }

    /// `s.split()`: runs of whitespace separate words; no empty words.
    static func split(_ s: String) -> [String] {
        var words: [String] = []
        var start: String.Index?
        var index = s.unicodeScalars.startIndex
        while index != s.unicodeScalars.endIndex {
            let space = isSpace(s.unicodeScalars[index])
            if space, let begin = start { words.append(String(s.unicodeScalars[begin..<index])); start = nil }
            if !space, start == nil { start = index }
            index = s.unicodeScalars.index(after: index)
        }
        if let begin = start { words.append(String(s.unicodeScalars[begin...])) }
        return words
    }

    static func rstrip(_ s: String) -> String {
        var scalars = Substring(s).unicodeScalars
        while let last = scalars.last, isSpace(last) { scalars.removeLast() }
        return String(scalars)
    }

    static func strip(_ s: String) -> String {
        var scalars = Substring(rstrip(s)).unicodeScalars
        while let first = scalars.first, isSpace(first) { scalars.removeFirst() }
        return String(scalars)
    }
}
