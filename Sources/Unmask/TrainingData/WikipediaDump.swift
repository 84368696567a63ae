import Foundation

/// An encyclopedia article from a MediaWiki XML export, as plain-text sections.
public struct WikiArticle: Equatable, Sendable {
    public var title: String
    public var sections: [WikiSection]

    public init(title: String, sections: [WikiSection]) {
        self.title = title
        self.sections = sections
    }
}

/// Reads `pages-articles` XML exports (the gensim test dump is one, bzip2-compressed).
public enum WikipediaDump {
    /// Articles: main-namespace pages that are neither redirects nor disambiguation pages.
    /// The export is one flat list of `<page>` elements, so plain scanning is enough.
    public static func articles(fromXML xml: String) -> [WikiArticle] {
        xml.components(separatedBy: "<page>").dropFirst().compactMap { page in
            guard element("ns", in: page) == "0", !page.contains("<redirect"),
                  let title = element("title", in: page).map({ HTMLEntities.decode($0, names: HTMLEntities.xml) }),
                  let source = element("text", in: page).map({ HTMLEntities.decode($0, names: HTMLEntities.xml) }),
                  !isDisambiguation(title: title, source: source) else { return nil }
            return WikiArticle(title: title, sections: WikiMarkup.sections(of: source))
        }
    }

    /// The content of the first `<name …>…</name>` in `page`.
    static func element(_ name: String, in page: String) -> String? {
        guard let open = page.range(of: "<\(name)"), let openEnd = page[open.upperBound...].firstIndex(of: ">"),
              page[open.upperBound..<openEnd].first.map({ $0 == " " || $0 == "/" }) ?? true else { return nil }
        if page[..<openEnd].hasSuffix("/") { return "" }  // <text ... />
        guard let close = page.range(of: "</\(name)>", range: page.index(after: openEnd)..<page.endIndex) else { return nil }
        return String(page[page.index(after: openEnd)..<close.lowerBound])
    }

    static func isDisambiguation(title: String, source: String) -> Bool {
        title.hasSuffix("(disambiguation)") || source.range(of: #"\{\{\s*(disambig|dab\b|hndis|geodis)"#, options: [.regularExpression, .caseInsensitive]) != nil
    }
}
