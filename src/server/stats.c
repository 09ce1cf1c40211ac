/* src/server/stats.c: per-version statistics in Triton's shapes (ModelStatistics / InferStatistics /
 * InferBatchStatistics): request durations from receipt to the end of the execution; queue, compute_input,
 * compute_infer and compute_output per successful request (the batch's durations, as Triton counts them);
 * inference_count (rows) vs execution_count (engine runs); batch_stats per batch size. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core_impl.h"

static uint64_t epoch_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void add(ei__srv_duration *d, uint64_t ns) {
  d->count++;
  d->ns += ns;
}

void ei__stats_init(ei__version *v) {
  memset(&v->st, 0, sizeof v->st);
  snprintf(v->st.name, sizeof v->st.name, "%s", v->model ? v->model->name : "");
  snprintf(v->st.version, sizeof v->st.version, "%s", v->name);
}

/* GET /metrics' failure reasons: rejected (never executed: queue full, shutting down, the client went away while
 * queued), timeout (the deadline passed), invalid (the request's fault), internal (the engine's). */
static int fail_reason(ei__srv_code c) {
  switch (c) {
  case EI_SRV_EXHAUSTED:
  case EI_SRV_UNAVAILABLE:
  case EI_SRV_CANCELLED:
    return EI__FAIL_REJECTED;
  case EI_SRV_DEADLINE:
    return EI__FAIL_TIMEOUT;
  case EI_SRV_INTERNAL:
    return EI__FAIL_INTERNAL;
  default:
    return EI__FAIL_INVALID;
  }
}

void ei__stats_request(ei__version *v, const ei__req *r, int success) {
  const ei__req_core *c = ei__core(r);
  uint64_t end = r->t_finished ? r->t_finished : ei__srv_now_ns();
  uint64_t total = end > r->t_received && r->t_received ? end - r->t_received : 0;
  pthread_mutex_lock(&v->st_mu);
  ei__srv_model_stats *st = &v->st;
  if (success) {
    add(&st->success, total);
    add(&st->queue, r->t_started > r->t_queued && r->t_queued ? r->t_started - r->t_queued : 0);
    add(&st->compute_input, c->d_in);
    add(&st->compute_infer, c->d_infer);
    add(&st->compute_output, c->d_out);
    st->inference_count += (uint64_t)(c->batch > 0 ? c->batch : 1);
    ei__metrics_observe(&v->mx.request, ei__metrics_dur_bounds, EI__METRICS_NDUR, (double)total / 1e9);
    ei__metrics_observe(&v->mx.queue, ei__metrics_dur_bounds, EI__METRICS_NDUR,
                        (double)(r->t_started > r->t_queued && r->t_queued ? r->t_started - r->t_queued : 0) / 1e9);
  } else {
    add(&st->fail, total);
    if (r->code == EI_SRV_DEADLINE) st->fail_deadline++;
    else if (r->code == EI_SRV_CANCELLED) st->fail_cancelled++;
    else if (r->code == EI_SRV_EXHAUSTED) st->fail_exhausted++;
    v->mx.fail[fail_reason(r->code)]++;
  }
  pthread_mutex_unlock(&v->st_mu);
}

void ei__stats_execution(ei__version *v, int64_t batch, uint64_t t_in, uint64_t t_infer, uint64_t t_out) {
  pthread_mutex_lock(&v->st_mu);
  ei__srv_model_stats *st = &v->st;
  st->execution_count++;
  st->last_inference_ms = epoch_ms();
  ei__metrics_observe(&v->mx.compute, ei__metrics_dur_bounds, EI__METRICS_NDUR, (double)(t_in + t_infer + t_out) / 1e9);
  ei__metrics_observe(&v->mx.batch, ei__metrics_batch_bounds, EI__METRICS_NBATCH, (double)batch);
  int i = 0;
  while (i < st->nbatch && st->batch[i].batch_size < (uint64_t)batch) i++;
  if (i == st->nbatch || st->batch[i].batch_size != (uint64_t)batch) {
    if (st->nbatch < (int)(sizeof st->batch / sizeof st->batch[0])) {
      memmove(&st->batch[i + 1], &st->batch[i], sizeof st->batch[0] * (size_t)(st->nbatch - i));
      memset(&st->batch[i], 0, sizeof st->batch[i]);
      st->batch[i].batch_size = (uint64_t)batch;
      st->nbatch++;
    } else {
      i = -1; /* more distinct sizes than slots: counted in the totals only */
    }
  }
  if (i >= 0) {
    add(&st->batch[i].compute_input, t_in);
    add(&st->batch[i].compute_infer, t_infer);
    add(&st->batch[i].compute_output, t_out);
  }
  pthread_mutex_unlock(&v->st_mu);
}

int ei__srv_stats(ei__server *s, const char *name, const char *version, ei__srv_model_stats *out, int cap,
                  ei__srv_code *code, char *err, size_t errlen) {
  if (code) *code = EI_SRV_OK;
  if (err && errlen) err[0] = 0;
  int n = 0;
  int one = name && *name;
  if (one && !ei__repo_find(s, name)) {
    if (code) *code = EI_SRV_NOT_FOUND;
    if (err && errlen) snprintf(err, errlen, "unknown model '%s'", name);
    return 0;
  }
  for (int i = 0; i < s->nmodels; i++) {
    ei__model *m = s->models[i];
    if (one && strcmp(m->name, name)) continue;
    int matched = 0;
    pthread_mutex_lock(&m->vmu);
    for (int k = 0; k < m->nversions; k++) {
      ei__version *v = m->versions[k];
      if (version && *version && strcmp(v->name, version)) continue;
      matched = 1;
      if (n < cap) {
        pthread_mutex_lock(&v->st_mu);
        out[n] = v->st;
        pthread_mutex_unlock(&v->st_mu);
        out[n].load_attempts = m->load_attempts;
        out[n].load_failures = m->load_failures;
        snprintf(out[n].load_error, sizeof out[n].load_error, "%s", m->load_error);
      }
      n++;
    }
    pthread_mutex_unlock(&m->vmu);
    if (one && version && *version && !matched) {
      if (code) *code = EI_SRV_NOT_FOUND;
      if (err && errlen) snprintf(err, errlen, "model '%s' has no loaded version '%s'", name, version);
      return 0;
    }
  }
  return n;
}

ei__srv_model_stats *ei__srv_stats_all(ei__server *s, const char *name, const char *version, int *n,
                                       ei__srv_code *code, char *err, size_t errlen) {
  int cap = 8;
  ei__srv_model_stats *st = NULL;
  *code = EI_SRV_OK;
  for (;;) { /* versions may be loaded between the calls: grow until the list fits */
    free(st);
    if (!(st = malloc((size_t)cap * sizeof *st))) {
      *code = EI_SRV_INTERNAL;
      snprintf(err, errlen, "out of memory for the statistics");
      return NULL;
    }
    *n = ei__srv_stats(s, name, version, st, cap, code, err, errlen);
    if (*code != EI_SRV_OK) {
      free(st);
      return NULL;
    }
    if (*n <= cap) return st;
    cap = *n;
  }
}
