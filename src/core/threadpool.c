/* Thread pool: workers pinned to a CPU list, one parallel region at a time (callers queue FIFO through a
 * ticket), work claimed dynamically in chunks.
 *
 * How a region runs (ei__parallel_for):
 *  - [0, n) is cut into at most 4 chunks per thread (never smaller than min_chunk). The region is published as
 *    one 64-bit claim word: generation (32 bits) | chunk count (16) | next chunk (16). Every thread, the caller
 *    included, takes chunks by compare-and-swap on that word until none is left; the generation makes a stale
 *    claim (a worker that read the word of an earlier region) fail, so nobody runs a chunk with another region's
 *    function.
 *  - The caller returns when every chunk has been *run* (a counter of finished chunks), not when every worker has
 *    shown up: a worker that is descheduled, slow to wake or busy elsewhere and has not claimed a chunk is never
 *    waited for; when it gets the CPU it finds no chunk left and goes back to waiting. The only thing the caller
 *    waits for is a chunk a worker has claimed and not finished. So with 2 threads on 1 free CPU (taskset, another
 *    process burning the other core) a region costs about what it costs on 1 thread, plus a context switch.
 *  - Waiting is bounded. An idle worker polls (`pause`) for ~SPIN_NS, then polls with sched_yield (which hands a
 *    shared CPU to a thread that has work, e.g. the caller when both are pinned to one core) up to YIELD_NS, then
 *    sleeps on a futex. The caller waiting for claimed chunks (and a caller waiting for its ticket) polls for
 *    ~SPIN_NS and then sleeps on a futex: no yield there, since on a busy machine a yield can hand the CPU to
 *    another process for a whole time slice, while a futex wake-up gets the CPU back quickly. Futex wakes are only
 *    issued when somebody sleeps (counted), so a busy region costs no system call. An idle pool burns no CPU.
 *  - A hold (ei_threadpool_hold: a server that sees a request arrive and knows a run follows) keeps idle workers
 *    polling with sched_yield instead of sleeping, until a deadline at most HOLD_MAX_NS away, and wakes the ones
 *    asleep (a futex wake on `post` without changing it: a woken worker finds the hold and polls). So the first
 *    region of that run finds its workers awake instead of paying a futex wake-up (tens of microseconds, more on a
 *    VM whose idle vCPU halted). Bounded: when the deadline passes, the workers sleep again.
 * Counters (ei__threadpool_stats) and a test hook (ei__threadpool_set_test_hook) let tests check this without
 * timing (tests/test_threadpool.c). */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/core.h"

#define SPIN_NS 4000u    /* pure polling */
#define YIELD_NS 100000u /* then polling with sched_yield, then futex sleep */
#define HOLD_MAX_NS 10000000ull /* ei_threadpool_hold's bound: 10 ms */
#define CHUNKS_PER_THREAD 4
#define MAX_CHUNKS 0xffff

struct ei_threadpool {
  int nthreads; /* including the calling thread */
  pthread_t *threads;
  int nworkers_started;
  _Atomic int *tids;           /* workers' kernel thread ids (gettid), 0 until the worker has started */
  struct worker_arg *args;     /* one per worker, owned by the pool (a worker frees nothing: no allocator call can
                                  land in a caller's run when a worker starts late) */
  int *cpus;
  _Atomic int stop;
  _Atomic uint32_t post;       /* futex word: bumped for every region and at shutdown */
  _Atomic uint32_t sleepers;   /* workers asleep (or going to sleep) on post */
  _Atomic uint64_t hold_until; /* ei_threadpool_hold: idle workers poll instead of sleeping until then (ns) */
  _Atomic uint32_t ticket_next, ticket_serving; /* FIFO admission of callers */
  _Atomic uint32_t ticket_sleepers;
  /* current region */
  _Atomic uint64_t claim;      /* gen << 32 | nchunks << 16 | next chunk */
  _Atomic uint32_t done;       /* futex word: chunks finished in the current region */
  _Atomic uint32_t caller_sleeping;
  uint32_t gen;
  ei__range_fn fn;
  void *arg;
  int64_t n, chunk;
  /* statistics and test hook */
  _Atomic uint64_t st_regions, st_chunks, st_caller_chunks, st_worker_chunks, st_caller_sleeps, st_worker_sleeps;
  void (*hook)(void *hook_arg, int worker);
  void *hook_arg;
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

/* Polls until *addr != val for at most SPIN_NS, then (yield_ns) with sched_yield between polls for up to
 * yield_ns more; returns 1 if it changed. */
static int poll_change(_Atomic uint32_t *addr, uint32_t val, uint64_t yield_ns) {
  const uint64_t t0 = ei__now_ns();
  for (;;) {
    for (int k = 0; k < 8; k++) {
      if (atomic_load_explicit(addr, memory_order_acquire) != val) return 1;
      cpu_relax();
    }
    const uint64_t dt = ei__now_ns() - t0;
    if (dt > SPIN_NS + yield_ns) return 0;
    if (dt > SPIN_NS) sched_yield();
  }
}

/* Waits until *addr != val: bounded polling, then futex sleep (counted in *sleepers so wakers know). */
static void wait_change(_Atomic uint32_t *addr, uint32_t val, _Atomic uint32_t *sleepers, uint64_t yield_ns) {
  if (poll_change(addr, val, yield_ns)) return;
  atomic_fetch_add(sleepers, 1);
  while (atomic_load(addr) == val) futex_wait(addr, val);
  atomic_fetch_sub(sleepers, 1);
}

/* Polls (pause, then sched_yield) until *addr != val or the monotonic clock reaches *until; 1 if it changed. */
static int poll_until(_Atomic uint32_t *addr, uint32_t val, _Atomic uint64_t *until) {
  for (;;) {
    for (int k = 0; k < 8; k++) {
      if (atomic_load_explicit(addr, memory_order_acquire) != val) return 1;
      cpu_relax();
    }
    if (ei__now_ns() >= atomic_load_explicit(until, memory_order_relaxed)) return 0;
    sched_yield();
  }
}

/* A worker waits until post != seen: bounded polling, then (while a hold lasts) polling with sched_yield, then a
 * futex sleep, counted in sleepers (so that a region's poster and ei_threadpool_hold know to wake it). A wake-up
 * that leaves post unchanged (a hold began, or a spurious one) starts the polling again. */
static void worker_wait(ei_threadpool *p, uint32_t seen) {
  for (;;) {
    if (poll_change(&p->post, seen, YIELD_NS)) return;
    if (ei__now_ns() < atomic_load(&p->hold_until) && poll_until(&p->post, seen, &p->hold_until)) return;
    atomic_fetch_add(&p->sleepers, 1);
    /* a hold that began after the check above: ei_threadpool_hold stores its deadline before it reads sleepers */
    if (ei__now_ns() < atomic_load(&p->hold_until)) {
      atomic_fetch_sub(&p->sleepers, 1);
      continue;
    }
    if (atomic_load(&p->post) == seen) {
      atomic_fetch_add_explicit(&p->st_worker_sleeps, 1, memory_order_relaxed);
      futex_wait(&p->post, seen);
    }
    atomic_fetch_sub(&p->sleepers, 1);
    if (atomic_load(&p->post) != seen) return;
  }
}

void ei_threadpool_hold(ei_threadpool *p, uint64_t ns) {
  if (!p || p->nthreads == 1) return;
  if (ns == 0) {
    atomic_store(&p->hold_until, 0);
    return;
  }
  if (ns > HOLD_MAX_NS) ns = HOLD_MAX_NS;
  const uint64_t until = ei__now_ns() + ns;
  uint64_t cur = atomic_load(&p->hold_until);
  while (cur < until && !atomic_compare_exchange_weak(&p->hold_until, &cur, until)) {
  }
  if (atomic_load(&p->sleepers)) futex_wake(&p->post, INT32_MAX);
}

/* Takes chunks of the current region until none is left. */
static void run_chunks(ei_threadpool *p, int worker) {
  uint64_t w = atomic_load_explicit(&p->claim, memory_order_acquire);
  for (;;) {
    const uint32_t idx = (uint32_t)(w & 0xffff), nch = (uint32_t)((w >> 16) & 0xffff);
    if (idx >= nch) break;
    if (!atomic_compare_exchange_weak_explicit(&p->claim, &w, w + 1, memory_order_acq_rel, memory_order_acquire))
      continue;
    /* chunk idx of this region is ours: the region cannot end before we finish it, its fields are stable */
    const int64_t b = (int64_t)idx * p->chunk, e = b + p->chunk < p->n ? b + p->chunk : p->n;
    p->fn(p->arg, b, e);
    /* counted before `done`: once the caller sees every chunk done, the counters include them */
    atomic_fetch_add_explicit(worker ? &p->st_worker_chunks : &p->st_caller_chunks, 1, memory_order_relaxed);
    if (atomic_fetch_add(&p->done, 1) + 1 == nch && worker && atomic_load(&p->caller_sleeping))
      futex_wake(&p->done, 1);
    w = atomic_load_explicit(&p->claim, memory_order_acquire);
  }
}

typedef struct worker_arg {
  ei_threadpool *p;
  int index; /* 1..nthreads-1 */
} worker_arg;

static void *worker(void *arg) {
  ei_threadpool *p = ((worker_arg *)arg)->p;
  atomic_store_explicit(&p->tids[((worker_arg *)arg)->index], (int)syscall(SYS_gettid), memory_order_release);
  tl_in_pool = 1;
  uint32_t seen = 0; /* post at creation: a region (or stop) posted before this thread got here is not missed */
  for (;;) {
    worker_wait(p, seen);
    seen = atomic_load_explicit(&p->post, memory_order_acquire);
    if (atomic_load_explicit(&p->stop, memory_order_acquire)) break;
    if (p->hook) p->hook(p->hook_arg, 1);
    run_chunks(p, 1);
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
  p->tids = ei__calloc((size_t)nthreads, sizeof(*p->tids));
  p->args = ei__calloc((size_t)nthreads, sizeof(*p->args));
  if (ncpus) {
    p->cpus = ei__calloc((size_t)ncpus, sizeof(int));
    if (p->cpus) memcpy(p->cpus, cpus, sizeof(int) * (size_t)ncpus);
  }
  if (!p->threads || !p->tids || !p->args || (ncpus && !p->cpus)) {
    ei_threadpool_destroy(p);
    return ei__err(err, errlen, EI_E_NOMEM, "out of memory");
  }
  for (int i = 1; i < nthreads; i++) {
    worker_arg *wa = &p->args[i];
    wa->p = p;
    wa->index = i;
    if (pthread_create(&p->threads[i], NULL, worker, wa)) {
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

int ei_threadpool_thread_ids(const ei_threadpool *p, int *tids, int cap) {
  if (!p) return 0;
  const int n = p->nworkers_started;
  for (int i = 0; i < n && i < cap; i++) {
    int t;
    /* a worker records its id first thing: wait for one that has not run yet */
    while (!(t = atomic_load_explicit(&p->tids[i + 1], memory_order_acquire))) sched_yield();
    tids[i] = t;
  }
  return n;
}

void ei_threadpool_destroy(ei_threadpool *p) {
  if (!p) return;
  atomic_store_explicit(&p->stop, 1, memory_order_release);
  atomic_fetch_add(&p->post, 1);
  futex_wake(&p->post, INT32_MAX);
  for (int i = 1; i <= p->nworkers_started; i++) pthread_join(p->threads[i], NULL);
  ei__free(p->threads);
  ei__free((void *)p->tids);
  ei__free(p->args);
  ei__free(p->cpus);
  ei__free(p);
}

void ei__threadpool_stats(const ei_threadpool *p, ei__pool_stats *s) {
  memset(s, 0, sizeof *s);
  if (!p) return;
  s->regions = atomic_load(&((ei_threadpool *)p)->st_regions);
  s->chunks = atomic_load(&((ei_threadpool *)p)->st_chunks);
  s->caller_chunks = atomic_load(&((ei_threadpool *)p)->st_caller_chunks);
  s->worker_chunks = atomic_load(&((ei_threadpool *)p)->st_worker_chunks);
  s->caller_sleeps = atomic_load(&((ei_threadpool *)p)->st_caller_sleeps);
  s->worker_sleeps = atomic_load(&((ei_threadpool *)p)->st_worker_sleeps);
}

void ei__threadpool_set_test_hook(ei_threadpool *p, void (*hook)(void *arg, int worker), void *arg) {
  if (!p) return;
  p->hook = hook;
  p->hook_arg = arg;
}

void ei__parallel_for(ei_threadpool *p, int64_t n, int64_t min_chunk, ei__range_fn fn, void *arg) {
  if (n <= 0) return;
  if (min_chunk < 1) min_chunk = 1;
  if (!p || p->nthreads == 1 || tl_in_pool || n <= min_chunk) {
    fn(arg, 0, n);
    return;
  }
  /* FIFO admission: one region at a time. */
  const uint32_t my = atomic_fetch_add_explicit(&p->ticket_next, 1, memory_order_relaxed);
  for (;;) {
    const uint32_t s = atomic_load_explicit(&p->ticket_serving, memory_order_acquire);
    if (s == my) break;
    wait_change(&p->ticket_serving, s, &p->ticket_sleepers, 0);
  }
  int64_t chunks = (int64_t)p->nthreads * CHUNKS_PER_THREAD;
  if (chunks > MAX_CHUNKS) chunks = MAX_CHUNKS;
  int64_t chunk = (n + chunks - 1) / chunks;
  if (chunk < min_chunk) chunk = min_chunk;
  const uint32_t nch = (uint32_t)((n + chunk - 1) / chunk);
  p->fn = fn;
  p->arg = arg;
  p->n = n;
  p->chunk = chunk;
  p->gen++;
  atomic_store_explicit(&p->done, 0, memory_order_relaxed);
  atomic_store_explicit(&p->claim, (uint64_t)p->gen << 32 | (uint64_t)nch << 16, memory_order_release);
  atomic_fetch_add(&p->post, 1);
  if (atomic_load(&p->sleepers)) futex_wake(&p->post, INT32_MAX);
  atomic_fetch_add_explicit(&p->st_regions, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&p->st_chunks, nch, memory_order_relaxed);
  tl_in_pool = 1;
  if (p->hook) p->hook(p->hook_arg, 0);
  run_chunks(p, 0);
  tl_in_pool = 0;
  /* Every chunk is claimed: wait for the ones still running on workers (none that was never started). */
  for (;;) {
    const uint32_t d = atomic_load_explicit(&p->done, memory_order_acquire);
    if (d == nch) break;
    if (poll_change(&p->done, d, 0)) continue;
    atomic_store(&p->caller_sleeping, 1);
    atomic_fetch_add_explicit(&p->st_caller_sleeps, 1, memory_order_relaxed);
    if (atomic_load(&p->done) == d) futex_wait(&p->done, d);
    atomic_store(&p->caller_sleeping, 0);
  }
  atomic_fetch_add(&p->ticket_serving, 1);
  if (atomic_load(&p->ticket_sleepers)) futex_wake(&p->ticket_serving, INT32_MAX);
}
