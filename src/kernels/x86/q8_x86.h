/* Shared x86 pieces of the integer kernels (included by the per-ISA files, compiled with their flags): the
 * requantization epilogue (requant.h semantics: (float)acc * mult, clamp to [lo - zp, hi - zp] with NaN -> lo,
 * round half to even by cvtps2dq under the default MXCSR, + zp) and the stores of conv tiles through the
 * virtual-pixel segments of q8_kernels.h, for 256-bit (AVX2) and, when compiled with AVX-512 BW, 512-bit vectors.
 * The clamp is max(v, flo) first: maxps returns its second operand when the first is NaN. */
#ifndef EI_KERNELS_X86_Q8_X86_H
#define EI_KERNELS_X86_Q8_X86_H

#include <immintrin.h>
#include <string.h>

#include "kernels/q8_kernels.h"

#define Q8_INLINE static inline __attribute__((always_inline))

/* ---- 256-bit ---- */

Q8_INLINE __m256i q8_requant_ymm(__m256i acc, __m256 mult, __m256 flo, __m256 fhi, __m256i zp) {
  __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), mult);
  f = _mm256_min_ps(_mm256_max_ps(f, flo), fhi);
  return _mm256_add_epi32(_mm256_cvtps_epi32(f), zp);
}

/* Low byte of each of the 8 int32 lanes, in the low 8 bytes. */
Q8_INLINE __m128i q8_bytes_ymm(__m256i v) {
  const __m256i sh = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12, -1,
                                      -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m256i b = _mm256_shuffle_epi8(v, sh);
  return _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1)));
}

/* Stores the 8 lanes of v (int32 results) into plane (elements of esize bytes) through the segments. */
Q8_INLINE void q8_store_ymm(void *plane, int esize, __m256i v, const ei__q8_seg *seg, int nseg, int full) {
  if (esize == 4) {
    int32_t *y = plane;
    if (full) {
      _mm256_storeu_si256((__m256i *)(y + seg[0].out), v);
      return;
    }
    int32_t tmp[8];
    _mm256_storeu_si256((__m256i *)tmp, v);
    for (int s = 0; s < nseg; s++) memcpy(y + seg[s].out, tmp + seg[s].lane, (size_t)seg[s].n * 4);
    return;
  }
  uint8_t *y = plane;
  const __m128i b = q8_bytes_ymm(v);
  if (full) {
    _mm_storel_epi64((__m128i *)(y + seg[0].out), b);
    return;
  }
  uint8_t tmp[16];
  _mm_storeu_si128((__m128i *)tmp, b);
  for (int s = 0; s < nseg; s++) memcpy(y + seg[s].out, tmp + seg[s].lane, (size_t)seg[s].n);
}

/* Conv tile epilogue for MR x NV accumulators of 8 lanes (acc[i * NV + j]). */
Q8_INLINE void q8c_epilogue_ymm(const ei__q8c_tile *t, __m256i *acc, const int MR, const int NV) {
  const ei__q8_segs *sg = t->sg;
  const ei__q8_epi *e = t->e;
  const int esize = e->mult ? 1 : 4;
  const __m256 flo = _mm256_set1_ps(e->flo), fhi = _mm256_set1_ps(e->fhi);
  const __m256i zp = _mm256_set1_epi32(e->zp);
  #pragma GCC unroll 32
  for (int i = 0; i < MR; i++) {
    if (i >= t->mr) break;
    const int64_t m = t->m0 + i;
    uint8_t *plane = (uint8_t *)t->y + (size_t)(i * t->ystride) * (size_t)esize;
    const __m256i ct = _mm256_set1_epi32(e->cterm[m]);
    const __m256 mult = _mm256_set1_ps(e->mult ? e->mult[m] : 0.f);
    #pragma GCC unroll 32
    for (int j = 0; j < NV; j++) {
      __m256i a = _mm256_add_epi32(acc[i * NV + j], ct);
      if (e->wz)
        a = _mm256_sub_epi32(a, _mm256_mullo_epi32(_mm256_set1_epi32(e->wz[m]),
                                                   _mm256_loadu_si256((const __m256i *)(t->xsum + 8 * j))));
      if (e->mult) a = q8_requant_ymm(a, mult, flo, fhi, zp);
      q8_store_ymm(plane, esize, a, sg->seg[j], sg->nseg[j], sg->full[j]);
    }
  }
}

/* Out-of-line epilogues for the 256-bit kernels: with the epilogue inlined GCC keeps part of the accumulators on
 * the stack through the k loop; called out of line (the accumulators passed in memory, once per tile) the loop
 * runs from registers. */
#define Q8_NOINLINE static __attribute__((noinline, unused))
Q8_NOINLINE void q8c_epilogue_ymm4(const ei__q8c_tile *t, __m256i *acc, int NV) {
  if (NV == 1)
    q8c_epilogue_ymm(t, acc, 4, 1);
  else if (NV == 2)
    q8c_epilogue_ymm(t, acc, 4, 2);
  else
    q8c_epilogue_ymm(t, acc, 4, 3);
}

/* GEMM tile epilogue for MR x NV accumulators of 8 columns (acc[r * NV + j]); partial vectors use masked loads
 * and a bounce buffer for the stores. */
Q8_INLINE void q8g_epilogue_ymm(const ei__q8g_tile *t, __m256i *acc, const int MR, const int NV) {
  const int esize = t->mult ? 1 : 4;
  const __m256 flo = _mm256_set1_ps(t->flo), fhi = _mm256_set1_ps(t->fhi);
  const __m256i zp = _mm256_set1_epi32(t->zp), iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
#pragma GCC unroll 32
  for (int r = 0; r < MR; r++) {
    if (r >= t->mr) break;
    const int32_t *crow = t->cadd ? t->cadd + r * t->ldc_m : NULL;
    uint8_t *yrow = (uint8_t *)t->y + (size_t)(r * t->ldy) * (size_t)esize;
#pragma GCC unroll 32
    for (int j = 0; j < NV; j++) {
      const int64_t valid = t->ncols - 8 * j;
      if (valid <= 0) break;
      const int64_t n = t->n0 + 8 * j;
      const __m256i lm = _mm256_cmpgt_epi32(_mm256_set1_epi32(valid >= 8 ? 8 : (int)valid), iota);
      __m256i a = _mm256_add_epi32(acc[r * NV + j], _mm256_maskload_epi32(t->cterm + n, lm));
      if (t->bz)
        a = _mm256_sub_epi32(a, _mm256_mullo_epi32(_mm256_maskload_epi32(t->bz + n, lm), _mm256_set1_epi32(t->asum[r])));
      if (crow) a = _mm256_add_epi32(a, t->cadd_percol ? _mm256_maskload_epi32(crow + 8 * j, lm) : _mm256_set1_epi32(crow[0]));
      if (t->mult) a = q8_requant_ymm(a, _mm256_castsi256_ps(_mm256_maskload_epi32((const int *)(t->mult + n), lm)), flo, fhi, zp);
      ei__q8_seg sg = {0, valid >= 8 ? 8 : (int)valid, 8 * j};
      q8_store_ymm(yrow, esize, a, &sg, 1, valid >= 8);
    }
  }
}

Q8_NOINLINE void q8g_epilogue_ymm2(const ei__q8g_tile *t, __m256i *acc, int R) {
  if (R == 1)
    q8g_epilogue_ymm(t, acc, 1, 2);
  else if (R == 2)
    q8g_epilogue_ymm(t, acc, 2, 2);
  else
    q8g_epilogue_ymm(t, acc, 4, 2);
}

/* ---- 512-bit ---- */
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)

Q8_INLINE __m512i q8_requant_zmm(__m512i acc, __m512 mult, __m512 flo, __m512 fhi, __m512i zp) {
  __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), mult);
  f = _mm512_min_ps(_mm512_max_ps(f, flo), fhi);
  return _mm512_add_epi32(_mm512_cvtps_epi32(f), zp);
}

/* (uintptr_t arithmetic: the start of a masked store may lie before the plane; only in-range lanes are written) */
Q8_INLINE void *q8_addr(void *base, int64_t elems, int esize) {
  return (void *)((uintptr_t)base + (uintptr_t)(elems * esize));
}

Q8_INLINE void q8_store_zmm(void *plane, int esize, __m512i v, const ei__q8_seg *seg, int nseg, int full) {
  if (esize == 4) {
    if (full) {
      _mm512_storeu_si512(q8_addr(plane, seg[0].out, 4), v);
      return;
    }
    for (int s = 0; s < nseg; s++)
      _mm512_mask_storeu_epi32(q8_addr(plane, seg[s].out - seg[s].lane, 4),
                               (__mmask16)(((1u << seg[s].n) - 1) << seg[s].lane), v);
    return;
  }
  const __m128i b = _mm512_cvtepi32_epi8(v);
  if (full) {
    _mm_storeu_si128((__m128i *)q8_addr(plane, seg[0].out, 1), b);
    return;
  }
  for (int s = 0; s < nseg; s++)
    _mm_mask_storeu_epi8(q8_addr(plane, seg[s].out - seg[s].lane, 1),
                         (__mmask16)(((1u << seg[s].n) - 1) << seg[s].lane), b);
}

/* ct_in_acc: the accumulators started from the channel's cterm (the kernel loaded it) */
Q8_INLINE void q8c_epilogue_zmm(const ei__q8c_tile *t, __m512i *acc, const int MR, const int NV, const int ct_in_acc) {
  const ei__q8_segs *sg = t->sg;
  const ei__q8_epi *e = t->e;
  const int esize = e->mult ? 1 : 4;
  const __m512 flo = _mm512_set1_ps(e->flo), fhi = _mm512_set1_ps(e->fhi);
  const __m512i zp = _mm512_set1_epi32(e->zp);
  #pragma GCC unroll 32
  for (int i = 0; i < MR; i++) {
    if (i >= t->mr) break;
    const int64_t m = t->m0 + i;
    uint8_t *plane = (uint8_t *)t->y + (size_t)(i * t->ystride) * (size_t)esize;
    const __m512i ct = _mm512_set1_epi32(e->cterm[m]);
    const __m512 mult = _mm512_set1_ps(e->mult ? e->mult[m] : 0.f);
    #pragma GCC unroll 32
    for (int j = 0; j < NV; j++) {
      __m512i a = ct_in_acc ? acc[i * NV + j] : _mm512_add_epi32(acc[i * NV + j], ct);
      if (e->wz)
        a = _mm512_sub_epi32(a, _mm512_mullo_epi32(_mm512_set1_epi32(e->wz[m]),
                                                   _mm512_loadu_si512(t->xsum + 16 * j)));
      if (e->mult) a = q8_requant_zmm(a, mult, flo, fhi, zp);
      q8_store_zmm(plane, esize, a, sg->seg[j], sg->nseg[j], sg->full[j]);
    }
  }
}

Q8_INLINE void q8g_epilogue_zmm(const ei__q8g_tile *t, __m512i *acc, const int MR, const int NV) {
  const int esize = t->mult ? 1 : 4;
  const __m512 flo = _mm512_set1_ps(t->flo), fhi = _mm512_set1_ps(t->fhi);
  const __m512i zp = _mm512_set1_epi32(t->zp);
#pragma GCC unroll 32
  for (int r = 0; r < MR; r++) {
    if (r >= t->mr) break;
    const int32_t *crow = t->cadd ? t->cadd + r * t->ldc_m : NULL;
    uint8_t *yrow = (uint8_t *)t->y + (size_t)(r * t->ldy) * (size_t)esize;
#pragma GCC unroll 32
    for (int j = 0; j < NV; j++) {
      const int64_t valid = t->ncols - 16 * j;
      if (valid <= 0) break;
      const int64_t n = t->n0 + 16 * j;
      const __mmask16 m = valid >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << valid) - 1);
      __m512i a = _mm512_add_epi32(acc[r * NV + j], _mm512_maskz_loadu_epi32(m, t->cterm + n));
      if (t->bz)
        a = _mm512_sub_epi32(a, _mm512_mullo_epi32(_mm512_maskz_loadu_epi32(m, t->bz + n), _mm512_set1_epi32(t->asum[r])));
      if (crow)
        a = _mm512_add_epi32(a, t->cadd_percol ? _mm512_maskz_loadu_epi32(m, crow + 16 * j) : _mm512_set1_epi32(crow[0]));
      if (t->mult) a = q8_requant_zmm(a, _mm512_maskz_loadu_ps(m, t->mult + n), flo, fhi, zp);
      if (esize == 4)
        _mm512_mask_storeu_epi32(yrow + 64 * j, m, a);
      else
        _mm_mask_storeu_epi8(yrow + 16 * j, m, _mm512_cvtepi32_epi8(a));
    }
  }
}

#endif

#endif
