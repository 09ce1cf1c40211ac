/* f32_simd_neon: the float SIMD kernels of kernels/f32_simd.h (activation rows, depthwise and max-pool rows,
 * adds) for AArch64 NEON, from the template kernels/f32_simd_tmpl.h with 4-float vectors. Selects use
 * compares + bsl so that NaN behaves as in the scalar formulas (vmax/vmin would propagate it). */
#include <stdint.h>
#include <arm_neon.h>

#define VF float32x4_t
#define VW 4
#define VLOAD(p) vld1q_f32(p)
#define VSTORE(p, v) vst1q_f32((p), (v))
#define VLOAD_S2(p) (vld2q_f32(p).val[0])
#define VSET1(x) vdupq_n_f32(x)
#define VADD(a, b) vaddq_f32((a), (b))
#define VSUB(a, b) vsubq_f32((a), (b))
static inline void store2(float *p, float32x4_t a, float32x4_t b) {
  float32x4x2_t v;
  v.val[0] = a;
  v.val[1] = b;
  vst2q_f32(p, v);
}
#define VSTORE2(p, a, b) store2((p), (a), (b))
#define VMUL(a, b) vmulq_f32((a), (b))
#define VFMA(a, b, c) vfmaq_f32((c), (a), (b))
static inline float32x4_t vrelu(float32x4_t v) {
  const float32x4_t z = vdupq_n_f32(0.f);
  return vbslq_f32(vcgtq_f32(v, z), v, z);
}
static inline float32x4_t vclamp(float32x4_t v, float32x4_t lo, float32x4_t hi) {
  return vbslq_f32(vcltq_f32(v, lo), lo, vbslq_f32(vcgtq_f32(v, hi), hi, v));
}
#define VRELU(v) vrelu(v)
#define VCLAMP(v, lo, hi) vclamp((v), (lo), (hi))
#define VGE0SEL(v, a, b) vbslq_f32(vcgeq_f32((v), vdupq_n_f32(0.f)), (a), (b))
#define VMAXSEL(m, v) vbslq_f32(vcgtq_f32((v), (m)), (v), (m))
#define SIMD_TABLE ei__f32_simd_neon
#define SIMD_NAME "neon"
#include "kernels/f32_simd_tmpl.h"
