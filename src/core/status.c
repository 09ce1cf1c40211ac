/* Status codes, their strings, error-message formatting and small shared utilities. */
#include <stdio.h>
#include <time.h>

#include "core/core.h"

const char *ei_strerror(ei_status s) {
  switch (s) {
    case EI_OK: return "ok";
    case EI_E_INVALID_ARGUMENT: return "invalid argument";
    case EI_E_IO: return "i/o error";
    case EI_E_MALFORMED: return "malformed model";
    case EI_E_INVALID_MODEL: return "invalid model";
    case EI_E_UNSUPPORTED: return "unsupported";
    case EI_E_SHAPE: return "shape error";
    case EI_E_NOMEM: return "out of memory";
    case EI_E_LIMIT: return "limit exceeded";
    case EI_E_RUNTIME: return "runtime error";
    case EI_E_INTERNAL: return "internal error";
  }
  return "unknown status";
}

ei_status ei__err(char *err, size_t errlen, ei_status s, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return s;
}

const char *ei_dtype_name(ei_dtype t) {
  switch (t) {
    case EI_FLOAT: return "float32";
    case EI_UINT8: return "uint8";
    case EI_INT8: return "int8";
    case EI_UINT16: return "uint16";
    case EI_INT16: return "int16";
    case EI_INT32: return "int32";
    case EI_INT64: return "int64";
    case EI_STRING: return "string";
    case EI_BOOL: return "bool";
    case EI_FLOAT16: return "float16";
    case EI_DOUBLE: return "float64";
    case EI_UINT32: return "uint32";
    case EI_UINT64: return "uint64";
    default: return "?";
  }
}

size_t ei_dtype_size(ei_dtype t) {
  switch (t) {
    case EI_FLOAT: case EI_INT32: case EI_UINT32: return 4;
    case EI_UINT8: case EI_INT8: case EI_BOOL: return 1;
    case EI_UINT16: case EI_INT16: case EI_FLOAT16: return 2;
    case EI_INT64: case EI_DOUBLE: case EI_UINT64: return 8;
    default: return 0;
  }
}

int64_t ei_tensor_numel(const ei_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++) n *= t->dims[i];
  return n;
}

uint64_t ei__now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
