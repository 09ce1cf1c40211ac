/* Reference kernels of the unary elementwise operators: Relu, Sigmoid, Tanh, Exp, Erf, Abs, Neg, Sqrt,
 * LeakyRelu, HardSigmoid, HardSwish and Clip (attributes min/max before opset 11, optional inputs 1 and 2 from
 * opset 11, integer types from opset 12). Float everywhere; Relu/Abs/Neg/Clip also on integer types. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "kernels/ref/elementwise.h"

typedef enum unary_kind {
  U_RELU, U_SIGMOID, U_TANH, U_EXP, U_ERF, U_ABS, U_NEG, U_SQRT, U_LEAKYRELU, U_HARDSIGMOID, U_HARDSWISH, U_CLIP
} unary_kind;

/* Integer dtypes an op accepts besides float32 (bit = 1 << dtype). */
#define TB(t) (1u << (t))
#define T_SIGNED (TB(EI_INT8) | TB(EI_INT16) | TB(EI_INT32) | TB(EI_INT64))
#define T_UNSIGNED (TB(EI_UINT8) | TB(EI_UINT16) | TB(EI_UINT32) | TB(EI_UINT64))

static const struct {
  const char *name;
  unary_kind kind;
  unsigned int_types;
} unary_ops[] = {
    {"Relu", U_RELU, T_SIGNED},
    {"Sigmoid", U_SIGMOID, 0},
    {"Tanh", U_TANH, 0},
    {"Exp", U_EXP, 0},
    {"Erf", U_ERF, 0},
    {"Abs", U_ABS, T_SIGNED | T_UNSIGNED},
    {"Neg", U_NEG, T_SIGNED},
    {"Sqrt", U_SQRT, 0},
    {"LeakyRelu", U_LEAKYRELU, 0},
    {"HardSigmoid", U_HARDSIGMOID, 0},
    {"HardSwish", U_HARDSWISH, 0},
    {"Clip", U_CLIP, T_SIGNED | T_UNSIGNED},
};

typedef struct unary_params {
  unary_kind kind;
  unsigned int_types;
  float alpha, beta; /* LeakyRelu: alpha; HardSigmoid: alpha, beta; Clip (attribute form): min, max */
  int clip_inputs;   /* Clip from opset 11: min and max are the optional inputs 1 and 2 */
} unary_params;

ei_status ei__ew_unary_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  (void)g;
  int k = -1;
  for (size_t i = 0; i < sizeof unary_ops / sizeof *unary_ops; i++)
    if (!strcmp(unary_ops[i].name, n->op_type)) k = (int)i;
  if (k < 0) return ei__err(err, errlen, EI_E_INTERNAL, "node '%s': '%s' is not a unary op", n->name, n->op_type);
  unary_params *p = ei__calloc(1, sizeof *p);
  if (!p) return EI_E_NOMEM;
  p->kind = unary_ops[k].kind;
  p->int_types = unary_ops[k].int_types;
  switch (p->kind) {
    case U_LEAKYRELU: p->alpha = ei__attr_float(n, "alpha", 0.01f); break;
    case U_HARDSIGMOID:
      p->alpha = ei__attr_float(n, "alpha", 0.2f);
      p->beta = ei__attr_float(n, "beta", 0.5f);
      break;
    case U_CLIP:
      p->clip_inputs = n->opset >= 11;
      if (p->clip_inputs) {
        if (ei__attr_find(n, "min") || ei__attr_find(n, "max")) {
          ei__free(p);
          return ei__err(err, errlen, EI_E_INVALID_MODEL,
                         "Clip node '%s': attributes min/max are not allowed from opset 11 (use inputs)", n->name);
        }
        if (n->nin > 3) {
          ei__free(p);
          return ei__err(err, errlen, EI_E_INVALID_MODEL, "Clip node '%s': %d inputs (at most 3)", n->name, n->nin);
        }
      } else {
        p->alpha = ei__attr_float(n, "min", -FLT_MAX);
        p->beta = ei__attr_float(n, "max", FLT_MAX);
        if (n->nin > 1) {
          ei__free(p);
          return ei__err(err, errlen, EI_E_INVALID_MODEL,
                         "Clip node '%s': opset %d takes one input (min/max are attributes)", n->name, n->opset);
        }
      }
      break;
    default: break;
  }
  if (p->kind != U_CLIP && n->nin != 1) {
    ei__free(p);
    return ei__err(err, errlen, EI_E_INVALID_MODEL, "%s node '%s': %d inputs (expected 1)", n->op_type, n->name, n->nin);
  }
  if (isnan(p->alpha) || isnan(p->beta) || (p->kind != U_CLIP && (isinf(p->alpha) || isinf(p->beta)))) {
    ei__free(p);
    return ei__err(err, errlen, EI_E_INVALID_MODEL, "%s node '%s': attribute is not a finite number", n->op_type,
                   n->name);
  }
  n->params = p;
  return EI_OK;
}

ei_status ei__ew_unary_infer(ei__infer *c) {
  const unary_params *p = c->node->params;
  if (!p) return EI_NODE_ERR(c, EI_E_INTERNAL, "not initialised");
  ei_status s = ei__ew_check_input(c, 0);
  if (s) return s;
  ei_dtype dt = c->in[0].dtype;
  int ok = dt == EI_FLOAT || (dt < 32 && (p->int_types & TB(dt)));
  if (p->kind == U_CLIP && dt != EI_FLOAT && !p->clip_inputs) ok = 0; /* integer Clip exists from opset 12 */
  if (!ok) return EI_NODE_ERR(c, EI_E_UNSUPPORTED, "input type %s is not supported", ei_dtype_name(dt));
  if (p->clip_inputs) {
    for (int i = 1; i <= 2; i++) {
      if (!ei__ew_present(c->node, c->nin, i)) continue;
      const ei__tensor *t = &c->in[i];
      const char *what = i == 1 ? "min" : "max";
      if (t->dtype != dt)
        return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "input %s has type %s, input has %s", what, ei_dtype_name(t->dtype),
                           ei_dtype_name(dt));
      if (t->rank < 0 || t->rank > 1 || ei__numel(t) != 1)
        return EI_NODE_ERR(c, EI_E_SHAPE, "input %s must be a scalar (rank %d, %lld elements)", what, t->rank,
                           (long long)(t->rank >= 0 ? ei__numel(t) : -1));
    }
  }
  ei__ew_set_shape(&c->out[0], &c->in[0], dt);
  return EI_OK;
}

/* ---- float ---- */

typedef struct unary_f32_job {
  unary_kind kind;
  float alpha, beta;
  const float *x;
  float *y;
} unary_f32_job;

static inline float sigmoidf(float x) {
  if (x >= 0.f) return 1.f / (1.f + expf(-x));
  float e = expf(x);
  return e / (1.f + e);
}

static void unary_f32_range(void *arg, int64_t b, int64_t e) {
  const unary_f32_job *j = arg;
  const float *x = j->x;
  float *y = j->y;
  const float al = j->alpha, be = j->beta;
  switch (j->kind) {
    case U_RELU: for (int64_t i = b; i < e; i++) y[i] = x[i] < 0.f ? 0.f : x[i]; break;
    case U_SIGMOID: for (int64_t i = b; i < e; i++) y[i] = sigmoidf(x[i]); break;
    case U_TANH: for (int64_t i = b; i < e; i++) y[i] = tanhf(x[i]); break;
    case U_EXP: for (int64_t i = b; i < e; i++) y[i] = expf(x[i]); break;
    case U_ERF: for (int64_t i = b; i < e; i++) y[i] = erff(x[i]); break;
    case U_ABS: for (int64_t i = b; i < e; i++) y[i] = fabsf(x[i]); break;
    case U_NEG: for (int64_t i = b; i < e; i++) y[i] = -x[i]; break;
    case U_SQRT: for (int64_t i = b; i < e; i++) y[i] = sqrtf(x[i]); break;
    case U_LEAKYRELU: for (int64_t i = b; i < e; i++) y[i] = x[i] < 0.f ? al * x[i] : x[i]; break;
    case U_HARDSIGMOID:
      for (int64_t i = b; i < e; i++) {
        float v = al * x[i] + be;
        y[i] = v < 0.f ? 0.f : (v > 1.f ? 1.f : v);
      }
      break;
    case U_HARDSWISH:
      for (int64_t i = b; i < e; i++) {
        float v = x[i] * (1.f / 6.f) + 0.5f;
        v = v < 0.f ? 0.f : (v > 1.f ? 1.f : v);
        y[i] = x[i] * v;
      }
      break;
    case U_CLIP:
      for (int64_t i = b; i < e; i++) {
        float v = x[i] < al ? al : x[i];
        y[i] = v > be ? be : v;
      }
      break;
  }
}

/* ---- integer types (arithmetic that could overflow is done in unsigned, where it wraps) ---- */

#define IS_NEG_S(v) ((v) < 0)
#define IS_NEG_U(v) 0
#define INT_UNARY(SFX, T, U, IS_NEG)                                                                 \
  static void unary_##SFX(unary_kind k, const T *x, T *y, int64_t n, T lo, T hi) {                     \
    switch (k) {                                                                                        \
      case U_RELU:                                                                                      \
        for (int64_t i = 0; i < n; i++) y[i] = IS_NEG(x[i]) ? (T)0 : x[i];                \
        break;                                                                                          \
      case U_ABS:                                                                                       \
        for (int64_t i = 0; i < n; i++) y[i] = IS_NEG(x[i]) ? (T)((U)0 - (U)x[i]) : x[i]; \
        break;                                                                                          \
      case U_NEG:                                                                                       \
        for (int64_t i = 0; i < n; i++) y[i] = (T)((U)0 - (U)x[i]);                                     \
        break;                                                                                          \
      case U_CLIP:                                                                                      \
        for (int64_t i = 0; i < n; i++) {                                                               \
          T v = x[i] < lo ? lo : x[i];                                                                  \
          y[i] = v > hi ? hi : v;                                                                       \
        }                                                                                               \
        break;                                                                                          \
      default: break;                                                                                   \
    }                                                                                                   \
  }

INT_UNARY(i8, int8_t, uint32_t, IS_NEG_S)
INT_UNARY(u8, uint8_t, uint32_t, IS_NEG_U)
INT_UNARY(i16, int16_t, uint32_t, IS_NEG_S)
INT_UNARY(u16, uint16_t, uint32_t, IS_NEG_U)
INT_UNARY(i32, int32_t, uint32_t, IS_NEG_S)
INT_UNARY(u32, uint32_t, uint32_t, IS_NEG_U)
INT_UNARY(i64, int64_t, uint64_t, IS_NEG_S)
INT_UNARY(u64, uint64_t, uint64_t, IS_NEG_U)

/* Clip bound from optional input i, or the type's default. */
#define CLIP_BOUND(c, i, T, def) (ei__ew_present((c)->node, (c)->nin, i) ? *(const T *)(c)->in[i].data : (T)(def))

static ei_status unary_int_run(ei__run *c, unary_kind k) {
  const ei__tensor *x = &c->in[0];
  int64_t n = ei__numel(x);
  void *y = c->out[0].data;
  switch (x->dtype) {
#define CASE_INT(DT, SFX, T, MIN, MAX)                                                                   \
  case DT:                                                                                               \
    unary_##SFX(k, x->data, y, n, CLIP_BOUND(c, 1, T, MIN), CLIP_BOUND(c, 2, T, MAX)); \
    return EI_OK;
    CASE_INT(EI_INT8, i8, int8_t, INT8_MIN, INT8_MAX)
    CASE_INT(EI_UINT8, u8, uint8_t, 0, UINT8_MAX)
    CASE_INT(EI_INT16, i16, int16_t, INT16_MIN, INT16_MAX)
    CASE_INT(EI_UINT16, u16, uint16_t, 0, UINT16_MAX)
    CASE_INT(EI_INT32, i32, int32_t, INT32_MIN, INT32_MAX)
    CASE_INT(EI_UINT32, u32, uint32_t, 0, UINT32_MAX)
    CASE_INT(EI_INT64, i64, int64_t, INT64_MIN, INT64_MAX)
    CASE_INT(EI_UINT64, u64, uint64_t, 0, UINT64_MAX)
#undef CASE_INT
    default: return EI_NODE_ERR(c, EI_E_UNSUPPORTED, "input type %s is not supported", ei_dtype_name(x->dtype));
  }
}

ei_status ei__ew_unary_run(ei__run *c) {
  const unary_params *p = c->node->params;
  if (!p) return EI_NODE_ERR(c, EI_E_INTERNAL, "not initialised");
  if (c->in[0].dtype != EI_FLOAT) return unary_int_run(c, p->kind);
  unary_f32_job j = {p->kind, p->alpha, p->beta, c->in[0].data, c->out[0].data};
  if (p->kind == U_CLIP && p->clip_inputs) {
    j.alpha = CLIP_BOUND(c, 1, float, -INFINITY);
    j.beta = CLIP_BOUND(c, 2, float, INFINITY);
  }
  ei__parallel_for(c->pool, ei__numel(&c->in[0]), EI_EW_CHUNK, unary_f32_range, &j);
  return EI_OK;
}
