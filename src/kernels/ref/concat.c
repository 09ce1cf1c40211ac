/* Concat and Split along one axis: any rank >= 1, any element type. Both copy whole contiguous blocks
 * (dims[axis:] of each part) per outer index. */
#include <stdio.h>

#include "kernels/ref/tensor_ops.h"

/* ---- Concat ---- */

ei_status ei__concat_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  (void)g;
  ei_status s = ei__tops_attr_type(n, "axis", EI_ATTR_INT, err, errlen);
  if (s) return s;
  if (n->opset >= 4 && !ei__attr_find(n, "axis"))
    return EI_INIT_ERR(n, err, errlen, EI_E_INVALID_MODEL, "needs the axis attribute");
  if (n->nin < 1) return EI_INIT_ERR(n, err, errlen, EI_E_INVALID_MODEL, "needs at least one input");
  return EI_OK;
}

ei_status ei__concat_infer(ei__infer *c) {
  ei_status s;
  char what[32];
  for (int i = 0; i < c->nin; i++) {
    snprintf(what, sizeof what, "%d", i);
    if ((s = ei__tops_check_input(c, i, what))) return s;
  }
  if (c->nin < 1) return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "needs at least one input");
  const ei__tensor *x = &c->in[0];
  if (x->rank < 1) return EI_NODE_ERR(c, EI_E_SHAPE, "cannot concatenate scalars");
  int64_t a = ei__attr_int(c->node, "axis", 1);
  int axis = ei__norm_axis(a, x->rank);
  if (axis < 0) return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "axis %lld is out of range for rank %d", (long long)a, x->rank);
  int64_t dims[EI_MAX_DIMS];
  memcpy(dims, x->dims, sizeof dims);
  for (int i = 1; i < c->nin; i++) {
    const ei__tensor *t = &c->in[i];
    if (t->dtype != x->dtype)
      return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "input %d is %s but input 0 is %s", i, ei_dtype_name(t->dtype),
                         ei_dtype_name(x->dtype));
    if (t->rank != x->rank)
      return EI_NODE_ERR(c, EI_E_SHAPE, "input %d has rank %d but input 0 has rank %d", i, t->rank, x->rank);
    for (int d = 0; d < x->rank; d++) {
      if (d == axis) continue;
      if (t->dims[d] != x->dims[d])
        return EI_NODE_ERR(c, EI_E_SHAPE, "input %d has dimension %d of size %lld, input 0 has %lld", i, d,
                           (long long)t->dims[d], (long long)x->dims[d]);
    }
    if (__builtin_add_overflow(dims[axis], t->dims[axis], &dims[axis]))
      return EI_NODE_ERR(c, EI_E_SHAPE, "output is too large");
  }
  return ei__tops_set_out(c, 0, x->dtype, x->rank, dims);
}

ei_status ei__concat_run(ei__run *c) {
  const ei__tensor *x = &c->in[0];
  int axis = ei__norm_axis(ei__attr_int(c->node, "axis", 1), x->rank);
  size_t es = ei_dtype_size(x->dtype);
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; d++) outer *= x->dims[d];
  for (int d = axis + 1; d < x->rank; d++) inner *= x->dims[d];
  char *dst = c->out[0].data;
  for (int64_t o = 0; o < outer; o++) {
    for (int i = 0; i < c->nin; i++) {
      size_t nb = (size_t)(c->in[i].dims[axis] * inner) * es;
      if (!nb) continue;
      memcpy(dst, (const char *)c->in[i].data + (size_t)o * nb, nb);
      dst += nb;
    }
  }
  return EI_OK;
}

/* ---- Split ---- */

/* Where the split sizes come from: a list (attribute or input) or equal chunks with a smaller last one. */
typedef struct split_sizes {
  const int64_t *list;     /* split attribute */
  const ei__tensor *input; /* split input */
  int64_t chunk, dim;
  int n;
} split_sizes;

static int64_t split_size(const split_sizes *z, int j) {
  if (z->list) return z->list[j];
  if (z->input) return ei__get_int(z->input, j);
  return j == z->n - 1 ? z->dim - z->chunk * (z->n - 1) : z->chunk;
}

ei_status ei__split_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  (void)g;
  ei_status s;
  if ((s = ei__tops_attr_type(n, "axis", EI_ATTR_INT, err, errlen))) return s;
  if ((s = ei__tops_attr_type(n, "split", EI_ATTR_INTS, err, errlen))) return s;
  if ((s = ei__tops_attr_type(n, "num_outputs", EI_ATTR_INT, err, errlen))) return s;
  if (n->nout < 1) return EI_INIT_ERR(n, err, errlen, EI_E_INVALID_MODEL, "needs at least one output");
  if (n->opset >= 13 && ei__attr_find(n, "split"))
    return EI_INIT_ERR(n, err, errlen, EI_E_INVALID_MODEL, "split is an input since opset 13, not an attribute");
  if (n->opset >= 18 && ei__attr_find(n, "num_outputs")) {
    if (n->nin >= 2 && n->in[1] >= 0)
      return EI_INIT_ERR(n, err, errlen, EI_E_INVALID_MODEL, "has both the split input and num_outputs");
    int64_t no = ei__attr_int(n, "num_outputs", 0);
    if (no != n->nout)
      return EI_INIT_ERR(n, err, errlen, EI_E_INVALID_MODEL, "num_outputs is %lld but the node has %d outputs",
                         (long long)no, n->nout);
  }
  return EI_OK;
}

/* Fills z for a split of `dim` into c->nout parts; ic (may be NULL at run time) receives errors. */
static ei_status split_plan(ei__infer *ic, const ei__node *node, int nin, const ei__tensor *in, int nout,
                            int64_t dim, split_sizes *z) {
  memset(z, 0, sizeof *z);
  z->n = nout;
  z->dim = dim;
  if (node->opset < 13) {
    int cnt = ei__attr_ints(node, "split", &z->list);
    if (cnt < 0) z->list = NULL;
    else if (cnt != nout) {
      if (!ic) return EI_E_INVALID_MODEL;
      return EI_NODE_ERR(ic, EI_E_INVALID_MODEL, "split has %d values for %d outputs", cnt, nout);
    }
  } else if (ei__tops_present(nin, in, 1) && ei__tops_numel(in[1].rank, in[1].dims) != 0) {
    const ei__tensor *t = &in[1]; /* an empty split input counts as absent */
    if (ic) {
      if (t->dtype != EI_INT64 && t->dtype != EI_INT32)
        return EI_NODE_ERR(ic, EI_E_INVALID_MODEL, "input split must be int64, not %s", ei_dtype_name(t->dtype));
      if (t->rank != 1 || t->dims[0] != nout)
        return EI_NODE_ERR(ic, EI_E_SHAPE, "input split must be 1-D with %d values", nout);
      if (!t->data) return EI_NODE_ERR(ic, EI_E_SHAPE, "input split must be known when shapes are planned");
    }
    z->input = t;
  }
  if (!z->list && !z->input) {
    if (node->opset < 18 && dim % nout) {
      if (!ic) return EI_E_SHAPE;
      return EI_NODE_ERR(ic, EI_E_SHAPE, "cannot split dimension %lld into %d equal parts", (long long)dim, nout);
    }
    z->chunk = dim / nout + (dim % nout ? 1 : 0);
    if (dim - z->chunk * (nout - 1) < 0) {
      if (!ic) return EI_E_SHAPE;
      return EI_NODE_ERR(ic, EI_E_SHAPE, "cannot split dimension %lld into %d parts of %lld", (long long)dim, nout,
                         (long long)z->chunk);
    }
  }
  return EI_OK;
}

ei_status ei__split_infer(ei__infer *c) {
  ei_status s = ei__tops_check_input(c, 0, "input");
  if (s) return s;
  const ei__tensor *x = &c->in[0];
  if (x->rank < 1) return EI_NODE_ERR(c, EI_E_SHAPE, "cannot split a scalar");
  int64_t a = ei__attr_int(c->node, "axis", 0);
  int axis = ei__norm_axis(a, x->rank);
  if (axis < 0) return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "axis %lld is out of range for rank %d", (long long)a, x->rank);
  split_sizes z;
  if ((s = split_plan(c, c->node, c->nin, c->in, c->nout, x->dims[axis], &z))) return s;
  int64_t sum = 0, dims[EI_MAX_DIMS];
  memcpy(dims, x->dims, sizeof dims);
  for (int j = 0; j < c->nout; j++) {
    int64_t sz = split_size(&z, j);
    if (sz < 0 || sz > x->dims[axis])
      return EI_NODE_ERR(c, EI_E_SHAPE, "split size %d is %lld for a dimension of %lld", j, (long long)sz,
                         (long long)x->dims[axis]);
    sum += sz;
    if (sum > x->dims[axis]) break;
    dims[axis] = sz;
    if ((s = ei__tops_set_out(c, j, x->dtype, x->rank, dims))) return s;
  }
  if (sum != x->dims[axis])
    return EI_NODE_ERR(c, EI_E_SHAPE, "split sizes do not add up to the dimension %lld", (long long)x->dims[axis]);
  return EI_OK;
}

ei_status ei__split_run(ei__run *c) {
  const ei__tensor *x = &c->in[0];
  int axis = ei__norm_axis(ei__attr_int(c->node, "axis", 0), x->rank);
  split_sizes z;
  if (axis < 0 || split_plan(NULL, c->node, c->nin, c->in, c->nout, x->dims[axis], &z))
    return EI_NODE_ERR(c, EI_E_INTERNAL, "split parameters changed after planning");
  size_t es = ei_dtype_size(x->dtype);
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; d++) outer *= x->dims[d];
  for (int d = axis + 1; d < x->rank; d++) inner *= x->dims[d];
  size_t row = (size_t)(x->dims[axis] * inner) * es, off = 0;
  const char *src = x->data;
  for (int j = 0; j < c->nout; j++) {
    size_t nb = (size_t)(split_size(&z, j) * inner) * es;
    char *dst = c->out[j].data;
    if (nb && dst && (j >= c->node->nout || c->node->out[j] >= 0))
      for (int64_t o = 0; o < outer; o++) memcpy(dst + (size_t)o * nb, src + (size_t)o * row + off, nb);
    off += nb;
  }
  return EI_OK;
}
