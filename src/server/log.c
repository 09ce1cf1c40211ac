/* src/server/log.c: the access log (one line per request on stderr) and the server's other messages.
 *
 * An access line:
 *   2026-11-28T09:50:01.123Z 127.0.0.1:40312 HTTP/1.1 POST /v2/models/fashion/infer model=fashion version=1
 *   status=200 1.234ms
 * (one line; gRPC responses add grpc-status=N; status 499 means the client went away first). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "conn.h"

uint64_t ei__mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void stamp(char *out, size_t outlen) {
  struct timeval tv;
  struct tm tm;
  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
           tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
}

/* Copies s into out, replacing control characters and spaces (the line stays one line, fields stay fields). */
static const char *clean(const char *s, char *out, size_t outlen) {
  size_t o = 0;
  if (!s || !*s) return "-";
  for (; *s && o + 1 < outlen; s++) {
    unsigned char ch = (unsigned char)*s;
    out[o++] = ch <= ' ' || ch == 0x7f ? '_' : (char)ch;
  }
  out[o] = 0;
  return out;
}

size_t ei__log_access_format(const ei__xchg *e, uint64_t t_end_ns, char *out, size_t cap) {
  char ts[96], method[16], path[256], model[128], version[32], grpc[24] = "";
  uint64_t start = e->x.t_received ? e->x.t_received : e->t_start;
  double ms = t_end_ns > start ? (double)(t_end_ns - start) / 1e6 : 0.0;
  stamp(ts, sizeof ts);
  if (e->grpc_status >= 0) snprintf(grpc, sizeof grpc, " grpc-status=%d", e->grpc_status);
  int n = snprintf(out, cap, "%s %s %s %s %s model=%s version=%s status=%d%s %.3fms\n", ts,
                   e->x.peer ? e->x.peer : "-", e->proto ? e->proto : "-", clean(e->x.method, method, sizeof method),
                   clean(e->x.path, path, sizeof path), clean(e->x.log_model, model, sizeof model),
                   clean(e->x.log_version, version, sizeof version), e->status, grpc, ms);
  if (n < 0) return 0;
  if ((size_t)n >= cap) { /* cut: the line still ends with its newline */
    n = (int)cap - 1;
    out[n - 1] = '\n';
  }
  return (size_t)n;
}

void ei__log_write(const char *line, size_t n) {
  if (n) fwrite(line, 1, n, stderr);
}

void ei__log_access(const ei__xchg *e, uint64_t t_end_ns) {
  char line[1024];
  ei__log_write(line, ei__log_access_format(e, t_end_ns, line, sizeof line));
}

void ei__log_msg(const char *fmt, ...) {
  char ts[96], line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  stamp(ts, sizeof ts);
  fprintf(stderr, "%s edgeinfer serve: %s\n", ts, line);
}
