/* bench/peak: {vex} vpdpbusd ymm throughput (AVX-VNNI), 14 independent accumulators. */
#include <immintrin.h>

#include "peak.h"

uint64_t peak_dot_ymm_avxvnni(uint64_t iters, double *sink) {
  __m256i a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13;
  a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = a8 = a9 = a10 = a11 = a12 = a13 = _mm256_setzero_si256();
  __m256i b = _mm256_set1_epi8(3), c = _mm256_set1_epi8(-2);
  for (uint64_t i = 0; i < iters; i++)
    __asm__ volatile(PEAK_X14("%{vex%} vpdpbusd") PEAK_X14("%{vex%} vpdpbusd") PEAK_X14("%{vex%} vpdpbusd")
                         PEAK_X14("%{vex%} vpdpbusd")
                     : PEAK_OUT14("x")
                     : "x"(b), "x"(c));
  __m256i acc[14] = {a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13};
  __m256i s = _mm256_setzero_si256();
  for (int k = 0; k < 14; k++) s = _mm256_add_epi32(s, acc[k]);
  uint32_t v[8];
  _mm256_storeu_si256((__m256i *)v, s);
  *sink = (double)v[0] + v[7];
  return iters * 14 * PEAK_REPS;
}
