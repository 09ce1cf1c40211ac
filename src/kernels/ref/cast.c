/* Reference Cast between float32, float64, int8, uint8, int16, uint16, int32, int64, uint32, uint64 and bool.
 * Values go through a wide intermediate in blocks (double for float sources, int64 for signed, uint64 for
 * unsigned and bool sources). float -> integer truncates toward zero and clamps to the target range (NaN -> 0),
 * integer -> narrower integer wraps (two's complement), anything -> bool is "!= 0". `saturate` (opset 19) only
 * concerns float8 types and is ignored. */
#include <math.h>
#include <string.h>

#include "kernels/ref/elementwise.h"

static int cast_type_ok(int64_t t) {
  switch (t) {
    case EI_FLOAT: case EI_DOUBLE: case EI_INT8: case EI_UINT8: case EI_INT16: case EI_UINT16: case EI_INT32:
    case EI_INT64: case EI_UINT32: case EI_UINT64: case EI_BOOL: return 1;
    default: return 0;
  }
}

typedef struct cast_params {
  ei_dtype to;
} cast_params;

ei_status ei__ew_cast_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  (void)g;
  const ei__attr *a = ei__attr_find(n, "to");
  if (!a || a->type != EI_ATTR_INT)
    return ei__err(err, errlen, EI_E_INVALID_MODEL, "Cast node '%s': missing integer attribute 'to'", n->name);
  if (!cast_type_ok(a->i))
    return ei__err(err, errlen, EI_E_UNSUPPORTED, "Cast node '%s': target type %lld (%s) is not supported", n->name,
                   (long long)a->i, a->i > 0 && a->i < 64 ? ei_dtype_name((ei_dtype)a->i) : "?");
  if (n->nin != 1)
    return ei__err(err, errlen, EI_E_INVALID_MODEL, "Cast node '%s': %d inputs (expected 1)", n->name, n->nin);
  cast_params *p = ei__calloc(1, sizeof *p);
  if (!p) return EI_E_NOMEM;
  p->to = (ei_dtype)a->i;
  n->params = p;
  return EI_OK;
}

ei_status ei__ew_cast_infer(ei__infer *c) {
  const cast_params *p = c->node->params;
  if (!p) return EI_NODE_ERR(c, EI_E_INTERNAL, "not initialised");
  ei_status s = ei__ew_check_input(c, 0);
  if (s) return s;
  if (!cast_type_ok(c->in[0].dtype))
    return EI_NODE_ERR(c, EI_E_UNSUPPORTED, "input type %s is not supported", ei_dtype_name(c->in[0].dtype));
  ei__ew_set_shape(&c->out[0], &c->in[0], p->to);
  return ei__ew_check_size(c, &c->out[0], "output");
}

typedef enum { C_FLOAT, C_SIGNED, C_UNSIGNED } cast_class;

#define BLK 256

typedef struct cast_block {
  cast_class cls;
  double f[BLK];
  int64_t s[BLK];
  uint64_t u[BLK];
} cast_block;

#define LOAD(T, DST)                                          \
  do {                                                        \
    const T *q_ = (const T *)src + base;                      \
    for (int64_t i = 0; i < m; i++) b->DST[i] = q_[i];        \
  } while (0)

static void load_block(cast_block *b, ei_dtype dt, const void *src, int64_t base, int64_t m) {
  switch (dt) {
    case EI_FLOAT: b->cls = C_FLOAT; LOAD(float, f); break;
    case EI_DOUBLE: b->cls = C_FLOAT; LOAD(double, f); break;
    case EI_INT8: b->cls = C_SIGNED; LOAD(int8_t, s); break;
    case EI_INT16: b->cls = C_SIGNED; LOAD(int16_t, s); break;
    case EI_INT32: b->cls = C_SIGNED; LOAD(int32_t, s); break;
    case EI_INT64: b->cls = C_SIGNED; LOAD(int64_t, s); break;
    case EI_UINT8: b->cls = C_UNSIGNED; LOAD(uint8_t, u); break;
    case EI_UINT16: b->cls = C_UNSIGNED; LOAD(uint16_t, u); break;
    case EI_UINT32: b->cls = C_UNSIGNED; LOAD(uint32_t, u); break;
    case EI_UINT64: b->cls = C_UNSIGNED; LOAD(uint64_t, u); break;
    case EI_BOOL: {
      const uint8_t *q = (const uint8_t *)src + base;
      b->cls = C_UNSIGNED;
      for (int64_t i = 0; i < m; i++) b->u[i] = q[i] != 0;
      break;
    }
    default: break;
  }
}

/* float -> integer: NaN -> 0, clamp to [MIN, MAX], then truncate (in range, so defined). */
#define F2I(T, MIN, MAX, v) \
  ((v) != (v) ? (T)0 : (v) <= (double)(MIN) ? (T)(MIN) : (v) >= (double)(MAX) ? (T)(MAX) : (T)(v))

#define STORE_INT(T, MIN, MAX)                                                   \
  do {                                                                           \
    T *q_ = (T *)dst + base;                                                     \
    switch (b->cls) {                                                            \
      case C_FLOAT: for (int64_t i = 0; i < m; i++) q_[i] = F2I(T, MIN, MAX, b->f[i]); break; \
      case C_SIGNED: for (int64_t i = 0; i < m; i++) q_[i] = (T)b->s[i]; break;    \
      case C_UNSIGNED: for (int64_t i = 0; i < m; i++) q_[i] = (T)b->u[i]; break;  \
    }                                                                            \
  } while (0)

#define STORE_FLT(T)                                                             \
  do {                                                                           \
    T *q_ = (T *)dst + base;                                                     \
    switch (b->cls) {                                                            \
      case C_FLOAT: for (int64_t i = 0; i < m; i++) q_[i] = (T)b->f[i]; break;     \
      case C_SIGNED: for (int64_t i = 0; i < m; i++) q_[i] = (T)b->s[i]; break;    \
      case C_UNSIGNED: for (int64_t i = 0; i < m; i++) q_[i] = (T)b->u[i]; break;  \
    }                                                                            \
  } while (0)

static void store_block(const cast_block *b, ei_dtype dt, void *dst, int64_t base, int64_t m) {
  switch (dt) {
    case EI_FLOAT: STORE_FLT(float); break;
    case EI_DOUBLE: STORE_FLT(double); break;
    case EI_INT8: STORE_INT(int8_t, INT8_MIN, INT8_MAX); break;
    case EI_INT16: STORE_INT(int16_t, INT16_MIN, INT16_MAX); break;
    case EI_INT32: STORE_INT(int32_t, INT32_MIN, INT32_MAX); break;
    case EI_INT64: STORE_INT(int64_t, INT64_MIN, INT64_MAX); break;
    case EI_UINT8: STORE_INT(uint8_t, 0, UINT8_MAX); break;
    case EI_UINT16: STORE_INT(uint16_t, 0, UINT16_MAX); break;
    case EI_UINT32: STORE_INT(uint32_t, 0, UINT32_MAX); break;
    case EI_UINT64: STORE_INT(uint64_t, 0, UINT64_MAX); break;
    case EI_BOOL: {
      uint8_t *q = (uint8_t *)dst + base;
      switch (b->cls) {
        case C_FLOAT: for (int64_t i = 0; i < m; i++) q[i] = b->f[i] != 0; break; /* NaN -> true */
        case C_SIGNED: for (int64_t i = 0; i < m; i++) q[i] = b->s[i] != 0; break;
        case C_UNSIGNED: for (int64_t i = 0; i < m; i++) q[i] = b->u[i] != 0; break;
      }
      break;
    }
    default: break;
  }
}

typedef struct cast_job {
  ei_dtype from, to;
  const void *src;
  void *dst;
} cast_job;

static void cast_range(void *arg, int64_t begin, int64_t end) {
  const cast_job *j = arg;
  cast_block b;
  b.cls = C_FLOAT;
  for (int64_t base = begin; base < end; base += BLK) {
    int64_t m = end - base < BLK ? end - base : BLK;
    load_block(&b, j->from, j->src, base, m);
    store_block(&b, j->to, j->dst, base, m);
  }
}

ei_status ei__ew_cast_run(ei__run *c) {
  const ei__tensor *x = &c->in[0];
  ei__tensor *y = &c->out[0];
  int64_t n = ei__numel(x);
  if (n <= 0) return EI_OK;
  if (x->dtype == y->dtype && x->dtype != EI_BOOL) {
    ei__ew_copy0(c);
    return EI_OK;
  }
  cast_job j = {x->dtype, y->dtype, x->data, y->data};
  ei__parallel_for(c->pool, n, EI_EW_CHUNK, cast_range, &j);
  return EI_OK;
}
