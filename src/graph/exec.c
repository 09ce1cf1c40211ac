/* Execution: evaluating one node on known inputs (constant folding), and running a planned graph. */
#include <stdio.h>

#include "graph/graph.h"

/* Checks an inferred output shape: rank, non-negative dims, size within max_bytes. */
static ei_status check_out(const ei__node *n, int k, const ei__tensor *t, size_t max_bytes, size_t *nbytes, char *err,
                           size_t errlen) {
  if (t->rank < 0 && t->dtype == EI_UNDEFINED) /* the op left it alone: more outputs than it has */
    return ei__err(err, errlen, EI_E_INVALID_MODEL, "node '%s' (%s): the operator has no output %d", n->name,
                   n->op_type, k);
  if (t->rank < 0 || t->rank > EI_MAX_DIMS || !ei_dtype_size(t->dtype))
    return ei__err(err, errlen, EI_E_INTERNAL, "node '%s' (%s): output %d has no valid type/rank after inference",
                   n->name, n->op_type, k);
  size_t c = ei_dtype_size(t->dtype);
  for (int d = 0; d < t->rank; d++) {
    if (t->dims[d] < 0)
      return ei__err(err, errlen, EI_E_SHAPE, "node '%s' (%s): output %d has negative dimension %lld", n->name,
                     n->op_type, k, (long long)t->dims[d]);
    if (!ei__mul_size(c, (size_t)t->dims[d], &c) || c > ((size_t)1 << 46))
      return ei__err(err, errlen, EI_E_LIMIT, "node '%s' (%s): output %d is too large", n->name, n->op_type, k);
  }
  if (c > max_bytes)
    return ei__err(err, errlen, EI_E_LIMIT, "node '%s' (%s): output %d needs %zu bytes, above the limit of %zu",
                   n->name, n->op_type, k, c, max_bytes);
  *nbytes = c;
  return EI_OK;
}

ei_status ei__infer_node(const ei__graph *g, const ei__node *n, const ei__tensor *ins, ei__tensor *outs,
                         size_t *workspace, int64_t *macs, char *err, size_t errlen) {
  ei__infer c = {g, n, n->nin, n->nout, ins, outs, 0, 0, err, errlen};
  for (int k = 0; k < n->nout; k++) {
    memset(&outs[k], 0, sizeof outs[k]);
    outs[k].rank = -1;
  }
  ei_status s = n->op->infer(&c);
  if (s) {
    if (err && errlen && !err[0]) ei__err(err, errlen, s, "node '%s' (%s): shape inference failed", n->name, n->op_type);
    return s;
  }
  if (workspace) *workspace = c.workspace;
  if (macs) *macs = c.macs;
  return EI_OK;
}

ei_status ei__eval_node(const ei__graph *g, ei__node *n, const ei__tensor *ins, ei__tensor *outs, size_t max_bytes,
                        char *err, size_t errlen) {
  ei_status s = EI_OK;
  void *ws = NULL;
  size_t wsz = 0;
  int initialized = 0;
  if (err && errlen) err[0] = 0;
  for (int k = 0; k < n->nout; k++) outs[k].data = NULL;
  if (n->op->init && !g->prepared) {
    if ((s = n->op->init((ei__graph *)g, n, err, errlen))) return s;
    initialized = 1;
  }
  if ((s = ei__infer_node(g, n, ins, outs, &wsz, NULL, err, errlen))) goto out;
  for (int k = 0; k < n->nout; k++) {
    /* An omitted output the op still inferred gets a buffer too (kernels write their outputs); freed below. */
    if (n->out[k] < 0 && (outs[k].rank < 0 || !ei_dtype_size(outs[k].dtype))) continue;
    size_t nb = 0;
    if ((s = check_out(n, k, &outs[k], max_bytes, &nb, err, errlen))) goto out;
    outs[k].data = ei__malloc(nb ? nb : 1);
    if (!outs[k].data) { s = ei__err(err, errlen, EI_E_NOMEM, "out of memory folding node '%s'", n->name); goto out; }
  }
  if (wsz) {
    if (wsz > max_bytes) { s = ei__err(err, errlen, EI_E_LIMIT, "node '%s': workspace too large to fold", n->name); goto out; }
    ws = ei__malloc(wsz);
    if (!ws) { s = ei__err(err, errlen, EI_E_NOMEM, "out of memory folding node '%s'", n->name); goto out; }
  }
  ei__run r = {n, n->nin, n->nout, ins, outs, ws, NULL, err, errlen};
  s = n->op->run(&r);
out:
  ei__free(ws);
  for (int k = 0; k < n->nout; k++)
    if (n->out[k] < 0) {
      ei__free(outs[k].data);
      outs[k].data = NULL;
    }
  if (initialized) {
    if (n->op->fini) n->op->fini(n);
    else ei__free(n->params);
    n->params = NULL;
    n->packed_inputs = 0;
    n->params_bytes = 0;
  }
  if (s)
    for (int k = 0; k < n->nout; k++) {
      ei__free(outs[k].data);
      outs[k].data = NULL;
    }
  return s;
}
