/* AVX-512 VNNI direct depthwise conv (ei__q8dwd_job of q8_kernels.h): 16 output pixels of a row per zmm (int32
 * lanes). Per kernel row one load of the input row (a masked byte load at the borders: columns outside the input,
 * and rows outside it, read the zero point: mask bits off, merge value x_zp), xor to uint8, vpermd + vpshufb gather each pixel's 4 input
 * bytes x[ow * sw - pl + 0..3] into its lane, and one vpdpbusd with the row's broadcast weight quad (4th weight 0).
 * Only AVX512F/BW/VNNI (no VBMI). The 3-row kernels keep weights and row pointers in registers and run two output
 * rows per pass (two independent accumulator chains); with unit row stride and dilation the two rows share the 4
 * gathered input rows (more rows per pass measured slower: register pressure), and with row stride 2 (dilation 1)
 * they share one. Every field the loops use is
 * copied to a local first (the byte stores may alias anything). */
#include "kernels/x86/q8_x86.h"

typedef struct dwd_ctx {
  __m512i pidx, shuf, fill, flip, ct, zp;
  __m512 mult, flo, fhi;
  const uint8_t *x;
  void *y;
  int64_t H, W, OW, nb, lb; /* nb: bytes a vector needs; lb: bytes of an unmasked load (32 or 64) */
  uint64_t full;
  int esize, requant;
} dwd_ctx;

/* The byte mask of the nb bytes at column ic0 of a row of W bytes that lie inside the row. */
Q8_INLINE __mmask64 dwd_colmask(const dwd_ctx *c, int64_t ic0) {
  if (ic0 >= 0 && ic0 + c->nb <= c->W) return (__mmask64)c->full;
  const int64_t lo = ic0 < 0 ? -ic0 : 0;
  int64_t hi = c->W - ic0;
  if (hi > c->nb) hi = c->nb;
  if (hi <= lo) return 0;
  return (__mmask64)((((uint64_t)1 << hi) - 1) & ~(((uint64_t)1 << lo) - 1)); /* hi <= nb < 64 */
}

/* Row ih: its start (the plane's start when outside, with an all-off mask), its mask (all or nothing) and the
 * largest column at which an unmasked load of lb bytes stays inside the plane (-1: none, the row is outside). */
Q8_INLINE const uint8_t *dwd_row(const dwd_ctx *c, int64_t ih, uint64_t *rk, int64_t *lim) {
  const int in = ih >= 0 && ih < c->H;
  *rk = in ? ~(uint64_t)0 : 0;
  *lim = in ? c->H * c->W - c->lb - ih * c->W : -1;
  return in ? c->x + ih * c->W : c->x;
}

/* Whether the nb bytes a vector needs at column ic0 lie inside the row (then, when lb bytes from there stay inside
 * the plane, an unmasked load serves: the bytes past nb are not used, and masked loads cost more). */
Q8_INLINE int dwd_inside(const dwd_ctx *c, int64_t ic0) { return ic0 >= 0 && ic0 + c->nb <= c->W; }

/* The quads of 16 pixels of a row at column ic0 (the address may lie before the row: only masked-in bytes load).
 * plain: the row is inside the input and dwd_inside(ic0). */
Q8_INLINE __m512i dwd_gather(const dwd_ctx *c, const uint8_t *row, int64_t ic0, __mmask64 m, int plain) {
  const void *src = (const void *)((uintptr_t)row + (uintptr_t)ic0);
  __m512i v;
  if (plain)
    v = c->lb == 32 ? _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)src)) : _mm512_loadu_si512(src);
  else
    v = _mm512_mask_loadu_epi8(c->fill, m, src);
  v = _mm512_xor_si512(v, c->flip);
  return _mm512_shuffle_epi8(_mm512_permutexvar_epi32(c->pidx, v), c->shuf);
}

Q8_INLINE void dwd_store(const dwd_ctx *c, __m512i acc, int64_t oh, int64_t ow) {
  if (c->requant) acc = q8_requant_zmm(acc, c->mult, c->flo, c->fhi, c->zp);
  const int n = c->OW - ow < 16 ? (int)(c->OW - ow) : 16;
  ei__q8_seg sg = {0, n, oh * c->OW + ow};
  q8_store_zmm(c->y, c->esize, acc, &sg, 1, n == 16);
}

Q8_INLINE __m512i dwd_w(const ei__q8dwd_job *j, int64_t kh) {
  int32_t w;
  memcpy(&w, j->w + 4 * kh, 4);
  return _mm512_set1_epi32(w);
}

/* 3 kernel rows, any strides and row dilation: R output rows per pass (independent accumulator chains). */
Q8_INLINE void dwd_k3_rows(const ei__q8dwd_job *j, const dwd_ctx *c, int64_t oh, const int R, const int SHARE) {
  const __m512i w0 = dwd_w(j, 0), w1 = dwd_w(j, 1), w2 = dwd_w(j, 2);
  const int64_t OW = c->OW, sw = j->sw, dh = j->dh, pl = j->pl;
  const uint8_t *r[2][3];
  uint64_t k[2][3];
  int64_t lim[2][3];
  #pragma GCC unroll 8
  for (int i = 0; i < R; i++) {
    const int64_t ih = (oh + i) * j->sh - j->pt;
    #pragma GCC unroll 8
    for (int t = 0; t < 3; t++) r[i][t] = dwd_row(c, ih + t * dh, &k[i][t], &lim[i][t]);
  }
  for (int64_t ow = 0; ow < OW; ow += 16) {
    const int64_t ic0 = ow * sw - pl;
    const uint64_t m = dwd_colmask(c, ic0);
    const int in = dwd_inside(c, ic0);
    __m512i a[2], q[2][3];
    #pragma GCC unroll 8
    for (int i = 0; i < R; i++)
      #pragma GCC unroll 8
      for (int t = 0; t < 3; t++)
        if (!(SHARE && i == 1 && t == 0)) /* SHARE: row 0 of pass 1 is row 2 of pass 0 (sh == 2 * dh) */
          q[i][t] = dwd_gather(c, r[i][t], ic0, (__mmask64)(m & k[i][t]), in && ic0 <= lim[i][t]);
    if (SHARE) q[1][0] = q[0][2];
    #pragma GCC unroll 8
    for (int i = 0; i < R; i++) {
      a[i] = _mm512_dpbusd_epi32(c->ct, q[i][0], w0);
      a[i] = _mm512_dpbusd_epi32(a[i], q[i][1], w1);
      a[i] = _mm512_dpbusd_epi32(a[i], q[i][2], w2);
    }
    #pragma GCC unroll 8
    for (int i = 0; i < R; i++) dwd_store(c, a[i], oh + i, ow);
  }
}

static void dwd_k3(const ei__q8dwd_job *j, const dwd_ctx *c, int64_t oh) {
  if (j->sh == 2 * j->dh)
    for (; oh + 2 <= j->OH; oh += 2) dwd_k3_rows(j, c, oh, 2, 1);
  else
    for (; oh + 2 <= j->OH; oh += 2) dwd_k3_rows(j, c, oh, 2, 0);
  if (oh < j->OH) dwd_k3_rows(j, c, oh, 1, 0);
}

/* 3 kernel rows, width stride 1, row stride and dilation 1: output rows oh .. oh + R - 1 (R <= 4) from input rows
 * ih .. ih + R + 1, each gathered once. */
Q8_INLINE void dwd_k3_s1_rows(const ei__q8dwd_job *j, const dwd_ctx *c, int64_t oh, const int R) {
  const __m512i w0 = dwd_w(j, 0), w1 = dwd_w(j, 1), w2 = dwd_w(j, 2);
  const int64_t OW = c->OW, pl = j->pl, ih = oh - j->pt;
  const uint8_t *r[6];
  uint64_t k[6];
  int64_t lim[6];
  #pragma GCC unroll 8
  for (int t = 0; t < R + 2; t++) r[t] = dwd_row(c, ih + t, &k[t], &lim[t]);
  for (int64_t ow = 0; ow < OW; ow += 16) {
    const int64_t ic0 = ow - pl;
    const uint64_t m = dwd_colmask(c, ic0);
    const int in = dwd_inside(c, ic0);
    __m512i a[4];
    #pragma GCC unroll 8
    for (int i = 0; i < R; i++) a[i] = c->ct;
    #pragma GCC unroll 8
    for (int t = 0; t < R + 2; t++) {
      const __m512i q = dwd_gather(c, r[t], ic0, (__mmask64)(m & k[t]), in && ic0 <= lim[t]);
      if (t < R) a[t] = _mm512_dpbusd_epi32(a[t], q, w0);
      if (t >= 1 && t - 1 < R) a[t - 1] = _mm512_dpbusd_epi32(a[t - 1], q, w1);
      if (t >= 2) a[t - 2] = _mm512_dpbusd_epi32(a[t - 2], q, w2);
    }
    #pragma GCC unroll 8
    for (int i = 0; i < R; i++) dwd_store(c, a[i], oh + i, ow);
  }
}

static void dwd_k3_s1(const ei__q8dwd_job *j, const dwd_ctx *c) {
  int64_t oh = 0;
  for (; oh + 2 <= j->OH; oh += 2) dwd_k3_s1_rows(j, c, oh, 2);
  for (; oh < j->OH; oh++) dwd_k3_s1_rows(j, c, oh, 1);
}

/* Any number of kernel rows. */
static void dwd_any(const ei__q8dwd_job *j, const dwd_ctx *c) {
  const int64_t OH = j->OH, OW = c->OW, KH = j->KH, sh = j->sh, sw = j->sw, dh = j->dh, pt = j->pt, pl = j->pl;
  for (int64_t oh = 0; oh < OH; oh++)
    for (int64_t ow = 0; ow < OW; ow += 16) {
      const int64_t ic0 = ow * sw - pl;
      const uint64_t m = dwd_colmask(c, ic0);
      const int in = dwd_inside(c, ic0);
      __m512i a = c->ct;
      for (int64_t kh = 0; kh < KH; kh++) {
        uint64_t rk;
        int64_t lim;
        const uint8_t *r = dwd_row(c, oh * sh - pt + kh * dh, &rk, &lim);
        a = _mm512_dpbusd_epi32(a, dwd_gather(c, r, ic0, (__mmask64)(m & rk), in && ic0 <= lim), dwd_w(j, kh));
      }
      dwd_store(c, a, oh, ow);
    }
}

static void dwd_plane(const ei__q8dwd_job *j, dwd_ctx *c) {
  if (j->KH == 3 && j->sw == 1 && j->sh == 1 && j->dh == 1)
    dwd_k3_s1(j, c);
  else if (j->KH == 3)
    dwd_k3(j, c, 0);
  else
    dwd_any(j, c);
}

void ei__q8dwd_avx512vnni(const ei__q8dwd_job *j) {
  const ei__q8_epi *e = j->e;
  dwd_ctx c;
  if (j->sw == 1) {
    c.pidx = _mm512_setr_epi32(0, 1, 2, 3, 1, 2, 3, 4, 2, 3, 4, 5, 3, 4, 5, 6);
    c.shuf = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 2, 3, 1, 2, 3, 4, 2, 3, 4, 5, 3, 4, 5, 6));
  } else {
    c.pidx = _mm512_setr_epi32(0, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7, 6, 7, 8, 9);
    c.shuf = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7, 6, 7, 8, 9));
  }
  c.fill = _mm512_set1_epi8((char)j->xz);
  c.flip = _mm512_set1_epi8((char)j->flip);
  c.zp = _mm512_set1_epi32(e->zp);
  c.flo = _mm512_set1_ps(e->flo);
  c.fhi = _mm512_set1_ps(e->fhi);
  c.H = j->H;
  c.W = j->W;
  c.OW = j->OW;
  c.nb = 15 * j->sw + 4;
  c.lb = j->sw == 1 ? 32 : 64;
  c.full = ((uint64_t)1 << c.nb) - 1;
  c.requant = e->mult != NULL;
  c.esize = e->mult ? 1 : 4;
  ei__q8dwd_job pj = *j; /* the plane being computed */
  const int64_t in_size = j->H * j->W, out_bytes = j->OH * j->OW * c.esize;
  for (int64_t i = 0; i < j->nplanes; i++) {
    pj.x = j->x + i * in_size;
    pj.w = j->w + 4 * j->KH * i;
    pj.y = (uint8_t *)j->y + i * out_bytes;
    c.x = pj.x;
    c.y = pj.y;
    c.ct = _mm512_set1_epi32(j->cterm[i]);
    c.mult = _mm512_set1_ps(c.requant ? j->mult[i] : 0.f);
    dwd_plane(&pj, &c);
  }
}
