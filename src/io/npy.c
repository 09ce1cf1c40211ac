/* Tensor files: .npy reading and writing, and ei_tensor_load's dispatch between .npy and TensorProto (.pb).
 *
 * .npy (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
 *   "\x93NUMPY" major minor, header length (uint16 LE for 1.0, uint32 LE for 2.0 and 3.0), then a Python dict
 *   literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } padded with spaces and ending in '\n',
 *   then the raw little-endian C-order data. We read versions 1.0-3.0, C order only, the dtypes
 *   f2 f4 f8 i1 u1 i2 u2 i4 u4 i8 u8 b1 (kept as they are: float64 stays EI_DOUBLE), and check strictly that
 *   the header is exactly such a dict and that the data length matches the shape. We write version 1.0 with
 *   the header padded so the data starts on a 64-byte boundary, like numpy.
 * Everything else in the file (not starting with the magic) is handed to ei_tensor_from_pb.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_MAX_HEADER (1u << 20) /* numpy itself refuses headers above 10000 bytes by default */

typedef struct npy_dtype {
  const char *descr; /* as numpy writes it on a little-endian machine */
  ei_dtype dtype;
} npy_dtype;

static const npy_dtype NPY_DTYPES[] = {
    {"<f4", EI_FLOAT}, {"<f8", EI_DOUBLE}, {"<f2", EI_FLOAT16}, {"|i1", EI_INT8},   {"|u1", EI_UINT8},
    {"<i2", EI_INT16}, {"<u2", EI_UINT16}, {"<i4", EI_INT32},   {"<u4", EI_UINT32}, {"<i8", EI_INT64},
    {"<u8", EI_UINT64}, {"|b1", EI_BOOL},
};
#define NPY_NDTYPES (sizeof NPY_DTYPES / sizeof NPY_DTYPES[0])

typedef struct npy_header {
  ei_dtype dtype;
  int fortran_order; /* -1: not seen */
  int rank;          /* -1: not seen */
  int64_t dims[EI_MAX_DIMS];
  size_t nbytes;
} npy_header;

/* ---- header dict parser ---------------------------------------------------------------------------- */

typedef struct cursor {
  const char *p, *end;
  char *err;
  size_t errlen;
} cursor;

static void skip_ws(cursor *c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static int accept(cursor *c, char ch) {
  skip_ws(c);
  if (c->p < c->end && *c->p == ch) {
    c->p++;
    return 1;
  }
  return 0;
}

static ei_status bad_header(cursor *c, const char *what) {
  const char *end = c->p + 16 < c->end ? c->p + 16 : c->end;
  return ei__err(c->err, c->errlen, EI_E_INVALID_ARGUMENT, "bad .npy header: %s at \"%.*s\"", what,
                 (int)(end - c->p), c->p);
}

/* A quoted string without escapes; *s, *n point into the header. */
static ei_status parse_string(cursor *c, const char **s, size_t *n) {
  skip_ws(c);
  if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return bad_header(c, "expected a quoted string");
  char q = *c->p++;
  const char *start = c->p;
  while (c->p < c->end && *c->p != q) {
    if (*c->p == '\\' || *c->p == '\n') return bad_header(c, "unsupported character in a string");
    c->p++;
  }
  if (c->p >= c->end) return bad_header(c, "unterminated string");
  *s = start;
  *n = (size_t)(c->p - start);
  c->p++;
  return EI_OK;
}

static ei_status parse_descr(cursor *c, npy_header *h) {
  const char *s;
  size_t n;
  ei_status st = parse_string(c, &s, &n);
  if (st != EI_OK) return st;
  for (size_t i = 0; i < NPY_NDTYPES; i++)
    if (n == 3 && memcmp(s, NPY_DTYPES[i].descr, 3) == 0) {
      h->dtype = NPY_DTYPES[i].dtype;
      return EI_OK;
    }
  if (n >= 1 && s[0] == '>')
    return ei__err(c->err, c->errlen, EI_E_UNSUPPORTED, ".npy dtype '%.*s' is big-endian: only little-endian "
                   "data is supported", (int)n, s);
  return ei__err(c->err, c->errlen, EI_E_UNSUPPORTED, ".npy dtype '%.*s' is not supported (use <f4 <f8 <f2 |i1 "
                 "|u1 <i2 <u2 <i4 <u4 <i8 <u8 |b1)", (int)(n > 40 ? 40 : n), s);
}

static ei_status parse_bool(cursor *c, int *v) {
  skip_ws(c);
  size_t left = (size_t)(c->end - c->p);
  if (left >= 4 && memcmp(c->p, "True", 4) == 0) {
    *v = 1;
    c->p += 4;
    return EI_OK;
  }
  if (left >= 5 && memcmp(c->p, "False", 5) == 0) {
    *v = 0;
    c->p += 5;
    return EI_OK;
  }
  return bad_header(c, "expected True or False");
}

static ei_status parse_dim(cursor *c, int64_t *v) {
  skip_ws(c);
  if (c->p >= c->end || *c->p < '0' || *c->p > '9') return bad_header(c, "expected a non-negative dimension");
  int64_t x = 0;
  while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
    if (x > (INT64_MAX - (*c->p - '0')) / 10) return bad_header(c, "dimension too large");
    x = x * 10 + (*c->p - '0');
    c->p++;
  }
  *v = x;
  return EI_OK;
}

/* (), (N,), (A, B), (A, B,) -- a one-element tuple needs its comma, as in Python. */
static ei_status parse_shape(cursor *c, npy_header *h) {
  if (!accept(c, '(')) return bad_header(c, "expected a shape tuple");
  int rank = 0, trailing_comma = 0;
  while (!accept(c, ')')) {
    if (rank > 0 && !trailing_comma) return bad_header(c, "expected ',' or ')' in the shape");
    int64_t d = 0;
    ei_status st = parse_dim(c, &d);
    if (st != EI_OK) return st;
    if (rank == EI_MAX_DIMS)
      return ei__err(c->err, c->errlen, EI_E_UNSUPPORTED, ".npy rank above %d is not supported", EI_MAX_DIMS);
    h->dims[rank++] = d;
    trailing_comma = accept(c, ',');
  }
  if (rank == 1 && !trailing_comma) return bad_header(c, "a one-dimensional shape needs a trailing comma");
  h->rank = rank;
  return EI_OK;
}

static ei_status parse_entry(cursor *c, npy_header *h) {
  const char *key;
  size_t n;
  ei_status st = parse_string(c, &key, &n);
  if (st != EI_OK) return st;
  if (!accept(c, ':')) return bad_header(c, "expected ':'");
  if (n == 5 && memcmp(key, "descr", 5) == 0) {
    if (h->dtype != EI_UNDEFINED) return bad_header(c, "duplicate 'descr'");
    return parse_descr(c, h);
  }
  if (n == 13 && memcmp(key, "fortran_order", 13) == 0) {
    if (h->fortran_order >= 0) return bad_header(c, "duplicate 'fortran_order'");
    return parse_bool(c, &h->fortran_order);
  }
  if (n == 5 && memcmp(key, "shape", 5) == 0) {
    if (h->rank >= 0) return bad_header(c, "duplicate 'shape'");
    return parse_shape(c, h);
  }
  return ei__err(c->err, c->errlen, EI_E_INVALID_ARGUMENT, "bad .npy header: unknown key '%.*s'",
                 (int)(n > 40 ? 40 : n), key);
}

/* Parses the dict and computes the data size. */
static ei_status parse_header(const char *text, size_t len, npy_header *h, char *err, size_t errlen) {
  memset(h, 0, sizeof *h);
  h->fortran_order = -1;
  h->rank = -1;
  cursor c = {text, text + len, err, errlen};
  if (!accept(&c, '{')) return bad_header(&c, "expected '{'");
  while (!accept(&c, '}')) {
    ei_status st = parse_entry(&c, h);
    if (st != EI_OK) return st;
    if (!accept(&c, ',')) {
      if (!accept(&c, '}')) return bad_header(&c, "expected ',' or '}'");
      break;
    }
  }
  skip_ws(&c);
  if (c.p != c.end) return bad_header(&c, "unexpected text after the dict");
  if (h->dtype == EI_UNDEFINED || h->fortran_order < 0 || h->rank < 0)
    return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "bad .npy header: missing '%s'",
                   h->dtype == EI_UNDEFINED ? "descr" : h->fortran_order < 0 ? "fortran_order" : "shape");
  if (h->fortran_order)
    return ei__err(err, errlen, EI_E_UNSUPPORTED, ".npy in Fortran order is not supported (save C order)");
  size_t n = ei_dtype_size(h->dtype);
  for (int i = 0; i < h->rank; i++)
    if ((uint64_t)h->dims[i] > SIZE_MAX || !ei__mul_size(n, (size_t)h->dims[i], &n))
      return ei__err(err, errlen, EI_E_LIMIT, ".npy shape is too large (dimension %d is %lld)", i,
                     (long long)h->dims[i]);
  h->nbytes = n;
  return EI_OK;
}

/* ---- file helpers ---------------------------------------------------------------------------------- */

/* Reads exactly n bytes at offset off; returns 0 on success, -1 with errno on error, 1 on end of file. */
static int read_at(int fd, void *buf, size_t n, uint64_t off) {
  uint8_t *p = buf;
  while (n) {
    ssize_t r = pread(fd, p, n, (off_t)off);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) return 1;
    p += r;
    n -= (size_t)r;
    off += (uint64_t)r;
  }
  return 0;
}

static ei_status read_error(int r, const char *what, char *err, size_t errlen) {
  if (r > 0) return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "truncated %s", what);
  return ei__err(err, errlen, EI_E_IO, "cannot read %s: %s", what, strerror(errno));
}

/* ---- .npy loading ---------------------------------------------------------------------------------- */

/* Reads the version and header length; *hdr_off receives where the header text starts. */
static ei_status read_prefix(int fd, uint64_t fsize, size_t *hdr_off, size_t *hdr_len, char *err,
                             size_t errlen) {
  uint8_t pre[12];
  if (fsize < 10) return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "truncated .npy: %llu bytes",
                                 (unsigned long long)fsize);
  int r = read_at(fd, pre, 10, 0);
  if (r) return read_error(r, ".npy header", err, errlen);
  int major = pre[6], minor = pre[7];
  if (minor != 0 || major < 1 || major > 3)
    return ei__err(err, errlen, EI_E_UNSUPPORTED, ".npy format version %d.%d is not supported (1.0-3.0)", major,
                   minor);
  if (major == 1) {
    *hdr_off = 10;
    *hdr_len = (size_t)pre[8] | (size_t)pre[9] << 8;
    return EI_OK;
  }
  if (fsize < 12) return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "truncated .npy header");
  r = read_at(fd, pre + 10, 2, 10);
  if (r) return read_error(r, ".npy header", err, errlen);
  uint32_t n = (uint32_t)pre[8] | (uint32_t)pre[9] << 8 | (uint32_t)pre[10] << 16 | (uint32_t)pre[11] << 24;
  if (n > NPY_MAX_HEADER)
    return ei__err(err, errlen, EI_E_LIMIT, ".npy header of %u bytes is larger than %u", n, NPY_MAX_HEADER);
  *hdr_off = 12;
  *hdr_len = n;
  return EI_OK;
}

static ei_status read_header(int fd, uint64_t fsize, npy_header *h, size_t *data_off, char *err, size_t errlen) {
  size_t off = 0, len = 0;
  ei_status s = read_prefix(fd, fsize, &off, &len, err, errlen);
  if (s != EI_OK) return s;
  if (off + len > fsize)
    return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "truncated .npy: the header needs %zu bytes, the file has %llu",
                   off + len, (unsigned long long)fsize);
  char *text = ei__malloc(len ? len : 1);
  if (!text) return ei__err(err, errlen, EI_E_NOMEM, "out of memory for the .npy header");
  int r = read_at(fd, text, len, off);
  if (r)
    s = read_error(r, ".npy header", err, errlen);
  else if (len == 0 || text[len - 1] != '\n')
    s = ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "bad .npy header: it does not end with a newline");
  else
    s = parse_header(text, len, h, err, errlen);
  ei__free(text);
  *data_off = off + len;
  return s;
}

/* "(2, 3)" for messages. */
static const char *shape_str(int rank, const int64_t *dims, char *buf, size_t cap) {
  size_t n = (size_t)snprintf(buf, cap, "(");
  for (int i = 0; i < rank && n < cap; i++)
    n += (size_t)snprintf(buf + n, cap - n, i ? ", %lld" : "%lld", (long long)dims[i]);
  if (n < cap) snprintf(buf + n, cap - n, rank == 1 ? ",)" : ")");
  return buf;
}

static ei_status load_npy(int fd, uint64_t fsize, ei_tensor *out, char *err, size_t errlen) {
  npy_header h;
  size_t data_off = 0;
  ei_status s = read_header(fd, fsize, &h, &data_off, err, errlen);
  if (s != EI_OK) return s;
  if (fsize - data_off != h.nbytes) {
    char shape[EI_MAX_DIMS * 24 + 4];
    uint64_t have = fsize - data_off;
    return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "%s.npy data is %llu bytes, shape %s of %s needs %s%zu",
                   have < h.nbytes ? "truncated: " : "", (unsigned long long)have,
                   shape_str(h.rank, h.dims, shape, sizeof shape), ei_dtype_name(h.dtype),
                   have < h.nbytes ? "" : "only ", h.nbytes);
  }
  uint8_t *data = ei__malloc(h.nbytes ? h.nbytes : 1);
  if (!data) return ei__err(err, errlen, EI_E_NOMEM, "out of memory for %zu bytes of .npy data", h.nbytes);
  int r = read_at(fd, data, h.nbytes, data_off);
  if (r) {
    ei__free(data);
    return read_error(r, ".npy data", err, errlen);
  }
  if (h.dtype == EI_BOOL)
    for (size_t i = 0; i < h.nbytes; i++) data[i] = data[i] != 0;
  out->dtype = h.dtype;
  out->rank = h.rank;
  memcpy(out->dims, h.dims, sizeof h.dims);
  out->data = data;
  return EI_OK;
}

/* Reads the whole file and parses it as a TensorProto. */
static ei_status load_pb(int fd, uint64_t fsize, ei_tensor *out, char *err, size_t errlen) {
  if (fsize > SIZE_MAX / 2) return ei__err(err, errlen, EI_E_LIMIT, "file too large");
  size_t n = (size_t)fsize;
  uint8_t *buf = ei__malloc(n ? n : 1);
  if (!buf) return ei__err(err, errlen, EI_E_NOMEM, "out of memory reading %zu bytes", n);
  int r = read_at(fd, buf, n, 0);
  ei_status s = r ? read_error(r, "file", err, errlen) : ei_tensor_from_pb(buf, n, out, err, errlen);
  ei__free(buf);
  return s;
}

/* I/O errors name the path; errors about the content do not (callers prefix them with the file name). */
ei_status ei_tensor_load(const char *path, ei_tensor *out, char *err, size_t errlen) {
  if (!out) return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "ei_tensor_load: out is NULL");
  memset(out, 0, sizeof *out);
  if (!path) return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "ei_tensor_load: path is NULL");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ei__err(err, errlen, EI_E_IO, "cannot open %s: %s", path, strerror(errno));
  struct stat st;
  ei_status s;
  uint8_t magic[NPY_MAGIC_LEN];
  if (fstat(fd, &st) != 0) {
    s = ei__err(err, errlen, EI_E_IO, "cannot stat %s: %s", path, strerror(errno));
  } else if (!S_ISREG(st.st_mode)) {
    s = ei__err(err, errlen, EI_E_IO, "%s is not a regular file", path);
  } else if (st.st_size >= NPY_MAGIC_LEN && read_at(fd, magic, NPY_MAGIC_LEN, 0) == 0 &&
             memcmp(magic, NPY_MAGIC, NPY_MAGIC_LEN) == 0) {
    s = load_npy(fd, (uint64_t)st.st_size, out, err, errlen);
  } else {
    s = load_pb(fd, (uint64_t)st.st_size, out, err, errlen);
  }
  close(fd);
  if (s != EI_OK) ei_tensor_free(out);
  return s;
}

/* ---- .npy saving ----------------------------------------------------------------------------------- */

static const char *npy_descr(ei_dtype t) {
  for (size_t i = 0; i < NPY_NDTYPES; i++)
    if (NPY_DTYPES[i].dtype == t) return NPY_DTYPES[i].descr;
  return NULL;
}

/* Validates t and computes its data size. */
static ei_status check_tensor(const ei_tensor *t, size_t *nbytes, char *err, size_t errlen) {
  if (!npy_descr(t->dtype))
    return ei__err(err, errlen, EI_E_UNSUPPORTED, "cannot save a %s tensor as .npy", ei_dtype_name(t->dtype));
  if (t->rank < 0 || t->rank > EI_MAX_DIMS)
    return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "tensor rank %d is outside 0..%d", t->rank, EI_MAX_DIMS);
  size_t n = ei_dtype_size(t->dtype);
  for (int i = 0; i < t->rank; i++) {
    if (t->dims[i] < 0)
      return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "tensor dimension %d is negative (%lld)", i,
                     (long long)t->dims[i]);
    if ((uint64_t)t->dims[i] > SIZE_MAX || !ei__mul_size(n, (size_t)t->dims[i], &n))
      return ei__err(err, errlen, EI_E_LIMIT, "tensor is too large");
  }
  if (n && !t->data) return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "tensor data is NULL");
  *nbytes = n;
  return EI_OK;
}

/* Version 1.0 preamble + dict + padding, total a multiple of 64. Returns the length. */
static size_t format_header(const ei_tensor *t, char *buf, size_t cap) {
  char shape[EI_MAX_DIMS * 24 + 4];
  size_t n = 0;
  shape[n++] = '(';
  for (int i = 0; i < t->rank; i++)
    n += (size_t)snprintf(shape + n, sizeof shape - n, i ? ", %lld" : "%lld", (long long)t->dims[i]);
  if (t->rank == 1) shape[n++] = ',';
  shape[n++] = ')';
  shape[n] = 0;
  size_t len = 10 + (size_t)snprintf(buf + 10, cap - 10, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                                     npy_descr(t->dtype), shape);
  size_t total = ei__align_up(len + 1, 64);
  memset(buf + len, ' ', total - 1 - len);
  buf[total - 1] = '\n';
  memcpy(buf, NPY_MAGIC, NPY_MAGIC_LEN);
  buf[6] = 1;
  buf[7] = 0;
  buf[8] = (char)((total - 10) & 0xff);
  buf[9] = (char)((total - 10) >> 8);
  return total;
}

ei_status ei_tensor_save_npy(const char *path, const ei_tensor *t, char *err, size_t errlen) {
  if (!path || !t)
    return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "ei_tensor_save_npy: %s is NULL", !path ? "path" : "tensor");
  size_t nbytes = 0;
  ei_status s = check_tensor(t, &nbytes, err, errlen);
  if (s != EI_OK) return s;
  char header[512];
  size_t hlen = format_header(t, header, sizeof header);
  FILE *f = fopen(path, "wb");
  if (!f) return ei__err(err, errlen, EI_E_IO, "cannot create %s: %s", path, strerror(errno));
  int ok = fwrite(header, 1, hlen, f) == hlen && (nbytes == 0 || fwrite(t->data, 1, nbytes, f) == nbytes);
  int saved_errno = errno;
  if (fclose(f) != 0 && ok) {
    ok = 0;
    saved_errno = errno;
  }
  if (!ok) {
    remove(path);
    return ei__err(err, errlen, EI_E_IO, "cannot write %s: %s", path, strerror(saved_errno));
  }
  return EI_OK;
}

void ei_tensor_free(ei_tensor *t) {
  if (!t) return;
  ei__free(t->data);
  memset(t, 0, sizeof *t);
}
