/* Reference Softmax. Before opset 13 the input is coerced to 2-D at `axis` (default 1) and each row is
 * normalised; from opset 13 the normalisation runs along `axis` alone (default -1). Numerically stable: the
 * maximum of each lane is subtracted before exponentiation. */
#include <math.h>

#include "kernels/ref/elementwise.h"

typedef struct softmax_params {
  int64_t axis;
  int legacy; /* opset < 13: 2-D coercion */
} softmax_params;

ei_status ei__ew_softmax_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  (void)g;
  if (n->nin != 1)
    return ei__err(err, errlen, EI_E_INVALID_MODEL, "Softmax node '%s': %d inputs (expected 1)", n->name, n->nin);
  softmax_params *p = ei__calloc(1, sizeof *p);
  if (!p) return EI_E_NOMEM;
  p->legacy = n->opset < 13;
  p->axis = ei__attr_int(n, "axis", p->legacy ? 1 : -1);
  n->params = p;
  return EI_OK;
}

/* The lanes: outer x inner lanes of n elements each, element k of lane (o, j) at (o * n + k) * inner + j. */
typedef struct softmax_geom {
  int64_t outer, n, inner;
} softmax_geom;

static ei_status softmax_geometry(const ei__node *node, const ei__tensor *x, softmax_geom *g, char *err,
                                  size_t errlen) {
  const softmax_params *p = node->params;
  int r = x->rank;
  int64_t axis = p->axis;
  int64_t lo = -(int64_t)r, hi = p->legacy ? r : r - 1;
  if (r < 1 || axis < lo || axis > hi)
    return ei__err(err, errlen, EI_E_INVALID_MODEL, "Softmax node '%s': axis %lld is out of range for rank %d",
                   node->name, (long long)axis, r);
  if (axis < 0) axis += r;
  g->outer = g->n = g->inner = 1;
  for (int i = 0; i < r; i++) {
    if (i < axis)
      g->outer *= x->dims[i];
    else if (i == axis || p->legacy)
      g->n *= x->dims[i];
    else
      g->inner *= x->dims[i];
  }
  return EI_OK;
}

ei_status ei__ew_softmax_infer(ei__infer *c) {
  if (!c->node->params) return EI_NODE_ERR(c, EI_E_INTERNAL, "not initialised");
  ei_status s = ei__ew_check_input(c, 0);
  if (s) return s;
  if (c->in[0].dtype != EI_FLOAT)
    return EI_NODE_ERR(c, EI_E_UNSUPPORTED, "input type %s is not supported", ei_dtype_name(c->in[0].dtype));
  softmax_geom g;
  s = softmax_geometry(c->node, &c->in[0], &g, c->err, c->errlen);
  if (s) return s;
  ei__ew_set_shape(&c->out[0], &c->in[0], EI_FLOAT);
  return EI_OK;
}

typedef struct softmax_job {
  softmax_geom g;
  const float *x;
  float *y;
} softmax_job;

/* One contiguous lane of n values. */
static void softmax_lane(const float *x, float *y, int64_t n) {
  float mx = -INFINITY;
  for (int64_t k = 0; k < n; k++)
    if (x[k] > mx || x[k] != x[k]) mx = x[k];
  double sum = 0;
  for (int64_t k = 0; k < n; k++) {
    float e = expf(x[k] - mx);
    y[k] = e;
    sum += e;
  }
  float inv = (float)(1.0 / sum);
  for (int64_t k = 0; k < n; k++) y[k] *= inv;
}

#define SM_BLOCK 256

/* Lanes [j0, j0 + m) of outer block o, strided by inner: processed together so memory is read in rows. */
static void softmax_block(const softmax_geom *g, const float *x, float *y, int64_t j0, int64_t m) {
  float mx[SM_BLOCK];
  double sum[SM_BLOCK];
  const int64_t st = g->inner;
  for (int64_t j = 0; j < m; j++) {
    mx[j] = -INFINITY;
    sum[j] = 0;
  }
  for (int64_t k = 0; k < g->n; k++) {
    const float *xr = x + k * st + j0;
    for (int64_t j = 0; j < m; j++)
      if (xr[j] > mx[j] || xr[j] != xr[j]) mx[j] = xr[j];
  }
  for (int64_t k = 0; k < g->n; k++) {
    const float *xr = x + k * st + j0;
    float *yr = y + k * st + j0;
    for (int64_t j = 0; j < m; j++) {
      float e = expf(xr[j] - mx[j]);
      yr[j] = e;
      sum[j] += e;
    }
  }
  for (int64_t j = 0; j < m; j++) mx[j] = (float)(1.0 / sum[j]);
  for (int64_t k = 0; k < g->n; k++) {
    float *yr = y + k * st + j0;
    for (int64_t j = 0; j < m; j++) yr[j] *= mx[j];
  }
}

/* Work items: with inner == 1, one per lane; otherwise one per (outer, block of SM_BLOCK inner lanes). */
static void softmax_range(void *arg, int64_t b, int64_t e) {
  const softmax_job *j = arg;
  const softmax_geom *g = &j->g;
  if (g->inner == 1) {
    for (int64_t i = b; i < e; i++) softmax_lane(j->x + i * g->n, j->y + i * g->n, g->n);
    return;
  }
  int64_t nblk = (g->inner + SM_BLOCK - 1) / SM_BLOCK;
  for (int64_t i = b; i < e; i++) {
    int64_t o = i / nblk, j0 = (i % nblk) * SM_BLOCK;
    int64_t m = g->inner - j0 < SM_BLOCK ? g->inner - j0 : SM_BLOCK;
    size_t base = (size_t)(o * g->n * g->inner);
    softmax_block(g, j->x + base, j->y + base, j0, m);
  }
}

ei_status ei__ew_softmax_run(ei__run *c) {
  if (!c->node->params) return EI_NODE_ERR(c, EI_E_INTERNAL, "not initialised");
  softmax_job j;
  ei_status s = softmax_geometry(c->node, &c->in[0], &j.g, c->err, c->errlen);
  if (s) return s;
  j.x = c->in[0].data;
  j.y = c->out[0].data;
  if (j.g.n == 0 || j.g.outer == 0 || j.g.inner == 0) return EI_OK;
  int64_t items, per_item;
  if (j.g.inner == 1) {
    items = j.g.outer;
    per_item = j.g.n;
  } else {
    items = j.g.outer * ((j.g.inner + SM_BLOCK - 1) / SM_BLOCK);
    per_item = j.g.n * (j.g.inner < SM_BLOCK ? j.g.inner : SM_BLOCK);
  }
  int64_t min_chunk = 4096 / (per_item > 0 ? per_item : 1);
  ei__parallel_for(c->pool, items, min_chunk > 1 ? min_chunk : 1, softmax_range, &j);
  return EI_OK;
}
