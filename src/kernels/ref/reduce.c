/* Reference ReduceMean, ReduceMax and ReduceSum. The axes are an attribute before opset 18 (ReduceSum: 13)
 * and an optional input from then on (it must be known at plan time); keepdims (default 1) and
 * noop_with_empty_axes are honoured. The input is walked once in order, each element folded into its output
 * slot; adjacent dims with the same role are merged so the inner loop is either a contiguous reduction into one
 * value or a contiguous elementwise fold. Float Sum/Mean accumulate in double (workspace). */
#include <math.h>
#include <string.h>

#include "kernels/ref/elementwise.h"

typedef enum reduce_kind { R_MEAN, R_MAX, R_SUM, R_PROD } reduce_kind;

typedef struct reduce_params {
  reduce_kind kind;
  int keepdims, noop_empty;
  int axes_input;                /* axes come from input 1 */
  int naxes;                     /* attribute form: -1 if absent */
  int64_t axes[EI_MAX_DIMS];
} reduce_params;

ei_status ei__ew_reduce_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  (void)g;
  reduce_kind k;
  int input_since;
  if (!strcmp(n->op_type, "ReduceMean")) k = R_MEAN, input_since = 18;
  else if (!strcmp(n->op_type, "ReduceMax")) k = R_MAX, input_since = 18;
  else if (!strcmp(n->op_type, "ReduceSum")) k = R_SUM, input_since = 13;
  else if (!strcmp(n->op_type, "ReduceProd")) k = R_PROD, input_since = 18;
  else return ei__err(err, errlen, EI_E_INTERNAL, "node '%s': '%s' is not a reduction", n->name, n->op_type);
  reduce_params p = {.kind = k, .naxes = -1};
  p.keepdims = ei__attr_int(n, "keepdims", 1) != 0;
  p.noop_empty = ei__attr_int(n, "noop_with_empty_axes", 0) != 0;
  p.axes_input = n->opset >= input_since;
  const int64_t *axes = NULL;
  int na = ei__attr_ints(n, "axes", &axes);
  if (p.axes_input) {
    if (na >= 0 || ei__attr_find(n, "axes"))
      return ei__err(err, errlen, EI_E_INVALID_MODEL, "%s node '%s': the axes attribute is not allowed at opset %d",
                     n->op_type, n->name, n->opset);
    if (n->nin < 1 || n->nin > 2)
      return ei__err(err, errlen, EI_E_INVALID_MODEL, "%s node '%s': %d inputs (expected 1 or 2)", n->op_type,
                     n->name, n->nin);
  } else {
    if (n->nin != 1)
      return ei__err(err, errlen, EI_E_INVALID_MODEL, "%s node '%s': %d inputs (expected 1 at opset %d)",
                     n->op_type, n->name, n->nin, n->opset);
    if (na > EI_MAX_DIMS)
      return ei__err(err, errlen, EI_E_INVALID_MODEL, "%s node '%s': %d axes (at most %d)", n->op_type, n->name, na,
                     EI_MAX_DIMS);
    if (na >= 0) {
      p.naxes = na;
      for (int i = 0; i < na; i++) p.axes[i] = axes[i];
    }
  }
  reduce_params *pp = ei__malloc(sizeof *pp);
  if (!pp) return EI_E_NOMEM;
  *pp = p;
  n->params = pp;
  return EI_OK;
}

/* Which dims of x are reduced; *noop when the op is an identity (empty axes with noop_with_empty_axes). */
static ei_status reduce_mask(const ei__node *node, const ei__graph *graph, const ei__tensor *in, int nin,
                             int mask[EI_MAX_DIMS], int *noop, char *err, size_t errlen) {
  const reduce_params *p = node->params;
  const ei__tensor *x = &in[0];
  int64_t axes[EI_MAX_DIMS];
  int na = p->naxes;
  if (p->axes_input) {
    na = -1;
    if (ei__ew_present(node, nin, 1)) {
      const ei__tensor *t = &in[1];
      if (t->dtype != EI_INT64 && t->dtype != EI_INT32)
        return ei__err(err, errlen, EI_E_INVALID_MODEL, "%s node '%s': axes input has type %s (expected int64)",
                       node->op_type, node->name, ei_dtype_name(t->dtype));
      if (t->rank != 1)
        return ei__err(err, errlen, EI_E_SHAPE, "%s node '%s': axes input must be 1-D (rank %d)", node->op_type,
                       node->name, t->rank);
      if (!t->data)
        return ei__err(err, errlen, EI_E_SHAPE, "%s node '%s': axes input '%s' must be known at plan time",
                       node->op_type, node->name, ei__ew_in_name(graph, node, 1));
      if (t->dims[0] > EI_MAX_DIMS)
        return ei__err(err, errlen, EI_E_INVALID_MODEL, "%s node '%s': %lld axes (at most %d)", node->op_type,
                       node->name, (long long)t->dims[0], EI_MAX_DIMS);
      na = (int)t->dims[0];
      for (int i = 0; i < na; i++) axes[i] = ei__get_int(t, i);
    }
  } else {
    for (int i = 0; i < na; i++) axes[i] = p->axes[i];
  }
  *noop = 0;
  for (int d = 0; d < EI_MAX_DIMS; d++) mask[d] = 0;
  if (na <= 0) {
    if (p->noop_empty) *noop = 1;
    else
      for (int d = 0; d < x->rank; d++) mask[d] = 1;
    return EI_OK;
  }
  for (int i = 0; i < na; i++) {
    int a = ei__norm_axis(axes[i], x->rank);
    if (a < 0 || x->rank == 0)
      return ei__err(err, errlen, EI_E_INVALID_MODEL, "%s node '%s': axis %lld is out of range for rank %d",
                     node->op_type, node->name, (long long)axes[i], x->rank);
    if (mask[a])
      return ei__err(err, errlen, EI_E_INVALID_MODEL, "%s node '%s': axis %lld is repeated", node->op_type,
                     node->name, (long long)axes[i]);
    mask[a] = 1;
  }
  return EI_OK;
}

static int reduce_type_ok(reduce_kind k, ei_dtype dt) {
  switch (dt) {
    case EI_FLOAT: return 1;
    case EI_INT32: case EI_INT64: return k != R_MEAN;
    case EI_INT8: case EI_UINT8: return k == R_MAX;
    default: return 0;
  }
}

ei_status ei__ew_reduce_infer(ei__infer *c) {
  const reduce_params *p = c->node->params;
  if (!p) return EI_NODE_ERR(c, EI_E_INTERNAL, "not initialised");
  ei_status s = ei__ew_check_input(c, 0);
  if (s) return s;
  const ei__tensor *x = &c->in[0];
  if (!reduce_type_ok(p->kind, x->dtype))
    return EI_NODE_ERR(c, EI_E_UNSUPPORTED, "input type %s is not supported", ei_dtype_name(x->dtype));
  if (ei__ew_present(c->node, c->nin, 1) && (s = ei__ew_check_input(c, 1))) return s;
  int mask[EI_MAX_DIMS], noop;
  s = reduce_mask(c->node, c->graph, c->in, c->nin, mask, &noop, c->err, c->errlen);
  if (s) return s;
  ei__tensor *o = &c->out[0];
  ei__ew_set_shape(o, x, x->dtype);
  if (noop) return EI_OK;
  int r = 0;
  for (int d = 0; d < x->rank; d++) {
    if (!mask[d]) o->dims[r++] = x->dims[d];
    else if (p->keepdims) o->dims[r++] = 1;
  }
  o->rank = r;
  if (x->dtype == EI_FLOAT && p->kind != R_MAX) c->workspace = (size_t)ei__numel(o) * sizeof(double);
  return EI_OK;
}

/* The walk: input dims (size-1 dims dropped, same-role neighbours merged) with the output stride of each
 * (0 for reduced dims). */
typedef struct reduce_walk {
  int rank;
  int64_t dims[EI_MAX_DIMS], ost[EI_MAX_DIMS];
} reduce_walk;

static void walk_make(reduce_walk *w, const ei__tensor *x, const int mask[EI_MAX_DIMS]) {
  int64_t ost[EI_MAX_DIMS];
  int64_t s = 1;
  for (int d = x->rank - 1; d >= 0; d--) {
    ost[d] = mask[d] ? 0 : s;
    if (!mask[d]) s *= x->dims[d];
  }
  int64_t dd[EI_MAX_DIMS], os[EI_MAX_DIMS];
  int r = 0;
  for (int d = x->rank - 1; d >= 0; d--) {
    if (x->dims[d] == 1) continue;
    if (r > 0 && ost[d] == os[r - 1] * dd[r - 1]) {
      dd[r - 1] *= x->dims[d];
      continue;
    }
    dd[r] = x->dims[d];
    os[r] = ost[d];
    r++;
  }
  if (r == 0) {
    dd[0] = 1;
    os[0] = 1;
    r = 1;
  }
  w->rank = r;
  for (int i = 0; i < r; i++) {
    w->dims[i] = dd[r - 1 - i];
    w->ost[i] = os[r - 1 - i];
  }
}

/* Walks x row by row: fold(acc + out_offset, x_row, n, out_stride_of_row (0 or 1)). */
#define REDUCE_WALK(w, n_in, BODY)                                  \
  do {                                                              \
    int64_t idx_[EI_MAX_DIMS] = {0};                                \
    const int last_ = (w)->rank - 1;                                \
    const int64_t row_ = (w)->dims[last_];                          \
    const int64_t rs_ = (w)->ost[last_];                            \
    for (int64_t pos_ = 0; pos_ < (n_in); pos_ += row_) {           \
      int64_t off_ = 0;                                             \
      for (int d_ = 0; d_ < last_; d_++) off_ += idx_[d_] * (w)->ost[d_]; \
      const int64_t ipos = pos_, opos = off_, n = row_, os = rs_;   \
      BODY;                                                         \
      for (int d_ = last_ - 1; d_ >= 0; d_--) {                     \
        if (++idx_[d_] < (w)->dims[d_]) break;                      \
        idx_[d_] = 0;                                               \
      }                                                             \
    }                                                               \
  } while (0)

static void reduce_sum_f32(const reduce_walk *w, const float *x, int64_t nx, double *acc) {
  REDUCE_WALK(w, nx, {
    const float *xr = x + ipos;
    if (os == 0) {
      double s = 0;
      for (int64_t k = 0; k < n; k++) s += xr[k];
      acc[opos] += s;
    } else {
      double *a = acc + opos;
      for (int64_t k = 0; k < n; k++) a[k] += xr[k];
    }
  });
}

#define REDUCE_INT_SUM(SFX, T, U)                                          \
  static void reduce_sum_##SFX(const reduce_walk *w, const T *x, int64_t nx, T *o) { \
    REDUCE_WALK(w, nx, {                                                   \
      const T *xr = x + ipos;                                              \
      if (os == 0) {                                                       \
        U s = 0;                                                           \
        for (int64_t k = 0; k < n; k++) s += (U)xr[k];                     \
        o[opos] = (T)((U)o[opos] + s);                                     \
      } else {                                                             \
        T *a = o + opos;                                                   \
        for (int64_t k = 0; k < n; k++) a[k] = (T)((U)a[k] + (U)xr[k]);    \
      }                                                                    \
    });                                                                    \
  }
REDUCE_INT_SUM(i32, int32_t, uint32_t)
REDUCE_INT_SUM(i64, int64_t, uint64_t)

/* Product (shape arithmetic: element counts). Integers wrap. */
#define REDUCE_PROD(SFX, T, A, U)                                          \
  static void reduce_prod_##SFX(const reduce_walk *w, const T *x, int64_t nx, A *o) { \
    REDUCE_WALK(w, nx, {                                                   \
      const T *xr = x + ipos;                                              \
      if (os == 0) {                                                       \
        U m = (U)o[opos];                                                  \
        for (int64_t k = 0; k < n; k++) m = (U)(m * (U)xr[k]);             \
        o[opos] = (A)m;                                                    \
      } else {                                                             \
        A *a = o + opos;                                                   \
        for (int64_t k = 0; k < n; k++) a[k] = (A)((U)a[k] * (U)xr[k]);    \
      }                                                                    \
    });                                                                    \
  }
REDUCE_PROD(f32, float, double, double)
REDUCE_PROD(i32, int32_t, int32_t, uint32_t)
REDUCE_PROD(i64, int64_t, int64_t, uint64_t)

/* Max; GT(a, b) is "a replaces b" (for floats a NaN replaces anything). */
#define GT_INT(a, b) ((a) > (b))
#define GT_FLT(a, b) ((a) > (b) || (a) != (a))
#define REDUCE_MAX(SFX, T, GT)                                             \
  static void reduce_max_##SFX(const reduce_walk *w, const T *x, int64_t nx, T *o) { \
    REDUCE_WALK(w, nx, {                                                   \
      const T *xr = x + ipos;                                              \
      if (os == 0) {                                                       \
        T m = o[opos];                                                     \
        for (int64_t k = 0; k < n; k++)                                    \
          if (GT(xr[k], m)) m = xr[k];                                     \
        o[opos] = m;                                                       \
      } else {                                                             \
        T *a = o + opos;                                                   \
        for (int64_t k = 0; k < n; k++)                                    \
          if (GT(xr[k], a[k])) a[k] = xr[k];                               \
      }                                                                    \
    });                                                                    \
  }
REDUCE_MAX(f32, float, GT_FLT)
REDUCE_MAX(i32, int32_t, GT_INT)
REDUCE_MAX(i64, int64_t, GT_INT)
REDUCE_MAX(i8, int8_t, GT_INT)
REDUCE_MAX(u8, uint8_t, GT_INT)

#define FILL(T, p, n, v)                                 \
  do {                                                   \
    T *q_ = (T *)(p);                                    \
    for (int64_t i_ = 0; i_ < (n); i_++) q_[i_] = (v);   \
  } while (0)

ei_status ei__ew_reduce_run(ei__run *c) {
  const reduce_params *p = c->node->params;
  if (!p) return EI_NODE_ERR(c, EI_E_INTERNAL, "not initialised");
  const ei__tensor *x = &c->in[0];
  ei__tensor *o = &c->out[0];
  int mask[EI_MAX_DIMS], noop;
  ei_status s = reduce_mask(c->node, NULL, c->in, c->nin, mask, &noop, c->err, c->errlen);
  if (s) return s;
  if (noop) {
    ei__ew_copy0(c);
    return EI_OK;
  }
  int64_t nx = ei__numel(x), no = ei__numel(o);
  if (no == 0) return EI_OK;
  reduce_walk w;
  walk_make(&w, x, mask);
  if (p->kind == R_MAX) {
    switch (x->dtype) {
      case EI_FLOAT: FILL(float, o->data, no, -INFINITY); if (nx) reduce_max_f32(&w, x->data, nx, o->data); break;
      case EI_INT32: FILL(int32_t, o->data, no, INT32_MIN); if (nx) reduce_max_i32(&w, x->data, nx, o->data); break;
      case EI_INT64: FILL(int64_t, o->data, no, INT64_MIN); if (nx) reduce_max_i64(&w, x->data, nx, o->data); break;
      case EI_INT8: FILL(int8_t, o->data, no, INT8_MIN); if (nx) reduce_max_i8(&w, x->data, nx, o->data); break;
      case EI_UINT8: FILL(uint8_t, o->data, no, 0); if (nx) reduce_max_u8(&w, x->data, nx, o->data); break;
      default: return EI_NODE_ERR(c, EI_E_UNSUPPORTED, "input type %s", ei_dtype_name(x->dtype));
    }
    return EI_OK;
  }
  if (p->kind == R_PROD) {
    switch (x->dtype) {
      case EI_FLOAT: {
        double *acc = c->workspace;
        if (!acc) return EI_NODE_ERR(c, EI_E_INTERNAL, "no workspace");
        FILL(double, acc, no, 1.0);
        if (nx) reduce_prod_f32(&w, x->data, nx, acc);
        for (int64_t i = 0; i < no; i++) ((float *)o->data)[i] = (float)acc[i];
        return EI_OK;
      }
      case EI_INT32: FILL(int32_t, o->data, no, 1); if (nx) reduce_prod_i32(&w, x->data, nx, o->data); return EI_OK;
      case EI_INT64: FILL(int64_t, o->data, no, 1); if (nx) reduce_prod_i64(&w, x->data, nx, o->data); return EI_OK;
      default: return EI_NODE_ERR(c, EI_E_UNSUPPORTED, "input type %s", ei_dtype_name(x->dtype));
    }
  }
  switch (x->dtype) {
    case EI_FLOAT: {
      double *acc = c->workspace;
      if (!acc) return EI_NODE_ERR(c, EI_E_INTERNAL, "no workspace");
      FILL(double, acc, no, 0.0);
      if (nx) reduce_sum_f32(&w, x->data, nx, acc);
      float *y = o->data;
      if (p->kind == R_MEAN) {
        double cnt = no ? (double)nx / (double)no : 0;
        for (int64_t i = 0; i < no; i++) y[i] = cnt > 0 ? (float)(acc[i] / cnt) : NAN;
      } else {
        for (int64_t i = 0; i < no; i++) y[i] = (float)acc[i];
      }
      return EI_OK;
    }
    case EI_INT32: FILL(int32_t, o->data, no, 0); if (nx) reduce_sum_i32(&w, x->data, nx, o->data); return EI_OK;
    case EI_INT64: FILL(int64_t, o->data, no, 0); if (nx) reduce_sum_i64(&w, x->data, nx, o->data); return EI_OK;
    default: return EI_NODE_ERR(c, EI_E_UNSUPPORTED, "input type %s", ei_dtype_name(x->dtype));
  }
}
