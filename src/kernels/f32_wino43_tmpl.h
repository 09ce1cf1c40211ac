/* The Winograd F(4x4, 3x3) transforms of the SIMD table (wino4_in, wino4_in_rows, wino4_out in
 * kernels/f32_simd.h), included by kernels/f32_simd_tmpl.h, so once per ISA file with that file's compiler flags.
 * Written with GCC vector extensions over the 16 tiles of a panel (one 64-byte vector), which the compiler maps to
 * the ISA's registers (one zmm, two ymm, four NEON q registers, or scalars). */
#include <string.h>

#include "kernels/f32_simd.h"

/* The helpers are static and inlined: the ABI of 64-byte vector arguments on levels without 512-bit registers
 * does not matter here. */
#pragma GCC diagnostic ignored "-Wpsabi"
/* -O3 for these functions only (the file's flags stay for the rest of the SIMD template): the transforms run
 * about 8% slower at -O2 (64->64 on 56x56: 0.92 against 0.85 ms). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("O3")
#endif

typedef float w43v __attribute__((vector_size(64)));
typedef int w43i __attribute__((vector_size(64)));

static inline w43v w43_load(const float *p) {
  w43v v;
  memcpy(&v, p, sizeof v);
  return v;
}
static inline void w43_store(float *p, w43v v) { memcpy(p, &v, sizeof v); }
static inline w43v w43_set1(float x) { return (w43v){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x}; }
/* m ? a : b lane by lane (m: all ones or zero per lane) */
static inline w43v w43_sel(w43i m, w43v a, w43v b) {
  w43i ai, bi;
  memcpy(&ai, &a, sizeof a);
  memcpy(&bi, &b, sizeof b);
  const w43i r = (ai & m) | (bi & ~m);
  w43v out;
  memcpy(&out, &r, sizeof out);
  return out;
}

/* One 6-point column of B^T x. */
#define W43_BT(x0, x1, x2, x3, x4, x5, t0, t1, t2, t3, t4, t5) \
  do {                                                           \
    t0 = 4.f * x0 - 5.f * x2 + x4;                               \
    t1 = x3 + x4 - 4.f * (x1 + x2);                              \
    t2 = x4 - x3 + 4.f * (x1 - x2);                              \
    t3 = x4 - x2 + 2.f * (x3 - x1);                              \
    t4 = x4 - x2 + 2.f * (x1 - x3);                              \
    t5 = 4.f * x1 - 5.f * x3 + x5;                               \
  } while (0)

/* V = B^T x B of the 36 patch elements x[r][c] (16 tiles each) into v[(r*6 + c)*xs]. */
static inline void w43_transform_in(w43v x[6][6], float *v, int64_t xs) {
  w43v t[6][6];
  for (int c = 0; c < 6; c++)
    W43_BT(x[0][c], x[1][c], x[2][c], x[3][c], x[4][c], x[5][c], t[0][c], t[1][c], t[2][c], t[3][c], t[4][c],
           t[5][c]);
  for (int r = 0; r < 6; r++) {
    w43v o0, o1, o2, o3, o4, o5;
    W43_BT(t[r][0], t[r][1], t[r][2], t[r][3], t[r][4], t[r][5], o0, o1, o2, o3, o4, o5);
    w43_store(v + (r * 6 + 0) * xs, o0);
    w43_store(v + (r * 6 + 1) * xs, o1);
    w43_store(v + (r * 6 + 2) * xs, o2);
    w43_store(v + (r * 6 + 3) * xs, o3);
    w43_store(v + (r * 6 + 4) * xs, o4);
    w43_store(v + (r * 6 + 5) * xs, o5);
  }
}

static void w43_in(const float *d, float *v, int64_t xs) {
  w43v x[6][6];
  for (int r = 0; r < 6; r++)
    for (int c = 0; c < 6; c++) x[r][c] = w43_load(d + (r * 6 + c) * 16);
  w43_transform_in(x, v, xs);
}

/* The 6 columns of 16 tiles side by side from one input row p (tile t's column c is p[4t + c]): 80 floats read,
 * split into the 4 phases of stride 4, the last two columns one tile on. */
static inline void w43_row_phases(const float *p, w43v out[6]) {
  const w43v x0 = w43_load(p), x1 = w43_load(p + 16), x2 = w43_load(p + 32), x3 = w43_load(p + 48),
             x4 = w43_load(p + 64);
  const w43i lo = {0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29};
  const w43i hi = {2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31};
  const w43i first = {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23};
  const w43i second = {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31};
  const w43v e01 = __builtin_shuffle(x0, x1, lo), e23 = __builtin_shuffle(x0, x1, hi);
  const w43v f01 = __builtin_shuffle(x2, x3, lo), f23 = __builtin_shuffle(x2, x3, hi);
  out[0] = __builtin_shuffle(e01, f01, first);
  out[1] = __builtin_shuffle(e01, f01, second);
  out[2] = __builtin_shuffle(e23, f23, first);
  out[3] = __builtin_shuffle(e23, f23, second);
  const w43i next0 = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  const w43i next1 = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17};
  out[4] = __builtin_shuffle(out[0], x4, next0);
  out[5] = __builtin_shuffle(out[1], x4, next1);
}

/* Gather and transform: tile t's patch element (r, c) is src[off[t] + r*Wp + c]; the tiles form nseg runs along
 * tile rows, run s covering lanes [a[s], a[s+1]) from base[s] (= off[a[s]] - 4 a[s]: lane t of the run reads
 * base[s] + 4t + ...). Lanes from a[nseg] on are zero. Every base[s] + 5 Wp + 80 floats must be readable. */
static void w43_in_rows(const float *src, int64_t Wp, const int64_t *base, const int *a, int nseg, float *v,
                        int64_t xs) {
  w43v x[6][6];
  w43i lane;
  for (int l = 0; l < 16; l++) lane[l] = l;
  for (int r = 0; r < 6; r++) {
    for (int c = 0; c < 6; c++) x[r][c] = w43_set1(0.f);
    for (int sg = 0; sg < nseg; sg++) {
      w43v ph[6];
      w43_row_phases(src + base[sg] + r * Wp, ph);
      const w43i in = (lane >= a[sg]) & (lane < a[sg + 1]);
      for (int c = 0; c < 6; c++) x[r][c] = w43_sel(in, ph[c], x[r][c]);
    }
  }
  w43_transform_in(x, v, xs);
}

/* One 6-point column of A^T m: 4 results. */
#define W43_AT(m0, m1, m2, m3, m4, m5, s0, s1, s2, s3) \
  do {                                                  \
    const w43v p12 = m1 + m2, d12 = m1 - m2;            \
    const w43v p34 = m3 + m4, d34 = m3 - m4;            \
    s0 = m0 + p12 + p34;                                \
    s1 = d12 + 2.f * d34;                               \
    s2 = p12 + 4.f * p34;                               \
    s3 = d12 + 8.f * d34 + m5;                          \
  } while (0)

/* The in-kernel activations (ei__f32_act_in_kernel), with the formulas of ei__act_apply: x > 0 ? x : 0,
 * min/max that keep NaN for Clip, x >= 0 ? x : alpha x, clamp(alpha x + beta, 0, 1), x clamp(x/6 + 1/2, 0, 1). */
static inline w43v w43_clamp(w43v v, w43v lo, w43v hi) {
  v = w43_sel(v < lo, lo, v);
  return w43_sel(v > hi, hi, v);
}

static inline w43v w43_act(w43v v, int kind, w43v pa, w43v pb) {
  const w43v zero = w43_set1(0.f), one = w43_set1(1.f);
  switch (kind) {
    case EI_ACT_RELU: return w43_sel(v > zero, v, zero);
    case EI_ACT_CLIP: return w43_clamp(v, pa, pb);
    case EI_ACT_LEAKYRELU: return w43_sel(v >= zero, v, v * pa);
    case EI_ACT_HARDSIGMOID: return w43_clamp(v * pa + pb, zero, one);
    case EI_ACT_HARDSWISH: return v * w43_clamp(v * (1.f / 6.f) + 0.5f, zero, one);
    default: return v;
  }
}

static void w43_out(const float *m, int64_t xs, float bias, const ei__act *act, float *dst) {
  w43v s[4][6];
  for (int c = 0; c < 6; c++) {
    const w43v m0 = w43_load(m + (0 * 6 + c) * xs), m1 = w43_load(m + (1 * 6 + c) * xs);
    const w43v m2 = w43_load(m + (2 * 6 + c) * xs), m3 = w43_load(m + (3 * 6 + c) * xs);
    const w43v m4 = w43_load(m + (4 * 6 + c) * xs), m5 = w43_load(m + (5 * 6 + c) * xs);
    W43_AT(m0, m1, m2, m3, m4, m5, s[0][c], s[1][c], s[2][c], s[3][c]);
  }
  const int kind = act ? (int)act->kind : EI_ACT_NONE;
  const w43v b = w43_set1(bias), pa = w43_set1(act ? act->alpha : 0.f), pb = w43_set1(act ? act->beta : 0.f);
  /* interleave: lane l of output vector k is y[l % 4][4k + l / 4] */
  const w43i lo01 = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23};
  const w43i hi01 = {8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const w43i q0 = {0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23};
  const w43i q1 = {8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31};
  for (int i = 0; i < 4; i++) {
    w43v y[4];
    W43_AT(s[i][0], s[i][1], s[i][2], s[i][3], s[i][4], s[i][5], y[0], y[1], y[2], y[3]);
    for (int j = 0; j < 4; j++) y[j] = w43_act(y[j] + b, kind, pa, pb);
    const w43v a0 = __builtin_shuffle(y[0], y[1], lo01), a1 = __builtin_shuffle(y[0], y[1], hi01);
    const w43v c0 = __builtin_shuffle(y[2], y[3], lo01), c1 = __builtin_shuffle(y[2], y[3], hi01);
    float *r = dst + i * 64;
    w43_store(r, __builtin_shuffle(a0, c0, q0));
    w43_store(r + 16, __builtin_shuffle(a0, c0, q1));
    w43_store(r + 32, __builtin_shuffle(a1, c1, q0));
    w43_store(r + 48, __builtin_shuffle(a1, c1, q1));
  }
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif
