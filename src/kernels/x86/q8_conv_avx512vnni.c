/* AVX-512 VNNI integer conv micro-kernel: 8 output channels x up to 3 vectors of 16 pixels, vpdpbusd zmm
 * (uint8 staged activations x int8 weights broadcast per channel, weights EI_Q8W_DOT4), requantizing epilogue
 * with masked byte stores. Also the EVEX build of the 256-bit VNNI kernel (q8_igemm_vnni256.h). */
#include "kernels/x86/q8_x86.h"

#define MR 8

Q8_INLINE void igemm_tile(const ei__q8c_tile *t, const int NV) {
  __m512i acc[MR * 3];
  #pragma GCC unroll 32
  for (int i = 0; i < MR; i++) { /* start from the channel's cterm (the epilogue then skips the add) */
    const __m512i ct = _mm512_set1_epi32(i < t->mr ? t->e->cterm[t->m0 + i] : 0);
    #pragma GCC unroll 32
    for (int j = 0; j < NV; j++) acc[i * NV + j] = ct;
  }
  const uint8_t *x = t->x;
  const int32_t *ko = t->koff;
  const int32_t *w = (const int32_t *)t->w;
  for (int64_t k = 0; k < t->kq; k++, w += MR) {
    const uint8_t *xp = x + ko[k];
    __m512i xv[3];
    #pragma GCC unroll 32
    for (int j = 0; j < NV; j++) xv[j] = _mm512_loadu_si512(xp + 64 * j);
    #pragma GCC unroll 32
    for (int i = 0; i < MR; i++) {
      const __m512i wb = _mm512_set1_epi32(w[i]);
      #pragma GCC unroll 32
      for (int j = 0; j < NV; j++) acc[i * NV + j] = _mm512_dpbusd_epi32(acc[i * NV + j], xv[j], wb);
    }
  }
  q8c_epilogue_zmm(t, acc, MR, NV, 1);
}

void ei__q8c_igemm_avx512vnni(const ei__q8c_tile *t) {
  switch (t->nv) {
    case 1: igemm_tile(t, 1); break;
    case 2: igemm_tile(t, 2); break;
    default: igemm_tile(t, 3); break;
  }
}

#define Q8_DPBUSD(acc, a, b) _mm256_dpbusd_epi32(acc, a, b)
#define Q8_VNNI256_NAME ei__q8c_igemm_vnni256_evex
#define Q8_VNNI256_GEMM_NAME ei__q8g_gemm_vnni256_evex
#include "kernels/x86/q8_igemm_vnni256.h"

/* ---- GEMM with a constant B: 4 rows x 4 vectors of 16 columns, A quads broadcast (uint8), B int8 (DOT4) ---- */

#define GMR 4
#define GNV 4

Q8_INLINE void gemm_tile(const ei__q8g_tile *t, const int R) {
  __m512i acc[GMR * GNV];
#pragma GCC unroll 32
  for (int i = 0; i < R * GNV; i++) acc[i] = _mm512_setzero_si512();
  const uint8_t *a = t->a;
  const uint8_t *ar[GMR];
#pragma GCC unroll 8
  for (int r = 0; r < R; r++) ar[r] = a + (r < t->mr ? r : 0) * t->lda;
  const uint8_t *b = t->b;
  const int64_t kq = t->kp / 4;
  for (int64_t k = 0; k < kq; k++, b += 64 * GNV) {
    __m512i bv[GNV];
#pragma GCC unroll 8
    for (int j = 0; j < GNV; j++) bv[j] = _mm512_loadu_si512(b + 64 * j);
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
      int32_t q;
      memcpy(&q, ar[r] + 4 * k, 4);
      const __m512i av = _mm512_set1_epi32(q);
#pragma GCC unroll 8
      for (int j = 0; j < GNV; j++) acc[r * GNV + j] = _mm512_dpbusd_epi32(acc[r * GNV + j], av, bv[j]);
    }
  }
  q8g_epilogue_zmm(t, acc, R, GNV);
}

void ei__q8g_gemm_avx512vnni(const ei__q8g_tile *t) {
  if (t->mr == 1)
    gemm_tile(t, 1);
  else if (t->mr == 2)
    gemm_tile(t, 2);
  else
    gemm_tile(t, 4);
}

/* ---- channels as lanes (small planes): 16 * NC channels x NP pixels, activation quads broadcast ---- */

static __attribute__((noinline)) void cl_epilogue(const ei__q8c_cltile *t, const __m512i *acc, int NP, int NC) {
  const ei__q8_epi *e = t->e;
  const int out32 = !e->mult;
  const __m512 flo = _mm512_set1_ps(e->flo), fhi = _mm512_set1_ps(e->fhi);
  const __m512i zp = _mm512_set1_epi32(e->zp);
  int32_t res[6][64];
  for (int c = 0; c < NC; c++) {
    const int64_t m = t->m0 + 16 * c;
    const __m512i ct = _mm512_loadu_si512(e->cterm + m);
    const __m512 mult = out32 ? _mm512_setzero_ps() : _mm512_loadu_ps(e->mult + m);
    const __m512i wz = e->wz ? _mm512_loadu_si512(e->wz + m) : _mm512_setzero_si512();
    for (int i = 0; i < NP; i++) {
      __m512i a = _mm512_add_epi32(acc[i * NC + c], ct);
      if (e->wz) a = _mm512_sub_epi32(a, _mm512_mullo_epi32(wz, _mm512_set1_epi32(t->xsum[i])));
      if (!out32) a = q8_requant_zmm(a, mult, flo, fhi, zp);
      _mm512_storeu_si512(res[i] + 16 * c, a);
    }
  }
  /* transpose into the channel planes: np consecutive elements per channel */
  for (int ch = 0; ch < 16 * NC; ch++) {
    if (out32) {
      int32_t *y = (int32_t *)t->y + ch * t->ystride;
      for (int i = 0; i < NP; i++) y[i] = res[i][ch];
    } else {
      uint8_t *y = (uint8_t *)t->y + ch * t->ystride;
      for (int i = 0; i < NP; i++) y[i] = (uint8_t)res[i][ch];
    }
  }
}

Q8_INLINE void cl_tile(const ei__q8c_cltile *t, const int NP, const int NC) {
  __m512i acc[6 * 4];
#pragma GCC unroll 32
  for (int i = 0; i < NP * NC; i++) acc[i] = _mm512_setzero_si512();
  const uint8_t *xp[6];
#pragma GCC unroll 8
  for (int i = 0; i < NP; i++) xp[i] = t->xp[i];
  const int32_t *ko = t->koff;
  const uint8_t *w = t->w;
  const size_t bb = t->block_bytes;
  for (int64_t k = 0; k < t->kq; k++, w += 32) {
    __m512i wv[4];
#pragma GCC unroll 8
    for (int c = 0; c < NC; c++)
      wv[c] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(w + 2 * c * bb))),
                                 _mm256_loadu_si256((const __m256i *)(w + (2 * c + 1) * bb)), 1);
    const int32_t o = ko[k];
#pragma GCC unroll 8
    for (int i = 0; i < NP; i++) {
      int32_t q;
      memcpy(&q, xp[i] + o, 4);
      const __m512i xb = _mm512_set1_epi32(q);
#pragma GCC unroll 8
      for (int c = 0; c < NC; c++) acc[i * NC + c] = _mm512_dpbusd_epi32(acc[i * NC + c], xb, wv[c]);
    }
  }
  __m512i res[6 * 4]; /* a copy: the accumulators themselves do not escape */
#pragma GCC unroll 32
  for (int i = 0; i < NP * NC; i++) res[i] = acc[i];
  cl_epilogue(t, res, NP, NC);
}

#define CL_NP(NC)                        \
  switch (t->np) {                       \
    case 1: cl_tile(t, 1, NC); break;    \
    case 2: cl_tile(t, 2, NC); break;    \
    case 3: cl_tile(t, 3, NC); break;    \
    case 4: cl_tile(t, 4, NC); break;    \
    case 5: cl_tile(t, 5, NC); break;    \
    default: cl_tile(t, 6, NC); break;   \
  }

void ei__q8c_igemm_cl_avx512vnni(const ei__q8c_cltile *t) {
  switch (t->nc) {
    case 1: CL_NP(1); break;
    case 2: CL_NP(2); break;
    case 3: CL_NP(3); break;
    default: CL_NP(4); break;
  }
}
