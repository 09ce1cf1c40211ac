/* src/server/batcher.c: the server object, submission (decode on the server's service threads), per-model bounded
 * queues, executor threads with dynamic batching, deadlines, cancellation, completion on the loop (one uv_async
 * with a lock-protected list), graceful drain, the engine pool's hold while a request arrives (ei__srv_expect). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core_impl.h"
#include "device.h"

void ei__srv_options_init(ei__srv_options *o) {
  memset(o, 0, sizeof *o);
  o->max_body_bytes = (size_t)64 << 20;
  o->max_json_bytes = (size_t)8 << 20;
  o->max_tensor_elements = (int64_t)64 << 20;
  o->max_queue = 64;
  o->max_image_pixels = (size_t)64 << 20;
  o->model_control = EI_SRV_CONTROL_NONE;
  o->poll_secs = 10;
  o->settle_ms = 2000;
}

int ei__srv_live(const ei__server *s) { return s != NULL; }

int ei__srv_ready(const ei__server *s) { return s && !atomic_load(&((ei__server *)s)->draining); }

const char *const *ei__srv_extensions(const ei__server *s, int *n) {
  static const char *const ext[] = {"classification", "binary_tensor_data", "model_repository", "statistics"};
  (void)s;
  *n = (int)(sizeof ext / sizeof ext[0]);
  return ext;
}

static void unlink_locked(ei__model *m, ei__req *r);
static void reap_locked(ei__model *m, uint64_t now, ei__req **dead);
static void fail_list(ei__server *s, ei__req *dead);
static void deadline_rearm(ei__server *s);

/* ---- completion ---- */

static void async_ref(ei__server *s) {
  if (s->inflight > 0 && !s->async_refd) {
    uv_ref((uv_handle_t *)s->async);
    s->async_refd = 1;
  } else if (s->inflight == 0 && s->async_refd) {
    uv_unref((uv_handle_t *)s->async);
    s->async_refd = 0;
  }
}

void ei__complete(ei__server *s, ei__req *r) {
  ei__req_core *c = ei__core(r);
  if (!r->t_finished) r->t_finished = ei__srv_now_ns();
  if (c->ver && r->code != EI_SRV_OK) ei__stats_request(c->ver, r, 0);
  if (r->code != EI_SRV_CANCELLED && r->ops && r->ops->encode) r->ops->encode(r);
  /* after the push the request belongs to the loop; the send happens under the lock so that the loop cannot
   * finish (and the server be destroyed) before it */
  pthread_mutex_lock(&s->done_mu);
  c->done_next = NULL;
  if (s->done_tail) ei__core(s->done_tail)->done_next = r;
  else s->done_head = r;
  s->done_tail = r;
  uv_async_send(s->async);
  pthread_mutex_unlock(&s->done_mu);
}

static void join_executors(ei__server *s) {
  if (s->executors_joined) return;
  ei__exec_stop(s);
  s->executors_joined = 1;
}

/* Returns 1 when it ran the drain callback (which may have destroyed the server). */
static int process_done(ei__server *s) {
  ei__ctl_process(s);
  pthread_mutex_lock(&s->done_mu);
  ei__req *r = s->done_head;
  s->done_head = s->done_tail = NULL;
  pthread_mutex_unlock(&s->done_mu);
  while (r) {
    ei__req *next = ei__core(r)->done_next;
    if (r->ops && r->ops->done) r->ops->done(r);
    s->inflight--;
    ei__req_release(r); /* the core's reference */
    r = next;
  }
  async_ref(s);
  if (s->drain_requested && !s->drained && s->inflight == 0) {
    s->drained = 1;
    join_executors(s);
    if (s->drain_cb) s->drain_cb(s, s->drain_ud);
    return 1;
  }
  return 0;
}

/* Queued requests whose deadline passed are answered when it passes, even while the executor is busy. */
static void on_deadline(uv_timer_t *t) {
  ei__server *s = t->data;
  uint64_t now = ei__srv_now_ns();
  for (int k = 0; k < s->nmodels; k++) {
    ei__model *m = s->models[k];
    ei__req *dead = NULL;
    pthread_mutex_lock(&m->mu);
    reap_locked(m, now, &dead);
    pthread_mutex_unlock(&m->mu);
    fail_list(s, dead);
  }
  deadline_rearm(s);
}

static void deadline_rearm(ei__server *s) {
  if (!s->deadline_timer) return;
  uint64_t earliest = UINT64_MAX;
  if (atomic_load(&s->ndeadline) > 0)
    for (int k = 0; k < s->nmodels; k++) {
      ei__model *m = s->models[k];
      pthread_mutex_lock(&m->mu);
      for (ei__req *r = m->qhead; r; r = ei__core(r)->qnext)
        if (r->deadline_ns && r->deadline_ns < earliest) earliest = r->deadline_ns;
      pthread_mutex_unlock(&m->mu);
    }
  if (earliest == UINT64_MAX) {
    uv_timer_stop(s->deadline_timer);
    return;
  }
  uint64_t now = ei__srv_now_ns();
  uint64_t ms = earliest > now ? (earliest - now + 999999) / 1000000 : 0;
  uv_timer_start(s->deadline_timer, on_deadline, ms, 0);
}

static void on_async(uv_async_t *a) {
  ei__server *s = a->data;
  /* the drain callback may destroy the server */
  if (!process_done(s)) deadline_rearm(s);
}

/* ---- submission ---- */

/* Admits r to its model's queue, or fails it. Service thread. */
static void admit(ei__server *s, ei__req *r) {
  ei__req_core *c = ei__core(r);
  ei__model *m = c->ver->model;
  pthread_mutex_lock(&m->mu);
  if (atomic_load(&r->cancelled)) {
    ei__req_fail(r, EI_SRV_CANCELLED, "the client went away");
  } else if (m->stop) {
    ei__req_fail(r, EI_SRV_UNAVAILABLE, "the server is shutting down");
  } else if (m->qlen >= m->max_queue) {
    ei__req_fail(r, EI_SRV_EXHAUSTED, "model '%s' is overloaded: %d requests are queued (max_queue)", m->name, m->qlen);
  } else if (r->deadline_ns && ei__srv_now_ns() >= r->deadline_ns) {
    ei__req_fail(r, EI_SRV_DEADLINE, "the deadline passed before the request was queued");
  } else {
    r->t_queued = ei__srv_now_ns();
    c->qprev = m->qtail;
    c->qnext = NULL;
    if (m->qtail) ei__core(m->qtail)->qnext = r;
    else m->qhead = r;
    m->qtail = r;
    m->qlen++;
    c->queued = 1;
    atomic_store(&c->qmodel, m);
    if (r->deadline_ns) atomic_fetch_add(&s->ndeadline, 1);
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->mu);
    if (r->deadline_ns) uv_async_send(s->async); /* the loop arms the deadline timer */
    return;
  }
  pthread_mutex_unlock(&m->mu);
  ei__complete(s, r);
}

static void service(ei__req *r) {
  ei__req_core *c = ei__core(r);
  ei__server *s = c->srv;
  if (c->refused_at_submit) {
    ei__complete(s, r);
    return;
  }
  if (atomic_load(&r->cancelled)) {
    ei__req_fail(r, EI_SRV_CANCELLED, "the client went away");
    ei__complete(s, r);
    return;
  }
  if (ei__infer_prepare(s, r) != EI_SRV_OK) {
    if (!r->code) ei__req_fail(r, EI_SRV_INTERNAL, "request preparation failed");
    ei__complete(s, r);
    return;
  }
  admit(s, r);
}

static void *svc_main(void *arg) {
  ei__server *s = arg;
  pthread_mutex_lock(&s->svc_mu);
  for (;;) {
    while (!s->svc_head && !s->svc_stop) pthread_cond_wait(&s->svc_cv, &s->svc_mu);
    ei__req *r = s->svc_head;
    if (!r) break; /* stopping, and nothing left */
    s->svc_head = ei__core(r)->svc_next;
    if (!s->svc_head) s->svc_tail = NULL;
    pthread_mutex_unlock(&s->svc_mu);
    service(r);
    ei__req_release(r); /* the service's reference */
    pthread_mutex_lock(&s->svc_mu);
  }
  pthread_mutex_unlock(&s->svc_mu);
  return NULL;
}

static int svc_start(ei__server *s, char *err, size_t errlen) {
  for (int i = 0; i < EI__SVC_THREADS; i++) {
    int rc = pthread_create(&s->svc[i], NULL, svc_main, s);
    if (rc) {
      snprintf(err, errlen, "cannot start a service thread: %s", strerror(rc));
      return -1;
    }
    s->nsvc++;
  }
  return 0;
}

/* Once no request is in flight: the service threads finish and are joined. */
static void svc_stop(ei__server *s) {
  pthread_mutex_lock(&s->svc_mu);
  s->svc_stop = 1;
  pthread_cond_broadcast(&s->svc_cv);
  pthread_mutex_unlock(&s->svc_mu);
  for (int i = 0; i < s->nsvc; i++) pthread_join(s->svc[i], NULL);
  s->nsvc = 0;
}

/* Only while no request is in flight: a busy server's pool goes from one run to the next without sleeping, and
 * holding it there would only take CPU from the threads receiving and decoding the next requests. */
void ei__srv_expect(ei__server *s) {
  if (s && s->pool && s->inflight == 0 && !atomic_load(&s->draining)) ei_threadpool_hold(s->pool, EI__SRV_EXPECT_NS);
}

void ei__srv_submit(ei__server *s, ei__req *r) {
  ei__req_core *c = ei__core(r);
  c->srv = s;
  ei__srv_expect(s);
  if (!r->t_received) r->t_received = ei__srv_now_ns();
  atomic_fetch_add(&r->refs, 1); /* the core's, dropped after done */
  s->inflight++;
  async_ref(s);
  if (atomic_load(&s->draining)) {
    ei__req_fail(r, EI_SRV_UNAVAILABLE, "the server is shutting down");
    c->refused_at_submit = 1;
  }
  atomic_fetch_add(&r->refs, 1); /* the service's */
  c->svc_next = NULL;
  pthread_mutex_lock(&s->svc_mu);
  if (s->svc_tail) ei__core(s->svc_tail)->svc_next = r;
  else s->svc_head = r;
  s->svc_tail = r;
  pthread_cond_signal(&s->svc_cv);
  pthread_mutex_unlock(&s->svc_mu);
}

void ei__req_cancel(ei__req *r) {
  if (!r) return;
  ei__req_core *c = ei__core(r);
  atomic_store(&r->cancelled, 1);
  ei__model *m = atomic_load(&c->qmodel);
  if (!m) return; /* not queued yet: admission sees the flag */
  pthread_mutex_lock(&m->mu);
  int was = c->queued;
  if (was) unlink_locked(m, r);
  pthread_mutex_unlock(&m->mu);
  if (was) {
    ei__req_fail(r, EI_SRV_CANCELLED, "the client went away while the request was queued");
    ei__complete(c->srv, r);
  }
}

/* ---- executors ---- */

static void unlink_locked(ei__model *m, ei__req *r) {
  ei__req_core *c = ei__core(r);
  if (r->deadline_ns) atomic_fetch_sub(&m->srv->ndeadline, 1);
  if (c->qprev) ei__core(c->qprev)->qnext = c->qnext;
  else m->qhead = c->qnext;
  if (c->qnext) ei__core(c->qnext)->qprev = c->qprev;
  else m->qtail = c->qprev;
  c->qprev = c->qnext = NULL;
  c->queued = 0;
  m->qlen--;
}

/* Queued requests whose deadline passed or whose client went away leave the queue, onto *dead. */
static void reap_locked(ei__model *m, uint64_t now, ei__req **dead) {
  for (ei__req *r = m->qhead, *next; r; r = next) {
    next = ei__core(r)->qnext;
    if (atomic_load(&r->cancelled)) {
      unlink_locked(m, r);
      ei__req_fail(r, EI_SRV_CANCELLED, "the client went away while the request was queued");
    } else if (r->deadline_ns && now >= r->deadline_ns) {
      unlink_locked(m, r);
      ei__req_fail(r, EI_SRV_DEADLINE, "the deadline passed while the request was queued (%.3f ms)",
                   (now - r->t_queued) / 1e6);
    } else {
      continue;
    }
    ei__core(r)->done_next = *dead;
    *dead = r;
  }
}

static int is_preferred(const ei__model *m, int64_t n) {
  for (int i = 0; i < m->npreferred; i++)
    if (m->preferred[i] == n) return 1;
  return 0;
}

/* Takes the head request and, when batching, compatible followers (same version, fitting max_batch_size). */
static int take_batch_locked(ei__model *m, ei__req **batch, int cap, int64_t *total) {
  ei__req *h = m->qhead;
  ei__version *v = ei__core(h)->ver;
  int n = 0;
  *total = 0;
  unlink_locked(m, h);
  batch[n++] = h;
  *total = ei__core(h)->batch;
  if (!(v->dyn && v->rows_static)) return n;
  for (ei__req *r = m->qhead, *next; r && n < cap && *total < v->max_batch; r = next) {
    next = ei__core(r)->qnext;
    ei__req_core *c = ei__core(r);
    if (c->ver != v || *total + c->batch > v->max_batch) continue;
    unlink_locked(m, r);
    batch[n++] = r;
    *total += c->batch;
  }
  return n;
}

static void fail_list(ei__server *s, ei__req *dead) {
  while (dead) {
    ei__req *next = ei__core(dead)->done_next;
    ei__complete(s, dead);
    dead = next;
  }
}

void ei__sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) && errno == EINTR) {
  }
}

static void run_batch(ei__server *s, ei__model *m, int inst_index, ei__req **batch, int n, int64_t total) {
  ei__version *v = ei__core(batch[0])->ver;
  ei__instance *in = &v->inst[inst_index < v->ninst ? inst_index : 0];
  uint64_t t0 = ei__srv_now_ns();
  for (int i = 0; i < n; i++) batch[i]->t_started = t0;
  if (s->opt.test_delay_ms > 0) ei__sleep_ms(s->opt.test_delay_ms);
  t0 = ei__srv_now_ns();
  ei_tensor ins[EI__MAX_IO];
  const ei_tensor *use = ei__core(batch[0])->in;
  int64_t run_b = total;
  if (v->max_batch > 0 && v->rows_static) {
    /* the smallest planned size that holds the batch (padding rows are zero, their outputs dropped) */
    int64_t p = total;
    for (int k = 0; k < v->nplanned; k++)
      if (v->planned[k] >= total) {
        p = v->planned[k];
        break;
      }
    if (n > 1 || p != total) {
      run_b = p;
      for (int i = 0; i < v->ninputs; i++) {
        ins[i] = ei__core(batch[0])->in[i];
        ins[i].dims[0] = p;
        ins[i].data = in->staging[i];
        size_t off = 0;
        for (int q = 0; q < n; q++) {
          size_t bytes = v->row_bytes[i] * (size_t)ei__core(batch[q])->batch;
          memcpy((char *)in->staging[i] + off, ei__core(batch[q])->in[i].data, bytes);
          off += bytes;
        }
        if (p > total) memset((char *)in->staging[i] + off, 0, v->row_bytes[i] * (size_t)(p - total));
      }
      use = ins;
    }
  }
  /* per-model counters (perf.c): this thread's and the pool workers' groups read before and after the run */
  ei__perf *perf = ei__device_perf(s->device);
  ei__perf_exec px;
  if (perf) ei__perf_exec_begin(perf, &px, v->own_pool ? v->own_pool : s->pool);
  uint64_t t1 = ei__srv_now_ns();
  char err[256];
  ei_status st = ei_session_run(in->session, v->ninputs, use, v->noutputs, in->outs, err, sizeof err);
  uint64_t t2 = ei__srv_now_ns();
  int64_t row = 0;
  for (int i = 0; i < n; i++) {
    ei__req *r = batch[i];
    if (st) ei__req_fail(r, EI_SRV_INTERNAL, "model '%s' version %s failed: %s (%s)", m->name, v->name, err,
                         ei_strerror(st));
    else ei__infer_results(r, v, in->outs, row, run_b);
    row += ei__core(r)->batch;
  }
  uint64_t t3 = ei__srv_now_ns();
  if (!st) ei__stats_execution(v, total, t1 - t0, t2 - t1, t3 - t2);
  if (perf) ei__version_ref(v); /* the completions below may drop the requests' last references to v */
  for (int i = 0; i < n; i++) {
    ei__req *r = batch[i];
    ei__req_core *c = ei__core(r);
    c->executed = !st;
    c->d_in = t1 - t0, c->d_infer = t2 - t1, c->d_out = t3 - t2;
    r->t_finished = ei__srv_now_ns();
    if (r->code == EI_SRV_OK) ei__stats_request(v, r, 1);
    ei__complete(s, r);
  }
  /* the counters are read once the responses are on their way (the execution's counts then include the few
   * microseconds of its completions; the batch is not kept waiting for the reads) */
  if (perf) {
    ei__perf_counts pc;
    if (ei__perf_exec_end(perf, &px, &pc) && !st) {
      pthread_mutex_lock(&v->st_mu);
      ei__perf_counts_add(&v->perf, &pc);
      pthread_mutex_unlock(&v->st_mu);
    }
    ei__version_unref(v);
  }
}

static void *executor(void *arg) {
  ei__exec_arg *a = arg;
  ei__model *m = a->model;
  ei__server *s = m->srv;
  ei__req *batch[EI__CFG_MAX_BATCH];
  int busy = 0; /* ran just before: arriving requests may wait for a fuller batch */
  for (;;) {
    ei__req *dead = NULL;
    pthread_mutex_lock(&m->mu);
    reap_locked(m, ei__srv_now_ns(), &dead);
    if (dead) {
      /* answer them before sleeping */
      pthread_mutex_unlock(&m->mu);
      fail_list(s, dead);
      continue;
    }
    if (!m->qhead) busy = 0;
    while (!m->qhead && !m->stop) pthread_cond_wait(&m->cv, &m->mu);
    if (!m->qhead) {
      pthread_mutex_unlock(&m->mu);
      fail_list(s, dead);
      break;
    }
    ei__version *v = ei__core(m->qhead)->ver;
    /* while busy: wait up to max_queue_delay (from the oldest request) for a fuller batch */
    if (busy && v->dyn && v->rows_static && m->delay_ns) {
      uint64_t until = m->qhead->t_queued + m->delay_ns;
      for (;;) {
        int64_t rows = 0;
        for (ei__req *r = m->qhead; r; r = ei__core(r)->qnext)
          if (ei__core(r)->ver == v) rows += ei__core(r)->batch;
        uint64_t now = ei__srv_now_ns();
        if (rows >= v->max_batch || is_preferred(m, rows) || now >= until || m->stop) break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t abs = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec + (until - now);
        ts.tv_sec = (time_t)(abs / 1000000000ull);
        ts.tv_nsec = (long)(abs % 1000000000ull);
        pthread_cond_timedwait(&m->cv, &m->mu, &ts);
        reap_locked(m, ei__srv_now_ns(), &dead);
        if (!m->qhead || ei__core(m->qhead)->ver != v) break;
      }
      if (!m->qhead) {
        pthread_mutex_unlock(&m->mu);
        fail_list(s, dead);
        continue;
      }
    }
    int64_t total;
    int n = take_batch_locked(m, batch, EI__CFG_MAX_BATCH, &total);
    pthread_mutex_unlock(&m->mu);
    fail_list(s, dead);
    run_batch(s, m, a->index, batch, n, total);
    busy = 1;
  }
  return NULL;
}

int ei__exec_start(ei__server *s, ei__model *m, char *err, size_t errlen) {
  (void)s;
  m->nexec = m->cfg.instance_count > 0 ? m->cfg.instance_count : 1;
  for (int i = 0; i < m->nexec; i++) {
    ei__exec_arg *arg = malloc(sizeof *arg);
    if (!arg) {
      snprintf(err, errlen, "out of memory");
      return -1;
    }
    arg->model = m;
    arg->index = i;
    int rc = pthread_create(&m->exec[i], NULL, executor, arg);
    if (rc) {
      free(arg);
      snprintf(err, errlen, "cannot start the executor of model '%s': %s", m->name, strerror(rc));
      return -1;
    }
    m->exec_started[i] = 1;
    m->exec_arg[i] = arg;
  }
  return 0;
}

void ei__exec_stop(ei__server *s) {
  for (int k = 0; k < s->nmodels; k++) {
    ei__model *m = s->models[k];
    pthread_mutex_lock(&m->mu);
    m->stop = 1;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    for (int i = 0; i < m->nexec; i++)
      if (m->exec_started[i]) {
        pthread_join(m->exec[i], NULL);
        m->exec_started[i] = 0;
        free(m->exec_arg[i]);
        m->exec_arg[i] = NULL;
      }
  }
}

/* ---- the server ---- */

static void async_close_cb(uv_handle_t *h) { free(h); }

ei_status ei__server_create(uv_loop_t *loop, const ei__srv_options *opt, ei__server **out, char *err, size_t errlen) {
  *out = NULL;
  ei__server *s = calloc(1, sizeof *s);
  ei_status st = EI_OK;
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return EI_E_NOMEM;
  }
  s->loop = loop;
  if (opt) s->opt = *opt;
  else ei__srv_options_init(&s->opt);
  ei__srv_options defaults;
  ei__srv_options_init(&defaults);
  if (!s->opt.max_body_bytes) s->opt.max_body_bytes = defaults.max_body_bytes;
  if (!s->opt.max_json_bytes) s->opt.max_json_bytes = defaults.max_json_bytes;
  if (s->opt.max_tensor_elements <= 0) s->opt.max_tensor_elements = defaults.max_tensor_elements;
  if (s->opt.max_queue <= 0) s->opt.max_queue = defaults.max_queue;
  if (!s->opt.max_image_pixels) s->opt.max_image_pixels = defaults.max_image_pixels;
  atomic_init(&s->draining, 0);
  pthread_mutex_init(&s->done_mu, NULL);
  pthread_mutex_init(&s->svc_mu, NULL);
  pthread_cond_init(&s->svc_cv, NULL);
  s->async = calloc(1, sizeof *s->async);
  if (!s->async) {
    snprintf(err, errlen, "out of memory");
    st = EI_E_NOMEM;
    goto err_noasync;
  }
  if (uv_async_init(loop, s->async, on_async)) {
    free(s->async);
    s->async = NULL;
    snprintf(err, errlen, "uv_async_init failed");
    st = EI_E_INTERNAL;
    goto err_noasync;
  }
  s->async->data = s;
  uv_unref((uv_handle_t *)s->async);
  atomic_init(&s->ndeadline, 0);
  s->deadline_timer = calloc(1, sizeof *s->deadline_timer);
  if (!s->deadline_timer || uv_timer_init(loop, s->deadline_timer)) {
    free(s->deadline_timer);
    s->deadline_timer = NULL;
    snprintf(err, errlen, "cannot make the deadline timer");
    st = EI_E_NOMEM;
    goto err;
  }
  s->deadline_timer->data = s;
  uv_unref((uv_handle_t *)s->deadline_timer);
  int threads = s->opt.threads > 0 ? s->opt.threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
  if (threads < 1) threads = 1;
  if (threads > 1 || s->opt.ncpus) {
    st = ei_threadpool_create(threads, s->opt.cpus, s->opt.ncpus, &s->pool, err, errlen);
    if (st) goto err;
  }
  if (s->opt.device) { /* the device profile (issue 7): before the executors, which use its counters */
    ei__device_options dopt;
    ei__device_options_init(&dopt);
    if (s->opt.device_interval_s > 0) dopt.interval_s = s->opt.device_interval_s;
    dopt.sysfs_root = s->opt.sysfs_root;
    dopt.perf = !s->opt.no_perf_counters;
    dopt.probe = !s->opt.no_probe;
    dopt.srv = s;
    if ((st = ei__device_start(&dopt, &s->device, err, errlen))) goto err;
  }
  if (svc_start(s, err, errlen)) {
    st = EI_E_INTERNAL;
    goto err;
  }
  if ((st = ei__repo_load(s, err, errlen))) goto err;
  for (int i = 0; i < s->nmodels; i++)
    if (ei__exec_start(s, s->models[i], err, errlen)) {
      st = EI_E_INTERNAL;
      goto err;
    }
  if ((st = ei__loader_start(s, err, errlen))) goto err;
  *out = s;
  return EI_OK;
err:
  ei__exec_stop(s);
  svc_stop(s);
  ei__device_stop(s->device);
  ei__repo_free(s);
  ei_threadpool_destroy(s->pool);
  if (s->deadline_timer) uv_close((uv_handle_t *)s->deadline_timer, async_close_cb);
  uv_close((uv_handle_t *)s->async, async_close_cb);
err_noasync:
  pthread_mutex_destroy(&s->done_mu);
  pthread_mutex_destroy(&s->svc_mu);
  pthread_cond_destroy(&s->svc_cv);
  free(s);
  return st;
}

void ei__server_drain(ei__server *s, void (*cb)(ei__server *s, void *ud), void *ud) {
  atomic_store(&s->draining, 1);
  s->drain_requested = 1;
  s->drain_cb = cb;
  s->drain_ud = ud;
  /* the callback runs from the loop (never inside this call) */
  uv_ref((uv_handle_t *)s->async);
  s->async_refd = 1;
  uv_async_send(s->async);
}

void ei__server_destroy(ei__server *s) {
  if (!s) return;
  atomic_store(&s->draining, 1);
  ei__metrics_quiesce(); /* a GET /metrics page being built reads the models */
  ei__loader_stop(s); /* a load in progress finishes first; queued control requests are refused */
  /* stop the executors: queued requests fail as unavailable */
  for (int k = 0; k < s->nmodels; k++) {
    ei__model *m = s->models[k];
    pthread_mutex_lock(&m->mu);
    m->stop = 1;
    ei__req *dead = NULL;
    while (m->qhead) {
      ei__req *r = m->qhead;
      unlink_locked(m, r);
      ei__req_fail(r, EI_SRV_UNAVAILABLE, "the server is shutting down");
      ei__core(r)->done_next = dead;
      dead = r;
    }
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    fail_list(s, dead);
  }
  join_executors(s);
  ei__device_stop(s->device); /* after the executors, which use its counters */
  s->device = NULL;
  /* requests still with the service threads complete through the list: wait for them */
  while (s->inflight > 0) {
    process_done(s);
    if (s->inflight > 0) ei__sleep_ms(1);
  }
  process_done(s);
  svc_stop(s); /* their last references to requests (and so to versions) are dropped before the repository goes */
  ei__repo_free(s);
  ei_threadpool_destroy(s->pool);
  uv_close((uv_handle_t *)s->deadline_timer, async_close_cb);
  uv_close((uv_handle_t *)s->async, async_close_cb);
  pthread_mutex_destroy(&s->done_mu);
  pthread_mutex_destroy(&s->svc_mu);
  pthread_cond_destroy(&s->svc_cv);
  free(s);
}
