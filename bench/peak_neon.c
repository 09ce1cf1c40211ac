/* bench/peak: fmla v.4s throughput (AArch64 Advanced SIMD), 14 independent accumulators. */
#include <arm_neon.h>

#include "peak.h"

uint64_t peak_fmla_neon(uint64_t iters, double *sink) {
  float32x4_t a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13;
  a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = a8 = a9 = a10 = a11 = a12 = a13 = vdupq_n_f32(0.0f);
  float32x4_t b = vdupq_n_f32(0.5f), c = vdupq_n_f32(1e-7f); /* the sums stay small and normal */
  for (uint64_t i = 0; i < iters; i++)
    __asm__ volatile(PEAK_A14("fmla", "4s", "4s") PEAK_A14("fmla", "4s", "4s") PEAK_A14("fmla", "4s", "4s")
                         PEAK_A14("fmla", "4s", "4s")
                     : PEAK_OUT14("w")
                     : "w"(b), "w"(c));
  float32x4_t acc[14] = {a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13};
  float32x4_t s = vdupq_n_f32(0.0f);
  for (int k = 0; k < 14; k++) s = vaddq_f32(s, acc[k]);
  *sink = vaddvq_f32(s);
  return iters * 14 * PEAK_REPS;
}
