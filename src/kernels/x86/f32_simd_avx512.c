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

/* ---- whole-plane 3x3 depthwise straight from the input rows (no copies): masked loads at the borders ---- */

/* A row of zeros for the rows in the padding (masked loads read at most 2*MAXW + 48 floats of a row). */
static const float dw3_zeros[2 * EI_F32_DW3_MAXW + 64];

/* Lanes l of a vector starting at input column c with 0 <= c + l < W. */
static inline __mmask16 cols_in(int64_t c, int64_t W) {
  const int64_t a = c < 0 ? -c : 0, b = W - c < 16 ? W - c : 16;
  if (b <= a) return 0;
  return (__mmask16)(((1u << b) - 1) & ~((1u << a) - 1));
}

/* Stride 1: tap kj of output lane l reads column c + kj + l. */
#define DW3_S1_ROW(acc, r, wa, wb, wc, c, m0, m1, m2)                               \
  do {                                                                              \
    acc = _mm512_fmadd_ps(wa, _mm512_maskz_loadu_ps(m0, at(r, (c))), acc);          \
    acc = _mm512_fmadd_ps(wb, _mm512_maskz_loadu_ps(m1, at(r, (c) + 1)), acc);      \
    acc = _mm512_fmadd_ps(wc, _mm512_maskz_loadu_ps(m2, at(r, (c) + 2)), acc);      \
  } while (0)
#define DW3_S1_ROW_FULL(acc, r, wa, wb, wc, c)                                      \
  do {                                                                              \
    acc = _mm512_fmadd_ps(wa, _mm512_loadu_ps((r) + (c)), acc);                     \
    acc = _mm512_fmadd_ps(wb, _mm512_loadu_ps((r) + (c) + 1), acc);                 \
    acc = _mm512_fmadd_ps(wc, _mm512_loadu_ps((r) + (c) + 2), acc);                 \
  } while (0)

/* Stride 2: columns c + 2l (kj 0), c + 1 + 2l (kj 1), c + 2 + 2l (kj 2) from three loads and three permutes. */
static inline __attribute__((always_inline)) __m512 dw3_s2_taps(__m512 acc, const float *r, int64_t c, int64_t W,
                                                                 int full, __m512 wa, __m512 wb, __m512 wc) {
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
  __m512 A, B, C;
  if (full) {
    A = _mm512_loadu_ps(r + c);
    B = _mm512_loadu_ps(r + c + 16);
    C = _mm512_maskz_loadu_ps(1, r + c + 32);
  } else {
    A = _mm512_maskz_loadu_ps(cols_in(c, W), at(r, c));
    B = _mm512_maskz_loadu_ps(cols_in(c + 16, W), at(r, c + 16));
    C = _mm512_maskz_loadu_ps(cols_in(c + 32, W) & 1, at(r, c + 32));
  }
  const __m512 e = _mm512_permutex2var_ps(A, even, B), o = _mm512_permutex2var_ps(A, odd, B);
  const __m512 e2 = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(C), _mm512_castps_si512(e), 1));
  acc = _mm512_fmadd_ps(wa, e, acc);
  acc = _mm512_fmadd_ps(wb, o, acc);
  return _mm512_fmadd_ps(wc, e2, acc);
}

static inline void dw3_out(float *y, __m512 v, int64_t n) {
  if (n >= 16)
    _mm512_storeu_ps(y, v);
  else
    _mm512_mask_storeu_ps(y, lanes((int)n), v);
}

/* Stride 1 on 8-float vectors: on cores that split 512-bit operations (Zen 4) this issues as many FMAs per cycle,
 * and its unaligned loads cross cache lines half as often as 16-float ones (the loads are what limits). */
static inline __mmask8 cols_in8(int64_t c, int64_t W) {
  const int64_t a = c < 0 ? -c : 0, b = W - c < 8 ? W - c : 8;
  if (b <= a) return 0;
  return (__mmask8)(((1u << b) - 1) & ~((1u << a) - 1));
}

static inline __m256 act_vec8(__m256 v, const ei__act *act) {
  if (!act) return v;
  switch (act->kind) {
    case EI_ACT_RELU: return _mm256_max_ps(v, _mm256_setzero_ps());
    case EI_ACT_CLIP: return _mm256_min_ps(_mm256_set1_ps(act->beta), _mm256_max_ps(_mm256_set1_ps(act->alpha), v));
    default: { /* the other kinds through the 16-lane code */
      const act_regs ar = act_load(act);
      return _mm512_castps512_ps256(act_vec(_mm512_castps256_ps512(v), &ar));
    }
  }
}

/* The three shifted vectors r[c], r[c+1], r[c+2] of one input row (masked: columns outside [0, W) as zero). */
#define DW3_LOAD3(v, r, c, masked)                                                   \
  do {                                                                               \
    if (masked) {                                                                    \
      v[0] = _mm256_maskz_loadu_ps(cols_in8((c), W), at(r, (c)));                   \
      v[1] = _mm256_maskz_loadu_ps(cols_in8((c) + 1, W), at(r, (c) + 1));           \
      v[2] = _mm256_maskz_loadu_ps(cols_in8((c) + 2, W), at(r, (c) + 2));           \
    } else {                                                                         \
      v[0] = _mm256_loadu_ps((r) + (c));                                             \
      v[1] = _mm256_loadu_ps((r) + (c) + 1);                                         \
      v[2] = _mm256_loadu_ps((r) + (c) + 2);                                         \
    }                                                                                \
  } while (0)
#define DW3_DOT3(acc, v, wa, wb, wc) \
  acc = _mm256_fmadd_ps(wc, v[2], _mm256_fmadd_ps(wb, v[1], _mm256_fmadd_ps(wa, v[0], acc)))

static inline void dw3_store8(float *y, __m256 v, int64_t n) {
  if (n >= 8)
    _mm256_storeu_ps(y, v);
  else
    _mm256_mask_storeu_ps(y, (__mmask8)((1u << n) - 1), v);
}

/* Output rows oy and oy + 1 (two == 1) or oy alone from input rows r0..r3: each input row's vectors are loaded
 * once for both output rows (12 loads for 18 FMAs instead of 18). */
static inline __attribute__((always_inline)) void dw3_s1_pair(const int two, const float *r0, const float *r1,
                                                               const float *r2, const float *r3, float *y0,
                                                               float *y1, int64_t OW, int64_t W, int64_t pl,
                                                               int64_t v_lo, int64_t v_hi, const float *wt,
                                                               float b, const ei__act *act) {
  const __m256 bias = _mm256_set1_ps(b);
  const __m256 w0 = _mm256_set1_ps(wt[0]), w1 = _mm256_set1_ps(wt[1]), w2 = _mm256_set1_ps(wt[2]),
               w3 = _mm256_set1_ps(wt[3]), w4 = _mm256_set1_ps(wt[4]), w5 = _mm256_set1_ps(wt[5]),
               w6 = _mm256_set1_ps(wt[6]), w7 = _mm256_set1_ps(wt[7]), w8 = _mm256_set1_ps(wt[8]);
  for (int64_t ox = 0; ox < OW; ox += 8) {
    const int64_t v = ox / 8, c = ox - pl;
    const int masked = v < v_lo || v >= v_hi;
    __m256 L0[3], L1[3], L2[3], L3[3];
    DW3_LOAD3(L0, r0, c, masked);
    DW3_LOAD3(L1, r1, c, masked);
    DW3_LOAD3(L2, r2, c, masked);
    __m256 a0 = bias, a1 = _mm256_setzero_ps(), a2 = a1;
    DW3_DOT3(a0, L0, w0, w1, w2);
    DW3_DOT3(a1, L1, w3, w4, w5);
    DW3_DOT3(a2, L2, w6, w7, w8);
    dw3_store8(y0 + ox, act_vec8(_mm256_add_ps(_mm256_add_ps(a0, a1), a2), act), OW - ox);
    if (two) {
      DW3_LOAD3(L3, r3, c, masked);
      __m256 b0 = bias, b1 = _mm256_setzero_ps(), b2 = b1;
      DW3_DOT3(b0, L1, w0, w1, w2);
      DW3_DOT3(b1, L2, w3, w4, w5);
      DW3_DOT3(b2, L3, w6, w7, w8);
      dw3_store8(y1 + ox, act_vec8(_mm256_add_ps(_mm256_add_ps(b0, b1), b2), act), OW - ox);
    }
  }
}

static void dw3_s1_rows8(const ei__f32_dw3 *d, float *y) {
  const int64_t W = d->W, OW = d->OW, pl = d->pl;
  /* vectors [v_lo, v_hi) have every tap inside the row: ox - pl >= 0 and ox + 7 - pl + 2 <= W - 1 */
  const int64_t v_lo = (pl + 7) / 8;
  int64_t v_hi = W - 10 + pl >= 0 ? (W - 10 + pl) / 8 + 1 : 0;
  if (v_hi > OW / 8) v_hi = OW / 8;
  for (int64_t oy = 0; oy < d->OH; oy += 2) {
    const float *r[4];
    for (int ki = 0; ki < 4; ki++) {
      const int64_t iy = oy - d->pt + ki;
      r[ki] = iy >= 0 && iy < d->H ? d->x + iy * W : dw3_zeros + 32;
    }
    if (oy + 1 < d->OH)
      dw3_s1_pair(1, r[0], r[1], r[2], r[3], y + oy * OW, y + (oy + 1) * OW, OW, W, pl, v_lo, v_hi, d->w, d->bias,
                  d->act);
    else
      dw3_s1_pair(0, r[0], r[1], r[2], r[3], y + oy * OW, NULL, OW, W, pl, v_lo, v_hi, d->w, d->bias, d->act);
  }
}

static void dw3_plane_avx512(const ei__f32_dw3 *d, float *y) {
  if (d->S == 1) {
    dw3_s1_rows8(d, y);
    return;
  }
  const int64_t W = d->W, OW = d->OW, pl = d->pl;
  const act_regs ar = act_load(d->act);
  const __m512 bias = _mm512_set1_ps(d->bias);
  const __m512 w0 = _mm512_set1_ps(d->w[0]), w1 = _mm512_set1_ps(d->w[1]), w2 = _mm512_set1_ps(d->w[2]),
               w3 = _mm512_set1_ps(d->w[3]), w4 = _mm512_set1_ps(d->w[4]), w5 = _mm512_set1_ps(d->w[5]),
               w6 = _mm512_set1_ps(d->w[6]), w7 = _mm512_set1_ps(d->w[7]), w8 = _mm512_set1_ps(d->w[8]);
  for (int64_t oy = 0; oy < d->OH; oy++) {
    const float *r[3];
    for (int ki = 0; ki < 3; ki++) {
      const int64_t iy = oy * d->S - d->pt + ki;
      r[ki] = iy >= 0 && iy < d->H ? d->x + iy * W : dw3_zeros + 32;
    }
    const float *r0 = r[0], *r1 = r[1], *r2 = r[2];
    float *yr = y + oy * OW;
    int64_t ox = 0;
    if (d->S == 1) {
      /* columns of vector ox: ox - pl + [0, 18); full when inside [0, W) */
      for (; ox < OW && (ox - pl < 0 || ox - pl + 17 >= W); ox += 16) { /* left border (or a narrow row) */
        const int64_t c = ox - pl;
        const __mmask16 m0 = cols_in(c, W), m1 = cols_in(c + 1, W), m2 = cols_in(c + 2, W);
        __m512 a = bias;
        DW3_S1_ROW(a, r0, w0, w1, w2, c, m0, m1, m2);
        DW3_S1_ROW(a, r1, w3, w4, w5, c, m0, m1, m2);
        DW3_S1_ROW(a, r2, w6, w7, w8, c, m0, m1, m2);
        dw3_out(yr + ox, act_vec(a, &ar), OW - ox);
        if (ox - pl >= 0) break; /* right border reached: the tail loop below finishes the row */
      }
      if (ox < OW && ox - pl >= 0 && ox - pl + 17 >= W) ox += 16; /* done by the border loop */
      for (; ox + 48 < OW && ox + 48 - pl + 17 < W; ox += 64) {
        const int64_t c = ox - pl;
        __m512 a0 = bias, a1 = bias, a2 = bias, a3 = bias;
        DW3_S1_ROW_FULL(a0, r0, w0, w1, w2, c);
        DW3_S1_ROW_FULL(a1, r0, w0, w1, w2, c + 16);
        DW3_S1_ROW_FULL(a2, r0, w0, w1, w2, c + 32);
        DW3_S1_ROW_FULL(a3, r0, w0, w1, w2, c + 48);
        DW3_S1_ROW_FULL(a0, r1, w3, w4, w5, c);
        DW3_S1_ROW_FULL(a1, r1, w3, w4, w5, c + 16);
        DW3_S1_ROW_FULL(a2, r1, w3, w4, w5, c + 32);
        DW3_S1_ROW_FULL(a3, r1, w3, w4, w5, c + 48);
        DW3_S1_ROW_FULL(a0, r2, w6, w7, w8, c);
        DW3_S1_ROW_FULL(a1, r2, w6, w7, w8, c + 16);
        DW3_S1_ROW_FULL(a2, r2, w6, w7, w8, c + 32);
        DW3_S1_ROW_FULL(a3, r2, w6, w7, w8, c + 48);
        _mm512_storeu_ps(yr + ox, act_vec(a0, &ar));
        _mm512_storeu_ps(yr + ox + 16, act_vec(a1, &ar));
        _mm512_storeu_ps(yr + ox + 32, act_vec(a2, &ar));
        _mm512_storeu_ps(yr + ox + 48, act_vec(a3, &ar));
      }
      for (; ox < OW; ox += 16) {
        const int64_t c = ox - pl;
        __m512 a = bias;
        if (c >= 0 && c + 17 < W && ox + 16 <= OW) {
          DW3_S1_ROW_FULL(a, r0, w0, w1, w2, c);
          DW3_S1_ROW_FULL(a, r1, w3, w4, w5, c);
          DW3_S1_ROW_FULL(a, r2, w6, w7, w8, c);
        } else {
          const __mmask16 m0 = cols_in(c, W), m1 = cols_in(c + 1, W), m2 = cols_in(c + 2, W);
          DW3_S1_ROW(a, r0, w0, w1, w2, c, m0, m1, m2);
          DW3_S1_ROW(a, r1, w3, w4, w5, c, m0, m1, m2);
          DW3_S1_ROW(a, r2, w6, w7, w8, c, m0, m1, m2);
        }
        dw3_out(yr + ox, act_vec(a, &ar), OW - ox);
      }
    } else {
      for (; ox < OW; ox += 16) {
        const int64_t c = 2 * ox - pl;
        const int full = c >= 0 && c + 32 < W;
        __m512 a0 = bias, a1 = _mm512_setzero_ps(), a2 = a1;
        if (full) {
          a0 = dw3_s2_taps(a0, r0, c, W, 1, w0, w1, w2);
          a1 = dw3_s2_taps(a1, r1, c, W, 1, w3, w4, w5);
          a2 = dw3_s2_taps(a2, r2, c, W, 1, w6, w7, w8);
        } else {
          a0 = dw3_s2_taps(a0, r0, c, W, 0, w0, w1, w2);
          a1 = dw3_s2_taps(a1, r1, c, W, 0, w3, w4, w5);
          a2 = dw3_s2_taps(a2, r2, c, W, 0, w6, w7, w8);
        }
        const __m512 a = _mm512_add_ps(_mm512_add_ps(a0, a1), a2);
        dw3_out(yr + ox, act_vec(a, &ar), OW - ox);
      }
    }
  }
}
