/* The thread pool (src/core/threadpool.c) without timing assertions:
 *  1. every index of [0, n) runs exactly once, for many (n, min_chunk) and pool sizes, nested calls included;
 *  2. a region completes while its worker is held back before claiming any chunk (test hook): the caller ran
 *     every chunk and never waited for the absent worker;
 *  3. oversubscription: the whole process pinned to one CPU, a model (argv[1], optional) run with a 2-thread pool
 *     gives the same outputs as with 1 thread, and the counters add up (every chunk run once, by the caller or
 *     the worker). How long that takes is bench/'s business (`taskset -c 0 edgeinfer bench --threads 2`).
 *  4. ei_threadpool_hold: a no-op on NULL and 1-thread pools; regions run exactly once while a hold lasts; a
 *     hold wakes a sleeping worker, and the worker sleeps again once it ends (ns = 0 at once; a request for 10 s is
 *     capped at 10 ms: the test waits up to 5 s for the worker's next sleep).
 * Usage: test_threadpool [MODEL.onnx] */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "edgeinfer.h"

static int failures;
#define CHECK(cond, ...)                                  \
  do {                                                    \
    if (!(cond)) {                                        \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                       \
      fprintf(stderr, "\n");                              \
      failures++;                                         \
    }                                                     \
  } while (0)

/* ---- 1. coverage ---- */

typedef struct cover {
  _Atomic int *hits;
  ei_threadpool *pool;
  int nested;
} cover;

static void inner(void *arg, int64_t b, int64_t e) {
  _Atomic int *h = arg;
  for (int64_t i = b; i < e; i++) atomic_fetch_add(&h[i], 1);
}

static void mark(void *arg, int64_t b, int64_t e) {
  cover *c = arg;
  for (int64_t i = b; i < e; i++) atomic_fetch_add(&c->hits[i], 1);
  if (c->nested) { /* a parallel_for inside a region runs on the calling thread */
    _Atomic int local[3] = {0, 0, 0};
    ei__parallel_for(c->pool, 3, 1, inner, local);
    for (int i = 0; i < 3; i++)
      if (atomic_load(&local[i]) != 1) atomic_fetch_add(&c->hits[0], 1000);
  }
}

static void test_coverage(void) {
  static const int64_t ns[] = {1, 2, 3, 7, 8, 9, 63, 64, 65, 1000, 100003};
  static const int64_t chunks[] = {0, 1, 3, 16, 5000};
  for (int threads = 1; threads <= 4; threads++) {
    ei_threadpool *pool = NULL;
    char err[256];
    CHECK(ei_threadpool_create(threads, NULL, 0, &pool, err, sizeof err) == EI_OK, "create: %s", err);
    if (!pool) return;
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
      for (size_t b = 0; b < sizeof chunks / sizeof chunks[0]; b++)
        for (int nested = 0; nested < 2; nested++) {
          const int64_t n = ns[a];
          _Atomic int *hits = calloc((size_t)n, sizeof *hits);
          cover c = {hits, pool, nested};
          ei__parallel_for(pool, n, chunks[b], mark, &c);
          int64_t bad = 0;
          for (int64_t i = 0; i < n; i++) bad += atomic_load(&hits[i]) != 1;
          CHECK(bad == 0, "threads %d n %lld min_chunk %lld nested %d: %lld indices not run exactly once", threads,
                (long long)n, (long long)chunks[b], nested, (long long)bad);
          free(hits);
        }
    ei__pool_stats st;
    ei__threadpool_stats(pool, &st);
    if (threads == 1) CHECK(st.regions == 0, "a 1-thread pool opened %llu regions", (unsigned long long)st.regions);
    ei_threadpool_destroy(pool);
  }
}

/* ---- 2. a worker held back before it claims anything ---- */

typedef struct gate {
  _Atomic int release, arrived;
} gate;

static void hold_worker(void *arg, int worker) {
  gate *g = arg;
  if (!worker) return;
  atomic_fetch_add(&g->arrived, 1);
  while (!atomic_load(&g->release)) sched_yield();
}

static void count_range(void *arg, int64_t b, int64_t e) { atomic_fetch_add((_Atomic int64_t *)arg, e - b); }

static void test_absent_worker(void) {
  ei_threadpool *pool = NULL;
  char err[256];
  CHECK(ei_threadpool_create(2, NULL, 0, &pool, err, sizeof err) == EI_OK, "create: %s", err);
  if (!pool) return;
  gate g = {0, 0};
  ei__threadpool_set_test_hook(pool, hold_worker, &g);
  _Atomic int64_t total = 0;
  /* a first region wakes the worker, which then blocks in the hook (before claiming a chunk) */
  ei__parallel_for(pool, 1000, 1, count_range, &total);
  while (!atomic_load(&g.arrived)) sched_yield();
  ei__pool_stats st0, st;
  ei__threadpool_stats(pool, &st0);
  atomic_store(&total, 0);
  const int regions = 50;
  for (int r = 0; r < regions; r++) ei__parallel_for(pool, 1000, 1, count_range, &total);
  ei__threadpool_stats(pool, &st);
  st.regions -= st0.regions;
  st.caller_chunks -= st0.caller_chunks;
  st.worker_chunks -= st0.worker_chunks;
  st.caller_sleeps -= st0.caller_sleeps;
  st.chunks -= st0.chunks;
  CHECK(st.chunks == (uint64_t)regions * 8, "posted %llu chunks, want %d", (unsigned long long)st.chunks, regions * 8);
  /* The worker is stuck in the hook (before claiming): every region completed on the caller alone. */
  CHECK(atomic_load(&total) == 1000 * regions, "ran %lld of %d indices", (long long)atomic_load(&total),
        1000 * regions);
  CHECK(st.regions == (uint64_t)regions, "regions %llu", (unsigned long long)st.regions);
  CHECK(st.worker_chunks == 0, "the held worker ran %llu chunks", (unsigned long long)st.worker_chunks);
  CHECK(st.caller_chunks == (uint64_t)regions * 8, "caller ran %llu chunks, want %d (8 per region)",
        (unsigned long long)st.caller_chunks, regions * 8);
  CHECK(st.caller_sleeps == 0, "the caller slept %llu times waiting for a worker that had claimed nothing",
        (unsigned long long)st.caller_sleeps);
  atomic_store(&g.release, 1);
  ei__threadpool_set_test_hook(pool, NULL, NULL);
  /* Released, the worker takes part again (eventually: it may find no chunk left in any one region). */
  atomic_store(&total, 0);
  for (int r = 0; r < 20; r++) ei__parallel_for(pool, 1000, 1, count_range, &total);
  CHECK(atomic_load(&total) == 20000, "after release: ran %lld of 20000", (long long)atomic_load(&total));
  ei_threadpool_destroy(pool); /* joins the worker: it must have left the hook */
  printf("absent worker: %d regions completed by the caller alone (%llu chunks), worker arrived %d time(s)\n",
         regions, (unsigned long long)st.caller_chunks, atomic_load(&g.arrived));
}

/* ---- 3. a model with 2 threads on one CPU ---- */

static int run_model(const char *path, ei_threadpool *pool, float **out, size_t *nout) {
  char err[512];
  ei_model *m = NULL;
  ei_session *s = NULL;
  float *x = NULL;
  int ok = 0;
  if (ei_model_load(path, NULL, &m, err, sizeof err) != EI_OK) {
    fprintf(stderr, "load %s: %s\n", path, err);
    return 0;
  }
  if (ei_session_create(m, pool, &s, err, sizeof err) != EI_OK) {
    fprintf(stderr, "session: %s\n", err);
    goto done;
  }
  ei_value_info info;
  if (ei_model_input_info(m, 0, &info) != EI_OK || info.dtype != EI_FLOAT) goto done;
  ei_tensor in;
  memset(&in, 0, sizeof in);
  in.dtype = EI_FLOAT;
  in.rank = info.rank;
  size_t count = 1;
  for (int i = 0; i < info.rank; i++) {
    in.dims[i] = info.dims[i] > 0 ? info.dims[i] : 1;
    count *= (size_t)in.dims[i];
  }
  x = malloc(count * sizeof *x);
  unsigned seed = 12345;
  for (size_t i = 0; i < count; i++) {
    seed = seed * 1103515245u + 12345u;
    x[i] = (float)((seed >> 8) & 0xffff) / 65536.f - 0.5f;
  }
  in.data = x;
  for (int it = 0; it < 3; it++) {
    ei_tensor y;
    if (ei_session_run(s, 1, &in, 1, &y, err, sizeof err) != EI_OK) {
      fprintf(stderr, "run: %s\n", err);
      goto done;
    }
    const size_t c = (size_t)ei_tensor_numel(&y);
    free(*out);
    *out = malloc(c * sizeof(float));
    memcpy(*out, y.data, c * sizeof(float));
    *nout = c;
  }
  ok = 1;
done:
  free(x);
  ei_session_destroy(s);
  ei_model_destroy(m);
  return ok;
}

static void test_oversubscribed_model(const char *path) {
  cpu_set_t one;
  CPU_ZERO(&one);
  cpu_set_t all;
  sched_getaffinity(0, sizeof all, &all);
  int cpu = 0;
  while (cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &all)) cpu++;
  CPU_SET(cpu, &one);
  CHECK(sched_setaffinity(0, sizeof one, &one) == 0, "cannot pin to CPU %d", cpu);
  float *y1 = NULL, *y2 = NULL;
  size_t n1 = 0, n2 = 0;
  CHECK(run_model(path, NULL, &y1, &n1), "1-thread run of %s", path);
  ei_threadpool *pool = NULL;
  char err[256];
  /* threads created now inherit the one-CPU mask */
  CHECK(ei_threadpool_create(2, NULL, 0, &pool, err, sizeof err) == EI_OK, "create: %s", err);
  CHECK(run_model(path, pool, &y2, &n2), "2-thread run of %s on one CPU", path);
  ei__pool_stats st;
  ei__threadpool_stats(pool, &st);
  CHECK(n1 == n2 && n1 > 0, "output sizes %zu vs %zu", n1, n2);
  double maxd = 0, maxr = 1;
  for (size_t i = 0; i < n1 && i < n2; i++) {
    const double d = y1[i] > y2[i] ? y1[i] - y2[i] : y2[i] - y1[i];
    if (d > maxd) maxd = d;
    if ((y1[i] > 0 ? y1[i] : -y1[i]) > maxr) maxr = y1[i] > 0 ? y1[i] : -y1[i];
  }
  CHECK(maxd <= 1e-5 * maxr, "2 threads vs 1: max diff %g", maxd);
  CHECK(st.regions > 0, "no parallel region ran");
  CHECK(st.caller_chunks + st.worker_chunks == st.chunks, "chunks: %llu posted, %llu run by the caller + %llu by the worker",
        (unsigned long long)st.chunks, (unsigned long long)st.caller_chunks, (unsigned long long)st.worker_chunks);
  CHECK(st.caller_chunks > 0, "the caller ran no chunk");
  printf("one CPU, 2 threads, %s x3: %llu regions, %llu chunks: caller %llu, worker %llu; caller slept %llu times\n",
         path, (unsigned long long)st.regions, (unsigned long long)st.chunks, (unsigned long long)st.caller_chunks,
         (unsigned long long)st.worker_chunks, (unsigned long long)st.caller_sleeps);
  ei_threadpool_destroy(pool);
  sched_setaffinity(0, sizeof all, &all);
  free(y1);
  free(y2);
}

/* ---- 4. hold ---- */

/* Waits (yielding, at most ~5 s) until the pool's workers have gone to sleep more than `than` times. */
static int worker_slept(ei_threadpool *pool, uint64_t than) {
  for (long i = 0; i < 5000000; i++) {
    ei__pool_stats st;
    ei__threadpool_stats(pool, &st);
    if (st.worker_sleeps > than) return 1;
    if (i % 64 == 63) {
      struct timespec ts = {0, 1000000};
      nanosleep(&ts, NULL);
      i += 999;
    } else {
      sched_yield();
    }
  }
  return 0;
}

static void test_hold(void) {
  ei_threadpool_hold(NULL, 1000000); /* no-ops */
  char err[256];
  ei_threadpool *one = NULL, *pool = NULL;
  CHECK(ei_threadpool_create(1, NULL, 0, &one, err, sizeof err) == EI_OK, "create: %s", err);
  ei_threadpool_hold(one, 1000000);
  ei_threadpool_destroy(one);
  CHECK(ei_threadpool_create(2, NULL, 0, &pool, err, sizeof err) == EI_OK, "create: %s", err);
  if (!pool) return;
  _Atomic int64_t total = 0;
  ei__parallel_for(pool, 1000, 1, count_range, &total);
  ei__pool_stats st;
  ei__threadpool_stats(pool, &st);
  CHECK(worker_slept(pool, st.worker_sleeps), "an idle worker goes to sleep");
  ei__threadpool_stats(pool, &st);
  const uint64_t s0 = st.worker_sleeps;
  ei_threadpool_hold(pool, 10ull * 1000000000ull); /* capped at 10 ms */
  for (int r = 0; r < 50; r++) ei__parallel_for(pool, 1000, 1, count_range, &total);
  CHECK(atomic_load(&total) == 51 * 1000, "regions during a hold: %lld indices", (long long)atomic_load(&total));
  CHECK(worker_slept(pool, s0), "the worker sleeps again after a capped hold");
  ei__threadpool_stats(pool, &st);
  const uint64_t s1 = st.worker_sleeps;
  ei_threadpool_hold(pool, 5000000);
  ei_threadpool_hold(pool, 0);
  CHECK(worker_slept(pool, s1), "the worker sleeps again after hold(0)");
  ei_threadpool_destroy(pool);
}

int main(int argc, char **argv) {
  test_coverage();
  test_absent_worker();
  test_hold();
  if (argc > 1) test_oversubscribed_model(argv[1]);
  if (failures) {
    fprintf(stderr, "%d failure(s)\n", failures);
    return 1;
  }
  printf("test_threadpool: OK\n");
  return 0;
}
