/* Internal API of `edgeinfer quantize`, the post-training static quantizer:
 *   calibrate.c  probes (a graph planned with every intermediate tensor kept) and per-tensor calibration
 *                statistics: min/max, histograms for the percentile, entropy (KL) and MSE methods, per-sample
 *                RMS for the screening of samples whose activation scale is off the main group;
 *   quantize.c   the QDQ model writer (ONNX Runtime's quantize_static QDQ layout, from our optimized IR; or a
 *                simulation model with dequantized float weights), the atomic file write, and the
 *                float-vs-quantized comparison (per-layer SQNR, output cosine, top-1, distinct classes);
 *   search.c     searches on calibration samples with simulation models: the calibration method (auto) and
 *                the float fallback (per-tensor sensitivity);
 *   bias.c       empirical bias correction of the quantized Conv/Gemm layers (simulation models).
 * The CLI front end is tools/cmd_quantize.c. */
#ifndef EI_QUANT_QUANTIZE_H
#define EI_QUANT_QUANTIZE_H

#include "graph/graph.h"

/* AUTO: every other method is tried (percentile at 99.9, 99.99 and 99.999) and the one whose quantized model has the
 * best output SQNR on calibration samples is kept (search.c). */
typedef enum ei__calib_method {
  EI_CALIB_MINMAX = 0, EI_CALIB_PERCENTILE, EI_CALIB_ENTROPY, EI_CALIB_MSE, EI_CALIB_AUTO
} ei__calib_method;

typedef struct ei__quant_options {
  ei__calib_method method;
  double percentile;          /* percentile method: the share of values kept, in percent (default 99.99) */
  int per_tensor;             /* weights per tensor (default: per output channel) */
  int act_s8;                 /* activations symmetric int8 (default: asymmetric uint8) */
  const char *const *exclude; /* names of nodes left in float */
  int nexclude;
  size_t max_arena;           /* planning limit for the probes (default 4 GiB) */
  double vector_margin;       /* activations with one value per channel and sample (pooled features, SE vectors,
                               * logits): min/max widened by this factor whatever the method (default 1.25, chosen by
                               * 2-fold cross-validation on tests/calib-photos.txt with bias correction; 1: off) */
  double screen;              /* > 1: calibration keeps the main group of samples whose activation scales agree
                               * within this factor (see ei__calib_screen); 0: every sample */
  int bias_correction;        /* empirical bias correction of quantized Conv/Gemm layers (bias.c; default on) */
  int func_ranges;            /* histogram methods: tensors read only by one function (sigmoid, x * sigmoid(x),
                               * HardSwish) get the range that minimizes the error of that function's output
                               * (ei__calib_fn_range) instead of the method's (default off: no gain measured) */
} ei__quant_options;
void ei__quant_options_init(ei__quant_options *o);
const char *ei__calib_method_name(ei__calib_method m);

/* ---- probes (calibrate.c) ---- */

/* A prepared graph with a keep-everything plan: after ei__probe_run every value can be read. */
typedef struct ei__probe {
  ei__graph *g;
  ei__plan *plan;
  void *arena;
  size_t arena_cap;
  ei_threadpool *pool;
  size_t max_arena;
  int outputs_only;   /* set after loading: plan with memory reuse (only the graph outputs can be read) */
} ei__probe;

/* Imports and prepares a model from memory (base_dir resolves external data; may be NULL). */
ei_status ei__probe_load(ei__probe *p, const void *data, size_t size, const char *base_dir,
                         const ei__prepare_options *po, ei_threadpool *pool, size_t max_arena, char *err,
                         size_t errlen);
/* Runs the graph on inputs (model order), planning first when the shapes are new. */
ei_status ei__probe_run(ei__probe *p, int ninputs, const ei_tensor *inputs, char *err, size_t errlen);
/* Value v after the last run: dtype, rank, dims and data. Returns 0 if the run did not produce it. */
int ei__probe_value(const ei__probe *p, int v, ei__tensor *t);
void ei__probe_free(ei__probe *p);

/* ---- calibration (calibrate.c) ---- */

typedef struct ei__vstats ei__vstats; /* per-value statistics (private to calibrate.c) */

typedef struct ei__calib {
  ei__probe probe;        /* the float model: optimized, constants kept; only Relu/Clip fused (u8) or nothing (s8) */
  ei__quant_options opt;
  ei__vstats *stats;      /* per value of probe.g */
  int pass;               /* 0: min/max; 1: histograms (percentile, entropy) */
  int64_t samples[2];     /* samples seen per pass */
  float *lo, *hi;         /* calibrated range per value (after ei__calib_finish) */
  uint8_t *has_range;
  uint8_t *fn;            /* per value: EI_FN_* of its consumers */
  /* per pass-0 sample (samples[0] of them, room for samp_cap), per value: min, max, RMS (NAN: not observed) */
  float *slo, *shi, *srms;
  int64_t samp_cap;
  uint8_t *accepted;      /* per pass-0 sample, after ei__calib_screen (NULL: all) */
  int center, screened;   /* the screening's reference sample (-1: none) and how many samples it dropped */
  float **bias_delta;     /* per node of probe.g: per output channel, added to the float bias of a quantized
                           * Conv/Gemm before it is quantized to int32 (bias.c); NULL: none. ei__calib_finish (new
                           * ranges) clears them. */
} ei__calib;

/* Screening: the distance between two samples is the EI_SCREEN_SHARE quantile, over the observed activations, of
 * |log2(RMS ratio)|; with opt.screen = F > 1, the centre is the sample with the most others within log2(F), and
 * only the samples within log2(F) of it are kept: models whose activations grow with some inputs by orders of
 * magnitude (random-weight networks on photos with large flat areas) cannot share one 8-bit range per tensor
 * between both groups. */
#define EI_SCREEN_SHARE 0.9

/* Loads the float model at path for calibration. */
ei_status ei__calib_create(const char *path, const ei__quant_options *o, ei_threadpool *pool, ei__calib **out,
                           char *err, size_t errlen);
/* Passes over the calibration set: 1 (minmax) or 2 (percentile and entropy: min/max, then histograms). */
int ei__calib_passes(const ei__calib *c);
/* Starts pass `pass` (0 or 1); pass 1 needs pass 0's ranges. */
ei_status ei__calib_begin_pass(ei__calib *c, int pass, char *err, size_t errlen);
/* Runs one sample (inputs in model order) and adds its statistics to the current pass. */
ei_status ei__calib_add(ei__calib *c, int ninputs, const ei_tensor *inputs, char *err, size_t errlen);
/* After pass 0: screens the samples (opt.screen; every sample is kept when it is 0) and recomputes the pass-0 ranges
 * from the kept ones. Pass 1 should only add kept samples (ei__calib_accepted, by pass-0 index). */
ei_status ei__calib_screen(ei__calib *c, char *err, size_t errlen);
int ei__calib_accepted(const ei__calib *c, int sample);
/* After pass 0: uses only the pass-0 samples with use[i] set (recomputing the pass-0 ranges from them); a pass 1
 * begun afterwards starts its histograms over. The method search calibrates on half the samples this way. */
ei_status ei__calib_use(ei__calib *c, const uint8_t *use, char *err, size_t errlen);
/* The screening distance (log2) of the sample last run on probe p (the float model c->probe, or any probe of the
 * same graph) to the screening centre; 0 when there is no centre. */
double ei__calib_regime_distance(const ei__calib *c, const ei__probe *p);
/* Computes every observed value's range with the chosen method (into c->lo, c->hi, c->has_range); clears the bias
 * corrections (ei__bias_clear), which were computed for the previous ranges. */
ei_status ei__calib_finish(ei__calib *c, char *err, size_t errlen);
void ei__calib_free(ei__calib *c);

/* Range estimators on a histogram of |x| (bins of equal width over [0, amax]) split by sign: pos[i] counts values
 * x >= 0, neg[i] values x < 0, with |x| in bin i. Exposed for tests. */
void ei__calib_percentile(const uint64_t *pos, const uint64_t *neg, int bins, double amax, double percentile,
                          int symmetric, double *lo, double *hi);
double ei__calib_entropy_threshold(const uint64_t *pos, const uint64_t *neg, int bins, double amax, int levels);
/* The range [lo, hi] (within [-amax, amax]) whose quantization to 256 levels (uint8 with a zero point when
 * !symmetric, int8 [-127, 127]*scale when symmetric) has the least expected squared error over the histogram:
 * rounding error step^2/12 for values inside, the distance to the bound for values outside. */
void ei__calib_mse_range(const uint64_t *pos, const uint64_t *neg, int bins, double amax, int symmetric, double *lo,
                         double *hi);
/* Functions that all consumers of a tensor apply to it. */
enum { EI_FN_NONE = 0, EI_FN_SIGMOID, EI_FN_SILU, EI_FN_HARDSWISH };
/* ei__calib_mse_range for a tensor x read only through the function fn (EI_FN_*): the range whose quantization
 * has the least expected squared error of fn(x): fn'(x)^2 step^2 / 12 for values inside (rounding), (fn(bound) -
 * fn(x))^2 for values outside; so the tail where fn is flat (sigmoid's, x * sigmoid(x)'s negative one) is clipped
 * nearly for free and its levels go where fn moves. */
void ei__calib_fn_range(const uint64_t *pos, const uint64_t *neg, int bins, double amax, int symmetric, int fn,
                        double *lo, double *hi);

/* ---- the QDQ model (quantize.c) ---- */

/* The axis of per-channel weight scales of the linear node n whose constant weight is w (-1: per tensor). */
int ei__quant_weight_axis(const ei__node *n, const ei__value *w, int per_tensor);
/* Symmetric int8 quantization of the weight w (float data) along axis (-1: per tensor): scales (dims[axis] of them,
 * or 1) and q (numel). The single definition used by the writer and the bias correction. */
void ei__quant_weight(const ei__value *w, int axis, float *scales, int8_t *q);

/* A quantized layer: a node of the float graph and where its quantized output is in the written model. */
typedef struct ei__qlayer {
  int node;           /* node index in the float graph */
  int value;          /* its (float) output value */
  char *qname;        /* the QuantizeLinear output of that value in the written model */
  float scale;
  int32_t zero_point;
  ei_dtype qtype;     /* uint8 or int8 */
} ei__qlayer;

typedef struct ei__qmodel {
  uint8_t *bytes;     /* the serialized ModelProto */
  size_t size;
  ei__qlayer *layers;
  int nlayers;
  int nodes_quantized, nodes_float; /* nodes of the float graph written quantized / with a float output left in
                                     * float (integer shape arithmetic is not counted) */
  int *tensors;       /* values of the float graph written with a QuantizeLinear/DequantizeLinear pair */
  int ntensors;
  int opset;
} ei__qmodel;

/* Writes the QDQ model of a calibrated float graph (after ei__calib_finish). Warnings (excluded names that match
 * no node, nodes that cannot be quantized) go to `warn` (may be NULL) as lines. */
ei_status ei__quantize_build(const ei__calib *c, ei__qmodel *out, void (*warn)(void *ctx, const char *msg),
                             void *warn_ctx, char *err, size_t errlen);
/* ei__quantize_build with more control (the search of search.c). */
typedef struct ei__build_options {
  int simulate;              /* a simulation model: the same QDQ graph, but weights and biases written as float
                              * constants holding their dequantized values, so a float engine runs it at float speed
                              * with the same rounding of every activation (not a valid file to ship) */
  const uint8_t *keep_float; /* per node of the calibrated graph (c->probe.g): left in float; NULL: none */
  int bias_hooks;            /* with simulate: every quantized Conv/Gemm is followed by an Add of a float constant
                              * (zeros, one per output channel: [1, C, 1, 1] for a 2-D Conv, [C] for a Gemm) before
                              * its QuantizeLinear, that the bias correction sets while it runs the model; the
                              * bias holds the float bias alone (c->bias_delta is not used) */
} ei__build_options;
ei_status ei__quantize_build_ex(const ei__calib *c, const ei__build_options *bo, ei__qmodel *out,
                                void (*warn)(void *ctx, const char *msg), void *warn_ctx, char *err, size_t errlen);
void ei__qmodel_free(ei__qmodel *m);

/* Writes size bytes to path atomically (a temporary file in the same directory, fsync, rename). */
ei_status ei__quant_write_file(const char *path, const void *data, size_t size, char *err, size_t errlen);

/* ---- float vs quantized (quantize.c) ---- */

/* Output statistics over a group of samples (first graph output). */
typedef struct ei__qeval_stats {
  double signal, noise, cos_sum; /* sums of f^2, (f - q)^2, per-row cosine similarities */
  int64_t rows, top1_same;       /* rows compared (samples x batch), rows with the same top-1 */
  int nsamples;
  int distinct;                  /* distinct top-1 classes of the float model */
} ei__qeval_stats;

typedef struct ei__qeval {
  ei__calib *c;           /* the float side (its probe) */
  const ei__qmodel *m;
  ei__probe q;            /* the written model, loaded by our engine (QDQ folding as at any load) */
  int *qvalue;            /* per layer: the value of qname in q.g, or -1 */
  double *signal, *noise; /* per layer sums of f^2 and (f - q)^2 (samples in the calibrated regime) */
  uint8_t *seen;          /* per layer: compared at least once */
  double screen_log2;     /* > 0: samples farther from the calibration's screening centre are out of its regime */
  ei__qeval_stats all, in; /* every sample; the samples in the calibrated regime */
  uint8_t *classes_all, *classes_in; /* per class (cols of the first output): seen as a float top-1 */
  int64_t ncls;
  int nsamples;
  int last_in;            /* the last sample added was in the regime */
  double last_distance, last_cosine; /* its screening distance (log2) and mean cosine */
} ei__qeval;

ei_status ei__qeval_create(ei__qeval *e, ei__calib *c, const ei__qmodel *m, ei_threadpool *pool, char *err,
                           size_t errlen);
/* Runs the float and the quantized model on one sample and accumulates the comparison. */
ei_status ei__qeval_add(ei__qeval *e, int ninputs, const ei_tensor *inputs, char *err, size_t errlen);
/* SQNR in dB of layer l (INFINITY when equal; NAN when the layer could not be compared). */
double ei__qeval_layer_sqnr(const ei__qeval *e, int l);
/* First graph output over a group: SQNR in dB, mean cosine similarity per row, top-1 agreement count. */
void ei__qeval_output(const ei__qeval_stats *st, double *sqnr, double *cosine, int64_t *top1_same);
void ei__qeval_free(ei__qeval *e);

/* ---- searches on calibration samples (search.c) ---- */

typedef struct ei__bias ei__bias; /* bias correction state: the float model's window means over a set of samples
                                   * (bias.c) */

typedef struct ei__qscore {
  double cosine; /* first output: mean cosine similarity per row (per sample for a [N, classes] output) */
  double sqnr;   /* first output: SQNR in dB over every sample */
} ei__qscore;

typedef struct ei__qsearch {
  ei__calib *c;
  const ei_tensor *x;  /* samples (single-input models), borrowed */
  int n;
  float **ref;         /* the float model's first output per sample */
  int64_t *nref, cols;
  ei_threadpool *pool;
  ei__bias *bias;      /* the method search: bias correction fitted on these samples for every method (NULL: off) */
} ei__qsearch;

typedef struct ei__qtrial {
  ei__calib_method method;
  double percentile;
  ei__qscore score;      /* with bias correction when the search has one */
  ei__qscore score_off;  /* without (equal to score when the search has none) */
} ei__qtrial;

typedef struct ei__qsens {
  int value;         /* a quantized activation of c->probe.g */
  ei__qscore score;  /* the model with that tensor (alone more) left in float: its producer and consumers float */
} ei__qsens;

/* Runs the float model on the samples (their references). */
ei_status ei__qsearch_init(ei__qsearch *s, ei__calib *c, const ei_tensor *samples, int n, ei_threadpool *pool,
                           char *err, size_t errlen);
void ei__qsearch_free(ei__qsearch *s);
/* The simulation model of the current ranges (nodes with keep_float[i] left in float; may be NULL), scored. */
ei_status ei__qsearch_score(ei__qsearch *s, const uint8_t *keep_float, ei__qscore *out, char *err, size_t errlen);
/* Tries every calibration method (trials: room for 8; each scored with the bias correction of s->bias, if any) and
 * finishes the calibration with the best (mean cosine, then SQNR); the bias corrections are then cleared. */
ei_status ei__qsearch_method(ei__qsearch *s, const uint8_t *keep_float, ei__qtrial *trials, int *ntrials, char *err,
                             size_t errlen);
/* Marks the nodes that leave value v unquantized: its producer and its consumers. */
void ei__qsearch_float_tensor(const ei__graph *g, int v, uint8_t *keep_float);
/* Scores the model with each quantized tensor left in float alone (on top of keep_float): *out (ei__malloc'd,
 * *nout entries, graph order). full: every tensor on every sample; else the fallback's shortened pass (search.c). */
ei_status ei__qsearch_sensitivity(ei__qsearch *s, const uint8_t *keep_float, int full, ei__qsens **out, int *nout,
                                  void (*progress)(void *ctx, int i, int n), void *ctx, char *err, size_t errlen);
/* Leaves the most sensitive tensors in float (their producers and consumers: keep_float, per node, updated), one
 * at a time, until the mean cosine reaches target or max_float tensors were (*nfloat). *score: the final model's. */
ei_status ei__qsearch_fallback(ei__qsearch *s, double target, int max_float, uint8_t *keep_float, ei__qscore *score,
                               int *nfloat, void (*progress)(void *ctx, int i, int n), void *ctx, char *err,
                               size_t errlen);

/* ---- empirical bias correction (bias.c) ---- */

/* For every quantized Conv/Gemm, the mean over the calibration samples and output positions of the pre-activation
 * output per channel is made equal in the quantized model and in the float model: the correction
 * E[W x_float] - E[Wq x_quant] (W the float weights, Wq the dequantized int8 weights, x_float the layer's input in
 * the float model, x_quant in the simulated quantized model) is added to the float bias before it is quantized to
 * int32 (c->bias_delta), so the file stays a standard QDQ model. The means are exact window means of the layer's
 * input (one per input channel and kernel tap, padding counted as 0), so the corrections follow from them and the
 * weights. Each channel's correction, the mean over the samples of their own differences, is shrunk by the factor
 * max(0, 1 - se^2 / mean^2) (se: its standard error), so noise is not added as bias. The corrections are sequential, layer after layer in graph order: x_quant is the input of the layer
 * with every upstream layer quantized and already corrected, so each correction also absorbs the bias its inputs
 * carry from upstream (activation rounding and clipping, nonlinear ops in between). One run of the simulation
 * model per sample does it: every sample runs (one arena each) up to the next layer, whose correction, computed
 * over all samples, is set before any sample runs it. */
typedef struct ei__bias_info {
  int layers;           /* layers corrected */
  int samples;          /* samples used (as many as opt.max_arena holds, one arena each) */
  double steps;         /* mean over layers and channels of |correction|, in steps of the layer's output
                         * quantization */
} ei__bias_info;

/* Runs the float model (c->probe) on the n samples (single-input models; borrowed until ei__bias_free) and keeps
 * its window means. */
ei_status ei__bias_create(ei__calib *c, const ei_tensor *x, int n, ei__bias **out, char *err, size_t errlen);
/* Computes c->bias_delta for the current ranges (nodes with keep_float[i] stay float; may be NULL) on the samples
 * of b. info may be NULL; progress(ctx, i, n) per layer (may be NULL). */
ei_status ei__bias_correct(ei__bias *b, const uint8_t *keep_float, ei__bias_info *info,
                           void (*progress)(void *ctx, int i, int n), void *ctx, char *err, size_t errlen);
void ei__bias_free(ei__bias *b);
/* Frees c->bias_delta (no correction). */
void ei__bias_clear(ei__calib *c);

#endif
