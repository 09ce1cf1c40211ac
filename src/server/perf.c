/* src/server/perf.c: per-thread counter groups with perf_event_open and the per-execution attribution of
 * batcher.c (see perf.h for the rules). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "perf.h"

#define MAX_POOLS 16     /* pools whose workers have groups open at once (least recently used one evicted) */
#define MAX_WORKERS 256  /* ei_threadpool_create's limit */

static const uint64_t hw_config[EI__PERF_NHW] = {PERF_COUNT_HW_CPU_CYCLES, PERF_COUNT_HW_INSTRUCTIONS,
                                                 PERF_COUNT_HW_CACHE_REFERENCES, PERF_COUNT_HW_CACHE_MISSES};
static const char *const hw_name[EI__PERF_NHW] = {"cycles", "instructions", "cache-references", "cache-misses"};
static const uint64_t sw_config[EI__PERF_NSW] = {PERF_COUNT_SW_TASK_CLOCK, PERF_COUNT_SW_CONTEXT_SWITCHES};
static const char *const sw_name[EI__PERF_NSW] = {"task-clock", "context-switches"};

static int open_event(uint32_t type, uint64_t config, int tid, int group, int user_only) {
  struct perf_event_attr a;
  memset(&a, 0, sizeof a);
  a.size = sizeof a;
  a.type = type;
  a.config = config;
  a.read_format = PERF_FORMAT_GROUP | PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
  a.exclude_kernel = user_only ? 1 : 0;
  a.exclude_hv = 1;
  return (int)syscall(SYS_perf_event_open, &a, (pid_t)tid, -1, group, (unsigned long)PERF_FLAG_FD_CLOEXEC);
}

/* Opens one group (fds[0] leads); on failure every fd is -1 and why names the event and the errno text. */
static int open_group(uint32_t type, const uint64_t *config, const char *const *names, int n, int tid,
                      int user_only, int *fds, char *why, size_t whylen) {
  for (int i = 0; i < n; i++) fds[i] = -1;
  for (int i = 0; i < n; i++) {
    fds[i] = open_event(type, config[i], tid, i ? fds[0] : -1, user_only);
    if (fds[i] < 0) {
      int e = errno;
      if (why && whylen)
        snprintf(why, whylen, "%s: %s%s", names[i], strerror(e),
                 e == ENOENT || e == EOPNOTSUPP ? ", no PMU for it (a VM, or a CPU the kernel has no PMU driver for)"
                                                : "");
      for (int k = 0; k < i; k++) close(fds[k]), fds[k] = -1;
      errno = e;
      return -1;
    }
  }
  return 0;
}

static int denied(int e) { return e == EACCES || e == EPERM; }

int ei__perf_thread_open(ei__perf_thread *t, int tid, int want_hw, char *why, size_t whylen, char *hw_why,
                         size_t hw_whylen) {
  char swhy[160] = "";
  t->tid = tid;
  t->user_only = 0;
  for (int i = 0; i < EI__PERF_NHW; i++) t->hw_fd[i] = -1;
  if (open_group(PERF_TYPE_SOFTWARE, sw_config, sw_name, EI__PERF_NSW, tid, 0, t->sw_fd, swhy, sizeof swhy)) {
    if (!denied(errno) ||
        open_group(PERF_TYPE_SOFTWARE, sw_config, sw_name, EI__PERF_NSW, tid, 1, t->sw_fd, swhy, sizeof swhy)) {
      if (why && whylen) snprintf(why, whylen, "%s", swhy);
      if (hw_why && hw_whylen) snprintf(hw_why, hw_whylen, "%s", swhy);
      return -1;
    }
    t->user_only = 1;
  }
  if (want_hw) {
    char hwhy[160] = "";
    int rc = open_group(PERF_TYPE_HARDWARE, hw_config, hw_name, EI__PERF_NHW, tid, t->user_only, t->hw_fd, hwhy,
                        sizeof hwhy);
    if (rc && !t->user_only && denied(errno))
      rc = open_group(PERF_TYPE_HARDWARE, hw_config, hw_name, EI__PERF_NHW, tid, 1, t->hw_fd, hwhy, sizeof hwhy);
    if (rc && hw_why && hw_whylen) snprintf(hw_why, hw_whylen, "%s", hwhy);
  } else if (hw_why && hw_whylen) {
    snprintf(hw_why, hw_whylen, "not asked for");
  }
  return 0;
}

/* One group read: nr, time_enabled, time_running, values[nr]. */
static int read_group(int fd, int n, uint64_t *vals, uint64_t *enabled, uint64_t *running) {
  uint64_t buf[3 + 8];
  ssize_t got = read(fd, buf, sizeof(uint64_t) * (size_t)(3 + n));
  if (got != (ssize_t)(sizeof(uint64_t) * (size_t)(3 + n)) || buf[0] != (uint64_t)n) return -1;
  *enabled = buf[1];
  *running = buf[2];
  for (int i = 0; i < n; i++) vals[i] = buf[3 + i];
  return 0;
}

int ei__perf_thread_read(const ei__perf_thread *t, ei__perf_raw *out) {
  memset(out, 0, sizeof *out);
  if (t->hw_fd[0] >= 0)
    out->hw_ok = !read_group(t->hw_fd[0], EI__PERF_NHW, out->hw, &out->hw_enabled, &out->hw_running);
  if (t->sw_fd[0] >= 0)
    out->sw_ok = !read_group(t->sw_fd[0], EI__PERF_NSW, out->sw, &out->sw_enabled, &out->sw_running);
  return out->hw_ok || out->sw_ok ? 0 : -1;
}

void ei__perf_thread_close(ei__perf_thread *t) {
  for (int i = EI__PERF_NHW - 1; i >= 0; i--)
    if (t->hw_fd[i] >= 0) close(t->hw_fd[i]), t->hw_fd[i] = -1;
  for (int i = EI__PERF_NSW - 1; i >= 0; i--)
    if (t->sw_fd[i] >= 0) close(t->sw_fd[i]), t->sw_fd[i] = -1;
}

/* b - a of one group's value, scaled up when the group ran only part of the time it was enabled. */
static uint64_t scaled(uint64_t a, uint64_t b, uint64_t de, uint64_t dr) {
  uint64_t dv = b >= a ? b - a : 0;
  if (dr == 0 || dr >= de) return dv;
  return (uint64_t)((double)dv * (double)de / (double)dr + 0.5);
}

void ei__perf_delta(const ei__perf_raw *a, const ei__perf_raw *b, ei__perf_counts *d) {
  memset(d, 0, sizeof *d);
  if (a->hw_ok && b->hw_ok) {
    uint64_t de = b->hw_enabled - a->hw_enabled, dr = b->hw_running - a->hw_running;
    d->cycles = scaled(a->hw[0], b->hw[0], de, dr);
    d->instructions = scaled(a->hw[1], b->hw[1], de, dr);
    d->cache_references = scaled(a->hw[2], b->hw[2], de, dr);
    d->cache_misses = scaled(a->hw[3], b->hw[3], de, dr);
    d->hw = 1;
  }
  if (a->sw_ok && b->sw_ok) {
    uint64_t de = b->sw_enabled - a->sw_enabled, dr = b->sw_running - a->sw_running;
    d->task_clock_ns = scaled(a->sw[0], b->sw[0], de, dr);
    d->context_switches = scaled(a->sw[1], b->sw[1], de, dr);
    d->sw = 1;
  }
}

void ei__perf_counts_add(ei__perf_counts *acc, const ei__perf_counts *d) {
  acc->cycles += d->cycles;
  acc->instructions += d->instructions;
  acc->cache_references += d->cache_references;
  acc->cache_misses += d->cache_misses;
  acc->task_clock_ns += d->task_clock_ns;
  acc->context_switches += d->context_switches;
  acc->hw |= d->hw;
  acc->sw |= d->sw;
}

static int read_paranoid(void) {
  FILE *f = fopen("/proc/sys/kernel/perf_event_paranoid", "r");
  int v = -99;
  if (f) {
    if (fscanf(f, "%d", &v) != 1) v = -99;
    fclose(f);
  }
  return v;
}

void ei__perf_probe(ei__perf_support *s) {
  memset(s, 0, sizeof *s);
  s->paranoid = read_paranoid();
  ei__perf_thread t;
  char why[160] = "", hwhy[160] = "";
  if (ei__perf_thread_open(&t, 0, 1, why, sizeof why, hwhy, sizeof hwhy)) {
    snprintf(s->sw_why, sizeof s->sw_why, "%s (perf_event_paranoid %d)", why, s->paranoid);
    snprintf(s->hw_why, sizeof s->hw_why, "%s (perf_event_paranoid %d)", why, s->paranoid);
    return;
  }
  s->sw = 1;
  s->hw = t.hw_fd[0] >= 0;
  s->user_only = t.user_only;
  if (!s->hw) snprintf(s->hw_why, sizeof s->hw_why, "%s (perf_event_paranoid %d)", hwhy, s->paranoid);
  ei__perf_thread_close(&t);
}

/* ---- the executor thread's own groups: opened at first use, closed when the thread exits ---- */

static pthread_key_t self_key;
static pthread_once_t self_once = PTHREAD_ONCE_INIT;
static _Thread_local ei__perf_thread tl_self;
static _Thread_local int tl_state; /* 0: not tried, 1: open, -1: failed (not retried) */
static _Thread_local int tl_hw;    /* the hardware group was asked for */

static void self_exit(void *unused) {
  (void)unused;
  if (tl_state == 1) ei__perf_thread_close(&tl_self);
  tl_state = 0;
}
static void self_key_make(void) { pthread_key_create(&self_key, self_exit); }

static ei__perf_thread *self_group(int want_hw) {
  if (tl_state && tl_hw != want_hw) {
    if (tl_state == 1) ei__perf_thread_close(&tl_self);
    tl_state = 0;
  }
  if (!tl_state) {
    pthread_once(&self_once, self_key_make);
    tl_hw = want_hw;
    tl_state = ei__perf_thread_open(&tl_self, 0, want_hw, NULL, 0, NULL, 0) ? -1 : 1;
    if (tl_state == 1) pthread_setspecific(self_key, &tl_self); /* non-NULL: the destructor runs at exit */
  }
  return tl_state == 1 ? &tl_self : NULL;
}

/* ---- pools ---- */

typedef struct ei__perf_pool {
  const ei_threadpool *pool; /* compared only, never used: the pool may be gone */
  int n;
  int tids[MAX_WORKERS];
  ei__perf_thread th[MAX_WORKERS];
  ei__perf_raw last[MAX_WORKERS];
  ei__perf_exec *running;
  int nrunning;
  uint64_t used;
} ei__perf_pool;

struct ei__perf {
  pthread_mutex_t mu;
  int want_hw;
  int npools;
  ei__perf_pool *pools[MAX_POOLS];
  uint64_t clock;
};

ei__perf *ei__perf_new(int want_hw) {
  ei__perf *P = calloc(1, sizeof *P);
  if (!P) return NULL;
  pthread_mutex_init(&P->mu, NULL);
  P->want_hw = want_hw;
  return P;
}

static void pool_free(ei__perf_pool *e) {
  for (int i = 0; i < e->n; i++) ei__perf_thread_close(&e->th[i]);
  free(e);
}

void ei__perf_free(ei__perf *P) {
  if (!P) return;
  for (int i = 0; i < P->npools; i++) pool_free(P->pools[i]);
  pthread_mutex_destroy(&P->mu);
  free(P);
}

/* Reads every worker of e once; the counts since the previous read are split evenly among the executions
 * running on the pool (the first gets the remainder); none running: dropped. mu held. */
static void pool_sample(ei__perf_pool *e) {
  ei__perf_counts sum;
  memset(&sum, 0, sizeof sum);
  for (int i = 0; i < e->n; i++) {
    ei__perf_raw r;
    if (ei__perf_thread_read(&e->th[i], &r)) continue;
    ei__perf_counts d;
    ei__perf_delta(&e->last[i], &r, &d);
    ei__perf_counts_add(&sum, &d);
    e->last[i] = r;
  }
  if (!e->nrunning) return;
  const uint64_t k = (uint64_t)e->nrunning;
  ei__perf_counts share = sum;
  share.cycles /= k, share.instructions /= k, share.cache_references /= k, share.cache_misses /= k;
  share.task_clock_ns /= k, share.context_switches /= k;
  for (ei__perf_exec *x = e->running; x; x = x->next) {
    ei__perf_counts_add(&x->workers, &share);
    if (x == e->running && k > 1) {
      ei__perf_counts rest;
      memset(&rest, 0, sizeof rest);
      rest.cycles = sum.cycles - share.cycles * k, rest.instructions = sum.instructions - share.instructions * k;
      rest.cache_references = sum.cache_references - share.cache_references * k;
      rest.cache_misses = sum.cache_misses - share.cache_misses * k;
      rest.task_clock_ns = sum.task_clock_ns - share.task_clock_ns * k;
      rest.context_switches = sum.context_switches - share.context_switches * k;
      ei__perf_counts_add(&x->workers, &rest);
    }
  }
}

/* The entry of pool (its current workers), made when missing; NULL when its groups cannot be opened or every
 * slot is busy. mu held. */
static ei__perf_pool *pool_get(ei__perf *P, const ei_threadpool *pool, const int *tids, int n) {
  for (int i = 0; i < P->npools; i++) {
    ei__perf_pool *e = P->pools[i];
    if (e->pool == pool && e->n == n && !memcmp(e->tids, tids, sizeof(int) * (size_t)n)) {
      e->used = ++P->clock;
      return e;
    }
  }
  /* the same address with other threads is a new pool: its idle old entry goes */
  for (int i = 0; i < P->npools;) {
    if (P->pools[i]->pool == pool && !P->pools[i]->nrunning) {
      pool_free(P->pools[i]);
      P->pools[i] = P->pools[--P->npools];
    } else {
      i++;
    }
  }
  if (P->npools == MAX_POOLS) { /* the least recently used idle entry goes */
    int victim = -1;
    for (int i = 0; i < P->npools; i++)
      if (!P->pools[i]->nrunning && (victim < 0 || P->pools[i]->used < P->pools[victim]->used)) victim = i;
    if (victim < 0) return NULL;
    pool_free(P->pools[victim]);
    P->pools[victim] = P->pools[--P->npools];
  }
  ei__perf_pool *e = calloc(1, sizeof *e);
  if (!e) return NULL;
  e->pool = pool;
  int want_hw = P->want_hw;
  for (int i = 0; i < n; i++) {
    e->tids[i] = tids[i];
    if (ei__perf_thread_open(&e->th[i], tids[i], want_hw, NULL, 0, NULL, 0)) {
      for (int k = 0; k < i; k++) ei__perf_thread_close(&e->th[k]);
      free(e);
      return NULL;
    }
    if (e->th[i].hw_fd[0] < 0) want_hw = 0; /* no PMU: do not try again for every worker */
    e->n = i + 1;
    ei__perf_thread_read(&e->th[i], &e->last[i]);
  }
  e->used = ++P->clock;
  P->pools[P->npools++] = e;
  return e;
}

void ei__perf_exec_begin(ei__perf *P, ei__perf_exec *x, ei_threadpool *pool) {
  memset(x, 0, sizeof *x);
  if (!P) return;
  int tids[MAX_WORKERS];
  int n = pool ? ei_threadpool_thread_ids(pool, tids, MAX_WORKERS) : 0;
  if (n > MAX_WORKERS) n = MAX_WORKERS;
  if (n > 0) {
    pthread_mutex_lock(&P->mu);
    ei__perf_pool *e = pool_get(P, pool, tids, n);
    if (e) {
      pool_sample(e); /* what ran before belongs to the executions already running */
      x->next = e->running;
      e->running = x;
      e->nrunning++;
      x->pool = e;
    }
    pthread_mutex_unlock(&P->mu);
  }
  ei__perf_thread *self = self_group(P->want_hw);
  x->self_ok = self && !ei__perf_thread_read(self, &x->self0);
}

int ei__perf_exec_end(ei__perf *P, ei__perf_exec *x, ei__perf_counts *d) {
  memset(d, 0, sizeof *d);
  if (!P) return 0;
  if (x->self_ok) {
    ei__perf_raw r;
    ei__perf_thread *self = self_group(P->want_hw);
    if (self && !ei__perf_thread_read(self, &r)) ei__perf_delta(&x->self0, &r, d);
  }
  if (x->pool) {
    pthread_mutex_lock(&P->mu);
    ei__perf_pool *e = x->pool;
    pool_sample(e);
    for (ei__perf_exec **pp = &e->running; *pp; pp = &(*pp)->next)
      if (*pp == x) {
        *pp = x->next;
        break;
      }
    e->nrunning--;
    e->used = ++P->clock;
    pthread_mutex_unlock(&P->mu);
    ei__perf_counts_add(d, &x->workers);
  }
  return d->hw || d->sw;
}
