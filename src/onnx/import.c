/* ONNX ModelProto -> graph IR. Walks the message with the zero-copy wire reader; validates structure (types,
 * names, references, cycles) and turns initializers and tensor attributes into constant values. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "onnx/onnx.h"

#define EI_MIN_OPSET 7
#define EI_MAX_OPSET 23
#define EI_MAX_IR_VERSION 11

typedef struct importer {
  ei__graph *g;
  const char *base_dir;
  char *err;
  size_t errlen;
  char ***node_inputs; /* per node: input names until resolved */
  int *node_nin;
  int node_cap;
  int drop_pages; /* the data is our own file mapping: release each tensor's pages once copied */
} importer;

static char *dup_view(const ei__pb_field *f) { return ei__strndup((const char *)f->data, f->len); }


/* ---- types ---- */

/* Fills dtype/rank/dims from a TypeProto (tensor types only). */
static ei_status parse_type(importer *im, const uint8_t *data, size_t len, ei__value *v) {
  ei__pb r = ei__pb_init(data, len), rt, rs, rd;
  ei__pb_field f, g, h, k;
  while (ei__pb_next(&r, &f)) {
    if (f.num != 1) {
      if (f.num == 4 || f.num == 5 || f.num == 9 || f.num == 8)
        return ei__err(im->err, im->errlen, EI_E_UNSUPPORTED, "value '%s': only tensor types are supported", v->name);
      continue;
    }
    if (f.wire != EI_PB_LEN) return ei__err(im->err, im->errlen, EI_E_MALFORMED, "value '%s': bad type", v->name);
    rt = ei__pb_init(f.data, f.len);
    while (ei__pb_next(&rt, &g)) {
      if (g.num == 1 && g.wire == EI_PB_VARINT) {
        v->dtype = (ei_dtype)g.varint;
        if (g.varint > 16) return ei__err(im->err, im->errlen, EI_E_UNSUPPORTED, "value '%s': unknown element type %llu",
                                          v->name, (unsigned long long)g.varint);
      } else if (g.num == 2 && g.wire == EI_PB_LEN) {
        v->rank = 0;
        rs = ei__pb_init(g.data, g.len);
        while (ei__pb_next(&rs, &h)) {
          if (h.num != 1 || h.wire != EI_PB_LEN) continue;
          if (v->rank >= EI_MAX_DIMS)
            return ei__err(im->err, im->errlen, EI_E_UNSUPPORTED, "value '%s': rank above %d is not supported", v->name,
                           EI_MAX_DIMS);
          int d = v->rank++;
          v->dims[d] = -1;
          rd = ei__pb_init(h.data, h.len);
          while (ei__pb_next(&rd, &k)) {
            if (k.num == 1 && k.wire == EI_PB_VARINT) {
              if ((int64_t)k.varint < 0)
                return ei__err(im->err, im->errlen, EI_E_INVALID_MODEL, "value '%s': negative dimension %lld", v->name,
                               (long long)k.varint);
              v->dims[d] = (int64_t)k.varint;
            } else if (k.num == 2 && k.wire == EI_PB_LEN) {
              ei__free(v->dim_names[d]);
              v->dim_names[d] = dup_view(&k);
              if (!v->dim_names[d]) return EI_E_NOMEM;
            }
          }
          if (rd.error) return ei__err(im->err, im->errlen, EI_E_MALFORMED, "value '%s': dimension: %s", v->name, rd.error);
        }
        if (rs.error) return ei__err(im->err, im->errlen, EI_E_MALFORMED, "value '%s': shape: %s", v->name, rs.error);
      }
    }
    if (rt.error) return ei__err(im->err, im->errlen, EI_E_MALFORMED, "value '%s': type: %s", v->name, rt.error);
  }
  if (r.error) return ei__err(im->err, im->errlen, EI_E_MALFORMED, "value '%s': %s", v->name, r.error);
  return EI_OK;
}

/* ValueInfoProto: name + type. Returns the name field and type bytes. */
static ei_status parse_value_info(importer *im, const ei__pb_field *vf, ei__pb_field *name, ei__pb_field *type) {
  ei__pb r = ei__pb_init(vf->data, vf->len);
  ei__pb_field f;
  memset(name, 0, sizeof *name);
  memset(type, 0, sizeof *type);
  while (ei__pb_next(&r, &f)) {
    if (f.num == 1 && f.wire == EI_PB_LEN) *name = f;
    if (f.num == 2 && f.wire == EI_PB_LEN) *type = f;
  }
  if (r.error) return ei__err(im->err, im->errlen, EI_E_MALFORMED, "graph input/output: %s", r.error);
  if (!name->data || name->len == 0)
    return ei__err(im->err, im->errlen, EI_E_INVALID_MODEL, "graph input/output without a name");
  return EI_OK;
}

/* ---- tensors ---- */

/* The whole pages inside [p, p + len) leave memory (the mapping stays valid: they are re-read if touched). */
static void release_pages(const void *p, size_t len) {
  static long page;
  if (!page) page = sysconf(_SC_PAGESIZE);
  if (page <= 0 || len < 2 * (size_t)page) return;
  uintptr_t a = ((uintptr_t)p + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
  uintptr_t b = ((uintptr_t)p + len) & ~((uintptr_t)page - 1);
  if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}

/* Decodes a TensorProto into value v (as a constant owned by the graph). */
static ei_status load_tensor(importer *im, const uint8_t *data, size_t len, ei__value *v, const char *what) {
  ei__tproto t;
  ei_status s = ei__tproto_parse(data, len, &t, what, im->err, im->errlen);
  if (s) return s;
  if (t.dtype == EI_FLOAT16)
    return ei__err(im->err, im->errlen, EI_E_UNSUPPORTED, "tensor '%s': float16 is not supported", what);
  s = ei__tproto_check_size(&t, im->base_dir, what, im->err, im->errlen);
  if (s) return s;
  void *p = ei__value_alloc_const(v, t.dtype, t.rank, t.dims);
  if (!p) return ei__err(im->err, im->errlen, EI_E_NOMEM, "tensor '%s': cannot allocate %lld elements", what,
                         (long long)t.numel);
  s = ei__tproto_decode(&t, p, im->base_dir, what, im->err, im->errlen);
  if (!s && im->drop_pages && t.has_raw) release_pages(t.raw, t.raw_len);
  return s;
}

/* ---- nodes ---- */

static ei_status parse_attribute(importer *im, ei__node *n, const ei__pb_field *af, ei__attr *a) {
  ei__pb r = ei__pb_init(af->data, af->len);
  ei__pb_field f;
  int64_t nints = 0, nfloats = 0;
  const uint8_t *tensor = NULL;
  size_t tensor_len = 0;
  int have_type = 0;
  /* First pass: name, type, scalar values, counts. */
  while (ei__pb_next(&r, &f)) {
    switch (f.num) {
      case 1: if (f.wire == EI_PB_LEN && !a->name) { a->name = dup_view(&f); if (!a->name) return EI_E_NOMEM; } break;
      case 20: if (f.wire == EI_PB_VARINT) { a->type = (ei__attr_type)f.varint; have_type = 1; } break;
      case 2: if (f.wire == EI_PB_I32) { uint32_t u = (uint32_t)f.varint; memcpy(&a->f, &u, 4); if (!have_type) a->type = EI_ATTR_FLOAT; } break;
      case 3: if (f.wire == EI_PB_VARINT) { a->i = (int64_t)f.varint; if (!have_type) a->type = EI_ATTR_INT; } break;
      case 4: if (f.wire == EI_PB_LEN) { ei__free(a->s); a->s = dup_view(&f); if (!a->s) return EI_E_NOMEM; if (!have_type) a->type = EI_ATTR_STRING; } break;
      case 5: if (f.wire == EI_PB_LEN) { tensor = f.data; tensor_len = f.len; if (!have_type) a->type = EI_ATTR_TENSOR; } break;
      case 6: if (!have_type) a->type = EI_ATTR_GRAPH; break;
      case 7: { int64_t c = ei__pb_count_fixed(&f, 4); if (c < 0) goto bad; nfloats += c; if (!have_type) a->type = EI_ATTR_FLOATS; break; }
      case 8: { int64_t c = ei__pb_count_varints(&f); if (c < 0) goto bad; nints += c; if (!have_type) a->type = EI_ATTR_INTS; break; }
      case 9: if (!have_type) a->type = EI_ATTR_STRINGS; break;
      case 21: return ei__err(im->err, im->errlen, EI_E_UNSUPPORTED, "node '%s': attribute references (functions) are not supported", n->name);
      default: break;
    }
  }
  if (r.error) goto bad;
  if (!a->name) return ei__err(im->err, im->errlen, EI_E_INVALID_MODEL, "node '%s' (%s): attribute without a name", n->name, n->op_type);
  if (a->type == EI_ATTR_STRING && !a->s && !(a->s = ei__strdup(""))) return EI_E_NOMEM; /* absent string = "" */
  if (a->type == EI_ATTR_FLOATS || nfloats) {
    a->floats = ei__calloc((size_t)nfloats + 1, sizeof(float));
    if (!a->floats) return EI_E_NOMEM;
  }
  if (a->type == EI_ATTR_INTS || nints) {
    a->ints = ei__calloc((size_t)nints + 1, sizeof(int64_t));
    if (!a->ints) return EI_E_NOMEM;
  }
  /* Second pass: repeated values. */
  r = ei__pb_init(af->data, af->len);
  int64_t ni = 0, nf = 0;
  while (ei__pb_next(&r, &f)) {
    if (f.num == 8) {
      if (!ei__pb_read_varints(&f, a->ints, nints, &ni)) goto bad;
    } else if (f.num == 7) {
      if (f.wire == EI_PB_I32) {
        uint32_t u = (uint32_t)f.varint;
        memcpy(&a->floats[nf++], &u, 4);
      } else {
        memcpy(&a->floats[nf], f.data, f.len);
        nf += (int64_t)(f.len / 4);
      }
    }
  }
  if (a->type == EI_ATTR_INTS) a->n = (int)nints;
  if (a->type == EI_ATTR_FLOATS) a->n = (int)nfloats;
  if (nints > INT32_MAX || nfloats > INT32_MAX) goto bad;
  if (a->type == EI_ATTR_TENSOR) {
    if (!tensor) return ei__err(im->err, im->errlen, EI_E_INVALID_MODEL, "node '%s': attribute '%s' has no tensor", n->name, a->name);
    char vname[256];
    snprintf(vname, sizeof vname, "%s:%s", n->name, a->name);
    int vi = ei__graph_add_value(im->g, vname);
    if (vi < 0) return EI_E_NOMEM;
    a->tensor_value = vi;
    ei_status s = load_tensor(im, tensor, tensor_len, &im->g->values[vi], vname);
    if (s) return s;
  }
  return EI_OK;
bad:
  return ei__err(im->err, im->errlen, EI_E_MALFORMED, "node '%s' (%s): malformed attribute%s%s", n->name, n->op_type,
                 a->name ? " " : "", a->name ? a->name : "");
}

static int domain_opset(const ei__graph *g, const char *domain, const int64_t *versions, char **domains, int ndom) {
  (void)g;
  for (int i = 0; i < ndom; i++)
    if (!strcmp(domains[i], domain)) return (int)versions[i];
  return -1;
}

typedef struct opsets {
  int n;
  char *domain[32];
  int64_t version[32];
} opsets;

static ei_status parse_node(importer *im, const ei__pb_field *nf, int idx, const opsets *os) {
  ei__graph *g = im->g;
  ei__node *n = &g->nodes[idx];
  ei__pb r = ei__pb_init(nf->data, nf->len);
  ei__pb_field f;
  int nin = 0, nout = 0, nattr = 0;
  while (ei__pb_next(&r, &f)) {
    if (f.wire != EI_PB_LEN) continue;
    if (f.num == 1) nin++;
    else if (f.num == 2) nout++;
    else if (f.num == 5) nattr++;
    else if (f.num == 3 && !n->name) { if (!(n->name = dup_view(&f))) return EI_E_NOMEM; }
    else if (f.num == 4 && !n->op_type) { if (!(n->op_type = dup_view(&f))) return EI_E_NOMEM; }
    else if (f.num == 7 && !n->domain) { if (!(n->domain = dup_view(&f))) return EI_E_NOMEM; }
  }
  if (r.error) return ei__err(im->err, im->errlen, EI_E_MALFORMED, "node #%d: %s", idx, r.error);
  if (!n->op_type || !n->op_type[0]) return ei__err(im->err, im->errlen, EI_E_INVALID_MODEL, "node #%d has no op_type", idx);
  if (!n->name || !n->name[0]) {
    char buf[64];
    snprintf(buf, sizeof buf, "%s_%d", n->op_type, idx);
    ei__free(n->name);
    n->name = ei__strdup(buf);
  }
  if (!n->domain) n->domain = ei__strdup("");
  if (!n->name || !n->domain) return EI_E_NOMEM;
  if (!strcmp(n->domain, "ai.onnx")) n->domain[0] = 0;
  n->opset = -1;
  for (int i = 0; i < os->n; i++)
    if (!strcmp(os->domain[i], n->domain)) n->opset = (int)os->version[i];
  if (n->opset < 0)
    return ei__err(im->err, im->errlen, EI_E_INVALID_MODEL, "node '%s' (%s): domain '%s' has no opset_import entry",
                   n->name, n->op_type, n->domain);
  n->in = ei__calloc((size_t)nin + 1, sizeof(int));
  n->out = ei__calloc((size_t)nout + 1, sizeof(int));
  n->attrs = ei__calloc((size_t)nattr + 1, sizeof(ei__attr));
  im->node_inputs[idx] = ei__calloc((size_t)nin + 1, sizeof(char *));
  im->node_nin[idx] = nin;
  if (!n->in || !n->out || !n->attrs || !im->node_inputs[idx]) return EI_E_NOMEM;
  n->nin = nin;
  r = ei__pb_init(nf->data, nf->len);
  int ii = 0;
  while (ei__pb_next(&r, &f)) {
    if (f.wire != EI_PB_LEN) continue;
    if (f.num == 1) {
      n->in[ii] = -1;
      if (f.len) {
        im->node_inputs[idx][ii] = dup_view(&f);
        if (!im->node_inputs[idx][ii]) return EI_E_NOMEM;
      }
      ii++;
    } else if (f.num == 2) {
      int o = n->nout++;
      n->out[o] = -1;
      if (!f.len) continue;
      char *name = dup_view(&f);
      if (!name) return EI_E_NOMEM;
      int vi = ei__graph_find_value(g, name);
      if (vi >= 0) {
        ei_status s = ei__err(im->err, im->errlen, EI_E_INVALID_MODEL,
                              "node '%s' (%s): output '%s' is already produced by %s", n->name, n->op_type, name,
                              g->values[vi].is_const ? "an initializer"
                              : g->values[vi].is_input ? "a graph input" : "another node");
        ei__free(name);
        return s;
      }
      vi = ei__graph_add_value(g, name);
      ei__free(name);
      if (vi < 0) return EI_E_NOMEM;
      n = &g->nodes[idx];
      g->values[vi].producer = idx;
      n->out[o] = vi;
    } else if (f.num == 5) {
      ei__attr *a = &n->attrs[n->nattrs++];
      ei_status s = parse_attribute(im, n, &f, a);
      n = &g->nodes[idx];
      if (s) return s == EI_E_NOMEM ? ei__err(im->err, im->errlen, s, "out of memory") : s;
      for (int k = 0; k < n->nattrs - 1; k++)
        if (!strcmp(n->attrs[k].name, a->name))
          return ei__err(im->err, im->errlen, EI_E_INVALID_MODEL, "node '%s' (%s): attribute '%s' appears twice",
                         n->name, n->op_type, a->name);
    }
  }
  (void)domain_opset;
  return EI_OK;
}

/* ---- graph ---- */

static ei_status toposort(importer *im) {
  ei__graph *g = im->g;
  int nn = g->nnodes;
  int *indeg = ei__calloc((size_t)nn + 1, sizeof(int)), *order = ei__calloc((size_t)nn + 1, sizeof(int));
  int *queue = ei__calloc((size_t)nn + 1, sizeof(int));
  int *ucount = ei__calloc((size_t)g->nvalues + 1, sizeof(int)), *ustart = ei__calloc((size_t)g->nvalues + 2, sizeof(int));
  int *users = NULL;
  ei_status s = EI_OK;
  if (!indeg || !order || !queue || !ucount || !ustart) { s = EI_E_NOMEM; goto out; }
  size_t nedges = 0;
  for (int i = 0; i < nn; i++)
    for (int k = 0; k < g->nodes[i].nin; k++) {
      int v = g->nodes[i].in[k];
      if (v >= 0 && g->values[v].producer >= 0) { indeg[i]++; ucount[v]++; nedges++; }
    }
  users = ei__calloc(nedges + 1, sizeof(int));
  if (!users) { s = EI_E_NOMEM; goto out; }
  for (int v = 0; v < g->nvalues; v++) ustart[v + 1] = ustart[v] + ucount[v];
  memset(ucount, 0, sizeof(int) * (size_t)g->nvalues);
  for (int i = 0; i < nn; i++)
    for (int k = 0; k < g->nodes[i].nin; k++) {
      int v = g->nodes[i].in[k];
      if (v >= 0 && g->values[v].producer >= 0) users[ustart[v] + ucount[v]++] = i;
    }
  int qh = 0, qt = 0, no = 0;
  for (int i = 0; i < nn; i++) if (!indeg[i]) queue[qt++] = i;
  while (qh < qt) {
    int i = queue[qh++];
    order[no++] = i;
    for (int k = 0; k < g->nodes[i].nout; k++) {
      int v = g->nodes[i].out[k];
      if (v < 0) continue;
      for (int u = ustart[v]; u < ustart[v + 1]; u++)
        if (--indeg[users[u]] == 0) queue[qt++] = users[u];
    }
  }
  if (no != nn) {
    int bad = 0;
    while (bad < nn && !indeg[bad]) bad++;
    s = ei__err(im->err, im->errlen, EI_E_INVALID_MODEL, "the graph has a cycle through node '%s' (%s)",
                g->nodes[bad].name, g->nodes[bad].op_type);
    goto out;
  }
  /* Reorder nodes and fix producer indices. */
  ei__node *sorted = ei__calloc((size_t)nn + 1, sizeof(ei__node));
  if (!sorted) { s = EI_E_NOMEM; goto out; }
  for (int i = 0; i < nn; i++) sorted[i] = g->nodes[order[i]];
  memcpy(g->nodes, sorted, sizeof(ei__node) * (size_t)nn);
  ei__free(sorted);
  for (int i = 0; i < nn; i++)
    for (int k = 0; k < g->nodes[i].nout; k++)
      if (g->nodes[i].out[k] >= 0) g->values[g->nodes[i].out[k]].producer = i;
out:
  ei__free(indeg); ei__free(order); ei__free(queue); ei__free(ucount); ei__free(ustart); ei__free(users);
  if (s == EI_E_NOMEM) ei__err(im->err, im->errlen, s, "out of memory sorting the graph");
  return s;
}

/* The name of an initializer for messages, read before the TensorProto is parsed ("initializer #k" without one). */
static void tensor_label(const ei__pb_field *tf, int k, char *buf, size_t size) {
  ei__pb r = ei__pb_init(tf->data, tf->len);
  ei__pb_field f;
  snprintf(buf, size, "initializer #%d", k);
  while (ei__pb_next(&r, &f))
    if (f.num == 8 && f.wire == EI_PB_LEN && f.len) {
      snprintf(buf, size, "%.*s", (int)(f.len > 200 ? 200 : f.len), (const char *)f.data);
      return;
    }
}

static ei_status parse_graph(importer *im, const uint8_t *data, size_t len, const opsets *os) {
  ei__graph *g = im->g;
  ei__pb r;
  ei__pb_field f, name, type;
  ei_status s;
  int nnodes = 0, ninputs = 0, noutputs = 0;

  /* Pass 1: initializers; count nodes and inputs. */
  r = ei__pb_init(data, len);
  int ninits = 0;
  while (ei__pb_next(&r, &f)) {
    if (f.num == 5 && f.wire == EI_PB_LEN) {
      ei__tproto t;
      char label[256];
      tensor_label(&f, ninits++, label, sizeof label);
      s = ei__tproto_parse(f.data, f.len, &t, label, im->err, im->errlen);
      if (s) return s;
      if (!t.name_len) return ei__err(im->err, im->errlen, EI_E_INVALID_MODEL, "an initializer has no name");
      char *nm = ei__strndup(t.name, t.name_len);
      if (!nm) return EI_E_NOMEM;
      if (ei__graph_find_value(g, nm) >= 0) {
        s = ei__err(im->err, im->errlen, EI_E_INVALID_MODEL, "initializer '%s' is defined twice", nm);
        ei__free(nm);
        return s;
      }
      int vi = ei__graph_add_value(g, nm);
      if (vi < 0) { ei__free(nm); return EI_E_NOMEM; }
      s = load_tensor(im, f.data, f.len, &g->values[vi], nm);
      ei__free(nm);
      if (s) return s;
    } else if (f.num == 15) {
      return ei__err(im->err, im->errlen, EI_E_UNSUPPORTED, "sparse initializers are not supported");
    } else if (f.num == 1 && f.wire == EI_PB_LEN) {
      nnodes++;
    } else if (f.num == 11 && f.wire == EI_PB_LEN) {
      ninputs++;
    } else if (f.num == 12 && f.wire == EI_PB_LEN) {
      noutputs++;
    }
  }
  if (r.error) return ei__err(im->err, im->errlen, EI_E_MALFORMED, "graph: %s", r.error);

  /* Pass 2: graph inputs. */
  g->inputs = ei__calloc((size_t)ninputs + 1, sizeof(int));
  g->outputs = ei__calloc((size_t)noutputs + 1, sizeof(int));
  if (!g->inputs || !g->outputs) return EI_E_NOMEM;
  r = ei__pb_init(data, len);
  while (ei__pb_next(&r, &f)) {
    if (f.num != 11 || f.wire != EI_PB_LEN) continue;
    if ((s = parse_value_info(im, &f, &name, &type))) return s;
    char *nm = dup_view(&name);
    if (!nm) return EI_E_NOMEM;
    int vi = ei__graph_find_value(g, nm);
    if (vi >= 0 && !g->values[vi].is_const) {
      s = ei__err(im->err, im->errlen, EI_E_INVALID_MODEL, "graph input '%s' is listed twice", nm);
      ei__free(nm);
      return s;
    }
    if (vi >= 0) { ei__free(nm); continue; } /* an initializer with a default: treated as the constant */
    vi = ei__graph_add_value(g, nm);
    ei__free(nm);
    if (vi < 0) return EI_E_NOMEM;
    ei__value *v = &g->values[vi];
    v->is_input = 1;
    if (type.data && (s = parse_type(im, type.data, type.len, v))) return s;
    if (v->dtype == EI_UNDEFINED)
      return ei__err(im->err, im->errlen, EI_E_INVALID_MODEL, "graph input '%s' has no element type", v->name);
    if (!ei_dtype_size(v->dtype) || v->dtype == EI_FLOAT16)
      return ei__err(im->err, im->errlen, EI_E_UNSUPPORTED, "graph input '%s': element type %s is not supported",
                     v->name, ei_dtype_name(v->dtype));
    g->inputs[g->ninputs++] = vi;
  }

  /* Pass 3: nodes. */
  g->nodes = ei__calloc((size_t)nnodes + 1, sizeof(ei__node));
  im->node_inputs = ei__calloc((size_t)nnodes + 1, sizeof(char **));
  im->node_nin = ei__calloc((size_t)nnodes + 1, sizeof(int));
  im->node_cap = nnodes;
  if (!g->nodes || !im->node_inputs || !im->node_nin) return EI_E_NOMEM;
  g->cap_nodes = nnodes + 1;
  r = ei__pb_init(data, len);
  while (ei__pb_next(&r, &f)) {
    if (f.num != 1 || f.wire != EI_PB_LEN) continue;
    int idx = ei__graph_add_node(g);
    if (idx < 0) return EI_E_NOMEM;
    if ((s = parse_node(im, &f, idx, os))) return s;
  }
  g->nodes_imported = g->nnodes;

  /* Pass 4: resolve node inputs. */
  for (int i = 0; i < g->nnodes; i++) {
    ei__node *n = &g->nodes[i];
    for (int k = 0; k < n->nin; k++) {
      const char *nm = im->node_inputs[i][k];
      if (!nm) continue;
      int vi = ei__graph_find_value(g, nm);
      if (vi < 0)
        return ei__err(im->err, im->errlen, EI_E_INVALID_MODEL,
                       "node '%s' (%s): input '%s' is not a graph input, an initializer or any node's output", n->name,
                       n->op_type, nm);
      n->in[k] = vi;
    }
  }

  /* Pass 5: outputs (and their declared types, kept as hints only). */
  r = ei__pb_init(data, len);
  while (ei__pb_next(&r, &f)) {
    if (f.num != 12 || f.wire != EI_PB_LEN) continue;
    if ((s = parse_value_info(im, &f, &name, &type))) return s;
    char *nm = dup_view(&name);
    if (!nm) return EI_E_NOMEM;
    int vi = ei__graph_find_value(g, nm);
    if (vi < 0) {
      s = ei__err(im->err, im->errlen, EI_E_INVALID_MODEL, "graph output '%s' is not produced by any node", nm);
      ei__free(nm);
      return s;
    }
    ei__free(nm);
    ei__value *ov = &g->values[vi];
    if (type.data && !ov->is_const && !ov->is_input) {
      /* The declared type (a hint: plans infer the real shape); kept for ei_model_output_info. */
      if ((s = parse_type(im, type.data, type.len, ov))) return s;
    }
    g->values[vi].is_output = 1;
    g->outputs[g->noutputs++] = vi;
  }
  if (!g->noutputs) return ei__err(im->err, im->errlen, EI_E_INVALID_MODEL, "the graph has no outputs");
  return toposort(im);
}

ei_status ei__onnx_import(const void *data, size_t size, const char *base_dir, ei__graph **out, char *err,
                          size_t errlen) {
  return ei__onnx_import_ex(data, size, base_dir, 0, out, err, errlen);
}

ei_status ei__onnx_import_ex(const void *data, size_t size, const char *base_dir, int drop_pages, ei__graph **out,
                             char *err, size_t errlen) {
  importer im = {0};
  im.drop_pages = drop_pages;
  im.base_dir = base_dir;
  im.err = err;
  im.errlen = errlen;
  opsets os = {0};
  const uint8_t *graph = NULL;
  size_t graph_len = 0;
  int64_t ir_version = -1;
  char producer[256] = "";
  ei_status s = EI_OK;
  *out = NULL;
  im.g = ei__graph_new();
  if (!im.g) return ei__err(err, errlen, EI_E_NOMEM, "out of memory");

  ei__pb r = ei__pb_init(data, size);
  ei__pb_field f, g;
  while (ei__pb_next(&r, &f)) {
    if (f.num == 1 && f.wire == EI_PB_VARINT) ir_version = (int64_t)f.varint;
    else if (f.num == 7 && f.wire == EI_PB_LEN) graph = f.data, graph_len = f.len;
    else if ((f.num == 2 || f.num == 3) && f.wire == EI_PB_LEN) {
      size_t l = strlen(producer);
      snprintf(producer + l, sizeof producer - l, "%s%.*s", l ? " " : "", (int)(f.len > 100 ? 100 : f.len),
               (const char *)f.data);
    } else if (f.num == 8 && f.wire == EI_PB_LEN) {
      if (os.n == 32) { s = ei__err(err, errlen, EI_E_UNSUPPORTED, "too many opset_import entries"); goto fail; }
      ei__pb rr = ei__pb_init(f.data, f.len);
      char *dom = NULL;
      int64_t ver = 1;
      while (ei__pb_next(&rr, &g)) {
        if (g.num == 1 && g.wire == EI_PB_LEN) {
          ei__free(dom);
          if (!(dom = dup_view(&g))) { s = EI_E_NOMEM; goto fail; }
        }
        if (g.num == 2 && g.wire == EI_PB_VARINT) ver = (int64_t)g.varint;
      }
      if (rr.error) { ei__free(dom); s = ei__err(err, errlen, EI_E_MALFORMED, "opset_import: %s", rr.error); goto fail; }
      if (!dom) dom = ei__strdup("");
      if (!dom) { s = EI_E_NOMEM; goto fail; }
      if (!strcmp(dom, "ai.onnx")) dom[0] = 0;
      os.domain[os.n] = dom;
      os.version[os.n++] = ver;
    }
  }
  if (r.error) { s = ei__err(err, errlen, EI_E_MALFORMED, "model: %s", r.error); goto fail; }
  if (ir_version < 0 && !graph) {
    s = ei__err(err, errlen, EI_E_MALFORMED, "not an ONNX model (no ir_version and no graph)");
    goto fail;
  }
  if (ir_version < 3 || ir_version > EI_MAX_IR_VERSION) {
    s = ei__err(err, errlen, EI_E_UNSUPPORTED, "IR version %lld is not supported (3..%d)", (long long)ir_version,
                EI_MAX_IR_VERSION);
    goto fail;
  }
  if (!graph) { s = ei__err(err, errlen, EI_E_INVALID_MODEL, "the model has no graph"); goto fail; }
  for (int i = 0; i < os.n; i++) {
    if (!os.domain[i][0]) {
      im.g->opset_default = (int)os.version[i];
      if (os.version[i] < EI_MIN_OPSET || os.version[i] > EI_MAX_OPSET) {
        s = ei__err(err, errlen, EI_E_UNSUPPORTED, "ONNX opset %lld is not supported (%d..%d)",
                    (long long)os.version[i], EI_MIN_OPSET, EI_MAX_OPSET);
        goto fail;
      }
    } else if (!strcmp(os.domain[i], "com.microsoft")) {
      im.g->opset_ms = (int)os.version[i];
    }
  }
  if (!im.g->opset_default) { s = ei__err(err, errlen, EI_E_INVALID_MODEL, "the model imports no ONNX opset"); goto fail; }
  im.g->ir_version = ir_version;
  im.g->producer = ei__strdup(producer);
  if (!im.g->producer) { s = EI_E_NOMEM; goto fail; }
  s = parse_graph(&im, graph, graph_len, &os);
  if (s) goto fail;
  goto done;
fail:
  if (s == EI_E_NOMEM) ei__err(err, errlen, s, "out of memory while importing the model");
  ei__graph_free(im.g);
  im.g = NULL;
done:
  for (int i = 0; im.node_inputs && i < im.node_cap; i++) {
    for (int k = 0; im.node_inputs[i] && k < im.node_nin[i]; k++) ei__free(im.node_inputs[i][k]);
    ei__free(im.node_inputs[i]);
  }
  ei__free(im.node_inputs);
  ei__free(im.node_nin);
  for (int i = 0; i < os.n; i++) ei__free(os.domain[i]);
  *out = im.g;
  return s;
}
