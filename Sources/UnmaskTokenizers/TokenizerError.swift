/// A tokenizer failed to load. The description is one line that names the file and, where
/// there is one, the JSON field at fault, e.g.
/// `tokenizer.json: model.type "Unigram" is not supported (supported: BPE)`.
public struct TokenizerError: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
