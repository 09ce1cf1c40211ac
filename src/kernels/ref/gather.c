/* Gather along one axis with int32/int64 indices of any rank (negative indices count from the end). Indices are
 * checked before anything is written: an out-of-range index is a run-time error, never an out-of-bounds read. */
#include "kernels/ref/tensor_ops.h"

ei_status ei__gather_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  (void)g;
  if (n->nin < 2 || n->in[1] < 0) return EI_INIT_ERR(n, err, errlen, EI_E_INVALID_MODEL, "needs the indices input");
  return ei__tops_attr_type(n, "axis", EI_ATTR_INT, err, errlen);
}

ei_status ei__gather_infer(ei__infer *c) {
  ei_status s;
  if ((s = ei__tops_check_input(c, 0, "data")) || (s = ei__tops_check_input(c, 1, "indices"))) return s;
  const ei__tensor *x = &c->in[0], *ind = &c->in[1];
  if (ind->dtype != EI_INT64 && ind->dtype != EI_INT32)
    return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "indices must be int32 or int64, not %s", ei_dtype_name(ind->dtype));
  if (x->rank < 1) return EI_NODE_ERR(c, EI_E_SHAPE, "data must have rank >= 1");
  int64_t a = ei__attr_int(c->node, "axis", 0);
  int axis = ei__norm_axis(a, x->rank);
  if (axis < 0) return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "axis %lld is out of range for rank %d", (long long)a, x->rank);
  int r = x->rank - 1 + ind->rank;
  if (r > EI_MAX_DIMS)
    return EI_NODE_ERR(c, EI_E_UNSUPPORTED, "output would have rank %d (at most %d)", r, EI_MAX_DIMS);
  int64_t dims[EI_MAX_DIMS];
  int k = 0;
  for (int d = 0; d < axis; d++) dims[k++] = x->dims[d];
  for (int d = 0; d < ind->rank; d++) dims[k++] = ind->dims[d];
  for (int d = axis + 1; d < x->rank; d++) dims[k++] = x->dims[d];
  return ei__tops_set_out(c, 0, x->dtype, r, dims);
}

static int64_t index_at(const ei__tensor *ind, int64_t k) {
  if (ind->dtype == EI_INT32) return ((const int32_t *)ind->data)[k];
  return ((const int64_t *)ind->data)[k];
}

ei_status ei__gather_run(ei__run *c) {
  const ei__tensor *x = &c->in[0], *ind = &c->in[1];
  int axis = ei__norm_axis(ei__attr_int(c->node, "axis", 0), x->rank);
  int64_t n = ei__numel(ind), size = x->dims[axis];
  for (int64_t k = 0; k < n; k++) {
    int64_t v = index_at(ind, k);
    if (v < -size || v >= size)
      return EI_NODE_ERR(c, EI_E_RUNTIME, "index %lld (element %lld of indices) is out of range for axis %d of size %lld",
                         (long long)v, (long long)k, axis, (long long)size);
  }
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; d++) outer *= x->dims[d];
  for (int d = axis + 1; d < x->rank; d++) inner *= x->dims[d];
  size_t nb = (size_t)inner * ei_dtype_size(x->dtype);
  if (!nb || !n || !outer) return EI_OK;
  const char *src = x->data;
  char *dst = c->out[0].data;
  for (int64_t o = 0; o < outer; o++) {
    for (int64_t k = 0; k < n; k++) {
      int64_t v = index_at(ind, k);
      if (v < 0) v += size;
      memcpy(dst, src + (size_t)(o * size + v) * nb, nb);
      dst += nb;
    }
  }
  return EI_OK;
}
