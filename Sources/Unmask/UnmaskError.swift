import Foundation

/// Every failure a user can cause, each rendered as one line that names the file, field or input
/// at fault and what was expected.
public enum UnmaskError: Error, CustomStringConvertible, Equatable {
    case fileNotFound(path: String, what: String)
    case unreadableFile(path: String, reason: String)
    case unwritableFile(path: String, reason: String)
    case malformedJSON(file: String, reason: String)
    case invalidField(file: String, field: String, expected: String)
    case unsupportedArchitecture(file: String, modelType: String, supported: [String])
    case malformedSafeTensors(file: String, reason: String)
    case missingTensor(file: String, name: String)
    case tensorShapeMismatch(file: String, name: String, shape: [Int], expected: [Int], because: String)
    case unsupportedDType(file: String, name: String, dtype: String)
    case invalidAdapter(path: String, reason: String)
    case invalidInput(source: String, reason: String)
    case tokenizer(String)
    case trainingDiverged(step: Int, what: String)
    case nonFiniteTensor(file: String, name: String, index: Int, value: Float)
    case nonFiniteEmbedding(input: Int)

    public var description: String {
        switch self {
        case let .fileNotFound(path, what):
            return "\(path): not found (\(what))"
        case let .unreadableFile(path, reason):
            return "\(path): cannot read: \(reason)"
        case let .unwritableFile(path, reason):
            return "\(path): cannot write: \(reason)"
        case let .malformedJSON(file, reason):
            return "\(file): malformed JSON: \(reason)"
        case let .invalidField(file, field, expected):
            return "\(file): field '\(field)': expected \(expected)"
        case let .unsupportedArchitecture(file, modelType, supported):
            return "\(file): model_type '\(modelType)' is not supported (supported: \(supported.joined(separator: ", ")))"
        case let .malformedSafeTensors(file, reason):
            return "\(file): not a valid safetensors file: \(reason)"
        case let .missingTensor(file, name):
            return "\(file): tensor '\(name)' is missing"
        case let .tensorShapeMismatch(file, name, shape, expected, because):
            return "\(file): tensor '\(name)' has shape \(shape), expected \(expected) (\(because))"
        case let .unsupportedDType(file, name, dtype):
            return "\(file): tensor '\(name)' has dtype \(dtype); supported: F32, F16, BF16"
        case let .invalidAdapter(path, reason):
            return "\(path): invalid LoRA adapter: \(reason)"
        case let .invalidInput(source, reason):
            return "\(source): \(reason)"
        case let .tokenizer(message):
            return message
        case let .nonFiniteTensor(file, name, index, value):
            return "\(file): tensor '\(name)' holds \(value) at element \(index); the weights are corrupt (every value must be finite)"
        case let .nonFiniteEmbedding(input):
            return "input \(input): the embedding has NaN or Inf values (the activations overflow float32); nothing was written"
        case let .trainingDiverged(step, what):
            return "training diverged at step \(step + 1): \(what); lower --learning-rate or check the data (the last checkpoint is kept)"
        }
    }
}

extension UnmaskError {
    /// `path` could not be written, for the reason the system gives for `error`.
    public static func unwritableFile(path: String, error: Error) -> UnmaskError {
        .unwritableFile(path: path, reason: systemReason(error))
    }

    /// `path` could not be read, for the reason the system gives for `error`.
    public static func unreadableFile(path: String, error: Error) -> UnmaskError {
        .unreadableFile(path: path, reason: systemReason(error))
    }

    /// Foundation's short reason ("The file doesn't exist.") where it has one, else its description.
    static func systemReason(_ error: Error) -> String {
        (error as NSError).localizedFailureReason ?? error.localizedDescription
    }
}
