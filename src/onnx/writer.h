/* A small protobuf wire-format writer and the ONNX messages the quantizer writes (ModelProto, GraphProto,
 * NodeProto, TensorProto, AttributeProto, ValueInfoProto), with the field numbers of onnx.proto that
 * src/onnx/import.c reads.
 *
 * One growable buffer holds the whole message. A nested message is opened with ei__pbw_begin (the field key is
 * written and its start remembered) and closed with ei__pbw_end, which inserts the length prefix in front of the
 * contents. Repeated scalar fields are written one element per field (proto2's unpacked form, which every parser
 * reads). Allocation failures make the writer sticky-failed: every later call is a no-op and ei__pbw_ok returns 0.
 */
#ifndef EI_ONNX_WRITER_H
#define EI_ONNX_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define EI_PBW_MAX_DEPTH 16

typedef struct ei__pbw {
  uint8_t *buf;
  size_t len, cap;
  size_t open[EI_PBW_MAX_DEPTH]; /* start of the contents of each open nested message */
  int depth;
  int failed;
} ei__pbw;

void ei__pbw_init(ei__pbw *w);
void ei__pbw_free(ei__pbw *w);
/* 1 if nothing failed and every nested message was closed. */
int ei__pbw_ok(const ei__pbw *w);
/* Hands the bytes over (the caller frees them with ei__free); the writer is left empty. NULL if it failed. */
uint8_t *ei__pbw_take(ei__pbw *w, size_t *len);

/* Scalar fields. Negative int64 values are written as 10-byte varints (protobuf int64). */
void ei__pbw_varint(ei__pbw *w, uint32_t field, uint64_t v);
void ei__pbw_int64(ei__pbw *w, uint32_t field, int64_t v);
void ei__pbw_float(ei__pbw *w, uint32_t field, float v);
void ei__pbw_bytes(ei__pbw *w, uint32_t field, const void *data, size_t len);
void ei__pbw_string(ei__pbw *w, uint32_t field, const char *s);

/* Nested messages. */
void ei__pbw_begin(ei__pbw *w, uint32_t field);
void ei__pbw_end(ei__pbw *w);

/* ---- ONNX ---- */

/* ModelProto header fields (call before the graph): ir_version, producer, one opset_import per domain. */
void ei__onnxw_model_header(ei__pbw *w, int64_t ir_version, const char *producer, const char *producer_version);
void ei__onnxw_opset(ei__pbw *w, const char *domain, int64_t version);
/* GraphProto: ei__onnxw_graph_begin(w, name) ... ei__pbw_end(w). */
void ei__onnxw_graph_begin(ei__pbw *w, const char *name);

/* A TensorProto (field: 5 for a GraphProto initializer, 5 = AttributeProto.t as well) with raw_data in
 * little-endian order. dims may be NULL for rank 0. */
void ei__onnxw_tensor(ei__pbw *w, uint32_t field, const char *name, ei_dtype dt, int rank, const int64_t *dims,
                      const void *data);

/* A ValueInfoProto (field 11 = graph input, 12 = output, 13 = value_info) with a tensor type. rank < 0: no shape.
 * dims[d] < 0 is written as the symbolic dim_names[d] (or as an unknown dimension when that is NULL). */
void ei__onnxw_value_info(ei__pbw *w, uint32_t field, const char *name, ei_dtype dt, int rank, const int64_t *dims,
                          char *const *dim_names);

/* NodeProto: ei__onnxw_node_begin(...), attributes, ei__pbw_end(w). Input names may be "" (omitted input). */
void ei__onnxw_node_begin(ei__pbw *w, const char *name, const char *op_type, const char *domain,
                          const char *const *inputs, int nin, const char *const *outputs, int nout);
void ei__onnxw_attr_int(ei__pbw *w, const char *name, int64_t v);
void ei__onnxw_attr_float(ei__pbw *w, const char *name, float v);
void ei__onnxw_attr_string(ei__pbw *w, const char *name, const char *s);
void ei__onnxw_attr_ints(ei__pbw *w, const char *name, const int64_t *v, int n);
void ei__onnxw_attr_floats(ei__pbw *w, const char *name, const float *v, int n);
void ei__onnxw_attr_tensor(ei__pbw *w, const char *name, ei_dtype dt, int rank, const int64_t *dims,
                           const void *data);

#endif
