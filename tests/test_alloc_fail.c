/* tests/test_alloc_fail.c: allocation-failure injection through ei_set_allocator.
 *
 * usage: test_alloc_fail MODEL.onnx      (tinycnn)
 *
 * For N = 1, 2, 3, ...: an allocator that fails the Nth allocation (and, in a second sweep, every allocation
 * from the Nth on) runs load -> session -> plan -> run -> destroy. Every attempt that hits the failure must
 * return an error status with a message (EI_E_NOMEM, or another status: never a crash), and after the destroy
 * calls no allocation may be live. The sweep ends at the first N the whole sequence never reaches; that run
 * must succeed and give the same output as a run with the default allocator. A third sweep does the same with a
 * 2-thread pool created through the failing allocator. ASan's leak checker and the live count both watch leaks.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeinfer.h"

static int g_pass, g_fail;

/* ---- the failing allocator ---- */
typedef struct fail_alloc {
  long calls;     /* allocations so far in this attempt */
  long fail_at;   /* the first allocation to fail (1-based; 0: never) */
  int sticky;     /* fail every allocation from fail_at on */
  long live;      /* blocks not freed yet */
  long hit;       /* allocations refused */
} fail_alloc;

static void *fa_alloc(void *ud, size_t size, size_t align) {
  fail_alloc *fa = ud;
  long n = __atomic_add_fetch(&fa->calls, 1, __ATOMIC_RELAXED);
  if (fa->fail_at && (n == fa->fail_at || (fa->sticky && n > fa->fail_at))) {
    __atomic_add_fetch(&fa->hit, 1, __ATOMIC_RELAXED);
    return NULL;
  }
  void *p = NULL;
  if (posix_memalign(&p, align, size ? size : 1)) return NULL;
  __atomic_add_fetch(&fa->live, 1, __ATOMIC_RELAXED);
  return p;
}

static void fa_free(void *ud, void *p) {
  fail_alloc *fa = ud;
  if (!p) return;
  __atomic_sub_fetch(&fa->live, 1, __ATOMIC_RELAXED);
  free(p);
}

/* ---- one attempt ---- */
static float g_input[3 * 32 * 32];

typedef struct outcome {
  ei_status status;
  const char *stage;
  char err[512];
  float out[64];
  int64_t out_numel;
} outcome;

static void attempt(const void *model, size_t size, int threads, outcome *o) {
  ei_model *m = NULL;
  ei_session *s = NULL;
  ei_threadpool *pool = NULL;
  memset(o, 0, sizeof *o);
  o->stage = "threadpool";
  if (threads > 1 && (o->status = ei_threadpool_create(threads, NULL, 0, &pool, o->err, sizeof o->err))) goto done;
  o->stage = "load";
  if ((o->status = ei_model_load_memory(model, size, NULL, NULL, &m, o->err, sizeof o->err))) goto done;
  o->stage = "session";
  if ((o->status = ei_session_create(m, pool, &s, o->err, sizeof o->err))) goto done;
  ei_value_info info;
  ei_model_input_info(m, 0, &info);
  ei_tensor in;
  memset(&in, 0, sizeof in);
  in.dtype = EI_FLOAT;
  in.rank = 4;
  in.dims[0] = 1, in.dims[1] = 3, in.dims[2] = 32, in.dims[3] = 32;
  in.data = g_input;
  o->stage = "plan";
  if ((o->status = ei_session_plan(s, 1, &in, o->err, sizeof o->err))) goto done;
  ei_tensor out;
  o->stage = "run";
  if ((o->status = ei_session_run(s, 1, &in, 1, &out, o->err, sizeof o->err))) goto done;
  o->out_numel = ei_tensor_numel(&out);
  if (o->out_numel > 64) o->out_numel = 64;
  memcpy(o->out, out.data, (size_t)o->out_numel * sizeof(float));
  /* A second shape (batch 2) goes through planning again. */
  in.dims[0] = 2;
  static float in2[2 * 3 * 32 * 32];
  in.data = in2;
  o->stage = "run batch 2";
  if ((o->status = ei_session_run(s, 1, &in, 1, &out, o->err, sizeof o->err))) goto done;
  o->stage = "done";
done:
  ei_session_destroy(s);
  ei_model_destroy(m);
  ei_threadpool_destroy(pool);
}

static void check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(int ok, const char *fmt, ...) {
  if (ok) {
    g_pass++;
    return;
  }
  g_fail++;
  printf("FAIL ");
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
}

/* One sweep: N = 1.. until an attempt never reaches allocation N. */
static void sweep(const char *name, const void *model, size_t size, int threads, int sticky, const outcome *ref) {
  fail_alloc fa;
  ei_allocator a = {fa_alloc, fa_free, &fa};
  long counts[EI_E_INTERNAL + 1] = {0};
  long n, max_calls = 0;
  int bad = 0, others = 0;
  for (n = 1;; n++) {
    memset(&fa, 0, sizeof fa);
    fa.fail_at = n;
    fa.sticky = sticky;
    ei_set_allocator(&a);
    outcome o;
    attempt(model, size, threads, &o);
    ei_set_allocator(NULL);
    if (fa.calls > max_calls) max_calls = fa.calls;
    if (fa.live != 0) {
      check(0, "%s: N=%ld: %ld allocations still live after destroy (failed at %s: %s)", name, n, fa.live, o.stage,
            o.err);
      bad++;
    }
    if (!fa.hit) { /* the sequence never reached allocation N: done */
      check(o.status == EI_OK, "%s: N=%ld: no failure injected but %s failed: %s", name, n, o.stage, o.err);
      int same = o.out_numel == ref->out_numel && !memcmp(o.out, ref->out, sizeof(float) * (size_t)o.out_numel);
      check(same, "%s: final run's output differs from the reference", name);
      break;
    }
    if ((int)o.status < 0 || o.status > EI_E_INTERNAL) {
      check(0, "%s: N=%ld: status %d out of range", name, n, (int)o.status);
      bad++;
      continue;
    }
    counts[o.status]++;
    if (o.status != EI_OK && o.status != EI_E_NOMEM && ++others <= 3) /* allowed, but shown */
      printf("  N=%ld: %s returned %s: %s\n", n, o.stage, ei_strerror(o.status), o.err);
    if (o.status != EI_OK && !o.err[0]) {
      check(0, "%s: N=%ld: %s returned %s without a message", name, n, o.stage, ei_strerror(o.status));
      bad++;
    }
    if (o.status == EI_OK && o.out_numel) { /* tolerated the failure: the output must still be right */
      if (o.out_numel != ref->out_numel || memcmp(o.out, ref->out, sizeof(float) * (size_t)o.out_numel)) {
        check(0, "%s: N=%ld: succeeded despite the failure with a wrong output", name, n);
        bad++;
      }
    }
    if (n > 1000000) {
      check(0, "%s: no end after %ld attempts", name, n);
      break;
    }
  }
  printf("%s: %ld attempts (up to %ld allocations each):", name, n, max_calls);
  for (int k = 0; k <= (int)EI_E_INTERNAL; k++)
    if (counts[k]) printf(" %s %ld", ei_strerror((ei_status)k), counts[k]);
  printf("\n");
  check(!bad, "%s: %d bad attempts", name, bad);
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) {
    printf("usage: test_alloc_fail MODEL.onnx\n0 passed, 1 failed\n");
    return 1;
  }
  FILE *f = fopen(argv[1], "rb");
  if (!f) {
    printf("cannot open %s\n0 passed, 1 failed\n", argv[1]);
    return 1;
  }
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  void *model = malloc((size_t)size);
  if (fread(model, 1, (size_t)size, f) != (size_t)size) {
    printf("cannot read %s\n0 passed, 1 failed\n", argv[1]);
    return 1;
  }
  fclose(f);
  uint32_t x = 12345;
  for (size_t i = 0; i < sizeof g_input / sizeof *g_input; i++) {
    x = x * 1664525u + 1013904223u;
    g_input[i] = (float)(x >> 8) / (float)(1 << 24) * 2.f - 1.f;
  }
  outcome ref;
  attempt(model, (size_t)size, 1, &ref);
  check(ref.status == EI_OK, "reference run failed at %s: %s", ref.stage, ref.err);
  if (ref.status == EI_OK) {
    sweep("fail the Nth allocation", model, (size_t)size, 1, 0, &ref);
    sweep("fail from the Nth allocation on", model, (size_t)size, 1, 1, &ref);
    sweep("fail the Nth, 2-thread pool", model, (size_t)size, 2, 0, &ref);
  }
  free(model);
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
