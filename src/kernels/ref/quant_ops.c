/* The integer (quantized) operator group: the registration array ei__ops_quant and the helpers shared by the
 * q*.c files (scale / zero-point validation, fused-activation check, byte dot products). */
#include <stdio.h>

#include "kernels/ref/quant_ops.h"

const ei__op ei__ops_quant[] = {
    {"QuantizeLinear", "", 10, 0, ei__quantizelinear_init, ei__quantizelinear_infer, ei__quantizelinear_run, NULL,
     ei__quantizelinear_kernel_name},
    {"DequantizeLinear", "", 10, 0, ei__dequantizelinear_init, ei__dequantizelinear_infer,
     ei__dequantizelinear_run, NULL, ei__dequantizelinear_kernel_name},
    {"QLinearConv", "", 10, EI_OPF_FUSE_ACT, ei__qconv_init, ei__qconv_infer, ei__qconv_run, ei__qconv_fini,
     ei__qconv_kernel_name},
    {"ConvInteger", "", 10, 0, ei__qconv_init, ei__qconv_infer, ei__qconv_run, ei__qconv_fini,
     ei__qconv_kernel_name},
    {"QLinearMatMul", "", 10, EI_OPF_FUSE_ACT, ei__qmatmul_init, ei__qmatmul_infer, ei__qmatmul_run,
     ei__qmatmul_fini, ei__qmatmul_kernel_name},
    {"MatMulInteger", "", 10, 0, ei__qmatmul_init, ei__qmatmul_infer, ei__qmatmul_run, ei__qmatmul_fini,
     ei__qmatmul_kernel_name},
    /* ONNX Runtime contrib operators */
    {"QGemm", "com.microsoft", 1, EI_OPF_FUSE_ACT, ei__qmatmul_init, ei__qmatmul_infer, ei__qmatmul_run,
     ei__qmatmul_fini, ei__qmatmul_kernel_name},
    {"QuantizeLinear", "com.microsoft", 1, 0, ei__quantizelinear_init, ei__quantizelinear_infer,
     ei__quantizelinear_run, NULL, ei__quantizelinear_kernel_name},
    {"DequantizeLinear", "com.microsoft", 1, 0, ei__dequantizelinear_init, ei__dequantizelinear_infer,
     ei__dequantizelinear_run, NULL, ei__dequantizelinear_kernel_name},
    {"QLinearAdd", "com.microsoft", 1, EI_OPF_FUSE_ACT, ei__qbinary_init, ei__qbinary_infer, ei__qbinary_run, NULL,
     ei__qbinary_kernel_name},
    {"QLinearMul", "com.microsoft", 1, EI_OPF_FUSE_ACT, ei__qbinary_init, ei__qbinary_infer, ei__qbinary_run, NULL,
     ei__qbinary_kernel_name},
    {"QLinearGlobalAveragePool", "com.microsoft", 1, 0, ei__qgap_init, ei__qgap_infer, ei__qgap_run, NULL,
     ei__qgap_kernel_name},
    {"QLinearConcat", "com.microsoft", 1, 0, ei__qconcat_init, ei__qconcat_infer, ei__qconcat_run, NULL,
     ei__qconcat_kernel_name},
    {"QLinearSigmoid", "com.microsoft", 1, 0, ei__qunary_init, ei__qunary_infer, ei__qunary_run, NULL,
     ei__qunary_kernel_name},
    {"QLinearLeakyRelu", "com.microsoft", 1, 0, ei__qunary_init, ei__qunary_infer, ei__qunary_run, NULL,
     ei__qunary_kernel_name},
    /* engine-internal: written by the QDQ pass */
    {"QLinearLookup", "ai.edgeinfer", 1, 0, ei__qlookup_init, ei__qlookup_infer, ei__qlookup_run, NULL,
     ei__qlookup_kernel_name},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL},
};

/* "[2, 3]" */
static void dims_str(const ei__tensor *t, char *buf, size_t n) {
  size_t o = 0;
  o += (size_t)snprintf(buf + o, n - o, "[");
  for (int d = 0; d < t->rank && o < n; d++)
    o += (size_t)snprintf(buf + o, n - o, "%s%lld", d ? ", " : "", (long long)t->dims[d]);
  if (o < n) snprintf(buf + o, n - o, "]");
}

ei_status ei__q_check_param(const ei__node *node, int nin, const ei__tensor *in, int i, const char *what,
                            ei_dtype want, int optional, int64_t n, int64_t *count, char *err, size_t errlen) {
  *count = 1;
  if (i < 0 || !ei__nn_has(nin, in, i)) {
    if (optional) return EI_OK;
    return EI_NN_ERR(node, err, errlen, EI_E_INVALID_MODEL, "input %s is required", what);
  }
  const ei__tensor *t = &in[i];
  if (t->dtype != want)
    return EI_NN_ERR(node, err, errlen, want == EI_FLOAT ? EI_E_UNSUPPORTED : EI_E_INVALID_MODEL,
                     "input %s has type %s (%s expected)", what, ei_dtype_name(t->dtype), ei_dtype_name(want));
  const int64_t numel = t->rank <= EI_MAX_DIMS ? ei__nn_prod(t->dims, t->rank) : -1;
  if (numel == 1) return EI_OK;
  if (n > 0 && t->rank == 1 && t->dims[0] == n) {
    *count = n;
    return EI_OK;
  }
  char shape[128];
  dims_str(t, shape, sizeof shape);
  if (n > 0)
    return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "input %s has shape %s (one element or [%lld] expected)", what,
                     shape, (long long)n);
  return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "input %s has shape %s (one element expected: per-tensor)", what,
                   shape);
}

ei_status ei__q_check_act(const ei__node *n, char *err, size_t errlen) {
  if (ei__quant_act_ok(&n->act)) return EI_OK;
  return EI_NN_ERR(n, err, errlen, EI_E_UNSUPPORTED, "fused activation %s cannot be applied to an integer output",
                   ei__act_name(n->act.kind));
}

/* ---- byte dot products (wrapping uint32 sums; each product fits in int32) ---- */

#define EI_Q8_DOT(name, TA, TB)                                              \
  static uint32_t name(const TA *a, const TB *b, int64_t K) {                \
    uint32_t s = 0;                                                          \
    for (int64_t k = 0; k < K; k++) s += (uint32_t)((int32_t)a[k] * (int32_t)b[k]); \
    return s;                                                                \
  }
EI_Q8_DOT(dot_uu, uint8_t, uint8_t)
EI_Q8_DOT(dot_us, uint8_t, int8_t)
EI_Q8_DOT(dot_su, int8_t, uint8_t)
EI_Q8_DOT(dot_ss, int8_t, int8_t)

/* Four rows of b at once: a[k] is loaded once for four independent sums. */
#define EI_Q8_DOT4(name, TA, TB)                                                        \
  static void name(const TA *a, const TB *b, int64_t ldb, int64_t K, uint32_t *out) {  \
    uint32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;                                            \
    const TB *b0 = b, *b1 = b + ldb, *b2 = b + 2 * ldb, *b3 = b + 3 * ldb;              \
    for (int64_t k = 0; k < K; k++) {                                                   \
      const int32_t x = a[k];                                                           \
      s0 += (uint32_t)(x * (int32_t)b0[k]);                                             \
      s1 += (uint32_t)(x * (int32_t)b1[k]);                                             \
      s2 += (uint32_t)(x * (int32_t)b2[k]);                                             \
      s3 += (uint32_t)(x * (int32_t)b3[k]);                                             \
    }                                                                                   \
    out[0] = s0, out[1] = s1, out[2] = s2, out[3] = s3;                                 \
  }
EI_Q8_DOT4(dot4_uu, uint8_t, uint8_t)
EI_Q8_DOT4(dot4_us, uint8_t, int8_t)
EI_Q8_DOT4(dot4_su, int8_t, uint8_t)
EI_Q8_DOT4(dot4_ss, int8_t, int8_t)

void ei__q8_dot4(const uint8_t *a, int a_signed, const uint8_t *b, int64_t ldb, int b_signed, int64_t K,
                 uint32_t out[4]) {
  if (a_signed) {
    if (b_signed)
      dot4_ss((const int8_t *)a, (const int8_t *)b, ldb, K, out);
    else
      dot4_su((const int8_t *)a, b, ldb, K, out);
  } else if (b_signed) {
    dot4_us(a, (const int8_t *)b, ldb, K, out);
  } else {
    dot4_uu(a, b, ldb, K, out);
  }
}

uint32_t ei__q8_dot(const uint8_t *a, int a_signed, const uint8_t *b, int b_signed, int64_t K) {
  if (a_signed)
    return b_signed ? dot_ss((const int8_t *)a, (const int8_t *)b, K) : dot_su((const int8_t *)a, b, K);
  return b_signed ? dot_us(a, (const int8_t *)b, K) : dot_uu(a, b, K);
}

uint32_t ei__q8_sum(const uint8_t *a, int a_signed, int64_t K) {
  uint32_t s = 0;
  if (a_signed)
    for (int64_t k = 0; k < K; k++) s += (uint32_t)(int32_t)((const int8_t *)a)[k];
  else
    for (int64_t k = 0; k < K; k++) s += a[k];
  return s;
}
