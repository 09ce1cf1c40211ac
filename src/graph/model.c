/* The public model and session API: load (mmap -> import -> passes -> pack -> unmap), plan cache, run. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "graph/graph.h"
#include "onnx/onnx.h"

#define PLAN_CACHE 8

struct ei_model {
  ei__graph *g;
  ei_model_options opt;
  size_t weight_bytes;
  int64_t params;
};

struct ei_session {
  ei_model *m;
  ei_threadpool *pool;
  ei__plan *plans[PLAN_CACHE];
  int nplans;
  ei__plan *cur;
  void *arena;
  size_t arena_cap;
  int profiling;
  uint64_t *node_ns;
};

void ei_model_options_init(ei_model_options *o) {
  o->max_arena_bytes = (size_t)4 << 30;
  o->optimize = 1;
}

static void model_stats(ei_model *m) {
  ei__graph *g = m->g;
  m->weight_bytes = 0;
  m->params = 0;
  for (int v = 0; v < g->nvalues; v++) {
    const ei__value *val = &g->values[v];
    if (!val->is_const) continue;
    m->weight_bytes += val->nbytes;
    int64_t n = 1;
    for (int d = 0; d < val->rank; d++) n *= val->dims[d];
    m->params += n;
  }
  for (int i = 0; i < g->nnodes; i++) m->weight_bytes += g->nodes[i].params_bytes;
}

/* drop_pages: data is our own read-only file mapping, whose pages can leave memory once import has copied what it
 * needs (they would be re-read from the file if touched again), so the load's peak does not hold the file too. */
static ei_status load_memory(const void *data, size_t size, const char *base_dir, const ei_model_options *opt,
                             int drop_pages, ei_model **out, char *err, size_t errlen) {
  if (err && errlen) err[0] = 0;
  if (!out || (!data && size)) return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "ei_model_load_memory: NULL argument");
  *out = NULL;
  ei_model *m = ei__calloc(1, sizeof *m);
  if (!m) return ei__err(err, errlen, EI_E_NOMEM, "out of memory");
  if (opt)
    m->opt = *opt;
  else
    ei_model_options_init(&m->opt);
  ei_status s = ei__onnx_import_ex(data, size, base_dir, drop_pages, &m->g, err, errlen);
  if (s) goto fail;
  if (drop_pages && size) madvise((void *)data, size, MADV_DONTNEED);
  /* Constant folding may not make a tensor larger than a plan may hold. */
  ei__prepare_options po = {.optimize = m->opt.optimize, .fuse_acts = ~0u, .max_fold_bytes = m->opt.max_arena_bytes};
  if ((s = ei__graph_prepare_ex(m->g, &po, err, errlen))) goto fail;
  model_stats(m);
  *out = m;
  return EI_OK;
fail:
  if (s == EI_E_NOMEM && err && errlen && !err[0]) ei__err(err, errlen, s, "out of memory loading the model");
  ei_model_destroy(m);
  return s;
}

ei_status ei_model_load_memory(const void *data, size_t size, const char *base_dir, const ei_model_options *opt,
                               ei_model **out, char *err, size_t errlen) {
  return load_memory(data, size, base_dir, opt, 0, out, err, errlen);
}

ei_status ei_model_load(const char *path, const ei_model_options *opt, ei_model **out, char *err, size_t errlen) {
  if (!path || !out) return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "ei_model_load: NULL argument");
  *out = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ei__err(err, errlen, EI_E_IO, "cannot open '%s': %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
    close(fd);
    return ei__err(err, errlen, EI_E_IO, "'%s' is not a regular file", path);
  }
  size_t size = (size_t)st.st_size;
  void *map = NULL;
  if (size) {
    map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      close(fd);
      return ei__err(err, errlen, EI_E_IO, "cannot map '%s': %s", path, strerror(errno));
    }
  }
  close(fd);
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", path);
  ei_status s = load_memory(map, size, dirname(dir), opt, 1, out, err, errlen);
  if (map) munmap(map, size); /* the model holds its own packed copy of everything it needs */
  if (s && err && errlen) {
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", err);
    snprintf(err, errlen, "%s: %s", path, tmp);
  }
  return s;
}

void ei_model_destroy(ei_model *m) {
  if (!m) return;
  ei__graph_free(m->g);
  ei__free(m);
}

int ei_model_input_count(const ei_model *m) { return m->g->ninputs; }
int ei_model_output_count(const ei_model *m) { return m->g->noutputs; }

static void fill_info(const ei__value *v, ei_value_info *info) {
  memset(info, 0, sizeof *info);
  info->name = v->name;
  info->dtype = v->dtype;
  info->rank = v->rank;
  for (int d = 0; d < v->rank && d < EI_MAX_DIMS; d++) {
    info->dims[d] = v->dims[d];
    info->dim_names[d] = v->dim_names[d];
  }
}

ei_status ei_model_input_info(const ei_model *m, int i, ei_value_info *info) {
  if (i < 0 || i >= m->g->ninputs) return EI_E_INVALID_ARGUMENT;
  fill_info(&m->g->values[m->g->inputs[i]], info);
  return EI_OK;
}

ei_status ei_model_output_info(const ei_model *m, int i, ei_value_info *info) {
  if (i < 0 || i >= m->g->noutputs) return EI_E_INVALID_ARGUMENT;
  fill_info(&m->g->values[m->g->outputs[i]], info);
  return EI_OK;
}

int ei_model_node_count(const ei_model *m) { return m->g->nnodes; }

ei_status ei_model_node_info(const ei_model *m, int i, ei_node_info *info) {
  if (i < 0 || i >= m->g->nnodes) return EI_E_INVALID_ARGUMENT;
  const ei__node *n = &m->g->nodes[i];
  memset(info, 0, sizeof *info);
  info->name = n->name;
  info->op_type = n->op_type;
  info->fused = ei__act_name(n->act.kind);
  info->kernel = n->op->kernel_name ? n->op->kernel_name(n) : NULL;
  int int8 = 0;
  for (int k = 0; k < n->nout; k++) {
    int v = n->out[k];
    if (v >= 0 && (m->g->values[v].dtype == EI_INT8 || m->g->values[v].dtype == EI_UINT8)) int8 = 1;
  }
  info->is_int8 = int8;
  return EI_OK;
}

void ei_model_get_stats(const ei_model *m, ei_model_stats *st) {
  memset(st, 0, sizeof *st);
  st->nodes_imported = m->g->nodes_imported;
  st->nodes = m->g->nnodes;
  st->params = m->params;
  st->weight_bytes = m->weight_bytes;
  st->ir_version = (int)m->g->ir_version;
  st->opset = m->g->opset_default;
  st->producer = m->g->producer;
}

/* ---- sessions ---- */

ei_status ei_session_create(ei_model *m, ei_threadpool *pool, ei_session **out, char *err, size_t errlen) {
  if (!m || !out) return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "ei_session_create: NULL argument");
  ei_session *s = ei__calloc(1, sizeof *s);
  if (!s) return ei__err(err, errlen, EI_E_NOMEM, "out of memory");
  s->node_ns = ei__calloc((size_t)m->g->nnodes + 1, sizeof(uint64_t));
  if (!s->node_ns) {
    ei__free(s);
    return ei__err(err, errlen, EI_E_NOMEM, "out of memory");
  }
  s->m = m;
  s->pool = pool;
  *out = s;
  return EI_OK;
}

void ei_session_destroy(ei_session *s) {
  if (!s) return;
  for (int i = 0; i < s->nplans; i++) ei__plan_free(s->plans[i], s->m->g);
  ei__free(s->arena);
  ei__free(s->node_ns);
  ei__free(s);
}

ei_status ei_session_plan(ei_session *s, int ninputs, const ei_tensor *inputs, char *err, size_t errlen) {
  if (!s || (ninputs && !inputs)) return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "ei_session_plan: NULL argument");
  if (s->cur && ei__plan_matches(s->cur, ninputs, inputs)) return EI_OK;
  for (int i = 0; i < s->nplans; i++)
    if (ei__plan_matches(s->plans[i], ninputs, inputs)) {
      s->cur = s->plans[i];
      return EI_OK;
    }
  ei__plan *p;
  ei_status st = ei__plan_make(s->m->g, ninputs, inputs, s->m->opt.max_arena_bytes, &p, err, errlen);
  if (st) return st;
  if (p->arena_size > s->arena_cap) {
    void *a = ei__malloc(p->arena_size);
    if (!a) {
      size_t bytes = p->arena_size;
      ei__plan_free(p, s->m->g);
      return ei__err(err, errlen, EI_E_NOMEM, "cannot allocate the %zu-byte arena", bytes);
    }
    ei__free(s->arena);
    s->arena = a;
    s->arena_cap = p->arena_size;
  }
  if (s->nplans == PLAN_CACHE) {
    ei__plan_free(s->plans[0], s->m->g);
    memmove(s->plans, s->plans + 1, sizeof(s->plans[0]) * (PLAN_CACHE - 1));
    s->nplans--;
  }
  s->plans[s->nplans++] = p;
  s->cur = p;
  return EI_OK;
}

ei_status ei_session_plan_stats(const ei_session *s, ei_plan_stats *st) {
  memset(st, 0, sizeof *st);
  if (!s->cur) return EI_E_INVALID_ARGUMENT;
  st->arena_bytes = s->cur->arena_size;
  st->naive_bytes = s->cur->naive_bytes;
  st->macs = s->cur->macs;
  st->tensors = s->cur->ntensors;
  return EI_OK;
}

static int64_t value_bytes(const ei__tensor *t) {
  if (t->rank < 0 || !ei_dtype_size(t->dtype)) return 0;
  int64_t n = (int64_t)ei_dtype_size(t->dtype);
  for (int d = 0; d < t->rank; d++) n *= t->dims[d] > 0 ? t->dims[d] : 0;
  return n;
}

int64_t ei_session_planned_traffic_bytes(const ei_session *s) {
  if (!s || !s->cur) return -1;
  const ei__graph *g = s->m->g;
  const ei__plan *p = s->cur;
  int64_t total = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const ei__node *n = &g->nodes[i];
    if (p->skip[i] || (n->op->flags & EI_OPF_ALIAS)) continue; /* folded at plan time, or a view: no bytes move */
    const ei__tensor *io = &p->node_io[p->node_io_start[i]];
    for (int k = 0; k < n->nin + n->nout; k++)
      if (k >= n->nin || k >= 32 || !((n->packed_inputs >> k) & 1)) total += value_bytes(&io[k]);
    total += (int64_t)n->params_bytes; /* packed weights: what the kernel reads (Winograd: 16/9 or 4x the raw) */
  }
  return total;
}

ei_status ei_session_run(ei_session *s, int ninputs, const ei_tensor *inputs, int noutputs, ei_tensor *outputs,
                         char *err, size_t errlen) {
  if (err && errlen) err[0] = 0;
  if (!s || (ninputs && !inputs) || (noutputs && !outputs))
    return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "ei_session_run: NULL argument");
  for (int i = 0; i < ninputs; i++)
    if (!inputs[i].data && ei_tensor_numel(&inputs[i]) > 0)
      return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "input %d has no data", i);
  ei_status st = ei_session_plan(s, ninputs, inputs, err, errlen);
  if (st) return st;
  if (noutputs > s->m->g->noutputs) noutputs = s->m->g->noutputs;
  return ei__plan_run(s->m->g, s->cur, s->arena, s->pool, inputs, outputs, noutputs, s->profiling ? s->node_ns : NULL,
                      err, errlen);
}

ei_status ei_session_node_info(const ei_session *s, int i, ei_node_info *info) {
  ei_status st = ei_model_node_info(s->m, i, info);
  if (st || !s->cur) return st;
  /* A node runs on integers when its first input or its first output is an 8-bit integer tensor. */
  const ei__node *n = &s->m->g->nodes[i];
  int int8 = 0;
  int vs[2] = {n->nin ? n->in[0] : -1, n->nout ? n->out[0] : -1};
  for (int k = 0; k < 2; k++)
    if (vs[k] >= 0) {
      ei_dtype t = s->cur->vals[vs[k]].dtype;
      int8 |= t == EI_INT8 || t == EI_UINT8;
    }
  info->is_int8 = int8;
  return EI_OK;
}

void ei_session_set_profiling(ei_session *s, int on) { s->profiling = on; }

ei_status ei_session_node_time_ns(const ei_session *s, int node, uint64_t *ns, int64_t *macs) {
  if (!s->cur || node < 0 || node >= s->m->g->nnodes) return EI_E_INVALID_ARGUMENT;
  *ns = s->node_ns[node];
  *macs = s->cur->node_macs[node];
  return EI_OK;
}
