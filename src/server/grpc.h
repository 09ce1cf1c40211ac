/* src/server/grpc.h: the KServe v2 gRPC service (inference.GRPCInferenceService, proto/grpc_service.proto) as an
 * HTTP/2 exchange handler (http.h). The gRPC listener of conn.c/h2.c calls ei__grpc_handle once per complete
 * request, on the loop thread, with ud = the ei__server.
 *
 * What a call goes through (grpc.c):
 *   loop thread     :method POST (else HTTP 405), content-type application/grpc or application/grpc+proto (else
 *                   HTTP 415), te: trailers, the route /inference.GRPCInferenceService/<Rpc> (unknown:
 *                   UNIMPLEMENTED), grpc-timeout (1-8 digits + H/M/S/m/u/n) into the request's deadline, the
 *                   5-byte message prefix (compressed flag: UNIMPLEMENTED; exactly one message whose length
 *                   matches the body). The control RPCs (live, ready, metadata, index, statistics, load/unload)
 *                   are answered right there (their messages are capped at EI_GRPC_CONTROL_MAX bytes).
 *   service thread  ModelInfer: the protobuf is unpacked with a per-request ProtobufCAllocator over the
 *                   request arena (budget: 10 x the message + 64 KiB); raw_input_contents are not copied (a
 *                   wire scan takes them out before protobuf-c, which would copy every bytes field; h2.c put the
 *                   first one on a 64-byte boundary, so the engine reads it in place); typed
 *                   contents are converted into the tensors' raw bytes with range checks.
 *   executor thread the response is packed (raw_output_contents point at the results, not copied; an output
 *                   asked with the parameter classification=k comes from the core as BYTES "score:index[:label]").
 *   loop thread     headers (:status 200, content-type application/grpc), the message, trailers grpc-status /
 *                   grpc-message (percent-encoded); an error is a trailers-only response.
 * A call whose client goes away (RST_STREAM, disconnect) is cancelled in the core (ei__req_cancel); the exchange
 * and the request are released once, when the core's done callback runs.
 */
#ifndef EI_SERVER_GRPC_H
#define EI_SERVER_GRPC_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"

#define EI_GRPC_CONTROL_MAX (64 * 1024)

void ei__grpc_handle(ei__http_exchange *x, void *ud);
/* The early hook (http.h) of the gRPC listener: a ModelInfer whose message is arriving makes the core expect a
 * run (ei__srv_expect). */
void ei__grpc_early(const ei__http_exchange *x, void *ud);

/* The first bytes of a request body (n of them, the start of a framed message): *total = the body's length as its
 * 5-byte prefix declares it, and *raw_at = the offset in the body of the first raw_input_contents' bytes when a
 * ModelInferRequest's top-level fields up to it are among these bytes (else 0). For the transport (h2.c): size the
 * body once and align the tensor bytes. Returns 0, or -1 when n < 5. No validation: the decode does that. */
int ei__grpc_body_plan(const uint8_t *data, size_t n, size_t *total, size_t *raw_at);

/* grpc-timeout: 1 to 8 ASCII digits and a unit (H, M, S, m, u, n). Returns 0 and the duration in ns
 * (saturated at 2^62), or -1 when malformed. */
int ei__grpc_parse_timeout(const char *s, uint64_t *ns);

/* grpc-message's percent-encoding: bytes outside 0x20..0x7e and '%' become %XX. Writes at most cap bytes
 * (cap >= 1, always NUL-terminated; a partial escape is never written). Returns the length written. */
size_t ei__grpc_percent_encode(const char *s, char *out, size_t cap);

#endif
