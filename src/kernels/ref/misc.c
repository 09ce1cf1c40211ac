/* Reference kernels of the data-movement and constant operators: Identity, Dropout (inference only: output 0
 * is input 0, the optional mask is all true), Shape (opset 15 start/end), Constant (value tensor or
 * value_float(s)/value_int(s)) and ConstantOfShape. */
#include <math.h>
#include <string.h>

#include "kernels/ref/elementwise.h"

/* ---- Identity ---- */

ei_status ei__ew_identity_infer(ei__infer *c) {
  if (c->nin != 1) return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "%d inputs (expected 1)", c->nin);
  ei_status s = ei__ew_check_input(c, 0);
  if (s) return s;
  if (!ei_dtype_size(c->in[0].dtype))
    return EI_NODE_ERR(c, EI_E_UNSUPPORTED, "input type %s is not supported", ei_dtype_name(c->in[0].dtype));
  ei__ew_set_shape(&c->out[0], &c->in[0], c->in[0].dtype);
  return EI_OK;
}

ei_status ei__ew_identity_run(ei__run *c) {
  ei__ew_copy0(c);
  return EI_OK;
}

/* ---- Dropout ---- */

typedef struct dropout_params {
  ei_dtype mask_type; /* EI_BOOL from opset 10; EI_UNDEFINED: the input's type (before 10) */
  int inputs;         /* opset >= 12: ratio and training_mode are inputs 1 and 2 */
} dropout_params;

ei_status ei__ew_dropout_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  (void)g;
  dropout_params p = {n->opset >= 10 ? EI_BOOL : EI_UNDEFINED, n->opset >= 12};
  if (n->nin < 1 || n->nin > (p.inputs ? 3 : 1))
    return ei__err(err, errlen, EI_E_INVALID_MODEL, "Dropout node '%s': %d inputs (expected %s)", n->name, n->nin,
                   p.inputs ? "1 to 3" : "1");
  if (n->nout < 1 || n->nout > 2)
    return ei__err(err, errlen, EI_E_INVALID_MODEL, "Dropout node '%s': %d outputs (expected 1 or 2)", n->name,
                   n->nout);
  if (!p.inputs) {
    float ratio = ei__attr_float(n, "ratio", 0.5f);
    if (!(ratio >= 0.f && ratio <= 1.f))
      return ei__err(err, errlen, EI_E_INVALID_MODEL, "Dropout node '%s': ratio %g is not in [0, 1]", n->name,
                     (double)ratio);
  }
  dropout_params *pp = ei__malloc(sizeof *pp);
  if (!pp) return EI_E_NOMEM;
  *pp = p;
  n->params = pp;
  return EI_OK;
}

/* training_mode (input 2) is known and true. */
static int dropout_training(const ei__node *n, int nin, const ei__tensor *in) {
  return ei__ew_present(n, nin, 2) && in[2].data && in[2].dtype == EI_BOOL && ei__numel(&in[2]) == 1 &&
         *(const uint8_t *)in[2].data != 0;
}

ei_status ei__ew_dropout_infer(ei__infer *c) {
  const dropout_params *p = c->node->params;
  if (!p) return EI_NODE_ERR(c, EI_E_INTERNAL, "not initialised");
  ei_status s = ei__ew_check_input(c, 0);
  if (s) return s;
  const ei__tensor *x = &c->in[0];
  if (!ei_dtype_size(x->dtype))
    return EI_NODE_ERR(c, EI_E_UNSUPPORTED, "input type %s is not supported", ei_dtype_name(x->dtype));
  if (p->inputs) {
    if (ei__ew_present(c->node, c->nin, 1)) {
      if ((s = ei__ew_check_input(c, 1))) return s;
      const ei__tensor *r = &c->in[1];
      if ((r->dtype != EI_FLOAT && r->dtype != EI_DOUBLE) || ei__numel(r) != 1 || r->rank > 1)
        return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "ratio must be a float scalar");
    }
    if (ei__ew_present(c->node, c->nin, 2)) {
      if ((s = ei__ew_check_input(c, 2))) return s;
      const ei__tensor *t = &c->in[2];
      if (t->dtype != EI_BOOL || ei__numel(t) != 1 || t->rank > 1)
        return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "training_mode must be a bool scalar");
      if (dropout_training(c->node, c->nin, c->in))
        return EI_NODE_ERR(c, EI_E_UNSUPPORTED, "training mode is not supported");
    }
  }
  ei__ew_set_shape(&c->out[0], x, x->dtype);
  if (c->nout > 1 && c->node->nout > 1 && c->node->out[1] >= 0) {
    ei_dtype mt = p->mask_type ? p->mask_type : x->dtype;
    if (mt != EI_BOOL && mt != EI_FLOAT && mt != EI_DOUBLE && mt != EI_FLOAT16)
      return EI_NODE_ERR(c, EI_E_UNSUPPORTED, "mask of type %s", ei_dtype_name(mt));
    ei__ew_set_shape(&c->out[1], x, mt);
  }
  return EI_OK;
}

ei_status ei__ew_dropout_run(ei__run *c) {
  if (dropout_training(c->node, c->nin, c->in))
    return EI_NODE_ERR(c, EI_E_UNSUPPORTED, "training mode is not supported");
  ei__ew_copy0(c);
  if (c->nout > 1 && c->node->nout > 1 && c->node->out[1] >= 0 && c->out[1].data) {
    ei__tensor *m = &c->out[1];
    int64_t n = ei__numel(m);
    switch (m->dtype) {
      case EI_FLOAT: for (int64_t i = 0; i < n; i++) ((float *)m->data)[i] = 1.f; break;
      case EI_DOUBLE: for (int64_t i = 0; i < n; i++) ((double *)m->data)[i] = 1.0; break;
      case EI_FLOAT16: for (int64_t i = 0; i < n; i++) ((uint16_t *)m->data)[i] = 0x3c00; break;
      case EI_BOOL: memset(m->data, 1, (size_t)n); break;
      default: return EI_NODE_ERR(c, EI_E_UNSUPPORTED, "mask type %s", ei_dtype_name(m->dtype));
    }
  }
  return EI_OK;
}

/* ---- Shape ---- */

typedef struct shape_params {
  int64_t start, end; /* end: INT64_MAX when absent */
} shape_params;

ei_status ei__ew_shape_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  (void)g;
  if (n->nin != 1)
    return ei__err(err, errlen, EI_E_INVALID_MODEL, "Shape node '%s': %d inputs (expected 1)", n->name, n->nin);
  shape_params *p = ei__malloc(sizeof *p);
  if (!p) return EI_E_NOMEM;
  p->start = ei__attr_int(n, "start", 0);
  p->end = ei__attr_int(n, "end", INT64_MAX);
  n->params = p;
  return EI_OK;
}

static int64_t shape_clamp(int64_t v, int rank) {
  if (v < 0) v = v < -(int64_t)rank ? 0 : v + rank;
  return v > rank ? rank : v;
}

static void shape_range(const ei__node *n, int rank, int64_t *b, int64_t *e) {
  const shape_params *p = n->params;
  *b = shape_clamp(p->start, rank);
  *e = shape_clamp(p->end, rank);
  if (*e < *b) *e = *b;
}

ei_status ei__ew_shape_infer(ei__infer *c) {
  if (!c->node->params) return EI_NODE_ERR(c, EI_E_INTERNAL, "not initialised");
  ei_status s = ei__ew_check_input(c, 0);
  if (s) return s;
  int64_t b, e;
  shape_range(c->node, c->in[0].rank, &b, &e);
  c->out[0].dtype = EI_INT64;
  c->out[0].rank = 1;
  c->out[0].dims[0] = e - b;
  return EI_OK;
}

ei_status ei__ew_shape_run(ei__run *c) {
  int64_t b, e;
  shape_range(c->node, c->in[0].rank, &b, &e);
  int64_t *o = c->out[0].data;
  for (int64_t i = b; i < e; i++) o[i - b] = c->in[0].dims[i];
  return EI_OK;
}

/* ---- Constant ---- */

typedef struct const_params {
  ei_dtype dtype;
  int rank;
  int64_t dims[EI_MAX_DIMS];
  size_t nbytes;
  void *data;
} const_params;

void ei__ew_constant_fini(ei__node *n) {
  const_params *p = n->params;
  if (p) ei__free(p->data);
  ei__free(p);
  n->params = NULL;
}

/* Byte size of a dense tensor, or 0 with *ok = 0 if it overflows. */
static size_t dense_bytes(ei_dtype dt, int rank, const int64_t *dims, int *ok) {
  size_t n = ei_dtype_size(dt);
  *ok = n != 0 && rank >= 0 && rank <= EI_MAX_DIMS;
  for (int i = 0; *ok && i < rank; i++) *ok = dims[i] >= 0 && ei__mul_size(n, (size_t)dims[i], &n);
  if (*ok && n > ((size_t)1 << 48)) *ok = 0;
  return *ok ? n : 0;
}

/* The graph value holding tensor attribute a, or NULL with a message. */
static const ei__value *tensor_attr_value(const ei__graph *g, const ei__node *n, const ei__attr *a, char *err,
                                          size_t errlen, ei_status *s) {
  *s = EI_OK;
  if (a->type != EI_ATTR_TENSOR || a->tensor_value < 0 || a->tensor_value >= g->nvalues ||
      !g->values[a->tensor_value].is_const) {
    *s = ei__err(err, errlen, EI_E_INVALID_MODEL, "%s node '%s': attribute '%s' is not a tensor", n->op_type, n->name,
                 a->name);
    return NULL;
  }
  const ei__value *v = &g->values[a->tensor_value];
  int ok;
  size_t nb = dense_bytes(v->dtype, v->rank, v->dims, &ok);
  if (!ei_dtype_size(v->dtype)) {
    *s = ei__err(err, errlen, EI_E_UNSUPPORTED, "%s node '%s': tensor attribute '%s' of type %s is not supported",
                 n->op_type, n->name, a->name, ei_dtype_name(v->dtype));
    return NULL;
  }
  if (!ok || (nb && (!v->data || v->nbytes < nb))) {
    *s = ei__err(err, errlen, EI_E_INVALID_MODEL, "%s node '%s': tensor attribute '%s' has an invalid shape or size",
                 n->op_type, n->name, a->name);
    return NULL;
  }
  return v;
}

static ei_status constant_fill(const ei__node *n, const_params *p, ei_dtype dt, int rank, const int64_t *dims,
                               const void *src, char *err, size_t errlen) {
  int ok;
  size_t nb = dense_bytes(dt, rank, dims, &ok);
  if (!ok) return ei__err(err, errlen, EI_E_INVALID_MODEL, "Constant node '%s': invalid value shape", n->name);
  p->dtype = dt;
  p->rank = rank;
  for (int i = 0; i < rank; i++) p->dims[i] = dims[i];
  p->nbytes = nb;
  p->data = ei__malloc(nb ? nb : 1);
  if (!p->data) return ei__err(err, errlen, EI_E_NOMEM, "Constant node '%s': out of memory", n->name);
  if (nb) memcpy(p->data, src, nb);
  return EI_OK;
}

ei_status ei__ew_constant_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  static const char *const kinds[] = {"value", "value_float", "value_floats", "value_int", "value_ints",
                                      "value_string", "value_strings", "sparse_value"};
  const ei__attr *a = NULL;
  int count = 0;
  for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
    const ei__attr *t = ei__attr_find(n, kinds[i]);
    if (t) a = t, count++;
  }
  if (n->nin != 0)
    return ei__err(err, errlen, EI_E_INVALID_MODEL, "Constant node '%s': %d inputs (expected none)", n->name, n->nin);
  if (count != 1)
    return ei__err(err, errlen, EI_E_INVALID_MODEL, "Constant node '%s': %d value attributes (expected exactly one)",
                   n->name, count);
  const char *an = a->name;
  if (!strcmp(an, "value_string") || !strcmp(an, "value_strings") || !strcmp(an, "sparse_value"))
    return ei__err(err, errlen, EI_E_UNSUPPORTED, "Constant node '%s': attribute '%s' is not supported", n->name, an);
  const_params *p = ei__calloc(1, sizeof *p);
  if (!p) return EI_E_NOMEM;
  ei_status s = EI_OK;
  int64_t cnt = a->n;
  if (!strcmp(an, "value")) {
    const ei__value *v = tensor_attr_value(g, n, a, err, errlen, &s);
    if (v) s = constant_fill(n, p, v->dtype, v->rank, v->dims, v->data, err, errlen);
  } else if (!strcmp(an, "value_float") && a->type == EI_ATTR_FLOAT) {
    s = constant_fill(n, p, EI_FLOAT, 0, NULL, &a->f, err, errlen);
  } else if (!strcmp(an, "value_floats") && a->type == EI_ATTR_FLOATS) {
    s = constant_fill(n, p, EI_FLOAT, 1, &cnt, a->floats, err, errlen);
  } else if (!strcmp(an, "value_int") && a->type == EI_ATTR_INT) {
    s = constant_fill(n, p, EI_INT64, 0, NULL, &a->i, err, errlen);
  } else if (!strcmp(an, "value_ints") && a->type == EI_ATTR_INTS) {
    s = constant_fill(n, p, EI_INT64, 1, &cnt, a->ints, err, errlen);
  } else {
    s = ei__err(err, errlen, EI_E_INVALID_MODEL, "Constant node '%s': attribute '%s' has the wrong type", n->name, an);
  }
  if (s) {
    n->params = p;
    ei__ew_constant_fini(n);
    return s;
  }
  n->params = p;
  n->params_bytes = p->nbytes;
  return EI_OK;
}

ei_status ei__ew_constant_infer(ei__infer *c) {
  const const_params *p = c->node->params;
  if (!p) return EI_NODE_ERR(c, EI_E_INTERNAL, "not initialised");
  ei__tensor *o = &c->out[0];
  o->dtype = p->dtype;
  o->rank = p->rank;
  for (int i = 0; i < p->rank; i++) o->dims[i] = p->dims[i];
  return EI_OK;
}

ei_status ei__ew_constant_run(ei__run *c) {
  const const_params *p = c->node->params;
  if (p->nbytes) memcpy(c->out[0].data, p->data, p->nbytes);
  return EI_OK;
}

/* ---- ConstantOfShape ---- */

typedef struct cofs_params {
  ei_dtype dtype;
  unsigned char value[8];
} cofs_params;

ei_status ei__ew_cofs_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  if (n->nin != 1)
    return ei__err(err, errlen, EI_E_INVALID_MODEL, "ConstantOfShape node '%s': %d inputs (expected 1)", n->name,
                   n->nin);
  cofs_params p = {EI_FLOAT, {0}};
  const ei__attr *a = ei__attr_find(n, "value");
  if (a) {
    ei_status s;
    const ei__value *v = tensor_attr_value(g, n, a, err, errlen, &s);
    if (!v) return s;
    int64_t cnt = 1;
    for (int i = 0; i < v->rank; i++) cnt *= v->dims[i];
    if (cnt != 1 || v->rank > 1)
      return ei__err(err, errlen, EI_E_INVALID_MODEL, "ConstantOfShape node '%s': value must hold one element",
                     n->name);
    p.dtype = v->dtype;
    memcpy(p.value, v->data, ei_dtype_size(v->dtype));
  }
  cofs_params *pp = ei__malloc(sizeof *pp);
  if (!pp) return EI_E_NOMEM;
  *pp = p;
  n->params = pp;
  return EI_OK;
}

ei_status ei__ew_cofs_infer(ei__infer *c) {
  const cofs_params *p = c->node->params;
  if (!p) return EI_NODE_ERR(c, EI_E_INTERNAL, "not initialised");
  ei_status s = ei__ew_check_input(c, 0);
  if (s) return s;
  const ei__tensor *t = &c->in[0];
  if (t->dtype != EI_INT64 && t->dtype != EI_INT32)
    return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "shape input has type %s (expected int64)", ei_dtype_name(t->dtype));
  if (t->rank != 1) return EI_NODE_ERR(c, EI_E_SHAPE, "shape input must be 1-D (rank %d)", t->rank);
  if (!t->data)
    return EI_NODE_ERR(c, EI_E_SHAPE, "shape input '%s' must be known at plan time",
                       ei__ew_in_name(c->graph, c->node, 0));
  if (t->dims[0] > EI_MAX_DIMS)
    return EI_NODE_ERR(c, EI_E_UNSUPPORTED, "output rank %lld exceeds %d", (long long)t->dims[0], EI_MAX_DIMS);
  ei__tensor *o = &c->out[0];
  o->dtype = p->dtype;
  o->rank = (int)t->dims[0];
  for (int i = 0; i < o->rank; i++) {
    o->dims[i] = ei__get_int(t, i);
    if (o->dims[i] < 0)
      return EI_NODE_ERR(c, EI_E_SHAPE, "shape input has a negative dimension %lld", (long long)o->dims[i]);
  }
  return ei__ew_check_size(c, o, "output");
}

ei_status ei__ew_cofs_run(ei__run *c) {
  const cofs_params *p = c->node->params;
  ei__tensor *o = &c->out[0];
  int64_t n = ei__numel(o);
  switch (ei_dtype_size(o->dtype)) {
    case 1: memset(o->data, p->value[0], (size_t)n); break;
    case 2: { uint16_t v; memcpy(&v, p->value, 2); for (int64_t i = 0; i < n; i++) ((uint16_t *)o->data)[i] = v; break; }
    case 4: { uint32_t v; memcpy(&v, p->value, 4); for (int64_t i = 0; i < n; i++) ((uint32_t *)o->data)[i] = v; break; }
    case 8: { uint64_t v; memcpy(&v, p->value, 8); for (int64_t i = 0; i < n; i++) ((uint64_t *)o->data)[i] = v; break; }
    default: return EI_NODE_ERR(c, EI_E_UNSUPPORTED, "output type %s", ei_dtype_name(o->dtype));
  }
  return EI_OK;
}
