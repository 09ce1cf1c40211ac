/* Graph-level services: passes, planning and execution (internal). */
#ifndef EI_GRAPH_H
#define EI_GRAPH_H

#include "graph/ir.h"

/* Looks up every node's op and runs the load-time passes (Identity/Dropout removal, constant folding,
 * BatchNorm folding, activation fusion, dead-node removal), then init()s every node (weight packing) and frees
 * constants that only packed inputs used. */
ei_status ei__graph_prepare(ei__graph *g, int optimize, char *err, size_t errlen);

/* ei__graph_prepare with more control (the quantizer loads float models this way). */
typedef struct ei__prepare_options {
  int optimize;         /* the load-time passes (as ei__graph_prepare's optimize) */
  int keep_constants;   /* keep the data of constants that init() packed (weights stay readable) */
  unsigned fuse_acts;   /* bit (1u << ei__act_kind) for each activation kind fusion may fold; ~0u: all */
  size_t max_fold_bytes; /* cap on one folded constant (0: the default, 256 MiB) */
} ei__prepare_options;
ei_status ei__graph_prepare_ex(ei__graph *g, const ei__prepare_options *o, char *err, size_t errlen);

/* Runs one node on fully known inputs, allocating its outputs as new constant data (used by constant folding at
 * load and by plan-time folding). vals are tensors of the node's inputs; outs receive dtype/dims/data
 * (data allocated with ei__malloc). */
ei_status ei__eval_node(const ei__graph *g, ei__node *n, const ei__tensor *ins, ei__tensor *outs, size_t max_bytes,
                        char *err, size_t errlen);

/* Runs op->infer for node n on input tensors ins (outs receive dtype/rank/dims). */
ei_status ei__infer_node(const ei__graph *g, const ei__node *n, const ei__tensor *ins, ei__tensor *outs,
                         size_t *workspace, int64_t *macs, char *err, size_t errlen);

/* ---- plans ---- */
enum { EI_VK_UNUSED = 0, EI_VK_CONST, EI_VK_INPUT, EI_VK_KNOWN, EI_VK_ARENA, EI_VK_ALIAS };

typedef struct ei__plan {
  int ninputs;
  ei__tensor *input_shapes;   /* the key */
  ei__tensor *vals;           /* per value: dtype, rank, dims (data set per run) */
  uint8_t *kind;              /* EI_VK_* per value */
  int *alias_root;            /* for EI_VK_ALIAS: the value whose bytes it shares */
  size_t *offset;             /* arena offset for EI_VK_ARENA */
  void **known;               /* plan-owned data for EI_VK_KNOWN (freed with the plan) */
  uint8_t *skip;              /* per node: folded at plan time */
  size_t *ws_offset;          /* per node workspace offset */
  size_t *ws_size;
  int64_t *node_macs;
  ei__tensor *node_io;        /* per node: nin inputs then nout outputs, prepared views */
  int *node_io_start;
  void **ptr;                 /* per value: data pointer during a run */
  size_t arena_size, naive_bytes;
  int64_t macs;
  int ntensors;
} ei__plan;

ei_status ei__plan_make(const ei__graph *g, int ninputs, const ei_tensor *inputs, size_t max_arena, ei__plan **out,
                        char *err, size_t errlen);
/* ei__plan_make with flags: EI_PLAN_KEEP_ALL gives every intermediate tensor its own arena slot (no memory
 * reuse), so every value can be read after a run (calibration, per-layer comparisons). */
enum { EI_PLAN_KEEP_ALL = 1u << 0 };
ei_status ei__plan_make_ex(const ei__graph *g, int ninputs, const ei_tensor *inputs, size_t max_arena, unsigned flags,
                           ei__plan **out, char *err, size_t errlen);
void ei__plan_free(ei__plan *p, const ei__graph *g);
/* 1 if the plan was made for these input shapes. */
int ei__plan_matches(const ei__plan *p, int ninputs, const ei_tensor *inputs);
/* Runs a plan: arena must hold p->arena_size bytes (64-byte aligned). Fills outputs views. */
ei_status ei__plan_run(const ei__graph *g, const ei__plan *p, void *arena, ei_threadpool *pool, const ei_tensor *inputs,
                       ei_tensor *outputs, int noutputs, uint64_t *node_ns, char *err, size_t errlen);

#endif
