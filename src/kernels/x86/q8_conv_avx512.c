/* AVX-512 (F/BW/VL, no VNNI) integer conv kernels, exact: bytes widened to int16 and multiplied with vpmaddwd
 * (the scheme of q8_conv_avx2.c at 512 bits): igemm 8 output channels x up to 2 vectors of 16 pixels
 * (EI_Q8W_MADD weights), and the depthwise rows of 16 pixels. Tails use masked stores. */
#include "kernels/x86/q8_x86.h"

#define MR 8

Q8_INLINE void igemm_tile(const ei__q8c_tile *t, const int NV) {
  __m512i acc[MR * 2];
#pragma GCC unroll 32
  for (int i = 0; i < MR * NV; i++) acc[i] = _mm512_setzero_si512();
  const __m512i lo8 = _mm512_set1_epi32(0x00ff00ff);
  const uint8_t *x = t->x;
  const int32_t *ko = t->koff;
  const int32_t *w = (const int32_t *)t->w;
  for (int64_t k = 0; k < t->kq; k++, w += 2 * MR) {
    const uint8_t *xp = x + ko[k];
    __m512i xl[2], xh[2];
#pragma GCC unroll 32
    for (int j = 0; j < NV; j++) {
      const __m512i v = _mm512_loadu_si512(xp + 64 * j);
      xl[j] = _mm512_and_si512(v, lo8);
      xh[j] = _mm512_srli_epi16(v, 8);
    }
#pragma GCC unroll 32
    for (int i = 0; i < MR; i++) {
      const __m512i w0 = _mm512_set1_epi32(w[2 * i]), w1 = _mm512_set1_epi32(w[2 * i + 1]);
#pragma GCC unroll 32
      for (int j = 0; j < NV; j++)
        acc[i * NV + j] = _mm512_add_epi32(
            acc[i * NV + j], _mm512_add_epi32(_mm512_madd_epi16(xl[j], w0), _mm512_madd_epi16(xh[j], w1)));
    }
  }
  q8c_epilogue_zmm(t, acc, MR, NV, 0);
}

void ei__q8c_igemm_avx512(const ei__q8c_tile *t) {
  if (t->nv == 1)
    igemm_tile(t, 1);
  else
    igemm_tile(t, 2);
}

/* NP tap pairs (a constant for the 3x3 and 5x5 kernels: weights and offsets stay in registers). */
Q8_INLINE void dw_rows(const ei__q8dw_job *j, const int64_t NP) {
  const ei__q8_epi *e = j->e;
  const int esize = e->mult ? 1 : 4;
  const __m512 flo = _mm512_set1_ps(e->flo), fhi = _mm512_set1_ps(e->fhi), mult = _mm512_set1_ps(j->mult);
  const __m512i zp = _mm512_set1_epi32(e->zp), ct = _mm512_set1_epi32(j->cterm);
  __m512i wv[13];
  int64_t o0[13], o1[13];
  const int64_t np = NP ? NP : j->ntap / 2, npre = np < 13 ? np : 13;
#pragma GCC unroll 13
  for (int64_t t = 0; t < npre; t++) {
    int32_t wp;
    memcpy(&wp, j->w + 2 * t, 4);
    wv[t] = _mm512_set1_epi32(wp);
    o0[t] = j->toff[2 * t];
    o1[t] = j->toff[2 * t + 1];
  }
  for (int64_t oh = j->oh0; oh < j->oh1; oh++) {
    const uint8_t *xr = j->x + oh * j->ws;
    for (int64_t ow = 0; ow < j->ow; ow += 16) {
      const uint8_t *xp = xr + ow;
      __m512i acc = ct;
#pragma GCC unroll 13
      for (int64_t t = 0; t < np; t++) {
        int32_t wp;
        if (t >= 13) memcpy(&wp, j->w + 2 * t, 4);
        const int64_t a0 = t < 13 ? o0[t] : j->toff[2 * t], a1 = t < 13 ? o1[t] : j->toff[2 * t + 1];
        const __m512i a = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(xp + a0)));
        const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(xp + a1)));
        acc = _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_or_si512(a, _mm512_slli_epi32(b, 16)),
                                                      t < 13 ? wv[t] : _mm512_set1_epi32(wp)));
      }
      if (e->mult) acc = q8_requant_zmm(acc, mult, flo, fhi, zp);
      ei__q8_seg sg = {0, j->ow - ow < 16 ? (int)(j->ow - ow) : 16, oh * j->ow + ow};
      q8_store_zmm(j->y, esize, acc, &sg, 1, sg.n == 16);
    }
  }
}

void ei__q8dw_avx512(const ei__q8dw_job *j) {
  if (j->ntap == 10)
    dw_rows(j, 5); /* 3x3 */
  else if (j->ntap == 26)
    dw_rows(j, 13); /* 5x5 */
  else
    dw_rows(j, 0);
}

/* ---- GEMM with a constant B: 4 rows x 4 vectors of 16 columns; int16 A pairs broadcast, B pairs (MADD) ---- */

#define GNV 4

Q8_INLINE void gemm_tile(const ei__q8g_tile *t, const int R) {
  __m512i acc[4 * GNV];
#pragma GCC unroll 32
  for (int i = 0; i < R * GNV; i++) acc[i] = _mm512_setzero_si512();
  const int16_t *ar[4];
#pragma GCC unroll 8
  for (int r = 0; r < R; r++) ar[r] = (const int16_t *)t->a + (r < t->mr ? r : 0) * t->lda;
  const int16_t *b = t->b;
  const int64_t kq = t->kp / 4;
  for (int64_t k = 0; k < kq; k++, b += 64 * GNV) {
    __m512i p0[GNV], p1[GNV];
#pragma GCC unroll 8
    for (int j = 0; j < GNV; j++) {
      p0[j] = _mm512_loadu_si512(b + 64 * j);
      p1[j] = _mm512_loadu_si512(b + 64 * j + 32);
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
      int32_t q0, q1;
      memcpy(&q0, ar[r] + 4 * k, 4);
      memcpy(&q1, ar[r] + 4 * k + 2, 4);
      const __m512i a0 = _mm512_set1_epi32(q0), a1 = _mm512_set1_epi32(q1);
#pragma GCC unroll 8
      for (int j = 0; j < GNV; j++)
        acc[r * GNV + j] = _mm512_add_epi32(acc[r * GNV + j],
                                            _mm512_add_epi32(_mm512_madd_epi16(p0[j], a0), _mm512_madd_epi16(p1[j], a1)));
    }
  }
  q8g_epilogue_zmm(t, acc, R, GNV);
}

void ei__q8g_gemm_avx512(const ei__q8g_tile *t) {
  if (t->mr == 1)
    gemm_tile(t, 1);
  else if (t->mr == 2)
    gemm_tile(t, 2);
  else
    gemm_tile(t, 4);
}
