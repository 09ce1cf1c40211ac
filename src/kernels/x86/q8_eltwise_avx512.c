/* AVX-512 integer elementwise kernels: QLinearAdd, 16 elements per step with masked tails (the float steps of
 * requant.h's ei__qadd in the same order, see q8_eltwise_avx2.c), the byte sums of QLinearGlobalAveragePool, QuantizeLinear
 * and DequantizeLinear of uint8 / int8 (16 elements per step, masked tails). */
#include "kernels/x86/q8_x86.h"
#include "quant/requant.h"

Q8_INLINE __m512i load16_epi32(const uint8_t *p, __mmask16 m, int is_signed) {
  const __m128i v = _mm_maskz_loadu_epi8(m, p);
  return is_signed ? _mm512_cvtepi8_epi32(v) : _mm512_cvtepu8_epi32(v);
}

void ei__q8add_avx512(const ei__q8add_args *a, int64_t begin, int64_t end) {
  const __m512 ra = _mm512_set1_ps(a->k.ra), rb = _mm512_set1_ps(a->k.rb), fixed = _mm512_set1_ps(a->k.fixed);
  const __m512 flo = _mm512_set1_ps((float)a->lo), fhi = _mm512_set1_ps((float)a->hi);
  const int sg = a->is_signed;
  for (int64_t i = begin; i < end; i += 16) {
    const __mmask16 m = end - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (end - i)) - 1);
    const __m512 fa = _mm512_cvtepi32_ps(load16_epi32(a->a + i, m, sg));
    const __m512 acc =
        a->b_scalar ? fixed : _mm512_fmadd_ps(_mm512_cvtepi32_ps(load16_epi32(a->b + i, m, sg)), rb, fixed);
    __m512 v = _mm512_fmadd_ps(fa, ra, acc);
    v = _mm512_min_ps(_mm512_max_ps(v, flo), fhi);
    _mm_mask_storeu_epi8(a->y + i, m, _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(v)));
  }
}

int64_t ei__q8sum_avx512(const uint8_t *x, int64_t n, int is_signed) {
  const __m512i flip = _mm512_set1_epi8(is_signed ? (char)0x80 : 0), z = _mm512_setzero_si512();
  __m512i acc = z;
  for (int64_t i = 0; i < n; i += 64) {
    const __mmask64 m = n - i >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << (n - i)) - 1);
    /* masked-off bytes load as 0 and are flipped to 0x80 for int8: subtract 128 for each real element only */
    const __m512i v = _mm512_maskz_mov_epi8(m, _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, x + i), flip));
    acc = _mm512_add_epi64(acc, _mm512_sad_epu8(v, z));
  }
  int64_t s = _mm512_reduce_add_epi64(acc);
  if (is_signed) s -= 128 * n;
  return s;
}

void ei__q8quant_avx512(const ei__q8quant_args *a, int64_t begin, int64_t end) {
  const __m512 sc = _mm512_set1_ps(a->scale);
  const __m512 flo = _mm512_set1_ps((float)((int64_t)a->lo - a->zp)), fhi = _mm512_set1_ps((float)((int64_t)a->hi - a->zp));
  const __m512i zp = _mm512_set1_epi32(a->zp);
  for (int64_t i = begin; i < end; i += 16) {
    const __mmask16 m = end - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (end - i)) - 1);
    __m512 v = _mm512_div_ps(_mm512_maskz_loadu_ps(m, a->x + i), sc);
    v = _mm512_min_ps(_mm512_max_ps(v, flo), fhi); /* maxps(NaN, flo) = flo */
    _mm_mask_storeu_epi8(a->y + i, m, _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(v), zp)));
  }
}

void ei__q8dequant_avx512(const ei__q8dequant_args *a, int64_t begin, int64_t end) {
  const __m512 sc = _mm512_set1_ps(a->scale);
  const __m512i zp = _mm512_set1_epi32(a->zp);
  for (int64_t i = begin; i < end; i += 16) {
    const __mmask16 m = end - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (end - i)) - 1);
    const __m512i q = _mm512_sub_epi32(load16_epi32(a->x + i, m, a->is_signed), zp);
    _mm512_mask_storeu_ps(a->y + i, m, _mm512_mul_ps(_mm512_cvtepi32_ps(q), sc));
  }
}
