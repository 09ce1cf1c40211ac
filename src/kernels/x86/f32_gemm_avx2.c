/* f32_gemm_6x16_avx2: float32 GEMM micro-kernel for AVX2 + FMA (see kernels/f32_gemm.h).
 *
 * 6 rows x 16 columns: 12 ymm accumulators + 2 ymm of B (one 16-wide panel) + 1 broadcast of A = 15 of the 16
 * registers; 12 FMAs per 2 B loads and 6 broadcasts per k. Every mr x nr tile (mr <= 6, nr <= 16) has its own
 * unrolled instance (one or two column vectors); column tails use masked loads/stores. The epilogue (alpha,
 * old C, bias, and Relu or Clip) runs in registers without branches; the other activations are one more pass
 * over the tile while it is in L1. */
#include <immintrin.h>

#include "kernels/f32_gemm.h"

#define MR 6

static const float zeros[32] __attribute__((aligned(64)));
static const int32_t mask_tab[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

/* Lanes [0, n) set, n in [0, 8]. */
static inline __m256i lanes(int n) { return _mm256_loadu_si256((const __m256i *)(mask_tab + 8 - n)); }

static inline __attribute__((always_inline)) __m256 act8(__m256 v, int kind, __m256 pa, __m256 pb) {
  const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.f);
  switch (kind) {
    case EI_ACT_RELU: return _mm256_max_ps(v, zero); /* NaN -> 0, as x > 0 ? x : 0 */
    case EI_ACT_CLIP: return _mm256_min_ps(pb, _mm256_max_ps(pa, v));
    case EI_ACT_LEAKYRELU:
      return _mm256_blendv_ps(_mm256_mul_ps(v, pa), v, _mm256_cmp_ps(v, zero, _CMP_GE_OQ));
    case EI_ACT_HARDSIGMOID: return _mm256_min_ps(one, _mm256_max_ps(zero, _mm256_fmadd_ps(v, pa, pb)));
    case EI_ACT_HARDSWISH: {
      const __m256 y = _mm256_fmadd_ps(v, _mm256_set1_ps(1.f / 6.f), _mm256_set1_ps(0.5f));
      return _mm256_mul_ps(v, _mm256_min_ps(one, _mm256_max_ps(zero, y)));
    }
    default: return v;
  }
}

/* The activation over an mr x nr tile already stored in C (one pass, the tile is in L1). */
static __attribute__((noinline)) void act_tile(int mr, int nr, float *c, int64_t ldc, const ei__f32_gemm_epi *e) {
  const __m256 pa = _mm256_set1_ps(e->act_alpha), pb = _mm256_set1_ps(e->act_beta);
  for (int i = 0; i < mr; i++) {
    float *cr = c + i * ldc;
    for (int j = 0; j < nr; j += 8) {
      if (nr - j >= 8) {
        _mm256_storeu_ps(cr + j, act8(_mm256_loadu_ps(cr + j), e->act, pa, pb));
      } else {
        const __m256i m = lanes(nr - j);
        _mm256_maskstore_ps(cr + j, m, act8(_mm256_maskload_ps(cr + j, m), e->act, pa, pb));
      }
    }
  }
}

/* R rows, V column vectors (1: nr <= 8, 2: nr <= 16). */
static inline __attribute__((always_inline)) void tile(const int R, const int V, int nr, int64_t kc,
                                                       const float *restrict a, const float *restrict b,
                                                       int64_t b_rs, float *restrict c, int64_t ldc,
                                                       const ei__f32_gemm_epi *e) {
  __m256 acc0[MR], acc1[MR];
#pragma GCC unroll 8
  for (int i = 0; i < R; i++) {
    acc0[i] = _mm256_setzero_ps();
    if (V > 1) acc1[i] = _mm256_setzero_ps();
  }
  for (int64_t k = 0; k < kc; k++) {
    const __m256 vb0 = _mm256_loadu_ps(b);
    const __m256 vb1 = V > 1 ? _mm256_loadu_ps(b + 8) : vb0;
#pragma GCC unroll 8
    for (int i = 0; i < R; i++) {
      const __m256 va = _mm256_broadcast_ss(a + i);
      acc0[i] = _mm256_fmadd_ps(va, vb0, acc0[i]);
      if (V > 1) acc1[i] = _mm256_fmadd_ps(va, vb1, acc1[i]);
    }
    a += MR;
    b += b_rs;
  }

  /* v = alpha * acc + (old C or 0) + bias_m[i] + bias_n[j]; absent operands read a zero buffer (stride 0). */
  const __m256 alpha = _mm256_set1_ps(e->alpha);
  const float *cl = e->load_c ? c : zeros;
  const int64_t cls = e->load_c ? ldc : 0;
  const float *bm = e->bias_m ? e->bias_m : zeros;
  const float *bn = e->bias_n ? e->bias_n : zeros;
  /* Relu and Clip in registers (the common cases); the other kinds by act_tile after the store. */
#define FULL_ROWS(ACT)                                                                                  \
  {                                                                                                     \
    const __m256 bn0 = _mm256_loadu_ps(bn), bn1 = V > 1 ? _mm256_loadu_ps(bn + 8) : bn0;                \
    _Pragma("GCC unroll 8") for (int i = 0; i < R; i++) {                                               \
      const __m256 bias = _mm256_broadcast_ss(bm + i);                                                  \
      const __m256 v0 = _mm256_fmadd_ps(acc0[i], alpha, _mm256_loadu_ps(cl + i * cls));                 \
      _mm256_storeu_ps(c + i * ldc, ACT(_mm256_add_ps(_mm256_add_ps(v0, bias), bn0)));                  \
      if (V > 1) {                                                                                      \
        const __m256 v1 = _mm256_fmadd_ps(acc1[i], alpha, _mm256_loadu_ps(cl + i * cls + 8));           \
        _mm256_storeu_ps(c + i * ldc + 8, ACT(_mm256_add_ps(_mm256_add_ps(v1, bias), bn1)));            \
      }                                                                                                 \
    }                                                                                                   \
  }
#define PART_ROWS(ACT)                                                                                  \
  {                                                                                                     \
    const __m256i m0 = lanes(nr < 8 ? nr : 8), m1 = lanes(nr > 8 ? nr - 8 : 0);                         \
    const __m256 bn0 = _mm256_maskload_ps(bn, m0), bn1 = V > 1 ? _mm256_maskload_ps(bn + 8, m1) : bn0;  \
    _Pragma("GCC unroll 8") for (int i = 0; i < R; i++) {                                               \
      const __m256 bias = _mm256_broadcast_ss(bm + i);                                                  \
      const __m256 v0 = _mm256_fmadd_ps(acc0[i], alpha, _mm256_maskload_ps(cl + i * cls, m0));          \
      _mm256_maskstore_ps(c + i * ldc, m0, ACT(_mm256_add_ps(_mm256_add_ps(v0, bias), bn0)));           \
      if (V > 1) {                                                                                      \
        const __m256 v1 = _mm256_fmadd_ps(acc1[i], alpha, _mm256_maskload_ps(cl + i * cls + 8, m1));    \
        _mm256_maskstore_ps(c + i * ldc + 8, m1, ACT(_mm256_add_ps(_mm256_add_ps(v1, bias), bn1)));     \
      }                                                                                                 \
    }                                                                                                   \
  }
#define ACT_NONE(v) (v)
#define ACT_RELU(v) _mm256_max_ps((v), lo)               /* x > 0 ? x : 0 (lo = 0) */
#define ACT_CLIP(v) _mm256_min_ps(hi, _mm256_max_ps(lo, (v))) /* NaN stays NaN */
  const int full = nr == 8 * V;
  if (e->act == EI_ACT_RELU) {
    const __m256 lo = _mm256_setzero_ps();
    if (full) FULL_ROWS(ACT_RELU) else PART_ROWS(ACT_RELU)
  } else if (e->act == EI_ACT_CLIP) {
    const __m256 lo = _mm256_set1_ps(e->act_alpha), hi = _mm256_set1_ps(e->act_beta);
    if (full) FULL_ROWS(ACT_CLIP) else PART_ROWS(ACT_CLIP)
  } else {
    if (full) FULL_ROWS(ACT_NONE) else PART_ROWS(ACT_NONE)
    if (e->act != EI_ACT_NONE) act_tile(R, nr, c, ldc, e);
  }
#undef FULL_ROWS
#undef PART_ROWS
}

#define ROWS(V)                                                  \
  switch (mr) {                                                  \
    case 1: tile(1, V, nr, kc, a, b, b_rs, c, ldc, e); break;    \
    case 2: tile(2, V, nr, kc, a, b, b_rs, c, ldc, e); break;    \
    case 3: tile(3, V, nr, kc, a, b, b_rs, c, ldc, e); break;    \
    case 4: tile(4, V, nr, kc, a, b, b_rs, c, ldc, e); break;    \
    case 5: tile(5, V, nr, kc, a, b, b_rs, c, ldc, e); break;    \
    default: tile(6, V, nr, kc, a, b, b_rs, c, ldc, e); break;   \
  }

static void f32_gemm_6x16_avx2(int mr, int nr, int64_t kc, const float *a, const float *b, int64_t b_rs,
                               int64_t b_ps, float *c, int64_t ldc, const ei__f32_gemm_epi *e) {
  (void)b_ps;
  if (nr > 8) {
    ROWS(2)
  } else {
    ROWS(1)
  }
}

/* KC 256 with the B panel outermost: a 256 x 16 B panel (16 KB) stays in a 32 KB L1 while the 6 x 256 A
 * micro-panels (6 KB) stream from L2 (A outermost instead streams 16 KB of B per call: 45 vs 83 GFLOPS on a packed
 * 256 x 784 x 1152 GEMM on Zen 4). */
const ei__f32_gemm_ukernel ei__f32_gemm_6x16_avx2 = {"f32_gemm_6x16_avx2", MR, 16, 256, MR * 16, 256, 1,
                                                    f32_gemm_6x16_avx2};
