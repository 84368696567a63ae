import Foundation
import UnmaskCKernels
import UnmaskKernels

/// How a model's matrices are held while it computes.
public enum WeightPrecision: String, Sendable, CaseIterable {
    /// Matrices stay in the format the checkpoint stores them in (F16, BF16, ggml block quants)
    /// and products compute from them (see `LinearWeight`): the model takes its file's size in memory.
    case auto
    /// Every matrix converted to float32 at load (4 bytes a weight): the reference path.
    case float32 = "f32"
}

/// A LoRA pair applied beside a frozen weight instead of merged into it:
/// y += scaling · (x·Aᵀ)·Bᵀ with A [rank, in], B [out, rank].
public struct UnmergedLoRA: Sendable {
    public let a: WeightTensor
    public let b: WeightTensor
    public let scaling: Float
    public var rank: Int { a.shape[0] }
}

/// A matrix [rows, columns] as linear layers and embedding lookups use it: float32, or in its
/// stored format, never converted whole. A product with a stored matrix takes one of two paths,
/// both computing with exactly the dequantized weights and the float32 input:
/// - a few input rows (a short query; up to `fusedRowLimit`): the fused kernels of
///   `UnmaskCKernels` turn each group of 32 weights (ggml block quants, F16, BF16) into float32
///   in registers (from 8 rows on AVX2, a tile of a few weight rows in L1) and multiply it with
///   every input row there, reading the matrix once at its stored size. Rounding the input to 8 bits instead, as llama.cpp's CPU backend does, moved
///   some of SmolLM2's short texts to cosine 0.84 of the float result (outlier activations leave
///   the rest of their group a few levels), so the input is never rounded;
/// - many input rows (a batch of texts), or a type without a fused kernel (Q2_K, Q3_K): one panel
///   of rows at a time is converted into pooled scratch (about 4 MB) and multiplied by BLAS, at
///   the float32 path's rate.
///
/// Adapters on a stored matrix stay unmerged (`UnmergedLoRA`): merging would mean requantizing.
public final class LinearWeight: @unchecked Sendable {
    public enum Storage: @unchecked Sendable {
        case float32(WeightTensor)
        /// Rows of `type`'s blocks at `data`; with `rowOrder`, logical row r is stored row
        /// `rowOrder[r]` (llama.cpp's permuted Q/K). `owner` keeps the mapping alive.
        case stored(type: GGMLType, data: UnsafeRawPointer, rowOrder: [Int]?, owner: AnyObject)
    }

    public let rows: Int
    public let columns: Int
    public let storage: Storage
    /// Adapters applied beside the weight, in order; set while loading, before any product.
    public private(set) var adapters: [UnmergedLoRA] = []

    /// Bytes of float32 rows a panel spans: large enough that BLAS runs at full rate on it, small
    /// enough to stay in cache while every row of the input streams past.
    static let defaultPanelBytes = 4 << 20
    /// `defaultPanelBytes`, smaller in tests that cross panel boundaries on small matrices.
    var panelBytes = LinearWeight.defaultPanelBytes
    /// Products with at most this many input rows take the fused path when the type has one:
    /// `UNMASK_FUSED_ROWS` (0 turns it off), else where the fused kernels stop beating the panels
    /// (BENCHMARKS.md): 16 rows with AVX-512 and AVX2, none with the plain C kernel, which is
    /// the SIMD variants' reference, far slower than BLAS.
    public static let defaultFusedRowLimit = ProcessInfo.processInfo.environment["UNMASK_FUSED_ROWS"].flatMap(Int.init)
        ?? defaultFusedRows(forKernelLevel: Int(unmask_kernel_level()))

    static func defaultFusedRows(forKernelLevel level: Int) -> Int {
        switch level {
        // Measured on SmolLM2 and Qwen2.5 (BENCHMARKS.md): with its tiles, AVX2's fused path
        // beats the panels up to 32 rows; the AVX-512 row kernels up to 16.
        case UNMASK_KERNEL_AVX2: 32
        case UNMASK_KERNEL_AVX512: 16
        default: 0
        }
    }

    /// `defaultFusedRowLimit`; tests and benchmarks set it to force one path.
    public var fusedRowLimit = LinearWeight.defaultFusedRowLimit

    public init(_ tensor: WeightTensor) {
        precondition(tensor.shape.count == 2, "a matrix needs two dimensions, got \(tensor.shape)")
        rows = tensor.shape[0]
        columns = tensor.shape[1]
        storage = .float32(tensor)
    }

    /// `data` holds `rows` rows of `columns / type.blockSize` blocks each.
    public init(type: GGMLType, data: UnsafeRawPointer, rows: Int, columns: Int, rowOrder: [Int]? = nil, owner: AnyObject) {
        precondition(type.isDequantizable && columns % type.blockSize == 0, "cannot compute with \(type) rows of \(columns)")
        precondition(rowOrder.map { $0.count == rows } ?? true)
        self.rows = rows
        self.columns = columns
        storage = .stored(type: type, data: data, rowOrder: rowOrder, owner: owner)
    }

    public var shape: [Int] { [rows, columns] }

    /// The float32 tensor, when the matrix is held as one (merging and writing need it).
    public var float32: WeightTensor? {
        if case let .float32(tensor) = storage { return tensor }
        return nil
    }

    /// The stored element type: F32 for a float32 matrix.
    public var type: GGMLType {
        switch storage {
        case .float32: .f32
        case let .stored(type, _, _, _): type
        }
    }

    /// Bytes the weight itself occupies (mapped or owned), adapters excluded.
    public var byteCount: Int {
        rows * (columns / type.blockSize) * type.bytesPerBlock
    }

    func attach(_ adapter: UnmergedLoRA) {
        precondition(adapter.a.shape == [adapter.rank, columns] && adapter.b.shape == [rows, adapter.rank])
        adapters.append(adapter)
    }

    // MARK: Products

    /// out[m, rows] (+)= x[m, columns] · Wᵀ + bias + Σ adapters: a PyTorch `nn.Linear`.
    public func forward(_ x: UnsafePointer<Float>, rows m: Int, bias: UnsafePointer<Float>?, out: UnsafeMutablePointer<Float>,
                        accumulate: Bool = false) {
        let n = rows, k = columns
        switch storage {
        case let .float32(w):
            Kernels.linear(x, rows: m, inFeatures: k, weight: w.pointer, outFeatures: n, bias: bias, out: out, accumulate: accumulate)
        case let .stored(type, data, rowOrder, _):
            if m <= fusedRowLimit && k % 32 == 0 && unmask_quantized_supported(type.rawValue) != 0 {
                fusedForward(x, rows: m, type: type, data: data, rowOrder: rowOrder, out: out, accumulate: accumulate)
            } else {
                forEachPanel { range, panel in
                    BLAS.sgemm(transposeA: false, transposeB: true, m: m, n: range.count, k: k, a: x, lda: k, b: panel, ldb: k,
                               beta: accumulate ? 1 : 0, c: out + range.lowerBound, ldc: n)
                }
            }
            if let bias { Kernels.addBias(out, rows: m, columns: n, bias: bias) }
        }
        for adapter in adapters {
            ScratchPool.shared.with(count: m * adapter.rank) { xA in
                BLAS.sgemm(transposeA: false, transposeB: true, m: m, n: adapter.rank, k: k, a: x, lda: k, b: adapter.a.pointer, ldb: k, c: xA, ldc: adapter.rank)
                BLAS.sgemm(transposeA: false, transposeB: true, m: m, n: n, k: adapter.rank, alpha: adapter.scaling,
                           a: xA, lda: adapter.rank, b: adapter.b.pointer, ldb: adapter.rank, beta: 1, c: out, ldc: n)
            }
        }
    }

    /// out (+)= x·Wᵀ computed from W as stored (`unmask_quantized_matmul`: each group of 32
    /// weights converted in registers), whole rows per worker.
    private func fusedForward(_ x: UnsafePointer<Float>, rows m: Int, type: GGMLType, data: UnsafeRawPointer, rowOrder: [Int]?,
                              out: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let n = rows, k = columns
        func run(_ order: UnsafePointer<Int64>?) {
            Parallel.chunks(n, minimumPerChunk: max(16, Self.fusedWorkPerChunk / max(1, k * m))) { _, range in
                unmask_quantized_matmul(type.rawValue, data, Int64(rowBytes(type)), order, Int64(range.lowerBound), Int64(range.upperBound),
                                        Int64(k), x, Int64(m), out + range.lowerBound, Int64(n), accumulate ? 1 : 0)
            }
        }
        if let rowOrder {
            rowOrder.withUnsafeBufferPointer { $0.withMemoryRebound(to: Int64.self) { run($0.baseAddress) } }
        } else {
            run(nil)
        }
    }

    /// Multiply-adds a worker of a fused product gets at least (≈ 6 µs of work): below, the
    /// hand-off to the polling pool costs more than it saves. Through libdispatch, whose hand-offs
    /// cost tens of microseconds, 2^20 was the measured optimum; SmolLM2's one-token products
    /// (576 × 576 to 576 × 1536) then ran on one core.
    static let fusedWorkPerChunk = 1 << 16

    /// dInput[m, columns] (+)= dOut[m, rows] · W (adapters included): the input gradient of `forward`.
    public func backwardInput(_ dOut: UnsafePointer<Float>, rows m: Int, dInput: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
        let n = rows, k = columns
        switch storage {
        case let .float32(w):
            Backward.linear(dOut: dOut, rows: m, outFeatures: n, weight: w.pointer, inFeatures: k, dInput: dInput, accumulate: accumulate)
        case .stored:
            var first = true
            forEachPanel { range, panel in
                BLAS.sgemm(transposeA: false, transposeB: false, m: m, n: k, k: range.count, a: dOut + range.lowerBound, lda: n,
                           b: panel, ldb: k, beta: accumulate || !first ? 1 : 0, c: dInput, ldc: k)
                first = false
            }
        }
        for adapter in adapters {
            ScratchPool.shared.with(count: m * adapter.rank) { dXA in
                BLAS.sgemm(transposeA: false, transposeB: false, m: m, n: adapter.rank, k: n, alpha: adapter.scaling,
                           a: dOut, lda: n, b: adapter.b.pointer, ldb: adapter.rank, c: dXA, ldc: adapter.rank)
                BLAS.sgemm(transposeA: false, transposeB: false, m: m, n: k, k: adapter.rank,
                           a: dXA, lda: adapter.rank, b: adapter.a.pointer, ldb: k, beta: 1, c: dInput, ldc: k)
            }
        }
    }

    /// Writes row `row` (adapters excluded) as float32: an embedding lookup.
    public func row(_ row: Int, into out: UnsafeMutablePointer<Float>) {
        rows(row..<(row + 1), into: out)
    }

    /// Rows `range` as float32 into `out` [range.count, columns], split across cores.
    public func rows(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        switch storage {
        case let .float32(w):
            out.update(from: w.pointer + range.lowerBound * columns, count: range.count * columns)
        case let .stored(type, data, rowOrder, _):
            GGMLDequantize.rows(data, type: type, rowLength: columns, rowCount: rows, into: out, rowOrder: rowOrder, range: range)
        }
    }

    /// The whole matrix as a float32 tensor (a view when it is one already).
    public func dequantized() -> WeightTensor {
        if let float32 { return float32 }
        let buffer = FloatBuffer(count: rows * columns)
        self.rows(0..<rows, into: buffer.pointer)
        return WeightTensor(buffer: buffer, shape: shape)
    }

    /// Every weight as float32, row-major (adapters excluded).
    public var values: [Float] { dequantized().values }

    /// Calls `body` with consecutive row ranges and their float32 values, [range.count, columns].
    func forEachPanel(_ body: (Range<Int>, UnsafePointer<Float>) -> Void) {
        let panelRows = min(rows, max(16, panelBytes / (4 * max(1, columns))))
        ScratchPool.shared.with(count: panelRows * columns) { panel in
            var start = 0
            while start < rows {
                let range = start..<min(rows, start + panelRows)
                self.rows(range, into: panel)
                body(range, panel)
                start = range.upperBound
            }
        }
    }

    private func rowBytes(_ type: GGMLType) -> Int { columns / type.blockSize * type.bytesPerBlock }

    /// The index of the first weight that is NaN or infinite, nil when all are finite. A stored
    /// matrix is checked panel by panel, as products read it.
    public func firstNonFinite() -> Int? {
        if let float32 { return Unmask.firstNonFinite(float32) }
        var found: Int?
        forEachPanel { range, panel in
            guard found == nil else { return }
            if let i = Unmask.firstNonFinite(panel, count: range.count * columns) { found = range.lowerBound * columns + i }
        }
        return found
    }
}
