/* Empirical bias correction of `edgeinfer quantize` (see quantize.h): for each quantized Conv/Gemm, the float
 * bias gets E[W x_float] - E[Wq x_quant] per output channel, from window means of the layer's input in the float
 * model and in the simulation model of the quantized one (ei__build_options.simulate with bias_hooks: an Add of a
 * per-channel constant after each layer, set as the corrections are found), so the quantized layer's mean
 * pre-activation output matches the float model's. The simulation model runs every sample in segments (the
 * plan's skip flags), one arena per sample, so the corrections are sequential at the cost of one run per sample.
 *
 * Window means: for a Conv of kernel KH x KW, S[c][kh][kw] is the sum over the batch and the output positions
 * (oh, ow) of x[c][oh*sh - pad_top + kh*dh][ow*sw - pad_left + kw*dw] (0 in the padding), so that the mean
 * pre-activation of output channel o is b[o] + sum over its group's input channels and taps of W * S / count.
 * A Gemm's are the column means of A. Conv inputs of rank 3 (1-D) and 4 (2-D) are corrected, other ranks not. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "graph/passes.h"
#include "quant/quantize.h"

typedef struct bc_layer {
  int node;              /* in c->probe.g */
  int conv;              /* Conv (1) or Gemm (0) */
  int64_t cin, cout, groups, kh, kw;  /* Gemm: cin = K, cout = N, kh = kw = 1 */
  int64_t sh, sw, dh, dw, pt, pl;     /* Conv: strides, dilations, begin pads (auto_pad resolved per run) */
  const char *auto_pad;
  int trans_a, trans_b;
  const float *w;        /* the float weights */
  float *wq;             /* the dequantized int8 weights */
  double *sums;          /* scratch: one sample's window sums [cin * kh * kw] */
  double count;          /* their count */
  double *row;           /* scratch: one input row */
  int64_t row_cap;
  float *fmean;          /* per sample: the float model's mean pre-activation output without bias [n][cout] */
  double *sd, *sd2;      /* per channel: sum over samples of the difference float - quantized, and of its square */
  int nd;                /* samples summed in sd */
  int bad;               /* a shape the sums do not handle: no correction */
} bc_layer;

struct ei__bias {
  ei__calib *c;
  const ei_tensor *x;
  int n;
  bc_layer *l;
  int nl;
};

static int is_op(const ei__node *n, const char *t) { return !n->domain[0] && !strcmp(n->op_type, t); }

static int64_t numel(const ei__value *v) {
  int64_t n = 1;
  for (int d = 0; d < v->rank; d++) n *= v->dims[d];
  return n;
}

static int float_const(const ei__graph *g, int v) {
  return v >= 0 && g->values[v].is_const && g->values[v].dtype == EI_FLOAT && g->values[v].data;
}

void ei__bias_clear(ei__calib *c) {
  if (!c->bias_delta) return;
  for (int i = 0; c->probe.g && i < c->probe.g->nnodes; i++) ei__free(c->bias_delta[i]);
  ei__free(c->bias_delta);
  c->bias_delta = NULL;
}

/* ---- layers ---- */

static int64_t attr_at(const ei__node *n, const char *name, int k, int64_t def) {
  const int64_t *v;
  int cnt = ei__attr_ints(n, name, &v);
  return cnt > k ? v[k] : def;
}

/* Sets up layer l for node i (a Conv or Gemm with a constant float weight); 0 if it cannot be corrected. */
static int layer_init(const ei__calib *c, int i, int nsamples, bc_layer *l) {
  const ei__graph *g = c->probe.g;
  const ei__node *n = &g->nodes[i];
  memset(l, 0, sizeof *l);
  l->node = i;
  if (n->nin < 2 || !float_const(g, n->in[1])) return 0;
  const ei__value *w = &g->values[n->in[1]];
  if (is_op(n, "Conv")) {
    if (w->rank != 3 && w->rank != 4) return 0;
    int two = w->rank == 4;
    l->conv = 1;
    l->groups = ei__attr_int(n, "group", 1);
    l->cout = w->dims[0];
    if (l->groups < 1 || l->cout % l->groups) return 0;
    l->cin = w->dims[1] * l->groups;
    l->kh = two ? w->dims[2] : 1;
    l->kw = w->dims[w->rank - 1];
    /* 1-D: the one spatial axis is W */
    l->sh = two ? attr_at(n, "strides", 0, 1) : 1;
    l->sw = attr_at(n, "strides", two ? 1 : 0, 1);
    l->dh = two ? attr_at(n, "dilations", 0, 1) : 1;
    l->dw = attr_at(n, "dilations", two ? 1 : 0, 1);
    l->pt = two ? attr_at(n, "pads", 0, 0) : 0;
    l->pl = attr_at(n, "pads", two ? 1 : 0, 0);
    l->auto_pad = ei__attr_str(n, "auto_pad", "NOTSET");
    if (l->sh < 1 || l->sw < 1 || l->dh < 1 || l->dw < 1) return 0;
  } else if (is_op(n, "Gemm")) {
    if (w->rank != 2) return 0;
    l->trans_a = (int)ei__attr_int(n, "transA", 0);
    l->trans_b = (int)ei__attr_int(n, "transB", 0);
    l->cin = l->trans_b ? w->dims[1] : w->dims[0];
    l->cout = l->trans_b ? w->dims[0] : w->dims[1];
    l->groups = l->kh = l->kw = 1;
  } else {
    return 0;
  }
  int64_t ns = l->cin * l->kh * l->kw, nw = numel(w);
  int axis = ei__quant_weight_axis(n, w, c->opt.per_tensor);
  int64_t nsc = axis >= 0 ? w->dims[axis] : 1, inner = 1;
  for (int d = axis + 1; axis >= 0 && d < w->rank; d++) inner *= w->dims[d];
  l->wq = ei__malloc(sizeof(float) * (size_t)(nw + 1));
  l->w = w->data;
  l->sums = ei__calloc((size_t)ns + 1, sizeof(double));
  l->fmean = ei__calloc((size_t)(nsamples * l->cout) + 1, sizeof(float));
  l->sd = ei__calloc((size_t)l->cout + 1, sizeof(double));
  l->sd2 = ei__calloc((size_t)l->cout + 1, sizeof(double));
  float *sc = ei__malloc(sizeof(float) * (size_t)(nsc + 1));
  int8_t *q = ei__malloc((size_t)nw + 1);
  if (!l->wq || !l->sums || !l->fmean || !l->sd || !l->sd2 || !sc || !q) {
    ei__free(sc);
    ei__free(q);
    return -1;
  }
  ei__quant_weight(w, axis, sc, q);
  for (int64_t e = 0; e < nw; e++) l->wq[e] = (float)q[e] * sc[axis >= 0 ? (e / inner) % nsc : 0];
  ei__free(sc);
  ei__free(q);
  return 1;
}

static void layer_free(bc_layer *l) {
  ei__free(l->wq);
  ei__free(l->sums);
  ei__free(l->fmean);
  ei__free(l->sd);
  ei__free(l->sd2);
  ei__free(l->row);
}

/* ---- window sums ---- */

/* The begin pad along one axis of input size in, output size out. */
static int64_t begin_pad(const char *auto_pad, int64_t pad, int64_t in, int64_t out, int64_t k, int64_t s, int64_t d) {
  if (!strcmp(auto_pad, "VALID")) return 0;
  if (!strcmp(auto_pad, "SAME_UPPER") || !strcmp(auto_pad, "SAME_LOWER")) {
    int64_t total = (out - 1) * s + (k - 1) * d + 1 - in;
    if (total < 0) total = 0;
    return !strcmp(auto_pad, "SAME_UPPER") ? total / 2 : total - total / 2;
  }
  return pad;
}

/* The window sums of the Conv input x (rank 3 or 4) with output y's spatial size into l->sums (l->count: batch *
 * output positions). 0 if the shapes do not fit the layer. */
static int conv_sums(bc_layer *l, const ei__tensor *x, const ei__tensor *y) {
  double *sums = l->sums, *row = l->row;
  memset(sums, 0, sizeof(double) * (size_t)(l->cin * l->kh * l->kw));
  if (x->rank != y->rank || (x->rank != 3 && x->rank != 4) || x->dims[1] != l->cin) return 0;
  int two = x->rank == 4;
  int64_t N = x->dims[0], C = x->dims[1], H = two ? x->dims[2] : 1, W = x->dims[x->rank - 1];
  int64_t OH = two ? y->dims[2] : 1, OW = y->dims[y->rank - 1];
  int64_t pt = two ? begin_pad(l->auto_pad, l->pt, H, OH, l->kh, l->sh, l->dh) : 0;
  int64_t pl = begin_pad(l->auto_pad, l->pl, W, OW, l->kw, l->sw, l->dw);
  const float *data = x->data;
  for (int64_t b = 0; b < N; b++)
    for (int64_t ch = 0; ch < C; ch++) {
      const float *plane = data + (b * C + ch) * H * W;
      for (int64_t i = 0; i < l->kh; i++) {
        /* row[iw]: the sum over the output rows of the input row each one reads at tap i */
        for (int64_t iw = 0; iw < W; iw++) row[iw] = 0;
        for (int64_t oh = 0; oh < OH; oh++) {
          int64_t ih = oh * l->sh - pt + i * l->dh;
          if (ih < 0 || ih >= H) continue;
          const float *r = plane + ih * W;
          for (int64_t iw = 0; iw < W; iw++) row[iw] += r[iw];
        }
        for (int64_t j = 0; j < l->kw; j++) {
          double s = 0;
          for (int64_t ow = 0; ow < OW; ow++) {
            int64_t iw = ow * l->sw - pl + j * l->dw;
            if (iw >= 0 && iw < W) s += row[iw];
          }
          sums[(ch * l->kh + i) * l->kw + j] += s;
        }
      }
    }
  l->count = (double)(N * OH * OW);
  return 1;
}

/* The column sums of the Gemm input A (rows of K; transA: columns) into l->sums. */
static int gemm_sums(bc_layer *l, const ei__tensor *a) {
  double *sums = l->sums;
  memset(sums, 0, sizeof(double) * (size_t)l->cin);
  if (a->rank != 2) return 0;
  int64_t M = l->trans_a ? a->dims[1] : a->dims[0], K = l->trans_a ? a->dims[0] : a->dims[1];
  if (K != l->cin) return 0;
  const float *x = a->data;
  for (int64_t m = 0; m < M; m++)
    for (int64_t k = 0; k < K; k++) sums[k] += l->trans_a ? x[k * M + m] : x[m * K + k];
  l->count = (double)M;
  return 1;
}

/* The window sums of input x (output y) of layer l into l->sums, l->count. */
static int layer_sums(bc_layer *l, const ei__tensor *x, const ei__tensor *y) {
  if (x->dtype != EI_FLOAT || !x->data) return 0;
  return l->conv ? conv_sums(l, x, y) : gemm_sums(l, x);
}

/* The mean output of layer l without bias, per channel, from its window sums, with weights w: out[cout]. */
static void layer_means(const bc_layer *l, const float *w, double *out) {
  int64_t cg = l->cin / l->groups, og = l->cout / l->groups, taps = l->kh * l->kw;
  for (int64_t o = 0; o < l->cout; o++) {
    double acc = 0;
    if (l->conv) {
      const float *wo = w + o * cg * taps;
      const double *sm = l->sums + (o / og) * cg * taps;
      for (int64_t e = 0; e < cg * taps; e++) acc += (double)wo[e] * sm[e];
    } else {
      for (int64_t k = 0; k < l->cin; k++) acc += (double)w[l->trans_b ? o * l->cin + k : k * l->cout + o] * l->sums[k];
    }
    out[o] = l->count > 0 ? acc / l->count : 0;
  }
}

/* Grows a layer's row scratch to the input width of x. */
static int row_room(bc_layer *l, const ei__tensor *x) {
  int64_t w = x->rank > 0 ? x->dims[x->rank - 1] : 1;
  if (w <= l->row_cap) return 1;
  ei__free(l->row);
  l->row = ei__malloc(sizeof(double) * (size_t)(w + 1));
  l->row_cap = l->row ? w : 0;
  return l->row_cap > 0;
}

typedef struct sums_job {
  bc_layer *l;
  const ei__probe *p;
  int sample;
  double *tmp;    /* per layer: cout doubles at tmp + l->cout offset... (see add_sample) */
  int64_t *off;
} sums_job;

/* The float model's per-sample mean outputs of layers [begin, end) after a run of the probe. */
static void sums_range(void *arg, int64_t begin, int64_t end) {
  sums_job *j = arg;
  for (int64_t k = begin; k < end; k++) {
    bc_layer *l = &j->l[k];
    if (l->bad) continue;
    const ei__node *n = &j->p->g->nodes[l->node];
    ei__tensor x, y;
    if (!ei__probe_value(j->p, n->in[0], &x) || !ei__probe_value(j->p, n->out[0], &y) || !layer_sums(l, &x, &y)) {
      l->bad = 1;
      continue;
    }
    double *m = j->tmp + j->off[k];
    layer_means(l, l->w, m);
    for (int64_t o = 0; o < l->cout; o++) l->fmean[(int64_t)j->sample * l->cout + o] = (float)m[o];
  }
}

/* Runs the float model on sample `sample` and keeps every layer's mean outputs. */
static ei_status add_sample(ei__bias *b, int sample, double *tmp, int64_t *off, char *err, size_t errlen) {
  ei__probe *p = &b->c->probe;
  ei_status s = ei__probe_run(p, 1, &b->x[sample], err, errlen);
  if (s) return s;
  for (int k = 0; k < b->nl; k++) {
    bc_layer *l = &b->l[k];
    ei__tensor t;
    if (l->bad || !l->conv) continue;
    if (!ei__probe_value(p, p->g->nodes[l->node].in[0], &t)) l->bad = 1;
    else if (!row_room(l, &t)) return ei__err(err, errlen, EI_E_NOMEM, "bias correction: out of memory");
  }
  sums_job job = {b->l, p, sample, tmp, off};
  ei__parallel_for(p->pool, b->nl, 1, sums_range, &job);
  return EI_OK;
}

ei_status ei__bias_create(ei__calib *c, const ei_tensor *x, int n, ei__bias **out, char *err, size_t errlen) {
  *out = NULL;
  const ei__graph *g = c->probe.g;
  ei__bias *b = ei__calloc(1, sizeof *b);
  if (!b || !(b->l = ei__calloc((size_t)g->nnodes + 1, sizeof(bc_layer)))) {
    ei__free(b);
    return ei__err(err, errlen, EI_E_NOMEM, "out of memory");
  }
  b->c = c;
  b->x = x;
  b->n = n;
  for (int i = 0; i < g->nnodes; i++) {
    if (!is_op(&g->nodes[i], "Conv") && !is_op(&g->nodes[i], "Gemm")) continue;
    int r = layer_init(c, i, n, &b->l[b->nl]);
    if (r < 0) {
      layer_free(&b->l[b->nl]);
      ei__bias_free(b);
      return ei__err(err, errlen, EI_E_NOMEM, "out of memory");
    }
    if (r) b->nl++;
    else layer_free(&b->l[b->nl]);
  }
  int64_t total = 0, *off = ei__calloc((size_t)b->nl + 1, sizeof(int64_t));
  for (int k = 0; off && k < b->nl; k++) off[k] = total, total += b->l[k].cout;
  double *tmp = off ? ei__malloc(sizeof(double) * (size_t)(total + 1)) : NULL;
  ei_status s = tmp ? EI_OK : ei__err(err, errlen, EI_E_NOMEM, "out of memory");
  for (int k = 0; k < n && !s; k++) s = add_sample(b, k, tmp, off, err, errlen);
  ei__free(tmp);
  ei__free(off);
  if (s) {
    ei__bias_free(b);
    return s;
  }
  *out = b;
  return EI_OK;
}

void ei__bias_free(ei__bias *b) {
  if (!b) return;
  for (int k = 0; k < b->nl; k++) layer_free(&b->l[k]);
  ei__free(b->l);
  ei__free(b);
}

/* ---- the corrections ---- */

/* The node named like float node n (same op) in graph sg, or -1. */
static int find_node(const ei__graph *sg, const ei__node *n) {
  for (int k = 0; k < sg->nnodes; k++) {
    const ei__node *m = &sg->nodes[k];
    if (!m->dead && m->name && !strcmp(m->name, n->name) && !strcmp(m->op_type, n->op_type)) return k;
  }
  return -1;
}

/* The float constant of the bias hook (an Add after node k of sg, bias_hooks) of m values, or NULL. */
static float *hook_delta(const ei__graph *sg, int k, int64_t m) {
  int v = sg->nodes[k].out[0];
  int a = v >= 0 ? ei__pass_single_consumer(sg, v) : -1;
  if (a < 0 || !is_op(&sg->nodes[a], "Add") || sg->nodes[a].nin != 2 || sg->nodes[a].in[0] != v) return NULL;
  const ei__value *d = &sg->values[sg->nodes[a].in[1]];
  if (!d->is_const || d->dtype != EI_FLOAT || !d->data || numel(d) != m) return NULL;
  return d->data;
}

/* Value v of graph sg after a (partial) run of plan p: as ei__probe_value. */
static int plan_value(const ei__graph *sg, const ei__plan *p, int v, ei__tensor *t) {
  if (v < 0 || v >= sg->nvalues || p->kind[v] == EI_VK_UNUSED) return 0;
  *t = p->vals[v];
  t->data = p->kind[v] == EI_VK_CONST ? sg->values[v].data : p->ptr[v];
  return t->data != NULL;
}

typedef struct seq_layer {
  bc_layer *l;
  int conv;        /* the layer's node in the simulation graph */
  float *delta;    /* its hook's constant */
} seq_layer;

static int by_conv(const void *a, const void *b) { return ((const seq_layer *)a)->conv - ((const seq_layer *)b)->conv; }

/* The correction of layer l from its per-sample differences: their mean per channel, shrunk towards 0 by the
 * factor max(0, 1 - se^2 / mean^2) (se: the mean's standard error over the samples), so channels whose
 * difference is mostly sample noise get little of it. */
static void layer_delta(bc_layer *l, float *delta) {
  int n = l->nd;
  for (int64_t o = 0; o < l->cout; o++) {
    double mean = l->sd[o] / n, f = 1;
    if (n > 1) {
      double var = (l->sd2[o] - n * mean * mean) / (n - 1), se2 = (var > 0 ? var : 0) / n;
      f = mean * mean > 0 ? 1 - se2 / (mean * mean) : 0;
      if (f < 0) f = 0;
    }
    delta[o] = (float)(mean * f);
  }
}

/* The sequential pass (see quantize.h): the simulation graph sg with bias hooks, planned once with memory reuse, runs
 * every sample in segments, one arena per sample: up to the next layer (graph order), whose window sums over every
 * sample then give its correction, written into its hook before any sample runs it. */
static ei_status sequential(ei__bias *b, ei__graph *sg, seq_layer *sl, int nsl, int *used, int *run, int total,
                            void (*progress)(void *, int, int), void *ctx, char *err, size_t errlen) {
  ei__calib *c = b->c;
  ei__plan *plan = NULL;
  ei_status s = ei__plan_make_ex(sg, 1, &b->x[0], c->opt.max_arena, 0u, &plan, err, errlen);
  if (s) return s;
  /* one arena per sample: as many samples as max_arena holds */
  int nsamples = b->n;
  if ((double)plan->arena_size * nsamples > (double)c->opt.max_arena)
    nsamples = (int)((double)c->opt.max_arena / ((double)plan->arena_size + 1));
  if (nsamples < 1) nsamples = 1;
  *used = nsamples;
  void **arena = ei__calloc((size_t)nsamples + 1, sizeof(void *));
  uint8_t *skip0 = ei__malloc((size_t)sg->nnodes + 1);
  if (!arena || !skip0) s = ei__err(err, errlen, EI_E_NOMEM, "out of memory");
  for (int k = 0; k < nsamples && !s; k++) {
    if (!ei__plan_matches(plan, 1, &b->x[k]))
      s = ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "bias correction: the calibration samples differ in shape");
    else if (!(arena[k] = ei__malloc(plan->arena_size + 1)))
      s = ei__err(err, errlen, EI_E_NOMEM, "bias correction: cannot allocate %d arenas of %zu bytes", nsamples,
                  plan->arena_size);
  }
  int64_t maxc = 1;
  for (int k = 0; k < nsl; k++) maxc = sl[k].l->cout > maxc ? sl[k].l->cout : maxc;
  double *qm = ei__malloc(sizeof(double) * (size_t)(maxc + 1));
  if (!s && !qm) s = ei__err(err, errlen, EI_E_NOMEM, "out of memory");
  if (!s) memcpy(skip0, plan->skip, (size_t)sg->nnodes);
  int from = 0;
  for (int k = 0; k < nsl && !s; k++) {
    bc_layer *l = sl[k].l;
    int to = sl[k].conv;
    for (int i = 0; i < sg->nnodes; i++) plan->skip[i] = skip0[i] || i < from || i >= to;
    for (int j = 0; j < nsamples && !s; j++) {
      s = ei__plan_run(sg, plan, arena[j], c->probe.pool, &b->x[j], NULL, 0, NULL, err, errlen);
      ei__tensor x;
      const ei__node *n = &sg->nodes[to];
      if (s || l->bad) continue;
      if (!plan_value(sg, plan, n->in[0], &x) || !row_room(l, &x) || !layer_sums(l, &x, &plan->vals[n->out[0]])) {
        l->bad = 1;
        continue;
      }
      layer_means(l, l->wq, qm);
      for (int64_t o = 0; o < l->cout; o++) {
        double d = (double)l->fmean[(int64_t)j * l->cout + o] - qm[o];
        l->sd[o] += d;
        l->sd2[o] += d * d;
      }
      l->nd++;
    }
    from = to;
    if (!s && !l->bad && l->nd > 0) layer_delta(l, sl[k].delta);
    if (progress) progress(ctx, *run += 1, total);
  }
  ei__free(qm);
  if (plan && skip0 && !s) memcpy(plan->skip, skip0, (size_t)sg->nnodes);
  for (int k = 0; arena && k < nsamples; k++) ei__free(arena[k]);
  ei__free(arena);
  ei__free(skip0);
  ei__plan_free(plan, sg);
  return s;
}

/* The output quantization step of node i's output (its calibrated range over 255 levels; 0 when unknown). */
static double out_step(const ei__calib *c, int i) {
  int v = c->probe.g->nodes[i].out[0];
  if (v < 0 || !c->has_range[v]) return 0;
  double lo = fmin(c->lo[v], 0), hi = fmax(c->hi[v], 0);
  return (hi - lo) / 255.0;
}

/* Moves the corrections of the hooks into c->bias_delta (per node of the float graph) and sums up info. */
static ei_status keep_deltas(ei__bias *b, const seq_layer *sl, int nsl, ei__bias_info *info, char *err,
                             size_t errlen) {
  ei__calib *c = b->c;
  if (!(c->bias_delta = ei__calloc((size_t)c->probe.g->nnodes + 1, sizeof(float *))))
    return ei__err(err, errlen, EI_E_NOMEM, "out of memory");
  double steps = 0;
  int nsteps = 0;
  for (int k = 0; k < nsl; k++) {
    const bc_layer *l = sl[k].l;
    if (l->bad || l->nd < 1) continue;
    float *d = ei__malloc(sizeof(float) * (size_t)(l->cout + 1));
    if (!d) return ei__err(err, errlen, EI_E_NOMEM, "out of memory");
    memcpy(d, sl[k].delta, sizeof(float) * (size_t)l->cout);
    c->bias_delta[l->node] = d;
    info->layers++;
    double st = out_step(c, l->node), a = 0;
    for (int64_t o = 0; o < l->cout; o++) a += fabs(d[o]);
    if (st > 0) steps += a / (double)l->cout / st, nsteps++;
  }
  info->steps = nsteps ? steps / nsteps : 0;
  return EI_OK;
}

ei_status ei__bias_correct(ei__bias *b, const uint8_t *keep_float, ei__bias_info *info,
                           void (*progress)(void *ctx, int i, int n), void *ctx, char *err, size_t errlen) {
  ei__calib *c = b->c;
  ei__bias_info local;
  if (!info) info = &local;
  memset(info, 0, sizeof *info);
  ei__bias_clear(c);
  if (b->n < 1 || b->nl < 1) return EI_OK;
  ei__build_options bo = {.simulate = 1, .keep_float = keep_float, .bias_hooks = 1};
  ei__qmodel m;
  ei_status s = ei__quantize_build_ex(c, &bo, &m, NULL, NULL, err, errlen);
  if (s) return s;
  uint8_t *quant = ei__calloc((size_t)c->probe.g->nnodes + 1, 1);
  seq_layer *sl = ei__calloc((size_t)b->nl + 1, sizeof *sl);
  if (!quant || !sl) {
    ei__qmodel_free(&m);
    ei__free(quant);
    ei__free(sl);
    return ei__err(err, errlen, EI_E_NOMEM, "out of memory");
  }
  for (int k = 0; k < m.nlayers; k++) quant[m.layers[k].node] = 1;
  ei__prepare_options po = {.optimize = 1, .fuse_acts = ~0u};
  ei__probe p;
  s = ei__probe_load(&p, m.bytes, m.size, NULL, &po, c->probe.pool, c->opt.max_arena, err, errlen);
  ei__qmodel_free(&m);
  int nsl = 0;
  for (int k = 0; k < b->nl && !s; k++) {
    bc_layer *l = &b->l[k];
    if (l->bad || !quant[l->node]) continue;
    int conv = find_node(p.g, &c->probe.g->nodes[l->node]);
    float *d = conv >= 0 ? hook_delta(p.g, conv, l->cout) : NULL;
    if (!d) continue;
    memset(l->sd, 0, sizeof(double) * (size_t)l->cout);
    memset(l->sd2, 0, sizeof(double) * (size_t)l->cout);
    l->nd = 0;
    sl[nsl++] = (seq_layer){.l = l, .conv = conv, .delta = d};
  }
  ei__free(quant);
  qsort(sl, (size_t)nsl, sizeof *sl, by_conv);
  if (!s) {
    int run = 0;
    s = sequential(b, p.g, sl, nsl, &info->samples, &run, nsl, progress, ctx, err, errlen);
  }
  if (!s) s = keep_deltas(b, sl, nsl, info, err, errlen);
  if (s) ei__bias_clear(c);
  ei__free(sl);
  ei__probe_free(&p);
  return s;
}
