#ifndef UNMASK_C_KERNELS_H
#define UNMASK_C_KERNELS_H

#include <stdint.h>

/// Products of ggml block-quantized weight rows with activations quantized to 8 bits, the way
/// llama.cpp's CPU backend computes them: no float32 copy of the weights. One binary carries a
/// plain C reference and SIMD variants compiled with per-function target attributes; the best
/// the CPU supports is chosen at run time.

/// 32 activations in two halves of 16, each with its own scale (half the rounding error of one
/// scale per 32 where activations have outliers, at no cost in the products): value i =
/// d[i / 16] * q[i]; s[h] = d[h] * (sum of q over half h).
typedef struct {
    float d[2];
    float s[2];
    int8_t q[32];
} unmask_q8_block;

/// Quantizes n floats (n a multiple of 32) to n / 32 blocks: per half, d = max|x| / 127 and
/// q = round(x / d).
void unmask_quantize_q8(const float *x, unmask_q8_block *out, int64_t n);

/// Two passes: `first` quantizes x as `unmask_quantize_q8` does, `second` quantizes what it left
/// (x minus first's values). Their sum carries about 15 bits: a product is taken with both and
/// added, so one outlier in a group no longer leaves its neighbours a few levels each.
void unmask_quantize_q8_residual(const float *x, unmask_q8_block *first, unmask_q8_block *second, int64_t n);

/// Whether `unmask_quantized_matmul` computes with ggml type `type` (its GGUF number).
int unmask_quantized_supported(uint32_t type);

/// out[i * ldo + (r - row_begin)] = (weight row r) · (activation row i) for r in
/// [row_begin, row_end) and i in [0, m). Weight row r starts at `weights + row_bytes * stored(r)`,
/// stored(r) = row_order ? row_order[r] : r; each has `columns` elements (a multiple of the
/// type's block size). Activation row i is `x + i * (columns / 32)`.
void unmask_quantized_matmul(uint32_t type, const void *weights, int64_t row_bytes, const int64_t *row_order,
                             int64_t row_begin, int64_t row_end, int64_t columns,
                             const unmask_q8_block *x, int64_t m, float *out, int64_t ldo);

/// The variants, best last. `unmask_set_kernel_level` forces one (tests compare them), as does
/// the environment variable UNMASK_KERNEL=reference|avx2|avx512-vnni; a level the CPU lacks, or
/// -1, selects the best it has.
enum {
    UNMASK_KERNEL_REFERENCE = 0,
    UNMASK_KERNEL_AVX2 = 1,
    UNMASK_KERNEL_AVX512_VNNI = 2,
};
int unmask_best_kernel_level(void);
int unmask_kernel_level(void);
void unmask_set_kernel_level(int level);
const char *unmask_kernel_name(int level);

#endif
