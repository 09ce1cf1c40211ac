/* Slice: numpy-style slicing with per-axis starts, ends and steps (negative steps, negative indices, values
 * clamped to the dimension, INT64_MIN/INT64_MAX meaning "to the end"). Before opset 10 starts/ends/axes are
 * attributes; since, they are inputs (with an optional steps input) that must be known when shapes are
 * planned. The copy is a strided view handed to the strided copy engine. */
#include "kernels/ref/tensor_ops.h"

/* Per-axis slice of a tensor: first element, step and count along every axis. */
typedef struct slice_plan {
  int64_t start[EI_MAX_DIMS], step[EI_MAX_DIMS], count[EI_MAX_DIMS];
} slice_plan;

ei_status ei__slice_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  (void)g;
  if (n->opset < 10) {
    ei_status s;
    static const char *const names[] = {"starts", "ends", "axes"};
    for (int i = 0; i < 3; i++)
      if ((s = ei__tops_attr_type(n, names[i], EI_ATTR_INTS, err, errlen))) return s;
    if (!ei__attr_find(n, "starts") || !ei__attr_find(n, "ends"))
      return EI_INIT_ERR(n, err, errlen, EI_E_INVALID_MODEL, "needs the starts and ends attributes");
    return EI_OK;
  }
  if (n->nin < 3 || n->in[1] < 0 || n->in[2] < 0)
    return EI_INIT_ERR(n, err, errlen, EI_E_INVALID_MODEL, "needs the starts and ends inputs");
  return EI_OK;
}

/* Reads list `which` (0 starts, 1 ends, 2 axes, 3 steps) into v; *n = -1 if absent. ic may be NULL at run. */
static ei_status read_list(ei__infer *ic, const ei__node *node, int nin, const ei__tensor *in, int which,
                           int64_t *v, int *n) {
  static const char *const names[] = {"starts", "ends", "axes", "steps"};
  *n = -1;
  if (node->opset < 10) {
    if (which == 3) return EI_OK;
    const int64_t *a;
    int cnt = ei__attr_ints(node, names[which], &a);
    if (cnt < 0) return EI_OK;
    if (cnt > EI_MAX_DIMS) {
      if (!ic) return EI_E_UNSUPPORTED;
      return EI_NODE_ERR(ic, EI_E_UNSUPPORTED, "%s has %d values (at most %d)", names[which], cnt, EI_MAX_DIMS);
    }
    memcpy(v, a, (size_t)cnt * sizeof *v);
    *n = cnt;
    return EI_OK;
  }
  int idx = which + 1;
  if (!ei__tops_present(nin, in, idx)) return EI_OK;
  if (ic) return ei__tops_read_ints(ic, idx, names[which], v, EI_MAX_DIMS, n);
  int64_t cnt = ei__numel(&in[idx]);
  if (cnt > EI_MAX_DIMS) return EI_E_UNSUPPORTED;
  for (int64_t k = 0; k < cnt; k++) v[k] = ei__get_int(&in[idx], k);
  *n = (int)cnt;
  return EI_OK;
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* Computes the slice of x; ic (NULL at run time) receives errors. */
static ei_status plan_slice(ei__infer *ic, const ei__node *node, int nin, const ei__tensor *in, slice_plan *p) {
  const ei__tensor *x = &in[0];
  int64_t starts[EI_MAX_DIMS], ends[EI_MAX_DIMS], axes[EI_MAX_DIMS], steps[EI_MAX_DIMS];
  int ns, ne, na, nst, ax[EI_MAX_DIMS];
  ei_status s;
  if ((s = read_list(ic, node, nin, in, 0, starts, &ns)) || (s = read_list(ic, node, nin, in, 1, ends, &ne)) ||
      (s = read_list(ic, node, nin, in, 2, axes, &na)) || (s = read_list(ic, node, nin, in, 3, steps, &nst)))
    return s;
  if (ns < 0 || ne < 0) {
    if (!ic) return EI_E_INVALID_MODEL;
    return EI_NODE_ERR(ic, EI_E_INVALID_MODEL, "needs starts and ends");
  }
  if (ne != ns || (na >= 0 && na != ns) || (nst >= 0 && nst != ns)) {
    if (!ic) return EI_E_INVALID_MODEL;
    return EI_NODE_ERR(ic, EI_E_INVALID_MODEL, "starts, ends, axes and steps have different lengths (%d, %d, %d, %d)",
                       ns, ne, na, nst);
  }
  if (na < 0) {
    if (ns > x->rank) {
      if (!ic) return EI_E_INVALID_MODEL;
      return EI_NODE_ERR(ic, EI_E_INVALID_MODEL, "%d starts for an input of rank %d", ns, x->rank);
    }
    for (int i = 0; i < ns; i++) ax[i] = i;
  } else if (ic) {
    if ((s = ei__tops_norm_axes(ic, "axes", axes, na, x->rank, ax))) return s;
  } else {
    for (int i = 0; i < na; i++) ax[i] = (int)(axes[i] < 0 ? axes[i] + x->rank : axes[i]);
  }
  for (int d = 0; d < x->rank; d++) {
    p->start[d] = 0;
    p->step[d] = 1;
    p->count[d] = x->dims[d];
  }
  for (int i = 0; i < ns; i++) {
    int d = ax[i];
    int64_t dim = x->dims[d], step = nst >= 0 ? steps[i] : 1;
    if (step == 0) {
      if (!ic) return EI_E_INVALID_MODEL;
      return EI_NODE_ERR(ic, EI_E_INVALID_MODEL, "steps[%d] is 0", i);
    }
    int64_t b = starts[i] < 0 ? starts[i] + dim : starts[i];
    int64_t e = ends[i] < 0 ? ends[i] + dim : ends[i];
    int64_t n = 0;
    if (step > 0) {
      b = clamp64(b, 0, dim);
      e = clamp64(e, 0, dim);
      if (e > b) n = (e - b - 1) / step + 1;
    } else {
      b = clamp64(b, 0, dim - 1);
      e = clamp64(e, -1, dim - 1);
      if (b > e) n = step == INT64_MIN ? 1 : (b - e - 1) / -step + 1;
    }
    p->start[d] = n > 0 ? b : 0;
    p->step[d] = n > 1 ? step : 1;
    p->count[d] = n;
  }
  return EI_OK;
}

ei_status ei__slice_infer(ei__infer *c) {
  ei_status s = ei__tops_check_input(c, 0, "data");
  if (s) return s;
  slice_plan p;
  if ((s = plan_slice(c, c->node, c->nin, c->in, &p))) return s;
  return ei__tops_set_out(c, 0, c->in[0].dtype, c->in[0].rank, p.count);
}

ei_status ei__slice_run(ei__run *c) {
  const ei__tensor *x = &c->in[0];
  slice_plan p;
  if (plan_slice(NULL, c->node, c->nin, c->in, &p))
    return EI_NODE_ERR(c, EI_E_INTERNAL, "slice parameters changed after planning");
  if (ei__numel(&c->out[0]) == 0) return EI_OK;
  int64_t xs[EI_MAX_DIMS], st[EI_MAX_DIMS], base = 0;
  ei__tops_strides(x->rank, x->dims, xs);
  for (int d = 0; d < x->rank; d++) {
    base += p.start[d] * xs[d];
    st[d] = p.step[d] * xs[d];
  }
  ei__tops_strided_copy(c->out[0].data, x->data, base, ei_dtype_size(x->dtype), x->rank, p.count, st, c->pool);
  return EI_OK;
}
