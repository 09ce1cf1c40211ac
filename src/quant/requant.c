/* The non-inline parts of the quantization definition (requant.h): fused-activation clamps and lookup tables. */
#include "quant/requant.h"

int ei__quant_act_range(const ei__act *act, float scale, int32_t zp, ei_dtype t, int32_t *lo, int32_t *hi) {
  const int32_t qmin = ei__qmin(t), qmax = ei__qmax(t);
  *lo = qmin;
  *hi = qmax;
  if (!act || act->kind == EI_ACT_NONE) return 0;
  if (zp < qmin) zp = qmin;
  if (zp > qmax) zp = qmax;
  if (act->kind == EI_ACT_RELU) {
    *lo = zp;
    return 0;
  }
  if (act->kind != EI_ACT_CLIP) return -1;
  /* round_sat already saturates to [qmin, qmax]; an infinite bound saturates to the type's end. */
  *lo = ei__quant_round_sat(act->alpha / scale, zp, qmin, qmax);
  *hi = ei__quant_round_sat(act->beta / scale, zp, qmin, qmax);
  if (act->alpha != act->alpha) *lo = qmin; /* NaN bound: no bound */
  if (act->beta != act->beta) *hi = qmax;
  if (*lo > *hi) *lo = *hi;
  return 0;
}

void ei__quant_lut_build(ei_dtype xt, float x_scale, int32_t x_zp, ei_dtype yt, float y_scale, int32_t y_zp,
                         ei__quant_fn f, const void *ctx, uint8_t table[256]) {
  const int32_t lo = ei__qmin(yt), hi = ei__qmax(yt);
  for (int k = 0; k < 256; k++) {
    const int32_t q = xt == EI_INT8 ? (int32_t)(int8_t)(uint8_t)k : k;
    const float y = f(ei__dequantize(q, x_zp, x_scale), ctx);
    const int32_t r = ei__quantize(y, y_scale, y_zp, lo, hi);
    table[k] = yt == EI_INT8 ? (uint8_t)(int8_t)r : (uint8_t)r;
  }
}
