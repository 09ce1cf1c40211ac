/* A zero-copy protobuf wire-format reader. A ei__pb cursor walks the bytes of one message; length-delimited
 * fields come back as views into the same buffer (no copy). Every read is bounds-checked; a malformed message
 * (truncated, overlong varint, unknown wire type, length past the end) sets an error and stops the walk. */
#ifndef EI_PB_H
#define EI_PB_H

#include <stddef.h>
#include <stdint.h>

enum { EI_PB_VARINT = 0, EI_PB_I64 = 1, EI_PB_LEN = 2, EI_PB_SGROUP = 3, EI_PB_EGROUP = 4, EI_PB_I32 = 5 };

typedef struct ei__pb {
  const uint8_t *p, *end;
  const char *error; /* set on malformed input; static string */
} ei__pb;

typedef struct ei__pb_field {
  uint32_t num;
  int wire;
  uint64_t varint;          /* VARINT, I64, I32 values */
  const uint8_t *data;      /* LEN */
  size_t len;
} ei__pb_field;

static inline ei__pb ei__pb_init(const void *data, size_t len) {
  ei__pb r = {(const uint8_t *)data, (const uint8_t *)data + len, NULL};
  return r;
}
/* Reads the next field; returns 1 on success, 0 at the end of the message or on error (check r->error). */
int ei__pb_next(ei__pb *r, ei__pb_field *f);
/* Reads one varint from [*p, end); returns 0 on malformed input. */
int ei__pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *v);

/* Repeated scalar fields arrive packed (LEN) or one per field (VARINT/I32/I64). These count or decode the
 * elements of one occurrence `f`: count returns -1 on malformed data. */
int64_t ei__pb_count_varints(const ei__pb_field *f);
int ei__pb_read_varints(const ei__pb_field *f, int64_t *out, int64_t cap, int64_t *n);
int64_t ei__pb_count_fixed(const ei__pb_field *f, int width);

#endif
