/* Portable float32 GEMM (see f32_gemm.h): packing of A/B, an MR x 16 plain-C micro-kernel written so the
 * compiler vectorises its inner loop, K/N/M cache blocking, the epilogue (alpha, accumulate, bias,
 * activation) and the split of the block grid over the thread pool. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif
#include "kernels/f32_gemm.h"

#define MR EI_F32_GEMM_MR
#define NR EI_F32_GEMM_NR
#define KC 256        /* K block: a KC x 16 B chunk is 16 KB (L1) */
#define MC (MR * 16)  /* M block: an MC x KC A block is 64 KB (L2) */
#define NC 256        /* N block (multiple of NR) */

void ei__f32_gemm_args_init(ei__f32_gemm_args *g) {
  memset(g, 0, sizeof *g);
  g->alpha = 1.f;
}

/* ---- packing ---- */

static size_t panels_floats(int64_t rows_or_cols, int64_t width, int64_t depth) {
  size_t n;
  if (rows_or_cols < 0 || depth < 0) return 0;
  size_t panels = (size_t)((rows_or_cols + width - 1) / width);
  if (!ei__mul_size(panels, (size_t)width, &n) || !ei__mul_size(n, (size_t)depth, &n)) return 0;
  return n;
}

size_t ei__f32_gemm_packed_b_floats(int64_t K, int64_t N) { return panels_floats(N, NR, K); }
size_t ei__f32_gemm_packed_a_floats(int64_t M, int64_t K) { return panels_floats(M, MR, K); }

void ei__f32_gemm_pack_b(int64_t K, int64_t N, const float *src, int64_t rs, int64_t cs, float *dst) {
  for (int64_t n0 = 0; n0 < N; n0 += NR) {
    int64_t nr = N - n0 < NR ? N - n0 : NR;
    float *panel = dst + n0 * K; /* (n0 / NR) * NR * K */
    for (int64_t k = 0; k < K; k++) {
      float *row = panel + k * NR;
      const float *s = src + k * rs + n0 * cs;
      int64_t j = 0;
      if (cs == 1)
        for (; j < nr; j++) row[j] = s[j];
      else
        for (; j < nr; j++) row[j] = s[j * cs];
      for (; j < NR; j++) row[j] = 0.f;
    }
  }
}

void ei__f32_gemm_pack_a(int64_t M, int64_t K, const float *src, int64_t rs, int64_t cs, float *dst) {
  for (int64_t m0 = 0; m0 < M; m0 += MR) {
    int64_t mr = M - m0 < MR ? M - m0 : MR;
    float *panel = dst + m0 * K; /* (m0 / MR) * MR * K */
    for (int64_t k = 0; k < K; k++) {
      float *col = panel + k * MR;
      int64_t i = 0;
      for (; i < mr; i++) col[i] = src[(m0 + i) * rs + k * cs];
      for (; i < MR; i++) col[i] = 0.f;
    }
  }
}

/* ---- micro-kernels: tile[MR][NR] = sum_k A(i,k) * B(k,j) ---- */

/* Full 16-wide B rows (packed panels, or raw rows with 16 columns left), R <= MR rows of A. GCC vector
 * extensions (portable across SSE2/AVX/NEON, no intrinsics) keep the accumulators in registers. The 16
 * columns are done as two halves of 8 so that MR x 8 accumulators fit in 16 SIMD registers (SSE2). */
typedef float v4f __attribute__((vector_size(16), aligned(4), may_alias));

static inline __attribute__((always_inline)) void ukernel_rows(const int R, int64_t kc, const float *const *arow,
                                                               int64_t a_cs, const float *b, int64_t b_rs,
                                                               float *restrict tile) {
  for (int h = 0; h < NR; h += 8) {
    v4f t0[MR], t1[MR];
    for (int i = 0; i < R; i++) t0[i] = t1[i] = (v4f){0.f, 0.f, 0.f, 0.f};
    const float *bh = b + h;
    for (int64_t k = 0; k < kc; k++) {
      const v4f b0 = *(const v4f *)(bh + k * b_rs), b1 = *(const v4f *)(bh + k * b_rs + 4);
      const int64_t ak = k * a_cs;
      for (int i = 0; i < R; i++) {
        const float av = arow[i][ak];
        t0[i] += av * b0;
        t1[i] += av * b1;
      }
    }
    for (int i = 0; i < R; i++) {
      *(v4f *)(tile + i * NR + h) = t0[i];
      *(v4f *)(tile + i * NR + h + 4) = t1[i];
    }
  }
}

/* Picks the smallest specialisation that covers mr rows (rows past mr are computed and dropped). */
static void ukernel_16(int mr, int64_t kc, const float *const *arow, int64_t a_cs, const float *b, int64_t b_rs,
                       float *restrict tile) {
  if (mr == 1)
    ukernel_rows(1, kc, arow, a_cs, b, b_rs, tile);
  else if (mr == 2)
    ukernel_rows(2, kc, arow, a_cs, b, b_rs, tile);
  else if (mr <= 4 && MR >= 4)
    ukernel_rows(4, kc, arow, a_cs, b, b_rs, tile);
  else
    ukernel_rows(MR, kc, arow, a_cs, b, b_rs, tile);
}

/* Fewer than 16 columns of raw B: reads only nr columns; the rest of the tile is zero. */
static void ukernel_edge(int64_t kc, const float *const *arow, int64_t a_cs, const float *b, int64_t b_rs,
                         int nr, float *restrict tile) {
  float t[MR][NR];
  for (int i = 0; i < MR; i++)
    for (int j = 0; j < NR; j++) t[i][j] = 0.f;
  for (int64_t k = 0; k < kc; k++) {
    const float *bk = b + k * b_rs;
    for (int i = 0; i < MR; i++) {
      const float av = arow[i][k * a_cs];
      for (int j = 0; j < nr; j++) t[i][j] += av * bk[j];
    }
  }
  memcpy(tile, t, sizeof t);
}

/* ---- epilogue: writes mr x nr of the tile into C ---- */
static void store_tile(const ei__f32_gemm_args *g, const float *tile, int64_t m, int64_t n, int mr, int nr,
                       int first, int last) {
  const int add_old = !first || g->accumulate;
  const float alpha = g->alpha;
  for (int i = 0; i < mr; i++) {
    float *restrict crow = g->c + (m + i) * g->ldc + n;
    const float *t = tile + i * NR;
    if (add_old)
      for (int j = 0; j < nr; j++) crow[j] += alpha * t[j];
    else
      for (int j = 0; j < nr; j++) crow[j] = alpha * t[j];
    if (!last) continue;
    if (g->bias_m) {
      const float bm = g->bias_m[m + i];
      for (int j = 0; j < nr; j++) crow[j] += bm;
    }
    if (g->bias_n) {
      const float *bn = g->bias_n + n;
      for (int j = 0; j < nr; j++) crow[j] += bn[j];
    }
    if (g->act) ei__f32_act_inplace(g->act, crow, nr);
  }
}

/* ---- driver ---- */
typedef struct gemm_job {
  const ei__f32_gemm_args *g;
  int64_t mc, nc, nbn;
} gemm_job;

static void gemm_block(const ei__f32_gemm_args *g, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  const int64_t K = g->K;
  const int64_t nkb = K > 0 ? (K + KC - 1) / KC : 1;
  float tile[MR * NR];
  const float *arow[MR];
  for (int64_t kb = 0; kb < nkb; kb++) {
    const int64_t k0 = kb * KC;
    const int64_t kc = K - k0 < KC ? K - k0 : KC;
    const int first = kb == 0, last = kb == nkb - 1;
    for (int64_t n = n0; n < n1; n += NR) {
      const int nr = (int)(n1 - n < NR ? n1 - n : NR);
      const float *bp;
      int64_t b_rs;
      if (g->b_packed) {
        bp = g->b + n * K + k0 * NR;
        b_rs = NR;
      } else {
        bp = g->b + k0 * g->b_rs + n;
        b_rs = g->b_rs;
      }
      for (int64_t m = m0; m < m1; m += MR) {
        const int mr = (int)(m1 - m < MR ? m1 - m : MR);
        int64_t a_cs;
        if (g->a_packed) {
          const float *panel = g->a + m * K + k0 * MR;
          for (int i = 0; i < MR; i++) arow[i] = panel + i;
          a_cs = MR;
        } else {
          /* Rows past M repeat the last row: no out-of-range reads, their results are dropped. */
          for (int i = 0; i < MR; i++) arow[i] = g->a + (m + (i < mr ? i : mr - 1)) * g->a_rs + k0 * g->a_cs;
          a_cs = g->a_cs;
        }
        if (nr == NR || g->b_packed)
          ukernel_16(mr, kc, arow, a_cs, bp, b_rs, tile);
        else
          ukernel_edge(kc, arow, a_cs, bp, b_rs, nr, tile);
        store_tile(g, tile, m, n, mr, nr, first, last);
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
    gemm_block(g, m0, m1, n0, n1);
  }
}

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

void ei__f32_gemm(const ei__f32_gemm_args *g, ei_threadpool *pool) {
  if (g->M <= 0 || g->N <= 0) return;
  gemm_job j = {g, MC, NC, 0};
  int nt = pool ? ei_threadpool_size(pool) : 1;
  double work = (double)g->M * (double)g->N * (double)(g->K > 0 ? g->K : 1);
  if (nt > 1 && work >= 65536.0) {
    /* Shrink the blocks until there are a few tasks per thread. */
    int64_t want = 4 * (int64_t)nt;
    while (ceil_div(g->M, j.mc) * ceil_div(g->N, j.nc) < want && j.nc > NR) j.nc /= 2;
    while (ceil_div(g->M, j.mc) * ceil_div(g->N, j.nc) < want && j.mc > MR) j.mc = ceil_div(j.mc / 2, MR) * MR;
  } else {
    pool = NULL;
  }
  j.nbn = ceil_div(g->N, j.nc);
  int64_t tasks = ceil_div(g->M, j.mc) * j.nbn;
  /* At least ~32K multiply-adds per chunk. */
  double task_work = (double)j.mc * (double)j.nc * (double)(g->K > 0 ? g->K : 1);
  int64_t min_chunk = task_work >= 32768.0 ? 1 : (int64_t)(32768.0 / task_work) + 1;
  ei__parallel_for(pool, tasks, min_chunk, gemm_task, &j);
}

/* ---- scalar reference ---- */

static void gemm_ref_rows(void *arg, int64_t i0, int64_t i1) {
  const ei__f32_gemm_args *g = arg;
  const int64_t K = g->K;
  for (int64_t i = i0; i < i1; i++) {
    float *crow = g->c + i * g->ldc;
    for (int64_t j = 0; j < g->N; j++) {
      float acc = 0.f;
      for (int64_t k = 0; k < K; k++) {
        const float a = g->a_packed ? g->a[(i / MR) * MR * K + k * MR + i % MR] : g->a[i * g->a_rs + k * g->a_cs];
        const float b = g->b_packed ? g->b[(j / NR) * NR * K + k * NR + j % NR] : g->b[k * g->b_rs + j];
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
