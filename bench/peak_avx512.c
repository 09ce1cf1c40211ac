/* bench/peak: vfmadd231ps zmm throughput (AVX-512F), 14 independent accumulators. */
#include <immintrin.h>

#include "peak.h"

uint64_t peak_fma_zmm_avx512(uint64_t iters, double *sink) {
  __m512 a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13;
  a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = a8 = a9 = a10 = a11 = a12 = a13 = _mm512_setzero_ps();
  __m512 b = _mm512_set1_ps(0.5f), c = _mm512_set1_ps(1e-7f); /* the sums stay small and normal */
  for (uint64_t i = 0; i < iters; i++)
    __asm__ volatile(PEAK_X14("vfmadd231ps") PEAK_X14("vfmadd231ps") PEAK_X14("vfmadd231ps") PEAK_X14("vfmadd231ps")
                     : PEAK_OUT14("v")
                     : "v"(b), "v"(c));
  __m512 acc[14] = {a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13};
  __m512 s = _mm512_setzero_ps();
  for (int k = 0; k < 14; k++) s = _mm512_add_ps(s, acc[k]);
  *sink = _mm512_reduce_add_ps(s);
  return iters * 14 * PEAK_REPS;
}
