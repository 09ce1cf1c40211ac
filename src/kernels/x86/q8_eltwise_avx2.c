/* AVX2 integer elementwise kernels: QLinearAdd (8 elements per step; the float steps of requant.h's ei__qadd, in the
 * same order: fma(a, ra, fma(b, rb, fixed)), clamp, round half to even) and the byte
 * sums of QLinearGlobalAveragePool (vpsadbw); QuantizeLinear (x / scale, clamp, round half to even, + zp) and
 * DequantizeLinear ((float)(q - zp) * scale) of uint8 / int8, 8 elements per step. */
#include "kernels/x86/q8_x86.h"
#include "quant/requant.h"

Q8_INLINE __m256i load8_epi32(const uint8_t *p, int is_signed) {
  const __m128i v = _mm_loadl_epi64((const __m128i *)p);
  return is_signed ? _mm256_cvtepi8_epi32(v) : _mm256_cvtepu8_epi32(v);
}

void ei__q8add_avx2(const ei__q8add_args *a, int64_t begin, int64_t end) {
  const __m256 ra = _mm256_set1_ps(a->k.ra), rb = _mm256_set1_ps(a->k.rb), fixed = _mm256_set1_ps(a->k.fixed);
  const __m256 flo = _mm256_set1_ps((float)a->lo), fhi = _mm256_set1_ps((float)a->hi);
  const int sg = a->is_signed;
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    const __m256 fa = _mm256_cvtepi32_ps(load8_epi32(a->a + i, sg));
    const __m256 acc =
        a->b_scalar ? fixed : _mm256_fmadd_ps(_mm256_cvtepi32_ps(load8_epi32(a->b + i, sg)), rb, fixed);
    __m256 v = _mm256_fmadd_ps(fa, ra, acc);
    v = _mm256_min_ps(_mm256_max_ps(v, flo), fhi);
    _mm_storel_epi64((__m128i *)(a->y + i), q8_bytes_ymm(_mm256_cvtps_epi32(v)));
  }
  for (; i < end; i++) a->y[i] = ei__q8add_one(a, i);
}

int64_t ei__q8sum_avx2(const uint8_t *x, int64_t n, int is_signed) {
  const __m256i flip = _mm256_set1_epi8(is_signed ? (char)0x80 : 0), z = _mm256_setzero_si256();
  __m256i acc = z;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    acc = _mm256_add_epi64(acc, _mm256_sad_epu8(_mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(x + i)), flip), z));
  int64_t lanes[4];
  _mm256_storeu_si256((__m256i *)lanes, acc);
  int64_t s = lanes[0] + lanes[1] + lanes[2] + lanes[3];
  if (is_signed) s -= 128 * i;
  for (; i < n; i++) s += is_signed ? (int8_t)x[i] : x[i];
  return s;
}

void ei__q8quant_avx2(const ei__q8quant_args *a, int64_t begin, int64_t end) {
  const __m256 sc = _mm256_set1_ps(a->scale);
  const __m256 flo = _mm256_set1_ps((float)((int64_t)a->lo - a->zp)), fhi = _mm256_set1_ps((float)((int64_t)a->hi - a->zp));
  const __m256i zp = _mm256_set1_epi32(a->zp);
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    __m256 v = _mm256_div_ps(_mm256_loadu_ps(a->x + i), sc);
    v = _mm256_min_ps(_mm256_max_ps(v, flo), fhi); /* maxps(NaN, flo) = flo */
    _mm_storel_epi64((__m128i *)(a->y + i), q8_bytes_ymm(_mm256_add_epi32(_mm256_cvtps_epi32(v), zp)));
  }
  for (; i < end; i++) a->y[i] = (uint8_t)ei__quantize(a->x[i], a->scale, a->zp, a->lo, a->hi);
}

void ei__q8dequant_avx2(const ei__q8dequant_args *a, int64_t begin, int64_t end) {
  const __m256 sc = _mm256_set1_ps(a->scale);
  const __m256i zp = _mm256_set1_epi32(a->zp);
  int64_t i = begin;
  for (; i + 8 <= end; i += 8)
    _mm256_storeu_ps(a->y + i, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(load8_epi32(a->x + i, a->is_signed), zp)), sc));
  for (; i < end; i++) a->y[i] = ei__dequantize(a->is_signed ? (int8_t)a->x[i] : a->x[i], a->zp, a->scale);
}
