/* f32_simd_avx2: the float SIMD kernels of kernels/f32_simd.h (activation rows, depthwise and max-pool rows,
 * adds) for AVX2 + FMA, from the template kernels/f32_simd_tmpl.h with 8-float vectors. */
#include <stdint.h>
#include <immintrin.h>

#define VF __m256
#define VW 8
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps((p), (v))
/* Even elements of p[0..15]: in-lane shuffle [a0 a2 b0 b2 | a4 a6 b4 b6], then the 64-bit pairs reordered. */
static inline __m256 load_s2(const float *p) {
  const __m256 t = _mm256_shuffle_ps(_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8), _MM_SHUFFLE(2, 0, 2, 0));
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0)));
}
#define VLOAD_S2(p) load_s2(p)
static const int32_t mask_tab[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
static inline __m256i lanes(int n) { return _mm256_loadu_si256((const __m256i *)(mask_tab + 8 - n)); }
/* Lanes [a, b) of p[0..8) / even elements of p[0..16) with elements outside [a, b) zero. */
static inline __m256i lanes2(int a, int b) { return _mm256_andnot_si256(lanes(a), lanes(b)); }
static inline __m256 loadm(const float *p, int a, int b) { return _mm256_maskload_ps(p, lanes2(a, b)); }
static inline int clamp8(int v) { return v < 0 ? 0 : v > 8 ? 8 : v; }
static inline __m256 load_s2m(const float *p, int a, int b) {
  const __m256 lo = _mm256_maskload_ps(p, lanes2(clamp8(a), clamp8(b)));
  const __m256 hi = _mm256_maskload_ps(p + 8, lanes2(clamp8(a - 8), clamp8(b - 8)));
  const __m256 t = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0)));
}
#define VHAVE_MASK 1
#define VLOADM(p, a, b) loadm((p), (a), (b))
/* Lanes whose bit is set in bits (8 bits). */
static inline __m256 loadmb(const float *p, uint32_t bits) {
  const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  const __m256i m = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)bits), bit), bit);
  return _mm256_maskload_ps(p, m);
}
#define VLOADMB(p, bits) loadmb((p), (bits))
#define VLOAD_S2M(p, a, b) load_s2m((p), (a), (b))
#define VLOADN(p, n) _mm256_maskload_ps((p), lanes(n))
#define VSTOREN(p, v, n) _mm256_maskstore_ps((p), lanes(n), (v))
#define VSET1(x) _mm256_set1_ps(x)
#define VADD(a, b) _mm256_add_ps((a), (b))
#define VSUB(a, b) _mm256_sub_ps((a), (b))
static inline void store2(float *p, __m256 a, __m256 b) {
  const __m256 lo = _mm256_unpacklo_ps(a, b), hi = _mm256_unpackhi_ps(a, b); /* a0 b0 a1 b1 | a4 b4 a5 b5 ... */
  _mm256_storeu_ps(p, _mm256_permute2f128_ps(lo, hi, 0x20));
  _mm256_storeu_ps(p + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
}
#define VSTORE2(p, a, b) store2((p), (a), (b))
#define VMUL(a, b) _mm256_mul_ps((a), (b))
#define VFMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define VRELU(v) _mm256_max_ps((v), _mm256_setzero_ps())              /* v > 0 ? v : 0 */
#define VCLAMP(v, lo, hi) _mm256_min_ps((hi), _mm256_max_ps((lo), (v))) /* NaN stays NaN */
#define VGE0SEL(v, a, b) _mm256_blendv_ps((b), (a), _mm256_cmp_ps((v), _mm256_setzero_ps(), _CMP_GE_OQ))
#define VMAXSEL(m, v) _mm256_max_ps((v), (m)) /* v > m ? v : m */
#define SIMD_TABLE ei__f32_simd_avx2
#define SIMD_NAME "avx2"
#include "kernels/f32_simd_tmpl.h"
