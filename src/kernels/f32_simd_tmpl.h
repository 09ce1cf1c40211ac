/* Template of the per-ISA float SIMD kernels of kernels/f32_simd.h, included once per ISA file
 * (x86/f32_simd_avx2.c, x86/f32_simd_avx512.c, arm/f32_simd_neon.c) after it defines the vector primitives:
 *
 *   VF, VW               vector type and its width in floats
 *   VLOAD(p) VSTORE(p,v) unaligned load / store of VW floats
 *   VLOAD_S2(p)          p[0], p[2], ..., p[2(VW-1)] (may read up to p[2VW-1])
 *   VSET1(x) VADD VSUB VMUL  broadcast, add, subtract, multiply
 *   VSTORE2(p,a,b)       p[2i] = a[i], p[2i+1] = b[i] (2*VW floats, interleaved)
 *   VFMA(a,b,c)          a*b + c
 *   VRELU(v)             v > 0 ? v : 0
 *   VCLAMP(v,lo,hi)      v < lo ? lo : (v > hi ? hi : v)
 *   VGE0SEL(v,a,b)       v >= 0 ? a : b
 *   VMAXSEL(m,v)         v > m ? v : m
 *   VS2_EXACT            optional: VLOAD_S2 reads nothing past p[2(VW-1)]
 *   VHAVE_MASK           optional: VLOADN(p,n) VSTOREN(p,v,n) lanes [0, n); VLOADM(p,a,b) lanes [a, b) of p[0..VW),
 *                        VLOAD_S2M(p,a,b) the even elements of p[0..2VW) with elements outside [a, b) as zero,
 *                        VLOADMB(p,bits) the lanes whose bit is set;
 *                        none touches memory outside the lanes it keeps (row tails and the depthwise borders go
 *                        through them instead of scalar code)
 *   SIMD_TABLE           the name of the table to define (ei__f32_simd_avx2, ...), SIMD_NAME its name string
 *
 * Results equal the scalar formulas of ei__act_apply / the reference kernels up to the rounding of a*b+c. */
#include "kernels/f32_gemm.h"
#include "kernels/f32_simd.h"
#include "kernels/f32_wino43_tmpl.h"

/* ---- fused activation ---- */

typedef struct act_regs {
  int kind;
  VF a, b;
} act_regs;

static inline act_regs act_load(const ei__act *a) {
  act_regs r;
  r.kind = a ? (int)a->kind : EI_ACT_NONE;
  r.a = VSET1(a ? a->alpha : 0.f);
  r.b = VSET1(a ? a->beta : 0.f);
  return r;
}

/* The piecewise-linear kinds on a vector (Sigmoid and NONE pass through). */
static inline __attribute__((always_inline)) VF act_vec(VF v, const act_regs *r) {
  switch (r->kind) {
    case EI_ACT_RELU: return VRELU(v);
    case EI_ACT_CLIP: return VCLAMP(v, r->a, r->b);
    case EI_ACT_LEAKYRELU: return VGE0SEL(v, v, VMUL(v, r->a));
    case EI_ACT_HARDSIGMOID: return VCLAMP(VFMA(v, r->a, r->b), VSET1(0.f), VSET1(1.f));
    case EI_ACT_HARDSWISH: return VMUL(v, VCLAMP(VFMA(v, VSET1(1.f / 6.f), VSET1(0.5f)), VSET1(0.f), VSET1(1.f)));
    default: return v;
  }
}

static void act_n(const ei__act *a, float *x, int64_t n) {
  if (!a || a->kind == EI_ACT_NONE) return;
  if (a->kind == EI_ACT_SIGMOID) {
    ei__act_apply_n(a, x, n);
    return;
  }
  const act_regs r = act_load(a);
  int64_t i = 0;
  for (; i + VW <= n; i += VW) VSTORE(x + i, act_vec(VLOAD(x + i), &r));
#ifdef VHAVE_MASK
  if (i < n) VSTOREN(x + i, act_vec(VLOADN(x + i, (int)(n - i)), &r), (int)(n - i));
#else
  if (i < n) ei__f32_act_inplace(a, x + i, n - i);
#endif
}

/* ---- depthwise rows ---- */

/* Interior columns: every tap of every lane inside [0, W): [*lo, *hi) (for stride 2, unless VS2_EXACT, one
 * float past the last tap is read, so the last column whose loads stay inside the row bounds *hi). */
static inline void interior(int S, int KW, int64_t pl, int64_t W, int64_t *lo, int64_t *hi) {
  *lo = (pl + S - 1) / S;
  int64_t num = W - KW + pl;
#ifndef VS2_EXACT
  if (S == 2) num -= 1;
#endif
  *hi = num < 0 ? 0 : num / S + 1;
  if (*hi < *lo) *hi = *lo;
}

/* U output vectors from column ox: U independent FMA chains (one chain of kh*kw dependent FMAs per vector would
 * be latency-bound). */
static inline __attribute__((always_inline)) void dw_vecs(const int U, const int KW, const int S,
                                                          const ei__f32_dw_row *d, float *y, int64_t ox) {
  VF acc[4];
#pragma GCC unroll 4
  for (int u = 0; u < U; u++) acc[u] = VSET1(d->bias);
  for (int ki = 0; ki < d->kh; ki++) {
    const float *r = d->rows[ki];
    if (!r) continue;
    r += ox * S - d->pl;
    const float *w = d->w + ki * KW;
#pragma GCC unroll 8
    for (int kj = 0; kj < KW; kj++) {
      const VF wv = VSET1(w[kj]);
#pragma GCC unroll 4
      for (int u = 0; u < U; u++)
        acc[u] = VFMA(wv, S == 1 ? VLOAD(r + kj + u * VW) : VLOAD_S2(r + kj + 2 * u * VW), acc[u]);
    }
  }
  const act_regs ar = act_load(d->act);
#pragma GCC unroll 4
  for (int u = 0; u < U; u++) VSTORE(y + ox + u * VW, act_vec(acc[u], &ar));
}

/* One vector with a chain per kernel column (then summed). */
static inline __attribute__((always_inline)) VF dw_vec1(const int KW, const int S, const ei__f32_dw_row *d,
                                                        int64_t ox) {
  VF acc[5];
  acc[0] = VSET1(d->bias);
#pragma GCC unroll 8
  for (int kj = 1; kj < KW; kj++) acc[kj] = VSET1(0.f);
  for (int ki = 0; ki < d->kh; ki++) {
    const float *r = d->rows[ki];
    if (!r) continue;
    r += ox * S - d->pl;
    const float *w = d->w + ki * KW;
#pragma GCC unroll 8
    for (int kj = 0; kj < KW; kj++) acc[kj] = VFMA(VSET1(w[kj]), S == 1 ? VLOAD(r + kj) : VLOAD_S2(r + kj), acc[kj]);
  }
#pragma GCC unroll 8
  for (int kj = 1; kj < KW; kj++) acc[0] = VADD(acc[0], acc[kj]);
  const act_regs ar = act_load(d->act);
  return act_vec(acc[0], &ar);
}

#ifdef VHAVE_MASK
/* r + off without pointer arithmetic outside the row (masked loads touch only the lanes inside it). */
static inline const float *at(const float *r, int64_t off) {
  return (const float *)((uintptr_t)r + (uintptr_t)(off * (int64_t)sizeof(float)));
}

/* n <= VW columns from ox, any of them at a border: taps outside [0, W) read as zero (masked loads), masked
 * store. */
static inline __attribute__((always_inline)) void dw_edge(const int KW, const int S, const ei__f32_dw_row *d,
                                                          float *y, int64_t ox, int n) {
  VF acc[5];
  acc[0] = VSET1(d->bias);
#pragma GCC unroll 8
  for (int kj = 1; kj < KW; kj++) acc[kj] = VSET1(0.f);
  for (int ki = 0; ki < d->kh; ki++) {
    const float *r = d->rows[ki];
    if (!r) continue;
    const float *w = d->w + ki * KW;
#pragma GCC unroll 8
    for (int kj = 0; kj < KW; kj++) {
      const int64_t base = ox * S - d->pl + kj; /* input column of lane 0 */
      /* lanes (S == 1) or elements of the stride-2 window (S == 2) inside the row */
      const int64_t span = S == 1 ? n : 2 * n - 1;
      const int64_t a = base < 0 ? -base : 0, b = d->W - base < span ? d->W - base : span;
      if (a >= b) continue;
      const VF v = S == 1 ? VLOADM(at(r, base), (int)a, (int)b) : VLOAD_S2M(at(r, base), (int)a, (int)b);
      acc[kj] = VFMA(VSET1(w[kj]), v, acc[kj]);
    }
  }
#pragma GCC unroll 8
  for (int kj = 1; kj < KW; kj++) acc[0] = VADD(acc[0], acc[kj]);
  const act_regs ar = act_load(d->act);
  VSTOREN(y + ox, act_vec(acc[0], &ar), n);
}
#endif

/* Columns [c0, c1): with masked loads any columns, else interior ones only. */
static inline __attribute__((always_inline)) void dw_body(const int KW, const int S, const ei__f32_dw_row *d,
                                                          float *y, int64_t c0, int64_t c1) {
  int64_t lo, hi;
  interior(S, KW, d->pl, d->W, &lo, &hi);
  if (hi > c1) hi = c1;
  int64_t ox = c0;
#ifdef VHAVE_MASK
  for (; ox < c1 && ox < lo; ox += VW) dw_edge(KW, S, d, y, ox, (int)(c1 - ox < VW ? c1 - ox : VW));
#endif
  for (; ox + 4 * VW <= hi; ox += 4 * VW) dw_vecs(4, KW, S, d, y, ox);
  for (; ox + VW <= hi; ox += VW) VSTORE(y + ox, dw_vec1(KW, S, d, ox));
#ifdef VHAVE_MASK
  for (; ox < c1; ox += VW) dw_edge(KW, S, d, y, ox, (int)(c1 - ox < VW ? c1 - ox : VW));
#else
  if (ox < hi && hi - c0 >= VW) { /* the last vector overlaps the previous one: same values recomputed */
    VSTORE(y + hi - VW, dw_vec1(KW, S, d, hi - VW));
    ox = hi;
  }
  for (; ox < c1; ox++) {
    float acc = d->bias;
    for (int ki = 0; ki < d->kh; ki++) {
      const float *r = d->rows[ki];
      if (!r) continue;
      r += ox * S - d->pl;
#pragma GCC unroll 8
      for (int kj = 0; kj < KW; kj++) acc += d->w[ki * KW + kj] * r[kj];
    }
    y[ox] = d->act && ei__f32_act_in_kernel(d->act) ? ei__act_apply(d->act, acc) : acc; /* Sigmoid: the caller's */
  }
#endif
}

static void dw_row(const ei__f32_dw_row *d, float *y, int64_t c0, int64_t c1) {
  if (d->kw == 3)
    d->sw == 1 ? dw_body(3, 1, d, y, c0, c1) : dw_body(3, 2, d, y, c0, c1);
  else
    d->sw == 1 ? dw_body(5, 1, d, y, c0, c1) : dw_body(5, 2, d, y, c0, c1);
}

#ifdef VHAVE_MASK
/* Lane bits of outputs [p, p+VW) of a valid[] bitmap. */
static inline uint32_t plane_bits(const uint64_t *bits, int p) {
  const uint64_t w = bits[p >> 6] >> (p & 63);
  return (uint32_t)(w & ((VW >= 32 ? 0xffffffffull : (1ull << VW)) - 1)); /* VW divides 64: no straddling */
}

/* U vectors of outputs from p: U independent chains; masked loads skip the taps' invalid lanes. */
static inline __attribute__((always_inline)) void dw_plane_vecs(const int U, const ei__f32_dw_plane *d, float *y,
                                                                int p) {
  VF acc[4];
#pragma GCC unroll 4
  for (int u = 0; u < U; u++) acc[u] = VSET1(d->bias);
  for (int t = 0; t < d->taps; t++) {
    const VF wv = VSET1(d->w[t]);
#pragma GCC unroll 4
    for (int u = 0; u < U; u++) {
      const uint32_t m = plane_bits(d->valid[t], p + u * VW);
      if (m) acc[u] = VFMA(wv, VLOADMB(at(d->x, d->off[t] + p + u * VW), m), acc[u]);
    }
  }
  const act_regs ar = act_load(d->act);
#pragma GCC unroll 4
  for (int u = 0; u < U; u++) {
    const int n = d->P - (p + u * VW) < VW ? d->P - (p + u * VW) : VW;
    if (n == VW)
      VSTORE(y + p + u * VW, act_vec(acc[u], &ar));
    else if (n > 0)
      VSTOREN(y + p + u * VW, act_vec(acc[u], &ar), n);
  }
}

static void dw_plane(const ei__f32_dw_plane *d, float *y) {
  int p = 0;
  for (; p + 3 * VW < d->P; p += 4 * VW) dw_plane_vecs(4, d, y, p);
  for (; p < d->P; p += VW) dw_plane_vecs(1, d, y, p);
}
#define DW_PLANE dw_plane
#else
#define DW_PLANE NULL
#endif

/* ---- max-pool rows ---- */

static inline __attribute__((always_inline)) void pool_body(const int S, const ei__f32_pool_row *p, float *y,
                                                            int64_t lo, int64_t hi) {
  const int KW = p->kw;
  int64_t ilo, hv;
  interior(S, KW, p->pl, p->W, &ilo, &hv);
  if (hv > hi) hv = hi;
  int64_t ox = lo;
  for (; ox + VW <= hv; ox += VW) {
    VF m = VSET1(-__builtin_inff());
    for (int ki = 0; ki < p->kh; ki++) {
      const float *r = p->rows[ki] + ox * S - p->pl;
#pragma GCC unroll 8
      for (int kj = 0; kj < KW; kj++) m = VMAXSEL(m, S == 1 ? VLOAD(r + kj) : VLOAD_S2(r + kj));
    }
    VSTORE(y + ox, m);
  }
  for (; ox < hi; ox++) {
    float m = -__builtin_inff();
    for (int ki = 0; ki < p->kh; ki++) {
      const float *r = p->rows[ki] + ox * S - p->pl;
#pragma GCC unroll 8
      for (int kj = 0; kj < KW; kj++) m = r[kj] > m ? r[kj] : m;
    }
    y[ox] = m;
  }
}

static void maxpool_row(const ei__f32_pool_row *p, float *y, int64_t lo, int64_t hi) {
  if (p->sw == 1)
    pool_body(1, p, y, lo, hi);
  else
    pool_body(2, p, y, lo, hi);
}

/* ---- im2col panels ---- */

#define PANEL 16

static void im2col_gather(const float *src, const int64_t *koff, int64_t kc, const int64_t *off, int cnt,
                          float *dst) {
  for (int64_t k = 0; k < kc; k++, dst += PANEL) {
    const float *s = src + koff[k];
    int t = 0;
    for (; t < cnt; t++) dst[t] = s[off[t]];
    for (; t < PANEL; t++) dst[t] = 0.f;
  }
}

static void im2col_panel(const float *src, const int64_t *koff, int64_t kc, const int64_t *off, int cnt, int sw,
                         float *dst) {
  if (cnt == PANEL && off[PANEL - 1] - off[0] == (PANEL - 1) * sw && (sw == 1 || sw == 2)) {
    /* one run along an output row (or rows that touch in memory) */
    const float *s = src + off[0];
    if (sw == 1) {
      for (int64_t k = 0; k < kc; k++, dst += PANEL)
#pragma GCC unroll 16
        for (int h = 0; h < PANEL; h += VW) VSTORE(dst + h, VLOAD(s + koff[k] + h));
    } else {
      for (int64_t k = 0; k < kc; k++, dst += PANEL)
#pragma GCC unroll 16
        for (int h = 0; h < PANEL; h += VW) VSTORE(dst + h, VLOAD_S2(s + koff[k] + 2 * h));
    }
    return;
  }
#ifdef VHAVE_MASK
  /* a few runs (the panel wraps output rows), stride 1 or 2: each lane range [a, b) from its own pointer */
  if (sw == 1 || sw == 2) {
    int a[4], b[4], nseg = 0;
    for (int t = 0; t < cnt; t++) {
      if (t == 0 || off[t] != off[t - 1] + sw) {
        if (nseg == 4) {
          nseg = 5;
          break;
        }
        a[nseg++] = t;
      }
      b[nseg - 1] = t + 1;
    }
    if (nseg <= 4) {
      for (int64_t k = 0; k < kc; k++, dst += PANEL) {
        const float *s = src + koff[k];
#pragma GCC unroll 16
        for (int h = 0; h < PANEL; h += VW) {
          VF v = VSET1(0.f);
          for (int q = 0; q < nseg; q++) {
            const int lo = a[q] > h ? a[q] : h, hi = b[q] < h + VW ? b[q] : h + VW;
            if (lo >= hi) continue;
            /* lane l of the vector at h reads s[off[a] + sw * (h + l - a)] */
            const float *p = at(s, off[a[q]] + (int64_t)sw * (h - a[q]));
            v = VADD(v, sw == 1 ? VLOADM(p, lo - h, hi - h) : VLOAD_S2M(p, 2 * (lo - h), 2 * (hi - h) - 1));
          }
          VSTORE(dst + h, v);
        }
      }
      return;
    }
  }
#endif
  im2col_gather(src, koff, kc, off, cnt, dst);
}

/* ---- Winograd F(2x2, 3x3) transforms, 16 tiles (lanes) at a time ---- */

static void wino_in(const float *d, float *v, int64_t xs) {
#pragma GCC unroll 2
  for (int h = 0; h < PANEL; h += VW) {
    VF x[4][4], t[4][4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 4
      for (int c = 0; c < 4; c++) x[r][c] = VLOAD(d + (r * 4 + c) * PANEL + h);
    /* t = B^T x: rows d0 - d2, d1 + d2, d2 - d1, d1 - d3 */
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
      t[0][c] = VSUB(x[0][c], x[2][c]);
      t[1][c] = VADD(x[1][c], x[2][c]);
      t[2][c] = VSUB(x[2][c], x[1][c]);
      t[3][c] = VSUB(x[1][c], x[3][c]);
    }
    /* v = t B: the same on columns */
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
      VSTORE(v + (r * 4 + 0) * xs + h, VSUB(t[r][0], t[r][2]));
      VSTORE(v + (r * 4 + 1) * xs + h, VADD(t[r][1], t[r][2]));
      VSTORE(v + (r * 4 + 2) * xs + h, VSUB(t[r][2], t[r][1]));
      VSTORE(v + (r * 4 + 3) * xs + h, VSUB(t[r][1], t[r][3]));
    }
  }
}

static void wino_out(const float *m, int64_t xs, float bias, const ei__act *act, float *row0, float *row1,
                     float *buf) {
  const act_regs ar = act_load(act && ei__f32_act_in_kernel(act) ? act : NULL);
  const VF b = VSET1(bias);
#pragma GCC unroll 2
  for (int h = 0; h < PANEL; h += VW) {
    VF s[2][4];
    /* s = A^T m: rows m0 + m1 + m2, m1 - m2 - m3 */
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
      const VF m0 = VLOAD(m + (0 * 4 + c) * xs + h), m1 = VLOAD(m + (1 * 4 + c) * xs + h);
      const VF m2 = VLOAD(m + (2 * 4 + c) * xs + h), m3 = VLOAD(m + (3 * 4 + c) * xs + h);
      s[0][c] = VADD(VADD(m0, m1), m2);
      s[1][c] = VSUB(VSUB(m1, m2), m3);
    }
    /* y = s A (+ bias, activation) */
    VF y[2][2];
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++) {
      y[i][0] = act_vec(VADD(VADD(VADD(s[i][0], s[i][1]), s[i][2]), b), &ar);
      y[i][1] = act_vec(VADD(VSUB(VSUB(s[i][1], s[i][2]), s[i][3]), b), &ar);
    }
    if (row0) {
      VSTORE2(row0 + 2 * h, y[0][0], y[0][1]);
      if (row1) VSTORE2(row1 + 2 * h, y[1][0], y[1][1]);
    } else {
#pragma GCC unroll 2
      for (int i = 0; i < 2; i++)
#pragma GCC unroll 2
        for (int jj = 0; jj < 2; jj++) VSTORE(buf + (i * 2 + jj) * PANEL + h, y[i][jj]);
    }
  }
}

/* ---- elementwise add ---- */

/* In blocks, so that the activation pass finds the block in L1. */
static void add_n(const float *a, const float *b, int b_scalar, float *y, int64_t n, const ei__act *act) {
  for (int64_t i0 = 0; i0 < n; i0 += 2048) {
    const int64_t i1 = n - i0 < 2048 ? n : i0 + 2048;
    int64_t i = i0;
    if (b_scalar) {
      const VF vb = VSET1(b[0]);
      for (; i + VW <= i1; i += VW) VSTORE(y + i, VADD(VLOAD(a + i), vb));
      for (; i < i1; i++) y[i] = a[i] + b[0];
    } else {
      for (; i + VW <= i1; i += VW) VSTORE(y + i, VADD(VLOAD(a + i), VLOAD(b + i)));
      for (; i < i1; i++) y[i] = a[i] + b[i];
    }
    if (act) act_n(act, y + i0, i1 - i0);
  }
}

/* ---- whole-plane 3x3 depthwise (ei__f32_dw3); an ISA file may bring its own (DW3_PLANE) ---- */
#ifndef DW3_PLANE

#define DW3_ROW (EI_F32_DW3_MAXW + 8 * 64 + 16) /* a padded row, room for the last vectors' over-reads; the odd
                                                 * extra 64 bytes keep the ring's rows off 4 KiB aliasing */

/* Input row iy as a zero-padded row: r[c] = x[iy][c - pl] (0 outside the row) for c < n; vector stores only
 * (r has VW floats of slack past n). */
static void dw3_pad_row(const ei__f32_dw3 *d, int64_t iy, float *r, int64_t n) {
  const float *src = d->x + iy * d->W;
  const int64_t a = d->pl < n ? d->pl : n, b = d->pl + d->W < n ? d->pl + d->W : n, len = b - a;
  const VF z = VSET1(0.f);
  for (int64_t c = 0; c < a; c += VW) VSTORE(r + c, z);
  int64_t i = 0;
  for (; i + VW <= len; i += VW) VSTORE(r + a + i, VLOAD(src + i));
  if (i < len && len >= VW) { /* the last vector overlaps the previous one */
    VSTORE(r + a + len - VW, VLOAD(src + len - VW));
    i = len;
  }
  for (; i < len; i++) r[a + i] = src[i];
  for (int64_t c = b > a ? b : a; c < n; c += VW) VSTORE(r + c, z);
}

/* Stores v's first n (1..VW) lanes at y. */
static inline __attribute__((always_inline)) void dw3_store(float *y, VF v, int64_t n) {
  if (n >= VW) {
    VSTORE(y, v);
  } else {
#ifdef VHAVE_MASK
    VSTOREN(y, v, (int)n);
#else
    float tmp[VW];
    VSTORE(tmp, v);
    for (int64_t i = 0; i < n; i++) y[i] = tmp[i];
#endif
  }
}

/* One output row: tap (ki, kj) of output column o reads r_ki[o + off_kj]. */
static inline __attribute__((always_inline)) void dw3_row(const float *r0, const float *r1, const float *r2,
                                                          const int64_t o1, const int64_t o2, const float *wt,
                                                          VF bias, const act_regs *ar, float *y, int64_t OW) {
  const VF w0 = VSET1(wt[0]), w1 = VSET1(wt[1]), w2 = VSET1(wt[2]), w3 = VSET1(wt[3]), w4 = VSET1(wt[4]),
           w5 = VSET1(wt[5]), w6 = VSET1(wt[6]), w7 = VSET1(wt[7]), w8 = VSET1(wt[8]);
#define DW3_ACC(acc, o)                                                                                   \
  do {                                                                                                    \
    acc = VFMA(w0, VLOAD(r0 + (o)), acc);                                                                 \
    acc = VFMA(w1, VLOAD(r0 + (o) + o1), acc);                                                            \
    acc = VFMA(w2, VLOAD(r0 + (o) + o2), acc);                                                            \
    acc = VFMA(w3, VLOAD(r1 + (o)), acc);                                                                 \
    acc = VFMA(w4, VLOAD(r1 + (o) + o1), acc);                                                            \
    acc = VFMA(w5, VLOAD(r1 + (o) + o2), acc);                                                            \
    acc = VFMA(w6, VLOAD(r2 + (o)), acc);                                                                 \
    acc = VFMA(w7, VLOAD(r2 + (o) + o1), acc);                                                            \
    acc = VFMA(w8, VLOAD(r2 + (o) + o2), acc);                                                            \
  } while (0)
  int64_t ox = 0;
  for (; ox + 3 * VW < OW; ox += 4 * VW) {
    VF a0 = bias, a1 = bias, a2 = bias, a3 = bias;
    DW3_ACC(a0, ox);
    DW3_ACC(a1, ox + VW);
    DW3_ACC(a2, ox + 2 * VW);
    DW3_ACC(a3, ox + 3 * VW);
    VSTORE(y + ox, act_vec(a0, ar));
    VSTORE(y + ox + VW, act_vec(a1, ar));
    VSTORE(y + ox + 2 * VW, act_vec(a2, ar));
    dw3_store(y + ox + 3 * VW, act_vec(a3, ar), OW - ox - 3 * VW);
  }
  for (; ox + VW < OW; ox += 2 * VW) {
    VF a0 = bias, a1 = bias;
    DW3_ACC(a0, ox);
    DW3_ACC(a1, ox + VW);
    VSTORE(y + ox, act_vec(a0, ar));
    dw3_store(y + ox + VW, act_vec(a1, ar), OW - ox - VW);
  }
  if (ox < OW) {
    VF a0 = bias;
    DW3_ACC(a0, ox);
    dw3_store(y + ox, act_vec(a0, ar), OW - ox);
  }
#undef DW3_ACC
}

/* The ring of padded input rows of dw3_plane: slot iy % DW3_RING holds row held[slot]; each row is made one output
 * row before it is first read (a vector load right after the narrower or misaligned stores that wrote it would
 * miss store-to-load forwarding and stall). */
#define DW3_RING 6
typedef struct dw3_ring {
  float rows[(DW3_RING + 1) * DW3_ROW]; /* row k at k * stride; the last one zeros (rows in the padding) */
  float pad[2 * DW3_ROW];
  int64_t held[DW3_RING];
  int64_t OWv, half, used, stride;
} dw3_ring;

static const float *dw3_get(const ei__f32_dw3 *d, dw3_ring *g, int64_t iy) {
  if (iy < 0 || iy >= d->H) return g->rows + DW3_RING * g->stride;
  const int slot = (int)(iy % DW3_RING);
  float *row = g->rows + slot * g->stride;
  if (g->held[slot] == iy) return row;
  g->held[slot] = iy;
  if (d->S == 1) {
    dw3_pad_row(d, iy, row, g->used);
  } else { /* padded row, then split: row[i] = even column 2i, row[half + i] = odd column 2i + 1 */
    dw3_pad_row(d, iy, g->pad, 2 * g->OWv + 2 * VW + 2);
    for (int64_t i = 0; i < g->OWv + 1; i += VW) {
      VSTORE(row + i, VLOAD_S2(g->pad + 2 * i));
      VSTORE(row + g->half + i, VLOAD_S2(g->pad + 2 * i + 1));
    }
  }
  return row;
}

static void dw3_plane(const ei__f32_dw3 *d, float *y) {
  const int S = d->S;
  const int64_t OW = d->OW;
  dw3_ring g __attribute__((aligned(64)));
  g.OWv = (OW + VW - 1) / VW * VW;
  g.half = g.OWv + VW; /* stride 2: where the odd columns start */
  g.used = S == 1 ? g.OWv + 2 : g.half + g.OWv + 1;
  g.stride = (g.used + VW + 15) / 16 * 16 + 16; /* rows packed (few pages), an odd number of 64-byte lines */
  if ((g.stride / 16) % 2 == 0) g.stride += 16;
  for (int i = 0; i < DW3_RING; i++) g.held[i] = -1;
  memset(g.rows + DW3_RING * g.stride, 0, (size_t)g.used * sizeof(float));
  const VF bias = VSET1(d->bias);
  const act_regs ar = act_load(d->act);
  for (int ki = 0; ki < 3; ki++) dw3_get(d, &g, -d->pt + ki);
  for (int64_t oy = 0; oy < d->OH; oy++) {
    const int64_t iy = oy * S - d->pt;
    for (int k = 0; k < S; k++) dw3_get(d, &g, iy + 3 + k); /* the next output row's new rows */
    const float *r0 = dw3_get(d, &g, iy), *r1 = dw3_get(d, &g, iy + 1), *r2 = dw3_get(d, &g, iy + 2);
    if (S == 1)
      dw3_row(r0, r1, r2, 1, 2, d->w, bias, &ar, y + oy * OW, OW);
    else
      dw3_row(r0, r1, r2, g.half, 1, d->w, bias, &ar, y + oy * OW, OW);
  }
}
#define DW3_PLANE dw3_plane
#define DW3_MAX_STRIDE 1 /* stride 2 (a copy and a split per input row) loses to the row kernels */
#endif

#ifdef VHAVE_MASK
#define DW_ANY_COLUMNS 1
#else
#define DW_ANY_COLUMNS 0
#endif
const ei__f32_simd SIMD_TABLE = {SIMD_NAME,    act_n,        dw_row,  DW_ANY_COLUMNS, DW_PLANE, DW3_PLANE, DW3_MAX_STRIDE, maxpool_row,
                                 im2col_panel, wino_in, wino_out, w43_in, w43_in_rows, w43_out, add_n};
