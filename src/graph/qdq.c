/* The QDQ pass: folds DequantizeLinear -> float op -> QuantizeLinear patterns (as ONNX Runtime's quantize_static
 * and other tools write them) into true integer operators, so a tensor stays int8/uint8 between two integer ops:
 *   Conv -> QLinearConv, MatMul -> QLinearMatMul, Gemm -> QGemm (com.microsoft; float output when no Q follows),
 *   Add/Mul -> QLinearAdd/QLinearMul, GlobalAveragePool -> QLinearGlobalAveragePool, Concat -> QLinearConcat
 *   (com.microsoft), a following Relu/Clip -> the integer op's output clamp (node->act),
 *   data movement (MaxPool, Reshape, Flatten, Transpose, Squeeze, Unsqueeze, nearest Resize, ...) with equal
 *   input/output quantization -> the same op on the integer tensor,
 *   an elementwise function (Sigmoid, HardSwish, Tanh, ...) -> a 256-entry table (QLinearLookup),
 *   DequantizeLinear -> QuantizeLinear with equal parameters -> nothing.
 * A pattern is folded only when its target operator exists and every scale and zero point is a constant. */
#include <math.h>
#include <stdio.h>

#include "graph/passes.h"

typedef struct qp {
  int x;       /* the integer value */
  int scale;   /* constant float scale */
  int zp;      /* constant zero point, or -1 */
  int node;    /* the DQ/Q node */
} qp;

static const ei__value *val(const ei__graph *g, int v) { return v >= 0 ? &g->values[v] : NULL; }

static int64_t numel_of(const ei__value *v) {
  int64_t n = 1;
  for (int d = 0; d < v->rank; d++) n *= v->dims[d];
  return n;
}

static int is_op(const ei__node *n, const char *type) { return !n->dead && !n->domain[0] && !strcmp(n->op_type, type); }

/* scale/zp of a Q or DQ node: constants; per-tensor when per_tensor is set. */
static int const_params(const ei__graph *g, const ei__node *n, int per_tensor, qp *q) {
  if (n->nin < 2 || n->in[1] < 0) return 0;
  const ei__value *s = val(g, n->in[1]), *z = n->nin > 2 ? val(g, n->in[2]) : NULL;
  if (!s->is_const || !s->data || s->dtype != EI_FLOAT) return 0;
  if (z && (!z->is_const || !z->data || numel_of(z) != numel_of(s))) return 0;
  if (per_tensor && numel_of(s) != 1) return 0;
  q->scale = n->in[1];
  q->zp = z ? n->in[2] : -1;
  q->node = (int)(n - g->nodes);
  return 1;
}

/* The DequantizeLinear producing v (per-tensor unless allow_axis), with constant parameters. */
static int dq_of(const ei__graph *g, int v, int allow_axis, qp *q) {
  if (v < 0 || g->values[v].producer < 0) return 0;
  const ei__node *n = &g->nodes[g->values[v].producer];
  if (!is_op(n, "DequantizeLinear") || n->nin < 2) return 0;
  const ei__value *x = val(g, n->in[0]);
  if (!x || (x->is_const ? x->dtype != EI_INT8 && x->dtype != EI_UINT8 && x->dtype != EI_INT32 : 0)) return 0;
  if (!const_params(g, n, !allow_axis, q)) return 0;
  q->x = n->in[0];
  return 1;
}

/* The QuantizeLinear that is the only consumer of v (per-tensor), with constant parameters. */
static int q_after(const ei__graph *g, int v, qp *q) {
  int c = ei__pass_single_consumer(g, v);
  if (c < 0) return 0;
  const ei__node *n = &g->nodes[c];
  if (!is_op(n, "QuantizeLinear") || n->in[0] != v || n->nout != 1 || n->out[0] < 0) return 0;
  if (!const_params(g, n, 1, q)) return 0;
  if (q->zp < 0) return 0; /* needs the output type: written by every tool we know */
  q->x = n->out[0];
  return 1;
}

static float scalar_f(const ei__graph *g, int v) { return ((const float *)g->values[v].data)[0]; }

static int32_t scalar_zp(const ei__graph *g, int v) {
  if (v < 0) return 0;
  const ei__value *z = &g->values[v];
  switch (z->dtype) {
    case EI_UINT8: return ((const uint8_t *)z->data)[0];
    case EI_INT8: return ((const int8_t *)z->data)[0];
    case EI_INT32: return ((const int32_t *)z->data)[0];
    default: return 0;
  }
}

static ei_dtype zp_type(const ei__graph *g, const qp *q) { return q->zp >= 0 ? g->values[q->zp].dtype : EI_UINT8; }

/* The integer type of a DequantizeLinear's input: known for constants; for activations (whose types are
 * inferred only when planning) the zero point's type, uint8 when there is none. */
static ei_dtype int_type(const ei__graph *g, const qp *q) {
  const ei__value *x = val(g, q->x);
  return x->is_const ? x->dtype : zp_type(g, q);
}

static int same_params(const ei__graph *g, const qp *a, const qp *b) {
  return scalar_f(g, a->scale) == scalar_f(g, b->scale) && scalar_zp(g, a->zp) == scalar_zp(g, b->zp) &&
         zp_type(g, a) == zp_type(g, b);
}

/* A new constant value; returns its index or -1. */
static int new_const(ei__graph *g, const char *base, const char *suffix, ei_dtype dt, int rank, const int64_t *dims,
                     const void *data) {
  char name[300];
  snprintf(name, sizeof name, "%s:%s", base, suffix);
  int v = ei__graph_add_value(g, name);
  if (v < 0) return -1;
  void *p = ei__value_alloc_const(&g->values[v], dt, rank, dims);
  if (!p) return -1;
  memcpy(p, data, g->values[v].nbytes);
  return v;
}

/* The zero point value of q, or a new zero constant of type dt. */
static int zp_value(ei__graph *g, const qp *q, ei_dtype dt, const char *base, const char *suffix) {
  if (q->zp >= 0) return q->zp;
  int64_t zero = 0;
  return new_const(g, base, suffix, dt, 0, NULL, &zero);
}

/* Rewrites node i into `type` (domain) with the given inputs; its output becomes out. */
static ei_status rewrite(ei__graph *g, int i, const char *type, const char *domain, const int *ins, int nin, int out) {
  ei__node *n = &g->nodes[i];
  const ei__op *op = ei__op_find(domain, type);
  int *nin_arr = ei__calloc((size_t)nin + 1, sizeof(int));
  char *t = ei__strdup(type), *d = ei__strdup(domain);
  if (!op || !nin_arr || !t || !d) {
    ei__free(nin_arr);
    ei__free(t);
    ei__free(d);
    return op ? EI_E_NOMEM : EI_E_UNSUPPORTED;
  }
  memcpy(nin_arr, ins, sizeof(int) * (size_t)nin);
  ei__free(n->in);
  ei__free(n->op_type);
  ei__free(n->domain);
  n->in = nin_arr;
  n->nin = nin;
  n->op_type = t;
  n->domain = d;
  n->op = op;
  if (domain[0]) n->opset = g->opset_ms ? g->opset_ms : 1;
  else n->opset = g->opset_default;
  if (n->out[0] >= 0) g->values[n->out[0]].producer = -1;
  n->out[0] = out;
  g->values[out].producer = i;
  return EI_OK;
}

static int have_op(const char *domain, const char *type) { return ei__op_find(domain, type) != NULL; }

/* A Relu/Clip (constant bounds) that is the only consumer of v: returns its node index and fills act. */
static int act_after(const ei__graph *g, int v, ei__act *act) {
  int c = ei__pass_single_consumer(g, v);
  if (c < 0) return -1;
  const ei__node *a = &g->nodes[c];
  if (a->nout != 1 || a->in[0] != v) return -1;
  if (is_op(a, "Relu")) {
    *act = (ei__act){EI_ACT_RELU, 0, 0};
    return c;
  }
  if (is_op(a, "Clip")) {
    *act = (ei__act){EI_ACT_CLIP, -INFINITY, INFINITY};
    if (a->opset < 11) {
      act->alpha = ei__attr_float(a, "min", -INFINITY);
      act->beta = ei__attr_float(a, "max", INFINITY);
      return c;
    }
    for (int k = 1; k < 3 && k < a->nin; k++) {
      if (a->in[k] < 0) continue;
      const ei__value *b = val(g, a->in[k]);
      if (!b->is_const || b->dtype != EI_FLOAT || numel_of(b) != 1) return -1;
      *(k == 1 ? &act->alpha : &act->beta) = ((const float *)b->data)[0];
    }
    return c;
  }
  return -1;
}

/* Finds the Q after node output y, possibly through a Relu/Clip; on success the act node (or -1) is returned in
 * *actnode. */
static int q_after_act(const ei__graph *g, int y, qp *q, ei__act *act, int *actnode) {
  act->kind = EI_ACT_NONE;
  *actnode = act_after(g, y, act);
  int v = *actnode >= 0 ? g->nodes[*actnode].out[0] : y;
  if (*actnode < 0) act->kind = EI_ACT_NONE;
  return q_after(g, v, q);
}

static void finish(ei__graph *g, int i, const qp *q, int actnode, const ei__act *act) {
  if (actnode >= 0) ei__pass_kill_node(g, &g->nodes[actnode]);
  ei__pass_kill_node(g, &g->nodes[q->node]);
  g->nodes[i].act = act ? *act : (ei__act){EI_ACT_NONE, 0, 0};
}

/* Bias for an integer conv/gemm: int32 with scale x_scale * w_scale[c], zero point 0. Reuses the file's bias when
 * it already has exactly that scale; otherwise requantizes it (from its DequantizeLinear or a float constant). */
static int int_bias(ei__graph *g, const char *base, int bias_in, float xs, const ei__value *ws, int64_t m) {
  const ei__value *b = val(g, bias_in);
  qp bq;
  int from_dq = dq_of(g, bias_in, 1, &bq);
  const ei__value *bx = from_dq ? val(g, bq.x) : b;
  if (!bx->is_const || !bx->data || numel_of(bx) != m) return -1;
  if (from_dq && bx->dtype != EI_INT32) return -1;
  if (!from_dq && bx->dtype != EI_FLOAT) return -1;
  int64_t nws = numel_of(ws), nbs = from_dq ? numel_of(val(g, bq.scale)) : 0;
  const float *wsd = ws->data;
  int exact = from_dq && scalar_zp(g, bq.zp) == 0 && (bq.zp < 0 || numel_of(val(g, bq.zp)) == nbs || nbs == 1);
  for (int64_t c = 0; exact && c < m; c++) {
    float want = xs * wsd[nws == 1 ? 0 : c];
    float have = ((const float *)g->values[bq.scale].data)[nbs == 1 ? 0 : c];
    if (have != want) exact = 0;
    if (bq.zp >= 0 && nbs > 1 && ((const int32_t *)g->values[bq.zp].data)[c] != 0) exact = 0;
  }
  if (exact) return bq.x;
  int32_t *nb = ei__malloc(sizeof(int32_t) * (size_t)(m ? m : 1));
  if (!nb) return -1;
  for (int64_t c = 0; c < m; c++) {
    double f;
    if (from_dq) {
      const float *bs = g->values[bq.scale].data;
      int32_t zp = bq.zp >= 0 ? (nbs == 1 ? scalar_zp(g, bq.zp) : ((const int32_t *)g->values[bq.zp].data)[c]) : 0;
      f = ((double)((const int32_t *)bx->data)[c] - zp) * bs[nbs == 1 ? 0 : c];
    } else {
      f = ((const float *)bx->data)[c];
    }
    double s = (double)(xs * wsd[nws == 1 ? 0 : c]);
    double r = s > 0 ? nearbyint(f / s) : 0;
    nb[c] = r > 2147483647.0 ? INT32_MAX : r < -2147483648.0 ? INT32_MIN : (int32_t)r;
  }
  int v = new_const(g, base, "bias_int32", EI_INT32, 1, &m, nb);
  ei__free(nb);
  return v;
}

/* Conv -> QLinearConv, Gemm -> QGemm, MatMul -> QLinearMatMul. */
static ei_status fold_linear(ei__graph *g, int i) {
  ei__node *n = &g->nodes[i];
  int conv = is_op(n, "Conv"), gemm = is_op(n, "Gemm"), mm = is_op(n, "MatMul");
  if (!(conv || gemm || mm) || n->nout != 1 || n->nin < 2) return EI_OK;
  qp xq, wq, yq;
  ei__act act;
  int actnode = -1;
  if (!dq_of(g, n->in[0], 0, &xq) || val(g, xq.x)->is_const) return EI_OK;
  if (!dq_of(g, n->in[1], 1, &wq)) return EI_OK;
  ei_dtype xt = int_type(g, &xq), wt = int_type(g, &wq);
  if ((xt != EI_UINT8 && xt != EI_INT8) || (wt != EI_UINT8 && wt != EI_INT8)) return EI_OK;
  int has_q = q_after_act(g, n->out[0], &yq, &act, &actnode);
  const char *name = n->name;
  if (conv) {
    if (!has_q || !have_op("", "QLinearConv")) return EI_OK;
    const ei__value *w = val(g, wq.x), *ws = val(g, wq.scale);
    if (!w->is_const || w->rank < 3 || (numel_of(ws) != 1 && numel_of(ws) != w->dims[0])) return EI_OK;
    int64_t oc = w->dims[0]; /* values may move when constants are added below */
    int ins[9] = {xq.x, xq.scale, zp_value(g, &xq, xt, name, "x_zero_point"), wq.x, wq.scale,
                  zp_value(g, &wq, wt, name, "w_zero_point"), yq.scale, yq.zp, -1};
    int nin = 8;
    if (n->nin > 2 && n->in[2] >= 0) {
      ins[8] = int_bias(g, name, n->in[2], scalar_f(g, xq.scale), val(g, wq.scale), oc);
      if (ins[8] < 0) return EI_OK;
      nin = 9;
    }
    if (ins[2] < 0 || ins[5] < 0) return EI_E_NOMEM;
    ei_status s = rewrite(g, i, "QLinearConv", "", ins, nin, yq.x);
    if (s) return s == EI_E_UNSUPPORTED ? EI_OK : s;
    finish(g, i, &yq, actnode, &act);
    return EI_OK;
  }
  if (mm) {
    if (!has_q || !have_op("", "QLinearMatMul")) return EI_OK;
    int ins[8] = {xq.x, xq.scale, zp_value(g, &xq, xt, name, "a_zero_point"), wq.x, wq.scale,
                  zp_value(g, &wq, wt, name, "b_zero_point"), yq.scale, yq.zp};
    if (ins[2] < 0 || ins[5] < 0) return EI_E_NOMEM;
    ei_status s = rewrite(g, i, "QLinearMatMul", "", ins, 8, yq.x);
    if (s) return s == EI_E_UNSUPPORTED ? EI_OK : s;
    finish(g, i, &yq, actnode, &act);
    return EI_OK;
  }
  /* Gemm -> QGemm (float output when no QuantizeLinear follows). */
  if (!have_op("com.microsoft", "QGemm")) return EI_OK;
  if (ei__attr_float(n, "alpha", 1.f) != 1.f || ei__attr_int(n, "transA", 0)) return EI_OK;
  const ei__value *w = val(g, wq.x);
  if (!w->is_const || w->rank != 2) return EI_OK;
  int64_t m = ei__attr_int(n, "transB", 0) ? w->dims[0] : w->dims[1];
  int64_t nws = numel_of(val(g, wq.scale));
  if (nws != 1 && nws != m) return EI_OK;
  int ins[9] = {xq.x, xq.scale, zp_value(g, &xq, xt, name, "a_zero_point"), wq.x, wq.scale,
                zp_value(g, &wq, wt, name, "b_zero_point"), -1, -1, -1};
  if (ins[2] < 0 || ins[5] < 0) return EI_E_NOMEM;
  if (n->nin > 2 && n->in[2] >= 0) {
    if (ei__attr_float(n, "beta", 1.f) != 1.f) return EI_OK;
    ins[6] = int_bias(g, name, n->in[2], scalar_f(g, xq.scale), val(g, wq.scale), m);
    if (ins[6] < 0) return EI_OK;
  }
  int out = n->out[0], nin = 7;
  if (has_q) {
    ins[7] = yq.scale;
    ins[8] = yq.zp;
    nin = 9;
    out = yq.x;
  } else {
    act.kind = EI_ACT_NONE;
  }
  ei_status s = rewrite(g, i, "QGemm", "com.microsoft", ins, nin, out);
  if (s) return s == EI_E_UNSUPPORTED ? EI_OK : s;
  if (has_q) finish(g, i, &yq, actnode, &act);
  return EI_OK;
}

/* Add/Mul -> QLinearAdd/QLinearMul; GlobalAveragePool -> QLinearGlobalAveragePool; Concat -> QLinearConcat. */
static ei_status fold_qlinear_ms(ei__graph *g, int i) {
  ei__node *n = &g->nodes[i];
  const char *target = NULL;
  if (is_op(n, "Add")) target = "QLinearAdd";
  else if (is_op(n, "Mul")) target = "QLinearMul";
  else if (is_op(n, "GlobalAveragePool")) target = "QLinearGlobalAveragePool";
  else if (is_op(n, "Concat")) target = "QLinearConcat";
  if (!target || n->nout != 1 || !have_op("com.microsoft", target)) return EI_OK;
  qp yq, in[64];
  ei__act act;
  int actnode = -1;
  if (n->nin < 1 || n->nin > 64) return EI_OK;
  for (int k = 0; k < n->nin; k++) {
    if (!dq_of(g, n->in[k], 0, &in[k])) return EI_OK;
    ei_dtype t = int_type(g, &in[k]);
    if (t != EI_UINT8 && t != EI_INT8) return EI_OK;
  }
  int allow_act = target[7] == 'A' || target[7] == 'M'; /* QLinearAdd / QLinearMul */
  if (!q_after_act(g, n->out[0], &yq, &act, &actnode)) return EI_OK;
  if (actnode >= 0 && !allow_act) return EI_OK;
  ei_dtype yt = zp_type(g, &yq);
  for (int k = 0; k < n->nin; k++)
    if (int_type(g, &in[k]) != yt) return EI_OK; /* mixed u8/s8: leave float */
  int ins[3 * 64 + 2], nin = 0;
  if (!strcmp(target, "QLinearConcat")) {
    ins[nin++] = yq.scale;
    ins[nin++] = yq.zp;
    for (int k = 0; k < n->nin; k++) {
      ins[nin++] = in[k].x;
      ins[nin++] = in[k].scale;
      if ((ins[nin++] = zp_value(g, &in[k], yt, n->name, "zero_point")) < 0) return EI_E_NOMEM;
    }
  } else {
    for (int k = 0; k < n->nin; k++) {
      ins[nin++] = in[k].x;
      ins[nin++] = in[k].scale;
      if ((ins[nin++] = zp_value(g, &in[k], yt, n->name, "zero_point")) < 0) return EI_E_NOMEM;
    }
    ins[nin++] = yq.scale;
    ins[nin++] = yq.zp;
  }
  ei_status s = rewrite(g, i, target, "com.microsoft", ins, nin, yq.x);
  if (s) return s == EI_E_UNSUPPORTED ? EI_OK : s;
  finish(g, i, &yq, actnode, &act);
  return EI_OK;
}

/* Data movement with equal input/output quantization: the same op on the integer tensor. */
static ei_status fold_movement(ei__graph *g, int i) {
  ei__node *n = &g->nodes[i];
  static const char *const ops[] = {"MaxPool", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze",
                                    "Resize", "Identity", "Slice", "Gather", "DepthToSpace", "SpaceToDepth",
                                    "Expand", "GlobalMaxPool", NULL};
  int match = 0;
  for (int k = 0; ops[k] && !match; k++) match = is_op(n, ops[k]);
  if (!match || n->nout < 1 || n->nin < 1) return EI_OK;
  for (int k = 1; k < n->nout; k++)
    if (n->out[k] >= 0 && ei__pass_use_count(g, n->out[k])) return EI_OK; /* MaxPool indices etc. */
  if (is_op(n, "Resize") && strcmp(ei__attr_str(n, "mode", "nearest"), "nearest")) return EI_OK;
  qp xq, yq;
  if (!dq_of(g, n->in[0], 0, &xq) || !q_after(g, n->out[0], &yq) || !same_params(g, &xq, &yq)) return EI_OK;
  ei_dtype t = int_type(g, &xq);
  if (t != EI_UINT8 && t != EI_INT8) return EI_OK;
  n->in[0] = xq.x;
  g->values[n->out[0]].producer = -1;
  n->out[0] = yq.x;
  g->values[yq.x].producer = i;
  ei__pass_kill_node(g, &g->nodes[yq.node]);
  return EI_OK;
}

/* f(x) between DQ and Q, for a per-tensor elementwise float function: a 256-entry table. Tanh has no ei__act
 * kind: *is_tanh is set instead. */
static int unary_fn(const ei__node *n, ei__act *a, int *is_tanh) {
  *is_tanh = 0;
  if (is_op(n, "Sigmoid")) return *a = (ei__act){EI_ACT_SIGMOID, 0, 0}, 1;
  if (is_op(n, "HardSwish")) return *a = (ei__act){EI_ACT_HARDSWISH, 0, 0}, 1;
  if (is_op(n, "Relu")) return *a = (ei__act){EI_ACT_RELU, 0, 0}, 1;
  if (is_op(n, "LeakyRelu")) return *a = (ei__act){EI_ACT_LEAKYRELU, ei__attr_float(n, "alpha", 0.01f), 0}, 1;
  if (is_op(n, "HardSigmoid"))
    return *a = (ei__act){EI_ACT_HARDSIGMOID, ei__attr_float(n, "alpha", 0.2f), ei__attr_float(n, "beta", 0.5f)}, 1;
  if (is_op(n, "Tanh")) return *a = (ei__act){EI_ACT_NONE, 0, 0}, *is_tanh = 1;
  return 0;
}

static ei_status fold_lookup(ei__graph *g, int i) {
  ei__node *n = &g->nodes[i];
  ei__act f;
  int is_tanh;
  if (n->nout != 1 || n->nin < 1 || !unary_fn(n, &f, &is_tanh) || !have_op("ai.edgeinfer", "QLinearLookup")) return EI_OK;
  qp xq, yq;
  if (!dq_of(g, n->in[0], 0, &xq) || !q_after(g, n->out[0], &yq)) return EI_OK;
  ei_dtype xt = int_type(g, &xq), yt = zp_type(g, &yq);
  if ((xt != EI_UINT8 && xt != EI_INT8) || xt != yt) return EI_OK;
  float xs = scalar_f(g, xq.scale), ys = scalar_f(g, yq.scale);
  int32_t xz = scalar_zp(g, xq.zp), yz = scalar_zp(g, yq.zp);
  int lo = yt == EI_UINT8 ? 0 : -128, hi = yt == EI_UINT8 ? 255 : 127;
  uint8_t table[256];
  for (int k = 0; k < 256; k++) {
    int q = xt == EI_UINT8 ? k : (int)(int8_t)(uint8_t)k; /* table index is the raw byte */
    float x = (float)(q - xz) * xs;
    float y = is_tanh ? tanhf(x) : ei__act_apply(&f, x);
    float r = nearbyintf(y / ys) + (float)yz;
    int v = r < lo ? lo : r > hi ? hi : (int)r;
    table[k] = (uint8_t)v;
  }
  int64_t d = 256;
  int tv = new_const(g, n->name, "table", yt, 1, &d, table);
  if (tv < 0) return EI_E_NOMEM;
  int ins[2] = {xq.x, tv};
  ei_status s = rewrite(g, i, "QLinearLookup", "ai.edgeinfer", ins, 2, yq.x);
  if (s) return s == EI_E_UNSUPPORTED ? EI_OK : s;
  ei__pass_kill_node(g, &g->nodes[yq.node]);
  return EI_OK;
}

/* DequantizeLinear -> QuantizeLinear with equal parameters: consumers read the integer tensor directly. */
static void drop_dq_q(ei__graph *g) {
  for (int i = 0; i < g->nnodes; i++) {
    ei__node *q = &g->nodes[i];
    if (!is_op(q, "QuantizeLinear") || q->nout != 1 || q->out[0] < 0 || g->values[q->out[0]].is_output) continue;
    qp xq, yq;
    if (!dq_of(g, q->in[0], 0, &xq) || !const_params(g, q, 1, &yq) || yq.zp < 0 || !same_params(g, &xq, &yq)) continue;
    ei__pass_replace_uses(g, q->out[0], xq.x);
    ei__pass_kill_node(g, q);
  }
}

ei_status ei__pass_qdq(ei__graph *g, char *err, size_t errlen) {
  int any = 0;
  for (int i = 0; i < g->nnodes && !any; i++) any = is_op(&g->nodes[i], "DequantizeLinear");
  if (!any) return EI_OK;
  ei_status s = EI_OK;
  for (int i = 0; i < g->nnodes && !s; i++) s = fold_linear(g, i);
  for (int i = 0; i < g->nnodes && !s; i++) s = fold_qlinear_ms(g, i);
  for (int i = 0; i < g->nnodes && !s; i++) s = fold_lookup(g, i);
  for (int pass = 0; pass < 4 && !s; pass++) /* chains of movement ops */
    for (int i = 0; i < g->nnodes && !s; i++) s = fold_movement(g, i);
  if (!s) drop_dq_q(g);
  if (s) return ei__err(err, errlen, s, "out of memory folding quantized patterns");
  return EI_OK;
}
