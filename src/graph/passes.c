/* Load-time graph passes. Order: op lookup, Identity/Dropout removal, constant folding, BatchNorm folding into
 * Conv, activation fusion, dead-node removal, then init (weight packing) and release of constants that only
 * packed inputs used. */
#include <math.h>
#include <stdio.h>

#include "graph/passes.h"

#define FOLD_MAX_BYTES ((size_t)256 << 20)

/* Number of live nodes reading value v (+1 if it is a graph output). */
int ei__pass_use_count(const ei__graph *g, int v) {
  int c = g->values[v].is_output;
  for (int i = 0; i < g->nnodes; i++) {
    const ei__node *n = &g->nodes[i];
    if (n->dead) continue;
    for (int k = 0; k < n->nin; k++) c += n->in[k] == v;
  }
  return c;
}

int ei__pass_single_consumer(const ei__graph *g, int v) {
  if (g->values[v].is_output) return -1;
  int who = -1;
  for (int i = 0; i < g->nnodes; i++) {
    const ei__node *n = &g->nodes[i];
    if (n->dead) continue;
    for (int k = 0; k < n->nin; k++)
      if (n->in[k] == v) {
        if (who >= 0 && who != i) return -1;
        if (who == i) return -1; /* used twice by the same node */
        who = i;
      }
  }
  return who;
}

void ei__pass_replace_uses(ei__graph *g, int from, int to) {
  for (int i = 0; i < g->nnodes; i++) {
    ei__node *n = &g->nodes[i];
    if (n->dead) continue;
    for (int k = 0; k < n->nin; k++)
      if (n->in[k] == from) n->in[k] = to;
  }
}

void ei__pass_kill_node(ei__graph *g, ei__node *n) {
  (void)g;
  if (n->op && n->params) {
    if (n->op->fini) n->op->fini(n);
    else ei__free(n->params);
  }
  n->params = NULL;
  n->dead = 1;
}

static ei_status lookup_ops(ei__graph *g, char *err, size_t errlen) {
  for (int i = 0; i < g->nnodes; i++) {
    ei__node *n = &g->nodes[i];
    n->op = ei__op_find(n->domain, n->op_type);
    if (!n->op)
      return ei__err(err, errlen, EI_E_UNSUPPORTED, "unsupported operator '%s' (domain '%s', opset %d) at node '%s'",
                     n->op_type, n->domain[0] ? n->domain : "ai.onnx", n->opset, n->name);
    if (n->opset < n->op->min_opset)
      return ei__err(err, errlen, EI_E_UNSUPPORTED,
                     "operator '%s' at node '%s': opset %d is not supported (this engine implements opset %d and later)",
                     n->op_type, n->name, n->opset, n->op->min_opset);
  }
  return EI_OK;
}

/* Identity and Dropout (inference) forward their input. */
static void remove_identity(ei__graph *g) {
  for (int i = 0; i < g->nnodes; i++) {
    ei__node *n = &g->nodes[i];
    if (n->dead || n->nin < 1 || n->in[0] < 0) continue;
    int is_id = !strcmp(n->op_type, "Identity") && !n->domain[0];
    int is_drop = !strcmp(n->op_type, "Dropout") && !n->domain[0] && (n->nout < 2 || n->out[1] < 0 || ei__pass_use_count(g, n->out[1]) == 0);
    if (is_drop && n->nin >= 3 && n->in[2] >= 0) is_drop = 0; /* training_mode given: let the op decide */
    if (!is_id && !is_drop) continue;
    int out = n->out[0];
    if (out < 0 || g->values[out].is_output) continue;
    ei__pass_replace_uses(g, out, n->in[0]);
    ei__pass_kill_node(g, n);
  }
}

static ei_status fold_constants(ei__graph *g, size_t max_bytes, char *err, size_t errlen) {
  for (int i = 0; i < g->nnodes; i++) {
    ei__node *n = &g->nodes[i];
    if (n->dead || (n->op->flags & EI_OPF_NO_FOLD)) continue;
    int all = 1;
    for (int k = 0; k < n->nin; k++)
      if (n->in[k] >= 0 && !g->values[n->in[k]].is_const) all = 0;
    int any_out = 0;
    for (int k = 0; k < n->nout; k++) any_out |= n->out[k] >= 0;
    if (!all || !any_out) continue;
    ei__tensor ins[16], outs[8];
    if (n->nin > 16 || n->nout > 8) continue;
    for (int k = 0; k < n->nin; k++) {
      memset(&ins[k], 0, sizeof ins[k]);
      ins[k].rank = -1;
      if (n->in[k] < 0) continue;
      const ei__value *v = &g->values[n->in[k]];
      ins[k].dtype = v->dtype;
      ins[k].rank = v->rank;
      memcpy(ins[k].dims, v->dims, sizeof v->dims);
      ins[k].data = v->data;
    }
    ei_status s = ei__eval_node(g, n, ins, outs, max_bytes, err, errlen);
    if (s == EI_E_LIMIT) continue; /* too big to fold: leave it to run time */
    if (s) return s;
    for (int k = 0; k < n->nout; k++) {
      if (n->out[k] < 0) continue;
      ei__value *v = &g->values[n->out[k]];
      ei__free(v->data);
      v->data = outs[k].data;
      v->dtype = outs[k].dtype;
      v->rank = outs[k].rank;
      memcpy(v->dims, outs[k].dims, sizeof v->dims);
      v->nbytes = (size_t)ei__numel(&outs[k]) * ei_dtype_size(outs[k].dtype);
      v->is_const = 1;
      v->producer = -1;
    }
    ei__pass_kill_node(g, n);
  }
  return EI_OK;
}

/* Conv -> BatchNormalization with constant parameters: scale the Conv weights and bias. */
static ei_status fold_batchnorm(ei__graph *g, char *err, size_t errlen) {
  for (int i = 0; i < g->nnodes; i++) {
    ei__node *bn = &g->nodes[i];
    if (bn->dead || strcmp(bn->op_type, "BatchNormalization") || bn->domain[0] || bn->nin < 5 || bn->in[0] < 0) continue;
    if (bn->opset < 9 && ei__attr_int(bn, "spatial", 1) != 1) continue;
    if (ei__attr_int(bn, "training_mode", 0)) continue;
    for (int k = 1; k < bn->nout; k++) if (bn->out[k] >= 0) goto next;
    {
      int x = bn->in[0];
      const ei__value *xv = &g->values[x];
      if (xv->producer < 0) continue;
      ei__node *cv = &g->nodes[xv->producer];
      if (cv->dead || strcmp(cv->op_type, "Conv") || cv->domain[0] || cv->nout != 1 || ei__pass_single_consumer(g, x) != i) continue;
      if (cv->act.kind != EI_ACT_NONE) continue;
      const ei__value *w = ei__node_const_input(g, cv, 1);
      const ei__value *b = cv->nin > 2 && cv->in[2] >= 0 ? ei__node_const_input(g, cv, 2) : NULL;
      if (!w || w->dtype != EI_FLOAT || w->rank < 3 || (cv->nin > 2 && cv->in[2] >= 0 && !b)) continue;
      const ei__value *sc = ei__node_const_input(g, bn, 1), *bb = ei__node_const_input(g, bn, 2),
                      *mn = ei__node_const_input(g, bn, 3), *vr = ei__node_const_input(g, bn, 4);
      int64_t oc = w->dims[0];
      if (!sc || !bb || !mn || !vr) continue;
      const ei__value *ps[4] = {sc, bb, mn, vr};
      int ok = 1;
      for (int k = 0; k < 4; k++)
        if (ps[k]->dtype != EI_FLOAT || ps[k]->rank != 1 || ps[k]->dims[0] != oc) ok = 0;
      if (b && (b->dtype != EI_FLOAT || b->rank != 1 || b->dims[0] != oc)) ok = 0;
      if (!ok) continue;
      float eps = ei__attr_float(bn, "epsilon", 1e-5f);
      int64_t per = 1;
      for (int d = 1; d < w->rank; d++) per *= w->dims[d];
      /* New weight and bias values (the old ones may be shared with other nodes). */
      char name[300];
      snprintf(name, sizeof name, "%s:bn_folded_W", cv->name);
      int wi = ei__graph_add_value(g, name);
      snprintf(name, sizeof name, "%s:bn_folded_B", cv->name);
      int bi = ei__graph_add_value(g, name);
      if (wi < 0 || bi < 0) return ei__err(err, errlen, EI_E_NOMEM, "out of memory folding BatchNormalization");
      /* pointers may have moved */
      bn = &g->nodes[i];
      cv = &g->nodes[g->values[bn->in[0]].producer];
      w = &g->values[cv->in[1]];
      b = cv->nin > 2 && cv->in[2] >= 0 ? &g->values[cv->in[2]] : NULL;
      sc = &g->values[bn->in[1]]; bb = &g->values[bn->in[2]]; mn = &g->values[bn->in[3]]; vr = &g->values[bn->in[4]];
      float *nw = ei__value_alloc_const(&g->values[wi], EI_FLOAT, w->rank, w->dims);
      int64_t bd = oc;
      float *nb = ei__value_alloc_const(&g->values[bi], EI_FLOAT, 1, &bd);
      if (!nw || !nb) return ei__err(err, errlen, EI_E_NOMEM, "out of memory folding BatchNormalization");
      const float *W = w->data, *B = b ? b->data : NULL, *S = sc->data, *BB = bb->data, *M = mn->data, *V = vr->data;
      for (int64_t o = 0; o < oc; o++) {
        float s = S[o] / sqrtf(V[o] + eps);
        for (int64_t k = 0; k < per; k++) nw[o * per + k] = W[o * per + k] * s;
        nb[o] = ((B ? B[o] : 0.f) - M[o]) * s + BB[o];
      }
      if (cv->nin < 3) {
        int *nin = ei__realloc(cv->in, sizeof(int) * (size_t)cv->nin, sizeof(int) * 3);
        if (!nin) return ei__err(err, errlen, EI_E_NOMEM, "out of memory folding BatchNormalization");
        cv->in = nin;
        cv->nin = 3;
      }
      cv->in[1] = wi;
      cv->in[2] = bi;
      int y = bn->out[0];
      g->values[cv->out[0]].producer = -1;
      cv->out[0] = y;
      g->values[y].producer = (int)(cv - g->nodes);
      ei__pass_kill_node(g, bn);
    }
  next:;
  }
  return EI_OK;
}

/* Whether value v is known to hold float32 (for fusing into Add, which also runs on integers). */
static int value_is_float(const ei__graph *g, int v, int depth) {
  const ei__value *val = &g->values[v];
  if (val->is_const || val->is_input) return val->dtype == EI_FLOAT;
  if (val->producer < 0 || depth > 32) return 0;
  const ei__node *p = &g->nodes[val->producer];
  static const char *const float_ops[] = {"Conv", "ConvTranspose", "Gemm", "MatMul", "BatchNormalization",
                                          "GlobalAveragePool", "AveragePool", "Sigmoid", "HardSigmoid", "HardSwish",
                                          "Softmax", "LRN", "Resize", "Tanh", "Erf", "Exp", "Sqrt", "DequantizeLinear", NULL};
  if (p->domain[0]) return 0;
  for (int i = 0; float_ops[i]; i++)
    if (!strcmp(p->op_type, float_ops[i])) return 1;
  static const char *const same_ops[] = {"Relu", "LeakyRelu", "Clip", "MaxPool", "GlobalMaxPool", "Add", "Sub", "Mul",
                                         "Div", "Concat", "Reshape", "Flatten", "Transpose", "Pad", "Squeeze",
                                         "Unsqueeze", "Identity", "Dropout", "Neg", "Abs", NULL};
  for (int i = 0; same_ops[i]; i++)
    if (!strcmp(p->op_type, same_ops[i])) return p->nin > 0 && p->in[0] >= 0 && value_is_float(g, p->in[0], depth + 1);
  return 0;
}

static int scalar_const(const ei__graph *g, const ei__node *n, int k, float *out) {
  if (k >= n->nin || n->in[k] < 0) return 1; /* absent: keep default */
  const ei__value *v = ei__node_const_input(g, n, k);
  if (!v || v->dtype != EI_FLOAT || v->nbytes != 4) return 0;
  memcpy(out, v->data, 4);
  return 1;
}

/* fuse_mask: bit (1u << kind) set for each activation kind that may be fused. */
static void fuse_activations(ei__graph *g, unsigned fuse_mask) {
  for (int i = 0; i < g->nnodes; i++) {
    ei__node *a = &g->nodes[i];
    if (a->dead || a->domain[0] || a->nin < 1 || a->in[0] < 0 || a->nout != 1 || a->out[0] < 0) continue;
    ei__act act = {EI_ACT_NONE, 0, 0};
    if (!strcmp(a->op_type, "Relu")) act.kind = EI_ACT_RELU;
    else if (!strcmp(a->op_type, "Sigmoid")) act.kind = EI_ACT_SIGMOID;
    else if (!strcmp(a->op_type, "HardSwish")) act.kind = EI_ACT_HARDSWISH;
    else if (!strcmp(a->op_type, "LeakyRelu")) act = (ei__act){EI_ACT_LEAKYRELU, ei__attr_float(a, "alpha", 0.01f), 0};
    else if (!strcmp(a->op_type, "HardSigmoid"))
      act = (ei__act){EI_ACT_HARDSIGMOID, ei__attr_float(a, "alpha", 0.2f), ei__attr_float(a, "beta", 0.5f)};
    else if (!strcmp(a->op_type, "Clip")) {
      act = (ei__act){EI_ACT_CLIP, -INFINITY, INFINITY};
      if (a->opset < 11) {
        act.alpha = ei__attr_float(a, "min", -INFINITY);
        act.beta = ei__attr_float(a, "max", INFINITY);
      } else if (!scalar_const(g, a, 1, &act.alpha) || !scalar_const(g, a, 2, &act.beta)) {
        continue;
      }
    } else {
      continue;
    }
    if (!((fuse_mask >> act.kind) & 1u)) continue;
    int x = a->in[0];
    const ei__value *xv = &g->values[x];
    if (xv->producer < 0) continue;
    ei__node *p = &g->nodes[xv->producer];
    if (p->dead || !p->op || !(p->op->flags & EI_OPF_FUSE_ACT) || p->act.kind != EI_ACT_NONE || p->nout != 1) continue;
    if (ei__pass_single_consumer(g, x) != i) continue;
    if (!value_is_float(g, x, 0)) continue;
    p->act = act;
    int y = a->out[0];
    g->values[x].producer = -1;
    p->out[0] = y;
    g->values[y].producer = (int)(p - g->nodes);
    ei__pass_kill_node(g, a);
  }
}

/* Dead-node removal: kills nodes none of whose outputs is a graph output or read by a live node (backwards over
 * the topological order). Also what keeps nodes without outputs (omitted or none) from ever running. */
ei_status ei__pass_dead_code(ei__graph *g, char *err, size_t errlen) {
  uint8_t *used = ei__calloc((size_t)g->nvalues + 1, 1);
  if (!used) return ei__err(err, errlen, EI_E_NOMEM, "out of memory removing dead nodes");
  for (int o = 0; o < g->noutputs; o++) used[g->outputs[o]] = 1;
  for (int i = g->nnodes - 1; i >= 0; i--) {
    ei__node *n = &g->nodes[i];
    if (n->dead) continue;
    int live = 0;
    for (int k = 0; k < n->nout; k++) live |= n->out[k] >= 0 && used[n->out[k]];
    if (!live) {
      ei__pass_kill_node(g, n);
      continue;
    }
    for (int k = 0; k < n->nin; k++)
      if (n->in[k] >= 0) used[n->in[k]] = 1;
  }
  ei__free(used);
  return EI_OK;
}

static ei_status compact(ei__graph *g) {
  int j = 0;
  for (int i = 0; i < g->nnodes; i++) {
    if (g->nodes[i].dead) {
      ei__node *n = &g->nodes[i];
      ei__free(n->name); ei__free(n->op_type); ei__free(n->domain); ei__free(n->in); ei__free(n->out);
      for (int a = 0; a < n->nattrs; a++) {
        ei__free(n->attrs[a].name); ei__free(n->attrs[a].s); ei__free(n->attrs[a].floats); ei__free(n->attrs[a].ints);
      }
      ei__free(n->attrs);
      continue;
    }
    g->nodes[j++] = g->nodes[i];
  }
  g->nnodes = j;
  for (int v = 0; v < g->nvalues; v++) g->values[v].producer = -1;
  for (int i = 0; i < g->nnodes; i++)
    for (int k = 0; k < g->nodes[i].nout; k++)
      if (g->nodes[i].out[k] >= 0) g->values[g->nodes[i].out[k]].producer = i;
  return EI_OK;
}

/* Frees constant data that no live node reads at run time (packed inputs excepted) and no output exposes. */
static void release_constants(ei__graph *g) {
  uint8_t *needed = ei__calloc((size_t)g->nvalues + 1, 1);
  if (!needed) return;
  for (int i = 0; i < g->nnodes; i++) {
    const ei__node *n = &g->nodes[i];
    for (int k = 0; k < n->nin; k++)
      if (n->in[k] >= 0 && !(k < 32 && (n->packed_inputs >> k) & 1)) needed[n->in[k]] = 1;
    for (int a = 0; a < n->nattrs; a++)
      if (n->attrs[a].type == EI_ATTR_TENSOR) needed[n->attrs[a].tensor_value] = 1;
  }
  for (int o = 0; o < g->noutputs; o++) needed[g->outputs[o]] = 1;
  for (int v = 0; v < g->nvalues; v++) {
    ei__value *val = &g->values[v];
    if (val->is_const && !needed[v] && val->data) {
      ei__free(val->data);
      val->data = NULL;
      val->nbytes = 0;
      val->is_const = 2; /* constant whose bytes were packed away */
    }
  }
  ei__free(needed);
}

/* Marks graph inputs that feed inputs whose values decide output shapes, so plans are made with their values. */
static void mark_shape_inputs(ei__graph *g) {
  static const char *const ops[] = {"Reshape", "Expand", "Slice", "Pad", "Resize", "Upsample", "Squeeze", "Unsqueeze",
                                    "Split", "Tile", "ReduceMean", "ReduceMax", "ReduceSum", "ReduceProd", "TopK", NULL};
  for (int i = 0; i < g->nnodes; i++) {
    const ei__node *n = &g->nodes[i];
    if (n->domain[0]) continue;
    int first = !strcmp(n->op_type, "ConstantOfShape") ? 0 : 1, match = !first;
    for (int k = 0; !match && ops[k]; k++) match = !strcmp(n->op_type, ops[k]);
    if (!match) continue;
    for (int k = first; k < n->nin; k++)
      if (n->in[k] >= 0 && g->values[n->in[k]].is_input) g->values[n->in[k]].plan_by_value = 1;
  }
}

ei_status ei__graph_prepare(ei__graph *g, int optimize, char *err, size_t errlen) {
  ei__prepare_options o = {.optimize = optimize, .fuse_acts = ~0u};
  return ei__graph_prepare_ex(g, &o, err, errlen);
}

ei_status ei__graph_prepare_ex(ei__graph *g, const ei__prepare_options *o, char *err, size_t errlen) {
  int optimize = o->optimize;
  ei_status s = lookup_ops(g, err, errlen);
  if (s) return s;
  if ((s = ei__pass_dead_code(g, err, errlen))) return s;
  if (optimize) {
    remove_identity(g);
    if ((s = ei__pass_qdq(g, err, errlen))) return s; /* before folding, which would fold DequantizeLinear(W) */
    if ((s = ei__pass_dead_code(g, err, errlen))) return s;
    if ((s = fold_constants(g, o->max_fold_bytes && o->max_fold_bytes < FOLD_MAX_BYTES ? o->max_fold_bytes : FOLD_MAX_BYTES, err, errlen))) return s;
    if ((s = fold_batchnorm(g, err, errlen))) return s;
    fuse_activations(g, o->fuse_acts);
    if ((s = ei__pass_dead_code(g, err, errlen))) return s;
  }
  if ((s = ei__pass_dead_code(g, err, errlen))) return s;
  compact(g);
  mark_shape_inputs(g);
  /* Uses of each value by node inputs, tensor attributes and graph outputs: a constant whose last use is packed by
   * its node's init is freed right there, so the load's peak holds the raw and packed copies of one layer, not of
   * the whole model. */
  int *uses = o->keep_constants ? NULL : ei__calloc((size_t)g->nvalues + 1, sizeof *uses);
  if (uses) {
    for (int i = 0; i < g->nnodes; i++) {
      const ei__node *n = &g->nodes[i];
      for (int k = 0; k < n->nin; k++)
        if (n->in[k] >= 0) uses[n->in[k]]++;
      for (int a = 0; a < n->nattrs; a++)
        if (n->attrs[a].type == EI_ATTR_TENSOR) uses[n->attrs[a].tensor_value]++;
    }
    for (int v = 0; v < g->noutputs; v++) uses[g->outputs[v]]++;
  }
  for (int i = 0; i < g->nnodes; i++) {
    ei__node *n = &g->nodes[i];
    if (n->op->init && (s = n->op->init(g, n, err, errlen))) {
      ei__free(uses);
      return s;
    }
    for (int k = 0; uses && k < n->nin && k < 32; k++) {
      int v = n->in[k];
      if (v < 0 || !((n->packed_inputs >> k) & 1) || --uses[v]) continue;
      ei__value *val = &g->values[v];
      if (val->is_const && val->data) {
        ei__free(val->data);
        val->data = NULL;
        val->nbytes = 0;
        val->is_const = 2;
      }
    }
  }
  ei__free(uses);
  if (!o->keep_constants) release_constants(g);
  g->prepared = 1;
  return EI_OK;
}
