/* src/server/grpc.c: inference.GRPCInferenceService over one HTTP/2 exchange (see grpc.h for the way of a call). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "grpc.h"
#include "grpc_service.pb-c.h"
#include "server.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "grpc.c hands the host's tensors out as little-endian raw contents"
#endif

#define RPC_PREFIX "/inference.GRPCInferenceService/"
#define ERRMSG_MAX 1024 /* grpc-message: at most this many bytes of the message before encoding */

typedef enum rpc_id {
  RPC_SERVER_LIVE,
  RPC_SERVER_READY,
  RPC_MODEL_READY,
  RPC_SERVER_METADATA,
  RPC_MODEL_METADATA,
  RPC_MODEL_INFER,
  RPC_MODEL_STREAM_INFER,
  RPC_MODEL_CONFIG,
  RPC_MODEL_STATISTICS,
  RPC_REPOSITORY_INDEX,
  RPC_REPOSITORY_MODEL_LOAD,
  RPC_REPOSITORY_MODEL_UNLOAD,
  RPC_COUNT
} rpc_id;

static const char *const rpc_names[RPC_COUNT] = {
    [RPC_SERVER_LIVE] = "ServerLive",
    [RPC_SERVER_READY] = "ServerReady",
    [RPC_MODEL_READY] = "ModelReady",
    [RPC_SERVER_METADATA] = "ServerMetadata",
    [RPC_MODEL_METADATA] = "ModelMetadata",
    [RPC_MODEL_INFER] = "ModelInfer",
    [RPC_MODEL_STREAM_INFER] = "ModelStreamInfer",
    [RPC_MODEL_CONFIG] = "ModelConfig",
    [RPC_MODEL_STATISTICS] = "ModelStatistics",
    [RPC_REPOSITORY_INDEX] = "RepositoryIndex",
    [RPC_REPOSITORY_MODEL_LOAD] = "RepositoryModelLoad",
    [RPC_REPOSITORY_MODEL_UNLOAD] = "RepositoryModelUnload",
};

/* gRPC status codes used here (besides ei__srv_grpc_status). */
enum { GRPC_OK = 0, GRPC_INVALID_ARGUMENT = 3, GRPC_NOT_FOUND = 5, GRPC_RESOURCE_EXHAUSTED = 8,
       GRPC_UNIMPLEMENTED = 12, GRPC_INTERNAL = 13, GRPC_UNAVAILABLE = 14 };

/* ---------------------------------------------------------------------------------------------------------- */
/* wire helpers                                                                                               */

int ei__grpc_parse_timeout(const char *s, uint64_t *ns) {
  if (!s) return -1;
  size_t n = strlen(s);
  if (n < 2 || n > 9) return -1;
  uint64_t v = 0;
  for (size_t i = 0; i + 1 < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  uint64_t unit;
  switch (s[n - 1]) {
  case 'H': unit = 3600ull * 1000000000ull; break;
  case 'M': unit = 60ull * 1000000000ull; break;
  case 'S': unit = 1000000000ull; break;
  case 'm': unit = 1000000ull; break;
  case 'u': unit = 1000ull; break;
  case 'n': unit = 1ull; break;
  default: return -1;
  }
  const uint64_t cap = 1ull << 62;
  *ns = v > cap / unit ? cap : v * unit;
  return 0;
}

size_t ei__grpc_percent_encode(const char *s, char *out, size_t cap) {
  static const char hex[] = "0123456789ABCDEF";
  size_t o = 0;
  for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
    if (*p >= 0x20 && *p <= 0x7e && *p != '%') {
      if (o + 1 >= cap) break;
      out[o++] = (char)*p;
    } else {
      if (o + 3 >= cap) break;
      out[o++] = '%';
      out[o++] = hex[*p >> 4];
      out[o++] = hex[*p & 15];
    }
  }
  out[o] = 0;
  return o;
}

static void put_prefix(uint8_t *b, size_t len) {
  b[0] = 0;
  b[1] = (uint8_t)(len >> 24);
  b[2] = (uint8_t)(len >> 16);
  b[3] = (uint8_t)(len >> 8);
  b[4] = (uint8_t)len;
}

static const ei__http_header grpc_ct[] = {{"content-type", "application/grpc"}};

/* A trailers-only response: :status 200, content-type, grpc-status, grpc-message. */
static void send_status(ei__http_exchange *x, int status, const char *msg) {
  char code[16], enc[ERRMSG_MAX * 3 + 1], cut[ERRMSG_MAX + 1];
  snprintf(code, sizeof code, "%d", status);
  snprintf(cut, sizeof cut, "%s", msg ? msg : "");
  ei__grpc_percent_encode(cut, enc, sizeof enc);
  ei__http_header t[2] = {{"grpc-status", code}, {"grpc-message", enc}};
  ei__http_respond(x, 200, grpc_ct, 1, NULL, 0, 0, t, enc[0] ? 2 : 1);
}

static void send_statusf(ei__http_exchange *x, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void send_statusf(ei__http_exchange *x, int status, const char *fmt, ...) {
  char msg[ERRMSG_MAX + 1];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  send_status(x, status, msg);
}

/* A framed message (5-byte prefix + protobuf, malloc'ed; the transport frees it) and grpc-status 0. */
static void send_framed(ei__http_exchange *x, uint8_t *framed, size_t len) {
  static const ei__http_header ok[] = {{"grpc-status", "0"}};
  ei__http_respond(x, 200, grpc_ct, 1, framed, len, 1, ok, 1);
}

/* Packs m behind a gRPC prefix and sends it (loop thread). */
static void send_message(ei__http_exchange *x, const ProtobufCMessage *m) {
  size_t n = protobuf_c_message_get_packed_size(m);
  if (n > UINT32_MAX) {
    send_statusf(x, GRPC_INTERNAL, "response of %zu bytes exceeds the gRPC message limit", n);
    return;
  }
  uint8_t *b = malloc(5 + n);
  if (!b) {
    send_statusf(x, GRPC_INTERNAL, "out of memory for a %zu-byte response", n);
    return;
  }
  put_prefix(b, n);
  protobuf_c_message_pack(m, b + 5);
  send_framed(x, b, 5 + n);
}

static void http_fail(ei__http_exchange *x, int status, const char *msg) {
  static const ei__http_header h[] = {{"content-type", "text/plain"}};
  size_t n = strlen(msg);
  ei__http_respond(x, status, h, 1, msg, n, 0, NULL, 0);
}

/* ---------------------------------------------------------------------------------------------------------- */
/* scratch memory of the control RPCs (loop thread): every block freed together                              */

typedef struct scratch_block {
  struct scratch_block *next;
  max_align_t data[];
} scratch_block;

typedef struct scratch {
  scratch_block *head;
} scratch;

static void *sc_alloc(scratch *s, size_t n) {
  if (n > SIZE_MAX / 2) return NULL;
  scratch_block *b = calloc(1, sizeof *b + n);
  if (!b) return NULL;
  b->next = s->head;
  s->head = b;
  return b->data;
}

static void sc_free(scratch *s) {
  while (s->head) {
    scratch_block *n = s->head->next;
    free(s->head);
    s->head = n;
  }
}

/* ---------------------------------------------------------------------------------------------------------- */
/* control RPCs (answered on the loop thread)                                                                */

static ProtobufCMessage *unpack_control(ei__http_exchange *x, const ProtobufCMessageDescriptor *d,
                                        const uint8_t *msg, size_t len) {
  if (len > EI_GRPC_CONTROL_MAX) {
    send_statusf(x, GRPC_RESOURCE_EXHAUSTED, "%s of %zu bytes: this request is limited to %d bytes", d->name, len,
                 EI_GRPC_CONTROL_MAX);
    return NULL;
  }
  ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, msg);
  if (!m) send_statusf(x, GRPC_INVALID_ARGUMENT, "malformed %s: the message is not valid protobuf", d->name);
  return m;
}

static void rpc_live_ready(ei__http_exchange *x, ei__server *s, rpc_id id, const uint8_t *msg, size_t len) {
  if (id == RPC_SERVER_LIVE) {
    ProtobufCMessage *m = unpack_control(x, &inference__server_live_request__descriptor, msg, len);
    if (!m) return;
    protobuf_c_message_free_unpacked(m, NULL);
    Inference__ServerLiveResponse r = INFERENCE__SERVER_LIVE_RESPONSE__INIT;
    r.live = ei__srv_live(s) != 0;
    send_message(x, &r.base);
  } else {
    ProtobufCMessage *m = unpack_control(x, &inference__server_ready_request__descriptor, msg, len);
    if (!m) return;
    protobuf_c_message_free_unpacked(m, NULL);
    Inference__ServerReadyResponse r = INFERENCE__SERVER_READY_RESPONSE__INIT;
    r.ready = ei__srv_ready(s) != 0;
    send_message(x, &r.base);
  }
}

/* ModelReady: as Triton, an unknown model or version is "not ready", not an error. */
static void rpc_model_ready(ei__http_exchange *x, ei__server *s, const uint8_t *msg, size_t len) {
  Inference__ModelReadyRequest *q =
      (Inference__ModelReadyRequest *)unpack_control(x, &inference__model_ready_request__descriptor, msg, len);
  if (!q) return;
  char err[256];
  Inference__ModelReadyResponse r = INFERENCE__MODEL_READY_RESPONSE__INIT;
  if (!q->name[0]) {
    send_status(x, GRPC_INVALID_ARGUMENT, "ModelReadyRequest.name is empty");
    goto done;
  }
  r.ready = ei__srv_model_ready(s, q->name, q->version, err, sizeof err) == EI_SRV_OK;
  send_message(x, &r.base);
done:
  protobuf_c_message_free_unpacked(&q->base, NULL);
}

static void rpc_server_metadata(ei__http_exchange *x, ei__server *s, const uint8_t *msg, size_t len) {
  ProtobufCMessage *m = unpack_control(x, &inference__server_metadata_request__descriptor, msg, len);
  if (!m) return;
  protobuf_c_message_free_unpacked(m, NULL);
  int n = 0;
  const char *const *ext = ei__srv_extensions(s, &n);
  Inference__ServerMetadataResponse r = INFERENCE__SERVER_METADATA_RESPONSE__INIT;
  r.name = (char *)"edgeinfer";
  r.version = (char *)EI_VERSION_STRING;
  r.n_extensions = ext && n > 0 ? (size_t)n : 0;
  r.extensions = (char **)ext;
  send_message(x, &r.base);
}

static Inference__ModelMetadataResponse__TensorMetadata **meta_tensors(scratch *sc, const ei__ks_tensor *t, int n) {
  Inference__ModelMetadataResponse__TensorMetadata **v = sc_alloc(sc, (size_t)(n > 0 ? n : 1) * sizeof *v);
  if (!v) return NULL;
  for (int i = 0; i < n; i++) {
    Inference__ModelMetadataResponse__TensorMetadata *m = sc_alloc(sc, sizeof *m);
    int64_t *shape = sc_alloc(sc, (size_t)(t[i].rank > 0 ? t[i].rank : 1) * sizeof *shape);
    if (!m || !shape) return NULL;
    inference__model_metadata_response__tensor_metadata__init(m);
    m->name = (char *)(t[i].name ? t[i].name : "");
    m->datatype = (char *)ei__ks_dtype_name(t[i].dtype);
    m->n_shape = t[i].rank > 0 ? (size_t)t[i].rank : 0;
    for (int d = 0; d < t[i].rank; d++) shape[d] = t[i].shape[d];
    m->shape = shape;
    v[i] = m;
  }
  return v;
}

static void rpc_model_metadata(ei__http_exchange *x, ei__server *s, const uint8_t *msg, size_t len) {
  Inference__ModelMetadataRequest *q =
      (Inference__ModelMetadataRequest *)unpack_control(x, &inference__model_metadata_request__descriptor, msg, len);
  if (!q) return;
  scratch sc = {0};
  ei__srv_meta meta;
  int have_meta = 0;
  char err[256];
  if (!q->name[0]) {
    send_status(x, GRPC_INVALID_ARGUMENT, "ModelMetadataRequest.name is empty");
    goto done;
  }
  ei__srv_code c = ei__srv_model_meta(s, q->name, q->version, &meta, err, sizeof err);
  if (c != EI_SRV_OK) {
    send_status(x, ei__srv_grpc_status(c), err);
    goto done;
  }
  have_meta = 1;
  Inference__ModelMetadataResponse r = INFERENCE__MODEL_METADATA_RESPONSE__INIT;
  r.name = (char *)meta.name;
  r.n_versions = meta.nversions > 0 ? (size_t)meta.nversions : 0;
  r.versions = (char **)meta.versions;
  r.platform = (char *)(meta.platform ? meta.platform : "");
  r.inputs = meta_tensors(&sc, meta.inputs, meta.ninputs);
  r.outputs = meta_tensors(&sc, meta.outputs, meta.noutputs);
  if (!r.inputs || !r.outputs) {
    send_status(x, GRPC_INTERNAL, "out of memory building the model metadata");
    goto done;
  }
  r.n_inputs = (size_t)meta.ninputs;
  r.n_outputs = (size_t)meta.noutputs;
  send_message(x, &r.base);
done:
  if (have_meta) ei__srv_meta_release(&meta);
  sc_free(&sc);
  protobuf_c_message_free_unpacked(&q->base, NULL);
}

static Inference__StatisticDuration *duration(scratch *sc, ei__srv_duration d) {
  Inference__StatisticDuration *v = sc_alloc(sc, sizeof *v);
  if (!v) return NULL;
  inference__statistic_duration__init(v);
  v->count = d.count;
  v->ns = d.ns;
  return v;
}

static void rpc_model_statistics(ei__http_exchange *x, ei__server *s, const uint8_t *msg, size_t len) {
  Inference__ModelStatisticsRequest *q = (Inference__ModelStatisticsRequest *)unpack_control(
      x, &inference__model_statistics_request__descriptor, msg, len);
  if (!q) return;
  scratch sc = {0};
  ei__srv_model_stats *st = NULL;
  char err[256] = "";
  ei__srv_code code = EI_SRV_OK;
  int n = 0;
  if (!(st = ei__srv_stats_all(s, q->name, q->version, &n, &code, err, sizeof err))) {
    send_status(x, ei__srv_grpc_status(code), err[0] ? err : "statistics unavailable");
    goto done;
  }
  Inference__ModelStatisticsResponse r = INFERENCE__MODEL_STATISTICS_RESPONSE__INIT;
  r.model_stats = sc_alloc(&sc, (size_t)(n > 0 ? n : 1) * sizeof *r.model_stats);
  if (!r.model_stats) goto oom;
  for (int i = 0; i < n; i++) {
    const ei__srv_model_stats *a = &st[i];
    Inference__ModelStatistics *m = sc_alloc(&sc, sizeof *m);
    Inference__InferStatistics *is = sc_alloc(&sc, sizeof *is);
    if (!m || !is) goto oom;
    inference__model_statistics__init(m);
    inference__infer_statistics__init(is);
    m->name = (char *)a->name;
    m->version = (char *)a->version;
    m->last_inference = a->last_inference_ms;
    m->inference_count = a->inference_count;
    m->execution_count = a->execution_count;
    if (!(is->success = duration(&sc, a->success)) || !(is->fail = duration(&sc, a->fail)) ||
        !(is->queue = duration(&sc, a->queue)) || !(is->compute_input = duration(&sc, a->compute_input)) ||
        !(is->compute_infer = duration(&sc, a->compute_infer)) ||
        !(is->compute_output = duration(&sc, a->compute_output)))
      goto oom;
    m->inference_stats = is;
    int nb = a->nbatch < 0 ? 0 : a->nbatch > 64 ? 64 : a->nbatch;
    m->batch_stats = sc_alloc(&sc, (size_t)(nb > 0 ? nb : 1) * sizeof *m->batch_stats);
    if (!m->batch_stats) goto oom;
    for (int b = 0; b < nb; b++) {
      Inference__InferBatchStatistics *bs = sc_alloc(&sc, sizeof *bs);
      if (!bs) goto oom;
      inference__infer_batch_statistics__init(bs);
      bs->batch_size = a->batch[b].batch_size;
      if (!(bs->compute_input = duration(&sc, a->batch[b].compute_input)) ||
          !(bs->compute_infer = duration(&sc, a->batch[b].compute_infer)) ||
          !(bs->compute_output = duration(&sc, a->batch[b].compute_output)))
        goto oom;
      m->batch_stats[b] = bs;
    }
    m->n_batch_stats = (size_t)nb;
    r.model_stats[i] = m;
  }
  r.n_model_stats = (size_t)n;
  send_message(x, &r.base);
  goto done;
oom:
  send_status(x, GRPC_INTERNAL, "out of memory building the statistics");
done:
  free(st);
  sc_free(&sc);
  protobuf_c_message_free_unpacked(&q->base, NULL);
}

static void rpc_repository_index(ei__http_exchange *x, ei__server *s, const uint8_t *msg, size_t len) {
  Inference__RepositoryIndexRequest *q = (Inference__RepositoryIndexRequest *)unpack_control(
      x, &inference__repository_index_request__descriptor, msg, len);
  if (!q) return;
  scratch sc = {0};
  int n = 0;
  ei__srv_index_entry *e = ei__srv_index_all(s, q->ready, &n);
  if (!e) goto oom;
  Inference__RepositoryIndexResponse r = INFERENCE__REPOSITORY_INDEX_RESPONSE__INIT;
  r.models = sc_alloc(&sc, (size_t)(n > 0 ? n : 1) * sizeof *r.models);
  if (!r.models) goto oom;
  for (int i = 0; i < n; i++) {
    Inference__RepositoryIndexResponse__ModelIndex *m = sc_alloc(&sc, sizeof *m);
    if (!m) goto oom;
    inference__repository_index_response__model_index__init(m);
    m->name = e[i].name;
    m->version = e[i].version;
    m->state = e[i].state;
    m->reason = e[i].reason;
    r.models[i] = m;
  }
  r.n_models = (size_t)n;
  send_message(x, &r.base);
  goto done;
oom:
  send_status(x, GRPC_INTERNAL, "out of memory building the repository index");
done:
  free(e);
  sc_free(&sc);
  protobuf_c_message_free_unpacked(&q->base, NULL);
}

/* RepositoryModelLoad / RepositoryModelUnload: explicit model control, answered when the loader is done; refused
 * in the other modes (UNIMPLEMENTED, naming the mode). */
typedef struct grpc_ctl {
  ei__http_exchange *x;
  int aborted, load;
} grpc_ctl;

static void grpc_ctl_abort(ei__http_exchange *x) { ((grpc_ctl *)x->handler_data)->aborted = 1; }

static void grpc_ctl_done(void *ud, ei__srv_code code, const char *msg) {
  grpc_ctl *c = ud;
  ei__http_exchange *x = c->x;
  if (!c->aborted) {
    if (code != EI_SRV_OK) {
      send_status(x, ei__srv_grpc_status(code), msg && *msg ? msg : ei__srv_code_name(code));
    } else if (c->load) {
      Inference__RepositoryModelLoadResponse r = INFERENCE__REPOSITORY_MODEL_LOAD_RESPONSE__INIT;
      send_message(x, &r.base);
    } else {
      Inference__RepositoryModelUnloadResponse r = INFERENCE__REPOSITORY_MODEL_UNLOAD_RESPONSE__INIT;
      send_message(x, &r.base);
    }
  }
  x->on_abort = NULL;
  x->handler_data = NULL;
  ei__http_exchange_release(x);
  free(c);
}

/* Returns 1 when the answer comes later (grpc_ctl_done releases x). */
static int rpc_repository_load(ei__http_exchange *x, ei__server *s, rpc_id id, const uint8_t *msg, size_t len) {
  const ProtobufCMessageDescriptor *d = id == RPC_REPOSITORY_MODEL_LOAD
                                            ? &inference__repository_model_load_request__descriptor
                                            : &inference__repository_model_unload_request__descriptor;
  ProtobufCMessage *q = unpack_control(x, d, msg, len);
  if (!q) return 0;
  const char *name = id == RPC_REPOSITORY_MODEL_LOAD ? ((Inference__RepositoryModelLoadRequest *)q)->model_name
                                                     : ((Inference__RepositoryModelUnloadRequest *)q)->model_name;
  int later = 0;
  grpc_ctl *c = NULL;
  if (!name[0]) {
    send_statusf(x, GRPC_INVALID_ARGUMENT, "%s.model_name is empty", d->short_name);
    goto done;
  }
  if (!(c = calloc(1, sizeof *c))) {
    send_status(x, GRPC_INTERNAL, "out of memory");
    goto done;
  }
  c->x = x;
  c->load = id == RPC_REPOSITORY_MODEL_LOAD;
  x->handler_data = c;
  x->on_abort = grpc_ctl_abort;
  char err[512] = "";
  ei__srv_code code = ei__srv_model_control(s, name, c->load, grpc_ctl_done, c, err, sizeof err);
  if (code != EI_SRV_OK) {
    x->on_abort = NULL;
    x->handler_data = NULL;
    free(c);
    send_status(x, ei__srv_grpc_status(code), err);
    goto done;
  }
  later = 1;
done:
  protobuf_c_message_free_unpacked(q, NULL);
  return later;
}

/* ---------------------------------------------------------------------------------------------------------- */
/* ModelInfer                                                                                                 */

typedef struct gcall {
  ei__http_exchange *x;
  ei__req *r;
  int aborted;             /* loop thread: the client is gone */
  uint8_t *resp;           /* encode: the framed response (malloc), handed to the transport in done */
  size_t resp_len;
  ProtobufCAllocator pa;   /* over the request arena, with a budget */
  size_t pa_used, pa_cap;
  int pa_over;
} gcall;

static void *pa_alloc(void *ud, size_t n) {
  gcall *c = ud;
  if (n > c->pa_cap - c->pa_used) {
    c->pa_over = 1;
    return NULL;
  }
  c->pa_used += n;
  return ei__req_alloc(c->r, n ? n : 1);
}

static void pa_free(void *ud, void *p) {
  (void)ud;
  (void)p; /* the arena goes with the request */
}

/* A wire varint at p (< end); returns the bytes read, 0 when malformed. */
static size_t rd_varint(const uint8_t *p, const uint8_t *end, uint64_t *v) {
  uint64_t x = 0;
  for (size_t i = 0; i < 10 && p + i < end; i++) {
    x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
    if (!(p[i] & 0x80)) {
      *v = x;
      return i + 1;
    }
  }
  return 0;
}

/* One field of a message at p (< end): its tag, and for a length-delimited field the value's start *val and
 * length *vlen; *next is where the next field starts. Returns 0, or what is wrong with *at the byte where it is:
 * WF_TAG (no valid tag), WF_VARINT (a bad varint value), WF_LENGTH (a bad length), WF_TRUNC (the value runs past
 * end; *val is still set for a length-delimited field), WF_WIRE (an unknown wire type; *at is the field). */
enum { WF_TAG = 1, WF_VARINT, WF_LENGTH, WF_TRUNC, WF_WIRE };
static int wire_field(const uint8_t *p, const uint8_t *end, uint64_t *tag, const uint8_t **val, size_t *vlen,
                      const uint8_t **next, const uint8_t **at) {
  const uint8_t *field = p;
  uint64_t v;
  size_t l = rd_varint(p, end, tag);
  *at = p;
  if (!l || (*tag >> 3) == 0 || (*tag >> 3) > 0x1fffffff) return WF_TAG;
  p += l;
  *at = p;
  *val = p;
  *vlen = 0;
  switch (*tag & 7) {
  case 0:
    if (!(l = rd_varint(p, end, &v))) return WF_VARINT;
    p += l;
    break;
  case 1:
  case 5: {
    const size_t w = (*tag & 7) == 1 ? 8 : 4;
    if ((size_t)(end - p) < w) return WF_TRUNC;
    p += w;
    break;
  }
  case 2:
    if (!(l = rd_varint(p, end, &v))) return WF_LENGTH;
    p += l;
    *at = p;
    *val = p;
    if (v > (uint64_t)(end - p)) return WF_TRUNC;
    *vlen = (size_t)v;
    p += *vlen;
    break;
  default:
    *at = field;
    return WF_WIRE;
  }
  *next = p;
  return 0;
}

/* Takes ModelInferRequest.raw_input_contents (field 7) out of the message without copying: *raw (arena) points
 * into msg, *rest is what protobuf-c unpacks (msg itself, its prefix, or a copy of the other fields). */
static ei__srv_code split_raw(ei__req *r, const uint8_t *msg, size_t len, ProtobufCBinaryData **raw, size_t *nraw,
                              const uint8_t **rest, size_t *rest_len) {
  const uint8_t *p = msg, *end = msg + len;
  size_t n7 = 0, first7 = len, other_after = 0;
  for (int pass = 0; pass < 2; pass++) {
    size_t k = 0;
    uint8_t *copy = NULL;
    size_t clen = 0;
    if (pass == 1) {
      if (!n7) break;
      *raw = ei__req_alloc(r, n7 * sizeof **raw);
      if (!*raw) return ei__req_fail(r, EI_SRV_INTERNAL, "out of memory for %zu raw_input_contents", n7);
      if (other_after) {
        copy = ei__req_alloc(r, len);
        if (!copy) return ei__req_fail(r, EI_SRV_INTERNAL, "out of memory copying a %zu-byte message", len);
      }
    }
    for (p = msg; p < end;) {
      const uint8_t *field = p, *val, *at;
      uint64_t tag;
      size_t vlen;
      switch (wire_field(field, end, &tag, &val, &vlen, &p, &at)) {
      case 0: break;
      case WF_TAG:
        return ei__req_fail(r, EI_SRV_INVALID, "malformed ModelInferRequest: bad field tag at byte %zu",
                            (size_t)(at - msg));
      case WF_VARINT:
        return ei__req_fail(r, EI_SRV_INVALID, "malformed ModelInferRequest: bad varint at byte %zu",
                            (size_t)(at - msg));
      case WF_LENGTH:
        return ei__req_fail(r, EI_SRV_INVALID, "malformed ModelInferRequest: bad length at byte %zu",
                            (size_t)(at - msg));
      case WF_TRUNC:
        return ei__req_fail(r, EI_SRV_INVALID, "malformed ModelInferRequest: truncated at byte %zu",
                            (size_t)(at - msg));
      default:
        return ei__req_fail(r, EI_SRV_INVALID, "malformed ModelInferRequest: wire type %d at byte %zu",
                            (int)(tag & 7), (size_t)(at - msg));
      }
      int is_raw = (tag >> 3) == 7;
      if (is_raw && (tag & 7) != 2)
        return ei__req_fail(r, EI_SRV_INVALID, "malformed ModelInferRequest: raw_input_contents with wire type %d",
                            (int)(tag & 7));
      if (pass == 0) {
        if (is_raw) {
          if (!n7++) first7 = (size_t)(field - msg);
        } else if (n7) {
          other_after = 1;
        }
      } else if (is_raw) {
        (*raw)[k].data = (uint8_t *)val;
        (*raw)[k].len = vlen;
        k++;
      } else if (copy) {
        memcpy(copy + clen, field, (size_t)(p - field));
        clen += (size_t)(p - field);
      }
    }
    if (pass == 1) {
      *nraw = n7;
      if (copy) {
        *rest = copy;
        *rest_len = clen;
      } else {
        *rest = msg;
        *rest_len = first7;
      }
    }
  }
  if (!n7) {
    *raw = NULL;
    *nraw = 0;
    *rest = msg;
    *rest_len = len;
  }
  return EI_SRV_OK;
}

int ei__grpc_body_plan(const uint8_t *data, size_t n, size_t *total, size_t *raw_at) {
  if (n < 5) return -1;
  *total = 5 + ((size_t)data[1] << 24 | (size_t)data[2] << 16 | (size_t)data[3] << 8 | (size_t)data[4]);
  *raw_at = 0;
  const uint8_t *p = data + 5, *end = data + (n < *total ? n : *total);
  while (p < end) {
    const uint8_t *val, *at;
    uint64_t tag;
    size_t vlen;
    const int e = wire_field(p, end, &tag, &val, &vlen, &p, &at);
    if ((!e || e == WF_TRUNC) && (tag & 7) == 2 && (tag >> 3) == 7) { /* the tensor may not have arrived yet */
      *raw_at = (size_t)(val - data);
      return 0;
    }
    if (e) return 0;
  }
  return 0;
}

static int shape_str(const ei__ks_tensor *t, char *b, size_t cap) {
  size_t o = 0;
  o += (size_t)snprintf(b + o, cap - o, "[");
  for (int d = 0; d < t->rank && o < cap; d++)
    o += (size_t)snprintf(b + o, cap - o, "%s%" PRId64, d ? "," : "", t->shape[d]);
  if (o < cap) snprintf(b + o, cap - o, "]");
  return 0;
}

/* Typed contents into the tensor's raw bytes. numel is the shape's element count. */
static ei__srv_code convert_contents(ei__req *r, ei__ks_tensor *t, const Inference__InferTensorContents *c,
                                     int64_t numel) {
  static const char *const fields[8] = {"bool_contents", "int_contents", "int64_contents", "uint_contents",
                                        "uint64_contents", "fp32_contents", "fp64_contents", "bytes_contents"};
  const size_t counts[8] = {c->n_bool_contents, c->n_int_contents, c->n_int64_contents, c->n_uint_contents,
                            c->n_uint64_contents, c->n_fp32_contents, c->n_fp64_contents, c->n_bytes_contents};
  int want;
  switch (t->dtype) {
  case EI_KS_BOOL: want = 0; break;
  case EI_KS_INT8: case EI_KS_INT16: case EI_KS_INT32: want = 1; break;
  case EI_KS_INT64: want = 2; break;
  case EI_KS_UINT8: case EI_KS_UINT16: case EI_KS_UINT32: want = 3; break;
  case EI_KS_UINT64: want = 4; break;
  case EI_KS_FP32: want = 5; break;
  case EI_KS_FP64: want = 6; break;
  case EI_KS_BYTES: want = 7; break;
  default:
    return ei__req_fail(r, EI_SRV_INVALID, "input '%s': %s has no typed contents field; send it in raw_input_contents",
                        t->name, ei__ks_dtype_name(t->dtype));
  }
  for (int f = 0; f < 8; f++)
    if (f != want && counts[f])
      return ei__req_fail(r, EI_SRV_INVALID, "input '%s' is %s but carries %s (%s data goes in %s)", t->name,
                          ei__ks_dtype_name(t->dtype), fields[f], ei__ks_dtype_name(t->dtype), fields[want]);
  if ((uint64_t)numel != counts[want]) {
    char sh[128];
    shape_str(t, sh, sizeof sh);
    return ei__req_fail(r, EI_SRV_INVALID, "input '%s': shape %s has %" PRId64 " elements, %s has %zu", t->name,
                        sh, numel, fields[want], counts[want]);
  }
  size_t n = (size_t)numel;
  switch (t->dtype) {
  case EI_KS_INT32: t->data = c->int_contents; t->nbytes = n * 4; return EI_SRV_OK;
  case EI_KS_INT64: t->data = c->int64_contents; t->nbytes = n * 8; return EI_SRV_OK;
  case EI_KS_UINT32: t->data = c->uint_contents; t->nbytes = n * 4; return EI_SRV_OK;
  case EI_KS_UINT64: t->data = c->uint64_contents; t->nbytes = n * 8; return EI_SRV_OK;
  case EI_KS_FP32: t->data = c->fp32_contents; t->nbytes = n * 4; return EI_SRV_OK;
  case EI_KS_FP64: t->data = c->fp64_contents; t->nbytes = n * 8; return EI_SRV_OK;
  default: break;
  }
  if (t->dtype == EI_KS_BYTES) {
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
      if (c->bytes_contents[i].len > UINT32_MAX || total > SIZE_MAX - 4 - c->bytes_contents[i].len)
        return ei__req_fail(r, EI_SRV_TOO_LARGE, "input '%s': element %zu is too large", t->name, i);
      total += 4 + c->bytes_contents[i].len;
    }
    uint8_t *o = ei__req_alloc(r, total ? total : 1), *q = o;
    if (!o) return ei__req_fail(r, EI_SRV_INTERNAL, "out of memory for input '%s' (%zu bytes)", t->name, total);
    for (size_t i = 0; i < n; i++) {
      uint32_t l = (uint32_t)c->bytes_contents[i].len;
      memcpy(q, &l, 4);
      if (l) memcpy(q + 4, c->bytes_contents[i].data, l);
      q += 4 + l;
    }
    t->data = o;
    t->nbytes = total;
    return EI_SRV_OK;
  }
  size_t es = ei__ks_dtype_size(t->dtype);
  uint8_t *o = ei__req_alloc(r, n * es > 0 ? n * es : 1);
  if (!o) return ei__req_fail(r, EI_SRV_INTERNAL, "out of memory for input '%s' (%zu bytes)", t->name, n * es);
  for (size_t i = 0; i < n; i++) {
    switch (t->dtype) {
    case EI_KS_BOOL: o[i] = c->bool_contents[i] ? 1 : 0; break;
    case EI_KS_INT8: case EI_KS_INT16: {
      int32_t v = c->int_contents[i];
      int32_t lo = t->dtype == EI_KS_INT8 ? INT8_MIN : INT16_MIN, hi = t->dtype == EI_KS_INT8 ? INT8_MAX : INT16_MAX;
      if (v < lo || v > hi)
        return ei__req_fail(r, EI_SRV_INVALID, "input '%s': element %zu = %" PRId32 " is out of the %s range",
                            t->name, i, v, ei__ks_dtype_name(t->dtype));
      if (t->dtype == EI_KS_INT8) ((int8_t *)o)[i] = (int8_t)v;
      else { int16_t w = (int16_t)v; memcpy(o + 2 * i, &w, 2); }
      break;
    }
    case EI_KS_UINT8: case EI_KS_UINT16: {
      uint32_t v = c->uint_contents[i];
      uint32_t hi = t->dtype == EI_KS_UINT8 ? UINT8_MAX : UINT16_MAX;
      if (v > hi)
        return ei__req_fail(r, EI_SRV_INVALID, "input '%s': element %zu = %" PRIu32 " is out of the %s range",
                            t->name, i, v, ei__ks_dtype_name(t->dtype));
      if (t->dtype == EI_KS_UINT8) o[i] = (uint8_t)v;
      else { uint16_t w = (uint16_t)v; memcpy(o + 2 * i, &w, 2); }
      break;
    }
    default:
      return ei__req_fail(r, EI_SRV_INTERNAL, "input '%s': no conversion for %s", t->name,
                          ei__ks_dtype_name(t->dtype));
    }
  }
  t->data = o;
  t->nbytes = n * es;
  return EI_SRV_OK;
}

/* raw_input_contents entry for tensor t: its size must be the shape's (BYTES: well-formed length prefixes). */
static ei__srv_code check_raw(ei__req *r, ei__ks_tensor *t, size_t i, const ProtobufCBinaryData *b, int64_t numel) {
  t->data = b->data;
  t->nbytes = b->len;
  if (t->dtype == EI_KS_BYTES) {
    size_t off = 0;
    for (int64_t e = 0; e < numel; e++) {
      uint32_t l;
      if (b->len - off < 4) goto bytes_short;
      memcpy(&l, b->data + off, 4);
      off += 4;
      if (l > b->len - off) goto bytes_short;
      off += l;
    }
    if (off != b->len)
      return ei__req_fail(r, EI_SRV_INVALID, "input '%s': raw_input_contents[%zu] has %zu bytes after %" PRId64
                          " BYTES elements", t->name, i, b->len - off, numel);
    return EI_SRV_OK;
  bytes_short:
    return ei__req_fail(r, EI_SRV_INVALID, "input '%s': raw_input_contents[%zu] (%zu bytes) holds fewer than %" PRId64
                        " length-prefixed BYTES elements", t->name, i, b->len, numel);
  }
  size_t es = ei__ks_dtype_size(t->dtype);
  if ((uint64_t)numel > SIZE_MAX / es || (size_t)numel * es != b->len) {
    char sh[128];
    shape_str(t, sh, sizeof sh);
    return ei__req_fail(r, EI_SRV_INVALID, "input '%s': raw_input_contents[%zu] has %zu bytes, shape %s of %s needs %"
                        PRIu64, t->name, i, b->len, sh, ei__ks_dtype_name(t->dtype), (uint64_t)numel * es);
  }
  return EI_SRV_OK;
}

/* Service thread: the message into r->inputs / r->outputs. */
static ei__srv_code g_decode(ei__req *r) {
  gcall *c = r->transport_data;
  ProtobufCBinaryData *raw = NULL;
  size_t nraw = 0, rest_len = 0;
  const uint8_t *rest = NULL;
  ei__srv_code e = split_raw(r, r->body, r->body_len, &raw, &nraw, &rest, &rest_len);
  if (e != EI_SRV_OK) return e;
  c->pa.alloc = pa_alloc;
  c->pa.free = pa_free;
  c->pa.allocator_data = c;
  c->pa_cap = rest_len > (SIZE_MAX - 65536) / 10 ? SIZE_MAX : rest_len * 10 + 65536;
  Inference__ModelInferRequest *m = inference__model_infer_request__unpack(&c->pa, rest_len, rest);
  if (!m) {
    if (c->pa_over)
      return ei__req_fail(r, EI_SRV_TOO_LARGE, "decoding the %zu-byte ModelInferRequest needs more than %zu bytes",
                          r->body_len, c->pa_cap);
    return ei__req_fail(r, EI_SRV_INVALID, "malformed ModelInferRequest: the message is not valid protobuf");
  }
  if (!m->model_name[0]) return ei__req_fail(r, EI_SRV_INVALID, "ModelInferRequest.model_name is empty");
  r->model_name = m->model_name;
  r->model_version = m->model_version;
  r->id = m->id[0] ? m->id : NULL;
  if (!m->n_inputs) return ei__req_fail(r, EI_SRV_INVALID, "ModelInferRequest has no inputs");
  if (m->n_inputs > 4096) return ei__req_fail(r, EI_SRV_INVALID, "ModelInferRequest has %zu inputs", m->n_inputs);
  if (nraw && nraw != m->n_inputs)
    return ei__req_fail(r, EI_SRV_INVALID, "raw_input_contents has %zu entries for %zu inputs: one per input, in "
                        "order", nraw, m->n_inputs);
  ei__ks_tensor *in = ei__req_alloc(r, m->n_inputs * sizeof *in);
  if (!in) return ei__req_fail(r, EI_SRV_INTERNAL, "out of memory for %zu inputs", m->n_inputs);
  memset(in, 0, m->n_inputs * sizeof *in);
  for (size_t i = 0; i < m->n_inputs; i++) {
    const Inference__ModelInferRequest__InferInputTensor *ti = m->inputs[i];
    ei__ks_tensor *t = &in[i];
    if (!ti->name[0]) return ei__req_fail(r, EI_SRV_INVALID, "input %zu has no name", i);
    t->name = ti->name;
    t->dtype = ei__ks_dtype_parse(ti->datatype);
    if (t->dtype == EI_KS_INVALID)
      return ei__req_fail(r, EI_SRV_INVALID, "input '%s': unknown datatype '%s'", t->name, ti->datatype);
    if (ti->n_shape > EI_KS_MAX_RANK)
      return ei__req_fail(r, EI_SRV_INVALID, "input '%s': rank %zu exceeds %d", t->name, ti->n_shape, EI_KS_MAX_RANK);
    t->rank = (int)ti->n_shape;
    int64_t numel = 1;
    for (size_t d = 0; d < ti->n_shape; d++) {
      int64_t v = ti->shape[d];
      if (v < 0)
        return ei__req_fail(r, EI_SRV_INVALID, "input '%s': dimension %zu is %" PRId64, t->name, d, v);
      t->shape[d] = v;
      if (v && numel > INT64_MAX / 16 / v)
        return ei__req_fail(r, EI_SRV_TOO_LARGE, "input '%s': the shape's element count overflows", t->name);
      numel *= v;
    }
    if (nraw) {
      if (ti->contents)
        return ei__req_fail(r, EI_SRV_INVALID, "input '%s' carries contents while the request has "
                            "raw_input_contents: use one or the other", t->name);
      e = check_raw(r, t, i, &raw[i], numel);
    } else if (ti->contents) {
      e = convert_contents(r, t, ti->contents, numel);
    } else {
      e = ei__req_fail(r, EI_SRV_INVALID, "input '%s' has no data (neither contents nor raw_input_contents)",
                       t->name);
    }
    if (e != EI_SRV_OK) return e;
  }
  r->inputs = in;
  r->ninputs = (int)m->n_inputs;
  if (m->n_outputs > 4096) return ei__req_fail(r, EI_SRV_INVALID, "ModelInferRequest asks for %zu outputs", m->n_outputs);
  if (m->n_outputs) {
    ei__ks_output_req *o = ei__req_alloc(r, m->n_outputs * sizeof *o);
    if (!o) return ei__req_fail(r, EI_SRV_INTERNAL, "out of memory for %zu outputs", m->n_outputs);
    memset(o, 0, m->n_outputs * sizeof *o);
    for (size_t i = 0; i < m->n_outputs; i++) {
      const Inference__ModelInferRequest__InferRequestedOutputTensor *to = m->outputs[i];
      if (!to->name[0]) return ei__req_fail(r, EI_SRV_INVALID, "requested output %zu has no name", i);
      o[i].name = to->name;
      for (size_t p = 0; p < to->n_parameters; p++) {
        const Inference__ModelInferRequest__InferRequestedOutputTensor__ParametersEntry *pe = to->parameters[p];
        if (strcmp(pe->key, "classification")) continue;
        const Inference__InferParameter *v = pe->value;
        int64_t k = -1;
        if (v && v->parameter_choice_case == INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_INT64_PARAM)
          k = v->int64_param;
        else if (v && v->parameter_choice_case == INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_UINT64_PARAM)
          k = v->uint64_param > INT32_MAX ? -1 : (int64_t)v->uint64_param;
        if (k <= 0 || k > INT32_MAX)
          return ei__req_fail(r, EI_SRV_INVALID, "output '%s': parameter classification must be a positive int64",
                              to->name);
        o[i].classification = (int)k;
      }
    }
    r->outputs = o;
    r->noutputs = (int)m->n_outputs;
  }
  return EI_SRV_OK;
}

/* Executor thread: the response message, packed and framed. */
static void g_encode(ei__req *r) {
  gcall *c = r->transport_data;
  if (r->code != EI_SRV_OK) return; /* done sends the status */
  int n = r->nresults > 0 ? r->nresults : 0;
  Inference__ModelInferResponse m = INFERENCE__MODEL_INFER_RESPONSE__INIT;
  Inference__ModelInferResponse__InferOutputTensor *ot = ei__req_alloc(r, (size_t)(n ? n : 1) * sizeof *ot);
  Inference__ModelInferResponse__InferOutputTensor **op = ei__req_alloc(r, (size_t)(n ? n : 1) * sizeof *op);
  ProtobufCBinaryData *raw = ei__req_alloc(r, (size_t)(n ? n : 1) * sizeof *raw);
  if (!ot || !op || !raw) {
    ei__req_fail(r, EI_SRV_INTERNAL, "out of memory building the response");
    return;
  }
  for (int i = 0; i < n; i++) {
    const ei__ks_tensor t = r->results[i].t; /* classification outputs come as BYTES from the core */
    inference__model_infer_response__infer_output_tensor__init(&ot[i]);
    ot[i].name = (char *)(t.name ? t.name : "");
    ot[i].datatype = (char *)ei__ks_dtype_name(t.dtype);
    ot[i].n_shape = t.rank > 0 ? (size_t)t.rank : 0;
    ot[i].shape = ei__req_alloc(r, (ot[i].n_shape ? ot[i].n_shape : 1) * sizeof(int64_t));
    if (!ot[i].shape) {
      ei__req_fail(r, EI_SRV_INTERNAL, "out of memory building the response");
      return;
    }
    for (size_t d = 0; d < ot[i].n_shape; d++) ot[i].shape[d] = t.shape[d];
    op[i] = &ot[i];
    raw[i].data = (uint8_t *)t.data;
    raw[i].len = t.nbytes;
  }
  m.model_name = (char *)(r->model_name ? r->model_name : "");
  m.model_version = (char *)(r->served_version ? r->served_version : "");
  m.id = (char *)(r->id ? r->id : "");
  m.n_outputs = (size_t)n;
  m.outputs = op;
  m.n_raw_output_contents = (size_t)n;
  m.raw_output_contents = raw;
  size_t len = protobuf_c_message_get_packed_size(&m.base);
  if (len > UINT32_MAX) {
    ei__req_fail(r, EI_SRV_TOO_LARGE, "the response of %zu bytes exceeds the gRPC message limit", len);
    return;
  }
  uint8_t *b = malloc(5 + len);
  if (!b) {
    ei__req_fail(r, EI_SRV_INTERNAL, "out of memory for a %zu-byte response", len);
    return;
  }
  put_prefix(b, len);
  protobuf_c_message_pack(&m.base, b + 5);
  c->resp = b;
  c->resp_len = 5 + len;
}

/* Loop thread: send, or only release when the client is gone. */
static void g_done(ei__req *r) {
  gcall *c = r->transport_data;
  ei__http_exchange *x = c->x;
  if (!c->aborted) {
    x->on_abort = NULL;
    x->log_model = r->model_name; /* both live in the request, released after x */
    x->log_version = r->served_version ? r->served_version : r->model_version;
    if (r->code == EI_SRV_OK && c->resp) {
      send_framed(x, c->resp, c->resp_len);
      c->resp = NULL;
    } else if (r->code == EI_SRV_OK) {
      send_status(x, GRPC_INTERNAL, "no response was built");
    } else {
      send_status(x, ei__srv_grpc_status(r->code), r->error[0] ? r->error : ei__srv_code_name(r->code));
    }
  }
  free(c->resp);
  c->resp = NULL;
  ei__http_exchange_release(x);
  ei__req_release(r); /* c lives in the request's arena */
}

/* Loop thread: RST_STREAM or disconnect before the response. The core calls done (once) later. */
static void g_abort(ei__http_exchange *x) {
  gcall *c = x->handler_data;
  if (!c || c->aborted) return;
  c->aborted = 1;
  ei__req_cancel(c->r);
}

static const ei__req_ops grpc_ops = {g_decode, g_encode, g_done};

static void rpc_model_infer(ei__http_exchange *x, ei__server *s, const uint8_t *msg, size_t len, uint64_t deadline) {
  ei__req *r = ei__req_new(EI_REQ_INFER, &grpc_ops, NULL);
  gcall *c = r ? ei__req_alloc(r, sizeof *c) : NULL;
  if (!c) {
    if (r) ei__req_release(r);
    send_status(x, GRPC_RESOURCE_EXHAUSTED, "out of memory for a new request");
    ei__http_exchange_release(x);
    return;
  }
  memset(c, 0, sizeof *c);
  c->x = x;
  c->r = r;
  r->transport_data = c;
  r->model_name = "";
  r->model_version = "";
  r->body = msg;
  r->body_len = len;
  r->deadline_ns = deadline;
  if (!r->t_received) r->t_received = x->t_received;
  x->handler_data = c;
  x->on_abort = g_abort;
  ei__srv_submit(s, r); /* done may run before this returns: c and x are not touched after it */
}

/* ---------------------------------------------------------------------------------------------------------- */
/* the handler                                                                                                */

static int grpc_content_type(const char *ct) {
  static const char base[] = "application/grpc";
  if (!ct || strncasecmp(ct, base, sizeof base - 1)) return 0;
  const char *p = ct + sizeof base - 1;
  if (!strncasecmp(p, "+proto", 6)) p += 6;
  while (*p == ' ' || *p == '\t') p++;
  return *p == 0 || *p == ';';
}

void ei__grpc_early(const ei__http_exchange *x, void *ud) {
  static const char infer[] = RPC_PREFIX "ModelInfer";
  if (x->path && !strcmp(x->path, infer)) ei__srv_expect(ud);
}

void ei__grpc_handle(ei__http_exchange *x, void *ud) {
  ei__server *s = ud;
  const char *ct = ei__http_header_get(x, "content-type");
  if (!x->method || strcmp(x->method, "POST")) {
    http_fail(x, 405, "gRPC calls are POST requests\n");
    goto release;
  }
  if (!grpc_content_type(ct)) {
    http_fail(x, 415, "content-type must be application/grpc or application/grpc+proto\n");
    goto release;
  }
  const char *te = ei__http_header_get(x, "te");
  if (!te || !strstr(te, "trailers")) {
    send_status(x, GRPC_INVALID_ARGUMENT, "missing 'te: trailers' header");
    goto release;
  }
  const char *path = x->path ? x->path : "";
  rpc_id id = RPC_COUNT;
  if (!strncmp(path, RPC_PREFIX, sizeof RPC_PREFIX - 1))
    for (int i = 0; i < RPC_COUNT; i++)
      if (!strcmp(path + sizeof RPC_PREFIX - 1, rpc_names[i])) id = (rpc_id)i;
  if (id == RPC_COUNT) {
    send_statusf(x, GRPC_UNIMPLEMENTED, "unknown method %s (service inference.GRPCInferenceService)", path);
    goto release;
  }
  uint64_t deadline = 0;
  const char *to = ei__http_header_get(x, "grpc-timeout");
  if (to) {
    uint64_t ns;
    if (ei__grpc_parse_timeout(to, &ns) < 0) {
      send_statusf(x, GRPC_INVALID_ARGUMENT, "malformed grpc-timeout '%.32s': 1 to 8 digits and a unit H, M, S, m, "
                   "u or n", to);
      goto release;
    }
    deadline = ei__srv_now_ns() + ns;
  }
  /* exactly one length-prefixed message */
  if (id == RPC_MODEL_STREAM_INFER || id == RPC_MODEL_CONFIG) {
    send_statusf(x, GRPC_UNIMPLEMENTED, "%s is not implemented by this server", rpc_names[id]);
    goto release;
  }
  if (x->body_len == 0) {
    send_statusf(x, GRPC_INTERNAL, "no request message for the unary method %s", rpc_names[id]);
    goto release;
  }
  if (x->body_len < 5) {
    send_statusf(x, GRPC_INTERNAL, "truncated gRPC message prefix (%zu of 5 bytes)", x->body_len);
    goto release;
  }
  const uint8_t *b = x->body;
  size_t len = (size_t)b[1] << 24 | (size_t)b[2] << 16 | (size_t)b[3] << 8 | b[4];
  if (b[0] & 1) {
    const char *enc = ei__http_header_get(x, "grpc-encoding");
    static const ei__http_header h[] = {{"content-type", "application/grpc"}, {"grpc-accept-encoding", "identity"}};
    char msg[160], menc[480], code[8];
    snprintf(msg, sizeof msg, "compressed messages are not supported (grpc-encoding: %.32s); send identity",
             enc ? enc : "none");
    ei__grpc_percent_encode(msg, menc, sizeof menc);
    snprintf(code, sizeof code, "%d", GRPC_UNIMPLEMENTED);
    ei__http_header t[2] = {{"grpc-status", code}, {"grpc-message", menc}};
    ei__http_respond(x, 200, h, 2, NULL, 0, 0, t, 2);
    goto release;
  }
  if (b[0] != 0) {
    send_statusf(x, GRPC_INTERNAL, "bad gRPC message flags 0x%02x", b[0]);
    goto release;
  }
  if (len > x->body_len - 5) {
    send_statusf(x, GRPC_INTERNAL, "truncated gRPC message: the prefix says %zu bytes, %zu arrived", len,
                 x->body_len - 5);
    goto release;
  }
  if (len < x->body_len - 5) {
    send_statusf(x, GRPC_INTERNAL, "%zu bytes after the request message: %s is unary (one message)",
                 x->body_len - 5 - len, rpc_names[id]);
    goto release;
  }
  const uint8_t *msg = b + 5;
  switch (id) {
  case RPC_MODEL_INFER: rpc_model_infer(x, s, msg, len, deadline); return; /* released in done */
  case RPC_SERVER_LIVE: case RPC_SERVER_READY: rpc_live_ready(x, s, id, msg, len); break;
  case RPC_MODEL_READY: rpc_model_ready(x, s, msg, len); break;
  case RPC_SERVER_METADATA: rpc_server_metadata(x, s, msg, len); break;
  case RPC_MODEL_METADATA: rpc_model_metadata(x, s, msg, len); break;
  case RPC_MODEL_STATISTICS: rpc_model_statistics(x, s, msg, len); break;
  case RPC_REPOSITORY_INDEX: rpc_repository_index(x, s, msg, len); break;
  case RPC_REPOSITORY_MODEL_LOAD: case RPC_REPOSITORY_MODEL_UNLOAD:
    if (rpc_repository_load(x, s, id, msg, len)) return; /* released in grpc_ctl_done */
    break;
  default:
    send_statusf(x, GRPC_UNIMPLEMENTED, "%s is not implemented by this server", rpc_names[id]);
    break;
  }
release:
  ei__http_exchange_release(x);
}
