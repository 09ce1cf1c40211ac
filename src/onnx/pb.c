/* Protobuf wire-format reader (see pb.h). */
#include "onnx/pb.h"

int ei__pb_varint(const uint8_t **pp, const uint8_t *end, uint64_t *v) {
  const uint8_t *p = *pp;
  uint64_t r = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (p >= end) return 0;
    uint8_t b = *p++;
    if (shift == 63 && (b & 0x7e)) return 0; /* more than 64 bits */
    r |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *pp = p;
      *v = r;
      return 1;
    }
  }
  return 0;
}

int ei__pb_next(ei__pb *r, ei__pb_field *f) {
  if (r->error || r->p >= r->end) return 0;
  uint64_t key;
  if (!ei__pb_varint(&r->p, r->end, &key)) {
    r->error = "truncated or overlong varint in a field key";
    return 0;
  }
  f->num = (uint32_t)(key >> 3);
  f->wire = (int)(key & 7);
  if ((key >> 3) == 0 || (key >> 3) > 0x1fffffff) {
    r->error = "invalid field number";
    return 0;
  }
  f->data = NULL;
  f->len = 0;
  f->varint = 0;
  switch (f->wire) {
    case EI_PB_VARINT:
      if (!ei__pb_varint(&r->p, r->end, &f->varint)) {
        r->error = "truncated or overlong varint";
        return 0;
      }
      return 1;
    case EI_PB_I64:
      if (r->end - r->p < 8) {
        r->error = "truncated 64-bit field";
        return 0;
      }
      f->varint = 0;
      for (int i = 7; i >= 0; i--) f->varint = (f->varint << 8) | r->p[i];
      r->p += 8;
      return 1;
    case EI_PB_I32:
      if (r->end - r->p < 4) {
        r->error = "truncated 32-bit field";
        return 0;
      }
      f->varint = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
      r->p += 4;
      return 1;
    case EI_PB_LEN: {
      uint64_t len;
      if (!ei__pb_varint(&r->p, r->end, &len)) {
        r->error = "truncated length prefix";
        return 0;
      }
      if (len > (uint64_t)(r->end - r->p)) {
        r->error = "length-delimited field runs past the end of its message (truncated file?)";
        return 0;
      }
      f->data = r->p;
      f->len = (size_t)len;
      r->p += len;
      return 1;
    }
    default:
      r->error = "unsupported wire type (groups or invalid)";
      return 0;
  }
}

int64_t ei__pb_count_varints(const ei__pb_field *f) {
  if (f->wire == EI_PB_VARINT) return 1;
  if (f->wire != EI_PB_LEN) return -1;
  int64_t n = 0;
  const uint8_t *p = f->data, *end = f->data + f->len;
  uint64_t v;
  while (p < end) {
    if (!ei__pb_varint(&p, end, &v)) return -1;
    n++;
  }
  return n;
}

int ei__pb_read_varints(const ei__pb_field *f, int64_t *out, int64_t cap, int64_t *n) {
  if (f->wire == EI_PB_VARINT) {
    if (*n >= cap) return 0;
    out[(*n)++] = (int64_t)f->varint;
    return 1;
  }
  if (f->wire != EI_PB_LEN) return 0;
  const uint8_t *p = f->data, *end = f->data + f->len;
  uint64_t v;
  while (p < end) {
    if (!ei__pb_varint(&p, end, &v) || *n >= cap) return 0;
    out[(*n)++] = (int64_t)v;
  }
  return 1;
}

int64_t ei__pb_count_fixed(const ei__pb_field *f, int width) {
  if ((width == 4 && f->wire == EI_PB_I32) || (width == 8 && f->wire == EI_PB_I64)) return 1;
  if (f->wire != EI_PB_LEN || f->len % (size_t)width) return -1;
  return (int64_t)(f->len / (size_t)width);
}
