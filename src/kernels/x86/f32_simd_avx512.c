/* f32_simd_avx512: the float SIMD kernels of kernels/f32_simd.h (activation rows, depthwise and max-pool rows,
 * adds) for AVX-512, from the template kernels/f32_simd_tmpl.h with 16-float vectors. */
#include <stdint.h>
#include <immintrin.h>

#include "kernels/f32_simd.h"

#define VF __m512
#define VW 16
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps((p), (v))
/* Even elements of p[0..31] (the second load is masked to p[16..30]: nothing past the last element used). */
static inline __m512 load_s2(const float *p) {
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  return _mm512_permutex2var_ps(_mm512_loadu_ps(p), even, _mm512_maskz_loadu_ps((__mmask16)0x7fff, p + 16));
}
#define VLOAD_S2(p) load_s2(p)
static inline __mmask16 lanes(int n) { return (__mmask16)((1u << n) - 1); } /* n in [0, 16] */
/* Lanes [a, b) of p[0..16) / even elements of p[0..32) with elements outside [a, b) zero. */
static inline __m512 loadm(const float *p, int a, int b) {
  return _mm512_maskz_loadu_ps((__mmask16)(lanes(b) & ~lanes(a)), p);
}
static inline __m512 load_s2m(const float *p, int a, int b) {
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const uint32_t m = (b >= 32 ? 0xffffffffu : (1u << b) - 1) & ~((1u << a) - 1);
  return _mm512_permutex2var_ps(_mm512_maskz_loadu_ps((__mmask16)m, p), even,
                                _mm512_maskz_loadu_ps((__mmask16)(m >> 16), p + 16));
}
#define VS2_EXACT 1
#define VHAVE_MASK 1
#define VLOADM(p, a, b) loadm((p), (a), (b))
#define VLOADMB(p, bits) _mm512_maskz_loadu_ps((__mmask16)(bits), (p))
#define VLOAD_S2M(p, a, b) load_s2m((p), (a), (b))
#define VLOADN(p, n) _mm512_maskz_loadu_ps(lanes(n), (p))
#define VSTOREN(p, v, n) _mm512_mask_storeu_ps((p), lanes(n), (v))
#define VSET1(x) _mm512_set1_ps(x)
#define VADD(a, b) _mm512_add_ps((a), (b))
#define VSUB(a, b) _mm512_sub_ps((a), (b))
static inline void store2(float *p, __m512 a, __m512 b) {
  const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i hi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
  _mm512_storeu_ps(p, _mm512_permutex2var_ps(a, lo, b));
  _mm512_storeu_ps(p + 16, _mm512_permutex2var_ps(a, hi, b));
}
#define VSTORE2(p, a, b) store2((p), (a), (b))
#define VMUL(a, b) _mm512_mul_ps((a), (b))
#define VFMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define VRELU(v) _mm512_max_ps((v), _mm512_setzero_ps())              /* v > 0 ? v : 0 */
#define VCLAMP(v, lo, hi) _mm512_min_ps((hi), _mm512_max_ps((lo), (v))) /* NaN stays NaN */
#define VGE0SEL(v, a, b) _mm512_mask_blend_ps(_mm512_cmp_ps_mask((v), _mm512_setzero_ps(), _CMP_GE_OQ), (b), (a))
#define VMAXSEL(m, v) _mm512_max_ps((v), (m)) /* v > m ? v : m */
#define SIMD_TABLE ei__f32_simd_avx512
#define SIMD_NAME "avx512"
static void dw3_plane_avx512(const ei__f32_dw3 *d, float *y);
#define DW3_PLANE dw3_plane_avx512
#define DW3_MAX_STRIDE 2
#include "kernels/f32_simd_tmpl.h"

/* ---- whole-plane 3x3 depthwise (ei__f32_dw3), straight from the input rows: no copies ----
 * Each input vector is loaded once (masked loads: columns outside the row read as zero; rows in the padding are
 * zero vectors or a row of zeros) and kept in registers for every output row that uses it. Rows up to 64 wide:
 * column strips of 16 outputs walking down the plane (the strip's input rows stay in registers from one output row
 * to the next); output rows of at most 8 on 8-float vectors. Wider rows: across the whole row, a few output rows
 * at a time (the input streams in order). */

/* Lanes l of a vector starting at input column c with 0 <= c + l < W. */
static inline __mmask16 cols_in(int64_t c, int64_t W) {
  const int64_t a = c < 0 ? -c : 0, b = W - c < 16 ? W - c : 16;
  if (b <= a) return 0;
  return (__mmask16)(((1u << b) - 1) & ~((1u << a) - 1));
}

static inline __mmask8 cols_in8(int64_t c, int64_t W) {
  const int64_t a = c < 0 ? -c : 0, b = W - c < 8 ? W - c : 8;
  if (b <= a) return 0;
  return (__mmask8)(((1u << b) - 1) & ~((1u << a) - 1));
}

/* A row of zeros for the rows in the padding (the row bands read at most W + 16 floats of a row). */
static const float dw3_zeros[EI_F32_DW3_MAXW + 64];

#define DW3_WIDE 64 /* widest input rows (W) done in column strips */

/* -- stride 2: 16 outputs read input columns c = 2 ox - pl + [0, 33): two masked loads split by two-source permutes
 * into the even columns (tap 0) and the odd ones (tap 1), and the even ones shifted by one (tap 2, one more load). */
#define DWS_SETUP                                                                                              \
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);           \
  const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);            \
  const int64_t W = d->W, H = d->H, OW = d->OW, OH = d->OH, pt = d->pt;                                      \
  const float *wt = d->w;                                                                                    \
  const __m512 w0 = _mm512_set1_ps(wt[0]), w1 = _mm512_set1_ps(wt[1]), w2 = _mm512_set1_ps(wt[2]),          \
               w3 = _mm512_set1_ps(wt[3]), w4 = _mm512_set1_ps(wt[4]), w5 = _mm512_set1_ps(wt[5]),          \
               w6 = _mm512_set1_ps(wt[6]), w7 = _mm512_set1_ps(wt[7]), w8 = _mm512_set1_ps(wt[8]);          \
  const __m512 bias = _mm512_set1_ps(d->bias);                                                               \
  const act_regs ar = act_load(d->act)
/* the masks of the 16 outputs from ox */
#define DWS_MASKS                                                                                              \
  const int64_t c = 2 * ox - d->pl;                                                                          \
  const __mmask16 ma = cols_in(c, W), mb = cols_in(c + 16, W), mc = cols_in(c + 32, W) & 1;                 \
  const __mmask16 ms = OW - ox >= 16 ? (__mmask16)0xffff : lanes((int)(OW - ox))
/* input row iy split into taps 0, 1, 2 */
#define DWS_SPLIT(iy, E, O, F)                                                                                 \
  do {                                                                                                       \
    if ((iy) >= 0 && (iy) < H) {                                                                             \
      const float *r_ = d->x + (iy) * W;                                                                     \
      const __m512 A_ = _mm512_maskz_loadu_ps(ma, at(r_, c)), B_ = _mm512_maskz_loadu_ps(mb, at(r_, c + 16)); \
      const __m512 C_ = _mm512_maskz_loadu_ps(mc, at(r_, c + 32));                                           \
      E = _mm512_permutex2var_ps(A_, even, B_);                                                              \
      O = _mm512_permutex2var_ps(A_, odd, B_);                                                               \
      F = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(C_), _mm512_castps_si512(E), 1));     \
    } else {                                                                                                 \
      E = O = F = _mm512_setzero_ps();                                                                       \
    }                                                                                                        \
  } while (0)
/* output row oy from the split rows (e0, o0, f0), (e1, ...), (e2, ...) */
#define DWS_OUT(oy)                                                                                            \
  do {                                                                                                       \
    __m512 a = _mm512_fmadd_ps(w0, e0, bias), b = _mm512_mul_ps(w3, e1);                                     \
    a = _mm512_fmadd_ps(w1, o0, a);                                                                          \
    b = _mm512_fmadd_ps(w4, o1, b);                                                                          \
    a = _mm512_fmadd_ps(w2, f0, a);                                                                          \
    b = _mm512_fmadd_ps(w5, f1, b);                                                                          \
    a = _mm512_fmadd_ps(w6, e2, a);                                                                          \
    b = _mm512_fmadd_ps(w7, o2, b);                                                                          \
    a = _mm512_fmadd_ps(w8, f2, a);                                                                          \
    _mm512_mask_storeu_ps(y + (oy) * OW + ox, ms, act_vec(_mm512_add_ps(a, b), &ar));                        \
  } while (0)

/* Column strips: the last input row of an output row is the first of the next one. */
static void dws_strips(const ei__f32_dw3 *d, float *y) {
  DWS_SETUP;
  for (int64_t ox = 0; ox < OW; ox += 16) {
    DWS_MASKS;
    __m512 e0, o0, f0, e1, o1, f1, e2, o2, f2;
    DWS_SPLIT(-pt, e0, o0, f0);
    for (int64_t oy = 0; oy < OH; oy++) {
      DWS_SPLIT(2 * oy - pt + 1, e1, o1, f1);
      DWS_SPLIT(2 * oy - pt + 2, e2, o2, f2);
      DWS_OUT(oy);
      e0 = e2, o0 = o2, f0 = f2;
    }
  }
}

/* Wide rows: two output rows at a time across the row (five input rows split per 16 outputs). */
static void dws_rows(const ei__f32_dw3 *d, float *y) {
  DWS_SETUP;
  for (int64_t oy = 0; oy < OH; oy += 2) {
    const int64_t iy = 2 * oy - pt;
    for (int64_t ox = 0; ox < OW; ox += 16) {
      DWS_MASKS;
      __m512 e0, o0, f0, e1, o1, f1, e2, o2, f2;
      DWS_SPLIT(iy, e0, o0, f0);
      DWS_SPLIT(iy + 1, e1, o1, f1);
      DWS_SPLIT(iy + 2, e2, o2, f2);
      DWS_OUT(oy);
      if (oy + 1 < OH) {
        e0 = e2, o0 = o2, f0 = f2;
        DWS_SPLIT(iy + 3, e1, o1, f1);
        DWS_SPLIT(iy + 4, e2, o2, f2);
        DWS_OUT(oy + 1);
      }
    }
  }
}
#undef DWS_SETUP
#undef DWS_MASKS
#undef DWS_SPLIT
#undef DWS_OUT

/* -- stride 1 -- */

/* Stride 1 in column strips of 16 outputs, straight from the input: each input row's three shifted vectors of a
 * strip are loaded once (masked: zero outside the row) and kept in registers for the three output rows using them. */
static void dwd_strips(const ei__f32_dw3 *d, float *y) {
  const int64_t W = d->W, H = d->H, OW = d->OW, OH = d->OH, pt = d->pt;
  const float *wt = d->w;
  const __m512 w0 = _mm512_set1_ps(wt[0]), w1 = _mm512_set1_ps(wt[1]), w2 = _mm512_set1_ps(wt[2]),
               w3 = _mm512_set1_ps(wt[3]), w4 = _mm512_set1_ps(wt[4]), w5 = _mm512_set1_ps(wt[5]),
               w6 = _mm512_set1_ps(wt[6]), w7 = _mm512_set1_ps(wt[7]), w8 = _mm512_set1_ps(wt[8]);
  const __m512 bias = _mm512_set1_ps(d->bias);
  const act_regs ar = act_load(d->act);
  for (int64_t ox = 0; ox < OW; ox += 16) {
    const int64_t c = ox - d->pl;
    const __mmask16 m0 = cols_in(c, W), m1 = cols_in(c + 1, W), m2 = cols_in(c + 2, W);
    const __mmask16 ms = OW - ox >= 16 ? (__mmask16)0xffff : lanes((int)(OW - ox));
#define DWD_LOAD(iy, A, B, C)                                                                                   \
  do {                                                                                                          \
    if ((iy) >= 0 && (iy) < H) {                                                                                \
      const float *r_ = d->x + (iy) * W;                                                                        \
      A = _mm512_maskz_loadu_ps(m0, at(r_, c));                                                                 \
      B = _mm512_maskz_loadu_ps(m1, at(r_, c + 1));                                                             \
      C = _mm512_maskz_loadu_ps(m2, at(r_, c + 2));                                                             \
    } else {                                                                                                    \
      A = B = C = _mm512_setzero_ps();                                                                          \
    }                                                                                                           \
  } while (0)
    __m512 a0, b0, c0, a1, b1, c1, a2, b2, c2;
    DWD_LOAD(-pt, a0, b0, c0);
    DWD_LOAD(1 - pt, a1, b1, c1);
    for (int64_t oy = 0; oy < OH; oy++) {
      DWD_LOAD(oy + 2 - pt, a2, b2, c2);
      __m512 a = _mm512_fmadd_ps(w0, a0, bias), b = _mm512_mul_ps(w3, a1);
      a = _mm512_fmadd_ps(w1, b0, a);
      b = _mm512_fmadd_ps(w4, b1, b);
      a = _mm512_fmadd_ps(w2, c0, a);
      b = _mm512_fmadd_ps(w5, c1, b);
      a = _mm512_fmadd_ps(w6, a2, a);
      b = _mm512_fmadd_ps(w7, b2, b);
      a = _mm512_fmadd_ps(w8, c2, a);
      _mm512_mask_storeu_ps(y + oy * OW + ox, ms, act_vec(_mm512_add_ps(a, b), &ar));
      a0 = a1, b0 = b1, c0 = c1;
      a1 = a2, b1 = b2, c1 = c2;
    }
#undef DWD_LOAD
  }
}

/* Wide rows: three output rows at a time across the row on 8-float vectors (as fast as 16-float ones for FMAs on
 * Zen 4, and their unaligned loads cross cache lines half as often). */

/* The in-kernel activations (as act_vec) on 8 floats. */
typedef struct act8 {
  int kind;
  __m256 a, b;
} act8;

static inline act8 act8_load(const ei__act *a) {
  act8 r;
  r.kind = a ? (int)a->kind : EI_ACT_NONE;
  r.a = _mm256_set1_ps(a ? a->alpha : 0.f);
  r.b = _mm256_set1_ps(a ? a->beta : 0.f);
  return r;
}

static inline __attribute__((always_inline)) __m256 act8_vec(__m256 v, const act8 *r) {
  const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.f);
  switch (r->kind) {
    case EI_ACT_RELU: return _mm256_max_ps(v, zero);
    case EI_ACT_CLIP: return _mm256_min_ps(r->b, _mm256_max_ps(r->a, v));
    case EI_ACT_LEAKYRELU:
      return _mm256_mask_blend_ps(_mm256_cmp_ps_mask(v, zero, _CMP_GE_OQ), _mm256_mul_ps(v, r->a), v);
    case EI_ACT_HARDSIGMOID: return _mm256_min_ps(one, _mm256_max_ps(zero, _mm256_fmadd_ps(v, r->a, r->b)));
    case EI_ACT_HARDSWISH:
      return _mm256_mul_ps(
          v, _mm256_min_ps(one, _mm256_max_ps(zero, _mm256_fmadd_ps(v, _mm256_set1_ps(1.f / 6.f),
                                                                    _mm256_set1_ps(0.5f)))));
    default: return v;
  }
}

static inline void dwp_store8(float *y, __m256 v, int64_t n) {
  if (n >= 8)
    _mm256_storeu_ps(y, v);
  else
    _mm256_mask_storeu_ps(y, (__mmask8)((1u << n) - 1), v);
}

/* Stride 1 straight from the input rows (no copy): R output rows from input rows rows[0 .. R+1] (zero rows in the
 * padding); vector ox reads columns ox - pl + [0, 10): masked loads when some are outside [0, W). */
static inline __attribute__((always_inline)) void dwd_vec(const int R, const int masked, const float *const *rows,
                                                          int64_t c, int64_t W, const __m256 *w, __m256 bias,
                                                          const act8 *ar, float *y, int64_t OW, int64_t ox) {
  __m256 acc[3], acc2[3];
  __mmask8 m0 = 0xff, m1 = 0xff, m2 = 0xff;
  if (masked) m0 = cols_in8(c, W), m1 = cols_in8(c + 1, W), m2 = cols_in8(c + 2, W);
#pragma GCC unroll 3
  for (int r = 0; r < R; r++) {
    acc[r] = bias;
    acc2[r] = _mm256_setzero_ps();
  }
#pragma GCC unroll 5
  for (int k = 0; k < R + 2; k++) {
    __m256 l0, l1, l2;
    if (masked) {
      l0 = _mm256_maskz_loadu_ps(m0, at(rows[k], c));
      l1 = _mm256_maskz_loadu_ps(m1, at(rows[k], c + 1));
      l2 = _mm256_maskz_loadu_ps(m2, at(rows[k], c + 2));
    } else {
      l0 = _mm256_loadu_ps(rows[k] + c);
      l1 = _mm256_loadu_ps(rows[k] + c + 1);
      l2 = _mm256_loadu_ps(rows[k] + c + 2);
    }
    __asm__("" : "+v"(l0), "+v"(l1), "+v"(l2)); /* one load each, not one folded into every FMA */
#pragma GCC unroll 3
    for (int r = 0; r < R; r++) {
      const int ki = k - r;
      if (ki < 0 || ki > 2) continue;
      if (ki == 1) {
        acc2[r] = _mm256_fmadd_ps(w[3], l0, acc2[r]);
        acc2[r] = _mm256_fmadd_ps(w[4], l1, acc2[r]);
        acc2[r] = _mm256_fmadd_ps(w[5], l2, acc2[r]);
      } else {
        acc[r] = _mm256_fmadd_ps(w[3 * ki], l0, acc[r]);
        acc[r] = _mm256_fmadd_ps(w[3 * ki + 1], l1, acc[r]);
        acc[r] = _mm256_fmadd_ps(w[3 * ki + 2], l2, acc[r]);
      }
    }
  }
#pragma GCC unroll 3
  for (int r = 0; r < R; r++) dwp_store8(y + r * OW + ox, act8_vec(_mm256_add_ps(acc[r], acc2[r]), ar), OW - ox);
}

static inline __attribute__((always_inline)) void dwd_band(const int R, const float *const *rows, int64_t W,
                                                           int64_t pl, const __m256 *w, __m256 bias,
                                                           const act8 *ar, float *y, int64_t OW) {
  int64_t ox = 0;
  for (; ox < OW && ox < pl; ox += 8) dwd_vec(R, 1, rows, ox - pl, W, w, bias, ar, y, OW, ox);
  for (; ox < OW && ox - pl + 9 < W; ox += 8) dwd_vec(R, 0, rows, ox - pl, W, w, bias, ar, y, OW, ox);
  for (; ox < OW; ox += 8) dwd_vec(R, 1, rows, ox - pl, W, w, bias, ar, y, OW, ox);
}

static void dwd_plane(const ei__f32_dw3 *d, float *y) {
  __m256 w[9];
  for (int t = 0; t < 9; t++) w[t] = _mm256_set1_ps(d->w[t]);
  const __m256 bias = _mm256_set1_ps(d->bias);
  const act8 ar = act8_load(d->act);
  const int64_t OH = d->OH, OW = d->OW, W = d->W;
  int64_t oy = 0;
  const float *rows[5];
  for (; oy < OH; oy += 3) {
    for (int k = 0; k < 5; k++) {
      const int64_t iy = oy - d->pt + k;
      rows[k] = iy >= 0 && iy < d->H ? d->x + iy * W : dw3_zeros + 32;
    }
    if (oy + 3 <= OH)
      dwd_band(3, rows, W, d->pl, w, bias, &ar, y + oy * OW, OW);
    else if (oy + 2 == OH)
      dwd_band(2, rows, W, d->pl, w, bias, &ar, y + oy * OW, OW);
    else
      dwd_band(1, rows, W, d->pl, w, bias, &ar, y + oy * OW, OW);
  }
}

/* -- narrow planes (OW <= 8): the column strip on 8-float vectors (2 FMAs per cycle on Zen 4 against one 16-float
 * FMA, and half the lanes of a 16-float vector would be idle) -- */
static inline __attribute__((always_inline)) void dw3_narrow_s(const int S, const ei__f32_dw3 *d, float *y) {
  const int64_t W = d->W, H = d->H, OW = d->OW, OH = d->OH, pt = d->pt, c = -d->pl;
  __m256 w[9];
  for (int t = 0; t < 9; t++) w[t] = _mm256_set1_ps(d->w[t]);
  const __m256 bias = _mm256_set1_ps(d->bias);
  const act8 ar = act8_load(d->act);
  const __mmask8 ms = (__mmask8)((1u << OW) - 1);
  const __m256i even = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14), odd = _mm256_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15);
  /* stride 1: taps at columns c, c + 1, c + 2; stride 2: columns c .. c + 16 split as in dws_strips */
  const __mmask8 m0 = cols_in8(c, W), m1 = S == 1 ? cols_in8(c + 1, W) : cols_in8(c + 8, W),
                 m2 = S == 1 ? cols_in8(c + 2, W) : cols_in8(c + 16, W) & 1;
#define DWN_ROW(iy, A, B, C)                                                                                   \
  do {                                                                                                       \
    if ((iy) >= 0 && (iy) < H) {                                                                             \
      const float *r_ = d->x + (iy) * W;                                                                     \
      if (S == 1) {                                                                                          \
        A = _mm256_maskz_loadu_ps(m0, at(r_, c));                                                            \
        B = _mm256_maskz_loadu_ps(m1, at(r_, c + 1));                                                        \
        C = _mm256_maskz_loadu_ps(m2, at(r_, c + 2));                                                        \
      } else {                                                                                               \
        const __m256 a_ = _mm256_maskz_loadu_ps(m0, at(r_, c)), b_ = _mm256_maskz_loadu_ps(m1, at(r_, c + 8)); \
        const __m256 t_ = _mm256_maskz_loadu_ps(m2, at(r_, c + 16));                                         \
        A = _mm256_permutex2var_ps(a_, even, b_);                                                            \
        B = _mm256_permutex2var_ps(a_, odd, b_);                                                             \
        C = _mm256_castsi256_ps(_mm256_alignr_epi32(_mm256_castps_si256(t_), _mm256_castps_si256(A), 1));   \
      }                                                                                                      \
    } else {                                                                                                 \
      A = B = C = _mm256_setzero_ps();                                                                       \
    }                                                                                                        \
  } while (0)
  __m256 a0, b0, c0, a1 = _mm256_setzero_ps(), b1 = a1, c1 = a1, a2, b2, c2;
  DWN_ROW(-pt, a0, b0, c0);
  if (S == 1) DWN_ROW(1 - pt, a1, b1, c1);
  for (int64_t oy = 0; oy < OH; oy++) {
    const int64_t iy = S * oy - pt;
    if (S == 2) DWN_ROW(iy + 1, a1, b1, c1);
    DWN_ROW(iy + 2, a2, b2, c2);
    __m256 a = _mm256_fmadd_ps(w[0], a0, bias), b = _mm256_mul_ps(w[3], a1);
    a = _mm256_fmadd_ps(w[1], b0, a);
    b = _mm256_fmadd_ps(w[4], b1, b);
    a = _mm256_fmadd_ps(w[2], c0, a);
    b = _mm256_fmadd_ps(w[5], c1, b);
    a = _mm256_fmadd_ps(w[6], a2, a);
    b = _mm256_fmadd_ps(w[7], b2, b);
    a = _mm256_fmadd_ps(w[8], c2, a);
    _mm256_mask_storeu_ps(y + oy * OW, ms, act8_vec(_mm256_add_ps(a, b), &ar));
    if (S == 1) {
      a0 = a1, b0 = b1, c0 = c1;
      a1 = a2, b1 = b2, c1 = c2;
    } else {
      a0 = a2, b0 = b2, c0 = c2;
    }
  }
#undef DWN_ROW
}

static void dw3_narrow(const ei__f32_dw3 *d, float *y) {
  if (d->S == 1)
    dw3_narrow_s(1, d, y);
  else
    dw3_narrow_s(2, d, y);
}

static void dw3_plane_avx512(const ei__f32_dw3 *d, float *y) {
  if (d->OH <= 0 || d->OW <= 0) return;
  if (d->OW <= 8)
    dw3_narrow(d, y);
  else if (d->S == 1)
    d->W <= DW3_WIDE ? dwd_strips(d, y) : dwd_plane(d, y);
  else
    d->W <= DW3_WIDE ? dws_strips(d, y) : dws_rows(d, y);
}
