/* The one quantization / requantization definition of the engine. Every integer kernel (the scalar references in
 * src/kernels/ref/q*.c and every SIMD kernel) and every graph pass that precomputes quantized values uses these
 * functions, so all of them round and saturate identically:
 *
 *   quantize(x)       = saturate(round_even(x / scale) + zero_point)                       (QuantizeLinear)
 *   dequantize(q)     = (float)(q - zero_point) * scale                                     (DequantizeLinear)
 *   requantize(acc)   = saturate(round_even((float)acc * multiplier) + out_zero_point)
 *   multiplier        = in_scale * w_scale[c] / out_scale, in float32, in exactly that order (as ONNX Runtime)
 *
 * round_even is round to nearest, ties to even (nearbyintf under the default rounding mode); saturate clamps to the
 * output type's range [qmin, qmax], or to the narrower [lo, hi] of a fused Relu/Clip (ei__quant_act_range).
 * NaN saturates to lo (as the ONNX reference's QuantizeLinear, whose NaN becomes INT_MIN before clipping);
 * +inf to hi, -inf to lo. All arithmetic is in float32; no step has undefined behaviour for any input.
 * Accumulators are int32 that wrap modulo 2^32 (ONNX: "accumulation may overflow if and only if in 32 bits"). */
#ifndef EI_QUANT_REQUANT_H
#define EI_QUANT_REQUANT_H

#include <math.h>
#include <stdint.h>

#include "graph/ir.h"

/* A quantized element type this file handles: uint8, int8, uint16, int16. */
static inline int ei__q_is_type(ei_dtype t) {
  return t == EI_UINT8 || t == EI_INT8 || t == EI_UINT16 || t == EI_INT16;
}
/* An 8-bit quantized type. */
static inline int ei__q_is_8bit(ei_dtype t) { return t == EI_UINT8 || t == EI_INT8; }

/* Range of a quantized type ([0, 0] for other types). */
static inline int32_t ei__qmin(ei_dtype t) {
  switch (t) {
    case EI_INT8: return -128;
    case EI_INT16: return -32768;
    default: return 0;
  }
}
static inline int32_t ei__qmax(ei_dtype t) {
  switch (t) {
    case EI_UINT8: return 255;
    case EI_INT8: return 127;
    case EI_UINT16: return 65535;
    case EI_INT16: return 32767;
    default: return 0;
  }
}

/* Round to nearest, ties to even, for |v| < 2^22: adding and subtracting 1.5 * 2^23 leaves the sum in
 * [2^23, 2^24), where the float spacing is 1, so the addition itself rounds (ties to even) under the default
 * rounding mode. Equal to nearbyintf(v) on that range (tests/test_quant_ops.c checks it). */
static inline float ei__round_even(float v) {
  const float magic = 12582912.0f; /* 0x1.8p23 */
  return (v + magic) - magic;
}

/* saturate(round_even(v) + zp) into [lo, hi] (lo <= hi, both within 16-bit range, lo - zp and hi - zp exact in
 * float). NaN gives lo. Clamping before rounding is exact because lo - zp and hi - zp are integers. */
static inline int32_t ei__quant_round_sat(float v, int32_t zp, int32_t lo, int32_t hi) {
  const float flo = (float)((int64_t)lo - zp), fhi = (float)((int64_t)hi - zp);
  if (!(v > flo)) return lo; /* also NaN */
  if (!(v < fhi)) return hi;
  return (int32_t)ei__round_even(v) + zp; /* flo < v < fhi: |v| < 2^17 */
}

/* QuantizeLinear of one float (x / scale as a float32 division, as the ONNX reference and ONNX Runtime). */
static inline int32_t ei__quantize(float x, float scale, int32_t zp, int32_t lo, int32_t hi) {
  return ei__quant_round_sat(x / scale, zp, lo, hi);
}

/* DequantizeLinear of one value: (float)(q - zp) * scale (the difference exact in 64 bits). */
static inline float ei__dequantize(int32_t q, int32_t zp, float scale) {
  return (float)((int64_t)q - zp) * scale;
}

/* The requantization multiplier of an integer conv/matmul output channel. */
static inline float ei__requant_multiplier(float in_scale, float w_scale, float out_scale) {
  return in_scale * w_scale / out_scale;
}

/* Requantizes an int32 accumulator (bias already added) to [lo, hi]. */
static inline int32_t ei__requant(int32_t acc, float multiplier, int32_t zp, int32_t lo, int32_t hi) {
  return ei__quant_round_sat((float)acc * multiplier, zp, lo, hi);
}

/* QLinearAdd and QLinearMul (com.microsoft, and the Add / Mul of QDQ models), in ONNX Runtime's float steps so that
 * both engines agree bit for bit (tests/int8/compare-int8 checks it on 65,536-pair grids):
 *
 *   add: ra = sa / sc, rb = sb / sc, fixed = (float)zc - fmaf(ra, (float)za, rb * (float)zb), and on the raw values
 *        y = saturate(round_even(fmaf(a, ra, fmaf(b, rb, fixed)))); when one operand is one value broadcast over
 *        the other (a scalar, or a dimension of 1 innermost), its term is folded first: fixed' = fmaf(s, r_s, fixed),
 *        y = saturate(round_even(fmaf(x, r_x, fixed'))).
 *   mul: r = sa * sb / sc, y = saturate(round_even((float)((a - za) * (b - zb)) * r + (float)zc)).
 *
 * fmaf is fused (one rounding) everywhere: the SIMD kernels use FMA instructions, the scalar code fmaf(). */
typedef struct ei__qadd_coef {
  float ra, rb, fixed;
} ei__qadd_coef;

static inline ei__qadd_coef ei__qadd_coef_of(float sa, int32_t za, float sb, int32_t zb, float sc, int32_t zc) {
  ei__qadd_coef k;
  k.ra = sa / sc;
  k.rb = sb / sc;
  k.fixed = (float)zc - fmaf(k.ra, (float)za, k.rb * (float)zb);
  return k;
}

/* The output of one element, both operands varying (qa, qb raw quantized values). */
static inline int32_t ei__qadd(const ei__qadd_coef *k, int32_t qa, int32_t qb, int32_t lo, int32_t hi) {
  return ei__quant_round_sat(fmaf((float)qa, k->ra, fmaf((float)qb, k->rb, k->fixed)), 0, lo, hi);
}

/* fixed' of an operand s broadcast with ratio r (k->ra for a, k->rb for b); then ei__qadd1(x, r_x, fixed'). */
static inline float ei__qadd_fold(const ei__qadd_coef *k, int32_t s, float r) { return fmaf((float)s, r, k->fixed); }
static inline int32_t ei__qadd1(int32_t qx, float rx, float fixed1, int32_t lo, int32_t hi) {
  return ei__quant_round_sat(fmaf((float)qx, rx, fixed1), 0, lo, hi);
}

/* QLinearMul of one element: ratio = ei__requant_multiplier(sa, sb, sc). */
static inline int32_t ei__qmul(int32_t qa, int32_t za, int32_t qb, int32_t zb, float ratio, int32_t zc, int32_t lo,
                               int32_t hi) {
  return ei__quant_round_sat((float)((qa - za) * (qb - zb)) * ratio + (float)zc, 0, lo, hi);
}

/* Wrapping int32 arithmetic for accumulators (done on uint32: no signed overflow). */
static inline int32_t ei__i32_wrap(uint32_t v) { return (int32_t)v; }

/* The output clamp [*lo, *hi] of an integer op of output type t with scale/zero point (scale, zp) and fused
 * activation act (NULL or EI_ACT_NONE: the full range of t):
 *   Relu -> [max(qmin, zp), qmax];
 *   Clip(min, max) -> [max(qmin, zp + round(min / scale)), min(qmax, zp + round(max / scale))] (an empty range
 *   collapses to hi, as Clip with min > max returns max).
 * Returns 0, or -1 for an activation that is not a clamp (the op must reject it). */
int ei__quant_act_range(const ei__act *act, float scale, int32_t zp, ei_dtype t, int32_t *lo, int32_t *hi);

/* Whether act can be applied as an integer clamp (none, Relu or Clip). */
static inline int ei__quant_act_ok(const ei__act *act) {
  return !act || act->kind == EI_ACT_NONE || act->kind == EI_ACT_RELU || act->kind == EI_ACT_CLIP;
}

/* A 256-entry lookup table for an elementwise float function between a dequantize and a quantize:
 * table[k] = quantize(f(dequantize(q_k))) where q_k is the value of raw byte k in the input type xt (uint8: k;
 * int8: (int8_t)k, so entries 128..255 hold inputs -128..-1), stored as the raw byte of the output type yt.
 * This is the table QLinearLookup (ai.edgeinfer) reads with table[(uint8_t)x]. xt, yt: uint8 or int8. */
typedef float (*ei__quant_fn)(float x, const void *ctx);
void ei__quant_lut_build(ei_dtype xt, float x_scale, int32_t x_zp, ei_dtype yt, float y_scale, int32_t y_zp,
                         ei__quant_fn f, const void *ctx, uint8_t table[256]);

#endif
