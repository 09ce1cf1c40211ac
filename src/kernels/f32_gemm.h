/* Float32 GEMM: C[M,N] (= or +=) alpha * A[M,K] * B[K,N] + bias, then a fused activation.
 *
 * One interface over per-ISA micro-kernels. A micro-kernel (ei__f32_gemm_ukernel) computes an mr x nr tile
 * (mr <= its MR, nr <= its NR) of C from a packed A micro-panel and a B panel, and applies the epilogue
 * (alpha, the old C, bias per row and per column, and Relu / Clip) in registers before storing; the other
 * piecewise-linear activations take one more pass over the tile while it is in L1.
 * The kernel of a level is chosen once with ei__f32_gemm_ukernel_get(isa) (x86: f32_gemm_14x32_avx512,
 * f32_gemm_6x16_avx2; arm64: f32_gemm_6x16_neon; anything else / EI_ISA=ref: f32_gemm_6x16_vec, plain C with
 * GCC vector extensions), and callers that pack A keep the kernel they packed for.
 *
 * Layouts
 *   A is read through strides, A(i,k) = a[i*a_rs + k*a_cs], or from a copy packed once for one kernel with
 *   ei__f32_gemm_pack_a (conv weights): ceil(M/MR) panels of MR rows, A(r*MR+i, k) at packed[r*MR*K + MR*k + i],
 *   rows past M zero.
 *   B is raw row-major, B(k,n) = b[k*b_rs + n], or packed with ei__f32_gemm_pack_b into panels of 16 columns
 *   (the same for every kernel): B(k, 16p+j) at packed[p*16*K + 16*k + j], columns past N zero. A kernel with
 *   NR = 32 reads two neighbouring panels.
 *
 * The driver blocks over K (KC of the kernel), M and N, packs raw A per micro-panel on the stack, walks a block
 * in the kernel's loop order (b_outer), and splits the (M block, N block) grid over the thread pool. A Sigmoid
 * activation is applied by the driver after the kernel's store.
 *
 * Measured on the 2-core AMD EPYC (Zen 4, 3.7 GHz, FMA peak 57.8 GMAC/s = 116 GFLOPS per core for ymm and zmm
 * alike): micro-kernel in L1 f32_gemm_14x32_avx512 ~115 GFLOPS, f32_gemm_6x16_avx2 ~111, f32_gemm_6x16_vec ~24;
 * packed 256 x 784 x 1152 GEMM 101 / 86 GFLOPS.
 */
#ifndef EI_F32_GEMM_H
#define EI_F32_GEMM_H

#include "graph/ir.h"

#define EI_F32_GEMM_PANEL 16 /* packed-B panel width (floats), for every kernel */
#define EI_F32_GEMM_MR_MAX 16 /* largest MR of any kernel */
#define EI_F32_GEMM_NR_MAX 32 /* largest NR of any kernel */
#define EI_F32_GEMM_KC_MAX 256 /* largest kc of any kernel (the driver packs raw A / B tails on the stack) */

/* What a micro-kernel does after the K loop, per element of its tile (row i, column j):
 *   v = alpha * acc; if (load_c) v += C(i,j); v += bias_m[i] (if set) + bias_n[j] (if set); v = act(v).
 * act is one of EI_ACT_NONE / RELU / CLIP / LEAKYRELU / HARDSIGMOID / HARDSWISH (act_alpha, act_beta as in
 * ei__act); anything else is treated as NONE by the kernel (the driver applies it afterwards). */
typedef struct ei__f32_gemm_epi {
  float alpha;
  int load_c;
  const float *bias_m; /* the tile's first row's bias, or NULL */
  const float *bias_n; /* the tile's first column's bias, or NULL */
  int act;
  float act_alpha, act_beta;
} ei__f32_gemm_epi;

/* c[i*ldc + j] for i < mr, j < nr from A(i,k) = a[k*MR + i] and B(k,j) = b[k*b_rs + j] (j < 16) /
 * b[b_ps + k*b_rs + j - 16] (16 <= j < 32), k < kc. Reads B columns up to nr rounded up to the kernel's vector
 * width (never past 16 in a panel), writes only the mr x nr tile. kc >= 1. */
typedef void (*ei__f32_gemm_ukernel_fn)(int mr, int nr, int64_t kc, const float *a, const float *b, int64_t b_rs,
                                        int64_t b_ps, float *c, int64_t ldc, const ei__f32_gemm_epi *e);

typedef struct ei__f32_gemm_ukernel {
  const char *name; /* XNNPACK-style, e.g. "f32_gemm_14x32_avx512" */
  int mr, nr;       /* tile; nr is 16 or 32 */
  int kc, mc, nc;   /* cache blocking: K block, M block (multiple of mr), N block (multiple of nr) */
  int b_outer;      /* loop order over a block: 1 = for each B panel, every A micro-panel (the kc x nr B panel stays
                     * in L1, A micro-panels stream from L2); 0 = for each A micro-panel, every B panel */
  ei__f32_gemm_ukernel_fn fn;
} ei__f32_gemm_ukernel;

/* The kernel for a level (falls back to the portable one for levels without their own). Never NULL. */
const ei__f32_gemm_ukernel *ei__f32_gemm_ukernel_get(ei__isa isa);

/* Per-ISA kernels, compiled with their own flags (src/kernels/x86, src/kernels/arm); call only when the CPU
 * has the level. */
extern const ei__f32_gemm_ukernel ei__f32_gemm_6x16_vec;
#if defined(__x86_64__)
extern const ei__f32_gemm_ukernel ei__f32_gemm_6x16_avx2, ei__f32_gemm_14x32_avx512;
#elif defined(__aarch64__)
extern const ei__f32_gemm_ukernel ei__f32_gemm_6x16_neon;
#endif

typedef struct ei__f32_gemm_args {
  int64_t M, N, K;
  const float *a;       /* A(i,k) = a[i*a_rs + k*a_cs], or a packed A if a_packed */
  int64_t a_rs, a_cs;
  int a_packed;         /* packed with ei__f32_gemm_pack_a for uk->mr */
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
  const ei__f32_gemm_ukernel *uk; /* NULL: the kernel of ei__isa_current(); with a_packed, the one A was packed for */
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

/* The activation kinds a micro-kernel applies itself. */
static inline int ei__f32_act_in_kernel(const ei__act *a) {
  return !a || a->kind == EI_ACT_NONE || a->kind == EI_ACT_RELU || a->kind == EI_ACT_CLIP ||
         a->kind == EI_ACT_LEAKYRELU || a->kind == EI_ACT_HARDSIGMOID || a->kind == EI_ACT_HARDSWISH;
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

/* Floats of a packed B / packed A (for panels of mr rows); 0 if the size overflows (or a dimension is
 * negative). */
size_t ei__f32_gemm_packed_b_floats(int64_t K, int64_t N);
size_t ei__f32_gemm_packed_a_floats(int mr, int64_t M, int64_t K);

/* Packs B(k,n) = src[k*rs + n*cs] (transB: rs = 1, cs = ldb) into dst (packed_b_floats floats). */
void ei__f32_gemm_pack_b(int64_t K, int64_t N, const float *src, int64_t rs, int64_t cs, float *dst);
/* Packs A(i,k) = src[i*rs + k*cs] into dst (packed_a_floats(mr, M, K) floats) for a kernel of that mr. */
void ei__f32_gemm_pack_a(int mr, int64_t M, int64_t K, const float *src, int64_t rs, int64_t cs, float *dst);

#endif
