/* TensorProto: header parsing, element decoding (raw_data, typed fields, external data), and the public
 * ei_tensor_from_pb. Fixed-width data is read with memcpy (the message bytes have no alignment). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx/onnx.h"

/* TensorProto field numbers. */
enum {
  TP_DIMS = 1, TP_DATA_TYPE = 2, TP_SEGMENT = 3, TP_FLOAT_DATA = 4, TP_INT32_DATA = 5, TP_STRING_DATA = 6,
  TP_INT64_DATA = 7, TP_NAME = 8, TP_RAW_DATA = 9, TP_DOUBLE_DATA = 10, TP_UINT64_DATA = 11, TP_DOC = 12,
  TP_EXTERNAL_DATA = 13, TP_DATA_LOCATION = 14
};

static int supported_dtype(int64_t dt) {
  switch (dt) {
    case EI_FLOAT: case EI_UINT8: case EI_INT8: case EI_UINT16: case EI_INT16: case EI_INT32: case EI_INT64:
    case EI_BOOL: case EI_DOUBLE: case EI_UINT32: case EI_UINT64: case EI_FLOAT16:
      return 1;
    default:
      return 0;
  }
}

static ei_status parse_external(ei__tproto *t, const ei__pb_field *f, const char *what, char *err, size_t errlen) {
  ei__pb r = ei__pb_init(f->data, f->len);
  ei__pb_field g;
  const uint8_t *key = NULL, *val = NULL;
  size_t klen = 0, vlen = 0;
  while (ei__pb_next(&r, &g)) {
    if (g.wire != EI_PB_LEN) continue;
    if (g.num == 1) key = g.data, klen = g.len;
    if (g.num == 2) val = g.data, vlen = g.len;
  }
  if (r.error) return ei__err(err, errlen, EI_E_MALFORMED, "tensor '%s': external_data entry: %s", what, r.error);
  if (!key) return EI_OK;
  char num[32];
  if (klen == 8 && !memcmp(key, "location", 8)) {
    t->ext_location = val;
    t->ext_location_len = vlen;
  } else if ((klen == 6 && !memcmp(key, "offset", 6)) || (klen == 6 && !memcmp(key, "length", 6))) {
    if (!val || vlen == 0 || vlen >= sizeof num)
      return ei__err(err, errlen, EI_E_INVALID_MODEL, "tensor '%s': bad external_data %.*s", what, (int)klen, key);
    memcpy(num, val, vlen);
    num[vlen] = 0;
    char *e;
    errno = 0;
    long long v = strtoll(num, &e, 10);
    if (*e || errno || v < 0)
      return ei__err(err, errlen, EI_E_INVALID_MODEL, "tensor '%s': external_data %.*s is not a non-negative integer",
                     what, (int)klen, key);
    if (key[0] == 'o')
      t->ext_offset = v;
    else
      t->ext_length = v;
  }
  return EI_OK;
}

ei_status ei__tproto_parse(const uint8_t *data, size_t len, ei__tproto *t, const char *what, char *err,
                           size_t errlen) {
  memset(t, 0, sizeof *t);
  t->msg = data;
  t->msg_len = len;
  t->ext_length = -1;
  int64_t dt = 0;
  ei__pb r = ei__pb_init(data, len);
  ei__pb_field f;
  while (ei__pb_next(&r, &f)) {
    switch (f.num) {
      case TP_DIMS: {
        int64_t n = ei__pb_count_varints(&f);
        if (n < 0) return ei__err(err, errlen, EI_E_MALFORMED, "tensor '%s': malformed dims", what);
        if (t->rank + n > EI_MAX_DIMS)
          return ei__err(err, errlen, EI_E_UNSUPPORTED, "tensor '%s': rank above %d is not supported", what,
                         EI_MAX_DIMS);
        int64_t cnt = t->rank;
        ei__pb_read_varints(&f, t->dims, EI_MAX_DIMS, &cnt);
        t->rank = (int)cnt;
        break;
      }
      case TP_DATA_TYPE:
        if (f.wire != EI_PB_VARINT) return ei__err(err, errlen, EI_E_MALFORMED, "tensor '%s': bad data_type", what);
        dt = (int64_t)f.varint;
        break;
      case TP_SEGMENT:
        return ei__err(err, errlen, EI_E_UNSUPPORTED, "tensor '%s': segmented tensors are not supported", what);
      case TP_NAME:
        if (f.wire != EI_PB_LEN) return ei__err(err, errlen, EI_E_MALFORMED, "tensor: bad name field");
        t->name = (const char *)f.data;
        t->name_len = f.len;
        break;
      case TP_RAW_DATA:
        if (f.wire != EI_PB_LEN) return ei__err(err, errlen, EI_E_MALFORMED, "tensor '%s': bad raw_data", what);
        t->raw = f.data;
        t->raw_len = f.len;
        t->has_raw = 1;
        break;
      case TP_EXTERNAL_DATA: {
        if (f.wire != EI_PB_LEN) return ei__err(err, errlen, EI_E_MALFORMED, "tensor '%s': bad external_data", what);
        ei_status s = parse_external(t, &f, what, err, errlen);
        if (s) return s;
        break;
      }
      case TP_DATA_LOCATION:
        t->external = f.wire == EI_PB_VARINT && f.varint == 1;
        break;
      default:
        break;
    }
  }
  if (r.error) return ei__err(err, errlen, EI_E_MALFORMED, "tensor '%s': %s", what, r.error);
  if (dt == EI_STRING)
    return ei__err(err, errlen, EI_E_UNSUPPORTED, "tensor '%s': string tensors are not supported", what);
  if (!supported_dtype(dt))
    return ei__err(err, errlen, EI_E_UNSUPPORTED, "tensor '%s': data type %lld is not supported", what, (long long)dt);
  t->dtype = (ei_dtype)dt;
  size_t n = 1;
  for (int i = 0; i < t->rank; i++) {
    if (t->dims[i] < 0)
      return ei__err(err, errlen, EI_E_INVALID_MODEL, "tensor '%s': negative dimension %lld", what,
                     (long long)t->dims[i]);
    if (!ei__mul_size(n, (size_t)t->dims[i], &n) || n > (size_t)INT64_MAX / 16)
      return ei__err(err, errlen, EI_E_INVALID_MODEL, "tensor '%s': element count overflows", what);
  }
  t->numel = (int64_t)n;
  if (t->external && !t->ext_location)
    return ei__err(err, errlen, EI_E_INVALID_MODEL, "tensor '%s': external data without a location", what);
  return EI_OK;
}

static void store_int(void *dst, ei_dtype dt, int64_t i, int64_t v) {
  switch (dt) {
    case EI_INT32: { int32_t x = (int32_t)v; memcpy((char *)dst + 4 * i, &x, 4); break; }
    case EI_UINT32: { uint32_t x = (uint32_t)v; memcpy((char *)dst + 4 * i, &x, 4); break; }
    case EI_INT16: case EI_UINT16: case EI_FLOAT16: { uint16_t x = (uint16_t)v; memcpy((char *)dst + 2 * i, &x, 2); break; }
    case EI_INT8: case EI_UINT8: ((uint8_t *)dst)[i] = (uint8_t)v; break;
    case EI_BOOL: ((uint8_t *)dst)[i] = v != 0; break;
    case EI_INT64: case EI_UINT64: memcpy((char *)dst + 8 * i, &v, 8); break;
    default: break;
  }
}

/* Reads the external file region into dst. The path must be relative and stay inside base_dir. */
static ei_status read_external(const ei__tproto *t, void *dst, size_t nbytes, const char *base_dir, const char *what,
                               char *err, size_t errlen) {
  if (!base_dir)
    return ei__err(err, errlen, EI_E_INVALID_MODEL,
                   "tensor '%s': external data needs the model's folder (load from a file)", what);
  char rel[512];
  if (t->ext_location_len == 0 || t->ext_location_len >= sizeof rel)
    return ei__err(err, errlen, EI_E_INVALID_MODEL, "tensor '%s': bad external data location", what);
  memcpy(rel, t->ext_location, t->ext_location_len);
  rel[t->ext_location_len] = 0;
  if (strlen(rel) != t->ext_location_len || rel[0] == '/' || strstr(rel, ".."))
    return ei__err(err, errlen, EI_E_INVALID_MODEL,
                   "tensor '%s': external data location '%s' must be a relative path inside the model folder", what, rel);
  char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s/%s", base_dir, rel) >= (int)sizeof path)
    return ei__err(err, errlen, EI_E_INVALID_MODEL, "tensor '%s': external data path too long", what);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ei__err(err, errlen, EI_E_IO, "tensor '%s': cannot open external data '%s': %s", what, path,
                             strerror(errno));
  struct stat st;
  ei_status s = EI_OK;
  if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
    s = ei__err(err, errlen, EI_E_IO, "tensor '%s': external data '%s' is not a regular file", what, path);
    goto out;
  }
  uint64_t len = t->ext_length >= 0 ? (uint64_t)t->ext_length : (uint64_t)st.st_size - (uint64_t)t->ext_offset;
  if ((uint64_t)t->ext_offset > (uint64_t)st.st_size || len > (uint64_t)st.st_size - (uint64_t)t->ext_offset) {
    s = ei__err(err, errlen, EI_E_INVALID_MODEL, "tensor '%s': external data [%lld, +%llu) lies outside '%s' (%lld bytes)",
                what, (long long)t->ext_offset, (unsigned long long)len, path, (long long)st.st_size);
    goto out;
  }
  if (len != nbytes) {
    s = ei__err(err, errlen, EI_E_INVALID_MODEL, "tensor '%s': external data has %llu bytes, the shape needs %zu", what,
                (unsigned long long)len, nbytes);
    goto out;
  }
  size_t done = 0;
  while (done < nbytes) {
    ssize_t k = pread(fd, (char *)dst + done, nbytes - done, (off_t)(t->ext_offset + (int64_t)done));
    if (k <= 0) {
      s = ei__err(err, errlen, EI_E_IO, "tensor '%s': reading external data '%s' failed", what, path);
      goto out;
    }
    done += (size_t)k;
  }
out:
  close(fd);
  return s;
}

ei_status ei__tproto_decode(const ei__tproto *t, void *dst, const char *base_dir, const char *what, char *err,
                            size_t errlen) {
  size_t es = ei_dtype_size(t->dtype), nbytes = (size_t)t->numel * es;
  if (t->external) return read_external(t, dst, nbytes, base_dir, what, err, errlen);
  if (t->has_raw) {
    if (t->raw_len != nbytes)
      return ei__err(err, errlen, EI_E_INVALID_MODEL, "tensor '%s': raw_data has %zu bytes, the shape needs %zu", what,
                     t->raw_len, nbytes);
    if (nbytes) memcpy(dst, t->raw, nbytes);
    return EI_OK;
  }
  /* Typed fields: walk the message again and decode each occurrence. */
  int64_t n = 0;
  ei__pb r = ei__pb_init(t->msg, t->msg_len);
  ei__pb_field f;
  while (ei__pb_next(&r, &f)) {
    int fnum = (int)f.num;
    if (fnum == TP_FLOAT_DATA && t->dtype == EI_FLOAT) {
      int64_t c = ei__pb_count_fixed(&f, 4);
      if (c < 0 || n + c > t->numel) goto bad;
      if (f.wire == EI_PB_I32) {
        uint32_t u = (uint32_t)f.varint;
        memcpy((char *)dst + 4 * n, &u, 4);
      } else {
        memcpy((char *)dst + 4 * n, f.data, (size_t)c * 4);
      }
      n += c;
    } else if (fnum == TP_DOUBLE_DATA && t->dtype == EI_DOUBLE) {
      int64_t c = ei__pb_count_fixed(&f, 8);
      if (c < 0 || n + c > t->numel) goto bad;
      if (f.wire == EI_PB_I64)
        memcpy((char *)dst + 8 * n, &f.varint, 8);
      else
        memcpy((char *)dst + 8 * n, f.data, (size_t)c * 8);
      n += c;
    } else if ((fnum == TP_INT32_DATA &&
                (t->dtype == EI_INT32 || t->dtype == EI_INT16 || t->dtype == EI_INT8 || t->dtype == EI_UINT16 ||
                 t->dtype == EI_UINT8 || t->dtype == EI_BOOL || t->dtype == EI_FLOAT16)) ||
               (fnum == TP_INT64_DATA && t->dtype == EI_INT64) ||
               (fnum == TP_UINT64_DATA && (t->dtype == EI_UINT32 || t->dtype == EI_UINT64))) {
      const uint8_t *p = f.wire == EI_PB_LEN ? f.data : NULL, *end = p ? f.data + f.len : NULL;
      if (f.wire != EI_PB_LEN && f.wire != EI_PB_VARINT) goto bad;
      if (!p) {
        if (n >= t->numel) goto bad;
        store_int(dst, t->dtype, n++, (int64_t)f.varint);
        continue;
      }
      while (p < end) {
        uint64_t v;
        if (!ei__pb_varint(&p, end, &v) || n >= t->numel) goto bad;
        /* int32_data holds sign-extended int32 varints */
        store_int(dst, t->dtype, n++, fnum == TP_INT32_DATA ? (int64_t)(int32_t)(uint32_t)v : (int64_t)v);
      }
    }
  }
  if (r.error) return ei__err(err, errlen, EI_E_MALFORMED, "tensor '%s': %s", what, r.error);
  if (n != t->numel)
    return ei__err(err, errlen, EI_E_INVALID_MODEL, "tensor '%s': holds %lld elements, the shape needs %lld", what,
                   (long long)n, (long long)t->numel);
  return EI_OK;
bad:
  return ei__err(err, errlen, EI_E_INVALID_MODEL,
                 "tensor '%s': data field malformed or longer than the shape (%lld elements)", what, (long long)t->numel);
}

ei_status ei__tproto_check_size(const ei__tproto *t, const char *base_dir, const char *what, char *err,
                                size_t errlen) {
  size_t nbytes = (size_t)t->numel * ei_dtype_size(t->dtype);
  if (t->external) {
    char rel[512], path[PATH_MAX];
    struct stat st;
    if (!base_dir || t->ext_location_len == 0 || t->ext_location_len >= sizeof rel) return EI_OK; /* decode reports */
    memcpy(rel, t->ext_location, t->ext_location_len);
    rel[t->ext_location_len] = 0;
    if (rel[0] == '/' || strstr(rel, "..")) return EI_OK; /* decode refuses it: never stat outside the folder */
    snprintf(path, sizeof path, "%s/%s", base_dir, rel);
    if (stat(path, &st) == 0 && (uint64_t)st.st_size < nbytes)
      return ei__err(err, errlen, EI_E_INVALID_MODEL,
                     "tensor '%s': shape needs %zu bytes, external data file '%s' has only %lld", what, nbytes, rel,
                     (long long)st.st_size);
    return EI_OK;
  }
  if (t->has_raw) {
    if (t->raw_len != nbytes)
      return ei__err(err, errlen, EI_E_INVALID_MODEL, "tensor '%s': raw_data has %zu bytes, the shape needs %zu", what,
                     t->raw_len, nbytes);
    return EI_OK;
  }
  if ((size_t)t->numel > t->msg_len) /* every typed element takes at least one byte */
    return ei__err(err, errlen, EI_E_INVALID_MODEL, "tensor '%s': shape needs %lld elements, the data holds fewer",
                   what, (long long)t->numel);
  return EI_OK;
}

ei_status ei_tensor_from_pb(const void *data, size_t size, ei_tensor *out, char *err, size_t errlen) {
  if (!data || !out) return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "ei_tensor_from_pb: NULL argument");
  memset(out, 0, sizeof *out);
  ei__tproto t;
  ei_status s = ei__tproto_parse(data, size, &t, "input", err, errlen);
  if (s) return s;
  if (t.dtype == EI_FLOAT16)
    return ei__err(err, errlen, EI_E_UNSUPPORTED, "tensor: float16 tensors are not supported");
  size_t nbytes = (size_t)t.numel * ei_dtype_size(t.dtype);
  if (t.external) return ei__err(err, errlen, EI_E_UNSUPPORTED, "tensor: external data in a tensor file");
  s = ei__tproto_check_size(&t, NULL, "input", err, errlen);
  if (s) return s;
  void *p = ei__malloc(nbytes ? nbytes : 1);
  if (!p) return ei__err(err, errlen, EI_E_NOMEM, "tensor: cannot allocate %zu bytes", nbytes);
  s = ei__tproto_decode(&t, p, NULL, "input", err, errlen);
  if (s) {
    ei__free(p);
    return s;
  }
  out->dtype = t.dtype;
  out->rank = t.rank;
  memcpy(out->dims, t.dims, sizeof(int64_t) * (size_t)t.rank);
  out->data = p;
  return EI_OK;
}
