import UnmaskTokenizers

extension GGUFCheckpoint {
    /// The tokenizer stored in the file's `tokenizer.ggml.*` metadata, behaving as llama.cpp's does.
    func loadTokenizer() throws -> Tokenizer {
        let metadata = file.metadata
        typealias Key = GGUFTokenizerData.Key
        func invalid(_ key: String, _ expected: String) -> UnmaskError { .invalidField(file: file.fileName, field: key, expected: expected) }
        guard let model = metadata[Key.model]?.string else {
            throw invalid(Key.model, "a string naming the tokenizer (one of \(GGUFTokenizerData.supportedModels.joined(separator: ", ")))")
        }
        guard let tokens = metadata[Key.tokens]?.array?.strings else { throw invalid(Key.tokens, "an array of strings") }
        func ints(_ key: String) throws -> [Int]? {
            guard let value = metadata[key] else { return nil }
            guard let ints = value.array?.ints else { throw invalid(key, "an array of integers") }
            return ints
        }
        func int(_ key: String) throws -> Int? {
            guard let value = metadata[key] else { return nil }
            guard let int = value.int else { throw invalid(key, "an integer") }
            return int
        }
        func bool(_ key: String) throws -> Bool? {
            guard let value = metadata[key] else { return nil }
            guard let flag = value.bool else { throw invalid(key, "true or false") }
            return flag
        }
        var scores: [Float]?
        if let value = metadata[Key.scores] {
            guard let doubles = value.array?.doubles else { throw invalid(Key.scores, "an array of numbers") }
            scores = doubles.map(Float.init)
        }
        var merges: [String]?
        if let value = metadata[Key.merges] {
            guard let strings = value.array?.strings else { throw invalid(Key.merges, "an array of strings") }
            merges = strings
        }
        let data = GGUFTokenizerData(
            model: model, pre: metadata[Key.pre]?.string, tokens: tokens, tokenTypes: try ints(Key.tokenTypes) ?? [],
            scores: scores, merges: merges, bosId: try int(Key.bosId), eosId: try int(Key.eosId), unkId: try int(Key.unkId),
            padId: try int(Key.padId), addBOS: try bool(Key.addBOS), addEOS: try bool(Key.addEOS),
            addSpacePrefix: try bool(Key.addSpacePrefix), modelName: metadata[Key.modelName]?.string)
        do { return try Tokenizer(gguf: data, source: file.fileName) } catch let error as UnmaskError { throw error } catch {
            throw UnmaskError.tokenizer(String(describing: error))
        }
    }
}
