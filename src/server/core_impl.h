/* src/server/core_impl.h: the core's private structures, shared by repository.c, infer.c, batcher.c, stats.c.
 *
 * Objects and locks:
 *   ei__server       the loop, the server-wide pool, the models (sorted by name), the completion list
 *                    (done_mu) drained on the loop by one uv_async.
 *   ei__model        one folder of the repository: its config, the served versions (vmu: the list and
 *                    `current` are swappable for hot reload), its queue and executor threads (mu + cv).
 *   ei__version      one loaded version, reference counted (the model's list holds one reference, every pinned
 *                    request or metadata one more); immutable once loaded except for its stats (st_mu) and
 *                    the per-instance sessions, each used only by its executor thread.
 *   ei__req_core     a request's private part, in its arena: arena chunks, pin, queue links, converted inputs.
 */
#ifndef EI_SERVER_CORE_IMPL_H
#define EI_SERVER_CORE_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

#include "config.h"
#include "metrics.h"
#include "perf.h"
#include "server.h"

#define EI__MAX_IO EI__CFG_MAX_IO
#define EI__MAX_PLANS 8

typedef struct ei__model ei__model;
typedef struct ei__version ei__version;

/* One executor's resources for one version. */
typedef struct ei__instance {
  ei_session *session;
  void *staging[EI__MAX_IO]; /* max_batch rows per input (batching with static row shapes only) */
  ei_tensor outs[EI__MAX_IO];
} ei__instance;

struct ei__version {
  atomic_int refs;
  ei__model *model;
  int64_t number;
  char name[32];
  ei_model *m;
  ei_threadpool *own_pool; /* a model-specific pool (threads cap / cpus), or NULL */
  /* the served signature (config applied): shapes with -1 for variable dims (dim 0 when batching) */
  int ninputs, noutputs;
  ei__ks_tensor inputs[EI__MAX_IO], outputs[EI__MAX_IO];
  char in_names[EI__MAX_IO][128], out_names[EI__MAX_IO][128];
  ei_dtype in_dtype[EI__MAX_IO], out_dtype[EI__MAX_IO];
  int max_batch;           /* 0: no batching */
  int dyn;                 /* dynamic batching on */
  int rows_static;         /* every input's non-batch dims are static: staging + plans possible */
  size_t row_bytes[EI__MAX_IO]; /* bytes of one batch row of each input (rows_static) */
  int nplanned;
  int planned[EI__MAX_PLANS]; /* batch sizes planned at load, ascending */
  int ninst;
  ei__instance inst[EI__CFG_MAX_INSTANCES];
  int top_k;               /* the config's classify default when this version was loaded */
  /* classify */
  int can_classify;
  char classify_why[160];
  ei_preprocess pre;
  int nhwc;
  /* labels */
  char **labels;
  int nlabels;
  /* stats */
  pthread_mutex_t st_mu;
  ei__srv_model_stats st;
  ei__perf_counts perf;    /* st_mu: hardware / software counters of its executions (perf.c) */
  atomic_int in_retiring;  /* in model->retiring (set and cleared under the model's vmu; the model may be gone
                              when it is 0: a pin can outlive the server) */
  ei__metrics_ver mx;      /* st_mu (weight/arena bytes: set at load): GET /metrics (metrics.c) */
  /* device profile (issue 7; set at load, then immutable) */
  int64_t planned_bytes;   /* ei_session_planned_traffic_bytes of one run at planned_batch rows; 0: not planned */
  int planned_batch;       /* the smallest planned batch (1 without batching) */
};

/* A version folder that failed (for the index). */
typedef struct ei__failed {
  char version[32];
  char reason[256];
} ei__failed;

struct ei__model {
  struct ei__server *srv;
  char name[128];
  char dir[4096];
  ei__model_config cfg;
  char reason[256];        /* model-level failure (config), "" when none */
  /* versions (vmu) */
  pthread_mutex_t vmu;
  int nversions;
  ei__version *versions[EI__CFG_MAX_SPECIFIC]; /* loaded, ascending */
  ei__version *current;    /* the highest loaded, or NULL */
  int nfailed;
  ei__failed failed[EI__CFG_MAX_SPECIFIC];
  /* queue (mu, cv) */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  ei__req *qhead, *qtail;
  int qlen, max_queue;
  int stop;
  int nexec;
  pthread_t exec[EI__CFG_MAX_INSTANCES];
  int exec_started[EI__CFG_MAX_INSTANCES];
  struct ei__exec_arg *exec_arg[EI__CFG_MAX_INSTANCES];
  uint64_t delay_ns;
  int npreferred;
  int preferred[EI__CFG_MAX_PREFERRED];
  /* hot reload (reload.c; the loader thread writes, under vmu where readers look) */
  int enabled;             /* explicit: loaded (or asked to be); other modes: 1 */
  char loading[32];        /* the version the loader is loading, "" when none (vmu) */
  uint64_t load_attempts, load_failures; /* vmu */
  char load_error[256];    /* vmu */
  struct ei__vtrack *tracks; /* loader thread only */
  int ntracks, cap_tracks;
  uint64_t cfg_sig;        /* config.json's (mtime, size) when last read */
  int cfg_dirty, dirty, force;
  int cfg_bad;             /* config.json did not parse: no config in force */
  ei__version *retiring[EI__CFG_MAX_SPECIFIC]; /* left the list, still pinned by requests: UNLOADING (vmu; weak:
                                                 version_free takes itself out) */
  int nretiring;
  ei__metrics_hist load_hist; /* vmu: durations of the successful version loads (GET /metrics) */
};

#define EI__SVC_THREADS 2 /* service threads (decoding a photo takes milliseconds: two run side by side) */

typedef struct ei__exec_arg {
  ei__model *model;
  int index;
} ei__exec_arg;

struct ei__server {
  uv_loop_t *loop;
  uv_async_t *async;
  uv_timer_t *deadline_timer; /* due at the earliest deadline of a queued request */
  atomic_int ndeadline;       /* queued requests with a deadline */
  ei__srv_options opt;
  ei_threadpool *pool;
  int nmodels;
  ei__model **models;
  atomic_int draining;
  /* completions (done_mu), drained on the loop */
  pthread_mutex_t done_mu;
  ei__req *done_head, *done_tail;
  /* loop thread only */
  int inflight;
  int async_refd;
  int drain_requested, drained;
  void (*drain_cb)(ei__server *s, void *ud);
  void *drain_ud;
  int executors_joined;
  /* hot reload */
  struct ei__loader *loader;
  struct ei__ctl *ctl_head, *ctl_tail; /* finished control operations (done_mu), answered on the loop */
  /* device profile (issue 7): the sampler and the executors' counters (device.c, perf.c); NULL when off */
  struct ei__device *device;
  /* the service threads (batcher.c): decode, validation and admission of submitted requests, FIFO. Their own
   * threads rather than libuv's work pool, whose completion callback would wake the loop thread once more per
   * request, in the middle of the engine's run */
  pthread_mutex_t svc_mu;
  pthread_cond_t svc_cv;
  ei__req *svc_head, *svc_tail;
  int svc_stop;
  int nsvc;
  pthread_t svc[EI__SVC_THREADS];
};

typedef struct ei__arena_chunk {
  struct ei__arena_chunk *next;
  size_t size, used;
  size_t pad;
} ei__arena_chunk;

typedef struct ei__req_core {
  ei__arena_chunk *chunks;  /* the first holds the ei__req itself */
  ei__server *srv;
  ei__version *ver;         /* pinned (one reference) */
  ei__model *_Atomic qmodel;/* set when admitted to a queue */
  int queued;               /* in qmodel's queue (qmodel->mu) */
  ei__req *qprev, *qnext;
  ei__req *done_next;
  ei__req *svc_next;        /* the service queue (ei__server.svc_mu) */
  int64_t batch;            /* rows of the batch dimension (1 without batching) */
  ei_tensor in[EI__MAX_IO]; /* converted inputs, model order */
  int refused_at_submit;
  int executed;             /* ran in an execution (stats: compute durations below) */
  uint64_t d_in, d_infer, d_out; /* the execution's compute durations (ns) */
} ei__req_core;

static inline ei__req_core *ei__core(const ei__req *r) { return (ei__req_core *)r->core; }

/* repository.c */
ei_status ei__repo_load(ei__server *s, char *err, size_t errlen);
void ei__repo_free(ei__server *s);
ei__model *ei__repo_find(ei__server *s, const char *name);
/* Pins the version ("" or NULL: current); returns a code with err set when none. */
ei__srv_code ei__repo_pin(ei__server *s, const char *name, const char *version, ei__version **out, char *err,
                          size_t errlen);
void ei__version_ref(ei__version *v);
void ei__version_unref(ei__version *v);

/* Loads one version folder with config c (SHA256SUMS checked when present). loader: warm-up on a
 * single-threaded session of its own, the serving sessions only planned (off the serving pool). */
ei__version *ei__version_load(ei__server *s, ei__model *mo, const ei__model_config *c, int64_t number, int loader,
                              char *why, size_t whylen);
/* The versions a policy selects among the available ones (ascending); returns the count. */
int ei__repo_select(const ei__model_config *c, const int64_t *vs, int nv, int64_t *sel);
int ei__repo_all_digits(const char *s);
void ei__repo_set_failed(ei__model *m, const char *version, const char *reason); /* vmu held */
void ei__repo_clear_failed(ei__model *m, const char *version);                   /* vmu held */

/* reload.c */
ei_status ei__loader_start(ei__server *s, char *err, size_t errlen);
void ei__loader_stop(ei__server *s);
int ei__ctl_process(ei__server *s); /* loop: answers finished control operations; returns how many */

/* infer.c */
ei__srv_code ei__infer_prepare(ei__server *s, ei__req *r);  /* service thread: pin, image, validate, convert */
/* executor: copy the outputs of rows [row0, row0 + batch) into r->results / r->classes */
ei__srv_code ei__infer_results(ei__req *r, const ei__version *v, const ei_tensor *outs, int64_t row0,
                               int64_t run_batch);

/* batcher.c */
void ei__sleep_ms(int ms); /* sleeps ms milliseconds (EINTR resumes the rest) */
void ei__complete(ei__server *s, ei__req *r); /* encode (unless cancelled), then done on the loop */
int ei__exec_start(ei__server *s, ei__model *m, char *err, size_t errlen);
void ei__exec_stop(ei__server *s);

/* stats.c */
void ei__stats_init(ei__version *v);
void ei__stats_request(ei__version *v, const ei__req *r, int success);
void ei__stats_execution(ei__version *v, int64_t batch, uint64_t t_in, uint64_t t_infer, uint64_t t_out);

#endif
