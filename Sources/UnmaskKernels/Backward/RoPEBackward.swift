extension Backward {
    /// dInput[tokens, heads·headDim] from dOut, in place: RoPE is a rotation per pair, so its
    /// Jacobian's transpose is the rotation by the opposite angle. Same tables as the forward.
    public static func rope(
        _ gradient: UnsafeMutablePointer<Float>, tokens: Int, heads: Int, headDim: Int,
        positions: UnsafePointer<Int32>, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>,
        forwardWasInverse: Bool = false
    ) {
        Kernels.rope(gradient, tokens: tokens, heads: heads, headDim: headDim,
                     positions: positions, cos: cos, sin: sin, inverse: !forwardWasInverse)
    }
}
