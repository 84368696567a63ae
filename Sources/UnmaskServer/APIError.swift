import Foundation
import HTTPTypes

/// TEI's error kinds, spelled as TEI serializes them, with their status codes.
public enum APIErrorType: String, Sendable, Codable {
    case Unhealthy, Backend, Overloaded, Validation, Tokenizer, Empty

    public var status: HTTPResponse.Status {
        switch self {
        case .Unhealthy: return .serviceUnavailable
        case .Backend: return .init(code: 424, reasonPhrase: "Failed Dependency")
        case .Overloaded: return .tooManyRequests
        case .Validation, .Tokenizer: return .unprocessableContent
        case .Empty: return .badRequest
        }
    }
}

/// A failure to report to the client. TEI routes send `{"error", "error_type"}`, the OpenAI
/// routes `{"message", "code", "type"}`.
public struct APIError: Error, Sendable, Equatable {
    public var type: APIErrorType
    public var message: String
    /// Status override (413 for too-large bodies, 400 for unparseable JSON); else the type's.
    public var statusOverride: HTTPResponse.Status?
    /// Label for `te_request_failure{err=...}`.
    public var metricLabel: String

    public init(_ type: APIErrorType, _ message: String, status: HTTPResponse.Status? = nil, metric: String? = nil) {
        self.type = type
        self.message = message
        self.statusOverride = status
        switch type {
        case .Overloaded: metricLabel = metric ?? "overloaded"
        case .Tokenizer: metricLabel = metric ?? "tokenizer"
        case .Backend: metricLabel = metric ?? "backend"
        default: metricLabel = metric ?? "validation"
        }
    }

    public var status: HTTPResponse.Status { statusOverride ?? type.status }

    // TEI's messages. Errors raised by TEI's core are displayed with "Input validation error: ".
    static let emptyInputs = APIError(.Empty, "`inputs` cannot be empty")
    static let emptyInput = APIError(.Empty, "Input validation error: `inputs` cannot be empty")
    static let overloaded = APIError(.Overloaded, "Model is overloaded")
    static func batchTooLarge(_ size: Int, _ limit: Int) -> APIError {
        APIError(.Validation, "batch size \(size) > maximum allowed batch size \(limit)", metric: "batch_size")
    }
    static func validation(_ message: String) -> APIError { APIError(.Validation, "Input validation error: \(message)") }
    static func tooManyTokens(_ limit: Int, given: Int) -> APIError {
        validation("`inputs` must have less than \(limit) tokens. Given: \(given)")
    }
    static func tooManyCharacters(_ limit: Int, given: Int) -> APIError {
        validation("`inputs` must have less than \(limit) characters. Given: \(given)")
    }
    static let payloadTooLarge = APIError(.Validation, "Failed to buffer the request body: length limit exceeded", status: .contentTooLarge, metric: "payload_limit")
    static func unparseable(_ reason: String) -> APIError {
        APIError(.Validation, "Failed to parse the request body as JSON: \(reason)", status: .badRequest)
    }
    static func undecodable(_ reason: String) -> APIError {
        APIError(.Validation, "Failed to deserialize the JSON body into the target type: \(reason)")
    }

    /// TEI's body.
    var teiBody: [UInt8] {
        var out = JSONWriter()
        out.object { o in
            o.field("error") { $0.string(message) }
            o.field("error_type") { $0.string(type.rawValue) }
        }
        return out.bytes
    }

    /// The OpenAI-compatible routes' body.
    var openAIBody: [UInt8] {
        var out = JSONWriter()
        out.object { o in
            o.field("message") { $0.string(message) }
            o.field("code") { $0.int(Int(status.code)) }
            o.field("type") { $0.string(type.rawValue) }
        }
        return out.bytes
    }
}
