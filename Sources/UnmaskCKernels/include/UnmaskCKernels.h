#ifndef UNMASK_C_KERNELS_H
#define UNMASK_C_KERNELS_H

#include <stdint.h>

/// Products of weight rows as stored (ggml block quants, F16, BF16) with float32 activations:
/// each group of 32 weights is turned into float32 in registers and multiplied there (from 8
/// input rows on AVX2, a few rows × 512 columns at a time, into a tile that stays in L1), so no
/// float32 copy of the matrix is made and the activations are not rounded (rounding them to 8
/// bits, as llama.cpp's CPU backend does, moved short SmolLM2 embeddings to cosine 0.84;
/// BENCHMARKS.md). One binary carries a plain C reference and SIMD variants compiled with
/// per-function target attributes; the best the CPU supports is chosen at run time.
///
/// Also the thread pool `Parallel` hands loops to (`unmask_pool_run`).

/// Whether `unmask_quantized_matmul` computes with ggml type `type` (its GGUF number).
int unmask_quantized_supported(uint32_t type);

/// out[i * ldo + (r - row_begin)] (+)= (weight row r) · x[i * columns ..< (i + 1) * columns] for
/// r in [row_begin, row_end) and i in [0, m); `accumulate` adds to what `out` holds. Weight row r
/// starts at `weights + row_bytes * stored(r)`, stored(r) = row_order ? row_order[r] : r, and has
/// `columns` elements (a multiple of 32 and of the type's block size).
void unmask_quantized_matmul(uint32_t type, const void *weights, int64_t row_bytes, const int64_t *row_order,
                             int64_t row_begin, int64_t row_end, int64_t columns, const float *x, int64_t m,
                             float *out, int64_t ldo, int accumulate);

/// `count` blocks of ggml type `type` as float32 into `out` (the type's block size per block), bit
/// for bit as ggml's dequantizers (and `GGMLDequantize`, the reference) compute them (F16 and
/// BF16 blocks are one value each). Returns 0 without writing when there is no SIMD variant for
/// the type or the CPU: the types of `unmask_quantized_supported`, with AVX2.
int unmask_dequantize_blocks(uint32_t type, const void *blocks, int64_t count, float *out);

/// The variants, best last. `unmask_set_kernel_level` forces one (tests compare them), as does
/// the environment variable UNMASK_KERNEL=reference|avx2|avx512; a level the CPU lacks, or -1,
/// selects the best it has.
enum {
    UNMASK_KERNEL_REFERENCE = 0,
    UNMASK_KERNEL_AVX2 = 1,
    UNMASK_KERNEL_AVX512 = 2,
};
int unmask_best_kernel_level(void);
int unmask_kernel_level(void);
void unmask_set_kernel_level(int level);
const char *unmask_kernel_name(int level);

/// A job's part: `worker` in [0, workers).
typedef void (*unmask_pool_task)(void *context, int worker);

/// Runs task(context, w) for every w in [0, workers): 0 on the calling thread, the others on
/// the pool's threads, which poll for the next job a short while before sleeping; returns when
/// all have finished. Returns 0 without running anything when the pool is taken (by another
/// thread, or by a task calling it again) or `workers` < 2: the caller then runs the work
/// another way.
int unmask_pool_run(int workers, unmask_pool_task task, void *context);

/// Tells the pool's idle threads to sleep now rather than poll: another pool of threads (BLAS's)
/// is about to need the cores. The next `unmask_pool_run` wakes them.
void unmask_pool_rest(void);

#endif
