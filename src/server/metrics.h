/* src/server/metrics.h: the Prometheus text exposition (format 0.0.4) of GET /metrics.
 *
 * One scrape builds the whole page into a growing buffer (ei__prom), off the libuv loop thread (libuv's work
 * pool), from snapshots that each module takes under its own lock: metrics.c writes the serving, lifecycle and
 * process families, device.c the device profile (ei__device_write). Every family is announced once with
 * ei__prom_family (HELP and TYPE) and its samples follow at once; label values are escaped here (\\, \", \n).
 * Names follow Prometheus conventions: base units, counters end in _total.
 */
#ifndef EI_SERVER_METRICS_H
#define EI_SERVER_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct ei__prom ei__prom;

typedef struct ei__prom_label {
  const char *name, *value;
} ei__prom_label;

/* A new, empty page; NULL when out of memory. */
ei__prom *ei__prom_new(void);
void ei__prom_free(ei__prom *p);
/* The text so far (NUL-terminated) and its length; NULL after an allocation failure. */
const char *ei__prom_text(const ei__prom *p, size_t *len);

/* "# HELP name help" and "# TYPE name type"; type is "counter", "gauge" or "histogram". */
void ei__prom_family(ei__prom *p, const char *name, const char *type, const char *help);
/* One sample line: name{labels} value (value printed with %.17g; +Inf, -Inf, NaN spelled as Prometheus does). */
void ei__prom_sample(ei__prom *p, const char *name, const ei__prom_label *labels, int nlabels, double value);
/* The series of one histogram: name_bucket{labels,le="b"} for each of the nb upper bounds (ascending) and
 * le="+Inf", then name_sum and name_count. counts[i] is the number of observations in bucket i alone
 * (i = 0..nb, the last one above every bound): the lines are cumulative. */
void ei__prom_histogram(ei__prom *p, const char *name, const ei__prom_label *labels, int nlabels,
                        const double *bounds, const uint64_t *counts, int nb, double sum);

/* ---- the serving, lifecycle and process families (metrics.c; additive) ---- */
typedef struct ei__server ei__server;

/* Histogram buckets: durations 100 us .. 10 s (seconds), batch sizes 1 .. 128, model loads 10 ms .. 120 s. */
#define EI__METRICS_NDUR 16
#define EI__METRICS_NBATCH 8
#define EI__METRICS_NLOAD 12
#define EI__METRICS_MAXB 16 /* the most bounds of any of them */
extern const double ei__metrics_dur_bounds[EI__METRICS_NDUR];
extern const double ei__metrics_batch_bounds[EI__METRICS_NBATCH];
extern const double ei__metrics_load_bounds[EI__METRICS_NLOAD];

/* Observations of one histogram: counts[i] in bucket i alone (the last one above every bound), and their sum. */
typedef struct ei__metrics_hist {
  uint64_t counts[EI__METRICS_MAXB + 1];
  double sum;
} ei__metrics_hist;
void ei__metrics_observe(ei__metrics_hist *h, const double *bounds, int nb, double value);

/* Failure reasons of ei_inference_request_failure_total. */
enum { EI__FAIL_REJECTED = 0, EI__FAIL_TIMEOUT, EI__FAIL_INVALID, EI__FAIL_INTERNAL, EI__FAIL_N };

/* What one loaded version adds to its Triton statistics (kept in ei__version under st_mu, with st). */
typedef struct ei__metrics_ver {
  ei__metrics_hist request;  /* successful requests: receipt .. end of the execution (seconds) */
  ei__metrics_hist queue;    /* successful requests: queued .. started */
  ei__metrics_hist compute;  /* executions: input staging + engine run + output copy */
  ei__metrics_hist batch;    /* executions: rows of the batch */
  uint64_t fail[EI__FAIL_N]; /* failed requests by reason */
  uint64_t weight_bytes;     /* immutable after load: the model's packed weights and constants */
  uint64_t arena_bytes;      /* immutable after load: every instance's largest planned arena, summed */
} ei__metrics_ver;

/* Writes every serving, lifecycle and process family (and the device profile when s->device). Any thread
 * (takes each module's locks in turn); never the loop thread for a real scrape. */
void ei__metrics_write(ei__server *s, ei__prom *p);

/* GET /metrics: builds the page on libuv's work pool (s's loop), then calls cb on the loop thread with the
 * page (cb owns it: ei__prom_free), or NULL when out of memory / the work could not be queued. Loop thread.
 * Returns 0, or -1 when the work could not be queued (cb is not called). */
int ei__metrics_scrape(ei__server *s, void (*cb)(void *ud, ei__prom *p), void *ud);
/* ei__server_destroy waits here until no scrape uses the server any more. */
void ei__metrics_quiesce(void);

#endif
