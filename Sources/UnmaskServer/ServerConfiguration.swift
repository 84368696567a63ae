import Foundation

/// Everything `unmask serve` can be told, with TEI's defaults.
public struct ServerConfiguration: Sendable {
    /// Address to bind; loopback by default.
    public var host = "127.0.0.1"
    /// Port to bind; 0 picks a free one (see `RunningServer.port`).
    public var port = 8080
    /// Padded tokens (rows × longest row) one forward batch may hold.
    public var maxBatchTokens = 16384
    /// Rows one forward batch may hold; nil leaves only the token budget. 1 turns cross-request
    /// batching off.
    public var maxBatchRequests: Int?
    /// Inputs one request may carry.
    public var maxClientBatchSize = 32
    /// Tokens an input may have (special tokens included); nil means the encoder's max length.
    public var maxInputLength: Int?
    /// Truncate over-long inputs (requests may override with `truncate`) instead of refusing them.
    public var autoTruncate = true
    /// Largest request body in bytes; bigger ones get 413 before they are buffered.
    public var payloadLimit = 2_000_000
    /// Inputs (each takes one permit) in flight at once; none free -> 429 at once.
    public var maxConcurrentRequests = 512
    /// When set, every route but health and metrics needs `Authorization: Bearer <key>`.
    public var apiKey: String?
    /// The model name reported by `/info` and OpenAI responses (default: the model's folder/file name).
    public var servedModelName: String?
    /// Named instructions for `prompt_name` (`--prompt NAME=TEXT`).
    public var prompts: [String: String] = [:]
    /// Prompt applied to requests that name none (`--default-prompt-name`).
    public var defaultPromptName: String?
    /// Deepest JSON nesting accepted in a request body (serde_json's limit).
    public var maxJSONDepth = 128

    public init() {}

    /// Whether cross-request batching is on.
    public var batching: Bool { (maxBatchRequests ?? Int.max) > 1 }
}
