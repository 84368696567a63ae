import UnmaskTokenizers

extension GGUFCheckpoint {
    /// The tokenizer stored in the file's `tokenizer.ggml.*` metadata.
    func loadTokenizer() throws -> Tokenizer {
        throw UnmaskError.invalidInput(source: file.fileName, reason: "reading the tokenizer from GGUF metadata is not implemented yet")
    }
}
