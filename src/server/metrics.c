/* src/server/metrics.c: GET /metrics (Prometheus text exposition 0.0.4): the page builder (ei__prom), the
 * histograms the core fills (ei__metrics_observe), and the serving, lifecycle and process families.
 *
 * A scrape runs on libuv's work pool (ei__metrics_scrape): it snapshots each model's versions under the model's
 * vmu (each version's counters under its st_mu, the same order as ei__srv_stats), counts the queued requests
 * under the model's mu, then writes family by family from the snapshot, so that every family's HELP and TYPE
 * come once, followed by all of its samples. Series exist for loaded versions only: an unloaded version's series
 * disappear with it. Process families come from /proc/self (and /proc/stat's btime). */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "core_impl.h"
#include "metrics.h"
#include "strbuf.h"

#include "device.h"

/* ---- the page ---- */
struct ei__prom {
  ei__sb s;
};

ei__prom *ei__prom_new(void) {
  ei__prom *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  if (ei__sb_grow(&p->s, 16383) < 0) {
    free(p);
    return NULL;
  }
  p->s.p[0] = 0;
  return p;
}

void ei__prom_free(ei__prom *p) {
  if (!p) return;
  free(p->s.p);
  free(p);
}

const char *ei__prom_text(const ei__prom *p, size_t *len) {
  if (!p || p->s.oom) {
    if (len) *len = 0;
    return NULL;
  }
  if (len) *len = p->s.n;
  return p->s.p;
}

static void prom_put(ei__prom *p, const char *s, size_t n) { ei__sb_put(&p->s, s, n); }
static void prom_puts(ei__prom *p, const char *s) { ei__sb_puts(&p->s, s); }

/* HELP text: \ and newline escaped. Label values: \, " and newline escaped. */
static void prom_escaped(ei__prom *p, const char *s, int quote) {
  const char *run = s;
  for (; *s; s++) {
    const char *esc = *s == '\\' ? "\\\\" : *s == '\n' ? "\\n" : quote && *s == '"' ? "\\\"" : NULL;
    if (!esc) continue;
    prom_put(p, run, (size_t)(s - run));
    prom_puts(p, esc);
    run = s + 1;
  }
  prom_put(p, run, (size_t)(s - run));
}

/* The shortest decimal that reads back as v (%.17g's value); +Inf, -Inf, NaN as Prometheus spells them. */
static void fmt_value(char *out, size_t n, double v) {
  if (isnan(v)) {
    snprintf(out, n, "NaN");
    return;
  }
  if (isinf(v)) {
    snprintf(out, n, v > 0 ? "+Inf" : "-Inf");
    return;
  }
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(out, n, "%.*g", prec, v);
    if (strtod(out, NULL) == v) return;
  }
}

void ei__prom_family(ei__prom *p, const char *name, const char *type, const char *help) {
  if (!p) return;
  prom_puts(p, "# HELP ");
  prom_puts(p, name);
  prom_puts(p, " ");
  prom_escaped(p, help ? help : "", 0);
  prom_puts(p, "\n# TYPE ");
  prom_puts(p, name);
  prom_puts(p, " ");
  prom_puts(p, type);
  prom_puts(p, "\n");
}

static void prom_labels(ei__prom *p, const ei__prom_label *labels, int nlabels, const char *le) {
  if (nlabels <= 0 && !le) return;
  prom_puts(p, "{");
  for (int i = 0; i < nlabels; i++) {
    if (i) prom_puts(p, ",");
    prom_puts(p, labels[i].name);
    prom_puts(p, "=\"");
    prom_escaped(p, labels[i].value ? labels[i].value : "", 1);
    prom_puts(p, "\"");
  }
  if (le) {
    if (nlabels > 0) prom_puts(p, ",");
    prom_puts(p, "le=\"");
    prom_puts(p, le);
    prom_puts(p, "\"");
  }
  prom_puts(p, "}");
}

static void prom_line(ei__prom *p, const char *name, const char *suffix, const ei__prom_label *labels, int nlabels,
                      const char *le, double value) {
  char v[64];
  fmt_value(v, sizeof v, value);
  prom_puts(p, name);
  if (suffix) prom_puts(p, suffix);
  prom_labels(p, labels, nlabels, le);
  prom_puts(p, " ");
  prom_puts(p, v);
  prom_puts(p, "\n");
}

void ei__prom_sample(ei__prom *p, const char *name, const ei__prom_label *labels, int nlabels, double value) {
  if (!p) return;
  prom_line(p, name, NULL, labels, nlabels, NULL, value);
}

void ei__prom_histogram(ei__prom *p, const char *name, const ei__prom_label *labels, int nlabels,
                        const double *bounds, const uint64_t *counts, int nb, double sum) {
  if (!p) return;
  uint64_t cum = 0;
  char le[64];
  for (int i = 0; i <= nb; i++) {
    cum += counts[i];
    if (i < nb) fmt_value(le, sizeof le, bounds[i]);
    else snprintf(le, sizeof le, "+Inf");
    prom_line(p, name, "_bucket", labels, nlabels, le, (double)cum);
  }
  prom_line(p, name, "_sum", labels, nlabels, NULL, sum);
  prom_line(p, name, "_count", labels, nlabels, NULL, (double)cum);
}

/* ---- histograms ---- */
const double ei__metrics_dur_bounds[EI__METRICS_NDUR] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                          0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                                          1,      2.5,     5,      10};
const double ei__metrics_batch_bounds[EI__METRICS_NBATCH] = {1, 2, 4, 8, 16, 32, 64, 128};
const double ei__metrics_load_bounds[EI__METRICS_NLOAD] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120};

void ei__metrics_observe(ei__metrics_hist *h, const double *bounds, int nb, double value) {
  int i = 0;
  while (i < nb && value > bounds[i]) i++; /* le: the first bound >= value */
  h->counts[i]++;
  h->sum += value;
}

/* ---- the snapshot ---- */
typedef struct snap_ver {
  const ei__version *v; /* compared only (pending requests), never dereferenced after vmu */
  char version[32];
  uint64_t success, images, executions;
  ei__metrics_ver mx;
  ei__perf_counts perf;
  int pending;
} snap_ver;

typedef struct snap_model {
  const char *name; /* the model lives as long as the server */
  uint64_t loads, load_failures;
  ei__metrics_hist load_hist;
  int v0, nv; /* its versions in the snap_ver array */
} snap_model;

typedef struct snap {
  snap_model *models;
  int nmodels;
  snap_ver *vers;
  int nvers, capvers;
} snap;

static void snap_free(snap *sn) {
  free(sn->models);
  free(sn->vers);
}

static int snap_take(ei__server *s, snap *sn) {
  memset(sn, 0, sizeof *sn);
  if (s->nmodels > 0 && !(sn->models = calloc((size_t)s->nmodels, sizeof *sn->models))) goto err;
  for (int i = 0; i < s->nmodels; i++) {
    ei__model *m = s->models[i];
    snap_model *sm = &sn->models[sn->nmodels++];
    sm->name = m->name;
    pthread_mutex_lock(&m->vmu);
    sm->loads = m->load_attempts;
    sm->load_failures = m->load_failures;
    sm->load_hist = m->load_hist;
    sm->v0 = sn->nvers;
    if (sn->nvers + m->nversions > sn->capvers) {
      int cap = sn->capvers ? sn->capvers : 16;
      while (cap < sn->nvers + m->nversions) cap *= 2;
      snap_ver *nv = realloc(sn->vers, sizeof *nv * (size_t)cap);
      if (!nv) {
        pthread_mutex_unlock(&m->vmu);
        goto err;
      }
      sn->vers = nv;
      sn->capvers = cap;
    }
    for (int k = 0; k < m->nversions; k++) {
      ei__version *v = m->versions[k];
      snap_ver *sv = &sn->vers[sn->nvers++];
      memset(sv, 0, sizeof *sv);
      sv->v = v;
      snprintf(sv->version, sizeof sv->version, "%s", v->name);
      pthread_mutex_lock(&v->st_mu);
      sv->success = v->st.success.count;
      sv->images = v->st.inference_count;
      sv->executions = v->st.execution_count;
      sv->mx = v->mx;
      sv->perf = v->perf;
      pthread_mutex_unlock(&v->st_mu);
    }
    sm->nv = sn->nvers - sm->v0;
    pthread_mutex_unlock(&m->vmu);
    /* queued requests, by version (a queued request pins its version: the pointers stay distinct) */
    pthread_mutex_lock(&m->mu);
    for (ei__req *r = m->qhead; r; r = ei__core(r)->qnext)
      for (int k = 0; k < sm->nv; k++)
        if (sn->vers[sm->v0 + k].v == ei__core(r)->ver) sn->vers[sm->v0 + k].pending++;
    pthread_mutex_unlock(&m->mu);
  }
  return 0;
err:
  snap_free(sn);
  memset(sn, 0, sizeof *sn);
  return -1;
}

/* ---- the families ---- */
typedef enum { F_SUCCESS, F_IMAGES, F_EXECS, F_PENDING, F_READY, F_WEIGHT, F_ARENA } ver_field;

static double ver_value(const snap_ver *v, ver_field f) {
  switch (f) {
  case F_SUCCESS: return (double)v->success;
  case F_IMAGES: return (double)v->images;
  case F_EXECS: return (double)v->executions;
  case F_PENDING: return (double)v->pending;
  case F_READY: return 1;
  case F_WEIGHT: return (double)v->mx.weight_bytes;
  case F_ARENA: return (double)v->mx.arena_bytes;
  }
  return 0;
}

#define FOR_VERSIONS(sn, mi, vi)                                                                                    \
  for (int mi = 0; mi < (sn)->nmodels; mi++)                                                                       \
    for (int vi = (sn)->models[mi].v0; vi < (sn)->models[mi].v0 + (sn)->models[mi].nv; vi++)

static void ver_family(ei__prom *p, const snap *sn, const char *name, const char *type, const char *help,
                       ver_field f) {
  ei__prom_family(p, name, type, help);
  FOR_VERSIONS(sn, mi, vi) {
    ei__prom_label l[2] = {{"model", sn->models[mi].name}, {"version", sn->vers[vi].version}};
    ei__prom_sample(p, name, l, 2, ver_value(&sn->vers[vi], f));
  }
}

typedef enum { H_REQUEST, H_QUEUE, H_COMPUTE, H_BATCH } ver_hist;

static void hist_family(ei__prom *p, const snap *sn, const char *name, const char *help, ver_hist which) {
  ei__prom_family(p, name, "histogram", help);
  FOR_VERSIONS(sn, mi, vi) {
    const ei__metrics_ver *mx = &sn->vers[vi].mx;
    const ei__metrics_hist *h = which == H_REQUEST ? &mx->request
                                : which == H_QUEUE ? &mx->queue
                                : which == H_COMPUTE ? &mx->compute
                                                     : &mx->batch;
    ei__prom_label l[2] = {{"model", sn->models[mi].name}, {"version", sn->vers[vi].version}};
    if (which == H_BATCH)
      ei__prom_histogram(p, name, l, 2, ei__metrics_batch_bounds, h->counts, EI__METRICS_NBATCH, h->sum);
    else
      ei__prom_histogram(p, name, l, 2, ei__metrics_dur_bounds, h->counts, EI__METRICS_NDUR, h->sum);
  }
}

typedef enum { P_CYCLES, P_INSTR, P_CREF, P_CMISS, P_TASK, P_CSW } perf_field;

static void perf_family(ei__prom *p, const snap *sn, const char *name, const char *help, perf_field f) {
  int hw = f <= P_CMISS, any = 0;
  FOR_VERSIONS(sn, mi, vi) any |= hw ? sn->vers[vi].perf.hw : sn->vers[vi].perf.sw;
  if (!any) return; /* not counted (no PMU, --perf-counters off): absent */
  ei__prom_family(p, name, "counter", help);
  FOR_VERSIONS(sn, mi, vi) {
    const ei__perf_counts *c = &sn->vers[vi].perf;
    if (hw ? !c->hw : !c->sw) continue;
    double v = f == P_CYCLES  ? (double)c->cycles
               : f == P_INSTR ? (double)c->instructions
               : f == P_CREF  ? (double)c->cache_references
               : f == P_CMISS ? (double)c->cache_misses
               : f == P_TASK  ? (double)c->task_clock_ns / 1e9
                              : (double)c->context_switches;
    ei__prom_label l[2] = {{"model", sn->models[mi].name}, {"version", sn->vers[vi].version}};
    ei__prom_sample(p, name, l, 2, v);
  }
}

/* "# TYPE name " is on the page already. */
static int prom_has_family(const ei__prom *p, const char *name) {
  char key[160];
  snprintf(key, sizeof key, "# TYPE %s ", name);
  if (!p->s.p || p->s.oom) return 0;
  if (!strncmp(p->s.p, key, strlen(key))) return 1;
  snprintf(key, sizeof key, "\n# TYPE %s ", name);
  return strstr(p->s.p, key) != NULL;
}

static void perf_families(ei__prom *p, const snap *sn) {
  static const struct {
    const char *name, *help;
    perf_field f;
  } fams[] = {
      {"ei_model_cpu_cycles_total", "CPU cycles of the version's executions (perf_event).", P_CYCLES},
      {"ei_model_cpu_instructions_total", "Instructions retired in the version's executions.", P_INSTR},
      {"ei_model_cache_references_total", "Last-level cache references of the version's executions.", P_CREF},
      {"ei_model_cache_misses_total", "Last-level cache misses of the version's executions.", P_CMISS},
      {"ei_model_task_clock_seconds_total", "CPU time of the version's executions (task-clock).", P_TASK},
      {"ei_model_context_switches_total", "Context switches during the version's executions.", P_CSW},
  };
  for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++)
    if (!prom_has_family(p, fams[i].name)) perf_family(p, sn, fams[i].name, fams[i].help, fams[i].f);
}

static void serving_families(ei__prom *p, const snap *sn) {
  ver_family(p, sn, "ei_inference_request_success_total", "counter",
             "Inference requests answered successfully (REST, gRPC, classify).", F_SUCCESS);
  static const char *const reasons[EI__FAIL_N] = {"rejected", "timeout", "invalid", "internal"};
  ei__prom_family(p, "ei_inference_request_failure_total", "counter",
                  "Failed inference requests of a resolved model version, by reason: rejected (never executed: "
                  "queue full, shutting down, client gone), timeout (deadline passed), invalid (bad request), "
                  "internal (engine failure).");
  FOR_VERSIONS(sn, mi, vi)
  for (int r = 0; r < EI__FAIL_N; r++) {
    ei__prom_label l[3] = {{"model", sn->models[mi].name}, {"version", sn->vers[vi].version}, {"reason", reasons[r]}};
    ei__prom_sample(p, "ei_inference_request_failure_total", l, 3, (double)sn->vers[vi].mx.fail[r]);
  }
  ver_family(p, sn, "ei_inference_count_total", "counter",
             "Inferences (images: rows of the batch dimension) of successful requests.", F_IMAGES);
  ver_family(p, sn, "ei_inference_exec_count_total", "counter",
             "Model executions (engine runs; a dynamic batch of several requests is one).", F_EXECS);
  ver_family(p, sn, "ei_pending_requests", "gauge", "Requests queued for the version, not yet executing.",
             F_PENDING);
  hist_family(p, sn, "ei_request_duration_seconds",
              "Successful requests: from the whole request received to the end of its execution.", H_REQUEST);
  hist_family(p, sn, "ei_queue_duration_seconds", "Successful requests: time waiting in the model's queue.",
              H_QUEUE);
  hist_family(p, sn, "ei_compute_duration_seconds",
              "Executions: input staging, engine run and output copy of one (batched) execution.", H_COMPUTE);
  hist_family(p, sn, "ei_batch_size", "Executions: requests' rows in one execution (before padding to a planned "
              "size).", H_BATCH);
  /* lifecycle */
  ver_family(p, sn, "ei_model_ready", "gauge", "1 for each loaded version (the series goes with the version).",
             F_READY);
  ver_family(p, sn, "ei_model_weight_bytes", "gauge", "Packed weights and constants held by the loaded version.",
             F_WEIGHT);
  ver_family(p, sn, "ei_model_arena_bytes", "gauge",
             "Activation arenas of the loaded version: each instance's largest planned arena, summed.", F_ARENA);
  ei__prom_family(p, "ei_model_load_duration_seconds", "histogram",
                  "Successful version loads: read, optimize, plan and warm up.");
  for (int mi = 0; mi < sn->nmodels; mi++) {
    ei__prom_label l[1] = {{"model", sn->models[mi].name}};
    const ei__metrics_hist *h = &sn->models[mi].load_hist;
    ei__prom_histogram(p, "ei_model_load_duration_seconds", l, 1, ei__metrics_load_bounds, h->counts,
                       EI__METRICS_NLOAD, h->sum);
  }
  ei__prom_family(p, "ei_model_loads_total", "counter", "Version loads attempted since the server started.");
  for (int mi = 0; mi < sn->nmodels; mi++) {
    ei__prom_label l[1] = {{"model", sn->models[mi].name}};
    ei__prom_sample(p, "ei_model_loads_total", l, 1, (double)sn->models[mi].loads);
  }
  ei__prom_family(p, "ei_model_load_failures_total", "counter",
                  "Failed loads since the server started (a version that failed, or a config.json not applied).");
  for (int mi = 0; mi < sn->nmodels; mi++) {
    ei__prom_label l[1] = {{"model", sn->models[mi].name}};
    ei__prom_sample(p, "ei_model_load_failures_total", l, 1, (double)sn->models[mi].load_failures);
  }
}

/* ---- process ---- */
static int read_small(const char *path, char *buf, size_t n) {
  FILE *f = fopen(path, "re");
  if (!f) return -1;
  size_t got = fread(buf, 1, n - 1, f);
  fclose(f);
  buf[got] = 0;
  return got ? 0 : -1;
}

static void process_families(ei__prom *p) {
  char buf[4096];
  long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
  if (tick <= 0) tick = 100;
  if (page <= 0) page = 4096;
  double cpu = -1, start = -1, vsize = -1, rss = -1;
  if (!read_small("/proc/self/stat", buf, sizeof buf)) {
    char *q = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
    if (q) {
      unsigned long long f[24] = {0};
      int n = 0;
      char *save = NULL;
      for (char *t = strtok_r(q + 1, " ", &save); t && n < 24; t = strtok_r(NULL, " ", &save))
        f[n++] = strtoull(t, NULL, 10);
      /* fields from 3 (state): utime 14, stime 15, starttime 22, vsize 23, rss 24 */
      if (n >= 22) {
        cpu = (double)(f[11] + f[12]) / (double)tick;
        vsize = (double)f[20];
        rss = (double)f[21] * (double)page;
        if (!read_small("/proc/stat", buf, sizeof buf)) {
          char *b = strstr(buf, "\nbtime ");
          if (b) start = (double)strtoull(b + 7, NULL, 10) + (double)f[19] / (double)tick;
        }
      }
    }
  }
  int fds = -1;
  DIR *d = opendir("/proc/self/fd");
  if (d) {
    fds = 0;
    for (struct dirent *e; (e = readdir(d));)
      if (e->d_name[0] != '.') fds++;
    closedir(d);
    fds--; /* the directory's own descriptor */
  }
  struct rlimit rl;
  if (cpu >= 0) {
    ei__prom_family(p, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
    ei__prom_sample(p, "process_cpu_seconds_total", NULL, 0, cpu);
  }
  if (rss >= 0) {
    ei__prom_family(p, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    ei__prom_sample(p, "process_resident_memory_bytes", NULL, 0, rss);
    ei__prom_family(p, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    ei__prom_sample(p, "process_virtual_memory_bytes", NULL, 0, vsize);
  }
  if (fds >= 0) {
    ei__prom_family(p, "process_open_fds", "gauge", "Number of open file descriptors.");
    ei__prom_sample(p, "process_open_fds", NULL, 0, fds);
  }
  if (!getrlimit(RLIMIT_NOFILE, &rl)) {
    ei__prom_family(p, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
    ei__prom_sample(p, "process_max_fds", NULL, 0, rl.rlim_cur == RLIM_INFINITY ? INFINITY : (double)rl.rlim_cur);
  }
  if (start >= 0) {
    ei__prom_family(p, "process_start_time_seconds", "gauge",
                    "Start time of the process since unix epoch in seconds.");
    ei__prom_sample(p, "process_start_time_seconds", NULL, 0, start);
  }
}

static void server_families(ei__prom *p) {
  int conns[3];
  ei__conn_counts(conns);
  static const char *const protos[3] = {"http1", "http2", "grpc"};
  ei__prom_family(p, "ei_connections", "gauge", "Open client connections by protocol (HTTP/1.1, h2c, gRPC).");
  for (int i = 0; i < 3; i++) {
    ei__prom_label l[1] = {{"protocol", protos[i]}};
    ei__prom_sample(p, "ei_connections", l, 1, conns[i]);
  }
  ei__prom_family(p, "ei_build_info", "gauge", "1, labelled with the edgeinfer version and the kernels' ISA level.");
  ei__prom_label l[2] = {{"version", EI_VERSION_STRING}, {"isa", ei_isa_name()}};
  ei__prom_sample(p, "ei_build_info", l, 2, 1);
}

void ei__metrics_write(ei__server *s, ei__prom *p) {
  if (!s || !p) return;
  snap sn;
  if (snap_take(s, &sn)) {
    p->s.oom = 1;
    return;
  }
  serving_families(p, &sn);
  server_families(p);
  process_families(p);
  if (s->device) ei__device_write(s->device, p); /* the device families, and (with the server) the per-model ones */
  perf_families(p, &sn); /* the per-model counters device.c did not write (no device profile) */
  snap_free(&sn);
}

/* ---- the scrape, off the loop ---- */
static atomic_int scrapes; /* queued or running: they read the server */

typedef struct scrape {
  uv_work_t w;
  ei__server *s;
  ei__prom *p;
  void (*cb)(void *ud, ei__prom *p);
  void *ud;
} scrape;

static void scrape_work(uv_work_t *w) {
  scrape *sc = w->data;
  sc->p = ei__prom_new();
  if (sc->p) ei__metrics_write(sc->s, sc->p);
  atomic_fetch_sub(&scrapes, 1); /* the server is not touched after this */
}

static void scrape_after(uv_work_t *w, int status) {
  scrape *sc = w->data;
  if (status) { /* cancelled before it ran */
    atomic_fetch_sub(&scrapes, 1);
    ei__prom_free(sc->p);
    sc->p = NULL;
  }
  sc->cb(sc->ud, sc->p);
  free(sc);
}

int ei__metrics_scrape(ei__server *s, void (*cb)(void *ud, ei__prom *p), void *ud) {
  scrape *sc = calloc(1, sizeof *sc);
  if (!sc) goto err;
  sc->s = s;
  sc->cb = cb;
  sc->ud = ud;
  sc->w.data = sc;
  atomic_fetch_add(&scrapes, 1);
  if (uv_queue_work(s->loop, &sc->w, scrape_work, scrape_after)) {
    atomic_fetch_sub(&scrapes, 1);
    goto err;
  }
  return 0;
err:
  free(sc);
  return -1;
}

void ei__metrics_quiesce(void) {
  while (atomic_load(&scrapes) > 0) {
    struct timespec ts = {0, 1000000L};
    nanosleep(&ts, NULL);
  }
}
