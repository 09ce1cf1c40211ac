/* bench/peak: vfmadd231ps ymm throughput (AVX2 + FMA), 14 independent accumulators. */
#include <immintrin.h>

#include "peak.h"

uint64_t peak_fma_ymm_avx2(uint64_t iters, double *sink) {
  __m256 a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13;
  a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = a8 = a9 = a10 = a11 = a12 = a13 = _mm256_setzero_ps();
  __m256 b = _mm256_set1_ps(0.5f), c = _mm256_set1_ps(1e-7f); /* the sums stay small and normal */
  for (uint64_t i = 0; i < iters; i++)
    __asm__ volatile(PEAK_X14("vfmadd231ps") PEAK_X14("vfmadd231ps") PEAK_X14("vfmadd231ps") PEAK_X14("vfmadd231ps")
                     : PEAK_OUT14("x")
                     : "x"(b), "x"(c));
  __m256 acc[14] = {a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13};
  __m256 s = _mm256_setzero_ps();
  for (int k = 0; k < 14; k++) s = _mm256_add_ps(s, acc[k]);
  float v[8];
  _mm256_storeu_ps(v, s);
  *sink = (double)v[0] + v[7];
  return iters * 14 * PEAK_REPS;
}
