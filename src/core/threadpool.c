/* Thread pool: workers pinned to a CPU list, one parallel region at a time (callers queue FIFO through a
 * ticket), chunks handed out by an atomic counter. Idle waits spin a bounded number of times and then sleep on a
 * futex, so an idle pool burns no CPU and 2 shared cores don't collapse under oversubscription. */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/core.h"

#define SPIN_ITERS 4000

struct ei_threadpool {
  int nthreads; /* including the calling thread */
  pthread_t *threads;
  int nworkers_started;
  _Atomic uint32_t gen;      /* futex word: bumped for every region and at shutdown */
  _Atomic uint32_t pending;  /* futex word: workers still inside the current region */
  _Atomic uint32_t ticket_next, ticket_serving; /* FIFO admission of callers */
  int stop;
  /* current region */
  ei__range_fn fn;
  void *arg;
  int64_t n, chunk;
  _Atomic int64_t next;
  int *cpus;
};

static _Thread_local int tl_in_pool;

static void futex_wait(_Atomic uint32_t *addr, uint32_t val) {
  syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}
static void futex_wake(_Atomic uint32_t *addr, int n) {
  syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}
static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ volatile("yield");
#endif
}

/* Waits until *addr != val: bounded spin, then futex sleep. */
static void wait_change(_Atomic uint32_t *addr, uint32_t val) {
  for (int i = 0; i < SPIN_ITERS; i++) {
    if (atomic_load_explicit(addr, memory_order_acquire) != val) return;
    cpu_relax();
  }
  while (atomic_load_explicit(addr, memory_order_acquire) == val) futex_wait(addr, val);
}

static void run_chunks(ei_threadpool *p) {
  for (;;) {
    int64_t b = atomic_fetch_add_explicit(&p->next, p->chunk, memory_order_relaxed);
    if (b >= p->n) break;
    int64_t e = b + p->chunk < p->n ? b + p->chunk : p->n;
    p->fn(p->arg, b, e);
  }
}

static void *worker(void *arg) {
  ei_threadpool *p = arg;
  tl_in_pool = 1;
  uint32_t seen = 0; /* gen at creation: a region (or stop) posted before this thread got here is not missed */
  for (;;) {
    wait_change(&p->gen, seen);
    seen = atomic_load_explicit(&p->gen, memory_order_acquire);
    if (p->stop) break;
    run_chunks(p);
    if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) futex_wake(&p->pending, 1);
  }
  return NULL;
}

static int pin(pthread_t t, int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(t, sizeof set, &set);
}

ei_status ei_threadpool_create(int nthreads, const int *cpus, int ncpus, ei_threadpool **out, char *err,
                               size_t errlen) {
  *out = NULL;
  if (nthreads < 1 || nthreads > 256)
    return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "thread count %d out of range (1..256)", nthreads);
  if (ncpus < 0 || (ncpus > 0 && !cpus))
    return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "bad CPU list");
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  sched_getaffinity(0, sizeof allowed, &allowed);
  for (int i = 0; i < ncpus; i++)
    if (cpus[i] < 0 || cpus[i] >= CPU_SETSIZE || !CPU_ISSET(cpus[i], &allowed))
      return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "CPU %d does not exist or is not available to this process",
                     cpus[i]);
  ei_threadpool *p = ei__calloc(1, sizeof *p);
  if (!p) return ei__err(err, errlen, EI_E_NOMEM, "out of memory");
  p->nthreads = nthreads;
  p->threads = ei__calloc((size_t)nthreads, sizeof(pthread_t));
  if (ncpus) {
    p->cpus = ei__calloc((size_t)ncpus, sizeof(int));
    if (p->cpus) memcpy(p->cpus, cpus, sizeof(int) * (size_t)ncpus);
  }
  if (!p->threads || (ncpus && !p->cpus)) {
    ei_threadpool_destroy(p);
    return ei__err(err, errlen, EI_E_NOMEM, "out of memory");
  }
  for (int i = 1; i < nthreads; i++) {
    if (pthread_create(&p->threads[i], NULL, worker, p)) {
      ei_threadpool_destroy(p);
      return ei__err(err, errlen, EI_E_INTERNAL, "cannot start worker thread %d", i);
    }
    p->nworkers_started++;
    if (ncpus) pin(p->threads[i], cpus[i % ncpus]);
  }
  /* The calling thread is pinned by the caller (ei_threadpool_pin_caller) if it wants; workers are pinned here. */
  *out = p;
  return EI_OK;
}

int ei_threadpool_size(const ei_threadpool *p) { return p ? p->nthreads : 1; }

void ei_threadpool_destroy(ei_threadpool *p) {
  if (!p) return;
  p->stop = 1;
  atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
  futex_wake(&p->gen, INT32_MAX);
  for (int i = 1; i <= p->nworkers_started; i++) pthread_join(p->threads[i], NULL);
  ei__free(p->threads);
  ei__free(p->cpus);
  ei__free(p);
}

void ei__parallel_for(ei_threadpool *p, int64_t n, int64_t min_chunk, ei__range_fn fn, void *arg) {
  if (n <= 0) return;
  if (min_chunk < 1) min_chunk = 1;
  if (!p || p->nthreads == 1 || tl_in_pool || n <= min_chunk) {
    fn(arg, 0, n);
    return;
  }
  /* FIFO admission: one region at a time. */
  uint32_t my = atomic_fetch_add_explicit(&p->ticket_next, 1, memory_order_relaxed);
  for (;;) {
    uint32_t s = atomic_load_explicit(&p->ticket_serving, memory_order_acquire);
    if (s == my) break;
    wait_change(&p->ticket_serving, s);
  }
  int64_t chunks = (int64_t)p->nthreads * 4;
  int64_t chunk = (n + chunks - 1) / chunks;
  if (chunk < min_chunk) chunk = min_chunk;
  p->fn = fn;
  p->arg = arg;
  p->n = n;
  p->chunk = chunk;
  atomic_store_explicit(&p->next, 0, memory_order_relaxed);
  atomic_store_explicit(&p->pending, (uint32_t)(p->nthreads - 1), memory_order_relaxed);
  atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
  futex_wake(&p->gen, INT32_MAX);
  tl_in_pool = 1;
  run_chunks(p);
  tl_in_pool = 0;
  for (;;) {
    uint32_t left = atomic_load_explicit(&p->pending, memory_order_acquire);
    if (!left) break;
    wait_change(&p->pending, left);
  }
  atomic_fetch_add_explicit(&p->ticket_serving, 1, memory_order_release);
  futex_wake(&p->ticket_serving, INT32_MAX);
}
