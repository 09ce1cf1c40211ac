/* src/server/rest.h: the KServe v2 REST API (rest.c) as an HTTP exchange handler (http.h) for the HTTP port.
 *
 * Routes (all answers JSON; every error {"error": "..."} with the status of server.h's codes):
 *   GET  /v2                                           server metadata {name, version, extensions}
 *   GET  /v2/health/live | /v2/health/ready            {"live": true} / {"ready": true}; 503 when not
 *   GET  /v2/models/M[/versions/V]                     model metadata
 *   GET  /v2/models/M[/versions/V]/ready               {"name", "ready": true}; 404 unknown, 503 not ready
 *   POST /v2/models/M[/versions/V]/infer               JSON tensors (nested or flat) and the binary tensor
 *                                                      data extension (Inference-Header-Content-Length)
 *   POST /v2/models/M[/versions/V]/classify[?k=K]      image/jpeg or image/png body -> top-k {index, label, score}
 *   GET  /v2/models[/M[/versions/V]]/stats             Triton's statistics shapes
 *   POST /v2/repository/index                          [{name, version, state, reason}]
 *   GET  /metrics                                      Prometheus text format 0.0.4 (metrics.h), built on the work
 *                                                      pool
 * A known path with another method: 405 (with Allow). Bodies are parsed on the service thread (decode), responses
 * built on the executor thread (encode); the loop thread only routes and sends.
 */
#ifndef EI_SERVER_REST_H
#define EI_SERVER_REST_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "server.h"

typedef struct ei__rest {
  ei__server *srv;
  size_t max_json_bytes; /* the JSON part of an infer body (default 8 MiB); over it: 413 */
} ei__rest;

/* ud: an ei__rest that outlives the listener. */
void ei__rest_handle(ei__http_exchange *x, void *ud);
/* The early hook (http.h) of the REST listener: a POST .../infer or .../classify whose body is arriving makes the
 * core expect a run (ei__srv_expect). */
void ei__rest_early(const ei__http_exchange *x, void *ud);

/* Caps jansson's memory, all parses in flight together, at bytes (installs jansson's allocator hooks: call once,
 * before any JSON is parsed in the process, e.g. before ei__server_create reads the config files). A parse that
 * would go over it fails: 503. */
void ei__rest_json_budget(size_t bytes);

#endif
