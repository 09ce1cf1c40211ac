/* The portable driver of the SIMD integer GEMM with a constant B (QLinearMatMul, MatMulInteger, QGemm: fully-
 * connected layers): B packed at init for the micro-kernel of the kernel level chosen then (q8_kernels.h), A
 * staged per run in the kernel's representation, the epilogue constants, and (row blocks x column blocks) over
 * the thread pool. Bit-exact with the reference: the zero-point algebra of q8_kernels.h with columns for channels. */
#include <string.h>

#include "kernels/q8_kernels.h"
#include "quant/requant.h"

static int64_t bfmt_index(const ei__q8g_kernel *uk, int64_t k, int64_t c) {
  const int64_t NR = (int64_t)uk->lanes * uk->nv, L = uk->lanes;
  switch (uk->bfmt) {
    case EI_Q8W_DOT4: return ((k / 4) * NR + c) * 4 + k % 4;
    case EI_Q8W_MADD: return ((((k / 4) * uk->nv + c / L) * 2 + (k % 4) / 2) * L + c % L) * 2 + k % 2;
    default: return k * NR + c; /* EI_Q8W_MLAL */
  }
}

int ei__q8g_pack_b(const ei__q8g_kernel *uk, const void *B, ei_dtype bt, int64_t K, int64_t N, int64_t rs, int64_t cs,
                   ei__q8g_pack *p, int *nomem) {
  memset(p, 0, sizeof *p);
  *nomem = 0;
  if (!uk || !ei__q_is_8bit(bt) || K < 1 || N < 1 || K > ((int64_t)1 << 30) || N > ((int64_t)1 << 30)) return -1;
  const int64_t NR = (int64_t)uk->lanes * uk->nv, Kp = (K + uk->kpad - 1) / uk->kpad * uk->kpad;
  const int64_t nb = (N + NR - 1) / NR;
  const size_t eb = uk->bfmt == EI_Q8W_DOT4 ? 1 : 2;
  size_t block, total;
  if (!ei__mul_size((size_t)Kp * eb, (size_t)NR, &block) || !ei__mul_size(block, (size_t)nb, &total) ||
      total > ((size_t)1 << 34))
    return -1;
  const size_t sum_off = ei__align_up(total, EI_ALIGN);
  p->bytes = sum_off + ei__align_up((size_t)N * 4, EI_ALIGN);
  p->b = ei__malloc(p->bytes);
  if (!p->b) {
    *nomem = 1;
    return -1;
  }
  memset(p->b, 0, total);
  p->bsum = (int32_t *)((uint8_t *)p->b + sum_off);
  p->uk = uk;
  p->K = K;
  p->N = N;
  p->Kp = Kp;
  p->nb = nb;
  p->bflip = bt == EI_UINT8;
  p->block_bytes = block;
  const uint8_t *src = B;
  for (int64_t n = 0; n < N; n++) {
    uint8_t *blk = (uint8_t *)p->b + (size_t)(n / NR) * block;
    uint32_t sum = 0;
    for (int64_t k = 0; k < K; k++) {
      const uint8_t raw = src[k * rs + n * cs];
      const int32_t v = p->bflip ? (int32_t)raw - 128 : (int32_t)(int8_t)raw;
      const int64_t idx = bfmt_index(uk, k, n % NR);
      if (eb == 1)
        blk[idx] = (uint8_t)(int8_t)v;
      else
        ((int16_t *)blk)[idx] = (int16_t)v;
      sum += (uint32_t)v;
    }
    p->bsum[n] = ei__i32_wrap(sum);
  }
  return 0;
}

void ei__q8g_pack_free(ei__q8g_pack *p) {
  ei__free(p->b);
  p->b = NULL;
  p->bsum = NULL;
}

void ei__q8g_unpack_ref(const ei__q8g_pack *p, uint8_t *b, int32_t *bsum) {
  const int64_t NR = (int64_t)p->uk->lanes * p->uk->nv;
  for (int64_t n = 0; n < p->N; n++) {
    const uint8_t *blk = (const uint8_t *)p->b + (size_t)(n / NR) * p->block_bytes;
    uint32_t sum = 0;
    for (int64_t k = 0; k < p->K; k++) {
      const int64_t idx = bfmt_index(p->uk, k, n % NR);
      int32_t v = p->uk->bfmt == EI_Q8W_DOT4 ? (int32_t)(int8_t)blk[idx] : (int32_t)((const int16_t *)blk)[idx];
      v += p->bflip ? 128 : 0;
      b[n * p->K + k] = (uint8_t)v;
      sum += (uint32_t)v;
    }
    bsum[n] = ei__i32_wrap(sum);
  }
}

/* ---- run ---- */

typedef struct q8g_ws {
  size_t a, asum, cterm, bz, mult, total;
} q8g_ws;

static int q8g_layout(const ei__q8g_pack *p, int64_t M, q8g_ws *w) {
  size_t abytes;
  if (M < 0 || !ei__mul_size((size_t)M, (size_t)p->Kp * (p->uk->a16 ? 2 : 1), &abytes) || abytes > ((size_t)1 << 40))
    return -1;
  const size_t N = (size_t)p->N;
  size_t o = 0;
  w->a = o;
  o += ei__align_up(abytes + 64, EI_ALIGN);
  w->asum = o;
  o += ei__align_up((size_t)M * 4 + 4, EI_ALIGN);
  w->cterm = o;
  o += ei__align_up(N * 4, EI_ALIGN);
  w->bz = o;
  o += ei__align_up(N * 4, EI_ALIGN);
  w->mult = o;
  o += ei__align_up(N * 4, EI_ALIGN);
  w->total = o;
  return 0;
}

size_t ei__q8g_workspace(const ei__q8g_pack *p, int64_t M) {
  q8g_ws w;
  return p->uk && !q8g_layout(p, M, &w) ? w.total : 0;
}

typedef struct q8g_job {
  const ei__q8g_pack *p;
  const ei__q8g_qparams *qp;
  int64_t M, nrb;
  const uint8_t *a; /* staged */
  size_t aesize;
  const int32_t *asum, *cterm, *bz;
  const float *mult;
  float flo, fhi;
  uint8_t *y;
  size_t yesize;
} q8g_job;

static void q8g_task(void *arg, int64_t b, int64_t e) {
  const q8g_job *j = arg;
  const ei__q8g_pack *p = j->p;
  const ei__q8g_kernel *uk = p->uk;
  const ei__q8g_qparams *qp = j->qp;
  const int64_t NR = (int64_t)uk->lanes * uk->nv, N = p->N;
  ei__q8g_tile t;
  t.lda = p->Kp;
  t.kp = p->Kp;
  t.cterm = j->cterm;
  t.bz = j->bz;
  t.mult = j->mult;
  t.flo = j->flo;
  t.fhi = j->fhi;
  t.zp = qp->yz;
  t.ldy = N;
  t.ldc_m = qp->c_ms;
  t.cadd_percol = qp->c_ns != 0;
  for (int64_t task = b; task < e; task++) {
    const int64_t cb = task / j->nrb, rb = task % j->nrb, m0 = rb * uk->mr, n0 = cb * NR;
    t.a = j->a + (size_t)(m0 * p->Kp) * j->aesize;
    t.b = (const uint8_t *)p->b + (size_t)cb * p->block_bytes;
    t.mr = j->M - m0 < uk->mr ? (int)(j->M - m0) : uk->mr;
    t.n0 = n0;
    t.ncols = N - n0 < NR ? N - n0 : NR;
    t.nv = (int)((t.ncols + uk->lanes - 1) / uk->lanes);
    t.asum = j->asum ? j->asum + m0 : NULL;
    t.cadd = qp->c ? qp->c + m0 * qp->c_ms + n0 * qp->c_ns : NULL;
    t.y = j->y + (size_t)(m0 * N + n0) * j->yesize;
    uk->run(&t);
  }
}

void ei__q8g_run(const ei__q8g_pack *p, int64_t M, const void *a, const ei__q8g_qparams *qp, void *y, void *ws,
                 ei_threadpool *pool) {
  q8g_ws wl;
  if (!p->uk || q8g_layout(p, M, &wl) || M == 0) return;
  const ei__q8g_kernel *uk = p->uk;
  uint8_t *w8 = ws;
  const int64_t K = p->K, Kp = p->Kp, N = p->N;
  const int asg = uk->asigned;
  const int flip = asg ? qp->at == EI_UINT8 : qp->at == EI_INT8;
  const int32_t az_e = flip ? (asg ? qp->az - 128 : qp->az + 128) : qp->az;
  /* A in the kernel's representation, K padded with zeros */
  const uint8_t *src = a;
  uint8_t *a8 = w8 + wl.a;
  int16_t *a16 = (int16_t *)a8;
  int32_t *asum = (int32_t *)(w8 + wl.asum), *cterm = (int32_t *)(w8 + wl.cterm), *bz = (int32_t *)(w8 + wl.bz);
  float *mult = (float *)(w8 + wl.mult);
  for (int64_t m = 0; m < M; m++) {
    uint32_t s = 0;
    for (int64_t k = 0; k < K; k++) {
      const uint8_t v = (uint8_t)(src[m * K + k] ^ (flip ? 0x80 : 0));
      const int32_t e = asg ? (int32_t)(int8_t)v : (int32_t)v;
      if (uk->a16)
        a16[m * Kp + k] = (int16_t)e;
      else
        a8[m * Kp + k] = v;
      s += (uint32_t)e;
    }
    for (int64_t k = K; k < Kp; k++) {
      if (uk->a16)
        a16[m * Kp + k] = 0;
      else
        a8[m * Kp + k] = 0;
    }
    asum[m] = ei__i32_wrap(s);
  }
  int any_bz = 0;
  for (int64_t n = 0; n < N; n++) {
    const int32_t bzo = qp->bz_t ? (int32_t)ei__get_int(qp->bz_t, qp->nbz > 1 ? n : 0) : 0;
    bz[n] = bzo - (p->bflip ? 128 : 0);
    any_bz |= bz[n] != 0;
    cterm[n] = ei__i32_wrap((uint32_t)K * (uint32_t)az_e * (uint32_t)bz[n] - (uint32_t)az_e * (uint32_t)p->bsum[n]);
    if (!qp->out_int32) mult[n] = ei__requant_multiplier(qp->a_sc, qp->bs[qp->nbs > 1 ? n : 0], qp->ys);
  }
  q8g_job j;
  memset(&j, 0, sizeof j);
  j.p = p;
  j.qp = qp;
  j.M = M;
  j.nrb = (M + uk->mr - 1) / uk->mr;
  j.a = a8;
  j.aesize = uk->a16 ? 2 : 1;
  j.asum = any_bz ? asum : NULL;
  j.cterm = cterm;
  j.bz = any_bz ? bz : NULL;
  j.mult = qp->out_int32 ? NULL : mult;
  j.flo = (float)((int64_t)qp->lo - qp->yz);
  j.fhi = (float)((int64_t)qp->hi - qp->yz);
  j.y = y;
  j.yesize = qp->out_int32 ? 4 : 1;
  const int64_t per = (int64_t)uk->mr * uk->lanes * uk->nv * Kp;
  ei__parallel_for(pool, j.nrb * p->nb, per >= 65536 ? 1 : 65536 / (per + 1) + 1, q8g_task, &j);
}
