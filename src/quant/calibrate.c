/* Calibration for `edgeinfer quantize`: probes (a graph planned with EI_PLAN_KEEP_ALL, so every intermediate
 * tensor can be read after a run) and per-tensor statistics of every float activation:
 *   minmax      the observed min and max;
 *   percentile  a histogram of |x| split by sign (2048 bins over [0, max|x|] from a first min/max pass); the range
 *               keeps `percentile` percent of the values: symmetric tails (|x|) for int8 activations, each tail
 *               cut by (100 - p) / 2 percent for uint8 (as ONNX Runtime's percentile calibrator);
 *   entropy     the same histogram of |x|; the threshold minimizing the KL divergence between the clipped
 *               distribution and its 128-level quantization (TensorRT's entropy calibrator; as NVIDIA's
 *               implementation, 256 levels for a uint8 tensor without negative values, and the zero bin counted
 *               as its neighbour so exact zeros do not dominate);
 *   mse         the same histogram; the range whose 8-bit quantization has the least expected squared error
 *               (rounding inside the range, clipping outside; both bounds searched for uint8 with a zero point).
 * Ranges never exceed the observed min/max, except for vectors (activations with one value per channel and sample:
 * pooled features, squeeze-and-excitation vectors, fully connected outputs, logits): the few values the calibration
 * set shows understate their extremes and clipping them (a gate, a class score) costs far more than a coarser step,
 * so they get their min/max widened by opt.vector_margin whatever the method. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "onnx/onnx.h"
#include "quant/quantize.h"

#define CALIB_BINS 2048
#define CALIB_LEVELS 128

struct ei__vstats {
  int observe;          /* a float activation: graph input or node output */
  int seen;
  double lo, hi;        /* finite min / max */
  double amax;          /* histogram range [0, amax] (pass 1) */
  uint64_t *pos, *neg;  /* CALIB_BINS each (pass 1) */
  int64_t per_channel;  /* the most values per channel and sample seen (rank >= 3: the spatial size; else 1) */
};

void ei__quant_options_init(ei__quant_options *o) {
  memset(o, 0, sizeof *o);
  o->method = EI_CALIB_MINMAX;
  o->percentile = 99.99;
  o->vector_margin = 1.25;
  o->bias_correction = 1;
  o->func_ranges = 0;
  o->max_arena = (size_t)4 << 30;
}

const char *ei__calib_method_name(ei__calib_method m) {
  switch (m) {
    case EI_CALIB_MINMAX: return "minmax";
    case EI_CALIB_PERCENTILE: return "percentile";
    case EI_CALIB_ENTROPY: return "entropy";
    case EI_CALIB_MSE: return "mse";
    case EI_CALIB_AUTO: return "auto";
  }
  return "?";
}

/* ---- probes ---- */

ei_status ei__probe_load(ei__probe *p, const void *data, size_t size, const char *base_dir,
                         const ei__prepare_options *po, ei_threadpool *pool, size_t max_arena, char *err,
                         size_t errlen) {
  memset(p, 0, sizeof *p);
  p->pool = pool;
  p->max_arena = max_arena;
  ei_status s = ei__onnx_import(data, size, base_dir, &p->g, err, errlen);
  if (s) return s;
  if ((s = ei__graph_prepare_ex(p->g, po, err, errlen))) {
    ei__graph_free(p->g);
    p->g = NULL;
  }
  return s;
}

ei_status ei__probe_run(ei__probe *p, int ninputs, const ei_tensor *inputs, char *err, size_t errlen) {
  if (!p->plan || !ei__plan_matches(p->plan, ninputs, inputs)) {
    ei__plan_free(p->plan, p->g);
    p->plan = NULL;
    ei_status s = ei__plan_make_ex(p->g, ninputs, inputs, p->max_arena, p->outputs_only ? 0u : EI_PLAN_KEEP_ALL,
                                   &p->plan, err, errlen);
    if (s) return s;
    if (p->plan->arena_size > p->arena_cap) {
      ei__free(p->arena);
      p->arena_cap = 0;
      p->arena = ei__malloc(p->plan->arena_size);
      if (!p->arena)
        return ei__err(err, errlen, EI_E_NOMEM, "cannot allocate the %zu-byte arena of the calibration plan",
                       p->plan->arena_size);
      p->arena_cap = p->plan->arena_size;
    }
  }
  return ei__plan_run(p->g, p->plan, p->arena, p->pool, inputs, NULL, 0, NULL, err, errlen);
}

int ei__probe_value(const ei__probe *p, int v, ei__tensor *t) {
  if (!p->plan || v < 0 || v >= p->g->nvalues || p->plan->kind[v] == EI_VK_UNUSED) return 0;
  *t = p->plan->vals[v];
  t->data = p->plan->ptr[v];
  if (p->plan->kind[v] == EI_VK_CONST) t->data = p->g->values[v].data;
  return t->data != NULL || ei__numel(t) == 0;
}

void ei__probe_free(ei__probe *p) {
  if (p->g) ei__plan_free(p->plan, p->g);
  ei__free(p->arena);
  ei__graph_free(p->g);
  memset(p, 0, sizeof *p);
}

/* ---- loading ---- */

static ei_status read_file(const char *path, uint8_t **data, size_t *size, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  *data = NULL;
  *size = 0;
  if (!f) return ei__err(err, errlen, EI_E_IO, "cannot open '%s': %s", path, strerror(errno));
  long n = -1;
  if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
  if (n < 0 || fseek(f, 0, SEEK_SET) != 0) {
    fclose(f);
    return ei__err(err, errlen, EI_E_IO, "'%s' is not a regular file", path);
  }
  uint8_t *b = ei__malloc((size_t)n + 1);
  if (!b) {
    fclose(f);
    return ei__err(err, errlen, EI_E_NOMEM, "cannot allocate %ld bytes for '%s'", n, path);
  }
  size_t got = fread(b, 1, (size_t)n, f);
  fclose(f);
  if (got != (size_t)n) {
    ei__free(b);
    return ei__err(err, errlen, EI_E_IO, "cannot read '%s'", path);
  }
  *data = b;
  *size = (size_t)n;
  return EI_OK;
}

static int consumer_fn(const ei__graph *g, int v);

static int is_quantized_op(const ei__node *n) {
  static const char *const ops[] = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul",
                                    "ConvInteger", "MatMulInteger", "QGemm", "QLinearAdd", "QLinearMul",
                                    "QLinearConcat", "QLinearGlobalAveragePool", "QLinearLookup", NULL};
  for (int i = 0; ops[i]; i++)
    if (!strcmp(n->op_type, ops[i])) return 1;
  return 0;
}

ei_status ei__calib_create(const char *path, const ei__quant_options *o, ei_threadpool *pool, ei__calib **out,
                           char *err, size_t errlen) {
  *out = NULL;
  ei__calib *c = ei__calloc(1, sizeof *c);
  if (!c) return ei__err(err, errlen, EI_E_NOMEM, "out of memory");
  c->opt = *o;
  c->center = -1;
  uint8_t *data;
  size_t size;
  ei_status s = read_file(path, &data, &size, err, errlen);
  if (s) {
    ei__free(c);
    return s;
  }
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash) *slash = 0;
  else snprintf(dir, sizeof dir, ".");
  /* Relu/Clip fold into the producer's quantization range with uint8 (zero point 0 clamps); with symmetric int8
   * they stay nodes of their own (as ONNX Runtime writes them), so nothing is fused. */
  ei__prepare_options po = {.optimize = 1, .keep_constants = 1, .fuse_acts = o->act_s8 ? 0u : (1u << EI_ACT_RELU) | (1u << EI_ACT_CLIP)};
  s = ei__probe_load(&c->probe, data, size, dir, &po, pool, o->max_arena, err, errlen);
  ei__free(data);
  if (s) {
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", err ? err : "");
    ei__free(c);
    return ei__err(err, errlen, s, "%s: %s", path, tmp);
  }
  ei__graph *g = c->probe.g;
  for (int i = 0; i < g->nnodes; i++)
    if (is_quantized_op(&g->nodes[i])) {
      s = ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "%s is already quantized (node '%s' is %s)", path,
                  g->nodes[i].name, g->nodes[i].op_type);
      ei__calib_free(c);
      return s;
    }
  c->stats = ei__calloc((size_t)g->nvalues + 1, sizeof(ei__vstats));
  c->lo = ei__calloc((size_t)g->nvalues + 1, sizeof(float));
  c->hi = ei__calloc((size_t)g->nvalues + 1, sizeof(float));
  c->has_range = ei__calloc((size_t)g->nvalues + 1, 1);
  c->fn = ei__calloc((size_t)g->nvalues + 1, 1);
  if (!c->stats || !c->lo || !c->hi || !c->has_range || !c->fn) {
    ei__calib_free(c);
    return ei__err(err, errlen, EI_E_NOMEM, "out of memory");
  }
  for (int v = 0; v < g->nvalues; v++) {
    const ei__value *val = &g->values[v];
    c->stats[v].observe = !val->is_const && (val->is_input || val->producer >= 0);
    if (c->stats[v].observe) c->fn[v] = (uint8_t)consumer_fn(g, v);
  }
  *out = c;
  return EI_OK;
}

void ei__calib_free(ei__calib *c) {
  if (!c) return;
  if (c->stats && c->probe.g)
    for (int v = 0; v < c->probe.g->nvalues; v++) {
      ei__free(c->stats[v].pos);
      ei__free(c->stats[v].neg);
    }
  ei__free(c->stats);
  ei__free(c->slo);
  ei__free(c->shi);
  ei__free(c->srms);
  ei__free(c->accepted);
  ei__free(c->lo);
  ei__free(c->hi);
  ei__free(c->has_range);
  ei__free(c->fn);
  ei__bias_clear(c);
  ei__probe_free(&c->probe);
  ei__free(c);
}

int ei__calib_passes(const ei__calib *c) { return c->opt.method == EI_CALIB_MINMAX ? 1 : 2; } /* AUTO: 2 */

ei_status ei__calib_begin_pass(ei__calib *c, int pass, char *err, size_t errlen) {
  c->pass = pass;
  if (pass == 0) return EI_OK;
  c->samples[1] = 0; /* a new histogram pass (after ei__calib_use) starts over */
  const ei__graph *g = c->probe.g;
  for (int v = 0; v < g->nvalues; v++) {
    ei__vstats *st = &c->stats[v];
    if (!st->observe) continue;
    if (!st->seen) { /* not seen by the samples in use */
      ei__free(st->pos);
      ei__free(st->neg);
      st->pos = st->neg = NULL;
      continue;
    }
    st->amax = fmax(fabs(st->lo), fabs(st->hi));
    if (!st->pos) st->pos = ei__malloc(CALIB_BINS * sizeof(uint64_t));
    if (!st->neg) st->neg = ei__malloc(CALIB_BINS * sizeof(uint64_t));
    if (!st->pos || !st->neg) return ei__err(err, errlen, EI_E_NOMEM, "out of memory for calibration histograms");
    memset(st->pos, 0, CALIB_BINS * sizeof(uint64_t));
    memset(st->neg, 0, CALIB_BINS * sizeof(uint64_t));
  }
  return EI_OK;
}

/* ---- statistics of one run ---- */

typedef struct observe_job {
  ei__calib *c;
  const int *values;
} observe_job;

/* One sample's finite min, max and RMS of x (NAN for all three when nothing is finite). */
static void observe_sample(const float *x, int64_t n, float *lo, float *hi, float *rms) {
  float flo = INFINITY, fhi = -INFINITY;
  double ss = 0;
  int64_t cnt = 0;
  for (int64_t i = 0; i < n; i++) {
    float v = x[i];
    if (!isfinite(v)) continue;
    if (v < flo) flo = v;
    if (v > fhi) fhi = v;
    ss += (double)v * v;
    cnt++;
  }
  *lo = cnt ? flo : NAN;
  *hi = cnt ? fhi : NAN;
  *rms = cnt ? (float)sqrt(ss / (double)cnt) : NAN;
}

static void merge_minmax(ei__vstats *st, float lo, float hi) {
  if (!(lo <= hi)) return;
  if (!st->seen || lo < st->lo) st->lo = lo;
  if (!st->seen || hi > st->hi) st->hi = hi;
  st->seen = 1;
}

static void observe_hist(ei__vstats *st, const float *x, int64_t n) {
  if (!st->pos || !st->neg) return;
  if (!(st->amax > 0)) { /* every value was 0 */
    st->pos[0] += (uint64_t)n;
    return;
  }
  const float inv = (float)(CALIB_BINS / st->amax);
  for (int64_t i = 0; i < n; i++) {
    float v = x[i];
    if (!isfinite(v)) continue;
    float a = fabsf(v) * inv;
    int b = a < (float)(CALIB_BINS - 1) ? (int)a : CALIB_BINS - 1; /* values past amax (pass 0 saw less): last bin */
    if (v < 0) st->neg[b]++;
    else st->pos[b]++;
  }
}

static void observe_range(void *arg, int64_t begin, int64_t end) {
  observe_job *job = arg;
  ei__calib *c = job->c;
  for (int64_t k = begin; k < end; k++) {
    int v = job->values[k];
    ei__tensor t;
    if (!ei__probe_value(&c->probe, v, &t) || t.dtype != EI_FLOAT || !t.data) continue;
    int64_t n = ei__numel(&t);
    if (c->pass == 0) {
      float lo, hi, rms;
      observe_sample(t.data, n, &lo, &hi, &rms);
      merge_minmax(&c->stats[v], lo, hi);
      int64_t pc = t.rank >= 3 && t.dims[0] > 0 && t.dims[1] > 0 ? n / (t.dims[0] * t.dims[1]) : 1;
      if (pc > c->stats[v].per_channel) c->stats[v].per_channel = pc;
      size_t at = (size_t)c->samples[0] * (size_t)c->probe.g->nvalues + (size_t)v;
      c->slo[at] = lo;
      c->shi[at] = hi;
      c->srms[at] = rms;
    } else {
      observe_hist(&c->stats[v], t.data, n);
    }
  }
}

/* Room for the per-sample statistics of one more pass-0 sample. */
static int grow_samples(ei__calib *c) {
  if (c->samples[0] < c->samp_cap) return 1;
  int64_t cap = c->samp_cap ? c->samp_cap * 2 : 64;
  size_t nv = (size_t)c->probe.g->nvalues, bytes = sizeof(float) * nv * (size_t)cap + sizeof(float);
  float *lo = ei__malloc(bytes), *hi = ei__malloc(bytes), *rms = ei__malloc(bytes);
  if (!lo || !hi || !rms) {
    ei__free(lo);
    ei__free(hi);
    ei__free(rms);
    return 0;
  }
  size_t old = sizeof(float) * nv * (size_t)c->samp_cap;
  if (old) {
    memcpy(lo, c->slo, old);
    memcpy(hi, c->shi, old);
    memcpy(rms, c->srms, old);
  }
  ei__free(c->slo);
  ei__free(c->shi);
  ei__free(c->srms);
  c->slo = lo;
  c->shi = hi;
  c->srms = rms;
  c->samp_cap = cap;
  return 1;
}

ei_status ei__calib_add(ei__calib *c, int ninputs, const ei_tensor *inputs, char *err, size_t errlen) {
  if (c->pass == 0 && !grow_samples(c)) return ei__err(err, errlen, EI_E_NOMEM, "out of memory");
  ei_status s = ei__probe_run(&c->probe, ninputs, inputs, err, errlen);
  if (s) return s;
  const ei__graph *g = c->probe.g;
  if (c->pass == 0) /* unobserved values of this sample */
    for (int v = 0; v < g->nvalues; v++) {
      size_t at = (size_t)c->samples[0] * (size_t)g->nvalues + (size_t)v;
      c->slo[at] = c->shi[at] = c->srms[at] = NAN;
    }
  int *values = ei__calloc((size_t)g->nvalues + 1, sizeof(int)), n = 0;
  if (!values) return ei__err(err, errlen, EI_E_NOMEM, "out of memory");
  for (int v = 0; v < g->nvalues; v++)
    if (c->stats[v].observe && (c->pass == 0 || c->stats[v].pos)) values[n++] = v;
  observe_job job = {c, values};
  ei__parallel_for(c->probe.pool, n, 1, observe_range, &job);
  ei__free(values);
  c->samples[c->pass]++;
  return EI_OK;
}

/* ---- screening ---- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The share-quantile over values of |log2(rms_a / rms_b)| (values positive in both); 0 when none is. tmp: nvalues. */
static double scale_distance(const float *a, const float *b, int nv, double share, double *tmp) {
  int n = 0;
  for (int v = 0; v < nv; v++)
    if (a[v] > 0 && b[v] > 0 && isfinite(a[v]) && isfinite(b[v])) tmp[n++] = fabs(log2((double)a[v] / b[v]));
  if (!n) return 0;
  qsort(tmp, (size_t)n, sizeof *tmp, cmp_double);
  int k = (int)ceil(share * n) - 1;
  return tmp[k < 0 ? 0 : k >= n ? n - 1 : k];
}

ei_status ei__calib_screen(ei__calib *c, char *err, size_t errlen) {
  const ei__graph *g = c->probe.g;
  int ns = (int)c->samples[0], nv = g->nvalues;
  c->screened = 0;
  c->center = -1;
  ei__free(c->accepted);
  c->accepted = ei__calloc((size_t)ns + 1, 1);
  if (!c->accepted) return ei__err(err, errlen, EI_E_NOMEM, "out of memory");
  memset(c->accepted, 1, (size_t)ns);
  if (!(c->opt.screen > 1) || ns < 3) return EI_OK;
  double lim = log2(c->opt.screen), *d = ei__malloc(sizeof(double) * ((size_t)ns * ns + (size_t)nv + 1));
  if (!d) return ei__err(err, errlen, EI_E_NOMEM, "out of memory");
  double *tmp = d + (size_t)ns * ns;
  for (int p = 0; p < ns; p++) {
    d[(size_t)p * ns + p] = 0;
    for (int q = p + 1; q < ns; q++)
      d[(size_t)p * ns + q] = d[(size_t)q * ns + p] =
          scale_distance(c->srms + (size_t)p * nv, c->srms + (size_t)q * nv, nv, EI_SCREEN_SHARE, tmp);
  }
  /* the centre: the sample with the most neighbours within the limit (then the smallest total distance) */
  int best = 0, best_n = -1;
  double best_sum = INFINITY;
  for (int p = 0; p < ns; p++) {
    int cnt = 0;
    double sum = 0;
    for (int q = 0; q < ns; q++) {
      cnt += d[(size_t)p * ns + q] <= lim;
      sum += d[(size_t)p * ns + q];
    }
    if (cnt > best_n || (cnt == best_n && sum < best_sum)) best = p, best_n = cnt, best_sum = sum;
  }
  c->center = best;
  for (int q = 0; q < ns; q++) {
    c->accepted[q] = d[(size_t)best * ns + q] <= lim;
    c->screened += !c->accepted[q];
  }
  ei__free(d);
  return ei__calib_use(c, c->accepted, err, errlen);
}

ei_status ei__calib_use(ei__calib *c, const uint8_t *use, char *err, size_t errlen) {
  int ns = (int)c->samples[0], nv = c->probe.g->nvalues;
  if (!c->accepted && !(c->accepted = ei__calloc((size_t)ns + 1, 1)))
    return ei__err(err, errlen, EI_E_NOMEM, "out of memory");
  if (use != c->accepted) memcpy(c->accepted, use, (size_t)ns);
  for (int v = 0; v < nv; v++) {
    ei__vstats *st = &c->stats[v];
    if (!st->observe) continue;
    st->seen = 0;
    for (int q = 0; q < ns; q++)
      if (c->accepted[q]) merge_minmax(st, c->slo[(size_t)q * nv + v], c->shi[(size_t)q * nv + v]);
  }
  return EI_OK;
}

int ei__calib_accepted(const ei__calib *c, int sample) {
  return !c->accepted || sample < 0 || sample >= c->samples[0] || c->accepted[sample];
}

double ei__calib_regime_distance(const ei__calib *c, const ei__probe *p) {
  if (c->center < 0 || !c->srms) return 0;
  const ei__graph *g = c->probe.g;
  int nv = g->nvalues;
  float *rms = ei__malloc(sizeof(float) * (size_t)nv + 1);
  double *tmp = ei__malloc(sizeof(double) * (size_t)nv + 1);
  double dist = 0;
  if (rms && tmp) {
    for (int v = 0; v < nv; v++) {
      ei__tensor t;
      rms[v] = NAN;
      if (!c->stats[v].observe || !ei__probe_value(p, v, &t) || t.dtype != EI_FLOAT || !t.data) continue;
      float lo, hi;
      observe_sample(t.data, ei__numel(&t), &lo, &hi, &rms[v]);
    }
    dist = scale_distance(rms, c->srms + (size_t)c->center * nv, nv, EI_SCREEN_SHARE, tmp);
  }
  ei__free(rms);
  ei__free(tmp);
  return dist;
}

/* ---- range estimators ---- */

void ei__calib_percentile(const uint64_t *pos, const uint64_t *neg, int bins, double amax, double percentile,
                          int symmetric, double *lo, double *hi) {
  double total = 0, width = amax / bins;
  for (int i = 0; i < bins; i++) total += (double)pos[i] + (double)neg[i];
  *lo = *hi = 0;
  if (!(total > 0) || !(amax > 0)) return;
  if (symmetric) {
    /* the smallest t (a bin's upper edge) with P(|x| <= t) >= percentile */
    double want = total * percentile / 100.0, cum = 0;
    int i = 0;
    for (; i < bins; i++) {
      cum += (double)pos[i] + (double)neg[i];
      if (cum >= want) break;
    }
    double t = (i < bins ? i + 1 : bins) * width;
    *lo = -t;
    *hi = t;
    return;
  }
  /* each tail may hold (100 - p) / 2 percent of the values */
  double cut = total * (100.0 - percentile) / 200.0, cum = 0;
  int i = bins - 1;
  for (; i >= 0; i--) {
    if (cum + (double)pos[i] > cut) break;
    cum += (double)pos[i];
  }
  *hi = i >= 0 ? (i + 1) * width : 0;
  cum = 0;
  for (i = bins - 1; i >= 0; i--) {
    if (cum + (double)neg[i] > cut) break;
    cum += (double)neg[i];
  }
  *lo = i >= 0 ? -(i + 1) * width : 0;
}

/* Normalizes h (n entries) and moves eps of mass onto its zero entries (so the KL divergence is finite). Returns 0
 * if h is all zeros. */
static int smooth(double *h, int n) {
  const double eps = 1e-4;
  double sum = 0;
  int zeros = 0;
  for (int i = 0; i < n; i++) {
    sum += h[i];
    zeros += h[i] == 0;
  }
  if (!(sum > 0) || zeros == n) return 0;
  double eps1 = eps * zeros / (n - zeros);
  for (int i = 0; i < n; i++) h[i] = h[i] == 0 ? eps : h[i] / sum - eps1;
  return 1;
}

/* KL(P || Q) for the threshold at bin i: P is hist[0, i) with everything above clipped into its last bin, Q is
 * hist[0, i) merged into `levels` levels and spread back evenly over each level's non-empty bins. INFINITY when
 * either is empty. p and q are scratch of i entries. */
static double kl_at(const double *hist, int bins, int i, int levels, double *p, double *q) {
  double outside = 0;
  for (int k = i; k < bins; k++) outside += hist[k];
  for (int k = 0; k < i; k++) p[k] = hist[k];
  p[i - 1] += outside;
  int merged = i / levels;
  for (int j = 0; j < levels; j++) {
    int start = j * merged, stop = j == levels - 1 ? i : start + merged;
    double sum = 0;
    int nonzero = 0;
    for (int k = start; k < stop; k++) {
      sum += hist[k];
      nonzero += hist[k] != 0;
    }
    for (int k = start; k < stop; k++) q[k] = hist[k] != 0 ? sum / nonzero : 0;
  }
  if (!smooth(p, i) || !smooth(q, i)) return INFINITY;
  double kl = 0;
  for (int k = 0; k < i; k++) kl += p[k] * log(p[k] / q[k]);
  return kl;
}

double ei__calib_entropy_threshold(const uint64_t *pos, const uint64_t *neg, int bins, double amax, int levels) {
  if (bins <= levels || levels < 1) return amax;
  double *hist = ei__malloc(sizeof(double) * (size_t)bins * 3);
  if (!hist) return amax;
  double *p = hist + bins, *q = hist + 2 * (size_t)bins;
  for (int i = 0; i < bins; i++) hist[i] = (double)pos[i] + (double)neg[i];
  hist[0] = hist[1]; /* the exact zeros (after a Relu: half the values) would dominate the distribution */
  /* candidate thresholds every `stride` bins from `levels` up to `bins` (about 256 of them: each KL is O(bins)) */
  int stride = (bins - levels) / 256 > 1 ? (bins - levels) / 256 : 1, best = bins;
  double best_kl = INFINITY;
  for (int i = levels;; i = i + stride < bins ? i + stride : bins) {
    double kl = kl_at(hist, bins, i, levels, p, q);
    if (kl < best_kl) {
      best_kl = kl;
      best = i;
    }
    if (i == bins) break;
  }
  ei__free(hist);
  return best * (amax / bins);
}

/* Suffix sums over one side of the histogram: n[i], s1[i], s2[i] = count, sum of x, sum of x^2 of bins >= i (bin
 * centres); entries 0..bins. */
typedef struct tail_sums {
  double *n, *s1, *s2;
} tail_sums;

static int tail_sums_make(tail_sums *t, const uint64_t *h, int bins, double width) {
  t->n = ei__malloc(sizeof(double) * 3 * ((size_t)bins + 1));
  if (!t->n) return 0;
  t->s1 = t->n + bins + 1;
  t->s2 = t->s1 + bins + 1;
  t->n[bins] = t->s1[bins] = t->s2[bins] = 0;
  for (int i = bins - 1; i >= 0; i--) {
    double c = (i + 0.5) * width, k = (double)h[i];
    t->n[i] = t->n[i + 1] + k;
    t->s1[i] = t->s1[i + 1] + k * c;
    t->s2[i] = t->s2[i + 1] + k * c * c;
  }
  return 1;
}

/* Squared error of clipping the bins >= j to the bound j * width. */
static double clip_error(const tail_sums *t, int j, double width) {
  double b = j * width;
  double e = t->s2[j] - 2 * b * t->s1[j] + b * b * t->n[j];
  return e > 0 ? e : 0;
}

/* The next candidate bound after bin edge j: every stride bins, the last one at bins; bins + 1 ends. */
static int next_bound(int j, int stride, int bins) { return j >= bins ? bins + 1 : j + stride > bins ? bins : j + stride; }

void ei__calib_mse_range(const uint64_t *pos, const uint64_t *neg, int bins, double amax, int symmetric, double *lo,
                         double *hi) {
  *lo = -amax;
  *hi = amax;
  if (bins < 2 || !(amax > 0)) return;
  double width = amax / bins;
  tail_sums tp, tn;
  if (!tail_sums_make(&tp, pos, bins, width)) return;
  if (!tail_sums_make(&tn, neg, bins, width)) {
    ei__free(tp.n);
    return;
  }
  /* values in bin 0 are (nearly) exact zeros: no rounding error */
  double total = tp.n[0] + tn.n[0], zeros = (double)pos[0] + (double)neg[0];
  int stride = bins > 512 ? bins / 512 : 1, has_neg = tn.n[0] > 0, has_pos = tp.n[0] > 0;
  double best = INFINITY;
  int bp = bins, bn = has_neg ? bins : 0;
  if (symmetric) {
    for (int j = stride; j <= bins; j = next_bound(j, stride, bins)) {
      double step = j * width / 127.0, in = total - zeros - tp.n[j] - tn.n[j];
      double e = in * step * step / 12.0 + clip_error(&tp, j, width) + clip_error(&tn, j, width);
      if (e < best) best = e, bp = bn = j;
    }
  } else {
    /* a side without values keeps its bound at 0 */
    for (int jp = has_pos ? stride : 0; jp <= bins; jp = has_pos ? next_bound(jp, stride, bins) : bins + 1)
      for (int jn = has_neg ? stride : 0; jn <= bins; jn = has_neg ? next_bound(jn, stride, bins) : bins + 1) {
        if (jp + jn == 0) continue;
        double step = (jp + jn) * width / 255.0, in = total - zeros - tp.n[jp] - tn.n[jn];
        double e = in * step * step / 12.0 + clip_error(&tp, jp, width) + clip_error(&tn, jn, width);
        if (e < best) best = e, bp = jp, bn = jn;
      }
  }
  ei__free(tp.n);
  ei__free(tn.n);
  *hi = bp * width;
  *lo = -bn * width;
}

/* ---- ranges for what the consumers compute ---- */

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

/* f(x) and f'(x) of a consumer function. */
static void fn_eval(int fn, double x, double *f, double *df) {
  switch (fn) {
    case EI_FN_SIGMOID: {
      double s = sigmoid(x);
      *f = s;
      *df = s * (1 - s);
      return;
    }
    case EI_FN_SILU: {
      double s = sigmoid(x);
      *f = x * s;
      *df = s * (1 + x * (1 - s));
      return;
    }
    case EI_FN_HARDSWISH:
      *f = x <= -3 ? 0 : x >= 3 ? x : x * (x + 3) / 6;
      *df = x <= -3 ? 0 : x >= 3 ? 1 : x / 3 + 0.5;
      return;
    default:
      *f = x;
      *df = 1;
  }
}

/* One side of the histogram (sign: +1 or -1) through fn: d[j] = sum over bins k < j of count * f'(x)^2 (inside a bound
 * at bin edge j), and suffix sums over bins >= j of count, count * f(x), count * f(x)^2 (clipped by it). */
typedef struct fn_side {
  double *d, *n, *s1, *s2;
} fn_side;

static int fn_side_make(fn_side *t, const uint64_t *h, int bins, double width, double sign, int fn) {
  t->d = ei__malloc(sizeof(double) * 4 * ((size_t)bins + 1));
  if (!t->d) return 0;
  t->n = t->d + bins + 1;
  t->s1 = t->n + bins + 1;
  t->s2 = t->s1 + bins + 1;
  t->d[0] = 0;
  t->n[bins] = t->s1[bins] = t->s2[bins] = 0;
  for (int i = 0; i < bins; i++) {
    double f, df;
    fn_eval(fn, sign * (i + 0.5) * width, &f, &df);
    t->d[i + 1] = t->d[i] + (double)h[i] * df * df;
  }
  for (int i = bins - 1; i >= 0; i--) {
    double f, df, k = (double)h[i];
    fn_eval(fn, sign * (i + 0.5) * width, &f, &df);
    t->n[i] = t->n[i + 1] + k;
    t->s1[i] = t->s1[i + 1] + k * f;
    t->s2[i] = t->s2[i + 1] + k * f * f;
  }
  return 1;
}

/* Squared error, through fn, of clipping the bins >= j of a side to its bound j * width. */
static double fn_clip_error(const fn_side *t, int j, double width, double sign, int fn) {
  double fb, df;
  fn_eval(fn, sign * j * width, &fb, &df);
  double e = t->s2[j] - 2 * fb * t->s1[j] + fb * fb * t->n[j];
  return e > 0 ? e : 0;
}

void ei__calib_fn_range(const uint64_t *pos, const uint64_t *neg, int bins, double amax, int symmetric, int fn,
                        double *lo, double *hi) {
  *lo = -amax;
  *hi = amax;
  if (bins < 2 || !(amax > 0)) return;
  double width = amax / bins;
  fn_side tp, tn;
  if (!fn_side_make(&tp, pos, bins, width, 1, fn)) return;
  if (!fn_side_make(&tn, neg, bins, width, -1, fn)) {
    ei__free(tp.d);
    return;
  }
  int stride = bins > 512 ? bins / 512 : 1, has_neg = tn.n[0] > 0, has_pos = tp.n[0] > 0;
  double best = INFINITY;
  int bp = bins, bn = has_neg ? bins : 0;
  /* clip errors per candidate bound, once */
  double *cp = ei__malloc(sizeof(double) * 2 * ((size_t)bins + 2));
  if (cp) {
    double *cn = cp + bins + 2;
    for (int j = 0; j <= bins; j++) {
      cp[j] = fn_clip_error(&tp, j, width, 1, fn);
      cn[j] = fn_clip_error(&tn, j, width, -1, fn);
    }
    if (symmetric) {
      for (int j = stride; j <= bins; j = next_bound(j, stride, bins)) {
        double step = j * width / 127.0;
        double e = step * step / 12.0 * (tp.d[j] + tn.d[j]) + cp[j] + cn[j];
        if (e < best) best = e, bp = bn = j;
      }
    } else {
      for (int jp = has_pos ? stride : 0; jp <= bins; jp = has_pos ? next_bound(jp, stride, bins) : bins + 1)
        for (int jn = has_neg ? stride : 0; jn <= bins; jn = has_neg ? next_bound(jn, stride, bins) : bins + 1) {
          if (jp + jn == 0) continue;
          double step = (jp + jn) * width / 255.0;
          double e = step * step / 12.0 * (tp.d[jp] + tn.d[jn]) + cp[jp] + cn[jn];
          if (e < best) best = e, bp = jp, bn = jn;
        }
    }
  }
  ei__free(cp);
  ei__free(tp.d);
  ei__free(tn.d);
  *hi = bp * width;
  *lo = -bn * width;
}

/* What the consumers of v compute from it, when that is one function: EI_FN_SIGMOID (every consumer a Sigmoid),
 * EI_FN_SILU (Sigmoid(v) and Mul(v, Sigmoid(v)): x * sigmoid(x)), EI_FN_HARDSWISH (every consumer a HardSwish);
 * else EI_FN_NONE. */
static int consumer_fn(const ei__graph *g, int v) {
  if (g->values[v].is_output) return EI_FN_NONE;
  int nsig = 0, nmul = 0, nhs = 0, other = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const ei__node *n = &g->nodes[i];
    int uses = 0;
    for (int k = 0; k < n->nin; k++) uses += n->in[k] == v;
    if (!uses || n->dead) continue;
    int plain = !n->domain[0] && n->act.kind == EI_ACT_NONE;
    if (plain && !strcmp(n->op_type, "Sigmoid")) {
      nsig++;
    } else if (plain && !strcmp(n->op_type, "HardSwish")) {
      nhs++;
    } else if (plain && !strcmp(n->op_type, "Mul") && n->nin == 2 && uses == 1) {
      int o = n->in[0] == v ? n->in[1] : n->in[0], p = o >= 0 ? g->values[o].producer : -1;
      const ei__node *s = p >= 0 ? &g->nodes[p] : NULL;
      if (s && !s->domain[0] && !strcmp(s->op_type, "Sigmoid") && s->act.kind == EI_ACT_NONE && s->in[0] == v) nmul++;
      else other++;
    } else {
      other++;
    }
  }
  if (other) return EI_FN_NONE;
  if (nhs) return nsig || nmul ? EI_FN_NONE : EI_FN_HARDSWISH;
  if (nsig) return nmul ? EI_FN_SILU : EI_FN_SIGMOID;
  return EI_FN_NONE;
}

static void finish_range(void *arg, int64_t begin, int64_t end) {
  ei__calib *c = arg;
  int hist = c->opt.method != EI_CALIB_MINMAX && c->opt.method != EI_CALIB_AUTO && c->samples[1] > 0;
  for (int64_t v = begin; v < end; v++) {
    const ei__vstats *st = &c->stats[v];
    c->has_range[v] = 0;
    if (!st->observe || !st->seen) continue;
    double lo = st->lo, hi = st->hi;
    if (st->per_channel <= 1 && c->opt.vector_margin > 1) { /* a vector: no clipping estimator, a margin */
      lo *= c->opt.vector_margin;
      hi *= c->opt.vector_margin;
    } else if (hist && st->pos && st->amax > 0) {
      double tlo, thi;
      if (c->opt.func_ranges && c->fn[v]) {
        ei__calib_fn_range(st->pos, st->neg, CALIB_BINS, st->amax, c->opt.act_s8, c->fn[v], &tlo, &thi);
      } else if (c->opt.method == EI_CALIB_PERCENTILE) {
        ei__calib_percentile(st->pos, st->neg, CALIB_BINS, st->amax, c->opt.percentile, c->opt.act_s8, &tlo, &thi);
      } else if (c->opt.method == EI_CALIB_MSE) {
        ei__calib_mse_range(st->pos, st->neg, CALIB_BINS, st->amax, c->opt.act_s8, &tlo, &thi);
      } else {
        /* uint8 keeps all 256 levels for a tensor without negative values (zero point 0) */
        int levels = !c->opt.act_s8 && st->lo >= 0 ? 2 * CALIB_LEVELS : CALIB_LEVELS;
        double t = ei__calib_entropy_threshold(st->pos, st->neg, CALIB_BINS, st->amax, levels);
        tlo = -t;
        thi = t;
      }
      if (tlo > lo) lo = tlo;
      if (thi < hi) hi = thi;
      if (lo > hi) lo = hi = 0;
    }
    c->lo[v] = (float)lo;
    c->hi[v] = (float)hi;
    c->has_range[v] = 1;
  }
}

ei_status ei__calib_finish(ei__calib *c, char *err, size_t errlen) {
  (void)err;
  (void)errlen;
  ei__bias_clear(c);
  ei__parallel_for(c->probe.pool, c->probe.g->nvalues, 1, finish_range, c);
  return EI_OK;
}
