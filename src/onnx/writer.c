/* Protobuf wire-format writer and ONNX message helpers (see writer.h). */
#include "onnx/writer.h"

/* onnx.proto field numbers. */
enum {
  MODEL_IR_VERSION = 1, MODEL_PRODUCER_NAME = 2, MODEL_PRODUCER_VERSION = 3, MODEL_GRAPH = 7, MODEL_OPSET = 8,
  OPSET_DOMAIN = 1, OPSET_VERSION = 2,
  GRAPH_NAME = 2,
  NODE_INPUT = 1, NODE_OUTPUT = 2, NODE_NAME = 3, NODE_OP_TYPE = 4, NODE_ATTRIBUTE = 5, NODE_DOMAIN = 7,
  ATTR_NAME = 1, ATTR_F = 2, ATTR_I = 3, ATTR_S = 4, ATTR_T = 5, ATTR_FLOATS = 7, ATTR_INTS = 8, ATTR_TYPE = 20,
  TENSOR_DIMS = 1, TENSOR_DATA_TYPE = 2, TENSOR_NAME = 8, TENSOR_RAW_DATA = 9,
  VI_NAME = 1, VI_TYPE = 2,
  TYPE_TENSOR = 1, TTYPE_ELEM_TYPE = 1, TTYPE_SHAPE = 2,
  SHAPE_DIM = 1, DIM_VALUE = 1, DIM_PARAM = 2
};

void ei__pbw_init(ei__pbw *w) { memset(w, 0, sizeof *w); }

void ei__pbw_free(ei__pbw *w) {
  ei__free(w->buf);
  memset(w, 0, sizeof *w);
}

int ei__pbw_ok(const ei__pbw *w) { return !w->failed && w->depth == 0; }

uint8_t *ei__pbw_take(ei__pbw *w, size_t *len) {
  if (!ei__pbw_ok(w)) {
    ei__pbw_free(w);
    *len = 0;
    return NULL;
  }
  uint8_t *b = w->buf;
  *len = w->len;
  if (!b) b = ei__malloc(1); /* an empty message is still a message */
  memset(w, 0, sizeof *w);
  return b;
}

/* Makes room for n more bytes; returns 0 (and fails the writer) on overflow or allocation failure. */
static int reserve(ei__pbw *w, size_t n) {
  if (w->failed) return 0;
  size_t need;
  if (!ei__add_size(w->len, n, &need)) return w->failed = 1, 0;
  if (need <= w->cap) return 1;
  size_t cap = w->cap ? w->cap : 4096;
  while (cap < need) {
    if (cap > SIZE_MAX / 2) return w->failed = 1, 0;
    cap *= 2;
  }
  uint8_t *b = ei__realloc(w->buf, w->len, cap);
  if (!b) return w->failed = 1, 0;
  w->buf = b;
  w->cap = cap;
  return 1;
}

static int varint_size(uint64_t v) {
  int n = 1;
  while (v >= 0x80) v >>= 7, n++;
  return n;
}

static void put_varint_at(uint8_t *p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *p = (uint8_t)v;
}

static void put_varint(ei__pbw *w, uint64_t v) {
  int n = varint_size(v);
  if (!reserve(w, (size_t)n)) return;
  put_varint_at(w->buf + w->len, v);
  w->len += (size_t)n;
}

static void put_key(ei__pbw *w, uint32_t field, int wire) { put_varint(w, ((uint64_t)field << 3) | (uint64_t)wire); }

void ei__pbw_varint(ei__pbw *w, uint32_t field, uint64_t v) {
  put_key(w, field, 0);
  put_varint(w, v);
}

void ei__pbw_int64(ei__pbw *w, uint32_t field, int64_t v) { ei__pbw_varint(w, field, (uint64_t)v); }

void ei__pbw_float(ei__pbw *w, uint32_t field, float v) {
  uint32_t u;
  memcpy(&u, &v, 4);
  put_key(w, field, 5);
  if (!reserve(w, 4)) return;
  for (int i = 0; i < 4; i++) w->buf[w->len++] = (uint8_t)(u >> (8 * i));
}

void ei__pbw_bytes(ei__pbw *w, uint32_t field, const void *data, size_t len) {
  put_key(w, field, 2);
  put_varint(w, len);
  if (!len || !reserve(w, len)) return;
  memcpy(w->buf + w->len, data, len);
  w->len += len;
}

void ei__pbw_string(ei__pbw *w, uint32_t field, const char *s) { ei__pbw_bytes(w, field, s, strlen(s)); }

void ei__pbw_begin(ei__pbw *w, uint32_t field) {
  if (w->depth == EI_PBW_MAX_DEPTH) {
    w->failed = 1;
    return;
  }
  put_key(w, field, 2);
  w->open[w->depth++] = w->len;
}

void ei__pbw_end(ei__pbw *w) {
  if (w->depth == 0) {
    w->failed = 1;
    return;
  }
  size_t start = w->open[--w->depth];
  if (w->failed) return;
  size_t len = w->len - start;
  int n = varint_size(len);
  if (!reserve(w, (size_t)n)) return;
  memmove(w->buf + start + n, w->buf + start, len);
  put_varint_at(w->buf + start, len);
  w->len += (size_t)n;
}

/* ---- ONNX ---- */

void ei__onnxw_model_header(ei__pbw *w, int64_t ir_version, const char *producer, const char *producer_version) {
  ei__pbw_int64(w, MODEL_IR_VERSION, ir_version);
  if (producer) ei__pbw_string(w, MODEL_PRODUCER_NAME, producer);
  if (producer_version) ei__pbw_string(w, MODEL_PRODUCER_VERSION, producer_version);
}

void ei__onnxw_opset(ei__pbw *w, const char *domain, int64_t version) {
  ei__pbw_begin(w, MODEL_OPSET);
  if (domain && domain[0]) ei__pbw_string(w, OPSET_DOMAIN, domain);
  ei__pbw_int64(w, OPSET_VERSION, version);
  ei__pbw_end(w);
}

void ei__onnxw_graph_begin(ei__pbw *w, const char *name) {
  ei__pbw_begin(w, MODEL_GRAPH);
  if (name) ei__pbw_string(w, GRAPH_NAME, name);
}

static int host_is_little_endian(void) {
  const uint16_t one = 1;
  uint8_t b;
  memcpy(&b, &one, 1);
  return b == 1;
}

/* raw_data: the elements in little-endian order. */
static void raw_data(ei__pbw *w, ei_dtype dt, const void *data, size_t count) {
  size_t es = ei_dtype_size(dt), nb;
  if (!es || !ei__mul_size(es, count, &nb)) {
    w->failed = 1;
    return;
  }
  if (host_is_little_endian() || es == 1) {
    ei__pbw_bytes(w, TENSOR_RAW_DATA, data, nb);
    return;
  }
  put_key(w, TENSOR_RAW_DATA, 2);
  put_varint(w, nb);
  if (!nb || !reserve(w, nb)) return;
  const uint8_t *s = data;
  for (size_t i = 0; i < count; i++)
    for (size_t b = 0; b < es; b++) w->buf[w->len + i * es + b] = s[i * es + es - 1 - b];
  w->len += nb;
}

void ei__onnxw_tensor(ei__pbw *w, uint32_t field, const char *name, ei_dtype dt, int rank, const int64_t *dims,
                      const void *data) {
  size_t count = 1;
  ei__pbw_begin(w, field);
  for (int d = 0; d < rank; d++) {
    ei__pbw_int64(w, TENSOR_DIMS, dims[d]);
    if (dims[d] < 0 || !ei__mul_size(count, (size_t)dims[d], &count)) w->failed = 1;
  }
  ei__pbw_int64(w, TENSOR_DATA_TYPE, (int64_t)dt);
  if (name) ei__pbw_string(w, TENSOR_NAME, name);
  raw_data(w, dt, data, count);
  ei__pbw_end(w);
}

void ei__onnxw_value_info(ei__pbw *w, uint32_t field, const char *name, ei_dtype dt, int rank, const int64_t *dims,
                          char *const *dim_names) {
  ei__pbw_begin(w, field);
  ei__pbw_string(w, VI_NAME, name);
  ei__pbw_begin(w, VI_TYPE);
  ei__pbw_begin(w, TYPE_TENSOR);
  ei__pbw_int64(w, TTYPE_ELEM_TYPE, (int64_t)dt);
  if (rank >= 0) {
    ei__pbw_begin(w, TTYPE_SHAPE);
    for (int d = 0; d < rank; d++) {
      ei__pbw_begin(w, SHAPE_DIM);
      if (dims[d] >= 0) ei__pbw_int64(w, DIM_VALUE, dims[d]);
      else if (dim_names && dim_names[d]) ei__pbw_string(w, DIM_PARAM, dim_names[d]);
      ei__pbw_end(w);
    }
    ei__pbw_end(w);
  }
  ei__pbw_end(w);
  ei__pbw_end(w);
  ei__pbw_end(w);
}

void ei__onnxw_node_begin(ei__pbw *w, const char *name, const char *op_type, const char *domain,
                          const char *const *inputs, int nin, const char *const *outputs, int nout) {
  ei__pbw_begin(w, 1); /* GraphProto.node */
  for (int i = 0; i < nin; i++) ei__pbw_string(w, NODE_INPUT, inputs[i] ? inputs[i] : "");
  for (int i = 0; i < nout; i++) ei__pbw_string(w, NODE_OUTPUT, outputs[i] ? outputs[i] : "");
  if (name) ei__pbw_string(w, NODE_NAME, name);
  ei__pbw_string(w, NODE_OP_TYPE, op_type);
  if (domain && domain[0]) ei__pbw_string(w, NODE_DOMAIN, domain);
}

static void attr_begin(ei__pbw *w, const char *name, int type) {
  ei__pbw_begin(w, NODE_ATTRIBUTE);
  ei__pbw_string(w, ATTR_NAME, name);
  ei__pbw_int64(w, ATTR_TYPE, type);
}

void ei__onnxw_attr_int(ei__pbw *w, const char *name, int64_t v) {
  attr_begin(w, name, 2);
  ei__pbw_int64(w, ATTR_I, v);
  ei__pbw_end(w);
}

void ei__onnxw_attr_float(ei__pbw *w, const char *name, float v) {
  attr_begin(w, name, 1);
  ei__pbw_float(w, ATTR_F, v);
  ei__pbw_end(w);
}

void ei__onnxw_attr_string(ei__pbw *w, const char *name, const char *s) {
  attr_begin(w, name, 3);
  ei__pbw_string(w, ATTR_S, s);
  ei__pbw_end(w);
}

void ei__onnxw_attr_ints(ei__pbw *w, const char *name, const int64_t *v, int n) {
  attr_begin(w, name, 7);
  for (int i = 0; i < n; i++) ei__pbw_int64(w, ATTR_INTS, v[i]);
  ei__pbw_end(w);
}

void ei__onnxw_attr_floats(ei__pbw *w, const char *name, const float *v, int n) {
  attr_begin(w, name, 6);
  for (int i = 0; i < n; i++) ei__pbw_float(w, ATTR_FLOATS, v[i]);
  ei__pbw_end(w);
}

void ei__onnxw_attr_tensor(ei__pbw *w, const char *name, ei_dtype dt, int rank, const int64_t *dims,
                           const void *data) {
  attr_begin(w, name, 4);
  ei__onnxw_tensor(w, ATTR_T, NULL, dt, rank, dims, data);
  ei__pbw_end(w);
}
