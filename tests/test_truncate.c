/* tests/test_truncate.c: a loaded model owns everything it needs; external data is confined to the model folder.
 *
 * usage: test_truncate MODEL.onnx TINYCNN.onnx MAKE_EXTERNAL_PY
 *
 * 1. MODEL is copied to a temporary folder, loaded with ei_model_load and run on a fixed input; then the file is
 *    truncated to 0 bytes, overwritten with garbage of its original size, and unlinked: after each step the
 *    existing session and a new one must give the same output bit for bit (a model that kept the file mapped
 *    would read garbage or die of SIGBUS). The same for ei_model_load_memory whose buffer is overwritten and
 *    freed after the load.
 * 2. MAKE_EXTERNAL_PY (tests/fixtures/make_external.py, run with /usr/bin/python3) writes TINYCNN with every
 *    initializer in weights.bin: it must load, match the single-file model's output, and keep doing so after
 *    weights.bin is deleted; loading it again without weights.bin is EI_E_IO; from memory it needs a base_dir.
 *    Variants whose location is "../x" or "/etc/passwd" are EI_E_INVALID_MODEL, as is an offset past the end.
 */
#include <ftw.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "edgeinfer.h"

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

/* ---- files ---- */
static uint8_t *read_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *p = malloc(n > 0 ? (size_t)n : 1);
  if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
    free(p);
    p = NULL;
  }
  fclose(f);
  *size = (size_t)n;
  return p;
}

static int write_file(const char *path, const void *data, size_t size) {
  FILE *f = fopen(path, "wb");
  if (!f) return 0;
  int ok = fwrite(data, 1, size, f) == size;
  return fclose(f) == 0 && ok;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

/* ---- running ---- */
typedef struct result {
  ei_status status;
  char err[512];
  size_t nbytes;
  uint8_t *bytes; /* output 0, copied */
} result;

typedef struct input {
  ei_tensor t;
} input;

/* Input 0 of the model: symbolic dims -> 1, deterministic values in [-1, 1). */
static int make_input(const ei_model *m, ei_tensor *t) {
  ei_value_info info;
  if (ei_model_input_count(m) != 1 || ei_model_input_info(m, 0, &info) || info.dtype != EI_FLOAT) return 0;
  memset(t, 0, sizeof *t);
  t->dtype = EI_FLOAT;
  t->rank = info.rank;
  for (int d = 0; d < info.rank; d++) t->dims[d] = info.dims[d] >= 0 ? info.dims[d] : 1;
  int64_t n = ei_tensor_numel(t);
  float *x = malloc((size_t)n * sizeof(float));
  uint32_t s = 2024;
  for (int64_t i = 0; i < n; i++) {
    s = s * 1664525u + 1013904223u;
    x[i] = (float)(s >> 8) / (float)(1 << 24) * 2.f - 1.f;
  }
  t->data = x;
  return 1;
}

static void run(ei_session *s, const ei_tensor *in, result *r) {
  ei_tensor out;
  free(r->bytes);
  memset(r, 0, sizeof *r);
  r->status = ei_session_run(s, 1, in, 1, &out, r->err, sizeof r->err);
  if (r->status) return;
  r->nbytes = (size_t)ei_tensor_numel(&out) * ei_dtype_size(out.dtype);
  r->bytes = malloc(r->nbytes ? r->nbytes : 1);
  memcpy(r->bytes, out.data, r->nbytes);
}

static int same(const result *a, const result *b) {
  return a->status == EI_OK && b->status == EI_OK && a->nbytes == b->nbytes && !memcmp(a->bytes, b->bytes, a->nbytes);
}

/* Runs the existing session and a new one on m; both must equal ref. */
static void expect_same(const char *what, ei_model *m, ei_session *s, const ei_tensor *in, const result *ref) {
  result r = {0};
  run(s, in, &r);
  check(same(&r, ref), "%s: existing session %s%s", what, r.status ? r.err : "gives the same output",
        r.status || same(&r, ref) ? "" : " DIFFERS");
  ei_session *s2 = NULL;
  char err[256] = "";
  if (ei_session_create(m, NULL, &s2, err, sizeof err)) {
    check(0, "%s: new session: %s", what, err);
  } else {
    run(s2, in, &r);
    check(same(&r, ref), "%s: new session %s%s", what, r.status ? r.err : "gives the same output",
          r.status || same(&r, ref) ? "" : " DIFFERS");
  }
  ei_session_destroy(s2);
  free(r.bytes);
}

/* Loads path (or fails the check), creates a session, runs into r. */
static ei_model *load_and_run(const char *path, ei_session **s, ei_tensor *in, result *r) {
  ei_model *m = NULL;
  char err[512] = "";
  *s = NULL;
  ei_status st = ei_model_load(path, NULL, &m, err, sizeof err);
  check(st == EI_OK, "load %s%s%s", path, st ? ": " : "", st ? err : "");
  if (st) return NULL;
  if (!in->data && !make_input(m, in)) {
    check(0, "%s: expected one float input", path);
    ei_model_destroy(m);
    return NULL;
  }
  if ((st = ei_session_create(m, NULL, s, err, sizeof err))) {
    check(0, "session: %s", err);
    ei_model_destroy(m);
    return NULL;
  }
  run(*s, in, r);
  check(r->status == EI_OK, "run %s%s%s", path, r->status ? ": " : "", r->status ? r->err : "");
  if (r->status) {
    ei_session_destroy(*s);
    ei_model_destroy(m);
    return NULL;
  }
  return m;
}

/* ---- 1. the file goes away under a loaded model ---- */
static void file_lifetime(const char *model_path, const char *tmp) {
  size_t size;
  uint8_t *orig = read_file(model_path, &size);
  if (!orig) {
    check(0, "cannot read %s", model_path);
    return;
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/model.onnx", tmp);
  if (!write_file(path, orig, size)) {
    check(0, "cannot write %s", path);
    free(orig);
    return;
  }
  ei_tensor in = {0};
  ei_session *s;
  result ref = {0};
  ei_model *m = load_and_run(path, &s, &in, &ref);
  if (m) {
    printf("     %s: %zu bytes, output %zu bytes\n", model_path, size, ref.nbytes);
    check(truncate(path, 0) == 0, "truncate the file to 0 bytes");
    expect_same("after truncation", m, s, &in, &ref);
    uint8_t *garbage = malloc(size);
    for (size_t i = 0; i < size; i++) garbage[i] = (uint8_t)(i * 131 + 7);
    check(write_file(path, garbage, size), "overwrite the file with %zu bytes of garbage", size);
    free(garbage);
    expect_same("after overwriting", m, s, &in, &ref);
    check(unlink(path) == 0, "unlink the file");
    expect_same("after unlink", m, s, &in, &ref);
    ei_session_destroy(s);
    ei_model_destroy(m);
  }
  /* From memory: the buffer is overwritten and freed after the load. */
  uint8_t *buf = malloc(size);
  memcpy(buf, orig, size);
  char err[512] = "";
  ei_model *mm = NULL;
  ei_status st = ei_model_load_memory(buf, size, NULL, NULL, &mm, err, sizeof err);
  check(st == EI_OK, "load from memory%s%s", st ? ": " : "", st ? err : "");
  memset(buf, 0xa5, size);
  free(buf);
  if (!st && ref.status == EI_OK) {
    ei_session *s2 = NULL;
    if (ei_session_create(mm, NULL, &s2, err, sizeof err) == EI_OK) {
      expect_same("memory buffer overwritten and freed", mm, s2, &in, &ref);
      ei_session_destroy(s2);
    }
  }
  ei_model_destroy(mm);
  free(ref.bytes);
  free(in.data);
  free(orig);
}

/* ---- 2. external data ---- */
static void expect_refused(const char *what, const char *path, ei_status want, const char *kw) {
  ei_model *m = NULL;
  char err[1024] = "";
  ei_status st = ei_model_load(path, NULL, &m, err, sizeof err);
  check(st == want && !m && strstr(err, kw), "%s: %s: %s", what, ei_strerror(st), err);
  ei_model_destroy(m);
}

static void external_data(const char *tiny_path, const char *script, const char *tmp) {
  char cmd[8192], path[4096], dir[2048];
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s' '%s'", script, tiny_path, tmp);
  int rc = system(cmd);
  check(rc == 0, "make_external.py wrote the external-data variants (exit %d)", rc);
  if (rc) return;
  /* The single-file model's output is the reference. */
  ei_tensor in = {0};
  ei_session *s;
  result ref = {0}, r = {0};
  ei_model *m = load_and_run(tiny_path, &s, &in, &ref);
  if (!m) return;
  ei_session_destroy(s);
  ei_model_destroy(m);

  snprintf(dir, sizeof dir, "%s/ext", tmp);
  snprintf(path, sizeof path, "%s/model.onnx", dir);
  /* From memory: needs base_dir. */
  size_t size;
  uint8_t *bytes = read_file(path, &size);
  ei_model *mm = NULL;
  char err[1024] = "";
  ei_status st = ei_model_load_memory(bytes, size, NULL, NULL, &mm, err, sizeof err);
  check(st == EI_E_INVALID_MODEL && !mm, "external data from memory without base_dir: %s: %s", ei_strerror(st), err);
  ei_model_destroy(mm);
  mm = NULL;
  st = ei_model_load_memory(bytes, size, dir, NULL, &mm, err, sizeof err);
  check(st == EI_OK, "external data from memory with base_dir%s%s", st ? ": " : "", st ? err : "");
  if (!st) {
    ei_session *s2 = NULL;
    if (ei_session_create(mm, NULL, &s2, err, sizeof err) == EI_OK) {
      run(s2, &in, &r);
      check(same(&r, &ref), "external data from memory gives the single-file output");
      ei_session_destroy(s2);
    }
  }
  ei_model_destroy(mm);
  free(bytes);

  m = load_and_run(path, &s, &in, &r);
  if (m) {
    check(same(&r, &ref), "external data model gives the single-file model's output");
    snprintf(cmd, sizeof cmd, "%s/weights.bin", dir);
    check(unlink(cmd) == 0, "delete weights.bin");
    expect_same("after deleting weights.bin", m, s, &in, &ref);
    ei_session_destroy(s);
    ei_model_destroy(m);
    expect_refused("load without weights.bin", path, EI_E_IO, "weights.bin");
  }
  snprintf(path, sizeof path, "%s/dotdot/model.onnx", tmp);
  expect_refused("location ../x", path, EI_E_INVALID_MODEL, "../x");
  snprintf(path, sizeof path, "%s/abs/model.onnx", tmp);
  expect_refused("location /etc/passwd", path, EI_E_INVALID_MODEL, "/etc/passwd");
  snprintf(path, sizeof path, "%s/range/model.onnx", tmp);
  expect_refused("offset past the end of weights.bin", path, EI_E_INVALID_MODEL, "weights.bin");
  free(r.bytes);
  free(ref.bytes);
  free(in.data);
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc != 4) {
    printf("usage: test_truncate MODEL.onnx TINYCNN.onnx MAKE_EXTERNAL_PY\n0 passed, 1 failed\n");
    return 1;
  }
  const char *t = getenv("TMPDIR");
  char tmp[1024];
  snprintf(tmp, sizeof tmp, "%s/ei-truncate-XXXXXX", t && *t ? t : "/tmp");
  if (!mkdtemp(tmp)) {
    printf("cannot make a temporary folder\n0 passed, 1 failed\n");
    return 1;
  }
  file_lifetime(argv[1], tmp);
  external_data(argv[2], argv[3], tmp);
  nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
