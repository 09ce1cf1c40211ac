/* The portable driver of the SIMD integer convolution (q8_kernels.h): weight packing for the micro-kernel of
 * the ISA level chosen at init, the staged input ("NC4HW4" with stride phases, padded with the zero point),
 * the k-quad offset table, the epilogue constants, and the tiling of (pixel tiles x channel blocks) over the
 * thread pool. Depthwise convolutions (group == C) use per-channel staged planes and a direct kernel. */
#include <string.h>

#include "kernels/q8_kernels.h"
#include "quant/requant.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#define Q8C_MAX_STRIDE 16
#define Q8C_MAX_STAGE ((int64_t)1 << 30) /* staged bytes per group (offsets stay int32) */

/* ---- packing ---- */

static size_t wfmt_elem_bytes(int fmt) { return fmt == EI_Q8W_DOT4 ? 1 : 2; }

/* Index (in elements of the format) of k position j (0..3) of quad kk for row i of a block. */
static inline int64_t wfmt_index(int fmt, int64_t MR, int64_t kk, int64_t i, int j) {
  switch (fmt) {
    case EI_Q8W_DOT4: return (kk * MR + i) * 4 + j;
    case EI_Q8W_MADD: return ((kk * MR + i) * 2 + (j & 1)) * 2 + (j >> 1);
    default: return (kk * 4 + j) * MR + i; /* EI_Q8W_MLAL */
  }
}

int ei__q8c_pack_weights(const ei__q8c_kernel *uk, const void *W, ei_dtype wtype, int wrank, const int64_t *wdims,
                         int64_t group, ei__q8c_pack *p, int *nomem) {
  memset(p, 0, sizeof *p);
  *nomem = 0;
  if (!uk || (wrank != 3 && wrank != 4) || !ei__q_is_8bit(wtype) || group < 1) return -1;
  for (int i = 0; i < wrank; i++)
    if (wdims[i] < 1 || wdims[i] > ((int64_t)1 << 24)) return -1;
  const int64_t M = wdims[0], Cg = wdims[1];
  const int64_t KH = wrank == 4 ? wdims[2] : 1, KW = wrank == 4 ? wdims[3] : wdims[2];
  if (M % group || KH * KW > 4096) return -1;
  const int64_t MR = uk->mr, Mg = M / group, kvol = KH * KW, Cq = (Cg + 3) / 4;
  const int64_t kq = Cq * kvol, nmb = (Mg + MR - 1) / MR;
  if (kq > ((int64_t)1 << 24)) return -1;
  const size_t eb = wfmt_elem_bytes(uk->wfmt);
  const size_t block = (size_t)kq * (size_t)MR * 4 * eb;
  size_t nblocks, total;
  if (!ei__mul_size((size_t)group, (size_t)nmb, &nblocks) || !ei__mul_size(nblocks, block, &total) ||
      total > ((size_t)1 << 34))
    return -1;
  const size_t wsum_off = ei__align_up(total, EI_ALIGN);
  p->w = ei__malloc(wsum_off + ei__align_up((size_t)M * sizeof(int32_t), EI_ALIGN));
  if (!p->w) {
    *nomem = 1;
    return -1;
  }
  memset(p->w, 0, total);
  p->wsum = (int32_t *)((uint8_t *)p->w + wsum_off);
  p->uk = uk;
  p->M = M;
  p->group = group;
  p->Mg = Mg;
  p->Cg = Cg;
  p->Cq = Cq;
  p->kvol = kvol;
  p->kq = kq;
  p->K = Cg * kvol;
  p->KH = KH;
  p->KW = KW;
  p->nmb = nmb;
  p->wflip = wtype == EI_UINT8;
  p->block_bytes = block;
  p->bytes = wsum_off + ei__align_up((size_t)M * sizeof(int32_t), EI_ALIGN);
  const uint8_t *src = W;
  for (int64_t m = 0; m < M; m++) {
    const int64_t g = m / Mg, mi = m % Mg, mb = mi / MR, i = mi % MR;
    uint8_t *blk = (uint8_t *)p->w + (size_t)(g * nmb + mb) * block;
    uint32_t sum = 0;
    for (int64_t c = 0; c < Cg; c++)
      for (int64_t t = 0; t < kvol; t++) {
        const uint8_t raw = src[(m * Cg + c) * kvol + t];
        const int32_t v = p->wflip ? (int32_t)raw - 128 : (int32_t)(int8_t)raw;
        const int64_t idx = wfmt_index(uk->wfmt, MR, (c / 4) * kvol + t, i, (int)(c % 4));
        if (eb == 1)
          blk[idx] = (uint8_t)(int8_t)v;
        else
          ((int16_t *)blk)[idx] = (int16_t)v;
        sum += (uint32_t)v;
      }
    p->wsum[m] = ei__i32_wrap(sum);
  }
  if (uk->dwd && Cg == 1 && group > 1 && KW <= 4) { /* direct depthwise: one weight quad per kernel row */
    p->dw4 = ei__malloc((size_t)(M * KH * 4));
    if (!p->dw4) {
      ei__q8c_pack_free(p);
      *nomem = 1;
      return -1;
    }
    for (int64_t m = 0; m < M; m++)
      for (int64_t kh = 0; kh < KH; kh++)
        for (int64_t kw = 0; kw < 4; kw++)
          p->dw4[(m * KH + kh) * 4 + kw] = (int8_t)(kw < KW ? ei__q8c_weight(p, m, 0, kh * KW + kw) : 0);
    p->bytes += (size_t)(M * KH * 4);
  }
  return 0;
}

void ei__q8c_pack_free(ei__q8c_pack *p) {
  ei__free(p->w);
  ei__free(p->dw4);
  ei__free(p->epi);
  p->w = NULL;
  p->wsum = NULL;
  p->dw4 = NULL;
  p->epi = NULL;
}

/* The activation zero point in the kernel's activation type (q8_kernels.h: flipped by 128 with the bytes). */
static int32_t xz_effective(const ei__q8c_pack *p, ei_dtype xt, int32_t xz) {
  const int xs = p->uk->xsigned;
  const int flip = xs ? xt == EI_UINT8 : xt == EI_INT8;
  return flip ? (xs ? xz - 128 : xz + 128) : xz;
}

/* Effective weight zero points, cterm (K*xz*wz - xz*wsum + bias, mod 2^32) and multipliers of every channel;
 * returns whether a weight zero point is not 0. */
static int epi_fill(const ei__q8c_pack *p, const ei__q8c_qparams *qp, int32_t xz_e, int out_int32, int32_t *cterm,
                    int32_t *wz, float *mult) {
  int any_wz = 0;
  for (int64_t m = 0; m < p->M; m++) {
    const int32_t wzo = qp->wz_t ? (int32_t)ei__get_int(qp->wz_t, qp->nwz > 1 ? m : 0) : 0;
    wz[m] = wzo - (p->wflip ? 128 : 0);
    any_wz |= wz[m] != 0;
    uint32_t ct = (uint32_t)p->K * (uint32_t)xz_e * (uint32_t)wz[m] - (uint32_t)xz_e * (uint32_t)p->wsum[m];
    if (qp->bias) ct += (uint32_t)qp->bias[m];
    cterm[m] = ei__i32_wrap(ct);
    if (!out_int32) mult[m] = ei__requant_multiplier(qp->xs, qp->ws[qp->nws > 1 ? m : 0], qp->ys);
  }
  return any_wz;
}

int ei__q8c_cache_epilogue(ei__q8c_pack *p, const ei__q8c_qparams *qp, ei_dtype xt, int out_int32) {
  ei__free(p->epi);
  p->epi = ei__malloc((size_t)p->M * 3 * sizeof(int32_t));
  if (!p->epi) return -1;
  int32_t *cterm = p->epi, *wz = p->epi + p->M;
  float *mult = (float *)(p->epi + 2 * p->M);
  if (out_int32) memset(mult, 0, (size_t)p->M * sizeof(float));
  p->epi_any_wz = epi_fill(p, qp, xz_effective(p, xt, qp->xz), out_int32, cterm, wz, mult);
  p->epi_xt = xt;
  p->epi_int32 = out_int32;
  p->bytes += (size_t)p->M * 3 * sizeof(int32_t);
  return 0;
}

int32_t ei__q8c_weight(const ei__q8c_pack *p, int64_t m, int64_t c, int64_t t) {
  const int64_t MR = p->uk->mr, g = m / p->Mg, mi = m % p->Mg, mb = mi / MR, i = mi % MR;
  const uint8_t *blk = (const uint8_t *)p->w + (size_t)(g * p->nmb + mb) * p->block_bytes;
  const int64_t idx = wfmt_index(p->uk->wfmt, MR, (c / 4) * p->kvol + t, i, (int)(c % 4));
  return p->uk->wfmt == EI_Q8W_DOT4 ? (int32_t)(int8_t)blk[idx] : (int32_t)((const int16_t *)blk)[idx];
}

void ei__q8c_unpack_ref(const ei__q8c_pack *p, uint8_t *w, int32_t *wsum) {
  for (int64_t m = 0; m < p->M; m++) {
    uint32_t sum = 0;
    for (int64_t c = 0; c < p->Cg; c++)
      for (int64_t t = 0; t < p->kvol; t++) {
        const int32_t v = ei__q8c_weight(p, m, c, t) + (p->wflip ? 128 : 0);
        w[m * p->K + t * p->Cg + c] = (uint8_t)v;
        sum += (uint32_t)v;
      }
    wsum[m] = ei__i32_wrap(sum);
  }
}

const char *ei__q8c_name(const ei__q8c_pack *p) {
  if (!p->uk) return "qlinearconv_ref";
  if (p->dw4) return p->uk->dwd_name; /* (a run with a nonzero weight zero point takes the staged dw kernel) */
  return p->Cg == 1 && p->group > 1 ? p->uk->dw_name : p->uk->name;
}

/* ---- geometry and workspace ---- */

typedef struct q8c_geo {
  int dw;                       /* depthwise path */
  int cl;                       /* channels-as-lanes tiles (small planes) */
  int64_t cl_np, cl_ntiles, cl_ncg; /* pixels per tile, pixel tiles, 64-channel groups */
  int64_t Hs, Ws, vend;         /* staged rows / columns per phase plane, virtual pixels */
  int nph, npw;                 /* phases used */
  int64_t phr[Q8C_MAX_STRIDE], phc[Q8C_MAX_STRIDE];     /* the used phases */
  int phri[Q8C_MAX_STRIDE], phci[Q8C_MAX_STRIDE];      /* phase -> index, -1 unused */
  /* per used column phase: staged columns [col_lo, col_hi) come from the input, starting at input column col_ic0 */
  int64_t col_lo[Q8C_MAX_STRIDE], col_hi[Q8C_MAX_STRIDE], col_ic0[Q8C_MAX_STRIDE];
  int64_t plane;                /* bytes per phase plane */
  int plain;                    /* 1x1, stride 1, no padding: planes are the interleaved input planes (Ws = W) */
  int direct;                   /* direct depthwise with the epilogue cached at init: no workspace at all */
  int64_t stage_unit;           /* bytes per group (conv) or per channel (dw) */
  int64_t NR, nvec, ntiles, ntap; /* pixels per full tile, vectors of virtual pixels, tiles */
  size_t off_stage, off_koff, off_xsum, off_cterm, off_wz, off_mult, off_dww, total;
} q8c_geo;

static int q8c_geometry(const ei__q8c_pack *p, const ei__q8c_problem *q, q8c_geo *g) {
  memset(g, 0, sizeof *g);
  if (!p->uk || q->KH != p->KH || q->KW != p->KW || q->group != p->group || q->M != p->M ||
      q->C != p->Cg * p->group)
    return -1;
  if (q->sh < 1 || q->sw < 1 || q->sh > Q8C_MAX_STRIDE || q->sw > Q8C_MAX_STRIDE || q->dh < 1 || q->dw < 1 ||
      q->OH < 1 || q->OW < 1 || q->H < 1 || q->W < 1 || q->N < 1)
    return -1;
  const int64_t lim = (int64_t)1 << 28;
  if (q->dh > lim || q->dw > lim || q->pt > lim || q->pl > lim || q->pt < 0 || q->pl < 0 || q->OH > lim ||
      q->OW > lim)
    return -1;
  g->dw = p->Cg == 1 && p->group > 1 && p->uk->dw;
  g->direct = g->dw && p->dw4 && q->sw <= 2 && q->dw == 1 && p->epi && !p->epi_any_wz && p->epi_xt == q->xt &&
              p->epi_int32 == q->out_int32;
  for (int i = 0; i < Q8C_MAX_STRIDE; i++) g->phri[i] = g->phci[i] = -1;
  for (int64_t k = 0; k < q->KH; k++) {
    const int64_t ph = (k * q->dh) % q->sh;
    if (g->phri[ph] < 0) {
      g->phri[ph] = g->nph;
      g->phr[g->nph++] = ph;
    }
  }
  for (int64_t k = 0; k < q->KW; k++) {
    const int64_t pw = (k * q->dw) % q->sw;
    if (g->phci[pw] < 0) {
      g->phci[pw] = g->npw;
      g->phc[g->npw++] = pw;
    }
  }
  g->Hs = q->OH + ((q->KH - 1) * q->dh) / q->sh;
  g->Ws = q->OW + ((q->KW - 1) * q->dw) / q->sw;
  if (g->Hs > lim || g->Ws > lim || g->Hs * g->Ws > lim) return -1;
  for (int i = 0; i < g->npw; i++) {
    const int64_t a = q->pl - g->phc[i]; /* staged column c reads input column c * sw - a */
    int64_t lo = a <= 0 ? 0 : (a + q->sw - 1) / q->sw, hi = q->W - 1 + a < 0 ? 0 : (q->W - 1 + a) / q->sw + 1;
    if (lo > g->Ws) lo = g->Ws;
    if (hi > g->Ws) hi = g->Ws;
    if (hi < lo) hi = lo;
    g->col_lo[i] = lo;
    g->col_hi[i] = hi;
    g->col_ic0[i] = lo * q->sw - a;
  }
  g->vend = q->OH * g->Ws;
  g->NR = (int64_t)p->uk->lanes * p->uk->nvmax;
  g->nvec = (g->vend + p->uk->lanes - 1) / p->uk->lanes;
  g->ntiles = (g->nvec + p->uk->nvmax - 1) / p->uk->nvmax;
  /* channels as lanes when pixel lanes would waste more than 10% (discarded columns, tails), the channels fill
   * 16-lane vectors and k is long enough to pay for the transposing epilogue */
  const int64_t P = q->OH * q->OW;
  if (!g->dw && p->uk->cl && p->uk->mr == 8 && p->uk->wfmt == EI_Q8W_DOT4 && p->Mg % 16 == 0 && p->kq >= 64 &&
      P * 10 < g->nvec * p->uk->lanes * 9) {
    g->cl = 1;
    g->cl_np = 6;
    for (int64_t np = 5; np >= 4; np--) /* fewest wasted pixel slots, the larger tile on ties */
      if ((P + np - 1) / np * np < (P + g->cl_np - 1) / g->cl_np * g->cl_np) g->cl_np = np;
    g->cl_ntiles = (P + g->cl_np - 1) / g->cl_np;
    g->cl_ncg = (p->Mg + 63) / 64;
  }
  const int64_t slack = 4 * g->NR + 1024;
  const int64_t esz = g->dw ? 1 : 4, units = g->dw ? q->C : 1, planes = (int64_t)g->nph * g->npw * (g->dw ? 1 : p->Cq);
  g->plane = g->Hs * g->Ws * esz;
  g->plain = !g->dw && q->KH == 1 && q->KW == 1 && q->sh == 1 && q->sw == 1 && q->pt == 0 && q->pl == 0 &&
             g->Hs == q->H && g->Ws == q->W;
  if (planes > lim || g->plane > Q8C_MAX_STAGE / planes) return -1;
  g->stage_unit = ei__align_up((size_t)(planes * g->plane + slack), EI_ALIGN);
  if (g->stage_unit > Q8C_MAX_STAGE || units > Q8C_MAX_STAGE / g->stage_unit) return -1;
  g->ntap = (p->kvol + 1) & ~(int64_t)1;
  if (g->direct) { /* the direct depthwise kernel with the cached epilogue: no workspace */
    g->total = EI_ALIGN;
    return 0;
  }
  const size_t M = (size_t)q->M;
  size_t o = 0;
  g->off_stage = o;
  o += (size_t)(units * g->stage_unit);
  g->off_koff = o;
  o += ei__align_up((size_t)(g->dw ? g->ntap : p->kq) * 4, EI_ALIGN);
  g->off_xsum = o;
  if (!g->dw) o += ei__align_up((size_t)(g->vend + g->NR) * 4, EI_ALIGN);
  g->off_cterm = o;
  o += ei__align_up(M * 4, EI_ALIGN);
  g->off_wz = o;
  o += ei__align_up(M * 4, EI_ALIGN);
  g->off_mult = o;
  o += ei__align_up(M * 4, EI_ALIGN);
  g->off_dww = o;
  if (g->dw) o += ei__align_up(M * (size_t)g->ntap * 2, EI_ALIGN);
  g->total = o;
  return 0;
}

size_t ei__q8c_workspace(const ei__q8c_pack *p, const ei__q8c_problem *q) {
  q8c_geo g;
  return q8c_geometry(p, q, &g) ? 0 : g.total;
}

/* ---- staging ---- */

typedef struct q8c_job {
  const ei__q8c_pack *p;
  const ei__q8c_problem *q;
  const q8c_geo *g;
  const uint8_t *x;     /* image n, group's channel 0 (conv) or image n (dw) */
  uint8_t *stage;
  const int32_t *koff;
  int32_t *xsum;        /* NULL unless needed */
  ei__q8_epi e;
  const int16_t *dww;   /* dw weights [M][ntap] */
  uint8_t *y;           /* image n, group's channel 0 plane */
  size_t esize;
  int64_t gi;           /* group */
  uint8_t flip, zb;     /* staging: byte ^ flip; padding byte */
  int wmajor;           /* GEMM tasks ordered by channel block, then pixel tile */
} q8c_job;

/* ---- row interleaving (baseline SIMD of the architecture: SSE2 / AdvSIMD) ----
 * A chunk of 16 (or 8) output quads from the 4 source rows (channels >= nreal are 0) at byte offset off: stride 1
 * reads bytes off..off+15; stride 2 reads off..off+31 and keeps the even bytes (odd = 0) or the odd ones (odd = 1,
 * used to end a row exactly at its last readable byte). */
#if defined(__SSE2__)
static inline __m128i ld_row(const uint8_t *p, int real, __m128i f) {
  return real ? _mm_xor_si128(_mm_loadu_si128((const __m128i *)p), f) : _mm_setzero_si128();
}
static inline __m128i ld_row8(const uint8_t *p, int real, __m128i f) {
  return real ? _mm_xor_si128(_mm_loadl_epi64((const __m128i *)p), f) : _mm_setzero_si128();
}
static inline __m128i ld_row_s2(const uint8_t *p, int real, __m128i f, int odd) {
  if (!real) return _mm_setzero_si128();
  const __m128i lo = _mm_set1_epi16(0xff);
  __m128i u = _mm_loadu_si128((const __m128i *)p), v = _mm_loadu_si128((const __m128i *)(p + 16));
  u = odd ? _mm_srli_epi16(u, 8) : _mm_and_si128(u, lo);
  v = odd ? _mm_srli_epi16(v, 8) : _mm_and_si128(v, lo);
  return _mm_xor_si128(_mm_packus_epi16(u, v), f);
}
static inline __m128i ld_row8_s2(const uint8_t *p, int real, __m128i f, int odd) {
  if (!real) return _mm_setzero_si128();
  __m128i u = _mm_loadu_si128((const __m128i *)p);
  u = odd ? _mm_srli_epi16(u, 8) : _mm_and_si128(u, _mm_set1_epi16(0xff));
  return _mm_xor_si128(_mm_packus_epi16(u, u), f);
}
static inline void st_quads16(uint8_t *d, __m128i r0, __m128i r1, __m128i r2, __m128i r3) {
  const __m128i a0 = _mm_unpacklo_epi8(r0, r1), a1 = _mm_unpackhi_epi8(r0, r1);
  const __m128i b0 = _mm_unpacklo_epi8(r2, r3), b1 = _mm_unpackhi_epi8(r2, r3);
  _mm_storeu_si128((__m128i *)d, _mm_unpacklo_epi16(a0, b0));
  _mm_storeu_si128((__m128i *)(d + 16), _mm_unpackhi_epi16(a0, b0));
  _mm_storeu_si128((__m128i *)(d + 32), _mm_unpacklo_epi16(a1, b1));
  _mm_storeu_si128((__m128i *)(d + 48), _mm_unpackhi_epi16(a1, b1));
}
static inline void st_quads8(uint8_t *d, __m128i r0, __m128i r1, __m128i r2, __m128i r3) {
  const __m128i a0 = _mm_unpacklo_epi8(r0, r1), b0 = _mm_unpacklo_epi8(r2, r3);
  _mm_storeu_si128((__m128i *)d, _mm_unpacklo_epi16(a0, b0));
  _mm_storeu_si128((__m128i *)(d + 16), _mm_unpackhi_epi16(a0, b0));
}
/* 16 quads (w = 16) or 8 quads (w = 8) at source offset off. */
static inline void chunk(uint8_t *d, const uint8_t *const *s, int nreal, int64_t off, int sw, int odd, int w,
                         uint8_t flip) {
  const __m128i f = _mm_set1_epi8((char)flip);
  __m128i r[4];
  for (int c = 0; c < 4; c++) {
    const uint8_t *p = s[c] + off;
    if (sw == 1)
      r[c] = w == 16 ? ld_row(p, c < nreal, f) : ld_row8(p, c < nreal, f);
    else
      r[c] = w == 16 ? ld_row_s2(p, c < nreal, f, odd) : ld_row8_s2(p, c < nreal, f, odd);
  }
  if (w == 16)
    st_quads16(d, r[0], r[1], r[2], r[3]);
  else
    st_quads8(d, r[0], r[1], r[2], r[3]);
}
#define Q8_HAVE_CHUNK 1
#elif defined(__aarch64__)
static inline void chunk(uint8_t *d, const uint8_t *const *s, int nreal, int64_t off, int sw, int odd, int w,
                         uint8_t flip) {
  if (w == 16) {
    const uint8x16_t f = vdupq_n_u8(flip);
    uint8x16x4_t v;
    for (int c = 0; c < 4; c++) {
      if (c >= nreal)
        v.val[c] = vdupq_n_u8(0);
      else if (sw == 1)
        v.val[c] = veorq_u8(vld1q_u8(s[c] + off), f);
      else
        v.val[c] = veorq_u8(odd ? vld2q_u8(s[c] + off).val[1] : vld2q_u8(s[c] + off).val[0], f);
    }
    vst4q_u8(d, v);
  } else {
    const uint8x8_t f = vdup_n_u8(flip);
    uint8x8x4_t v;
    for (int c = 0; c < 4; c++) {
      if (c >= nreal)
        v.val[c] = vdup_n_u8(0);
      else if (sw == 1)
        v.val[c] = veor_u8(vld1_u8(s[c] + off), f);
      else
        v.val[c] = veor_u8(odd ? vld2_u8(s[c] + off).val[1] : vld2_u8(s[c] + off).val[0], f);
    }
    vst4_u8(d, v);
  }
}
#define Q8_HAVE_CHUNK 1
#endif

/* Interleaves n columns (source column stride sw) of 4 rows into quads (4 * n bytes), xor flip; channels >= nreal
 * are 0. avail: bytes readable from each s[c] (>= (n - 1) * sw + 1). */
static void interleave4(uint8_t *d, const uint8_t *const *s, int nreal, int64_t n, int64_t sw, int64_t avail,
                        uint8_t flip) {
  int64_t i = 0;
#if defined(Q8_HAVE_CHUNK)
  if (sw <= 2) {
    const int w = n >= 16 ? 16 : 8; /* chunk width; the last chunk overlaps the previous one */
    const int64_t span = (int64_t)w * sw; /* bytes a chunk reads */
    if (n >= w) {
      for (; i + w <= n && i * sw + span <= avail; i += w) chunk(d + 4 * i, s, nreal, i * sw, (int)sw, 0, w, flip);
      if (i < n) {
        const int64_t i0 = n - w;
        if (i0 * sw + span <= avail) {
          chunk(d + 4 * i0, s, nreal, i0 * sw, (int)sw, 0, w, flip);
          i = n;
        } else if (sw == 2 && i0 >= 1) { /* read one byte earlier and keep the odd bytes */
          chunk(d + 4 * i0, s, nreal, 2 * i0 - 1, 2, 1, w, flip);
          i = n;
        }
      }
    }
  }
#endif
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  if (nreal == 4) {
    const uint8_t *s0 = s[0], *s1 = s[1], *s2 = s[2], *s3 = s[3];
    for (; i < n; i++) {
      const int64_t o = i * sw;
      const uint32_t v = (uint32_t)s0[o] | (uint32_t)s1[o] << 8 | (uint32_t)s2[o] << 16 | (uint32_t)s3[o] << 24;
      const uint32_t f = flip * 0x01010101u, q = v ^ f;
      memcpy(d + 4 * i, &q, 4); /* little-endian: byte c of the quad is channel c */
    }
  }
#endif
  for (; i < n; i++)
    for (int c = 0; c < 4; c++) d[4 * i + c] = c < nreal ? (uint8_t)(s[c][i * sw] ^ flip) : 0;
}

/* Copies n columns (stride sw) of a row, xor flip (the depthwise planes). avail as above. */
static void copy_row(uint8_t *d, const uint8_t *s, int64_t n, int64_t sw, int64_t avail, uint8_t flip) {
  int64_t i = 0;
#if defined(__SSE2__)
  const __m128i f = _mm_set1_epi8((char)flip);
  if (sw == 1 && n >= 16) {
    for (; i + 16 <= n; i += 16)
      _mm_storeu_si128((__m128i *)(d + i), _mm_xor_si128(_mm_loadu_si128((const __m128i *)(s + i)), f));
    if (i < n) {
      i = n - 16;
      _mm_storeu_si128((__m128i *)(d + i), _mm_xor_si128(_mm_loadu_si128((const __m128i *)(s + i)), f));
      i = n;
    }
  } else if (sw == 2 && n >= 16) {
    for (; i + 16 <= n && 2 * i + 32 <= avail; i += 16) _mm_storeu_si128((__m128i *)(d + i), ld_row_s2(s + 2 * i, 1, f, 0));
    if (i < n) {
      const int64_t i0 = n - 16;
      if (2 * i0 + 32 <= avail) {
        _mm_storeu_si128((__m128i *)(d + i0), ld_row_s2(s + 2 * i0, 1, f, 0));
        i = n;
      } else if (i0 >= 1) {
        _mm_storeu_si128((__m128i *)(d + i0), ld_row_s2(s + 2 * i0 - 1, 1, f, 1));
        i = n;
      }
    }
  }
#elif defined(__aarch64__)
  const uint8x16_t f = vdupq_n_u8(flip);
  if (sw == 1 && n >= 16) {
    for (; i + 16 <= n; i += 16) vst1q_u8(d + i, veorq_u8(vld1q_u8(s + i), f));
    if (i < n) {
      i = n - 16;
      vst1q_u8(d + i, veorq_u8(vld1q_u8(s + i), f));
      i = n;
    }
  } else if (sw == 2 && n >= 16) {
    for (; i + 16 <= n && 2 * i + 32 <= avail; i += 16) vst1q_u8(d + i, veorq_u8(vld2q_u8(s + 2 * i).val[0], f));
    if (i < n) {
      const int64_t i0 = n - 16;
      if (2 * i0 + 32 <= avail) {
        vst1q_u8(d + i0, veorq_u8(vld2q_u8(s + 2 * i0).val[0], f));
        i = n;
      } else if (i0 >= 1) {
        vst1q_u8(d + i0, veorq_u8(vld2q_u8(s + 2 * i0 - 1).val[1], f));
        i = n;
      }
    }
  }
#endif
  for (; i < n; i++) d[i] = (uint8_t)(s[i * sw] ^ flip);
}

/* Fills n quads with q. */
static void fill_quads(uint8_t *d, const uint8_t q[4], int64_t n) {
  uint32_t v;
  memcpy(&v, q, 4);
  for (int64_t i = 0; i < n; i++) memcpy(d + 4 * i, &v, 4);
}

/* Staged rows [b, e) of the conv planes: row index = plane * Hs + r, plane = (cq * nph + iph) * npw + ipw. The
 * indices advance by increments (no divisions per row); the columns inside the input are per column phase. */
static void stage_conv_task(void *arg, int64_t b, int64_t e) {
  const q8c_job *j = arg;
  const ei__q8c_problem *q = j->q;
  const q8c_geo *g = j->g;
  const int64_t Cg = j->p->Cg, HW = q->H * q->W, npl = (int64_t)g->nph * g->npw;
  int64_t r = b % g->Hs, pidx = b / g->Hs, cq = pidx / npl, iph = (pidx / g->npw) % g->nph, ipw = pidx % g->npw;
  uint8_t *d = j->stage + pidx * g->plane + r * g->Ws * 4;
  for (int64_t ri = b; ri < e; ri++) {
    const int nreal = Cg - 4 * cq < 4 ? (int)(Cg - 4 * cq) : 4;
    uint8_t zq[4];
    for (int c = 0; c < 4; c++) zq[c] = c < nreal ? j->zb : 0;
    const int64_t ir = r * q->sh + g->phr[iph] - q->pt;
    const int64_t c_lo = ir >= 0 && ir < q->H ? g->col_lo[ipw] : g->Ws, c_hi = c_lo < g->Ws ? g->col_hi[ipw] : g->Ws;
    fill_quads(d, zq, c_lo);
    if (c_hi > c_lo) {
      const uint8_t *src[4];
      const int64_t ic0 = g->col_ic0[ipw];
      for (int c = 0; c < 4; c++) src[c] = j->x + (4 * cq + (c < nreal ? c : 0)) * HW + ir * q->W + ic0;
      interleave4(d + 4 * c_lo, src, nreal, c_hi - c_lo, q->sw, q->W - ic0, j->flip);
    }
    fill_quads(d + 4 * c_hi, zq, g->Ws - c_hi);
    d += g->Ws * 4;
    if (++r == g->Hs) { /* next plane: planes are contiguous */
      r = 0;
      if (++ipw == g->npw) {
        ipw = 0;
        if (++iph == g->nph) {
          iph = 0;
          cq++;
        }
      }
    }
  }
}

/* 1x1 convs with stride 1 and no padding: a staged plane is its 4 input planes interleaved byte by byte, rows
 * included (Ws = W), so whole runs of a plane are interleaved at once (no per-row work). */
#define Q8C_PLANE_CHUNK 8192

static void interleave_run(uint8_t *d, const uint8_t *const *s, int nreal, int64_t n, uint8_t flip) {
  int64_t i = 0;
#if defined(__SSE2__)
  const __m128i f = _mm_set1_epi8((char)flip), z = _mm_setzero_si128();
  if (nreal == 4)
    for (; i + 16 <= n; i += 16)
      st_quads16(d + 4 * i, _mm_xor_si128(_mm_loadu_si128((const __m128i *)(s[0] + i)), f),
                 _mm_xor_si128(_mm_loadu_si128((const __m128i *)(s[1] + i)), f),
                 _mm_xor_si128(_mm_loadu_si128((const __m128i *)(s[2] + i)), f),
                 _mm_xor_si128(_mm_loadu_si128((const __m128i *)(s[3] + i)), f));
  else
    for (; i + 16 <= n; i += 16) {
      __m128i r[4];
      for (int c = 0; c < 4; c++) r[c] = c < nreal ? _mm_xor_si128(_mm_loadu_si128((const __m128i *)(s[c] + i)), f) : z;
      st_quads16(d + 4 * i, r[0], r[1], r[2], r[3]);
    }
#elif defined(__aarch64__)
  const uint8x16_t f = vdupq_n_u8(flip), z = vdupq_n_u8(0);
  for (; i + 16 <= n; i += 16) {
    uint8x16x4_t v;
    for (int c = 0; c < 4; c++) v.val[c] = c < nreal ? veorq_u8(vld1q_u8(s[c] + i), f) : z;
    vst4q_u8(d + 4 * i, v); /* stores the 4 registers interleaved: the quads */
  }
#endif
  for (; i < n; i++)
    for (int c = 0; c < 4; c++) d[4 * i + c] = c < nreal ? (uint8_t)(s[c][i] ^ flip) : 0;
}

/* Units [b, e) = (channel quad, run of Q8C_PLANE_CHUNK pixels). */
static void stage_plane_task(void *arg, int64_t b, int64_t e) {
  const q8c_job *j = arg;
  const int64_t HW = j->q->H * j->q->W, nch = (HW + Q8C_PLANE_CHUNK - 1) / Q8C_PLANE_CHUNK, Cg = j->p->Cg;
  for (int64_t t = b; t < e; t++) {
    const int64_t cq = t / nch, i0 = (t % nch) * Q8C_PLANE_CHUNK;
    const int64_t n = HW - i0 < Q8C_PLANE_CHUNK ? HW - i0 : Q8C_PLANE_CHUNK;
    const int nreal = Cg - 4 * cq < 4 ? (int)(Cg - 4 * cq) : 4;
    const uint8_t *src[4];
    for (int c = 0; c < 4; c++) src[c] = j->x + (4 * cq + (c < nreal ? c : nreal - 1)) * HW + i0;
    interleave_run(j->stage + cq * j->g->plane + 4 * i0, src, nreal, n, j->flip);
  }
}

/* Per-pixel sums of the real staged activations (only when a weight zero point is not 0). */
static void xsum_task(void *arg, int64_t b, int64_t e) {
  const q8c_job *j = arg;
  const ei__q8c_pack *p = j->p;
  const int xs = p->uk->xsigned;
  for (int64_t v = b; v < e; v++) {
    uint32_t s = 0;
    for (int64_t kk = 0; kk < p->kq; kk++) {
      const int64_t cq = kk / p->kvol, nreal = p->Cg - 4 * cq < 4 ? p->Cg - 4 * cq : 4;
      const uint8_t *src = j->stage + j->koff[kk] + 4 * v;
      for (int64_t c = 0; c < nreal; c++) s += xs ? (uint32_t)(int32_t)(int8_t)src[c] : (uint32_t)src[c];
    }
    j->xsum[v] = ei__i32_wrap(s);
  }
}

/* ---- the GEMM tiles ---- */

static void gemm_task(void *arg, int64_t b, int64_t e) {
  const q8c_job *j = arg;
  const ei__q8c_pack *p = j->p;
  const q8c_geo *g = j->g;
  const ei__q8c_kernel *uk = p->uk;
  const int64_t out_size = j->q->OH * j->q->OW;
  ei__q8_segs sg;
  ei__q8c_tile t;
  t.koff = j->koff;
  t.kq = p->kq;
  t.e = &j->e;
  t.sg = &sg;
  t.ystride = out_size;
  int64_t cur = -1;
  for (int64_t task = b; task < e; task++) {
    /* channel blocks inner (the staged tile stays in L1) unless the weights outweigh the staged input (small
     * planes, many channels): then pixel tiles inner, so every weight block is read once */
    const int64_t tile = j->wmajor ? task % g->ntiles : task / p->nmb, mb = j->wmajor ? task / g->ntiles : task % p->nmb;
    if (tile != cur) {
      /* the tiles share the vectors evenly: ceil(nvec / ntiles) or one less each */
      const int64_t vb = tile * g->nvec / g->ntiles, ve = (tile + 1) * g->nvec / g->ntiles, v0 = vb * uk->lanes;
      cur = tile;
      t.nv = (int)(ve - vb);
      for (int v = 0; v < t.nv; v++) {
        sg.nseg[v] = ei__q8_segments(v0 + (int64_t)v * uk->lanes, uk->lanes, g->Ws, j->q->OW, g->vend, sg.seg[v]);
        sg.full[v] = sg.nseg[v] == 1 && sg.seg[v][0].n == uk->lanes;
      }
      t.x = j->stage + 4 * v0;
      t.xsum = j->xsum ? j->xsum + v0 : NULL;
    }
    t.w = (const uint8_t *)p->w + (size_t)(j->gi * p->nmb + mb) * p->block_bytes;
    t.m0 = j->gi * p->Mg + mb * uk->mr;
    t.mr = p->Mg - mb * uk->mr < uk->mr ? (int)(p->Mg - mb * uk->mr) : uk->mr;
    t.y = j->y + (size_t)(mb * uk->mr * out_size) * j->esize;
    uk->run(&t);
  }
}

/* Channels-as-lanes tasks: (64-channel group, pixel tile), the channel group outer (weights read once). */
static void cl_task(void *arg, int64_t b, int64_t e) {
  const q8c_job *j = arg;
  const ei__q8c_pack *p = j->p;
  const q8c_geo *g = j->g;
  const int64_t OW = j->q->OW, out_size = j->q->OH * OW, P = out_size;
  ei__q8c_cltile t;
  t.koff = j->koff;
  t.kq = p->kq;
  t.block_bytes = p->block_bytes;
  t.e = &j->e;
  t.ystride = out_size;
  for (int64_t task = b; task < e; task++) {
    const int64_t cg = task / g->cl_ntiles, tile = task % g->cl_ntiles, p0 = tile * g->cl_np;
    t.np = (int)(P - p0 < g->cl_np ? P - p0 : g->cl_np);
    t.nc = (int)((p->Mg - cg * 64) / 16 < 4 ? (p->Mg - cg * 64) / 16 : 4);
    for (int i = 0; i < t.np; i++) {
      const int64_t pix = p0 + i, v = pix / OW * g->Ws + pix % OW;
      t.xp[i] = j->stage + 4 * v;
      t.xsum[i] = j->xsum ? j->xsum[v] : 0;
    }
    t.w = (const uint8_t *)p->w + (size_t)(j->gi * p->nmb + cg * 8) * p->block_bytes;
    t.m0 = j->gi * p->Mg + cg * 64;
    t.y = j->y + (size_t)(cg * 64 * out_size + p0) * j->esize;
    p->uk->cl(&t);
  }
}

/* ---- depthwise ---- */

/* Input channels [b, e): stage the channel's planes, then every output channel it feeds. */
static void dw_task(void *arg, int64_t b, int64_t e) {
  const q8c_job *j = arg;
  const ei__q8c_problem *q = j->q;
  const q8c_geo *g = j->g;
  const int64_t HW = q->H * q->W, Mg = j->p->Mg, out_size = q->OH * q->OW;
  for (int64_t c = b; c < e; c++) {
    uint8_t *st = j->stage + c * g->stage_unit;
    for (int64_t pidx = 0; pidx < (int64_t)g->nph * g->npw; pidx++) {
      const int64_t ph = g->phr[pidx / g->npw], pw = g->phc[pidx % g->npw];
      for (int64_t r = 0; r < g->Hs; r++) {
        uint8_t *d = st + pidx * g->plane + r * g->Ws;
        const int64_t ir = r * q->sh + ph - q->pt;
        if (ir < 0 || ir >= q->H) {
          memset(d, j->zb, (size_t)g->Ws);
          continue;
        }
        const uint8_t *srow = j->x + c * HW + ir * q->W;
        const int64_t a = q->pl - pw; /* ic = col * sw - a */
        int64_t c_lo = a <= 0 ? 0 : (a + q->sw - 1) / q->sw, c_hi = q->W - 1 + a < 0 ? 0 : (q->W - 1 + a) / q->sw + 1;
        if (c_lo > g->Ws) c_lo = g->Ws;
        if (c_hi > g->Ws) c_hi = g->Ws;
        if (c_hi < c_lo) c_hi = c_lo;
        memset(d, j->zb, (size_t)c_lo);
        if (c_hi > c_lo) {
          const int64_t ic0 = c_lo * q->sw - a;
          copy_row(d + c_lo, srow + ic0, c_hi - c_lo, q->sw, q->W - ic0, j->flip);
        }
        memset(d + c_hi, j->zb, (size_t)(g->Ws - c_hi));
      }
    }
    ei__q8dw_job dj;
    dj.x = st;
    dj.toff = j->koff;
    dj.ntap = g->ntap;
    dj.e = &j->e;
    dj.oh0 = 0;
    dj.oh1 = q->OH;
    dj.ws = g->Ws;
    dj.ow = q->OW;
    for (int64_t i = 0; i < Mg; i++) {
      const int64_t m = c * Mg + i;
      dj.w = j->dww + m * g->ntap;
      dj.cterm = j->e.cterm[m];
      dj.mult = j->e.mult ? j->e.mult[m] : 0.f;
      dj.y = j->y + (size_t)(m * out_size) * j->esize;
      j->p->uk->dw(&dj);
    }
  }
}

/* ---- direct depthwise ---- */

typedef struct dwd_run {
  const ei__q8c_pack *p;
  const ei__q8c_problem *q;
  const ei__q8_epi *e;
  const uint8_t *x;
  uint8_t *y;
  size_t esize;
  uint8_t xz, flip;
} dwd_run;

/* Output planes [b, e) of all images: plane t = n * M + m. */
static void dwd_task(void *arg, int64_t b, int64_t e) {
  const dwd_run *r = arg;
  const ei__q8c_problem *q = r->q;
  const int64_t HW = q->H * q->W, out_size = q->OH * q->OW, Mg = r->p->Mg;
  ei__q8dwd_job dj;
  dj.H = q->H, dj.W = q->W, dj.OH = q->OH, dj.OW = q->OW;
  dj.sh = q->sh, dj.sw = q->sw, dj.dh = q->dh, dj.pt = q->pt, dj.pl = q->pl, dj.KH = q->KH;
  dj.e = r->e;
  dj.xz = r->xz;
  dj.flip = r->flip;
  for (int64_t t = b; t < e;) {
    const int64_t n = t / q->M, m = t % q->M;
    /* one call for the planes of image n in [b, e) (one at a time with a channel multiplier) */
    dj.nplanes = Mg > 1 ? 1 : (e - t < q->M - m ? e - t : q->M - m);
    dj.x = r->x + (size_t)((n * q->C + m / Mg) * HW);
    dj.w = r->p->dw4 + m * q->KH * 4;
    dj.cterm = r->e->cterm + m;
    dj.mult = r->e->mult ? r->e->mult + m : NULL;
    dj.y = r->y + (size_t)(t * out_size) * r->esize;
    r->p->uk->dwd(&dj);
    t += dj.nplanes;
  }
}

/* ---- run ---- */

void ei__q8c_run(const ei__q8c_pack *p, const ei__q8c_problem *q, const ei__q8c_qparams *qp, const void *x, void *y,
                 void *ws, ei_threadpool *pool) {
  q8c_geo g;
  if (q8c_geometry(p, q, &g)) return; /* the caller checked ei__q8c_workspace */
  uint8_t *w8 = ws;
  q8c_job j;
  memset(&j, 0, sizeof j);
  j.p = p;
  j.q = q;
  j.g = &g;
  j.stage = w8 + g.off_stage;
  int32_t *koff = (int32_t *)(w8 + g.off_koff), *cterm = (int32_t *)(w8 + g.off_cterm),
          *wz = (int32_t *)(w8 + g.off_wz);
  float *mult = (float *)(w8 + g.off_mult);
  j.koff = koff;
  j.esize = q->out_int32 ? 4 : 1;
  /* activation and weight representations (q8_kernels.h) */
  const int xs = p->uk->xsigned;
  const int flip = xs ? q->xt == EI_UINT8 : q->xt == EI_INT8;
  const int32_t xz_e = xz_effective(p, q->xt, qp->xz);
  j.flip = flip ? 0x80 : 0;
  j.zb = (uint8_t)((uint8_t)qp->xz ^ j.flip);
  int any_wz;
  if (p->epi && p->epi_xt == q->xt && p->epi_int32 == q->out_int32) { /* constant quantization inputs */
    cterm = p->epi;
    wz = p->epi + q->M;
    mult = (float *)(p->epi + 2 * q->M);
    any_wz = p->epi_any_wz;
  } else {
    any_wz = epi_fill(p, qp, xz_e, q->out_int32, cterm, wz, mult);
  }
  j.e.cterm = cterm;
  j.e.wz = any_wz && !g.dw ? wz : NULL;
  j.e.mult = q->out_int32 ? NULL : mult;
  j.e.flo = (float)((int64_t)qp->lo - qp->yz);
  j.e.fhi = (float)((int64_t)qp->hi - qp->yz);
  j.e.zp = qp->yz;
  const int64_t HW = q->H * q->W, out_size = q->OH * q->OW;
  if (g.dw && p->dw4 && !any_wz && q->sw <= 2 && q->dw == 1) {
    dwd_run r = {p, q, &j.e, x, y, j.esize, (uint8_t)qp->xz, j.flip};
    const int64_t per = q->OH * ((q->OW + 15) / 16) * 16 * q->KH + 1;
    ei__parallel_for(pool, q->N * q->M, per >= 32768 ? 1 : 32768 / per + 1, dwd_task, &r);
    return;
  }
  if (g.dw) {
    for (int64_t t = 0; t < p->kvol; t++) {
      const int64_t a = (t / q->KW) * q->dh, b = (t % q->KW) * q->dw;
      koff[t] = (int32_t)((g.phri[a % q->sh] * g.npw + g.phci[b % q->sw]) * g.plane + (a / q->sh) * g.Ws + b / q->sw);
    }
    if (g.ntap > p->kvol) koff[p->kvol] = 0;
    int16_t *dww = (int16_t *)(w8 + g.off_dww);
    for (int64_t m = 0; m < q->M; m++) {
      for (int64_t t = 0; t < p->kvol; t++) dww[m * g.ntap + t] = (int16_t)(ei__q8c_weight(p, m, 0, t) - wz[m]);
      if (g.ntap > p->kvol) dww[m * g.ntap + p->kvol] = 0;
    }
    j.dww = dww;
    for (int64_t n = 0; n < q->N; n++) {
      j.x = (const uint8_t *)x + (size_t)(n * q->C * HW);
      j.y = (uint8_t *)y + (size_t)(n * q->M * out_size) * j.esize;
      const int64_t per = g.plane * g.nph * g.npw + p->Mg * g.vend * g.ntap;
      ei__parallel_for(pool, q->C, per >= 65536 ? 1 : 65536 / (per + 1) + 1, dw_task, &j);
    }
    return;
  }
  const int64_t npl = (int64_t)g.nph * g.npw;
  for (int64_t cq = 0; cq < p->Cq; cq++)
    for (int64_t kh = 0; kh < q->KH; kh++)
      for (int64_t kw = 0; kw < q->KW; kw++) {
        const int64_t a = kh * q->dh, b = kw * q->dw;
        const int64_t pidx = cq * npl + g.phri[a % q->sh] * g.npw + g.phci[b % q->sw];
        koff[(cq * q->KH + kh) * q->KW + kw] = (int32_t)(pidx * g.plane + ((a / q->sh) * g.Ws + b / q->sw) * 4);
      }
  /* the slack after the planes is read by the last tile's discarded lanes: keep it defined */
  const int64_t planes_bytes = p->Cq * npl * g.plane;
  memset(j.stage + planes_bytes, 0, (size_t)(g.stage_unit - planes_bytes));
  if (j.e.wz) j.xsum = (int32_t *)(w8 + g.off_xsum);
  const int64_t stage_rows = p->Cq * npl * g.Hs;
  const int64_t nchunk = (HW + Q8C_PLANE_CHUNK - 1) / Q8C_PLANE_CHUNK;
  j.wmajor = (int64_t)(p->nmb * p->block_bytes) > planes_bytes;
  const int64_t row_min = 16384 / (g.Ws * 4 + 1) + 1;
  const int64_t per_task = (int64_t)p->uk->mr * g.NR * p->kq * 4;
  const int64_t task_min = per_task >= 65536 ? 1 : 65536 / (per_task + 1) + 1;
  for (int64_t n = 0; n < q->N; n++)
    for (j.gi = 0; j.gi < q->group; j.gi++) {
      j.x = (const uint8_t *)x + (size_t)((n * q->C + j.gi * p->Cg) * HW);
      j.y = (uint8_t *)y + (size_t)((n * q->M + j.gi * p->Mg) * out_size) * j.esize;
      if (g.plain)
        ei__parallel_for(pool, p->Cq * nchunk, 1, stage_plane_task, &j);
      else
        ei__parallel_for(pool, stage_rows, row_min, stage_conv_task, &j);
      if (j.xsum) {
        ei__parallel_for(pool, g.vend, 256, xsum_task, &j);
        memset(j.xsum + g.vend, 0, (size_t)g.NR * 4);
      }
      if (g.cl)
        ei__parallel_for(pool, g.cl_ncg * g.cl_ntiles, task_min, cl_task, &j);
      else
        ei__parallel_for(pool, g.ntiles * p->nmb, task_min, gemm_task, &j);
    }
}
