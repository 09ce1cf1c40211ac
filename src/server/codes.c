/* src/server/codes.c: the server's status codes in their HTTP and gRPC forms, and the KServe datatypes. */
#include <string.h>

#include "server.h"

static const struct {
  int http, grpc;
  const char *name;
} codes[] = {
    [EI_SRV_OK] = {200, 0, "ok"},
    [EI_SRV_INVALID] = {400, 3, "invalid"},
    [EI_SRV_NOT_FOUND] = {404, 5, "not found"},
    [EI_SRV_METHOD] = {405, 12, "method not allowed"},
    [EI_SRV_TOO_LARGE] = {413, 8, "too large"},
    [EI_SRV_MEDIA] = {415, 3, "unsupported media type"},
    [EI_SRV_UNAVAILABLE] = {503, 14, "unavailable"},
    [EI_SRV_EXHAUSTED] = {503, 8, "overloaded"},
    [EI_SRV_DEADLINE] = {504, 4, "deadline exceeded"},
    [EI_SRV_CANCELLED] = {499, 1, "cancelled"},
    [EI_SRV_UNIMPLEMENTED] = {501, 12, "unimplemented"},
    [EI_SRV_INTERNAL] = {500, 13, "internal"},
};

static int known(ei__srv_code c) { return (unsigned)c < sizeof codes / sizeof codes[0]; }

int ei__srv_http_status(ei__srv_code c) { return known(c) ? codes[c].http : 500; }
int ei__srv_grpc_status(ei__srv_code c) { return known(c) ? codes[c].grpc : 13; }
const char *ei__srv_code_name(ei__srv_code c) { return known(c) ? codes[c].name : "internal"; }

static const struct {
  const char *name;
  size_t size;
  ei_dtype engine;
} dtypes[] = {
    [EI_KS_INVALID] = {"", 0, EI_UNDEFINED}, [EI_KS_BOOL] = {"BOOL", 1, EI_BOOL},
    [EI_KS_UINT8] = {"UINT8", 1, EI_UINT8},  [EI_KS_UINT16] = {"UINT16", 2, EI_UINT16},
    [EI_KS_UINT32] = {"UINT32", 4, EI_UINT32}, [EI_KS_UINT64] = {"UINT64", 8, EI_UINT64},
    [EI_KS_INT8] = {"INT8", 1, EI_INT8},     [EI_KS_INT16] = {"INT16", 2, EI_INT16},
    [EI_KS_INT32] = {"INT32", 4, EI_INT32},  [EI_KS_INT64] = {"INT64", 8, EI_INT64},
    [EI_KS_FP16] = {"FP16", 2, EI_FLOAT16},  [EI_KS_FP32] = {"FP32", 4, EI_FLOAT},
    [EI_KS_FP64] = {"FP64", 8, EI_DOUBLE},   [EI_KS_BYTES] = {"BYTES", 0, EI_STRING},
    [EI_KS_BF16] = {"BF16", 2, EI_UNDEFINED},
};
#define NDTYPES ((int)(sizeof dtypes / sizeof dtypes[0]))

const char *ei__ks_dtype_name(ei__ks_dtype t) { return t > 0 && (int)t < NDTYPES ? dtypes[t].name : "INVALID"; }

ei__ks_dtype ei__ks_dtype_parse(const char *name) {
  for (int i = 1; name && i < NDTYPES; i++)
    if (!strcmp(name, dtypes[i].name)) return (ei__ks_dtype)i;
  return EI_KS_INVALID;
}

size_t ei__ks_dtype_size(ei__ks_dtype t) { return t > 0 && (int)t < NDTYPES ? dtypes[t].size : 0; }

ei__ks_dtype ei__ks_from_engine(ei_dtype t) {
  for (int i = 1; t != EI_UNDEFINED && i < NDTYPES; i++)
    if (dtypes[i].engine == t) return (ei__ks_dtype)i;
  return EI_KS_INVALID;
}
