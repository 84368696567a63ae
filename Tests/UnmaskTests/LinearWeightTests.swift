import Foundation
import Testing
@testable import Unmask
import UnmaskCKernels
import UnmaskKernels
import UnmaskTestSupport

/// `LinearWeight` computing from stored formats: every product against a plain double-precision
/// product with the reference dequantization (`GGMLDequantize`, itself checked bit for bit
/// against the `gguf` package), across panel boundaries, with llama's permuted row order and with
/// unmerged adapters; and whole models in their stored precision against the same model in float32.
@Suite struct LinearWeightTests {
    static let types: [GGMLType] = [.f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K]

    /// x·Wᵀ (+ bias) in double precision; the tolerance scale is Σ|x||w| per output.
    static func reference(_ x: [Float], rows m: Int, _ w: [Float], outFeatures n: Int, bias: [Float]?) -> (values: [Double], scale: [Double]) {
        let k = w.count / n
        var values = [Double](repeating: 0, count: m * n), scale = values
        for i in 0..<m {
            for j in 0..<n {
                var sum = Double(bias?[j] ?? 0), magnitude = abs(sum)
                for t in 0..<k {
                    let product = Double(x[i * k + t]) * Double(w[j * k + t])
                    sum += product
                    magnitude += abs(product)
                }
                values[i * n + j] = sum
                scale[i * n + j] = magnitude
            }
        }
        return (values, scale)
    }

    static func expectClose(_ got: [Float], _ expected: (values: [Double], scale: [Double]), _ what: String) {
        #expect(got.count == expected.values.count)
        var worst = 0.0
        for (i, g) in got.enumerated() {
            worst = max(worst, abs(Double(g) - expected.values[i]) / max(expected.scale[i], 1e-6))
        }
        // Float32 sums of a few hundred terms: errors of a few ulps of the magnitude.
        #expect(worst < 1e-5, "\(what): worst error \(worst) of Σ|x·w|")
    }

    @Test(arguments: types)
    func productsMatchTheDequantizedReference(type: GGMLType) {
        var rng = SeededRandom(seed: 7)
        let rows = 40, columns = 512, m = 5, rank = 3
        let bytes = GGUFBuilder.randomBlocks(type, count: rows * columns / type.blockSize, using: &rng)
        let x = rng.floats(m * columns), dOut = rng.floats(m * rows), bias = rng.floats(rows)
        let a = rng.floats(rank * columns, scale: 0.1), b = rng.floats(rows * rank, scale: 0.1)
        let owner = FloatBuffer(count: 1)
        bytes.withUnsafeBytes { raw in
            for order in [nil, GGUFCheckpoint.llamaRowOrder(rows: rows, heads: 4)] {
                let what = "\(type)\(order == nil ? "" : ", permuted rows")"
                var dense = [Float](repeating: 0, count: rows * columns)
                GGMLDequantize.rows(raw.baseAddress!, type: type, rowLength: columns, rowCount: rows, into: &dense, rowOrder: order)
                let weight = LinearWeight(type: type, data: raw.baseAddress!, rows: rows, columns: columns, rowOrder: order, owner: owner)
                weight.panelBytes = 16 * columns * 4  // panels of 16, 16 and 8 rows
                weight.fusedRowLimit = 0  // panels; the fused path has its own test
                #expect(weight.float32 == nil && weight.byteCount == bytes.count)
                #expect(weight.values == dense, "\(what): dequantized rows")
                var row = [Float](repeating: 0, count: columns)
                weight.row(rows - 3, into: &row)
                #expect(row == Array(dense[((rows - 3) * columns)...].prefix(columns)), "\(what): one row")

                var out = [Float](repeating: 0, count: m * rows)
                weight.forward(x, rows: m, bias: bias, out: &out)
                Self.expectClose(out, Self.reference(x, rows: m, dense, outFeatures: rows, bias: bias), "\(what): forward")
                // accumulate adds the product to what `out` holds.
                let before = out
                weight.forward(x, rows: m, bias: nil, out: &out, accumulate: true)
                let product = Self.reference(x, rows: m, dense, outFeatures: rows, bias: nil)
                Self.expectClose(out, (zip(before, product.values).map { Double($0) + $1 }, product.scale.map { $0 * 2 }), "\(what): accumulate")

                // dX = dY·W is x·Wᵀ with W transposed.
                var transposed = [Float](repeating: 0, count: rows * columns)
                for r in 0..<rows { for c in 0..<columns { transposed[c * rows + r] = dense[r * columns + c] } }
                var dInput = [Float](repeating: 0, count: m * columns)
                weight.backwardInput(dOut, rows: m, dInput: &dInput)
                Self.expectClose(dInput, Self.reference(dOut, rows: m, transposed, outFeatures: columns, bias: nil), "\(what): input gradient")

                // An unmerged adapter acts as W + s·B·A would.
                weight.attach(UnmergedLoRA(a: WeightTensor(shape: [rank, columns], values: a), b: WeightTensor(shape: [rows, rank], values: b), scaling: 2))
                var merged = dense
                for r in 0..<rows {
                    for c in 0..<columns {
                        var delta: Float = 0
                        for t in 0..<rank { delta += b[r * rank + t] * a[t * columns + c] }
                        merged[r * columns + c] += 2 * delta
                    }
                }
                weight.forward(x, rows: m, bias: bias, out: &out)
                Self.expectClose(out, Self.reference(x, rows: m, merged, outFeatures: rows, bias: bias), "\(what): forward with an adapter")
                for r in 0..<rows { for c in 0..<columns { transposed[c * rows + r] = merged[r * columns + c] } }
                weight.backwardInput(dOut, rows: m, dInput: &dInput)
                Self.expectClose(dInput, Self.reference(dOut, rows: m, transposed, outFeatures: columns, bias: nil), "\(what): input gradient with an adapter")
            }
        }
    }

    static let fusedTypes: [GGMLType] = [.f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q5_K, .q6_K]

    /// The fused path (groups dequantized in registers, `UnmaskCKernels`): every kernel variant
    /// this CPU has (reference C, AVX2, AVX-512) against a double-precision product of the
    /// dequantized weights, at every activation-row count up to two register chunks and a tail,
    /// and past one block of the AVX2 tiles (48 rows; columns: a whole tile of 512 and a partial
    /// one), in both row orders, with and without accumulation.
    @Test(arguments: fusedTypes)
    func fusedProductsMatchTheDequantizedReference(type: GGMLType) {
        #expect(unmask_quantized_supported(type.rawValue) == 1)
        var rng = SeededRandom(seed: 11)
        let rows = 37, columns = type.blockSize == 256 ? 768 : 544
        let bytes = GGUFBuilder.randomBlocks(type, count: rows * columns / type.blockSize, using: &rng)
        let owner = FloatBuffer(count: 1)
        bytes.withUnsafeBytes { raw in
            for order in [nil, GGUFCheckpoint.llamaRowOrder(rows: 36, heads: 3) + [36]] {
                var dense = [Float](repeating: 0, count: rows * columns)
                GGMLDequantize.rows(raw.baseAddress!, type: type, rowLength: columns, rowCount: rows, into: &dense, rowOrder: order)
                let weight = LinearWeight(type: type, data: raw.baseAddress!, rows: rows, columns: columns, rowOrder: order, owner: owner)
                weight.fusedRowLimit = 64
                for m in [1, 2, 3, 4, 5, 7, 8, 9, 13, 17, 50] {
                    let x = rng.floats(m * columns), bias = rng.floats(rows)
                    let expected = Self.reference(x, rows: m, dense, outFeatures: rows, bias: bias)
                    for level in 0...Int(unmask_best_kernel_level()) {
                        let what = "\(type) \(String(cString: unmask_kernel_name(Int32(level)))), m = \(m)\(order == nil ? "" : ", permuted rows")"
                        var out = [Float](repeating: 0, count: m * rows), accumulated = out
                        withKernelLevel(Int32(level)) {
                            weight.forward(x, rows: m, bias: bias, out: &out)
                            // accumulate adds to what `out` holds.
                            accumulated = out
                            weight.forward(x, rows: m, bias: nil, out: &accumulated, accumulate: true)
                        }
                        Self.expectClose(out, expected, what)
                        let sum = Self.reference(x, rows: m, dense, outFeatures: rows, bias: nil)
                        Self.expectClose(accumulated, (zip(expected.values, sum.values).map { $0 + $1 }, zip(expected.scale, sum.scale).map { $0 + $1 }), what + ", accumulate")
                    }
                }
            }
        }
    }

    /// F16 and BF16 rows of any length compute: the fused kernels take 32 values at a time, so
    /// rows of another length go through the panels even when few input rows ask for the fused path.
    @Test(arguments: [GGMLType.f16, .bf16])
    func halfPrecisionRowsThatAreNoMultipleOf32TakeThePanels(type: GGMLType) {
        var rng = SeededRandom(seed: 12)
        let rows = 9, columns = 72, m = 3
        let bytes = GGUFBuilder.randomBlocks(type, count: rows * columns, using: &rng)
        bytes.withUnsafeBytes { raw in
            var dense = [Float](repeating: 0, count: rows * columns)
            GGMLDequantize.rows(raw.baseAddress!, type: type, rowLength: columns, rowCount: rows, into: &dense)
            let weight = LinearWeight(type: type, data: raw.baseAddress!, rows: rows, columns: columns, owner: FloatBuffer(count: 1))
            weight.fusedRowLimit = 64
            let x = rng.floats(m * columns)
            var out = [Float](repeating: 0, count: m * rows)
            weight.forward(x, rows: m, bias: nil, out: &out)
            Self.expectClose(out, Self.reference(x, rows: m, dense, outFeatures: rows, bias: nil), "\(type), \(columns) columns")
        }
    }

    @Test func aFloat32MatrixIsAViewAndNaNsInStoredOnesAreFound() throws {
        let tensor = WeightTensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        let weight = LinearWeight(tensor)
        #expect(weight.float32 === tensor && weight.type == .f32 && weight.byteCount == 24)
        var rng = SeededRandom(seed: 1)
        var bytes = GGUFBuilder.randomBlocks(.q8_0, count: 8, using: &rng)
        // Block 5's scale becomes float16 infinity: its 32 weights are ±inf or NaN.
        bytes[5 * 34] = 0x00; bytes[5 * 34 + 1] = 0x7C
        bytes.withUnsafeBytes { raw in
            let stored = LinearWeight(type: .q8_0, data: raw.baseAddress!, rows: 4, columns: 64, owner: tensor)
            let bad = stored.firstNonFinite()
            #expect(bad.map { $0 / 32 } == 5)
        }
    }

    /// The tiny llama GGUF (Q8_0 embedding, Q4_0/Q5_1/Q4_1/F16/Q5_0/Q8_0 projections, permuted Q/K)
    /// in stored precision and as float32: the same hidden states, with and without an adapter.
    @Test func aModelInStoredPrecisionMatchesItsFloat32Load() throws {
        let directory = try Fixtures.temporaryDirectory("stored-precision")
        let path = try GGUFFixtures.write(GGUFBuilder.tinyLlama(seed: 5).data(), in: directory)
        let checkpoint = try Checkpoint(path: path)
        let stored = try checkpoint.loadModel(lmHead: true, precision: .auto)
        let float32 = try checkpoint.loadModel(lmHead: true, precision: .float32)
        #expect(stored.weights.layers[0].qProj.weight.type == .q4_0 && stored.weights.embedTokens.type == .q8_0)
        #expect(float32.weights.layers[0].qProj.weight.float32 != nil)
        #expect(stored.weights.byteCount * 3 < float32.weights.byteCount)
        let batch = TokenBatch(leftPadding: [[1, 2, 3, 4, 5], [6, 7, 8]], padding: 0)
        let workspace = DecoderWorkspace()  // holds each forward's output until the next
        func hidden(_ model: DecoderModel) -> [Float] {
            let out = model.forward(batch, mode: .bidirectional, workspace: workspace)
            return Array(UnsafeBufferPointer(start: out, count: batch.ids.count * model.config.hiddenSize))
        }
        func logits(_ model: DecoderModel) -> [Float] {
            model.logits(hidden: model.forward(batch, mode: .causal, workspace: workspace), rows: [4, 9]).flatMap { $0 }
        }
        // Both paths compute with the dequantized weights: the float32 load's values up to
        // summation order. Ten tokens take the fused path, then the panels.
        let matrices = stored.weights.matrices
        for limit in [16, 0] {
            for matrix in matrices { matrix.fusedRowLimit = limit }
            #expect(Compare.maxAbs(hidden(stored), hidden(float32)) < 1e-4, "fused rows up to \(limit)")
            #expect(Compare.maxAbs(logits(stored), logits(float32)) < 1e-4, "fused rows up to \(limit)")
        }
        for matrix in matrices { matrix.fusedRowLimit = 16 }
        func expectNear(_ a: [Float], _ b: [Float], _ what: String) {
            let h = stored.config.hiddenSize
            for t in 0..<(a.count / h) {
                let cosine = Compare.cosine(Array(a[(t * h)..<((t + 1) * h)]), Array(b[(t * h)..<((t + 1) * h)]))
                #expect(cosine > 0.99999, "\(what) token \(t): \(cosine)")
            }
        }

        let adapter = try MergeTests().randomAdapter(for: checkpoint.config, seed: 9)
        try LoRAAdapter(directory: adapter).merge(into: stored.weights)
        try LoRAAdapter(directory: adapter).merge(into: float32.weights)
        #expect(stored.weights.layers[0].downProj.weight.adapters.count == 1)
        #expect(float32.weights.layers[0].downProj.weight.adapters.isEmpty)
        expectNear(hidden(stored), hidden(float32), "hidden with an adapter")
    }

    /// Half-precision safetensors fixtures (BF16, and F16 in shards) kept as stored: their
    /// matrices stay BF16/F16 and their embeddings equal the float32 load's up to summation order,
    /// batched (panels) and one text at a time (fused kernels).
    @Test(arguments: [("llama2-bf16", GGMLType.bf16), ("qwen3-tiny-bf16", .bf16), ("mistral-f16-sharded", .f16)])
    func halfPrecisionSafetensorsMatchTheirFloat32Load(fixture: String, stored: GGMLType) throws {
        let path = Fixtures.path("models", fixture)
        let texts = ["The cat sat on the mat.", "Stocks fell sharply on Monday after the report.", "x"].map { EncoderInput($0) }
        let float32 = try Encoder(modelPath: path, precision: .float32)
        let auto = try Encoder(modelPath: path, precision: .auto)
        #expect(auto.model.weights.layers[0].qProj.weight.type == stored && auto.model.weights.embedTokens.type == stored)
        #expect(float32.model.weights.layers[0].qProj.weight.float32 != nil)
        // Their vectors differ in the last bits: an evaluation cache keeps them apart.
        #expect(EmbeddingCache.identity(of: float32) != EmbeddingCache.identity(of: auto))
        let expected = try float32.encode(texts)
        for (a, f) in zip(try auto.encode(texts), expected) { #expect(Compare.cosine(a, f) > 0.99999, "\(fixture) batched") }
        let single = try Encoder(modelPath: path, precision: .auto) { $0.batchSize = 1 }
        for (a, f) in zip(try single.encode(texts), expected) { #expect(Compare.cosine(a, f) > 0.99999, "\(fixture) one at a time") }
    }

    /// A real 4-bit model: embeddings computed from the stored Q4_1 weights against the same
    /// weights dequantized to float32 at load, batched (panels: equal up to summation order) and
    /// one text at a time (every text here is short enough for the fused path).
    @Test(.enabled(if: InstalledModels.smollm2 != nil))
    func smolLM2InStoredPrecisionMatchesFloat32() throws {
        let path = try #require(InstalledModels.smollm2)
        let texts = ["The cat sat on the mat.", "Stocks fell sharply on Monday after the report.", "def add(a, b): return a + b", "x"].map { EncoderInput($0) }
        let float32 = try Encoder(modelPath: path, precision: .float32).encode(texts)
        let batched = try Encoder(modelPath: path, precision: .auto).encode(texts)
        for (s, f) in zip(batched, float32) { #expect(Compare.cosine(s, f) > 0.99999) }
        let single = try Encoder(modelPath: path, precision: .auto) { $0.batchSize = 1 }.encode(texts)
        for (s, f) in zip(single, float32) { #expect(Compare.cosine(s, f) > 0.99999, "\(Compare.cosine(s, f))") }
    }
}
