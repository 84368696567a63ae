/// What the post-processor does to a single sequence: every supported processor only adds
/// fixed special-token ids around it (`ByteLevel` only adjusts offsets, which we don't track).
struct PostProcessor: Sendable {
    var prefix: [Int32] = []
    var suffix: [Int32] = []
    /// The special tokens around `$A`, for guessing BOS/EOS when no config names them.
    var prefixTokens: [String] = []
    var suffixTokens: [String] = []

    static let supported = ["TemplateProcessing", "ByteLevel", "RobertaProcessing", "BertProcessing", "Sequence"]

    static func parse(_ node: JSONNode) throws -> PostProcessor {
        let type = try node.typeTag()
        switch type {
        case "ByteLevel":
            return PostProcessor()
        case "Sequence":
            // Each processor wraps the output of the previous one.
            var combined = PostProcessor()
            for step in try node.required("processors").array().map(parse) {
                combined.prefix = step.prefix + combined.prefix
                combined.suffix += step.suffix
                combined.prefixTokens = step.prefixTokens + combined.prefixTokens
                combined.suffixTokens += step.suffixTokens
            }
            return combined
        case "RobertaProcessing", "BertProcessing":
            let (clsToken, clsId) = try tokenAndId(try node.required("cls"))
            let (sepToken, sepId) = try tokenAndId(try node.required("sep"))
            return PostProcessor(prefix: [clsId], suffix: [sepId], prefixTokens: [clsToken], suffixTokens: [sepToken])
        case "TemplateProcessing":
            return try parseTemplate(node)
        default:
            throw node.unsupported(type, supported: supported)
        }
    }

    /// `["<s>", 1]` as used by the Roberta and Bert processors.
    private static func tokenAndId(_ node: JSONNode) throws -> (String, Int32) {
        let pair = try node.array()
        guard pair.count == 2 else { throw node.error("must be a [token, id] pair") }
        let id = try pair[1].int()
        guard id >= 0, id < BPEModel.maxTokenId else { throw pair[1].error("is not a valid token id") }
        return (try pair[0].string(), Int32(id))
    }

    private static func parseTemplate(_ node: JSONNode) throws -> PostProcessor {
        let specialTokens = try node.optional("special_tokens")
        var result = PostProcessor()
        var seenSequence = false
        for item in try node.required("single").array() {
            if let special = try item.optional("SpecialToken") {
                let name = try special.required("id").string()
                guard let entry = try specialTokens?.optional(name) else {
                    throw node.error("uses \"\(name)\", which special_tokens does not define")
                }
                let ids = try entry.required("ids").array().map { idNode -> Int32 in
                    let id = try idNode.int()
                    guard id >= 0, id < BPEModel.maxTokenId else { throw idNode.error("is not a valid token id") }
                    return Int32(id)
                }
                if seenSequence {
                    result.suffix += ids
                    result.suffixTokens.append(name)
                } else {
                    result.prefix += ids
                    result.prefixTokens.append(name)
                }
            } else if let sequence = try item.optional("Sequence") {
                let name = try sequence.required("id").string()
                guard name == "A", !seenSequence else {
                    throw sequence.error("must be the single sequence $A, found $\(name)")
                }
                seenSequence = true
            } else {
                throw item.error("must be a SpecialToken or a Sequence")
            }
        }
        guard seenSequence else { throw node.error("single template has no $A") }
        return result
    }
}
