/* src/server/h2.c: HTTP/2 server connections over nghttp2, for REST on the HTTP port (prior knowledge) and for the
 * gRPC port. Each stream is one exchange (http.h): headers and body collected (a body over max_body_bytes is
 * answered 413 as soon as it is known and the rest of it is dropped as it arrives: no RST_STREAM, which some clients,
 * curl among them, take as a failure of the response); the handler is
 * called at END_STREAM. Responses: HEADERS + DATA from a data provider, trailers by nghttp2_submit_trailer, a
 * trailers-only response as one HEADERS frame with END_STREAM. SETTINGS: a large initial window and connection
 * window (a 600 KB body needs no WINDOW_UPDATE round trip), MAX_CONCURRENT_STREAMS, MAX_HEADER_LIST_SIZE,
 * MAX_FRAME_SIZE 1 MiB (a client may send a 600 KB tensor in one DATA frame). On the gRPC port the first DATA bytes
 * of a stream size its body buffer (the message's length prefix) and place raw_input_contents on a 64-byte
 * boundary (ei__grpc_body_plan). Request headers complete with a body to come: the listener's early hook.
 * RST_STREAM or connection loss before the response -> x->on_abort. Server shutdown -> GOAWAY; the connection
 * closes when its streams are done. Loop thread only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nghttp2/nghttp2.h>

#include "conn.h"
#include "grpc.h"

typedef struct h2 {
  nghttp2_session *s;
  ei__conn *c;
  ei__xchg *streams; /* exchanges of open streams (the transport's references) */
  int nactive;       /* dispatched, not answered */
  int in_feed;
  int in_flush;
  int goaway;
  uint64_t last_activity; /* ns: the last bytes received or response sent (idle timeout) */
} h2;

static void h2_flush(h2 *h);

static void list_remove(h2 *h, ei__xchg *e) {
  for (ei__xchg **p = &h->streams; *p; p = &(*p)->next)
    if (*p == e) {
      *p = e->next;
      e->next = NULL;
      return;
    }
}

/* When the oldest stream whose request headers are still incomplete began (0: none). */
static uint64_t oldest_headers(const h2 *h) {
  uint64_t t = 0;
  for (const ei__xchg *e = h->streams; e; e = e->next)
    if (!e->x.path && !e->responded && (!t || e->t_start < t)) t = e->t_start;
  return t;
}

/* One timer per connection: the idle timeout (no request with the handler) and the header-time bound of streams
 * whose headers are still arriving (a client trickling HEADERS/CONTINUATION bytes). */
static void arm_timer(h2 *h) {
  const ei__net_limits *lim = ei__conn_limits(h->c);
  if (h->c->closing) return;
  uint64_t now = ei__mono_ns(), ms = 0;
  if (h->nactive == 0) {
    uint64_t until = h->last_activity + (uint64_t)lim->idle_timeout_secs * 1000000000u;
    ms = until > now ? (until - now) / 1000000 + 1 : 1;
  }
  uint64_t t0 = oldest_headers(h);
  if (t0) {
    uint64_t until = t0 + (uint64_t)lim->header_timeout_ms * 1000000u;
    uint64_t hms = until > now ? (until - now) / 1000000 + 1 : 1;
    if (!ms || hms < ms) ms = hms;
  }
  ei__conn_timer(h->c, ms);
}

/* An error the transport answers itself: {"error": msg} with the status, or on the gRPC port a trailers-only gRPC
 * error (413: RESOURCE_EXHAUSTED, else INTERNAL; grpc-message percent-encoded). */
static void respond_error(ei__xchg *e, int status, const char *msg) {
  char body[512];
  if (!e->x.method) e->x.method = "-";
  if (!e->x.path) e->x.path = "-";
  if (ei__conn_grpc(e->conn)) {
    char code[8], enc[512];
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)msg; *p && o + 4 < sizeof enc; p++) {
      if (*p >= 0x20 && *p <= 0x7e && *p != '%')
        enc[o++] = (char)*p;
      else
        o += (size_t)snprintf(enc + o, sizeof enc - o, "%%%02X", *p);
    }
    enc[o] = 0;
    snprintf(code, sizeof code, "%d", status == 413 ? 8 : 13);
    static const ei__http_header hd[] = {{"content-type", "application/grpc"}};
    const ei__http_header tr[] = {{"grpc-status", code}, {"grpc-message", enc}};
    ei__http_respond(&e->x, 200, hd, 1, NULL, 0, 0, tr, 2);
    return;
  }
  static const ei__http_header hd[] = {{"content-type", "application/json"}};
  ei__xchg_error_body(body, sizeof body, msg);
  ei__http_respond(&e->x, status, hd, 1, body, strlen(body), 0, NULL, 0);
}

static void request_complete(h2 *h, ei__xchg *e) {
  if (e->req_done) return;
  e->req_done = 1;
  if (e->responded) return; /* answered early (413) */
  e->x.t_received = ei__mono_ns();
  h->nactive++;
  ei__conn_dispatch(h->c, &e->x);
}

/* ---- nghttp2 callbacks ---- */
static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud) {
  h2 *h = ud;
  if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  ei__xchg *e = ei__xchg_new(h->c, "HTTP/2");
  if (!e) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  e->stream_id = f->hd.stream_id;
  e->url_off = e->method_off = (size_t)-1;
  e->next = h->streams;
  h->streams = e;
  nghttp2_session_set_stream_user_data(s, f->hd.stream_id, e);
  return 0;
}

static int pseudo(ei__xchg *e, size_t *off, const uint8_t *v, size_t vlen) {
  if (*off != (size_t)-1) return -1; /* twice */
  *off = e->hlen;
  if (ei__xchg_hput(e, (const char *)v, vlen) < 0 || ei__xchg_hput(e, "", 1) < 0) return -1;
  return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *ud) {
  (void)flags;
  (void)ud;
  if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  ei__xchg *e = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
  if (!e) return 0;
  int r = 0;
  if (nlen == 7 && !memcmp(name, ":method", 7))
    r = pseudo(e, &e->method_off, value, vlen);
  else if (nlen == 5 && !memcmp(name, ":path", 5))
    r = pseudo(e, &e->url_off, value, vlen);
  else if (nlen && name[0] == ':')
    return 0; /* :scheme, :authority */
  else {
    r = ei__xchg_header(e, (const char *)name, nlen, (const char *)value, vlen);
    if (r == 0 && nlen == 14 && !memcmp(name, "content-length", 14)) {
      char num[32];
      size_t n = vlen < sizeof num - 1 ? vlen : sizeof num - 1;
      memcpy(num, value, n);
      num[n] = 0;
      unsigned long long cl = strtoull(num, NULL, 10);
      if (cl > ei__conn_limits(e->conn)->max_body_bytes)
        e->too_large = 1;
      else
        e->content_length = (size_t)cl;
    }
  }
  return r < 0 ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : 0;
}

static void too_large(ei__xchg *e) {
  char msg[160];
  snprintf(msg, sizeof msg, "request body is over the limit of %zu bytes (--max-body-bytes)",
           ei__conn_limits(e->conn)->max_body_bytes);
  respond_error(e, 413, msg);
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud) {
  h2 *h = ud;
  ei__xchg *e;
  switch (f->hd.type) {
  case NGHTTP2_HEADERS:
    if (f->headers.cat != NGHTTP2_HCAT_REQUEST) {
      if (f->headers.cat == NGHTTP2_HCAT_HEADERS && (f->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
          (e = nghttp2_session_get_stream_user_data(s, f->hd.stream_id)))
        request_complete(h, e); /* request trailers */
      return 0;
    }
    if (!(e = nghttp2_session_get_stream_user_data(s, f->hd.stream_id))) return 0;
    if (e->method_off == (size_t)-1 || e->url_off == (size_t)-1) {
      nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_PROTOCOL_ERROR);
      return 0;
    }
    {
      int r = ei__xchg_finish_headers(e);
      if (r == -2) return NGHTTP2_ERR_CALLBACK_FAILURE;
      if (r == -1) {
        e->x.method = e->hbuf + e->method_off;
        e->x.path = "-";
        respond_error(e, 400, "malformed percent-encoding in the request path");
        return 0;
      }
    }
    if (e->too_large) too_large(e);
    if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
      request_complete(h, e);
    else if (!e->responded)
      ei__conn_early(h->c, &e->x);
    return 0;
  case NGHTTP2_DATA:
    if ((f->hd.flags & NGHTTP2_FLAG_END_STREAM) && (e = nghttp2_session_get_stream_user_data(s, f->hd.stream_id)))
      request_complete(h, e);
    return 0;
  default:
    return 0;
  }
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *data, size_t len, void *ud) {
  (void)flags;
  (void)ud;
  ei__xchg *e = nghttp2_session_get_stream_user_data(s, sid);
  if (!e || e->responded) return 0; /* answered early: drop the rest */
  if (!e->body_base && !e->too_large && ei__conn_grpc(e->conn)) {
    /* a gRPC message: its length prefix declares the body, and the raw tensor bytes get an aligned address */
    size_t total, raw_at;
    if (ei__grpc_body_plan(data, len, &total, &raw_at) == 0) {
      if (e->content_length == (size_t)-1 || total < e->content_length) e->content_length = total;
      e->body_align_at = raw_at;
    }
  }
  if (ei__xchg_body(e, (const char *)data, len) < 0) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  if (e->too_large) too_large(e);
  return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t sid, uint32_t code, void *ud) {
  (void)code;
  h2 *h = ud;
  ei__xchg *e = nghttp2_session_get_stream_user_data(s, sid);
  if (!e) return 0;
  nghttp2_session_set_stream_user_data(s, sid, NULL);
  list_remove(h, e);
  if (e->dispatched && !e->responded) h->nactive--;
  ei__xchg_detach(e);
  return 0;
}

static ssize_t read_body(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t length, uint32_t *flags,
                         nghttp2_data_source *src, void *ud) {
  (void)ud;
  ei__xchg *e = src->ptr;
  size_t n = e->resp_len - e->resp_off;
  if (n > length) n = length;
  if (n) memcpy(buf, e->resp + e->resp_off, n);
  e->resp_off += n;
  if (e->resp_off == e->resp_len) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (e->ntrailers) {
      *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      if (nghttp2_submit_trailer(s, sid, e->trailers, e->ntrailers) != 0) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
  }
  return (ssize_t)n;
}

/* ---- sending ---- */
static void h2_flush(h2 *h) {
  ei__conn *c = h->c;
  if (h->in_flush || c->closing) return;
  h->in_flush = 1;
  char *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    const uint8_t *data;
    ssize_t n = nghttp2_session_mem_send(h->s, &data);
    if (n < 0) {
      ei__log_msg("%s: HTTP/2 send failed: %s", c->peer, nghttp2_strerror((int)n));
      free(buf);
      h->in_flush = 0;
      ei__conn_close(c, 0);
      return;
    }
    if (n == 0) break;
    if (len + (size_t)n > cap) {
      size_t ncap = cap ? cap : 16384;
      while (ncap < len + (size_t)n) ncap *= 2;
      char *q = realloc(buf, ncap);
      if (!q) {
        free(buf);
        h->in_flush = 0;
        ei__conn_close(c, 0);
        return;
      }
      buf = q;
      cap = ncap;
    }
    memcpy(buf + len, data, (size_t)n);
    len += (size_t)n;
    if (len >= ((size_t)4 << 20)) { /* write in pieces of a few MB */
      ei__conn_write_owned(c, buf, len);
      buf = NULL;
      len = cap = 0;
    }
  }
  if (len)
    ei__conn_write_owned(c, buf, len);
  else
    free(buf);
  h->in_flush = 0;
  if (!c->closing && !nghttp2_session_want_read(h->s) && !nghttp2_session_want_write(h->s)) ei__conn_close(c, 1);
}

static int h2_start(ei__conn *c) {
  const ei__net_limits *lim = ei__conn_limits(c);
  h2 *h = calloc(1, sizeof *h);
  nghttp2_session_callbacks *cbs = NULL;
  nghttp2_option *opt = NULL;
  if (!h) return -1;
  h->c = c;
  h->last_activity = ei__mono_ns();
  if (nghttp2_session_callbacks_new(&cbs) != 0) goto err;
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
  if (nghttp2_option_new(&opt) != 0) goto err;
  nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
  if (nghttp2_session_server_new2(&h->s, cbs, h, opt) != 0) goto err;
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, (uint32_t)lim->h2_max_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (uint32_t)lim->h2_window_bytes},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)lim->max_header_bytes},
      /* DATA frames up to 1 MiB: a client that uses them sends a 600 KB tensor in one frame */
      {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, 1u << 20},
  };
  if (nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]) != 0 ||
      nghttp2_session_set_local_window_size(h->s, NGHTTP2_FLAG_NONE, 0, lim->h2_window_bytes) != 0)
    goto err;
  nghttp2_session_callbacks_del(cbs);
  nghttp2_option_del(opt);
  c->ps = h;
  return 0;
err:
  if (h->s) nghttp2_session_del(h->s);
  if (cbs) nghttp2_session_callbacks_del(cbs);
  if (opt) nghttp2_option_del(opt);
  free(h);
  return -1;
}

static int h2_feed(ei__conn *c, const char *data, size_t n) {
  h2 *h = c->ps;
  h->last_activity = ei__mono_ns();
  h->in_feed = 1;
  ssize_t r = nghttp2_session_mem_recv(h->s, (const uint8_t *)data, n);
  h->in_feed = 0;
  if (c->closing) return 0;
  if (r < 0) {
    ei__log_msg("%s: HTTP/2 protocol error: %s", c->peer, nghttp2_strerror((int)r));
    /* nghttp2 may have queued a GOAWAY: send it, then close */
    h2_flush(h);
    if (!c->closing) ei__conn_close(c, 1);
    return 0;
  }
  h2_flush(h);
  arm_timer(h);
  return 0;
}

static void send_goaway(h2 *h) {
  if (h->goaway) return;
  h->goaway = 1;
  nghttp2_submit_goaway(h->s, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(h->s), NGHTTP2_NO_ERROR,
                        NULL, 0);
}

static void h2_timeout(ei__conn *c) {
  h2 *h = c->ps;
  const ei__net_limits *lim = ei__conn_limits(c);
  uint64_t now = ei__mono_ns(), t0 = oldest_headers(h);
  if (t0 && now >= t0 + (uint64_t)lim->header_timeout_ms * 1000000u)
    ei__log_msg("%s: HTTP/2 request headers not received within %d ms: GOAWAY, connection closed", c->peer,
                lim->header_timeout_ms);
  else if (h->nactive > 0 || now < h->last_activity + (uint64_t)lim->idle_timeout_secs * 1000000000u) {
    arm_timer(h); /* not yet */
    return;
  }
  /* idle (or a stream stalled mid-request) for idle_timeout_secs, or headers overdue */
  send_goaway(h);
  h2_flush(h);
  if (!c->closing) ei__conn_close(c, 1);
}

static void h2_shutdown(ei__conn *c) {
  h2 *h = c->ps;
  send_goaway(h);
  h2_flush(h); /* closes at once when no stream is open */
}

static void h2_closed(ei__conn *c) {
  h2 *h = c->ps;
  if (!h) return;
  while (h->streams) {
    ei__xchg *e = h->streams;
    h->streams = e->next;
    e->next = NULL;
    nghttp2_session_set_stream_user_data(h->s, e->stream_id, NULL);
    ei__xchg_detach(e);
  }
  h->nactive = 0;
}

static void h2_destroy(ei__conn *c) {
  h2 *h = c->ps;
  if (!h) return;
  nghttp2_session_del(h->s);
  free(h);
  c->ps = NULL;
}

const ei__proto ei__proto_h2 = {"HTTP/2", h2_start, h2_feed, h2_timeout, h2_shutdown, h2_closed, h2_destroy};

static int skip_header(const char *name) {
  /* connection-specific fields are not allowed in HTTP/2 */
  return !strcasecmp(name, "connection") || !strcasecmp(name, "keep-alive") ||
         !strcasecmp(name, "transfer-encoding") || !strcasecmp(name, "upgrade") ||
         !strcasecmp(name, "proxy-connection") || !strcasecmp(name, "content-length");
}

static nghttp2_nv mknv(const char *name, const char *value) {
  nghttp2_nv nv = {(uint8_t *)name, (uint8_t *)value, strlen(name), strlen(value), NGHTTP2_NV_FLAG_NONE};
  return nv;
}

void ei__h2_respond(ei__xchg *e, int status, const ei__http_header *hd, int nh, const void *body, size_t len,
                    int own, const ei__http_header *tr, int nt) {
  ei__conn *c = e->conn;
  h2 *h = c->ps;
  char st[16], cl[32];
  int trailers_only = nt > 0 && !body && len == 0;
  if (e->dispatched) h->nactive--;
  nghttp2_nv *nv = malloc(sizeof *nv * (size_t)(nh + nt + 2));
  if (!nv) goto fail;
  snprintf(st, sizeof st, "%d", status);
  size_t n = 0;
  nv[n++] = mknv(":status", st);
  for (int i = 0; i < nh; i++)
    if (!skip_header(hd[i].name)) nv[n++] = mknv(hd[i].name, hd[i].value);
  if (trailers_only) {
    for (int i = 0; i < nt; i++) nv[n++] = mknv(tr[i].name, tr[i].value);
    nghttp2_submit_response(h->s, e->stream_id, nv, n, NULL);
    if (own) free((void *)body);
    goto sent;
  }
  if (nt == 0) {
    snprintf(cl, sizeof cl, "%zu", len);
    nv[n++] = mknv("content-length", cl);
  } else { /* copy the trailers: nghttp2_submit_trailer runs later, from read_body */
    size_t bytes = sizeof(nghttp2_nv) * (size_t)nt;
    for (int i = 0; i < nt; i++) bytes += strlen(tr[i].name) + strlen(tr[i].value) + 2;
    nghttp2_nv *t = malloc(bytes);
    if (!t) goto fail;
    char *p = (char *)(t + nt);
    for (int i = 0; i < nt; i++) {
      size_t ln = strlen(tr[i].name), lv = strlen(tr[i].value);
      memcpy(p, tr[i].name, ln + 1);
      t[i].name = (uint8_t *)p;
      t[i].namelen = ln;
      p += ln + 1;
      memcpy(p, tr[i].value, lv + 1);
      t[i].value = (uint8_t *)p;
      t[i].valuelen = lv;
      p += lv + 1;
      t[i].flags = NGHTTP2_NV_FLAG_NONE;
    }
    e->trailers = t;
    e->ntrailers = (size_t)nt;
  }
  if (len == 0 && nt == 0) {
    nghttp2_submit_response(h->s, e->stream_id, nv, n, NULL);
    if (own) free((void *)body);
    goto sent;
  }
  if (own)
    e->resp = (uint8_t *)body;
  else if (len) {
    e->resp = malloc(len);
    if (!e->resp) goto fail_nobody;
    memcpy(e->resp, body, len);
  }
  e->resp_len = len;
  e->resp_off = 0;
  nghttp2_data_provider prd;
  prd.source.ptr = e;
  prd.read_callback = read_body;
  nghttp2_submit_response(h->s, e->stream_id, nv, n, &prd);
sent:
  free(nv);
  h->last_activity = ei__mono_ns();
  if (!h->in_feed) {
    h2_flush(h);
    arm_timer(h);
  }
  return;
fail:
  if (own) free((void *)body);
fail_nobody:
  free(nv);
  nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, e->stream_id, NGHTTP2_INTERNAL_ERROR);
  if (!h->in_feed) h2_flush(h);
}
