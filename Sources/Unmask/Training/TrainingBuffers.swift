import Foundation
import UnmaskKernels

/// The dropout masks of one forward pass: an independent stream per layer and site.
struct LayerDropout {
    let loraMask: Dropout?
    let attentionMask: Dropout?

    /// nil when both probabilities are 0.
    init?(seed: UInt64, lora: Float, attention: Float) {
        loraMask = Dropout(probability: lora, seed: seed)
        attentionMask = Dropout(probability: attention, seed: seed ^ 0xA77E_4710_0000_0000)
        if loraMask == nil, attentionMask == nil { return nil }
    }

    func lora(layer: Int, projection: LoRAProjection) -> Dropout? {
        loraMask?.derived(UInt64(layer * LoRAProjection.allCases.count + projection.rawValue))
    }

    func attention(layer: Int) -> Dropout? { attentionMask?.derived(UInt64(layer)) }
}

/// Layer activations of released tapes, reused by the next forward of the same shape (allocating
/// and page-faulting a gigabyte per step would cost more than a few percent).
final class ActivationPool: @unchecked Sendable {
    private let lock = NSLock()
    private var free: [LayerActivations] = []

    /// `count` activations for batches of `tokens` tokens in rows of `length`: pooled ones where
    /// they fit, `make()`'s otherwise.
    func take(_ count: Int, tokens: Int, length: Int, make: () -> LayerActivations) -> [LayerActivations] {
        lock.lock()
        var taken: [LayerActivations] = []
        // Shapes change rarely; buffers of other shapes are dropped rather than hoarded.
        free.removeAll { $0.capacity != tokens || $0.lengthCapacity != length }
        while taken.count < count, let a = free.popLast() { taken.append(a) }
        lock.unlock()
        while taken.count < count { taken.append(make()) }
        return taken
    }

    func give(_ activations: [LayerActivations]) {
        lock.lock()
        free.append(contentsOf: activations)
        lock.unlock()
    }
}
