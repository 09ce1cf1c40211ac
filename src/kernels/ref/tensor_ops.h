/* Internal interface of the tensor / data-movement operators: the shared helpers of src/kernels/ref/tensor.c
 * and the init/infer/run entry points of shape_ops.c, transpose.c, concat.c, slice.c, expand.c, gather.c,
 * depth_to_space.c, pad.c and resize.c (all registered in ei__ops_tensor[], tensor.c). */
#ifndef EI_TENSOR_OPS_H
#define EI_TENSOR_OPS_H

#include "graph/ir.h"

/* Error from an init function: "<op> node '<name>': ...". */
#define EI_INIT_ERR(n, err, errlen, status, fmt, ...) \
  ei__err((err), (errlen), (status), "%s node '%s': " fmt, (n)->op_type, (n)->name, ##__VA_ARGS__)

/* Largest element count of a tensor we accept (keeps byte and offset arithmetic far from overflow). */
#define EI_TOPS_MAX_NUMEL ((int64_t)1 << 56)

/* ---- shared helpers (tensor.c) ---- */

/* Input i is present (within nin and not an omitted optional input). */
int ei__tops_present(int nin, const ei__tensor *in, int i);
/* Element count, or -1 if a dim is negative or the count overflows EI_TOPS_MAX_NUMEL. */
int64_t ei__tops_numel(int rank, const int64_t *dims);
/* Bytes of a tensor (numel * element size); 0 for unknown types. */
size_t ei__tops_nbytes(const ei__tensor *t);
/* Dense row-major strides (in elements) of dims. */
void ei__tops_strides(int rank, const int64_t *dims, int64_t *strides);

/* Checks that input i is present, has a storable element type and a concrete shape; `what` names it. */
ei_status ei__tops_check_input(ei__infer *c, int i, const char *what);
/* Sets output o (dtype, rank, dims) after validating rank <= EI_MAX_DIMS, dims >= 0 and the element count. */
ei_status ei__tops_set_out(ei__infer *c, int o, ei_dtype dt, int rank, const int64_t *dims);

/* Reads the integer (int32/int64) 0-D or 1-D input i, which must be known at plan time, into vals (at most
 * maxn values); *n receives the count. `what` names the input in errors. */
ei_status ei__tops_read_ints(ei__infer *c, int i, const char *what, int64_t *vals, int maxn, int *n);
/* Normalizes n axes (negative counts from the end) against rank into out; rejects out-of-range and repeated
 * axes. `what` names the axes in errors. */
ei_status ei__tops_norm_axes(ei__infer *c, const char *what, const int64_t *axes, int n, int rank, int *out);

/* Fails in init if attribute `name` is present with another type than `type`. */
ei_status ei__tops_attr_type(const ei__node *n, const char *name, ei__attr_type type, char *err, size_t errlen);

/* Copies the strided view of src (element offsets base + sum idx[k]*strides[k], strides may be negative or zero)
 * with the given dims into dense row-major dst. Elements are esize bytes. Splits large copies over pool. */
void ei__tops_strided_copy(void *dst, const void *src, int64_t base, size_t esize, int rank, const int64_t *dims,
                           const int64_t *strides, ei_threadpool *pool);

/* For the aliasing ops: copies input 0 to output 0 unless they share storage. */
ei_status ei__tops_alias_run(ei__run *c);

/* ---- operators ---- */
#define EI_TOPS_DECLARE(name)                                               \
  ei_status ei__##name##_init(ei__graph *g, ei__node *n, char *err, size_t errlen); \
  ei_status ei__##name##_infer(ei__infer *c);                               \
  ei_status ei__##name##_run(ei__run *c);

EI_TOPS_DECLARE(flatten)       /* shape_ops.c */
EI_TOPS_DECLARE(reshape)
EI_TOPS_DECLARE(squeeze)
EI_TOPS_DECLARE(unsqueeze)
EI_TOPS_DECLARE(transpose)     /* transpose.c */
EI_TOPS_DECLARE(concat)        /* concat.c */
EI_TOPS_DECLARE(split)
EI_TOPS_DECLARE(slice)         /* slice.c */
EI_TOPS_DECLARE(expand)        /* expand.c */
EI_TOPS_DECLARE(gather)        /* gather.c */
EI_TOPS_DECLARE(depth_to_space) /* depth_to_space.c */
EI_TOPS_DECLARE(space_to_depth)
EI_TOPS_DECLARE(pad)           /* pad.c */
EI_TOPS_DECLARE(resize)        /* resize.c */
EI_TOPS_DECLARE(upsample)

#undef EI_TOPS_DECLARE

const char *ei__transpose_kernel(const ei__node *n);
const char *ei__resize_kernel(const ei__node *n);
const char *ei__pad_kernel(const ei__node *n);

#endif
