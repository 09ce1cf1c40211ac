/* src/server/server.h: the transport-independent core of `edgeinfer serve` (KServe v2 semantics).
 *
 * Layers (docs/ARCHITECTURE.md):
 *   transports  conn.c (accept, first-24-byte sniff), http1.c (http-parser), h2.c (nghttp2 sessions),
 *               rest.c (REST routes, JSON + binary tensor extension), grpc.c (gRPC service, protobuf-c)
 *   core        this header: repository.c (config.json, versions, reference counts), infer.c (requests,
 *               validation, conversion, classification), batcher.c (queues, dynamic batching, executor
 *               threads, deadlines), stats.c (Triton statistics), reload.c (hot reload: the loader thread,
 *               inotify, explicit load/unload)
 *   engine      include/edgeinfer.h only (the server never includes src/graph or src/kernels)
 * Transports call the core on the libuv loop thread; the core never writes to a socket.
 *
 * The way of an inference request:
 *   1. loop thread: a transport has the whole body; it makes an ei__req (ei__req_new) with its ops and calls
 *      ei__srv_submit().
 *   2. service thread (one of the core's EI__SVC_THREADS): ops->decode parses the body into r->inputs /
 *      r->outputs (JSON, protobuf or an image through the core's helpers below); the core resolves and pins the
 *      model version, validates the inputs against it and admits the request to the model's queue (or fails it
 *      at once: EI_SRV_EXHAUSTED when the queue is full, EI_SRV_NOT_FOUND, ...).
 *   3. executor thread of the model: merges queued requests into one batch (dynamic batching), runs the engine
 *      on the server's thread pool, splits the outputs back into each request's r->results (copied out of the
 *      session's arena into request memory), then calls ops->encode on this thread (response bytes built off
 *      the loop thread).
 *   4. loop thread (uv_async): ops->done(r) sends the response; the transport then calls ei__req_release().
 *   A failure at any step skips to encode (with r->code/r->error set) and done. Exactly one done per request.
 *
 * Memory: an ei__req and everything hung on it (inputs, results, strings, the transport's response bytes) come
 * from the request's own arena (ei__req_alloc), freed at the last ei__req_release. The engine's run itself
 * allocates nothing. Reference counts: the transport holds one reference from ei__req_new, the core one while
 * the request is in flight; a request whose client went away is ei__req_cancel()ed: if still queued it leaves
 * the queue and is never run (done is still called, with EI_SRV_CANCELLED; the transport then only releases).
 */
#ifndef EI_SERVER_H
#define EI_SERVER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "edgeinfer.h"

typedef struct uv_loop_s uv_loop_t;

/* ---- status codes, and their HTTP and gRPC forms ---- */
typedef enum ei__srv_code {
  EI_SRV_OK = 0,
  EI_SRV_INVALID,      /* 400 / INVALID_ARGUMENT (3): malformed body, wrong shape or datatype */
  EI_SRV_NOT_FOUND,    /* 404 / NOT_FOUND (5): unknown model or version, unknown route */
  EI_SRV_METHOD,       /* 405 / UNIMPLEMENTED (12) */
  EI_SRV_TOO_LARGE,    /* 413 / RESOURCE_EXHAUSTED (8): body or tensor over a limit */
  EI_SRV_MEDIA,        /* 415 / INVALID_ARGUMENT (3): unsupported content type or image format */
  EI_SRV_UNAVAILABLE,  /* 503 / UNAVAILABLE (14): not ready, shutting down */
  EI_SRV_EXHAUSTED,    /* 503 / RESOURCE_EXHAUSTED (8): queue full, too many connections */
  EI_SRV_DEADLINE,     /* 504 / DEADLINE_EXCEEDED (4) */
  EI_SRV_CANCELLED,    /* 499 (never sent) / CANCELLED (1): the client went away */
  EI_SRV_UNIMPLEMENTED,/* 501 / UNIMPLEMENTED (12): e.g. a compressed gRPC message */
  EI_SRV_INTERNAL      /* 500 / INTERNAL (13): engine failure */
} ei__srv_code;

int ei__srv_http_status(ei__srv_code c);
int ei__srv_grpc_status(ei__srv_code c);
const char *ei__srv_code_name(ei__srv_code c); /* "invalid", "not found", ... (for logs) */

/* ---- KServe datatypes ---- */
typedef enum ei__ks_dtype {
  EI_KS_INVALID = 0,
  EI_KS_BOOL, EI_KS_UINT8, EI_KS_UINT16, EI_KS_UINT32, EI_KS_UINT64,
  EI_KS_INT8, EI_KS_INT16, EI_KS_INT32, EI_KS_INT64,
  EI_KS_FP16, EI_KS_FP32, EI_KS_FP64, EI_KS_BYTES, EI_KS_BF16
} ei__ks_dtype;

const char *ei__ks_dtype_name(ei__ks_dtype t);    /* "FP32" */
ei__ks_dtype ei__ks_dtype_parse(const char *name); /* EI_KS_INVALID when unknown */
size_t ei__ks_dtype_size(ei__ks_dtype t);         /* 0 for BYTES */
ei__ks_dtype ei__ks_from_engine(ei_dtype t);      /* EI_KS_INVALID when none */

#define EI_KS_MAX_RANK 8

/* A tensor of a request or response: raw little-endian row-major bytes (BYTES: 4-byte LE length + bytes per
 * element). data may point into the request body (binary extension, raw_input_contents: zero copy) or into
 * the request arena. */
typedef struct ei__ks_tensor {
  const char *name;
  ei__ks_dtype dtype;
  int rank;
  int64_t shape[EI_KS_MAX_RANK];
  const void *data;
  size_t nbytes;
} ei__ks_tensor;

/* A requested output (REST "outputs" / gRPC InferRequestedOutputTensor). */
typedef struct ei__ks_output_req {
  const char *name;
  int binary;         /* REST: parameters.binary_data */
  int classification; /* > 0: Triton's classification extension, top-k as BYTES "score:index:label" */
} ei__ks_output_req;

/* A result: the tensor plus what was asked of it. */
typedef struct ei__ks_result {
  ei__ks_tensor t;
  int binary;
  int classification;
} ei__ks_result;

/* ---- the request ---- */
typedef struct ei__req ei__req;

typedef enum ei__req_kind {
  EI_REQ_INFER = 0, /* KServe infer (REST or gRPC) */
  EI_REQ_CLASSIFY   /* POST /v2/models/M/classify with a photo body: the core decodes, preprocesses, top-k */
} ei__req_kind;

typedef struct ei__req_ops {
  /* service thread: fill r->inputs/ninputs, r->outputs/noutputs, r->id, r->binary_output from the body.
   * Return EI_SRV_OK or a code with r->error set (ei__req_fail). NULL for EI_REQ_CLASSIFY. */
  ei__srv_code (*decode)(ei__req *r);
  /* executor (or service) thread: build the response bytes from r->results, or the error from r->code and
   * r->error; keep them in memory from ei__req_alloc, pointed to by r->transport_data. */
  void (*encode)(ei__req *r);
  /* loop thread: send what encode built (or only release when the client is gone). */
  void (*done)(ei__req *r);
} ei__req_ops;

struct ei__req {
  /* set by the transport before ei__srv_submit */
  ei__req_kind kind;
  const ei__req_ops *ops;
  void *transport_data;      /* the transport's own state (stream, connection) */
  const char *model_name;    /* from the URL or the message; the version is "" for "current" */
  const char *model_version;
  const uint8_t *body;       /* the whole request body; owned by the transport until done */
  size_t body_len;
  const char *content_type;  /* EI_REQ_CLASSIFY: "image/jpeg" / "image/png" */
  int top_k;                 /* EI_REQ_CLASSIFY: k (0: the model's config, default 5) */
  uint64_t deadline_ns;      /* absolute, CLOCK_MONOTONIC; 0 = none (REST parameters.timeout, grpc-timeout) */

  /* set by decode */
  const char *id;            /* echoed in the response; may be NULL */
  int ninputs;
  ei__ks_tensor *inputs;
  int noutputs;              /* 0: every output of the model */
  ei__ks_output_req *outputs;
  int binary_output;         /* REST parameters.binary_data_output */

  /* set by the core before encode */
  ei__srv_code code;
  char error[256];
  const char *served_version; /* the version that answered ("3") */
  int nresults;
  ei__ks_result *results;
  /* EI_REQ_CLASSIFY: top-k, best first */
  int nclasses;
  struct ei__req_class { int index; float score; const char *label; } *classes;

  /* timings (CLOCK_MONOTONIC ns) for stats and the access log */
  uint64_t t_received, t_queued, t_started, t_finished;

  /* core private */
  atomic_int refs;
  atomic_int cancelled;
  void *core;   /* pinned version, queue links, arena */
};

/* The transport's reference comes with the request. body is not copied. */
ei__req *ei__req_new(ei__req_kind kind, const ei__req_ops *ops, void *transport_data);
void ei__req_release(ei__req *r);
/* The client went away (connection closed, RST_STREAM): a queued request leaves the queue and is never run;
 * done is still called once. Loop thread. */
void ei__req_cancel(ei__req *r);
/* Memory that lives as long as the request (16-byte aligned; NULL when out of memory). Any thread that owns
 * the request at that step. */
void *ei__req_alloc(ei__req *r, size_t n);
char *ei__req_strdup(ei__req *r, const char *s, size_t n);
/* Set r->code and a formatted r->error; returns code. */
ei__srv_code ei__req_fail(ei__req *r, ei__srv_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- the server ---- */
typedef struct ei__server ei__server;

typedef struct ei__srv_options {
  const char *repo_dir;
  int threads;             /* server-wide engine pool (0: one per online CPU) */
  const int *cpus;         /* pinning list, or NULL */
  int ncpus;
  size_t max_body_bytes;   /* default 64 MiB: covers 10 MB tensors; also bounds gRPC messages */
  size_t max_json_bytes;   /* default 8 MiB */
  int64_t max_tensor_elements; /* default 64 Mi */
  int max_queue;           /* per model, default 64 requests */
  size_t max_image_pixels; /* default 64 Mpx (decompression bombs) */
  int test_delay_ms;       /* test hook: executor sleeps this long before each run (0: off) */
  /* hot reload (issue 6; additive) */
  int model_control;       /* EI_SRV_CONTROL_*: none (the core's default), poll (`serve`'s default), explicit */
  int poll_secs;           /* poll: rescan period (default 10) */
  int settle_ms;           /* poll: a plainly copied version is eligible when unchanged this long (default 2000) */
  const char *const *load_models; /* explicit: the models loaded at start */
  int nload_models;
  int test_load_delay_ms;  /* test hook: the loader sleeps this long before each load (state LOADING) */
  /* device profile (issue 7; additive; 0 means the default) */
  int device;              /* 1: run the device profile (device.c: sysfs sampler, per-model counters); `serve` sets
                              it, the core's default is 0 (none) */
  double device_interval_s;/* the sampler's period (default 5 s) */
  int no_perf_counters;    /* 1: no perf_event_open at all (--perf-counters off) */
  int no_probe;            /* 1: no memcpy bandwidth probe at start (--no-probe) */
  const char *sysfs_root;  /* the device readers' /sys (--sysfs-root; NULL: /sys) */
  int loader_idle;         /* 1: the loader thread also runs SCHED_IDLE (--loader-priority idle); 0: nice 10 only */
} ei__srv_options;

enum { EI_SRV_CONTROL_NONE = 0, EI_SRV_CONTROL_POLL = 1, EI_SRV_CONTROL_EXPLICIT = 2 };

void ei__srv_options_init(ei__srv_options *o);

/* Loads the repository (every model's served versions), makes plans for the batch sizes in use and warms up.
 * A model that fails to load is listed in the index as UNAVAILABLE with its reason; the server still starts. */
ei_status ei__server_create(uv_loop_t *loop, const ei__srv_options *opt, ei__server **out, char *err, size_t errlen);
/* Graceful: stop admitting (ready -> false), let queued and running requests finish (their done callbacks run
 * on the loop), then join the executors. Loop thread; returns at once, cb runs when drained. */
void ei__server_drain(ei__server *s, void (*cb)(ei__server *s, void *ud), void *ud);
void ei__server_destroy(ei__server *s);

void ei__srv_submit(ei__server *s, ei__req *r);
/* A hint (additive), loop thread: an inference request has begun arriving (its headers are in, its body is on the
 * way), so a run follows soon: when no request is in flight, the server's engine pool is held awake for a bounded
 * time (ei_threadpool_hold, EI__SRV_EXPECT_NS), so that the run does not pay the workers' wake-up (a busy pool
 * does not sleep between runs). ei__srv_submit renews the hold. */
#define EI__SRV_EXPECT_NS 2000000u
void ei__srv_expect(ei__server *s);

/* ---- the synchronous endpoints (loop thread; cheap, no model run) ---- */
int ei__srv_live(const ei__server *s);
int ei__srv_ready(const ei__server *s);   /* 0 while draining */
const char *const *ei__srv_extensions(const ei__server *s, int *n);

/* Model metadata, as KServe lists it. Strings stay valid until ei__srv_meta_release. */
typedef struct ei__srv_meta {
  const char *name;
  const char **versions;   /* loaded, ascending */
  int nversions;
  const char *platform;    /* "onnx_onnxv1" */
  int ninputs, noutputs;
  ei__ks_tensor *inputs;   /* name, dtype, rank, shape (-1 = variable), no data */
  ei__ks_tensor *outputs;
  void *pin;
} ei__srv_meta;
ei__srv_code ei__srv_model_meta(ei__server *s, const char *name, const char *version, ei__srv_meta *out,
                                char *err, size_t errlen);
void ei__srv_meta_release(ei__srv_meta *m);
ei__srv_code ei__srv_model_ready(ei__server *s, const char *name, const char *version, char *err, size_t errlen);

/* Repository index (Triton): one entry per model version, state UNAVAILABLE|LOADING|READY|UNLOADING. */
typedef struct ei__srv_index_entry {
  char name[128];
  char version[32];
  char state[16];
  char reason[256];
} ei__srv_index_entry;
/* Fills up to cap entries; returns the total (call again with a larger array when it is > cap). */
int ei__srv_index(ei__server *s, int ready_only, ei__srv_index_entry *out, int cap);
/* The whole index, malloc'ed (*n entries; free() it), or NULL when out of memory. */
ei__srv_index_entry *ei__srv_index_all(ei__server *s, int ready_only, int *n);

/* Statistics (Triton's shapes). */
typedef struct ei__srv_duration { uint64_t count, ns; } ei__srv_duration;
typedef struct ei__srv_batch_stats {
  uint64_t batch_size;
  ei__srv_duration compute_input, compute_infer, compute_output;
} ei__srv_batch_stats;
typedef struct ei__srv_model_stats {
  char name[128];
  char version[32];
  uint64_t last_inference_ms; /* ms since the epoch */
  uint64_t inference_count, execution_count;
  ei__srv_duration success, fail, queue, compute_input, compute_infer, compute_output;
  int nbatch;
  ei__srv_batch_stats batch[64];
  /* edgeinfer additions (not in Triton's shape): failures by cause, counted in fail too */
  uint64_t fail_deadline;  /* deadline passed while queued: never executed */
  uint64_t fail_cancelled; /* the client went away while queued */
  uint64_t fail_exhausted; /* refused: the model's queue was full */
  /* hot reload (additive): the model's loads since start (the same values in each version's entry) */
  uint64_t load_attempts, load_failures;
  char load_error[256];    /* the last failure's reason, "" when none */
} ei__srv_model_stats;
/* name NULL or "": every model; version NULL or "": every loaded version. Returns the count, fills up to cap. */
int ei__srv_stats(ei__server *s, const char *name, const char *version, ei__srv_model_stats *out, int cap,
                  ei__srv_code *code, char *err, size_t errlen);
/* Every matching entry, malloc'ed (*n entries; free() it); NULL with *code and err set on a failure (out of
 * memory: EI_SRV_INTERNAL). */
ei__srv_model_stats *ei__srv_stats_all(ei__server *s, const char *name, const char *version, int *n,
                                       ei__srv_code *code, char *err, size_t errlen);

/* Explicit model control (POST /v2/repository/models/M/load|unload, RepositoryModelLoad/Unload). Loop thread.
 * Returns a code with err set when refused at once (unknown model, not in explicit mode, shutting down); else
 * EI_SRV_OK and cb runs later on the loop thread, once, with the outcome (a load answers when the model's new
 * versions are current, or with the reason of the failure; the current version keeps serving meanwhile). */
typedef void (*ei__srv_control_cb)(void *ud, ei__srv_code code, const char *message);
ei__srv_code ei__srv_model_control(ei__server *s, const char *name, int load, ei__srv_control_cb cb, void *ud,
                                   char *err, size_t errlen);

/* ---- helpers transports use in decode/encode ---- */
/* Monotonic clock in ns. */
uint64_t ei__srv_now_ns(void);
/* Labels of a model (NULL when none): for the classification extension in encode. */
const char *ei__srv_label(const ei__req *r, int index);

#endif
