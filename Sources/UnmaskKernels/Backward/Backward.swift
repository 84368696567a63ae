/// Backward passes for training, each the explicit twin of a forward kernel, over the same flat
/// row-major Float buffers. `dX` names the gradient of the loss with respect to `X`.
///
/// Conventions shared by every function here:
/// - Only activations and LoRA parameters need gradients (base weights stay frozen), so functions
///   that could also produce base-weight gradients take them as optional outputs.
/// - `accumulate: true` adds into an output instead of overwriting it: a tensor read by several
///   consumers (the residual stream, the input of q/k/v projections) sums their gradients, and
///   LoRA gradients sum over micro-batches of an accumulated batch.
/// - Nothing allocates per row or per element; scratch comes from the caller where a call is hot.
public enum Backward {}
