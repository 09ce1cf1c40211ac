/* Float32 GEMM (see f32_gemm.h): kernel choice by ISA level, packing of A/B, the portable micro-kernel
 * (f32_gemm_6x16_vec: GCC vector extensions, the fallback for EI_ISA=ref and unknown CPUs), K/M/N cache
 * blocking, the split of the block grid over the thread pool, and the scalar reference. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif
#include "kernels/f32_gemm.h"

#define PANEL EI_F32_GEMM_PANEL

void ei__f32_gemm_args_init(ei__f32_gemm_args *g) {
  memset(g, 0, sizeof *g);
  g->alpha = 1.f;
}

const ei__f32_gemm_ukernel *ei__f32_gemm_ukernel_get(ei__isa isa) {
#if defined(__x86_64__)
  if (isa == EI_ISA_AVX512 || isa == EI_ISA_AVX512VNNI) return &ei__f32_gemm_14x32_avx512;
  if (isa == EI_ISA_AVX2 || isa == EI_ISA_AVXVNNI) return &ei__f32_gemm_6x16_avx2;
#elif defined(__aarch64__)
  if (isa == EI_ISA_NEON || isa == EI_ISA_DOTPROD) return &ei__f32_gemm_6x16_neon;
#endif
  (void)isa;
  return &ei__f32_gemm_6x16_vec;
}

/* ---- packing ---- */

static size_t panels_floats(int64_t rows_or_cols, int64_t width, int64_t depth) {
  size_t n;
  if (rows_or_cols < 0 || depth < 0 || width < 1) return 0;
  size_t panels = (size_t)((rows_or_cols + width - 1) / width);
  if (!ei__mul_size(panels, (size_t)width, &n) || !ei__mul_size(n, (size_t)depth, &n)) return 0;
  return n;
}

size_t ei__f32_gemm_packed_b_floats(int64_t K, int64_t N) { return panels_floats(N, PANEL, K); }
size_t ei__f32_gemm_packed_a_floats(int mr, int64_t M, int64_t K) { return panels_floats(M, mr, K); }

void ei__f32_gemm_pack_b(int64_t K, int64_t N, const float *src, int64_t rs, int64_t cs, float *dst) {
  for (int64_t n0 = 0; n0 < N; n0 += PANEL) {
    int64_t nr = N - n0 < PANEL ? N - n0 : PANEL;
    float *panel = dst + n0 * K; /* (n0 / PANEL) * PANEL * K */
    for (int64_t k = 0; k < K; k++) {
      float *row = panel + k * PANEL;
      const float *s = src + k * rs + n0 * cs;
      int64_t j = 0;
      if (cs == 1)
        for (; j < nr; j++) row[j] = s[j];
      else
        for (; j < nr; j++) row[j] = s[j * cs];
      for (; j < PANEL; j++) row[j] = 0.f;
    }
  }
}

/* One micro-panel: rows [m0, m0+mr) of A, columns [k0, k0+kc), as dst[k*MR + i]; rows mr..MR-1 zero. */
static void pack_a_panel(int MR, int mr, int64_t kc, const float *src, int64_t rs, int64_t cs, float *dst) {
  if (cs == 1 && mr == MR) {
    for (int i = 0; i < MR; i++) {
      const float *s = src + i * rs;
      for (int64_t k = 0; k < kc; k++) dst[k * MR + i] = s[k];
    }
    return;
  }
  for (int64_t k = 0; k < kc; k++) {
    float *col = dst + k * MR;
    int i = 0;
    for (; i < mr; i++) col[i] = src[i * rs + k * cs];
    for (; i < MR; i++) col[i] = 0.f;
  }
}

void ei__f32_gemm_pack_a(int mr, int64_t M, int64_t K, const float *src, int64_t rs, int64_t cs, float *dst) {
  for (int64_t m0 = 0; m0 < M; m0 += mr) {
    const int r = (int)(M - m0 < mr ? M - m0 : mr);
    pack_a_panel(mr, r, K, src + m0 * rs, rs, cs, dst + m0 * K); /* panel (m0 / mr) at m0 * K */
  }
}

/* ---- the portable micro-kernel: 6 x 16, GCC vector extensions (SSE2 on any x86-64, NEON on arm64) ---- */

#define VEC_MR 6
typedef float v4f __attribute__((vector_size(16), aligned(4), may_alias));

/* acc[i][0..15] = sum_k A(i,k) B(k,0..15) for R rows; two halves of 8 columns so that R x 8 accumulators fit
 * in 16 SIMD registers. */
static inline __attribute__((always_inline)) void vec_rows(const int R, int64_t kc, const float *a, const float *b,
                                                           int64_t b_rs, float *restrict tile) {
  for (int h = 0; h < PANEL; h += 8) {
    v4f t0[VEC_MR], t1[VEC_MR];
    for (int i = 0; i < R; i++) t0[i] = t1[i] = (v4f){0.f, 0.f, 0.f, 0.f};
    const float *bh = b + h;
    for (int64_t k = 0; k < kc; k++) {
      const v4f b0 = *(const v4f *)(bh + k * b_rs), b1 = *(const v4f *)(bh + k * b_rs + 4);
      for (int i = 0; i < R; i++) {
        const float av = a[k * VEC_MR + i];
        t0[i] += av * b0;
        t1[i] += av * b1;
      }
    }
    for (int i = 0; i < R; i++) {
      *(v4f *)(tile + i * PANEL + h) = t0[i];
      *(v4f *)(tile + i * PANEL + h + 4) = t1[i];
    }
  }
}

/* The reference epilogue on a computed tile (also used by the driver for the kinds kernels leave out). */
static void epilogue_scalar(const float *tile, int ldt, int mr, int nr, float *c, int64_t ldc,
                            const ei__f32_gemm_epi *e) {
  ei__act act = {(ei__act_kind)e->act, e->act_alpha, e->act_beta};
  for (int i = 0; i < mr; i++) {
    float *cr = c + i * ldc;
    const float bm = e->bias_m ? e->bias_m[i] : 0.f;
    for (int j = 0; j < nr; j++) {
      float v = e->alpha * tile[i * ldt + j];
      if (e->load_c) v += cr[j];
      if (e->bias_m) v += bm;
      if (e->bias_n) v += e->bias_n[j];
      cr[j] = ei__act_apply(&act, v);
    }
  }
}

static void vec_ukernel(int mr, int nr, int64_t kc, const float *a, const float *b, int64_t b_rs, int64_t b_ps,
                        float *c, int64_t ldc, const ei__f32_gemm_epi *e) {
  (void)b_ps;
  float tile[VEC_MR * PANEL];
  if (mr == 1)
    vec_rows(1, kc, a, b, b_rs, tile);
  else if (mr == 2)
    vec_rows(2, kc, a, b, b_rs, tile);
  else if (mr <= 4)
    vec_rows(4, kc, a, b, b_rs, tile);
  else
    vec_rows(VEC_MR, kc, a, b, b_rs, tile);
  epilogue_scalar(tile, PANEL, mr, nr, c, ldc, e);
}

const ei__f32_gemm_ukernel ei__f32_gemm_6x16_vec = {"f32_gemm_6x16_vec", VEC_MR, 16, 256, VEC_MR * 16, 256, 1,
                                                   vec_ukernel};

/* ---- driver ---- */

typedef struct gemm_job {
  const ei__f32_gemm_args *g;
  const ei__f32_gemm_ukernel *uk;
  int64_t mc, nc, nbn;
  ei__f32_gemm_epi last; /* epilogue of the last K block (bias, activation) */
  int post_act;          /* the driver applies g->act after the kernel (Sigmoid) */
} gemm_job;

/* A pointer to B columns [n, n+nr) rows [k0, k0+kc) in a form the kernel can read (reads up to nr rounded up to
 * 16): packed B as is; raw B in place when the rounded width stays inside the row, else copied to buf. */
static const float *b_block(const ei__f32_gemm_args *g, int64_t k0, int64_t kc, int64_t n, int nr, float *buf,
                            int64_t *b_rs, int64_t *b_ps) {
  if (g->b_packed) {
    *b_rs = PANEL;
    *b_ps = PANEL * g->K;
    return g->b + n * g->K + k0 * PANEL;
  }
  const float *src = g->b + k0 * g->b_rs + n;
  if (n + (nr + PANEL - 1) / PANEL * PANEL <= g->N) {
    *b_rs = g->b_rs;
    *b_ps = PANEL;
    return src;
  }
  for (int h = 0; h * PANEL < nr; h++) {
    const int w = nr - h * PANEL < PANEL ? nr - h * PANEL : PANEL;
    float *dst = buf + h * PANEL * kc;
    for (int64_t k = 0; k < kc; k++) {
      int j = 0;
      for (; j < w; j++) dst[k * PANEL + j] = src[k * g->b_rs + h * PANEL + j];
      for (; j < PANEL; j++) dst[k * PANEL + j] = 0.f;
    }
  }
  *b_rs = PANEL;
  *b_ps = PANEL * kc;
  return buf;
}

/* One micro-kernel call: tile (m, n) of C for K block [.., +kc), epilogue e with the tile's biases. */
static void gemm_tile(const gemm_job *j, const ei__f32_gemm_epi *e, int last, int64_t m, int mr, const float *ap,
                      int64_t n, int nr, int64_t kc, const float *bp, int64_t b_rs, int64_t b_ps) {
  const ei__f32_gemm_args *g = j->g;
  ei__f32_gemm_epi et = *e;
  if (et.bias_m) et.bias_m = g->bias_m + m;
  if (et.bias_n) et.bias_n = g->bias_n + n;
  float *cp = g->c + m * g->ldc + n;
  j->uk->fn(mr, nr, kc, ap, bp, b_rs, b_ps, cp, g->ldc, &et);
  if (j->post_act && last)
    for (int i = 0; i < mr; i++) ei__act_apply_n(g->act, cp + i * g->ldc, nr);
}

static void gemm_block(const gemm_job *j, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  const ei__f32_gemm_args *g = j->g;
  const ei__f32_gemm_ukernel *uk = j->uk;
  const int MR = uk->mr, NR = uk->nr;
  const int64_t K = g->K, KC = uk->kc;
  const int64_t nkb = (K + KC - 1) / KC;
  float abuf[EI_F32_GEMM_MR_MAX * EI_F32_GEMM_KC_MAX] __attribute__((aligned(64)));
  float bbuf[EI_F32_GEMM_KC_MAX * EI_F32_GEMM_NR_MAX] __attribute__((aligned(64)));
  for (int64_t kb = 0; kb < nkb; kb++) {
    const int64_t k0 = kb * KC, kc = K - k0 < KC ? K - k0 : KC;
    ei__f32_gemm_epi e;
    if (kb == nkb - 1) {
      e = j->last;
    } else {
      memset(&e, 0, sizeof e);
      e.alpha = g->alpha;
    }
    e.load_c = kb > 0 || g->accumulate;
    if (g->a_packed && uk->b_outer) { /* each B panel once, every A micro-panel against it */
      for (int64_t n = n0; n < n1; n += NR) {
        const int nr = (int)(n1 - n < NR ? n1 - n : NR);
        int64_t b_rs, b_ps;
        const float *bp = b_block(g, k0, kc, n, nr, bbuf, &b_rs, &b_ps);
        for (int64_t m = m0; m < m1; m += MR)
          gemm_tile(j, &e, kb == nkb - 1, m, (int)(m1 - m < MR ? m1 - m : MR), g->a + m * K + k0 * MR, n, nr, kc, bp,
                    b_rs, b_ps);
      }
      continue;
    }
    for (int64_t m = m0; m < m1; m += MR) {
      const int mr = (int)(m1 - m < MR ? m1 - m : MR);
      const float *ap;
      if (g->a_packed) {
        ap = g->a + m * K + k0 * MR;
      } else {
        pack_a_panel(MR, mr, kc, g->a + m * g->a_rs + k0 * g->a_cs, g->a_rs, g->a_cs, abuf);
        ap = abuf;
      }
      for (int64_t n = n0; n < n1; n += NR) {
        const int nr = (int)(n1 - n < NR ? n1 - n : NR);
        int64_t b_rs, b_ps;
        const float *bp = b_block(g, k0, kc, n, nr, bbuf, &b_rs, &b_ps);
        gemm_tile(j, &e, kb == nkb - 1, m, mr, ap, n, nr, kc, bp, b_rs, b_ps);
      }
    }
  }
}

static void gemm_task(void *arg, int64_t t0, int64_t t1) {
  const gemm_job *j = arg;
  const ei__f32_gemm_args *g = j->g;
  for (int64_t t = t0; t < t1; t++) {
    int64_t mb = t / j->nbn, nb = t % j->nbn;
    int64_t m0 = mb * j->mc, n0 = nb * j->nc;
    int64_t m1 = m0 + j->mc < g->M ? m0 + j->mc : g->M;
    int64_t n1 = n0 + j->nc < g->N ? n0 + j->nc : g->N;
    gemm_block(j, m0, m1, n0, n1);
  }
}

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

void ei__f32_gemm(const ei__f32_gemm_args *g, ei_threadpool *pool) {
  if (g->M <= 0 || g->N <= 0) return;
  if (g->K <= 0) { /* only the epilogue */
    ei__f32_gemm_ref(g, pool);
    return;
  }
  const ei__f32_gemm_ukernel *uk = g->uk ? g->uk : ei__f32_gemm_ukernel_get(ei__isa_current());
  gemm_job j;
  memset(&j, 0, sizeof j);
  j.g = g;
  j.uk = uk;
  j.mc = uk->mc;
  j.nc = uk->nc;
  j.last.alpha = g->alpha;
  j.last.bias_m = g->bias_m;
  j.last.bias_n = g->bias_n;
  if (g->act && ei__f32_act_in_kernel(g->act)) {
    j.last.act = g->act->kind;
    j.last.act_alpha = g->act->alpha;
    j.last.act_beta = g->act->beta;
  } else if (g->act) {
    j.post_act = 1;
  }
  int nt = pool ? ei_threadpool_size(pool) : 1;
  double work = (double)g->M * (double)g->N * (double)g->K;
  if (nt > 1 && work >= 65536.0) {
    /* Shrink the blocks until there are a few tasks per thread. */
    int64_t want = 4 * (int64_t)nt;
    while (ceil_div(g->M, j.mc) * ceil_div(g->N, j.nc) < want && j.nc > uk->nr) j.nc = ceil_div(j.nc / 2, uk->nr) * uk->nr;
    while (ceil_div(g->M, j.mc) * ceil_div(g->N, j.nc) < want && j.mc > uk->mr) j.mc = ceil_div(j.mc / 2, uk->mr) * uk->mr;
  } else {
    pool = NULL;
  }
  j.nbn = ceil_div(g->N, j.nc);
  int64_t tasks = ceil_div(g->M, j.mc) * j.nbn;
  /* At least ~32K multiply-adds per chunk. */
  double task_work = (double)j.mc * (double)j.nc * (double)g->K;
  int64_t min_chunk = task_work >= 32768.0 ? 1 : (int64_t)(32768.0 / task_work) + 1;
  ei__parallel_for(pool, tasks, min_chunk, gemm_task, &j);
}

/* ---- scalar reference ---- */

static void gemm_ref_rows(void *arg, int64_t i0, int64_t i1) {
  const ei__f32_gemm_args *g = arg;
  const int64_t K = g->K;
  const int MR = g->a_packed ? (g->uk ? g->uk : ei__f32_gemm_ukernel_get(ei__isa_current()))->mr : 1;
  for (int64_t i = i0; i < i1; i++) {
    float *crow = g->c + i * g->ldc;
    for (int64_t j = 0; j < g->N; j++) {
      float acc = 0.f;
      for (int64_t k = 0; k < K; k++) {
        const float a = g->a_packed ? g->a[(i / MR) * MR * K + k * MR + i % MR] : g->a[i * g->a_rs + k * g->a_cs];
        const float b =
            g->b_packed ? g->b[(j / PANEL) * PANEL * K + k * PANEL + j % PANEL] : g->b[k * g->b_rs + j];
        acc += a * b;
      }
      float v = g->alpha * acc;
      if (g->accumulate) v += crow[j];
      if (g->bias_m) v += g->bias_m[i];
      if (g->bias_n) v += g->bias_n[j];
      crow[j] = g->act ? ei__act_apply(g->act, v) : v;
    }
  }
}

void ei__f32_gemm_ref(const ei__f32_gemm_args *g, ei_threadpool *pool) {
  if (g->M <= 0 || g->N <= 0) return;
  const double row = (double)g->N * (double)(g->K > 0 ? g->K : 1);
  ei__parallel_for(pool, g->M, row >= 16384.0 ? 1 : (int64_t)(16384.0 / row) + 1, gemm_ref_rows, (void *)g);
}

void ei__f32_gemm_rowmajor(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                           int64_t ldb, float *C, int64_t ldc, int accumulate, ei_threadpool *pool) {
  ei__f32_gemm_args g;
  ei__f32_gemm_args_init(&g);
  g.M = M;
  g.N = N;
  g.K = K;
  g.a = A;
  g.a_rs = lda;
  g.a_cs = 1;
  g.b = B;
  g.b_rs = ldb;
  g.c = C;
  g.ldc = ldc;
  g.accumulate = accumulate;
  ei__f32_gemm(&g, pool);
}
