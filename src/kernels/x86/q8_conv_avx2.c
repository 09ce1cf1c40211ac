/* AVX2 integer conv kernels without VNNI, exact: bytes widened to int16 and multiplied with vpmaddwd.
 *   igemm: 4 output channels x up to 2 vectors of 8 pixels; each 32-bit lane of the staged activations holds a
 *          k quad (b0, b1, b2, b3) of uint8, split into the int16 pairs (b0, b2) = lane & 0x00ff00ff and
 *          (b1, b3) = lane >> 8 (per 16-bit word), times the int16 weight pairs (w0, w2), (w1, w3)
 *          (EI_Q8W_MADD); each vpmaddwd sum is at most 2 * 255 * 255 in magnitude, the int32 accumulators wrap
 *          like the reference's.
 *   dw:    depthwise rows of 8 pixels, two taps per vpmaddwd (x_t | x_t+1 << 16 times w_t | w_t+1 << 16). */
#include "kernels/x86/q8_x86.h"

#define MR 4

Q8_INLINE void igemm_tile(const ei__q8c_tile *t, const int NV) {
  __m256i acc[MR * 2];
#pragma GCC unroll 32
  for (int i = 0; i < MR * NV; i++) acc[i] = _mm256_setzero_si256();
  const uint8_t *x = t->x;
  const int32_t *ko = t->koff;
  const int32_t *w = (const int32_t *)t->w;
  for (int64_t k = 0; k < t->kq; k++, w += 2 * MR) {
    const uint8_t *xp = x + ko[k];
    /* one pixel vector at a time, the weight pairs broadcast again for each: 13 registers, none spilled */
#pragma GCC unroll 32
    for (int j = 0; j < NV; j++) {
      __asm__("" ::: "memory"); /* keeps GCC from sharing the broadcasts between vectors (and spilling) */
      const __m256i v = _mm256_loadu_si256((const __m256i *)(xp + 32 * j));
      const __m256i xl = _mm256_srli_epi16(_mm256_slli_epi16(v, 8), 8), xh = _mm256_srli_epi16(v, 8);
#pragma GCC unroll 32
      for (int i = 0; i < MR; i++) {
        const __m256i p = _mm256_add_epi32(_mm256_madd_epi16(xl, _mm256_set1_epi32(w[2 * i])),
                                           _mm256_madd_epi16(xh, _mm256_set1_epi32(w[2 * i + 1])));
        acc[i * NV + j] = _mm256_add_epi32(acc[i * NV + j], p);
      }
    }
  }
  __m256i res[12]; /* a copy: the accumulators themselves do not escape, so they stay in registers */
#pragma GCC unroll 32
  for (int i = 0; i < 4 * NV; i++) res[i] = acc[i];
  q8c_epilogue_ymm4(t, res, NV);
}

void ei__q8c_igemm_avx2(const ei__q8c_tile *t) {
  if (t->nv == 1)
    igemm_tile(t, 1);
  else
    igemm_tile(t, 2);
}

void ei__q8dw_avx2(const ei__q8dw_job *j) {
  const ei__q8_epi *e = j->e;
  const int esize = e->mult ? 1 : 4;
  const __m256 flo = _mm256_set1_ps(e->flo), fhi = _mm256_set1_ps(e->fhi), mult = _mm256_set1_ps(j->mult);
  const __m256i zp = _mm256_set1_epi32(e->zp), ct = _mm256_set1_epi32(j->cterm);
  const int64_t np = j->ntap / 2;
  for (int64_t oh = j->oh0; oh < j->oh1; oh++) {
    const uint8_t *xr = j->x + oh * j->ws;
    for (int64_t ow = 0; ow < j->ow; ow += 8) {
      __m256i acc = ct;
      for (int64_t t = 0; t < np; t++) {
        int32_t wp;
        memcpy(&wp, j->w + 2 * t, 4);
        const __m256i a = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(xr + j->toff[2 * t] + ow)));
        const __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(xr + j->toff[2 * t + 1] + ow)));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_or_si256(a, _mm256_slli_epi32(b, 16)),
                                                      _mm256_set1_epi32(wp)));
      }
      if (e->mult) acc = q8_requant_ymm(acc, mult, flo, fhi, zp);
      ei__q8_seg s = {0, j->ow - ow < 8 ? (int)(j->ow - ow) : 8, oh * j->ow + ow};
      q8_store_ymm(j->y, esize, acc, &s, 1, s.n == 8);
    }
  }
}

/* ---- GEMM with a constant B: 4 rows x 2 vectors of 8 columns; int16 A pairs broadcast, B pairs (MADD) ---- */

Q8_INLINE void gemm_tile(const ei__q8g_tile *t, const int R) {
  __m256i acc[4 * 2];
#pragma GCC unroll 32
  for (int i = 0; i < R * 2; i++) acc[i] = _mm256_setzero_si256();
  const int16_t *ar[4];
#pragma GCC unroll 8
  for (int r = 0; r < R; r++) ar[r] = (const int16_t *)t->a + (r < t->mr ? r : 0) * t->lda;
  const int16_t *b = t->b;
  const int64_t kq = t->kp / 4;
  for (int64_t k = 0; k < kq; k++, b += 64) {
    const __m256i p00 = _mm256_loadu_si256((const __m256i *)b), p01 = _mm256_loadu_si256((const __m256i *)(b + 16));
    const __m256i p10 = _mm256_loadu_si256((const __m256i *)(b + 32)), p11 = _mm256_loadu_si256((const __m256i *)(b + 48));
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
      int32_t q0, q1;
      memcpy(&q0, ar[r] + 4 * k, 4);
      memcpy(&q1, ar[r] + 4 * k + 2, 4);
      const __m256i a0 = _mm256_set1_epi32(q0), a1 = _mm256_set1_epi32(q1);
      acc[r * 2] = _mm256_add_epi32(acc[r * 2], _mm256_add_epi32(_mm256_madd_epi16(p00, a0), _mm256_madd_epi16(p01, a1)));
      acc[r * 2 + 1] =
          _mm256_add_epi32(acc[r * 2 + 1], _mm256_add_epi32(_mm256_madd_epi16(p10, a0), _mm256_madd_epi16(p11, a1)));
    }
  }
  __m256i res[8]; /* a copy: the accumulators themselves do not escape */
#pragma GCC unroll 32
  for (int i = 0; i < R * 2; i++) res[i] = acc[i];
  q8g_epilogue_ymm2(t, res, R);
}

void ei__q8g_gemm_avx2(const ei__q8g_tile *t) {
  if (t->mr == 1)
    gemm_tile(t, 1);
  else if (t->mr == 2)
    gemm_tile(t, 2);
  else
    gemm_tile(t, 4);
}
