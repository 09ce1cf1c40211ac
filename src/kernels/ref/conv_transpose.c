/* ConvTranspose: scalar reference for any spatial rank (group, dilations, strides, pads, output_padding,
 * output_shape, auto_pad), optional bias and fused activation. Each task owns one (n, output channel) plane
 * and scatters every input point of its group into it. */
#include <string.h>

#include "kernels/ref/nn.h"

typedef struct ct_params {
  ei__nn_attrs a;
} ct_params;

typedef struct ct_shape {
  ei__nn_geom g;
  int64_t N, C, M, group, Mg; /* M = Mg * group output channels */
} ct_shape;

ei_status ei__convtranspose_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  ct_params *p = ei__calloc(1, sizeof *p);
  if (!p) return EI_E_NOMEM;
  n->params = p;
  ei_status st = ei__nn_attrs_parse(n, &p->a, err, errlen);
  if (st) return st;
  if (n->nin < 2 || n->in[0] < 0 || n->in[1] < 0)
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "ConvTranspose needs inputs X and W");
  const ei__value *w = ei__node_const_input(g, n, 1);
  if (w) {
    if (w->dtype != EI_FLOAT)
      return EI_NN_ERR(n, err, errlen, EI_E_UNSUPPORTED, "weight '%s' has type %s (float32 supported)", w->name,
                       ei_dtype_name(w->dtype));
    if (w->rank < 3)
      return EI_NN_ERR(n, err, errlen, EI_E_SHAPE, "weight '%s' has rank %d (at least 3)", w->name, w->rank);
    if (w->dims[0] % p->a.group)
      return EI_NN_ERR(n, err, errlen, EI_E_SHAPE, "weight '%s' has %lld input channels, not a multiple of group %lld",
                       w->name, (long long)w->dims[0], (long long)p->a.group);
  }
  return EI_OK;
}

const char *ei__convtranspose_kernel_name(const ei__node *n) {
  (void)n;
  return "f32_convtranspose_ref";
}

static ei_status ct_get_shape(const ei__node *node, const ct_params *p, int nin, const ei__tensor *in, ct_shape *s,
                              char *err, size_t errlen) {
  const ei__tensor *x = &in[0], *w = &in[1];
  if (x->dtype != EI_FLOAT || w->dtype != EI_FLOAT)
    return EI_NN_ERR(node, err, errlen, EI_E_UNSUPPORTED, "X and W must be float32 (got %s and %s)",
                     ei_dtype_name(x->dtype), ei_dtype_name(w->dtype));
  if (x->rank < 3 || x->rank > EI_MAX_DIMS)
    return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "input X has rank %d (3 to %d supported: N, C, spatial...)",
                     x->rank, EI_MAX_DIMS);
  if (w->rank != x->rank)
    return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "input W has rank %d, X has rank %d", w->rank, x->rank);
  for (int i = 0; i < x->rank; i++)
    if (x->dims[i] < 0 || w->dims[i] < 0) return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "negative dimension in X or W");
  const int64_t group = p->a.group;
  if (x->dims[1] % group)
    return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "X has %lld channels, not a multiple of group %lld",
                     (long long)x->dims[1], (long long)group);
  if (w->dims[0] != x->dims[1])
    return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "W has %lld input channels but X has %lld", (long long)w->dims[0],
                     (long long)x->dims[1]);
  s->N = x->dims[0];
  s->C = x->dims[1];
  s->Mg = w->dims[1];
  s->group = group;
  if (__builtin_mul_overflow(s->Mg, group, &s->M))
    return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "output channel count overflows");
  if (ei__nn_has(nin, in, 2)) {
    const ei__tensor *b = &in[2];
    if (b->dtype != EI_FLOAT)
      return EI_NN_ERR(node, err, errlen, EI_E_UNSUPPORTED, "input B has type %s (float32 supported)",
                       ei_dtype_name(b->dtype));
    if (b->rank != 1 || b->dims[0] != s->M)
      return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "input B must be a vector of %lld values", (long long)s->M);
  }
  return ei__nn_geom_transpose(node, &p->a, x->rank - 2, x->dims + 2, w->dims + 2, &s->g, err, errlen);
}

ei_status ei__convtranspose_infer(ei__infer *c) {
  const ct_params *p = c->node->params;
  if (c->nout < 1 || !ei__nn_has(c->nin, c->in, 0) || !ei__nn_has(c->nin, c->in, 1))
    return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "inputs X and W are required");
  ct_shape s;
  ei_status st = ct_get_shape(c->node, p, c->nin, c->in, &s, c->err, c->errlen);
  if (st) return st;
  ei__tensor *y = &c->out[0];
  y->dtype = EI_FLOAT;
  y->rank = s.g.S + 2;
  y->dims[0] = s.N;
  y->dims[1] = s.M;
  for (int i = 0; i < s.g.S; i++) y->dims[2 + i] = s.g.out[i];
  if ((st = ei__nn_check_numel(c, y->dims, y->rank, "output Y"))) return st;
  int64_t macs = ei__nn_mul_sat(ei__nn_mul_sat(s.N, s.C), ei__nn_prod(s.g.in, s.g.S));
  c->macs = ei__nn_mul_sat(macs, ei__nn_mul_sat(s.Mg, ei__nn_prod(s.g.k, s.g.S)));
  return EI_OK;
}

typedef struct ct_job {
  const ct_shape *s;
  const float *x, *w, *b;
  float *y;
  const ei__act *act;
} ct_job;

/* Valid kernel taps [lo, hi) for an input point mapped to base = i*s - pb: 0 <= base + k*d < out. */
static void tap_range(int64_t base, int64_t d, int64_t k, int64_t out, int64_t *lo, int64_t *hi) {
  int64_t l = base < 0 ? (-base + d - 1) / d : 0;
  int64_t h = out - 1 - base < 0 ? 0 : (out - 1 - base) / d + 1;
  if (h > k) h = k;
  *lo = l;
  *hi = h > l ? h : l;
}

static void ct_task(void *arg, int64_t t0, int64_t t1) {
  const ct_job *j = arg;
  const ct_shape *s = j->s;
  const ei__nn_geom *g = &s->g;
  const int S = g->S;
  const int64_t Cg = s->C / s->group;
  const int64_t in_size = ei__nn_prod(g->in, S), out_size = ei__nn_prod(g->out, S), k_size = ei__nn_prod(g->k, S);
  int64_t ostride[EI_NN_MAX_SPATIAL], kstride[EI_NN_MAX_SPATIAL];
  ostride[S - 1] = kstride[S - 1] = 1;
  for (int i = S - 2; i >= 0; i--) {
    ostride[i] = ostride[i + 1] * g->out[i + 1];
    kstride[i] = kstride[i + 1] * g->k[i + 1];
  }
  for (int64_t t = t0; t < t1; t++) {
    const int64_t n = t / s->M, m = t % s->M, grp = m / s->Mg, mo = m % s->Mg;
    float *yp = j->y + t * out_size;
    const float bias = j->b ? j->b[m] : 0.f;
    for (int64_t q = 0; q < out_size; q++) yp[q] = bias;
    for (int64_t c = 0; c < Cg; c++) {
      const int64_t ci = grp * Cg + c;
      const float *xp = j->x + (n * s->C + ci) * in_size;
      const float *wp = j->w + (ci * s->Mg + mo) * k_size;
      int64_t ii[EI_NN_MAX_SPATIAL] = {0};
      for (int64_t ip = 0; ip < in_size; ip++) {
        const float xv = xp[ip];
        int64_t base[EI_NN_MAX_SPATIAL], lo[EI_NN_MAX_SPATIAL], hi[EI_NN_MAX_SPATIAL], kk[EI_NN_MAX_SPATIAL];
        int empty = 0;
        for (int i = 0; i < S; i++) {
          base[i] = ii[i] * g->s[i] - g->pb[i];
          tap_range(base[i], g->d[i], g->k[i], g->out[i], &lo[i], &hi[i]);
          if (lo[i] >= hi[i]) empty = 1;
          kk[i] = lo[i];
        }
        while (!empty) {
          int64_t yo = 0, wo = 0;
          for (int i = 0; i < S - 1; i++) {
            yo += (base[i] + kk[i] * g->d[i]) * ostride[i];
            wo += kk[i] * kstride[i];
          }
          /* innermost dimension as a loop */
          const int L = S - 1;
          for (int64_t k = lo[L]; k < hi[L]; k++) yp[yo + base[L] + k * g->d[L]] += xv * wp[wo + k];
          int i = S - 2;
          for (; i >= 0; i--) {
            if (++kk[i] < hi[i]) break;
            kk[i] = lo[i];
          }
          if (i < 0) break;
        }
        for (int i = S - 1; i >= 0; i--) {
          if (++ii[i] < g->in[i]) break;
          ii[i] = 0;
        }
      }
    }
    if (j->act) ei__f32_act_inplace(j->act, yp, out_size);
  }
}

ei_status ei__convtranspose_run(ei__run *c) {
  const ct_params *p = c->node->params;
  ct_shape s;
  ei_status st = ct_get_shape(c->node, p, c->nin, c->in, &s, c->err, c->errlen);
  if (st) return st;
  ct_job j = {&s, c->in[0].data, c->in[1].data, ei__nn_has(c->nin, c->in, 2) ? c->in[2].data : NULL,
              c->out[0].data, ei__nn_act(c->node)};
  const int64_t per = ei__nn_mul_sat(ei__nn_mul_sat(ei__nn_prod(s.g.in, s.g.S), s.C / s.group), ei__nn_prod(s.g.k, s.g.S));
  ei__parallel_for(c->pool, s.N * s.M, per >= 16384 ? 1 : 16384 / (per + 1) + 1, ct_task, &j);
  return EI_OK;
}
