/* Internal interface of the neural-network operator group (src/kernels/ref/): shared attribute parsing and
 * spatial geometry (nn.c), the init/infer/run functions that conv.c, conv_transpose.c, pool.c, batchnorm.c,
 * lrn.c, gemm.c and matmul.c export to the registration array in nn.c, and the Conv kernels (reference and
 * fast 2-D paths in conv_fast.c) that tests/test_conv_paths.c compares. */
#ifndef EI_KERNELS_REF_NN_H
#define EI_KERNELS_REF_NN_H

#include "graph/ir.h"
#include "kernels/f32_gemm.h"

/* Largest spatial rank (dims after N and C). */
#define EI_NN_MAX_SPATIAL (EI_MAX_DIMS - 2)
/* Upper bound of kernel/stride/dilation/pad attribute values: keeps every product of two in int64. */
#define EI_NN_MAX_ATTR ((int64_t)1 << 31)
/* Bound of an im2col made once for every output pixel of a conv (bytes); larger problems make it per tile of
 * output pixels in per-thread slots. */
#define EI_NN_IM2COL_BYTES ((size_t)4 << 20)

/* Formats "<op> node '<name>': ..." into err. */
#define EI_NN_ERR(node, err, errlen, status, fmt, ...)                                                      \
  ei__err((err), (errlen), (status), "%s node '%s': " fmt, (node)->op_type, (node)->name ? (node)->name : "", \
          ##__VA_ARGS__)

enum { EI_AUTOPAD_NOTSET = 0, EI_AUTOPAD_SAME_UPPER, EI_AUTOPAD_SAME_LOWER, EI_AUTOPAD_VALID };

/* Attributes shared by Conv, ConvTranspose and the pools, validated by ei__nn_attrs_parse. Counts are -1
 * when the attribute is absent. */
typedef struct ei__nn_attrs {
  int auto_pad;
  int nkernel, nstrides, ndilations, npads, noutpad, noutshape;
  int64_t kernel[EI_NN_MAX_SPATIAL], strides[EI_NN_MAX_SPATIAL], dilations[EI_NN_MAX_SPATIAL];
  int64_t pads[2 * EI_NN_MAX_SPATIAL], outpad[EI_NN_MAX_SPATIAL], outshape[EI_MAX_DIMS];
  int64_t group;
  int ceil_mode, count_include_pad, storage_order;
} ei__nn_attrs;

/* Spatial geometry of one conv/pool: S spatial dims with input, output, kernel, stride, dilation and the
 * begin/end pads (after auto_pad). */
typedef struct ei__nn_geom {
  int S;
  int64_t in[EI_NN_MAX_SPATIAL], out[EI_NN_MAX_SPATIAL], k[EI_NN_MAX_SPATIAL], s[EI_NN_MAX_SPATIAL],
      d[EI_NN_MAX_SPATIAL], pb[EI_NN_MAX_SPATIAL], pe[EI_NN_MAX_SPATIAL];
} ei__nn_geom;

/* Reads and validates auto_pad, kernel_shape, strides, dilations, pads, output_padding, output_shape, group,
 * ceil_mode, count_include_pad, storage_order (whichever are present). */
ei_status ei__nn_attrs_parse(const ei__node *n, ei__nn_attrs *a, char *err, size_t errlen);

/* Forward (Conv / pool) geometry for S spatial dims of input `in`. wk: the kernel from W's dims (Conv), must
 * agree with kernel_shape when both exist; NULL for pools (kernel_shape required). ceil_mode: pools only.
 * Fails with EI_E_SHAPE / EI_E_INVALID_MODEL and a message naming the problem. */
ei_status ei__nn_geom_forward(const ei__node *n, const ei__nn_attrs *a, int S, const int64_t *in,
                              const int64_t *wk, int ceil_mode, ei__nn_geom *g, char *err, size_t errlen);
/* ConvTranspose geometry (output_shape, output_padding, auto_pad as in the ONNX spec); begin/end pads may
 * come out negative when output_shape asks for more than the natural size. */
ei_status ei__nn_geom_transpose(const ei__node *n, const ei__nn_attrs *a, int S, const int64_t *in,
                                const int64_t *wk, ei__nn_geom *g, char *err, size_t errlen);

/* Product of n dims with overflow check; returns -1 on overflow. */
int64_t ei__nn_prod(const int64_t *d, int n);
/* a*b saturated at INT64_MAX (for MAC counts). */
int64_t ei__nn_mul_sat(int64_t a, int64_t b);
/* Checks a tensor of `rank` dims would have a representable byte size; EI_E_SHAPE/EI_E_LIMIT if not. */
ei_status ei__nn_check_numel(ei__infer *c, const int64_t *dims, int rank, const char *what);
/* Input i is present at infer/run time. */
static inline int ei__nn_has(int nin, const ei__tensor *in, int i) {
  return i < nin && in[i].dtype != EI_UNDEFINED && in[i].rank >= 0;
}
/* The node's input i is present in the graph. */
static inline int ei__nn_node_has(const ei__node *n, int i) { return i < n->nin && n->in[i] >= 0; }
/* The fused activation of a node, or NULL when none. */
static inline const ei__act *ei__nn_act(const ei__node *n) { return n->act.kind == EI_ACT_NONE ? NULL : &n->act; }

/* ---- Conv kernels (conv.c, conv_fast.c) ---- */
enum { EI_CONV_REF = 0, EI_CONV_IM2COL, EI_CONV_1X1, EI_CONV_DW, EI_CONV_WINO, EI_CONV_WINO4 };

typedef struct ei__conv_shape {
  ei__nn_geom g;
  int64_t N, C, M, group; /* batch, input channels, output channels, groups */
} ei__conv_shape;

/* Scalar direct convolution, any spatial rank. w: [M, C/group, k...]; b: [M] or NULL. */
void ei__f32_conv_ref(const ei__conv_shape *s, const float *x, const float *w, const float *b, float *y,
                      const ei__act *act, ei_threadpool *pool);

/* Fast 1-D/2-D paths (conv_fast.c). A 1-D conv is run as 2-D with a height of 1. The ISA level is the one chosen
 * at init (it fixes the packed weights' layout). */
/* Path for a float Conv with constant weights of `wrank` dims [M, Cg, k...]: EI_CONV_DW, _1X1, _WINO4 / _WINO
 * (3x3 stride 1: Winograd F(4x4, 3x3) / F(2x2, 3x3)), _IM2COL or EI_CONV_REF when no fast path applies (3-D). */
int ei__conv_fast_path(const ei__nn_attrs *a, int wrank, const int64_t *wdims);
/* Kernel name of a path at a level, e.g. "f32_conv_im2col_14x32_avx512", "f32_dwconv_neon". */
const char *ei__conv_fast_name(int path, ei__isa isa);
/* Floats of the packed weights for a path (SIZE_MAX on overflow); pack writes them. */
size_t ei__conv_packed_floats(int path, ei__isa isa, const int64_t *wdims, int wrank, int64_t group);
void ei__conv_pack(int path, ei__isa isa, const int64_t *wdims, int wrank, int64_t group, const float *w,
                   float *dst);
/* Scratch bytes of one run of the path; SIZE_MAX when the geometry makes them unrepresentable. */
size_t ei__conv_fast_workspace(int path, ei__isa isa, const ei__conv_shape *s);
/* Runs the path; wpack from ei__conv_pack, bias [M] (never NULL), ws of ei__conv_fast_workspace bytes. */
void ei__f32_conv_fast(int path, ei__isa isa, const ei__conv_shape *s, const float *x, const float *wpack,
                       const float *bias, float *y, const ei__act *act, void *ws, ei_threadpool *pool);

/* The depthwise path (dwconv_fast.c; ei__f32_conv_fast calls it for EI_CONV_DW): w [M, kh*kw], no workspace. */
void ei__f32_dwconv_fast(ei__isa isa, const ei__conv_shape *s, const float *x, const float *w, const float *bias,
                         float *y, const ei__act *act, ei_threadpool *pool);

/* Conv init with the fast path allowed or not (the op's init passes ei__isa_current() != EI_ISA_REF). */
ei_status ei__conv_init_impl(ei__graph *g, ei__node *n, int allow_fast, char *err, size_t errlen);

/* ---- operator entry points ---- */
ei_status ei__conv_init(ei__graph *g, ei__node *n, char *err, size_t errlen);
ei_status ei__conv_infer(ei__infer *c);
ei_status ei__conv_run(ei__run *c);
void ei__conv_fini(ei__node *n);
const char *ei__conv_kernel_name(const ei__node *n);

ei_status ei__convtranspose_init(ei__graph *g, ei__node *n, char *err, size_t errlen);
ei_status ei__convtranspose_infer(ei__infer *c);
ei_status ei__convtranspose_run(ei__run *c);
const char *ei__convtranspose_kernel_name(const ei__node *n);

ei_status ei__batchnorm_init(ei__graph *g, ei__node *n, char *err, size_t errlen);
ei_status ei__batchnorm_infer(ei__infer *c);
ei_status ei__batchnorm_run(ei__run *c);
const char *ei__batchnorm_kernel_name(const ei__node *n);

ei_status ei__pool_init(ei__graph *g, ei__node *n, char *err, size_t errlen);
ei_status ei__pool_infer(ei__infer *c);
ei_status ei__pool_run(ei__run *c);
const char *ei__pool_kernel_name(const ei__node *n);

ei_status ei__global_pool_init(ei__graph *g, ei__node *n, char *err, size_t errlen);
ei_status ei__global_pool_infer(ei__infer *c);
ei_status ei__global_pool_run(ei__run *c);
const char *ei__global_pool_kernel_name(const ei__node *n);

ei_status ei__lrn_init(ei__graph *g, ei__node *n, char *err, size_t errlen);
ei_status ei__lrn_infer(ei__infer *c);
ei_status ei__lrn_run(ei__run *c);
const char *ei__lrn_kernel_name(const ei__node *n);

ei_status ei__gemm_init(ei__graph *g, ei__node *n, char *err, size_t errlen);
ei_status ei__gemm_infer(ei__infer *c);
ei_status ei__gemm_run(ei__run *c);
void ei__gemm_fini(ei__node *n);
const char *ei__gemm_kernel_name(const ei__node *n);

ei_status ei__matmul_init(ei__graph *g, ei__node *n, char *err, size_t errlen);
ei_status ei__matmul_infer(ei__infer *c);
ei_status ei__matmul_run(ei__run *c);
void ei__matmul_fini(ei__node *n);
const char *ei__matmul_kernel_name(const ei__node *n);

#endif
