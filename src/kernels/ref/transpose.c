/* Transpose: any rank, any element type. The copy goes through the strided copy engine (tensor.c), which merges
 * axes that stay adjacent and switches to a blocked 2-D transpose when the innermost input axis moves (the
 * NCHW <-> NHWC case). */
#include "kernels/ref/tensor_ops.h"

ei_status ei__transpose_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  (void)g;
  ei_status s = ei__tops_attr_type(n, "perm", EI_ATTR_INTS, err, errlen);
  if (s) return s;
  const int64_t *perm;
  int np = ei__attr_ints(n, "perm", &perm);
  if (np > EI_MAX_DIMS)
    return EI_INIT_ERR(n, err, errlen, EI_E_UNSUPPORTED, "perm has %d values (at most %d)", np, EI_MAX_DIMS);
  return EI_OK;
}

/* The permutation for rank r (default: reversed axes), validated. */
static ei_status get_perm(ei__infer *ic, const ei__node *node, int r, int *perm) {
  const int64_t *p;
  int np = ei__attr_ints(node, "perm", &p);
  if (np < 0) {
    for (int i = 0; i < r; i++) perm[i] = r - 1 - i;
    return EI_OK;
  }
  if (np != r) {
    if (ic) return EI_NODE_ERR(ic, EI_E_INVALID_MODEL, "perm has %d values for an input of rank %d", np, r);
    return EI_E_INVALID_MODEL;
  }
  unsigned seen = 0;
  for (int i = 0; i < r; i++) {
    if (p[i] < 0 || p[i] >= r || (seen & (1u << p[i]))) {
      if (ic) return EI_NODE_ERR(ic, EI_E_INVALID_MODEL, "perm is not a permutation of 0..%d (perm[%d] = %lld)",
                                 r - 1, i, (long long)p[i]);
      return EI_E_INVALID_MODEL;
    }
    seen |= 1u << p[i];
    perm[i] = (int)p[i];
  }
  return EI_OK;
}

ei_status ei__transpose_infer(ei__infer *c) {
  ei_status s = ei__tops_check_input(c, 0, "data");
  if (s) return s;
  const ei__tensor *x = &c->in[0];
  int perm[EI_MAX_DIMS];
  if ((s = get_perm(c, c->node, x->rank, perm))) return s;
  int64_t dims[EI_MAX_DIMS];
  for (int i = 0; i < x->rank; i++) dims[i] = x->dims[perm[i]];
  return ei__tops_set_out(c, 0, x->dtype, x->rank, dims);
}

ei_status ei__transpose_run(ei__run *c) {
  const ei__tensor *x = &c->in[0];
  int perm[EI_MAX_DIMS];
  if (get_perm(NULL, c->node, x->rank, perm)) return EI_NODE_ERR(c, EI_E_INTERNAL, "bad perm at run time");
  int64_t xs[EI_MAX_DIMS], dims[EI_MAX_DIMS], st[EI_MAX_DIMS];
  ei__tops_strides(x->rank, x->dims, xs);
  for (int i = 0; i < x->rank; i++) {
    dims[i] = x->dims[perm[i]];
    st[i] = xs[perm[i]];
  }
  ei__tops_strided_copy(c->out[0].data, x->data, 0, ei_dtype_size(x->dtype), x->rank, dims, st, c->pool);
  return EI_OK;
}

const char *ei__transpose_kernel(const ei__node *n) {
  (void)n;
  return "ref_transpose_strided";
}
