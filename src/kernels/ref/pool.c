/* MaxPool (float32, uint8, int8; optional Indices output with storage_order), AveragePool (float32;
 * count_include_pad, dilations) and GlobalAveragePool / GlobalMaxPool, for any spatial rank. Windows follow
 * pads / auto_pad / ceil_mode from nn.c; every task owns whole (n, c) planes. A float 2-D MaxPool without
 * Indices (kernel up to 8 x 8, stride 1 or 2 along the width, no dilation) runs by rows with the SIMD row
 * kernel of kernels/f32_simd.h ("f32_maxpool_2d") unless EI_ISA=ref. */
#include <math.h>
#include <string.h>

#include "kernels/f32_simd.h"
#include "kernels/q8_kernels.h"
#include "kernels/ref/nn.h"

typedef struct pool_params {
  ei__nn_attrs a;
  int is_max;
  int want_indices;
  int fast; /* float 2-D max pool by SIMD rows when the geometry allows (checked at run) */
} pool_params;

ei_status ei__pool_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  (void)g;
  pool_params *p = ei__calloc(1, sizeof *p);
  if (!p) return EI_E_NOMEM;
  n->params = p;
  ei_status st = ei__nn_attrs_parse(n, &p->a, err, errlen);
  if (st) return st;
  p->is_max = !strcmp(n->op_type, "MaxPool");
  if (p->a.nkernel < 1)
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "the kernel_shape attribute is required");
  if (n->nin < 1 || n->in[0] < 0) return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "input X is required");
  p->want_indices = p->is_max && n->nout >= 2 && n->out[1] >= 0;
  p->fast = p->is_max && !p->want_indices && ei__isa_current() != EI_ISA_REF;
  if (!p->is_max && n->nout > 1 && n->out[1] >= 0)
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "AveragePool has one output");
  return EI_OK;
}

const char *ei__pool_kernel_name(const ei__node *n) {
  const pool_params *p = n->params;
  return p && p->is_max ? (p->fast ? "f32_maxpool_2d" : "maxpool_ref") : "f32_avgpool_ref";
}

static ei_status pool_geom(const ei__node *node, const pool_params *p, const ei__tensor *x, ei__nn_geom *g,
                           char *err, size_t errlen) {
  if (p->is_max ? (x->dtype != EI_FLOAT && x->dtype != EI_UINT8 && x->dtype != EI_INT8) : x->dtype != EI_FLOAT)
    return EI_NN_ERR(node, err, errlen, EI_E_UNSUPPORTED, "input X has type %s (%s supported)",
                     ei_dtype_name(x->dtype), p->is_max ? "float32, uint8, int8" : "float32");
  if (x->rank < 3 || x->rank > EI_MAX_DIMS)
    return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "input X has rank %d (3 to %d supported: N, C, spatial...)",
                     x->rank, EI_MAX_DIMS);
  if (x->dims[0] < 0 || x->dims[1] < 0) return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "negative dimension in X");
  return ei__nn_geom_forward(node, &p->a, x->rank - 2, x->dims + 2, NULL, p->a.ceil_mode, g, err, errlen);
}

ei_status ei__pool_infer(ei__infer *c) {
  const pool_params *p = c->node->params;
  if (c->nout < 1 || !ei__nn_has(c->nin, c->in, 0)) return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "input X is required");
  ei__nn_geom g;
  ei_status st = pool_geom(c->node, p, &c->in[0], &g, c->err, c->errlen);
  if (st) return st;
  ei__tensor *y = &c->out[0];
  y->dtype = c->in[0].dtype;
  y->rank = c->in[0].rank;
  y->dims[0] = c->in[0].dims[0];
  y->dims[1] = c->in[0].dims[1];
  for (int i = 0; i < g.S; i++) y->dims[2 + i] = g.out[i];
  if ((st = ei__nn_check_numel(c, y->dims, y->rank, "output Y"))) return st;
  if (p->want_indices && c->nout >= 2) {
    ei__tensor *ind = &c->out[1];
    *ind = *y;
    ind->dtype = EI_INT64;
  }
  return EI_OK;
}

/* ---- windows ---- */

typedef struct pool_job {
  const pool_params *p;
  const ei__nn_geom *g;
  ei_dtype dt;
  const void *x;
  void *y;
  int64_t *ind;
  int64_t in_size, out_size;
  int64_t istride[EI_NN_MAX_SPATIAL];
} pool_job;

/* Taps k in [0, K) with lo_bound <= base + k*d < hi_bound, as [*lo, *hi). */
static inline void tap_range(int64_t base, int64_t d, int64_t K, int64_t lo_bound, int64_t hi_bound, int64_t *lo,
                             int64_t *hi) {
  int64_t l, h;
  if (d == 1) {
    l = base < lo_bound ? lo_bound - base : 0;
    h = hi_bound - base;
  } else {
    l = base < lo_bound ? (lo_bound - base + d - 1) / d : 0;
    h = hi_bound - 1 - base < 0 ? 0 : (hi_bound - 1 - base) / d + 1;
  }
  if (h > K) h = K;
  *lo = l;
  *hi = h > l ? h : l;
}

/* Window of output index o along dim i: base and the taps inside the input. */
static inline void window_dim(const ei__nn_geom *g, int i, int64_t o, int64_t *base, int64_t *lo, int64_t *hi) {
  *base = o * g->s[i] - g->pb[i];
  tap_range(*base, g->d[i], g->k[i], 0, g->in[i], lo, hi);
}

/* Row-major offset of a plane offset in column-major order (storage_order = 1). */
static int64_t col_major(const ei__nn_geom *g, int64_t off) {
  int64_t r = 0, stride = 1, idx[EI_NN_MAX_SPATIAL];
  for (int i = g->S - 1; i >= 0; i--) {
    idx[i] = off % g->in[i];
    off /= g->in[i];
  }
  for (int i = 0; i < g->S; i++) {
    r += idx[i] * stride;
    stride *= g->in[i];
  }
  return r;
}

/* Walks a plane's outputs as rows along the last dim: ROW runs once per row (outer dims 0..S-2 in o[], their
 * windows in base/lo/hi, outer_ok = 0 if one is empty), then PIXEL per output q of the row with the last dim's
 * window filled in (the PIXEL code is the variadic tail). */
#define FOR_OUTPUTS(g, o, base, lo, hi, outer_ok, q, ...)                       \
  do {                                                                          \
    const int L_ = (g)->S - 1;                                                  \
    const int64_t OL_ = (g)->out[L_];                                           \
    int64_t rows_ = 1;                                                          \
    for (int i_ = 0; i_ < L_; i_++) rows_ *= (g)->out[i_];                      \
    if (OL_ == 0) rows_ = 0;                                                    \
    int64_t q = 0;                                                              \
    for (int64_t r_ = 0; r_ < rows_; r_++) {                                    \
      int outer_ok = 1;                                                         \
      for (int i_ = 0; i_ < L_; i_++) {                                         \
        window_dim(g, i_, o[i_], &base[i_], &lo[i_], &hi[i_]);                  \
        if (lo[i_] >= hi[i_]) outer_ok = 0;                                     \
      }                                                                         \
      for (int64_t ox_ = 0; ox_ < OL_; ox_++, q++) {                            \
        window_dim(g, L_, ox_, &base[L_], &lo[L_], &hi[L_]);                    \
        __VA_ARGS__                                                             \
      }                                                                         \
      for (int i_ = L_ - 1; i_ >= 0; i_--) {                                    \
        if (++o[i_] < (g)->out[i_]) break;                                      \
        o[i_] = 0;                                                              \
      }                                                                         \
    }                                                                           \
  } while (0)

/* Loops over the taps of a window: dims 0..S-2 by odometer, the last dim as an inner loop with `off`. */
#define FOR_TAPS(g, j, base, lo, hi, off, ...)                                                       \
  do {                                                                                               \
    const int L_ = (g)->S - 1;                                                                       \
    int64_t kk_[EI_NN_MAX_SPATIAL];                                                                  \
    for (int i_ = 0; i_ < L_; i_++) kk_[i_] = lo[i_];                                                \
    for (;;) {                                                                                       \
      int64_t outer_ = 0;                                                                            \
      for (int i_ = 0; i_ < L_; i_++) outer_ += (base[i_] + kk_[i_] * (g)->d[i_]) * (j)->istride[i_]; \
      for (int64_t k_ = lo[L_]; k_ < hi[L_]; k_++) {                                                 \
        const int64_t off = outer_ + base[L_] + k_ * (g)->d[L_];                                     \
        __VA_ARGS__                                                                                  \
      }                                                                                              \
      int i_ = L_ - 1;                                                                               \
      for (; i_ >= 0; i_--) {                                                                        \
        if (++kk_[i_] < hi[i_]) break;                                                               \
        kk_[i_] = lo[i_];                                                                            \
      }                                                                                              \
      if (i_ < 0) break;                                                                             \
    }                                                                                                \
  } while (0)

#define DEFINE_MAXPOOL_PLANE(NAME, T, LOWEST)                                                          \
  static void NAME(const pool_job *j, int64_t plane) {                                                 \
    const ei__nn_geom *g = j->g;                                                                       \
    const T *xp = (const T *)j->x + plane * j->in_size;                                                \
    T *yp = (T *)j->y + plane * j->out_size;                                                           \
    int64_t o[EI_NN_MAX_SPATIAL] = {0}, base[EI_NN_MAX_SPATIAL], lo[EI_NN_MAX_SPATIAL],                \
            hi[EI_NN_MAX_SPATIAL];                                                                     \
    FOR_OUTPUTS(g, o, base, lo, hi, outer_ok, q, {                                                     \
      T best = LOWEST;                                                                                 \
      int64_t best_off = -1;                                                                           \
      if (outer_ok && lo[L_] < hi[L_] && !j->ind) { /* branch-free max */                             \
        FOR_TAPS(g, j, base, lo, hi, off, {                                                            \
          const T v = xp[off];                                                                         \
          best = v > best ? v : best;                                                                  \
        });                                                                                            \
      } else if (outer_ok && lo[L_] < hi[L_]) {                                                        \
        FOR_TAPS(g, j, base, lo, hi, off, {                                                            \
          const T v = xp[off];                                                                         \
          if (best_off < 0 || v > best) {                                                              \
            best = v;                                                                                  \
            best_off = off;                                                                            \
          }                                                                                            \
        });                                                                                            \
      }                                                                                                \
      yp[q] = best;                                                                                    \
      if (j->ind) {                                                                                    \
        int64_t idx = best_off < 0 ? 0 : (j->p->a.storage_order ? col_major(g, best_off) : best_off);   \
        j->ind[plane * j->out_size + q] = plane * j->in_size + idx;                                    \
      }                                                                                                \
    });                                                                                                \
  }

DEFINE_MAXPOOL_PLANE(maxpool_f32, float, -INFINITY)
DEFINE_MAXPOOL_PLANE(maxpool_u8, uint8_t, 0)
DEFINE_MAXPOOL_PLANE(maxpool_i8, int8_t, INT8_MIN)

static void avgpool_plane(const pool_job *j, int64_t plane) {
  const ei__nn_geom *g = j->g;
  const float *xp = (const float *)j->x + plane * j->in_size;
  float *yp = (float *)j->y + plane * j->out_size;
  const int cip = j->p->a.count_include_pad;
  int64_t o[EI_NN_MAX_SPATIAL] = {0}, base[EI_NN_MAX_SPATIAL], lo[EI_NN_MAX_SPATIAL], hi[EI_NN_MAX_SPATIAL];
  FOR_OUTPUTS(g, o, base, lo, hi, outer_ok, q, {
    float sum = 0.f;
    int64_t count = 1;
    const int nonempty = outer_ok && lo[L_] < hi[L_];
    if (nonempty) FOR_TAPS(g, j, base, lo, hi, off, { sum += xp[off]; });
    for (int i = 0; i < g->S; i++) {
      int64_t l = lo[i], h = hi[i];
      /* count_include_pad: taps inside the padded extent [-pb, in + pe) count too. */
      if (cip) tap_range(base[i], g->d[i], g->k[i], -g->pb[i], g->in[i] + g->pe[i], &l, &h);
      count *= h - l;
    }
    yp[q] = count > 0 && nonempty ? sum / (float)count : 0.f;
  });
}

/* ---- float 2-D MaxPool by rows ---- */

typedef struct maxpool_rows_job {
  const ei__nn_geom *g;
  const ei__f32_simd *simd;
  const float *x;
  float *y;
  int64_t lo, hi; /* output columns whose window is inside the row */
} maxpool_rows_job;

static int maxpool_rows_ok(const pool_job *j) {
  const ei__nn_geom *g = j->g;
  return j->p->fast && j->dt == EI_FLOAT && g->S == 2 && g->k[0] <= EI_F32_DW_MAX_KH && g->k[1] <= EI_F32_DW_MAX_KH &&
         g->d[0] == 1 && g->d[1] == 1 && (g->s[1] == 1 || g->s[1] == 2);
}

static void maxpool_rows_task(void *arg, int64_t r0, int64_t r1) {
  const maxpool_rows_job *j = arg;
  const ei__nn_geom *g = j->g;
  const int64_t H = g->in[0], W = g->in[1], OH = g->out[0], OW = g->out[1];
  for (int64_t r = r0; r < r1; r++) {
    const int64_t plane = r / OH, oy = r % OH;
    const float *xp = j->x + plane * H * W;
    float *yr = j->y + r * OW;
    int64_t base, klo, khi;
    window_dim(g, 0, oy, &base, &klo, &khi);
    ei__f32_pool_row pr;
    pr.kh = (int)(khi - klo);
    for (int64_t ki = klo; ki < khi; ki++) pr.rows[ki - klo] = xp + (base + ki) * W;
    pr.kw = (int)g->k[1];
    pr.sw = (int)g->s[1];
    pr.pl = g->pb[1];
    pr.W = W;
    const int64_t lo = pr.kh > 0 ? j->lo : OW; /* no valid row: every output is -inf, as the reference */
    for (int64_t ox = 0; ox < OW; ox++) {
      if (ox == lo && lo < j->hi) {
        j->simd->maxpool_row(&pr, yr, lo, j->hi);
        ox = j->hi - 1;
        continue;
      }
      int64_t cb, clo, chi;
      window_dim(g, 1, ox, &cb, &clo, &chi);
      float m = -INFINITY;
      for (int ki = 0; ki < pr.kh; ki++)
        for (int64_t kj = clo; kj < chi; kj++) m = pr.rows[ki][cb + kj] > m ? pr.rows[ki][cb + kj] : m;
      yr[ox] = m;
    }
  }
}

static void maxpool_rows(ei__run *c, const ei__nn_geom *g) {
  maxpool_rows_job j = {g, ei__f32_simd_get(ei__isa_current()), c->in[0].data, c->out[0].data, 0, 0};
  const int64_t W = g->in[1], OW = g->out[1], kw = g->k[1], sw = g->s[1], pl = g->pb[1];
  /* Interior: ox*sw - pl >= 0 and ox*sw - pl + kw - 1 <= W - 1. */
  int64_t lo = (pl + sw - 1) / sw, last = W - kw + pl, hi = last < 0 ? 0 : last / sw + 1;
  if (lo > OW) lo = OW;
  if (hi > OW) hi = OW;
  if (hi < lo) hi = lo;
  j.lo = lo;
  j.hi = hi;
  const int64_t rows = c->in[0].dims[0] * c->in[0].dims[1] * g->out[0], per = OW * g->k[0] * kw + 1;
  ei__parallel_for(c->pool, rows, per >= 8192 ? 1 : 8192 / per + 1, maxpool_rows_task, &j);
}

static void pool_task(void *arg, int64_t t0, int64_t t1) {
  const pool_job *j = arg;
  for (int64_t t = t0; t < t1; t++) {
    if (!j->p->is_max)
      avgpool_plane(j, t);
    else if (j->dt == EI_FLOAT)
      maxpool_f32(j, t);
    else if (j->dt == EI_UINT8)
      maxpool_u8(j, t);
    else
      maxpool_i8(j, t);
  }
}

ei_status ei__pool_run(ei__run *c) {
  const pool_params *p = c->node->params;
  ei__nn_geom g;
  ei_status st = pool_geom(c->node, p, &c->in[0], &g, c->err, c->errlen);
  if (st) return st;
  pool_job j;
  memset(&j, 0, sizeof j);
  j.p = p;
  j.g = &g;
  j.dt = c->in[0].dtype;
  j.x = c->in[0].data;
  j.y = c->out[0].data;
  j.ind = p->want_indices && c->nout >= 2 ? c->out[1].data : NULL;
  j.in_size = ei__nn_prod(g.in, g.S);
  j.out_size = ei__nn_prod(g.out, g.S);
  j.istride[g.S - 1] = 1;
  for (int i = g.S - 2; i >= 0; i--) j.istride[i] = j.istride[i + 1] * g.in[i + 1];
  if (p->fast && !j.ind && g.S == 2 && (j.dt == EI_UINT8 || j.dt == EI_INT8) && g.d[0] == 1 && g.d[1] == 1) {
    /* uint8 / int8 2-D max pool: the SIMD byte kernel of q8_kernels.h */
    ei__q8_maxpool_args qa = {j.x, j.y, c->in[0].dims[0] * c->in[0].dims[1], g.in[0], g.in[1], g.out[0], g.out[1],
                              g.k[0], g.k[1], g.s[0], g.s[1], g.pb[0], g.pb[1], j.dt == EI_INT8};
    if (ei__q8_maxpool2d_ok(&qa)) {
      ei__q8_maxpool2d(&qa, c->pool);
      return EI_OK;
    }
  }
  if (maxpool_rows_ok(&j)) {
    maxpool_rows(c, &g);
    return EI_OK;
  }
  const int64_t planes = c->in[0].dims[0] * c->in[0].dims[1];
  const int64_t per = ei__nn_mul_sat(j.out_size, ei__nn_prod(g.k, g.S)) + 1;
  ei__parallel_for(c->pool, planes, per >= 8192 ? 1 : 8192 / per + 1, pool_task, &j);
  return EI_OK;
}

/* ---- GlobalAveragePool / GlobalMaxPool ---- */

ei_status ei__global_pool_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  (void)g;
  if (n->nin < 1 || n->in[0] < 0) return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "input X is required");
  return EI_OK;
}

const char *ei__global_pool_kernel_name(const ei__node *n) {
  return !strcmp(n->op_type, "GlobalMaxPool") ? "f32_global_maxpool" : "f32_global_avgpool";
}

ei_status ei__global_pool_infer(ei__infer *c) {
  if (c->nout < 1 || !ei__nn_has(c->nin, c->in, 0)) return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "input X is required");
  const ei__tensor *x = &c->in[0];
  if (x->dtype != EI_FLOAT)
    return EI_NODE_ERR(c, EI_E_UNSUPPORTED, "input X has type %s (float32 supported)", ei_dtype_name(x->dtype));
  if (x->rank < 2)
    return EI_NODE_ERR(c, EI_E_SHAPE, "input X has rank %d (at least 2: N, C, spatial...)", x->rank);
  ei__tensor *y = &c->out[0];
  y->dtype = EI_FLOAT;
  y->rank = x->rank;
  y->dims[0] = x->dims[0];
  y->dims[1] = x->dims[1];
  for (int i = 2; i < x->rank; i++) y->dims[i] = 1;
  return ei__nn_check_numel(c, x->dims, x->rank, "input X");
}

typedef struct gpool_job {
  const float *x;
  float *y;
  int64_t size;
  int is_max;
} gpool_job;

static void gpool_task(void *arg, int64_t t0, int64_t t1) {
  const gpool_job *j = arg;
  for (int64_t t = t0; t < t1; t++) {
    const float *xp = j->x + t * j->size;
    if (j->is_max) {
      float m = -INFINITY;
      for (int64_t i = 0; i < j->size; i++) m = xp[i] > m ? xp[i] : m;
      j->y[t] = m;
    } else {
      /* four partial sums: shorter dependency chain, vectorisable */
      float s[4] = {0.f, 0.f, 0.f, 0.f};
      int64_t i = 0;
      for (; i + 4 <= j->size; i += 4)
        for (int k = 0; k < 4; k++) s[k] += xp[i + k];
      for (; i < j->size; i++) s[0] += xp[i];
      j->y[t] = j->size ? (s[0] + s[1] + s[2] + s[3]) / (float)j->size : NAN;
    }
  }
}

ei_status ei__global_pool_run(ei__run *c) {
  const ei__tensor *x = &c->in[0];
  gpool_job j = {x->data, c->out[0].data, ei__nn_prod(x->dims + 2, x->rank - 2),
                 !strcmp(c->node->op_type, "GlobalMaxPool")};
  const int64_t planes = x->dims[0] * x->dims[1];
  ei__parallel_for(c->pool, planes, j.size >= 8192 ? 1 : 8192 / (j.size + 1) + 1, gpool_task, &j);
  return EI_OK;
}
