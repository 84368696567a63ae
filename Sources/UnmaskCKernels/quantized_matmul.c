#include "UnmaskCKernels.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#define UNMASK_X86 1
#include <immintrin.h>
#endif

#define ALWAYS_INLINE static inline __attribute__((always_inline))
/// Loops over a constant count of registers: unrolled, or the registers become stack slots.
#define UNROLL _Pragma("clang loop unroll(full)")

// The ggml type numbers (as GGUF stores them) that have fused kernels.
enum { F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q4_K = 12, Q5_K = 13, Q6_K = 14, BF16 = 30 };

// MARK: Scalars

ALWAYS_INLINE float half_to_float(const uint8_t *p) {
    uint32_t h = (uint32_t)p[0] | (uint32_t)p[1] << 8;
    uint32_t sign = (h & 0x8000u) << 16, exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF, bits;
    if (exponent == 0x1F) {
        bits = sign | 0x7F800000u | mantissa << 13;
    } else if (exponent != 0) {
        bits = sign | (exponent + 112) << 23 | mantissa << 13;
    } else if (mantissa == 0) {
        bits = sign;
    } else {
        // Subnormal: normalize the mantissa.
        int e = -1;
        do { mantissa <<= 1; e++; } while (!(mantissa & 0x400));
        bits = sign | (uint32_t)(112 - e) << 23 | (mantissa & 0x3FF) << 13;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

ALWAYS_INLINE float bfloat_to_float(const uint8_t *p) {
    uint32_t bits = ((uint32_t)p[0] | (uint32_t)p[1] << 8) << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

ALWAYS_INLINE uint32_t load_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/// Q4_K/Q5_K: sub-block j's 6-bit scale and minimum out of the 12 packed bytes.
ALWAYS_INLINE void scale_min_k4(int j, const uint8_t *s, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0x0F) | (uint8_t)((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | (uint8_t)((s[j] >> 6) << 4);
    }
}

// MARK: Weight groups
//
// Every supported type is read as groups of 32 values. The block types store w = a·q + b: q small
// integers (bytes), a and b one scale and one offset per half group of 16 (most types share them
// across the group; Q6_K has a scale per 16). F16 and BF16 store w itself, 64 bytes a group.
// Each variant turns a group into float32 in registers and multiplies it with float32
// activations: the products are the dequantized weights' (as `GGMLDequantize` writes them)
// without a float32 copy of the matrix, and the activations are not rounded at all (AVX512-BF16's
// `vdpbf16ps` would round them to 8 significant bits, so it is not used). Layouts as in
// ggml-common.h.

int unmask_quantized_supported(uint32_t type) {
    switch (type) {
    case F16: case BF16:
    case Q4_0: case Q4_1: case Q5_0: case Q5_1: case Q8_0: case Q4_K: case Q5_K: case Q6_K: return 1;
    default: return 0;
    }
}

/// Group g of a block-quantized row in plain C: its 32 integers, and per half the scale and offset.
ALWAYS_INLINE void quants_reference(uint32_t type, const uint8_t *row, int64_t g, int32_t q[32], float a[2], float b[2]) {
    const uint8_t *p;
    switch (type) {
    case Q4_0: case Q4_1: case Q5_0: case Q5_1: {
        // d, [m], [32 fifth bits], 16 bytes of nibbles (element j low, j + 16 high).
        int minimum = type == Q4_1 || type == Q5_1, five = type == Q5_0 || type == Q5_1;
        p = row + (18 + 2 * minimum + 4 * five) * g;
        const uint8_t *nibbles = p + 2 + 2 * minimum + 4 * five;
        uint32_t high = five ? load_u32(p + 2 + 2 * minimum) : 0;
        for (int j = 0; j < 16; j++) {
            q[j] = nibbles[j] & 0x0F;
            q[j + 16] = nibbles[j] >> 4;
        }
        for (int j = 0; j < 32; j++) q[j] |= (int32_t)((high >> j) & 1) << 4;
        a[0] = a[1] = half_to_float(p);
        b[0] = b[1] = minimum ? half_to_float(p + 2) : (five ? -16 : -8) * a[0];
        break;
    }
    case Q8_0:
        p = row + 34 * g;
        for (int j = 0; j < 32; j++) q[j] = (int8_t)p[2 + j];
        a[0] = a[1] = half_to_float(p);
        b[0] = b[1] = 0;
        break;
    case Q4_K: case Q5_K: {
        // d, dmin, 12 bytes of 6-bit scales and minimums, [32 bytes of fifth bits], 128 of nibbles.
        int five = type == Q5_K, j = (int)(g % 8);
        p = row + (five ? 176 : 144) * (g / 8);
        uint8_t sc, m;
        scale_min_k4(j, p + 4, &sc, &m);
        const uint8_t *nibbles = p + (five ? 48 : 16) + 32 * (j / 2), *high = p + 16;
        for (int l = 0; l < 32; l++) {
            q[l] = (nibbles[l] >> (4 * (j % 2))) & 0x0F;
            if (five) q[l] |= ((high[l] >> j) & 1) << 4;
        }
        a[0] = a[1] = half_to_float(p) * sc;
        b[0] = b[1] = -half_to_float(p + 2) * m;
        break;
    }
    case Q6_K: {
        // 128 bytes of low nibbles, 64 of 2-bit highs, 16 signed scales (one per 16), d.
        int j = (int)(g % 8), h = j / 4, c = j % 4;
        p = row + 210 * (g / 8);
        const uint8_t *low = p + 64 * h + 32 * (c % 2), *high = p + 128 + 32 * h;
        for (int l = 0; l < 32; l++) q[l] = ((low[l] >> (4 * (c / 2))) & 0x0F) | ((high[l] >> (2 * c)) & 3) << 4;
        float d = half_to_float(p + 208);
        for (int k = 0; k < 2; k++) {
            a[k] = d * (int8_t)p[192 + 2 * j + k];
            b[k] = -32 * a[k];
        }
        break;
    }
    }
}

/// Group g of a row in plain C: its 32 weights.
ALWAYS_INLINE void group_reference(uint32_t type, const uint8_t *row, int64_t g, float w[32]) {
    if (type == F16 || type == BF16) {
        for (int l = 0; l < 32; l++) w[l] = type == F16 ? half_to_float(row + 64 * g + 2 * l) : bfloat_to_float(row + 64 * g + 2 * l);
        return;
    }
    int32_t q[32];
    float a[2], b[2];
    quants_reference(type, row, g, q, a, b);
    for (int l = 0; l < 32; l++) w[l] = fmaf(a[l / 16], (float)q[l], b[l / 16]);
}

typedef void (*row_kernel)(uint32_t type, const uint8_t *row, int64_t groups, const float *x, int64_t columns,
                           int64_t m, float *out, int64_t ldo, int accumulate);

/// The plain reference every SIMD variant is tested against: one weight row with m activation rows.
static void row_reference(uint32_t type, const uint8_t *row, int64_t groups, const float *x, int64_t columns,
                          int64_t m, float *out, int64_t ldo, int accumulate) {
    for (int64_t i = 0; i < m; i++) {
        float sum = 0;
        for (int64_t g = 0; g < groups; g++) {
            float w[32];
            group_reference(type, row, g, w);
            for (int l = 0; l < 32; l++) sum += w[l] * x[i * columns + 32 * g + l];
        }
        out[i * ldo] = accumulate ? out[i * ldo] + sum : sum;
    }
}

#ifdef UNMASK_X86

#define TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define TARGET_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl")))

/// One float16 as float32, by F16C. The half is moved in whole (`vmovd`, upper lanes zero), the
/// empty asm keeping it so: left to itself the compiler inserts the half into any vector register
/// (only lane 0 is used), an accumulator included, which chained each group's conversion to the
/// previous group's FMAs (Q8_0 on AVX2 ran at half speed).
TARGET_AVX512 ALWAYS_INLINE float half_avx512(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    __m128i v = _mm_cvtsi32_si128(h);
    __asm__("" : "+x"(v));
    return _mm_cvtss_f32(_mm_cvtph_ps(v));
}

/// Every float16 as float32 (by F16C), indexed by its bits. On AVX2 a block's scale comes from
/// here: broadcasting it is then a load, where converting it and broadcasting the register take
/// two shuffles, and on few input rows the AVX2 kernels are bound by shuffles more than by FMAs
/// (on Zen3, with the single row's four accumulators below, Q4_1 at one input row went from 10.9
/// to 13.8 GMAC/s). 256 KB, filled once.
static float half_table[65536];

/// For each byte of Q5_0/Q5_1 fifth bits, its 8 bits as 16 or 0 in 32-bit lanes: one load a vector
/// of quants, where moving each lane's bit into place took 5 operations (on Zen3, Q5_0 at one
/// input row went from 8.2 to 10.2 GMAC/s, at 4 rows from 20.7 to 24.8; Q4_0: 12.0, 27.7). 8 KB.
static _Alignas(32) int32_t fifth_bits_table[256][8];

/// Both tables are filled before the first AVX2 product.
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

TARGET_AVX2 static void fill_tables(void) {
    for (int h = 0; h < 65536; h += 8)
        _mm256_storeu_ps(half_table + h, _mm256_cvtph_ps(_mm_add_epi16(_mm_set1_epi16((short)h), _mm_setr_epi16(0, 1, 2, 3, 4, 5, 6, 7))));
    for (int b = 0; b < 256; b++)
        for (int l = 0; l < 8; l++) fifth_bits_table[b][l] = ((b >> l) & 1) << 4;
}

ALWAYS_INLINE float half_avx2(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return half_table[h];
}

/// The sum of a vector's 8 lanes.
TARGET_AVX2 ALWAYS_INLINE float sum_avx2(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

// MARK: AVX2
//
// A group is 4 vectors of 8 floats. R activation rows (a constant after inlining, unrolled, so
// the accumulators stay in registers) share each dequantized group. Each row has
// ACCUMULATORS_AVX2(type, R) accumulators, enough that its FMAs do not wait on each other's
// latency: a single row gets one per vector of the group (with two, each FMA waited on the one
// before it, which bounded one input row at 4 multiply-adds a cycle); from 2 rows on two a row
// are enough, and four would not fit the 16 registers with the group (slower at 2 rows), nor
// beside Q5_K's and Q6_K's unpacking at one row (5-9% slower).

/// 8 bytes widened to 32-bit lanes.
TARGET_AVX2 ALWAYS_INLINE __m256i widen_bytes_avx2(const uint8_t *p) {
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
}

/// The 32 unsigned quants of a Q4_0/Q4_1/Q5_0/Q5_1 block at `p`, as four vectors of 32-bit lanes:
/// each 8 packed bytes are widened once and the nibbles split there (half the lane shuffles).
TARGET_AVX2 ALWAYS_INLINE void quants_avx2(const uint8_t *p, int minimum, int five, __m256i q[4]) {
    // Each 8 bytes widened from memory: a byte shift of one 16-byte load would be one more shuffle.
    __m256i b0 = widen_bytes_avx2(p + 2 + 2 * minimum + 4 * five), b1 = widen_bytes_avx2(p + 10 + 2 * minimum + 4 * five);
    __m256i nibble = _mm256_set1_epi32(0x0F);
    q[0] = _mm256_and_si256(b0, nibble);
    q[1] = _mm256_and_si256(b1, nibble);
    q[2] = _mm256_srli_epi32(b0, 4);
    q[3] = _mm256_srli_epi32(b1, 4);
    if (five) {
        // Bit 8k + l of the fifth bits belongs to lane l of vector k: byte k of them, looked up.
        const uint8_t *bits = p + 2 + 2 * minimum;
        for (int k = 0; k < 4; k++) q[k] = _mm256_or_si256(q[k], _mm256_load_si256((const __m256i *)fifth_bits_table[bits[k]]));
    }
}

/// 8 bfloat16 as float32: each in the top half of a 32-bit lane.
TARGET_AVX2 ALWAYS_INLINE __m256 bfloat8_avx2(const uint8_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}

/// Group g as four vectors of 8 float32 weights.
TARGET_AVX2 ALWAYS_INLINE void weights_avx2(uint32_t type, const uint8_t *row, int64_t g, __m256 w[4]) {
    if (type == Q4_0 || type == Q4_1 || type == Q5_0 || type == Q5_1) {
        int minimum = type == Q4_1 || type == Q5_1, five = type == Q5_0 || type == Q5_1;
        const uint8_t *p = row + (18 + 2 * minimum + 4 * five) * g;
        __m256i q[4];
        quants_avx2(p, minimum, five, q);
        __m256 a = _mm256_set1_ps(half_avx2(p));
        __m256 b = minimum ? _mm256_set1_ps(half_avx2(p + 2)) : _mm256_mul_ps(a, _mm256_set1_ps(five ? -16 : -8));
        for (int k = 0; k < 4; k++) w[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q[k]), a, b);
    } else if (type == F16) {
        for (int k = 0; k < 4; k++) w[k] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + 64 * g + 16 * k)));
    } else if (type == BF16) {
        for (int k = 0; k < 4; k++) w[k] = bfloat8_avx2(row + 64 * g + 16 * k);
    } else {  // Q8_0 (the K-quants go a super-block at a time, in chunk_avx2)
        const uint8_t *p = row + 34 * g;
        __m256 a = _mm256_set1_ps(half_avx2(p));
        for (int k = 0; k < 4; k++) w[k] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p + 2 + 8 * k)))), a);
    }
}

TARGET_AVX2 ALWAYS_INLINE __m256 dequantize_avx2(__m256i q, float a, float b) {
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(q), _mm256_set1_ps(a), _mm256_set1_ps(b));
}

/// Bit j of each lane as 16 or 0.
TARGET_AVX2 ALWAYS_INLINE __m256i fifth_bit_avx2(__m256i bits, int j) {
    __m256i moved = j <= 4 ? _mm256_slli_epi32(bits, 4 - j) : _mm256_srli_epi32(bits, j - 4);
    return _mm256_and_si256(moved, _mm256_set1_epi32(16));
}

#define ACCUMULATORS_AVX2(type, R) ((R) == 1 && (type) != Q5_K && (type) != Q6_K ? 4 : 2)

/// Accumulates `count` consecutive groups from `w` (four vectors each) into R rows' accumulators.
#define ACCUMULATE_AVX2(w, count, g)                                                                  \
    for (int u = 0; u < (count); u++) {                                                               \
        UNROLL for (int i = 0; i < R; i++) {                                                          \
            const float *v = x + i * columns + 32 * ((g) + u);                                        \
            UNROLL for (int k = 0; k < 4; k++) {                                                      \
                __m256 *a = &acc[k % ACCUMULATORS_AVX2(type, R)][i];                                  \
                *a = _mm256_fmadd_ps(w[4 * u + k], _mm256_loadu_ps(v + 8 * k), *a);                   \
            }                                                                                         \
        }                                                                                             \
    }

/// The K-quants go a super-block (8 groups) at a time, as on AVX-512: scales decoded once, and
/// bytes holding two groups' nibbles widened once and split in 32-bit lanes.
TARGET_AVX2 ALWAYS_INLINE void chunk_avx2(uint32_t type, int R, const uint8_t *row, int64_t groups, const float *x,
                                          int64_t columns, float *out, int64_t ldo, int accumulate) {
    __m256 acc[4][4];
    UNROLL for (int k = 0; k < 4; k++) UNROLL for (int i = 0; i < 4; i++) acc[k][i] = _mm256_setzero_ps();
    __m256i nibble = _mm256_set1_epi32(0x0F);
    if (type == Q4_K || type == Q5_K) {
        int five = type == Q5_K;
        for (int64_t g = 0; g < groups; g += 8) {
            const uint8_t *p = row + (five ? 176 : 144) * (g / 8), *qs = p + (five ? 48 : 16);
            float d = half_avx2(p), dmin = half_avx2(p + 2), a[8], b[8];
            for (int j = 0; j < 8; j++) {
                uint8_t sc, m;
                scale_min_k4(j, p + 4, &sc, &m);
                a[j] = d * sc;
                b[j] = -dmin * m;
            }
            for (int j = 0; j < 8; j += 2) {
                // 32 bytes: group j in the low nibbles, group j + 1 in the high ones.
                __m256 w[8];
                for (int k = 0; k < 4; k++) {
                    __m256i bytes = widen_bytes_avx2(qs + 16 * j + 8 * k);
                    __m256i q0 = _mm256_and_si256(bytes, nibble), q1 = _mm256_srli_epi32(bytes, 4);
                    if (five) {
                        __m256i high = widen_bytes_avx2(p + 16 + 8 * k);
                        q0 = _mm256_or_si256(q0, fifth_bit_avx2(high, j));
                        q1 = _mm256_or_si256(q1, fifth_bit_avx2(high, j + 1));
                    }
                    w[k] = dequantize_avx2(q0, a[j], b[j]);
                    w[4 + k] = dequantize_avx2(q1, a[j + 1], b[j + 1]);
                }
                ACCUMULATE_AVX2(w, 2, g + j)
            }
        }
    } else if (type == Q6_K) {
        for (int64_t g = 0; g < groups; g += 8) {
            const uint8_t *p = row + 210 * (g / 8);
            float d = half_avx2(p + 208), a[16];
            for (int k = 0; k < 16; k++) a[k] = d * (int8_t)p[192 + k];
            for (int h = 0; h < 2; h++) {
                // Group 4h + c: nibble c / 2 of 32 low bytes (the first 32 for even c, the next
                // for odd), bits 2c, 2c + 1 of 32 high bytes; a scale per 16 values. Groups c and
                // c + 2 share their low bytes, all four the high ones: each widened once.
                const uint8_t *low = p + 64 * h, *high = p + 128 + 32 * h;
                __m256i t[4];
                for (int k = 0; k < 4; k++) t[k] = widen_bytes_avx2(high + 8 * k);
                for (int odd = 0; odd < 2; odd++) {
                    __m256i l[4];
                    for (int k = 0; k < 4; k++) l[k] = widen_bytes_avx2(low + 32 * odd + 8 * k);
                    for (int c = odd; c < 4; c += 2) {
                        __m256 w[4];
                        for (int k = 0; k < 4; k++) {
                            __m256i bits = _mm256_srli_epi32(l[k], 4 * (c / 2)), top = _mm256_srli_epi32(t[k], 2 * c);
                            __m256i q = _mm256_or_si256(_mm256_and_si256(bits, nibble),
                                                        _mm256_slli_epi32(_mm256_and_si256(top, _mm256_set1_epi32(3)), 4));
                            float scale = a[8 * h + 2 * c + k / 2];
                            w[k] = dequantize_avx2(q, scale, -32 * scale);
                        }
                        ACCUMULATE_AVX2(w, 1, g + 4 * h + c)
                    }
                }
            }
        }
    } else {
        for (int64_t g = 0; g < groups; g++) {
            __m256 w[4];
            weights_avx2(type, row, g, w);
            ACCUMULATE_AVX2(w, 1, g)
        }
    }
    UNROLL for (int i = 0; i < R; i++) {
        __m256 total = _mm256_add_ps(acc[0][i], acc[1][i]);
        if (ACCUMULATORS_AVX2(type, R) == 4) total = _mm256_add_ps(total, _mm256_add_ps(acc[2][i], acc[3][i]));
        float sum = sum_avx2(total);
        out[i * ldo] = accumulate ? out[i * ldo] + sum : sum;
    }
}

// MARK: AVX-512
//
// A group is 2 vectors of 16 floats, one per half.

/// 16 bfloat16 as float32: each in the top half of a 32-bit lane.
TARGET_AVX512 ALWAYS_INLINE __m512 bfloat16_avx512(const uint8_t *p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}

/// Group g as two vectors of 16 float32 weights (its halves). The 4- and 5-bit types widen their
/// 16 packed bytes once, to 32-bit lanes, and split the nibbles there: one lane shuffle per group
/// instead of two (shuffles share one port with the broadcasts and conversions here).
TARGET_AVX512 ALWAYS_INLINE void weights_avx512(uint32_t type, const uint8_t *row, int64_t g, __m512 *w0, __m512 *w1) {
    if (type == F16 || type == BF16) {
        const uint8_t *p = row + 64 * g;
        *w0 = type == F16 ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)) : bfloat16_avx512(p);
        *w1 = type == F16 ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + 32))) : bfloat16_avx512(p + 32);
        return;
    }
    __m512i q0, q1;
    __m512 a0, b0, a1, b1;
    if (type == Q4_0 || type == Q4_1 || type == Q5_0 || type == Q5_1) {
        int minimum = type == Q4_1 || type == Q5_1, five = type == Q5_0 || type == Q5_1;
        const uint8_t *p = row + (18 + 2 * minimum + 4 * five) * g;
        __m512i packed = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p + 2 + 2 * minimum + 4 * five)));
        q0 = _mm512_and_si512(packed, _mm512_set1_epi32(0x0F));
        q1 = _mm512_srli_epi32(packed, 4);
        if (five) {
            uint32_t bits = load_u32(p + 2 + 2 * minimum);
            q0 = _mm512_mask_or_epi32(q0, (__mmask16)bits, q0, _mm512_set1_epi32(16));
            q1 = _mm512_mask_or_epi32(q1, (__mmask16)(bits >> 16), q1, _mm512_set1_epi32(16));
        }
        // d (and m) in one conversion.
        __m128 scales = _mm_cvtph_ps(_mm_cvtsi32_si128((int)load_u32(p)));
        a0 = a1 = _mm512_broadcastss_ps(scales);
        b0 = b1 = minimum ? _mm512_broadcastss_ps(_mm_movehdup_ps(scales)) : _mm512_mul_ps(a0, _mm512_set1_ps(five ? -16 : -8));
    } else {  // Q8_0 (the K-quants go a super-block at a time, in chunk_avx512)
        const uint8_t *p = row + 34 * g;
        q0 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p + 2)));
        q1 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p + 18)));
        a0 = a1 = _mm512_set1_ps(half_avx512(p));
        b0 = b1 = _mm512_setzero_ps();
    }
    *w0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(q0), a0, b0);
    *w1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(q1), a1, b1);
}

/// Accumulates `count` consecutive groups from `w` (two vectors each) into R rows' accumulators.
#define ACCUMULATE_AVX512(w, count, g)                                                                \
    for (int u = 0; u < (count); u++) {                                                               \
        UNROLL for (int i = 0; i < R; i++) {                                                          \
            const float *v = x + i * columns + 32 * ((g) + u);                                        \
            acc0[i] = _mm512_fmadd_ps(w[2 * u], _mm512_loadu_ps(v), acc0[i]);                        \
            acc1[i] = _mm512_fmadd_ps(w[2 * u + 1], _mm512_loadu_ps(v + 16), acc1[i]);               \
        }                                                                                             \
    }

TARGET_AVX512 ALWAYS_INLINE __m512 dequantize_avx512(__m512i q, float a, float b) {
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(q), _mm512_set1_ps(a), _mm512_set1_ps(b));
}

TARGET_AVX512 ALWAYS_INLINE __m512i widen_bytes_avx512(const uint8_t *p) {
    return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p));
}

/// Bit j of each lane as 16 or 0.
TARGET_AVX512 ALWAYS_INLINE __m512i fifth_bit_avx512(__m512i bits, int j) {
    __m512i moved = j <= 4 ? _mm512_slli_epi32(bits, 4 - j) : _mm512_srli_epi32(bits, j - 4);
    return _mm512_and_si512(moved, _mm512_set1_epi32(16));
}

/// The K-quants a super-block (8 groups) at a time: its scales decoded once, and bytes that hold
/// several groups' bits widened once to 32-bit lanes and split there.
TARGET_AVX512 ALWAYS_INLINE void chunk_avx512(uint32_t type, int R, const uint8_t *row, int64_t groups, const float *x,
                                              int64_t columns, float *out, int64_t ldo, int accumulate) {
    __m512 acc0[8], acc1[8];
    UNROLL for (int i = 0; i < 8; i++) acc0[i] = acc1[i] = _mm512_setzero_ps();
    __m512i nibble = _mm512_set1_epi32(0x0F);
    if (type == Q4_K || type == Q5_K) {
        int five = type == Q5_K;
        for (int64_t g = 0; g < groups; g += 8) {
            const uint8_t *p = row + (five ? 176 : 144) * (g / 8), *qs = p + (five ? 48 : 16);
            float d = half_avx512(p), dmin = half_avx512(p + 2), a[8], b[8];
            for (int j = 0; j < 8; j++) {
                uint8_t sc, m;
                scale_min_k4(j, p + 4, &sc, &m);
                a[j] = d * sc;
                b[j] = -dmin * m;
            }
            __m512i h0 = _mm512_setzero_si512(), h1 = h0;
            if (five) {
                h0 = widen_bytes_avx512(p + 16);
                h1 = widen_bytes_avx512(p + 32);
            }
            for (int j = 0; j < 8; j += 2) {
                // 32 bytes: group j in the low nibbles, group j + 1 in the high ones.
                __m512i b0 = widen_bytes_avx512(qs + 16 * j), b1 = widen_bytes_avx512(qs + 16 * j + 16);
                __m512i q[4] = {_mm512_and_si512(b0, nibble), _mm512_and_si512(b1, nibble), _mm512_srli_epi32(b0, 4), _mm512_srli_epi32(b1, 4)};
                if (five) {
                    q[0] = _mm512_or_si512(q[0], fifth_bit_avx512(h0, j));
                    q[1] = _mm512_or_si512(q[1], fifth_bit_avx512(h1, j));
                    q[2] = _mm512_or_si512(q[2], fifth_bit_avx512(h0, j + 1));
                    q[3] = _mm512_or_si512(q[3], fifth_bit_avx512(h1, j + 1));
                }
                __m512 w[4] = {dequantize_avx512(q[0], a[j], b[j]), dequantize_avx512(q[1], a[j], b[j]),
                               dequantize_avx512(q[2], a[j + 1], b[j + 1]), dequantize_avx512(q[3], a[j + 1], b[j + 1])};
                ACCUMULATE_AVX512(w, 2, g + j)
            }
        }
    } else if (type == Q6_K) {
        for (int64_t g = 0; g < groups; g += 8) {
            const uint8_t *p = row + 210 * (g / 8);
            float d = half_avx512(p + 208), a[16];
            for (int k = 0; k < 16; k++) a[k] = d * (int8_t)p[192 + k];
            for (int h = 0; h < 2; h++) {
                // Groups 4h + c, c < 4: low nibbles of 64 bytes (c = 0, 1) then their high ones
                // (c = 2, 3); two bits each of 32 more bytes.
                const uint8_t *low = p + 64 * h, *high = p + 128 + 32 * h;
                __m512i l[4] = {widen_bytes_avx512(low), widen_bytes_avx512(low + 16), widen_bytes_avx512(low + 32), widen_bytes_avx512(low + 48)};
                __m512i t[2] = {widen_bytes_avx512(high), widen_bytes_avx512(high + 16)};
                for (int c = 0; c < 4; c++) {
                    __m512 w[2];
                    for (int half = 0; half < 2; half++) {
                        __m512i bits = _mm512_srli_epi32(l[2 * (c % 2) + half], 4 * (c / 2));
                        __m512i q = _mm512_or_si512(_mm512_and_si512(bits, nibble),
                                                    _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(t[half], 2 * c), _mm512_set1_epi32(3)), 4));
                        int k = 2 * (4 * h + c) + half;
                        w[half] = dequantize_avx512(q, a[k], -32 * a[k]);
                    }
                    ACCUMULATE_AVX512(w, 1, g + 4 * h + c)
                }
            }
        }
    } else {
        for (int64_t g = 0; g < groups; g++) {
            __m512 w[2];
            weights_avx512(type, row, g, &w[0], &w[1]);
            ACCUMULATE_AVX512(w, 1, g)
        }
    }
    UNROLL for (int i = 0; i < R; i++) {
        float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0[i], acc1[i]));
        out[i * ldo] = accumulate ? out[i * ldo] + sum : sum;
    }
}

/// One weight row with m activation rows, CHUNK at a time (registers: 8 rows × 2 accumulators
/// of 16 AVX-512 ones, 4 × 2 of 16 AVX2 ones): one function per type and variant, so the group
/// unpacking is specialized and inlined.
#define CHUNK_CASE(suffix, T, R)                                                                      \
    case R: chunk_##suffix(T, R, row, groups, x + i * columns, columns, out + i * ldo, ldo, accumulate); break;
#define DEFINE_ROW_KERNEL(TARGET, suffix, CHUNK, T)                                                   \
    TARGET static void row_##suffix##_##T(uint32_t type, const uint8_t *row, int64_t groups, const float *x, \
                                          int64_t columns, int64_t m, float *out, int64_t ldo, int accumulate) { \
        (void)type;                                                                                   \
        int64_t i = 0;                                                                                \
        for (; i + CHUNK <= m; i += CHUNK)                                                            \
            chunk_##suffix(T, CHUNK, row, groups, x + i * columns, columns, out + i * ldo, ldo, accumulate); \
        switch (m - i) {                                                                              \
            CHUNK_CASE(suffix, T, 1) CHUNK_CASE(suffix, T, 2) CHUNK_CASE(suffix, T, 3)                \
            CHUNK_CASE(suffix, T, 4) CHUNK_CASE(suffix, T, 5) CHUNK_CASE(suffix, T, 6) CHUNK_CASE(suffix, T, 7) \
        }                                                                                             \
    }

#define DEFINE_ROW_KERNELS(TARGET, suffix, CHUNK)                                                     \
    DEFINE_ROW_KERNEL(TARGET, suffix, CHUNK, Q4_0) DEFINE_ROW_KERNEL(TARGET, suffix, CHUNK, Q4_1)     \
    DEFINE_ROW_KERNEL(TARGET, suffix, CHUNK, Q5_0) DEFINE_ROW_KERNEL(TARGET, suffix, CHUNK, Q5_1)     \
    DEFINE_ROW_KERNEL(TARGET, suffix, CHUNK, Q8_0) DEFINE_ROW_KERNEL(TARGET, suffix, CHUNK, Q4_K)     \
    DEFINE_ROW_KERNEL(TARGET, suffix, CHUNK, Q5_K) DEFINE_ROW_KERNEL(TARGET, suffix, CHUNK, Q6_K)     \
    DEFINE_ROW_KERNEL(TARGET, suffix, CHUNK, F16) DEFINE_ROW_KERNEL(TARGET, suffix, CHUNK, BF16)      \
    static row_kernel row_kernel_##suffix(uint32_t type) {                                            \
        switch (type) {                                                                               \
        case F16: return row_##suffix##_F16;                                                          \
        case BF16: return row_##suffix##_BF16;                                                        \
        case Q4_0: return row_##suffix##_Q4_0;                                                        \
        case Q4_1: return row_##suffix##_Q4_1;                                                        \
        case Q5_0: return row_##suffix##_Q5_0;                                                        \
        case Q5_1: return row_##suffix##_Q5_1;                                                        \
        case Q8_0: return row_##suffix##_Q8_0;                                                        \
        case Q4_K: return row_##suffix##_Q4_K;                                                        \
        case Q5_K: return row_##suffix##_Q5_K;                                                        \
        default: return row_##suffix##_Q6_K;                                                          \
        }                                                                                             \
    }

DEFINE_ROW_KERNELS(TARGET_AVX2, avx2, 4)
DEFINE_ROW_KERNELS(TARGET_AVX512, avx512, 8)

#endif

#ifdef UNMASK_X86

// MARK: Whole blocks to float32 (the panels' conversion)

/// 8 quants (as 32-bit integers) times a scale, less a minimum: a product, then a difference,
/// never fused, as ggml computes them.
TARGET_AVX2 ALWAYS_INLINE void store_scaled_avx2(float *out, __m256i q, float scale, float minimum) {
    _mm256_storeu_ps(out, _mm256_sub_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(q), _mm256_set1_ps(scale)), _mm256_set1_ps(minimum)));
}

/// `count` blocks as float32, as ggml's dequantizers compute them: the scale times the quant (the
/// offset taken off first, in integers), then the minimum added or subtracted, never fused, so
/// the values are the same bits as `GGMLDequantize`'s.
TARGET_AVX2 static void dequantize_blocks_avx2(uint32_t type, const uint8_t *blocks, int64_t count, float *out) {
    __m256i nibble = _mm256_set1_epi32(0x0F);
    if (type == F16 || type == BF16) {
        // Blocks of one value.
        int64_t i = 0;
        for (; i + 8 <= count; i += 8)
            _mm256_storeu_ps(out + i, type == F16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blocks + 2 * i))) : bfloat8_avx2(blocks + 2 * i));
        for (; i < count; i++) out[i] = type == F16 ? half_avx2(blocks + 2 * i) : bfloat_to_float(blocks + 2 * i);
        return;
    }
    if (type == Q4_K || type == Q5_K) {
        int five = type == Q5_K;
        for (int64_t b = 0; b < count; b++) {
            const uint8_t *p = blocks + (five ? 176 : 144) * b, *qs = p + (five ? 48 : 16), *qh = p + 16;
            float d = half_avx2(p), dmin = half_avx2(p + 2);
            for (int j = 0; j < 8; j++) {
                uint8_t sc, m;
                scale_min_k4(j, p + 4, &sc, &m);
                float dd = d * (float)sc, dm = dmin * (float)m;
                for (int k = 0; k < 4; k++) {
                    __m256i q = _mm256_and_si256(_mm256_srli_epi32(widen_bytes_avx2(qs + 32 * (j / 2) + 8 * k), 4 * (j % 2)), nibble);
                    if (five) q = _mm256_or_si256(q, fifth_bit_avx2(widen_bytes_avx2(qh + 8 * k), j));
                    store_scaled_avx2(out + 256 * b + 32 * j + 8 * k, q, dd, dm);
                }
            }
        }
        return;
    }
    if (type == Q6_K) {
        for (int64_t b = 0; b < count; b++) {
            const uint8_t *p = blocks + 210 * b;
            float d = half_avx2(p + 208);
            for (int g = 0; g < 16; g++) {
                // 16 values: nibble c / 2 of 16 low bytes, bits 2c of 16 high bytes; offset -32.
                float scale = d * (float)(int8_t)p[192 + g];
                int h = g / 8, c = (g % 8) / 2, base = 16 * (g % 2);
                for (int k = 0; k < 2; k++) {
                    __m256i low = _mm256_and_si256(_mm256_srli_epi32(widen_bytes_avx2(p + 64 * h + 32 * (c % 2) + base + 8 * k), 4 * (c / 2)), nibble);
                    __m256i high = _mm256_and_si256(_mm256_srli_epi32(widen_bytes_avx2(p + 128 + 32 * h + base + 8 * k), 2 * c), _mm256_set1_epi32(3));
                    __m256i q = _mm256_sub_epi32(_mm256_or_si256(low, _mm256_slli_epi32(high, 4)), _mm256_set1_epi32(32));
                    store_scaled_avx2(out + 256 * b + 16 * g + 8 * k, q, scale, 0);
                }
            }
        }
        return;
    }
    if (type == Q8_0) {
        for (int64_t g = 0; g < count; g++) {
            const uint8_t *p = blocks + 34 * g;
            __m256 d = _mm256_set1_ps(half_avx2(p));
            for (int k = 0; k < 4; k++)
                _mm256_storeu_ps(out + 32 * g + 8 * k,
                                 _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p + 2 + 8 * k)))), d));
        }
        return;
    }
    int minimum = type == Q4_1 || type == Q5_1, five = type == Q5_0 || type == Q5_1;
    int64_t size = 18 + 2 * minimum + 4 * five;
    __m256i offset = _mm256_set1_epi32(minimum ? 0 : (five ? 16 : 8));
    for (int64_t g = 0; g < count; g++) {
        const uint8_t *p = blocks + size * g;
        __m256i q[4];
        quants_avx2(p, minimum, five, q);
        __m256 d = _mm256_set1_ps(half_avx2(p)), m = _mm256_set1_ps(minimum ? half_avx2(p + 2) : 0);
        for (int k = 0; k < 4; k++) {
            __m256 w = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(q[k], offset)), d);
            _mm256_storeu_ps(out + 32 * g + 8 * k, minimum ? _mm256_add_ps(w, m) : w);
        }
    }
}

// MARK: Tiles (AVX2, many input rows)
//
// The row kernels convert a weight row once per chunk of 4 input rows and load every input value
// again for each weight row: from 8 input rows on, their input no longer fits in L1 and its loads
// from L2, not the multiply-adds, bound them (≈ 20 GMAC/s a core on Zen3 at 8 to 64 rows). Here
// TILE_ROWS weight rows × up to TILE_COLUMNS columns are converted once (by the panels' converter,
// so the products use the dequantized values exactly) into a float32 tile that stays in L1, then
// multiplied with every input row, TILE_INPUT_ROWS at a time: each input vector loaded feeds
// TILE_ROWS multiply-adds, and the 12 accumulators, 3 tile vectors and one input vector fill the 16
// registers exactly (4 × 3 spilled an accumulator every step: 19 GMAC/s; 3 × 4: 25–34).

enum { TILE_ROWS = 3, TILE_COLUMNS = 512, TILE_INPUT_ROWS = 4, TILE_INPUT_BLOCK = 48, TILED_MINIMUM_ROWS = 8 };

/// partial[i · TILE_ROWS + r] += tile row r · input row i over `width` columns, for R input rows.
TARGET_AVX2 ALWAYS_INLINE void tile_product_avx2(int R, const float *tile, int64_t width, const float *x, int64_t columns,
                                                 __m256 *partial) {
    __m256 acc[TILE_INPUT_ROWS][TILE_ROWS];
    UNROLL for (int i = 0; i < R; i++) UNROLL for (int r = 0; r < TILE_ROWS; r++) acc[i][r] = partial[i * TILE_ROWS + r];
    for (int64_t c = 0; c < width; c += 8) {
        __m256 w[TILE_ROWS];
        UNROLL for (int r = 0; r < TILE_ROWS; r++) w[r] = _mm256_load_ps(tile + r * TILE_COLUMNS + c);
        UNROLL for (int i = 0; i < R; i++) {
            __m256 v = _mm256_loadu_ps(x + i * columns + c);
            UNROLL for (int r = 0; r < TILE_ROWS; r++) acc[i][r] = _mm256_fmadd_ps(w[r], v, acc[i][r]);
        }
    }
    UNROLL for (int i = 0; i < R; i++) UNROLL for (int r = 0; r < TILE_ROWS; r++) partial[i * TILE_ROWS + r] = acc[i][r];
}

/// out[i, r - row_begin] (+)= input row i · weight row r for r in [row_begin, row_end): as
/// `unmask_quantized_matmul`, whose every type `dequantize_blocks_avx2` converts.
TARGET_AVX2 static void tiled_matmul_avx2(uint32_t type, const uint8_t *weights, int64_t row_bytes, const int64_t *row_order,
                                          int64_t row_begin, int64_t row_end, int64_t columns, const float *x, int64_t m,
                                          float *out, int64_t ldo, int accumulate) {
    // Rows of a last, partial tile past the range's end keep earlier values: computed, never written.
    _Alignas(32) float tile[TILE_ROWS * TILE_COLUMNS] = {0};
    __m256 partial[TILE_INPUT_BLOCK * TILE_ROWS];
    // The conversion counts F16 and BF16 in values, the block types in blocks of 32 or 256.
    int64_t block = type == Q4_K || type == Q5_K || type == Q6_K ? 256 : (type == F16 || type == BF16 ? 1 : 32);
    int64_t block_bytes = row_bytes / (columns / block);
    for (int64_t r0 = row_begin; r0 < row_end; r0 += TILE_ROWS) {
        int64_t rows = row_end - r0 < TILE_ROWS ? row_end - r0 : TILE_ROWS;
        for (int64_t i0 = 0; i0 < m; i0 += TILE_INPUT_BLOCK) {
            int64_t inputs = m - i0 < TILE_INPUT_BLOCK ? m - i0 : TILE_INPUT_BLOCK;
            for (int64_t j = 0; j < inputs * TILE_ROWS; j++) partial[j] = _mm256_setzero_ps();
            for (int64_t c0 = 0; c0 < columns; c0 += TILE_COLUMNS) {
                int64_t width = columns - c0 < TILE_COLUMNS ? columns - c0 : TILE_COLUMNS;
                for (int64_t r = 0; r < rows; r++) {
                    const uint8_t *row = weights + row_bytes * (row_order ? row_order[r0 + r] : r0 + r);
                    dequantize_blocks_avx2(type, row + c0 / block * block_bytes, width / block, tile + r * TILE_COLUMNS);
                }
                const float *xs = x + i0 * columns + c0;
                __m256 *p = partial;
                int64_t left = inputs;
                for (; left >= TILE_INPUT_ROWS; left -= TILE_INPUT_ROWS, xs += TILE_INPUT_ROWS * columns, p += TILE_INPUT_ROWS * TILE_ROWS)
                    tile_product_avx2(TILE_INPUT_ROWS, tile, width, xs, columns, p);
                switch (left) {
                case 3: tile_product_avx2(3, tile, width, xs, columns, p); break;
                case 2: tile_product_avx2(2, tile, width, xs, columns, p); break;
                case 1: tile_product_avx2(1, tile, width, xs, columns, p); break;
                }
            }
            for (int64_t i = 0; i < inputs; i++)
                for (int64_t r = 0; r < rows; r++) {
                    float sum = sum_avx2(partial[i * TILE_ROWS + r]), *o = out + (i0 + i) * ldo + (r0 - row_begin + r);
                    *o = accumulate ? *o + sum : sum;
                }
        }
    }
}

#endif

int unmask_dequantize_blocks(uint32_t type, const void *blocks, int64_t count, float *out) {
#ifdef UNMASK_X86
    if (unmask_quantized_supported(type) && unmask_kernel_level() >= UNMASK_KERNEL_AVX2) {
        pthread_once(&tables_once, fill_tables);
        dequantize_blocks_avx2(type, (const uint8_t *)blocks, count, out);
        return 1;
    }
#endif
    (void)type, (void)blocks, (void)count, (void)out;
    return 0;
}

// MARK: Dispatch

static int cpu_supports(int level) {
#ifdef UNMASK_X86
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    switch (level) {
    case UNMASK_KERNEL_AVX512: return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    case UNMASK_KERNEL_AVX2: return avx2;
    }
#endif
    return level == UNMASK_KERNEL_REFERENCE;
}

int unmask_best_kernel_level(void) {
    static _Atomic int best = -1;
    int level = best;
    if (level < 0) {
        level = UNMASK_KERNEL_AVX512;
        while (level > 0 && !cpu_supports(level)) level--;
        best = level;
    }
    return level;
}

/// Set by `unmask_set_kernel_level`; -2: not yet read from UNMASK_KERNEL.
static _Atomic int forced_level = -2;

int unmask_kernel_level(void) {
    int forced = forced_level;
    if (forced == -2) {
        // UNMASK_KERNEL caps the variant (to measure one, or to rule one out).
        static const char *const names[] = {"reference", "avx2", "avx512"};
        const char *name = getenv("UNMASK_KERNEL");
        forced = -1;
        for (int level = 0; name && level <= UNMASK_KERNEL_AVX512; level++)
            if (!strcmp(name, names[level])) forced = level;
        int expected = -2;
        atomic_compare_exchange_strong(&forced_level, &expected, forced);
    }
    int best = unmask_best_kernel_level();
    return forced >= 0 && forced <= best ? forced : best;
}

void unmask_set_kernel_level(int level) { forced_level = level; }

const char *unmask_kernel_name(int level) {
    switch (level) {
    case UNMASK_KERNEL_AVX512: return "AVX-512";
    case UNMASK_KERNEL_AVX2: return "AVX2";
    default: return "reference C";
    }
}

void unmask_quantized_matmul(uint32_t type, const void *weights, int64_t row_bytes, const int64_t *row_order,
                             int64_t row_begin, int64_t row_end, int64_t columns, const float *x, int64_t m,
                             float *out, int64_t ldo, int accumulate) {
    row_kernel kernel = row_reference;
    switch (unmask_kernel_level()) {
#ifdef UNMASK_X86
    case UNMASK_KERNEL_AVX512: kernel = row_kernel_avx512(type); break;
    case UNMASK_KERNEL_AVX2:
        pthread_once(&tables_once, fill_tables);
        if (m >= TILED_MINIMUM_ROWS) {
            tiled_matmul_avx2(type, (const uint8_t *)weights, row_bytes, row_order, row_begin, row_end, columns, x, m, out, ldo, accumulate);
            return;
        }
        kernel = row_kernel_avx2(type);
        break;
#endif
    }
    for (int64_t r = row_begin; r < row_end; r++) {
        int64_t stored = row_order ? row_order[r] : r;
        kernel(type, (const uint8_t *)weights + row_bytes * stored, columns / 32, x, columns, m, out + (r - row_begin), ldo, accumulate);
    }
}
