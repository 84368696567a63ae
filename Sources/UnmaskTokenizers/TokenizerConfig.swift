import Foundation

/// The parts of transformers' `tokenizer_config.json` and `special_tokens_map.json` that
/// matter outside Python.
struct TokenizerConfig: Sendable {
    static let specialTokenKeys = ["bos_token", "eos_token", "pad_token", "unk_token"]

    /// Special-token names by key; a present key with a nil value was written as `null`.
    var specialTokens: [String: String?] = [:]
    var modelMaxLength: Int?
    var cleanUpTokenizationSpaces = false
    var chatTemplate: String?

    /// Reads tokenizer_config.json.
    mutating func read(config data: Data, file: String) throws {
        let root = JSONNode(try JSONValue.parse(data, file: file), file: file)
        _ = try root.members()
        try readSpecialTokens(root)
        if let length = try root.optional("model_max_length") {
            // transformers writes 1e30 for "no limit".
            let value = try length.double()
            modelMaxLength = value >= 1 && value < 1e15 ? Int(value) : nil
        }
        cleanUpTokenizationSpaces = try root.bool("clean_up_tokenization_spaces", default: false)
        if let template = try root.optional("chat_template") {
            chatTemplate = try Self.chatTemplate(template)
        }
    }

    /// Reads special_tokens_map.json, whose entries win over tokenizer_config.json's as
    /// they do in transformers.
    mutating func read(specialTokensMap data: Data, file: String) throws {
        let root = JSONNode(try JSONValue.parse(data, file: file), file: file)
        _ = try root.members()
        try readSpecialTokens(root)
    }

    private mutating func readSpecialTokens(_ root: JSONNode) throws {
        for key in Self.specialTokenKeys {
            guard case .object(let members) = root.value, members.contains(where: { $0.key == key }) else { continue }
            guard let node = try root.optional(key) else {
                specialTokens[key] = .some(nil)
                continue
            }
            switch node.value {
            case .string(let content):
                specialTokens[key] = content
            case .object:
                specialTokens[key] = try node.required("content").string()
            default:
                throw node.error("must be a string or an AddedToken object, found \(node.value.typeName)")
            }
        }
    }

    /// A template string, or the one named "default" in a list of `{name, template}`.
    private static func chatTemplate(_ node: JSONNode) throws -> String? {
        if case .string(let template) = node.value { return template }
        var first: String?
        for entry in try node.array() {
            let template = try entry.required("template").string()
            if try entry.string("name") == "default" { return template }
            first = first ?? template
        }
        return first
    }
}
