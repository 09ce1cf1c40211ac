/* edgeinfer: ONNX image-model inference engine for edge CPUs.
 *
 * One public header. Every handle is opaque; every function that can fail returns an ei_status and, when
 * given a buffer (err, errlen), writes a message that names what is wrong (node, tensor, field).
 * The caller owns what it creates and frees it with the matching destroy function.
 *
 * Life cycle:
 *   ei_model_load()      parse + validate + optimize + pack weights; the file is not needed afterwards.
 *   ei_session_create()  an execution context over a model (a model may have many sessions, in many threads;
 *                        one session is used by one thread at a time).
 *   ei_session_plan()    fix the input shapes, infer every shape, plan the arena (cached per shape).
 *   ei_session_run()     run; allocation-free for an already planned shape.
 */
#ifndef EDGEINFER_H
#define EDGEINFER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EI_VERSION_STRING "0.1.0"

typedef enum ei_status {
  EI_OK = 0,
  EI_E_INVALID_ARGUMENT, /* a bad argument to an API call, or an input tensor that does not fit the model */
  EI_E_IO,               /* a file could not be opened, mapped or read */
  EI_E_MALFORMED,        /* the bytes are not a well-formed ONNX protobuf (truncated, bad varint, wire type) */
  EI_E_INVALID_MODEL,    /* well-formed protobuf, invalid model (cycle, missing input, bad attribute) */
  EI_E_UNSUPPORTED,      /* an operator, opset, IR version or data type that is not implemented */
  EI_E_SHAPE,            /* shapes that do not agree, or that cannot be inferred */
  EI_E_NOMEM,            /* an allocation failed */
  EI_E_LIMIT,            /* a configured limit was exceeded (arena cap, tensor size) */
  EI_E_RUNTIME,          /* an operator failed on its data (e.g. an index out of range) */
  EI_E_INTERNAL
} ei_status;

/* A short, static description of a status ("malformed model"). */
const char *ei_strerror(ei_status s);

/* Element types, numbered as ONNX TensorProto.DataType. */
typedef enum ei_dtype {
  EI_UNDEFINED = 0,
  EI_FLOAT = 1,
  EI_UINT8 = 2,
  EI_INT8 = 3,
  EI_UINT16 = 4,
  EI_INT16 = 5,
  EI_INT32 = 6,
  EI_INT64 = 7,
  EI_STRING = 8,
  EI_BOOL = 9,
  EI_FLOAT16 = 10,
  EI_DOUBLE = 11,
  EI_UINT32 = 12,
  EI_UINT64 = 13
} ei_dtype;

/* "float32", "int8", ...; "?" for an unknown type. */
const char *ei_dtype_name(ei_dtype t);
/* Bytes per element; 0 for types the engine cannot hold. */
size_t ei_dtype_size(ei_dtype t);

#define EI_MAX_DIMS 8

/* A dense, row-major tensor. For inputs the caller owns data; outputs of ei_session_run point into the
 * session and stay valid until the next plan/run or destroy of that session. */
typedef struct ei_tensor {
  ei_dtype dtype;
  int rank;
  int64_t dims[EI_MAX_DIMS];
  void *data;
} ei_tensor;

/* Element count (1 for rank 0). */
int64_t ei_tensor_numel(const ei_tensor *t);

/* ---- allocator (one for the whole library, like Lua's lua_Alloc) ---- */
typedef struct ei_allocator {
  /* Returns memory aligned to `align` (a power of two, >= sizeof(void*)) or NULL. */
  void *(*alloc)(void *ud, size_t size, size_t align);
  void (*free)(void *ud, void *ptr);
  void *ud;
} ei_allocator;
/* Replace the allocator (NULL restores the default). Call before creating any object. */
void ei_set_allocator(const ei_allocator *a);

/* ---- CPU and kernel selection ---- */
/* The kernel level in use: "ref", "avx2", "avxvnni", "avx512", "avx512vnni", "neon", "dotprod".
 * Detected from the CPU at first use; the environment variable EI_ISA forces a level no higher. */
const char *ei_isa_name(void);
/* Force a level by name; fails if the CPU lacks it. */
ei_status ei_set_isa(const char *name, char *err, size_t errlen);

/* ---- thread pool ---- */
typedef struct ei_threadpool ei_threadpool;
/* nthreads includes the calling thread. cpus (may be NULL) lists CPUs to pin threads to, in order. */
ei_status ei_threadpool_create(int nthreads, const int *cpus, int ncpus, ei_threadpool **out, char *err,
                               size_t errlen);
int ei_threadpool_size(const ei_threadpool *p);
/* The kernel thread ids (gettid) of the pool's worker threads (the calling thread of a run is not one of them):
 * fills up to cap and returns the count (0 for NULL or a 1-thread pool). For per-thread counters
 * (perf_event_open). */
int ei_threadpool_thread_ids(const ei_threadpool *p, int *tids, int cap);
/* A run is coming soon (e.g. a server saw a request arrive): until ns nanoseconds from now (at most 10 ms) the
 * pool's idle workers poll, yielding the CPU between polls (sched_yield), instead of sleeping on a futex, and the
 * ones asleep are woken, so that the run's first parallel region does not wait for their wake-up. A later call
 * extends the hold; ns = 0 ends it at once. Bounded: when it ends, idle workers sleep again. Any thread; NULL or a
 * 1-thread pool: nothing. Never needed for correctness. */
void ei_threadpool_hold(ei_threadpool *p, uint64_t ns);
void ei_threadpool_destroy(ei_threadpool *p);

/* ---- model ---- */
typedef struct ei_model ei_model;

typedef struct ei_model_options {
  size_t max_arena_bytes; /* planning fails with EI_E_LIMIT above this (default 4 GiB) */
  int optimize;           /* 1 (default): constant folding, BatchNorm folding, activation fusion */
} ei_model_options;
void ei_model_options_init(ei_model_options *o);

/* Load from a file (read-only mmap; released before return; external data files resolved next to it). */
ei_status ei_model_load(const char *path, const ei_model_options *opt, ei_model **out, char *err, size_t errlen);
/* Load from memory; base_dir resolves external data (NULL: external data is an error). The buffer is not
 * referenced after return. */
ei_status ei_model_load_memory(const void *data, size_t size, const char *base_dir, const ei_model_options *opt,
                               ei_model **out, char *err, size_t errlen);
void ei_model_destroy(ei_model *m);

/* Inputs and outputs. dims[i] == -1 marks a symbolic dimension, named in dim_names[i]. */
typedef struct ei_value_info {
  const char *name;
  ei_dtype dtype;
  int rank;
  int64_t dims[EI_MAX_DIMS];
  const char *dim_names[EI_MAX_DIMS];
} ei_value_info;
int ei_model_input_count(const ei_model *m);
int ei_model_output_count(const ei_model *m);
ei_status ei_model_input_info(const ei_model *m, int i, ei_value_info *info);
ei_status ei_model_output_info(const ei_model *m, int i, ei_value_info *info);

/* Nodes of the optimized graph, in execution order. */
typedef struct ei_node_info {
  const char *name;
  const char *op_type;  /* after fusion, e.g. "Conv" */
  const char *fused;    /* fused activation ("Relu"), or NULL */
  const char *kernel;   /* the kernel picked for it at the current ISA, e.g. "f32_conv_im2col_gemm" */
  int is_int8;          /* runs on integer tensors */
} ei_node_info;
int ei_model_node_count(const ei_model *m);
ei_status ei_model_node_info(const ei_model *m, int i, ei_node_info *info);

typedef struct ei_model_stats {
  int nodes_imported;     /* nodes in the file */
  int nodes;              /* nodes after passes */
  int64_t params;         /* weight elements */
  size_t weight_bytes;    /* bytes of packed weights and constants held by the model */
  int ir_version;
  int opset;              /* default-domain opset */
  const char *producer;   /* producer_name + version */
} ei_model_stats;
void ei_model_get_stats(const ei_model *m, ei_model_stats *st);

/* ---- session ---- */
typedef struct ei_session ei_session;
/* pool may be NULL (single-threaded). The model must outlive the session. */
ei_status ei_session_create(ei_model *m, ei_threadpool *pool, ei_session **out, char *err, size_t errlen);
void ei_session_destroy(ei_session *s);

/* Plan for these input shapes (inputs in model order; only dtype/rank/dims are read). Makes the arena; a
 * shape planned before is taken from the cache. */
ei_status ei_session_plan(ei_session *s, int ninputs, const ei_tensor *inputs, char *err, size_t errlen);

typedef struct ei_plan_stats {
  size_t arena_bytes;      /* the planned arena (intermediates + scratch), 64-byte aligned offsets */
  size_t naive_bytes;      /* the sum of every intermediate tensor, as if none shared memory */
  int64_t macs;            /* multiply-accumulates of one run */
  int tensors;             /* intermediate tensors placed in the arena */
} ei_plan_stats;
/* Stats of the current plan (after ei_session_plan or run). */
ei_status ei_session_plan_stats(const ei_session *s, ei_plan_stats *st);
/* An estimate of the memory traffic of one run of the current plan, in bytes: over every node that runs (nodes
 * folded at plan time and views such as Reshape excluded), the bytes of each input it reads (activations and
 * constants by their planned type and shape; weights packed at load by the bytes of their packed form, e.g. the
 * Winograd-transformed matrices) plus the bytes of each output it writes. Caches and im2col scratch are not
 * modelled. -1 when nothing is planned. */
int64_t ei_session_planned_traffic_bytes(const ei_session *s);

/* Run with inputs in model order. Plans first if the shapes are new. outputs[0..noutputs) receive views in
 * model output order. */
ei_status ei_session_run(ei_session *s, int ninputs, const ei_tensor *inputs, int noutputs, ei_tensor *outputs,
                         char *err, size_t errlen);

/* ei_model_node_info, with is_int8 from the session's current plan (where every value's type is known). */
ei_status ei_session_node_info(const ei_session *s, int i, ei_node_info *info);

/* Per-node timing of the last run (ns), when profiling is on; node order as ei_model_node_info. */
void ei_session_set_profiling(ei_session *s, int on);
ei_status ei_session_node_time_ns(const ei_session *s, int node, uint64_t *ns, int64_t *macs);

/* ---- tensor files ---- */
/* Reads a .npy (v1-3, little-endian, C order) or a TensorProto .pb file, by content. out->data is allocated
 * by the library: free it with ei_tensor_free. */
ei_status ei_tensor_load(const char *path, ei_tensor *out, char *err, size_t errlen);
/* Reads a TensorProto from memory (raw_data or typed fields). */
ei_status ei_tensor_from_pb(const void *data, size_t size, ei_tensor *out, char *err, size_t errlen);
ei_status ei_tensor_save_npy(const char *path, const ei_tensor *t, char *err, size_t errlen);
void ei_tensor_free(ei_tensor *t);

/* ---- images ---- */
typedef struct ei_image {
  int width, height;
  uint8_t *rgb; /* width*height*3 bytes, interleaved RGB */
} ei_image;
/* Decodes JPEG or PNG (by magic bytes). Grey, grey+alpha, palette, 16-bit and interlaced PNGs and grey/CMYK/
 * progressive JPEGs become RGB; alpha is dropped. Images above max_pixels (0: 64 Mpixel) are refused before
 * any pixel buffer is allocated. A corrupt or truncated file is an error, never an abort. */
ei_status ei_image_decode(const void *data, size_t size, size_t max_pixels, ei_image *out, char *err, size_t errlen);
ei_status ei_image_load(const char *path, size_t max_pixels, ei_image *out, char *err, size_t errlen);
void ei_image_free(ei_image *img);

typedef struct ei_preprocess {
  int resize;      /* bilinear resize so the shorter side is this (0: no resize) */
  int crop_w, crop_h; /* center crop (0: no crop) */
  int channels;    /* 3: RGB; 1: grey (ITU-R 601 luma) */
  float scale;     /* applied first: pixel * scale (1/255) */
  float mean[3], std[3]; /* then (x - mean) / std per channel */
} ei_preprocess;
/* resize 256, crop 224x224, RGB, /255, ImageNet mean and std. */
void ei_preprocess_init(ei_preprocess *p);
/* Output size after preprocessing. */
void ei_preprocess_out_size(const ei_preprocess *p, int in_w, int in_h, int *out_w, int *out_h);
/* Writes channels*out_h*out_w floats, planar (CHW), into out. */
ei_status ei_image_to_chw(const ei_image *img, const ei_preprocess *p, float *out, size_t out_floats, char *err,
                          size_t errlen);
/* The k highest of one row of `classes` logits, best first (ties: the lower index), with their softmax
 * probabilities (computed in double, max-subtracted): idx[j], prob[j] for j < min(k, classes). */
void ei_softmax_topk(const float *row, int64_t classes, int k, int *idx, float *prob);

#ifdef __cplusplus
}
#endif
#endif
