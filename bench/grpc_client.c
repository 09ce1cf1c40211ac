/* bench/grpc_client.c: a small gRPC load client over nghttp2 for bench/serve (built as build/grpc-bench).
 *
 * Sends the same ModelInfer request (raw_input_contents: one seeded random tensor) over one HTTP/2 connection
 * with C streams in flight, and checks every response: :status 200, content-type application/grpc, a complete
 * length-prefixed message, and the trailer grpc-status 0 (h2load alone checks none of the gRPC part). Prints the
 * round-trip percentiles (submit to stream close) and the request rate after the warm-up, as text or --json.
 * The request's DATA goes out without a copy (NGHTTP2_DATA_FLAG_NO_COPY: frame header and payload in one writev
 * straight from the encoded message) in frames as large as the server allows (SETTINGS_MAX_FRAME_SIZE), as a
 * client that cares about large tensors does.
 *
 * usage: grpc-bench --port P [--host 127.0.0.1] --model NAME [--version V] [--input NAME] [--shape 1,3,224,224]
 *                   [--datatype FP32] [--concurrency C] [--requests N] [--warmup W] [--json]
 * Exit status: 0 when every response was OK, 1 otherwise (the first failures are printed).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONC 256

typedef struct stream {
  int32_t id;
  uint64_t t0;
  int http_status, grpc_status, ct_ok;
  size_t rx;       /* DATA bytes */
  uint8_t prefix[5];
  char msg[160];   /* grpc-message */
} stream;

typedef struct bench {
  int fd;
  nghttp2_session *s;
  uint8_t *body;
  size_t body_len;
  const char *path, *authority;
  int conc, total, warmup;
  int submitted, completed, failed;
  stream st[MAX_CONC];
  double *lat_ms;  /* after warm-up */
  int nlat;
  double sum_all_ms; /* every request, warm-up included (to compare with the server's statistics) */
  uint64_t t_start; /* the first request after the warm-up */
  uint64_t t_end;
} bench;

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void die(const char *m) {
  fprintf(stderr, "grpc-bench: %s\n", m);
  exit(2);
}

/* ---- the request message, encoded by hand (ModelInferRequest fields 1, 2, 5, 7) ---- */
static size_t put_varint(uint8_t *p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (uint8_t)v;
  return n;
}

static size_t put_bytes(uint8_t *p, int field, const void *b, size_t len) {
  size_t n = put_varint(p, (uint64_t)field << 3 | 2);
  n += put_varint(p + n, len);
  if (len) memcpy(p + n, b, len);
  return n + len;
}

static void build_request(bench *b, const char *model, const char *version, const char *input, const int64_t *shape,
                          int rank, const char *dtype, size_t esize) {
  uint64_t numel = 1;
  for (int i = 0; i < rank; i++) numel *= (uint64_t)shape[i];
  size_t nbytes = (size_t)(numel * esize);
  uint8_t *data = malloc(nbytes ? nbytes : 1);
  if (!data) die("out of memory");
  uint32_t seed = 12345;
  for (size_t i = 0; i < nbytes / 4; i++) { /* uniform [0,1) floats, or just bytes for other types */
    seed = seed * 1664525u + 1013904223u;
    float f = (float)(seed >> 8) / 16777216.0f;
    memcpy(data + 4 * i, &f, 4);
  }
  uint8_t tensor[1024], shp[256];
  size_t ns = 0, nt = 0;
  for (int i = 0; i < rank; i++) ns += put_varint(shp + ns, (uint64_t)shape[i]);
  nt += put_bytes(tensor + nt, 1, input, strlen(input));
  nt += put_bytes(tensor + nt, 2, dtype, strlen(dtype));
  nt += put_bytes(tensor + nt, 3, shp, ns);
  size_t cap = 64 + strlen(model) + strlen(version) + nt + nbytes + 16;
  b->body = malloc(5 + cap);
  if (!b->body) die("out of memory");
  uint8_t *m = b->body + 5;
  size_t n = 0;
  n += put_bytes(m + n, 1, model, strlen(model));
  if (version[0]) n += put_bytes(m + n, 2, version, strlen(version));
  n += put_bytes(m + n, 5, tensor, nt);
  n += put_bytes(m + n, 7, data, nbytes);
  b->body[0] = 0;
  b->body[1] = (uint8_t)(n >> 24);
  b->body[2] = (uint8_t)(n >> 16);
  b->body[3] = (uint8_t)(n >> 8);
  b->body[4] = (uint8_t)n;
  b->body_len = 5 + n;
  free(data);
}

/* ---- nghttp2 ---- */
static stream *find(bench *b, int32_t id) {
  for (int i = 0; i < b->conc; i++)
    if (b->st[i].id == id) return &b->st[i];
  return NULL;
}

/* The next DATA frame's length; its bytes are sent by send_data (no copy into nghttp2's buffer). */
static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *ud) {
  (void)s;
  (void)id;
  (void)buf;
  bench *b = ud;
  size_t *off = src->ptr;
  size_t n = b->body_len - *off;
  if (n > len) n = len;
  *off += n;
  *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
  if (*off == b->body_len) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

/* Frames up to the server's SETTINGS_MAX_FRAME_SIZE and the flow-control windows (nghttp2's default: 16 KiB). */
static ssize_t data_length(nghttp2_session *s, uint8_t type, int32_t id, int32_t swin, int32_t stwin,
                           uint32_t max_frame, void *ud) {
  (void)s;
  (void)type;
  (void)id;
  (void)ud;
  ssize_t n = (ssize_t)max_frame;
  if (swin < n) n = swin;
  if (stwin < n) n = stwin;
  return n > 0 ? n : 1;
}

/* Writes all of iov (blocking on POLLOUT: the server reads while we write, it never waits on us to read). */
static int write_all(int fd, struct iovec *iov, int n) {
  while (n > 0) {
    ssize_t w = writev(fd, iov, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
      struct pollfd p = {fd, POLLOUT, 0};
      if (poll(&p, 1, 120000) <= 0) return -1;
      continue;
    }
    while (n > 0 && (size_t)w >= iov->iov_len) {
      w -= (ssize_t)iov->iov_len;
      iov++;
      n--;
    }
    if (n > 0) {
      iov->iov_base = (uint8_t *)iov->iov_base + w;
      iov->iov_len -= (size_t)w;
    }
  }
  return 0;
}

/* A DATA frame: its 9-byte header and its payload, the slice of the message read_body accounted for. */
static int send_data(nghttp2_session *s, nghttp2_frame *f, const uint8_t *hd, size_t len, nghttp2_data_source *src,
                     void *ud) {
  (void)s;
  bench *b = ud;
  size_t end = *(size_t *)src->ptr; /* read_body has moved past this frame's bytes */
  if (f->data.padlen > 0) return NGHTTP2_ERR_CALLBACK_FAILURE; /* no padding is ever asked for */
  struct iovec iov[2] = {{(void *)hd, 9}, {b->body + (end - len), len}};
  if (write_all(b->fd, iov, len ? 2 : 1) < 0) return NGHTTP2_ERR_CALLBACK_FAILURE;
  return 0;
}

static size_t offsets[MAX_CONC];

static void submit(bench *b, int slot) {
  nghttp2_nv h[] = {
      {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
      {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
      {(uint8_t *)":path", (uint8_t *)b->path, 5, strlen(b->path), 0},
      {(uint8_t *)":authority", (uint8_t *)b->authority, 10, strlen(b->authority), 0},
      {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0},
      {(uint8_t *)"te", (uint8_t *)"trailers", 2, 8, 0},
  };
  offsets[slot] = 0;
  nghttp2_data_provider prd;
  prd.source.ptr = &offsets[slot];
  prd.read_callback = read_body;
  stream *st = &b->st[slot];
  memset(st, 0, sizeof *st);
  st->grpc_status = -1;
  st->t0 = now_ns();
  st->id = nghttp2_submit_request(b->s, NULL, h, sizeof h / sizeof h[0], &prd, NULL);
  if (st->id < 0) die(nghttp2_strerror(st->id));
  if (b->submitted == b->warmup) b->t_start = st->t0;
  b->submitted++;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *ud) {
  (void)s;
  (void)flags;
  stream *st = find(ud, f->hd.stream_id);
  if (!st) return 0;
  if (nlen == 7 && !memcmp(name, ":status", 7)) st->http_status = atoi((const char *)value);
  else if (nlen == 12 && !memcmp(name, "content-type", 12))
    st->ct_ok = vlen >= 16 && !memcmp(value, "application/grpc", 16);
  else if (nlen == 11 && !memcmp(name, "grpc-status", 11)) st->grpc_status = atoi((const char *)value);
  else if (nlen == 12 && !memcmp(name, "grpc-message", 12))
    snprintf(st->msg, sizeof st->msg, "%.*s", (int)vlen, (const char *)value);
  return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *ud) {
  (void)s;
  (void)flags;
  stream *st = find(ud, id);
  if (!st) return 0;
  for (size_t i = 0; i < len && st->rx + i < 5; i++) st->prefix[st->rx + i] = data[i];
  st->rx += len;
  return 0;
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t err, void *ud) {
  (void)s;
  bench *b = ud;
  stream *st = find(b, id);
  if (!st) return 0;
  uint64_t t = now_ns();
  size_t mlen = (size_t)st->prefix[1] << 24 | (size_t)st->prefix[2] << 16 | (size_t)st->prefix[3] << 8 |
                st->prefix[4];
  int ok = err == 0 && st->http_status == 200 && st->ct_ok && st->grpc_status == 0 && st->rx >= 5 &&
           st->prefix[0] == 0 && st->rx == 5 + mlen;
  if (!ok) {
    if (b->failed < 5)
      fprintf(stderr, "grpc-bench: request failed: rst=%u :status=%d grpc-status=%d grpc-message='%s' %zu bytes\n",
              err, st->http_status, st->grpc_status, st->msg, st->rx);
    b->failed++;
  }
  int idx = b->completed++;
  if (idx >= b->warmup) b->lat_ms[b->nlat++] = (double)(t - st->t0) / 1e6;
  b->sum_all_ms += (double)(t - st->t0) / 1e6;
  b->t_end = t;
  int slot = (int)(st - b->st);
  st->id = 0;
  if (b->submitted < b->total) submit(b, slot);
  return 0;
}

static ssize_t send_cb(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *ud) {
  (void)s;
  (void)flags;
  bench *b = ud;
  ssize_t n = send(b->fd, data, len, MSG_NOSIGNAL);
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? NGHTTP2_ERR_WOULDBLOCK : NGHTTP2_ERR_CALLBACK_FAILURE;
  return n;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double pct(const double *v, int n, double p) {
  if (n <= 0) return 0;
  double r = p * (n - 1);
  int i = (int)r;
  return i + 1 < n ? v[i] + (r - i) * (v[i + 1] - v[i]) : v[n - 1];
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1", *model = NULL, *version = "", *input = "input", *dtype = "FP32";
  const char *shape_s = "1,3,224,224";
  int port = 0, json = 0;
  bench b;
  memset(&b, 0, sizeof b);
  b.conc = 1;
  b.total = 200;
  b.warmup = 20;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (!strcmp(a, name) && v && ++i)
    if (OPT("--host")) host = v;
    else if (OPT("--port")) port = atoi(v);
    else if (OPT("--model")) model = v;
    else if (OPT("--version")) version = v;
    else if (OPT("--input")) input = v;
    else if (OPT("--shape")) shape_s = v;
    else if (OPT("--datatype")) dtype = v;
    else if (OPT("--concurrency")) b.conc = atoi(v);
    else if (OPT("--requests")) b.total = atoi(v);
    else if (OPT("--warmup")) b.warmup = atoi(v);
    else if (!strcmp(a, "--json")) json = 1;
    else {
      fprintf(stderr, "usage: grpc-bench --port P --model NAME [--host H] [--version V] [--input NAME] "
                      "[--shape 1,3,224,224] [--datatype FP32] [--concurrency C] [--requests N] [--warmup W] "
                      "[--json]\n");
      return 2;
    }
  }
  if (!port || !model) die("--port and --model are required");
  if (b.conc < 1 || b.conc > MAX_CONC) die("--concurrency: 1..256");
  if (b.total < 1 || b.warmup < 0) die("--requests >= 1, --warmup >= 0");
  b.total += b.warmup;
  int64_t shape[8];
  int rank = 0;
  for (const char *p = shape_s; *p && rank < 8;) {
    shape[rank++] = strtoll(p, (char **)&p, 10);
    if (*p == ',') p++;
  }
  size_t es = !strcmp(dtype, "FP64") || !strcmp(dtype, "INT64") ? 8 : !strcmp(dtype, "UINT8") || !strcmp(dtype, "INT8") ? 1 : 4;
  build_request(&b, model, version, input, shape, rank, dtype, es);
  char path[256], authority[128];
  snprintf(path, sizeof path, "/inference.GRPCInferenceService/ModelInfer");
  snprintf(authority, sizeof authority, "%s:%d", host, port);
  b.path = path;
  b.authority = authority;
  b.lat_ms = calloc((size_t)b.total, sizeof *b.lat_ms);
  if (!b.lat_ms) die("out of memory");

  /* connect */
  struct addrinfo hints = {0}, *ai;
  hints.ai_socktype = SOCK_STREAM;
  char ps[16];
  snprintf(ps, sizeof ps, "%d", port);
  if (getaddrinfo(host, ps, &hints, &ai)) die("cannot resolve the host");
  b.fd = socket(ai->ai_family, SOCK_STREAM, 0);
  if (b.fd < 0 || connect(b.fd, ai->ai_addr, ai->ai_addrlen)) die("cannot connect");
  freeaddrinfo(ai);
  int one = 1;
  setsockopt(b.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  nghttp2_session_callbacks *cb;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_send_callback(cb, send_cb);
  nghttp2_session_callbacks_set_send_data_callback(cb, send_data);
  nghttp2_session_callbacks_set_data_source_read_length_callback(cb, data_length);
  nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
  if (nghttp2_session_client_new(&b.s, cb, &b)) die("nghttp2_session_client_new");
  nghttp2_session_callbacks_del(cb);
  nghttp2_settings_entry set[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 16 << 20},
                                  {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, MAX_CONC}};
  nghttp2_submit_settings(b.s, NGHTTP2_FLAG_NONE, set, 2);
  nghttp2_session_set_local_window_size(b.s, NGHTTP2_FLAG_NONE, 0, 64 << 20);
  uint64_t t_begin = now_ns();
  for (int i = 0; i < b.conc && b.submitted < b.total; i++) submit(&b, i);

  static uint8_t buf[1 << 18];
  if (fcntl(b.fd, F_SETFL, fcntl(b.fd, F_GETFL) | O_NONBLOCK) < 0) die("fcntl O_NONBLOCK");
  while (b.completed < b.total) {
    if (nghttp2_session_send(b.s)) die("nghttp2_session_send failed");
    if (b.completed >= b.total) break;
    struct pollfd p = {b.fd, POLLIN | (nghttp2_session_want_write(b.s) ? POLLOUT : 0), 0};
    if (poll(&p, 1, 120000) <= 0) die("timeout waiting for the server");
    if (!(p.revents & (POLLIN | POLLHUP | POLLERR))) continue;
    for (;;) { /* everything the socket has */
      ssize_t n = recv(b.fd, buf, sizeof buf, 0);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) die("the server closed the connection");
      if (nghttp2_session_mem_recv(b.s, buf, (size_t)n) < 0) die("HTTP/2 protocol error from the server");
    }
  }
  nghttp2_session_terminate_session(b.s, NGHTTP2_NO_ERROR);
  nghttp2_session_send(b.s);
  nghttp2_session_del(b.s);
  close(b.fd);

  qsort(b.lat_ms, (size_t)b.nlat, sizeof *b.lat_ms, cmp_d);
  double wall = (double)(b.t_end - (b.warmup ? b.t_start : t_begin)) / 1e9;
  double rate = wall > 0 ? b.nlat / wall : 0;
  double mean = 0;
  for (int i = 0; i < b.nlat; i++) mean += b.lat_ms[i];
  mean = b.nlat ? mean / b.nlat : 0;
  double mean_all = b.completed ? b.sum_all_ms / b.completed : 0; /* warm-up included */
  int ok = b.total - b.failed;
  if (json)
    printf("{\"requests\": %d, \"ok\": %d, \"failed\": %d, \"concurrency\": %d, \"p50_ms\": %.4f, \"p90_ms\": %.4f, "
           "\"p99_ms\": %.4f, \"mean_ms\": %.4f, \"mean_all_ms\": %.4f, \"requests_per_s\": %.2f, "
           "\"request_bytes\": %zu}\n",
           b.total, ok, b.failed, b.conc, pct(b.lat_ms, b.nlat, .5), pct(b.lat_ms, b.nlat, .9),
           pct(b.lat_ms, b.nlat, .99), mean, mean_all, rate, b.body_len);
  else
    printf("%d requests (%d warm-up), %d OK (grpc-status 0), %d failed; concurrency %d: p50 %.3f ms, p90 %.3f ms, "
           "p99 %.3f ms, %.1f requests/s\n",
           b.total, b.warmup, ok, b.failed, b.conc, pct(b.lat_ms, b.nlat, .5), pct(b.lat_ms, b.nlat, .9),
           pct(b.lat_ms, b.nlat, .99), rate);
  return b.failed ? 1 : 0;
}
