/* f32_simd_avx512: the float SIMD kernels of kernels/f32_simd.h (activation rows, depthwise and max-pool rows,
 * adds) for AVX-512, from the template kernels/f32_simd_tmpl.h with 16-float vectors. */
#include <stdint.h>
#include <immintrin.h>

#define VF __m512
#define VW 16
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps((p), (v))
/* Even elements of p[0..31] (the second load is masked to p[16..30]: nothing past the last element used). */
static inline __m512 load_s2(const float *p) {
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  return _mm512_permutex2var_ps(_mm512_loadu_ps(p), even, _mm512_maskz_loadu_ps((__mmask16)0x7fff, p + 16));
}
#define VLOAD_S2(p) load_s2(p)
static inline __mmask16 lanes(int n) { return (__mmask16)((1u << n) - 1); } /* n in [0, 16] */
/* Lanes [a, b) of p[0..16) / even elements of p[0..32) with elements outside [a, b) zero. */
static inline __m512 loadm(const float *p, int a, int b) {
  return _mm512_maskz_loadu_ps((__mmask16)(lanes(b) & ~lanes(a)), p);
}
static inline __m512 load_s2m(const float *p, int a, int b) {
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const uint32_t m = (b >= 32 ? 0xffffffffu : (1u << b) - 1) & ~((1u << a) - 1);
  return _mm512_permutex2var_ps(_mm512_maskz_loadu_ps((__mmask16)m, p), even,
                                _mm512_maskz_loadu_ps((__mmask16)(m >> 16), p + 16));
}
#define VS2_EXACT 1
#define VHAVE_MASK 1
#define VLOADM(p, a, b) loadm((p), (a), (b))
#define VLOADMB(p, bits) _mm512_maskz_loadu_ps((__mmask16)(bits), (p))
#define VLOAD_S2M(p, a, b) load_s2m((p), (a), (b))
#define VLOADN(p, n) _mm512_maskz_loadu_ps(lanes(n), (p))
#define VSTOREN(p, v, n) _mm512_mask_storeu_ps((p), lanes(n), (v))
#define VSET1(x) _mm512_set1_ps(x)
#define VADD(a, b) _mm512_add_ps((a), (b))
#define VSUB(a, b) _mm512_sub_ps((a), (b))
static inline void store2(float *p, __m512 a, __m512 b) {
  const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i hi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
  _mm512_storeu_ps(p, _mm512_permutex2var_ps(a, lo, b));
  _mm512_storeu_ps(p + 16, _mm512_permutex2var_ps(a, hi, b));
}
#define VSTORE2(p, a, b) store2((p), (a), (b))
#define VMUL(a, b) _mm512_mul_ps((a), (b))
#define VFMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define VRELU(v) _mm512_max_ps((v), _mm512_setzero_ps())              /* v > 0 ? v : 0 */
#define VCLAMP(v, lo, hi) _mm512_min_ps((hi), _mm512_max_ps((lo), (v))) /* NaN stays NaN */
#define VGE0SEL(v, a, b) _mm512_mask_blend_ps(_mm512_cmp_ps_mask((v), _mm512_setzero_ps(), _CMP_GE_OQ), (b), (a))
#define VMAXSEL(m, v) _mm512_max_ps((v), (m)) /* v > m ? v : m */
#define SIMD_TABLE ei__f32_simd_avx512
#define SIMD_NAME "avx512"
#include "kernels/f32_simd_tmpl.h"
