/* The view operators: Flatten, Reshape, Squeeze, Unsqueeze. Their output is input 0's bytes under a new shape
 * (EI_OPF_ALIAS), so run only copies when the planner could not make the output share the input's storage. */
#include "kernels/ref/tensor_ops.h"

/* ---- Flatten ---- */

ei_status ei__flatten_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  (void)g;
  return ei__tops_attr_type(n, "axis", EI_ATTR_INT, err, errlen);
}

ei_status ei__flatten_infer(ei__infer *c) {
  ei_status s = ei__tops_check_input(c, 0, "input");
  if (s) return s;
  const ei__tensor *x = &c->in[0];
  int64_t axis = ei__attr_int(c->node, "axis", 1);
  if (axis < -(int64_t)x->rank || axis > x->rank)
    return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "axis %lld is out of range for rank %d", (long long)axis, x->rank);
  if (axis < 0) axis += x->rank;
  int64_t dims[2] = {1, 1};
  for (int i = 0; i < x->rank; i++) dims[i < axis ? 0 : 1] *= x->dims[i];
  return ei__tops_set_out(c, 0, x->dtype, 2, dims);
}

ei_status ei__flatten_run(ei__run *c) { return ei__tops_alias_run(c); }

/* ---- Reshape ---- */

ei_status ei__reshape_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  (void)g;
  if (n->nin < 2 || n->in[1] < 0)
    return EI_INIT_ERR(n, err, errlen, EI_E_INVALID_MODEL, "needs the shape input");
  return ei__tops_attr_type(n, "allowzero", EI_ATTR_INT, err, errlen);
}

ei_status ei__reshape_infer(ei__infer *c) {
  ei_status s = ei__tops_check_input(c, 0, "data");
  if (s) return s;
  const ei__tensor *x = &c->in[0];
  int64_t shape[EI_MAX_DIMS];
  int n;
  s = ei__tops_read_ints(c, 1, "shape", shape, EI_MAX_DIMS, &n);
  if (s) return s;
  int allowzero = c->node->opset >= 14 && ei__attr_int(c->node, "allowzero", 0) != 0;
  int infer_at = -1, has_zero = 0;
  int64_t known = 1;
  for (int i = 0; i < n; i++) {
    int64_t d = shape[i];
    if (d == -1) {
      if (infer_at >= 0) return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "shape has more than one -1");
      infer_at = i;
      continue;
    }
    if (d < -1) return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "shape[%d] is %lld", i, (long long)d);
    if (d == 0) {
      has_zero = 1;
      if (!allowzero) {
        if (i >= x->rank)
          return EI_NODE_ERR(c, EI_E_SHAPE, "shape[%d] is 0 (copy) but the input has rank %d", i, x->rank);
        d = shape[i] = x->dims[i];
      }
    }
    if (__builtin_mul_overflow(known, d, &known) || known > EI_TOPS_MAX_NUMEL)
      return EI_NODE_ERR(c, EI_E_SHAPE, "shape is too large");
  }
  if (allowzero && has_zero && infer_at >= 0)
    return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "shape has both 0 and -1 while allowzero is set");
  int64_t total = ei__numel(x);
  if (infer_at >= 0) {
    if (known == 0)
      return EI_NODE_ERR(c, EI_E_SHAPE, "cannot infer the -1 in shape: the other dimensions multiply to 0");
    if (total % known)
      return EI_NODE_ERR(c, EI_E_SHAPE, "cannot reshape %lld elements with the other dimensions multiplying to %lld",
                         (long long)total, (long long)known);
    shape[infer_at] = total / known;
  } else if (known != total) {
    return EI_NODE_ERR(c, EI_E_SHAPE, "cannot reshape %lld elements into a shape of %lld elements", (long long)total,
                       (long long)known);
  }
  return ei__tops_set_out(c, 0, x->dtype, n, shape);
}

ei_status ei__reshape_run(ei__run *c) { return ei__tops_alias_run(c); }

/* ---- Squeeze / Unsqueeze: axes come from an attribute before opset 13, from input 1 since ---- */

static ei_status axes_init(ei__node *n, int required, char *err, size_t errlen) {
  if (n->opset >= 13) {
    if (ei__attr_find(n, "axes"))
      return EI_INIT_ERR(n, err, errlen, EI_E_INVALID_MODEL, "axes is an input since opset 13, not an attribute");
    if (required && (n->nin < 2 || n->in[1] < 0))
      return EI_INIT_ERR(n, err, errlen, EI_E_INVALID_MODEL, "needs the axes input");
    return EI_OK;
  }
  ei_status s = ei__tops_attr_type(n, "axes", EI_ATTR_INTS, err, errlen);
  if (s) return s;
  if (required && !ei__attr_find(n, "axes"))
    return EI_INIT_ERR(n, err, errlen, EI_E_INVALID_MODEL, "needs the axes attribute");
  return EI_OK;
}

/* Reads the axes (attribute or input); *n = -1 when none are given. */
static ei_status axes_read(ei__infer *c, int64_t *axes, int *n) {
  *n = -1;
  if (c->node->opset >= 13) {
    if (!ei__tops_present(c->nin, c->in, 1)) return EI_OK;
    return ei__tops_read_ints(c, 1, "axes", axes, EI_MAX_DIMS, n);
  }
  const int64_t *v;
  int cnt = ei__attr_ints(c->node, "axes", &v);
  if (cnt < 0) return EI_OK;
  if (cnt > EI_MAX_DIMS) return EI_NODE_ERR(c, EI_E_UNSUPPORTED, "axes has %d values (at most %d)", cnt, EI_MAX_DIMS);
  for (int i = 0; i < cnt; i++) axes[i] = v[i];
  *n = cnt;
  return EI_OK;
}

ei_status ei__squeeze_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  (void)g;
  return axes_init(n, 0, err, errlen);
}

ei_status ei__squeeze_infer(ei__infer *c) {
  ei_status s = ei__tops_check_input(c, 0, "data");
  if (s) return s;
  const ei__tensor *x = &c->in[0];
  int64_t axes[EI_MAX_DIMS];
  int n, ax[EI_MAX_DIMS];
  if ((s = axes_read(c, axes, &n))) return s;
  unsigned drop = 0;
  if (n > 0) {
    if ((s = ei__tops_norm_axes(c, "axes", axes, n, x->rank, ax))) return s;
    for (int i = 0; i < n; i++) {
      if (x->dims[ax[i]] != 1)
        return EI_NODE_ERR(c, EI_E_SHAPE, "cannot squeeze axis %d of size %lld", ax[i], (long long)x->dims[ax[i]]);
      drop |= 1u << ax[i];
    }
  } else {
    for (int i = 0; i < x->rank; i++)
      if (x->dims[i] == 1) drop |= 1u << i;
  }
  int64_t dims[EI_MAX_DIMS];
  int r = 0;
  for (int i = 0; i < x->rank; i++)
    if (!(drop & (1u << i))) dims[r++] = x->dims[i];
  return ei__tops_set_out(c, 0, x->dtype, r, dims);
}

ei_status ei__squeeze_run(ei__run *c) { return ei__tops_alias_run(c); }

ei_status ei__unsqueeze_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  (void)g;
  return axes_init(n, 1, err, errlen);
}

ei_status ei__unsqueeze_infer(ei__infer *c) {
  ei_status s = ei__tops_check_input(c, 0, "data");
  if (s) return s;
  const ei__tensor *x = &c->in[0];
  int64_t axes[EI_MAX_DIMS];
  int n, ax[EI_MAX_DIMS];
  if ((s = axes_read(c, axes, &n))) return s;
  if (n < 0) return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "needs axes");
  int r = x->rank + n;
  if (r > EI_MAX_DIMS)
    return EI_NODE_ERR(c, EI_E_UNSUPPORTED, "output would have rank %d (at most %d)", r, EI_MAX_DIMS);
  if ((s = ei__tops_norm_axes(c, "axes", axes, n, r, ax))) return s;
  unsigned ins = 0;
  for (int i = 0; i < n; i++) ins |= 1u << ax[i];
  int64_t dims[EI_MAX_DIMS];
  for (int i = 0, j = 0; i < r; i++) dims[i] = (ins & (1u << i)) ? 1 : x->dims[j++];
  return ei__tops_set_out(c, 0, x->dtype, r, dims);
}

ei_status ei__unsqueeze_run(ei__run *c) { return ei__tops_alias_run(c); }
