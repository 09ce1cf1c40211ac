/* Portable float32 GEMM: C[M,N] (= or +=) alpha * A[M,K] * B[K,N] + bias, then a fused activation.
 *
 * Layouts
 *   A is read through strides, A(i,k) = a[i*a_rs + k*a_cs] (row-major: a_rs = lda, a_cs = 1; transposed:
 *   a_rs = 1, a_cs = lda), or from a packed copy made once with ei__f32_gemm_pack_a (conv weights).
 *   B is either raw row-major, B(k,n) = b[k*b_rs + n], or packed once with ei__f32_gemm_pack_b.
 *
 *   Packed B ("panels of 16"): ceil(N/16) panels; panel p holds columns [16p, 16p+16) as K rows of 16
 *   contiguous floats: B(k, 16p+j) is at packed[p*16*K + 16*k + j]; columns past N are zero. One panel row is
 *   one 64-byte line: a 256-bit micro-kernel loads it as 2 vectors, a 512-bit one as 1.
 *
 *   Packed A: ceil(M/MR) panels of MR rows; A(r*MR+i, k) is at packed[r*MR*K + MR*k + i]; rows past M are 0.
 *
 * The driver blocks over K (KC) and N, computes EI_F32_GEMM_MR x 16 tiles with a portable micro-kernel (plain C
 * with GCC vector extensions, no intrinsics: SSE2 on any x86-64, NEON on arm64), applies alpha, the old C (accumulate), bias_m[i] + bias_n[j] and the activation in the
 * epilogue of the last K block, and splits the (M block, N block) grid over the thread pool.
 */
#ifndef EI_F32_GEMM_H
#define EI_F32_GEMM_H

#include "graph/ir.h"

#define EI_F32_GEMM_NR 16 /* packed-B panel width (floats) */
#define EI_F32_GEMM_MR 6  /* rows of the micro-tile and of a packed-A panel */

typedef struct ei__f32_gemm_args {
  int64_t M, N, K;
  const float *a;       /* A(i,k) = a[i*a_rs + k*a_cs], or a packed A if a_packed */
  int64_t a_rs, a_cs;
  int a_packed;
  const float *b;       /* raw: B(k,n) = b[k*b_rs + n]; packed: ei__f32_gemm_pack_b layout */
  int64_t b_rs;
  int b_packed;
  float *c;             /* C(i,n) = c[i*ldc + n] */
  int64_t ldc;
  float alpha;          /* scales A*B */
  int accumulate;       /* 1: C = C + alpha*A*B + bias; 0: C = alpha*A*B + bias */
  const float *bias_m;  /* per-row bias (length M) or NULL */
  const float *bias_n;  /* per-column bias (length N) or NULL */
  const ei__act *act;   /* fused activation applied last, or NULL */
} ei__f32_gemm_args;

/* Applies a fused activation to n floats in place: the formulas of ei__act_apply, as loops the compiler
 * vectorises for the piecewise-linear kinds (ei__act_apply_n calls ei__act_apply per element for those). */
static inline void ei__f32_act_inplace(const ei__act *a, float *x, int64_t n) {
  if (!a) return;
  const float al = a->alpha, be = a->beta;
  switch (a->kind) {
    case EI_ACT_NONE: return;
    case EI_ACT_RELU:
      for (int64_t i = 0; i < n; i++) x[i] = x[i] > 0.f ? x[i] : 0.f;
      return;
    case EI_ACT_CLIP:
      for (int64_t i = 0; i < n; i++) x[i] = x[i] < al ? al : (x[i] > be ? be : x[i]);
      return;
    case EI_ACT_LEAKYRELU:
      for (int64_t i = 0; i < n; i++) x[i] = x[i] >= 0.f ? x[i] : al * x[i];
      return;
    case EI_ACT_HARDSIGMOID:
      for (int64_t i = 0; i < n; i++) {
        const float y = al * x[i] + be;
        x[i] = y < 0.f ? 0.f : (y > 1.f ? 1.f : y);
      }
      return;
    case EI_ACT_HARDSWISH:
      for (int64_t i = 0; i < n; i++) {
        float y = x[i] * (1.f / 6.f) + 0.5f;
        y = y < 0.f ? 0.f : (y > 1.f ? 1.f : y);
        x[i] = x[i] * y;
      }
      return;
    default: ei__act_apply_n(a, x, n); return;
  }
}

/* Sets the defaults: alpha 1, no accumulate, no bias, no activation, everything else zero. */
void ei__f32_gemm_args_init(ei__f32_gemm_args *g);

/* Runs the GEMM (M, N or K may be 0). pool may be NULL. */
void ei__f32_gemm(const ei__f32_gemm_args *g, ei_threadpool *pool);

/* Scalar reference with the same arguments (triple loop, rows split over the pool), for EI_ISA=ref and tests. */
void ei__f32_gemm_ref(const ei__f32_gemm_args *g, ei_threadpool *pool);

/* Row-major convenience: C[M,N] (=|+=) A[M,K] * B[K,N]. */
void ei__f32_gemm_rowmajor(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                           int64_t ldb, float *C, int64_t ldc, int accumulate, ei_threadpool *pool);

/* Floats of a packed B / packed A; 0 if the size overflows (or a dimension is negative). */
size_t ei__f32_gemm_packed_b_floats(int64_t K, int64_t N);
size_t ei__f32_gemm_packed_a_floats(int64_t M, int64_t K);

/* Packs B(k,n) = src[k*rs + n*cs] (transB: rs = 1, cs = ldb) into dst (packed_b_floats floats). */
void ei__f32_gemm_pack_b(int64_t K, int64_t N, const float *src, int64_t rs, int64_t cs, float *dst);
/* Packs A(i,k) = src[i*rs + k*cs] into dst (packed_a_floats floats). */
void ei__f32_gemm_pack_a(int64_t M, int64_t K, const float *src, int64_t rs, int64_t cs, float *dst);

#endif
