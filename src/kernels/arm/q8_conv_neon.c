/* AArch64 NEON (no dotprod) integer kernels, exact: int8 staged activations (uint8 inputs are flipped to int8,
 * q8_kernels.h) widened to int16 and multiplied with smlal / smlal2 by element into int32 accumulators.
 *   igemm: 8 output channels x 8 pixels; ld4 de-interleaves the 8 pixels' k quads into 4 vectors of one k each,
 *          weights EI_Q8W_MLAL (per k quad, 4 vectors of 8 int16 channel weights, one per k).
 *   dw:    depthwise rows of 8 pixels, smlal by the scalar tap weight.
 *   gemm:  4 rows x 16 columns with a constant B (EI_Q8W_MLAL: per k, 16 int16 columns), A int16 by element. */
#include "kernels/arm/q8_arm.h"

#define MLAL8(ACC, X, W, LANE)                                                        \
  do {                                                                                \
    ACC[2 * (LANE)] = vmlal_laneq_s16(ACC[2 * (LANE)], vget_low_s16(X), W, LANE);     \
    ACC[2 * (LANE) + 1] = vmlal_high_laneq_s16(ACC[2 * (LANE) + 1], X, W, LANE);      \
  } while (0)
#define MLAL8_ALL(ACC, X, W)                                                           \
  do {                                                                                 \
    MLAL8(ACC, X, W, 0);                                                               \
    MLAL8(ACC, X, W, 1);                                                               \
    MLAL8(ACC, X, W, 2);                                                               \
    MLAL8(ACC, X, W, 3);                                                               \
    MLAL8(ACC, X, W, 4);                                                               \
    MLAL8(ACC, X, W, 5);                                                               \
    MLAL8(ACC, X, W, 6);                                                               \
    MLAL8(ACC, X, W, 7);                                                               \
  } while (0)

void ei__q8c_igemm_neon(const ei__q8c_tile *t) {
  int32x4_t acc[16];
  for (int i = 0; i < 16; i++) acc[i] = vdupq_n_s32(0);
  const uint8_t *x = t->x;
  const int32_t *ko = t->koff;
  const int16_t *w = t->w;
  for (int64_t k = 0; k < t->kq; k++, w += 32) {
    const int8x8x4_t q = vld4_s8((const int8_t *)(x + ko[k]));
    const int16x8_t x0 = vmovl_s8(q.val[0]), x1 = vmovl_s8(q.val[1]), x2 = vmovl_s8(q.val[2]),
                    x3 = vmovl_s8(q.val[3]);
    const int16x8_t w0 = vld1q_s16(w), w1 = vld1q_s16(w + 8), w2 = vld1q_s16(w + 16), w3 = vld1q_s16(w + 24);
    MLAL8_ALL(acc, x0, w0);
    MLAL8_ALL(acc, x1, w1);
    MLAL8_ALL(acc, x2, w2);
    MLAL8_ALL(acc, x3, w3);
  }
  q8c_epilogue_neon(t, acc, 8, 1, 2);
}

void ei__q8dw_neon(const ei__q8dw_job *j) {
  const ei__q8_epi *e = j->e;
  const int esize = e->mult ? 1 : 4;
  const float32x4_t flo = vdupq_n_f32(e->flo), fhi = vdupq_n_f32(e->fhi), mult = vdupq_n_f32(j->mult);
  const int32x4_t zp = vdupq_n_s32(e->zp), ct = vdupq_n_s32(j->cterm);
  for (int64_t oh = j->oh0; oh < j->oh1; oh++) {
    const uint8_t *xr = j->x + oh * j->ws;
    for (int64_t ow = 0; ow < j->ow; ow += 8) {
      int32x4_t a0 = ct, a1 = ct;
      for (int64_t t = 0; t < j->ntap; t++) {
        const int16x8_t xv = vmovl_s8(vld1_s8((const int8_t *)(xr + j->toff[t] + ow)));
        a0 = vmlal_n_s16(a0, vget_low_s16(xv), j->w[t]);
        a1 = vmlal_high_n_s16(a1, xv, j->w[t]);
      }
      int32x4_t v[2] = {a0, a1};
      if (e->mult) {
        v[0] = q8_requant_neon(a0, mult, flo, fhi, zp);
        v[1] = q8_requant_neon(a1, mult, flo, fhi, zp);
      }
      ei__q8_seg s = {0, j->ow - ow < 8 ? (int)(j->ow - ow) : 8, oh * j->ow + ow};
      q8_store_neon(j->y, esize, v, 2, &s, 1, s.n == 8);
    }
  }
}

/* ---- GEMM with a constant B ---- */

#define GEMM_K(R, KK)                                                                  \
  do {                                                                                 \
    const int16x8_t b0 = vld1q_s16(b + (KK) * 16), b1 = vld1q_s16(b + (KK) * 16 + 8); \
    for (int r = 0; r < (R); r++) {                                                    \
      acc[r * 4] = vmlal_laneq_s16(acc[r * 4], vget_low_s16(b0), av[r], KK);           \
      acc[r * 4 + 1] = vmlal_high_laneq_s16(acc[r * 4 + 1], b0, av[r], KK);            \
      acc[r * 4 + 2] = vmlal_laneq_s16(acc[r * 4 + 2], vget_low_s16(b1), av[r], KK);   \
      acc[r * 4 + 3] = vmlal_high_laneq_s16(acc[r * 4 + 3], b1, av[r], KK);            \
    }                                                                                  \
  } while (0)

Q8_INLINE void gemm_tile(const ei__q8g_tile *t, const int R) {
  int32x4_t acc[16];
  for (int i = 0; i < 16; i++) acc[i] = vdupq_n_s32(0);
  const int16_t *ar[4];
  for (int r = 0; r < R; r++) ar[r] = (const int16_t *)t->a + (r < t->mr ? r : 0) * t->lda;
  const int16_t *b = t->b;
  for (int64_t k0 = 0; k0 < t->kp; k0 += 8, b += 128) {
    int16x8_t av[4];
    for (int r = 0; r < R; r++) av[r] = vld1q_s16(ar[r] + k0);
    GEMM_K(R, 0);
    GEMM_K(R, 1);
    GEMM_K(R, 2);
    GEMM_K(R, 3);
    GEMM_K(R, 4);
    GEMM_K(R, 5);
    GEMM_K(R, 6);
    GEMM_K(R, 7);
  }
  q8g_epilogue_neon(t, acc, R, 2, 2);
}

void ei__q8g_gemm_neon(const ei__q8g_tile *t) {
  if (t->mr == 1)
    gemm_tile(t, 1);
  else if (t->mr == 2)
    gemm_tile(t, 2);
  else
    gemm_tile(t, 4);
}
