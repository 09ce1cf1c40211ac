/* Shared AArch64 pieces of the integer kernels (included by the per-ISA files): the requantization epilogue with
 * requant.h semantics ((float)acc * mult; clamp to [lo - zp, hi - zp] with fmaxnm / fminnm, so NaN -> lo; fcvtns
 * = round half to even; + zp) and the stores of conv and GEMM tiles. Accumulators are int32x4 "quarters"; a
 * vector of L lanes is L / 4 quarters: acc[(i * NV + j) * NQ + q]. */
#ifndef EI_KERNELS_ARM_Q8_ARM_H
#define EI_KERNELS_ARM_Q8_ARM_H

#include <arm_neon.h>
#include <string.h>

#include "kernels/q8_kernels.h"

#define Q8_INLINE static inline __attribute__((always_inline))

Q8_INLINE int32x4_t q8_requant_neon(int32x4_t a, float32x4_t mult, float32x4_t flo, float32x4_t fhi, int32x4_t zp) {
  float32x4_t f = vmulq_f32(vcvtq_f32_s32(a), mult);
  f = vminnmq_f32(vmaxnmq_f32(f, flo), fhi);
  return vaddq_s32(vcvtnq_s32_f32(f), zp);
}

/* Writes the NQ quarters v[] (int32 results of L = 4 * NQ lanes) through the segments: bytes (low byte of each
 * lane) or int32. */
Q8_INLINE void q8_store_neon(void *plane, int esize, const int32x4_t *v, const int NQ, const ei__q8_seg *seg, int nseg,
                             int full) {
  const int L = 4 * NQ;
  if (esize == 4) {
    int32_t *y = plane;
    if (full) {
      for (int q = 0; q < NQ; q++) vst1q_s32(y + seg[0].out + 4 * q, v[q]);
      return;
    }
    int32_t tmp[16];
    for (int q = 0; q < NQ; q++) vst1q_s32(tmp + 4 * q, v[q]);
    for (int s = 0; s < nseg; s++) memcpy(y + seg[s].out, tmp + seg[s].lane, (size_t)seg[s].n * 4);
    return;
  }
  uint8_t *y = plane;
  uint8_t tmp[16];
  for (int q = 0; q + 1 < NQ; q += 2) {
    const int16x8_t h = vcombine_s16(vmovn_s32(v[q]), vmovn_s32(v[q + 1]));
    vst1_s8((int8_t *)tmp + 4 * q, vmovn_s16(h));
  }
  if (NQ & 1) {
    const int16x8_t h = vcombine_s16(vmovn_s32(v[NQ - 1]), vmovn_s32(v[NQ - 1]));
    const uint32_t u = vget_lane_u32(vreinterpret_u32_s8(vmovn_s16(h)), 0);
    memcpy(tmp + 4 * (NQ - 1), &u, 4);
  }
  if (full) {
    memcpy(y + seg[0].out, tmp, (size_t)L);
    return;
  }
  for (int s = 0; s < nseg; s++) memcpy(y + seg[s].out, tmp + seg[s].lane, (size_t)seg[s].n);
}

/* Conv tile epilogue: MR channels x NV vectors of NQ quarters. */
Q8_INLINE void q8c_epilogue_neon(const ei__q8c_tile *t, int32x4_t *acc, const int MR, const int NV, const int NQ) {
  const ei__q8_segs *sg = t->sg;
  const ei__q8_epi *e = t->e;
  const int esize = e->mult ? 1 : 4;
  const float32x4_t flo = vdupq_n_f32(e->flo), fhi = vdupq_n_f32(e->fhi);
  const int32x4_t zp = vdupq_n_s32(e->zp);
  for (int i = 0; i < MR; i++) {
    if (i >= t->mr) break;
    const int64_t m = t->m0 + i;
    uint8_t *plane = (uint8_t *)t->y + (size_t)(i * t->ystride) * (size_t)esize;
    const int32x4_t ct = vdupq_n_s32(e->cterm[m]);
    const float32x4_t mult = vdupq_n_f32(e->mult ? e->mult[m] : 0.f);
    for (int j = 0; j < NV; j++) {
      int32x4_t r[4];
      for (int q = 0; q < NQ; q++) {
        int32x4_t a = vaddq_s32(acc[(i * NV + j) * NQ + q], ct);
        if (e->wz) a = vmlsq_n_s32(a, vld1q_s32(t->xsum + 4 * (j * NQ + q)), e->wz[m]);
        r[q] = e->mult ? q8_requant_neon(a, mult, flo, fhi, zp) : a;
      }
      q8_store_neon(plane, esize, r, NQ, sg->seg[j], sg->nseg[j], sg->full[j]);
    }
  }
}

/* Loads n <= 4 int32 (the rest 0) without reading past them. */
Q8_INLINE int32x4_t q8_load_part(const int32_t *p, int64_t n) {
  if (n >= 4) return vld1q_s32(p);
  int32_t tmp[4] = {0, 0, 0, 0};
  if (n > 0) memcpy(tmp, p, (size_t)n * 4);
  return vld1q_s32(tmp);
}

Q8_INLINE float32x4_t q8_load_part_f32(const float *p, int64_t n) {
  if (n >= 4) return vld1q_f32(p);
  float tmp[4] = {0.f, 0.f, 0.f, 0.f};
  if (n > 0) memcpy(tmp, p, (size_t)n * 4);
  return vld1q_f32(tmp);
}

/* GEMM tile epilogue: MR rows x NV vectors of NQ quarters (columns). */
Q8_INLINE void q8g_epilogue_neon(const ei__q8g_tile *t, int32x4_t *acc, const int MR, const int NV, const int NQ) {
  const int esize = t->mult ? 1 : 4;
  const float32x4_t flo = vdupq_n_f32(t->flo), fhi = vdupq_n_f32(t->fhi);
  const int32x4_t zp = vdupq_n_s32(t->zp);
  const int L = 4 * NQ;
  for (int r = 0; r < MR; r++) {
    if (r >= t->mr) break;
    const int32_t *crow = t->cadd ? t->cadd + r * t->ldc_m : NULL;
    uint8_t *yrow = (uint8_t *)t->y + (size_t)(r * t->ldy) * (size_t)esize;
    for (int j = 0; j < NV; j++) {
      const int64_t valid = t->ncols - (int64_t)L * j;
      if (valid <= 0) break;
      int32x4_t v[4];
      for (int q = 0; q < NQ; q++) {
        const int64_t c = (int64_t)L * j + 4 * q, n = t->n0 + c, nq = valid - 4 * q;
        int32x4_t a = vaddq_s32(acc[(r * NV + j) * NQ + q], q8_load_part(t->cterm + n, nq));
        if (t->bz) a = vmlsq_n_s32(a, q8_load_part(t->bz + n, nq), t->asum[r]);
        if (crow) a = vaddq_s32(a, t->cadd_percol ? q8_load_part(crow + c, nq) : vdupq_n_s32(crow[0]));
        if (t->mult)
          a = q8_requant_neon(a, q8_load_part_f32(t->mult + n, nq), flo, fhi, zp);
        v[q] = a;
      }
      ei__q8_seg sg = {0, valid >= L ? L : (int)valid, (int64_t)L * j};
      q8_store_neon(yrow, esize, v, NQ, &sg, 1, valid >= L);
    }
  }
}

#endif
