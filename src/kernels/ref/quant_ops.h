/* Internal interface of the integer (quantized) operator group: the registration array ei__ops_quant
 * (quant_ops.c), the shared scale / zero-point helpers (quant_ops.c), the packed weight layouts that the scalar
 * reference kernels use and that SIMD micro-kernels can plug in behind, and the entry points of
 *   qquantize.c  QuantizeLinear, DequantizeLinear
 *   qconv.c      QLinearConv, ConvInteger
 *   qmatmul.c    QLinearMatMul, MatMulInteger, QGemm (com.microsoft)
 *   qelementwise.c  QLinearAdd, QLinearMul, QLinearGlobalAveragePool, QLinearConcat, QLinearSigmoid,
 *                   QLinearLeakyRelu (com.microsoft), QLinearLookup (ai.edgeinfer).
 * Rounding and saturation come only from src/quant/requant.h.
 *
 * ---- Zero-point correction ----
 * An integer conv/matmul output is acc = sum_k (x_k - x_zp) * (w_k - w_zp) (+ bias). The kernels compute it as
 *   acc = sum_k x_k*w_k - w_zp * sum_k x_k - x_zp * sum_k w_k + K * x_zp * w_zp
 * with sum_k w_k precomputed per output channel / column at pack time, sum_k x_k per output pixel / row, and all
 * arithmetic in uint32 (wrapping modulo 2^32, so the int32 result is exact whenever it fits and wraps like a
 * 32-bit accumulator otherwise). Conv padding positions hold x_zp, so they contribute 0.
 *
 * ---- Packed weight layouts ----
 * QLinearConv / ConvInteger (ei__qconv_wpack): W [M, C/group, k...] is stored as bytes w[m][kp * Cg + c] =
 *   W[m][c][kp] (kp: the kernel position in row-major order over k..., Cg = C/group), i.e. [oc][kh][kw][ic/group];
 *   K = Cg * kvol bytes per output channel, rows contiguous (row stride K), plus wsum[m] = sum_k W[m][k] (int32,
 *   values read as the signed or unsigned type). The im2col rows of x use the same k order: col[p][kp*Cg + c].
 * QLinearMatMul / MatMulInteger / QGemm with a constant 2-D B (ei__qgemm_bpack): B' [K, N] (after transB) is
 *   stored transposed, b[n][k] = B'[k][n] (row stride K), plus bsum[n] = sum_k B'[k][n]. A rows are contiguous
 *   in k, so every output is a dot product of two contiguous byte rows.
 * The bytes are the original uint8 / int8 values (type in wtype); SIMD kernels that want another layout (k
 * padded to 4, u8 x s8 interleaving) may repack from these in their own init. */
#ifndef EI_KERNELS_REF_QUANT_OPS_H
#define EI_KERNELS_REF_QUANT_OPS_H

#include "kernels/ref/nn.h"
#include "quant/requant.h"

/* ---- scale / zero-point inputs ---- */

/* Checks input i of a node as a quantization parameter: a scale (want == EI_FLOAT) or a zero point of type
 * `want`. It must hold 1 element (per-tensor: rank 0, [1], any shape of one element) or, when n > 0, may be a
 * 1-D tensor of n elements (per-channel). optional: the input may be absent (a zero point defaulting to 0);
 * *count receives 1 or n (1 when absent). `what` names the input in errors. */
ei_status ei__q_check_param(const ei__node *node, int nin, const ei__tensor *in, int i, const char *what,
                            ei_dtype want, int optional, int64_t n, int64_t *count, char *err, size_t errlen);
/* Element j of a scale input (float32). */
static inline float ei__q_scale(const ei__tensor *t, int64_t j) { return ((const float *)t->data)[j]; }
/* Element j of a zero-point input of any integer type; 0 when the input is absent. */
static inline int32_t ei__q_zp(int nin, const ei__tensor *in, int i, int64_t j) {
  if (i < 0 || !ei__nn_has(nin, in, i) || !in[i].data) return 0;
  return (int32_t)ei__get_int(&in[i], j);
}
/* Whether input i is present in the node (not omitted). */
static inline int ei__q_node_has(const ei__node *n, int i) { return i < n->nin && n->in[i] >= 0; }
/* Fails unless node->act is none, Relu or Clip (the clamps an integer output can apply). */
ei_status ei__q_check_act(const ei__node *n, char *err, size_t errlen);

/* Reads element i of a uint8 / int8 tensor as int32. */
static inline int32_t ei__q8_get(const void *p, int is_signed, int64_t i) {
  return is_signed ? (int32_t)((const int8_t *)p)[i] : (int32_t)((const uint8_t *)p)[i];
}
/* Stores v (already saturated to the type's range) as element i of a quantized tensor of type t. */
static inline void ei__q_store(void *p, ei_dtype t, int64_t i, int32_t v) {
  switch (t) {
    case EI_UINT8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case EI_INT8: ((int8_t *)p)[i] = (int8_t)v; break;
    case EI_UINT16: ((uint16_t *)p)[i] = (uint16_t)v; break;
    case EI_INT16: ((int16_t *)p)[i] = (int16_t)v; break;
    default: break;
  }
}

/* Dot product of two contiguous byte rows of K elements, each uint8 (signed = 0) or int8 (signed = 1), as the
 * wrapped 32-bit sum. */
uint32_t ei__q8_dot(const uint8_t *a, int a_signed, const uint8_t *b, int b_signed, int64_t K);
/* Four dot products of row a with the rows b, b + ldb, b + 2 * ldb, b + 3 * ldb (the reference micro-kernel). */
void ei__q8_dot4(const uint8_t *a, int a_signed, const uint8_t *b, int64_t ldb, int b_signed, int64_t K,
                 uint32_t out[4]);
/* Sum of a byte row of K elements (uint32, wrapping). */
uint32_t ei__q8_sum(const uint8_t *a, int a_signed, int64_t K);

/* ---- packed weights ---- */

typedef struct ei__qconv_wpack {
  int rank;                   /* rank of W */
  int64_t dims[EI_MAX_DIMS];  /* W's dims */
  int64_t M, Cg, kvol, K;     /* output channels, input channels per group, kernel positions, K = Cg * kvol */
  ei_dtype wtype;             /* EI_UINT8 or EI_INT8 */
  uint8_t *w;                 /* [M][K], see above */
  int32_t *wsum;              /* [M] */
} ei__qconv_wpack;

/* Bytes of a conv pack (w and wsum, each 64-byte aligned), or SIZE_MAX on overflow. */
size_t ei__qconv_pack_bytes(int64_t M, int64_t K);
/* Packs W (dims [M, Cg, k...], rank wrank, type wtype) into w ([M][K]) and wsum ([M]). */
void ei__qconv_pack(const void *W, ei_dtype wtype, int wrank, const int64_t *wdims, uint8_t *w, int32_t *wsum);

typedef struct ei__qgemm_bpack {
  int64_t K, N;
  ei_dtype btype;   /* EI_UINT8 or EI_INT8 */
  uint8_t *b;       /* [N][K] */
  int32_t *bsum;    /* [N] */
} ei__qgemm_bpack;

/* Packs B' = transB ? B^T : B (B 2-D, row-major with ldb = its row length) into b [N][K] and bsum [N]. */
void ei__qgemm_pack_b(const void *B, ei_dtype btype, int64_t K, int64_t N, int transB, uint8_t *b, int32_t *bsum);

/* ---- operator entry points ---- */
#define EI_QOPS_DECLARE(name)                                                        \
  ei_status ei__##name##_init(ei__graph *g, ei__node *n, char *err, size_t errlen); \
  ei_status ei__##name##_infer(ei__infer *c);                                        \
  ei_status ei__##name##_run(ei__run *c);                                            \
  const char *ei__##name##_kernel_name(const ei__node *n);

EI_QOPS_DECLARE(quantizelinear)   /* qquantize.c */
EI_QOPS_DECLARE(dequantizelinear)
EI_QOPS_DECLARE(qconv)            /* qconv.c: QLinearConv and ConvInteger */
void ei__qconv_fini(ei__node *n);
EI_QOPS_DECLARE(qmatmul)          /* qmatmul.c: QLinearMatMul, MatMulInteger, QGemm */
void ei__qmatmul_fini(ei__node *n);
EI_QOPS_DECLARE(qbinary)          /* qelementwise.c: QLinearAdd, QLinearMul */
EI_QOPS_DECLARE(qgap)             /* QLinearGlobalAveragePool */
EI_QOPS_DECLARE(qconcat)          /* QLinearConcat */
EI_QOPS_DECLARE(qunary)           /* QLinearSigmoid, QLinearLeakyRelu */
EI_QOPS_DECLARE(qlookup)          /* QLinearLookup */

#endif
