#include "UnmaskCKernels.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#define UNMASK_X86 1
#include <immintrin.h>
#endif

#define ALWAYS_INLINE static inline __attribute__((always_inline))

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

// MARK: Activations

void unmask_quantize_q8(const float *x, unmask_q8_block *out, int64_t n) {
    for (int64_t b = 0; b < n / 32; b++) {
        for (int h = 0; h < 2; h++) {
            const float *v = x + 32 * b + 16 * h;
            float amax = 0;
            for (int i = 0; i < 16; i++) amax = fmaxf(amax, fabsf(v[i]));
            float d = amax / 127, inverse = d != 0 ? 1 / d : 0;
            int sum = 0;
            for (int i = 0; i < 16; i++) {
                int q = (int)roundf(v[i] * inverse);
                out[b].q[16 * h + i] = (int8_t)q;
                sum += q;
            }
            out[b].d[h] = d;
            out[b].s[h] = d * (float)sum;
        }
    }
}

void unmask_quantize_q8_residual(const float *x, unmask_q8_block *first, unmask_q8_block *second, int64_t n) {
    unmask_quantize_q8(x, first, n);
    float residual[32];
    for (int64_t b = 0; b < n / 32; b++) {
        for (int i = 0; i < 32; i++) residual[i] = x[32 * b + i] - first[b].d[i / 16] * (float)first[b].q[i];
        unmask_quantize_q8(residual, second + b, 32);
    }
}

// MARK: Weight rows unpacked to 8-bit groups
//
// Every supported type is read as groups of 32 values, each half (16 values) with a scale a and
// an offset b: w = a * q + b, q an unsigned byte (a signed one for Q8_0). A row's dot with
// activations is then, per half, a * d * Σ q·qx + b * s: integer products, two float terms.
// Each half's scale is written to the 4 lanes its products land in (a group's 8 int32 lanes:
// 0-3 first half, 4-7 second), so the SIMD kernels load them as they are.

typedef struct {
    uint8_t *q;   // columns bytes
    float *a8;    // columns / 32 groups × 8 lanes of half scales
    float *b;     // columns / 16 half offsets
    int is_signed;
} unpacked_row;

ALWAYS_INLINE void set_half(unpacked_row *r, int64_t half, float a, float b) {
    for (int l = 0; l < 4; l++) r->a8[4 * half + l] = a;
    r->b[half] = b;
}

ALWAYS_INLINE void nibbles(const uint8_t *qs, uint8_t *q) {
    for (int j = 0; j < 16; j++) {
        q[j] = qs[j] & 0x0F;
        q[j + 16] = qs[j] >> 4;
    }
}

ALWAYS_INLINE void fifth_bits(uint32_t qh, uint8_t *q) {
    for (int j = 0; j < 32; j++) q[j] |= (uint8_t)(((qh >> j) & 1) << 4);
}

ALWAYS_INLINE uint32_t load_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

ALWAYS_INLINE void scale_min_k4(int j, const uint8_t *s, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0x0F) | (uint8_t)((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | (uint8_t)((s[j] >> 6) << 4);
    }
}

/// Unpacks one row of `columns` values of ggml type `type` (layouts as in ggml-common.h).
ALWAYS_INLINE void unpack(uint32_t type, const uint8_t *p, int64_t columns, unpacked_row *r) {
    r->is_signed = type == 8;
    switch (type) {
    case 2: // Q4_0: d, 16 bytes of nibbles; offset -8
        for (int64_t g = 0; g < columns / 32; g++, p += 18) {
            float d = half_to_float(p);
            nibbles(p + 2, r->q + 32 * g);
            set_half(r, 2 * g, d, -8 * d);
            set_half(r, 2 * g + 1, d, -8 * d);
        }
        break;
    case 3: // Q4_1: d, m, nibbles
        for (int64_t g = 0; g < columns / 32; g++, p += 20) {
            float d = half_to_float(p), m = half_to_float(p + 2);
            nibbles(p + 4, r->q + 32 * g);
            set_half(r, 2 * g, d, m);
            set_half(r, 2 * g + 1, d, m);
        }
        break;
    case 6: // Q5_0: d, 32 fifth bits, nibbles; offset -16
        for (int64_t g = 0; g < columns / 32; g++, p += 22) {
            float d = half_to_float(p);
            nibbles(p + 6, r->q + 32 * g);
            fifth_bits(load_u32(p + 2), r->q + 32 * g);
            set_half(r, 2 * g, d, -16 * d);
            set_half(r, 2 * g + 1, d, -16 * d);
        }
        break;
    case 7: // Q5_1: d, m, fifth bits, nibbles
        for (int64_t g = 0; g < columns / 32; g++, p += 24) {
            float d = half_to_float(p), m = half_to_float(p + 2);
            nibbles(p + 8, r->q + 32 * g);
            fifth_bits(load_u32(p + 4), r->q + 32 * g);
            set_half(r, 2 * g, d, m);
            set_half(r, 2 * g + 1, d, m);
        }
        break;
    case 8: // Q8_0: d, 32 signed bytes
        for (int64_t g = 0; g < columns / 32; g++, p += 34) {
            float d = half_to_float(p);
            memcpy(r->q + 32 * g, p + 2, 32);
            set_half(r, 2 * g, d, 0);
            set_half(r, 2 * g + 1, d, 0);
        }
        break;
    case 12: // Q4_K: d, dmin, 12 bytes of 6-bit scales and minimums, 128 bytes of nibbles
    case 13: // Q5_K: the same with 32 bytes of fifth bits before the nibbles
        for (int64_t s = 0; s < columns / 256; s++) {
            int five = type == 13;
            float d = half_to_float(p), dmin = half_to_float(p + 2);
            const uint8_t *scales = p + 4, *qh = p + 16, *qs = p + (five ? 48 : 16);
            for (int sb = 0; sb < 8; sb++) {
                uint8_t sc, m;
                scale_min_k4(sb, scales, &sc, &m);
                uint8_t *q = r->q + 256 * s + 32 * sb;
                const uint8_t *nib = qs + 32 * (sb / 2);
                int shift = 4 * (sb % 2);
                for (int l = 0; l < 32; l++) q[l] = (nib[l] >> shift) & 0x0F;
                if (five) for (int l = 0; l < 32; l++) q[l] |= (uint8_t)(((qh[l] >> sb) & 1) << 4);
                int64_t half = 16 * s + 2 * sb;
                set_half(r, half, d * sc, -dmin * m);
                set_half(r, half + 1, d * sc, -dmin * m);
            }
            p += five ? 176 : 144;
        }
        break;
    case 14: // Q6_K: 128 bytes of low nibbles, 64 of 2-bit highs, 16 signed scales, d; offset -32
        for (int64_t s = 0; s < columns / 256; s++, p += 210) {
            const uint8_t *ql = p, *qh = p + 128;
            const int8_t *scales = (const int8_t *)(p + 192);
            float d = half_to_float(p + 208);
            for (int g = 0; g < 16; g++) {
                int h = g / 8, c = (g % 8) / 2, base = 16 * (g % 2);
                const uint8_t *low = ql + 64 * h + 32 * (c % 2) + base, *high = qh + 32 * h + base;
                uint8_t *q = r->q + 256 * s + 16 * g;
                for (int t = 0; t < 16; t++) q[t] = (uint8_t)(((low[t] >> (4 * (c / 2))) & 0x0F) | ((high[t] >> (2 * c)) & 3) << 4);
                float a = d * scales[g];
                set_half(r, 16 * s + g, a, -32 * a);
            }
        }
        break;
    }
}

int unmask_quantized_supported(uint32_t type) {
    switch (type) {
    case 2: case 3: case 6: case 7: case 8: case 12: case 13: case 14: return 1;
    default: return 0;
    }
}

// MARK: Dot products of an unpacked row with up to 4 activation rows
//
// Activations are laid out per call for the SIMD loads: the bytes of a row contiguous, each
// group's two half scales widened to the 8 lanes its products land in (lanes 0-3: first half,
// 4-7: second), and the half sums contiguous for the offsets' dot product.

typedef struct {
    const int8_t *q;   // columns bytes
    const float *d8;   // columns / 32 groups × 8 lanes
    const float *s;    // columns / 16 halves: d · Σq
} activation_row;


typedef void (*dot_rows_fn)(const unpacked_row *w, int64_t groups, const activation_row *x, int count, float *out);

/// The plain reference every SIMD variant is tested against.
static void dot_rows_reference(const unpacked_row *w, int64_t groups, const activation_row *x, int count, float *out) {
    for (int i = 0; i < count; i++) {
        float sum = 0;
        for (int64_t g = 0; g < groups; g++) {
            const uint8_t *q = w->q + 32 * g;
            const int8_t *xq = x[i].q + 32 * g;
            for (int h = 0; h < 2; h++) {
                int32_t dot = 0;
                for (int j = 16 * h; j < 16 * h + 16; j++) dot += (w->is_signed ? (int8_t)q[j] : q[j]) * xq[j];
                sum += w->a8[8 * g + 4 * h] * x[i].d8[8 * g + 4 * h] * (float)dot + w->b[2 * g + h] * x[i].s[2 * g + h];
            }
        }
        out[i] = sum;
    }
}

#ifdef UNMASK_X86
__attribute__((target("avx2,fma"))) static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/// Σ b[h]·s[h] over a row's halves.
__attribute__((target("avx2,fma"))) static inline float offsets_avx2(const float *b, const float *s, int64_t halves) {
    __m256 acc = _mm256_setzero_ps();
    int64_t h = 0;
    for (; h + 8 <= halves; h += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(b + h), _mm256_loadu_ps(s + h), acc);
    float sum = hsum256(acc);
    for (; h < halves; h++) sum += b[h] * s[h];
    return sum;
}

__attribute__((target("avx2,fma"))) static inline __m256i int_dot_avx2(__m256i w, __m256i x, int is_signed) {
    if (is_signed) {
        // maddubs multiplies unsigned by signed: |w| times x with w's sign.
        x = _mm256_sign_epi8(x, w);
        w = _mm256_sign_epi8(w, w);
    }
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1));
}

/// One activation row's step in the loops below: its products with the group(s), scaled by its
/// half scales, accumulated times the weight's half scales.
#define AVX2_STEP(acc, row)                                                                        \
    {                                                                                              \
        __m256i dot = int_dot_avx2(wq, _mm256_loadu_si256((const __m256i *)(x[row].q + 32 * g)), w->is_signed); \
        acc = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(dot), _mm256_loadu_ps(x[row].d8 + 8 * g)), a, acc); \
    }

// Four rows always (the caller repeats the last row when it has fewer): the accumulators stay in
// registers, which an array indexed by a run-time count does not.
__attribute__((target("avx2,fma")))
static void dot_rows_avx2(const unpacked_row *w, int64_t groups, const activation_row *x, int count, float *out) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    for (int64_t g = 0; g < groups; g++) {
        __m256i wq = _mm256_loadu_si256((const __m256i *)(w->q + 32 * g));
        __m256 a = _mm256_loadu_ps(w->a8 + 8 * g);
        AVX2_STEP(acc0, 0) AVX2_STEP(acc1, 1) AVX2_STEP(acc2, 2) AVX2_STEP(acc3, 3)
    }
    float sums[4] = {hsum256(acc0), hsum256(acc1), hsum256(acc2), hsum256(acc3)};
    for (int i = 0; i < count; i++) out[i] = sums[i] + offsets_avx2(w->b, x[i].s, 2 * groups);
}

#define VNNI_STEP(acc, row)                                                                        \
    {                                                                                              \
        __m512i xq = _mm512_loadu_si512((const void *)(x[row].q + 32 * g));                        \
        if (w->is_signed) xq = _mm512_mask_sub_epi8(xq, negative, _mm512_setzero_si512(), xq);     \
        __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wq, xq);                         \
        acc = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(dot), _mm512_loadu_ps(x[row].d8 + 8 * g)), a, acc); \
    }

/// Two groups (64 bytes) per instruction: u8 × s8 summed in fours straight into int32 (no
/// 16-bit saturation); a signed row multiplies |w| by x with w's sign.
__attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni")))
static void dot_rows_vnni(const unpacked_row *w, int64_t groups, const activation_row *x, int count, float *out) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    int64_t g = 0;
    for (; g + 2 <= groups; g += 2) {
        __m512i wq = _mm512_loadu_si512((const void *)(w->q + 32 * g));
        __mmask64 negative = w->is_signed ? _mm512_movepi8_mask(wq) : 0;
        if (w->is_signed) wq = _mm512_abs_epi8(wq);
        __m512 a = _mm512_loadu_ps(w->a8 + 8 * g);
        VNNI_STEP(acc0, 0) VNNI_STEP(acc1, 1) VNNI_STEP(acc2, 2) VNNI_STEP(acc3, 3)
    }
    float sums[4] = {_mm512_reduce_add_ps(acc0), _mm512_reduce_add_ps(acc1), _mm512_reduce_add_ps(acc2), _mm512_reduce_add_ps(acc3)};
    if (g < groups) {
        // An odd last group: AVX2's 32-byte step.
        __m256i wq = _mm256_loadu_si256((const __m256i *)(w->q + 32 * g));
        __m256 a = _mm256_loadu_ps(w->a8 + 8 * g);
        __m256 t0 = _mm256_setzero_ps(), t1 = t0, t2 = t0, t3 = t0;
        AVX2_STEP(t0, 0) AVX2_STEP(t1, 1) AVX2_STEP(t2, 2) AVX2_STEP(t3, 3)
        sums[0] += hsum256(t0); sums[1] += hsum256(t1); sums[2] += hsum256(t2); sums[3] += hsum256(t3);
    }
    for (int i = 0; i < count; i++) out[i] = sums[i] + offsets_avx2(w->b, x[i].s, 2 * groups);
}
#endif

// MARK: Dispatch

static int detect_best_level(void) {
#ifdef UNMASK_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw"))
        return UNMASK_KERNEL_AVX512_VNNI;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return UNMASK_KERNEL_AVX2;
#endif
    return UNMASK_KERNEL_REFERENCE;
}

static _Atomic int forced_level = -1;

/// UNMASK_KERNEL=reference|avx2|avx512-vnni caps the variant (to measure one, or to rule one out).
static int environment_level(void) {
    const char *name = getenv("UNMASK_KERNEL");
    if (!name) return -1;
    if (!strcmp(name, "reference")) return UNMASK_KERNEL_REFERENCE;
    if (!strcmp(name, "avx2")) return UNMASK_KERNEL_AVX2;
    if (!strcmp(name, "avx512-vnni")) return UNMASK_KERNEL_AVX512_VNNI;
    return -1;
}

int unmask_best_kernel_level(void) { return detect_best_level(); }

int unmask_kernel_level(void) {
    int best = detect_best_level(), forced = forced_level;
    if (forced < 0) forced = environment_level();
    return forced >= 0 && forced <= best ? forced : best;
}

void unmask_set_kernel_level(int level) { forced_level = level; }

const char *unmask_kernel_name(int level) {
    switch (level) {
    case UNMASK_KERNEL_AVX512_VNNI: return "AVX512-VNNI";
    case UNMASK_KERNEL_AVX2: return "AVX2";
    default: return "reference C";
    }
}

/// Unpacks each row once and takes its dot with every activation row, four at a time. Inlined
/// into one function per variant, so the unpacking is compiled for that variant's instructions too.
ALWAYS_INLINE void matmul_rows(dot_rows_fn dot, uint32_t type, const void *weights, int64_t row_bytes, const int64_t *row_order,
                               int64_t row_begin, int64_t row_end, int64_t columns,
                               const unmask_q8_block *x, int64_t m, float *out, int64_t ldo) {
    int64_t groups = columns / 32, halves = columns / 16;
    // One allocation per call (a range of rows): the weight row unpacked, then the activations laid out.
    size_t floats = (size_t)(8 * groups + halves) + (size_t)m * (size_t)(8 * groups + halves);
    float *storage = malloc(sizeof(float) * floats + (size_t)columns * (size_t)(m + 1) + 64);
    if (!storage) abort();
    float *a8 = storage, *b = a8 + 8 * groups;
    float *xd = b + halves, *xs = xd + m * 8 * groups;
    uint8_t *wq = (uint8_t *)(xs + m * halves);
    int8_t *xq = (int8_t *)(wq + columns);
    activation_row rows[4];
    for (int64_t i = 0; i < m; i++) {
        for (int64_t g = 0; g < groups; g++) {
            const unmask_q8_block *block = x + i * groups + g;
            memcpy(xq + i * columns + 32 * g, block->q, 32);
            for (int l = 0; l < 8; l++) xd[i * 8 * groups + 8 * g + l] = block->d[l / 4];
            xs[i * halves + 2 * g] = block->s[0];
            xs[i * halves + 2 * g + 1] = block->s[1];
        }
    }
    unpacked_row row = {wq, a8, b, 0};
    for (int64_t r = row_begin; r < row_end; r++) {
        int64_t stored = row_order ? row_order[r] : r;
        unpack(type, (const uint8_t *)weights + row_bytes * stored, columns, &row);
        for (int64_t i = 0; i < m; i += 4) {
            int count = m - i < 4 ? (int)(m - i) : 4;
            for (int t = 0; t < 4; t++) {
                // Past the last row, the last row again: the kernels always compute four.
                int64_t source = i + (t < count ? t : count - 1);
                rows[t].q = xq + source * columns;
                rows[t].d8 = xd + source * 8 * groups;
                rows[t].s = xs + source * halves;
            }
            float results[4];
            dot(&row, groups, rows, count, results);
            for (int t = 0; t < count; t++) out[(i + t) * ldo + (r - row_begin)] = results[t];
        }
    }
    free(storage);
}

#define MATMUL_ARGUMENTS uint32_t type, const void *weights, int64_t row_bytes, const int64_t *row_order, int64_t row_begin, \
    int64_t row_end, int64_t columns, const unmask_q8_block *x, int64_t m, float *out, int64_t ldo
#define MATMUL_PASS type, weights, row_bytes, row_order, row_begin, row_end, columns, x, m, out, ldo

static void matmul_reference(MATMUL_ARGUMENTS) { matmul_rows(dot_rows_reference, MATMUL_PASS); }
#ifdef UNMASK_X86
__attribute__((target("avx2,fma"))) static void matmul_avx2(MATMUL_ARGUMENTS) { matmul_rows(dot_rows_avx2, MATMUL_PASS); }
__attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni")))
static void matmul_vnni(MATMUL_ARGUMENTS) { matmul_rows(dot_rows_vnni, MATMUL_PASS); }
#endif

void unmask_quantized_matmul(MATMUL_ARGUMENTS) {
    switch (unmask_kernel_level()) {
#ifdef UNMASK_X86
    case UNMASK_KERNEL_AVX512_VNNI: matmul_vnni(MATMUL_PASS); return;
    case UNMASK_KERNEL_AVX2: matmul_avx2(MATMUL_PASS); return;
#endif
    default: matmul_reference(MATMUL_PASS); return;
    }
}
