/* LRN (local response normalisation across channels):
 * Y[n,c,...] = X[n,c,...] / (bias + alpha / size * sum_{i in window(c)} X[n,i,...]^2) ^ beta, where the
 * window is [c - floor((size-1)/2), c + ceil((size-1)/2)] clipped to [0, C). */
#include <math.h>
#include <string.h>

#include "kernels/ref/nn.h"

typedef struct lrn_params {
  int64_t size;
  float alpha, beta, bias;
} lrn_params;

ei_status ei__lrn_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  (void)g;
  lrn_params *p = ei__calloc(1, sizeof *p);
  if (!p) return EI_E_NOMEM;
  n->params = p;
  const ei__attr *sz = ei__attr_find(n, "size");
  if (!sz || sz->type != EI_ATTR_INT)
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "the int attribute size is required");
  if (sz->i < 1 || sz->i > EI_NN_MAX_ATTR)
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "size = %lld must be >= 1", (long long)sz->i);
  p->size = sz->i;
  p->alpha = ei__attr_float(n, "alpha", 1e-4f);
  p->beta = ei__attr_float(n, "beta", 0.75f);
  p->bias = ei__attr_float(n, "bias", 1.0f);
  if (!isfinite(p->alpha) || !isfinite(p->beta) || !isfinite(p->bias))
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "alpha, beta and bias must be finite");
  if (n->nin < 1 || n->in[0] < 0) return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "input X is required");
  return EI_OK;
}

const char *ei__lrn_kernel_name(const ei__node *n) {
  (void)n;
  return "f32_lrn";
}

ei_status ei__lrn_infer(ei__infer *c) {
  if (c->nout < 1 || !ei__nn_has(c->nin, c->in, 0)) return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "input X is required");
  const ei__tensor *x = &c->in[0];
  if (x->dtype != EI_FLOAT)
    return EI_NODE_ERR(c, EI_E_UNSUPPORTED, "input X has type %s (float32 supported)", ei_dtype_name(x->dtype));
  if (x->rank < 2) return EI_NODE_ERR(c, EI_E_SHAPE, "input X has rank %d (at least 2: N, C, ...)", x->rank);
  ei_status st = ei__nn_check_numel(c, x->dims, x->rank, "input X");
  if (st) return st;
  ei__tensor *y = &c->out[0];
  y->dtype = EI_FLOAT;
  y->rank = x->rank;
  memcpy(y->dims, x->dims, sizeof y->dims);
  return EI_OK;
}

typedef struct lrn_job {
  const lrn_params *p;
  const float *x;
  float *y;
  int64_t C, inner;
} lrn_job;

/* One (n, c) plane per task index. */
static void lrn_task(void *arg, int64_t t0, int64_t t1) {
  const lrn_job *j = arg;
  const int64_t half_lo = (j->p->size - 1) / 2, half_hi = j->p->size - 1 - half_lo;
  const float scale = j->p->alpha / (float)j->p->size;
  for (int64_t t = t0; t < t1; t++) {
    const int64_t n = t / j->C, ch = t % j->C;
    const int64_t c0 = ch - half_lo < 0 ? 0 : ch - half_lo;
    const int64_t c1 = ch + half_hi >= j->C ? j->C - 1 : ch + half_hi;
    const float *xn = j->x + n * j->C * j->inner;
    const float *xp = xn + ch * j->inner;
    float *yp = j->y + t * j->inner;
    for (int64_t i0 = 0; i0 < j->inner; i0 += 256) { /* blocks of 256 positions: channel rows stay contiguous */
      const int64_t nb = j->inner - i0 < 256 ? j->inner - i0 : 256;
      float sq[256];
      for (int64_t i = 0; i < nb; i++) sq[i] = 0.f;
      for (int64_t k = c0; k <= c1; k++) {
        const float *xk = xn + k * j->inner + i0;
        for (int64_t i = 0; i < nb; i++) sq[i] += xk[i] * xk[i];
      }
      for (int64_t i = 0; i < nb; i++) yp[i0 + i] = xp[i0 + i] / powf(j->p->bias + scale * sq[i], j->p->beta);
    }
  }
}

ei_status ei__lrn_run(ei__run *c) {
  const ei__tensor *x = &c->in[0];
  lrn_job j = {c->node->params, x->data, c->out[0].data, x->dims[1], ei__nn_prod(x->dims + 2, x->rank - 2)};
  const int64_t per = ei__nn_mul_sat(j.inner, j.p->size) + 1;
  ei__parallel_for(c->pool, x->dims[0] * x->dims[1], per >= 8192 ? 1 : 8192 / per + 1, lrn_task, &j);
  return EI_OK;
}
