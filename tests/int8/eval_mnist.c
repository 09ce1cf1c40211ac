/* eval_mnist: classification accuracy of an ONNX model on an MNIST-format test set, run by our engine.
 *
 *   eval_mnist MODEL IMAGES LABELS [--batch N] [--threads N] [--limit N] [--min-acc PCT] [--ref-acc PCT
 *              --max-drop PTS] [--json FILE]
 *
 * IMAGES / LABELS are idx files (idx3 unsigned bytes [n,28,28] / idx1 unsigned bytes [n]), plain or gzipped
 * (read through zlib). The model takes [batch,1,H,W] float32 = pixel/255 and returns [batch,classes] scores
 * (the first input and output); the prediction is the arg-max (lowest index on ties). A symbolic batch runs
 * in batches of --batch (default 100); a fixed batch dimension is used as it is. Prints the accuracy; exits 1
 * when it is below --min-acc, or more than --max-drop percentage points below --ref-acc (a float model's
 * accuracy, e.g. for an int8 model), 2 on usage or I/O errors. --json writes {"correct","total","accuracy"}.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "edgeinfer.h"

typedef struct idx_file {
  int ndim;
  int64_t dims[4];
  uint8_t *data;
  size_t size;
} idx_file;

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "eval_mnist: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(2);
}

/* Reads exactly n bytes; 0 on success. */
static int gz_read_all(gzFile f, void *buf, size_t n) {
  uint8_t *p = buf;
  while (n > 0) {
    unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
    int r = gzread(f, p, chunk);
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

/* An idx file of unsigned bytes: 00 00 08 NDIM, NDIM big-endian u32 dims, then the data. */
static idx_file read_idx(const char *path, int want_ndim) {
  idx_file x = {0};
  gzFile f = gzopen(path, "rb");
  if (!f) die("cannot open %s: %s", path, strerror(errno));
  uint8_t head[4];
  if (gz_read_all(f, head, 4) || head[0] || head[1] || head[2] != 0x08 || head[3] != want_ndim)
    die("%s: not an idx file of unsigned bytes with the expected rank", path);
  x.ndim = head[3];
  x.size = 1;
  for (int i = 0; i < x.ndim; i++) {
    uint8_t d[4];
    if (gz_read_all(f, d, 4)) die("%s: truncated header", path);
    x.dims[i] = ((int64_t)d[0] << 24) | ((int64_t)d[1] << 16) | ((int64_t)d[2] << 8) | d[3];
    if (x.dims[i] <= 0 || x.dims[i] > (1 << 24)) die("%s: bad dimension", path);
    x.size *= (size_t)x.dims[i];
  }
  if (x.size > ((size_t)1 << 32)) die("%s: too large", path);
  x.data = malloc(x.size);
  if (!x.data) die("out of memory reading %s", path);
  if (gz_read_all(f, x.data, x.size)) die("%s: truncated data", path);
  gzclose(f);
  return x;
}

static double parse_num(const char *opt, const char *v) {
  char *end;
  errno = 0;
  double d = strtod(v, &end);
  if (errno || end == v || *end || !(d >= 0)) die("%s: bad number '%s'", opt, v);
  return d;
}

typedef struct options {
  const char *model, *images, *labels, *json;
  int batch, threads;
  long limit;
  double min_acc, ref_acc, max_drop;
} options;

static options parse_args(int argc, char **argv) {
  options o = {0};
  o.batch = 100;
  o.threads = 1;
  o.min_acc = o.ref_acc = o.max_drop = -1;
  int npos = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] == '-' && a[1] == '-') {
      if (i + 1 >= argc) die("%s needs a value", a);
      const char *v = argv[++i];
      if (!strcmp(a, "--batch")) o.batch = (int)parse_num(a, v);
      else if (!strcmp(a, "--threads")) o.threads = (int)parse_num(a, v);
      else if (!strcmp(a, "--limit")) o.limit = (long)parse_num(a, v);
      else if (!strcmp(a, "--min-acc")) o.min_acc = parse_num(a, v);
      else if (!strcmp(a, "--ref-acc")) o.ref_acc = parse_num(a, v);
      else if (!strcmp(a, "--max-drop")) o.max_drop = parse_num(a, v);
      else if (!strcmp(a, "--json")) o.json = v;
      else die("unknown option %s", a);
    } else if (npos == 0) {
      o.model = a, npos++;
    } else if (npos == 1) {
      o.images = a, npos++;
    } else if (npos == 2) {
      o.labels = a, npos++;
    } else {
      die("unexpected argument %s", a);
    }
  }
  if (npos != 3)
    die("usage: eval_mnist MODEL IMAGES LABELS [--batch N] [--threads N] [--limit N] [--min-acc PCT] "
        "[--ref-acc PCT --max-drop PTS] [--json FILE]");
  if (o.batch < 1 || o.batch > 10000) die("--batch must be 1..10000");
  if (o.threads < 1 || o.threads > 256) die("--threads must be 1..256");
  if ((o.ref_acc >= 0) != (o.max_drop >= 0)) die("--ref-acc and --max-drop go together");
  return o;
}

/* The model's first input must be [B,1,H,W] float32 (B fixed or symbolic); returns the batch to run. */
static int pick_batch(const ei_model *m, const options *o, int64_t h, int64_t w) {
  ei_value_info in;
  char msg[256];
  if (ei_model_input_info(m, 0, &in) != EI_OK) die("%s: no input", o->model);
  if (in.dtype != EI_FLOAT || in.rank != 4 || (in.dims[1] != 1 && in.dims[1] != -1) ||
      (in.dims[2] != h && in.dims[2] != -1) || (in.dims[3] != w && in.dims[3] != -1)) {
    snprintf(msg, sizeof msg, "input '%s' is not float32 [batch,1,%lld,%lld]", in.name, (long long)h,
             (long long)w);
    die("%s: %s", o->model, msg);
  }
  return in.dims[0] > 0 ? (int)in.dims[0] : o->batch;
}

static int argmax(const float *v, int64_t n) {
  int best = 0;
  for (int64_t i = 1; i < n; i++)
    if (v[i] > v[best]) best = (int)i;
  return best;
}

int main(int argc, char **argv) {
  options o = parse_args(argc, argv);
  idx_file img = read_idx(o.images, 3), lab = read_idx(o.labels, 1);
  if (img.dims[0] != lab.dims[0]) die("%s and %s hold different numbers of items", o.images, o.labels);
  int64_t n = img.dims[0], h = img.dims[1], w = img.dims[2];
  if (o.limit > 0 && o.limit < n) n = o.limit;

  char err[512];
  ei_model *model = NULL;
  ei_session *sess = NULL;
  ei_threadpool *pool = NULL;
  if (ei_model_load(o.model, NULL, &model, err, sizeof err) != EI_OK) die("%s: %s", o.model, err);
  if (o.threads > 1 && ei_threadpool_create(o.threads, NULL, 0, &pool, err, sizeof err) != EI_OK)
    die("thread pool: %s", err);
  if (ei_session_create(model, pool, &sess, err, sizeof err) != EI_OK) die("session: %s", err);
  int batch = pick_batch(model, &o, h, w);
  size_t plane = (size_t)(h * w);
  float *x = malloc((size_t)batch * plane * sizeof(float));
  if (!x) die("out of memory");

  int64_t correct = 0, done = 0;
  while (done < n) {
    int64_t take = n - done < batch ? n - done : batch; /* a fixed batch is padded with zero images */
    for (int64_t i = 0; i < (int64_t)batch * (int64_t)plane; i++)
      x[i] = i < take * (int64_t)plane ? img.data[(size_t)done * plane + (size_t)i] / 255.0f : 0.0f;
    ei_tensor in = {EI_FLOAT, 4, {batch, 1, h, w}, x}, out;
    if (ei_session_run(sess, 1, &in, 1, &out, err, sizeof err) != EI_OK) die("run: %s", err);
    if (out.dtype != EI_FLOAT || out.rank != 2 || out.dims[0] != batch || out.dims[1] < 1)
      die("%s: the first output is not float32 [batch,classes]", o.model);
    for (int64_t i = 0; i < take; i++)
      correct += argmax((const float *)out.data + i * out.dims[1], out.dims[1]) == lab.data[done + i];
    done += take;
  }
  double acc = 100.0 * (double)correct / (double)n;
  printf("%s: accuracy %.2f%% (%lld/%lld)\n", o.model, acc, (long long)correct, (long long)n);

  int fail = 0;
  if (o.min_acc >= 0 && acc < o.min_acc) {
    printf("FAIL: accuracy %.2f%% below the minimum %.2f%%\n", acc, o.min_acc);
    fail = 1;
  }
  if (o.ref_acc >= 0) {
    printf("drop vs reference %.2f%%: %.2f points (limit %.2f)\n", o.ref_acc, o.ref_acc - acc, o.max_drop);
    if (o.ref_acc - acc > o.max_drop + 1e-9) {
      printf("FAIL: accuracy dropped by more than %.2f points\n", o.max_drop);
      fail = 1;
    }
  }
  if (o.json) {
    FILE *f = fopen(o.json, "w");
    if (!f || fprintf(f, "{\"correct\": %lld, \"total\": %lld, \"accuracy\": %.4f}\n", (long long)correct,
                      (long long)n, acc) < 0 || fclose(f))
      die("cannot write %s", o.json);
  }
  free(x);
  free(img.data);
  free(lab.data);
  ei_session_destroy(sess);
  ei_threadpool_destroy(pool);
  ei_model_destroy(model);
  return fail;
}
