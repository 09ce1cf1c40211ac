/* Expand: numpy (bidirectional) broadcast of the input to a shape given by an input known at plan time. The
 * copy is a strided view with zero strides on the broadcast axes. */
#include <stdio.h>

#include "kernels/ref/tensor_ops.h"

ei_status ei__expand_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  (void)g;
  if (n->nin < 2 || n->in[1] < 0) return EI_INIT_ERR(n, err, errlen, EI_E_INVALID_MODEL, "needs the shape input");
  return EI_OK;
}

ei_status ei__expand_infer(ei__infer *c) {
  ei_status s = ei__tops_check_input(c, 0, "input");
  if (s) return s;
  ei__tensor shape, out;
  memset(&shape, 0, sizeof shape);
  memset(&out, 0, sizeof out);
  int n;
  if ((s = ei__tops_read_ints(c, 1, "shape", shape.dims, EI_MAX_DIMS, &n))) return s;
  shape.rank = n;
  for (int i = 0; i < n; i++)
    if (shape.dims[i] < 0) return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "shape[%d] is %lld", i, (long long)shape.dims[i]);
  if ((s = ei__broadcast_shape(&c->in[0], &shape, &out, c->err, c->errlen))) {
    char msg[192];
    snprintf(msg, sizeof msg, "%s", c->err && c->errlen ? c->err : "");
    return EI_NODE_ERR(c, s, "%s", msg);
  }
  return ei__tops_set_out(c, 0, c->in[0].dtype, out.rank, out.dims);
}

ei_status ei__expand_run(ei__run *c) {
  const ei__tensor *x = &c->in[0];
  const ei__tensor *y = &c->out[0];
  int64_t xs[EI_MAX_DIMS], st[EI_MAX_DIMS];
  ei__tops_strides(x->rank, x->dims, xs);
  int lead = y->rank - x->rank;
  for (int i = 0; i < y->rank; i++) {
    int j = i - lead;
    st[i] = (j < 0 || x->dims[j] == 1) ? 0 : xs[j];
  }
  ei__tops_strided_copy(y->data, x->data, 0, ei_dtype_size(x->dtype), y->rank, y->dims, st, c->pool);
  return EI_OK;
}
