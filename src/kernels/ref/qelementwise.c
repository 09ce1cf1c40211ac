/* Quantized elementwise and data operators: QLinearAdd, QLinearMul (numpy broadcasting, fused Relu / Clip clamp),
 * QLinearGlobalAveragePool (channels_last 0/1), QLinearConcat, QLinearSigmoid, QLinearLeakyRelu (com.microsoft),
 * and QLinearLookup (ai.edgeinfer: y = table[(uint8_t)x], the 256-entry table written by the QDQ pass with
 * ei__quant_lut_build's indexing). uint8 / int8, per-tensor scales and zero points. Rounding: requant.h.
 * QLinearAdd without broadcasting (or with one scalar operand) and QLinearGlobalAveragePool (channels first) use
 * the SIMD kernels of the level chosen at init (src/kernels/q8_kernels.h), bit-exact with these loops. */
#include <math.h>
#include <string.h>

#include "kernels/q8_kernels.h"
#include "kernels/ref/quant_ops.h"

/* node->params of QLinearAdd / QLinearMul / QLinearGlobalAveragePool: the SIMD kernels chosen at init (or NULL) */
typedef struct q8e_params {
  const ei__q8e_kernels *k;
} q8e_params;

static ei_status q8e_params_init(ei__node *n) {
  q8e_params *p = ei__calloc(1, sizeof *p);
  if (!p) return EI_E_NOMEM;
  p->k = ei__q8e_kernels_for(ei__isa_current());
  n->params = p;
  return EI_OK;
}

static const ei__q8e_kernels *q8e_of(const ei__node *n) {
  const q8e_params *p = n->params;
  return p ? p->k : NULL;
}

/* Sets output 0 to (dt, rank, dims). */
static void set_out(ei__infer *c, ei_dtype dt, int rank, const int64_t *dims) {
  c->out[0].dtype = dt;
  c->out[0].rank = rank;
  memcpy(c->out[0].dims, dims, sizeof(int64_t) * (size_t)rank);
}

/* Checks input i is a present uint8 / int8 tensor with a valid shape; if want != EI_UNDEFINED it must be that type. */
static ei_status check_q8(const ei__node *node, int nin, const ei__tensor *in, int i, const char *what, ei_dtype want,
                          char *err, size_t errlen) {
  if (!ei__nn_has(nin, in, i))
    return EI_NN_ERR(node, err, errlen, EI_E_INVALID_MODEL, "input %s is required", what);
  const ei__tensor *t = &in[i];
  if (!ei__q_is_8bit(t->dtype))
    return EI_NN_ERR(node, err, errlen, EI_E_UNSUPPORTED, "input %s has type %s (uint8 or int8 supported)", what,
                     ei_dtype_name(t->dtype));
  if (want != EI_UNDEFINED && t->dtype != want)
    return EI_NN_ERR(node, err, errlen, EI_E_INVALID_MODEL, "input %s has type %s, expected %s", what,
                     ei_dtype_name(t->dtype), ei_dtype_name(want));
  if (t->rank < 0 || t->rank > EI_MAX_DIMS || ei__nn_prod(t->dims, t->rank) < 0)
    return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "input %s has an invalid shape", what);
  return EI_OK;
}

/* Per-tensor scale (input is) and zero point (input iz, of type t) of one quantized tensor. */
static ei_status check_pair(const ei__node *node, int nin, const ei__tensor *in, int is, int iz, const char *sname,
                            const char *zname, ei_dtype t, char *err, size_t errlen) {
  int64_t cnt;
  ei_status st = ei__q_check_param(node, nin, in, is, sname, EI_FLOAT, 0, 0, &cnt, err, errlen);
  if (st) return st;
  return ei__q_check_param(node, nin, in, iz, zname, t, 1, 0, &cnt, err, errlen);
}

static ei_status init_act(const ei__node *n, char *err, size_t errlen) {
  if (n->nin < 1 || n->in[0] < 0) return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "input X is required");
  return ei__q_check_act(n, err, errlen);
}

/* ---- QLinearAdd / QLinearMul: A, A_scale, A_zp, B, B_scale, B_zp, C_scale, C_zp ---- */

ei_status ei__qbinary_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  (void)g;
  if (n->nin < 7) return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "expects 7 or 8 inputs, got %d", n->nin);
  ei_status st = init_act(n, err, errlen);
  return st ? st : q8e_params_init(n);
}

static ei_status qbinary_check(const ei__node *node, int nin, const ei__tensor *in, ei__tensor *out, char *err,
                               size_t errlen) {
  ei_status st;
  if ((st = check_q8(node, nin, in, 0, "A", EI_UNDEFINED, err, errlen))) return st;
  const ei_dtype t = in[0].dtype;
  if ((st = check_q8(node, nin, in, 3, "B", t, err, errlen)) ||
      (st = check_pair(node, nin, in, 1, 2, "A_scale", "A_zero_point", t, err, errlen)) ||
      (st = check_pair(node, nin, in, 4, 5, "B_scale", "B_zero_point", t, err, errlen)) ||
      (st = check_pair(node, nin, in, 6, 7, "C_scale", "C_zero_point", t, err, errlen)))
    return st;
  out->dtype = t;
  return ei__broadcast_shape(&in[0], &in[3], out, err, errlen);
}

ei_status ei__qbinary_infer(ei__infer *c) {
  ei__tensor y;
  ei_status st = qbinary_check(c->node, c->nin, c->in, &y, c->err, c->errlen);
  if (st) return st;
  if (c->nout < 1) return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "output C is required");
  set_out(c, y.dtype, y.rank, y.dims);
  return ei__nn_check_numel(c, y.dims, y.rank, "output C");
}

/* Broadcast strides of t over an output of rank r and dims d (0 where t's dim is 1 or missing). */
static void bcast_strides(const ei__tensor *t, int r, const int64_t *d, int64_t *str) {
  int64_t s = 1;
  for (int i = r - 1; i >= 0; i--) {
    const int ti = i - (r - t->rank);
    const int64_t td = ti >= 0 ? t->dims[ti] : 1;
    str[i] = td == 1 && d[i] != 1 ? 0 : s;
    s *= td;
  }
}

ei_status ei__qbinary_run(ei__run *c) {
  ei__tensor y;
  ei_status st = qbinary_check(c->node, c->nin, c->in, &y, c->err, c->errlen);
  if (st) return st;
  const int mul = !strcmp(c->node->op_type, "QLinearMul");
  const ei_dtype t = y.dtype;
  const int sgn = t == EI_INT8;
  const ei__tensor *A = &c->in[0], *B = &c->in[3];
  const float sa = ei__q_scale(&c->in[1], 0), sb = ei__q_scale(&c->in[4], 0), sc = ei__q_scale(&c->in[6], 0);
  const int32_t za = ei__q_zp(c->nin, c->in, 2, 0), zb = ei__q_zp(c->nin, c->in, 5, 0),
                zc = ei__q_zp(c->nin, c->in, 7, 0);
  int32_t lo, hi;
  if (ei__quant_act_range(&c->node->act, sc, zc, t, &lo, &hi))
    return EI_NODE_ERR(c, EI_E_UNSUPPORTED, "fused activation is not a clamp");
  const float mult = ei__requant_multiplier(sa, sb, sc);
  const ei__qadd_coef kq = ei__qadd_coef_of(sa, za, sb, zb, sc, zc);
  const int r = y.rank;
  const int64_t total = ei__nn_prod(y.dims, r);
  if (total == 0) return EI_OK;
  int64_t stra[EI_MAX_DIMS], strb[EI_MAX_DIMS], idx[EI_MAX_DIMS] = {0};
  bcast_strides(A, r, y.dims, stra);
  bcast_strides(B, r, y.dims, strb);
  const int64_t inner = r ? y.dims[r - 1] : 1, ia = r ? stra[r - 1] : 0, ib = r ? strb[r - 1] : 0;
  const uint8_t *a = A->data, *b = B->data;
  void *out = c->out[0].data;
  const ei__q8e_kernels *k = q8e_of(c->node);
  const int64_t na = ei__numel(A), nb = ei__numel(B);
  if (!mul && k && ((na == total && (nb == total || nb == 1)) || (na == 1 && nb == total))) {
    /* no broadcasting, or one operand broadcast: that one folded into the coefficients and passed as b */
    ei__q8add_args args = {a, b, out, total, 0, sgn, lo, hi, kq};
    if (total > 1 && (na == 1 || nb == 1)) {
      const int sa1 = na == 1;
      args.a = sa1 ? b : a;
      args.b = sa1 ? a : b;
      args.b_scalar = 1;
      args.k.ra = sa1 ? kq.rb : kq.ra;
      args.k.fixed = ei__qadd_fold(&kq, ei__q8_get(args.b, sgn, 0), sa1 ? kq.ra : kq.rb);
    }
    ei__q8add_run(k, &args, c->pool);
    return EI_OK;
  }
  /* An operand whose innermost stride is 0 (while the other's is not) is one value over the row: as ONNX Runtime's
   * broadcasting, its term is folded first (requant.h). */
  const int fold_a = ia == 0 && ib != 0, fold_b = ib == 0 && ia != 0;
  for (int64_t o = 0, yi = 0; o < total / inner; o++) {
    int64_t ao = 0, bo = 0;
    for (int i = 0; i < r - 1; i++) {
      ao += idx[i] * stra[i];
      bo += idx[i] * strb[i];
    }
    const float fixed1 = mul ? 0.f
                         : fold_a ? ei__qadd_fold(&kq, ei__q8_get(a, sgn, ao), kq.ra)
                         : fold_b ? ei__qadd_fold(&kq, ei__q8_get(b, sgn, bo), kq.rb)
                                  : 0.f;
    for (int64_t k = 0; k < inner; k++, yi++) {
      const int32_t qa = ei__q8_get(a, sgn, ao + k * ia), qb = ei__q8_get(b, sgn, bo + k * ib);
      int32_t v;
      if (mul)
        v = ei__qmul(qa, za, qb, zb, mult, zc, lo, hi);
      else if (fold_a)
        v = ei__qadd1(qb, kq.rb, fixed1, lo, hi);
      else if (fold_b)
        v = ei__qadd1(qa, kq.ra, fixed1, lo, hi);
      else
        v = ei__qadd(&kq, qa, qb, lo, hi);
      ei__q_store(out, t, yi, v);
    }
    for (int i = r - 2; i >= 0; i--) {
      if (++idx[i] < y.dims[i]) break;
      idx[i] = 0;
    }
  }
  return EI_OK;
}

const char *ei__qbinary_kernel_name(const ei__node *n) {
  if (!strcmp(n->op_type, "QLinearMul")) return "qlinearmul_ref";
  return q8e_of(n) ? q8e_of(n)->add_name : "qlinearadd_ref";
}

/* ---- QLinearGlobalAveragePool: X, x_scale, x_zp, y_scale, y_zp; channels_last ---- */

ei_status ei__qgap_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  (void)g;
  const ei__attr *a = ei__attr_find(n, "channels_last");
  if (a && (a->type != EI_ATTR_INT || a->i < 0 || a->i > 1))
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "attribute channels_last must be 0 or 1");
  if (n->nin < 4) return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "expects 5 inputs, got %d", n->nin);
  if (n->act.kind != EI_ACT_NONE)
    return EI_NN_ERR(n, err, errlen, EI_E_UNSUPPORTED, "fused activations are not supported");
  return q8e_params_init(n);
}

static ei_status qgap_check(const ei__node *node, int nin, const ei__tensor *in, char *err, size_t errlen) {
  ei_status st;
  if ((st = check_q8(node, nin, in, 0, "X", EI_UNDEFINED, err, errlen))) return st;
  const ei_dtype t = in[0].dtype;
  if (in[0].rank < 3)
    return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "input X has rank %d (at least 3: N, C, spatial...)", in[0].rank);
  if ((st = check_pair(node, nin, in, 1, 2, "x_scale", "x_zero_point", t, err, errlen)) ||
      (st = check_pair(node, nin, in, 3, 4, "y_scale", "y_zero_point", t, err, errlen)))
    return st;
  return EI_OK;
}

ei_status ei__qgap_infer(ei__infer *c) {
  ei_status st = qgap_check(c->node, c->nin, c->in, c->err, c->errlen);
  if (st) return st;
  if (c->nout < 1) return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "output Y is required");
  const ei__tensor *x = &c->in[0];
  const int cl = (int)ei__attr_int(c->node, "channels_last", 0);
  int64_t d[EI_MAX_DIMS];
  for (int i = 0; i < x->rank; i++) d[i] = 1;
  d[0] = x->dims[0];
  if (cl)
    d[x->rank - 1] = x->dims[x->rank - 1];
  else
    d[1] = x->dims[1];
  set_out(c, x->dtype, x->rank, d);
  return EI_OK;
}

ei_status ei__qgap_run(ei__run *c) {
  ei_status st = qgap_check(c->node, c->nin, c->in, c->err, c->errlen);
  if (st) return st;
  const ei__tensor *x = &c->in[0];
  const int cl = (int)ei__attr_int(c->node, "channels_last", 0);
  const ei_dtype t = x->dtype;
  const int sgn = t == EI_INT8;
  const int64_t N = x->dims[0], C = cl ? x->dims[x->rank - 1] : x->dims[1];
  const int64_t S = cl ? ei__nn_prod(x->dims + 1, x->rank - 2) : ei__nn_prod(x->dims + 2, x->rank - 2);
  const float xs = ei__q_scale(&c->in[1], 0), ys = ei__q_scale(&c->in[3], 0);
  const int32_t xz = ei__q_zp(c->nin, c->in, 2, 0), yz = ei__q_zp(c->nin, c->in, 4, 0);
  const int32_t lo = ei__qmin(t), hi = ei__qmax(t);
  /* mean = x_scale * sum(x - x_zp) / S, requantized with multiplier x_scale / (y_scale * S) (ONNX Runtime's order) */
  const float mult = xs / (ys * (float)S);
  const ei__q8e_kernels *k = cl ? NULL : q8e_of(c->node);
  for (int64_t n = 0; n < N; n++)
    for (int64_t ch = 0; ch < C; ch++) {
      int64_t sum = 0;
      const int64_t base = cl ? n * S * C + ch : (n * C + ch) * S, step = cl ? C : 1;
      if (k)
        sum = k->sum((const uint8_t *)x->data + base, S, sgn);
      else
        for (int64_t s = 0; s < S; s++) sum += ei__q8_get(x->data, sgn, base + s * step);
      sum -= (int64_t)xz * S;
      const int32_t v = S ? ei__quant_round_sat((float)sum * mult, yz, lo, hi) : ei__quant_round_sat(0.f, yz, lo, hi);
      ei__q_store(c->out[0].data, t, n * C + ch, v);
    }
  return EI_OK;
}

const char *ei__qgap_kernel_name(const ei__node *n) {
  if (q8e_of(n) && !ei__attr_int(n, "channels_last", 0)) return q8e_of(n)->gap_name;
  return "qlinear_global_avgpool_ref";
}

/* ---- QLinearConcat: Y_scale, Y_zp, then (X, X_scale, X_zp) per input; axis ---- */

ei_status ei__qconcat_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  (void)g;
  const ei__attr *a = ei__attr_find(n, "axis");
  if (!a || a->type != EI_ATTR_INT)
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "the int attribute axis is required");
  if (n->nin < 5 || (n->nin - 2) % 3)
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL,
                     "expects Y_scale, Y_zero_point and (X, X_scale, X_zero_point) triples, got %d inputs", n->nin);
  if (n->act.kind != EI_ACT_NONE)
    return EI_NN_ERR(n, err, errlen, EI_E_UNSUPPORTED, "fused activations are not supported");
  return EI_OK;
}

static ei_status qconcat_check(const ei__node *node, int nin, const ei__tensor *in, int *axis, int64_t *odims,
                               char *err, size_t errlen) {
  if (nin < 5 || (nin - 2) % 3)
    return EI_NN_ERR(node, err, errlen, EI_E_INVALID_MODEL, "wrong number of inputs (%d)", nin);
  ei_status st;
  if ((st = check_q8(node, nin, in, 2, "X[0]", EI_UNDEFINED, err, errlen))) return st;
  const ei_dtype t = in[2].dtype;
  if ((st = check_pair(node, nin, in, 0, 1, "Y_scale", "Y_zero_point", t, err, errlen))) return st;
  const int r = in[2].rank;
  const int64_t ax = ei__attr_int(node, "axis", 0);
  *axis = ei__norm_axis(ax, r);
  if (*axis < 0 || r == 0)
    return EI_NN_ERR(node, err, errlen, EI_E_INVALID_MODEL, "axis %lld is out of range for rank %d", (long long)ax, r);
  memcpy(odims, in[2].dims, sizeof(int64_t) * (size_t)r);
  odims[*axis] = 0;
  for (int k = 2; k < nin; k += 3) {
    if ((st = check_q8(node, nin, in, k, "X", t, err, errlen)) ||
        (st = check_pair(node, nin, in, k + 1, k + 2, "X_scale", "X_zero_point", t, err, errlen)))
      return st;
    if (in[k].rank != r)
      return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "input %d has rank %d, the first has rank %d", k, in[k].rank, r);
    for (int d = 0; d < r; d++)
      if (d != *axis && in[k].dims[d] != odims[d])
        return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "input %d differs in dimension %d (%lld vs %lld)", k, d,
                         (long long)in[k].dims[d], (long long)odims[d]);
    if (__builtin_add_overflow(odims[*axis], in[k].dims[*axis], &odims[*axis]))
      return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "concatenated dimension overflows");
  }
  return EI_OK;
}

ei_status ei__qconcat_infer(ei__infer *c) {
  int axis;
  int64_t d[EI_MAX_DIMS];
  ei_status st = qconcat_check(c->node, c->nin, c->in, &axis, d, c->err, c->errlen);
  if (st) return st;
  if (c->nout < 1) return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "output Y is required");
  set_out(c, c->in[2].dtype, c->in[2].rank, d);
  return ei__nn_check_numel(c, d, c->in[2].rank, "output Y");
}

ei_status ei__qconcat_run(ei__run *c) {
  int axis;
  int64_t d[EI_MAX_DIMS];
  ei_status st = qconcat_check(c->node, c->nin, c->in, &axis, d, c->err, c->errlen);
  if (st) return st;
  const ei__tensor *x0 = &c->in[2];
  const ei_dtype t = x0->dtype;
  const int sgn = t == EI_INT8, r = x0->rank;
  const int32_t lo = ei__qmin(t), hi = ei__qmax(t);
  const float ys = ei__q_scale(&c->in[0], 0);
  const int32_t yz = ei__q_zp(c->nin, c->in, 1, 0);
  const int64_t outer = ei__nn_prod(d, axis), inner = ei__nn_prod(d + axis + 1, r - axis - 1);
  const int64_t orow = d[axis] * inner;
  uint8_t *y = c->out[0].data;
  int64_t col = 0; /* offset of this input's block within an output row */
  for (int k = 2; k < c->nin; k += 3) {
    const ei__tensor *x = &c->in[k];
    const int64_t xrow = x->dims[axis] * inner;
    const float xs = ei__q_scale(&c->in[k + 1], 0);
    const int32_t xz = ei__q_zp(c->nin, c->in, k + 2, 0);
    const int same = xs == ys && xz == yz;
    const uint8_t *xd = x->data;
    for (int64_t o = 0; o < outer && xrow > 0; o++) {
      if (same) {
        memcpy(y + o * orow + col, xd + o * xrow, (size_t)xrow);
        continue;
      }
      for (int64_t i = 0; i < xrow; i++) {
        const float v = ei__dequantize(ei__q8_get(xd, sgn, o * xrow + i), xz, xs);
        ei__q_store(y, t, o * orow + col + i, ei__quantize(v, ys, yz, lo, hi));
      }
    }
    col += xrow;
  }
  return EI_OK;
}

const char *ei__qconcat_kernel_name(const ei__node *n) {
  (void)n;
  return "qlinear_concat_ref";
}

/* ---- QLinearSigmoid / QLinearLeakyRelu: X, X_scale, X_zp, Y_scale, Y_zp (a 256-entry table per run) ---- */

static float fn_sigmoid(float x, const void *ctx) {
  (void)ctx;
  return 1.f / (1.f + expf(-x));
}
static float fn_leakyrelu(float x, const void *ctx) {
  const float alpha = *(const float *)ctx;
  return x >= 0.f ? x : alpha * x;
}

ei_status ei__qunary_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  (void)g;
  const ei__attr *a = ei__attr_find(n, "alpha");
  if (a && a->type != EI_ATTR_FLOAT)
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "attribute alpha must be a float");
  if (n->nin < 4) return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "expects 5 inputs, got %d", n->nin);
  if (n->act.kind != EI_ACT_NONE)
    return EI_NN_ERR(n, err, errlen, EI_E_UNSUPPORTED, "fused activations are not supported");
  return EI_OK;
}

static ei_status qunary_check(const ei__node *node, int nin, const ei__tensor *in, char *err, size_t errlen) {
  ei_status st;
  if ((st = check_q8(node, nin, in, 0, "X", EI_UNDEFINED, err, errlen))) return st;
  const ei_dtype t = in[0].dtype;
  if ((st = check_pair(node, nin, in, 1, 2, "X_scale", "X_zero_point", t, err, errlen)) ||
      (st = check_pair(node, nin, in, 3, 4, "Y_scale", "Y_zero_point", t, err, errlen)))
    return st;
  return EI_OK;
}

ei_status ei__qunary_infer(ei__infer *c) {
  ei_status st = qunary_check(c->node, c->nin, c->in, c->err, c->errlen);
  if (st) return st;
  if (c->nout < 1) return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "output Y is required");
  set_out(c, c->in[0].dtype, c->in[0].rank, c->in[0].dims);
  c->workspace = 256;
  return EI_OK;
}

ei_status ei__qunary_run(ei__run *c) {
  ei_status st = qunary_check(c->node, c->nin, c->in, c->err, c->errlen);
  if (st) return st;
  const ei_dtype t = c->in[0].dtype;
  const float alpha = ei__attr_float(c->node, "alpha", 0.01f);
  const int sigmoid = !strcmp(c->node->op_type, "QLinearSigmoid");
  uint8_t *table = c->workspace;
  ei__quant_lut_build(t, ei__q_scale(&c->in[1], 0), ei__q_zp(c->nin, c->in, 2, 0), t, ei__q_scale(&c->in[3], 0),
                      ei__q_zp(c->nin, c->in, 4, 0), sigmoid ? fn_sigmoid : fn_leakyrelu, &alpha, table);
  const int64_t n = ei__numel(&c->in[0]);
  const uint8_t *x = c->in[0].data;
  uint8_t *y = c->out[0].data;
  for (int64_t i = 0; i < n; i++) y[i] = table[x[i]];
  return EI_OK;
}

const char *ei__qunary_kernel_name(const ei__node *n) {
  return !strcmp(n->op_type, "QLinearSigmoid") ? "qlinear_sigmoid_lut" : "qlinear_leakyrelu_lut";
}

/* ---- QLinearLookup (ai.edgeinfer): X, table[256] -> table[(uint8_t)x] ---- */

ei_status ei__qlookup_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  (void)g;
  if (n->nin != 2 || n->in[0] < 0 || n->in[1] < 0)
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "expects inputs X and table");
  if (n->act.kind != EI_ACT_NONE)
    return EI_NN_ERR(n, err, errlen, EI_E_UNSUPPORTED, "fused activations are not supported");
  return EI_OK;
}

static ei_status qlookup_check(const ei__node *node, int nin, const ei__tensor *in, char *err, size_t errlen) {
  ei_status st;
  if ((st = check_q8(node, nin, in, 0, "X", EI_UNDEFINED, err, errlen)) ||
      (st = check_q8(node, nin, in, 1, "table", EI_UNDEFINED, err, errlen)))
    return st;
  if (in[1].rank != 1 || in[1].dims[0] != 256)
    return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "input table must have shape [256]");
  return EI_OK;
}

ei_status ei__qlookup_infer(ei__infer *c) {
  ei_status st = qlookup_check(c->node, c->nin, c->in, c->err, c->errlen);
  if (st) return st;
  if (c->nout < 1) return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "output Y is required");
  set_out(c, c->in[1].dtype, c->in[0].rank, c->in[0].dims);
  return EI_OK;
}

ei_status ei__qlookup_run(ei__run *c) {
  ei_status st = qlookup_check(c->node, c->nin, c->in, c->err, c->errlen);
  if (st) return st;
  const int64_t n = ei__numel(&c->in[0]);
  const uint8_t *x = c->in[0].data, *table = c->in[1].data;
  uint8_t *y = c->out[0].data;
  for (int64_t i = 0; i < n; i++) y[i] = table[x[i]];
  return EI_OK;
}

const char *ei__qlookup_kernel_name(const ei__node *n) {
  (void)n;
  return "qlinear_lookup";
}
