/* Graph construction and attribute access. */
#include <math.h>
#include <string.h>

#include "graph/ir.h"

ei__graph *ei__graph_new(void) { return ei__calloc(1, sizeof(ei__graph)); }

static void free_node(ei__node *n) {
  if (n->op && n->params) {
    if (n->op->fini)
      n->op->fini(n);
    else
      ei__free(n->params);
  }
  n->params = NULL;
  ei__free(n->name);
  ei__free(n->op_type);
  ei__free(n->domain);
  ei__free(n->in);
  ei__free(n->out);
  for (int a = 0; a < n->nattrs; a++) {
    ei__free(n->attrs[a].name);
    ei__free(n->attrs[a].s);
    ei__free(n->attrs[a].floats);
    ei__free(n->attrs[a].ints);
  }
  ei__free(n->attrs);
}

void ei__graph_free(ei__graph *g) {
  if (!g) return;
  for (int i = 0; i < g->nnodes; i++) free_node(&g->nodes[i]);
  for (int i = 0; i < g->nvalues; i++) {
    ei__value *v = &g->values[i];
    ei__free(v->name);
    ei__free(v->data);
    for (int d = 0; d < EI_MAX_DIMS; d++) ei__free(v->dim_names[d]);
  }
  ei__free(g->nodes);
  ei__free(g->values);
  ei__free(g->inputs);
  ei__free(g->outputs);
  ei__free(g->producer);
  ei__free(g);
}

int ei__graph_add_value(ei__graph *g, const char *name) {
  if (g->nvalues == g->cap_values) {
    int nc = g->cap_values ? g->cap_values * 2 : 64;
    ei__value *nv = ei__realloc(g->values, sizeof(ei__value) * g->cap_values, sizeof(ei__value) * nc);
    if (!nv) return -1;
    g->values = nv;
    g->cap_values = nc;
  }
  ei__value *v = &g->values[g->nvalues];
  memset(v, 0, sizeof *v);
  v->name = ei__strdup(name ? name : "");
  if (!v->name) return -1;
  v->rank = -1;
  v->producer = -1;
  return g->nvalues++;
}

int ei__graph_find_value(const ei__graph *g, const char *name) {
  for (int i = g->nvalues - 1; i >= 0; i--)
    if (!strcmp(g->values[i].name, name)) return i;
  return -1;
}

int ei__graph_add_node(ei__graph *g) {
  if (g->nnodes == g->cap_nodes) {
    int nc = g->cap_nodes ? g->cap_nodes * 2 : 64;
    ei__node *nn = ei__realloc(g->nodes, sizeof(ei__node) * g->cap_nodes, sizeof(ei__node) * nc);
    if (!nn) return -1;
    g->nodes = nn;
    g->cap_nodes = nc;
  }
  memset(&g->nodes[g->nnodes], 0, sizeof(ei__node));
  return g->nnodes++;
}

void *ei__value_alloc_const(ei__value *v, ei_dtype dt, int rank, const int64_t *dims) {
  size_t n = 1, es = ei_dtype_size(dt);
  if (!es || rank < 0 || rank > EI_MAX_DIMS) return NULL;
  for (int i = 0; i < rank; i++) {
    if (dims[i] < 0 || !ei__mul_size(n, (size_t)dims[i], &n)) return NULL;
  }
  if (!ei__mul_size(n, es, &n)) return NULL;
  void *p = ei__calloc(1, n ? n : 1);
  if (!p) return NULL;
  ei__free(v->data);
  v->data = p;
  v->nbytes = n;
  v->dtype = dt;
  v->rank = rank;
  for (int i = 0; i < rank; i++) v->dims[i] = dims[i];
  v->is_const = 1;
  return p;
}

ei_status ei__value_set_const(ei__value *v, ei_dtype dt, int rank, const int64_t *dims, const void *data,
                              size_t nbytes) {
  void *p = ei__value_alloc_const(v, dt, rank, dims);
  if (!p) return EI_E_NOMEM;
  if (nbytes != v->nbytes) return EI_E_INTERNAL;
  if (nbytes) memcpy(p, data, nbytes);
  return EI_OK;
}

const ei__attr *ei__attr_find(const ei__node *n, const char *name) {
  for (int i = 0; i < n->nattrs; i++)
    if (!strcmp(n->attrs[i].name, name)) return &n->attrs[i];
  return NULL;
}

int64_t ei__attr_int(const ei__node *n, const char *name, int64_t def) {
  const ei__attr *a = ei__attr_find(n, name);
  return a && a->type == EI_ATTR_INT ? a->i : def;
}

float ei__attr_float(const ei__node *n, const char *name, float def) {
  const ei__attr *a = ei__attr_find(n, name);
  if (!a) return def;
  if (a->type == EI_ATTR_FLOAT) return a->f;
  if (a->type == EI_ATTR_INT) return (float)a->i;
  return def;
}

const char *ei__attr_str(const ei__node *n, const char *name, const char *def) {
  const ei__attr *a = ei__attr_find(n, name);
  return a && a->type == EI_ATTR_STRING ? a->s : def;
}

int ei__attr_ints(const ei__node *n, const char *name, const int64_t **v) {
  const ei__attr *a = ei__attr_find(n, name);
  if (!a || a->type != EI_ATTR_INTS) return -1;
  *v = a->ints;
  return a->n;
}

int ei__attr_floats(const ei__node *n, const char *name, const float **v) {
  const ei__attr *a = ei__attr_find(n, name);
  if (!a || a->type != EI_ATTR_FLOATS) return -1;
  *v = a->floats;
  return a->n;
}

const ei__value *ei__node_const_input(const ei__graph *g, const ei__node *n, int i) {
  if (i >= n->nin || n->in[i] < 0) return NULL;
  const ei__value *v = &g->values[n->in[i]];
  return v->is_const ? v : NULL;
}

float ei__act_apply(const ei__act *a, float x) {
  switch (a->kind) {
    case EI_ACT_NONE: return x;
    case EI_ACT_RELU: return x > 0.f ? x : 0.f;
    case EI_ACT_CLIP: return x < a->alpha ? a->alpha : (x > a->beta ? a->beta : x);
    case EI_ACT_LEAKYRELU: return x >= 0.f ? x : a->alpha * x;
    case EI_ACT_HARDSIGMOID: {
      float y = a->alpha * x + a->beta;
      return y < 0.f ? 0.f : (y > 1.f ? 1.f : y);
    }
    case EI_ACT_HARDSWISH: {
      float y = x * (1.f / 6.f) + 0.5f;
      y = y < 0.f ? 0.f : (y > 1.f ? 1.f : y);
      return x * y;
    }
    case EI_ACT_SIGMOID: return 1.f / (1.f + expf(-x));
  }
  return x;
}

void ei__act_apply_n(const ei__act *a, float *x, int64_t n) {
  if (a->kind == EI_ACT_NONE) return;
  if (a->kind == EI_ACT_RELU) {
    for (int64_t i = 0; i < n; i++) x[i] = x[i] > 0.f ? x[i] : 0.f;
    return;
  }
  for (int64_t i = 0; i < n; i++) x[i] = ei__act_apply(a, x[i]);
}

const char *ei__act_name(ei__act_kind k) {
  switch (k) {
    case EI_ACT_NONE: return NULL;
    case EI_ACT_RELU: return "Relu";
    case EI_ACT_CLIP: return "Clip";
    case EI_ACT_LEAKYRELU: return "LeakyRelu";
    case EI_ACT_HARDSIGMOID: return "HardSigmoid";
    case EI_ACT_HARDSWISH: return "HardSwish";
    case EI_ACT_SIGMOID: return "Sigmoid";
  }
  return NULL;
}
