/* f32_gemm_6x16_neon: float32 GEMM micro-kernel for AArch64 NEON (see kernels/f32_gemm.h).
 *
 * 6 rows x 16 columns: 24 q accumulators + B loaded one q at a time (one 16-wide panel) + A as two q
 * registers (rows 0..3 and 2..5; fmla by lane, no broadcasts): 24 FMAs per 4 B loads and 2 A loads per k.
 * Every mr x nr tile (mr <= 6, nr <= 16) has its own unrolled instance (one to four column vectors); a partial
 * last vector sends the tile through a buffer and the scalar epilogue. The epilogue (alpha, old C, bias, and
 * Relu or Clip) runs in registers; the other activations are one more pass over the tile while it is in L1. */
#include <arm_neon.h>

#include "kernels/f32_gemm.h"

#define MR 6

static const float zeros[32] __attribute__((aligned(64)));

static inline __attribute__((always_inline)) float32x4_t act4(float32x4_t v, int kind, float32x4_t pa,
                                                              float32x4_t pb) {
  const float32x4_t zero = vdupq_n_f32(0.f), one = vdupq_n_f32(1.f);
  switch (kind) {
    case EI_ACT_RELU: /* x > 0 ? x : 0 (NaN -> 0) */
      return vbslq_f32(vcgtq_f32(v, zero), v, zero);
    case EI_ACT_CLIP: { /* x < a ? a : (x > b ? b : x) */
      const float32x4_t hi = vbslq_f32(vcgtq_f32(v, pb), pb, v);
      return vbslq_f32(vcltq_f32(v, pa), pa, hi);
    }
    case EI_ACT_LEAKYRELU: return vbslq_f32(vcgeq_f32(v, zero), v, vmulq_f32(v, pa));
    case EI_ACT_HARDSIGMOID: return vminq_f32(one, vmaxq_f32(zero, vfmaq_f32(pb, v, pa)));
    case EI_ACT_HARDSWISH: {
      const float32x4_t y = vfmaq_f32(vdupq_n_f32(0.5f), v, vdupq_n_f32(1.f / 6.f));
      return vmulq_f32(v, vminq_f32(one, vmaxq_f32(zero, y)));
    }
    default: return v;
  }
}

/* The activation over an mr x nr tile already stored in C (one pass, the tile is in L1). */
static __attribute__((noinline)) void act_tile(int mr, int nr, float *c, int64_t ldc, const ei__f32_gemm_epi *e) {
  const float32x4_t pa = vdupq_n_f32(e->act_alpha), pb = vdupq_n_f32(e->act_beta);
  for (int i = 0; i < mr; i++) {
    float *cr = c + i * ldc;
    int j = 0;
    for (; j + 4 <= nr; j += 4) vst1q_f32(cr + j, act4(vld1q_f32(cr + j), e->act, pa, pb));
    if (j < nr) {
      float t[4] = {0.f, 0.f, 0.f, 0.f};
      for (int q = 0; q < nr - j; q++) t[q] = cr[j + q];
      vst1q_f32(t, act4(vld1q_f32(t), e->act, pa, pb));
      for (int q = 0; q < nr - j; q++) cr[j + q] = t[q];
    }
  }
}

/* Epilogue of a tile whose last column vector is partial: the reference formula from a buffer (kept out of
 * line: inline, its temporaries made the register allocator spill accumulators of the main loop). */
static __attribute__((noinline)) void store_partial(const float *t, int mr, int nr, float *c, int64_t ldc,
                                                    const ei__f32_gemm_epi *e) {
  for (int i = 0; i < mr; i++) {
    float *cr = c + i * ldc;
    const float bm = e->bias_m ? e->bias_m[i] : 0.f;
    for (int j = 0; j < nr; j++) {
      float v = e->alpha * t[i * 16 + j] + (e->load_c ? cr[j] : 0.f);
      v += bm;
      if (e->bias_n) v += e->bias_n[j];
      cr[j] = v;
    }
  }
}

/* R rows, V column vectors of 4 (nr <= 4V). */
static inline __attribute__((always_inline)) void tile(const int R, const int V, int nr, int64_t kc,
                                                       const float *restrict a, const float *restrict b,
                                                       int64_t b_rs, float *restrict c, int64_t ldc,
                                                       const ei__f32_gemm_epi *e) {
  float32x4_t acc[MR][4];
#pragma GCC unroll 8
  for (int i = 0; i < R; i++)
#pragma GCC unroll 4
    for (int j = 0; j < V; j++) acc[i][j] = vdupq_n_f32(0.f);
  for (int64_t k = 0; k < kc; k++) {
    /* A rows 0..3 in one q register, rows 4..5 as lanes 2..3 of a second (a[2..5]): no d-register lanes. */
    const float32x4_t a03 = vld1q_f32(a);
    const float32x4_t a25 = R > 4 ? vld1q_f32(a + 2) : a03;
#pragma GCC unroll 4
    for (int j = 0; j < V; j++) {
      const float32x4_t vb = vld1q_f32(b + 4 * j);
      acc[0][j] = vfmaq_laneq_f32(acc[0][j], vb, a03, 0);
      if (R > 1) acc[1][j] = vfmaq_laneq_f32(acc[1][j], vb, a03, 1);
      if (R > 2) acc[2][j] = vfmaq_laneq_f32(acc[2][j], vb, a03, 2);
      if (R > 3) acc[3][j] = vfmaq_laneq_f32(acc[3][j], vb, a03, 3);
      if (R > 4) acc[4][j] = vfmaq_laneq_f32(acc[4][j], vb, a25, 2);
      if (R > 5) acc[5][j] = vfmaq_laneq_f32(acc[5][j], vb, a25, 3);
    }
    a += MR;
    b += b_rs;
  }

  if (nr < 4 * V) {
    float t[MR * 16];
#pragma GCC unroll 8
    for (int i = 0; i < R; i++)
#pragma GCC unroll 4
      for (int j = 0; j < V; j++) vst1q_f32(t + i * 16 + 4 * j, acc[i][j]);
    store_partial(t, R, nr, c, ldc, e);
  } else {
    /* Absent operands read a zero buffer (old C with stride 0); Relu and Clip in registers. */
    const float32x4_t alpha = vdupq_n_f32(e->alpha);
    const float *cl = e->load_c ? c : zeros;
    const int64_t cls = e->load_c ? ldc : 0;
    const float *bm = e->bias_m ? e->bias_m : zeros;
    const float *bn = e->bias_n ? e->bias_n : zeros;
#define STORE_ROWS(ACT)                                                                             \
  _Pragma("GCC unroll 8") for (int i = 0; i < R; i++) {                                             \
    const float32x4_t bias = vdupq_n_f32(bm[i]);                                                    \
    _Pragma("GCC unroll 4") for (int j = 0; j < V; j++) {                                           \
      const float32x4_t v = vfmaq_f32(vld1q_f32(cl + i * cls + 4 * j), acc[i][j], alpha);           \
      vst1q_f32(c + i * ldc + 4 * j, ACT(vaddq_f32(vaddq_f32(v, bias), vld1q_f32(bn + 4 * j))));    \
    }                                                                                               \
  }
#define ACT_NONE(v) (v)
#define ACT_RELU(v) act4((v), EI_ACT_RELU, pa, pb)
#define ACT_CLIP(v) act4((v), EI_ACT_CLIP, pa, pb)
    const float32x4_t pa = vdupq_n_f32(e->act_alpha), pb = vdupq_n_f32(e->act_beta);
    if (e->act == EI_ACT_RELU) {
      STORE_ROWS(ACT_RELU)
      return;
    }
    if (e->act == EI_ACT_CLIP) {
      STORE_ROWS(ACT_CLIP)
      return;
    }
    STORE_ROWS(ACT_NONE)
#undef STORE_ROWS
  }
  if (e->act != EI_ACT_NONE) act_tile(R, nr, c, ldc, e);
}

/* One function per tile shape: the register allocator sees each shape alone (a single function holding every
 * shape spilled accumulators of the 6 x 16 loop instead of using the callee-saved v8..v15). */
#define SHAPE(R, V)                                                                                       \
  static __attribute__((noinline)) void tile_##R##x##V(int nr, int64_t kc, const float *a, const float *b, \
                                                       int64_t b_rs, float *c, int64_t ldc,               \
                                                       const ei__f32_gemm_epi *e) {                       \
    tile(R, V, nr, kc, a, b, b_rs, c, ldc, e);                                                            \
  }
#define SHAPES(V) SHAPE(1, V) SHAPE(2, V) SHAPE(3, V) SHAPE(4, V) SHAPE(5, V) SHAPE(6, V)
SHAPES(1)
SHAPES(2)
SHAPES(3)
SHAPES(4)

typedef void (*tile_fn)(int nr, int64_t kc, const float *a, const float *b, int64_t b_rs, float *c, int64_t ldc,
                        const ei__f32_gemm_epi *e);
#define ROW_FNS(V) {tile_1x##V, tile_2x##V, tile_3x##V, tile_4x##V, tile_5x##V, tile_6x##V}
static const tile_fn tiles[4][MR] = {ROW_FNS(1), ROW_FNS(2), ROW_FNS(3), ROW_FNS(4)};

static void f32_gemm_6x16_neon(int mr, int nr, int64_t kc, const float *a, const float *b, int64_t b_rs,
                               int64_t b_ps, float *c, int64_t ldc, const ei__f32_gemm_epi *e) {
  (void)b_ps;
  tiles[(nr + 3) / 4 - 1][mr - 1](nr, kc, a, b, b_rs, c, ldc, e);
}

/* KC 256 with the B panel outermost: a 256 x 16 B panel (16 KB) stays in L1 (64 KB on Cortex-A76, 32 KB on
 * A53/A55) while the 6 x 256 A micro-panels (6 KB) stream from L2; MC x KC of A (96 KB) and KC x NC of B (256 KB)
 * fit a 512 KB L2. */
const ei__f32_gemm_ukernel ei__f32_gemm_6x16_neon = {"f32_gemm_6x16_neon", MR, 16, 256, MR * 16, 256, 1,
                                                    f32_gemm_6x16_neon};
