/* ONNX import: ModelProto bytes -> graph IR (src/graph/ir.h). Field numbers follow onnx.proto. */
#ifndef EI_ONNX_H
#define EI_ONNX_H

#include "graph/ir.h"
#include "onnx/pb.h"

/* A parsed TensorProto: a view into the message bytes; decode copies/decodes its elements out. */
typedef struct ei__tproto {
  const uint8_t *msg;  /* the whole TensorProto message */
  size_t msg_len;
  ei_dtype dtype;
  int rank;
  int64_t dims[EI_MAX_DIMS];
  int64_t numel;
  const char *name;    /* view, not NUL-terminated */
  size_t name_len;
  const uint8_t *raw;  /* raw_data view, if present */
  size_t raw_len;
  int has_raw;
  int external;        /* data_location == EXTERNAL */
  const uint8_t *ext_location; size_t ext_location_len;
  int64_t ext_offset, ext_length;
} ei__tproto;

/* Parses the header of a TensorProto (dims, type, where the data is). Checks rank, dims and that the element
 * count fits. `what` names the tensor in messages. */
ei_status ei__tproto_parse(const uint8_t *data, size_t len, ei__tproto *t, const char *what, char *err,
                           size_t errlen);
/* Decodes the elements into dst (numel * element size bytes, aligned). base_dir resolves external data
 * (NULL: external data is an error). Fails if the stored data is shorter/longer than the shape says. */
ei_status ei__tproto_decode(const ei__tproto *t, void *dst, const char *base_dir, const char *what, char *err,
                            size_t errlen);

/* Checks, before allocating, that the stored data can fill the shape (guards against huge dims). */
ei_status ei__tproto_check_size(const ei__tproto *t, const char *base_dir, const char *what, char *err,
                                size_t errlen);

/* Imports a ModelProto into a new graph (not yet optimized or initialized). */
ei_status ei__onnx_import(const void *data, size_t size, const char *base_dir, ei__graph **out, char *err,
                          size_t errlen);
/* The same; drop_pages: data is the caller's own read-only file mapping, and the whole pages of each tensor's
 * raw_data leave memory (MADV_DONTNEED) as soon as the tensor is copied out, so the import's peak holds the
 * weights once, not the file and the copies (pages touched again are re-read from the file). */
ei_status ei__onnx_import_ex(const void *data, size_t size, const char *base_dir, int drop_pages, ei__graph **out,
                             char *err, size_t errlen);

#endif
