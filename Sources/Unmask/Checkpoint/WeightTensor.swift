import UnmaskKernels

/// A weight in float32, row-major, ready for the kernels: either a view into a mapped F32 file or
/// a buffer converted once from F16/BF16. Writable, so adapters can be merged in place.
public final class WeightTensor: @unchecked Sendable {
    public let shape: [Int]
    public let pointer: UnsafeMutablePointer<Float>
    /// Keeps the memory alive: the mapped file or the owned buffer.
    private let owner: AnyObject

    init(shape: [Int], pointer: UnsafeMutablePointer<Float>, owner: AnyObject) {
        self.shape = shape
        self.pointer = pointer
        self.owner = owner
    }

    public convenience init(buffer: FloatBuffer, shape: [Int]) {
        precondition(shape.reduce(1, *) == buffer.count)
        self.init(shape: shape, pointer: buffer.pointer, owner: buffer)
    }

    public convenience init(shape: [Int], values: [Float]) {
        self.init(buffer: FloatBuffer(values), shape: shape)
    }

    public var count: Int { shape.reduce(1, *) }
    public var values: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}
