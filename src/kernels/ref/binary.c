/* Reference kernels of the broadcasting binary and variadic operators: Add, Sub, Mul, Div, PRelu (slope
 * broadcast to X), Max, Min, Sum, Mean (1..N inputs broadcast together).
 *
 * Broadcasting: the output shape is walked as a few merged dimensions (size-1 output dims dropped, adjacent dims
 * merged when both inputs are contiguous across them), so same-shape, scalar and per-channel operands all reduce
 * to inner loops where each operand is either contiguous or a single repeated value.
 * Types: float32 and float64 for all; the eight integer types for Add/Sub/Mul/Div/Max/Min. Integer arithmetic
 * wraps (computed in unsigned); integer division truncates and a zero divisor is a runtime error. */
#include <math.h>
#include <string.h>

#include "kernels/f32_simd.h"
#include "kernels/ref/elementwise.h"

typedef enum binary_kind { B_ADD, B_SUB, B_MUL, B_DIV, B_PRELU, B_MAX, B_MIN, B_SUM, B_MEAN } binary_kind;

#define TB(t) (1u << (t))
#define T_FLOATS (TB(EI_FLOAT) | TB(EI_DOUBLE))
#define T_INTS                                                                                              \
  (TB(EI_INT8) | TB(EI_UINT8) | TB(EI_INT16) | TB(EI_UINT16) | TB(EI_INT32) | TB(EI_UINT32) | TB(EI_INT64) | \
   TB(EI_UINT64))

static const struct {
  const char *name;
  binary_kind kind;
  int variadic;
  unsigned types;
} binary_ops[] = {
    {"Add", B_ADD, 0, T_FLOATS | T_INTS}, {"Sub", B_SUB, 0, T_FLOATS | T_INTS}, {"Mul", B_MUL, 0, T_FLOATS | T_INTS},
    {"Div", B_DIV, 0, T_FLOATS | T_INTS}, {"PRelu", B_PRELU, 0, T_FLOATS},      {"Max", B_MAX, 1, T_FLOATS | T_INTS},
    {"Min", B_MIN, 1, T_FLOATS | T_INTS}, {"Sum", B_SUM, 1, T_FLOATS},          {"Mean", B_MEAN, 1, T_FLOATS},
};

typedef struct binary_params {
  binary_kind kind;
  int variadic;
  unsigned types;
} binary_params;

ei_status ei__ew_binary_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  (void)g;
  int k = -1;
  for (size_t i = 0; i < sizeof binary_ops / sizeof *binary_ops; i++)
    if (!strcmp(binary_ops[i].name, n->op_type)) k = (int)i;
  if (k < 0) return ei__err(err, errlen, EI_E_INTERNAL, "node '%s': '%s' is not a binary op", n->name, n->op_type);
  if (binary_ops[k].variadic ? n->nin < 1 : n->nin != 2)
    return ei__err(err, errlen, EI_E_INVALID_MODEL, "%s node '%s': %d inputs (expected %s)", n->op_type, n->name,
                   n->nin, binary_ops[k].variadic ? "at least 1" : "2");
  if (!binary_ops[k].variadic && ei__attr_find(n, "broadcast"))
    return ei__err(err, errlen, EI_E_UNSUPPORTED, "%s node '%s': legacy 'broadcast' attribute (opset < 7)",
                   n->op_type, n->name);
  binary_params *p = ei__calloc(1, sizeof *p);
  if (!p) return EI_E_NOMEM;
  p->kind = binary_ops[k].kind;
  p->variadic = binary_ops[k].variadic;
  p->types = binary_ops[k].types;
  n->params = p;
  return EI_OK;
}

ei_status ei__ew_binary_infer(ei__infer *c) {
  const binary_params *p = c->node->params;
  if (!p) return EI_NODE_ERR(c, EI_E_INTERNAL, "not initialised");
  if (p->variadic ? c->nin < 1 : c->nin != 2)
    return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "%d inputs (expected %s)", c->nin, p->variadic ? "at least 1" : "2");
  for (int i = 0; i < c->nin; i++) {
    ei_status s = ei__ew_check_input(c, i);
    if (s) return s;
  }
  ei_dtype dt = c->in[0].dtype;
  if (dt >= 32 || !(p->types & TB(dt)))
    return EI_NODE_ERR(c, EI_E_UNSUPPORTED, "input type %s is not supported", ei_dtype_name(dt));
  for (int i = 1; i < c->nin; i++)
    if (c->in[i].dtype != dt)
      return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "input %d ('%s') has type %s, input 0 has %s", i,
                         ei__ew_in_name(c->graph, c->node, i), ei_dtype_name(c->in[i].dtype), ei_dtype_name(dt));
  if (c->node->act.kind != EI_ACT_NONE && dt != EI_FLOAT)
    return EI_NODE_ERR(c, EI_E_UNSUPPORTED, "fused activation on %s", ei_dtype_name(dt));
  ei__tensor *o = &c->out[0];
  ei__ew_set_shape(o, &c->in[0], dt);
  if (p->kind == B_PRELU) {
    /* slope broadcasts unidirectionally to X: the output has X's shape */
    const ei__tensor *x = &c->in[0], *sl = &c->in[1];
    int ok = sl->rank <= x->rank;
    for (int i = 0; ok && i < sl->rank; i++) {
      int64_t ds = sl->dims[sl->rank - 1 - i], dx = x->dims[x->rank - 1 - i];
      ok = ds == dx || ds == 1;
    }
    if (!ok) return EI_NODE_ERR(c, EI_E_SHAPE, "slope shape does not broadcast to the shape of X");
    return EI_OK;
  }
  char msg[160];
  for (int i = 1; i < c->nin; i++) {
    ei__tensor acc = *o;
    if (ei__broadcast_shape(&acc, &c->in[i], o, msg, sizeof msg))
      return EI_NODE_ERR(c, EI_E_SHAPE, "input %d ('%s'): %s", i, ei__ew_in_name(c->graph, c->node, i), msg);
  }
  return ei__ew_check_size(c, o, "output");
}

/* ---- broadcast walk ---- */

typedef struct bcast {
  int rank; /* >= 1 */
  int64_t dims[EI_MAX_DIMS];
  int64_t sa[EI_MAX_DIMS], sb[EI_MAX_DIMS]; /* element strides of a and b per output dim (0: broadcast) */
} bcast;

static void row_strides(const ei__tensor *t, int orank, int64_t *st) {
  int64_t s = 1;
  for (int i = orank - 1; i >= 0; i--) {
    int ti = i - (orank - t->rank);
    int64_t d = ti >= 0 ? t->dims[ti] : 1;
    st[i] = d == 1 ? 0 : s;
    s *= d;
  }
}

static void bcast_make(bcast *p, const ei__tensor *o, const ei__tensor *a, const ei__tensor *b) {
  int64_t sa[EI_MAX_DIMS], sb[EI_MAX_DIMS];
  row_strides(a, o->rank, sa);
  row_strides(b, o->rank, sb);
  /* innermost first: drop size-1 dims, merge a dim into the one inside it when both strides continue */
  int64_t d[EI_MAX_DIMS], xa[EI_MAX_DIMS], xb[EI_MAX_DIMS];
  int r = 0;
  for (int i = o->rank - 1; i >= 0; i--) {
    if (o->dims[i] == 1) continue;
    if (r > 0 && sa[i] == xa[r - 1] * d[r - 1] && sb[i] == xb[r - 1] * d[r - 1]) {
      d[r - 1] *= o->dims[i];
      continue;
    }
    d[r] = o->dims[i];
    xa[r] = sa[i];
    xb[r] = sb[i];
    r++;
  }
  if (r == 0) {
    d[0] = 1;
    xa[0] = xb[0] = 1;
    r = 1;
  }
  p->rank = r;
  for (int i = 0; i < r; i++) {
    p->dims[i] = d[r - 1 - i];
    p->sa[i] = xa[r - 1 - i];
    p->sb[i] = xb[r - 1 - i];
  }
}

/* A segment: n outputs; mode 0: a and b contiguous, 1: b repeated, 2: a repeated, 3: both repeated. */
typedef void (*seg_fn)(void *o, const void *a, const void *b, int64_t n, int mode);

#define SEG(NAME, T, EXPR)                                                   \
  static void NAME(void *o_, const void *a_, const void *b_, int64_t n, int mode) { \
    T *o = o_;                                                               \
    const T *pa = a_, *pb = b_;                                              \
    switch (mode) {                                                          \
      case 0:                                                                \
        for (int64_t i = 0; i < n; i++) {                                    \
          T x = pa[i], y = pb[i];                                            \
          o[i] = (EXPR);                                                     \
        }                                                                    \
        break;                                                               \
      case 1: {                                                              \
        const T y = pb[0];                                                   \
        for (int64_t i = 0; i < n; i++) {                                    \
          T x = pa[i];                                                       \
          o[i] = (EXPR);                                                     \
        }                                                                    \
        break;                                                               \
      }                                                                      \
      case 2: {                                                              \
        const T x = pa[0];                                                   \
        for (int64_t i = 0; i < n; i++) {                                    \
          T y = pb[i];                                                       \
          o[i] = (EXPR);                                                     \
        }                                                                    \
        break;                                                               \
      }                                                                      \
      default: {                                                             \
        const T x = pa[0], y = pb[0];                                        \
        const T v = (EXPR);                                                  \
        for (int64_t i = 0; i < n; i++) o[i] = v;                            \
      }                                                                      \
    }                                                                        \
  }

/* float: NaN propagates through Max/Min as in numpy */
SEG(f32_add, float, x + y)
SEG(f32_sub, float, x - y)
SEG(f32_mul, float, x * y)
SEG(f32_div, float, x / y)
SEG(f32_prelu, float, x < 0.f ? x * y : x)
SEG(f32_max, float, (x > y || x != x) ? x : y)
SEG(f32_min, float, (x < y || x != x) ? x : y)
SEG(f64_add, double, x + y)
SEG(f64_sub, double, x - y)
SEG(f64_mul, double, x * y)
SEG(f64_div, double, x / y)
SEG(f64_prelu, double, x < 0 ? x * y : x)
SEG(f64_max, double, (x > y || x != x) ? x : y)
SEG(f64_min, double, (x < y || x != x) ? x : y)

/* integers: U is an unsigned type at least as wide as T and as unsigned int (no promotion to signed int) */
#define INT_SEGS(SFX, T, U, DIV)                  \
  SEG(SFX##_add, T, (T)((U)x + (U)y))             \
  SEG(SFX##_sub, T, (T)((U)x - (U)y))             \
  SEG(SFX##_mul, T, (T)((U)x * (U)y))             \
  SEG(SFX##_div, T, DIV(T, U, x, y))              \
  SEG(SFX##_max, T, x > y ? x : y)                \
  SEG(SFX##_min, T, x < y ? x : y)

/* Divisors were checked non-zero; INT_MIN / -1 wraps to INT_MIN. */
#define DIV_S(T, U, x, y) ((y) == -1 ? (T)((U)0 - (U)(x)) : (T)((x) / (y)))
#define DIV_U(T, U, x, y) ((T)((x) / (y)))

INT_SEGS(i8, int8_t, uint32_t, DIV_S)
INT_SEGS(u8, uint8_t, uint32_t, DIV_U)
INT_SEGS(i16, int16_t, uint32_t, DIV_S)
INT_SEGS(u16, uint16_t, uint32_t, DIV_U)
INT_SEGS(i32, int32_t, uint32_t, DIV_S)
INT_SEGS(u32, uint32_t, uint32_t, DIV_U)
INT_SEGS(i64, int64_t, uint64_t, DIV_S)
INT_SEGS(u64, uint64_t, uint64_t, DIV_U)

#define INT_CASE(DT, SFX)                  \
  case DT:                                 \
    switch (k) {                           \
      case B_ADD: return SFX##_add;        \
      case B_SUB: return SFX##_sub;        \
      case B_MUL: return SFX##_mul;        \
      case B_DIV: return SFX##_div;        \
      case B_MAX: return SFX##_max;        \
      case B_MIN: return SFX##_min;        \
      default: return NULL;                \
    }

static seg_fn seg_for(binary_kind k, ei_dtype dt) {
  switch (dt) {
    case EI_FLOAT:
      switch (k) {
        case B_ADD: case B_SUM: case B_MEAN: return f32_add;
        case B_SUB: return f32_sub;
        case B_MUL: return f32_mul;
        case B_DIV: return f32_div;
        case B_PRELU: return f32_prelu;
        case B_MAX: return f32_max;
        case B_MIN: return f32_min;
      }
      return NULL;
    case EI_DOUBLE:
      switch (k) {
        case B_ADD: case B_SUM: case B_MEAN: return f64_add;
        case B_SUB: return f64_sub;
        case B_MUL: return f64_mul;
        case B_DIV: return f64_div;
        case B_PRELU: return f64_prelu;
        case B_MAX: return f64_max;
        case B_MIN: return f64_min;
      }
      return NULL;
    INT_CASE(EI_INT8, i8)
    INT_CASE(EI_UINT8, u8)
    INT_CASE(EI_INT16, i16)
    INT_CASE(EI_UINT16, u16)
    INT_CASE(EI_INT32, i32)
    INT_CASE(EI_UINT32, u32)
    INT_CASE(EI_INT64, i64)
    INT_CASE(EI_UINT64, u64)
    default: return NULL;
  }
}

typedef struct binary_job {
  bcast bc;
  seg_fn fn;
  size_t es;
  char *o;
  const char *a, *b;
  const ei__act *act; /* NULL or a fused activation (float) */
  const ei__f32_simd *simd; /* float32 Add and the fused activation by SIMD rows (the scalar table at EI_ISA=ref) */
  int f32_add;
} binary_job;

/* Computes outputs [begin, end) of the flattened output. */
static void binary_range(void *arg, int64_t begin, int64_t end) {
  const binary_job *j = arg;
  const bcast *p = &j->bc;
  const int r = p->rank, last = r - 1;
  const int mode = (p->sa[last] ? 0 : 2) | (p->sb[last] ? 0 : 1);
  int64_t idx[EI_MAX_DIMS];
  int64_t rem = begin;
  for (int d = last; d >= 0; d--) {
    idx[d] = rem % p->dims[d];
    rem /= p->dims[d];
  }
  int64_t pos = begin;
  while (pos < end) {
    int64_t oa = 0, ob = 0;
    for (int d = 0; d < r; d++) {
      oa += idx[d] * p->sa[d];
      ob += idx[d] * p->sb[d];
    }
    int64_t n = p->dims[last] - idx[last];
    if (n > end - pos) n = end - pos;
    char *o = j->o + (size_t)pos * j->es;
    if (j->f32_add && mode != 2 && mode != 3) {
      j->simd->add((const float *)j->a + oa, (const float *)j->b + ob, mode == 1, (float *)o, n, j->act);
    } else {
      j->fn(o, j->a + (size_t)oa * j->es, j->b + (size_t)ob * j->es, n, mode);
      if (j->act) j->simd->act(j->act, (float *)o, n);
    }
    pos += n;
    idx[last] = 0;
    for (int d = last - 1; d >= 0; d--) {
      if (++idx[d] < p->dims[d]) break;
      idx[d] = 0;
    }
  }
}

/* out = op(a, b) with a and b broadcast to out's shape. */
static void binary_apply(ei__run *c, seg_fn fn, const ei__tensor *a, const ei__tensor *b, const ei__act *act) {
  ei__tensor *o = &c->out[0];
  binary_job j;
  bcast_make(&j.bc, o, a, b);
  j.fn = fn;
  j.es = ei_dtype_size(o->dtype);
  j.o = o->data;
  j.a = a->data;
  j.b = b->data;
  j.act = act;
  j.simd = ei__f32_simd_get(ei__isa_current());
  j.f32_add = fn == f32_add && o->dtype == EI_FLOAT;
  int64_t n = ei__numel(o);
  if (n > 0) ei__parallel_for(c->pool, n, EI_EW_CHUNK, binary_range, &j);
}

/* Integer Div: a zero divisor anywhere is an error (checked before computing anything). */
static int has_zero(const ei__tensor *t) {
  int64_t n = ei__numel(t);
  size_t es = ei_dtype_size(t->dtype);
  static const unsigned char zero[8];
  for (int64_t i = 0; i < n; i++)
    if (!memcmp((const char *)t->data + (size_t)i * es, zero, es)) return 1;
  return 0;
}

/* Mean: the sum divided by the input count. */
typedef struct mean_job {
  void *o;
  ei_dtype dt;
  int count;
} mean_job;

static void mean_range(void *arg, int64_t b, int64_t e) {
  const mean_job *j = arg;
  if (j->dt == EI_DOUBLE) {
    double *o = j->o;
    for (int64_t i = b; i < e; i++) o[i] /= (double)j->count;
  } else {
    float *o = j->o;
    for (int64_t i = b; i < e; i++) o[i] /= (float)j->count;
  }
}

ei_status ei__ew_binary_run(ei__run *c) {
  const binary_params *p = c->node->params;
  if (!p) return EI_NODE_ERR(c, EI_E_INTERNAL, "not initialised");
  ei__tensor *o = &c->out[0];
  seg_fn fn = seg_for(p->kind, o->dtype);
  if (!fn) return EI_NODE_ERR(c, EI_E_UNSUPPORTED, "type %s is not supported", ei_dtype_name(o->dtype));
  const ei__act *act = c->node->act.kind != EI_ACT_NONE && o->dtype == EI_FLOAT ? &c->node->act : NULL;
  int is_float = o->dtype == EI_FLOAT || o->dtype == EI_DOUBLE;
  if (p->kind == B_DIV && !is_float && has_zero(&c->in[1]))
    return EI_NODE_ERR(c, EI_E_RUNTIME, "integer division by zero");
  /* the activation goes on the last pass, or after everything for Mean and a single input */
  const ei__act *loop_act = p->kind == B_MEAN ? NULL : act;
  if (c->nin == 1) {
    ei__ew_copy0(c);
  } else {
    /* variadic: out = op(in0, in1), then out = op(out, in_k) */
    binary_apply(c, fn, &c->in[0], &c->in[1], c->nin == 2 ? loop_act : NULL);
    for (int i = 2; i < c->nin; i++) binary_apply(c, fn, o, &c->in[i], i == c->nin - 1 ? loop_act : NULL);
  }
  int64_t n = ei__numel(o);
  if (p->kind == B_MEAN && c->nin > 1 && n > 0) {
    mean_job j = {o->data, o->dtype, c->nin};
    ei__parallel_for(c->pool, n, EI_EW_CHUNK, mean_range, &j);
  }
  if (act && (c->nin == 1 || !loop_act)) ei__act_apply_n(act, o->data, n);
  return EI_OK;
}
