/* Fast float depthwise convolution (group == C == M), f32_dwconv_<isa>: on AVX-512 every 3x3 with equal strides
 * 1 or 2 one whole plane per call of the SIMD table's dw3_plane; else small images with stride 1 and "same" width
 * one whole plane at a time (each tap one shifted masked load of the flat plane); other 3x3 convs with equal
 * strides 1 (any level) one whole plane per dw3_plane call; else one
 * output row at a time, SIMD over the output width for 3x3 and 5x5 kernels with stride 1 or 2
 * (kernels/f32_simd.h), scalar otherwise. Bias and the activation are fused. Weights: [M, kh*kw] as given. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/f32_simd.h"
#include "kernels/ref/conv_view.h"
#include "kernels/ref/nn.h"

typedef struct dw_job {
  const view2d *v;
  const ei__conv_shape *s;
  const ei__f32_simd *simd;
  const float *x, *w, *bias;
  float *y;
  const ei__act *act;
  int64_t ox_lo, ox_hi; /* output columns whose taps are all inside the row */
  int vec;              /* the SIMD row kernel applies (kw 3/5, stride 1/2, no column dilation) */
  /* whole-plane mode (small images, stride 1, OW == W): per-tap input offsets and valid-output bitmaps */
  int64_t off[EI_F32_DW_PLANE_TAPS];
  uint64_t valid[EI_F32_DW_PLANE_TAPS][EI_F32_DW_PLANE_MAX / 64];
} dw_job;

/* Interior columns [lo, hi) of one kernel row, generic (any kw, stride, dilation): y[ox] += taps. */
static void dw_interior(float *restrict y, const float *restrict r, const float *w, const view2d *v, int64_t lo,
                        int64_t hi) {
  for (int64_t kj = 0; kj < v->kw; kj++) {
    const float wv = w[kj];
    const int64_t off = kj * v->dw - v->pl;
    if (v->sw == 1)
      for (int64_t ox = lo; ox < hi; ox++) y[ox] += wv * r[ox + off];
    else
      for (int64_t ox = lo; ox < hi; ox++) y[ox] += wv * r[ox * v->sw + off];
  }
}

/* Columns [c0, c1) of an output row with bounds checks on every tap (borders), activation included. */
static void dw_border(const dw_job *j, const float *xp, const float *wk, float b, int64_t oy, float *yr, int64_t c0,
                      int64_t c1) {
  const view2d *v = j->v;
  for (int64_t ox = c0; ox < c1; ox++) {
    float acc = b;
    for (int64_t ki = 0; ki < v->kh; ki++) {
      const int64_t iy = oy * v->sh - v->pt + ki * v->dh;
      if (iy < 0 || iy >= v->H) continue;
      for (int64_t kj = 0; kj < v->kw; kj++) {
        const int64_t ix = ox * v->sw - v->pl + kj * v->dw;
        if (ix >= 0 && ix < v->W) acc += wk[ki * v->kw + kj] * xp[iy * v->W + ix];
      }
    }
    yr[ox] = acc;
  }
  if (j->act && c1 > c0) ei__f32_act_inplace(j->act, yr + c0, c1 - c0);
}

/* Output row oy of plane `plane` (n * C + c). */
static void dw_row(const dw_job *j, int64_t plane, int64_t oy) {
  const view2d *v = j->v;
  const int64_t c = plane % j->s->C;
  const float *xp = j->x + plane * v->H * v->W;
  const float *wk = j->w + c * v->kh * v->kw;
  float *restrict yr = j->y + (plane * v->OH + oy) * v->OW;
  const float b = j->bias[c];
  const int64_t lo = j->ox_lo, hi = j->ox_hi;
  if (j->vec) {
    ei__f32_dw_row d;
    for (int64_t ki = 0; ki < v->kh; ki++) {
      const int64_t iy = oy * v->sh - v->pt + ki * v->dh;
      d.rows[ki] = iy >= 0 && iy < v->H ? xp + iy * v->W : NULL;
    }
    d.w = wk;
    d.bias = b;
    d.kh = (int)v->kh;
    d.kw = (int)v->kw;
    d.sw = (int)v->sw;
    d.pl = v->pl;
    d.W = v->W;
    d.act = j->act;
    if (j->simd->dw_any_columns) { /* the whole row, borders included */
      j->simd->dw_row(&d, yr, 0, v->OW);
      if (j->act && !ei__f32_act_in_kernel(j->act)) j->simd->act(j->act, yr, v->OW);
      return;
    }
    j->simd->dw_row(&d, yr, lo, hi); /* the activation too, except Sigmoid */
    if (j->act && !ei__f32_act_in_kernel(j->act)) j->simd->act(j->act, yr + lo, hi - lo);
  } else {
    for (int64_t ox = lo; ox < hi; ox++) yr[ox] = b;
    for (int64_t ki = 0; ki < v->kh; ki++) {
      const int64_t iy = oy * v->sh - v->pt + ki * v->dh;
      if (iy >= 0 && iy < v->H) dw_interior(yr, xp + iy * v->W, wk + ki * v->kw, v, lo, hi);
    }
    if (j->act) j->simd->act(j->act, yr + lo, hi - lo);
  }
  dw_border(j, xp, wk, b, oy, yr, 0, lo);
  dw_border(j, xp, wk, b, oy, yr, hi, v->OW);
}

/* Rows [r0, r1) of all N*C*OH output rows. */
static void dw_task(void *arg, int64_t r0, int64_t r1) {
  const dw_job *j = arg;
  const int64_t OH = j->v->OH;
  int64_t plane = r0 / OH, oy = r0 % OH;
  for (int64_t r = r0; r < r1; r++) {
    dw_row(j, plane, oy);
    if (++oy == OH) {
      oy = 0;
      plane++;
    }
  }
}

/* Whole planes [p0, p1) of all N*C (small images). */
static void dw_plane_task(void *arg, int64_t p0, int64_t p1) {
  const dw_job *j = arg;
  const view2d *v = j->v;
  const int64_t P = v->OH * v->OW, taps = v->kh * v->kw;
  ei__f32_dw_plane d;
  d.act = j->act;
  d.P = (int)P;
  d.taps = (int)taps;
  d.off = j->off;
  d.valid = (const uint64_t(*)[EI_F32_DW_PLANE_MAX / 64])j->valid;
  for (int64_t plane = p0; plane < p1; plane++) {
    const int64_t c = plane % j->s->C;
    d.x = j->x + plane * v->H * v->W;
    d.w = j->w + c * taps;
    d.bias = j->bias[c];
    float *yp = j->y + plane * P;
    j->simd->dw_plane(&d, yp);
    if (j->act && !ei__f32_act_in_kernel(j->act)) j->simd->act(j->act, yp, P);
  }
}

/* Plane mode: stride 1, no dilation, OW == W (output p reads input p + a per-tap offset), a small image. */
static int dw_plane_mode(dw_job *j) {
  const view2d *v = j->v;
  const int64_t P = v->OH * v->OW, taps = v->kh * v->kw;
  if (!j->simd->dw_plane || v->sh != 1 || v->sw != 1 || v->dh != 1 || v->dw != 1 || v->OW != v->W || P < 1 ||
      P > EI_F32_DW_PLANE_MAX || taps > EI_F32_DW_PLANE_TAPS)
    return 0;
  memset(j->valid, 0, sizeof j->valid);
  for (int64_t ki = 0; ki < v->kh; ki++)
    for (int64_t kj = 0; kj < v->kw; kj++) {
      const int64_t t = ki * v->kw + kj;
      j->off[t] = (ki - v->pt) * v->W + (kj - v->pl);
      /* columns ox with 0 <= ox - pl + kj < W, in every row oy with 0 <= oy - pt + ki < H */
      const int64_t lo = v->pl - kj > 0 ? v->pl - kj : 0, hi = v->W + v->pl - kj < v->OW ? v->W + v->pl - kj : v->OW;
      for (int64_t oy = 0; oy < v->OH && lo < hi; oy++) {
        const int64_t iy = oy - v->pt + ki;
        if (iy < 0 || iy >= v->H) continue;
        for (int64_t p = oy * v->OW + lo; p < oy * v->OW + hi; p++) j->valid[t][p >> 6] |= 1ull << (p & 63);
      }
    }
  return 1;
}

/* Whole planes [p0, p1) of all N*C with the 3x3 plane kernel. */
static void dw3_task(void *arg, int64_t p0, int64_t p1) {
  const dw_job *j = arg;
  const view2d *v = j->v;
  ei__f32_dw3 d;
  d.act = j->act;
  d.H = v->H;
  d.W = v->W;
  d.OH = v->OH;
  d.OW = v->OW;
  d.pt = v->pt;
  d.pl = v->pl;
  d.S = (int)v->sw;
  const int64_t C = j->s->C, isz = v->H * v->W, osz = v->OH * v->OW;
  void (*plane_fn)(const ei__f32_dw3 *, float *) = j->simd->dw3_plane;
  const int act_after = j->act && !ei__f32_act_in_kernel(j->act);
  int64_t c = p0 % C; /* channel of the plane, counted along (no division per plane: small planes are ~100 cycles) */
  for (int64_t plane = p0; plane < p1; plane++) {
    d.x = j->x + plane * isz;
    d.w = j->w + c * 9;
    d.bias = j->bias[c];
    float *yp = j->y + plane * osz;
    plane_fn(&d, yp);
    if (act_after) j->simd->act(j->act, yp, osz);
    if (++c == C) c = 0;
  }
}

/* The 3x3 plane kernel applies: 3x3, equal strides 1 or 2, no dilation, rows that fit its ring. */
static int dw3_mode(const dw_job *j) {
  const view2d *v = j->v;
  return j->simd->dw3_plane && v->kh == 3 && v->kw == 3 && v->dh == 1 && v->dw == 1 && v->sh == v->sw &&
         (v->sw == 1 || v->sw == 2) && v->sw <= j->simd->dw3_max_stride && v->OW <= EI_F32_DW3_MAXW / v->sw && v->pl <= EI_F32_DW3_MAXW / 4 &&
         v->W <= EI_F32_DW3_MAXW;
}

void ei__f32_dwconv_fast(ei__isa isa, const ei__conv_shape *s, const float *x, const float *w, const float *bias,
                   float *y, const ei__act *act, ei_threadpool *pool) {
  view2d v;
  ei__conv_view(&s->g, &v);
  dw_job j;
  memset(&j, 0, offsetof(dw_job, off));
  j.v = &v;
  j.s = s;
  j.simd = ei__f32_simd_get(isa);
  j.x = x;
  j.w = w;
  j.bias = bias;
  j.y = y;
  j.act = act;
  if (j.simd->dw3_max_stride >= 2 && dw3_mode(&j)) { /* levels whose dw3_plane beats dw_plane on small planes */
    const int64_t per = v.OH * v.OW * 9 + 1;
    ei__parallel_for(pool, s->N * s->C, per >= 8192 ? 1 : 8192 / per + 1, dw3_task, &j);
    return;
  }
  if (dw_plane_mode(&j)) { /* small planes: faster than dw3 there */
    const int64_t per = v.OH * v.OW * v.kh * v.kw + 1;
    ei__parallel_for(pool, s->N * s->C, per >= 8192 ? 1 : 8192 / per + 1, dw_plane_task, &j);
    return;
  }
  if (dw3_mode(&j)) {
    const int64_t per = v.OH * v.OW * 9 + 1;
    ei__parallel_for(pool, s->N * s->C, per >= 8192 ? 1 : 8192 / per + 1, dw3_task, &j);
    return;
  }
  /* Interior columns: ox*sw - pl >= 0 and ox*sw - pl + (kw-1)*dw <= W-1. */
  int64_t lo = (v.pl + v.sw - 1) / v.sw;
  int64_t last = v.W - 1 + v.pl - (v.kw - 1) * v.dw;
  int64_t hi = last < 0 ? 0 : last / v.sw + 1;
  if (lo > v.OW) lo = v.OW;
  if (hi > v.OW) hi = v.OW;
  if (hi < lo) hi = lo;
  j.ox_lo = lo;
  j.ox_hi = hi;
  j.vec = (v.kw == 3 || v.kw == 5) && (v.sw == 1 || v.sw == 2) && v.dw == 1 && v.kh <= EI_F32_DW_MAX_KH;
  const int64_t rows = s->N * s->C * v.OH, per_row = v.OW * v.kh * v.kw + 1;
  ei__parallel_for(pool, rows, per_row >= 8192 ? 1 : 8192 / per_row + 1, dw_task, &j);
}

