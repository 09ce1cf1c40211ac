/* The 256-bit VNNI conv micro-kernel (4 channels x up to 3 vectors of 8 pixels, vpdpbusd ymm: 12 accumulators, 3
 * activation vectors and a broadcast weight fill the 16 registers of AVX-VNNI exactly), written once and compiled
 * twice: in q8_conv_avxvnni.c as AVX-VNNI ({vex} vpdpbusd) and in q8_conv_avx512vnni.c in EVEX form
 * (AVX512-VNNI + VL), for CPUs that have the 256-bit instruction only through AVX-512 (the AVXVNNI kernel level
 * there). The includer defines Q8_DPBUSD(acc, u8, s8), Q8_VNNI256_NAME and Q8_VNNI256_GEMM_NAME. Weights
 * EI_Q8W_DOT4, MR = 4; also the GEMM with a constant B (4 rows x 16 columns). */
#include "kernels/x86/q8_x86.h"

#define Q8_V256_MR 4

Q8_INLINE void q8c_vnni256_tile(const ei__q8c_tile *t, const int NV) {
  __m256i acc[Q8_V256_MR * 3];
  #pragma GCC unroll 32
  for (int i = 0; i < Q8_V256_MR * NV; i++) acc[i] = _mm256_setzero_si256();
  const uint8_t *x = t->x;
  const int32_t *ko = t->koff;
  const int32_t *w = (const int32_t *)t->w;
  for (int64_t k = 0; k < t->kq; k++, w += Q8_V256_MR) {
    const uint8_t *xp = x + ko[k];
    __m256i xv[3];
    #pragma GCC unroll 32
    for (int j = 0; j < NV; j++) xv[j] = _mm256_loadu_si256((const __m256i *)(xp + 32 * j));
    #pragma GCC unroll 32
    for (int i = 0; i < Q8_V256_MR; i++) {
      const __m256i wb = _mm256_set1_epi32(w[i]);
      #pragma GCC unroll 32
      for (int j = 0; j < NV; j++) acc[i * NV + j] = Q8_DPBUSD(acc[i * NV + j], xv[j], wb);
    }
  }
  __m256i res[12]; /* a copy: the accumulators themselves do not escape, so they stay in registers */
#pragma GCC unroll 32
  for (int i = 0; i < 4 * NV; i++) res[i] = acc[i];
  q8c_epilogue_ymm4(t, res, NV);
}

void Q8_VNNI256_NAME(const ei__q8c_tile *t) {
  switch (t->nv) {
    case 1: q8c_vnni256_tile(t, 1); break;
    case 2: q8c_vnni256_tile(t, 2); break;
    default: q8c_vnni256_tile(t, 3); break;
  }
}

/* GEMM with a constant B: 4 rows x 2 vectors of 8 columns (DOT4, uint8 A quads broadcast). */
Q8_INLINE void q8g_vnni256_tile(const ei__q8g_tile *t, const int R) {
  __m256i acc[4 * 2];
#pragma GCC unroll 32
  for (int i = 0; i < R * 2; i++) acc[i] = _mm256_setzero_si256();
  const uint8_t *ar[4];
#pragma GCC unroll 8
  for (int r = 0; r < R; r++) ar[r] = (const uint8_t *)t->a + (r < t->mr ? r : 0) * t->lda;
  const uint8_t *b = t->b;
  const int64_t kq = t->kp / 4;
  for (int64_t k = 0; k < kq; k++, b += 64) {
    const __m256i b0 = _mm256_loadu_si256((const __m256i *)b), b1 = _mm256_loadu_si256((const __m256i *)(b + 32));
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
      int32_t q;
      memcpy(&q, ar[r] + 4 * k, 4);
      const __m256i av = _mm256_set1_epi32(q);
      acc[r * 2] = Q8_DPBUSD(acc[r * 2], av, b0);
      acc[r * 2 + 1] = Q8_DPBUSD(acc[r * 2 + 1], av, b1);
    }
  }
  __m256i res[8]; /* a copy: the accumulators themselves do not escape */
#pragma GCC unroll 32
  for (int i = 0; i < R * 2; i++) res[i] = acc[i];
  q8g_epilogue_ymm2(t, res, R);
}

void Q8_VNNI256_GEMM_NAME(const ei__q8g_tile *t) {
  if (t->mr == 1)
    q8g_vnni256_tile(t, 1);
  else if (t->mr == 2)
    q8g_vnni256_tile(t, 2);
  else
    q8g_vnni256_tile(t, 4);
}
