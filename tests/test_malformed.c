/* tests/test_malformed.c: hand-built hostile ONNX files, written with a tiny protobuf encoder, and the status and
 * message each one must get: truncation at every byte, overlong varints, wrong wire types, negative and
 * overflowing dims, short raw_data, a cycle, a dangling input, unknown ops/domains, unsupported opset and IR
 * versions, shapes above the arena cap, a Conv whose weight does not match its input, and more.
 *
 * usage: test_malformed      (no files needed; prints "N passed, M failed" last)
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeinfer.h"

static int g_pass, g_fail;

/* ---- protobuf encoder ---- */
typedef struct pb {
  uint8_t *p;
  size_t n, cap;
} pb;

static void pb_raw(pb *b, const void *d, size_t n) {
  if (b->n + n > b->cap) {
    size_t c = b->cap ? b->cap : 128;
    while (c < b->n + n) c *= 2;
    b->p = realloc(b->p, c);
    if (!b->p) abort();
    b->cap = c;
  }
  if (n) memcpy(b->p + b->n, d, n);
  b->n += n;
}
static void pb_varint(pb *b, uint64_t v) {
  do {
    uint8_t c = (uint8_t)(v & 0x7f);
    v >>= 7;
    if (v) c |= 0x80;
    pb_raw(b, &c, 1);
  } while (v);
}
static void pb_key(pb *b, int num, int wire) { pb_varint(b, (uint64_t)num << 3 | (unsigned)wire); }
static void pb_uint(pb *b, int num, uint64_t v) { pb_key(b, num, 0), pb_varint(b, v); }
static void pb_bytes(pb *b, int num, const void *d, size_t n) { pb_key(b, num, 2), pb_varint(b, n), pb_raw(b, d, n); }
static void pb_str(pb *b, int num, const char *s) { pb_bytes(b, num, s, strlen(s)); }
/* Appends sub as a length-delimited field and frees it. */
static void pb_msg(pb *b, int num, pb *sub) {
  pb_bytes(b, num, sub->p, sub->n);
  free(sub->p);
  memset(sub, 0, sizeof *sub);
}

/* ---- ONNX builders (field numbers of onnx.proto) ---- */
enum { F32 = 1, I64 = 7, STR = 8 };

/* TensorProto: dims, data_type, name, raw_data (raw may be NULL: no data field). */
static void tensor(pb *t, const char *name, int dtype, int rank, const int64_t *dims, const void *raw, size_t rawlen) {
  for (int i = 0; i < rank; i++) pb_uint(t, 1, (uint64_t)dims[i]);
  pb_uint(t, 2, (uint64_t)dtype);
  pb_str(t, 8, name);
  if (raw) pb_bytes(t, 9, raw, rawlen);
}

/* ValueInfoProto with a tensor type; dims[i] < 0 becomes the symbolic dimension "N". rank < 0: no shape. */
static void value_info(pb *g, int field, const char *name, int dtype, int rank, const int64_t *dims) {
  pb vi = {0}, tp = {0}, tt = {0}, sh = {0};
  for (int i = 0; i < rank; i++) {
    pb d = {0};
    if (dims[i] >= 0)
      pb_uint(&d, 1, (uint64_t)dims[i]);
    else
      pb_str(&d, 2, "N");
    pb_msg(&sh, 1, &d);
  }
  pb_uint(&tt, 1, (uint64_t)dtype);
  if (rank >= 0) pb_msg(&tt, 2, &sh);
  free(sh.p);
  pb_msg(&tp, 1, &tt);
  pb_str(&vi, 1, name);
  pb_msg(&vi, 2, &tp);
  pb_msg(g, field, &vi);
}

/* Attributes. */
static void attr_int(pb *a, const char *name, int64_t v) {
  pb at = {0};
  pb_str(&at, 1, name), pb_uint(&at, 3, (uint64_t)v), pb_uint(&at, 20, 2);
  pb_msg(a, 5, &at);
}
static void attr_ints(pb *a, const char *name, int n, const int64_t *v) {
  pb at = {0};
  pb_str(&at, 1, name);
  for (int i = 0; i < n; i++) pb_uint(&at, 8, (uint64_t)v[i]);
  pb_uint(&at, 20, 7);
  pb_msg(a, 5, &at);
}
static void attr_tensor(pb *a, const char *name, pb *t) {
  pb at = {0};
  pb_str(&at, 1, name), pb_msg(&at, 5, t), pb_uint(&at, 20, 4);
  pb_msg(a, 5, &at);
}

/* NodeProto. ins/outs are comma-separated names ("x,,b": an omitted input); attrs (may be NULL) holds
 * attribute fields made by attr_*; domain NULL: default. */
static void node(pb *g, const char *op, const char *name, const char *ins, const char *outs, pb *attrs,
                 const char *domain) {
  pb n = {0};
  const char *lists[2] = {ins, outs};
  for (int l = 0; l < 2; l++) {
    const char *s = lists[l];
    while (s && *s) {
      const char *e = strchr(s, ',');
      size_t len = e ? (size_t)(e - s) : strlen(s);
      pb_bytes(&n, 1 + l, s, len);
      if (!e) break;
      s = e + 1;
      if (!*s) pb_bytes(&n, 1 + l, "", 0);
    }
  }
  pb_str(&n, 3, name);
  pb_str(&n, 4, op);
  if (attrs) {
    pb_raw(&n, attrs->p, attrs->n);
    free(attrs->p);
    memset(attrs, 0, sizeof *attrs);
  }
  if (domain) pb_str(&n, 7, domain);
  pb_msg(g, 1, &n);
}

static void initializer(pb *g, const char *name, int dtype, int rank, const int64_t *dims, const void *raw,
                        size_t rawlen) {
  pb t = {0};
  tensor(&t, name, dtype, rank, dims, raw, rawlen);
  pb_msg(g, 5, &t);
}

/* ModelProto: ir_version, producer, opset_import (default domain; a second domain if dom2), graph last. */
static pb model(int64_t ir, int64_t opset, const char *dom2, int64_t opset2, pb *graph) {
  pb m = {0}, os = {0};
  pb_uint(&m, 1, (uint64_t)ir);
  pb_str(&m, 2, "test_malformed");
  pb_str(&os, 1, "");
  pb_uint(&os, 2, (uint64_t)opset);
  pb_msg(&m, 8, &os);
  if (dom2) {
    pb_str(&os, 1, dom2);
    pb_uint(&os, 2, (uint64_t)opset2);
    pb_msg(&m, 8, &os);
  }
  pb_str(graph, 2, "g");
  pb_msg(&m, 7, graph);
  return m;
}

/* x[N,4] float -> Add(x, b) -> Relu -> y. */
static pb good_graph(void) {
  pb g = {0};
  int64_t xd[2] = {-1, 4}, bd[1] = {4};
  float b[4] = {1, -2, 3, -4};
  initializer(&g, "b", F32, 1, bd, b, sizeof b);
  value_info(&g, 11, "x", F32, 2, xd);
  node(&g, "Add", "add0", "x,b", "s", NULL, NULL);
  node(&g, "Relu", "relu0", "s", "y", NULL, NULL);
  value_info(&g, 12, "y", F32, 2, xd);
  return g;
}

/* ---- checks ---- */
static void check(int ok, const char *what, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void check(int ok, const char *what, const char *fmt, ...) {
  if (ok) {
    g_pass++;
    return;
  }
  g_fail++;
  printf("FAIL %s: ", what);
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
}

/* Checks status and that every NULL-terminated keyword occurs in the message. */
static void expect_v(const char *what, const char *stage, ei_status got, ei_status want, const char *msg, va_list ap) {
  if (got != want) {
    check(0, what, "%s returned %s (%s), expected %s", stage, ei_strerror(got), msg, ei_strerror(want));
    return;
  }
  const char *kw;
  int ok = 1;
  while ((kw = va_arg(ap, const char *))) {
    if (!strstr(msg, kw)) {
      check(0, what, "%s message \"%s\" does not mention \"%s\"", stage, msg, kw);
      ok = 0;
    }
  }
  if (ok) {
    g_pass++;
    printf("ok   %-34s %s: %s%s%s\n", what, stage, ei_strerror(got), msg[0] ? ": " : "", msg);
  }
}

static ei_model_options options(void) {
  ei_model_options o;
  ei_model_options_init(&o);
  o.max_arena_bytes = (size_t)256 << 20;
  return o;
}

/* The load must fail with `want` and a message holding every keyword (NULL-terminated list). */
static void expect_load(const char *what, const pb *bytes, ei_status want, ...) {
  char err[1024] = "";
  ei_model *m = NULL;
  ei_model_options o = options();
  ei_status s = ei_model_load_memory(bytes->p, bytes->n, NULL, &o, &m, err, sizeof err);
  va_list ap;
  va_start(ap, want);
  expect_v(what, "load", s, want, err, ap);
  va_end(ap);
  if (s != EI_OK && m) check(0, what, "failed load returned a model");
  ei_model_destroy(m);
}

/* Loads (must succeed) and plans with the given input (must fail with `want` and the keywords), or fails the
 * load itself with `want` when load_may_fail. */
static void expect_plan(const char *what, const pb *bytes, int load_may_fail, const ei_tensor *in, int nin,
                        ei_status want, ...) {
  char err[1024] = "";
  ei_model *m = NULL;
  ei_session *s = NULL;
  ei_model_options o = options();
  va_list ap;
  va_start(ap, want);
  ei_status st = ei_model_load_memory(bytes->p, bytes->n, NULL, &o, &m, err, sizeof err);
  if (st) {
    if (load_may_fail)
      expect_v(what, "load", st, want, err, ap);
    else
      check(0, what, "load failed: %s: %s", ei_strerror(st), err);
    va_end(ap);
    return;
  }
  if ((st = ei_session_create(m, NULL, &s, err, sizeof err))) {
    check(0, what, "session: %s", err);
  } else {
    err[0] = 0;
    st = ei_session_plan(s, nin, in, err, sizeof err);
    expect_v(what, "plan", st, want, err, ap);
  }
  va_end(ap);
  ei_session_destroy(s);
  ei_model_destroy(m);
}

static ei_tensor make_tensor(ei_dtype dt, int rank, const int64_t *dims, void *data) {
  ei_tensor t;
  memset(&t, 0, sizeof t);
  t.dtype = dt;
  t.rank = rank;
  for (int i = 0; i < rank; i++) t.dims[i] = dims[i];
  t.data = data;
  return t;
}

/* ---- cases ---- */

static void case_good(void) {
  pb g = good_graph();
  pb m = model(8, 13, NULL, 0, &g);
  char err[512] = "";
  ei_model *mod = NULL;
  ei_session *s = NULL;
  ei_model_options o = options();
  ei_status st = ei_model_load_memory(m.p, m.n, NULL, &o, &mod, err, sizeof err);
  check(st == EI_OK, "valid model", "load: %s: %s", ei_strerror(st), err);
  if (!st) {
    float x[8] = {0, 1, -5, 2, 3, 3, 3, 3}, want[8] = {1, 0, 0, 0, 4, 1, 6, 0};
    int64_t xd[2] = {2, 4};
    ei_tensor in = make_tensor(EI_FLOAT, 2, xd, x), out;
    st = ei_session_create(mod, NULL, &s, err, sizeof err);
    if (!st) st = ei_session_run(s, 1, &in, 1, &out, err, sizeof err);
    check(st == EI_OK, "valid model", "run: %s: %s", ei_strerror(st), err);
    if (!st) {
      int same = out.rank == 2 && out.dims[0] == 2 && out.dims[1] == 4 && !memcmp(out.data, want, sizeof want);
      check(same, "valid model", "wrong output");
      if (same) printf("ok   %-34s loads and runs\n", "valid model (builder check)");
    }
    /* Inputs that do not fit the model. */
    int64_t bad3[3] = {2, 4, 1}, bad5[2] = {2, 5};
    int32_t xi[8] = {0};
    ei_tensor wrong_rank = make_tensor(EI_FLOAT, 3, bad3, x), wrong_dim = make_tensor(EI_FLOAT, 2, bad5, x),
              wrong_type = make_tensor(EI_INT32, 2, xd, xi);
    const struct { const char *what; ei_tensor *t; const char *kw; } bad[] = {
        {"input of the wrong rank", &wrong_rank, "rank"},
        {"input of the wrong size", &wrong_dim, "dimension"},
        {"input of the wrong type", &wrong_type, "int32"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
      err[0] = 0;
      st = ei_session_run(s, 1, bad[i].t, 1, &out, err, sizeof err);
      check(st == EI_E_INVALID_ARGUMENT && strstr(err, "'x'") && strstr(err, bad[i].kw), bad[i].what,
            "run returned %s: %s", ei_strerror(st), err);
      if (st == EI_E_INVALID_ARGUMENT) printf("ok   %-34s run: %s\n", bad[i].what, err);
    }
    err[0] = 0;
    st = ei_session_run(s, 0, NULL, 1, &out, err, sizeof err);
    check(st == EI_E_INVALID_ARGUMENT && err[0], "no inputs given", "run returned %s: %s", ei_strerror(st), err);
    ei_tensor nodata = make_tensor(EI_FLOAT, 2, xd, NULL);
    st = ei_session_run(s, 1, &nodata, 1, &out, err, sizeof err);
    check(st == EI_E_INVALID_ARGUMENT && err[0], "input without data", "run returned %s: %s", ei_strerror(st), err);
  }
  ei_session_destroy(s);
  ei_model_destroy(mod);
  free(m.p);
}

static void case_truncated(void) {
  pb g = good_graph();
  size_t glen = g.n + 3; /* model() appends the graph name "g" (3 bytes) */
  pb m = model(8, 13, NULL, 0, &g);
  /* The graph is the last field: its key starts before the length prefix. */
  size_t graph_key = m.n - glen - 1 - (glen < 128 ? 1 : 2);
  int bad = 0, cut_in_graph = 0;
  for (size_t len = 0; len < m.n; len++) {
    char err[512] = "";
    ei_model *mod = NULL;
    ei_status s = ei_model_load_memory(m.p, len, NULL, NULL, &mod, err, sizeof err);
    if (s == EI_OK || mod || !err[0]) {
      if (!bad++) check(0, "truncated file", "prefix of %zu/%zu bytes: %s: %s", len, m.n, ei_strerror(s), err);
    } else if (len > graph_key) {
      cut_in_graph++;
      if (s != EI_E_MALFORMED || !strstr(err, "truncated"))
        if (!bad++) check(0, "truncated file", "prefix of %zu/%zu bytes (inside the graph): %s: %s", len, m.n,
                          ei_strerror(s), err);
    }
    ei_model_destroy(mod);
  }
  if (!bad) {
    g_pass++;
    printf("ok   %-34s every prefix (%zu) refused; the %d cut inside the graph are 'malformed ... truncated'\n",
           "truncated file", m.n, cut_in_graph);
  }
  pb empty = {0};
  expect_load("empty file", &empty, EI_E_MALFORMED, "not an ONNX model", NULL);
  free(m.p);
}

static void case_varint(void) {
  pb m = {0};
  pb_key(&m, 1, 0);
  uint8_t ff[11];
  memset(ff, 0xff, sizeof ff);
  pb_raw(&m, ff, sizeof ff);
  expect_load("bad varint (11 x 0xff)", &m, EI_E_MALFORMED, "varint", NULL);
  free(m.p);
  /* The same inside an attribute of a node: the message names the node. */
  pb g = good_graph(), n = {0}, at = {0};
  pb_str(&at, 1, "axis");
  pb_key(&at, 3, 0);
  pb_raw(&at, ff, 10);
  pb_raw(&at, "\x01", 1); /* 11 bytes: more than 64 bits */
  pb_str(&n, 1, "y");
  pb_str(&n, 2, "z");
  pb_str(&n, 3, "softmax_bad");
  pb_str(&n, 4, "Softmax");
  pb_msg(&n, 5, &at);
  pb_msg(&g, 1, &n);
  m = model(8, 13, NULL, 0, &g);
  expect_load("bad varint in an attribute", &m, EI_E_MALFORMED, "softmax_bad", NULL);
  free(m.p);
  /* A huge length prefix on the graph. */
  m = (pb){0};
  pb_uint(&m, 1, 8);
  pb_key(&m, 7, 2);
  pb_varint(&m, 1ull << 62);
  pb_raw(&m, "\x0a\x00", 2);
  expect_load("huge length prefix", &m, EI_E_MALFORMED, "past the end", NULL);
  free(m.p);
  /* Field number 0. */
  m = (pb){0};
  pb_uint(&m, 1, 8);
  pb_uint(&m, 0, 1);
  expect_load("field number 0", &m, EI_E_MALFORMED, "field number", NULL);
  free(m.p);
}

static void case_wire_types(void) {
  /* data_type of an initializer as a length-delimited field. */
  pb g = {0}, t = {0};
  int64_t d[1] = {4};
  float v[4] = {0};
  pb_uint(&t, 1, 4);
  pb_bytes(&t, 2, "\x01", 1);
  pb_str(&t, 8, "weights_wt");
  pb_bytes(&t, 9, v, sizeof v);
  pb_msg(&g, 5, &t);
  value_info(&g, 11, "x", F32, 1, d);
  node(&g, "Add", "add0", "x,weights_wt", "y", NULL, NULL);
  value_info(&g, 12, "y", F32, 1, d);
  pb m = model(8, 13, NULL, 0, &g);
  expect_load("wrong wire type (data_type as bytes)", &m, EI_E_MALFORMED, "weights_wt", "data_type", NULL);
  free(m.p);
  /* A group (wire type 3) inside a node. */
  g = good_graph();
  pb n = {0};
  pb_str(&n, 4, "Relu");
  pb_key(&n, 9, 3);
  pb_msg(&g, 1, &n);
  m = model(8, 13, NULL, 0, &g);
  expect_load("wrong wire type (group in a node)", &m, EI_E_MALFORMED, "wire type", NULL);
  free(m.p);
  /* Wire type 7 at the top level. */
  m = (pb){0};
  pb_uint(&m, 1, 8);
  pb_key(&m, 7, 7);
  pb_raw(&m, "\0\0\0\0", 4);
  expect_load("wrong wire type (7) for the graph", &m, EI_E_MALFORMED, "wire type", NULL);
  free(m.p);
}

static void case_dims(void) {
  float v[4] = {0};
  int64_t neg[2] = {-1, 4}, ovf[2] = {(int64_t)1 << 32, (int64_t)1 << 32}, four[1] = {4};
  const struct { const char *what; int64_t *dims; int rank; size_t raw; const char *kw; } cases[] = {
      {"negative dims in an initializer", neg, 2, 16, "negative"},
      {"dims whose product overflows", ovf, 2, 16, "overflow"},
      {"raw_data shorter than the shape", four, 1, 12, "raw_data"}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    pb g = {0};
    initializer(&g, "w_hostile", F32, cases[i].rank, cases[i].dims, v, cases[i].raw);
    value_info(&g, 11, "x", F32, 1, four);
    node(&g, "Add", "add0", "x,w_hostile", "y", NULL, NULL);
    value_info(&g, 12, "y", F32, 1, four);
    pb m = model(8, 13, NULL, 0, &g);
    expect_load(cases[i].what, &m, EI_E_INVALID_MODEL, "w_hostile", cases[i].kw, NULL);
    free(m.p);
  }
  /* A negative dimension in a graph input's type. */
  pb g = {0};
  {
    pb vi = {0}, tp = {0}, tt = {0}, sh = {0}, dd = {0};
    pb_uint(&dd, 1, (uint64_t)-5);
    pb_msg(&sh, 1, &dd);
    pb_uint(&tt, 1, F32);
    pb_msg(&tt, 2, &sh);
    pb_msg(&tp, 1, &tt);
    pb_str(&vi, 1, "x_negdim");
    pb_msg(&vi, 2, &tp);
    pb_msg(&g, 11, &vi);
  }
  node(&g, "Relu", "relu0", "x_negdim", "y", NULL, NULL);
  value_info(&g, 12, "y", F32, 1, four);
  pb m = model(8, 13, NULL, 0, &g);
  expect_load("negative dim in an input type", &m, EI_E_INVALID_MODEL, "x_negdim", "negative", NULL);
  free(m.p);
  /* Rank above EI_MAX_DIMS. */
  g = (pb){0};
  int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  value_info(&g, 11, "x_rank9", F32, 9, nine);
  node(&g, "Relu", "relu0", "x_rank9", "y", NULL, NULL);
  value_info(&g, 12, "y", F32, 9, nine);
  m = model(8, 13, NULL, 0, &g);
  expect_load("input of rank 9", &m, EI_E_UNSUPPORTED, "x_rank9", "rank", NULL);
  free(m.p);
}

static void case_graph_structure(void) {
  int64_t four[1] = {4};
  /* Cycle: two Adds feeding each other. */
  pb g = {0};
  value_info(&g, 11, "x", F32, 1, four);
  node(&g, "Add", "add_a", "x,b_out", "a_out", NULL, NULL);
  node(&g, "Add", "add_b", "a_out,x", "b_out", NULL, NULL);
  value_info(&g, 12, "b_out", F32, 1, four);
  pb m = model(8, 13, NULL, 0, &g);
  expect_load("graph cycle", &m, EI_E_INVALID_MODEL, "cycle", "add_", NULL);
  free(m.p);
  /* An input no one produces. */
  g = (pb){0};
  value_info(&g, 11, "x", F32, 1, four);
  node(&g, "Add", "add_dangling", "x,ghost_tensor", "y", NULL, NULL);
  value_info(&g, 12, "y", F32, 1, four);
  m = model(8, 13, NULL, 0, &g);
  expect_load("input no one produces", &m, EI_E_INVALID_MODEL, "ghost_tensor", "add_dangling", NULL);
  free(m.p);
  /* Two nodes produce the same value. */
  g = (pb){0};
  value_info(&g, 11, "x", F32, 1, four);
  node(&g, "Relu", "relu_1", "x", "twice", NULL, NULL);
  node(&g, "Relu", "relu_2", "x", "twice", NULL, NULL);
  value_info(&g, 12, "twice", F32, 1, four);
  m = model(8, 13, NULL, 0, &g);
  expect_load("output produced twice", &m, EI_E_INVALID_MODEL, "twice", "relu_2", NULL);
  free(m.p);
  /* A graph output no node produces. */
  g = (pb){0};
  value_info(&g, 11, "x", F32, 1, four);
  node(&g, "Relu", "relu_1", "x", "y", NULL, NULL);
  value_info(&g, 12, "nowhere_out", F32, 1, four);
  m = model(8, 13, NULL, 0, &g);
  expect_load("graph output not produced", &m, EI_E_INVALID_MODEL, "nowhere_out", NULL);
  free(m.p);
  /* An initializer defined twice. */
  g = (pb){0};
  float v[4] = {0};
  initializer(&g, "dup_init", F32, 1, four, v, sizeof v);
  initializer(&g, "dup_init", F32, 1, four, v, sizeof v);
  value_info(&g, 11, "x", F32, 1, four);
  node(&g, "Add", "add0", "x,dup_init", "y", NULL, NULL);
  value_info(&g, 12, "y", F32, 1, four);
  m = model(8, 13, NULL, 0, &g);
  expect_load("initializer defined twice", &m, EI_E_INVALID_MODEL, "dup_init", NULL);
  free(m.p);
  /* A node without op_type, an attribute without a name, an attribute given twice. */
  g = (pb){0};
  value_info(&g, 11, "x", F32, 1, four);
  {
    pb n = {0};
    pb_str(&n, 1, "x"), pb_str(&n, 2, "y"), pb_str(&n, 3, "no_op_type");
    pb_msg(&g, 1, &n);
  }
  value_info(&g, 12, "y", F32, 1, four);
  m = model(8, 13, NULL, 0, &g);
  expect_load("node without op_type", &m, EI_E_INVALID_MODEL, "op_type", NULL);
  free(m.p);
  g = (pb){0};
  value_info(&g, 11, "x", F32, 1, four);
  {
    pb a = {0}, at = {0};
    pb_uint(&at, 3, 1), pb_uint(&at, 20, 2);
    pb_msg(&a, 5, &at);
    node(&g, "Softmax", "softmax_noname", "x", "y", &a, NULL);
  }
  value_info(&g, 12, "y", F32, 1, four);
  m = model(8, 13, NULL, 0, &g);
  expect_load("attribute without a name", &m, EI_E_INVALID_MODEL, "softmax_noname", NULL);
  free(m.p);
  g = (pb){0};
  value_info(&g, 11, "x", F32, 1, four);
  {
    pb a = {0};
    attr_int(&a, "axis", 0);
    attr_int(&a, "axis", 0);
    node(&g, "Softmax", "softmax_twice", "x", "y", &a, NULL);
  }
  value_info(&g, 12, "y", F32, 1, four);
  m = model(8, 13, NULL, 0, &g);
  expect_load("attribute given twice", &m, EI_E_INVALID_MODEL, "softmax_twice", "axis", NULL);
  free(m.p);
  /* A graph without outputs. */
  g = (pb){0};
  value_info(&g, 11, "x", F32, 1, four);
  node(&g, "Relu", "relu_1", "x", "y", NULL, NULL);
  m = model(8, 13, NULL, 0, &g);
  expect_load("graph without outputs", &m, EI_E_INVALID_MODEL, "no outputs", NULL);
  free(m.p);
}

static void case_ops_and_versions(void) {
  int64_t four[1] = {4};
  pb g = {0};
  value_info(&g, 11, "x", F32, 1, four);
  node(&g, "FooBar", "foo_node", "x", "y", NULL, NULL);
  value_info(&g, 12, "y", F32, 1, four);
  pb m = model(8, 13, NULL, 0, &g);
  expect_load("unknown op", &m, EI_E_UNSUPPORTED, "FooBar", "ai.onnx", "foo_node", "13", NULL);
  free(m.p);
  g = (pb){0};
  value_info(&g, 11, "x", F32, 1, four);
  node(&g, "FooBar", "foo_custom", "x", "y", NULL, "com.example.custom");
  value_info(&g, 12, "y", F32, 1, four);
  m = model(8, 13, "com.example.custom", 3, &g);
  expect_load("unknown op in a custom domain", &m, EI_E_UNSUPPORTED, "FooBar", "com.example.custom", "foo_custom",
              "3", NULL);
  free(m.p);
  g = (pb){0};
  value_info(&g, 11, "x", F32, 1, four);
  node(&g, "FooBar", "foo_noimport", "x", "y", NULL, "com.example.missing");
  value_info(&g, 12, "y", F32, 1, four);
  m = model(8, 13, NULL, 0, &g);
  expect_load("domain without opset_import", &m, EI_E_INVALID_MODEL, "com.example.missing", "foo_noimport", NULL);
  free(m.p);
  const struct { const char *what; int64_t ir, opset; const char *kw1, *kw2; } vers[] = {
      {"opset 6", 8, 6, "opset", "6"}, {"opset 99", 8, 99, "opset", "99"}, {"IR version 99", 99, 13, "IR version", "99"},
      {"IR version 2", 2, 13, "IR version", "2"}};
  for (size_t i = 0; i < sizeof vers / sizeof *vers; i++) {
    g = good_graph();
    m = model(vers[i].ir, vers[i].opset, NULL, 0, &g);
    expect_load(vers[i].what, &m, EI_E_UNSUPPORTED, vers[i].kw1, vers[i].kw2, NULL);
    free(m.p);
  }
  /* String initializer. */
  g = (pb){0};
  int64_t one[1] = {1};
  {
    pb t = {0};
    tensor(&t, "str_init", STR, 1, one, NULL, 0);
    pb_str(&t, 6, "hello");
    pb_msg(&g, 5, &t);
  }
  value_info(&g, 11, "x", F32, 1, four);
  node(&g, "Identity", "id0", "str_init", "y", NULL, NULL);
  value_info(&g, 12, "y", F32, 1, four);
  m = model(8, 13, NULL, 0, &g);
  expect_load("string initializer", &m, EI_E_UNSUPPORTED, "str_init", "string", NULL);
  free(m.p);
  /* External data when loading from memory (no folder to resolve it against). */
  g = (pb){0};
  {
    pb t = {0}, e = {0};
    tensor(&t, "ext_init", F32, 1, four, NULL, 0);
    pb_str(&e, 1, "location"), pb_str(&e, 2, "weights.bin");
    pb_msg(&t, 13, &e);
    pb_uint(&t, 14, 1);
    pb_msg(&g, 5, &t);
  }
  value_info(&g, 11, "x", F32, 1, four);
  node(&g, "Add", "add0", "x,ext_init", "y", NULL, NULL);
  value_info(&g, 12, "y", F32, 1, four);
  m = model(8, 13, NULL, 0, &g);
  expect_load("external data from memory", &m, EI_E_INVALID_MODEL, "ext_init", "external", NULL);
  free(m.p);
}

static void case_limits(void) {
  /* x[N, 1000] -> Reshape to [1e6, 1e6] -> Relu: planned with N = 1e9, 4e12 bytes, far above the cap. */
  pb g = {0};
  int64_t xd[2] = {-1, 1000}, sd[1] = {2}, shape[2] = {1000000, 1000000}, yd[2] = {1000000, 1000000};
  initializer(&g, "big_shape", I64, 1, sd, shape, sizeof shape);
  value_info(&g, 11, "x", F32, 2, xd);
  node(&g, "Reshape", "reshape_big", "x,big_shape", "r", NULL, NULL);
  node(&g, "Relu", "relu_big", "r", "y", NULL, NULL);
  value_info(&g, 12, "y", F32, 2, yd);
  pb m = model(8, 13, NULL, 0, &g);
  int64_t in_dims[2] = {1000000000, 1000};
  ei_tensor in = make_tensor(EI_FLOAT, 2, in_dims, NULL);
  expect_plan("Reshape to 1e12 elements", &m, 0, &in, 1, EI_E_LIMIT, "limit", NULL);
  free(m.p);
  /* ConstantOfShape [1e6, 1e6] from constants: too big to fold at load, above the cap at plan. */
  g = (pb){0};
  int64_t one[1] = {1};
  float zero = 0.f;
  initializer(&g, "cos_shape", I64, 1, sd, shape, sizeof shape);
  value_info(&g, 11, "x", F32, 1, one);
  {
    pb a = {0}, t = {0};
    tensor(&t, "value", F32, 1, one, &zero, 4);
    attr_tensor(&a, "value", &t);
    node(&g, "ConstantOfShape", "cos_big", "cos_shape", "c", &a, NULL);
  }
  node(&g, "Add", "add_big", "c,x", "y", NULL, NULL);
  value_info(&g, 12, "y", F32, 2, yd);
  m = model(8, 13, NULL, 0, &g);
  ei_tensor in1 = make_tensor(EI_FLOAT, 1, one, NULL);
  expect_plan("ConstantOfShape to 1e12 elements", &m, 0, &in1, 1, EI_E_LIMIT, "limit", NULL);
  free(m.p);
}

static void case_conv(void) {
  /* x[1,3,8,8] with W[4,2,3,3]: the weight has 2 input channels, the input 3. */
  pb g = {0};
  int64_t xd[4] = {1, 3, 8, 8}, wd[4] = {4, 2, 3, 3}, yd[4] = {1, 4, 6, 6};
  float w[4 * 2 * 3 * 3] = {0};
  initializer(&g, "conv_w", F32, 4, wd, w, sizeof w);
  value_info(&g, 11, "x", F32, 4, xd);
  pb a = {0};
  int64_t ks[2] = {3, 3};
  attr_ints(&a, "kernel_shape", 2, ks);
  node(&g, "Conv", "conv_mismatch", "x,conv_w", "y", &a, NULL);
  value_info(&g, 12, "y", F32, 4, yd);
  pb m = model(8, 13, NULL, 0, &g);
  ei_tensor in = make_tensor(EI_FLOAT, 4, xd, NULL);
  expect_plan("Conv weight channels mismatch", &m, 1, &in, 1, EI_E_SHAPE, "conv_mismatch", NULL);
  free(m.p);
}

/* Loads, plans and runs; any status is accepted as long as nothing crashes and failures carry a message. */
static void expect_no_crash(const char *what, const pb *bytes, const ei_tensor *in, int nin) {
  char err[1024] = "";
  ei_model *m = NULL;
  ei_session *s = NULL;
  ei_model_options o = options();
  const char *stage = "load";
  ei_status st = ei_model_load_memory(bytes->p, bytes->n, NULL, &o, &m, err, sizeof err);
  if (!st) stage = "session", st = ei_session_create(m, NULL, &s, err, sizeof err);
  if (!st) {
    ei_tensor out[4];
    stage = "run";
    st = ei_session_run(s, nin, in, ei_model_output_count(m) < 4 ? ei_model_output_count(m) : 4, out, err,
                        sizeof err);
  }
  check(st == EI_OK || err[0], what, "%s returned %s without a message", stage, ei_strerror(st));
  if (st == EI_OK || err[0]) {
    g_pass++;
    printf("ok   %-34s %s: %s%s%s\n", what, stage, ei_strerror(st), err[0] ? ": " : "", err);
  }
  ei_session_destroy(s);
  ei_model_destroy(m);
}

static void case_omitted_outputs(void) {
  int64_t xd[1] = {6}, half[1] = {3};
  float x[6] = {1, 2, 3, 4, 5, 6};
  ei_tensor in = make_tensor(EI_FLOAT, 1, xd, x);
  /* Split whose first output is omitted, the second used. */
  pb g = {0};
  value_info(&g, 11, "x", F32, 1, xd);
  {
    pb a = {0};
    attr_int(&a, "axis", 0);
    node(&g, "Split", "split_half", "x", ",second", &a, NULL);
  }
  value_info(&g, 12, "second", F32, 1, half);
  pb m = model(8, 13, NULL, 0, &g);
  expect_no_crash("Split with output 0 omitted", &m, &in, 1);
  free(m.p);
  /* Nodes whose only output is omitted or absent, beside a live node. */
  g = (pb){0};
  value_info(&g, 11, "x", F32, 1, xd);
  node(&g, "Neg", "neg_nowhere", "x", "", NULL, NULL);
  node(&g, "Shape", "shape_nothing", "x", NULL, NULL, NULL);
  node(&g, "Relu", "relu0", "x", "y", NULL, NULL);
  value_info(&g, 12, "y", F32, 1, xd);
  m = model(8, 13, NULL, 0, &g);
  expect_no_crash("nodes without outputs", &m, &in, 1);
  free(m.p);
  /* Dropout whose output is omitted and whose mask is the graph output. */
  g = (pb){0};
  value_info(&g, 11, "x", F32, 1, xd);
  node(&g, "Dropout", "dropout_mask", "x", ",mask", NULL, NULL);
  value_info(&g, 12, "mask", 9, 1, xd);
  m = model(8, 13, NULL, 0, &g);
  expect_no_crash("Dropout with only the mask used", &m, &in, 1);
  free(m.p);
  /* More outputs than the operator has. */
  g = (pb){0};
  value_info(&g, 11, "x", F32, 1, xd);
  node(&g, "Relu", "relu_two", "x", "y,extra", NULL, NULL);
  value_info(&g, 12, "y", F32, 1, xd);
  value_info(&g, 12, "extra", F32, 1, xd);
  m = model(8, 13, NULL, 0, &g);
  expect_plan("more outputs than the op has", &m, 1, &in, 1, EI_E_INVALID_MODEL, "relu_two", NULL);
  free(m.p);
}

static void case_api(void) {
  char err[256] = "";
  ei_model *m = NULL;
  ei_status s = ei_model_load_memory(NULL, 10, NULL, NULL, &m, err, sizeof err);
  check(s == EI_E_INVALID_ARGUMENT && !m, "NULL data", "returned %s", ei_strerror(s));
  s = ei_model_load_memory("x", 1, NULL, NULL, NULL, err, sizeof err);
  check(s == EI_E_INVALID_ARGUMENT, "NULL out", "returned %s", ei_strerror(s));
  s = ei_model_load("/nonexistent/dir/model.onnx", NULL, &m, err, sizeof err);
  check(s == EI_E_IO && !m && strstr(err, "/nonexistent/dir/model.onnx"), "missing file", "returned %s: %s",
        ei_strerror(s), err);
  s = ei_model_load("/", NULL, &m, err, sizeof err);
  check(s == EI_E_IO && !m, "a folder as the model", "returned %s: %s", ei_strerror(s), err);
  /* Tiny error buffers must not overflow (ASan watches) and stay terminated. */
  pb g = good_graph();
  pb mm = model(99, 13, NULL, 0, &g);
  char tiny[4] = {'x', 'x', 'x', 'x'};
  s = ei_model_load_memory(mm.p, mm.n, NULL, NULL, &m, tiny, 3);
  check(s == EI_E_UNSUPPORTED && tiny[2] == 0 && tiny[3] == 'x', "3-byte error buffer", "returned %s, buffer '%.3s'",
        ei_strerror(s), tiny);
  s = ei_model_load_memory(mm.p, mm.n, NULL, NULL, &m, NULL, 0);
  check(s == EI_E_UNSUPPORTED, "no error buffer", "returned %s", ei_strerror(s));
  free(mm.p);
  printf("ok   %-34s checked\n", "API argument checks");
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  case_good();
  case_truncated();
  case_varint();
  case_wire_types();
  case_dims();
  case_graph_structure();
  case_ops_and_versions();
  case_limits();
  case_conv();
  case_omitted_outputs();
  case_api();
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
