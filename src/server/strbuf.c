/* src/server/strbuf.c: the growable string and the truncating formatted write of strbuf.h. */
#include "strbuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ei__sb_grow(ei__sb *b, size_t more) {
  if (b->oom) return -1;
  if (more > SIZE_MAX / 4 - b->n) { /* no response comes near: refuse instead of overflowing */
    b->oom = 1;
    return -1;
  }
  const size_t need = b->n + more + 1;
  if (need <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 1024;
  while (cap < need) cap *= 2;
  char *q = realloc(b->p, cap);
  if (!q) {
    b->oom = 1;
    return -1;
  }
  b->p = q;
  b->cap = cap;
  return 0;
}

void ei__sb_put(ei__sb *b, const void *s, size_t n) {
  if (ei__sb_grow(b, n) < 0) return;
  if (n) memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
}

void ei__sb_puts(ei__sb *b, const char *s) { ei__sb_put(b, s, strlen(s)); }

void ei__sb_printf(ei__sb *b, const char *fmt, ...) {
  char tmp[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof tmp) {
    ei__sb_put(b, tmp, (size_t)n);
    return;
  }
  if (ei__sb_grow(b, (size_t)n) < 0) return;
  va_start(ap, fmt);
  vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->n += (size_t)n;
}

void ei__fmt(char *dst, size_t n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(dst, n, fmt, ap);
  va_end(ap);
}
