/* The SIMD integer (8-bit) kernel families behind QLinearConv / ConvInteger, QLinearMatMul / MatMulInteger /
 * QGemm with a constant B, QLinearAdd, QLinearGlobalAveragePool and uint8 / int8 MaxPool: one portable interface
 * (a small table of function pointers per family chosen once, at op init, by ISA level; the scalar reference ops
 * in src/kernels/ref/ are the fallback) and the portable drivers (packing, staging, tiling, threads) in
 * q8_conv.c, q8_gemm.c and q8_kernels.c (also QuantizeLinear / DequantizeLinear of uint8 / int8); the
 * micro-kernels are in src/kernels/x86/q8_*_<isa>.c and src/kernels/arm/q8_*_<isa>.c. Every kernel is bit-exact with the scalar reference: the same integer
 * accumulator modulo 2^32, requantization exactly as src/quant/requant.h (tests/test_q8_kernels.c).
 *
 * ---- One signedness for the multiply ----
 * Every kernel multiplies an activation byte of one fixed signedness by a signed weight byte:
 *   x86 (vpdpbusd, or vpmaddwd on zero-extended bytes): unsigned activations, signed weights;
 *   ARM (sdot, or smlal on sign-extended bytes):         signed activations, signed weights.
 * Other operand types are mapped onto these by flipping the top bit (v ^ 0x80, i.e. v + 128 for int8 -> uint8,
 * v - 128 for uint8 -> int8) and moving the zero point by the same 128, which leaves every (v - zero_point)
 * unchanged, so the accumulator sum_k (x_k - x_zp) * (w_k - w_zp) is exactly the reference's:
 *   acc = dot(x_e, w_e) - w_zp_e[m] * xsum_e[p] - x_zp_e * wsum_e[m] + K * x_zp_e * w_zp_e[m] + bias[m].
 * Padding positions hold x_zp_e; padded channels / k positions hold weight 0 and are not counted in K or xsum.
 *
 * ---- Conv: implicit GEMM over a staged input ----
 * Per image and group the input is staged once ("NC4HW4" with phases): channels in quads (4 consecutive input
 * channels interleaved, so one 32-bit lane holds 4 k values), the spatial plane padded with the zero point and,
 * for strides > 1, split into stride phases so that every kernel tap reads a contiguous run of output pixels:
 *   plane (cq, ph, pw) row r col c holds x[4cq + i][r*sh + ph - pad_top][c*sw + pw - pad_left], i = 0..3.
 * Output pixels are numbered "virtually" as v = oh * Ws + ow (Ws = staged width >= OW; columns OW..Ws-1 are
 * computed and discarded), so tap kk of pixel v is at byte koff[kk] + 4 * v for every v: the micro-kernel is a
 * GEMM tile MR output channels x NR virtual pixels whose k loop walks the koff table (kk = cq * kvol + tap).
 * Pixels are the vector lanes (NCHW output rows are contiguous), weights are broadcast per channel. The same
 * staging serves every kernel shape (1x1, 3x3 s1 / s2, the 7x7 s2 stem, dilations, groups). For small planes
 * (where discarded columns and tails would waste lanes) a level may have a channels-as-lanes tile instead
 * (ei__q8c_cltile); depthwise convolutions (group == C) use per-channel byte planes and a direct kernel, or, at
 * the levels that have one (AVX512-VNNI, dotprod), for kernel widths <= 4 with zero weight zero points, a direct
 * kernel without any staging (ei__q8dwd_job: the pixel quads are gathered in registers from the NCHW rows).
 * A 1x1 conv with stride 1 and no padding stages whole interleaved planes (no per-row work). When every
 * quantization input is constant, the per-channel epilogue constants are computed at init
 * (ei__q8c_cache_epilogue), not at every run.
 *
 * ---- Packed conv weights (per kernel, chosen at init) ----
 * Channels in blocks of MR per group (the last block zero-padded); per block, per k quad kq, per channel:
 *   EI_Q8W_DOT4  int8  w[blk][kq][MR][4]            (vpdpbusd, sdot by element)
 *   EI_Q8W_MADD  int16 w[blk][kq][MR][2][2]         pairs (k0, k2), (k1, k3) (vpmaddwd on the bytes of a lane
 *                                                   split as (b0, b2) = lane & 0x00ff00ff, (b1, b3) = lane >> 8)
 *   EI_Q8W_MLAL  int16 w[blk][kq][4][MR]            (smlal by element, after ld4 de-interleaves the quads)
 */
#ifndef EI_KERNELS_Q8_KERNELS_H
#define EI_KERNELS_Q8_KERNELS_H

#include <stdint.h>

#include "graph/ir.h"
#include "quant/requant.h"

enum { EI_Q8W_DOT4 = 0, EI_Q8W_MADD, EI_Q8W_MLAL };

/* ---- conv epilogue and output mapping ---- */

/* Per-op epilogue constants, indexed by absolute output channel. mult == NULL: int32 output (ConvInteger). */
typedef struct ei__q8_epi {
  const int32_t *cterm; /* K*xz*wz - xz*wsum + bias, mod 2^32 */
  const int32_t *wz;    /* effective weight zero points, or NULL when all are 0 */
  const float *mult;    /* requantization multipliers, or NULL */
  float flo, fhi;       /* lo - zp, hi - zp: the clamp of the scaled value before rounding */
  int32_t zp;           /* output zero point */
} ei__q8_epi;

/* A run of vector lanes [lane, lane + n) that lands on consecutive output elements out, out + 1, ... */
typedef struct ei__q8_seg {
  int lane, n;
  int64_t out;
} ei__q8_seg;

/* Splits the L lanes of virtual pixels [v, v + L) (row width ws, of which the first ow columns are real, pixels
 * at or past vend are not real) into runs of consecutive output elements. Returns the number of runs (0..L). */
static inline int ei__q8_segments(int64_t v, int L, int64_t ws, int64_t ow, int64_t vend, ei__q8_seg *s) {
  int cnt = 0;
  int64_t lane = 0, row = v / ws, col = v - row * ws;
  while (lane < L && v + lane < vend) {
    if (col >= ow) { /* discarded columns up to the end of the row */
      lane += ws - col;
      row++;
      col = 0;
      continue;
    }
    int64_t n = ow - col;
    if (n > L - lane) n = L - lane;
    if (n > vend - v - lane) n = vend - v - lane;
    s[cnt].lane = (int)lane;
    s[cnt].n = (int)n;
    s[cnt].out = row * ow + col;
    cnt++;
    lane += n;
    col += n;
    if (col >= ws) {
      row++;
      col = 0;
    }
  }
  return cnt;
}

/* The output runs of a tile's vectors (at most 4 vectors of at most 16 lanes), computed once per pixel tile. */
typedef struct ei__q8_segs {
  int nseg[4];
  int full[4];            /* one run covering every lane */
  ei__q8_seg seg[4][16];
} ei__q8_segs;

/* One conv micro-kernel call: MR channels (mr real) x nv vectors of L pixels (virtual v0 ...). */
typedef struct ei__q8c_tile {
  const uint8_t *x;      /* staged activations + 4 * v0 */
  const int32_t *koff;   /* byte offset of each k quad */
  int64_t kq;            /* k quads */
  const void *w;         /* the channel block's packed weights */
  const int32_t *xsum;   /* per-pixel activation sums + v0, or NULL (e->wz == NULL) */
  const ei__q8_epi *e;
  const ei__q8_segs *sg; /* where each vector's lanes go */
  int64_t m0;            /* absolute output channel of the block's first row */
  int mr, nv;            /* real channels, vectors */
  void *y;               /* output plane of channel m0 (bytes, or int32 when e->mult is NULL) */
  int64_t ystride;       /* elements between consecutive channel planes */
} ei__q8c_tile;

typedef void (*ei__q8c_ukernel_fn)(const ei__q8c_tile *t);

/* Channels-as-lanes conv tile, for small output planes where pixel lanes are wasted on the discarded columns and
 * the tile tails (e.g. 7x7): 16 * nc output channels (lanes) x np real output pixels (broadcast), read from the
 * same staged input and the same weight blocks (MR = 8, EI_Q8W_DOT4: two blocks make 16 lanes). Each pixel's
 * results are transposed into the NCHW planes by the epilogue. */
typedef struct ei__q8c_cltile {
  const uint8_t *xp[8];  /* per pixel: staged activations + 4 * its virtual index */
  int32_t xsum[8];       /* per pixel activation sums (when e->wz) */
  const int32_t *koff;
  int64_t kq;
  const uint8_t *w;      /* the first of the 2 * nc weight blocks */
  size_t block_bytes;
  int nc, np;            /* 16-channel vectors (1..4), pixels (1..6) */
  const ei__q8_epi *e;
  int64_t m0;            /* absolute channel of lane 0 */
  void *y;               /* output element (channel m0, pixel p0) */
  int64_t ystride;       /* elements between channel planes */
} ei__q8c_cltile;

typedef void (*ei__q8c_cl_fn)(const ei__q8c_cltile *t);

/* Depthwise (group == C): one output channel, output rows [oh0, oh1), from single-channel staged planes (bytes,
 * not quads, row width ws). w: ntap int16 effective weights (w - w_zp; ntap even, a zero tap appended when the
 * kernel volume is odd); acc = sum_t x[toff[t] + oh * ws + ow] * w[t] + cterm, then the conv epilogue. */
typedef struct ei__q8dw_job {
  const uint8_t *x;      /* staged planes of the input channel */
  const int32_t *toff;   /* byte offset of each tap */
  int64_t ntap;
  const int16_t *w;
  int32_t cterm;
  float mult;            /* unused for int32 output */
  const ei__q8_epi *e;   /* flo, fhi, zp; e->mult NULL: int32 output */
  void *y;               /* output plane */
  int64_t oh0, oh1, ws, ow;
} ei__q8dw_job;

typedef void (*ei__q8dw_fn)(const ei__q8dw_job *j);

/* Direct depthwise (group == C, kernel width <= 4, width stride 1 or 2, width dilation 1, every effective weight
 * zero point 0): no staging. Each kernel row is one quad of int8 effective weights (w0 .. w(KW-1), then 0) and
 * each output pixel's quad of input bytes (x[ih][ow * sw - pl + 0..3]) is gathered in registers from the NCHW
 * input row; columns and rows outside the input read the zero point. Consecutive output channels (planes), all rows:
 *   acc = sum_kh dot4(quad(x_e), w[kh]) + cterm, then the conv epilogue (x_e = x ^ flip, the kernel's signedness). */
typedef struct ei__q8dwd_job {
  const uint8_t *x;      /* input plane (original bytes) */
  int64_t H, W, OH, OW, sh, sw, dh, pt, pl, KH;
  const int8_t *w;       /* KH quads */
  const int32_t *cterm;  /* per plane */
  const float *mult;     /* per plane; unused for int32 output */
  const ei__q8_epi *e;   /* flo, fhi, zp; e->mult NULL: int32 output */
  uint8_t xz, flip;      /* x zero point (original byte); xor to the kernel's activation type */
  void *y;               /* output plane */
  int64_t nplanes;       /* consecutive planes: plane i reads x + i * H * W with weights w + 4 * KH * i, cterm[i],
                          * mult[i] and writes y + i * OH * OW elements */
} ei__q8dwd_job;

typedef void (*ei__q8dwd_fn)(const ei__q8dwd_job *j);

/* A conv kernel family at one ISA level. */
typedef struct ei__q8c_kernel {
  const char *name;      /* "q8_conv_igemm_8x48c4_avx512vnni" */
  const char *dw_name;   /* "q8_dwconv_16x_avx512" */
  int mr, lanes, nvmax;  /* tile: mr channels x nvmax vectors of `lanes` pixels */
  int wfmt;              /* EI_Q8W_* */
  int xsigned;           /* staged activations are int8 (ARM) rather than uint8 (x86) */
  ei__q8c_ukernel_fn run;
  ei__q8dw_fn dw;
  ei__q8c_cl_fn cl;      /* channels-as-lanes variant (MR 8, DOT4 only), or NULL */
  ei__q8dwd_fn dwd;      /* direct depthwise (ei__q8dwd_job), or NULL */
  const char *dwd_name;  /* "q8_dwconv_direct_16x_avx512vnni" */
} ei__q8c_kernel;

/* The conv kernel of an ISA level, or NULL (EI_ISA_REF, or a level this build has no kernel for). */
const ei__q8c_kernel *ei__q8c_kernel_for(ei__isa isa);

/* ---- conv driver (q8_conv.c) ---- */

/* Weights packed at init for a kernel. */
typedef struct ei__q8c_pack {
  const ei__q8c_kernel *uk;
  int64_t M, group, Mg, Cg, Cq, kvol, kq, K; /* K = Cg * kvol (real) */
  int64_t KH, KW;                             /* 2-D kernel (1-D: KH = 1) */
  int64_t nmb;                                /* channel blocks per group */
  int wflip;                                  /* uint8 weights, stored as w - 128 */
  void *w;                                    /* [group][nmb] blocks */
  int32_t *wsum;                              /* [M] sums of the effective weights */
  int8_t *dw4;                                /* direct depthwise: [M][KH] quads of effective weights, or NULL */
  int32_t *epi;        /* epilogue constants cached at init (ei__q8c_cache_epilogue): [M] cterm, wz, mult */
  ei_dtype epi_xt;     /* ... for activations of this type */
  int epi_int32, epi_any_wz;
  size_t block_bytes, bytes;
} ei__q8c_pack;

/* Packs constant conv weights W [M, Cg, k...] (rank 3 or 4; uint8 / int8) for kernel uk; 0, or -1 when the
 * shape does not fit the packed format (the caller keeps the reference path) or on allocation failure (*nomem). */
int ei__q8c_pack_weights(const ei__q8c_kernel *uk, const void *W, ei_dtype wtype, int wrank, const int64_t *wdims,
                         int64_t group, ei__q8c_pack *p, int *nomem);
void ei__q8c_pack_free(ei__q8c_pack *p);
/* Effective weight (int8 value, after the uint8 -> int8 flip) of output channel m, input channel c of its group,
 * kernel tap t. */
int32_t ei__q8c_weight(const ei__q8c_pack *p, int64_t m, int64_t c, int64_t t);
/* Writes the reference layout of quant_ops.h (original bytes, [M][kp*Cg + c]) and the original weight sums. */
void ei__q8c_unpack_ref(const ei__q8c_pack *p, uint8_t *w, int32_t *wsum);

/* A conv problem (2-D or 1-D as H = 1) as the driver sees it. */
typedef struct ei__q8c_problem {
  int64_t N, C, H, W, M, group, OH, OW;
  int64_t KH, KW, sh, sw, dh, dw, pt, pl;
  ei_dtype xt;          /* uint8 / int8 */
  int out_int32;        /* ConvInteger */
} ei__q8c_problem;

/* Workspace bytes of ei__q8c_run for the problem, or 0 when the SIMD path cannot run it (fall back). */
size_t ei__q8c_workspace(const ei__q8c_pack *p, const ei__q8c_problem *q);

/* Quantization inputs of one run (all already validated by the op). */
typedef struct ei__q8c_qparams {
  int32_t xz;                 /* x zero point (original type's value) */
  const ei__tensor *wz_t;     /* w_zero_point or NULL; nwz elements (1 or M) */
  int64_t nwz;
  const int32_t *bias;        /* [M] or NULL */
  float xs, ys;               /* QLinearConv scales */
  const float *ws;            /* w scales, nws elements (1 or M) */
  int64_t nws;
  int32_t yz, lo, hi;         /* output zero point and clamp */
} ei__q8c_qparams;

/* Computes the per-channel epilogue constants of qp (effective weight zero points, cterm, multipliers) once, at
 * init, when every quantization input is constant: runs with activations of type xt and that output kind use them
 * instead of recomputing. 0, or -1 on allocation failure. */
int ei__q8c_cache_epilogue(ei__q8c_pack *p, const ei__q8c_qparams *qp, ei_dtype xt, int out_int32);

/* Runs the conv: x NCHW, y NCHW (uint8 / int8, or int32 when q->out_int32). ws: ei__q8c_workspace bytes. */
void ei__q8c_run(const ei__q8c_pack *p, const ei__q8c_problem *q, const ei__q8c_qparams *qp, const void *x, void *y,
                 void *ws, ei_threadpool *pool);
/* The kernel name for the problem class (depthwise or implicit GEMM). */
const char *ei__q8c_name(const ei__q8c_pack *p);

/* ---- GEMM with a constant B (q8_gemm.c): y[m][n] for A rows x packed B columns ---- */

/* Lanes are output columns n (row-major output rows are contiguous), rows of A are broadcast. B is packed at init
 * in blocks of NR = nv * lanes columns, K zero-padded to kpad (a multiple of 4):
 *   EI_Q8W_DOT4: int8  b[blk][kq][NR][4]                      (x86 vpdpbusd with uint8 A; ARM sdot by element)
 *   EI_Q8W_MADD: int16 b[blk][kq][nv][2][L][2]: per vector, the pairs (k0, k1) of its L columns, then (k2, k3)
 *   EI_Q8W_MLAL: int16 b[blk][Kp][NR]                        (smlal by element of an int16 A vector)
 * A is staged per run into rows of Kp elements: x86 uint8 (int16 for MADD), ARM int8 (int16 for MLAL). */
typedef struct ei__q8g_tile {
  const void *a;           /* staged A at the tile's first row (row stride lda elements) */
  int64_t lda, kp;         /* Kp: padded K */
  const void *b;           /* the column block's packed B */
  int mr, nv;              /* rows (<= MR), column vectors */
  int64_t n0, ncols;       /* first column, real columns in the tile */
  const int32_t *cterm;    /* [N]: K*az*bz - az*bsum */
  const int32_t *bz;       /* [N] effective B zero points, or NULL when all are 0 */
  const int32_t *asum;     /* A row sums at the tile's first row, or NULL */
  const int32_t *cadd;     /* QGemm C at (first row, n0), or NULL */
  int64_t ldc_m;           /* row stride of C (0: broadcast over rows) */
  int cadd_percol;         /* C varies over columns (else one value per row) */
  const float *mult;       /* [N], or NULL: int32 output */
  float flo, fhi;
  int32_t zp;
  void *y;                 /* output at (first row, n0) */
  int64_t ldy;             /* elements between rows */
} ei__q8g_tile;

typedef void (*ei__q8g_ukernel_fn)(const ei__q8g_tile *t);

typedef struct ei__q8g_kernel {
  const char *name;
  int mr, lanes, nv, kpad;
  int bfmt;
  int asigned, a16;        /* staged A: int8 (ARM) / uint8 (x86); widened to int16 */
  ei__q8g_ukernel_fn run;
} ei__q8g_kernel;

const ei__q8g_kernel *ei__q8g_kernel_for(ei__isa isa);

typedef struct ei__q8g_pack {
  const ei__q8g_kernel *uk;
  int64_t K, N, Kp, nb;    /* nb: column blocks */
  int bflip;               /* uint8 B, stored as b - 128 */
  void *b;
  int32_t *bsum;           /* [N] effective column sums */
  size_t block_bytes, bytes;
} ei__q8g_pack;

/* Packs B' [K][N], B'(k, n) = b[k * rs + n * cs] (uint8 / int8). 0, or -1 (no kernel, too large: *nomem 0;
 * allocation failure: *nomem 1). */
int ei__q8g_pack_b(const ei__q8g_kernel *uk, const void *B, ei_dtype bt, int64_t K, int64_t N, int64_t rs, int64_t cs,
                   ei__q8g_pack *p, int *nomem);
void ei__q8g_pack_free(ei__q8g_pack *p);
/* The reference layout (quant_ops.h: b[n][k], original bytes) and the original column sums. */
void ei__q8g_unpack_ref(const ei__q8g_pack *p, uint8_t *b, int32_t *bsum);

/* Quantization inputs of one GEMM run. */
typedef struct ei__q8g_qparams {
  ei_dtype at;
  int32_t az;                  /* per-tensor A zero point */
  const ei__tensor *bz_t;      /* B zero point(s) or NULL */
  int64_t nbz;                 /* 1 or N */
  float a_sc;                  /* a_scale (times alpha for QGemm) */
  const float *bs;             /* b_scale, nbs elements (1 or N); unused for int32 output */
  int64_t nbs;
  float ys;
  int32_t yz, lo, hi;
  int out_int32;
  const int32_t *c;            /* QGemm C or NULL, C(m, n) = c[m * c_ms + n * c_ns] */
  int64_t c_ms, c_ns;
} ei__q8g_qparams;

/* Workspace of ei__q8g_run for M rows. */
size_t ei__q8g_workspace(const ei__q8g_pack *p, int64_t M);
/* y[M][N] (row-major) = requant(A[M][K] * B'); A rows contiguous (row stride K). */
void ei__q8g_run(const ei__q8g_pack *p, int64_t M, const void *a, const ei__q8g_qparams *qp, void *y, void *ws,
                 ei_threadpool *pool);

/* ---- elementwise (q8_kernels.c) ---- */

/* QLinearAdd of two same-size uint8 / int8 runs (requant.h's ei__qadd with coefficients k), or, when b_scalar, of
 * a run and one broadcast value already folded into k.fixed (ei__qadd_fold): y = ei__qadd1(a, k.ra, k.fixed). */
typedef struct ei__q8add_args {
  const uint8_t *a, *b;
  uint8_t *y;
  int64_t n;
  int b_scalar;
  int is_signed;
  int32_t lo, hi;
  ei__qadd_coef k;
} ei__q8add_args;
typedef void (*ei__q8add_fn)(const ei__q8add_args *a, int64_t begin, int64_t end);
/* Element i of a QLinearAdd run (the scalar steps every SIMD kernel matches; their tails use it). */
static inline uint8_t ei__q8add_one(const ei__q8add_args *a, int64_t i) {
  const int32_t qa = a->is_signed ? (int8_t)a->a[i] : a->a[i];
  if (a->b_scalar) return (uint8_t)ei__qadd1(qa, a->k.ra, a->k.fixed, a->lo, a->hi);
  const int32_t qb = a->is_signed ? (int8_t)a->b[i] : a->b[i];
  return (uint8_t)ei__qadd(&a->k, qa, qb, a->lo, a->hi);
}
/* Sum of n bytes (uint8, or int8 when is_signed) as int64. */
typedef int64_t (*ei__q8sum_fn)(const uint8_t *x, int64_t n, int is_signed);

/* QuantizeLinear float -> uint8 / int8 of n elements: y = round_sat(x / scale, zp, lo, hi) (requant.h: the float
 * division, NaN -> lo, round half to even); DequantizeLinear uint8 / int8 -> float: y = (float)(q - zp) * scale. */
typedef struct ei__q8quant_args {
  const float *x;
  uint8_t *y;
  float scale;
  int32_t zp, lo, hi;
} ei__q8quant_args;
typedef void (*ei__q8quant_fn)(const ei__q8quant_args *a, int64_t begin, int64_t end);
typedef struct ei__q8dequant_args {
  const uint8_t *x;
  float *y;
  float scale;
  int32_t zp;
  int is_signed;
} ei__q8dequant_args;
typedef void (*ei__q8dequant_fn)(const ei__q8dequant_args *a, int64_t begin, int64_t end);

typedef struct ei__q8e_kernels {
  const char *add_name, *gap_name;
  ei__q8add_fn add;
  ei__q8sum_fn sum;
  const char *quant_name, *dequant_name;
  ei__q8quant_fn quant;
  ei__q8dequant_fn dequant;
} ei__q8e_kernels;
const ei__q8e_kernels *ei__q8e_kernels_for(ei__isa isa);
/* Runs QLinearAdd over the pool. */
void ei__q8add_run(const ei__q8e_kernels *k, const ei__q8add_args *a, ei_threadpool *pool);

/* ---- 2-D MaxPool of uint8 / int8 planes (q8_kernels.c; the baseline SIMD of the architecture) ---- */

/* NCHW planes, dilations 1, no Indices output; windows cut by the input (pads, ceil_mode) take the max of their
 * elements inside it, an empty window gives the type's lowest value (the reference's initial value). */
typedef struct ei__q8_maxpool_args {
  const uint8_t *x;
  uint8_t *y;
  int64_t planes, H, W, OH, OW, KH, KW, sh, sw, pt, pl;
  int is_signed;
} ei__q8_maxpool_args;
/* Whether ei__q8_maxpool2d handles the geometry (otherwise keep the reference). */
int ei__q8_maxpool2d_ok(const ei__q8_maxpool_args *a);
void ei__q8_maxpool2d(const ei__q8_maxpool_args *a, ei_threadpool *pool);

/* ---- per-ISA entry points (src/kernels/x86, src/kernels/arm) ---- */
#if defined(__x86_64__)
void ei__q8c_igemm_avx2(const ei__q8c_tile *t);
void ei__q8c_igemm_avx512(const ei__q8c_tile *t);
void ei__q8c_igemm_avxvnni(const ei__q8c_tile *t);
void ei__q8c_igemm_avx512vnni(const ei__q8c_tile *t);
void ei__q8c_igemm_cl_avx512vnni(const ei__q8c_cltile *t);
void ei__q8c_igemm_vnni256_evex(const ei__q8c_tile *t); /* AVX-VNNI kernel in EVEX form (AVX512-VNNI + VL) */
void ei__q8dw_avx2(const ei__q8dw_job *j);
void ei__q8dw_avx512(const ei__q8dw_job *j);
void ei__q8dwd_avx512vnni(const ei__q8dwd_job *j);
void ei__q8g_gemm_avx2(const ei__q8g_tile *t);
void ei__q8g_gemm_avx512(const ei__q8g_tile *t);
void ei__q8g_gemm_avxvnni(const ei__q8g_tile *t);
void ei__q8g_gemm_avx512vnni(const ei__q8g_tile *t);
void ei__q8g_gemm_vnni256_evex(const ei__q8g_tile *t);
void ei__q8add_avx2(const ei__q8add_args *a, int64_t begin, int64_t end);
void ei__q8add_avx512(const ei__q8add_args *a, int64_t begin, int64_t end);
int64_t ei__q8sum_avx2(const uint8_t *x, int64_t n, int is_signed);
int64_t ei__q8sum_avx512(const uint8_t *x, int64_t n, int is_signed);
void ei__q8quant_avx2(const ei__q8quant_args *a, int64_t begin, int64_t end);
void ei__q8quant_avx512(const ei__q8quant_args *a, int64_t begin, int64_t end);
void ei__q8dequant_avx2(const ei__q8dequant_args *a, int64_t begin, int64_t end);
void ei__q8dequant_avx512(const ei__q8dequant_args *a, int64_t begin, int64_t end);
#elif defined(__aarch64__)
void ei__q8c_igemm_neon(const ei__q8c_tile *t);
void ei__q8c_igemm_dotprod(const ei__q8c_tile *t);
void ei__q8dw_neon(const ei__q8dw_job *j);
void ei__q8dwd_dotprod(const ei__q8dwd_job *j);
void ei__q8g_gemm_neon(const ei__q8g_tile *t);
void ei__q8g_gemm_dotprod(const ei__q8g_tile *t);
void ei__q8add_neon(const ei__q8add_args *a, int64_t begin, int64_t end);
int64_t ei__q8sum_neon(const uint8_t *x, int64_t n, int is_signed);
void ei__q8quant_neon(const ei__q8quant_args *a, int64_t begin, int64_t end);
void ei__q8dequant_neon(const ei__q8dequant_args *a, int64_t begin, int64_t end);
#endif

#endif
