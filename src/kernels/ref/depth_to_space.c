/* DepthToSpace (DCR and CRD modes) and SpaceToDepth on 4-D NCHW tensors of any element type. Both are a
 * reshape to 6-D, a transpose and a reshape back: the copy is one 6-D strided view (strided copy engine). */
#include "kernels/ref/tensor_ops.h"

typedef struct d2s_params {
  int64_t b;
  int crd; /* DepthToSpace mode CRD (column-row-depth) instead of DCR */
} d2s_params;

static ei_status d2s_common_init(ei__node *n, int has_mode, char *err, size_t errlen) {
  ei_status s;
  if ((s = ei__tops_attr_type(n, "blocksize", EI_ATTR_INT, err, errlen))) return s;
  if ((s = ei__tops_attr_type(n, "mode", EI_ATTR_STRING, err, errlen))) return s;
  const ei__attr *a = ei__attr_find(n, "blocksize");
  if (!a) return EI_INIT_ERR(n, err, errlen, EI_E_INVALID_MODEL, "needs the blocksize attribute");
  if (a->i < 1 || a->i > (1 << 20))
    return EI_INIT_ERR(n, err, errlen, EI_E_INVALID_MODEL, "blocksize %lld is out of range", (long long)a->i);
  int crd = 0;
  if (has_mode) {
    const char *mode = ei__attr_str(n, "mode", "DCR");
    if (!strcmp(mode, "CRD")) crd = 1;
    else if (strcmp(mode, "DCR"))
      return EI_INIT_ERR(n, err, errlen, EI_E_INVALID_MODEL, "mode '%s' is not DCR or CRD", mode);
  }
  d2s_params *p = ei__calloc(1, sizeof *p);
  if (!p) return EI_E_NOMEM;
  p->b = a->i;
  p->crd = crd;
  n->params = p;
  return EI_OK;
}

static ei_status check_4d(ei__infer *c) {
  ei_status s = ei__tops_check_input(c, 0, "input");
  if (s) return s;
  if (c->in[0].rank != 4) return EI_NODE_ERR(c, EI_E_SHAPE, "input must be 4-D (NCHW), not of rank %d", c->in[0].rank);
  return EI_OK;
}

/* ---- DepthToSpace ---- */

ei_status ei__depth_to_space_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  (void)g;
  return d2s_common_init(n, n->opset >= 11, err, errlen);
}

ei_status ei__depth_to_space_infer(ei__infer *c) {
  ei_status s = check_4d(c);
  if (s) return s;
  const d2s_params *p = c->node->params;
  const int64_t *d = c->in[0].dims;
  int64_t bb = p->b * p->b;
  if (d[1] % bb)
    return EI_NODE_ERR(c, EI_E_SHAPE, "channels %lld are not a multiple of blocksize^2 = %lld", (long long)d[1],
                       (long long)bb);
  int64_t out[4] = {d[0], d[1] / bb, 0, 0};
  if (__builtin_mul_overflow(d[2], p->b, &out[2]) || __builtin_mul_overflow(d[3], p->b, &out[3]))
    return EI_NODE_ERR(c, EI_E_SHAPE, "output is too large");
  return ei__tops_set_out(c, 0, c->in[0].dtype, 4, out);
}

ei_status ei__depth_to_space_run(ei__run *c) {
  const d2s_params *p = c->node->params;
  const ei__tensor *x = &c->in[0];
  int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3], b = p->b, Co = C / (b * b);
  int64_t hw = H * W;
  /* output viewed as [N, Co, H, b1, W, b2] */
  int64_t dims[6] = {N, Co, H, b, W, b};
  int64_t sc, sb1, sb2;
  if (p->crd) { /* input channels ordered [Co, b1, b2] */
    sc = b * b * hw;
    sb1 = b * hw;
    sb2 = hw;
  } else { /* DCR: input channels ordered [b1, b2, Co] */
    sb1 = b * Co * hw;
    sb2 = Co * hw;
    sc = hw;
  }
  int64_t st[6] = {C * hw, sc, W, sb1, 1, sb2};
  ei__tops_strided_copy(c->out[0].data, x->data, 0, ei_dtype_size(x->dtype), 6, dims, st, c->pool);
  return EI_OK;
}

/* ---- SpaceToDepth ---- */

ei_status ei__space_to_depth_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  (void)g;
  return d2s_common_init(n, 0, err, errlen);
}

ei_status ei__space_to_depth_infer(ei__infer *c) {
  ei_status s = check_4d(c);
  if (s) return s;
  const d2s_params *p = c->node->params;
  const int64_t *d = c->in[0].dims;
  if (d[2] % p->b || d[3] % p->b)
    return EI_NODE_ERR(c, EI_E_SHAPE, "height %lld and width %lld must be multiples of blocksize %lld",
                       (long long)d[2], (long long)d[3], (long long)p->b);
  int64_t out[4] = {d[0], 0, d[2] / p->b, d[3] / p->b};
  if (__builtin_mul_overflow(d[1], p->b * p->b, &out[1])) return EI_NODE_ERR(c, EI_E_SHAPE, "output is too large");
  return ei__tops_set_out(c, 0, c->in[0].dtype, 4, out);
}

ei_status ei__space_to_depth_run(ei__run *c) {
  const d2s_params *p = c->node->params;
  const ei__tensor *x = &c->in[0];
  int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3], b = p->b;
  /* input viewed as [N, C, Ho, b1, Wo, b2]; output is [N, b1, b2, C, Ho, Wo] */
  int64_t dims[6] = {N, b, b, C, H / b, W / b};
  int64_t st[6] = {C * H * W, W, 1, H * W, b * W, b};
  ei__tops_strided_copy(c->out[0].data, x->data, 0, ei_dtype_size(x->dtype), 6, dims, st, c->pool);
  return EI_OK;
}
