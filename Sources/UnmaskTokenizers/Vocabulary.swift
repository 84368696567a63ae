/// A model's `vocab` object (token → id), as the lookup table and the id → token list every model
/// type needs. Ids must be integers below `BPEModel.maxTokenId`; gaps stay nil.
func readVocabulary(_ vocabNode: JSONNode) throws -> (ByteStringTable, [String?]) {
    let entries = try vocabNode.members()
    var vocabulary = ByteStringTable(minimumCapacity: entries.count)
    var maxId = -1
    for (token, value) in entries {
        guard case .int(let id) = value, id >= 0, id < BPEModel.maxTokenId else {
            throw vocabNode.error("entry \"\(token)\" must have an integer id in 0..<\(BPEModel.maxTokenId)")
        }
        vocabulary.insert(token, value: Int32(id))
        maxId = max(maxId, id)
    }
    var tokens = [String?](repeating: nil, count: maxId + 1)
    for (token, value) in entries {
        if case .int(let id) = value { tokens[id] = token }
    }
    return (vocabulary, tokens)
}
