/* src/server/strbuf.h: a growable NUL-terminated byte string for building responses (REST JSON, the /metrics page),
 * and a truncating formatted write into a fixed buffer.
 * An allocation failure sets oom and turns every later write into a no-op; the owner checks oom once at the end. */
#ifndef EI_SERVER_STRBUF_H
#define EI_SERVER_STRBUF_H

#include <stddef.h>

typedef struct ei__sb {
  char *p;      /* malloc'd; NULL until the first write */
  size_t n, cap;
  int oom;
} ei__sb;

/* Room for `more` bytes plus the NUL; 0, or -1 (oom set) when memory runs out. */
int ei__sb_grow(ei__sb *b, size_t more);
void ei__sb_put(ei__sb *b, const void *s, size_t n);
void ei__sb_puts(ei__sb *b, const char *s);
void ei__sb_printf(ei__sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* snprintf into a fixed buffer that may truncate (messages, paths: a cut message is still a message). */
void ei__fmt(char *dst, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
