/* src/server/conn.h: listeners and connections of `edgeinfer serve` (conn.c), and what the two HTTP protocols
 * (http1.c, h2.c) share: the connection (a libuv TCP handle with one timer), its writes, and the exchange
 * storage behind http.h's ei__http_exchange.
 *
 * Threads: everything here runs on the loop thread.
 * Lifetimes: a connection lives from accept to the close callbacks of its two handles; its protocol state is
 * freed by proto->closed, which first aborts (x->on_abort) every exchange the handler still holds. An exchange
 * holds two references (transport, handler) and is freed at the last ei__http_exchange_release / xchg_unref.
 */
#ifndef EI_SERVER_CONN_H
#define EI_SERVER_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "http.h"

/* ---- limits (the serve command's options) ---- */
typedef struct ei__net_limits {
  size_t max_body_bytes;   /* default 64 MiB; a larger body is answered 413 without being buffered */
  size_t max_header_bytes; /* default 64 KiB: request line + headers (HTTP/1.1), header block (HTTP/2) */
  int max_connections;     /* default 256; beyond it new connections are closed at once */
  int header_timeout_ms;   /* default 10000: a request's line and headers must arrive within this */
  int idle_timeout_secs;   /* default 60: a connection with no bytes and no request in flight is closed */
  int h2_max_streams;      /* default 128: SETTINGS_MAX_CONCURRENT_STREAMS */
  int h2_window_bytes;     /* default 16 MiB: SETTINGS_INITIAL_WINDOW_SIZE and the connection window */
} ei__net_limits;
void ei__net_limits_init(ei__net_limits *l);

typedef struct ei__net ei__net;
/* NULL when out of memory. */
ei__net *ei__net_new(uv_loop_t *loop, const ei__net_limits *lim);
/* Binds and listens on host:port (port 0: a free port, written to *bound). http2_only: the gRPC port (no sniff,
 * HTTP/2 only). Returns 0 or -1 with err filled. */
int ei__net_listen(ei__net *n, const char *host, int port, int http2_only, ei__http_handler handler, void *ud,
                   int *bound, char *err, size_t errlen);
/* Graceful shutdown: stop accepting, HTTP/2 GOAWAY, idle HTTP/1.1 connections closed, busy ones closed after
 * their response (sent with Connection: close). cb runs once every connection is gone. */
void ei__net_shutdown(ei__net *n, void (*cb)(void *ud), void *ud);
/* Closes every listener and connection at once (in-flight exchanges are aborted); cb when the handles are
 * closed. */
void ei__net_close(ei__net *n, void (*cb)(void *ud), void *ud);
/* After the close callback (or when nothing was ever opened). */
void ei__net_free(ei__net *n);
int ei__net_connections(const ei__net *n);
/* Open connections of the process by protocol: out[0] HTTP/1.1, out[1] HTTP/2 (h2c), out[2] gRPC (additive; any
 * thread: GET /metrics). */
void ei__conn_counts(int out[3]);

/* ---- a connection (for http1.c and h2.c) ---- */
typedef struct ei__conn ei__conn;

typedef struct ei__proto {
  const char *name; /* "HTTP/1.1", "HTTP/2" for the access log */
  int (*start)(ei__conn *c);                          /* make c->ps; 0 or -1 */
  int (*feed)(ei__conn *c, const char *data, size_t n); /* bytes received; -1: close the connection */
  void (*timeout)(ei__conn *c);                       /* the connection's timer fired */
  void (*shutdown)(ei__conn *c);                      /* graceful server shutdown began */
  void (*closed)(ei__conn *c);  /* the connection is going (maybe inside feed): abort exchanges, send nothing */
  void (*destroy)(ei__conn *c); /* the handles are closed: free c->ps */
} ei__proto;

extern const ei__proto ei__proto_http1;
extern const ei__proto ei__proto_h2;

struct ei__conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  ei__net *net;
  const struct ei__listener *listener;
  const ei__proto *proto;
  void *ps; /* the protocol's state */
  char sniff[24];
  size_t nsniff;
  char peer[64];
  int closing;   /* close begun: no more reads, writes or handler calls */
  int paused;    /* reading stopped (backpressure) */
  int lingering; /* closing: our side shut, the client's bytes are read and dropped */
  int open_handles;
  ei__conn *prev, *next;
};

const ei__net_limits *ei__conn_limits(const ei__conn *c);
int ei__conn_draining(const ei__conn *c);
int ei__conn_grpc(const ei__conn *c); /* accepted on the gRPC (HTTP/2-only) listener */
void ei__conn_dispatch(ei__conn *c, ei__http_exchange *x); /* calls the listener's handler */
/* The request's headers are complete and a body follows: the listener's early hook (http.h), if any. */
void ei__conn_early(ei__conn *c, const ei__http_exchange *x);
/* Queues bytes (copied) / a malloc'd buffer (freed after the write). Ignored once closing. */
void ei__conn_write(ei__conn *c, const void *data, size_t n);
void ei__conn_write_owned(ei__conn *c, void *data, size_t n);
size_t ei__conn_write_queued(const ei__conn *c);
/* graceful 1: close after the queued writes are sent (shutdown(SHUT_WR) first); 2: the same, then read and drop
 * what the client still sends for up to 2 s (after an error response to a request not read in full); 0: at once. */
void ei__conn_close(ei__conn *c, int graceful);
/* (Re)arms the connection's timer; 0 stops it. */
void ei__conn_timer(ei__conn *c, uint64_t ms);
void ei__conn_pause(ei__conn *c, int pause);

/* ---- an exchange (the storage behind ei__http_exchange) ---- */
typedef struct ei__xchg {
  ei__http_exchange x; /* first: the handler's view */
  int refs;            /* transport + handler */
  int dispatched;      /* the handler has it */
  int responded;
  int aborted;         /* on_abort called */
  int req_done;        /* the whole request has arrived (HTTP/2: END_STREAM) */
  ei__conn *conn;      /* NULL once the connection is gone */
  int32_t stream_id;   /* HTTP/2 */
  int status;          /* the response status (for the log) */
  const char *proto;   /* "HTTP/1.1" or "HTTP/2" */
  /* request storage */
  char *hbuf;          /* method, path, query, header names and values, NUL-terminated */
  size_t hlen, hcap;
  struct { size_t name, value; } *hoff; /* offsets into hbuf while collecting */
  int nh, hcapn;
  size_t url_off, method_off;
  uint8_t *body;
  size_t body_len, body_cap;
  size_t content_length; /* declared (Content-Length, or a gRPC message's length prefix), or (size_t)-1 */
  uint8_t *body_base;  /* the allocation: body is body_base + a lead of at most 63 bytes */
  size_t body_align_at; /* the first allocation puts body + body_align_at on a 64-byte boundary (a hint: gRPC's
                           raw_input_contents, so that the engine reads it in place) */
  int too_large;       /* the body is over the limit: drop it, answer 413 */
  uint64_t t_start;    /* first byte (or HEADERS) */
  /* response storage (HTTP/2 sends from here) */
  uint8_t *resp;
  size_t resp_len, resp_off;
  void *trailers;      /* nghttp2_nv array + strings (h2.c) */
  size_t ntrailers;
  int grpc_status;     /* from a grpc-status trailer, -1 when none (access log) */
  struct ei__xchg *next; /* the protocol's list */
} ei__xchg;

ei__xchg *ei__xchg_new(ei__conn *c, const char *proto);
/* Appends bytes to the header buffer (0, or -1 over max_header_bytes / out of memory). */
int ei__xchg_hput(ei__xchg *e, const char *s, size_t n);
/* Starts a header: name (lower-cased) and value are added by the calls below. */
int ei__xchg_header(ei__xchg *e, const char *name, size_t nlen, const char *value, size_t vlen);
/* Builds x.method/path/query/headers from the collected pieces. method_off/url_off must have been set. Returns
 * 0, or -1 on a malformed URL (bad percent-encoding). */
int ei__xchg_finish_headers(ei__xchg *e);
/* Appends body bytes, bounded by max_body_bytes (sets too_large and drops the bytes beyond). -1: out of memory.
 * The buffer is sized once when the declared length is known and not far ahead of the bytes received (at most
 * 4 x them, or 1 MiB), else it grows by doubling, never past the declared length. */
int ei__xchg_body(ei__xchg *e, const char *data, size_t n);
void ei__xchg_unref(ei__xchg *e);
/* The transport is done with e (connection closed or stream gone): abort it if the handler still waits. */
void ei__xchg_detach(ei__xchg *e);
/* Protocol-specific sending, called by ei__http_respond (e->conn is non-NULL, not yet responded). */
void ei__h1_respond(ei__xchg *e, int status, const ei__http_header *h, int nh, const void *body, size_t len,
                    int own);
void ei__h2_respond(ei__xchg *e, int status, const ei__http_header *h, int nh, const void *body, size_t len,
                    int own, const ei__http_header *t, int nt);
/* A response the transport makes itself (413, 400, 408): {"error": msg}. Also dispatches nothing. */
void ei__xchg_error_body(char *out, size_t outlen, const char *msg);

/* ---- the access log (log.c) ---- */
void ei__log_access(const ei__xchg *e, uint64_t t_end_ns);
/* The same line in two steps (ei__http_respond formats it before sending and writes it after, so that the
 * response does not wait for the log's write): formats into out (cap >= 2; a longer line is cut, still ending with
 * a newline), returns its length; then ei__log_write. */
size_t ei__log_access_format(const ei__xchg *e, uint64_t t_end_ns, char *out, size_t cap);
void ei__log_write(const char *line, size_t n);
void ei__log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
uint64_t ei__mono_ns(void);

#endif
