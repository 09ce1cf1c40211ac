/* The graph IR: values (tensors), nodes, attributes, and the operator interface every kernel implements.
 *
 * A graph is built by the ONNX importer (src/onnx), rewritten by passes (src/graph/passes.c), and then is
 * immutable: it is shared by every session of a model. Per-shape facts (concrete dims, arena offsets) live in a
 * plan (src/graph/plan.c), never in the graph.
 */
#ifndef EI_IR_H
#define EI_IR_H

#include "core/core.h"

/* ---- kernel-side tensor view ---- */
typedef struct ei__tensor {
  ei_dtype dtype;
  int rank;
  int64_t dims[EI_MAX_DIMS];
  void *data; /* NULL during shape inference unless the value is known (constant or folded at plan time) */
} ei__tensor;

static inline int64_t ei__numel(const ei__tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++) n *= t->dims[i];
  return n;
}

/* ---- attributes (ONNX AttributeProto.AttributeType numbering) ---- */
typedef enum ei__attr_type {
  EI_ATTR_UNDEFINED = 0,
  EI_ATTR_FLOAT = 1,
  EI_ATTR_INT = 2,
  EI_ATTR_STRING = 3,
  EI_ATTR_TENSOR = 4,
  EI_ATTR_GRAPH = 5,
  EI_ATTR_FLOATS = 6,
  EI_ATTR_INTS = 7,
  EI_ATTR_STRINGS = 8
} ei__attr_type;

typedef struct ei__attr {
  char *name;
  ei__attr_type type;
  float f;
  int64_t i;
  char *s;          /* STRING: NUL-terminated copy */
  int n;            /* FLOATS / INTS count */
  float *floats;
  int64_t *ints;
  int tensor_value; /* TENSOR: index of a constant value in the graph holding the tensor */
} ei__attr;

/* ---- values ---- */
typedef struct ei__value {
  char *name;
  ei_dtype dtype;        /* EI_UNDEFINED until known */
  int rank;              /* -1 until known */
  int64_t dims[EI_MAX_DIMS]; /* -1 = symbolic or unknown */
  char *dim_names[EI_MAX_DIMS]; /* symbolic names (graph inputs), may be NULL */
  int is_const;          /* initializer or folded constant: data holds the contents */
  void *data;            /* constant contents, owned by the graph (64-byte aligned), dense row-major */
  size_t nbytes;
  int is_input, is_output;
  int producer;          /* node index, -1 for graph inputs and constants */
  int plan_by_value;     /* a graph input that feeds a shape-like input (Reshape shape, Resize scales, ...): plans
                          * read its values and are cached under them */
} ei__value;

/* ---- fused activation (set by the fusion pass on ops with EI_OPF_FUSE_ACT) ---- */
typedef enum ei__act_kind {
  EI_ACT_NONE = 0,
  EI_ACT_RELU,
  EI_ACT_CLIP,        /* alpha = min, beta = max */
  EI_ACT_LEAKYRELU,   /* alpha */
  EI_ACT_HARDSIGMOID, /* alpha, beta: max(0, min(1, alpha*x + beta)) */
  EI_ACT_HARDSWISH,   /* x * max(0, min(1, x/6 + 0.5)) */
  EI_ACT_SIGMOID
} ei__act_kind;

typedef struct ei__act {
  ei__act_kind kind;
  float alpha, beta;
} ei__act;

/* Applies a fused activation to one value (reference definition, used by every kernel's epilogue). */
float ei__act_apply(const ei__act *a, float x);
/* In place over n floats. */
void ei__act_apply_n(const ei__act *a, float *x, int64_t n);
const char *ei__act_name(ei__act_kind k);

/* ---- nodes ---- */
struct ei__op;
typedef struct ei__node {
  char *name;
  char *op_type;
  char *domain;   /* "" for the default ONNX domain */
  int opset;      /* opset version imported for this node's domain */
  const struct ei__op *op;
  int nin, nout;
  int *in;        /* value indices; -1 = omitted optional input */
  int *out;       /* value indices; -1 = omitted optional output */
  int nattrs;
  ei__attr *attrs;
  void *params;   /* op-private, made by op->init, freed by op->fini */
  ei__act act;    /* fused activation */
  unsigned packed_inputs; /* bit i: init() copied input i into params (packed weights); run() ignores in[i].data */
  size_t params_bytes;    /* bytes of packed weights held in params (set by init) */
  int dead;       /* removed by a pass */
} ei__node;

/* ---- graph ---- */
typedef struct ei__graph {
  ei__value *values;
  int nvalues, cap_values;
  ei__node *nodes;
  int nnodes, cap_nodes;
  int *inputs;    /* graph inputs that are not initializers, in file order */
  int ninputs;
  int *outputs;
  int noutputs;
  int opset_default;  /* ai.onnx opset */
  int opset_ms;       /* com.microsoft opset (0 if absent) */
  int64_t ir_version;
  char *producer;
  int nodes_imported;
  int prepared;        /* every node init()ed: the graph is immutable from here on */
} ei__graph;

/* Graph building (src/graph/ir.c). All return value/node indices or -1 on allocation failure. */
ei__graph *ei__graph_new(void);
void ei__graph_free(ei__graph *g);
int ei__graph_add_value(ei__graph *g, const char *name);
int ei__graph_find_value(const ei__graph *g, const char *name);
int ei__graph_add_node(ei__graph *g);
/* Make value v a constant holding a copy of `data` (nbytes); dims/dtype set from the arguments. */
ei_status ei__value_set_const(ei__value *v, ei_dtype dt, int rank, const int64_t *dims, const void *data,
                              size_t nbytes);
/* Make value v a constant and allocate zeroed storage for it; returns the storage or NULL. */
void *ei__value_alloc_const(ei__value *v, ei_dtype dt, int rank, const int64_t *dims);

/* Attribute lookup on a node. */
const ei__attr *ei__attr_find(const ei__node *n, const char *name);
int64_t ei__attr_int(const ei__node *n, const char *name, int64_t def);
float ei__attr_float(const ei__node *n, const char *name, float def);
const char *ei__attr_str(const ei__node *n, const char *name, const char *def);
/* Returns the count and sets *v, or -1 if the attribute is absent. */
int ei__attr_ints(const ei__node *n, const char *name, const int64_t **v);
int ei__attr_floats(const ei__node *n, const char *name, const float **v);

/* Input i of node n as a constant value, or NULL if absent or not constant. */
const ei__value *ei__node_const_input(const ei__graph *g, const ei__node *n, int i);

/* ---- the operator interface ---- */

/* Shape inference context. in[i].data is non-NULL when input i is known at plan time (a constant, or a value
 * folded from shapes such as Shape -> Gather -> Concat): ops whose output shape depends on input contents
 * (Reshape, Expand, Slice, Pad, Resize, ConstantOfShape, ...) read it from there, and fail with EI_E_SHAPE
 * naming the input when it is not known. Omitted optional inputs have dtype EI_UNDEFINED and rank -1. */
typedef struct ei__infer {
  const ei__graph *graph;
  const ei__node *node;
  int nin, nout;
  const ei__tensor *in;
  ei__tensor *out;      /* the op fills dtype, rank, dims of every present output */
  size_t workspace;     /* scratch bytes the op wants during run (placed in the arena) */
  int64_t macs;         /* multiply-accumulates of one run (for stats); 0 if not meaningful */
  char *err;
  size_t errlen;
} ei__infer;

/* Run context. Inputs and outputs have concrete dims and data. Kernels must not allocate. */
typedef struct ei__run {
  const ei__node *node;
  int nin, nout;
  const ei__tensor *in;
  ei__tensor *out;
  void *workspace;       /* infer's workspace bytes, 64-byte aligned */
  ei_threadpool *pool;   /* for ei__parallel_for; may be NULL */
  char *err;
  size_t errlen;
} ei__run;

enum {
  EI_OPF_ALIAS = 1u << 0,     /* output 0 is a view of input 0's bytes (Reshape, Flatten, Squeeze, ...): no copy */
  EI_OPF_FUSE_ACT = 1u << 1,  /* honours node->act in its epilogue */
  EI_OPF_NO_FOLD = 1u << 2,   /* never evaluate at load/plan time even if all inputs are known */
  EI_OPF_SHAPE_ONLY = 1u << 3 /* reads only the shapes of its inputs (Shape): foldable without input data */
};

typedef struct ei__op {
  const char *type;     /* op_type, e.g. "Conv" */
  const char *domain;   /* "" for ai.onnx, "com.microsoft" */
  int min_opset;        /* oldest opset whose semantics are implemented; older nodes are rejected */
  unsigned flags;
  /* Validate attributes and constant inputs, parse them into node->params, pack weights. May be NULL. */
  ei_status (*init)(ei__graph *g, ei__node *n, char *err, size_t errlen);
  ei_status (*infer)(ei__infer *c);
  ei_status (*run)(ei__run *c);
  void (*fini)(ei__node *n); /* frees node->params; may be NULL (then params is ei__free'd if non-NULL) */
  /* The kernel's name for a node (inspect / profile), e.g. "f32_conv_im2col_gemm". May be NULL. */
  const char *(*kernel_name)(const ei__node *n);
} ei__op;

/* Registry (src/graph/registry.c). Each group file defines an array terminated by an entry with type NULL. */
extern const ei__op ei__ops_elementwise[]; /* src/kernels/ref/elementwise.c, misc.c */
extern const ei__op ei__ops_nn[];          /* src/kernels/ref/conv.c, pool.c, gemm.c, ... */
extern const ei__op ei__ops_tensor[];      /* src/kernels/ref/tensor.c, resize.c, ... */
extern const ei__op ei__ops_quant[];       /* src/kernels/ref/quant_ops.c, q*.c */
const ei__op *ei__op_find(const char *domain, const char *type);

/* Shared helpers for kernels (src/kernels/ref/common.c). */
/* Multidirectional (numpy) broadcast of two shapes; EI_E_SHAPE with a message on mismatch. */
ei_status ei__broadcast_shape(const ei__tensor *a, const ei__tensor *b, ei__tensor *out, char *err, size_t errlen);
/* Reads element i of an integer tensor (int32/int64/uint8/int8/bool) as int64. */
int64_t ei__get_int(const ei__tensor *t, int64_t i);
/* Reads element i of a float tensor (float/double) or integer tensor as double. */
double ei__get_double(const ei__tensor *t, int64_t i);
/* Resolve a possibly negative axis against rank; returns -1 if out of range. */
int ei__norm_axis(int64_t axis, int rank);

/* Short form for kernels: ei__err(c->err, c->errlen, status, "%s: ...", c->node->name, ...). */
#define EI_NODE_ERR(c, status, fmt, ...) \
  ei__err((c)->err, (c)->errlen, (status), "%s node '%s': " fmt, (c)->node->op_type, (c)->node->name, ##__VA_ARGS__)

#endif
