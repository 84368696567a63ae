import Foundation
import UnmaskTokenizers

/// One token as TEI's `/tokenize` reports it: `start`/`stop` are UTF-8 byte offsets into the
/// input (TEI's, from the tokenizer's offset mapping), `text` that slice of the input; special
/// tokens carry their own text and no offsets.
struct TokenSpan: Sendable, Equatable {
    var id: Int
    var text: String
    var special: Bool
    var start: Int?
    var stop: Int?

    /// The tokenizer has no offset mapping, so offsets come from decoding: each token's share of
    /// the text is what it adds when decoded after the few tokens before it (a short window keeps
    /// this linear and lets byte-level tokens that split a character settle).
    static func spans(of text: String, tokenizer: Tokenizer, addSpecialTokens: Bool) -> [TokenSpan] {
        let core = tokenizer.encode(text, addSpecialTokens: false)
        let full = addSpecialTokens ? tokenizer.encode(text, addSpecialTokens: true) : core
        // full = prefix + core + suffix.
        var prefixCount = 0
        if full.count > core.count {
            let extra = full.count - core.count
            prefixCount = (0...extra).first { p in full[p..<(p + core.count)].elementsEqual(core) } ?? (tokenizer.addsBOS ? 1 : 0)
        }
        let bytes = Array(text.utf8)
        var spans: [TokenSpan] = []
        spans.reserveCapacity(full.count)
        func specialSpan(_ id: Int) -> TokenSpan {
            TokenSpan(id: id, text: tokenizer.token(forId: id) ?? "", special: true, start: nil, stop: nil)
        }
        for id in full.prefix(prefixCount) { spans.append(specialSpan(id)) }
        var cursor = 0
        let window = 4
        for i in core.indices {
            let from = max(0, i - window)
            let before = i == from ? 0 : tokenizer.decode(Array(core[from..<i])).utf8.count
            let after = tokenizer.decode(Array(core[from...i])).utf8.count
            let start = cursor
            let stop = min(bytes.count, max(start, start + after - before))
            cursor = stop
            let id = core[i]
            if tokenizer.specialTokenIds.contains(id) {
                spans.append(specialSpan(id))
            } else {
                spans.append(TokenSpan(id: id, text: String(decoding: bytes[start..<stop], as: UTF8.self), special: false, start: start, stop: stop))
            }
        }
        for id in full.suffix(from: min(full.count, prefixCount + core.count)) { spans.append(specialSpan(id)) }
        return spans
    }
}
