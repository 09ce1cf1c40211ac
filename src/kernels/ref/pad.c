/* Pad: constant, reflect, edge and wrap modes on any rank and element type. Before opset 11 pads and value are
 * attributes; since, pads (and the opset 18 axes) are inputs known at plan time and constant_value is an
 * optional scalar input read at run time. Negative pads crop: the output is the input padded with the positive
 * pads and then cropped by the negative ones, so padded values always come from the uncropped input. */
#include "kernels/ref/tensor_ops.h"

enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP };
static const char *const mode_names[] = {"constant", "reflect", "edge", "wrap"};
static const char *const kernel_names[] = {"ref_pad_constant", "ref_pad_reflect", "ref_pad_edge", "ref_pad_wrap"};

/* The largest pad magnitude accepted: keeps every index computation far from int64 overflow. */
#define PAD_MAX ((int64_t)1 << 60)

typedef struct pad_params {
  int mode;
} pad_params;

ei_status ei__pad_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  (void)g;
  ei_status s;
  if ((s = ei__tops_attr_type(n, "mode", EI_ATTR_STRING, err, errlen))) return s;
  const char *mode = ei__attr_str(n, "mode", "constant");
  int m = -1;
  for (int i = 0; i < 4; i++)
    if (!strcmp(mode, mode_names[i])) m = i;
  if (m < 0) return EI_INIT_ERR(n, err, errlen, EI_E_INVALID_MODEL, "unknown mode '%s'", mode);
  if (n->opset < 11) {
    if ((s = ei__tops_attr_type(n, "pads", EI_ATTR_INTS, err, errlen))) return s;
    if ((s = ei__tops_attr_type(n, "value", EI_ATTR_FLOAT, err, errlen))) return s;
    if (!ei__attr_find(n, "pads")) return EI_INIT_ERR(n, err, errlen, EI_E_INVALID_MODEL, "needs the pads attribute");
  } else if (n->nin < 2 || n->in[1] < 0) {
    return EI_INIT_ERR(n, err, errlen, EI_E_INVALID_MODEL, "needs the pads input");
  }
  pad_params *p = ei__calloc(1, sizeof *p);
  if (!p) return EI_E_NOMEM;
  p->mode = m;
  n->params = p;
  return EI_OK;
}

/* Fills the begin/end pads of every axis of in[0]; ic (NULL at run time) receives errors. */
static ei_status pad_amounts(ei__infer *ic, const ei__node *node, int nin, const ei__tensor *in, int64_t *begin,
                             int64_t *end) {
  int r = in[0].rank, np, na = -1, ax[EI_MAX_DIMS];
  int64_t pads[2 * EI_MAX_DIMS], axes[EI_MAX_DIMS];
  ei_status s;
  if (node->opset < 11) {
    const int64_t *v;
    np = ei__attr_ints(node, "pads", &v);
    if (np > 2 * EI_MAX_DIMS) np = 2 * EI_MAX_DIMS + 1; /* reported below */
    else if (np > 0) memcpy(pads, v, (size_t)np * sizeof *pads);
  } else if (ic) {
    if ((s = ei__tops_read_ints(ic, 1, "pads", pads, 2 * EI_MAX_DIMS, &np))) return s;
    if (node->opset >= 18 && ei__tops_present(nin, in, 3)) {
      if ((s = ei__tops_read_ints(ic, 3, "axes", axes, EI_MAX_DIMS, &na))) return s;
      if ((s = ei__tops_norm_axes(ic, "axes", axes, na, r, ax))) return s;
    }
  } else {
    np = (int)ei__numel(&in[1]);
    if (np > 2 * EI_MAX_DIMS) return EI_E_INTERNAL;
    for (int i = 0; i < np; i++) pads[i] = ei__get_int(&in[1], i);
    if (node->opset >= 18 && ei__tops_present(nin, in, 3)) {
      na = (int)ei__numel(&in[3]);
      if (na > EI_MAX_DIMS) return EI_E_INTERNAL;
      for (int i = 0; i < na; i++) {
        int64_t a = ei__get_int(&in[3], i);
        ax[i] = (int)(a < 0 ? a + r : a);
      }
    }
  }
  if (na < 0) {
    na = r;
    for (int i = 0; i < r; i++) ax[i] = i;
  }
  if (np != 2 * na) {
    if (!ic) return EI_E_INTERNAL;
    return EI_NODE_ERR(ic, EI_E_INVALID_MODEL, "pads has %d values, expected %d (2 per padded axis)", np, 2 * na);
  }
  for (int i = 0; i < r; i++) begin[i] = end[i] = 0;
  for (int i = 0; i < na; i++) {
    int64_t b = pads[i], e = pads[na + i];
    if (b < -PAD_MAX || b > PAD_MAX || e < -PAD_MAX || e > PAD_MAX) {
      if (!ic) return EI_E_INTERNAL;
      return EI_NODE_ERR(ic, EI_E_SHAPE, "pads for axis %d are too large (%lld, %lld)", ax[i], (long long)b,
                         (long long)e);
    }
    begin[ax[i]] = b;
    end[ax[i]] = e;
  }
  return EI_OK;
}

ei_status ei__pad_infer(ei__infer *c) {
  ei_status s = ei__tops_check_input(c, 0, "data");
  if (s) return s;
  const pad_params *p = c->node->params;
  const ei__tensor *x = &c->in[0];
  int64_t begin[EI_MAX_DIMS], end[EI_MAX_DIMS], dims[EI_MAX_DIMS];
  if ((s = pad_amounts(c, c->node, c->nin, c->in, begin, end))) return s;
  int empty_axis = -1;
  for (int i = 0; i < x->rank; i++) {
    dims[i] = x->dims[i] + begin[i] + end[i]; /* |pads| <= 2^60 and dims <= 2^56: no overflow */
    if (dims[i] < 0)
      return EI_NODE_ERR(c, EI_E_SHAPE, "pads (%lld, %lld) crop axis %d of size %lld below zero", (long long)begin[i],
                         (long long)end[i], i, (long long)x->dims[i]);
    if (x->dims[i] == 0) empty_axis = i;
  }
  if ((s = ei__tops_set_out(c, 0, x->dtype, x->rank, dims))) return s;
  if (p->mode != PAD_CONSTANT && empty_axis >= 0 && ei__tops_numel(x->rank, dims) > 0)
    return EI_NODE_ERR(c, EI_E_SHAPE, "%s padding of axis %d, which is empty", mode_names[p->mode], empty_axis);
  if (c->node->opset >= 11 && ei__tops_present(c->nin, c->in, 2)) {
    const ei__tensor *v = &c->in[2];
    if (v->dtype != x->dtype)
      return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "constant_value is %s but data is %s", ei_dtype_name(v->dtype),
                         ei_dtype_name(x->dtype));
    if (ei__tops_numel(v->rank, v->dims) > 1) return EI_NODE_ERR(c, EI_E_SHAPE, "constant_value must be a scalar");
  }
  return EI_OK;
}

/* Maps index i (possibly outside [0, d)) into the input along one axis; -1 for a constant pad. */
static int64_t map_index(int64_t i, int64_t d, int mode) {
  if (i >= 0 && i < d) return i;
  switch (mode) {
    case PAD_EDGE: return i < 0 ? 0 : d - 1;
    case PAD_WRAP: {
      int64_t m = i % d;
      return m < 0 ? m + d : m;
    }
    case PAD_REFLECT: {
      if (d == 1) return 0;
      int64_t period = 2 * (d - 1), m = i % period;
      if (m < 0) m += period;
      return m < d ? m : period - m;
    }
    default: return -1;
  }
}

static void fill(char *dst, const char *value, int64_t n, size_t es) {
  switch (es) {
    case 1: memset(dst, value[0], (size_t)n); return;
    case 4: {
      uint32_t v;
      memcpy(&v, value, 4);
      uint32_t *d = (uint32_t *)(void *)dst;
      for (int64_t j = 0; j < n; j++) d[j] = v;
      return;
    }
    default:
      for (int64_t j = 0; j < n; j++) memcpy(dst + (size_t)j * es, value, es);
  }
}

typedef struct pad_job {
  const char *src;
  char *dst;
  size_t es;
  int rank, mode;
  const int64_t *in_dims, *out_dims, *begin;
  int64_t xs[EI_MAX_DIMS];
  const char *value;
} pad_job;

/* Pads output rows [begin, end) (a row is the innermost axis). */
static void pad_rows(void *arg, int64_t rbeg, int64_t rend) {
  const pad_job *j = arg;
  int last = j->rank - 1;
  int64_t W = j->out_dims[last], d = j->in_dims[last], b = j->begin[last];
  size_t es = j->es;
  int64_t idx[EI_MAX_DIMS], rem = rbeg;
  for (int a = last - 1; a >= 0; a--) {
    idx[a] = rem % j->out_dims[a];
    rem /= j->out_dims[a];
  }
  /* the part of a row read straight from the input row: x in [lo, hi) */
  int64_t lo = b > 0 ? b : 0, hi = b + d < W ? b + d : W;
  if (hi < lo) hi = lo;
  if (lo > W) lo = hi = W;
  for (int64_t row = rbeg; row < rend; row++) {
    char *dst = j->dst + (size_t)(row * W) * es;
    int64_t off = 0;
    int inside = 1;
    for (int a = 0; a < last; a++) {
      int64_t m = map_index(idx[a] - j->begin[a], j->in_dims[a], j->mode);
      if (m < 0) {
        inside = 0;
        break;
      }
      off += m * j->xs[a];
    }
    if (!inside) {
      fill(dst, j->value, W, es);
    } else {
      const char *src = j->src ? j->src + (size_t)off * es : NULL;
      if (hi > lo) memcpy(dst + (size_t)lo * es, src + (size_t)(lo - b) * es, (size_t)(hi - lo) * es);
      if (j->mode == PAD_CONSTANT) {
        fill(dst, j->value, lo, es);
        fill(dst + (size_t)hi * es, j->value, W - hi, es);
      } else {
        for (int64_t x = 0; x < lo; x++) memcpy(dst + (size_t)x * es, src + (size_t)map_index(x - b, d, j->mode) * es, es);
        for (int64_t x = hi; x < W; x++) memcpy(dst + (size_t)x * es, src + (size_t)map_index(x - b, d, j->mode) * es, es);
      }
    }
    for (int a = last - 1; a >= 0; a--) {
      if (++idx[a] < j->out_dims[a]) break;
      idx[a] = 0;
    }
  }
}

/* Writes the pad value as one element of dtype dt. */
static void value_bytes(ei_dtype dt, double v, char *out) {
  memset(out, 0, 8);
  if (v != v && dt != EI_FLOAT && dt != EI_DOUBLE) v = 0; /* NaN has no integer value */
  switch (dt) {
    case EI_FLOAT: { float f = (float)v; memcpy(out, &f, 4); break; }
    case EI_DOUBLE: memcpy(out, &v, 8); break;
    case EI_BOOL: out[0] = v != 0; break;
    case EI_UINT8: { uint8_t t = v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)v; memcpy(out, &t, 1); break; }
    case EI_INT8: { int8_t t = v <= -128 ? -128 : v >= 127 ? 127 : (int8_t)v; memcpy(out, &t, 1); break; }
    case EI_INT16: { int16_t t = v <= -32768 ? -32768 : v >= 32767 ? 32767 : (int16_t)v; memcpy(out, &t, 2); break; }
    case EI_UINT16: { uint16_t t = v <= 0 ? 0 : v >= 65535 ? 65535 : (uint16_t)v; memcpy(out, &t, 2); break; }
    case EI_INT32: { int32_t t = v <= -2147483648.0 ? INT32_MIN : v >= 2147483647.0 ? INT32_MAX : (int32_t)v; memcpy(out, &t, 4); break; }
    case EI_UINT32: { uint32_t t = v <= 0 ? 0 : v >= 4294967295.0 ? UINT32_MAX : (uint32_t)v; memcpy(out, &t, 4); break; }
    case EI_INT64: { int64_t t = v <= -9.2e18 ? INT64_MIN : v >= 9.2e18 ? INT64_MAX : (int64_t)v; memcpy(out, &t, 8); break; }
    case EI_UINT64: { uint64_t t = v <= 0 ? 0 : v >= 1.8e19 ? UINT64_MAX : (uint64_t)v; memcpy(out, &t, 8); break; }
    default: break; /* float16: only 0 is representable here; value attribute predates float16 support */
  }
}

ei_status ei__pad_run(ei__run *c) {
  const pad_params *p = c->node->params;
  const ei__tensor *x = &c->in[0];
  ei__tensor *y = &c->out[0];
  int64_t begin[EI_MAX_DIMS], end[EI_MAX_DIMS];
  if (pad_amounts(NULL, c->node, c->nin, c->in, begin, end))
    return EI_NODE_ERR(c, EI_E_INTERNAL, "pads changed after planning");
  size_t es = ei_dtype_size(x->dtype);
  char value[16];
  memset(value, 0, sizeof value);
  if (c->node->opset < 11) value_bytes(x->dtype, ei__attr_float(c->node, "value", 0.f), value);
  else if (ei__tops_present(c->nin, c->in, 2) && ei__numel(&c->in[2]) == 1 && es <= sizeof value)
    memcpy(value, c->in[2].data, es);
  if (ei__numel(y) == 0) return EI_OK;
  if (x->rank == 0) {
    memcpy(y->data, x->data, es);
    return EI_OK;
  }
  pad_job j;
  memset(&j, 0, sizeof j);
  j.src = x->data;
  j.dst = y->data;
  j.es = es;
  j.rank = x->rank;
  j.mode = p->mode;
  j.in_dims = x->dims;
  j.out_dims = y->dims;
  j.begin = begin;
  j.value = value;
  ei__tops_strides(x->rank, x->dims, j.xs);
  int64_t rows = ei__numel(y) / y->dims[x->rank - 1];
  if (c->pool && ei__numel(y) >= (1 << 16)) {
    int64_t chunk = (1 << 14) / y->dims[x->rank - 1];
    ei__parallel_for(c->pool, rows, chunk > 0 ? chunk : 1, pad_rows, &j);
  } else {
    pad_rows(&j, 0, rows);
  }
  return EI_OK;
}

const char *ei__pad_kernel(const ei__node *n) {
  const pad_params *p = n->params;
  return p ? kernel_names[p->mode] : "ref_pad";
}
