/* The QDQ model writer of `edgeinfer quantize`, the atomic file write, and the float-vs-quantized comparison.
 *
 * From the calibrated, optimized float IR (BatchNorm folded, Relu/Clip fused for uint8) it writes a fresh ONNX
 * model (opset >= 13) in the layout of ONNX Runtime's quantize_static QDQ format, which ONNX Runtime fuses into
 * QLinearConv / QGemm / QLinearMatMul / QLinearAdd / ... and our QDQ pass folds into integer operators:
 *   - Conv, Gemm, MatMul: DequantizeLinear on the input activation; int8 symmetric weights (per output channel:
 *     axis 0 for Conv and Gemm with transB=1, axis 1 for MatMul and Gemm with transB=0; or per tensor with rank-0
 *     scales) behind a DequantizeLinear; an int32 bias of scale x_scale * w_scale[c] (zero point 0) behind a
 *     DequantizeLinear (axis 0); the output through QuantizeLinear -> DequantizeLinear.
 *   - Add, Mul, Concat, AveragePool, GlobalAveragePool, Sigmoid, HardSwish, HardSigmoid, LeakyRelu and Relu/Clip
 *     that are nodes of their own: every data input dequantized, the output quantized with its own range
 *     (Concat's inputs and output share one range); constant data inputs become quantized initializers.
 *   - Data movement (MaxPool, GlobalMaxPool, Resize, Flatten, Reshape, Transpose, Squeeze, Unsqueeze, Slice,
 *     Gather, Expand, Tile, DepthToSpace, SpaceToDepth) of a quantized tensor: the output shares the input's scale
 *     and zero point (ONNX Runtime then drops the pair where it has an integer kernel).
 *   - A fused Relu/Clip (uint8) is not written: its effect is in the calibrated range of the output (zero point 0
 *     after a Relu). Other fused activations, and any on a node left in float, are written as nodes of their own.
 *   - A quantized tensor has one QuantizeLinear -> DequantizeLinear pair, written right after its producer; every
 *     consumer of a tensor produced by a quantized node reads the DequantizeLinear (as quantize_static writes it:
 *     ONNX Runtime duplicates DQs per node unit itself, and converts int8 pairs to uint8 only when the Q has that
 *     one consumer), and a graph output is that DequantizeLinear, under the output's name.
 *   - Nodes named in --exclude (and nodes that cannot be quantized) stay float: their inputs are dequantized, their
 *     outputs quantized only for the quantized consumers.
 * Activations: uint8 asymmetric per tensor (rank-0 scale and zero point) or int8 symmetric (zero point 0). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx/writer.h"
#include "quant/quantize.h"
#include "quant/requant.h"

enum { K_FLOAT = 0, K_LINEAR, K_BINARY, K_CONCAT, K_UNARY, K_MOVE };

enum { F_INITIALIZER = 5, F_INPUT = 11, F_OUTPUT = 12 }; /* GraphProto fields */

/* ---- a set of names (open addressing) ---- */

typedef struct nameset {
  char **slot;
  size_t cap, n;
} nameset;

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
  return h;
}

static char **ns_find(nameset *s, const char *name) {
  size_t i = (size_t)hash_str(name) & (s->cap - 1);
  while (s->slot[i] && strcmp(s->slot[i], name)) i = (i + 1) & (s->cap - 1);
  return &s->slot[i];
}

static int ns_grow(nameset *s) {
  size_t cap = s->cap ? s->cap * 2 : 1024;
  char **old = s->slot;
  size_t oldcap = s->cap;
  s->slot = ei__calloc(cap, sizeof(char *));
  if (!s->slot) {
    s->slot = old;
    return 0;
  }
  s->cap = cap;
  for (size_t i = 0; i < oldcap; i++)
    if (old[i]) *ns_find(s, old[i]) = old[i];
  ei__free(old);
  return 1;
}

/* Adds name; returns the stored copy (the existing one when present), NULL on allocation failure. */
static const char *ns_add(nameset *s, const char *name) {
  if ((s->n + 1) * 2 > s->cap && !ns_grow(s)) return NULL;
  char **p = ns_find(s, name);
  if (*p) return *p;
  if (!(*p = ei__strdup(name))) return NULL;
  s->n++;
  return *p;
}

static int ns_has(nameset *s, const char *name) { return s->cap && *ns_find(s, name) != NULL; }

static void ns_free(nameset *s) {
  for (size_t i = 0; i < s->cap; i++) ei__free(s->slot[i]);
  ei__free(s->slot);
  memset(s, 0, sizeof *s);
}

/* ---- the builder ---- */

typedef struct qparam {
  float scale;
  int32_t zp;
} qparam;

typedef struct builder {
  const ei__calib *c;
  const ei__graph *g;
  ei__pbw w;
  ei_dtype at;            /* activation type */
  int s8;
  int opset;
  int simulate;           /* weights and biases as float constants (their dequantized values) */
  int bias_hooks;         /* simulate: an Add of a zero constant after each quantized Conv/Gemm (bias correction) */
  const uint8_t *keep_float; /* per node: left in float (or NULL) */
  nameset names;
  uint8_t *quant;         /* per node: written quantized */
  uint8_t *kind;          /* per node: K_* */
  uint8_t *prod_q;        /* per value: produced by a quantized node */
  uint8_t *need_q;        /* per value: has a QuantizeLinear */
  uint8_t *init_done;     /* per value: constant written as an initializer */
  uint8_t *param_done;    /* per value (group root): scale/zero point initializers written */
  int *parent;            /* per value: union-find over values sharing quantization parameters */
  qparam *param;          /* per value (group root) */
  const char **pname;     /* per value: name of the float tensor as written */
  const char **qname;     /* per value: its QuantizeLinear output */
  const char **dqname;    /* per value: the DequantizeLinear output of qname */
  const char **sname, **zname; /* per value (group root): scale and zero point initializers */
  ei__qlayer *layers;
  int nlayers;
  int *tensors;           /* values given a QuantizeLinear */
  int ntensors;
  void (*warn)(void *, const char *);
  void *warn_ctx;
  char *err;
  size_t errlen;
  ei_status status;
} builder;

static void warnf(builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warnf(builder *b, const char *fmt, ...) {
  if (!b->warn) return;
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  b->warn(b->warn_ctx, msg);
}

static void fail_nomem(builder *b) {
  if (!b->status) b->status = ei__err(b->err, b->errlen, EI_E_NOMEM, "out of memory writing the quantized model");
}

/* A new unique name: base + suffix, or base + suffix + "_N". Never NULL (an empty name after a failure). */
static const char *uniq(builder *b, const char *base, const char *suffix) {
  char buf[1024];
  snprintf(buf, sizeof buf, "%s%s", base, suffix);
  for (int k = 2; ns_has(&b->names, buf); k++) snprintf(buf, sizeof buf, "%s%s_%d", base, suffix, k);
  const char *s = ns_add(&b->names, buf);
  if (!s) {
    fail_nomem(b);
    return "";
  }
  return s;
}

/* ---- classification ---- */

static int is_op(const ei__node *n, const char *t) { return !n->domain[0] && !strcmp(n->op_type, t); }

static int op_kind(const ei__node *n) {
  static const char *const linear[] = {"Conv", "Gemm", "MatMul", NULL};
  static const char *const binary[] = {"Add", "Mul", NULL};
  static const char *const unary[] = {"AveragePool", "GlobalAveragePool", "Sigmoid", "HardSwish", "HardSigmoid",
                                      "LeakyRelu", "Relu", "Clip", NULL};
  static const char *const move[] = {"MaxPool", "GlobalMaxPool", "Resize", "Flatten", "Reshape", "Transpose",
                                     "Squeeze", "Unsqueeze", "Slice", "Gather", "Expand", "Tile", "DepthToSpace",
                                     "SpaceToDepth", NULL};
  if (n->domain[0]) return K_FLOAT;
  for (int i = 0; linear[i]; i++) if (!strcmp(n->op_type, linear[i])) return K_LINEAR;
  for (int i = 0; binary[i]; i++) if (!strcmp(n->op_type, binary[i])) return K_BINARY;
  for (int i = 0; unary[i]; i++) if (!strcmp(n->op_type, unary[i])) return K_UNARY;
  for (int i = 0; move[i]; i++) if (!strcmp(n->op_type, move[i])) return K_MOVE;
  if (!strcmp(n->op_type, "Concat")) return K_CONCAT;
  return K_FLOAT;
}

static ei_dtype vtype(const builder *b, int v) {
  if (v < 0) return EI_UNDEFINED;
  const ei__value *val = &b->g->values[v];
  if (val->is_const) return val->dtype;
  const ei__plan *p = b->c->probe.plan;
  return p && p->kind[v] != EI_VK_UNUSED ? p->vals[v].dtype : val->dtype;
}

static int is_const(const builder *b, int v) { return v >= 0 && b->g->values[v].is_const; }

/* Computed at plan time from shapes only (Shape -> Gather -> ... arithmetic): not an activation. */
static int plan_known(const builder *b, int v) {
  const ei__plan *p = b->c->probe.plan;
  return p && v >= 0 && p->kind[v] == EI_VK_KNOWN;
}

/* A float activation with a calibrated range. */
static int is_act(const builder *b, int v) {
  return v >= 0 && !is_const(b, v) && !plan_known(b, v) && vtype(b, v) == EI_FLOAT && b->c->has_range[v];
}

static int is_float_const(const builder *b, int v) {
  return is_const(b, v) && b->g->values[v].dtype == EI_FLOAT && b->g->values[v].data;
}

static int64_t vnumel(const ei__value *v) {
  int64_t n = 1;
  for (int d = 0; d < v->rank; d++) n *= v->dims[d];
  return n;
}

static int excluded(const builder *b, const ei__node *n) {
  for (int i = 0; i < b->c->opt.nexclude; i++)
    if (!strcmp(b->c->opt.exclude[i], n->name)) return 1;
  return 0;
}

/* Outputs beyond the first are absent or unused (MaxPool indices...). */
static int single_output(const builder *b, const ei__node *n) {
  for (int k = 1; k < n->nout; k++) {
    int v = n->out[k];
    if (v < 0) continue;
    if (b->g->values[v].is_output) return 0;
    for (int i = 0; i < b->g->nnodes; i++)
      for (int j = 0; j < b->g->nodes[i].nin; j++)
        if (b->g->nodes[i].in[j] == v) return 0;
  }
  return 1;
}

/* The N of a Gemm (columns of the output) with constant B; -1 if B is not a constant 2-D float. */
static int64_t gemm_n(const builder *b, const ei__node *n) {
  if (n->nin < 2 || !is_float_const(b, n->in[1])) return -1;
  const ei__value *w = &b->g->values[n->in[1]];
  if (w->rank != 2) return -1;
  return ei__attr_int(n, "transB", 0) ? w->dims[0] : w->dims[1];
}

/* A Gemm bias C that is constant float and broadcasts along N only (numel 1 or N, leading dims 1). */
static int gemm_bias_ok(const builder *b, const ei__node *n, int64_t N) {
  if (n->nin < 3 || n->in[2] < 0) return 1;
  if (!is_float_const(b, n->in[2]) || ei__attr_float(n, "beta", 1.f) != 1.f) return 0;
  const ei__value *c = &b->g->values[n->in[2]];
  int64_t cnt = vnumel(c);
  if (cnt != 1 && cnt != N) return 0;
  for (int d = 0; d + 1 < c->rank; d++)
    if (c->dims[d] != 1) return 0;
  return 1;
}

static const char *why_linear(const builder *b, const ei__node *n) {
  if (!is_act(b, n->in[0])) return "its input is not a float activation";
  if (is_op(n, "Conv")) {
    if (!is_float_const(b, n->in[1]) || b->g->values[n->in[1]].rank < 3) return "its weight is not a constant";
    if (n->nin > 2 && n->in[2] >= 0 &&
        (!is_float_const(b, n->in[2]) || vnumel(&b->g->values[n->in[2]]) != b->g->values[n->in[1]].dims[0]))
      return "its bias is not a constant of one value per output channel";
    return NULL;
  }
  if (is_op(n, "Gemm")) {
    int64_t N = gemm_n(b, n);
    if (N < 0) return "B is not a constant 2-D weight";
    if (ei__attr_float(n, "alpha", 1.f) != 1.f) return "alpha is not 1";
    if (!gemm_bias_ok(b, n, N)) return "C is not a constant bias along N with beta 1";
    return NULL;
  }
  /* MatMul */
  if (is_float_const(b, n->in[1])) return NULL;
  if (!is_act(b, n->in[1])) return "B is neither a constant nor a float activation";
  return NULL;
}

/* Why node i cannot be quantized (NULL: it can). */
static const char *why_not(const builder *b, int i) {
  const ei__node *n = &b->g->nodes[i];
  int kind = b->kind[i];
  if (n->nout < 1 || !is_act(b, n->out[0])) return "its output is not a calibrated float tensor";
  if (!single_output(b, n)) return "it has more than one used output";
  if (n->act.kind != EI_ACT_NONE && (b->s8 || (n->act.kind != EI_ACT_RELU && n->act.kind != EI_ACT_CLIP)))
    return "its fused activation cannot fold into the quantization range";
  switch (kind) {
    case K_LINEAR: return why_linear(b, n);
    case K_BINARY:
      if (n->nin != 2) return "it does not have two inputs";
      for (int k = 0; k < 2; k++)
        if (!is_act(b, n->in[k]) && !is_float_const(b, n->in[k])) return "an input is not float";
      if (is_const(b, n->in[0]) && is_const(b, n->in[1])) return "both inputs are constants";
      return NULL;
    case K_CONCAT:
      for (int k = 0; k < n->nin; k++)
        if (!is_act(b, n->in[k])) return "an input is not a float activation";
      return NULL;
    case K_UNARY:
      return is_act(b, n->in[0]) ? NULL : "its input is not a float activation";
    case K_MOVE:
      return n->in[0] >= 0 && b->prod_q[n->in[0]] ? NULL : "its input is not quantized";
    default: return "no quantized form";
  }
}

/* Inputs of node n that are quantized activations (read through a DequantizeLinear) when n is quantized. */
static int data_input(const builder *b, const ei__node *n, int kind, int k) {
  int v = n->in[k];
  if (v < 0 || is_const(b, v)) return 0;
  switch (kind) {
    case K_LINEAR: return k == 0 || (k == 1 && is_op(n, "MatMul"));
    case K_BINARY:
    case K_CONCAT: return 1;
    case K_UNARY:
    case K_MOVE: return k == 0;
    default: return 0;
  }
}

static int uf_find(int *parent, int v) {
  while (parent[v] != v) {
    parent[v] = parent[parent[v]];
    v = parent[v];
  }
  return v;
}

static void uf_union(int *parent, int a, int b) {
  a = uf_find(parent, a);
  b = uf_find(parent, b);
  if (a != b) parent[b < a ? a : b] = b < a ? b : a;
}

/* Quantization parameters of a range for the activation type (ONNX Runtime's compute_scale_zp). */
static qparam act_param(int s8, double lo, double hi) {
  qparam q = {1.f, 0};
  if (lo > 0) lo = 0;
  if (hi < 0) hi = 0;
  if (s8) {
    double a = fmax(-lo, hi);
    if (a > 0 && isfinite(a)) q.scale = (float)(a / 127.0);
    return q;
  }
  if (!(hi - lo > 0) || !isfinite(hi - lo)) return q;
  q.scale = (float)((hi - lo) / 255.0);
  double z = nearbyint(-lo / (double)q.scale);
  q.zp = z < 0 ? 0 : z > 255 ? 255 : (int32_t)z;
  return q;
}

static ei_status classify(builder *b) {
  const ei__graph *g = b->g;
  for (int v = 0; v < g->nvalues; v++) b->parent[v] = v;
  for (int i = 0; i < g->nnodes; i++) {
    const ei__node *n = &g->nodes[i];
    b->kind[i] = (uint8_t)op_kind(n);
    if (b->kind[i] == K_FLOAT || excluded(b, n) || (b->keep_float && b->keep_float[i])) continue;
    if (n->nout < 1 || vtype(b, n->out[0]) != EI_FLOAT || plan_known(b, n->out[0])) continue; /* shape arithmetic */
    const char *why = why_not(b, i);
    if (why) {
      if (b->kind[i] != K_MOVE) warnf(b, "node '%s' (%s) stays float: %s", n->name, n->op_type, why);
      continue;
    }
    b->quant[i] = 1;
    b->prod_q[n->out[0]] = 1;
  }
  for (int i = 0; i < g->nnodes; i++) {
    const ei__node *n = &g->nodes[i];
    if (!b->quant[i]) continue;
    b->need_q[n->out[0]] = 1;
    for (int k = 0; k < n->nin; k++)
      if (data_input(b, n, b->kind[i], k)) b->need_q[n->in[k]] = 1;
    if (b->kind[i] == K_MOVE) uf_union(b->parent, n->in[0], n->out[0]);
    if (b->kind[i] == K_CONCAT)
      for (int k = 0; k < n->nin; k++) uf_union(b->parent, n->in[k], n->out[0]);
  }
  /* group ranges -> parameters */
  float *glo = ei__calloc((size_t)g->nvalues + 1, sizeof(float)), *ghi = ei__calloc((size_t)g->nvalues + 1, sizeof(float));
  if (!glo || !ghi) {
    ei__free(glo);
    ei__free(ghi);
    fail_nomem(b);
    return b->status;
  }
  for (int v = 0; v < g->nvalues; v++) glo[v] = INFINITY, ghi[v] = -INFINITY;
  for (int v = 0; v < g->nvalues; v++) {
    if (!b->need_q[v]) continue;
    int r = uf_find(b->parent, v);
    if (b->c->lo[v] < glo[r]) glo[r] = b->c->lo[v];
    if (b->c->hi[v] > ghi[r]) ghi[r] = b->c->hi[v];
  }
  for (int v = 0; v < g->nvalues; v++)
    if (b->need_q[v] && uf_find(b->parent, v) == v) b->param[v] = act_param(b->s8, glo[v], ghi[v]);
  ei__free(glo);
  ei__free(ghi);
  return EI_OK;
}

/* ---- initializers ---- */

static void write_init(builder *b, const char *name, ei_dtype dt, int rank, const int64_t *dims, const void *data) {
  ei__onnxw_tensor(&b->w, F_INITIALIZER, name, dt, rank, dims, data);
}

/* The constant value v as an initializer (once), under its own name. */
static const char *const_input(builder *b, int v) {
  const ei__value *val = &b->g->values[v];
  if (!b->init_done[v]) {
    b->init_done[v] = 1;
    if (!val->data && vnumel(val) > 0) {
      if (!b->status)
        b->status = ei__err(b->err, b->errlen, EI_E_INTERNAL, "constant '%s' has no data to write", val->name);
      return val->name;
    }
    write_init(b, val->name, val->dtype, val->rank, val->dims, val->data);
  }
  return val->name;
}

/* Scale and zero point initializers of v's group (rank 0). */
static void group_params(builder *b, int v, const char **s, const char **z, qparam *q) {
  int r = uf_find(b->parent, v);
  if (!b->param_done[r]) {
    b->param_done[r] = 1;
    const char *base = b->g->values[r].name;
    b->sname[r] = uniq(b, base, "_scale");
    b->zname[r] = uniq(b, base, "_zero_point");
    write_init(b, b->sname[r], EI_FLOAT, 0, NULL, &b->param[r].scale);
    if (b->s8) {
      int8_t z8 = (int8_t)b->param[r].zp;
      write_init(b, b->zname[r], EI_INT8, 0, NULL, &z8);
    } else {
      uint8_t z8 = (uint8_t)b->param[r].zp;
      write_init(b, b->zname[r], EI_UINT8, 0, NULL, &z8);
    }
  }
  *s = b->sname[r];
  *z = b->zname[r];
  if (q) *q = b->param[r];
}

/* ---- nodes ---- */

static void node1(builder *b, const char *name, const char *op, const char *const *ins, int nin, const char *out) {
  ei__onnxw_node_begin(&b->w, name, op, "", ins, nin, &out, 1);
}

/* QuantizeLinear of value v (whose float tensor is pname[v]) into qname[v]. */
static void emit_q(builder *b, int v) {
  b->tensors[b->ntensors++] = v;
  const char *s, *z;
  group_params(b, v, &s, &z, NULL);
  const char *base = b->g->values[v].name;
  b->qname[v] = uniq(b, base, "_QuantizeLinear_Output");
  const char *ins[3] = {b->pname[v], s, z};
  node1(b, uniq(b, base, "_QuantizeLinear"), "QuantizeLinear", ins, 3, b->qname[v]);
  ei__pbw_end(&b->w);
}

/* The DequantizeLinear of qname[v] into dqname[v] (the graph output's name when v is a quantized graph output). */
static void emit_dq(builder *b, int v) {
  const char *s, *z;
  group_params(b, v, &s, &z, NULL);
  const ei__value *val = &b->g->values[v];
  b->dqname[v] = val->is_output && b->prod_q[v] ? val->name : uniq(b, val->name, "_DequantizeLinear_Output");
  const char *ins[3] = {b->qname[v], s, z};
  node1(b, uniq(b, val->name, "_DequantizeLinear"), "DequantizeLinear", ins, 3, b->dqname[v]);
  ei__pbw_end(&b->w);
}

/* Simulation models: the dequantized values of n integers q (int8 or int32; element e scaled by scale[(e / inner) %
 * nscale]) as a float initializer named after base. Frees q when it is int8 (the caller's weight buffer). */
static const char *write_dequantized(builder *b, const char *base, void *q, ei_dtype qt, int64_t n, const float *scale,
                                     int64_t nscale, int64_t inner, int rank, const int64_t *dims) {
  float *x = ei__malloc(sizeof(float) * (size_t)(n + 1));
  const char *name = uniq(b, base, "_dequantized");
  if (!x) {
    fail_nomem(b);
  } else {
    for (int64_t e = 0; e < n; e++) {
      int32_t v = qt == EI_INT8 ? ((const int8_t *)q)[e] : ((const int32_t *)q)[e];
      x[e] = ei__dequantize(v, 0, scale[(e / inner) % nscale]);
    }
    write_init(b, name, EI_FLOAT, rank, dims, x);
  }
  ei__free(x);
  if (qt == EI_INT8) ei__free(q);
  return name;
}

int ei__quant_weight_axis(const ei__node *n, const ei__value *w, int per_tensor) {
  if (per_tensor) return -1;
  if (is_op(n, "Conv")) return 0;
  if (is_op(n, "Gemm")) return ei__attr_int(n, "transB", 0) ? 0 : 1;
  return w->rank == 2 ? 1 : -1;
}

void ei__quant_weight(const ei__value *w, int axis, float *sc, int8_t *q) {
  const float *x = w->data;
  int64_t n = vnumel(w), ch = axis >= 0 ? w->dims[axis] : 1, inner = 1;
  for (int d = axis + 1; axis >= 0 && d < w->rank; d++) inner *= w->dims[d];
  /* element e belongs to channel (e / inner) % ch */
  float *amax = sc;
  for (int64_t c = 0; c < ch; c++) amax[c] = 0;
  for (int64_t e = 0; e < n; e++) {
    int64_t c = axis >= 0 ? (e / inner) % ch : 0;
    float a = fabsf(x[e]);
    if (a > amax[c] && isfinite(a)) amax[c] = a;
  }
  for (int64_t c = 0; c < ch; c++) sc[c] = amax[c] > 0 ? amax[c] / 127.f : 1.f;
  for (int64_t e = 0; e < n; e++) {
    int64_t c = axis >= 0 ? (e / inner) % ch : 0;
    q[e] = (int8_t)ei__quantize(x[e], sc[c], 0, -127, 127);
  }
}

/* Int8 symmetric weights of constant w, per channel along axis (or per tensor when axis < 0), behind a
 * DequantizeLinear. Returns the DQ output; *scales (ei__malloc'd, *nscales entries) receives the scales. */
static const char *emit_weight(builder *b, int wv, int axis, float **scales, int64_t *nscales) {
  const ei__value *w = &b->g->values[wv];
  int64_t n = vnumel(w), ch = axis >= 0 ? w->dims[axis] : 1, inner = 1;
  for (int d = axis + 1; axis >= 0 && d < w->rank; d++) inner *= w->dims[d];
  float *sc = ei__calloc((size_t)ch + 1, sizeof(float));
  int8_t *q = ei__malloc((size_t)n + 1), *zp = ei__calloc((size_t)ch + 1, 1);
  *scales = sc;
  *nscales = ch;
  if (!sc || !q || !zp) {
    ei__free(q);
    ei__free(zp);
    fail_nomem(b);
    return "";
  }
  ei__quant_weight(w, axis, sc, q);
  const char *base = w->name;
  if (b->simulate) {
    ei__free(zp);
    return write_dequantized(b, w->name, q, EI_INT8, n, sc, ch, inner, w->rank, w->dims);
  }
  const char *qn = uniq(b, base, "_quantized"), *sn = uniq(b, base, "_scale"), *zn = uniq(b, base, "_zero_point");
  write_init(b, qn, EI_INT8, w->rank, w->dims, q);
  if (axis >= 0) {
    write_init(b, sn, EI_FLOAT, 1, &ch, sc);
    write_init(b, zn, EI_INT8, 1, &ch, zp);
  } else {
    write_init(b, sn, EI_FLOAT, 0, NULL, sc);
    write_init(b, zn, EI_INT8, 0, NULL, zp);
  }
  ei__free(q);
  ei__free(zp);
  const char *out = uniq(b, base, "_DequantizeLinear_Output");
  const char *ins[3] = {qn, sn, zn};
  node1(b, uniq(b, base, "_DequantizeLinear"), "DequantizeLinear", ins, 3, out);
  if (axis >= 0) ei__onnxw_attr_int(&b->w, "axis", axis);
  ei__pbw_end(&b->w);
  return out;
}

/* Int32 bias of length m with scale x_scale * w_scale[c], zero point 0: the float bias x (nb values broadcasting
 * along m; NULL: zeros) plus the bias correction delta (m values; may be NULL). base names the initializers. */
static const char *emit_bias(builder *b, const float *x, int64_t nb, const char *base, int64_t m, float x_scale,
                             const float *ws, int64_t nws, const float *delta) {
  int32_t *q = ei__malloc(sizeof(int32_t) * (size_t)(m + 1)), *zp = ei__calloc((size_t)m + 1, sizeof(int32_t));
  float *bs = ei__malloc(sizeof(float) * (size_t)(m + 1));
  if (!q || !zp || !bs) {
    ei__free(q);
    ei__free(zp);
    ei__free(bs);
    fail_nomem(b);
    return "";
  }
  for (int64_t c = 0; c < m; c++) {
    bs[c] = x_scale * ws[nws == 1 ? 0 : c]; /* float32, as the integer kernels compute it */
    double v = (x ? (double)x[nb == 1 ? 0 : c] : 0.0) + (delta ? (double)delta[c] : 0.0);
    double r = bs[c] > 0 ? nearbyint(v / (double)bs[c]) : 0;
    q[c] = r > 2147483647.0 ? INT32_MAX : r < -2147483648.0 ? INT32_MIN : (int32_t)r;
  }
  if (b->simulate) {
    ei__free(zp);
    const char *name = write_dequantized(b, base, q, EI_INT32, m, bs, m, 1, 1, &m);
    ei__free(q);
    ei__free(bs);
    return name;
  }
  const char *qn = uniq(b, base, "_quantized"), *sn = uniq(b, base, "_quantized_scale"),
             *zn = uniq(b, base, "_quantized_zero_point");
  write_init(b, qn, EI_INT32, 1, &m, q);
  int per_channel = nws != 1;
  if (per_channel) {
    write_init(b, sn, EI_FLOAT, 1, &m, bs);
    write_init(b, zn, EI_INT32, 1, &m, zp);
  } else {
    write_init(b, sn, EI_FLOAT, 0, NULL, bs);
    write_init(b, zn, EI_INT32, 0, NULL, zp);
  }
  ei__free(q);
  ei__free(zp);
  ei__free(bs);
  const char *out = uniq(b, base, "_DequantizeLinear_Output");
  const char *ins[3] = {qn, sn, zn};
  node1(b, uniq(b, base, "_DequantizeLinear"), "DequantizeLinear", ins, 3, out);
  if (per_channel) ei__onnxw_attr_int(&b->w, "axis", 0);
  ei__pbw_end(&b->w);
  return out;
}

/* A float constant data input of a quantized Add/Mul, quantized with the activation type and its own range. */
static const char *emit_const_act(builder *b, int v) {
  const ei__value *val = &b->g->values[v];
  const float *x = val->data;
  int64_t n = vnumel(val);
  double lo = 0, hi = 0;
  for (int64_t e = 0; e < n; e++)
    if (isfinite(x[e])) lo = fmin(lo, x[e]), hi = fmax(hi, x[e]);
  qparam p = act_param(b->s8, lo, hi);
  uint8_t *q = ei__malloc((size_t)n + 1);
  if (!q) {
    fail_nomem(b);
    return "";
  }
  int32_t qlo = b->s8 ? -128 : 0, qhi = b->s8 ? 127 : 255;
  for (int64_t e = 0; e < n; e++) q[e] = (uint8_t)ei__quantize(x[e], p.scale, p.zp, qlo, qhi);
  const char *base = val->name;
  const char *qn = uniq(b, base, "_quantized"), *sn = uniq(b, base, "_scale"), *zn = uniq(b, base, "_zero_point");
  write_init(b, qn, b->at, val->rank, val->dims, q);
  ei__free(q);
  uint8_t z8 = (uint8_t)p.zp;
  write_init(b, sn, EI_FLOAT, 0, NULL, &p.scale);
  write_init(b, zn, b->at, 0, NULL, &z8);
  const char *out = uniq(b, base, "_DequantizeLinear_Output");
  const char *ins[3] = {qn, sn, zn};
  node1(b, uniq(b, base, "_DequantizeLinear"), "DequantizeLinear", ins, 3, out);
  ei__pbw_end(&b->w);
  return out;
}

/* The name node i reads for input k: the DequantizeLinear of a quantized tensor (always when the producer is
 * quantized; for other tensors only when node i is quantized), the constant, or the float tensor. */
static const char *input_name(builder *b, int i, int k) {
  const ei__node *n = &b->g->nodes[i];
  int v = n->in[k];
  if (v < 0) return "";
  /* Shape and Size read only the dims: the integer tensor has them (no dequantization just for that) */
  if (b->need_q[v] && b->prod_q[v] && (is_op(n, "Shape") || is_op(n, "Size"))) return b->qname[v];
  if (b->need_q[v] && (b->prod_q[v] || (b->quant[i] && data_input(b, n, b->kind[i], k)))) return b->dqname[v];
  if (is_const(b, v)) return const_input(b, v);
  return b->pname[v];
}

/* ---- attributes ---- */

static void write_attrs(builder *b, const ei__node *n) {
  int squeeze_axes = (is_op(n, "Squeeze") || is_op(n, "Unsqueeze")) && n->opset < 13;
  int clip_attrs = is_op(n, "Clip") && n->opset < 11;
  for (int a = 0; a < n->nattrs; a++) {
    const ei__attr *at = &n->attrs[a];
    if (squeeze_axes && !strcmp(at->name, "axes")) continue; /* became an input */
    if (clip_attrs && (!strcmp(at->name, "min") || !strcmp(at->name, "max"))) continue;
    if (is_op(n, "BatchNormalization") && (!strcmp(at->name, "spatial") || !strcmp(at->name, "is_test"))) continue;
    switch (at->type) {
      case EI_ATTR_INT: ei__onnxw_attr_int(&b->w, at->name, at->i); break;
      case EI_ATTR_FLOAT: ei__onnxw_attr_float(&b->w, at->name, at->f); break;
      case EI_ATTR_STRING: ei__onnxw_attr_string(&b->w, at->name, at->s ? at->s : ""); break;
      case EI_ATTR_INTS: ei__onnxw_attr_ints(&b->w, at->name, at->ints, at->n); break;
      case EI_ATTR_FLOATS: ei__onnxw_attr_floats(&b->w, at->name, at->floats, at->n); break;
      case EI_ATTR_TENSOR: {
        const ei__value *t = &b->g->values[at->tensor_value];
        ei__onnxw_attr_tensor(&b->w, at->name, t->dtype, t->rank, t->dims, t->data);
        break;
      }
      default:
        if (!b->status)
          b->status = ei__err(b->err, b->errlen, EI_E_UNSUPPORTED,
                              "node '%s' (%s): attribute '%s' of type %d cannot be written", n->name, n->op_type,
                              at->name, (int)at->type);
    }
  }
  /* Gemm: ONNX Runtime's QDQ Gemm selector reads beta explicitly */
  if (is_op(n, "Gemm") && !ei__attr_find(n, "beta")) ei__onnxw_attr_float(&b->w, "beta", 1.f);
}

/* Inputs an older opset gave as attributes (Squeeze/Unsqueeze axes before 13, Clip min/max before 11). */
static int extra_inputs(builder *b, const ei__node *n, const char **ins, int nin) {
  if ((is_op(n, "Squeeze") || is_op(n, "Unsqueeze")) && n->opset < 13) {
    const int64_t *axes;
    int na = ei__attr_ints(n, "axes", &axes);
    if (na < 0) return nin;
    int64_t d = na;
    const char *an = uniq(b, n->name, "_axes");
    write_init(b, an, EI_INT64, 1, &d, axes);
    ins[nin++] = an;
  } else if (is_op(n, "Clip") && n->opset < 11) {
    float lim[2] = {ei__attr_float(n, "min", -INFINITY), ei__attr_float(n, "max", INFINITY)};
    for (int k = 0; k < 2; k++) {
      if (isinf(lim[k])) {
        ins[nin++] = "";
        continue;
      }
      const char *cn = uniq(b, n->name, k ? "_max" : "_min");
      write_init(b, cn, EI_FLOAT, 0, NULL, &lim[k]);
      ins[nin++] = cn;
    }
  }
  return nin;
}

/* A fused activation as nodes of its own: in -> out. */
static void emit_act(builder *b, const ei__node *n, const ei__act *a, const char *in, const char *out) {
  const char *ins[3] = {in, "", ""};
  switch (a->kind) {
    case EI_ACT_RELU:
      node1(b, uniq(b, n->name, "_Relu"), "Relu", ins, 1, out);
      break;
    case EI_ACT_CLIP: {
      float lim[2] = {a->alpha, a->beta};
      int nin = 1;
      for (int k = 0; k < 2; k++) {
        if (isinf(lim[k]) && lim[k] == (k ? INFINITY : -INFINITY)) continue;
        const char *cn = uniq(b, n->name, k ? "_clip_max" : "_clip_min");
        write_init(b, cn, EI_FLOAT, 0, NULL, &lim[k]);
        ins[k + 1] = cn;
        nin = k + 2;
      }
      node1(b, uniq(b, n->name, "_Clip"), "Clip", ins, nin, out);
      break;
    }
    case EI_ACT_LEAKYRELU:
      node1(b, uniq(b, n->name, "_LeakyRelu"), "LeakyRelu", ins, 1, out);
      ei__onnxw_attr_float(&b->w, "alpha", a->alpha);
      break;
    case EI_ACT_HARDSIGMOID:
      node1(b, uniq(b, n->name, "_HardSigmoid"), "HardSigmoid", ins, 1, out);
      ei__onnxw_attr_float(&b->w, "alpha", a->alpha);
      ei__onnxw_attr_float(&b->w, "beta", a->beta);
      break;
    case EI_ACT_SIGMOID:
      node1(b, uniq(b, n->name, "_Sigmoid"), "Sigmoid", ins, 1, out);
      break;
    case EI_ACT_HARDSWISH:
      if (b->opset >= 14) {
        node1(b, uniq(b, n->name, "_HardSwish"), "HardSwish", ins, 1, out);
        break;
      } else { /* x * HardSigmoid(x; 1/6, 0.5) */
        const char *hs = uniq(b, n->name, "_hardsigmoid");
        node1(b, uniq(b, n->name, "_HardSigmoid"), "HardSigmoid", ins, 1, hs);
        ei__onnxw_attr_float(&b->w, "alpha", 1.f / 6.f);
        ei__onnxw_attr_float(&b->w, "beta", 0.5f);
        ei__pbw_end(&b->w);
        const char *mi[2] = {in, hs};
        node1(b, uniq(b, n->name, "_Mul"), "Mul", mi, 2, out);
        break;
      }
    default:
      if (!b->status)
        b->status = ei__err(b->err, b->errlen, EI_E_INTERNAL, "node '%s': unknown fused activation", n->name);
      return;
  }
  ei__pbw_end(&b->w);
}

/* Simulation models with bias hooks: out = in + a zero constant of one value per output channel of Conv/Gemm n. */
static void emit_bias_hook(builder *b, const ei__node *n, const char *in, const char *out) {
  int64_t m = is_op(n, "Conv") ? b->g->values[n->in[1]].dims[0] : gemm_n(b, n), dims[EI_MAX_DIMS];
  int rank = is_op(n, "Conv") ? b->g->values[n->in[1]].rank : 1;
  for (int d = 0; d < rank; d++) dims[d] = 1;
  dims[is_op(n, "Conv") ? 1 : 0] = m;
  float *zero = ei__calloc((size_t)m + 1, sizeof(float));
  if (!zero) {
    fail_nomem(b);
    return;
  }
  const char *cn = uniq(b, n->name, "_bias_correction_delta");
  write_init(b, cn, EI_FLOAT, rank, dims, zero);
  ei__free(zero);
  const char *ins[2] = {in, cn};
  node1(b, uniq(b, n->name, "_bias_correction"), "Add", ins, 2, out);
  ei__pbw_end(&b->w);
}

/* Output channels of a quantized Conv or Gemm. */
static int64_t linear_m(const builder *b, const ei__node *n) {
  return is_op(n, "Conv") ? b->g->values[n->in[1]].dims[0] : gemm_n(b, n);
}

/* The scale of the quantized input activation of a linear node. */
static float input_scale(builder *b, const ei__node *n) {
  const char *s, *z;
  qparam xp;
  group_params(b, n->in[0], &s, &z, &xp);
  return xp.scale;
}

/* Node i with its inputs resolved; outputs under pname; a fused activation written after it unless dropped. */
static void emit_node(builder *b, int i) {
  const ei__node *n = &b->g->nodes[i];
  /* inputs: up to 2 more for an older opset's attributes that became inputs */
  const char **ins = ei__calloc((size_t)n->nin + 3, sizeof(char *)), **outs = ei__calloc((size_t)n->nout + 1, sizeof(char *));
  if (!ins || !outs) {
    ei__free(ins);
    ei__free(outs);
    fail_nomem(b);
    return;
  }
  int nin = n->nin, kind = b->kind[i];
  float *wscales = NULL;
  int64_t nws = 0;
  int hook = b->bias_hooks && b->quant[i] && (is_op(n, "Conv") || is_op(n, "Gemm"));
  const float *delta = b->quant[i] && kind == K_LINEAR && b->c->bias_delta && !hook ? b->c->bias_delta[i] : NULL;
  for (int k = 0; k < n->nin; k++) {
    int v = n->in[k];
    if (b->quant[i] && kind == K_LINEAR && k == 1 && is_float_const(b, v)) {
      const ei__value *w = &b->g->values[v];
      ins[k] = emit_weight(b, v, ei__quant_weight_axis(n, w, b->c->opt.per_tensor), &wscales, &nws);
    } else if (b->quant[i] && kind == K_LINEAR && k == 2 && v >= 0) {
      const ei__value *bias = &b->g->values[v];
      ins[k] = wscales ? emit_bias(b, bias->data, vnumel(bias), bias->name, linear_m(b, n), input_scale(b, n),
                                   wscales, nws, delta) : "";
    } else if (b->quant[i] && (kind == K_BINARY || kind == K_CONCAT) && is_float_const(b, v)) {
      ins[k] = emit_const_act(b, v);
    } else {
      ins[k] = input_name(b, i, k);
    }
  }
  /* a bias correction for a Conv/Gemm without a bias: one of its own */
  if (delta && wscales && (nin < 3 || n->in[2] < 0) && (is_op(n, "Conv") || is_op(n, "Gemm"))) {
    ins[2] = emit_bias(b, NULL, 1, n->name, linear_m(b, n), input_scale(b, n), wscales, nws, delta);
    nin = 3;
  }
  ei__free(wscales);
  nin = extra_inputs(b, n, ins, nin);
  int drop_act = b->quant[i] && (n->act.kind == EI_ACT_RELU || n->act.kind == EI_ACT_CLIP);
  int write_act = n->act.kind != EI_ACT_NONE && !drop_act;
  const char *preact = NULL;
  for (int k = 0; k < n->nout; k++) {
    int v = n->out[k];
    outs[k] = "";
    if (v < 0) continue;
    int used = k == 0 || b->g->values[v].is_output || !single_output(b, n);
    if (!used) continue;
    outs[k] = b->pname[v];
    if (k == 0 && write_act) outs[k] = preact = uniq(b, b->g->values[v].name, "_preact");
    if (k == 0 && hook) outs[k] = preact = uniq(b, b->g->values[v].name, "_before_bias_correction");
  }
  int nout = n->nout;
  while (nout > 1 && !outs[nout - 1][0]) nout--;
  ei__onnxw_node_begin(&b->w, n->name, n->op_type, n->domain, ins, nin, outs, nout);
  write_attrs(b, n);
  ei__pbw_end(&b->w);
  if (write_act) emit_act(b, n, &n->act, preact, b->pname[n->out[0]]);
  if (hook) emit_bias_hook(b, n, preact, b->pname[n->out[0]]);
  ei__free(ins);
  ei__free(outs);
}

/* ---- the model ---- */

static int opset_for_ir(int opset) { return opset <= 13 ? 7 : opset <= 18 ? 8 : opset <= 20 ? 9 : opset <= 22 ? 10 : 11; }

static void record_layer(builder *b, int i, ei__qlayer *l) {
  int v = b->g->nodes[i].out[0];
  const char *s, *z;
  qparam p;
  group_params(b, v, &s, &z, &p);
  l->node = i;
  l->value = v;
  l->qname = ei__strdup(b->qname[v] ? b->qname[v] : "");
  l->scale = p.scale;
  l->zero_point = p.zp;
  l->qtype = b->at;
  if (!l->qname) fail_nomem(b);
}

static void write_graph(builder *b) {
  const ei__graph *g = b->g;
  ei__onnxw_graph_begin(&b->w, "edgeinfer_quantized");
  for (int k = 0; k < g->ninputs; k++) {
    int v = g->inputs[k];
    if (b->need_q[v]) emit_q(b, v), emit_dq(b, v);
  }
  for (int i = 0; i < g->nnodes && !b->status; i++) {
    const ei__node *n = &g->nodes[i];
    emit_node(b, i);
    for (int k = 0; k < n->nout; k++) {
      int v = n->out[k];
      if (v < 0 || !b->need_q[v]) continue;
      emit_q(b, v);
      emit_dq(b, v);
    }
    if (b->quant[i]) record_layer(b, i, &b->layers[b->nlayers++]);
  }
  for (int k = 0; k < g->ninputs; k++) {
    const ei__value *v = &g->values[g->inputs[k]];
    ei__onnxw_value_info(&b->w, F_INPUT, v->name, v->dtype, v->rank, v->dims, v->dim_names);
  }
  for (int k = 0; k < g->noutputs; k++) {
    int vi = g->outputs[k];
    const ei__value *v = &g->values[vi];
    if (v->is_const) const_input(b, vi);
    ei_dtype dt = vtype(b, vi);
    ei__onnxw_value_info(&b->w, F_OUTPUT, v->name, dt ? dt : EI_FLOAT, v->rank, v->dims, v->dim_names);
  }
  ei__pbw_end(&b->w);
}

static void free_builder(builder *b) {
  ei__free(b->quant);
  ei__free(b->kind);
  ei__free(b->prod_q);
  ei__free(b->need_q);
  ei__free(b->init_done);
  ei__free(b->param_done);
  ei__free(b->parent);
  ei__free(b->param);
  ei__free(b->pname);
  ei__free(b->qname);
  ei__free(b->dqname);
  ei__free(b->sname);
  ei__free(b->zname);
  ns_free(&b->names);
  ei__pbw_free(&b->w);
}

void ei__qmodel_free(ei__qmodel *m) {
  for (int l = 0; m->layers && l < m->nlayers; l++) ei__free(m->layers[l].qname);
  ei__free(m->layers);
  ei__free(m->tensors);
  ei__free(m->bytes);
  memset(m, 0, sizeof *m);
}

ei_status ei__quantize_build(const ei__calib *c, ei__qmodel *out, void (*warn)(void *ctx, const char *msg),
                             void *warn_ctx, char *err, size_t errlen) {
  return ei__quantize_build_ex(c, NULL, out, warn, warn_ctx, err, errlen);
}

ei_status ei__quantize_build_ex(const ei__calib *c, const ei__build_options *bo, ei__qmodel *out,
                                void (*warn)(void *ctx, const char *msg), void *warn_ctx, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  const ei__graph *g = c->probe.g;
  builder b;
  memset(&b, 0, sizeof b);
  b.c = c;
  if (bo) {
    b.simulate = bo->simulate;
    b.bias_hooks = bo->simulate && bo->bias_hooks;
    b.keep_float = bo->keep_float;
  }
  b.g = g;
  b.s8 = c->opt.act_s8;
  b.at = b.s8 ? EI_INT8 : EI_UINT8;
  b.warn = warn;
  b.warn_ctx = warn_ctx;
  b.err = err;
  b.errlen = errlen;
  ei__pbw_init(&b.w);
  size_t nv = (size_t)g->nvalues + 1, nn = (size_t)g->nnodes + 1;
  b.quant = ei__calloc(nn, 1);
  b.kind = ei__calloc(nn, 1);
  b.prod_q = ei__calloc(nv, 1);
  b.need_q = ei__calloc(nv, 1);
  b.init_done = ei__calloc(nv, 1);
  b.param_done = ei__calloc(nv, 1);
  b.parent = ei__calloc(nv, sizeof(int));
  b.param = ei__calloc(nv, sizeof(qparam));
  b.pname = ei__calloc(nv, sizeof(char *));
  b.qname = ei__calloc(nv, sizeof(char *));
  b.dqname = ei__calloc(nv, sizeof(char *));
  b.sname = ei__calloc(nv, sizeof(char *));
  b.zname = ei__calloc(nv, sizeof(char *));
  out->layers = ei__calloc(nn, sizeof(ei__qlayer));
  b.layers = out->layers;
  out->tensors = b.tensors = ei__calloc(nv, sizeof(int));
  if (!b.quant || !b.kind || !b.prod_q || !b.need_q || !b.init_done || !b.param_done || !b.parent || !b.param ||
      !b.pname || !b.qname || !b.dqname || !b.sname || !b.zname || !out->layers || !out->tensors) {
    free_builder(&b);
    ei__qmodel_free(out);
    return ei__err(err, errlen, EI_E_NOMEM, "out of memory");
  }
  for (int i = 0; i < c->opt.nexclude; i++) {
    int found = 0;
    for (int k = 0; k < g->nnodes && !found; k++) found = !strcmp(g->nodes[k].name, c->opt.exclude[i]);
    if (!found) warnf(&b, "--exclude: no node named '%s' in the optimized graph", c->opt.exclude[i]);
  }
  /* every name of the float graph is taken; the tensors keep their names */
  for (int v = 0; v < g->nvalues && !b.status; v++)
    if (!ns_add(&b.names, g->values[v].name)) fail_nomem(&b);
  for (int i = 0; i < g->nnodes && !b.status; i++)
    if (!ns_add(&b.names, g->nodes[i].name)) fail_nomem(&b);
  if (!b.status) classify(&b);
  for (int v = 0; v < g->nvalues && !b.status; v++) {
    const ei__value *val = &g->values[v];
    b.pname[v] = val->name;
    if (val->is_output && b.prod_q[v]) b.pname[v] = uniq(&b, val->name, "_QuantizeLinear_Input");
  }
  b.opset = g->opset_default > 13 ? g->opset_default : 13;
  if (!b.status) {
    int ir = opset_for_ir(b.opset);
    ei__onnxw_model_header(&b.w, ir > g->ir_version ? ir : g->ir_version, "edgeinfer", EI_VERSION_STRING);
    ei__onnxw_opset(&b.w, "", b.opset);
    int ms = 0;
    for (int i = 0; i < g->nnodes; i++) ms |= !strcmp(g->nodes[i].domain, "com.microsoft");
    if (ms) ei__onnxw_opset(&b.w, "com.microsoft", g->opset_ms ? g->opset_ms : 1);
    write_graph(&b);
  }
  ei_status s = b.status;
  if (!s && !ei__pbw_ok(&b.w)) s = ei__err(err, errlen, EI_E_NOMEM, "out of memory serializing the model");
  if (!s) {
    out->nlayers = b.nlayers;
    out->ntensors = b.ntensors;
    out->opset = b.opset;
    for (int i = 0; i < g->nnodes; i++) {
      if (b.quant[i]) out->nodes_quantized++;
      else if (g->nodes[i].nout > 0 && vtype(&b, g->nodes[i].out[0]) == EI_FLOAT && !plan_known(&b, g->nodes[i].out[0]))
        out->nodes_float++;
    }
    out->bytes = ei__pbw_take(&b.w, &out->size);
    if (!out->bytes) s = ei__err(err, errlen, EI_E_NOMEM, "out of memory serializing the model");
  }
  free_builder(&b);
  if (s) ei__qmodel_free(out);
  return s;
}

/* ---- atomic file write ---- */

ei_status ei__quant_write_file(const char *path, const void *data, size_t size, char *err, size_t errlen) {
  char tmp[4096];
  if (snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= (int)sizeof tmp)
    return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "output path too long");
  int fd = mkstemp(tmp);
  if (fd < 0) return ei__err(err, errlen, EI_E_IO, "cannot create a temporary file next to '%s': %s", path, strerror(errno));
  const uint8_t *p = data;
  size_t left = size;
  while (left) {
    ssize_t w = write(fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      int e = errno;
      close(fd);
      unlink(tmp);
      return ei__err(err, errlen, EI_E_IO, "cannot write '%s': %s", tmp, strerror(e));
    }
    p += w;
    left -= (size_t)w;
  }
  mode_t um = umask(0);
  umask(um);
  if (fchmod(fd, 0666 & ~um) || fsync(fd) || close(fd)) {
    int e = errno;
    unlink(tmp);
    return ei__err(err, errlen, EI_E_IO, "cannot write '%s': %s", tmp, strerror(e));
  }
  if (rename(tmp, path)) {
    int e = errno;
    unlink(tmp);
    return ei__err(err, errlen, EI_E_IO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(e));
  }
  return EI_OK;
}

/* ---- float vs quantized ---- */

ei_status ei__qeval_create(ei__qeval *e, ei__calib *c, const ei__qmodel *m, ei_threadpool *pool, char *err,
                           size_t errlen) {
  memset(e, 0, sizeof *e);
  e->c = c;
  e->m = m;
  ei__prepare_options po = {.optimize = 1, .fuse_acts = ~0u};
  ei_status s = ei__probe_load(&e->q, m->bytes, m->size, NULL, &po, pool, c->opt.max_arena, err, errlen);
  if (s) return s;
  size_t nl = (size_t)m->nlayers + 1;
  e->qvalue = ei__calloc(nl, sizeof(int));
  e->signal = ei__calloc(nl, sizeof(double));
  e->noise = ei__calloc(nl, sizeof(double));
  e->seen = ei__calloc(nl, 1);
  if (!e->qvalue || !e->signal || !e->noise || !e->seen) {
    ei__qeval_free(e);
    return ei__err(err, errlen, EI_E_NOMEM, "out of memory");
  }
  for (int l = 0; l < m->nlayers; l++) e->qvalue[l] = ei__graph_find_value(e->q.g, m->layers[l].qname);
  return EI_OK;
}

void ei__qeval_free(ei__qeval *e) {
  ei__probe_free(&e->q);
  ei__free(e->qvalue);
  ei__free(e->signal);
  ei__free(e->noise);
  ei__free(e->seen);
  ei__free(e->classes_all);
  ei__free(e->classes_in);
  memset(e, 0, sizeof *e);
}

/* Element k of a quantized-model tensor as float (dequantized with the layer's parameters when integer). */
static float qvalue_at(const ei__tensor *t, int64_t k, const ei__qlayer *l) {
  switch (t->dtype) {
    case EI_FLOAT: return ((const float *)t->data)[k];
    case EI_UINT8: return ei__dequantize(((const uint8_t *)t->data)[k], l->zero_point, l->scale);
    case EI_INT8: return ei__dequantize(((const int8_t *)t->data)[k], l->zero_point, l->scale);
    default: return NAN;
  }
}

typedef struct layer_job {
  ei__qeval *e;
} layer_job;

static void compare_layers(void *arg, int64_t begin, int64_t end) {
  ei__qeval *e = ((layer_job *)arg)->e;
  for (int64_t l = begin; l < end; l++) {
    const ei__qlayer *ly = &e->m->layers[l];
    ei__tensor f, q;
    if (e->qvalue[l] < 0 || !ei__probe_value(&e->c->probe, ly->value, &f) || !ei__probe_value(&e->q, e->qvalue[l], &q))
      continue;
    int64_t n = ei__numel(&f);
    if (f.dtype != EI_FLOAT || n != ei__numel(&q)) continue;
    double sig = 0, noise = 0;
    const float *x = f.data;
    for (int64_t k = 0; k < n; k++) {
      double d = (double)x[k] - qvalue_at(&q, k, ly);
      sig += (double)x[k] * x[k];
      noise += d * d;
    }
    e->signal[l] += sig;
    e->noise[l] += noise;
    e->seen[l] = 1;
  }
}

static void stats_add(ei__qeval_stats *st, uint8_t *classes, int64_t ncls, const float *x, const float *y, int64_t n,
                      int64_t cols) {
  double dot = 0, xx = 0, yy = 0, noise = 0;
  for (int64_t r = 0; cols > 0 && r < n / cols; r++) {
    const float *a = x + r * cols, *b = y + r * cols;
    double rd = 0, rx = 0, ry = 0;
    int64_t bf = 0, bq = 0;
    for (int64_t k = 0; k < cols; k++) {
      rd += (double)a[k] * b[k];
      rx += (double)a[k] * a[k];
      ry += (double)b[k] * b[k];
      noise += ((double)a[k] - b[k]) * ((double)a[k] - b[k]);
      if (a[k] > a[bf]) bf = k;
      if (b[k] > b[bq]) bq = k;
    }
    st->cos_sum += rx > 0 && ry > 0 ? rd / sqrt(rx * ry) : (rx == ry ? 1 : 0);
    st->rows++;
    st->top1_same += bf == bq;
    if (classes && bf < ncls && !classes[bf]) {
      classes[bf] = 1;
      st->distinct++;
    }
    dot += rd;
    xx += rx;
    yy += ry;
  }
  st->signal += xx;
  st->noise += noise;
  st->nsamples++;
}

static void compare_output(ei__qeval *e) {
  const ei__graph *fg = e->c->probe.g, *qg = e->q.g;
  e->last_cosine = NAN;
  if (!fg->noutputs || !qg->noutputs) return;
  ei__tensor f, q;
  if (!ei__probe_value(&e->c->probe, fg->outputs[0], &f) || !ei__probe_value(&e->q, qg->outputs[0], &q)) return;
  int64_t n = ei__numel(&f);
  if (f.dtype != EI_FLOAT || q.dtype != EI_FLOAT || n != ei__numel(&q) || n == 0) return;
  int64_t cols = f.rank ? f.dims[f.rank - 1] : 1;
  if (!e->classes_all && cols > 0) {
    e->classes_all = ei__calloc((size_t)cols + 1, 1);
    e->classes_in = ei__calloc((size_t)cols + 1, 1);
    e->ncls = e->classes_all && e->classes_in ? cols : 0;
  }
  double before = e->all.cos_sum;
  int64_t rows = e->all.rows;
  stats_add(&e->all, e->classes_all, e->ncls, f.data, q.data, n, cols);
  if (e->all.rows > rows) e->last_cosine = (e->all.cos_sum - before) / (double)(e->all.rows - rows);
  if (e->last_in) stats_add(&e->in, e->classes_in, e->ncls, f.data, q.data, n, cols);
}

ei_status ei__qeval_add(ei__qeval *e, int ninputs, const ei_tensor *inputs, char *err, size_t errlen) {
  ei_status s = ei__probe_run(&e->c->probe, ninputs, inputs, err, errlen);
  if (!s) s = ei__probe_run(&e->q, ninputs, inputs, err, errlen);
  if (s) return s;
  e->last_distance = ei__calib_regime_distance(e->c, &e->c->probe);
  e->last_in = !(e->screen_log2 > 0) || e->last_distance <= e->screen_log2;
  if (e->last_in) {
    layer_job job = {e};
    ei__parallel_for(e->q.pool, e->m->nlayers, 1, compare_layers, &job);
  }
  compare_output(e);
  e->nsamples++;
  return EI_OK;
}

static double sqnr_db(double signal, double noise) {
  if (noise == 0) return INFINITY;
  if (signal == 0) return -INFINITY;
  return 10.0 * log10(signal / noise);
}

double ei__qeval_layer_sqnr(const ei__qeval *e, int l) {
  if (l < 0 || l >= e->m->nlayers || !e->seen[l]) return NAN;
  return sqnr_db(e->signal[l], e->noise[l]);
}

void ei__qeval_output(const ei__qeval_stats *st, double *sqnr, double *cosine, int64_t *top1_same) {
  *sqnr = st->nsamples ? sqnr_db(st->signal, st->noise) : NAN;
  *cosine = st->rows ? st->cos_sum / (double)st->rows : NAN;
  *top1_same = st->top1_same;
}
