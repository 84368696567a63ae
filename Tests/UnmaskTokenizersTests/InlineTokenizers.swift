import Foundation
import UnmaskTokenizers

/// Small tokenizer.json documents written inline, for behaviour the trained fixtures
/// don't pin down.
enum Inline {
    /// A character-level BPE over `a`, `b`, `c`, space and `é`, with merges `a b` → `ab` and
    /// `ab c` → `abc`; `fields` adds or replaces top-level members.
    static func json(model: String = defaultModel, _ fields: String = "") -> Data {
        let extra = fields.isEmpty ? "" : ",\n\(fields)"
        return Data("""
        {
          "version": "1.0",
          "model": \(model)\(extra)
        }
        """.utf8)
    }

    static let defaultModel = """
    {"type": "BPE", "dropout": null, "unk_token": "<unk>", "fuse_unk": false, "byte_fallback": false,
     "vocab": {"<unk>": 0, "a": 1, "b": 2, "c": 3, " ": 4, "ab": 5, "abc": 6, "é": 7},
     "merges": ["a b", "ab c"]}
    """

    static func tokenizer(model: String = defaultModel, _ fields: String = "") throws -> Tokenizer {
        try Tokenizer(tokenizerJSON: json(model: model, fields))
    }

    static func addedTokens(_ entries: [(content: String, flags: String)]) -> String {
        let items = entries.enumerated().map { index, entry in
            #"{"id": \#(100 + index), "content": "\#(entry.content)", \#(entry.flags)}"#
        }
        return #""added_tokens": [\#(items.joined(separator: ", "))]"#
    }
}
