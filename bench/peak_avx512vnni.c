/* bench/peak: vpdpbusd throughput (AVX512-VNNI), zmm and EVEX-encoded ymm, 14 independent accumulators. */
#include <immintrin.h>

#include "peak.h"

uint64_t peak_dot_zmm_avx512vnni(uint64_t iters, double *sink) {
  __m512i a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13;
  a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = a8 = a9 = a10 = a11 = a12 = a13 = _mm512_setzero_si512();
  __m512i b = _mm512_set1_epi8(3), c = _mm512_set1_epi8(-2);
  for (uint64_t i = 0; i < iters; i++)
    __asm__ volatile(PEAK_X14("vpdpbusd") PEAK_X14("vpdpbusd") PEAK_X14("vpdpbusd") PEAK_X14("vpdpbusd")
                     : PEAK_OUT14("v")
                     : "v"(b), "v"(c));
  __m512i acc[14] = {a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13};
  __m512i s = _mm512_setzero_si512();
  for (int k = 0; k < 14; k++) s = _mm512_add_epi32(s, acc[k]);
  uint32_t v[16]; /* wrapping sums: the accumulators overflow by design */
  _mm512_storeu_si512((void *)v, s);
  *sink = (double)v[0] + v[15];
  return iters * 14 * PEAK_REPS;
}

/* With AVX-512 the ymm form is EVEX-encoded (GNU as picks EVEX for vpdpbusd unless told {vex}). */
uint64_t peak_dot_ymm_avx512vnni(uint64_t iters, double *sink) {
  __m256i a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13;
  a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = a8 = a9 = a10 = a11 = a12 = a13 = _mm256_setzero_si256();
  __m256i b = _mm256_set1_epi8(3), c = _mm256_set1_epi8(-2);
  for (uint64_t i = 0; i < iters; i++)
    __asm__ volatile(PEAK_X14("vpdpbusd") PEAK_X14("vpdpbusd") PEAK_X14("vpdpbusd") PEAK_X14("vpdpbusd")
                     : PEAK_OUT14("v")
                     : "v"(b), "v"(c));
  __m256i acc[14] = {a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13};
  __m256i s = _mm256_setzero_si256();
  for (int k = 0; k < 14; k++) s = _mm256_add_epi32(s, acc[k]);
  uint32_t v[8];
  _mm256_storeu_si256((__m256i *)v, s);
  *sink = (double)v[0] + v[7];
  return iters * 14 * PEAK_REPS;
}
