#if canImport(Accelerate)
import Accelerate
#else
import COpenBLAS
import UnmaskCKernels
#endif

/// Row-major single-precision matrix products, the only place the project calls BLAS.
public enum BLAS {
    /// c[m, n] = alpha · op(a) · op(b) + beta · c, row-major, where op transposes when asked.
    @inline(__always)
    public static func sgemm(
        transposeA: Bool, transposeB: Bool,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            // BLAS leaves c untouched when k == 0 only for beta == 1; make the empty sum explicit.
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        #if !canImport(Accelerate)
        // OpenBLAS splits products from 2^18 multiply-adds across its own threads: the pool's
        // polling threads would hold the cores they need.
        if m * n * k >= 1 << 18 && openblas_get_num_threads() > 1 { unmask_pool_rest() }
        #endif
        cblas_sgemm(
            CblasRowMajor,
            transposeA ? CblasTrans : CblasNoTrans,
            transposeB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha,
            a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Runs `body` with BLAS limited to the calling thread. Callers that already split work across
    /// cores (one small product per attention head) use it so BLAS does not oversubscribe them.
    public static func singleThreaded<R>(_ body: () throws -> R) rethrows -> R {
        #if canImport(Accelerate)
        return try body()
        #else
        let previous = openblas_get_num_threads()
        if previous == 1 { return try body() }
        openblas_set_num_threads(1)
        defer { openblas_set_num_threads(previous) }
        return try body()
        #endif
    }

    /// Which BLAS and kernel family is in use, for benchmark reports.
    public static var description: String {
        #if canImport(Accelerate)
        return "Accelerate"
        #else
        let config = openblas_get_config().map { String(cString: $0) } ?? "?"
        let core = openblas_get_corename().map { String(cString: $0) } ?? "?"
        return "OpenBLAS \(config) core=\(core) threads=\(openblas_get_num_threads())"
        #endif
    }
}
