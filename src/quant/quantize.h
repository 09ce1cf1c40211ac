/* Internal API of `edgeinfer quantize`, the post-training static quantizer:
 *   calibrate.c  probes (a graph planned with every intermediate tensor kept) and per-tensor calibration
 *                statistics: min/max, histograms for the percentile and entropy (KL) methods;
 *   quantize.c   the QDQ model writer (ONNX Runtime's quantize_static QDQ layout, from our optimized IR), the
 *                atomic file write, and the float-vs-quantized comparison (per-layer SQNR, output cosine).
 * The CLI front end is tools/cmd_quantize.c. */
#ifndef EI_QUANT_QUANTIZE_H
#define EI_QUANT_QUANTIZE_H

#include "graph/graph.h"

typedef enum ei__calib_method { EI_CALIB_MINMAX = 0, EI_CALIB_PERCENTILE, EI_CALIB_ENTROPY } ei__calib_method;

typedef struct ei__quant_options {
  ei__calib_method method;
  double percentile;          /* percentile method: the share of values kept, in percent (default 99.99) */
  int per_tensor;             /* weights per tensor (default: per output channel) */
  int act_s8;                 /* activations symmetric int8 (default: asymmetric uint8) */
  const char *const *exclude; /* names of nodes left in float */
  int nexclude;
  size_t max_arena;           /* planning limit for the probes (default 4 GiB) */
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
} ei__calib;

/* Loads the float model at path for calibration. */
ei_status ei__calib_create(const char *path, const ei__quant_options *o, ei_threadpool *pool, ei__calib **out,
                           char *err, size_t errlen);
/* Passes over the calibration set: 1 (minmax) or 2 (percentile and entropy: min/max, then histograms). */
int ei__calib_passes(const ei__calib *c);
/* Starts pass `pass` (0 or 1); pass 1 needs pass 0's ranges. */
ei_status ei__calib_begin_pass(ei__calib *c, int pass, char *err, size_t errlen);
/* Runs one sample (inputs in model order) and adds its statistics to the current pass. */
ei_status ei__calib_add(ei__calib *c, int ninputs, const ei_tensor *inputs, char *err, size_t errlen);
/* Computes every observed value's range with the chosen method (into c->lo, c->hi, c->has_range). */
ei_status ei__calib_finish(ei__calib *c, char *err, size_t errlen);
void ei__calib_free(ei__calib *c);

/* Range estimators on a histogram of |x| (bins of equal width over [0, amax]) split by sign: pos[i] counts values
 * x >= 0, neg[i] values x < 0, with |x| in bin i. Exposed for tests. */
void ei__calib_percentile(const uint64_t *pos, const uint64_t *neg, int bins, double amax, double percentile,
                          int symmetric, double *lo, double *hi);
double ei__calib_entropy_threshold(const uint64_t *pos, const uint64_t *neg, int bins, double amax, int levels);

/* ---- the QDQ model (quantize.c) ---- */

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
  int opset;
} ei__qmodel;

/* Writes the QDQ model of a calibrated float graph (after ei__calib_finish). Warnings (excluded names that match
 * no node, nodes that cannot be quantized) go to `warn` (may be NULL) as lines. */
ei_status ei__quantize_build(const ei__calib *c, ei__qmodel *out, void (*warn)(void *ctx, const char *msg),
                             void *warn_ctx, char *err, size_t errlen);
void ei__qmodel_free(ei__qmodel *m);

/* Writes size bytes to path atomically (a temporary file in the same directory, fsync, rename). */
ei_status ei__quant_write_file(const char *path, const void *data, size_t size, char *err, size_t errlen);

/* ---- float vs quantized (quantize.c) ---- */

typedef struct ei__qeval {
  ei__calib *c;           /* the float side (its probe) */
  const ei__qmodel *m;
  ei__probe q;            /* the written model, loaded by our engine (QDQ folding as at any load) */
  int *qvalue;            /* per layer: the value of qname in q.g, or -1 */
  double *signal, *noise; /* per layer sums of f^2 and (f - q)^2 */
  uint8_t *seen;          /* per layer: compared at least once */
  double out_signal, out_noise, cos_sum; /* first graph output */
  int64_t top1_same;
  int nsamples;
} ei__qeval;

ei_status ei__qeval_create(ei__qeval *e, ei__calib *c, const ei__qmodel *m, ei_threadpool *pool, char *err,
                           size_t errlen);
/* Runs the float and the quantized model on one sample and accumulates the comparison. */
ei_status ei__qeval_add(ei__qeval *e, int ninputs, const ei_tensor *inputs, char *err, size_t errlen);
/* SQNR in dB of layer l (INFINITY when equal; NAN when the layer could not be compared). */
double ei__qeval_layer_sqnr(const ei__qeval *e, int l);
/* First graph output: SQNR in dB, mean cosine similarity per sample, top-1 agreement count. */
void ei__qeval_output(const ei__qeval *e, double *sqnr, double *cosine, int64_t *top1_same);
void ei__qeval_free(ei__qeval *e);

#endif
