/* Planning for concrete input shapes: shape inference over the graph, plan-time folding of values that depend
 * only on shapes (Shape -> Gather -> Concat -> Reshape chains), views for alias ops, and the arena: every
 * intermediate tensor and every node's scratch gets an offset in one block, by lifetime, greedy by size
 * (TFLite's arena planner), 64-byte aligned. */
#include <stdio.h>
#include <stdlib.h>

#include "graph/graph.h"

#define KNOWN_MAX_BYTES ((size_t)1 << 20)
#define PLANNED_INPUT_MAX 64

typedef struct item {
  size_t size;
  int first, last; /* node interval */
  size_t *offset;  /* where to store the result */
} item;

static int cmp_item(const void *a, const void *b) {
  const item *x = a, *y = b;
  if (x->size != y->size) return x->size < y->size ? 1 : -1;
  return x->first - y->first;
}

typedef struct placed {
  size_t off, end;
  int first, last;
} placed;

static int cmp_placed(const void *a, const void *b) {
  const placed *x = a, *y = b;
  return x->off < y->off ? -1 : x->off > y->off;
}

/* Greedy-by-size placement; returns the arena size. */
static int place(item *items, int n, size_t *arena, placed *tmp) {
  qsort(items, (size_t)n, sizeof(item), cmp_item);
  size_t total = 0;
  int np = 0;
  placed *done = tmp + n; /* second half of tmp: everything placed so far */
  for (int i = 0; i < n; i++) {
    int no = 0;
    for (int j = 0; j < np; j++)
      if (!(done[j].last < items[i].first || done[j].first > items[i].last)) tmp[no++] = done[j];
    qsort(tmp, (size_t)no, sizeof(placed), cmp_placed);
    size_t off = 0, sz = ei__align_up(items[i].size, EI_ALIGN);
    for (int j = 0; j < no; j++) {
      if (tmp[j].off >= off + sz) break;
      if (tmp[j].end > off) off = tmp[j].end;
    }
    *items[i].offset = off;
    done[np++] = (placed){off, off + sz, items[i].first, items[i].last};
    if (off + sz > total) total = off + sz;
  }
  *arena = total;
  return 0;
}

void ei__plan_free(ei__plan *p, const ei__graph *g) {
  if (!p) return;
  if (p->known)
    for (int v = 0; v < g->nvalues; v++) ei__free(p->known[v]);
  ei__free(p->known);
  ei__free(p->input_shapes);
  ei__free(p->vals);
  ei__free(p->kind);
  ei__free(p->alias_root);
  ei__free(p->offset);
  ei__free(p->skip);
  ei__free(p->ws_offset);
  ei__free(p->ws_size);
  ei__free(p->node_macs);
  ei__free(p->node_io);
  ei__free(p->node_io_start);
  ei__free(p->ptr);
  ei__free(p);
}

int ei__plan_matches(const ei__plan *p, int ninputs, const ei_tensor *inputs) {
  if (p->ninputs != ninputs) return 0;
  for (int i = 0; i < ninputs; i++) {
    const ei__tensor *k = &p->input_shapes[i];
    if (k->dtype != inputs[i].dtype || k->rank != inputs[i].rank) return 0;
    for (int d = 0; d < k->rank; d++)
      if (k->dims[d] != inputs[i].dims[d]) return 0;
    if (k->data) { /* a small integer input whose values were planned in (shape-like data) */
      size_t nb = (size_t)ei__numel(k) * ei_dtype_size(k->dtype);
      if (!inputs[i].data || memcmp(k->data, inputs[i].data, nb)) return 0;
    }
  }
  return 1;
}

static ei_status check_inputs(const ei__graph *g, int ninputs, const ei_tensor *inputs, char *err, size_t errlen) {
  if (ninputs != g->ninputs)
    return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "the model has %d inputs, %d were given", g->ninputs, ninputs);
  for (int i = 0; i < ninputs; i++) {
    const ei__value *v = &g->values[g->inputs[i]];
    const ei_tensor *t = &inputs[i];
    if (t->dtype != v->dtype)
      return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "input '%s': expected %s, got %s", v->name,
                     ei_dtype_name(v->dtype), ei_dtype_name(t->dtype));
    if (t->rank < 0 || t->rank > EI_MAX_DIMS)
      return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "input '%s': rank %d out of range", v->name, t->rank);
    if (v->rank >= 0 && t->rank != v->rank)
      return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "input '%s': expected rank %d, got %d", v->name, v->rank,
                     t->rank);
    size_t n = ei_dtype_size(t->dtype);
    for (int d = 0; d < t->rank; d++) {
      if (t->dims[d] < 0 || !ei__mul_size(n, (size_t)t->dims[d], &n) || n > ((size_t)1 << 46))
        return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "input '%s': dimension %d (%lld) is invalid", v->name, d,
                       (long long)t->dims[d]);
      if (v->rank >= 0 && v->dims[d] >= 0 && v->dims[d] != t->dims[d])
        return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "input '%s': dimension %d must be %lld, got %lld", v->name,
                       d, (long long)v->dims[d], (long long)t->dims[d]);
    }
  }
  return EI_OK;
}

static size_t tensor_bytes(const ei__tensor *t) {
  size_t n = ei_dtype_size(t->dtype);
  for (int d = 0; d < t->rank; d++) n *= (size_t)t->dims[d];
  return n;
}

/* Omitted outputs (out[k] < 0) that the op inferred anyway still get scratch at the start of the node's
 * workspace, since kernels write every output they produce. Sets their views' data when base is non-NULL and
 * returns the bytes they take. */
static size_t omitted_outputs(const ei__node *n, ei__tensor *outs, char *base) {
  size_t off = 0;
  for (int k = 0; k < n->nout; k++) {
    if (n->out[k] >= 0 || outs[k].rank < 0 || !ei_dtype_size(outs[k].dtype)) continue;
    if (base) outs[k].data = base + off;
    off += ei__align_up(tensor_bytes(&outs[k]), EI_ALIGN);
  }
  return off;
}

ei_status ei__plan_make(const ei__graph *g, int ninputs, const ei_tensor *inputs, size_t max_arena, ei__plan **out,
                        char *err, size_t errlen) {
  return ei__plan_make_ex(g, ninputs, inputs, max_arena, 0, out, err, errlen);
}

ei_status ei__plan_make_ex(const ei__graph *g, int ninputs, const ei_tensor *inputs, size_t max_arena, unsigned flags,
                           ei__plan **out, char *err, size_t errlen) {
  ei_status s;
  *out = NULL;
  if (err && errlen) err[0] = 0;
  if ((s = check_inputs(g, ninputs, inputs, err, errlen))) return s;
  int nv = g->nvalues, nn = g->nnodes;
  ei__plan *p = ei__calloc(1, sizeof *p);
  item *items = NULL;
  placed *tmp = NULL;
  int *first = NULL, *last = NULL;
  if (!p) return ei__err(err, errlen, EI_E_NOMEM, "out of memory planning");
  p->ninputs = ninputs;
  size_t nio = 0;
  for (int i = 0; i < nn; i++) nio += (size_t)(g->nodes[i].nin + g->nodes[i].nout);
  p->input_shapes = ei__calloc((size_t)ninputs + 1, sizeof(ei__tensor));
  p->vals = ei__calloc((size_t)nv + 1, sizeof(ei__tensor));
  p->kind = ei__calloc((size_t)nv + 1, 1);
  p->alias_root = ei__calloc((size_t)nv + 1, sizeof(int));
  p->offset = ei__calloc((size_t)nv + 1, sizeof(size_t));
  p->known = ei__calloc((size_t)nv + 1, sizeof(void *));
  p->ptr = ei__calloc((size_t)nv + 1, sizeof(void *));
  p->skip = ei__calloc((size_t)nn + 1, 1);
  p->ws_offset = ei__calloc((size_t)nn + 1, sizeof(size_t));
  p->ws_size = ei__calloc((size_t)nn + 1, sizeof(size_t));
  p->node_macs = ei__calloc((size_t)nn + 1, sizeof(int64_t));
  p->node_io = ei__calloc(nio + 1, sizeof(ei__tensor));
  p->node_io_start = ei__calloc((size_t)nn + 1, sizeof(int));
  first = ei__calloc((size_t)nv + 1, sizeof(int));
  last = ei__calloc((size_t)nv + 1, sizeof(int));
  if (!p->input_shapes || !p->vals || !p->kind || !p->alias_root || !p->offset || !p->known || !p->ptr || !p->skip ||
      !p->ws_offset || !p->ws_size || !p->node_macs || !p->node_io || !p->node_io_start || !first || !last) {
    s = ei__err(err, errlen, EI_E_NOMEM, "out of memory planning");
    goto fail;
  }

  /* Inputs and constants. */
  for (int v = 0; v < nv; v++) {
    const ei__value *val = &g->values[v];
    p->vals[v].rank = -1;
    p->alias_root[v] = v;
    first[v] = -1;
    last[v] = -1;
    if (val->is_const) {
      p->kind[v] = EI_VK_CONST;
      p->vals[v].dtype = val->dtype;
      p->vals[v].rank = val->rank;
      memcpy(p->vals[v].dims, val->dims, sizeof val->dims);
      p->vals[v].data = val->data;
    }
  }
  for (int i = 0; i < ninputs; i++) {
    int v = g->inputs[i];
    p->kind[v] = EI_VK_INPUT;
    p->vals[v].dtype = inputs[i].dtype;
    p->vals[v].rank = inputs[i].rank;
    memcpy(p->vals[v].dims, inputs[i].dims, sizeof(int64_t) * (size_t)inputs[i].rank);
    p->vals[v].data = NULL;
    /* Small inputs that feed shape-like inputs (shapes, axes, pads, scales given as graph inputs) are planned in
     * by value: the ops that need them at plan time read them, and the plan is cached under those values. */
    int64_t cnt = ei_tensor_numel(&inputs[i]);
    if (g->values[v].plan_by_value && cnt <= PLANNED_INPUT_MAX && inputs[i].data) {
      size_t nb = (size_t)cnt * ei_dtype_size(inputs[i].dtype);
      p->known[v] = ei__malloc(nb ? nb : 1);
      if (!p->known[v]) { s = ei__err(err, errlen, EI_E_NOMEM, "out of memory planning"); goto fail; }
      memcpy(p->known[v], inputs[i].data, nb);
      p->kind[v] = EI_VK_KNOWN;
      p->vals[v].data = p->known[v];
    }
    p->input_shapes[i] = p->vals[v];
  }

  /* Shape inference, plan-time folding, aliasing. */
  size_t io = 0;
  for (int i = 0; i < nn; i++) {
    ei__node *n = &g->nodes[i];
    ei__tensor *ins = &p->node_io[io], *outs = &p->node_io[io + (size_t)n->nin];
    p->node_io_start[i] = (int)io;
    io += (size_t)(n->nin + n->nout);
    int all_known = 1;
    for (int k = 0; k < n->nin; k++) {
      int v = n->in[k];
      if (v < 0) {
        ins[k].dtype = EI_UNDEFINED;
        ins[k].rank = -1;
        continue;
      }
      if (p->vals[v].rank < 0 && p->kind[v] != EI_VK_CONST) {
        s = ei__err(err, errlen, EI_E_INTERNAL, "node '%s': input '%s' has no shape", n->name, g->values[v].name);
        goto fail;
      }
      ins[k] = p->vals[v];
      if (!ins[k].data) all_known = 0;
    }
    if (n->op->flags & EI_OPF_SHAPE_ONLY) all_known = 1;
    if (n->op->flags & EI_OPF_NO_FOLD) all_known = 0;
    size_t ws = 0;
    if ((s = ei__infer_node(g, n, ins, outs, &ws, &p->node_macs[i], err, errlen))) goto fail;
    size_t out_bytes = 0;
    for (int k = 0; k < n->nout; k++) {
      const ei__tensor *t = &outs[k];
      if (n->out[k] < 0 && (t->rank < 0 || !ei_dtype_size(t->dtype))) continue; /* omitted, not inferred */
      if (t->rank < 0 && t->dtype == EI_UNDEFINED) { /* the op left it alone: more outputs than it has */
        s = ei__err(err, errlen, EI_E_INVALID_MODEL, "node '%s' (%s): the operator has no output %d ('%s')", n->name,
                    n->op_type, k, g->values[n->out[k]].name);
        goto fail;
      }
      if (t->rank < 0 || t->rank > EI_MAX_DIMS || !ei_dtype_size(t->dtype)) {
        s = ei__err(err, errlen, EI_E_INTERNAL, "node '%s' (%s): output %d has no valid type/rank", n->name,
                    n->op_type, k);
        goto fail;
      }
      size_t b = ei_dtype_size(t->dtype);
      for (int d = 0; d < t->rank; d++)
        if (t->dims[d] < 0 || !ei__mul_size(b, (size_t)t->dims[d], &b) || b > max_arena) {
          s = ei__err(err, errlen, t->dims[d] < 0 ? EI_E_SHAPE : EI_E_LIMIT,
                      "node '%s' (%s): output '%s' shape is invalid or exceeds the arena limit of %zu bytes", n->name,
                      n->op_type, n->out[k] >= 0 ? g->values[n->out[k]].name : "(omitted)", max_arena);
          goto fail;
        }
      out_bytes += b;
    }
    p->macs += p->node_macs[i];
    size_t omitted = omitted_outputs(n, outs, NULL);
    if (omitted) ws = omitted + ei__align_up(ws, EI_ALIGN);
    p->ws_size[i] = ws;
    if (all_known && out_bytes <= KNOWN_MAX_BYTES) {
      ei__tensor fo[8];
      if (n->nout <= 8) {
        if ((s = ei__eval_node(g, n, ins, fo, KNOWN_MAX_BYTES, err, errlen))) goto fail;
        p->skip[i] = 1;
        for (int k = 0; k < n->nout; k++) {
          int v = n->out[k];
          if (v < 0) continue;
          p->kind[v] = EI_VK_KNOWN;
          p->known[v] = fo[k].data;
          p->vals[v] = fo[k];
          outs[k] = fo[k];
        }
        continue;
      }
    }
    for (int k = 0; k < n->nout; k++) {
      int v = n->out[k];
      if (v < 0) continue;
      p->vals[v] = outs[k];
      p->vals[v].data = NULL;
      if (k == 0 && (n->op->flags & EI_OPF_ALIAS) && n->nin > 0 && n->in[0] >= 0) {
        p->kind[v] = EI_VK_ALIAS;
        p->alias_root[v] = p->alias_root[n->in[0]];
      } else {
        p->kind[v] = EI_VK_ARENA;
      }
    }
  }

  /* Lifetimes of arena tensors (an alias extends its root). */
  for (int i = 0; i < nn; i++) {
    if (p->skip[i]) continue;
    const ei__node *n = &g->nodes[i];
    for (int k = 0; k < n->nout; k++) {
      int v = n->out[k];
      if (v < 0) continue;
      int r = p->alias_root[v];
      if (first[r] < 0) first[r] = i;
      if (last[r] < i) last[r] = i;
    }
    for (int k = 0; k < n->nin; k++) {
      int v = n->in[k];
      if (v < 0) continue;
      int r = p->alias_root[v];
      if (last[r] < i) last[r] = i;
    }
  }
  for (int o = 0; o < g->noutputs; o++) last[p->alias_root[g->outputs[o]]] = nn;

  int ni = 0;
  items = ei__calloc((size_t)(nv + nn) + 1, sizeof(item));
  tmp = ei__calloc(2 * (size_t)(nv + nn) + 2, sizeof(placed));
  if (!items || !tmp) { s = ei__err(err, errlen, EI_E_NOMEM, "out of memory planning"); goto fail; }
  for (int v = 0; v < nv; v++) {
    if (p->kind[v] != EI_VK_ARENA) continue;
    size_t b = tensor_bytes(&p->vals[v]);
    p->naive_bytes += ei__align_up(b, EI_ALIGN);
    p->ntensors++;
    if (first[v] < 0) first[v] = 0;
    if (flags & EI_PLAN_KEEP_ALL) first[v] = 0, last[v] = nn; /* every tensor lives through the whole run */
    items[ni++] = (item){b ? b : 1, first[v], last[v], &p->offset[v]};
  }
  for (int i = 0; i < nn; i++)
    if (p->ws_size[i] && !p->skip[i]) items[ni++] = (item){p->ws_size[i], i, i, &p->ws_offset[i]};
  place(items, ni, &p->arena_size, tmp);
  if (p->arena_size > max_arena) {
    s = ei__err(err, errlen, EI_E_LIMIT, "the planned arena needs %zu bytes, above the limit of %zu (--max-arena)",
                p->arena_size, max_arena);
    goto fail;
  }
  ei__free(items);
  ei__free(tmp);
  ei__free(first);
  ei__free(last);
  *out = p;
  return EI_OK;
fail:
  ei__free(items);
  ei__free(tmp);
  ei__free(first);
  ei__free(last);
  ei__plan_free(p, g);
  return s;
}

ei_status ei__plan_run(const ei__graph *g, const ei__plan *cp, void *arena, ei_threadpool *pool,
                       const ei_tensor *inputs, ei_tensor *outputs, int noutputs, uint64_t *node_ns, char *err,
                       size_t errlen) {
  ei__plan *p = (ei__plan *)cp; /* the views are scratch owned by the session that owns the plan */
  int nv = g->nvalues;
  for (int i = 0; i < p->ninputs; i++)
    if (p->kind[g->inputs[i]] == EI_VK_INPUT) p->ptr[g->inputs[i]] = inputs[i].data;
  for (int v = 0; v < nv; v++) {
    switch (p->kind[v]) {
      case EI_VK_CONST: p->ptr[v] = g->values[v].data; break;
      case EI_VK_KNOWN: p->ptr[v] = p->known[v]; break;
      case EI_VK_ARENA: p->ptr[v] = (char *)arena + p->offset[v]; break;
      default: break;
    }
  }
  for (int v = 0; v < nv; v++)
    if (p->kind[v] == EI_VK_ALIAS) p->ptr[v] = p->ptr[p->alias_root[v]];
  for (int i = 0; i < g->nnodes; i++) {
    if (p->skip[i]) continue;
    const ei__node *n = &g->nodes[i];
    ei__tensor *ins = &p->node_io[p->node_io_start[i]], *outs = ins + n->nin;
    for (int k = 0; k < n->nin; k++) ins[k].data = n->in[k] >= 0 ? p->ptr[n->in[k]] : NULL;
    for (int k = 0; k < n->nout; k++) outs[k].data = n->out[k] >= 0 ? p->ptr[n->out[k]] : NULL;
    char *ws = p->ws_size[i] ? (char *)arena + p->ws_offset[i] : NULL;
    size_t omitted = ws ? omitted_outputs(n, outs, ws) : 0;
    ei__run r = {n, n->nin, n->nout, ins, outs, p->ws_size[i] > omitted ? ws + omitted : NULL, pool, err, errlen};
    uint64_t t0 = node_ns ? ei__now_ns() : 0;
    ei_status s = n->op->run(&r);
    if (node_ns) node_ns[i] = ei__now_ns() - t0;
    if (s) {
      if (err && errlen && !err[0]) ei__err(err, errlen, s, "node '%s' (%s) failed", n->name, n->op_type);
      return s;
    }
  }
  for (int o = 0; o < noutputs && o < g->noutputs; o++) {
    int v = g->outputs[o];
    const ei__tensor *t = &p->vals[v];
    outputs[o].dtype = t->dtype;
    outputs[o].rank = t->rank;
    memcpy(outputs[o].dims, t->dims, sizeof(int64_t) * (size_t)t->rank);
    outputs[o].data = p->ptr[v];
  }
  return EI_OK;
}
