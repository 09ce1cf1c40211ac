/* src/server/http.h: one HTTP exchange (request in, response out), the same for HTTP/1.1 (http1.c, http-parser)
 * and HTTP/2 (h2.c, nghttp2), so that the handlers (rest.c, grpc.c) do not know which carried it.
 *
 * conn.c accepts on each listener; on the HTTP port it reads the first 24 bytes of a connection and hands the
 * connection to h2.c when they are the HTTP/2 client preface, to http1.c otherwise; the gRPC port is HTTP/2
 * only. Either protocol collects a whole request (headers + body, bounded by the server's limits: a body over
 * max_body_bytes is answered 413 by the transport without buffering it) and calls the listener's handler once,
 * on the loop thread. The handler answers later (possibly after the core's done callback) with exactly one
 * ei__http_respond. If the client goes away first (connection closed, RST_STREAM), the transport calls
 * x->on_abort once (on the loop thread), after which the handler must not touch x except to call
 * ei__http_exchange_release; the exchange lives until both the transport and the handler released it.
 */
#ifndef EI_SERVER_HTTP_H
#define EI_SERVER_HTTP_H

#include <stddef.h>
#include <stdint.h>

typedef struct ei__http_header {
  const char *name;   /* lower case */
  const char *value;
} ei__http_header;

typedef struct ei__http_exchange ei__http_exchange;
typedef void (*ei__http_handler)(ei__http_exchange *x, void *ud);

struct ei__http_exchange {
  /* the request, valid until release */
  const char *method;       /* "GET", "POST" */
  const char *path;         /* without the query string, percent-decoded */
  const char *query;        /* after '?', or "" */
  int nheaders;
  const ei__http_header *headers;
  const uint8_t *body;
  size_t body_len;
  int http2;                /* 1 when carried by HTTP/2 (then trailers may be sent) */
  const char *peer;         /* "127.0.0.1:53412" for the access log */
  uint64_t t_received;      /* CLOCK_MONOTONIC ns when the request was complete */

  /* set by the handler */
  void (*on_abort)(ei__http_exchange *x); /* the client is gone; may be NULL */
  void *handler_data;

  void *transport;          /* private */

  /* set by the handler (optional; additive): the model and version for the access log line, valid until the
   * handler releases x */
  const char *log_model;
  const char *log_version;
};

/* A request header's value (case-insensitive name), or NULL. */
const char *ei__http_header_get(const ei__http_exchange *x, const char *name);

/* The response. body is copied or kept until sent (the transport owns it after the call when own_body is 1,
 * and frees it with free()). trailers: HTTP/2 only (gRPC's grpc-status / grpc-message); with status 200,
 * body_len 0, body NULL and trailers, HTTP/2 sends a trailers-only response (one HEADERS frame with
 * END_STREAM carrying :status, the headers and the trailers). Loop thread. */
void ei__http_respond(ei__http_exchange *x, int status, const ei__http_header *headers, int nheaders,
                      const void *body, size_t body_len, int own_body, const ei__http_header *trailers,
                      int ntrailers);

/* An early look (additive): a request's headers are complete and its body is still to come (x->body is not valid
 * yet). conn.c calls the listener's early hook (ei__grpc_early for ei__grpc_handle, ei__rest_early for
 * ei__rest_handle) at most once per exchange, on the loop thread, before the handler; it is a hint only (e.g. wake
 * the engine's pool for an inference whose body is arriving): it must not respond, keep x or change it. */
typedef void (*ei__http_early_fn)(const ei__http_exchange *x, void *ud);

/* The handler is done with x (after respond, or after on_abort). */
void ei__http_exchange_release(ei__http_exchange *x);

/* Length of the valid UTF-8 sequence at s (n bytes left; n >= 1), 0 when the bytes are not UTF-8 (overlong forms,
 * surrogates and code points above U+10FFFF included): for escaping text into JSON. */
size_t ei__http_utf8_len(const unsigned char *s, size_t n);

/* Convenience for REST: a JSON error body {"error": "..."} with the status. */
void ei__http_respond_error(ei__http_exchange *x, int status, const char *message);

#endif
