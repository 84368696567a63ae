extension Backward {
    /// dInput[rows, in] (+)= dOut[rows, out] · weight[out, in]: the input gradient of `Kernels.linear`.
    public static func linear(
        dOut: UnsafePointer<Float>, rows: Int, outFeatures n: Int,
        weight: UnsafePointer<Float>, inFeatures k: Int,
        dInput: UnsafeMutablePointer<Float>, accumulate: Bool = false
    ) {
        BLAS.sgemm(transposeA: false, transposeB: false, m: rows, n: k, k: n,
                   a: dOut, lda: n, b: weight, ldb: k, beta: accumulate ? 1 : 0, c: dInput, ldc: k)
    }

    /// dWeight[out, in] (+)= dOut[rows, out]ᵀ · input[rows, in]; dBias[out] (+)= Σ_rows dOut.
    /// Frozen bases never call this; it exists for full fine-tuning and for checking the pair.
    public static func linearParameters(
        dOut: UnsafePointer<Float>, input: UnsafePointer<Float>, rows: Int, inFeatures k: Int, outFeatures n: Int,
        dWeight: UnsafeMutablePointer<Float>, dBias: UnsafeMutablePointer<Float>?, accumulate: Bool = false
    ) {
        BLAS.sgemm(transposeA: true, transposeB: false, m: n, n: k, k: rows,
                   a: dOut, lda: n, b: input, ldb: k, beta: accumulate ? 1 : 0, c: dWeight, ldc: k)
        guard let dBias else { return }
        if !accumulate { dBias.update(repeating: 0, count: n) }
        // Row-outer order streams dOut once; the bias vector stays in cache.
        for r in 0..<rows {
            let g = dOut + r * n
            for j in 0..<n { dBias[j] += g[j] }
        }
    }

    /// out[rows, out] += scaling·(x·Aᵀ)·Bᵀ with A [rank, in], B [out, rank] (PEFT's lora_A /
    /// lora_B; scaling = alpha / rank): the adapter's branch, added to the frozen layer's product
    /// the caller computed (`Kernels.linear`, or a weight in its stored format). Keeps
    /// xA[rows, rank] = x·Aᵀ, which the backward needs and which costs rank/in of storing x again.
    ///
    /// `dropout` is PEFT's lora_dropout: only the LoRA branch sees the dropped input
    /// (x ⊙ M, element (row, i) at mask index row·in + i), built in `droppedInput` [rows, in].
    public static func loraForward(
        _ x: UnsafePointer<Float>, rows: Int, inFeatures k: Int, outFeatures n: Int,
        loraA: UnsafePointer<Float>, loraB: UnsafePointer<Float>, rank r: Int, scaling: Float,
        xA: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>,
        dropout: Dropout? = nil, droppedInput: UnsafeMutablePointer<Float>? = nil
    ) {
        BLAS.sgemm(transposeA: false, transposeB: true, m: rows, n: r, k: k,
                   a: loraInput(x, count: rows * k, dropout: dropout, droppedInput: droppedInput), lda: k, b: loraA, ldb: k, c: xA, ldc: r)
        BLAS.sgemm(transposeA: false, transposeB: true, m: rows, n: n, k: r, alpha: scaling,
                   a: xA, lda: r, b: loraB, ldb: r, beta: 1, c: out, ldc: n)
    }

    /// Backward of `loraForward`: dB[out, rank] (+)= s·dOutᵀ·xA; dA[rank, in] (+)= (s·dOut·B)ᵀ·x;
    /// dInput[rows, in] (+)= (s·dOut·B)·A, the branch's part (the frozen weight's, dOut·W, is the
    /// caller's: `Backward.linear` or the stored weight's own). `scratch` holds rows·rank floats
    /// (the gradient of xA). `dInput` is nil for a layer whose input needs no gradient. Parameter
    /// and input accumulation are separate: the first follows micro-batches, the second the graph.
    /// With the forward's `dropout`, A sees x ⊙ M and the branch's input gradient is masked the
    /// same way; `droppedInput` is [rows, in] scratch.
    public static func lora(
        dOut: UnsafePointer<Float>, input x: UnsafePointer<Float>, xA: UnsafePointer<Float>,
        rows: Int, inFeatures k: Int, outFeatures n: Int,
        loraA: UnsafePointer<Float>, loraB: UnsafePointer<Float>, rank r: Int, scaling: Float,
        dA: UnsafeMutablePointer<Float>, dB: UnsafeMutablePointer<Float>,
        dInput: UnsafeMutablePointer<Float>?, scratch dXA: UnsafeMutablePointer<Float>,
        accumulateParameters: Bool = false, accumulateInput: Bool = false,
        dropout: Dropout? = nil, droppedInput: UnsafeMutablePointer<Float>? = nil
    ) {
        let betaParameters: Float = accumulateParameters ? 1 : 0
        BLAS.sgemm(transposeA: true, transposeB: false, m: n, n: r, k: rows, alpha: scaling,
                   a: dOut, lda: n, b: xA, ldb: r, beta: betaParameters, c: dB, ldc: r)
        BLAS.sgemm(transposeA: false, transposeB: false, m: rows, n: r, k: n, alpha: scaling,
                   a: dOut, lda: n, b: loraB, ldb: r, c: dXA, ldc: r)
        BLAS.sgemm(transposeA: true, transposeB: false, m: r, n: k, k: rows,
                   a: dXA, lda: r, b: loraInput(x, count: rows * k, dropout: dropout, droppedInput: droppedInput), ldb: k,
                   beta: betaParameters, c: dA, ldc: k)
        guard let dInput else { return }
        guard let dropout, let droppedInput else {
            BLAS.sgemm(transposeA: false, transposeB: false, m: rows, n: k, k: r,
                       a: dXA, lda: r, b: loraA, ldb: k, beta: accumulateInput ? 1 : 0, c: dInput, ldc: k)
            return
        }
        BLAS.sgemm(transposeA: false, transposeB: false, m: rows, n: k, k: r,
                   a: dXA, lda: r, b: loraA, ldb: k, c: droppedInput, ldc: k)
        if accumulateInput {
            for i in 0..<(rows * k) { dInput[i] += droppedInput[i] * dropout.factor(i) }
        } else {
            for i in 0..<(rows * k) { dInput[i] = droppedInput[i] * dropout.factor(i) }
        }
    }

    /// x itself, or x ⊙ M written into `droppedInput`.
    private static func loraInput(_ x: UnsafePointer<Float>, count: Int, dropout: Dropout?, droppedInput: UnsafeMutablePointer<Float>?) -> UnsafePointer<Float> {
        guard let dropout else { return x }
        guard let droppedInput else { preconditionFailure("LoRA dropout needs droppedInput scratch") }
        dropout.apply(x, count: count, offset: 0, out: droppedInput)
        return UnsafePointer(droppedInput)
    }
}
