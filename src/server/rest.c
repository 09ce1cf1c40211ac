/* src/server/rest.c: the KServe v2 REST API over http.h (routes in rest.h).
 *
 * The loop thread routes, answers the cheap endpoints (health, metadata, index, stats) at once and turns infer and
 * classify into core requests (server.h). Infer bodies are parsed by decode on the service thread: the JSON part
 * (the whole body, or its first Inference-Header-Content-Length bytes with the binary tensor data extension) with
 * jansson, bounded by max_json_bytes; tensors from JSON arrays (nested or flat) are converted into raw
 * little-endian bytes in the request arena, binary tensors point into the body. encode builds the response
 * (JSON, plus the binary outputs after it) on the executor thread; done sends it on the loop.
 */
#include <ctype.h>
#include <errno.h>
#include <stdatomic.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "metrics.h"
#include "rest.h"
#include "strbuf.h"

#define MAX_IO 64          /* inputs / outputs named in one request */
#define SMALL_BODY 65536   /* bodies parsed on the loop thread (repository index) */
#define MAX_TOP_K 1000

/* ---- jansson's memory: one budget for every parse in flight ----
 * A JSON number costs ~50 bytes of jansson memory for its 2+ bytes of text, and several service threads parse at
 * once: the budget bounds the total (a parse that would go over it fails and the request gets 503). */
static atomic_size_t json_used;
static size_t json_cap; /* 0: no budget (the hooks are not installed) */

static void *json_budget_malloc(size_t n) {
  size_t total = n + 16;
  if (total < n) return NULL;
  size_t prev = atomic_fetch_add(&json_used, total);
  if (prev + total > json_cap) {
    atomic_fetch_sub(&json_used, total);
    return NULL;
  }
  size_t *p = malloc(total);
  if (!p) {
    atomic_fetch_sub(&json_used, total);
    return NULL;
  }
  p[0] = total;
  return (char *)p + 16;
}

static void json_budget_free(void *q) {
  if (!q) return;
  size_t *p = (size_t *)(void *)((char *)q - 16);
  atomic_fetch_sub(&json_used, p[0]);
  free(p);
}

void ei__rest_json_budget(size_t bytes) {
  if (json_cap || !bytes) return; /* once, before any JSON is parsed */
  json_cap = bytes;
  json_set_alloc_funcs(json_budget_malloc, json_budget_free);
}

/* ---- a growable string (strbuf.h) ---- */
typedef ei__sb sb;

/* A JSON string; bytes that are not UTF-8 become \u00XX (as Latin-1). */
static void sb_str(sb *b, const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  ei__sb_put(b, "\"", 1);
  size_t run = 0;
  for (size_t i = 0; i < n;) {
    unsigned char ch = u[i];
    size_t l = ch >= 0x20 && ch != '"' && ch != '\\' ? ei__http_utf8_len(u + i, n - i) : 0;
    if (l) {
      i += l;
      run += l;
      continue;
    }
    ei__sb_put(b, u + i - run, run);
    run = 0;
    if (ch == '"' || ch == '\\') {
      char esc[2] = {'\\', (char)ch};
      ei__sb_put(b, esc, 2);
    } else
      ei__sb_printf(b, "\\u%04x", ch);
    i++;
  }
  ei__sb_put(b, u + n - run, run);
  ei__sb_put(b, "\"", 1);
}

static void sb_cstr(sb *b, const char *s) { sb_str(b, s ? s : "", s ? strlen(s) : 0); }

static void put_f64(sb *b, double v, int digits) {
  if (isnan(v) || isinf(v))
    ei__sb_puts(b, "null"); /* JSON has no NaN or infinity */
  else
    ei__sb_printf(b, "%.*g", digits, v);
}

/* ---- responses ---- */
static const ei__http_header json_hdr[] = {{"content-type", "application/json"}};

static void respond_sb(ei__http_exchange *x, int status, sb *b) {
  if (b->oom) {
    free(b->p);
    ei__http_respond_error(x, 500, "out of memory");
    return;
  }
  ei__http_respond(x, status, json_hdr, 1, b->p, b->n, 1, NULL, 0);
}

static void respond_code(ei__http_exchange *x, ei__srv_code code, const char *msg) {
  ei__http_respond_error(x, ei__srv_http_status(code), msg);
}

/* ---- routes ---- */
enum {
  R_NONE,
  R_SERVER_META,
  R_LIVE,
  R_READY,
  R_INDEX,
  R_MODEL_CONTROL,
  R_STATS_ALL,
  R_MODEL_META,
  R_MODEL_READY,
  R_INFER,
  R_CLASSIFY,
  R_STATS,
  R_METRICS
};

typedef struct route {
  int kind;
  const char *model;   /* NULL when none */
  const char *version; /* "" when none */
} route;

static int route_parse(char *path, route *rt) {
  char *seg[8];
  int n = 0;
  memset(rt, 0, sizeof *rt);
  rt->version = "";
  size_t len = strlen(path);
  if (len > 1 && path[len - 1] == '/') path[len - 1] = 0; /* one trailing slash */
  if (path[0] != '/') return R_NONE;
  for (char *p = path + 1;;) {
    if (n == 8) return R_NONE;
    seg[n++] = p;
    char *slash = strchr(p, '/');
    if (!slash) break;
    *slash = 0;
    p = slash + 1;
  }
  for (int i = 0; i < n; i++)
    if (!*seg[i]) return R_NONE;
  if (n == 1 && !strcmp(seg[0], "metrics")) return rt->kind = R_METRICS;
  if (strcmp(seg[0], "v2")) return R_NONE;
  if (n == 1) return rt->kind = R_SERVER_META;
  if (n == 3 && !strcmp(seg[1], "health")) {
    if (!strcmp(seg[2], "live")) return rt->kind = R_LIVE;
    if (!strcmp(seg[2], "ready")) return rt->kind = R_READY;
    return R_NONE;
  }
  if (!strcmp(seg[1], "repository")) {
    if (n == 3 && !strcmp(seg[2], "index")) return rt->kind = R_INDEX;
    if (n == 5 && !strcmp(seg[2], "models") && (!strcmp(seg[4], "load") || !strcmp(seg[4], "unload"))) {
      rt->model = seg[3];
      return rt->kind = R_MODEL_CONTROL;
    }
    return R_NONE;
  }
  if (strcmp(seg[1], "models") || n < 3) return R_NONE;
  if (n == 3 && !strcmp(seg[2], "stats")) return rt->kind = R_STATS_ALL;
  rt->model = seg[2];
  int i = 3;
  if (n >= 5 && !strcmp(seg[3], "versions")) {
    rt->version = seg[4];
    i = 5;
  }
  if (i == n) return rt->kind = R_MODEL_META;
  if (i != n - 1) return R_NONE;
  if (!strcmp(seg[i], "ready")) return rt->kind = R_MODEL_READY;
  if (!strcmp(seg[i], "infer")) return rt->kind = R_INFER;
  if (!strcmp(seg[i], "classify")) return rt->kind = R_CLASSIFY;
  if (!strcmp(seg[i], "stats")) return rt->kind = R_STATS;
  return R_NONE;
}

static const char *route_method(int kind) {
  switch (kind) {
  case R_INDEX:
  case R_MODEL_CONTROL:
  case R_INFER:
  case R_CLASSIFY:
    return "POST";
  default:
    return "GET";
  }
}

/* ---- the cheap endpoints (loop thread) ---- */
static void ep_server_meta(ei__http_exchange *x, ei__server *s) {
  sb b = {0};
  int n = 0;
  const char *const *ext = ei__srv_extensions(s, &n);
  ei__sb_puts(&b, "{\"name\": \"edgeinfer\", \"version\": ");
  sb_cstr(&b, EI_VERSION_STRING);
  ei__sb_puts(&b, ", \"extensions\": [");
  for (int i = 0; i < n; i++) {
    if (i) ei__sb_puts(&b, ", ");
    sb_cstr(&b, ext[i]);
  }
  ei__sb_puts(&b, "]}");
  respond_sb(x, 200, &b);
}

static void ep_health(ei__http_exchange *x, ei__server *s, int ready) {
  int ok = ready ? ei__srv_ready(s) : ei__srv_live(s);
  if (!ok) {
    respond_code(x, EI_SRV_UNAVAILABLE, ready ? "the server is not ready (starting or shutting down)"
                                               : "the server is not live");
    return;
  }
  static const char live[] = "{\"live\": true}", rdy[] = "{\"ready\": true}";
  ei__http_respond(x, 200, json_hdr, 1, ready ? rdy : live, ready ? sizeof rdy - 1 : sizeof live - 1, 0, NULL, 0);
}

static void put_tensor_meta(sb *b, const ei__ks_tensor *t, int n) {
  ei__sb_puts(b, "[");
  for (int i = 0; i < n; i++) {
    ei__sb_puts(b, i ? ", {\"name\": " : "{\"name\": ");
    sb_cstr(b, t[i].name);
    ei__sb_puts(b, ", \"datatype\": ");
    sb_cstr(b, ei__ks_dtype_name(t[i].dtype));
    ei__sb_puts(b, ", \"shape\": [");
    for (int d = 0; d < t[i].rank; d++) ei__sb_printf(b, "%s%" PRId64, d ? ", " : "", t[i].shape[d]);
    ei__sb_puts(b, "]}");
  }
  ei__sb_puts(b, "]");
}

static void ep_model_meta(ei__http_exchange *x, ei__server *s, const route *rt) {
  ei__srv_meta m;
  char err[256] = "";
  memset(&m, 0, sizeof m);
  ei__srv_code code = ei__srv_model_meta(s, rt->model, rt->version, &m, err, sizeof err);
  if (code != EI_SRV_OK) {
    respond_code(x, code, err[0] ? err : ei__srv_code_name(code));
    return;
  }
  sb b = {0};
  ei__sb_puts(&b, "{\"name\": ");
  sb_cstr(&b, m.name);
  ei__sb_puts(&b, ", \"versions\": [");
  for (int i = 0; i < m.nversions; i++) {
    if (i) ei__sb_puts(&b, ", ");
    sb_cstr(&b, m.versions[i]);
  }
  ei__sb_puts(&b, "], \"platform\": ");
  sb_cstr(&b, m.platform);
  ei__sb_puts(&b, ", \"inputs\": ");
  put_tensor_meta(&b, m.inputs, m.ninputs);
  ei__sb_puts(&b, ", \"outputs\": ");
  put_tensor_meta(&b, m.outputs, m.noutputs);
  ei__sb_puts(&b, "}");
  ei__srv_meta_release(&m);
  respond_sb(x, 200, &b);
}

static void ep_model_ready(ei__http_exchange *x, ei__server *s, const route *rt) {
  char err[256] = "";
  ei__srv_code code = ei__srv_model_ready(s, rt->model, rt->version, err, sizeof err);
  if (code != EI_SRV_OK) {
    respond_code(x, code, err[0] ? err : ei__srv_code_name(code));
    return;
  }
  sb b = {0};
  ei__sb_puts(&b, "{\"name\": ");
  sb_cstr(&b, rt->model);
  if (rt->version[0]) {
    ei__sb_puts(&b, ", \"version\": ");
    sb_cstr(&b, rt->version);
  }
  ei__sb_puts(&b, ", \"ready\": true}");
  respond_sb(x, 200, &b);
}

static void ep_index(ei__http_exchange *x, ei__server *s) {
  int ready_only = 0;
  if (x->body_len) {
    if (x->body_len > SMALL_BODY) {
      respond_code(x, EI_SRV_TOO_LARGE, "repository index request body is over 64 KiB");
      return;
    }
    json_error_t je;
    json_t *root = json_loadb((const char *)x->body, x->body_len, 0, &je);
    if (!root || !json_is_object(root)) {
      char msg[300];
      if (root)
        snprintf(msg, sizeof msg, "repository index request must be a JSON object");
      else
        snprintf(msg, sizeof msg, "malformed JSON at line %d column %d: %s", je.line, je.column, je.text);
      json_decref(root);
      respond_code(x, EI_SRV_INVALID, msg);
      return;
    }
    json_t *r = json_object_get(root, "ready");
    if (r && !json_is_boolean(r)) {
      json_decref(root);
      respond_code(x, EI_SRV_INVALID, "\"ready\" must be a boolean");
      return;
    }
    ready_only = r && json_is_true(r);
    json_decref(root);
  }
  int n;
  ei__srv_index_entry *e = ei__srv_index_all(s, ready_only, &n);
  if (!e) {
    respond_code(x, EI_SRV_INTERNAL, "out of memory");
    return;
  }
  sb b = {0};
  ei__sb_puts(&b, "[");
  for (int i = 0; i < n; i++) {
    ei__sb_puts(&b, i ? ", {\"name\": " : "{\"name\": ");
    sb_cstr(&b, e[i].name);
    ei__sb_puts(&b, ", \"version\": ");
    sb_cstr(&b, e[i].version);
    ei__sb_puts(&b, ", \"state\": ");
    sb_cstr(&b, e[i].state);
    ei__sb_puts(&b, ", \"reason\": ");
    sb_cstr(&b, e[i].reason);
    ei__sb_puts(&b, "}");
  }
  ei__sb_puts(&b, "]");
  free(e);
  respond_sb(x, 200, &b);
}

static void put_dur(sb *b, const char *name, const ei__srv_duration *d) {
  ei__sb_printf(b, "\"%s\": {\"count\": %" PRIu64 ", \"ns\": %" PRIu64 "}", name, d->count, d->ns);
}

static void ep_stats(ei__http_exchange *x, ei__server *s, const char *model, const char *version) {
  int n = 0;
  ei__srv_code code = EI_SRV_OK;
  char err[256] = "";
  ei__srv_model_stats *st = ei__srv_stats_all(s, model, version, &n, &code, err, sizeof err);
  if (!st) {
    respond_code(x, code, err[0] ? err : ei__srv_code_name(code));
    return;
  }
  sb b = {0};
  ei__sb_puts(&b, "{\"model_stats\": [");
  for (int i = 0; i < n; i++) {
    const ei__srv_model_stats *m = &st[i];
    ei__sb_puts(&b, i ? ", {\"name\": " : "{\"name\": ");
    sb_cstr(&b, m->name);
    ei__sb_puts(&b, ", \"version\": ");
    sb_cstr(&b, m->version);
    ei__sb_printf(&b, ", \"last_inference\": %" PRIu64 ", \"inference_count\": %" PRIu64 ", \"execution_count\": %" PRIu64
                  ", \"inference_stats\": {",
              m->last_inference_ms, m->inference_count, m->execution_count);
    put_dur(&b, "success", &m->success);
    ei__sb_puts(&b, ", ");
    put_dur(&b, "fail", &m->fail);
    ei__sb_puts(&b, ", ");
    put_dur(&b, "queue", &m->queue);
    ei__sb_puts(&b, ", ");
    put_dur(&b, "compute_input", &m->compute_input);
    ei__sb_puts(&b, ", ");
    put_dur(&b, "compute_infer", &m->compute_infer);
    ei__sb_puts(&b, ", ");
    put_dur(&b, "compute_output", &m->compute_output);
    ei__sb_puts(&b, "}, \"batch_stats\": [");
    int nb = m->nbatch < 64 ? m->nbatch : 64;
    for (int j = 0; j < nb; j++) {
      const ei__srv_batch_stats *bs = &m->batch[j];
      ei__sb_printf(&b, "%s{\"batch_size\": %" PRIu64 ", ", j ? ", " : "", bs->batch_size);
      put_dur(&b, "compute_input", &bs->compute_input);
      ei__sb_puts(&b, ", ");
      put_dur(&b, "compute_infer", &bs->compute_infer);
      ei__sb_puts(&b, ", ");
      put_dur(&b, "compute_output", &bs->compute_output);
      ei__sb_puts(&b, "}");
    }
    ei__sb_printf(&b, "], \"edgeinfer_loads\": {\"attempts\": %" PRIu64 ", \"failures\": %" PRIu64 ", \"last_error\": ",
              m->load_attempts, m->load_failures);
    sb_cstr(&b, m->load_error);
    ei__sb_puts(&b, "}}");
  }
  ei__sb_puts(&b, "]}");
  free(st);
  respond_sb(x, 200, &b);
}

/* ---- infer and classify (core requests) ---- */
typedef struct call {
  ei__http_exchange *x;
  ei__req *r;
  const ei__rest *rest;
  int aborted;
  size_t json_len;     /* the JSON part of the body */
  int has_binary;      /* Inference-Header-Content-Length was given */
  uint64_t t_received;
  /* the response, built by encode */
  int status;
  char *resp;
  size_t resp_len;
  int resp_binary;     /* JSON header + binary outputs */
  size_t resp_json_len;
} call;

static ei__srv_code rest_decode(ei__req *r);
static void rest_encode(ei__req *r);
static void rest_done(ei__req *r);
static const ei__req_ops rest_ops = {rest_decode, rest_encode, rest_done};
static const ei__req_ops classify_ops = {NULL, rest_encode, rest_done};

static void on_abort(ei__http_exchange *x) {
  call *c = x->handler_data;
  c->aborted = 1;
  ei__req_cancel(c->r);
}

static void rest_done(ei__req *r) {
  call *c = r->transport_data;
  ei__http_exchange *x = c->x;
  if (r->served_version && *r->served_version) x->log_version = r->served_version;
  if (!c->aborted) {
    char ihcl[32];
    ei__http_header h[2];
    int nh = 0;
    if (c->resp_binary) {
      snprintf(ihcl, sizeof ihcl, "%zu", c->resp_json_len);
      h[nh++] = (ei__http_header){"content-type", "application/octet-stream"};
      h[nh++] = (ei__http_header){"inference-header-content-length", ihcl};
    } else
      h[nh++] = (ei__http_header){"content-type", "application/json"};
    if (c->resp)
      ei__http_respond(x, c->status, h, nh, c->resp, c->resp_len, 1, NULL, 0);
    else
      ei__http_respond_error(x, 500, "out of memory building the response");
  } else
    free(c->resp);
  c->resp = NULL;
  ei__http_exchange_release(x);
  ei__req_release(r); /* c lives in the request's arena: last */
}

/* Parses a non-negative decimal (the whole string). -1 when malformed. */
static int64_t parse_u(const char *s) {
  if (!s || !*s) return -1;
  int64_t v = 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9' || v > (INT64_MAX - 9) / 10) return -1;
    v = v * 10 + (*s - '0');
  }
  return v;
}

/* The value of key in a query string (k=5&x=y), copied into out; NULL when absent. */
static const char *query_get(const char *q, const char *key, char *out, size_t outlen) {
  size_t kl = strlen(key);
  while (q && *q) {
    const char *amp = strchr(q, '&');
    size_t len = amp ? (size_t)(amp - q) : strlen(q);
    if (len > kl && !strncmp(q, key, kl) && q[kl] == '=') {
      size_t vl = len - kl - 1;
      if (vl >= outlen) vl = outlen - 1;
      memcpy(out, q + kl + 1, vl);
      out[vl] = 0;
      return out;
    }
    q = amp ? amp + 1 : NULL;
  }
  return NULL;
}

static int media_is(const char *ct, const char *want) {
  size_t n = strlen(want);
  while (ct && (*ct == ' ' || *ct == '\t')) ct++;
  return ct && !strncasecmp(ct, want, n) && (ct[n] == 0 || ct[n] == ';' || ct[n] == ' ');
}

/* Returns 1 when the request was submitted (x is released by done), 0 when it was answered here. */
static int ep_core(ei__http_exchange *x, const ei__rest *rest, const route *rt) {
  int classify = rt->kind == R_CLASSIFY;
  size_t json_len = x->body_len;
  int has_binary = 0;
  int top_k = 0;
  const char *ct = ei__http_header_get(x, "content-type");
  char msg[300];
  if (classify) {
    if (!media_is(ct, "image/jpeg") && !media_is(ct, "image/png")) {
      snprintf(msg, sizeof msg, "classify takes an image/jpeg or image/png body, not '%s'", ct ? ct : "(none)");
      respond_code(x, EI_SRV_MEDIA, msg);
      return 0;
    }
    if (x->body_len == 0) {
      respond_code(x, EI_SRV_INVALID, "classify: the request body (the photo) is empty");
      return 0;
    }
    char kbuf[32];
    if (query_get(x->query, "k", kbuf, sizeof kbuf)) {
      int64_t k = parse_u(kbuf);
      if (k < 1 || k > MAX_TOP_K) {
        snprintf(msg, sizeof msg, "classify: k must be an integer from 1 to %d, not '%s'", MAX_TOP_K, kbuf);
        respond_code(x, EI_SRV_INVALID, msg);
        return 0;
      }
      top_k = (int)k;
    }
  } else {
    const char *ihcl = ei__http_header_get(x, "inference-header-content-length");
    if (ihcl) {
      int64_t n = parse_u(ihcl);
      if (n < 0 || (uint64_t)n > x->body_len) {
        snprintf(msg, sizeof msg, "Inference-Header-Content-Length '%s' is not a length within the body of %zu bytes",
                 ihcl, x->body_len);
        respond_code(x, EI_SRV_INVALID, msg);
        return 0;
      }
      json_len = (size_t)n;
      has_binary = 1;
    }
    if (json_len > rest->max_json_bytes) {
      snprintf(msg, sizeof msg, "the JSON request of %zu bytes is over the limit of %zu bytes (--max-json-bytes; "
                                "large tensors go faster as binary data)", json_len, rest->max_json_bytes);
      respond_code(x, EI_SRV_TOO_LARGE, msg);
      return 0;
    }
    if (json_len == 0) {
      respond_code(x, EI_SRV_INVALID, "the inference request body is empty (a JSON object is expected)");
      return 0;
    }
  }
  ei__req *r = ei__req_new(classify ? EI_REQ_CLASSIFY : EI_REQ_INFER, classify ? &classify_ops : &rest_ops, NULL);
  call *c = r ? ei__req_alloc(r, sizeof *c) : NULL;
  const char *model = r ? ei__req_strdup(r, rt->model, strlen(rt->model)) : NULL;
  const char *version = r ? ei__req_strdup(r, rt->version, strlen(rt->version)) : NULL;
  const char *ctype = r && ct ? ei__req_strdup(r, ct, strlen(ct)) : NULL;
  if (!c || !model || !version || (ct && !ctype)) {
    if (r) ei__req_release(r);
    respond_code(x, EI_SRV_INTERNAL, "out of memory");
    return 0;
  }
  memset(c, 0, sizeof *c);
  c->x = x;
  c->r = r;
  c->rest = rest;
  c->json_len = json_len;
  c->has_binary = has_binary;
  c->t_received = x->t_received ? x->t_received : ei__srv_now_ns();
  r->transport_data = c;
  r->model_name = model;
  r->model_version = version;
  r->body = x->body;
  r->body_len = x->body_len;
  r->content_type = ctype;
  r->top_k = top_k;
  if (!r->t_received) r->t_received = c->t_received;
  x->log_model = model;
  x->log_version = version;
  x->on_abort = on_abort;
  x->handler_data = c;
  ei__srv_submit(rest->srv, r); /* done may run inside: c and x are not touched after this */
  return 1;
}

/* POST /v2/repository/models/M/load|unload: answered when the loader is done (explicit mode). */
typedef struct ctl_x {
  ei__http_exchange *x;
  int aborted;
  char model[128];
} ctl_x;

static void ctl_abort(ei__http_exchange *x) { ((ctl_x *)x->handler_data)->aborted = 1; }

static void ctl_done(void *ud, ei__srv_code code, const char *msg) {
  ctl_x *c = ud;
  ei__http_exchange *x = c->x;
  if (!c->aborted) {
    if (code == EI_SRV_OK) ei__http_respond(x, 200, json_hdr, 1, "{}", 2, 0, NULL, 0);
    else respond_code(x, code, msg && *msg ? msg : ei__srv_code_name(code));
  }
  x->log_model = x->log_version = NULL;
  x->on_abort = NULL;
  x->handler_data = NULL;
  ei__http_exchange_release(x);
  free(c);
}

/* Returns 1 when the answer comes later (ctl_done releases x). */
static int ep_model_control(ei__http_exchange *x, ei__server *s, const route *rt) {
  size_t pl = strlen(x->path);
  int load = !(pl >= 7 && !strcmp(x->path + pl - 7, "/unload")) && !(pl >= 8 && !strcmp(x->path + pl - 8, "/unload/"));
  ctl_x *c = calloc(1, sizeof *c);
  if (!c) {
    respond_code(x, EI_SRV_INTERNAL, "out of memory");
    return 0;
  }
  c->x = x;
  snprintf(c->model, sizeof c->model, "%.127s", rt->model);
  x->handler_data = c;
  x->on_abort = ctl_abort;
  char err[512] = "";
  ei__srv_code code = ei__srv_model_control(s, rt->model, load, ctl_done, c, err, sizeof err);
  if (code != EI_SRV_OK) {
    x->on_abort = NULL;
    x->handler_data = NULL;
    free(c);
    respond_code(x, code, err);
    return 0;
  }
  x->log_model = c->model;
  x->log_version = "";
  return 1;
}

/* GET /metrics: the page is built on libuv's work pool (metrics.c), sent from the loop. */
typedef struct metrics_x {
  ei__http_exchange *x;
  int aborted;
} metrics_x;

static void metrics_abort(ei__http_exchange *x) { ((metrics_x *)x->handler_data)->aborted = 1; }

static void metrics_done(void *ud, ei__prom *p) {
  metrics_x *c = ud;
  ei__http_exchange *x = c->x;
  if (!c->aborted) {
    size_t len = 0;
    const char *text = p ? ei__prom_text(p, &len) : NULL;
    static const ei__http_header h[1] = {{"content-type", "text/plain; version=0.0.4; charset=utf-8"}};
    if (text) ei__http_respond(x, 200, h, 1, text, len, 0, NULL, 0);
    else respond_code(x, EI_SRV_INTERNAL, "out of memory building the metrics page");
  }
  x->on_abort = NULL;
  x->handler_data = NULL;
  ei__http_exchange_release(x);
  ei__prom_free(p);
  free(c);
}

/* Returns 1 when the answer comes later (metrics_done releases x). */
static int ep_metrics(ei__http_exchange *x, ei__server *s) {
  metrics_x *c = calloc(1, sizeof *c);
  if (!c) {
    respond_code(x, EI_SRV_INTERNAL, "out of memory");
    return 0;
  }
  c->x = x;
  x->handler_data = c;
  x->on_abort = metrics_abort;
  if (ei__metrics_scrape(s, metrics_done, c)) {
    x->on_abort = NULL;
    x->handler_data = NULL;
    free(c);
    respond_code(x, EI_SRV_INTERNAL, "cannot queue the metrics page");
    return 0;
  }
  return 1;
}

static int ends_with(const char *s, const char *tail) {
  size_t n = strlen(s), t = strlen(tail);
  return n >= t && !strcmp(s + n - t, tail);
}

void ei__rest_early(const ei__http_exchange *x, void *ud) {
  const ei__rest *rest = ud;
  if (x->method && x->path && !strcmp(x->method, "POST") && !strncmp(x->path, "/v2/models/", 11) &&
      (ends_with(x->path, "/infer") || ends_with(x->path, "/classify")))
    ei__srv_expect(rest->srv);
}

void ei__rest_handle(ei__http_exchange *x, void *ud) {
  const ei__rest *rest = ud;
  ei__server *s = rest->srv;
  char path[1024];
  route rt;
  if (strlen(x->path) >= sizeof path) {
    respond_code(x, EI_SRV_NOT_FOUND, "no such endpoint (path too long)");
    ei__http_exchange_release(x);
    return;
  }
  strcpy(path, x->path);
  int kind = route_parse(path, &rt);
  x->log_model = rt.model;
  x->log_version = rt.version;
  if (kind == R_NONE) {
    char msg[300];
    snprintf(msg, sizeof msg, "no such endpoint: %.200s", x->path);
    respond_code(x, EI_SRV_NOT_FOUND, msg);
  } else if (strcmp(x->method, route_method(kind))) {
    char msg[200];
    snprintf(msg, sizeof msg, "method %.16s is not allowed on this endpoint (use %s)", x->method, route_method(kind));
    sb b = {0}; /* the body of respond_error, with an Allow header */
    ei__sb_puts(&b, "{\"error\": ");
    sb_cstr(&b, msg);
    ei__sb_puts(&b, "}");
    ei__http_header h[2] = {{"content-type", "application/json"}, {"allow", route_method(kind)}};
    if (!b.oom)
      ei__http_respond(x, 405, h, 2, b.p, b.n, 1, NULL, 0);
    else {
      free(b.p);
      ei__http_respond_error(x, 405, msg);
    }
  } else {
    switch (kind) {
    case R_SERVER_META: ep_server_meta(x, s); break;
    case R_LIVE: ep_health(x, s, 0); break;
    case R_READY: ep_health(x, s, 1); break;
    case R_INDEX: ep_index(x, s); break;
    case R_MODEL_CONTROL:
      if (ep_model_control(x, s, &rt)) return; /* answered and released in ctl_done */
      break;
    case R_STATS_ALL: ep_stats(x, s, NULL, NULL); break;
    case R_STATS: ep_stats(x, s, rt.model, rt.version); break;
    case R_MODEL_META: ep_model_meta(x, s, &rt); break;
    case R_MODEL_READY: ep_model_ready(x, s, &rt); break;
    case R_METRICS:
      if (ep_metrics(x, s)) return; /* answered and released in metrics_done */
      break;
    case R_INFER:
    case R_CLASSIFY:
      if (ep_core(x, rest, &rt)) return; /* submitted: released in done */
      break;
    }
  }
  x->log_model = x->log_version = NULL; /* they pointed into path[] */
  ei__http_exchange_release(x);
}

/* ---- decode (service thread) ---- */
static uint16_t f32_to_f16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000, mant = x & 0x7fffff;
  int32_t exp = (int32_t)((x >> 23) & 0xff);
  if (exp == 0xff) return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 : 0));
  exp = exp - 127 + 15;
  if (exp >= 0x1f) return (uint16_t)(sign | 0x7c00);
  if (exp <= 0) {
    if (exp < -10) return (uint16_t)sign;
    mant |= 0x800000;
    uint32_t shift = (uint32_t)(14 - exp);
    uint32_t half = mant >> shift, rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) half++;
    return (uint16_t)(sign | half);
  }
  uint32_t h = sign | ((uint32_t)exp << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
  return (uint16_t)h;
}

static float f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, x;
  if (exp == 0) {
    if (!mant)
      x = sign;
    else {
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) {
        mant <<= 1;
        exp--;
      }
      x = sign | (exp << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 0x1f)
    x = sign | 0x7f800000 | (mant << 13);
  else
    x = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  float f;
  memcpy(&f, &x, 4);
  return f;
}

typedef struct conv {
  ei__req *r;
  const char *name;
  ei__ks_dtype dt;
  uint8_t *dst;
  size_t off, cap;
  int64_t index;
  int bad;
} conv;

static int64_t count_leaves(const json_t *v) {
  if (!json_is_array(v)) return 1;
  int64_t n = 0;
  for (size_t i = 0; i < json_array_size(v); i++) n += count_leaves(json_array_get(v, i));
  return n;
}

static size_t bytes_size(const json_t *v) { /* BYTES: 4 + length of each string leaf (0 for non-strings) */
  if (!json_is_array(v)) return 4 + (json_is_string(v) ? json_string_length(v) : 0);
  size_t n = 0;
  for (size_t i = 0; i < json_array_size(v); i++) n += bytes_size(json_array_get(v, i));
  return n;
}

static void conv_fail(conv *c, const char *want) {
  if (!c->bad)
    ei__req_fail(c->r, EI_SRV_INVALID, "input '%s': element %" PRId64 " of \"data\" is not %s", c->name, c->index,
                 want);
  c->bad = 1;
}

static void put_le(uint8_t *p, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void conv_leaf(conv *c, const json_t *v) {
  uint8_t *p = c->dst + c->off;
  size_t es = ei__ks_dtype_size(c->dt);
  switch (c->dt) {
  case EI_KS_BOOL:
    if (!json_is_boolean(v)) return conv_fail(c, "a boolean");
    *p = json_is_true(v) ? 1 : 0;
    break;
  case EI_KS_UINT8: case EI_KS_UINT16: case EI_KS_UINT32: case EI_KS_UINT64: {
    if (!json_is_integer(v)) return conv_fail(c, "an integer");
    json_int_t x = json_integer_value(v);
    uint64_t max = es == 8 ? UINT64_MAX : ((uint64_t)1 << (8 * es)) - 1;
    if (x < 0 || (uint64_t)x > max) return conv_fail(c, "in the datatype's range");
    put_le(p, (uint64_t)x, es);
    break;
  }
  case EI_KS_INT8: case EI_KS_INT16: case EI_KS_INT32: case EI_KS_INT64: {
    if (!json_is_integer(v)) return conv_fail(c, "an integer");
    json_int_t x = json_integer_value(v);
    if (es < 8) {
      int64_t lim = (int64_t)1 << (8 * es - 1);
      if (x < -lim || x >= lim) return conv_fail(c, "in the datatype's range");
    }
    put_le(p, (uint64_t)(int64_t)x, es);
    break;
  }
  case EI_KS_FP16: {
    if (!json_is_number(v)) return conv_fail(c, "a number");
    put_le(p, f32_to_f16((float)json_number_value(v)), 2);
    break;
  }
  case EI_KS_FP32: {
    if (!json_is_number(v)) return conv_fail(c, "a number");
    float f = (float)json_number_value(v);
    memcpy(p, &f, 4);
    break;
  }
  case EI_KS_FP64: {
    if (!json_is_number(v)) return conv_fail(c, "a number");
    double d = json_number_value(v);
    memcpy(p, &d, 8);
    break;
  }
  case EI_KS_BYTES: {
    if (!json_is_string(v)) return conv_fail(c, "a string");
    size_t n = json_string_length(v);
    put_le(p, n, 4);
    memcpy(p + 4, json_string_value(v), n);
    c->off += 4 + n;
    c->index++;
    return;
  }
  default:
    return conv_fail(c, "convertible");
  }
  c->off += es;
  c->index++;
}

static void conv_walk(conv *c, const json_t *v) {
  if (c->bad) return;
  if (!json_is_array(v)) {
    conv_leaf(c, v);
    return;
  }
  for (size_t i = 0; i < json_array_size(v) && !c->bad; i++) conv_walk(c, json_array_get(v, i));
}

static const char *jstr(ei__req *r, const json_t *v) {
  return ei__req_strdup(r, json_string_value(v), json_string_length(v));
}

static ei__srv_code decode_input(ei__req *r, call *cl, const json_t *in, int i, ei__ks_tensor *t, size_t *boff) {
  if (!json_is_object(in)) return ei__req_fail(r, EI_SRV_INVALID, "inputs[%d] is not an object", i);
  const json_t *name = json_object_get(in, "name"), *dt = json_object_get(in, "datatype"),
               *shape = json_object_get(in, "shape"), *params = json_object_get(in, "parameters"),
               *data = json_object_get(in, "data");
  if (!json_is_string(name)) return ei__req_fail(r, EI_SRV_INVALID, "inputs[%d]: \"name\" (a string) is missing", i);
  if (!(t->name = jstr(r, name))) return ei__req_fail(r, EI_SRV_INTERNAL, "out of memory");
  if (!json_is_string(dt))
    return ei__req_fail(r, EI_SRV_INVALID, "input '%s': \"datatype\" (a string) is missing", t->name);
  if ((t->dtype = ei__ks_dtype_parse(json_string_value(dt))) == EI_KS_INVALID)
    return ei__req_fail(r, EI_SRV_INVALID, "input '%s': unknown datatype '%.32s'", t->name, json_string_value(dt));
  if (!json_is_array(shape))
    return ei__req_fail(r, EI_SRV_INVALID, "input '%s': \"shape\" (an array of integers) is missing", t->name);
  if (json_array_size(shape) > EI_KS_MAX_RANK)
    return ei__req_fail(r, EI_SRV_INVALID, "input '%s': shape has %zu dimensions, at most %d are supported", t->name,
                        json_array_size(shape), EI_KS_MAX_RANK);
  t->rank = (int)json_array_size(shape);
  int64_t numel = 1;
  int over = 0;
  for (int d = 0; d < t->rank; d++) {
    const json_t *v = json_array_get(shape, (size_t)d);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
      return ei__req_fail(r, EI_SRV_INVALID, "input '%s': shape[%d] is not a non-negative integer", t->name, d);
    t->shape[d] = json_integer_value(v);
    if (t->shape[d] && numel > INT64_MAX / t->shape[d]) over = 1;
    else numel *= t->shape[d];
  }
  if (over) numel = INT64_MAX;
  const json_t *bds = params ? json_object_get(params, "binary_data_size") : NULL;
  if (params && !json_is_object(params))
    return ei__req_fail(r, EI_SRV_INVALID, "input '%s': \"parameters\" is not an object", t->name);
  if (bds) {
    if (!json_is_integer(bds) || json_integer_value(bds) < 0)
      return ei__req_fail(r, EI_SRV_INVALID, "input '%s': binary_data_size is not a non-negative integer", t->name);
    if (data) return ei__req_fail(r, EI_SRV_INVALID, "input '%s' has both \"data\" and binary_data_size", t->name);
    if (!cl->has_binary)
      return ei__req_fail(r, EI_SRV_INVALID,
                          "input '%s' has binary_data_size but the request has no Inference-Header-Content-Length header",
                          t->name);
    uint64_t n = (uint64_t)json_integer_value(bds);
    if (n > r->body_len - *boff)
      return ei__req_fail(r, EI_SRV_INVALID,
                          "truncated binary data: input '%s' needs %" PRIu64 " bytes at offset %zu, the body has %zu",
                          t->name, n, *boff, r->body_len);
    t->data = r->body + *boff;
    t->nbytes = (size_t)n;
    *boff += (size_t)n;
    if (t->dtype == EI_KS_BYTES) { /* check the elements' framing */
      size_t o = 0;
      int64_t k = 0;
      const uint8_t *p = t->data;
      while (o < t->nbytes) {
        if (t->nbytes - o < 4) break;
        uint32_t len = (uint32_t)p[o] | (uint32_t)p[o + 1] << 8 | (uint32_t)p[o + 2] << 16 | (uint32_t)p[o + 3] << 24;
        if (len > t->nbytes - o - 4) break;
        o += 4 + len;
        k++;
      }
      if (o != t->nbytes || k != numel)
        return ei__req_fail(r, EI_SRV_INVALID,
                            "input '%s': BYTES binary data is not %" PRId64 " length-prefixed elements", t->name, numel);
    }
    return EI_SRV_OK;
  }
  if (!data) return ei__req_fail(r, EI_SRV_INVALID, "input '%s': \"data\" is missing", t->name);
  if (t->dtype == EI_KS_BF16)
    return ei__req_fail(r, EI_SRV_INVALID, "input '%s': BF16 data must be sent as binary data", t->name);
  int64_t leaves = count_leaves(data);
  if (leaves != numel)
    return ei__req_fail(r, EI_SRV_INVALID, "input '%s': \"data\" has %" PRId64 " elements, shape needs %" PRId64,
                        t->name, leaves, numel);
  size_t bytes = t->dtype == EI_KS_BYTES ? bytes_size(data) : (size_t)leaves * ei__ks_dtype_size(t->dtype);
  conv c = {r, t->name, t->dtype, NULL, 0, bytes, 0, 0};
  if (bytes && !(c.dst = ei__req_alloc(r, bytes)))
    return ei__req_fail(r, EI_SRV_INTERNAL, "out of memory for input '%s'", t->name);
  conv_walk(&c, data);
  if (c.bad) return r->code;
  t->data = c.dst;
  t->nbytes = c.off;
  return EI_SRV_OK;
}

static ei__srv_code decode_outputs(ei__req *r, const json_t *outs) {
  if (!json_is_array(outs)) return ei__req_fail(r, EI_SRV_INVALID, "\"outputs\" is not an array");
  size_t n = json_array_size(outs);
  if (n > MAX_IO) return ei__req_fail(r, EI_SRV_INVALID, "%zu outputs requested, at most %d", n, MAX_IO);
  if (!n) return EI_SRV_OK;
  r->outputs = ei__req_alloc(r, sizeof *r->outputs * n);
  if (!r->outputs) return ei__req_fail(r, EI_SRV_INTERNAL, "out of memory");
  memset(r->outputs, 0, sizeof *r->outputs * n);
  for (size_t i = 0; i < n; i++) {
    const json_t *o = json_array_get(outs, i), *name = json_object_get(o, "name");
    ei__ks_output_req *q = &r->outputs[i];
    if (!json_is_object(o) || !json_is_string(name))
      return ei__req_fail(r, EI_SRV_INVALID, "outputs[%zu] is not an object with a \"name\"", i);
    if (!(q->name = jstr(r, name))) return ei__req_fail(r, EI_SRV_INTERNAL, "out of memory");
    const json_t *p = json_object_get(o, "parameters");
    if (p && !json_is_object(p))
      return ei__req_fail(r, EI_SRV_INVALID, "output '%s': \"parameters\" is not an object", q->name);
    const json_t *bd = p ? json_object_get(p, "binary_data") : NULL, *cls = p ? json_object_get(p, "classification") : NULL;
    if (bd && !json_is_boolean(bd))
      return ei__req_fail(r, EI_SRV_INVALID, "output '%s': binary_data is not a boolean", q->name);
    q->binary = bd && json_is_true(bd);
    if (cls) {
      if (!json_is_integer(cls) || json_integer_value(cls) < 1 || json_integer_value(cls) > MAX_TOP_K)
        return ei__req_fail(r, EI_SRV_INVALID, "output '%s': classification must be an integer from 1 to %d", q->name,
                            MAX_TOP_K);
      q->classification = (int)json_integer_value(cls);
    }
  }
  r->noutputs = (int)n;
  return EI_SRV_OK;
}

static ei__srv_code decode_json(ei__req *r, call *cl, const json_t *root) {
  if (!json_is_object(root)) return ei__req_fail(r, EI_SRV_INVALID, "the inference request must be a JSON object");
  const json_t *id = json_object_get(root, "id"), *params = json_object_get(root, "parameters"),
               *inputs = json_object_get(root, "inputs"), *outputs = json_object_get(root, "outputs");
  if (id) {
    if (!json_is_string(id)) return ei__req_fail(r, EI_SRV_INVALID, "\"id\" must be a string");
    if (!(r->id = jstr(r, id))) return ei__req_fail(r, EI_SRV_INTERNAL, "out of memory");
  }
  if (params) {
    if (!json_is_object(params)) return ei__req_fail(r, EI_SRV_INVALID, "\"parameters\" is not an object");
    const json_t *bdo = json_object_get(params, "binary_data_output"), *to = json_object_get(params, "timeout");
    if (bdo && !json_is_boolean(bdo)) return ei__req_fail(r, EI_SRV_INVALID, "binary_data_output is not a boolean");
    r->binary_output = bdo && json_is_true(bdo);
    if (to) {
      if (!json_is_integer(to) || json_integer_value(to) < 0)
        return ei__req_fail(r, EI_SRV_INVALID, "parameters.timeout must be a non-negative integer (microseconds)");
      json_int_t us = json_integer_value(to);
      if (us > 0) {
        uint64_t ns = (uint64_t)us > UINT64_MAX / 2000 ? UINT64_MAX / 2 : (uint64_t)us * 1000;
        uint64_t dl = cl->t_received + ns;
        if (!r->deadline_ns || dl < r->deadline_ns) r->deadline_ns = dl;
      }
    }
  }
  if (!json_is_array(inputs) || json_array_size(inputs) == 0)
    return ei__req_fail(r, EI_SRV_INVALID, "\"inputs\" (a non-empty array) is missing");
  size_t n = json_array_size(inputs);
  if (n > MAX_IO) return ei__req_fail(r, EI_SRV_INVALID, "%zu inputs, at most %d", n, MAX_IO);
  r->inputs = ei__req_alloc(r, sizeof *r->inputs * n);
  if (!r->inputs) return ei__req_fail(r, EI_SRV_INTERNAL, "out of memory");
  memset(r->inputs, 0, sizeof *r->inputs * n);
  size_t boff = cl->json_len;
  for (size_t i = 0; i < n; i++) {
    ei__srv_code code = decode_input(r, cl, json_array_get(inputs, i), (int)i, &r->inputs[i], &boff);
    if (code) return code;
  }
  r->ninputs = (int)n;
  if (cl->has_binary && boff != r->body_len)
    return ei__req_fail(r, EI_SRV_INVALID,
                        "the body has %zu bytes of binary data beyond the inputs' binary_data_size (%zu of %zu used)",
                        r->body_len - boff, boff, r->body_len);
  if (outputs) return decode_outputs(r, outputs);
  return EI_SRV_OK;
}

static ei__srv_code rest_decode(ei__req *r) {
  call *cl = r->transport_data;
  json_error_t je;
  json_t *root = json_loadb((const char *)r->body, cl->json_len, 0, &je);
  /* jansson reports a failed allocation as out_of_memory, or (inside the lexer) with no position and no text */
  if (!root && (json_error_code(&je) == json_error_out_of_memory || (je.line < 0 && !je.text[0])))
    return ei__req_fail(r, json_cap ? EI_SRV_EXHAUSTED : EI_SRV_INTERNAL,
                        "out of JSON parsing memory (%zu MiB for all requests in flight): retry, or send tensors as "
                        "binary data", json_cap >> 20);
  if (!root)
    return ei__req_fail(r, EI_SRV_INVALID, "malformed JSON request at line %d column %d: %.160s", je.line, je.column,
                        je.text);
  ei__srv_code code = decode_json(r, cl, root);
  json_decref(root);
  return code;
}

/* ---- encode (executor thread) ---- */
static void put_data(sb *b, const ei__ks_tensor *t) {
  const uint8_t *p = t->data;
  size_t es = ei__ks_dtype_size(t->dtype);
  ei__sb_puts(b, "[");
  if (t->dtype == EI_KS_BYTES) {
    size_t o = 0;
    int first = 1;
    while (p && o + 4 <= t->nbytes) {
      uint32_t len = (uint32_t)p[o] | (uint32_t)p[o + 1] << 8 | (uint32_t)p[o + 2] << 16 | (uint32_t)p[o + 3] << 24;
      if (len > t->nbytes - o - 4) break;
      if (!first) ei__sb_puts(b, ", ");
      first = 0;
      sb_str(b, (const char *)p + o + 4, len);
      o += 4 + len;
    }
    ei__sb_puts(b, "]");
    return;
  }
  size_t n = es ? t->nbytes / es : 0;
  /* a rough reservation: at most ~26 characters an element */
  ei__sb_grow(b, n * 26 < ((size_t)1 << 30) ? n * 26 : 0);
  for (size_t i = 0; i < n && !b->oom; i++) {
    const uint8_t *e = p + i * es;
    char tmp[40];
    int k = 0;
    if (i) ei__sb_put(b, ", ", 2);
    switch (t->dtype) {
    case EI_KS_BOOL: ei__sb_puts(b, *e ? "true" : "false"); continue;
    case EI_KS_UINT8: k = snprintf(tmp, sizeof tmp, "%u", *e); break;
    case EI_KS_INT8: k = snprintf(tmp, sizeof tmp, "%d", *(const int8_t *)e); break;
    case EI_KS_UINT16: { uint16_t v; memcpy(&v, e, 2); k = snprintf(tmp, sizeof tmp, "%u", v); break; }
    case EI_KS_INT16: { int16_t v; memcpy(&v, e, 2); k = snprintf(tmp, sizeof tmp, "%d", v); break; }
    case EI_KS_UINT32: { uint32_t v; memcpy(&v, e, 4); k = snprintf(tmp, sizeof tmp, "%" PRIu32, v); break; }
    case EI_KS_INT32: { int32_t v; memcpy(&v, e, 4); k = snprintf(tmp, sizeof tmp, "%" PRId32, v); break; }
    case EI_KS_UINT64: { uint64_t v; memcpy(&v, e, 8); k = snprintf(tmp, sizeof tmp, "%" PRIu64, v); break; }
    case EI_KS_INT64: { int64_t v; memcpy(&v, e, 8); k = snprintf(tmp, sizeof tmp, "%" PRId64, v); break; }
    case EI_KS_FP16: { uint16_t v; memcpy(&v, e, 2); put_f64(b, f16_to_f32(v), 9); continue; }
    case EI_KS_BF16: { uint16_t v; memcpy(&v, e, 2); uint32_t x = (uint32_t)v << 16; float f; memcpy(&f, &x, 4);
                       put_f64(b, f, 9); continue; }
    case EI_KS_FP32: { float v; memcpy(&v, e, 4); put_f64(b, v, 9); continue; }
    case EI_KS_FP64: { double v; memcpy(&v, e, 8); put_f64(b, v, 17); continue; }
    default: ei__sb_puts(b, "null"); continue;
    }
    ei__sb_put(b, tmp, (size_t)k);
  }
  ei__sb_puts(b, "]");
}

static void encode_error(call *c, ei__req *r) {
  ei__srv_code code = r->code ? r->code : EI_SRV_INTERNAL;
  sb b = {0};
  ei__sb_puts(&b, "{\"error\": ");
  sb_cstr(&b, r->error[0] ? r->error : ei__srv_code_name(code));
  ei__sb_puts(&b, "}");
  c->status = ei__srv_http_status(code);
  if (c->status == 499) c->status = 500; /* never sent: the client is gone */
  c->resp = b.oom ? (free(b.p), NULL) : b.p;
  c->resp_len = b.n;
}

static void rest_encode(ei__req *r) {
  call *c = r->transport_data;
  if (r->code != EI_SRV_OK) {
    encode_error(c, r);
    return;
  }
  sb b = {0};
  ei__sb_puts(&b, "{\"model_name\": ");
  sb_cstr(&b, r->model_name);
  ei__sb_puts(&b, ", \"model_version\": ");
  sb_cstr(&b, r->served_version ? r->served_version : r->model_version);
  if (r->kind == EI_REQ_CLASSIFY) {
    ei__sb_puts(&b, ", \"classes\": [");
    for (int i = 0; i < r->nclasses; i++) {
      ei__sb_printf(&b, "%s{\"index\": %d, \"label\": ", i ? ", " : "", r->classes[i].index);
      if (r->classes[i].label)
        sb_cstr(&b, r->classes[i].label);
      else
        ei__sb_puts(&b, "null");
      ei__sb_puts(&b, ", \"score\": ");
      put_f64(&b, r->classes[i].score, 9);
      ei__sb_puts(&b, "}");
    }
    ei__sb_puts(&b, "]}");
  } else {
    if (r->id) {
      ei__sb_puts(&b, ", \"id\": ");
      sb_cstr(&b, r->id);
    }
    ei__sb_puts(&b, ", \"outputs\": [");
    int any_binary = 0;
    for (int i = 0; i < r->nresults; i++) {
      const ei__ks_result *res = &r->results[i];
      const ei__ks_tensor *t = &res->t;
      ei__sb_puts(&b, i ? ", {\"name\": " : "{\"name\": ");
      sb_cstr(&b, t->name);
      ei__sb_puts(&b, ", \"datatype\": ");
      sb_cstr(&b, ei__ks_dtype_name(t->dtype));
      ei__sb_puts(&b, ", \"shape\": [");
      for (int d = 0; d < t->rank; d++) ei__sb_printf(&b, "%s%" PRId64, d ? ", " : "", t->shape[d]);
      ei__sb_puts(&b, "]");
      if (res->binary || r->binary_output) {
        any_binary = 1;
        ei__sb_printf(&b, ", \"parameters\": {\"binary_data_size\": %zu}}", t->nbytes);
      } else {
        ei__sb_puts(&b, ", \"data\": ");
        put_data(&b, t);
        ei__sb_puts(&b, "}");
      }
    }
    ei__sb_puts(&b, "]}");
    if (any_binary) {
      c->resp_binary = 1;
      c->resp_json_len = b.n;
      for (int i = 0; i < r->nresults; i++)
        if (r->results[i].binary || r->binary_output) ei__sb_put(&b, r->results[i].t.data, r->results[i].t.nbytes);
    }
  }
  if (b.oom) {
    free(b.p);
    ei__req_fail(r, EI_SRV_INTERNAL, "out of memory building the response");
    c->resp_binary = 0;
    encode_error(c, r);
    return;
  }
  c->status = 200;
  c->resp = b.p;
  c->resp_len = b.n;
}
