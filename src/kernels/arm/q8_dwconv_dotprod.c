/* AArch64 dotprod direct depthwise conv (ei__q8dwd_job of q8_kernels.h): 16 output pixels of a row per step (4
 * int32x4 quarters). Per kernel row the input bytes x[ow * sw - pl ..] are loaded (32 bytes for width stride 1,
 * 48 for stride 2; at the row's ends and for rows outside the input they are copied into a buffer filled with
 * the zero point first), xor'ed to int8, and tbl gathers each pixel's 4 bytes x[ow * sw - pl + 0..3] into its
 * lane; one sdot per quarter with the row's weight quad (4th weight 0). */
#include "kernels/arm/q8_arm.h"

typedef struct dwd_ctx {
  const uint8_t *x;
  int64_t H, W, OW, lb; /* lb: bytes loaded per row step */
  uint8_t xz;
  int8x16_t flip;
  uint8x16_t idx[4];    /* tbl indices of the 4 quarters */
} dwd_ctx;

/* The 4 quarters of quads of row ih at column ic0. */
Q8_INLINE void dwd_gather(const dwd_ctx *c, int64_t ih, int64_t ic0, int sw2, int8x16_t q[4]) {
  uint8_t buf[48];
  const uint8_t *src;
  if (ih >= 0 && ih < c->H && ic0 >= 0 && ic0 + c->lb <= c->W) {
    src = c->x + ih * c->W + ic0;
  } else {
    memset(buf, c->xz, sizeof buf);
    if (ih >= 0 && ih < c->H) {
      const int64_t lo = ic0 < 0 ? -ic0 : 0, hi = c->W - ic0 < c->lb ? c->W - ic0 : c->lb;
      if (hi > lo) memcpy(buf + lo, c->x + ih * c->W + ic0 + lo, (size_t)(hi - lo));
    }
    src = buf;
  }
  if (sw2) {
    uint8x16x3_t t;
    t.val[0] = vld1q_u8(src);
    t.val[1] = vld1q_u8(src + 16);
    t.val[2] = vld1q_u8(src + 32);
    for (int i = 0; i < 4; i++) q[i] = veorq_s8(vreinterpretq_s8_u8(vqtbl3q_u8(t, c->idx[i])), c->flip);
  } else {
    uint8x16x2_t t;
    t.val[0] = vld1q_u8(src);
    t.val[1] = vld1q_u8(src + 16);
    for (int i = 0; i < 4; i++) q[i] = veorq_s8(vreinterpretq_s8_u8(vqtbl2q_u8(t, c->idx[i])), c->flip);
  }
}

static void dwd_plane(const ei__q8dwd_job *j, const dwd_ctx *c0, int32_t cterm, float mlt);

void ei__q8dwd_dotprod(const ei__q8dwd_job *j) {
  dwd_ctx c;
  c.H = j->H;
  c.W = j->W;
  c.OW = j->OW;
  c.lb = j->sw == 2 ? 48 : 32;
  c.xz = j->xz;
  c.flip = vdupq_n_s8((int8_t)j->flip);
  for (int i = 0; i < 4; i++) {
    uint8_t ix[16];
    for (int p = 0; p < 4; p++)
      for (int b = 0; b < 4; b++) ix[4 * p + b] = (uint8_t)((4 * i + p) * j->sw + b);
    c.idx[i] = vld1q_u8(ix);
  }
  ei__q8dwd_job pj = *j;
  const int64_t in_size = j->H * j->W, out_bytes = j->OH * j->OW * (j->e->mult ? 1 : 4);
  for (int64_t i = 0; i < j->nplanes; i++) {
    pj.x = j->x + i * in_size;
    pj.w = j->w + 4 * j->KH * i;
    pj.y = (uint8_t *)j->y + i * out_bytes;
    c.x = pj.x;
    dwd_plane(&pj, &c, j->cterm[i], j->e->mult ? j->mult[i] : 0.f);
  }
}

static void dwd_plane(const ei__q8dwd_job *j, const dwd_ctx *c0, int32_t cterm, float mlt) {
  const dwd_ctx c = *c0;
  const ei__q8_epi *e = j->e;
  const int sw2 = j->sw == 2, esize = e->mult ? 1 : 4;
  const float32x4_t mult = vdupq_n_f32(mlt), flo = vdupq_n_f32(e->flo), fhi = vdupq_n_f32(e->fhi);
  const int32x4_t zp = vdupq_n_s32(e->zp), ct = vdupq_n_s32(cterm);
  for (int64_t oh = 0; oh < j->OH; oh++)
    for (int64_t ow = 0; ow < j->OW; ow += 16) {
      const int64_t ic0 = ow * j->sw - j->pl;
      int32x4_t a[4] = {ct, ct, ct, ct};
      for (int64_t kh = 0; kh < j->KH; kh++) {
        int32_t wq;
        memcpy(&wq, j->w + 4 * kh, 4);
        const int8x16_t w = vreinterpretq_s8_s32(vdupq_n_s32(wq));
        int8x16_t q[4];
        dwd_gather(&c, oh * j->sh - j->pt + kh * j->dh, ic0, sw2, q);
        for (int i = 0; i < 4; i++) a[i] = vdotq_s32(a[i], q[i], w);
      }
      if (e->mult)
        for (int i = 0; i < 4; i++) a[i] = q8_requant_neon(a[i], mult, flo, fhi, zp);
      const int n = j->OW - ow < 16 ? (int)(j->OW - ow) : 16;
      ei__q8_seg sg = {0, n, oh * j->OW + ow};
      q8_store_neon(j->y, esize, a, 4, &sg, 1, n == 16);
    }
}
