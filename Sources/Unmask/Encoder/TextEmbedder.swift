import Foundation

/// Anything that turns texts into vectors: the LLM2Vec-style `Encoder` over a decoder, or an
/// encoder-only baseline. Evaluation and comparison code is written against this.
public protocol TextEmbedder: AnyObject, Sendable {
    /// Length of each embedding.
    var dimension: Int { get }
    /// A short description for reports (model, attention, pooling).
    var label: String { get }
    /// One embedding per input, in input order; `progress(done, total)` after each batch.
    func encode(_ inputs: [EncoderInput], progress: ((Int, Int) -> Void)?) throws -> [[Float]]
    /// Tokens fed to the model so far, padding excluded (throughput reports).
    var tokensProcessed: Int { get }
}

extension TextEmbedder {
    public var tokensProcessed: Int { 0 }
}

/// A running token count that batches on any thread add to.
final class TokenCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var total = 0
    func add(_ count: Int) { lock.lock(); total += count; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return total }
}

extension Encoder: TextEmbedder {
    public var label: String {
        let name = (checkpoint.path as NSString).lastPathComponent
        let adapterNames = adapters.map { ($0.directory as NSString).lastPathComponent }
        return ([name] + adapterNames).joined(separator: " + ") + ", \(options.attention.rawValue), \(options.pooling.rawValue)"
    }
}
