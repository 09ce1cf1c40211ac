/* tests/test_noalloc.c: ei_session_run at an already planned shape makes no allocation and no mapping.
 *
 * usage: test_noalloc MODEL.onnx...      (tinycnn, resnet18; built without sanitizers)
 *
 * The binary defines malloc, calloc, realloc, free, posix_memalign, aligned_alloc, memalign, valloc, pvalloc,
 * mmap and mmap64 itself; every call (from the library, libc or the pool's worker threads) is forwarded to the
 * next definition (dlsym(RTLD_NEXT)) and counted while counting is on. dlsym itself may call calloc/malloc
 * before the real ones are known: those calls are served from a small static buffer that free() ignores.
 *
 * Per model, without and with a 2-thread ei_threadpool: run once at batch 1 (plans and allocates), then runs
 * 2..10 at batch 1 must make zero calls and give the first run's output bit for bit; a run at batch 2 may
 * allocate (a new plan); batch 1 again is a cached plan: zero calls.
 */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "edgeinfer.h"

/* ---- interposition ---- */
enum { C_MALLOC, C_CALLOC, C_REALLOC, C_FREE, C_POSIX_MEMALIGN, C_ALIGNED_ALLOC, C_MEMALIGN, C_VALLOC, C_PVALLOC,
       C_MMAP, C_MMAP64, NCOUNTERS };
static const char *const counter_names[NCOUNTERS] = {"malloc", "calloc", "realloc", "free", "posix_memalign",
                                                      "aligned_alloc", "memalign", "valloc", "pvalloc", "mmap",
                                                      "mmap64"};
static long g_calls[NCOUNTERS];
static int g_counting;

static void count(int which) {
  if (__atomic_load_n(&g_counting, __ATOMIC_RELAXED)) __atomic_add_fetch(&g_calls[which], 1, __ATOMIC_RELAXED);
}

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);
static void *(*real_valloc)(size_t);
static void *(*real_pvalloc)(size_t);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static void *(*real_mmap64)(void *, size_t, int, int, int, off64_t);

/* Bootstrap arena for allocations made while dlsym resolves the real functions. */
static _Alignas(64) uint8_t g_boot[64 * 1024];
static size_t g_boot_used;
static int g_resolving;

static int in_boot(const void *p) { return (const uint8_t *)p >= g_boot && (const uint8_t *)p < g_boot + sizeof g_boot; }

static void *boot_alloc(size_t n) {
  size_t at = (g_boot_used + 63) & ~(size_t)63;
  if (at + n > sizeof g_boot) return NULL;
  g_boot_used = at + n;
  return g_boot + at; /* static storage: already zero */
}

static void resolve(void) {
  if (real_malloc || g_resolving) return;
  g_resolving = 1;
  real_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
  real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
  real_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
  real_posix_memalign = (int (*)(void **, size_t, size_t))dlsym(RTLD_NEXT, "posix_memalign");
  real_aligned_alloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "aligned_alloc");
  real_memalign = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "memalign");
  real_valloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "valloc");
  real_pvalloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "pvalloc");
  real_mmap = (void *(*)(void *, size_t, int, int, int, off_t))dlsym(RTLD_NEXT, "mmap");
  real_mmap64 = (void *(*)(void *, size_t, int, int, int, off64_t))dlsym(RTLD_NEXT, "mmap64");
  void *m = dlsym(RTLD_NEXT, "malloc"); /* last: real_malloc != NULL means everything is resolved */
  __atomic_store_n(&real_malloc, (void *(*)(size_t))m, __ATOMIC_RELEASE);
  g_resolving = 0;
}

void *malloc(size_t n) {
  count(C_MALLOC);
  resolve();
  return real_malloc ? real_malloc(n) : boot_alloc(n);
}

void *calloc(size_t a, size_t b) {
  count(C_CALLOC);
  resolve();
  if (!real_calloc || !real_malloc) return b && a > SIZE_MAX / b ? NULL : boot_alloc(a * b);
  return real_calloc(a, b);
}

void *realloc(void *p, size_t n) {
  count(C_REALLOC);
  resolve();
  if (in_boot(p)) { /* move a bootstrap block to the real heap (its size is unknown: copy what fits) */
    size_t room = (size_t)(g_boot + sizeof g_boot - (uint8_t *)p);
    void *q = malloc(n);
    if (q) memcpy(q, p, n < room ? n : room);
    return q;
  }
  return real_realloc(p, n);
}

void free(void *p) {
  count(C_FREE);
  if (!p || in_boot(p)) return;
  resolve();
  real_free(p);
}

int posix_memalign(void **out, size_t align, size_t n) {
  count(C_POSIX_MEMALIGN);
  resolve();
  return real_posix_memalign(out, align, n);
}

void *aligned_alloc(size_t align, size_t n) {
  count(C_ALIGNED_ALLOC);
  resolve();
  return real_aligned_alloc(align, n);
}

void *memalign(size_t align, size_t n) {
  count(C_MEMALIGN);
  resolve();
  return real_memalign(align, n);
}

void *valloc(size_t n) {
  count(C_VALLOC);
  resolve();
  return real_valloc(n);
}

void *pvalloc(size_t n) {
  count(C_PVALLOC);
  resolve();
  return real_pvalloc(n);
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  count(C_MMAP);
  resolve();
  return real_mmap(addr, len, prot, flags, fd, off);
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off) {
  count(C_MMAP64);
  resolve();
  return real_mmap64(addr, len, prot, flags, fd, off);
}

/* ---- the test ---- */
static int g_pass, g_fail;

static void check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(int ok, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf(ok ? "ok   " : "FAIL ");
  vprintf(fmt, ap);
  printf("\n");
  va_end(ap);
  if (ok)
    g_pass++;
  else
    g_fail++;
}

static void counting(int on) {
  if (on) memset(g_calls, 0, sizeof g_calls);
  __atomic_store_n(&g_counting, on, __ATOMIC_SEQ_CST);
}

static long total_calls(char *desc, size_t len) {
  long t = 0;
  desc[0] = 0;
  for (int i = 0; i < NCOUNTERS; i++) {
    t += g_calls[i];
    if (g_calls[i]) {
      size_t l = strlen(desc);
      snprintf(desc + l, len - l, " %s=%ld", counter_names[i], g_calls[i]);
    }
  }
  return t;
}

static int make_input(const ei_model *m, int64_t n, ei_tensor *t) {
  ei_value_info info;
  if (ei_model_input_count(m) != 1 || ei_model_input_info(m, 0, &info) || info.dtype != EI_FLOAT) return 0;
  memset(t, 0, sizeof *t);
  t->dtype = EI_FLOAT;
  t->rank = info.rank;
  for (int d = 0; d < info.rank; d++) t->dims[d] = info.dims[d] >= 0 ? info.dims[d] : (d == 0 ? n : 1);
  int64_t cnt = ei_tensor_numel(t);
  float *x = malloc((size_t)cnt * sizeof(float));
  uint32_t s = 99;
  for (int64_t i = 0; i < cnt; i++) {
    s = s * 1664525u + 1013904223u;
    x[i] = (float)(s >> 8) / (float)(1 << 24) * 2.f - 1.f;
  }
  t->data = x;
  return 1;
}

static void test_model(const char *path, int threads) {
  char err[512] = "", desc[512];
  ei_model *m = NULL;
  ei_session *s = NULL;
  ei_threadpool *pool = NULL;
  ei_tensor in1, in2, out;
  float *first = NULL;
  size_t nbytes = 0;
  const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
  in1.data = in2.data = NULL;
  if (threads > 1 && ei_threadpool_create(threads, NULL, 0, &pool, err, sizeof err)) {
    check(0, "%s: threadpool: %s", name, err);
    return;
  }
  ei_status st = ei_model_load(path, NULL, &m, err, sizeof err);
  if (!st) st = ei_session_create(m, pool, &s, err, sizeof err);
  if (st || !make_input(m, 1, &in1) || !make_input(m, 2, &in2)) {
    check(0, "%s: load/session/input: %s", name, err);
    goto done;
  }
  st = ei_session_run(s, 1, &in1, 1, &out, err, sizeof err);
  if (st) {
    check(0, "%s: first run: %s", name, err);
    goto done;
  }
  nbytes = (size_t)ei_tensor_numel(&out) * ei_dtype_size(out.dtype);
  first = malloc(nbytes);
  memcpy(first, out.data, nbytes);

  counting(1);
  int same = 1;
  for (int r = 2; r <= 10 && !st; r++) {
    st = ei_session_run(s, 1, &in1, 1, &out, err, sizeof err);
    if (!st && memcmp(out.data, first, nbytes)) same = 0;
  }
  counting(0);
  long t = total_calls(desc, sizeof desc);
  check(!st && t == 0, "%s, %d thread(s): runs 2..10 at batch 1: %ld calls%s%s%s", name, threads, t, desc,
        st ? ": " : "", st ? err : "");
  check(same, "%s, %d thread(s): runs 2..10 give the first run's output", name, threads);

  counting(1);
  st = ei_session_run(s, 1, &in2, 1, &out, err, sizeof err);
  counting(0);
  t = total_calls(desc, sizeof desc);
  check(!st, "%s, %d thread(s): run at batch 2 (new plan, may allocate): %ld calls%s%s%s", name, threads, t, desc,
        st ? ": " : "", st ? err : "");

  counting(1);
  st = ei_session_run(s, 1, &in1, 1, &out, err, sizeof err);
  counting(0);
  t = total_calls(desc, sizeof desc);
  check(!st && t == 0, "%s, %d thread(s): batch 1 again (cached plan): %ld calls%s%s%s", name, threads, t, desc,
        st ? ": " : "", st ? err : "");
  check(!st && !memcmp(out.data, first, nbytes), "%s, %d thread(s): batch 1 again gives the first output", name,
        threads);
done:
  free(first);
  free(in1.data);
  free(in2.data);
  ei_session_destroy(s);
  ei_model_destroy(m);
  ei_threadpool_destroy(pool);
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) {
    printf("usage: test_noalloc MODEL.onnx...\n0 passed, 1 failed\n");
    return 1;
  }
  /* The counters work: a malloc while counting is seen. */
  counting(1);
  void *volatile p = malloc(16);
  free(p);
  counting(0);
  check(g_calls[C_MALLOC] == 1 && g_calls[C_FREE] == 1, "the interposed malloc/free are the ones called");
  for (int i = 1; i < argc; i++) {
    test_model(argv[i], 1);
    test_model(argv[i], 2);
  }
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
