/* bench/peak: sdot v.4s, v.16b throughput (Armv8.2 dot product), 14 independent accumulators. */
#include <arm_neon.h>

#include "peak.h"

uint64_t peak_sdot_dotprod(uint64_t iters, double *sink) {
  int32x4_t a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13;
  a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = a8 = a9 = a10 = a11 = a12 = a13 = vdupq_n_s32(0);
  int8x16_t b = vdupq_n_s8(3), c = vdupq_n_s8(-2);
  for (uint64_t i = 0; i < iters; i++)
    __asm__ volatile(PEAK_A14("sdot", "4s", "16b") PEAK_A14("sdot", "4s", "16b") PEAK_A14("sdot", "4s", "16b")
                         PEAK_A14("sdot", "4s", "16b")
                     : PEAK_OUT14("w")
                     : "w"(b), "w"(c));
  int32x4_t acc[14] = {a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13};
  int32x4_t s = vdupq_n_s32(0);
  for (int k = 0; k < 14; k++) s = vaddq_s32(s, acc[k]);
  *sink = (double)vaddvq_u32(vreinterpretq_u32_s32(s)); /* wrapping sum: the accumulators overflow by design */
  return iters * 14 * PEAK_REPS;
}
