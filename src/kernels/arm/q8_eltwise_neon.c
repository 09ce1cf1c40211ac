/* AArch64 NEON integer elementwise kernels: QLinearAdd, 8 elements per step (the float steps of requant.h's
 * ei__qadd in the same order: fma(a, ra, fma(b, rb, fixed)), clamp, round half to even) and the
 * byte sums of QLinearGlobalAveragePool; QuantizeLinear (x / scale, fmaxnm / fminnm clamp so NaN -> lo, fcvtns
 * round half to even, + zp) and DequantizeLinear ((float)(q - zp) * scale) of uint8 / int8, 8 per step. */
#include "kernels/arm/q8_arm.h"
#include "quant/requant.h"

Q8_INLINE int16x8_t load8_s16(const uint8_t *p, int is_signed) {
  return is_signed ? vmovl_s8(vld1_s8((const int8_t *)p)) : vreinterpretq_s16_u16(vmovl_u8(vld1_u8(p)));
}

Q8_INLINE float32x4_t cvt4(int16x4_t q) { return vcvtq_f32_s32(vmovl_s16(q)); }

void ei__q8add_neon(const ei__q8add_args *a, int64_t begin, int64_t end) {
  const float32x4_t ra = vdupq_n_f32(a->k.ra), rb = vdupq_n_f32(a->k.rb), fixed = vdupq_n_f32(a->k.fixed);
  const float32x4_t flo = vdupq_n_f32((float)a->lo), fhi = vdupq_n_f32((float)a->hi);
  const int sg = a->is_signed;
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    const int16x8_t qa = load8_s16(a->a + i, sg);
    float32x4_t f0 = fixed, f1 = fixed;
    if (!a->b_scalar) {
      const int16x8_t qb = load8_s16(a->b + i, sg);
      f0 = vfmaq_f32(fixed, cvt4(vget_low_s16(qb)), rb);
      f1 = vfmaq_f32(fixed, cvt4(vget_high_s16(qb)), rb);
    }
    f0 = vfmaq_f32(f0, cvt4(vget_low_s16(qa)), ra);
    f1 = vfmaq_f32(f1, cvt4(vget_high_s16(qa)), ra);
    f0 = vminnmq_f32(vmaxnmq_f32(f0, flo), fhi);
    f1 = vminnmq_f32(vmaxnmq_f32(f1, flo), fhi);
    const int32x4_t r0 = vcvtnq_s32_f32(f0), r1 = vcvtnq_s32_f32(f1);
    vst1_s8((int8_t *)(a->y + i), vmovn_s16(vcombine_s16(vmovn_s32(r0), vmovn_s32(r1))));
  }
  for (; i < end; i++) a->y[i] = ei__q8add_one(a, i);
}

int64_t ei__q8sum_neon(const uint8_t *x, int64_t n, int is_signed) {
  int64_t s = 0, i = 0;
  if (is_signed) {
    for (; i + 16 <= n; i += 16) s += vaddlvq_s8(vld1q_s8((const int8_t *)x + i));
    for (; i < n; i++) s += (int8_t)x[i];
  } else {
    for (; i + 16 <= n; i += 16) s += vaddlvq_u8(vld1q_u8(x + i));
    for (; i < n; i++) s += x[i];
  }
  return s;
}

void ei__q8quant_neon(const ei__q8quant_args *a, int64_t begin, int64_t end) {
  const float32x4_t sc = vdupq_n_f32(a->scale);
  const float32x4_t flo = vdupq_n_f32((float)((int64_t)a->lo - a->zp)), fhi = vdupq_n_f32((float)((int64_t)a->hi - a->zp));
  const int32x4_t zp = vdupq_n_s32(a->zp);
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    const float32x4_t f0 = vminnmq_f32(vmaxnmq_f32(vdivq_f32(vld1q_f32(a->x + i), sc), flo), fhi);
    const float32x4_t f1 = vminnmq_f32(vmaxnmq_f32(vdivq_f32(vld1q_f32(a->x + i + 4), sc), flo), fhi);
    const int32x4_t r0 = vaddq_s32(vcvtnq_s32_f32(f0), zp), r1 = vaddq_s32(vcvtnq_s32_f32(f1), zp);
    vst1_s8((int8_t *)(a->y + i), vmovn_s16(vcombine_s16(vmovn_s32(r0), vmovn_s32(r1))));
  }
  for (; i < end; i++) a->y[i] = (uint8_t)ei__quantize(a->x[i], a->scale, a->zp, a->lo, a->hi);
}

void ei__q8dequant_neon(const ei__q8dequant_args *a, int64_t begin, int64_t end) {
  const float32x4_t sc = vdupq_n_f32(a->scale);
  const int32x4_t zp = vdupq_n_s32(a->zp);
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    const int16x8_t q = load8_s16(a->x + i, a->is_signed);
    vst1q_f32(a->y + i, vmulq_f32(vcvtq_f32_s32(vsubq_s32(vmovl_s16(vget_low_s16(q)), zp)), sc));
    vst1q_f32(a->y + i + 4, vmulq_f32(vcvtq_f32_s32(vsubq_s32(vmovl_s16(vget_high_s16(q)), zp)), sc));
  }
  for (; i < end; i++) a->y[i] = ei__dequantize(a->is_signed ? (int8_t)a->x[i] : a->x[i], a->zp, a->scale);
}
