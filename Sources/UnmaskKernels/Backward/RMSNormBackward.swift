extension Backward {
    /// dInput[rows, dim] (+)= inv·(w⊙dy − x·inv²·mean(w⊙dy⊙x)) per row, with inv the saved
    /// 1/rms of `Kernels.rmsNorm`; dWeight[dim] (+)= Σ_rows dy⊙x·inv when asked.
    public static func rmsNorm(
        dOut: UnsafePointer<Float>, input x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        inverseRMS: UnsafePointer<Float>, rows: Int, dim: Int,
        dInput: UnsafeMutablePointer<Float>, dWeight: UnsafeMutablePointer<Float>? = nil,
        accumulate: Bool = false
    ) {
        Parallel.chunks(rows, minimumPerChunk: 32) { _, range in
            for r in range {
                let xr = x + r * dim, gr = dOut + r * dim, dr = dInput + r * dim
                let inv = inverseRMS[r]
                var acc = SIMD16<Float>()
                var i = 0
                while i + 16 <= dim {
                    let xv = UnsafeRawPointer(xr + i).loadUnaligned(as: SIMD16<Float>.self)
                    let gv = UnsafeRawPointer(gr + i).loadUnaligned(as: SIMD16<Float>.self)
                    let wv = UnsafeRawPointer(weight + i).loadUnaligned(as: SIMD16<Float>.self)
                    acc += xv * gv * wv
                    i += 16
                }
                var dot = acc.sum()
                while i < dim { dot += xr[i] * gr[i] * weight[i]; i += 1 }
                let c = inv * inv * inv * dot / Float(dim)
                if accumulate {
                    for j in 0..<dim { dr[j] += inv * weight[j] * gr[j] - c * xr[j] }
                } else {
                    for j in 0..<dim { dr[j] = inv * weight[j] * gr[j] - c * xr[j] }
                }
            }
        }
        guard let dWeight else { return }
        // Columns split across workers so each owns its slice of dWeight: no reduction step.
        Parallel.chunks(dim, minimumPerChunk: 64) { _, columns in
            if !accumulate { (dWeight + columns.lowerBound).update(repeating: 0, count: columns.count) }
            for r in 0..<rows {
                let xr = x + r * dim, gr = dOut + r * dim
                let inv = inverseRMS[r]
                for j in columns { dWeight[j] += gr[j] * xr[j] * inv }
            }
        }
    }
}
