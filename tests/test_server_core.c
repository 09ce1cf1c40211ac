/* tests/test_server_core.c: the server core (src/server/server.h) driven directly with a libuv loop and a fake
 * transport, over a temporary repository made of models/fashion_mnist.onnx and a small static model written
 * here:
 *   repository load, the index with failing models (corrupt file, max_batch_size without a symbolic first
 *   dimension, a config signature that disagrees), version policy, metadata, readiness; inference against the
 *   engine run directly; the classification extension; validation errors; dynamic batching (with the
 *   test_delay_ms hook: requests queued while the model is busy run as one execution); queue full ->
 *   EXHAUSTED; deadline -> DEADLINE and never run; cancel while queued; drain; classify on a JPEG and a PNG
 *   against `edgeinfer run` (same indices, scores within 1e-5) and refused photos.
 *
 * usage: test_server_core MODELS_DIR JPEG PNG [EDGEINFER_CLI]
 */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "core_impl.h"

#include "check.h"

static uv_loop_t loop;
static pthread_t loop_thread;
static char repo[256];
static const char *models_dir, *jpeg_path, *png_path, *cli_path;

/* ---- files ---- */

static void write_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(data, 1, n, f) != n) {
    fprintf(stderr, "cannot write %s\n", path);
    exit(1);
  }
  fclose(f);
}

static void *read_file(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "cannot read %s\n", path);
    exit(1);
  }
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  rewind(f);
  void *p = malloc((size_t)len + 1);
  if (!p || fread(p, 1, (size_t)len, f) != (size_t)len) exit(1);
  fclose(f);
  *n = (size_t)len;
  return p;
}

static void mkdirf(const char *fmt, ...) {
  char p[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p, sizeof p, fmt, ap);
  va_end(ap);
  mkdir(p, 0777);
}

static void put(const char *rel, const void *data, size_t n) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", repo, rel);
  write_file(p, data, n);
}

static void puts_(const char *rel, const char *text) { put(rel, text, strlen(text)); }

/* A tiny protobuf writer for a static Relu model: x float [2, 3] -> y. */
typedef struct pb { uint8_t b[512]; size_t n; } pb;
static void pb_varint(pb *p, uint64_t v) {
  do {
    uint8_t c = v & 0x7f;
    v >>= 7;
    p->b[p->n++] = c | (v ? 0x80 : 0);
  } while (v);
}
static void pb_int(pb *p, int field, uint64_t v) { pb_varint(p, (uint64_t)field << 3), pb_varint(p, v); }
static void pb_bytes(pb *p, int field, const void *d, size_t n) {
  pb_varint(p, (uint64_t)field << 3 | 2);
  pb_varint(p, n);
  memcpy(p->b + p->n, d, n);
  p->n += n;
}
static void pb_str(pb *p, int field, const char *s) { pb_bytes(p, field, s, strlen(s)); }
static void pb_sub(pb *p, int field, const pb *q) { pb_bytes(p, field, q->b, q->n); }

static void value_info(pb *out, const char *name) {
  pb shape = {0}, d1 = {0}, d2 = {0}, tt = {0}, type = {0};
  pb_int(&d1, 1, 2);
  pb_int(&d2, 1, 3);
  pb_sub(&shape, 1, &d1);
  pb_sub(&shape, 1, &d2);
  pb_int(&tt, 1, 1); /* FLOAT */
  pb_sub(&tt, 2, &shape);
  pb_sub(&type, 1, &tt);
  pb_str(out, 1, name);
  pb_sub(out, 2, &type);
}

static void write_relu_model(const char *rel) {
  pb node = {0}, graph = {0}, in = {0}, outv = {0}, opset = {0}, model = {0};
  pb_str(&node, 1, "x");
  pb_str(&node, 2, "y");
  pb_str(&node, 3, "relu");
  pb_str(&node, 4, "Relu");
  value_info(&in, "x");
  value_info(&outv, "y");
  pb_sub(&graph, 1, &node);
  pb_str(&graph, 2, "g");
  pb_sub(&graph, 11, &in);
  pb_sub(&graph, 12, &outv);
  pb_int(&opset, 2, 13);
  pb_int(&model, 1, 7);
  pb_sub(&model, 7, &graph);
  pb_sub(&model, 8, &opset);
  put(rel, model.b, model.n);
}

static const char *labels_txt =
    "T-shirt/top\nTrouser\nPullover\nDress\nCoat\nSandal\nShirt\nSneaker\nBag\nAnkle boot\n";

static void make_repo(void) {
  snprintf(repo, sizeof repo, "/tmp/ei-server-core-XXXXXX");
  if (!mkdtemp(repo)) exit(1);
  size_t n;
  char p[512];
  snprintf(p, sizeof p, "%s/fashion_mnist.onnx", models_dir);
  void *onnx = read_file(p, &n);
  /* fashion: versions 1 and 2 (latest 1 serves 2), batching, preprocessing as `run --mean 0,0,0 --std 1,1,1` */
  mkdirf("%s/fashion", repo), mkdirf("%s/fashion/1", repo), mkdirf("%s/fashion/2", repo),
      mkdirf("%s/fashion/notaversion", repo);
  put("fashion/1/model.onnx", onnx, n);
  put("fashion/2/model.onnx", onnx, n);
  puts_("fashion/labels.txt", labels_txt);
  puts_("fashion/config.json",
        "{\"name\": \"fashion\", \"max_batch_size\": 8,\n"
        " \"input\": [{\"name\": \"input\", \"data_type\": \"TYPE_FP32\", \"dims\": [1, 28, 28]}],\n"
        " \"output\": [{\"name\": \"logits\", \"data_type\": \"TYPE_FP32\", \"dims\": [10]}],\n"
        " \"dynamic_batching\": {\"max_queue_delay_microseconds\": 0},\n"
        " \"edgeinfer\": {\"preprocessing\": {\"mean\": [0, 0, 0], \"std\": [1, 1, 1]}, \"labels\": \"labels.txt\","
        " \"max_queue\": 3, \"top_k\": 3}}\n");
  /* every version; defaults from the model otherwise */
  mkdirf("%s/allv", repo), mkdirf("%s/allv/3", repo), mkdirf("%s/allv/10", repo);
  put("allv/3/model.onnx", onnx, n);
  put("allv/10/model.onnx", onnx, n);
  puts_("allv/config.json", "{\"version_policy\": {\"all\": {}}, \"instance_group\": [{\"count\": 2}],"
        " \"dynamic_batching\": {\"max_queue_delay_microseconds\": 500, \"preferred_batch_size\": [2]}}");
  /* failing models */
  mkdirf("%s/corrupt", repo), mkdirf("%s/corrupt/1", repo);
  puts_("corrupt/1/model.onnx", "this is not an ONNX file at all, just some words");
  mkdirf("%s/static", repo), mkdirf("%s/static/1", repo);
  write_relu_model("static/1/model.onnx");
  puts_("static/config.json", "{\"max_batch_size\": 4}");
  mkdirf("%s/mismatch", repo), mkdirf("%s/mismatch/1", repo);
  put("mismatch/1/model.onnx", onnx, n);
  puts_("mismatch/config.json",
        "{\"max_batch_size\": 8, \"input\": [{\"name\": \"input\", \"data_type\": \"TYPE_FP32\", \"dims\": [3, 32, 32]}]}");
  mkdirf("%s/mismatch2", repo), mkdirf("%s/mismatch2/1", repo);
  put("mismatch2/1/model.onnx", onnx, n);
  puts_("mismatch2/config.json", "{\"output\": [{\"name\": \"probs\", \"data_type\": \"TYPE_FP32\"}]}");
  mkdirf("%s/badjson", repo), mkdirf("%s/badjson/1", repo);
  put("badjson/1/model.onnx", onnx, n);
  puts_("badjson/config.json", "{\"max_batch_size\": \"many\"}");
  /* a working static model without batching */
  mkdirf("%s/relu", repo), mkdirf("%s/relu/1", repo);
  write_relu_model("relu/1/model.onnx");
  free(onnx);
}

static void rm_repo(void) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", repo);
  if (system(cmd)) fprintf(stderr, "cannot remove %s\n", repo);
}

/* ---- the fake transport ---- */

typedef struct tx {
  const char *input_name;
  ei__ks_dtype dtype;
  int rank;
  int64_t shape[8];
  const void *data;
  size_t nbytes;
  int nout;
  ei__ks_output_req outs[2];
  int decode_fail;
  /* observed */
  int decoded, decoded_on_loop, encoded, encoded_on_loop, done;
  int done_order;
  ei__srv_code code;
  char error[256];
  char served[32];
  float logits[8 * 10];
  int nlogits;
  char strings[8][64];
  int nstrings;
  int64_t rshape[8];
  int rrank;
  int nclasses;
  struct ei__req_class classes[8];
  char class_labels[8][32];
  uint64_t queued_ns, started_ns;
} tx;

static int ndone;

static ei__srv_code fake_decode(ei__req *r) {
  tx *t = r->transport_data;
  t->decoded++;
  if (pthread_equal(pthread_self(), loop_thread)) t->decoded_on_loop++;
  if (t->decode_fail) return ei__req_fail(r, EI_SRV_INVALID, "malformed body (test)");
  ei__ks_tensor *in = ei__req_alloc(r, sizeof *in);
  if (!in) return ei__req_fail(r, EI_SRV_INTERNAL, "oom");
  memset(in, 0, sizeof *in);
  in->name = ei__req_strdup(r, t->input_name, strlen(t->input_name));
  in->dtype = t->dtype;
  in->rank = t->rank;
  memcpy(in->shape, t->shape, sizeof in->shape);
  in->data = t->data;
  in->nbytes = t->nbytes;
  r->inputs = in;
  r->ninputs = 1;
  if (t->nout) {
    r->outputs = ei__req_alloc(r, sizeof(ei__ks_output_req) * (size_t)t->nout);
    memcpy(r->outputs, t->outs, sizeof(ei__ks_output_req) * (size_t)t->nout);
    r->noutputs = t->nout;
  }
  r->id = "test";
  return EI_SRV_OK;
}

static void fake_encode(ei__req *r) {
  tx *t = r->transport_data;
  t->encoded++;
  if (pthread_equal(pthread_self(), loop_thread)) t->encoded_on_loop++;
  /* response bytes in request memory */
  char *resp = ei__req_alloc(r, 64);
  if (resp) snprintf(resp, 64, "code %d", (int)r->code);
}

static void fake_done(ei__req *r) {
  tx *t = r->transport_data;
  CHECK(pthread_equal(pthread_self(), loop_thread), "done off the loop thread");
  t->done++;
  t->done_order = ++ndone;
  t->code = r->code;
  snprintf(t->error, sizeof t->error, "%s", r->error);
  snprintf(t->served, sizeof t->served, "%s", r->served_version ? r->served_version : "");
  t->queued_ns = r->t_queued;
  t->started_ns = r->t_started;
  if (r->code == EI_SRV_OK) {
    for (int i = 0; i < r->nresults; i++) {
      const ei__ks_result *res = &r->results[i];
      t->rrank = res->t.rank;
      memcpy(t->rshape, res->t.shape, sizeof t->rshape);
      if (res->t.dtype == EI_KS_FP32) {
        t->nlogits = (int)(res->t.nbytes / 4);
        if (t->nlogits > 80) t->nlogits = 80;
        memcpy(t->logits, res->t.data, (size_t)t->nlogits * 4);
      } else if (res->t.dtype == EI_KS_BYTES) {
        const uint8_t *p = res->t.data, *e = p + res->t.nbytes;
        t->nstrings = 0;
        while (p + 4 <= e && t->nstrings < 8) {
          uint32_t len = p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
          p += 4;
          snprintf(t->strings[t->nstrings++], 64, "%.*s", (int)len, (const char *)p);
          p += len;
        }
      }
    }
    t->nclasses = r->nclasses;
    for (int i = 0; i < r->nclasses && i < 8; i++) {
      t->classes[i] = r->classes[i];
      snprintf(t->class_labels[i], 32, "%s", r->classes[i].label ? r->classes[i].label : "");
      t->classes[i].label = NULL;
    }
  }
  ei__req_release(r);
}

static const ei__req_ops fake_ops = {fake_decode, fake_encode, fake_done};

static void tx_fashion(tx *t, const void *data, int batch) {
  memset(t, 0, sizeof *t);
  t->input_name = "input";
  t->dtype = EI_KS_FP32;
  t->rank = 4;
  t->shape[0] = batch, t->shape[1] = 1, t->shape[2] = 28, t->shape[3] = 28;
  t->data = data;
  t->nbytes = (size_t)batch * 784 * 4;
}

static ei__req *submit(ei__server *s, tx *t, const char *model, const char *version) {
  ei__req *r = ei__req_new(EI_REQ_INFER, &fake_ops, t);
  if (!r) exit(1);
  r->model_name = model;
  r->model_version = version ? version : "";
  ei__srv_submit(s, r);
  return r;
}

static void run_until_done(tx **ts, int n) {
  for (int guard = 0; guard < 100000; guard++) {
    int all = 1;
    for (int i = 0; i < n; i++) all &= ts[i]->done > 0;
    if (all) return;
    uv_run(&loop, UV_RUN_ONCE);
  }
  CHECK(0, "requests did not finish");
}

static void wait_ms(int ms) { usleep((useconds_t)ms * 1000); }

/* Polls the loop until the model's queue holds `queued` requests and `taken` have left it (taken by the
 * executor), as seen under the model's lock. */
static int queue_len(ei__server *s, const char *model) {
  ei__model *m = ei__repo_find(s, model);
  pthread_mutex_lock(&m->mu);
  int n = m->qlen;
  pthread_mutex_unlock(&m->mu);
  return n;
}
static int admitted(ei__req *r) {
  return atomic_load(&ei__core(r)->qmodel) != NULL;
}
static void wait_taken(ei__server *s, ei__req *r, const char *model) {
  for (int i = 0; i < 5000; i++) {
    uv_run(&loop, UV_RUN_NOWAIT);
    if (admitted(r) && queue_len(s, model) == 0) return;
    wait_ms(1);
  }
  CHECK(0, "request was not taken by the executor");
}
static void wait_queued(ei__server *s, int n, const char *model) {
  for (int i = 0; i < 5000; i++) {
    uv_run(&loop, UV_RUN_NOWAIT);
    if (queue_len(s, model) == n) return;
    wait_ms(1);
  }
  CHECK(0, "queue did not reach %d", n);
}

/* ---- the engine's allocations off the test's thread (a run at a planned shape makes none) ---- */

static atomic_long engine_allocs;
static void *count_alloc(void *ud, size_t size, size_t align) {
  (void)ud;
  if (!pthread_equal(pthread_self(), loop_thread)) atomic_fetch_add(&engine_allocs, 1); /* not the references */
  void *p = NULL;
  if (align < sizeof(void *)) align = sizeof(void *);
  return posix_memalign(&p, align, size ? size : 1) ? NULL : p;
}
static void count_free(void *ud, void *p) {
  (void)ud;
  free(p);
}

/* ---- references ---- */

static ei_model *ref_model;
static ei_session *ref_sess;

static void reference(const float *x, int batch, float *logits) {
  ei_tensor in = {EI_FLOAT, 4, {batch, 1, 28, 28}, (void *)x}, out;
  char err[256];
  ei_status st = ei_session_run(ref_sess, 1, &in, 1, &out, err, sizeof err);
  if (st) {
    fprintf(stderr, "reference run: %s\n", err);
    exit(1);
  }
  memcpy(logits, out.data, sizeof(float) * 10 * (size_t)batch);
}

static float *random_images(int n, unsigned seed) {
  float *x = malloc(sizeof(float) * 784 * (size_t)n);
  for (int i = 0; i < 784 * n; i++) {
    seed = seed * 1103515245u + 12345u;
    x[i] = (float)((seed >> 16) & 0xff) / 255.0f;
  }
  return x;
}

static int close_logits(const float *a, const float *b, int n) {
  for (int i = 0; i < n; i++)
    if (fabsf(a[i] - b[i]) > 1e-4f * (1 + fabsf(b[i]))) return 0;
  return 1;
}

static ei__server *make_server(int delay_ms, size_t max_pixels) {
  ei__srv_options o;
  ei__srv_options_init(&o);
  o.repo_dir = repo;
  o.threads = 2;
  o.test_delay_ms = delay_ms;
  if (max_pixels) o.max_image_pixels = max_pixels;
  ei__server *s;
  char err[512];
  ei_status st = ei__server_create(&loop, &o, &s, err, sizeof err);
  if (st) {
    fprintf(stderr, "server create: %s\n", err);
    exit(1);
  }
  return s;
}

static void get_stats(ei__server *s, const char *model, const char *version, ei__srv_model_stats *st) {
  ei__srv_code code;
  char err[256];
  memset(st, 0, sizeof *st);
  int n = ei__srv_stats(s, model, version, st, 1, &code, err, sizeof err);
  CHECK(n == 1 && code == EI_SRV_OK, "stats of %s: %d %s", model, n, err);
}

/* ---- the tests ---- */

static const ei__srv_index_entry *find_entry(const ei__srv_index_entry *e, int n, const char *name, const char *ver) {
  for (int i = 0; i < n; i++)
    if (!strcmp(e[i].name, name) && (!ver || !strcmp(e[i].version, ver))) return &e[i];
  return NULL;
}

static void test_repository(ei__server *s) {
  ei__srv_index_entry e[64];
  int n = ei__srv_index(s, 0, e, 64);
  CHECK(n >= 8 && n <= 64, "index has %d entries", n);
  for (int i = 0; i < n; i++) printf("  index: %s/%s %s %s\n", e[i].name, e[i].version, e[i].state, e[i].reason);
  const ei__srv_index_entry *x;
  CHECK((x = find_entry(e, n, "fashion", "2")) && !strcmp(x->state, "READY"), "fashion/2 ready");
  CHECK(!find_entry(e, n, "fashion", "1"), "fashion/1 is not served (latest 1)");
  CHECK((x = find_entry(e, n, "allv", "3")) && !strcmp(x->state, "READY"), "allv/3");
  CHECK((x = find_entry(e, n, "allv", "10")) && !strcmp(x->state, "READY"), "allv/10");
  CHECK((x = find_entry(e, n, "corrupt", "1")) && !strcmp(x->state, "UNAVAILABLE") && strstr(x->reason, "model.onnx"),
        "corrupt: %s", x ? x->reason : "missing");
  CHECK((x = find_entry(e, n, "static", "1")) && !strcmp(x->state, "UNAVAILABLE") &&
            strstr(x->reason, "symbolic first dimension"),
        "static: %s", x ? x->reason : "missing");
  CHECK((x = find_entry(e, n, "mismatch", "1")) && !strcmp(x->state, "UNAVAILABLE") && strstr(x->reason, "'input'"),
        "mismatch: %s", x ? x->reason : "missing");
  CHECK((x = find_entry(e, n, "mismatch2", "1")) && !strcmp(x->state, "UNAVAILABLE") && strstr(x->reason, "'probs'"),
        "mismatch2: %s", x ? x->reason : "missing");
  CHECK((x = find_entry(e, n, "badjson", NULL)) && !strcmp(x->state, "UNAVAILABLE") && strstr(x->reason, "max_batch_size"),
        "badjson: %s", x ? x->reason : "missing");
  CHECK((x = find_entry(e, n, "relu", "1")) && !strcmp(x->state, "READY"), "relu ready");
  int nr = ei__srv_index(s, 1, e, 64);
  for (int i = 0; i < nr; i++) CHECK(!strcmp(e[i].state, "READY"), "ready_only lists %s", e[i].name);
  CHECK(nr == 4, "ready_only: %d", nr);
  CHECK(ei__srv_index(s, 0, e, 1) == n, "total count with a small array");

  ei__srv_meta m;
  char err[256];
  CHECK(ei__srv_model_meta(s, "fashion", "", &m, err, sizeof err) == EI_SRV_OK, "%s", err);
  CHECK(!strcmp(m.name, "fashion") && !strcmp(m.platform, "onnx_onnxv1") && m.nversions == 1 &&
            !strcmp(m.versions[0], "2"),
        "fashion meta");
  CHECK(m.ninputs == 1 && !strcmp(m.inputs[0].name, "input") && m.inputs[0].dtype == EI_KS_FP32 &&
            m.inputs[0].rank == 4 && m.inputs[0].shape[0] == -1 && m.inputs[0].shape[1] == 1 &&
            m.inputs[0].shape[3] == 28,
        "fashion input meta");
  CHECK(m.noutputs == 1 && !strcmp(m.outputs[0].name, "logits") && m.outputs[0].rank == 2 &&
            m.outputs[0].shape[0] == -1 && m.outputs[0].shape[1] == 10,
        "fashion output meta");
  ei__srv_meta_release(&m);
  CHECK(ei__srv_model_meta(s, "allv", "", &m, err, sizeof err) == EI_SRV_OK && m.nversions == 2 &&
            !strcmp(m.versions[0], "3") && !strcmp(m.versions[1], "10"),
        "allv versions");
  ei__srv_meta_release(&m);
  CHECK(ei__srv_model_meta(s, "allv", "3", &m, err, sizeof err) == EI_SRV_OK, "allv/3 meta");
  ei__srv_meta_release(&m);
  CHECK(ei__srv_model_meta(s, "nope", "", &m, err, sizeof err) == EI_SRV_NOT_FOUND && strstr(err, "nope"), "%s", err);
  CHECK(ei__srv_model_meta(s, "fashion", "1", &m, err, sizeof err) == EI_SRV_NOT_FOUND, "fashion/1: %s", err);
  CHECK(ei__srv_model_meta(s, "corrupt", "", &m, err, sizeof err) == EI_SRV_UNAVAILABLE, "corrupt meta: %s", err);
  CHECK(ei__srv_model_meta(s, "relu", "", &m, err, sizeof err) == EI_SRV_OK && m.inputs[0].rank == 2 &&
            m.inputs[0].shape[0] == 2 && m.inputs[0].shape[1] == 3,
        "relu meta");
  ei__srv_meta_release(&m);
  CHECK(ei__srv_model_ready(s, "fashion", "", err, sizeof err) == EI_SRV_OK, "ready");
  CHECK(ei__srv_model_ready(s, "fashion", "2", err, sizeof err) == EI_SRV_OK, "ready 2");
  CHECK(ei__srv_model_ready(s, "fashion", "x", err, sizeof err) == EI_SRV_NOT_FOUND, "ready x");
  CHECK(ei__srv_model_ready(s, "static", "", err, sizeof err) == EI_SRV_UNAVAILABLE, "static not ready");
  CHECK(ei__srv_live(s) && ei__srv_ready(s), "live and ready");
  int next;
  const char *const *ext = ei__srv_extensions(s, &next);
  int has_cls = 0;
  for (int i = 0; i < next; i++) has_cls |= !strcmp(ext[i], "classification");
  CHECK(has_cls, "classification extension listed");
}

static char err_buf[256];

static void test_infer(ei__server *s) {
  float *x = random_images(4, 7), ref[40];
  reference(x, 3, ref);
  tx a, b, c;
  tx_fashion(&a, x, 1);
  tx_fashion(&b, x, 3);
  tx_fashion(&c, x + 784, 1); /* unaligned? no: still 4-byte aligned */
  c.outs[0].name = "logits";
  c.outs[0].classification = 3;
  c.nout = 1;
  submit(s, &a, "fashion", "");
  submit(s, &b, "fashion", "2");
  submit(s, &c, "fashion", NULL);
  tx *all[] = {&a, &b, &c};
  run_until_done(all, 3);
  CHECK(a.code == EI_SRV_OK && !strcmp(a.served, "2") && a.nlogits == 10 && close_logits(a.logits, ref, 10),
        "batch 1: %s", a.error);
  CHECK(a.rrank == 2 && a.rshape[0] == 1 && a.rshape[1] == 10, "batch 1 shape");
  CHECK(b.code == EI_SRV_OK && b.nlogits == 30 && close_logits(b.logits, ref, 30) && b.rshape[0] == 3, "batch 3: %s",
        b.error);
  CHECK(a.encoded == 1 && !a.encoded_on_loop && a.done == 1 && a.decoded == 1 && !a.decoded_on_loop,
        "one decode and one encode off the loop, one done");
  /* classification extension: "score:index:label", top 3 of softmax(logits[1]) */
  CHECK(c.code == EI_SRV_OK && c.nstrings == 3 && c.rshape[0] == 1 && c.rshape[1] == 3, "classification: %s %d",
        c.error, c.nstrings);
  int idx[3];
  float prob[3];
  ei_softmax_topk(ref + 10, 10, 3, idx, prob);
  char labels[10][16] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
  for (int j = 0; j < 3 && j < c.nstrings; j++) {
    float sc;
    int ix;
    char lab[32] = "";
    CHECK(sscanf(c.strings[j], "%f:%d:%31[^\n]", &sc, &ix, lab) == 3 && ix == idx[j] && fabsf(sc - prob[j]) < 2e-6f &&
              !strcmp(lab, labels[ix]),
          "classification string '%s' (want %d %f)", c.strings[j], idx[j], prob[j]);
  }
  /* an unaligned input (binary data inside a body): copied, same result */
  char *raw = malloc(784 * 4 + 1);
  memcpy(raw + 1, x, 784 * 4);
  tx u;
  tx_fashion(&u, raw + 1, 1);
  submit(s, &u, "fashion", "");
  tx *pu[] = {&u};
  run_until_done(pu, 1);
  CHECK(u.code == EI_SRV_OK && close_logits(u.logits, ref, 10), "unaligned: %s", u.error);
  free(raw);
  /* relu: no batching, exact shape */
  float rx[6] = {-1, 2, -3, 4, -5, 6};
  tx r;
  memset(&r, 0, sizeof r);
  r.input_name = "x", r.dtype = EI_KS_FP32, r.rank = 2, r.shape[0] = 2, r.shape[1] = 3, r.data = rx, r.nbytes = 24;
  submit(s, &r, "relu", "1");
  tx *pr[] = {&r};
  run_until_done(pr, 1);
  CHECK(r.code == EI_SRV_OK && r.nlogits == 6 && r.logits[0] == 0 && r.logits[1] == 2 && r.logits[5] == 6, "relu: %s",
        r.error);
  /* two instances, a pinned older version */
  tx v[6];
  tx *pv[6];
  for (int i = 0; i < 6; i++) {
    tx_fashion(&v[i], x, 1);
    pv[i] = &v[i];
    submit(s, &v[i], "allv", i % 2 ? "3" : "");
  }
  run_until_done(pv, 6);
  for (int i = 0; i < 6; i++)
    CHECK(v[i].code == EI_SRV_OK && !strcmp(v[i].served, i % 2 ? "3" : "10") && close_logits(v[i].logits, ref, 10),
          "allv %d: %s served %s", i, v[i].error, v[i].served);
  ei__srv_model_stats sv[2];
  ei__srv_code scode;
  int nsv = ei__srv_stats(s, "allv", "", sv, 2, &scode, err_buf, sizeof err_buf);
  CHECK(nsv == 2 && sv[0].inference_count == 3 && sv[1].inference_count == 3 && !strcmp(sv[0].version, "3"),
        "allv stats per version: %d", nsv);
  CHECK(ei__srv_stats(s, "allv", "4", sv, 2, &scode, err_buf, sizeof err_buf) == 0 && scode == EI_SRV_NOT_FOUND,
        "stats of a missing version");
  CHECK(ei__srv_stats(s, "zzz", "", sv, 2, &scode, err_buf, sizeof err_buf) == 0 && scode == EI_SRV_NOT_FOUND,
        "stats of a missing model");
  CHECK(ei__srv_stats(s, NULL, NULL, NULL, 0, &scode, err_buf, sizeof err_buf) == 4, "stats of every version");
  /* stats */
  ei__srv_model_stats st;
  get_stats(s, "fashion", "", &st);
  CHECK(st.inference_count == 6 && st.success.count == 4 && st.execution_count >= 2 && st.execution_count <= 4,
        "stats: inference %llu execution %llu success %llu", (unsigned long long)st.inference_count,
        (unsigned long long)st.execution_count, (unsigned long long)st.success.count);
  CHECK(st.nbatch >= 1 && st.last_inference_ms > 1600000000000ull && st.compute_infer.count == 4, "batch stats");
  free(x);
}

static void test_errors(ei__server *s) {
  float *x = random_images(9, 3);
  enum { N = 12 };
  tx t[N];
  for (int i = 0; i < N; i++) tx_fashion(&t[i], x, 1);
  t[0].dtype = EI_KS_INT8, t[0].nbytes = 784;                    /* datatype */
  t[1].shape[2] = 27, t[1].nbytes = 27 * 28 * 4;                  /* shape */
  t[2].nbytes -= 4;                                              /* bytes vs shape */
  t[3].input_name = "image";                                     /* unknown input */
  t[4].shape[0] = 9, t[4].nbytes = 9 * 784 * 4;                  /* over max_batch_size */
  t[5].decode_fail = 1;                                          /* decode error */
  t[6].outs[0].name = "nope", t[6].nout = 1;                      /* unknown output */
  t[7].rank = 3;                                                 /* rank */
  t[8].shape[0] = 0, t[8].nbytes = 0;                            /* empty batch */
  t[9].shape[3] = (int64_t)1 << 40;                              /* huge */
  ei__req *rq[N];
  for (int i = 0; i < 10; i++) rq[i] = submit(s, &t[i], "fashion", "");
  rq[10] = submit(s, &t[10], "nope", "");
  rq[11] = submit(s, &t[11], "fashion", "7");
  (void)rq;
  tx *all[N];
  for (int i = 0; i < N; i++) all[i] = &t[i];
  run_until_done(all, N);
  ei__srv_code want[N] = {EI_SRV_INVALID, EI_SRV_INVALID, EI_SRV_INVALID, EI_SRV_INVALID, EI_SRV_INVALID,
                          EI_SRV_INVALID, EI_SRV_INVALID, EI_SRV_INVALID, EI_SRV_INVALID, EI_SRV_INVALID,
                          EI_SRV_NOT_FOUND, EI_SRV_NOT_FOUND};
  for (int i = 0; i < N; i++) {
    printf("  error %d: %s: %s\n", i, ei__srv_code_name(t[i].code), t[i].error);
    CHECK(t[i].code == want[i] && t[i].error[0] && t[i].encoded == 1, "error case %d: code %d '%s'", i, t[i].code,
          t[i].error);
  }
  CHECK(strstr(t[0].error, "INT8") && strstr(t[0].error, "FP32"), "datatype message: %s", t[0].error);
  CHECK(strstr(t[4].error, "max_batch_size"), "batch message: %s", t[4].error);
  CHECK(strstr(t[3].error, "image"), "input name message: %s", t[3].error);
  /* the element limit */
  s->opt.max_tensor_elements = 1000;
  tx big;
  tx_fashion(&big, x, 2);
  submit(s, &big, "fashion", "");
  tx *pb[] = {&big};
  run_until_done(pb, 1);
  CHECK(big.code == EI_SRV_TOO_LARGE && strstr(big.error, "1000"), "element limit: %d %s", big.code, big.error);
  s->opt.max_tensor_elements = (int64_t)64 << 20;
  free(x);
}

static void test_batching(ei__server *s) {
  float *x = random_images(6, 11), ref[60];
  reference(x, 6, ref);
  ei__srv_model_stats st0, st1;
  get_stats(s, "fashion", "", &st0);
  tx a, b, c, d;
  tx_fashion(&a, x, 1);
  tx_fashion(&b, x + 784, 2);
  tx_fashion(&c, x + 3 * 784, 1);
  tx_fashion(&d, x + 4 * 784, 2);
  ei__req *ra = submit(s, &a, "fashion", "");
  wait_taken(s, ra, "fashion"); /* a runs (after the test delay); the others queue while it is busy */
  submit(s, &b, "fashion", "");
  submit(s, &c, "fashion", "");
  submit(s, &d, "fashion", "");
  wait_queued(s, 3, "fashion");
  tx *all[] = {&a, &b, &c, &d};
  run_until_done(all, 4);
  get_stats(s, "fashion", "", &st1);
  uint64_t execs = st1.execution_count - st0.execution_count, infs = st1.inference_count - st0.inference_count;
  printf("  batching: %llu inferences in %llu executions\n", (unsigned long long)infs, (unsigned long long)execs);
  CHECK(infs == 6 && execs == 2, "batched: %llu inferences, %llu executions", (unsigned long long)infs,
        (unsigned long long)execs);
  int has5 = 0;
  for (int i = 0; i < st1.nbatch; i++) has5 |= st1.batch[i].batch_size == 5 && st1.batch[i].compute_infer.count >= 1;
  CHECK(has5, "batch_stats has a batch of 5");
  CHECK(a.code == 0 && b.code == 0 && c.code == 0 && d.code == 0, "batched codes %s %s %s %s", a.error, b.error,
        c.error, d.error);
  CHECK(close_logits(a.logits, ref, 10) && a.nlogits == 10, "split a");
  CHECK(close_logits(b.logits, ref + 10, 20) && b.nlogits == 20 && b.rshape[0] == 2, "split b");
  CHECK(close_logits(c.logits, ref + 30, 10) && c.nlogits == 10, "split c");
  CHECK(close_logits(d.logits, ref + 40, 20) && d.nlogits == 20, "split d");
  CHECK(st1.queue.count - st0.queue.count == 4 && st1.queue.ns > st0.queue.ns, "queue durations");
  free(x);
}

static void test_queue_full_deadline_cancel(ei__server *s) {
  float *x = random_images(1, 5);
  ei__srv_model_stats st0, st1;
  get_stats(s, "fashion", "", &st0);
  /* max_queue 3: one running, three queued, the fifth is refused at once */
  tx t[5];
  ei__req *r[5];
  for (int i = 0; i < 5; i++) tx_fashion(&t[i], x, 1);
  r[0] = submit(s, &t[0], "fashion", "");
  wait_taken(s, r[0], "fashion");
  for (int i = 1; i < 4; i++) r[i] = submit(s, &t[i], "fashion", "");
  wait_queued(s, 3, "fashion");
  r[4] = submit(s, &t[4], "fashion", "");
  tx *p4[] = {&t[4]};
  run_until_done(p4, 1);
  CHECK(t[4].code == EI_SRV_EXHAUSTED && !t[0].done, "queue full: %d '%s' (first done %d)", t[4].code, t[4].error,
        t[0].done);
  tx *all[] = {&t[0], &t[1], &t[2], &t[3]};
  run_until_done(all, 4);
  for (int i = 0; i < 4; i++) CHECK(t[i].code == EI_SRV_OK, "queued %d: %s", i, t[i].error);
  get_stats(s, "fashion", "", &st1);
  CHECK(st1.fail_exhausted == st0.fail_exhausted + 1 && st1.fail.count == st0.fail.count + 1, "exhausted counted");

  /* deadline: queued behind a running request, its deadline passes: never run */
  get_stats(s, "fashion", "", &st0);
  tx a, b, c;
  tx_fashion(&a, x, 1);
  tx_fashion(&b, x, 1);
  tx_fashion(&c, x, 1);
  ei__req *ra = submit(s, &a, "fashion", "");
  wait_taken(s, ra, "fashion");
  ei__req *rb = ei__req_new(EI_REQ_INFER, &fake_ops, &b);
  rb->model_name = "fashion";
  rb->deadline_ns = ei__srv_now_ns() + 30 * 1000000ull;
  ei__srv_submit(s, rb);
  /* an expired deadline at admission: refused without queueing */
  ei__req *rc = ei__req_new(EI_REQ_INFER, &fake_ops, &c);
  rc->model_name = "fashion";
  rc->deadline_ns = ei__srv_now_ns() - 1;
  ei__srv_submit(s, rc);
  tx *pabc[] = {&a, &b, &c};
  run_until_done(pabc, 3);
  get_stats(s, "fashion", "", &st1);
  CHECK(a.code == EI_SRV_OK, "a: %s", a.error);
  CHECK(b.code == EI_SRV_DEADLINE && b.nlogits == 0 && b.started_ns == 0, "deadline: %d '%s'", b.code, b.error);
  CHECK(b.done_order < a.done_order, "the deadline is answered while the model is still busy");
  CHECK(c.code == EI_SRV_DEADLINE, "expired deadline: %d '%s'", c.code, c.error);
  CHECK(st1.execution_count == st0.execution_count + 1 && st1.inference_count == st0.inference_count + 1,
        "the expired request never ran");
  CHECK(st1.fail_deadline == st0.fail_deadline + 2, "deadline counted: %llu", (unsigned long long)st1.fail_deadline);

  /* cancel while queued: leaves the queue at once, done with CANCELLED, no encode */
  get_stats(s, "fashion", "", &st0);
  tx_fashion(&a, x, 1);
  tx_fashion(&b, x, 1);
  tx_fashion(&c, x, 1);
  ra = submit(s, &a, "fashion", "");
  wait_taken(s, ra, "fashion");
  rb = submit(s, &b, "fashion", "");
  ei__req *rc2 = submit(s, &c, "fashion", "");
  wait_queued(s, 2, "fashion");
  ei__req_cancel(rb);
  CHECK(queue_len(s, "fashion") == 1, "cancelled request left the queue");
  tx *pb[] = {&b};
  run_until_done(pb, 1);
  CHECK(b.code == EI_SRV_CANCELLED && b.encoded == 0 && !a.done, "cancel: %d '%s' encoded %d, a done %d", b.code,
        b.error, b.encoded, a.done);
  tx *pac[] = {&a, &c};
  run_until_done(pac, 2);
  (void)rc2;
  get_stats(s, "fashion", "", &st1);
  CHECK(a.code == EI_SRV_OK && c.code == EI_SRV_OK, "others after cancel");
  CHECK(st1.fail_cancelled == st0.fail_cancelled + 1 && st1.inference_count == st0.inference_count + 2,
        "cancel stats");
  free(x);
}

static int drained;
static void on_drained(ei__server *s, void *ud) {
  (void)s;
  CHECK(ud == &drained, "drain user data");
  drained++;
}

static void test_drain(ei__server *s) {
  float *x = random_images(1, 9);
  tx a, b, c;
  tx_fashion(&a, x, 1);
  tx_fashion(&b, x, 1);
  tx_fashion(&c, x, 1);
  ei__req *ra = submit(s, &a, "fashion", "");
  wait_taken(s, ra, "fashion");
  submit(s, &b, "fashion", "");
  wait_queued(s, 1, "fashion");
  ei__server_drain(s, on_drained, &drained);
  CHECK(!ei__srv_ready(s) && ei__srv_live(s), "not ready while draining");
  submit(s, &c, "fashion", "");
  tx *pc[] = {&c};
  run_until_done(pc, 1);
  CHECK(c.code == EI_SRV_UNAVAILABLE && !a.done && !drained, "submit while draining: %d '%s'", c.code, c.error);
  while (!drained) uv_run(&loop, UV_RUN_ONCE);
  CHECK(a.done && b.done && a.code == EI_SRV_OK && b.code == EI_SRV_OK, "in-flight requests finished: %s %s", a.error,
        b.error);
  CHECK(drained == 1, "drain callback once");
  free(x);
}

/* `edgeinfer run` preprocessing for fashion: channels 1, crop 28, resize 28, /255, mean 0, std 1 */
static void photo_reference(const char *path, int k, int *idx, float *prob) {
  ei_image img;
  char err[256];
  if (ei_image_load(path, 0, &img, err, sizeof err)) {
    fprintf(stderr, "%s: %s\n", path, err);
    exit(1);
  }
  ei_preprocess p;
  ei_preprocess_init(&p);
  p.channels = 1, p.crop_w = p.crop_h = 28, p.resize = 28;
  p.mean[0] = p.mean[1] = p.mean[2] = 0;
  p.std[0] = p.std[1] = p.std[2] = 1;
  float x[784], logits[10];
  if (ei_image_to_chw(&img, &p, x, 784, err, sizeof err)) exit(1);
  ei_image_free(&img);
  reference(x, 1, logits);
  ei_softmax_topk(logits, 10, k, idx, prob);
}

/* The top-5 lines `edgeinfer run` prints: "   1.     7  0.12345  Sneaker" */
static int cli_top(const char *photo, int *idx, float *prob) {
  if (!cli_path) return 0;
  char cmd[2048], line[512];
  snprintf(cmd, sizeof cmd,
           "'%s' run '%s/fashion_mnist.onnx' --input '%s' --mean 0,0,0 --std 1,1,1 --top 5 --labels '%s/fashion/labels.txt'",
           cli_path, models_dir, photo, repo);
  FILE *f = popen(cmd, "r");
  if (!f) return 0;
  int n = 0;
  while (fgets(line, sizeof line, f)) {
    int rank, ix;
    float sc;
    if (sscanf(line, " %d. %d %f", &rank, &ix, &sc) == 3 && n < 5) idx[n] = ix, prob[n] = sc, n++;
  }
  pclose(f);
  return n;
}

static void classify(ei__server *s, tx *t, const void *body, size_t len, const char *model, int k) {
  memset(t, 0, sizeof *t);
  ei__req *r = ei__req_new(EI_REQ_CLASSIFY, &fake_ops, t);
  r->model_name = model;
  r->body = body;
  r->body_len = len;
  r->content_type = "image/png";
  r->top_k = k;
  ei__srv_submit(s, r);
}

static void test_classify(ei__server *s) {
  const char *photos[2] = {jpeg_path, png_path};
  for (int p = 0; p < 2; p++) {
    size_t n;
    void *body = read_file(photos[p], &n);
    tx t, t3;
    classify(s, &t, body, n, "fashion", 5);
    classify(s, &t3, body, n, "fashion", 0); /* the config's top_k: 3 */
    tx *pt[] = {&t, &t3};
    run_until_done(pt, 2);
    int idx[5];
    float prob[5];
    photo_reference(photos[p], 5, idx, prob);
    CHECK(t.code == EI_SRV_OK && t.nclasses == 5, "classify %s: %s", photos[p], t.error);
    CHECK(t3.code == EI_SRV_OK && t3.nclasses == 3, "classify default k: %d", t3.nclasses);
    for (int j = 0; j < t.nclasses; j++) {
      printf("  %s: %d %d %.6f %s\n", photos[p], j + 1, t.classes[j].index, t.classes[j].score, t.class_labels[j]);
      CHECK(t.classes[j].index == idx[j] && fabsf(t.classes[j].score - prob[j]) < 1e-5f && t.class_labels[j][0],
            "class %d: %d %f vs %d %f", j, t.classes[j].index, t.classes[j].score, idx[j], prob[j]);
    }
    int cidx[5];
    float cprob[5];
    int nc = cli_top(photos[p], cidx, cprob);
    if (cli_path) {
      CHECK(nc == 5, "edgeinfer run printed %d classes", nc);
      for (int j = 0; j < nc && j < t.nclasses; j++)
        CHECK(cidx[j] == t.classes[j].index && fabsf(cprob[j] - t.classes[j].score) <= 1e-5f,
              "vs edgeinfer run: %d %f vs %d %f", cidx[j], cprob[j], t.classes[j].index, t.classes[j].score);
    }
    /* truncated photo -> 400 */
    tx tr;
    classify(s, &tr, body, n / 3, "fashion", 5);
    tx *ptr[] = {&tr};
    run_until_done(ptr, 1);
    CHECK(tr.code == EI_SRV_INVALID || tr.code == EI_SRV_OK, "truncated: %d %s", tr.code, tr.error);
    printf("  truncated %s: %s %s\n", photos[p], ei__srv_code_name(tr.code), tr.error);
    free(body);
  }
  /* not an image -> 415; a model that cannot classify -> 400; a photo over the pixel cap -> 413 */
  static const char gif[] = "GIF89a\x01\x00\x01\x00\x00\x00\x00;";
  tx g, rl, big;
  classify(s, &g, gif, sizeof gif - 1, "fashion", 5);
  size_t n;
  void *body = read_file(png_path, &n);
  classify(s, &rl, body, n, "relu", 5);
  tx *pg[] = {&g, &rl};
  run_until_done(pg, 2);
  CHECK(g.code == EI_SRV_MEDIA, "gif: %d %s", g.code, g.error);
  CHECK(rl.code == EI_SRV_INVALID && strstr(rl.error, "classify"), "relu classify: %d %s", rl.code, rl.error);
  s->opt.max_image_pixels = 100;
  classify(s, &big, body, n, "fashion", 5);
  tx *pb[] = {&big};
  run_until_done(pb, 1);
  CHECK(big.code == EI_SRV_TOO_LARGE, "pixel cap: %d %s", big.code, big.error);
  s->opt.max_image_pixels = (size_t)64 << 20;
  free(body);
}

static void test_config_parse(void) {
  ei__model_config c;
  char err[256];
  const char *ok =
      "{\"max_batch_size\": \"8\", \"dynamic_batching\": {\"max_queue_delay_microseconds\": \"100\","
      " \"preferred_batch_size\": [4, 8]}, \"instance_group\": [{\"count\": 2, \"kind\": \"KIND_CPU\"}],"
      " \"version_policy\": {\"specific\": {\"versions\": [1, 3]}}, \"unknown\": {\"x\": 1},"
      " \"edgeinfer\": {\"threads\": 2, \"cpus\": \"0-1\", \"preprocessing\": {\"resize\": 32, \"crop\": [24, 20],"
      " \"mean\": 0.5, \"std\": [1, 2, 3], \"grey\": true, \"layout\": \"NHWC\"}, \"max_queue\": 9, \"top_k\": 2}}";
  CHECK(ei__config_parse(ok, strlen(ok), "m", &c, err, sizeof err) == EI_OK, "%s", err);
  CHECK(c.max_batch_size == 8 && c.dynamic_batching == 1 && c.max_queue_delay_us == 100 && c.npreferred == 2 &&
            c.instance_count == 2 && c.vp == EI__VP_SPECIFIC && c.nvp_specific == 2 && c.threads == 2 && c.ncpus == 2 &&
            c.pre.resize == 32 && c.pre.crop_w == 24 && c.pre.crop_h == 20 && c.pre.mean[2] == 0.5f &&
            c.pre.std[2] == 3 && c.pre.channels == 1 && c.layout_nhwc && c.max_queue == 9 && c.top_k == 2,
        "parsed values");
  const char *bad[] = {"{\"max_batch_size\": -1}", "{\"input\": [{\"name\": \"x\", \"data_type\": \"TYPE_NOPE\"}]}",
                       "{\"version_policy\": {\"newest\": {}}}", "{\"edgeinfer\": {\"preprocessing\": {\"std\": 0}}}",
                       "{\"name\": \"other\"}", "[1, 2", "{\"instance_group\": [{\"kind\": \"KIND_GPU\"}]}",
                       "{\"a\": 1, \"a\": 2}"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err[0] = 0;
    CHECK(ei__config_parse(bad[i], strlen(bad[i]), "m", &c, err, sizeof err) != EI_OK && strstr(err, "config.json"),
          "bad config %zu accepted", i);
    printf("  bad config %zu: %s\n", i, err);
  }
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: test_server_core MODELS_DIR JPEG PNG [EDGEINFER_CLI]\n");
    return 2;
  }
  models_dir = argv[1], jpeg_path = argv[2], png_path = argv[3], cli_path = argc > 4 ? argv[4] : NULL;
  setvbuf(stdout, NULL, _IOLBF, 0);
  loop_thread = pthread_self();
  static const ei_allocator counting = {count_alloc, count_free, NULL};
  ei_set_allocator(&counting);
  make_repo();
  char p[512], err[256];
  snprintf(p, sizeof p, "%s/fashion_mnist.onnx", models_dir);
  if (ei_model_load(p, NULL, &ref_model, err, sizeof err) || ei_session_create(ref_model, NULL, &ref_sess, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  uv_loop_init(&loop);
  test_config_parse();

  printf("server without delay\n");
  ei__server *s = make_server(0, 0);
  test_repository(s);
  test_infer(s);
  test_errors(s);
  test_classify(s);
  ei__server_destroy(s);
  uv_run(&loop, UV_RUN_DEFAULT);

  printf("server with test_delay_ms 400\n");
  s = make_server(400, 0);
  long allocs0 = atomic_load(&engine_allocs);
  test_batching(s);
  test_queue_full_deadline_cancel(s);
  test_drain(s);
  CHECK(atomic_load(&engine_allocs) == allocs0, "the engine allocated %ld times while serving planned batch sizes",
        atomic_load(&engine_allocs) - allocs0);
  ei__server_destroy(s);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0, "the loop has no handles left");

  ei_session_destroy(ref_sess);
  ei_model_destroy(ref_model);
  rm_repo();
  if (failures) {
    fprintf(stderr, "%d failures\n", failures);
    return 1;
  }
  printf("ok\n");
  return 0;
}
