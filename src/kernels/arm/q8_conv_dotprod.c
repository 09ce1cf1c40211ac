/* AArch64 dotprod (armv8.2-a+dotprod, e.g. Cortex-A76) integer kernels: sdot by element on int8 x int8 (uint8
 * inputs are flipped to int8 with their zero point moved by 128, q8_kernels.h; no usdot on these cores).
 *   igemm: 8 output channels x up to 3 vectors of 4 pixels; weights EI_Q8W_DOT4 (per k quad, 8 channels x 4 k =
 *          two vectors, channel = element of the sdot).
 *   gemm:  4 rows x 16 columns with a constant B (EI_Q8W_DOT4, 4 k quads of A per load, quad = element). */
#include "kernels/arm/q8_arm.h"

#define SDOT_CH(ACC, NV, XV, W, I) \
  for (int j = 0; j < (NV); j++) ACC[(I) * (NV) + j] = vdotq_laneq_s32(ACC[(I) * (NV) + j], XV[j], W, (I) & 3)

Q8_INLINE void igemm_tile(const ei__q8c_tile *t, const int NV) {
  int32x4_t acc[24];
  for (int i = 0; i < 8 * NV; i++) acc[i] = vdupq_n_s32(0);
  const uint8_t *x = t->x;
  const int32_t *ko = t->koff;
  const int8_t *w = t->w;
  for (int64_t k = 0; k < t->kq; k++, w += 32) {
    const int8_t *xp = (const int8_t *)(x + ko[k]);
    int8x16_t xv[3];
    for (int j = 0; j < NV; j++) xv[j] = vld1q_s8(xp + 16 * j);
    const int8x16_t w0 = vld1q_s8(w), w1 = vld1q_s8(w + 16);
    SDOT_CH(acc, NV, xv, w0, 0);
    SDOT_CH(acc, NV, xv, w0, 1);
    SDOT_CH(acc, NV, xv, w0, 2);
    SDOT_CH(acc, NV, xv, w0, 3);
    SDOT_CH(acc, NV, xv, w1, 4);
    SDOT_CH(acc, NV, xv, w1, 5);
    SDOT_CH(acc, NV, xv, w1, 6);
    SDOT_CH(acc, NV, xv, w1, 7);
  }
  q8c_epilogue_neon(t, acc, 8, NV, 1);
}

void ei__q8c_igemm_dotprod(const ei__q8c_tile *t) {
  switch (t->nv) {
    case 1: igemm_tile(t, 1); break;
    case 2: igemm_tile(t, 2); break;
    default: igemm_tile(t, 3); break;
  }
}

/* ---- GEMM with a constant B ---- */

#define GDOT(R, L)                                                                                     \
  do {                                                                                                 \
    const int8_t *bq = b + (L) * 64;                                                                   \
    const int8x16_t b0 = vld1q_s8(bq), b1 = vld1q_s8(bq + 16), b2 = vld1q_s8(bq + 32), b3 = vld1q_s8(bq + 48); \
    for (int r = 0; r < (R); r++) {                                                                    \
      acc[r * 4] = vdotq_laneq_s32(acc[r * 4], b0, av[r], L);                                          \
      acc[r * 4 + 1] = vdotq_laneq_s32(acc[r * 4 + 1], b1, av[r], L);                                  \
      acc[r * 4 + 2] = vdotq_laneq_s32(acc[r * 4 + 2], b2, av[r], L);                                  \
      acc[r * 4 + 3] = vdotq_laneq_s32(acc[r * 4 + 3], b3, av[r], L);                                  \
    }                                                                                                  \
  } while (0)

Q8_INLINE void gemm_tile(const ei__q8g_tile *t, const int R) {
  int32x4_t acc[16];
  for (int i = 0; i < 16; i++) acc[i] = vdupq_n_s32(0);
  const int8_t *ar[4];
  for (int r = 0; r < R; r++) ar[r] = (const int8_t *)t->a + (r < t->mr ? r : 0) * t->lda;
  const int8_t *b = t->b;
  for (int64_t k0 = 0; k0 < t->kp; k0 += 16, b += 256) {
    int8x16_t av[4];
    for (int r = 0; r < R; r++) av[r] = vld1q_s8(ar[r] + k0);
    GDOT(R, 0);
    GDOT(R, 1);
    GDOT(R, 2);
    GDOT(R, 3);
  }
  q8g_epilogue_neon(t, acc, R, 4, 1);
}

void ei__q8g_gemm_dotprod(const ei__q8g_tile *t) {
  if (t->mr == 1)
    gemm_tile(t, 1);
  else if (t->mr == 2)
    gemm_tile(t, 2);
  else
    gemm_tile(t, 4);
}
