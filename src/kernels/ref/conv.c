/* Conv: attribute/shape validation, the choice between the scalar reference ("f32_conv_ref", any spatial
 * rank) and the fast 1-D/2-D paths of conv_fast.c (weights packed once in init), and the reference kernel. */
#include <stdint.h>
#include <string.h>

#include "kernels/ref/nn.h"

typedef struct conv_params {
  ei__nn_attrs a;
  int path;           /* EI_CONV_*; EI_CONV_REF reads W and B from the inputs at run */
  ei__isa isa;        /* kernel level chosen at init (the packed layout depends on it) */
  int wrank;          /* rank of W when packed */
  int64_t wdims[EI_MAX_DIMS];
  float *wpack;       /* packed weights (fast paths) */
  float *bias;        /* [M], zeros when B is absent (fast paths) */
} conv_params;

/* ---- reference kernel ---- */

typedef struct conv_ref_job {
  const ei__conv_shape *s;
  const float *x, *w, *b;
  float *y;
  const ei__act *act;
} conv_ref_job;

/* One (n, m) output plane per task index. */
static void conv_ref_task(void *arg, int64_t t0, int64_t t1) {
  const conv_ref_job *j = arg;
  const ei__conv_shape *s = j->s;
  const ei__nn_geom *g = &s->g;
  const int S = g->S;
  const int64_t Cg = s->C / s->group, Mg = s->M / s->group;
  const int64_t in_size = ei__nn_prod(g->in, S), out_size = ei__nn_prod(g->out, S), k_size = ei__nn_prod(g->k, S);
  int64_t in_stride[EI_NN_MAX_SPATIAL];
  in_stride[S - 1] = 1;
  for (int i = S - 2; i >= 0; i--) in_stride[i] = in_stride[i + 1] * g->in[i + 1];

  for (int64_t t = t0; t < t1; t++) {
    const int64_t n = t / s->M, m = t % s->M, grp = m / Mg;
    const float *xg = j->x + (n * s->C + grp * Cg) * in_size;
    const float *wm = j->w + m * Cg * k_size;
    float *yp = j->y + t * out_size;
    const float bias = j->b ? j->b[m] : 0.f;
    int64_t o[EI_NN_MAX_SPATIAL] = {0};
    for (int64_t op = 0; op < out_size; op++) {
      int64_t start[EI_NN_MAX_SPATIAL], kk[EI_NN_MAX_SPATIAL] = {0};
      for (int i = 0; i < S; i++) start[i] = o[i] * g->s[i] - g->pb[i];
      float acc = bias;
      for (int64_t kp = 0; kp < k_size; kp++) {
        int64_t off = 0;
        int inside = 1;
        for (int i = 0; i < S; i++) {
          const int64_t p = start[i] + kk[i] * g->d[i];
          if (p < 0 || p >= g->in[i]) {
            inside = 0;
            break;
          }
          off += p * in_stride[i];
        }
        if (inside)
          for (int64_t c = 0; c < Cg; c++) acc += xg[c * in_size + off] * wm[c * k_size + kp];
        for (int i = S - 1; i >= 0; i--) { /* next kernel position */
          if (++kk[i] < g->k[i]) break;
          kk[i] = 0;
        }
      }
      yp[op] = j->act ? ei__act_apply(j->act, acc) : acc;
      for (int i = S - 1; i >= 0; i--) { /* next output position */
        if (++o[i] < g->out[i]) break;
        o[i] = 0;
      }
    }
  }
}

void ei__f32_conv_ref(const ei__conv_shape *s, const float *x, const float *w, const float *b, float *y,
                      const ei__act *act, ei_threadpool *pool) {
  conv_ref_job j = {s, x, w, b, y, act};
  const int64_t per_plane =
      ei__nn_mul_sat(ei__nn_mul_sat(ei__nn_prod(s->g.out, s->g.S), s->C / s->group), ei__nn_prod(s->g.k, s->g.S));
  const int64_t min_chunk = per_plane >= 16384 ? 1 : 16384 / (per_plane + 1) + 1;
  ei__parallel_for(pool, s->N * s->M, min_chunk, conv_ref_task, &j);
}

/* ---- op ---- */

/* Checks W's dims against group (and B's when constant) at init. */
static ei_status check_w(const ei__node *n, const ei__nn_attrs *a, const ei__value *w, char *err, size_t errlen) {
  if (w->dtype != EI_FLOAT)
    return EI_NN_ERR(n, err, errlen, EI_E_UNSUPPORTED, "weight '%s' has type %s (float32 supported)", w->name,
                     ei_dtype_name(w->dtype));
  if (w->rank < 3 || w->rank > EI_MAX_DIMS)
    return EI_NN_ERR(n, err, errlen, EI_E_SHAPE, "weight '%s' has rank %d (3 to %d supported)", w->name, w->rank,
                     EI_MAX_DIMS);
  if (w->dims[0] % a->group)
    return EI_NN_ERR(n, err, errlen, EI_E_SHAPE, "weight '%s' has %lld output channels, not a multiple of group %lld",
                     w->name, (long long)w->dims[0], (long long)a->group);
  for (int i = 2; i < w->rank; i++)
    if (w->dims[i] < 1)
      return EI_NN_ERR(n, err, errlen, EI_E_SHAPE, "weight '%s' has kernel dimension %d = %lld", w->name, i - 2,
                       (long long)w->dims[i]);
  return EI_OK;
}

ei_status ei__conv_init_impl(ei__graph *g, ei__node *n, int allow_fast, char *err, size_t errlen) {
  conv_params *p = ei__calloc(1, sizeof *p);
  if (!p) return EI_E_NOMEM;
  n->params = p;
  ei_status st = ei__nn_attrs_parse(n, &p->a, err, errlen);
  if (st) return st;
  if (n->nin < 2 || n->in[0] < 0 || n->in[1] < 0)
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "Conv needs inputs X and W");
  const ei__value *w = ei__node_const_input(g, n, 1);
  const ei__value *b = ei__nn_node_has(n, 2) ? ei__node_const_input(g, n, 2) : NULL;
  p->path = EI_CONV_REF;
  if (w && (st = check_w(n, &p->a, w, err, errlen))) return st;
  if (b && (b->dtype != EI_FLOAT || b->rank != 1 || (w && b->dims[0] != w->dims[0])))
    return EI_NN_ERR(n, err, errlen, EI_E_SHAPE, "bias '%s' must be a float32 vector of %lld values", b->name,
                     (long long)(w ? w->dims[0] : -1));
  if (!allow_fast || !w || (ei__nn_node_has(n, 2) && !b)) return EI_OK;

  int path = ei__conv_fast_path(&p->a, w->rank, w->dims);
  if (path == EI_CONV_REF) return EI_OK;
  const int64_t M = w->dims[0];
  p->isa = ei__isa_current();
  size_t nw = ei__conv_packed_floats(path, p->isa, w->dims, w->rank, p->a.group), bytes;
  if (nw == SIZE_MAX || !ei__mul_size(nw + (size_t)M + 16, sizeof(float), &bytes))
    return EI_NN_ERR(n, err, errlen, EI_E_LIMIT, "weight '%s' is too large to pack", w->name);
  p->wpack = ei__malloc(nw ? nw * sizeof(float) : sizeof(float));
  p->bias = ei__calloc((size_t)M + 1, sizeof(float));
  if (!p->wpack || !p->bias) return EI_E_NOMEM;
  ei__conv_pack(path, p->isa, w->dims, w->rank, p->a.group, (const float *)w->data, p->wpack);
  if (b) memcpy(p->bias, b->data, (size_t)M * sizeof(float));
  p->path = path;
  p->wrank = w->rank;
  memcpy(p->wdims, w->dims, sizeof p->wdims);
  n->packed_inputs |= 1u << 1;
  if (ei__nn_node_has(n, 2)) n->packed_inputs |= 1u << 2;
  n->params_bytes = bytes;
  return EI_OK;
}

ei_status ei__conv_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  return ei__conv_init_impl(g, n, ei__isa_current() != EI_ISA_REF, err, errlen);
}

void ei__conv_fini(ei__node *n) {
  conv_params *p = n->params;
  if (!p) return;
  ei__free(p->wpack);
  ei__free(p->bias);
  ei__free(p);
  n->params = NULL;
}

const char *ei__conv_kernel_name(const ei__node *n) {
  const conv_params *p = n->params;
  return p && p->path != EI_CONV_REF ? ei__conv_fast_name(p->path, p->isa) : "f32_conv_ref";
}

/* Validates X, W, B and fills the conv shape (used by infer and run). */
static ei_status conv_shape(const ei__node *node, const conv_params *p, int nin, const ei__tensor *in,
                            ei__conv_shape *s, char *err, size_t errlen) {
  const ei__tensor *x = &in[0], *w = &in[1];
  const int64_t *wd = p->path != EI_CONV_REF ? p->wdims : w->dims;
  const int wr = p->path != EI_CONV_REF ? p->wrank : w->rank;
  if (x->dtype != EI_FLOAT)
    return EI_NN_ERR(node, err, errlen, EI_E_UNSUPPORTED, "input X has type %s (float32 supported)",
                     ei_dtype_name(x->dtype));
  if (p->path == EI_CONV_REF && w->dtype != EI_FLOAT)
    return EI_NN_ERR(node, err, errlen, EI_E_UNSUPPORTED, "input W has type %s (float32 supported)",
                     ei_dtype_name(w->dtype));
  if (x->rank < 3 || x->rank > EI_MAX_DIMS)
    return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "input X has rank %d (3 to %d supported: N, C, spatial...)",
                     x->rank, EI_MAX_DIMS);
  if (wr != x->rank)
    return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "input W has rank %d, X has rank %d", wr, x->rank);
  for (int i = 0; i < x->rank; i++)
    if (x->dims[i] < 0 || wd[i] < 0)
      return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "negative dimension in X or W");
  const int64_t group = p->a.group;
  if (wd[0] % group)
    return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "W has %lld output channels, not a multiple of group %lld",
                     (long long)wd[0], (long long)group);
  if (x->dims[1] % group || x->dims[1] / group != wd[1])
    return EI_NN_ERR(node, err, errlen, EI_E_SHAPE,
                     "X has %lld channels but W expects %lld per group x %lld groups", (long long)x->dims[1],
                     (long long)wd[1], (long long)group);
  if (ei__nn_has(nin, in, 2)) {
    const ei__tensor *b = &in[2];
    if (p->path == EI_CONV_REF && b->dtype != EI_FLOAT)
      return EI_NN_ERR(node, err, errlen, EI_E_UNSUPPORTED, "input B has type %s (float32 supported)",
                       ei_dtype_name(b->dtype));
    if (b->rank != 1 || b->dims[0] != wd[0])
      return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "input B must be a vector of %lld values", (long long)wd[0]);
  }
  s->N = x->dims[0];
  s->C = x->dims[1];
  s->M = wd[0];
  s->group = group;
  return ei__nn_geom_forward(node, &p->a, x->rank - 2, x->dims + 2, wd + 2, 0, &s->g, err, errlen);
}

ei_status ei__conv_infer(ei__infer *c) {
  const conv_params *p = c->node->params;
  if (c->nin < 2 || c->nout < 1 || !ei__nn_has(c->nin, c->in, 0) || !ei__nn_has(c->nin, c->in, 1))
    return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "inputs X and W are required");
  ei__conv_shape s;
  ei_status st = conv_shape(c->node, p, c->nin, c->in, &s, c->err, c->errlen);
  if (st) return st;
  ei__tensor *y = &c->out[0];
  y->dtype = EI_FLOAT;
  y->rank = s.g.S + 2;
  y->dims[0] = s.N;
  y->dims[1] = s.M;
  for (int i = 0; i < s.g.S; i++) y->dims[2 + i] = s.g.out[i];
  if ((st = ei__nn_check_numel(c, y->dims, y->rank, "output Y")) ||
      (st = ei__nn_check_numel(c, c->in[1].dims, c->in[1].rank, "input W")))
    return st;
  /* MACs: N * M * out_size * Cg * k_size */
  int64_t macs = ei__nn_mul_sat(ei__nn_mul_sat(s.N, s.M), ei__nn_prod(s.g.out, s.g.S));
  macs = ei__nn_mul_sat(macs, ei__nn_mul_sat(s.C / s.group, ei__nn_prod(s.g.k, s.g.S)));
  c->macs = macs;
  c->workspace = p->path != EI_CONV_REF ? ei__conv_fast_workspace(p->path, p->isa, &s) : 0;
  if (c->workspace == SIZE_MAX)
    return EI_NODE_ERR(c, EI_E_LIMIT, "strides, dilations and pads make the padded input too large");
  return EI_OK;
}

ei_status ei__conv_run(ei__run *c) {
  const conv_params *p = c->node->params;
  ei__conv_shape s;
  ei_status st = conv_shape(c->node, p, c->nin, c->in, &s, c->err, c->errlen);
  if (st) return st;
  const ei__act *act = ei__nn_act(c->node);
  const float *x = c->in[0].data;
  float *y = c->out[0].data;
  if (p->path == EI_CONV_REF) {
    const float *b = ei__nn_has(c->nin, c->in, 2) ? c->in[2].data : NULL;
    ei__f32_conv_ref(&s, x, c->in[1].data, b, y, act, c->pool);
  } else {
    ei__f32_conv_fast(p->path, p->isa, &s, x, p->wpack, p->bias, y, act, c->workspace, c->pool);
  }
  return EI_OK;
}
