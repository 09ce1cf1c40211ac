/* f32_gemm_14x32_avx512: float32 GEMM micro-kernel for AVX-512 (see kernels/f32_gemm.h).
 *
 * 14 rows x 32 columns: 28 zmm accumulators + 2 zmm of B (two 16-wide panels), A broadcast from memory
 * (embedded {1to16} operands): 30 of the 32 registers, 28 FMAs per 2 B loads + 14 broadcast loads per k.
 * Every tile size mr x nr (mr <= 14, nr <= 32) has its own unrolled instance (column vectors of 16, 16 + 8, 16 or 8
 * floats), so row tails cost no wasted FMAs and column tails little; they use masked loads/stores. The epilogue (alpha, old C, bias, and Relu
 * or Clip) runs in registers; the other activations are one more pass over the tile while it is in L1. */
#include <immintrin.h>

#include "kernels/f32_gemm.h"

#define MR 14

static const float zeros[32] __attribute__((aligned(64)));

/* The activation over an mr x nr tile already stored in C (one pass, the tile is in L1). */
static __attribute__((noinline)) void act_tile(int mr, int nr, float *c, int64_t ldc, const ei__f32_gemm_epi *e) {
  const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.f), pa = _mm512_set1_ps(e->act_alpha),
               pb = _mm512_set1_ps(e->act_beta), sixth = _mm512_set1_ps(1.f / 6.f), half = _mm512_set1_ps(0.5f);
  for (int i = 0; i < mr; i++) {
    float *cr = c + i * ldc;
    for (int j = 0; j < nr; j += 16) {
      const __mmask16 m = nr - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (nr - j)) - 1);
      __m512 v = _mm512_maskz_loadu_ps(m, cr + j);
      switch (e->act) {
        case EI_ACT_RELU: v = _mm512_max_ps(v, zero); break; /* NaN -> 0, as x > 0 ? x : 0 */
        case EI_ACT_CLIP: v = _mm512_min_ps(pb, _mm512_max_ps(pa, v)); break;
        case EI_ACT_LEAKYRELU:
          v = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, zero, _CMP_GE_OQ), _mm512_mul_ps(v, pa), v);
          break;
        case EI_ACT_HARDSIGMOID: v = _mm512_min_ps(one, _mm512_max_ps(zero, _mm512_fmadd_ps(v, pa, pb))); break;
        case EI_ACT_HARDSWISH:
          v = _mm512_mul_ps(v, _mm512_min_ps(one, _mm512_max_ps(zero, _mm512_fmadd_ps(v, sixth, half))));
          break;
        default: break;
      }
      _mm512_mask_storeu_ps(cr + j, m, v);
    }
  }
}

/* R rows; V 16-wide column vectors (0, 1 or 2) then, if H, one 8-wide one: nr <= 16 V + 8 H. An 8-wide vector
 * costs half a 16-wide one on cores that split 512-bit FMAs (Zen 4 issues 2 ymm or 1 zmm FMA per cycle), so column
 * tails of 1..8 and 17..24 (e.g. the 49 pixels of a 7x7 image: 32 + 17) are a third cheaper. */
static inline __attribute__((always_inline)) void tile(const int R, const int V, const int H, int nr, int64_t kc,
                                                       const float *restrict a, const float *restrict b,
                                                       int64_t b_rs, int64_t b_ps, float *restrict c, int64_t ldc,
                                                       const ei__f32_gemm_epi *e) {
  __m512 acc0[MR], acc1[MR];
  __m256 acch[MR];
#pragma GCC unroll 16
  for (int i = 0; i < R; i++) {
    if (V > 0) acc0[i] = _mm512_setzero_ps();
    if (V > 1) acc1[i] = _mm512_setzero_ps();
    if (H) acch[i] = _mm256_setzero_ps();
  }
  const float *b1 = b + b_ps;
  for (int64_t k = 0; k < kc; k++) {
    const __m512 vb0 = V > 0 ? _mm512_loadu_ps(b) : _mm512_setzero_ps();
    const __m512 vb1 = V > 1 ? _mm512_loadu_ps(b1) : vb0;
    const __m256 vbh = H ? _mm256_loadu_ps(V == 0 ? b : b1) : _mm256_setzero_ps();
#pragma GCC unroll 16
    for (int i = 0; i < R; i++) {
      const __m512 va = _mm512_set1_ps(a[i]);
      if (V > 0) acc0[i] = _mm512_fmadd_ps(va, vb0, acc0[i]);
      if (V > 1) acc1[i] = _mm512_fmadd_ps(va, vb1, acc1[i]);
      if (H) acch[i] = _mm256_fmadd_ps(_mm512_castps512_ps256(va), vbh, acch[i]);
    }
    a += MR;
    b += b_rs;
    b1 += b_rs;
  }

  /* Epilogue without branches: v = alpha * acc + (old C or 0) + bias_m[i] + bias_n[j] (zeros when absent). */
  const __mmask16 m0 = nr >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nr) - 1);
  const __mmask16 m1 = nr >= 32 ? (__mmask16)0xffff : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1) : 0;
  const int hoff = 16 * V; /* first column of the 8-wide vector */
  const __mmask8 mh = H ? (nr - hoff >= 8 ? (__mmask8)0xff : (__mmask8)((1u << (nr - hoff)) - 1)) : 0;
  const __mmask16 c0 = e->load_c ? m0 : 0, c1 = e->load_c ? m1 : 0;
  const __mmask8 ch = e->load_c ? mh : 0;
  const __m512 alpha = _mm512_set1_ps(e->alpha);
  const float *bm = e->bias_m ? e->bias_m : zeros;
  const float *bn = e->bias_n ? e->bias_n : zeros;
  const __m512 bn0 = V > 0 ? _mm512_maskz_loadu_ps(m0, bn) : alpha;
  const __m512 bn1 = V > 1 ? _mm512_maskz_loadu_ps(m1, bn + 16) : bn0;
  const __m256 bnh = H ? _mm256_maskz_loadu_ps(mh, bn + hoff) : _mm256_setzero_ps();
  /* Relu and Clip in registers (the common cases); the other kinds by act_tile after the store. */
#define STORE_ROWS(ACT, ACTH)                                                                   \
  _Pragma("GCC unroll 16") for (int i = 0; i < R; i++) {                                        \
    float *cr = c + i * ldc;                                                                    \
    const __m512 bias = _mm512_set1_ps(bm[i]);                                                  \
    if (V > 0) {                                                                                \
      const __m512 v0 = _mm512_fmadd_ps(acc0[i], alpha, _mm512_maskz_loadu_ps(c0, cr));         \
      _mm512_mask_storeu_ps(cr, m0, ACT(_mm512_add_ps(_mm512_add_ps(v0, bias), bn0)));          \
    }                                                                                           \
    if (V > 1) {                                                                                \
      const __m512 v1 = _mm512_fmadd_ps(acc1[i], alpha, _mm512_maskz_loadu_ps(c1, cr + 16));    \
      _mm512_mask_storeu_ps(cr + 16, m1, ACT(_mm512_add_ps(_mm512_add_ps(v1, bias), bn1)));     \
    }                                                                                           \
    if (H) {                                                                                    \
      const __m256 vh = _mm256_fmadd_ps(acch[i], _mm512_castps512_ps256(alpha),                 \
                                        _mm256_maskz_loadu_ps(ch, cr + hoff));                   \
      _mm256_mask_storeu_ps(cr + hoff, mh,                                                      \
                            ACTH(_mm256_add_ps(_mm256_add_ps(vh, _mm512_castps512_ps256(bias)), bnh))); \
    }                                                                                           \
  }
#define ACT_NONE(v) (v)
#define ACT_RELU(v) _mm512_max_ps((v), lo)               /* x > 0 ? x : 0 (lo = 0) */
#define ACT_CLIP(v) _mm512_min_ps(hi, _mm512_max_ps(lo, (v))) /* NaN stays NaN */
#define ACTH_RELU(v) _mm256_max_ps((v), _mm512_castps512_ps256(lo))
#define ACTH_CLIP(v) _mm256_min_ps(_mm512_castps512_ps256(hi), _mm256_max_ps(_mm512_castps512_ps256(lo), (v)))
  if (e->act == EI_ACT_RELU) {
    const __m512 lo = _mm512_setzero_ps();
    STORE_ROWS(ACT_RELU, ACTH_RELU)
  } else if (e->act == EI_ACT_CLIP) {
    const __m512 lo = _mm512_set1_ps(e->act_alpha), hi = _mm512_set1_ps(e->act_beta);
    STORE_ROWS(ACT_CLIP, ACTH_CLIP)
  } else {
    STORE_ROWS(ACT_NONE, ACT_NONE)
    if (e->act != EI_ACT_NONE) act_tile(R, nr, c, ldc, e);
  }
#undef STORE_ROWS
}

#define ROWS(V, H)                                                            \
  switch (mr) {                                                               \
    case 1: tile(1, V, H, nr, kc, a, b, b_rs, b_ps, c, ldc, e); break;   \
    case 2: tile(2, V, H, nr, kc, a, b, b_rs, b_ps, c, ldc, e); break;   \
    case 3: tile(3, V, H, nr, kc, a, b, b_rs, b_ps, c, ldc, e); break;   \
    case 4: tile(4, V, H, nr, kc, a, b, b_rs, b_ps, c, ldc, e); break;   \
    case 5: tile(5, V, H, nr, kc, a, b, b_rs, b_ps, c, ldc, e); break;   \
    case 6: tile(6, V, H, nr, kc, a, b, b_rs, b_ps, c, ldc, e); break;   \
    case 7: tile(7, V, H, nr, kc, a, b, b_rs, b_ps, c, ldc, e); break;   \
    case 8: tile(8, V, H, nr, kc, a, b, b_rs, b_ps, c, ldc, e); break;   \
    case 9: tile(9, V, H, nr, kc, a, b, b_rs, b_ps, c, ldc, e); break;   \
    case 10: tile(10, V, H, nr, kc, a, b, b_rs, b_ps, c, ldc, e); break; \
    case 11: tile(11, V, H, nr, kc, a, b, b_rs, b_ps, c, ldc, e); break; \
    case 12: tile(12, V, H, nr, kc, a, b, b_rs, b_ps, c, ldc, e); break; \
    case 13: tile(13, V, H, nr, kc, a, b, b_rs, b_ps, c, ldc, e); break; \
    default: tile(14, V, H, nr, kc, a, b, b_rs, b_ps, c, ldc, e); break; \
  }

/* Separate functions per column shape keep each switch's instances small enough to inline cleanly. */
#define UKERNEL(name, V, H)                                                                                       \
  static __attribute__((noinline)) void name(int mr, int nr, int64_t kc, const float *a, const float *b,          \
                                             int64_t b_rs, int64_t b_ps, float *c, int64_t ldc,                   \
                                             const ei__f32_gemm_epi *e) {                                         \
    ROWS(V, H)                                                                                                    \
  }
UKERNEL(ukernel_h, 0, 1)   /* nr <= 8 */
UKERNEL(ukernel_v1, 1, 0)  /* nr <= 16 */
UKERNEL(ukernel_v1h, 1, 1) /* nr <= 24 */
UKERNEL(ukernel_v2, 2, 0)  /* nr <= 32 */

static void f32_gemm_14x32_avx512(int mr, int nr, int64_t kc, const float *a, const float *b, int64_t b_rs,
                                  int64_t b_ps, float *c, int64_t ldc, const ei__f32_gemm_epi *e) {
  if (nr > 24)
    ukernel_v2(mr, nr, kc, a, b, b_rs, b_ps, c, ldc, e);
  else if (nr > 16)
    ukernel_v1h(mr, nr, kc, a, b, b_rs, b_ps, c, ldc, e);
  else if (nr > 8)
    ukernel_v1(mr, nr, kc, a, b, b_rs, b_ps, c, ldc, e);
  else
    ukernel_h(mr, nr, kc, a, b, b_rs, b_ps, c, ldc, e);
}

/* KC 128 with the B panel outermost: a 128 x 32 B panel (16 KB) stays in L1 while the 14 x 128 A micro-panels
 * (7 KB each) stream from L2 (with KC 256 the 32 KB B panel would fill Zen 4's 32 KB L1: 93% of peak on a packed
 * 256 x 784 x 1152 GEMM instead of 83%); MC x KC of A and KC x NC of B (128 KB) fit a 1 MB L2. */
const ei__f32_gemm_ukernel ei__f32_gemm_14x32_avx512 = {"f32_gemm_14x32_avx512", MR, 32, 128, MR * 8, 256, 1,
                                                       f32_gemm_14x32_avx512};
