/* src/server/http1.c: HTTP/1.1 connections (http-parser): keep-alive, Content-Length and chunked bodies, a body
 * over max_body_bytes answered 413 as soon as it is known (from Content-Length, or while a chunked body grows)
 * without buffering it, Expect: 100-continue, pipelining (requests answered one at a time, in order: bytes that
 * arrive while a request is in flight wait in a bounded buffer), the header-time bound (408) and the idle timeout.
 * Loop thread only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>

#include "conn.h"

#define PIPELINE_MAX ((size_t)1 << 20) /* bytes buffered behind an in-flight request before reading stops */

enum { PH_IDLE, PH_HEADERS, PH_BODY, PH_INFLIGHT };
enum { ST_NONE, ST_URL, ST_FIELD, ST_VALUE };

typedef struct h1 {
  http_parser p;
  ei__conn *c;
  ei__xchg *cur;      /* being received */
  ei__xchg *inflight; /* with the handler, not answered yet */
  int phase;
  int st;             /* which piece the parser is delivering */
  int keep_alive;     /* of the current request */
  int close_after;    /* close once the in-flight response is written */
  int in_run;
  int resume;         /* the timer fires at once to parse the pipelined bytes */
  char *pending;
  size_t npending, cap;
} h1;

static void h1_run(h1 *h, const char *data, size_t n);

static const char *reason(int status) {
  const char *r = http_status_str((enum http_status)status);
  if (r && strcmp(r, "<unknown>")) return r;
  return status == 499 ? "Client Closed Request" : "Status";
}

/* A response the transport makes itself; closes the connection after it (the request's framing may be lost). */
static void h1_fail(h1 *h, int status, const char *msg) {
  ei__conn *c = h->c;
  char body[512], head[256];
  ei__xchg *e = h->cur;
  ei__xchg_error_body(body, sizeof body, msg);
  size_t blen = strlen(body);
  int hl = snprintf(head, sizeof head,
                    "HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %zu\r\nconnection: close\r\n\r\n",
                    status, reason(status), blen);
  ei__conn_write(c, head, (size_t)hl);
  ei__conn_write(c, body, blen);
  if (e) {
    e->status = status;
    e->responded = 1;
    if (!e->x.method) e->x.method = "-";
    if (!e->x.path) e->x.path = "-";
    ei__log_access(e, ei__mono_ns());
  }
  ei__log_msg("%s: %d %s (connection closed)", c->peer, status, msg);
  ei__conn_close(c, 2);
}

/* ---- http-parser callbacks ---- */
static int cb_begin(http_parser *p) {
  h1 *h = p->data;
  h->cur = ei__xchg_new(h->c, "HTTP/1.1");
  if (!h->cur) return -1;
  h->phase = PH_HEADERS;
  h->st = ST_NONE;
  ei__conn_timer(h->c, (uint64_t)ei__conn_limits(h->c)->header_timeout_ms);
  return 0;
}

/* Appends to the request's header storage; over max_header_bytes: 431 and the connection closes. */
static int put(h1 *h, const char *at, size_t n) {
  if (ei__xchg_hput(h->cur, at, n) == 0) return 0;
  h1_fail(h, 431, "request line and headers are over the limit");
  return -1;
}

static int cb_url(http_parser *p, const char *at, size_t n) {
  h1 *h = p->data;
  if (h->st != ST_URL) {
    h->cur->url_off = h->cur->hlen;
    h->st = ST_URL;
  }
  return put(h, at, n);
}

static int new_header(ei__xchg *e) {
  if (e->nh == e->hcapn) {
    int cap = e->hcapn ? e->hcapn * 2 : 16;
    if (cap > 1024) return -1;
    void *q = realloc(e->hoff, (size_t)cap * sizeof *e->hoff);
    if (!q) return -1;
    e->hoff = q;
    e->hcapn = cap;
  }
  e->hoff[e->nh].name = e->hlen;
  e->hoff[e->nh].value = e->hlen;
  e->nh++;
  return 0;
}

static int cb_field(http_parser *p, const char *at, size_t n) {
  h1 *h = p->data;
  ei__xchg *e = h->cur;
  if (h->st != ST_FIELD) {
    if (put(h, "", 1) < 0) return -1;
    if (new_header(e) < 0) {
      h1_fail(h, 431, "too many request headers");
      return -1;
    }
    h->st = ST_FIELD;
  }
  return put(h, at, n);
}

static int cb_value(http_parser *p, const char *at, size_t n) {
  h1 *h = p->data;
  ei__xchg *e = h->cur;
  if (h->st != ST_VALUE) {
    if (put(h, "", 1) < 0) return -1;
    e->hoff[e->nh - 1].value = e->hlen;
    h->st = ST_VALUE;
  }
  return put(h, at, n);
}

static int cb_headers_complete(http_parser *p) {
  h1 *h = p->data;
  ei__xchg *e = h->cur;
  ei__conn *c = h->c;
  const ei__net_limits *lim = ei__conn_limits(c);
  if (ei__xchg_hput(e, "", 1) < 0) goto too_big;
  if (h->st == ST_FIELD) { /* a name without a value cannot happen with http-parser; be safe */
    e->hoff[e->nh - 1].value = e->hlen - 1;
  }
  e->method_off = e->hlen;
  const char *m = http_method_str((enum http_method)p->method);
  if (ei__xchg_hput(e, m, strlen(m)) < 0 || ei__xchg_hput(e, "", 1) < 0) goto too_big;
  for (int i = 0; i < e->nh; i++)
    for (char *s = e->hbuf + e->hoff[i].name; *s; s++)
      if (*s >= 'A' && *s <= 'Z') *s = (char)(*s - 'A' + 'a');
  int r = ei__xchg_finish_headers(e);
  if (r == -1) {
    h1_fail(h, 400, "malformed percent-encoding in the request URL");
    return -1;
  }
  if (r < 0) goto oom;
  h->keep_alive = http_should_keep_alive(p) && !p->upgrade;
  int chunked = (p->flags & F_CHUNKED) != 0;
  if (!chunked && p->content_length != ULLONG_MAX) {
    if (p->content_length > lim->max_body_bytes) {
      char msg[160];
      snprintf(msg, sizeof msg, "request body of %llu bytes is over the limit of %zu bytes (--max-body-bytes)",
               (unsigned long long)p->content_length, lim->max_body_bytes);
      h1_fail(h, 413, msg);
      return -1;
    }
    e->content_length = (size_t)p->content_length;
  }
  const char *expect = ei__http_header_get(&e->x, "expect");
  if (expect) {
    if (strcasecmp(expect, "100-continue")) {
      h1_fail(h, 417, "unsupported Expect header");
      return -1;
    }
    if (p->http_minor >= 1) {
      static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
      ei__conn_write(c, cont, sizeof cont - 1);
    }
  }
  h->phase = PH_BODY;
  ei__conn_timer(c, (uint64_t)lim->idle_timeout_secs * 1000);
  if (chunked || (p->content_length != ULLONG_MAX && p->content_length > 0)) ei__conn_early(c, &e->x);
  return 0;
too_big:
  h1_fail(h, 431, "request headers are over the limit");
  return -1;
oom:
  h1_fail(h, 500, "out of memory");
  return -1;
}

static int cb_body(http_parser *p, const char *at, size_t n) {
  h1 *h = p->data;
  ei__xchg *e = h->cur;
  if (ei__xchg_body(e, at, n) < 0) {
    h1_fail(h, 500, "out of memory");
    return -1;
  }
  if (e->too_large) {
    char msg[160];
    snprintf(msg, sizeof msg, "request body is over the limit of %zu bytes (--max-body-bytes)",
             ei__conn_limits(h->c)->max_body_bytes);
    h1_fail(h, 413, msg);
    return -1;
  }
  return 0;
}

static int cb_message_complete(http_parser *p) {
  h1 *h = p->data;
  h->cur->x.t_received = ei__mono_ns();
  http_parser_pause(p, 1);
  return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = cb_begin,
    .on_url = cb_url,
    .on_header_field = cb_field,
    .on_header_value = cb_value,
    .on_headers_complete = cb_headers_complete,
    .on_body = cb_body,
    .on_message_complete = cb_message_complete,
};

/* ---- the connection ---- */
static int pending_add(h1 *h, const char *data, size_t n) {
  if (h->npending + n > h->cap) {
    size_t cap = h->cap ? h->cap : 4096;
    while (cap < h->npending + n) cap *= 2;
    char *q = realloc(h->pending, cap);
    if (!q) return -1;
    h->pending = q;
    h->cap = cap;
  }
  memcpy(h->pending + h->npending, data, n);
  h->npending += n;
  if (h->npending > PIPELINE_MAX) ei__conn_pause(h->c, 1);
  return 0;
}

static void dispatch(h1 *h) {
  ei__xchg *e = h->cur;
  h->cur = NULL;
  h->inflight = e;
  h->phase = PH_INFLIGHT;
  if (!h->keep_alive || ei__conn_draining(h->c)) h->close_after = 1;
  ei__conn_timer(h->c, 0);
  ei__conn_dispatch(h->c, &e->x);
}

static void h1_run(h1 *h, const char *data, size_t n) {
  ei__conn *c = h->c;
  h->in_run = 1;
  while (n > 0 && !c->closing) {
    if (h->inflight) { /* pipelined: wait for the response in flight (dropped when the connection closes after it) */
      if (!h->close_after && pending_add(h, data, n) < 0) ei__conn_close(c, 0);
      break;
    }
    if (h->close_after && h->phase == PH_IDLE) break; /* no new request on a closing connection */
    size_t used = http_parser_execute(&h->p, &settings, data, n);
    enum http_errno en = HTTP_PARSER_ERRNO(&h->p);
    if (c->closing) break;
    if (en == HPE_PAUSED) {
      http_parser_pause(&h->p, 0);
      data += used;
      n -= used;
      dispatch(h);
      continue;
    }
    if (en != HPE_OK) {
      char msg[160];
      snprintf(msg, sizeof msg, "malformed HTTP/1.1 request: %s", http_errno_description(en));
      h1_fail(h, en == HPE_HEADER_OVERFLOW ? 431 : 400, msg);
      break;
    }
    if (h->p.upgrade) { /* protocol upgrade (h2c, websocket) is not offered */
      h1_fail(h, 400, "protocol upgrade is not supported (use HTTP/2 with prior knowledge)");
      break;
    }
    data += used;
    n -= used;
    if (used == 0) break;
  }
  h->in_run = 0;
  if (!c->closing && (h->phase == PH_BODY || (h->phase == PH_IDLE && !h->resume)))
    ei__conn_timer(c, (uint64_t)ei__conn_limits(c)->idle_timeout_secs * 1000);
}

static void h1_resume(h1 *h) {
  char *buf = h->pending;
  size_t n = h->npending;
  h->pending = NULL;
  h->npending = h->cap = 0;
  ei__conn_pause(h->c, 0);
  if (n) h1_run(h, buf, n);
  free(buf);
}

static int h1_start(ei__conn *c) {
  h1 *h = calloc(1, sizeof *h);
  if (!h) return -1;
  http_parser_init(&h->p, HTTP_REQUEST);
  h->p.data = h;
  h->c = c;
  c->ps = h;
  return 0;
}

static int h1_feed(ei__conn *c, const char *data, size_t n) {
  h1 *h = c->ps;
  if (h->inflight || h->npending) {
    if (!h->close_after && pending_add(h, data, n) < 0) return -1;
    return 0;
  }
  h1_run(h, data, n);
  return 0;
}

static void h1_timeout(ei__conn *c) {
  h1 *h = c->ps;
  const ei__net_limits *lim = ei__conn_limits(c);
  char msg[160];
  if (h->resume) {
    h->resume = 0;
    ei__conn_timer(c, (uint64_t)lim->idle_timeout_secs * 1000);
    h1_resume(h);
    return;
  }
  switch (h->phase) {
  case PH_HEADERS:
    snprintf(msg, sizeof msg, "request headers not received within %d ms", lim->header_timeout_ms);
    h1_fail(h, 408, msg);
    break;
  case PH_BODY:
    snprintf(msg, sizeof msg, "request body stalled for %d s", lim->idle_timeout_secs);
    h1_fail(h, 408, msg);
    break;
  case PH_IDLE:
    ei__conn_close(c, 0);
    break;
  default:
    break;
  }
}

static void h1_shutdown(ei__conn *c) {
  h1 *h = c->ps;
  if (h->phase == PH_IDLE && !h->inflight)
    ei__conn_close(c, 0);
  else
    h->close_after = 1; /* the response in flight (or the one being received) closes the connection */
}

static void h1_closed(ei__conn *c) {
  h1 *h = c->ps;
  if (!h) return;
  ei__xchg *cur = h->cur, *inflight = h->inflight;
  h->cur = h->inflight = NULL;
  if (cur) ei__xchg_detach(cur);
  if (inflight) ei__xchg_detach(inflight);
}

static void h1_destroy(ei__conn *c) {
  h1 *h = c->ps;
  if (!h) return;
  free(h->pending);
  free(h);
  c->ps = NULL;
}

const ei__proto ei__proto_http1 = {"HTTP/1.1", h1_start, h1_feed, h1_timeout, h1_shutdown, h1_closed, h1_destroy};

void ei__h1_respond(ei__xchg *e, int status, const ei__http_header *hd, int nh, const void *body, size_t len,
                    int own) {
  ei__conn *c = e->conn;
  h1 *h = c->ps;
  int head_only = e->x.method && !strcmp(e->x.method, "HEAD");
  if (ei__conn_draining(c)) h->close_after = 1;
  size_t cap = 128;
  for (int i = 0; i < nh; i++) cap += strlen(hd[i].name) + strlen(hd[i].value) + 4;
  size_t total = cap + (head_only ? 0 : len);
  char *buf = malloc(total);
  if (!buf) {
    if (own) free((void *)body);
    ei__conn_close(c, 0);
    return;
  }
  size_t o = (size_t)snprintf(buf, cap, "HTTP/1.1 %d %s\r\n", status, reason(status));
  for (int i = 0; i < nh; i++) {
    if (!strcasecmp(hd[i].name, "content-length") || !strcasecmp(hd[i].name, "connection")) continue;
    o += (size_t)snprintf(buf + o, cap - o, "%s: %s\r\n", hd[i].name, hd[i].value);
  }
  o += (size_t)snprintf(buf + o, cap - o, "content-length: %zu\r\n%s\r\n", len,
                        h->close_after ? "connection: close\r\n" : "");
  if (!head_only && len) memcpy(buf + o, body, len);
  if (own) free((void *)body);
  ei__conn_write_owned(c, buf, o + (head_only ? 0 : len));
  if (h->inflight == e) {
    h->inflight = NULL;
    e->conn = NULL;
    ei__xchg_unref(e); /* the transport's reference */
  }
  if (h->close_after) {
    ei__conn_close(c, 1);
    return;
  }
  h->phase = PH_IDLE;
  if (h->npending && !h->in_run) { /* parse the pipelined bytes on the next loop turn (not inside respond) */
    h->resume = 1;
    ei__conn_timer(c, 1);
  } else if (!h->in_run)
    ei__conn_timer(c, (uint64_t)ei__conn_limits(c)->idle_timeout_secs * 1000);
}
