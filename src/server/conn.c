/* src/server/conn.c: listeners, connections (accept, limits, timers, writes, the first-24-byte sniff that picks
 * HTTP/2 or HTTP/1.1 on the HTTP port), the exchange storage shared by http1.c and h2.c, and http.h's
 * protocol-independent functions. Loop thread only. */
#include <ctype.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conn.h"
#include "grpc.h"
#include "rest.h"

#define H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

typedef struct ei__listener {
  uv_tcp_t tcp;
  ei__net *net;
  int http2_only;
  ei__http_handler handler;
  ei__http_early_fn early; /* the handler's early hook (http.h), or NULL */
  void *ud;
  int open;
} ei__listener;

struct ei__net {
  uv_loop_t *loop;
  ei__net_limits lim;
  ei__listener listeners[4];
  int nlisteners;
  ei__conn *conns;
  int nconns;
  int draining;
  int closing;
  int open_handles; /* listeners not yet closed */
  void (*done_cb)(void *ud);
  void *done_ud;
  char rbuf[262144]; /* the read buffer: every read is consumed before the next (a 600 KB tensor in 3 reads) */
  int rbuf_busy;
};

void ei__net_limits_init(ei__net_limits *l) {
  l->max_body_bytes = (size_t)64 << 20;
  l->max_header_bytes = (size_t)64 << 10;
  l->max_connections = 256;
  l->header_timeout_ms = 10000;
  l->idle_timeout_secs = 60;
  l->h2_max_streams = 128;
  l->h2_window_bytes = 16 << 20;
}

ei__net *ei__net_new(uv_loop_t *loop, const ei__net_limits *lim) {
  ei__net *n = calloc(1, sizeof *n);
  if (!n) return NULL;
  n->loop = loop;
  if (lim)
    n->lim = *lim;
  else
    ei__net_limits_init(&n->lim);
  return n;
}

int ei__net_connections(const ei__net *n) { return n->nconns; }

/* Open connections by protocol (GET /metrics' ei_connections): 0 HTTP/1.1, 1 HTTP/2 (h2c), 2 gRPC; counted from
 * the sniff's decision to the close of the handles. */
static atomic_int conn_open[3];

static int conn_kind(const ei__conn *c) {
  return c->listener->http2_only ? 2 : c->proto == &ei__proto_h2 ? 1 : 0;
}

void ei__conn_counts(int out[3]) {
  for (int i = 0; i < 3; i++) out[i] = atomic_load(&conn_open[i]);
}

static void maybe_done(ei__net *n) {
  if (!n->done_cb || n->nconns || n->open_handles) return;
  void (*cb)(void *) = n->done_cb;
  n->done_cb = NULL;
  cb(n->done_ud);
}

/* ---- connections ---- */
const ei__net_limits *ei__conn_limits(const ei__conn *c) { return &c->net->lim; }
int ei__conn_draining(const ei__conn *c) { return c->net->draining; }
int ei__conn_grpc(const ei__conn *c) { return c->listener->http2_only; }

void ei__conn_dispatch(ei__conn *c, ei__http_exchange *x) {
  ei__xchg *e = (ei__xchg *)x;
  e->dispatched = 1;
  c->listener->handler(x, c->listener->ud);
}

void ei__conn_early(ei__conn *c, const ei__http_exchange *x) {
  if (c->listener->early && !c->closing) c->listener->early(x, c->listener->ud);
}

static void conn_handle_closed(uv_handle_t *h) {
  ei__conn *c = h->data;
  if (--c->open_handles > 0) return;
  ei__net *n = c->net;
  if (c->proto && c->proto->destroy) c->proto->destroy(c);
  if (c->proto) atomic_fetch_sub(&conn_open[conn_kind(c)], 1);
  if (c->prev)
    c->prev->next = c->next;
  else if (n->conns == c)
    n->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  n->nconns--;
  free(c);
  maybe_done(n);
}

static void conn_close_handles(ei__conn *c) {
  if (!uv_is_closing((uv_handle_t *)&c->tcp)) uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
  if (!uv_is_closing((uv_handle_t *)&c->timer)) uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

static void conn_begin_close(ei__conn *c) {
  if (c->closing) return;
  c->closing = 1;
  uv_read_stop((uv_stream_t *)&c->tcp);
  uv_timer_stop(&c->timer);
  if (c->proto && c->proto->closed) c->proto->closed(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_linger_timer(uv_timer_t *t) { conn_close_handles(t->data); }

static void on_shutdown(uv_shutdown_t *req, int status) {
  ei__conn *c = req->data;
  free(req);
  /* lingering close: our side is shut; read and drop what the client still sends (so that it sees the response
   * instead of a reset), until it closes or 2 s pass */
  if (c->lingering && status == 0 && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0) {
    uv_timer_start(&c->timer, on_linger_timer, 2000, 0);
    return;
  }
  conn_close_handles(c);
}

void ei__conn_close(ei__conn *c, int graceful) {
  if (c->closing) return;
  conn_begin_close(c);
  c->lingering = graceful == 2;
  if (graceful) {
    uv_shutdown_t *req = malloc(sizeof *req);
    if (req) {
      req->data = c;
      if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) == 0) return;
      free(req);
    }
  }
  conn_close_handles(c);
}

typedef struct wreq {
  uv_write_t req;
  void *data;
} wreq;

static void on_write(uv_write_t *req, int status) {
  wreq *w = (wreq *)req;
  ei__conn *c = req->data;
  free(w->data);
  free(w);
  if (status < 0 && !c->closing) ei__conn_close(c, 0);
}

void ei__conn_write_owned(ei__conn *c, void *data, size_t n) {
  if (c->closing || n == 0) {
    free(data);
    return;
  }
  wreq *w = malloc(sizeof *w);
  if (!w) {
    free(data);
    ei__conn_close(c, 0);
    return;
  }
  w->data = data;
  w->req.data = c;
  uv_buf_t b = uv_buf_init(data, (unsigned)n);
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0) {
    free(data);
    free(w);
    ei__conn_close(c, 0);
  }
}

void ei__conn_write(ei__conn *c, const void *data, size_t n) {
  if (c->closing || n == 0) return;
  void *copy = malloc(n);
  if (!copy) {
    ei__conn_close(c, 0);
    return;
  }
  memcpy(copy, data, n);
  ei__conn_write_owned(c, copy, n);
}

size_t ei__conn_write_queued(const ei__conn *c) { return uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp); }

static void on_timer(uv_timer_t *t) {
  ei__conn *c = t->data;
  if (c->closing) return;
  if (c->proto && c->proto->timeout)
    c->proto->timeout(c);
  else {
    ei__log_msg("%s: closed: no HTTP preface within %d ms", c->peer, c->net->lim.header_timeout_ms);
    ei__conn_close(c, 0);
  }
}

void ei__conn_timer(ei__conn *c, uint64_t ms) {
  if (c->closing) return;
  if (ms)
    uv_timer_start(&c->timer, on_timer, ms, 0);
  else
    uv_timer_stop(&c->timer);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  ei__conn *c = h->data;
  if (c->net->rbuf_busy) { /* cannot happen (reads are consumed at once), but never share the buffer */
    buf->base = NULL;
    buf->len = 0;
    return;
  }
  c->net->rbuf_busy = 1;
  buf->base = c->net->rbuf;
  buf->len = sizeof c->net->rbuf;
}

static int conn_start_proto(ei__conn *c, const ei__proto *p) {
  c->proto = p;
  atomic_fetch_add(&conn_open[conn_kind(c)], 1);
  if (p->start(c) < 0) return -1;
  return 0;
}

static void conn_feed(ei__conn *c, const char *data, size_t n) {
  if (!c->proto) { /* the sniff: collect up to 24 bytes (or fewer when they already differ from the preface) */
    size_t take = sizeof c->sniff - c->nsniff;
    if (take > n) take = n;
    memcpy(c->sniff + c->nsniff, data, take);
    c->nsniff += take;
    data += take;
    n -= take;
    int is_h2 = !memcmp(c->sniff, H2_PREFACE, c->nsniff);
    if (is_h2 && c->nsniff < sizeof c->sniff) return; /* wait for the rest of the preface */
    if (c->listener->http2_only && !is_h2) {
      ei__log_msg("%s: closed: not an HTTP/2 client preface on the gRPC port", c->peer);
      ei__conn_close(c, 0);
      return;
    }
    if (conn_start_proto(c, is_h2 ? &ei__proto_h2 : &ei__proto_http1) < 0) {
      ei__log_msg("%s: closed: out of memory", c->peer);
      ei__conn_close(c, 0);
      return;
    }
    if (c->proto->feed(c, c->sniff, c->nsniff) < 0) {
      ei__conn_close(c, 0);
      return;
    }
  }
  if (n && !c->closing && c->proto->feed(c, data, n) < 0) ei__conn_close(c, 0);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  ei__conn *c = s->data;
  if (buf->base == c->net->rbuf) c->net->rbuf_busy = 0;
  if (c->closing) {
    if (c->lingering && nread < 0) conn_close_handles(c);
    return;
  }
  if (nread < 0) {
    ei__conn_close(c, 0);
    return;
  }
  if (nread == 0) return;
  conn_feed(c, buf->base, (size_t)nread);
}

void ei__conn_pause(ei__conn *c, int pause) {
  if (c->closing || c->paused == pause) return;
  c->paused = pause;
  if (pause)
    uv_read_stop((uv_stream_t *)&c->tcp);
  else
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void peer_name(uv_tcp_t *t, char *out, size_t outlen) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  char ip[64] = "?";
  int port = 0;
  if (uv_tcp_getpeername(t, (struct sockaddr *)&ss, &len) == 0) {
    if (ss.ss_family == AF_INET) {
      struct sockaddr_in *a = (struct sockaddr_in *)&ss;
      uv_ip4_name(a, ip, sizeof ip);
      port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
      uv_ip6_name(a, ip, sizeof ip);
      port = ntohs(a->sin6_port);
    }
  }
  snprintf(out, outlen, "%s:%d", ip, port);
}

static void on_reject_closed(uv_handle_t *h) { free(h); }

static void on_connection(uv_stream_t *server, int status) {
  ei__listener *l = server->data;
  ei__net *n = l->net;
  if (status < 0 || n->closing) return;
  if (n->draining || n->nconns >= n->lim.max_connections) {
    /* over the limit (or shutting down): accept and close at once, so the client sees the refusal */
    uv_tcp_t *t = malloc(sizeof *t);
    if (!t) return;
    uv_tcp_init(n->loop, t);
    if (uv_accept(server, (uv_stream_t *)t) == 0 && !n->draining) {
      char peer[64];
      peer_name(t, peer, sizeof peer);
      ei__log_msg("%s: refused: %d connections open (--max-connections)", peer, n->nconns);
    }
    uv_close((uv_handle_t *)t, on_reject_closed);
    return;
  }
  ei__conn *c = calloc(1, sizeof *c);
  if (!c) return;
  c->net = n;
  c->listener = l;
  uv_tcp_init(n->loop, &c->tcp);
  uv_timer_init(n->loop, &c->timer);
  c->tcp.data = c;
  c->timer.data = c;
  c->open_handles = 2;
  c->next = n->conns;
  if (n->conns) n->conns->prev = c;
  n->conns = c;
  n->nconns++;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
    c->closing = 1;
    conn_close_handles(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  peer_name(&c->tcp, c->peer, sizeof c->peer);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  ei__conn_timer(c, (uint64_t)n->lim.header_timeout_ms);
}

int ei__net_listen(ei__net *n, const char *host, int port, int http2_only, ei__http_handler handler, void *ud,
                   int *bound, char *err, size_t errlen) {
  struct sockaddr_storage ss;
  int r;
  if (n->nlisteners >= (int)(sizeof n->listeners / sizeof n->listeners[0])) {
    snprintf(err, errlen, "too many listeners");
    return -1;
  }
  if (!host || !*host) host = "0.0.0.0";
  if (!strcmp(host, "localhost")) host = "127.0.0.1";
  if (strchr(host, ':'))
    r = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss);
  else
    r = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
  if (r < 0) {
    snprintf(err, errlen, "bad listen address '%s': %s", host, uv_strerror(r));
    return -1;
  }
  ei__listener *l = &n->listeners[n->nlisteners];
  memset(l, 0, sizeof *l);
  l->net = n;
  l->http2_only = http2_only;
  l->handler = handler;
  l->early = handler == ei__grpc_handle ? ei__grpc_early : handler == ei__rest_handle ? ei__rest_early : NULL;
  l->ud = ud;
  uv_tcp_init(n->loop, &l->tcp);
  l->tcp.data = l;
  l->open = 1;
  n->nlisteners++;
  n->open_handles++;
  if ((r = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, 0)) < 0 ||
      (r = uv_listen((uv_stream_t *)&l->tcp, 511, on_connection)) < 0) {
    snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port, uv_strerror(r));
    return -1;
  }
  struct sockaddr_storage got;
  int len = sizeof got;
  if ((r = uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&got, &len)) < 0) {
    snprintf(err, errlen, "getsockname: %s", uv_strerror(r));
    return -1;
  }
  *bound = got.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&got)->sin6_port)
                                     : ntohs(((struct sockaddr_in *)&got)->sin_port);
  return 0;
}

static void on_listener_closed(uv_handle_t *h) {
  ei__listener *l = h->data;
  ei__net *n = l->net;
  n->open_handles--;
  maybe_done(n);
}

static void close_listeners(ei__net *n) {
  for (int i = 0; i < n->nlisteners; i++) {
    ei__listener *l = &n->listeners[i];
    if (l->open) {
      l->open = 0;
      uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
    }
  }
}

void ei__net_shutdown(ei__net *n, void (*cb)(void *ud), void *ud) {
  n->draining = 1;
  n->done_cb = cb;
  n->done_ud = ud;
  close_listeners(n);
  for (ei__conn *c = n->conns, *next; c; c = next) {
    next = c->next;
    if (c->closing) continue;
    if (!c->proto)
      ei__conn_close(c, 0);
    else if (c->proto->shutdown)
      c->proto->shutdown(c);
  }
  maybe_done(n);
}

void ei__net_close(ei__net *n, void (*cb)(void *ud), void *ud) {
  n->closing = 1;
  n->draining = 1;
  n->done_cb = cb;
  n->done_ud = ud;
  close_listeners(n);
  for (ei__conn *c = n->conns, *next; c; c = next) {
    next = c->next;
    if (!c->closing)
      ei__conn_close(c, 0);
  }
  maybe_done(n);
}

void ei__net_free(ei__net *n) { free(n); }

/* ---- exchanges ---- */
ei__xchg *ei__xchg_new(ei__conn *c, const char *proto) {
  ei__xchg *e = calloc(1, sizeof *e);
  if (!e) return NULL;
  e->refs = 2;
  e->conn = c;
  e->proto = proto;
  e->content_length = (size_t)-1;
  e->grpc_status = -1;
  e->t_start = ei__mono_ns();
  e->x.transport = e;
  e->x.http2 = c->proto == &ei__proto_h2;
  e->x.peer = c->peer;
  e->x.query = "";
  return e;
}

int ei__xchg_hput(ei__xchg *e, const char *s, size_t n) {
  const ei__net_limits *lim = e->conn ? ei__conn_limits(e->conn) : NULL;
  if (lim && e->hlen + n + 1 > lim->max_header_bytes) return -1;
  if (e->hlen + n + 1 > e->hcap) {
    size_t cap = e->hcap ? e->hcap : 1024;
    while (cap < e->hlen + n + 1) cap *= 2;
    char *p = realloc(e->hbuf, cap);
    if (!p) return -1;
    e->hbuf = p;
    e->hcap = cap;
  }
  memcpy(e->hbuf + e->hlen, s, n);
  e->hlen += n;
  return 0;
}

static int xchg_new_header(ei__xchg *e) {
  if (e->nh == e->hcapn) {
    int cap = e->hcapn ? e->hcapn * 2 : 16;
    if (cap > 1024) return -1; /* header count bound */
    void *p = realloc(e->hoff, (size_t)cap * sizeof *e->hoff);
    if (!p) return -1;
    e->hoff = p;
    e->hcapn = cap;
  }
  e->nh++;
  return 0;
}

int ei__xchg_header(ei__xchg *e, const char *name, size_t nlen, const char *value, size_t vlen) {
  if (xchg_new_header(e) < 0) return -1;
  e->hoff[e->nh - 1].name = e->hlen;
  if (ei__xchg_hput(e, name, nlen) < 0) return -1;
  for (size_t i = 0; i < nlen; i++) e->hbuf[e->hlen - nlen + i] = (char)tolower((unsigned char)name[i]);
  if (ei__xchg_hput(e, "", 1) < 0) return -1;
  e->hoff[e->nh - 1].value = e->hlen;
  if (ei__xchg_hput(e, value, vlen) < 0 || ei__xchg_hput(e, "", 1) < 0) return -1;
  return 0;
}

static int hexval(int ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

int ei__xchg_finish_headers(ei__xchg *e) {
  /* the URL (at url_off, NUL-terminated) -> path (percent-decoded) + query; decoded in place (it only shrinks) */
  char *url = e->hbuf + e->url_off;
  char *q = strchr(url, '?');
  char *hash = strchr(url, '#');
  if (hash) *hash = 0;
  if (q) *q++ = 0;
  /* absolute-form (http://host/path): keep the path */
  if (!strncasecmp(url, "http://", 7)) {
    char *slash = strchr(url + 7, '/');
    url = slash ? slash : (char *)"/";
  }
  char *w = url;
  for (char *r = url; *r; r++) {
    if (*r == '%') {
      int hi = hexval((unsigned char)r[1]), lo = hi >= 0 ? hexval((unsigned char)r[2]) : -1;
      if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return -1;
      *w++ = (char)(hi * 16 + lo);
      r += 2;
    } else
      *w++ = *r;
  }
  *w = 0;
  e->x.method = e->hbuf + e->method_off;
  e->x.path = url;
  e->x.query = q ? q : "";
  ei__http_header *h = calloc((size_t)e->nh + 1, sizeof *h);
  if (!h) return -2;
  for (int i = 0; i < e->nh; i++) {
    h[i].name = e->hbuf + e->hoff[i].name;
    h[i].value = e->hbuf + e->hoff[i].value;
  }
  e->x.headers = h;
  e->x.nheaders = e->nh;
  return 0;
}

int ei__xchg_body(ei__xchg *e, const char *data, size_t n) {
  size_t max = e->conn ? ei__conn_limits(e->conn)->max_body_bytes : 0;
  if (e->too_large) return 0;
  if (e->body_len + n > max) {
    e->too_large = 1;
    free(e->body_base);
    e->body = e->body_base = NULL;
    e->body_len = e->body_cap = 0;
    return 0;
  }
  if (e->body_len + n > e->body_cap) {
    /* grow by doubling from 64 KiB; a declared length (Content-Length, a gRPC prefix) is a ceiling, and the size
     * at once when it is not far ahead of the bytes received (so that a body arriving at speed is copied once,
     * not once per doubling, while an idle client declaring a large body costs little) */
    const size_t need = e->body_len + n;
    size_t cap = e->body_cap ? e->body_cap : 65536;
    while (cap < need) cap *= 2;
    if (e->content_length != (size_t)-1 && e->content_length >= need) {
      size_t ahead = need > ((size_t)1 << 18) ? need * 4 : (size_t)1 << 20;
      if (e->content_length <= ahead || cap > e->content_length) cap = e->content_length;
    }
    if (cap > max) cap = max;
    size_t lead = e->body ? (size_t)(e->body - e->body_base) : 0;
    uint8_t *p = e->body_base ? realloc(e->body_base, lead + cap) : malloc(cap + 63);
    if (!p) return -1;
    if (!e->body_base) /* the first allocation: body + body_align_at on 64 bytes */
      lead = (64 - (((uintptr_t)p + e->body_align_at) & 63)) & 63;
    e->body_base = p;
    e->body = p + lead;
    e->body_cap = cap;
  }
  memcpy(e->body + e->body_len, data, n);
  e->body_len += n;
  e->x.body = e->body;
  e->x.body_len = e->body_len;
  return 0;
}

static void xchg_free(ei__xchg *e) {
  free(e->hbuf);
  free(e->hoff);
  free((void *)e->x.headers);
  free(e->body_base);
  free(e->resp);
  free(e->trailers);
  free(e);
}

void ei__xchg_unref(ei__xchg *e) {
  if (--e->refs == 0) xchg_free(e);
}

void ei__xchg_detach(ei__xchg *e) {
  ei__conn *c = e->conn;
  e->conn = NULL;
  if (e->dispatched && !e->responded && !e->aborted) {
    e->aborted = 1;
    e->status = 499;
    ei__log_access(e, ei__mono_ns());
    (void)c;
    if (e->x.on_abort) e->x.on_abort(&e->x);
  }
  if (!e->dispatched) e->refs--; /* the handler never got it: drop its reference too */
  ei__xchg_unref(e);
}

/* Length of a valid UTF-8 sequence at s (n bytes left), 0 when invalid (http.h). */
size_t ei__http_utf8_len(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  size_t len;
  uint32_t cp;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) len = 2, cp = c & 0x1f;
  else if (c >= 0xe0 && c <= 0xef) len = 3, cp = c & 0x0f;
  else if (c >= 0xf0 && c <= 0xf4) len = 4, cp = c & 0x07;
  else return 0;
  if (len > n) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
    return 0;
  return len;
}

void ei__xchg_error_body(char *out, size_t outlen, const char *msg) {
  size_t o = (size_t)snprintf(out, outlen, "{\"error\": \"");
  const unsigned char *p = (const unsigned char *)msg;
  size_t n = strlen(msg);
  for (size_t i = 0; i < n && o + 12 < outlen;) {
    unsigned char ch = p[i];
    size_t l = ch >= 0x20 && ch != '"' && ch != '\\' ? ei__http_utf8_len(p + i, n - i) : 0;
    if (l && o + l + 4 < outlen) {
      memcpy(out + o, p + i, l);
      o += l;
      i += l;
      continue;
    }
    if (l) break;
    if (ch == '"' || ch == '\\') {
      out[o++] = '\\';
      out[o++] = (char)ch;
    } else /* control characters, and bytes that are not UTF-8 (as Latin-1) */
      o += (size_t)snprintf(out + o, outlen - o, "\\u%04x", ch);
    i++;
  }
  snprintf(out + o, outlen - o, "\"}");
}

/* ---- http.h ---- */
const char *ei__http_header_get(const ei__http_exchange *x, const char *name) {
  for (int i = 0; i < x->nheaders; i++)
    if (!strcasecmp(x->headers[i].name, name)) return x->headers[i].value;
  return NULL;
}

void ei__http_respond(ei__http_exchange *x, int status, const ei__http_header *headers, int nheaders,
                      const void *body, size_t body_len, int own_body, const ei__http_header *trailers,
                      int ntrailers) {
  ei__xchg *e = (ei__xchg *)x;
  if (e->responded || e->aborted || !e->conn || e->conn->closing) {
    if (!e->responded && !e->aborted) e->responded = 1;
    if (own_body) free((void *)body);
    return;
  }
  e->responded = 1;
  e->status = status;
  for (int i = 0; i < ntrailers; i++)
    if (!strcasecmp(trailers[i].name, "grpc-status")) e->grpc_status = atoi(trailers[i].value);
  char line[1024]; /* formatted now, written once the response is on its way */
  size_t ln = ei__log_access_format(e, ei__mono_ns(), line, sizeof line);
  if (x->http2)
    ei__h2_respond(e, status, headers, nheaders, body, body_len, own_body, trailers, ntrailers);
  else
    ei__h1_respond(e, status, headers, nheaders, body, body_len, own_body);
  ei__log_write(line, ln);
}

void ei__http_exchange_release(ei__http_exchange *x) { ei__xchg_unref((ei__xchg *)x); }

void ei__http_respond_error(ei__http_exchange *x, int status, const char *message) {
  size_t cap = strlen(message) * 6 + 32;
  char *body = malloc(cap);
  if (!body) {
    static const ei__http_header h[] = {{"content-type", "application/json"}};
    static const char oom[] = "{\"error\": \"out of memory\"}";
    ei__http_respond(x, status, h, 1, oom, sizeof oom - 1, 0, NULL, 0);
    return;
  }
  ei__xchg_error_body(body, cap, message);
  static const ei__http_header h[] = {{"content-type", "application/json"}};
  ei__http_respond(x, status, h, 1, body, strlen(body), 1, NULL, 0);
}
