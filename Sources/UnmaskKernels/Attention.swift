/// Which keys a query may attend to.
public struct AttentionPattern: Sendable, Equatable {
    /// Causal: keys at or before the query. Otherwise every valid key (LLM2Vec's bidirectional mode).
    public var causal: Bool
    /// Keys at most this many positions before the query (nil: no limit).
    public var before: Int?
    /// Keys at most this many positions after the query (nil: no limit); causal patterns see none.
    public var after: Int?

    public init(causal: Bool, before: Int? = nil, after: Int? = nil) {
        self.causal = causal
        self.before = before
        self.after = after
    }

    /// Mistral's sliding window of `w`: causal keys within the last `w` positions, the query's
    /// own included; bidirectional keys within `w` on either side (flash-attention's symmetric window).
    public init(causal: Bool, slidingWindow w: Int?) {
        self.init(causal: causal, before: w.map { causal ? $0 - 1 : $0 }, after: causal ? nil : w)
    }

    /// Keys that query `i` attends to, in a row whose non-padding tokens are `valid`.
    /// Padding queries are not masked (as in Hugging Face); their outputs are ignored by pooling.
    @inline(__always)
    public func allowedKeys(query i: Int, valid: Range<Int>) -> Range<Int> {
        var lo = valid.lowerBound, hi = valid.upperBound
        if let before { lo = max(lo, i - before) }
        if causal {
            hi = min(hi, i + 1)
        } else if let after {
            hi = min(hi, i + after + 1)
        }
        return lo < hi ? lo..<hi : lo..<lo
    }
}

public enum Attention {
    /// Query rows scored at once when no probabilities are kept: scratch grows with
    /// length × block instead of length², so long inputs stay within memory.
    public static let queryBlock = 256

    /// Scaled dot-product attention over a batch of left-padded rows; scores are q·k times `scale`
    /// (default 1/√headDim; Gemma scales by 1/√query_pre_attn_scalar).
    /// q, out: [batch·length, heads·headDim]; k, v: [batch·length, kvHeads·headDim] (grouped-query:
    /// head h reads kv head h / (heads / kvHeads)). `valid[b]` is row b's non-padding span.
    /// `probabilities`, when given ([batch, heads, length, length]), keeps the softmax output for
    /// the backward pass; otherwise per-worker scratch of `queryBlock × length` floats is used.
    /// `dropout` drops attention probabilities (training); element (b, h, i, j) of the
    /// [batch, heads, length, length] probabilities uses mask index ((b·heads + h)·length + i)·length + j.
    /// With dropout the backward recomputes the probabilities, so none are saved.
    public static func forward(
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        out: UnsafeMutablePointer<Float>,
        batch: Int, length: Int, heads: Int, kvHeads: Int, headDim: Int,
        valid: [Range<Int>], pattern: AttentionPattern, scale: Float? = nil,
        scratch: FloatBuffer, probabilities: UnsafeMutablePointer<Float>? = nil, dropout: Dropout? = nil,
        queryBlock: Int = queryBlock
    ) {
        precondition(valid.count == batch && heads % kvHeads == 0 && queryBlock >= 1)
        precondition(dropout == nil || probabilities == nil, "attention dropout recomputes probabilities in the backward")
        let qStride = heads * headDim, kvStride = kvHeads * headDim
        let group = heads / kvHeads
        let scale = scale ?? 1 / Float(headDim).squareRoot()
        let workers = Parallel.coreCount
        let block = probabilities != nil ? length : min(length, queryBlock)
        precondition(probabilities != nil || scratch.count >= workers * block * length, "attention scratch too small")
        BLAS.singleThreaded {
            Parallel.forEach(batch * heads, workers: workers) { worker, item in
                let b = item / heads, h = item % heads, g = h / group
                let kb = k + b * length * kvStride + g * headDim
                let vb = v + b * length * kvStride + g * headDim
                for start in stride(from: 0, to: length, by: block) {
                    let rows = min(block, length - start)
                    let scores = probabilities.map { $0 + item * length * length + start * length } ?? scratch.pointer + worker * block * length
                    BLAS.sgemm(transposeA: false, transposeB: true, m: rows, n: length, k: headDim, alpha: scale,
                               a: q + (b * length + start) * qStride + h * headDim, lda: qStride, b: kb, ldb: kvStride, c: scores, ldc: length)
                    for i in 0..<rows {
                        Kernels.maskedSoftmax(scores + i * length, length: length, allowed: pattern.allowedKeys(query: start + i, valid: valid[b]))
                    }
                    dropout?.apply(scores, count: rows * length, offset: item * length * length + start * length)
                    BLAS.sgemm(transposeA: false, transposeB: false, m: rows, n: headDim, k: length,
                               a: scores, lda: length, b: vb, ldb: kvStride, c: out + (b * length + start) * qStride + h * headDim, ldc: qStride)
                }
            }
        }
    }

    /// Floats of scratch `forward` needs for rows of `length` tokens.
    public static func scratchCount(length: Int) -> Int { Parallel.coreCount * min(length, queryBlock) * length }
}
