/* Fast float Conv paths for 1-D and 2-D convolutions with constant weights (1-D runs as 2-D with height 1):
 *   f32_conv_im2col_gemm  im2col of output-pixel tiles straight into 16-wide B panels + the blocked GEMM
 *   f32_conv_1x1_gemm     1x1 / stride 1 / no pad: the GEMM reads X in place (no im2col)
 *   f32_dwconv_2d         direct depthwise (group == C == M), row by row
 * The weights are packed once (conv.c init) as GEMM A panels per group, or copied as [M, kh*kw] for the
 * depthwise path. Output Y = W * col: rows are output channels, columns output pixels (NCHW). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif
#include <stdint.h>
#include <string.h>

#include "kernels/ref/nn.h"

#define NR EI_F32_GEMM_NR

typedef struct view2d {
  int64_t H, W, OH, OW, kh, kw, sh, sw, dh, dw, pt, pl;
} view2d;

static void get_view(const ei__nn_geom *g, view2d *v) {
  if (g->S == 1) {
    v->H = v->OH = v->kh = v->sh = v->dh = 1;
    v->pt = 0;
    v->W = g->in[0];
    v->OW = g->out[0];
    v->kw = g->k[0];
    v->sw = g->s[0];
    v->dw = g->d[0];
    v->pl = g->pb[0];
  } else {
    v->H = g->in[0];
    v->W = g->in[1];
    v->OH = g->out[0];
    v->OW = g->out[1];
    v->kh = g->k[0];
    v->kw = g->k[1];
    v->sh = g->s[0];
    v->sw = g->s[1];
    v->dh = g->d[0];
    v->dw = g->d[1];
    v->pt = g->pb[0];
    v->pl = g->pb[1];
  }
}

int ei__conv_fast_path(const ei__nn_attrs *a, int wrank, const int64_t *wdims) {
  if (wrank != 3 && wrank != 4) return EI_CONV_REF;
  const int S = wrank - 2;
  if (wdims[1] == 1 && wdims[0] == a->group) return EI_CONV_DW;
  int one = 1;
  for (int i = 0; i < S; i++) {
    if (wdims[2 + i] != 1) one = 0;
    if (a->nstrides >= 0 && a->strides[i] != 1) one = 0;
  }
  if (a->auto_pad == EI_AUTOPAD_NOTSET && a->npads >= 0)
    for (int i = 0; i < a->npads; i++)
      if (a->pads[i]) one = 0;
  return one ? EI_CONV_1X1 : EI_CONV_IM2COL;
}

/* Floats of one group's packed A (Mg x K), or SIZE_MAX on overflow. */
static size_t group_a_floats(int64_t Mg, int64_t K) {
  size_t n;
  size_t panels = (size_t)((Mg + EI_F32_GEMM_MR - 1) / EI_F32_GEMM_MR);
  if (!ei__mul_size(panels, EI_F32_GEMM_MR, &n) || !ei__mul_size(n, (size_t)K, &n)) return SIZE_MAX;
  return n;
}

size_t ei__conv_packed_floats(int path, const int64_t *wdims, int wrank, int64_t group) {
  int64_t ksz = ei__nn_prod(wdims + 2, wrank - 2), M = wdims[0], K;
  if (ksz < 0 || M < 0 || wdims[1] < 0 || __builtin_mul_overflow(wdims[1], ksz, &K)) return SIZE_MAX;
  size_t n;
  if (path == EI_CONV_DW) return ei__mul_size((size_t)M, (size_t)ksz, &n) ? n : SIZE_MAX;
  size_t per = group_a_floats(M / group, K);
  if (per == SIZE_MAX || !ei__mul_size(per, (size_t)group, &n)) return SIZE_MAX;
  return n;
}

void ei__conv_pack(int path, const int64_t *wdims, int wrank, int64_t group, const float *w, float *dst) {
  const int64_t ksz = ei__nn_prod(wdims + 2, wrank - 2), M = wdims[0], K = wdims[1] * ksz;
  if (path == EI_CONV_DW) {
    if (M > 0 && ksz > 0) memcpy(dst, w, (size_t)(M * ksz) * sizeof(float));
    return;
  }
  const int64_t Mg = M / group;
  const size_t per = group_a_floats(Mg, K);
  for (int64_t g = 0; g < group; g++) ei__f32_gemm_pack_a(Mg, K, w + g * Mg * K, K, 1, dst + (size_t)g * per);
}

/* Output pixels per im2col tile: a multiple of 16 with K * tile floats <= EI_NN_IM2COL_BYTES (at least 16). */
static int64_t im2col_tile(int64_t K, int64_t P) {
  int64_t p16 = (P + NR - 1) / NR * NR;
  int64_t cap = K > 0 ? (int64_t)(EI_NN_IM2COL_BYTES / sizeof(float)) / K / NR * NR : p16;
  if (cap < NR) cap = NR;
  return p16 < cap ? p16 : cap;
}

size_t ei__conv_fast_workspace(int path, const ei__conv_shape *s) {
  if (path != EI_CONV_IM2COL) return 0;
  view2d v;
  get_view(&s->g, &v);
  const int64_t K = (s->C / s->group) * v.kh * v.kw, P = v.OH * v.OW;
  if (K == 0 || P == 0) return 0;
  return (size_t)K * (size_t)im2col_tile(K, P) * sizeof(float);
}

/* ---- im2col into B panels ---- */

typedef struct im2col_job {
  const view2d *v;
  const float *x; /* the group's first input channel */
  int64_t Cg, K, p0, np;
  float *dst;
} im2col_job;

static void im2col_panel(const im2col_job *j, int64_t q) {
  const view2d *v = j->v;
  const int64_t pix0 = j->p0 + q * NR, cnt = j->p0 + j->np - pix0 < NR ? j->p0 + j->np - pix0 : NR;
  int64_t iy0[NR], ix0[NR];
  int64_t oy = pix0 / v->OW, ox = pix0 % v->OW;
  const int64_t oy_first = oy;
  for (int t = 0; t < cnt; t++) {
    iy0[t] = oy * v->sh - v->pt;
    ix0[t] = ox * v->sw - v->pl;
    if (++ox == v->OW) {
      ox = 0;
      oy++;
    }
  }
  const int same_row = cnt == NR && (pix0 + NR - 1) / v->OW == oy_first;
  float *dst = j->dst + q * NR * j->K;
  const int64_t HW = v->H * v->W;
  for (int64_t c = 0; c < j->Cg; c++) {
    const float *xc = j->x + c * HW;
    for (int64_t ki = 0; ki < v->kh; ki++) {
      for (int64_t kj = 0; kj < v->kw; kj++, dst += NR) {
        const int64_t dy = ki * v->dh, dx = kj * v->dw;
        if (same_row) {
          const int64_t iy = iy0[0] + dy;
          if (iy < 0 || iy >= v->H) {
            for (int t = 0; t < NR; t++) dst[t] = 0.f;
            continue;
          }
          const float *row = xc + iy * v->W;
          const int64_t ixa = ix0[0] + dx, ixb = ix0[NR - 1] + dx;
          if (ixa >= 0 && ixb < v->W) {
            if (v->sw == 1)
              memcpy(dst, row + ixa, NR * sizeof(float));
            else
              for (int t = 0; t < NR; t++) dst[t] = row[ixa + t * v->sw];
            continue;
          }
        }
        int t = 0;
        for (; t < cnt; t++) {
          const int64_t iy = iy0[t] + dy, ix = ix0[t] + dx;
          dst[t] = (iy >= 0 && iy < v->H && ix >= 0 && ix < v->W) ? xc[iy * v->W + ix] : 0.f;
        }
        for (; t < NR; t++) dst[t] = 0.f; /* panel columns past the tile */
      }
    }
  }
}

static void im2col_task(void *arg, int64_t q0, int64_t q1) {
  for (int64_t q = q0; q < q1; q++) im2col_panel(arg, q);
}

/* ---- depthwise ---- */

typedef struct dw_job {
  const view2d *v;
  const ei__conv_shape *s;
  const float *x, *w, *bias;
  float *y;
  const ei__act *act;
  int64_t ox_lo, ox_hi; /* output columns whose taps are all inside the row */
} dw_job;

/* Interior columns [lo, hi) of one kernel row: y[ox] += sum_kj w[kj] * r[ox*sw + kj*dw - pl], all taps in one
 * pass for the common 3- and 5-wide kernels (vectorisable for stride 1), one pass per tap otherwise. */
static void dw_interior(float *restrict y, const float *restrict r, const float *w, const view2d *v, int64_t lo,
                        int64_t hi) {
  const int64_t d = v->dw, p = v->pl;
  if (v->kw == 3 && v->sw == 1) {
    const float w0 = w[0], w1 = w[1], w2 = w[2];
    for (int64_t ox = lo; ox < hi; ox++) y[ox] += w0 * r[ox - p] + w1 * r[ox - p + d] + w2 * r[ox - p + 2 * d];
  } else if (v->kw == 3 && v->sw == 2) {
    const float w0 = w[0], w1 = w[1], w2 = w[2];
    for (int64_t ox = lo; ox < hi; ox++) {
      const int64_t i = 2 * ox - p;
      y[ox] += w0 * r[i] + w1 * r[i + d] + w2 * r[i + 2 * d];
    }
  } else if (v->kw == 5 && v->sw <= 2) {
    const float w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4];
    const int64_t s = v->sw;
    for (int64_t ox = lo; ox < hi; ox++) {
      const int64_t i = s * ox - p;
      y[ox] += w0 * r[i] + w1 * r[i + d] + w2 * r[i + 2 * d] + w3 * r[i + 3 * d] + w4 * r[i + 4 * d];
    }
  } else {
    for (int64_t kj = 0; kj < v->kw; kj++) {
      const float wv = w[kj];
      const int64_t off = kj * d - p;
      if (v->sw == 1)
        for (int64_t ox = lo; ox < hi; ox++) y[ox] += wv * r[ox + off];
      else
        for (int64_t ox = lo; ox < hi; ox++) y[ox] += wv * r[ox * v->sw + off];
    }
  }
}

static void dw_row(const dw_job *j, int64_t r) {
  const view2d *v = j->v;
  const int64_t plane = r / v->OH, oy = r % v->OH, c = plane % j->s->C;
  const float *xp = j->x + plane * v->H * v->W;
  const float *wk = j->w + c * v->kh * v->kw;
  float *restrict yr = j->y + r * v->OW;
  const float b = j->bias[c];
  for (int64_t ox = 0; ox < v->OW; ox++) yr[ox] = b;
  const int64_t lo = j->ox_lo, hi = j->ox_hi;
  for (int64_t ki = 0; ki < v->kh; ki++) {
    const int64_t iy = oy * v->sh - v->pt + ki * v->dh;
    if (iy < 0 || iy >= v->H) continue;
    const float *row = xp + iy * v->W;
    const float *wr = wk + ki * v->kw;
    /* border columns: taps checked one by one */
    for (int64_t kj = 0; kj < v->kw; kj++) {
      const float wv = wr[kj];
      const int64_t off = kj * v->dw - v->pl;
      for (int64_t ox = 0; ox < lo; ox++) {
        const int64_t ix = ox * v->sw + off;
        if (ix >= 0 && ix < v->W) yr[ox] += wv * row[ix];
      }
      for (int64_t ox = hi; ox < v->OW; ox++) {
        const int64_t ix = ox * v->sw + off;
        if (ix >= 0 && ix < v->W) yr[ox] += wv * row[ix];
      }
    }
    dw_interior(yr, row, wr, v, lo, hi);
  }
  if (j->act) ei__f32_act_inplace(j->act, yr, v->OW);
}

static void dw_task(void *arg, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++) dw_row(arg, r);
}

static void dwconv(const view2d *v, const ei__conv_shape *s, const float *x, const float *w, const float *bias,
                   float *y, const ei__act *act, ei_threadpool *pool) {
  dw_job j = {v, s, x, w, bias, y, act, 0, 0};
  /* Interior columns: ox*sw - pl >= 0 and ox*sw - pl + (kw-1)*dw <= W-1. */
  int64_t lo = (v->pl + v->sw - 1) / v->sw;
  int64_t last = v->W - 1 + v->pl - (v->kw - 1) * v->dw;
  int64_t hi = last < 0 ? 0 : last / v->sw + 1;
  if (lo > v->OW) lo = v->OW;
  if (hi > v->OW) hi = v->OW;
  if (hi < lo) hi = lo;
  j.ox_lo = lo;
  j.ox_hi = hi;
  const int64_t rows = s->N * s->C * v->OH, per_row = v->OW * v->kh * v->kw + 1;
  ei__parallel_for(pool, rows, per_row >= 8192 ? 1 : 8192 / per_row + 1, dw_task, &j);
}

/* ---- driver ---- */

void ei__f32_conv_fast(int path, const ei__conv_shape *s, const float *x, const float *wpack, const float *bias,
                       float *y, const ei__act *act, void *ws, ei_threadpool *pool) {
  view2d v;
  get_view(&s->g, &v);
  if (path == EI_CONV_DW) {
    dwconv(&v, s, x, wpack, bias, y, act, pool);
    return;
  }
  const int64_t Cg = s->C / s->group, Mg = s->M / s->group, K = Cg * v.kh * v.kw;
  const int64_t P = v.OH * v.OW, HW = v.H * v.W;
  const size_t apanel = group_a_floats(Mg, K);
  const int64_t tile = path == EI_CONV_IM2COL ? im2col_tile(K, P) : P;
  if (Mg == 0 || P == 0) return;
  for (int64_t n = 0; n < s->N; n++) {
    for (int64_t g = 0; g < s->group; g++) {
      const float *xg = x + (n * s->C + g * Cg) * HW;
      ei__f32_gemm_args ga;
      ei__f32_gemm_args_init(&ga);
      ga.M = Mg;
      ga.K = K;
      ga.a = wpack + (size_t)g * apanel;
      ga.a_packed = 1;
      ga.ldc = P;
      ga.bias_m = bias + g * Mg;
      ga.act = act;
      float *yg = y + (n * s->M + g * Mg) * P;
      if (path == EI_CONV_1X1 || K == 0) {
        ga.N = P;
        ga.b = xg;
        ga.b_rs = HW;
        ga.c = yg;
        ei__f32_gemm(&ga, pool);
        continue;
      }
      for (int64_t p0 = 0; p0 < P; p0 += tile) {
        const int64_t np = P - p0 < tile ? P - p0 : tile;
        im2col_job ij = {&v, xg, Cg, K, p0, np, ws};
        const int64_t panels = (np + NR - 1) / NR;
        ei__parallel_for(pool, panels, K * NR >= 4096 ? 1 : 4096 / (K * NR) + 1, im2col_task, &ij);
        ga.N = np;
        ga.b = ws;
        ga.b_packed = 1;
        ga.c = yg + p0;
        ei__f32_gemm(&ga, pool);
      }
    }
  }
}
