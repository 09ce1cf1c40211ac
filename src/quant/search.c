/* The searches of `edgeinfer quantize` on calibration samples, run on simulation models (ei__build_options.simulate:
 * the QDQ graph with float weights holding their dequantized values, so our float kernels run it at float speed
 * and every activation is rounded as in the integer model):
 *   - the calibration method (--method auto): every range estimator is tried (with the bias correction, when on,
 *     fitted on the samples its ranges come from) and the one whose model has the best mean output cosine
 *     similarity to the float model (then SQNR) is kept;
 *   - the float fallback (--target-cosine): quantized tensors are measured one at a time in graph order (each left
 *     in float, with its producer and consumers, while everything else is quantized: the gain in output SQNR on
 *     the first EI_SENS_SAMPLES samples), until EI_SENS_PATIENCE tensors in a row gained less than a quarter of the
 *     best gain so far (the errors of deep random-weight networks grow with depth, so the sensitive tensors come
 *     first); the most sensitive ones are then left in float one after the other until the mean cosine similarity
 *     on the samples reaches the target or --max-float tensors are float.
 * Scores compare the first graph output: SQNR over every sample, and the mean per-row cosine similarity. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "onnx/onnx.h"
#include "quant/quantize.h"

#define EI_SENS_SAMPLES 4  /* samples scored per tensor by the fallback's sensitivity pass */
#define EI_SENS_PATIENCE 12 /* tensors in a row with a small gain that end it */

ei_status ei__qsearch_init(ei__qsearch *s, ei__calib *c, const ei_tensor *samples, int n, ei_threadpool *pool,
                           char *err, size_t errlen) {
  memset(s, 0, sizeof *s);
  s->c = c;
  s->x = samples;
  s->n = n;
  s->pool = pool;
  s->ref = ei__calloc((size_t)n + 1, sizeof(float *));
  s->nref = ei__calloc((size_t)n + 1, sizeof(int64_t));
  if (!s->ref || !s->nref) {
    ei__qsearch_free(s);
    return ei__err(err, errlen, EI_E_NOMEM, "out of memory");
  }
  const ei__graph *g = c->probe.g;
  if (!g->noutputs) return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "the model has no output");
  for (int k = 0; k < n; k++) {
    ei_status st = ei__probe_run(&c->probe, 1, &samples[k], err, errlen);
    if (st) return st;
    ei__tensor t;
    if (!ei__probe_value(&c->probe, g->outputs[0], &t) || t.dtype != EI_FLOAT)
      return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "the model's first output is not a float tensor");
    int64_t m = ei__numel(&t);
    s->cols = t.rank ? t.dims[t.rank - 1] : 1;
    if (!(s->ref[k] = ei__malloc(sizeof(float) * (size_t)(m + 1)))) return ei__err(err, errlen, EI_E_NOMEM, "out of memory");
    memcpy(s->ref[k], t.data, sizeof(float) * (size_t)m);
    s->nref[k] = m;
  }
  return EI_OK;
}

void ei__qsearch_free(ei__qsearch *s) {
  for (int k = 0; s->ref && k < s->n; k++) ei__free(s->ref[k]);
  ei__free(s->ref);
  ei__free(s->nref);
  memset(s, 0, sizeof *s);
}

/* Accumulates one sample's output y against the reference r (m values, rows of cols). */
static void score_add(const float *r, const float *y, int64_t m, int64_t cols, double *sig, double *noise,
                      double *cos_sum, int64_t *rows) {
  if (cols <= 0) cols = m ? m : 1;
  for (int64_t r0 = 0; r0 + cols <= m; r0 += cols) {
    double dot = 0, xx = 0, yy = 0;
    for (int64_t k = r0; k < r0 + cols; k++) {
      double a = r[k], b = y[k];
      dot += a * b;
      xx += a * a;
      yy += b * b;
      *noise += (a - b) * (a - b);
    }
    *sig += xx;
    *cos_sum += xx > 0 && yy > 0 ? dot / sqrt(xx * yy) : (xx == yy ? 1 : 0);
    (*rows)++;
  }
}

static double db(double sig, double noise) {
  if (noise == 0) return INFINITY;
  if (sig == 0) return -INFINITY;
  return 10.0 * log10(sig / noise);
}

ei_status ei__qsearch_score(ei__qsearch *s, const uint8_t *keep_float, ei__qscore *out, char *err, size_t errlen) {
  out->cosine = NAN;
  out->sqnr = NAN;
  ei__build_options bo = {.simulate = 1, .keep_float = keep_float};
  ei__qmodel m;
  ei_status st = ei__quantize_build_ex(s->c, &bo, &m, NULL, NULL, err, errlen);
  if (st) return st;
  ei__prepare_options po = {.optimize = 1, .fuse_acts = ~0u};
  ei__probe p;
  st = ei__probe_load(&p, m.bytes, m.size, NULL, &po, s->pool, s->c->opt.max_arena, err, errlen);
  ei__qmodel_free(&m);
  if (st) return st;
  p.outputs_only = 1;
  double sig = 0, noise = 0, cos_sum = 0;
  int64_t rows = 0;
  for (int k = 0; k < s->n && !st; k++) {
    if ((st = ei__probe_run(&p, 1, &s->x[k], err, errlen))) break;
    ei__tensor t;
    if (!p.g->noutputs || !ei__probe_value(&p, p.g->outputs[0], &t) || t.dtype != EI_FLOAT ||
        ei__numel(&t) != s->nref[k]) {
      st = ei__err(err, errlen, EI_E_INTERNAL, "the simulation model's output differs from the float model's");
      break;
    }
    score_add(s->ref[k], t.data, s->nref[k], s->cols, &sig, &noise, &cos_sum, &rows);
  }
  ei__probe_free(&p);
  if (st) return st;
  out->sqnr = db(sig, noise);
  out->cosine = rows ? cos_sum / (double)rows : NAN;
  return EI_OK;
}

/* ---- the calibration method ---- */

static void set_method(ei__calib *c, ei__calib_method m, double p) {
  c->opt.method = m;
  c->opt.percentile = p;
}

ei_status ei__qsearch_method(ei__qsearch *s, const uint8_t *keep_float, ei__qtrial *trials, int *ntrials, char *err,
                             size_t errlen) {
  static const struct {
    ei__calib_method m;
    double p;
  } cand[] = {{EI_CALIB_MINMAX, 0}, {EI_CALIB_PERCENTILE, 99.9}, {EI_CALIB_PERCENTILE, 99.99},
              {EI_CALIB_PERCENTILE, 99.999}, {EI_CALIB_ENTROPY, 0}, {EI_CALIB_MSE, 0}};
  int n = (int)(sizeof cand / sizeof cand[0]), best = -1;
  ei__calib *c = s->c;
  if (c->samples[1] == 0) n = 1; /* no histograms: minmax only */
  for (int i = 0; i < n; i++) {
    set_method(c, cand[i].m, cand[i].p);
    ei_status st = ei__calib_finish(c, err, errlen);
    if (!st) st = ei__qsearch_score(s, keep_float, &trials[i].score_off, err, errlen);
    trials[i].score = trials[i].score_off;
    if (!st && s->bias) {
      st = ei__bias_correct(s->bias, keep_float, NULL, NULL, NULL, err, errlen);
      if (!st) st = ei__qsearch_score(s, keep_float, &trials[i].score, err, errlen);
    }
    if (st) return st;
    trials[i].method = cand[i].m;
    trials[i].percentile = cand[i].p;
    if (best < 0 || trials[i].score.cosine > trials[best].score.cosine ||
        (trials[i].score.cosine == trials[best].score.cosine && trials[i].score.sqnr > trials[best].score.sqnr))
      best = i;
  }
  *ntrials = n;
  set_method(c, cand[best].m, cand[best].p);
  return ei__calib_finish(c, err, errlen);
}

/* ---- float fallback ---- */

void ei__qsearch_float_tensor(const ei__graph *g, int v, uint8_t *keep_float) {
  if (v < 0 || v >= g->nvalues) return;
  if (g->values[v].producer >= 0) keep_float[g->values[v].producer] = 1;
  for (int i = 0; i < g->nnodes; i++)
    for (int k = 0; k < g->nodes[i].nin; k++)
      if (g->nodes[i].in[k] == v) keep_float[i] = 1;
}

typedef struct gain {
  int value;
  double sqnr;
} gain;

static int by_sqnr_desc(const void *a, const void *b) {
  double x = ((const gain *)a)->sqnr, y = ((const gain *)b)->sqnr;
  return (x < y) - (x > y);
}

ei_status ei__qsearch_sensitivity(ei__qsearch *s, const uint8_t *keep_float, int full, ei__qsens **out, int *nout,
                                  void (*progress)(void *ctx, int i, int n), void *ctx, char *err, size_t errlen) {
  *out = NULL;
  *nout = 0;
  const ei__graph *g = s->c->probe.g;
  /* the candidates: the tensors the model quantizes, in graph order */
  ei__build_options bo = {.simulate = 1, .keep_float = keep_float};
  ei__qmodel m;
  ei_status st = ei__quantize_build_ex(s->c, &bo, &m, NULL, NULL, err, errlen);
  if (st) return st;
  int n = m.ntensors, tested = 0;
  ei__qsens *r = ei__calloc((size_t)n + 1, sizeof *r);
  uint8_t *kf = ei__calloc((size_t)g->nnodes + 1, 1);
  if (!r || !kf) {
    ei__qmodel_free(&m);
    ei__free(r);
    ei__free(kf);
    return ei__err(err, errlen, EI_E_NOMEM, "out of memory");
  }
  for (int l = 0; l < n; l++) r[l].value = m.tensors[l];
  ei__qmodel_free(&m);
  int nsave = s->n;
  if (!full && s->n > EI_SENS_SAMPLES) s->n = EI_SENS_SAMPLES;
  ei__qscore base;
  st = ei__qsearch_score(s, keep_float, &base, err, errlen);
  double best = 0;
  int weak = 0;
  for (int l = 0; l < n && !st; l++) {
    if (keep_float) memcpy(kf, keep_float, (size_t)g->nnodes);
    else memset(kf, 0, (size_t)g->nnodes);
    ei__qsearch_float_tensor(g, r[l].value, kf);
    st = ei__qsearch_score(s, kf, &r[l].score, err, errlen);
    tested = l + 1;
    if (progress) progress(ctx, l + 1, n);
    double gain = r[l].score.sqnr - base.sqnr;
    weak = gain < 0.25 * best ? weak + 1 : 0;
    if (gain > best) best = gain;
    if (!full && weak >= EI_SENS_PATIENCE) break;
  }
  s->n = nsave;
  ei__free(kf);
  if (st) {
    ei__free(r);
    return st;
  }
  if (progress && tested < n) progress(ctx, n, n);
  *out = r;
  *nout = tested;
  return EI_OK;
}

ei_status ei__qsearch_fallback(ei__qsearch *s, double target, int max_float, uint8_t *keep_float, ei__qscore *score,
                               int *nfloat, void (*progress)(void *ctx, int i, int n), void *ctx, char *err,
                               size_t errlen) {
  *nfloat = 0;
  ei_status st = ei__qsearch_score(s, keep_float, score, err, errlen);
  if (st || score->cosine >= target || max_float <= 0) return st;
  ei__qsens *sens;
  int n;
  if ((st = ei__qsearch_sensitivity(s, keep_float, 0, &sens, &n, progress, ctx, err, errlen))) return st;
  gain *order = ei__calloc((size_t)n + 1, sizeof *order);
  if (!order) {
    ei__free(sens);
    return ei__err(err, errlen, EI_E_NOMEM, "out of memory");
  }
  for (int l = 0; l < n; l++) order[l] = (gain){sens[l].value, sens[l].score.sqnr};
  ei__free(sens);
  qsort(order, (size_t)n, sizeof *order, by_sqnr_desc);
  for (int l = 0; l < n && *nfloat < max_float && score->cosine < target; l++) {
    ei__qsearch_float_tensor(s->c->probe.g, order[l].value, keep_float);
    (*nfloat)++;
    if ((st = ei__qsearch_score(s, keep_float, score, err, errlen))) break;
  }
  ei__free(order);
  return st;
}
