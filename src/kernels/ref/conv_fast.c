/* Fast float Conv paths for 1-D and 2-D convolutions with constant weights (1-D runs as 2-D with height 1):
 *   f32_conv_1x1_<uk>     1x1 / stride 1 / no pad: the GEMM micro-kernel reads X in place (no im2col)
 *   f32_conv_im2col_<uk>  any other kernel (3x3, the 7x7 stride-2 stem, strided 1x1, dilated, grouped):
 *                         the input is staged once zero-padded (when the conv pads), then im2col copies
 *                         blocks of KC rows x a tile of output pixels into 16-wide panels, either per task in a
 *                         per-thread slot of the workspace (large images: the block stays in L2, nothing of
 *                         the size of the whole im2col is ever made) or once for all pixels when the image is
 *                         small (few pixel tiles: the tasks then split the output channels and share it)
 *   f32_conv_wino2x3_<uk> 3x3 / stride 1 / no dilation / no groups / >= 16 channels in and out: Winograd
 *                         F(2x2, 3x3) (2.25x fewer multiplies): per task of 32 (or 16) 2x2 tiles, the 4x4 input
 *                         patches are gathered by im2col_panel and transformed (B^T d B) for all channels, then
 *                         16 GEMMs U_xi [M x C] x V_xi [C x tiles] with the same micro-kernel (U = G g G^T packed
 *                         at init, computed in double), then A^T m A + bias + activation straight into Y; the
 *                         error stays at the level of the direct conv (resnet18/50 logits vs ORT: 2e-6 / 3e-5)
 *   f32_conv_wino4x3_<uk> the same with Winograd F(4x4, 3x3) (4x fewer multiplies; 6x6 patches, 36 GEMMs, the
 *                         transforms of the SIMD table, kernels/f32_wino43_tmpl.h) for 32 to 128 channels in and out, where its 36
 *                         transformed matrices stay small (4x the raw weights); resnet18's 64- and 128-channel
 *                         layers
 *   f32_dwconv_<isa>      depthwise (group == C == M): dwconv_fast.c
 * The GEMM micro-kernel (kernels/f32_gemm.h) is the one of the ISA level chosen at init; the weights are packed
 * once (conv.c init) into its A panels per group, K block by K block (each block of the run one contiguous range;
 * Winograd: 16 or 36 transformed matrices), or copied as [M, kh*kw] for the depthwise path. Output Y = W * col: rows are output channels, columns output pixels (NCHW); bias and the
 * activation are applied in the micro-kernel's epilogue. Each conv runs as one parallel region over (pixel tile
 * x output-channel chunk) tasks handed out by an atomic counter, each worker with its own slot of the workspace
 * (plus one region for the staging and one for the shared im2col). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/f32_simd.h"
#include "kernels/ref/conv_view.h"
#include "kernels/ref/nn.h"

#define PANEL EI_F32_GEMM_PANEL
#define NT 128             /* output pixels per task tile (a multiple of every kernel's NR) */
#define NT_SMALL 64        /* the tile of mid-sized images, to keep enough tiles for per-tile im2col */
#define SLOTS 8            /* per-thread scratch slots: at most this many threads work on one conv */
#define SHARED_TILES 8     /* fewer pixel tiles than this: one im2col for all pixels, tasks split M */

enum { B_RAW = 0, B_TILE, B_SHARED, B_WINO };

#define WINO_MIN_CH 16 /* Winograd for 3x3 stride-1 convs with at least this many input and output channels */
/* ... and at most this many transformed weights (16 M x C matrices, 16/9 of the raw 3x3 weights): above it every
 * run streams them from DRAM (resnet18's 512x512 layers: 16 MB each, 3 of them, 50 MB resident against 28 MB
 * raw), and such layers sit at 7x7 where F(2x2) computes 64 outputs for 49. im2col reads 9/16 of the bytes: in
 * resnet18 (1 thread, weights packed by K block) 3.25-3.4 ms per 512x512 layer against 3.3-3.4 ms for F(2x2),
 * with 22 MB less peak RSS (before the K-block packing im2col was about 0.3 ms slower per layer). */
#define WINO_MAX_FLOATS (16 * 256 * 256)
#define WINO4_MIN_CH 32                /* F(4x4, 3x3): from this many channels in and out ... */
#define WINO4_MAX_FLOATS (36 * 128 * 128) /* ... up to this many transformed weights (2.4 MB) */
#define W4TB 16                        /* F(4x4) tiles (4x4 outputs each) per task */
#define W4SLACK 128                    /* floats readable past the staged input (F(4x4) row runs) */
#define WTB 32         /* Winograd tiles per task */
#define WMC 128        /* output channels per pass of a Winograd task (bounds its product buffer) */
#define WSLOTS 4       /* Winograd slots (bigger than the im2col ones): at most 4 threads per conv */

/* view2d / ei__conv_view: kernels/ref/conv_view.h */

int ei__conv_fast_path(const ei__nn_attrs *a, int wrank, const int64_t *wdims) {
  if (wrank != 3 && wrank != 4) return EI_CONV_REF;
  const int S = wrank - 2;
  if (wdims[1] == 1 && wdims[0] == a->group) return EI_CONV_DW;
  int one = 1;
  for (int i = 0; i < S; i++) {
    if (wdims[2 + i] != 1) one = 0;
    if (a->nstrides >= 0 && a->strides[i] != 1) one = 0;
  }
  if (a->auto_pad == EI_AUTOPAD_NOTSET && a->npads >= 0)
    for (int i = 0; i < a->npads; i++)
      if (a->pads[i]) one = 0;
  if (one) return EI_CONV_1X1;
  /* Winograd F(2x2, 3x3): 3x3, stride 1, no dilation, no groups, enough channels to amortise the transforms. */
  int wino = S == 2 && a->group == 1 && wdims[2] == 3 && wdims[3] == 3 && wdims[0] >= WINO_MIN_CH &&
             wdims[1] >= WINO_MIN_CH && 16 * wdims[0] * wdims[1] <= WINO_MAX_FLOATS;
  for (int i = 0; i < S; i++) {
    if (a->nstrides >= 0 && a->strides[i] != 1) wino = 0;
    if (a->ndilations >= 0 && a->dilations[i] != 1) wino = 0;
  }
  if (wino && wdims[0] >= WINO4_MIN_CH && wdims[1] >= WINO4_MIN_CH && 36 * wdims[0] * wdims[1] <= WINO4_MAX_FLOATS)
    return EI_CONV_WINO4;
  return wino ? EI_CONV_WINO : EI_CONV_IM2COL;
}

/* The kernel name of a path at a level: the path and its micro-kernel / SIMD table. */
const char *ei__conv_fast_name(int path, ei__isa isa) {
  static const char *const gemm[][5] = {
      {"f32_conv_im2col_6x16_vec", "f32_conv_1x1_6x16_vec", "f32_dwconv_scalar", "f32_conv_wino2x3_6x16_vec",
       "f32_conv_wino4x3_6x16_vec"},
      {"f32_conv_im2col_6x16_avx2", "f32_conv_1x1_6x16_avx2", "f32_dwconv_avx2", "f32_conv_wino2x3_6x16_avx2",
       "f32_conv_wino4x3_6x16_avx2"},
      {"f32_conv_im2col_14x32_avx512", "f32_conv_1x1_14x32_avx512", "f32_dwconv_avx512",
       "f32_conv_wino2x3_14x32_avx512", "f32_conv_wino4x3_14x32_avx512"},
      {"f32_conv_im2col_6x16_neon", "f32_conv_1x1_6x16_neon", "f32_dwconv_neon", "f32_conv_wino2x3_6x16_neon",
       "f32_conv_wino4x3_6x16_neon"}};
  int row = 0;
  const ei__f32_gemm_ukernel *uk = ei__f32_gemm_ukernel_get(isa);
#if defined(__x86_64__)
  if (uk == &ei__f32_gemm_6x16_avx2) row = 1;
  if (uk == &ei__f32_gemm_14x32_avx512) row = 2;
#elif defined(__aarch64__)
  if (uk == &ei__f32_gemm_6x16_neon) row = 3;
#endif
  switch (path) {
    case EI_CONV_IM2COL: return gemm[row][0];
    case EI_CONV_1X1: return gemm[row][1];
    case EI_CONV_DW: return gemm[row][2];
    case EI_CONV_WINO: return gemm[row][3];
    case EI_CONV_WINO4: return gemm[row][4];
    default: return "f32_conv_ref";
  }
}

/* ---- weights ---- */

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
static size_t align16(size_t n) { return (n + 15) & ~(size_t)15; }

/* K block for a reduction of K with the kernel's kc: K itself up to 1.5 kc (e.g. the 7x7 stem's 147: one pass,
 * no second pass of 19 that reloads every C tile), else equal blocks (288 -> 3 x 96, not 128 + 128 + 32). */
static int64_t k_block(int64_t K, int64_t kc) {
  if (K <= kc || (K <= kc + kc / 2 && K <= EI_F32_GEMM_KC_MAX)) return K;
  return ceil_div(K, ceil_div(K, kc));
}

/* The layout of a group's packed weights for the GEMM paths (ei__conv_pack, conv_tile): K block by K block (the
 * blocks of the run, k_block), block [k0, k0 + kc) of every micro-panel together; micro-panel m / mr of the block
 * starting at k0 begins this many floats in. */
static size_t kblock_at(int64_t Mg, int mr, int64_t k0, int64_t kc, int64_t m) {
  return (size_t)(k0 * (ceil_div(Mg, mr) * mr) + m * kc);
}

/* Floats of one group's packed A (Mg x K), or SIZE_MAX on overflow. */
static size_t group_a_floats(int mr, int64_t Mg, int64_t K) {
  if (Mg == 0 || K == 0) return 0;
  size_t n = ei__f32_gemm_packed_a_floats(mr, Mg, K);
  return n ? n : SIZE_MAX;
}

size_t ei__conv_packed_floats(int path, ei__isa isa, const int64_t *wdims, int wrank, int64_t group) {
  int64_t ksz = ei__nn_prod(wdims + 2, wrank - 2), M = wdims[0], K;
  if (ksz < 0 || M < 0 || wdims[1] < 0 || __builtin_mul_overflow(wdims[1], ksz, &K)) return SIZE_MAX;
  size_t n;
  if (path == EI_CONV_DW) return ei__mul_size((size_t)M, (size_t)ksz, &n) ? n : SIZE_MAX;
  size_t per = group_a_floats(ei__f32_gemm_ukernel_get(isa)->mr, M / group, K);
  if (path == EI_CONV_WINO || path == EI_CONV_WINO4) per = group_a_floats(ei__f32_gemm_ukernel_get(isa)->mr, M, wdims[1]);
  const size_t copies = path == EI_CONV_WINO ? 16 : path == EI_CONV_WINO4 ? 36 : (size_t)group;
  if (per == SIZE_MAX || !ei__mul_size(per, copies, &n)) return SIZE_MAX;
  return n;
}

/* Winograd weights: U_xi = G g G^T (n x n per (m, c), in double) with the n x 3 matrix G of F(2x2, 3x3)
 * (n = 4: [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]) or of F(4x4, 3x3) (n = 6, kernels/f32_simd.h), as n*n matrices
 * [M x C] each packed into the micro-kernel's A panels. */
static const double wino_g2[6][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
static const double wino_g4[6][3] = {{1.0 / 4, 0, 0},          {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                     {-1.0 / 6, 1.0 / 6, -1.0 / 6}, {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                     {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}};

static void wino_pack(const double (*G)[3], int n, int mr, int64_t M, int64_t C, const float *w, float *dst) {
  const size_t per = group_a_floats(mr, M, C);
  memset(dst, 0, (size_t)(n * n) * per * sizeof(float));
  for (int64_t m = 0; m < M; m++)
    for (int64_t c = 0; c < C; c++) {
      const float *g = w + (m * C + c) * 9;
      double t[6][3];
      for (int i = 0; i < n; i++)
        for (int k = 0; k < 3; k++) t[i][k] = G[i][0] * g[0 * 3 + k] + G[i][1] * g[1 * 3 + k] + G[i][2] * g[2 * 3 + k];
      for (int i = 0; i < n; i++)
        for (int jj = 0; jj < n; jj++) {
          const double u = t[i][0] * G[jj][0] + t[i][1] * G[jj][1] + t[i][2] * G[jj][2];
          /* A panel layout: panel m / mr, element (c, m % mr) */
          dst[(size_t)(i * n + jj) * per + (size_t)((m / mr) * mr * C + c * mr + m % mr)] = (float)u;
        }
    }
}

void ei__conv_pack(int path, ei__isa isa, const int64_t *wdims, int wrank, int64_t group, const float *w,
                   float *dst) {
  const int64_t ksz = ei__nn_prod(wdims + 2, wrank - 2), M = wdims[0], K = wdims[1] * ksz;
  if (path == EI_CONV_DW) {
    if (M > 0 && ksz > 0) memcpy(dst, w, (size_t)(M * ksz) * sizeof(float));
    return;
  }
  const int mr = ei__f32_gemm_ukernel_get(isa)->mr;
  if (path == EI_CONV_WINO) {
    wino_pack(wino_g2, 4, mr, M, wdims[1], w, dst);
    return;
  }
  if (path == EI_CONV_WINO4) {
    wino_pack(wino_g4, 6, mr, M, wdims[1], w, dst);
    return;
  }
  const int64_t Mg = M / group;
  const size_t per = group_a_floats(mr, Mg, K);
  if (per == 0) return;
  /* per group, K block by K block (kblock_at), so that each K block of the weights is one contiguous stream (the
   * 512x512 3x3 layers of resnet18 read 9 MB of weights from DRAM every run) */
  const int64_t KC = k_block(K, ei__f32_gemm_ukernel_get(isa)->kc);
  for (int64_t g = 0; g < group; g++)
    for (int64_t k0 = 0; k0 < K; k0 += KC) {
      const int64_t kc = K - k0 < KC ? K - k0 : KC;
      ei__f32_gemm_pack_a(mr, Mg, kc, w + g * Mg * K + k0, K, 1, dst + (size_t)g * per + kblock_at(Mg, mr, k0, kc, 0));
    }
}

/* ---- plan of one run ---- */

typedef struct conv_plan {
  view2d v;
  int64_t Cg, Mg, K, P, HW;
  int stage;            /* im2col reads a zero-padded copy of the group's input */
  int64_t Hp, Wp;       /* its plane: the rows/columns the windows touch, padding included */
  int mode;             /* B_RAW, B_TILE, B_SHARED */
  int64_t kc;           /* K block */
  int64_t nt;           /* pixel tile: NT, or NT_SMALL for mid-sized images */
  size_t stage_floats;  /* staged input */
  size_t b_floats;      /* shared im2col, or SLOTS slots of slot_floats */
  size_t slot_floats;
  int too_big;          /* a size overflowed (hostile geometry): the conv cannot run */
  int64_t th, tw;       /* Winograd: tile rows and columns (2x2 outputs each) */
  int64_t tb;           /* Winograd: tiles per task (WTB, or 16 for mid-sized images) */
  int wr, wx;           /* Winograd: output tile size (2 or 4) and transformed positions ((wr + 2)^2) */
} conv_plan;



static void make_plan(int path, ei__isa isa, const ei__conv_shape *s, conv_plan *cp) {
  memset(cp, 0, sizeof *cp);
  view2d *v = &cp->v;
  ei__conv_view(&s->g, v);
  const ei__f32_gemm_ukernel *uk = ei__f32_gemm_ukernel_get(isa);
  cp->Cg = s->C / s->group;
  cp->Mg = s->M / s->group;
  cp->K = cp->Cg * v->kh * v->kw;
  cp->P = v->OH * v->OW;
  cp->HW = v->H * v->W;
  cp->kc = k_block(cp->K, uk->kc);
  cp->nt = NT;
  if (path == EI_CONV_WINO || path == EI_CONV_WINO4) {
    /* tiles of r x r outputs (r = 2, or 4 for F(4x4)); the staged input covers every tile's (r+2)x(r+2) patch
     * (F(2x2): +1 column, stride-2 gathers) */
    const int r = path == EI_CONV_WINO4 ? 4 : 2;
    cp->mode = B_WINO;
    cp->wr = r;
    cp->wx = (r + 2) * (r + 2);
    cp->kc = k_block(cp->Cg, uk->kc);
    cp->th = (v->OH + r - 1) / r;
    cp->tw = (v->OW + r - 1) / r;
    cp->Hp = r * cp->th + 2;
    cp->Wp = r * cp->tw + 2 + (r == 2);
    int64_t n;
    if (__builtin_mul_overflow(cp->Hp, cp->Wp, &n) || __builtin_mul_overflow(n, cp->Cg, &n) || n > ((int64_t)1 << 40)) {
      cp->too_big = 1;
      return;
    }
    cp->stage = 1;
    /* F(4x4) reads whole 80-float row runs (in_rows): slack past the last plane */
    cp->stage_floats = align16((size_t)n + (r == 4 ? W4SLACK : 0));
    /* tiles per task: F(2x2) WTB, or 16 when that leaves fewer than 8 tasks; F(4x4) W4TB */
    cp->tb = r == 4 ? W4TB : ceil_div(cp->th * cp->tw, WTB) >= 8 ? WTB : PANEL;
    cp->slot_floats = (size_t)cp->wx * (size_t)cp->tb * (size_t)(cp->Cg + (cp->Mg < WMC ? cp->Mg : WMC));
    cp->b_floats = WSLOTS * align16(cp->slot_floats);
    return;
  }
  if (path == EI_CONV_1X1) {
    cp->mode = B_RAW;
    cp->slot_floats = (size_t)cp->kc * EI_F32_GEMM_NR_MAX; /* the last, partial pixel panel */
  } else {
    /* The window extent (plus one column for stride 2: vector stride-2 loads read one float past the last tap);
     * staged when it leaves the input anywhere (padding, or that extra column). */
    int64_t a, b, n;
    if (__builtin_mul_overflow(v->OH > 0 ? v->OH - 1 : 0, v->sh, &a) || __builtin_mul_overflow(v->kh - 1, v->dh, &b) ||
        __builtin_add_overflow(a, b + 1, &cp->Hp) || __builtin_mul_overflow(v->OW > 0 ? v->OW - 1 : 0, v->sw, &a) ||
        __builtin_mul_overflow(v->kw - 1, v->dw, &b) || __builtin_add_overflow(a, b + 1 + (v->sw == 2), &cp->Wp) ||
        __builtin_mul_overflow(cp->Hp, cp->Wp, &n) || __builtin_mul_overflow(n, cp->Cg, &n) || n > ((int64_t)1 << 40)) {
      cp->too_big = 1;
      return;
    }
    cp->stage = v->pt > 0 || v->pl > 0 || cp->Hp - v->pt > v->H || cp->Wp - v->pl > v->W;
    if (cp->stage) cp->stage_floats = align16((size_t)n);
    const int64_t p16 = ceil_div(cp->P, PANEL) * PANEL;
    const double shared = (double)cp->K * (double)p16 * sizeof(float);
    if (ceil_div(cp->P, NT) < SHARED_TILES) cp->nt = NT_SMALL;
    if (ceil_div(cp->P, NT_SMALL) < SHARED_TILES && shared <= (double)EI_NN_IM2COL_BYTES) {
      cp->mode = B_SHARED;
      cp->nt = NT;
      cp->b_floats = (size_t)(cp->K * p16);
      return;
    }
    cp->mode = B_TILE;
    cp->slot_floats = (size_t)cp->kc * NT;
  }
  cp->b_floats = SLOTS * align16(cp->slot_floats);
}

size_t ei__conv_fast_workspace(int path, ei__isa isa, const ei__conv_shape *s) {
  if (path == EI_CONV_DW) return 0;
  conv_plan cp;
  make_plan(path, isa, s, &cp);
  if (cp.K == 0 || cp.P == 0 || cp.Mg == 0) return 0;
  if (cp.too_big) return SIZE_MAX;
  return (cp.stage_floats + cp.b_floats) * sizeof(float);
}

/* ---- staging and im2col ---- */

typedef struct conv_job {
  const conv_plan *cp;
  const ei__f32_gemm_ukernel *uk;
  const ei__f32_simd *simd;
  const float *x;       /* the group's input channels */
  const float *src;     /* what im2col reads: the staged copy or x */
  int64_t sp, sr;       /* its plane and row strides */
  float *stage;
  const float *a;       /* the group's packed weights */
  float *y;             /* the group's output planes */
  float *bbuf;          /* shared im2col (panels of 16 over all K), or the slots */
  ei__f32_gemm_epi last; /* epilogue of the last K block (bias pointer set per micro-panel) */
  const float *bias;
  const ei__act *act;      /* the fused activation */
  const ei__act *post_act; /* applied by the driver (kinds the micro-kernel leaves out) */
  int64_t mc, msplit, tiles, items;
  int64_t tb;           /* Winograd tiles per task (WTB or 16) */
  size_t apanel;        /* floats of one packed weight matrix (Winograd: of each U_xi) */
  _Atomic int64_t next;
} conv_job;

/* Staged input: channel c, padded row r, column q holds x[c, r - pt, q - pl] or 0. */
static void stage_task(void *arg, int64_t c0, int64_t c1) {
  const conv_job *j = arg;
  const conv_plan *cp = j->cp;
  const view2d *v = &cp->v;
  const int64_t Hp = cp->Hp, Wp = cp->Wp;
  const int64_t q0 = v->pl < Wp ? v->pl : Wp;                           /* first column from x */
  const int64_t q1 = v->pl + v->W < Wp ? v->pl + v->W : Wp;              /* past the last */
  for (int64_t c = c0; c < c1; c++) {
    const float *xc = j->x + c * cp->HW;
    float *d = j->stage + c * Hp * Wp;
    for (int64_t r = 0; r < Hp; r++, d += Wp) {
      const int64_t iy = r - v->pt;
      if (iy < 0 || iy >= v->H || q1 <= q0) {
        memset(d, 0, (size_t)Wp * sizeof(float));
        continue;
      }
      memset(d, 0, (size_t)q0 * sizeof(float));
      memcpy(d + q0, xc + iy * v->W + (q0 - v->pl), (size_t)(q1 - q0) * sizeof(float));
      memset(d + q1, 0, (size_t)(Wp - q1) * sizeof(float));
    }
  }
}

/* im2col of rows [k0, k0+kc) x output pixels [p0, p0+np) into 16-wide panels: B(k, t) at
 * dst[(t/16)*pstride + (k-k0)*16 + t%16], columns of the last panel past np zero. Every 16 pixels are copied as
 * one contiguous run (same output row, stride 1), a stride-2 run, a few runs (wrapping rows) or gathered through
 * per-pixel offsets, by the SIMD table's im2col_panel. */
static void im2col_block(const conv_job *j, int64_t k0, int64_t kc, int64_t p0, int64_t np, float *dst,
                         int64_t pstride) {
  const conv_plan *cp = j->cp;
  const view2d *v = &cp->v;
  const int64_t ksz = v->kh * v->kw;
  int64_t koff[EI_F32_GEMM_KC_MAX];
  int64_t c = k0 / ksz, r = k0 % ksz, ki = r / v->kw, kj = r % v->kw;
  for (int64_t k = 0; k < kc; k++) { /* source offset of each row: channel, kernel row, kernel column */
    koff[k] = c * j->sp + ki * v->dh * j->sr + kj * v->dw;
    if (++kj == v->kw) {
      kj = 0;
      if (++ki == v->kh) {
        ki = 0;
        c++;
      }
    }
  }
  int64_t oy = p0 / v->OW, ox = p0 % v->OW;
  for (int64_t t0 = 0; t0 < np; t0 += PANEL) {
    const int cnt = (int)(np - t0 < PANEL ? np - t0 : PANEL);
    int64_t base[PANEL];
    for (int t = 0; t < cnt; t++) { /* window origin of each pixel */
      base[t] = oy * v->sh * j->sr + ox * v->sw;
      if (++ox == v->OW) {
        ox = 0;
        oy++;
      }
    }
    j->simd->im2col_panel(j->src, koff, kc, base, cnt, (int)v->sw, dst + (t0 / PANEL) * pstride);
  }
}

/* Shared im2col: task = (16-pixel panel, K block) of the whole image. */
static void shared_im2col_task(void *arg, int64_t t0, int64_t t1) {
  const conv_job *j = arg;
  const conv_plan *cp = j->cp;
  const int64_t nkb = ceil_div(cp->K, cp->kc);
  for (int64_t t = t0; t < t1; t++) {
    const int64_t q = t / nkb, k0 = (t % nkb) * cp->kc, kc = cp->K - k0 < cp->kc ? cp->K - k0 : cp->kc;
    const int64_t p0 = q * PANEL, np = cp->P - p0 < PANEL ? cp->P - p0 : PANEL;
    im2col_block(j, k0, kc, p0, np, j->bbuf + q * PANEL * cp->K + k0 * PANEL, PANEL * cp->K);
  }
}

/* ---- GEMM tasks ---- */

/* Raw X rows [k0, k0+kc), pixels [p, p+nr) copied as 16-wide panels (the partial last pixel panel: reading it
 * in place would run past the end of X). */
static void pack_raw_tail(const conv_job *j, int64_t k0, int64_t kc, int64_t p, int nr, float *dst) {
  const float *src = j->x + k0 * j->cp->HW + p;
  for (int h = 0; h * PANEL < nr; h++) {
    const int w = nr - h * PANEL < PANEL ? nr - h * PANEL : PANEL;
    float *d = dst + h * PANEL * kc;
    for (int64_t k = 0; k < kc; k++) {
      int t = 0;
      for (; t < w; t++) d[k * PANEL + t] = src[k * j->cp->HW + h * PANEL + t];
      for (; t < PANEL; t++) d[k * PANEL + t] = 0.f;
    }
  }
}

/* One micro-kernel call of a task: output channels [m, m+mr), pixels p0 + [n, n+nr), K block [k0, k0+kc). */
static void conv_tile(const conv_job *j, const ei__f32_gemm_epi *e, int last, int64_t m, int mr, int64_t k0,
                      int64_t kc, int64_t p0, int64_t n, int nr, const float *b, int64_t b_rs, int64_t b_ps,
                      int64_t raw_tail, const float *slot) {
  const conv_plan *cp = j->cp;
  const int64_t P = cp->P;
  ei__f32_gemm_epi et = *e;
  if (last) et.bias_m = j->bias + m;
  const float *a = j->a + kblock_at(cp->Mg, j->uk->mr, k0, kc, m);
  float *c = j->y + m * P + p0 + n;
  if (n >= raw_tail)
    j->uk->fn(mr, nr, kc, a, slot, PANEL, PANEL * kc, c, P, &et);
  else
    j->uk->fn(mr, nr, kc, a, cp->mode == B_RAW ? b + n : b + (n / PANEL) * b_ps, b_rs, b_ps, c, P, &et);
  if (last && j->post_act)
    for (int i = 0; i < mr; i++) ei__act_apply_n(j->post_act, c + i * P, nr);
}

/* One task: pixel tile x output-channel chunk, every K block. */
static void conv_item(const conv_job *j, int64_t item, float *slot) {
  const conv_plan *cp = j->cp;
  const ei__f32_gemm_ukernel *uk = j->uk;
  const int MR = uk->mr, NR = uk->nr;
  const int64_t K = cp->K, P = cp->P, KC = cp->kc;
  const int64_t tile = item / j->msplit, mi = item % j->msplit;
  const int64_t NTc = cp->nt, p0 = tile * NTc, np = P - p0 < NTc ? P - p0 : NTc;
  const int64_t m0 = mi * j->mc, m1 = m0 + j->mc < cp->Mg ? m0 + j->mc : cp->Mg;
  if (m0 >= m1) return;
  const int64_t nkb = ceil_div(K, KC);
  for (int64_t kb = 0; kb < nkb; kb++) {
    const int64_t k0 = kb * KC, kc = K - k0 < KC ? K - k0 : KC;
    const int last = kb == nkb - 1;
    const float *b;
    int64_t b_rs, b_ps;
    int64_t raw_tail = np; /* RAW: pixels from here on come from the packed tail */
    if (cp->mode == B_RAW) {
      b = j->x + k0 * cp->HW + p0;
      b_rs = cp->HW;
      b_ps = PANEL;
      raw_tail = np / NR * NR;
      if (p0 + np == P && raw_tail < np) pack_raw_tail(j, k0, kc, p0 + raw_tail, (int)(np - raw_tail), slot);
      else raw_tail = np;
    } else if (cp->mode == B_SHARED) {
      b = j->bbuf + (p0 / PANEL) * PANEL * K + k0 * PANEL;
      b_rs = PANEL;
      b_ps = PANEL * K;
    } else {
      im2col_block(j, k0, kc, p0, np, slot, PANEL * kc);
      b = slot;
      b_rs = PANEL;
      b_ps = PANEL * kc;
    }
    ei__f32_gemm_epi e;
    if (last) {
      e = j->last;
    } else {
      memset(&e, 0, sizeof e);
      e.alpha = 1.f;
    }
    e.load_c = kb > 0;
    if (uk->b_outer) { /* each B panel once (it stays in L1), every A micro-panel against it */
      for (int64_t n = 0; n < np; n += NR) {
        const int nr = (int)(np - n < NR ? np - n : NR);
        for (int64_t m = m0; m < m1; m += MR)
          conv_tile(j, &e, last, m, (int)(m1 - m < MR ? m1 - m : MR), k0, kc, p0, n, nr, b, b_rs, b_ps, raw_tail,
                    slot);
      }
    } else {
      for (int64_t m = m0; m < m1; m += MR)
        for (int64_t n = 0; n < np; n += NR)
          conv_tile(j, &e, last, m, (int)(m1 - m < MR ? m1 - m : MR), k0, kc, p0, n, (int)(np - n < NR ? np - n : NR),
                    b, b_rs, b_ps, raw_tail, slot);
    }
  }
}

/* ---- Winograd F(2x2, 3x3) tasks ---- */

/* F(4x4) output of one output channel for the cnt tiles of a panel from tile0: the transform interleaves each
 * output row of the 16 tiles into tmp, copied into Y run by run (tiles of one tile row are neighbours in Y). */
static void wino4_out_panel(const conv_job *j, const float *mp, int64_t mxs, int64_t m, int64_t tile0, int cnt) {
  const conv_plan *cp = j->cp;
  const view2d *v = &cp->v;
  const int64_t tw = cp->tw;
  float tmp[4][4 * PANEL] __attribute__((aligned(64)));
  j->simd->wino4_out(mp, mxs, j->bias[m], j->post_act ? NULL : j->act, tmp[0]);
  float *ym = j->y + m * cp->P;
  for (int t = 0; t < cnt;) {
    const int64_t tile = tile0 + t, ty = tile / tw, tx = tile % tw;
    const int run = (int)(cnt - t < tw - tx ? cnt - t : tw - tx);
    const int64_t ox = 4 * tx, ncol = 4 * run < v->OW - ox ? 4 * run : v->OW - ox;
    for (int i = 0; i < 4 && 4 * ty + i < v->OH; i++)
      memcpy(ym + (4 * ty + i) * v->OW + ox, tmp[i] + 4 * t, (size_t)ncol * sizeof(float));
    t += run;
  }
}

/* Tiles [t0, t0 + tb) x output channels [m0, m1): the input transform of the tiles (all channels) into V, then per
 * chunk of at most WMC output channels the wx GEMMs U_xi x V_xi into Mb and the output transform into Y
 * (F(2x2): 16 positions of 4x4 patches; F(4x4): 36 of 6x6). */
static void wino_item(const conv_job *j, int64_t item, float *slot) {
  const conv_plan *cp = j->cp;
  const view2d *v = &cp->v;
  const ei__f32_gemm_ukernel *uk = j->uk;
  const int MR = uk->mr, NR = uk->nr, r = cp->wr, X = cp->wx, pw = r + 2;
  const int64_t C = cp->Cg, M = cp->Mg, T = cp->th * cp->tw, KC = cp->kc, tw = cp->tw;
  const int64_t blk = item / j->msplit, mi = item % j->msplit;
  const int64_t t0 = blk * j->tb, nt = T - t0 < j->tb ? T - t0 : j->tb;
  const int64_t m0 = mi * j->mc, m1 = m0 + j->mc < M ? m0 + j->mc : M;
  if (m0 >= m1) return;
  const int64_t tb = j->tb;
  float *V = slot, *Mb = slot + X * C * tb;
  const int64_t vxs = C * tb, mxs = (M < WMC ? M : WMC) * tb; /* V_xi: [C x tb] panels; Mb_xi: [ch x tb] rows */
  float d[36 * PANEL] __attribute__((aligned(64))), buf[4 * PANEL] __attribute__((aligned(64)));

  /* 1. input transform: each patch gathered by im2col_panel (X patch positions x 16 tiles), then B^T d B */
  int64_t koff[36];
  for (int k = 0; k < X; k++) koff[k] = (k / pw) * cp->Wp + k % pw;
  for (int64_t q = 0; q * PANEL < nt; q++) {
    const int cnt = (int)(nt - q * PANEL < PANEL ? nt - q * PANEL : PANEL);
    int64_t off[PANEL];
    for (int t = 0; t < cnt; t++) {
      const int64_t tile = t0 + q * PANEL + t;
      off[t] = r * (tile / tw) * cp->Wp + r * (tile % tw);
    }
    if (r == 4) { /* F(4x4): runs of neighbouring tiles read straight from the staged rows (no gather) */
      int64_t base[5];
      int a[6], nseg = 0;
      for (int t = 0; t < cnt && nseg <= 4; t++)
        if (t == 0 || off[t] != off[t - 1] + 4) {
          base[nseg < 5 ? nseg : 4] = off[t] - 4 * t;
          a[nseg++] = t;
        }
      int rows_ok = nseg <= 4;
      for (int sg = 0; rows_ok && sg < nseg; sg++) rows_ok = base[sg] >= 0;
      a[nseg < 5 ? nseg : 5] = cnt;
      for (int64_t c = 0; c < C; c++) {
        if (rows_ok) {
          j->simd->wino4_in_rows(j->src + c * j->sp, cp->Wp, base, a, nseg, V + q * PANEL * C + c * PANEL, vxs);
        } else {
          j->simd->im2col_panel(j->src + c * j->sp, koff, X, off, cnt, r, d);
          j->simd->wino4_in(d, V + q * PANEL * C + c * PANEL, vxs);
        }
      }
      continue;
    }
    for (int64_t c = 0; c < C; c++) {
      j->simd->im2col_panel(j->src + c * j->sp, koff, X, off, cnt, r, d);
      j->simd->wino_in(d, V + q * PANEL * C + c * PANEL, vxs);
    }
  }

  const int64_t wmc = WMC / MR * MR; /* chunks start on micro-panel boundaries */
  for (int64_t c0 = m0; c0 < m1; c0 += wmc) {
    const int64_t c1 = c0 + wmc < m1 ? c0 + wmc : m1;
    /* 2. the X GEMMs, K blocked */
    for (int xi = 0; xi < X; xi++) {
      const float *A = j->a + (size_t)xi * j->apanel, *B = V + xi * vxs;
      float *Cx = Mb + xi * mxs;
      for (int64_t k0 = 0; k0 < C; k0 += KC) {
        const int64_t kc = C - k0 < KC ? C - k0 : KC;
        ei__f32_gemm_epi e;
        memset(&e, 0, sizeof e);
        e.alpha = 1.f;
        e.load_c = k0 > 0;
        for (int64_t n = 0; n < nt; n += NR) {
          const int nr = (int)(nt - n < NR ? nt - n : NR);
          for (int64_t m = c0; m < c1; m += MR)
            uk->fn((int)(c1 - m < MR ? c1 - m : MR), nr, kc, A + m * C + k0 * MR, B + (n / PANEL) * PANEL * C + k0 * PANEL,
                   PANEL, PANEL * C, Cx + (m - c0) * tb + n, tb, &e);
        }
      }
    }
    /* 3. output transform A^T m A + bias (+ activation) into Y */
    for (int64_t m = c0; m < c1; m++) {
      float *ym = j->y + m * cp->P;
      for (int64_t q = 0; q * PANEL < nt; q++) {
        const int cnt = (int)(nt - q * PANEL < PANEL ? nt - q * PANEL : PANEL);
        const int64_t tile0 = t0 + q * PANEL, ty = tile0 / tw, tx0 = tile0 % tw;
        const float *mp = Mb + (m - c0) * tb + q * PANEL;
        if (r == 4) {
          wino4_out_panel(j, mp, mxs, m, tile0, cnt);
          continue;
        }
        if (cnt == PANEL && tx0 + PANEL <= tw && 2 * (tx0 + PANEL) <= v->OW) { /* 16 tiles side by side */
          float *row0 = ym + 2 * ty * v->OW + 2 * tx0;
          j->simd->wino_out(mp, mxs, j->bias[m], j->post_act ? NULL : j->act, row0,
                            2 * ty + 1 < v->OH ? row0 + v->OW : NULL, NULL);
          continue;
        }
        j->simd->wino_out(mp, mxs, j->bias[m], j->post_act ? NULL : j->act, NULL, NULL, buf);
        for (int t = 0; t < cnt; t++) {
          const int64_t tile = tile0 + t, oy = 2 * (tile / tw), ox = 2 * (tile % tw);
          for (int i = 0; i < 2; i++)
            for (int jj = 0; jj < 2; jj++)
              if (oy + i < v->OH && ox + jj < v->OW) ym[(oy + i) * v->OW + ox + jj] = buf[(i * 2 + jj) * PANEL + t];
        }
      }
    }
  }
}

/* Worker `slot`: takes tasks from the shared counter until none is left. */
static void conv_worker(void *arg, int64_t s0, int64_t s1) {
  conv_job *j = arg;
  for (int64_t s = s0; s < s1; s++) {
    float *slot = j->cp->mode == B_SHARED ? NULL : j->bbuf + s * align16(j->cp->slot_floats);
    for (;;) {
      const int64_t item = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
      if (item >= j->items) break;
      if (j->cp->mode == B_WINO)
        wino_item(j, item, slot);
      else
        conv_item(j, item, slot);
    }
  }
}

/* K == 0: every output is act(bias). */
static void conv_bias_only(const conv_plan *cp, const float *bias, float *y, const ei__act *act) {
  for (int64_t m = 0; m < cp->Mg; m++) {
    float *yr = y + m * cp->P;
    for (int64_t p = 0; p < cp->P; p++) yr[p] = bias[m];
    if (act) ei__act_apply_n(act, yr, cp->P);
  }
}

static void conv_gemm(int path, ei__isa isa, const ei__conv_shape *s, const float *x, const float *wpack,
                      const float *bias, float *y, const ei__act *act, void *ws, ei_threadpool *pool) {
  conv_plan cp;
  make_plan(path, isa, s, &cp);
  if (cp.Mg == 0 || cp.P == 0 || cp.too_big) return; /* too_big: infer refused it */
  conv_job j;
  memset(&j, 0, sizeof j);
  j.cp = &cp;
  j.uk = ei__f32_gemm_ukernel_get(isa);
  j.simd = ei__f32_simd_get(isa);
  const int MR = j.uk->mr;
  j.last.alpha = 1.f;
  j.act = act;
  if (act && ei__f32_act_in_kernel(act)) {
    j.last.act = act->kind;
    j.last.act_alpha = act->alpha;
    j.last.act_beta = act->beta;
  } else {
    j.post_act = act;
  }
  j.stage = ws;
  j.bbuf = (float *)ws + cp.stage_floats;
  const int nt = pool ? ei_threadpool_size(pool) : 1;
  const int64_t mpanels = ceil_div(cp.Mg, MR);
  j.tiles = ceil_div(cp.P, cp.nt);
  /* Split the output channels when there are few pixel tiles (for B_TILE only if unavoidable: each chunk
   * redoes the tile's im2col). */
  int64_t want = nt > 1 ? 4 * (int64_t)nt : 1;
  if (cp.mode == B_TILE) want = j.tiles >= 2 * nt ? 1 : 2 * (int64_t)nt;
  j.msplit = j.tiles >= want ? 1 : ceil_div(want, j.tiles);
  if (j.msplit > mpanels) j.msplit = mpanels;
  j.mc = ceil_div(mpanels, j.msplit) * MR;
  j.msplit = ceil_div(cp.Mg, j.mc);
  j.items = j.tiles * j.msplit;
  j.apanel = group_a_floats(MR, cp.Mg, cp.K);
  int64_t max_workers = SLOTS;
  if (cp.mode == B_WINO) { /* tasks: blocks of tiles (32, or 16 for mid-sized images) x output-channel chunks */
    j.tb = cp.tb;
    j.tiles = ceil_div(cp.th * cp.tw, j.tb);
    want = j.tiles >= 2 * nt ? 1 : 2 * (int64_t)nt;
    /* few blocks are uneven (F(4x4) on 28x28 or F(2x2) on 14x14: 49 tiles = 16 + 16 + 16 + 1): below 4 per
     * thread, split the output channels too (each chunk redoes its blocks' input transform, a tenth of the work) */
    if (nt > 1 && j.tiles < 4 * (int64_t)nt) want = 4 * (int64_t)nt;
    j.msplit = j.tiles >= want ? 1 : ceil_div(want, j.tiles);
    if (j.msplit > mpanels) j.msplit = mpanels;
    j.mc = ceil_div(mpanels, j.msplit) * MR;
    j.msplit = ceil_div(cp.Mg, j.mc);
    j.items = j.tiles * j.msplit;
    j.apanel = group_a_floats(MR, cp.Mg, cp.Cg);
    max_workers = WSLOTS;
  }
  const size_t apanel = j.apanel;
  const double item_macs = (double)(j.mc < cp.Mg ? j.mc : cp.Mg) * (double)(cp.P < cp.nt ? cp.P : cp.nt) * (double)cp.K;
  int64_t workers = j.items < nt ? j.items : nt;
  if (workers > max_workers) workers = max_workers;
  ei_threadpool *gp = item_macs * (double)j.items >= 262144.0 ? pool : NULL; /* tiny convs: one thread */

  for (int64_t n = 0; n < s->N; n++) {
    for (int64_t g = 0; g < s->group; g++) {
      j.x = x + (n * s->C + g * cp.Cg) * cp.HW;
      j.y = y + (n * s->M + g * cp.Mg) * cp.P;
      j.bias = bias + g * cp.Mg;
      if (cp.K == 0) {
        conv_bias_only(&cp, j.bias, j.y, act);
        continue;
      }
      j.a = wpack + (size_t)g * (cp.mode == B_WINO ? (size_t)cp.wx : 1) * apanel;
      j.src = j.x;
      j.sp = cp.HW;
      j.sr = cp.v.W;
      if (cp.stage) {
        ei__parallel_for(gp, cp.Cg, 1 + 16384 / (cp.Hp * cp.Wp + 1), stage_task, &j);
        j.src = j.stage;
        j.sp = cp.Hp * cp.Wp;
        j.sr = cp.Wp;
      }
      if (cp.mode == B_SHARED) {
        const int64_t tasks = ceil_div(cp.P, PANEL) * ceil_div(cp.K, cp.kc);
        ei__parallel_for(gp, tasks, 1, shared_im2col_task, &j);
      }
      atomic_store_explicit(&j.next, 0, memory_order_relaxed);
      ei__parallel_for(gp, gp ? workers : 1, 1, conv_worker, &j);
      if (cp.mode == B_WINO && j.post_act) j.simd->act(j.post_act, j.y, cp.Mg * cp.P);
    }
  }
}

/* ---- driver ---- */

void ei__f32_conv_fast(int path, ei__isa isa, const ei__conv_shape *s, const float *x, const float *wpack,
                       const float *bias, float *y, const ei__act *act, void *ws, ei_threadpool *pool) {
  if (path == EI_CONV_DW)
    ei__f32_dwconv_fast(isa, s, x, wpack, bias, y, act, pool);
  else
    conv_gemm(path, isa, s, x, wpack, bias, y, act, ws, pool);
}
