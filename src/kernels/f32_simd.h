/* Per-ISA float32 SIMD kernels besides the GEMM micro-kernel (kernels/f32_gemm.h): the fused activation over a
 * row, depthwise-convolution rows, max-pooling rows and elementwise adds. One table per level
 * (f32_simd_avx512 / _avx2 / _neon, compiled from kernels/f32_simd_tmpl.h with each ISA's flags; f32_simd_scalar
 * is the plain-C fallback), chosen once with ei__f32_simd_get(isa). */
#ifndef EI_F32_SIMD_H
#define EI_F32_SIMD_H

#include "graph/ir.h"

#define EI_F32_DW_MAX_KH 8 /* tallest depthwise kernel the row kernels take */

/* One output row of a 2-D depthwise convolution, interior columns only (every tap inside the input row). */
typedef struct ei__f32_dw_row {
  const float *rows[EI_F32_DW_MAX_KH]; /* input row read by kernel row ki, NULL where it falls in the padding */
  const float *w;                      /* the channel's kh x kw weights */
  float bias;
  int kh, kw, sw;                      /* kw 3 or 5, sw 1 or 2, dilation 1 */
  int64_t pl, W;                       /* left pad, input width */
  const ei__act *act;                  /* fused activation, or NULL */
} ei__f32_dw_row;

#define EI_F32_DW_PLANE_MAX 256 /* largest plane (H*W) of the whole-plane depthwise kernel */
#define EI_F32_DW_PLANE_TAPS 25 /* most taps (kh*kw) of the whole-plane depthwise kernel */

/* One whole output plane of a 2-D depthwise convolution with stride 1, no dilation and OW == W (the usual "same"
 * padding) on a small image: output p = oy*W + ox reads input p + off[t] for tap t, where valid[t] has bit p set;
 * each tap is then one shifted, masked vector load of the flat input plane. */
typedef struct ei__f32_dw_plane {
  const float *x;   /* input plane */
  const float *w;   /* the channel's taps (kh*kw) */
  float bias;
  const ei__act *act;
  int P, taps;      /* outputs (OH*OW <= EI_F32_DW_PLANE_MAX), taps */
  const int64_t *off;                          /* [taps] */
  const uint64_t (*valid)[EI_F32_DW_PLANE_MAX / 64]; /* [taps] bitmaps over the outputs */
} ei__f32_dw_plane;

#define EI_F32_DW3_MAXW 1024 /* widest input row (W + left pad) of the whole-plane 3x3 depthwise kernel */

/* One whole output plane of a 3x3 depthwise convolution, stride 1 or 2 (both axes), no dilation, any padding
 * (pt, pl <= 2, bottom/right any) and input width W + pl <= EI_F32_DW3_MAXW. The template's kernel copies each
 * input row once into a small zero-padded ring of 3 rows on the stack (stride 2: split into its even and odd
 * columns), so every tap of every output vector is one plain vector load; the AVX-512 one reads the input rows
 * directly with masked loads and keeps each loaded row in registers for the output rows that use it. */
typedef struct ei__f32_dw3 {
  const float *x;   /* input plane H x W */
  const float *w;   /* the channel's 9 taps */
  float bias;
  const ei__act *act; /* fused activation (Sigmoid left to the caller) */
  int64_t H, W, OH, OW, pt, pl;
  int S;
} ei__f32_dw3;

/* One output row of a 2-D max pool, interior columns only, like ei__f32_dw_row (kernel kw x kh, stride sw). */
typedef struct ei__f32_pool_row {
  const float *rows[EI_F32_DW_MAX_KH]; /* the input rows of the window (none in the padding) */
  int kh, kw, sw;                      /* kw 2..EI_F32_DW_MAX_KH, sw 1 or 2, dilation 1 */
  int64_t pl, W;
} ei__f32_pool_row;

typedef struct ei__f32_simd {
  const char *name; /* "avx512", "avx2", "neon", "scalar" */
  /* x[i] = act(x[i]) for i < n, as ei__act_apply. */
  void (*act)(const ei__act *a, float *x, int64_t n);
  /* y[ox] = act(bias + sum over taps), ox in [lo, hi), interior columns only unless dw_any_columns (then taps
   * outside the row count as zero: the whole row in one call). kw 3 or 5, sw 1 or 2 only. */
  void (*dw_row)(const ei__f32_dw_row *d, float *y, int64_t lo, int64_t hi);
  int dw_any_columns;
  /* y[p] = act(bias + sum over taps) for p < P; NULL on levels without masked loads. */
  void (*dw_plane)(const ei__f32_dw_plane *d, float *y);
  /* y[p] = act(bias + 3x3 taps) for the whole OH x OW plane (ei__f32_dw3). */
  void (*dw3_plane)(const ei__f32_dw3 *d, float *y);
  int dw3_max_stride; /* the strides (1 .. this) where dw3_plane beats the row kernels; with 2 it also beats
                       * dw_plane on small planes (the driver then prefers it for every 3x3 it takes) */
  /* y[ox] = max over the window, ox in [lo, hi). */
  void (*maxpool_row)(const ei__f32_pool_row *p, float *y, int64_t lo, int64_t hi);
  /* im2col of one panel of 16 output pixels: dst[k*16 + t] = src[koff[k] + off[t]] for k < kc, t < cnt, and 0
   * for t >= cnt. off[] is the pixels' window origin (sw: the conv's column stride); runs of pixels along one
   * output row are copied as vectors. */
  void (*im2col_panel)(const float *src, const int64_t *koff, int64_t kc, const int64_t *off, int cnt, int sw,
                       float *dst);
  /* Winograd F(2x2, 3x3) transforms over 16 tiles (one lane per tile).
   * Input: d[(r*4 + c)*16 + t] is element (r, c) of tile t's 4x4 input patch; writes V = B^T d B as
   * v[xi*xs + t], xi = r*4 + c. */
  void (*wino_in)(const float *d, float *v, int64_t xs);
  /* Output: m[xi*xs + t] is tile t's product; Y = A^T m A + bias, then act (kinds of ei__f32_act_in_kernel).
   * With row0 (and row1, or NULL when the second output row is past the image), tile t's 2x2 outputs go to
   * row0/row1[2t], [2t + 1] (16 tiles side by side on one tile row); else to buf[(i*2 + j)*16 + t]. */
  void (*wino_out)(const float *m, int64_t xs, float bias, const ei__act *act, float *row0, float *row1,
                   float *buf);
  /* Winograd F(4x4, 3x3) transforms over 16 tiles (one lane per tile; kernels/f32_wino43_tmpl.h, GCC vector
   * extensions), with B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1],
   * G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1],
   * A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1] (points 0, 1, -1, 2, -2, infinity):
   * Y = A^T [(G g G^T) . (B^T d B)] A, 4x fewer multiplies than the direct 3x3 conv.
   * Input: d[(r*6 + c)*16 + t] is element (r, c) of tile t's 6x6 input patch; writes V = B^T d B as
   * v[xi*xs + t], xi = r*6 + c (36 rows). */
  void (*wino4_in)(const float *d, float *v, int64_t xs);
  /* The same straight from the (staged) input, without the gather: tile t's patch element (r, c) is
   * src[off[t] + r*Wp + c] where the 16 tiles form nseg runs of neighbours along tile rows (off steps by 4 inside
   * a run): run s covers lanes [a[s], a[s+1]) and reads from base[s] = off[a[s]] - 4 a[s]; lanes from a[nseg] on
   * are zero. Reads base[s] + r*Wp + [0, 80) for r < 6: the caller makes sure that memory exists. */
  void (*wino4_in_rows)(const float *src, int64_t Wp, const int64_t *base, const int *a, int nseg, float *v,
                        int64_t xs);
  /* m[xi*xs + t] is tile t's product (36 rows); Y = A^T m A + bias, then the activation when it is one of the
   * kinds of ei__f32_act_in_kernel (others: the caller applies them). Output row i of the 16 tiles, side by side:
   * tile t's outputs at dst[i*64 + 4t + j]. */
  void (*wino4_out)(const float *m, int64_t xs, float bias, const ei__act *act, float *dst);
  /* y[i] = act(a[i] + b[i]), i < n (b_scalar: b[0] for every i). */
  void (*add)(const float *a, const float *b, int b_scalar, float *y, int64_t n, const ei__act *act);
} ei__f32_simd;

/* The table for a level (the scalar one for levels without their own). Never NULL. */
const ei__f32_simd *ei__f32_simd_get(ei__isa isa);

extern const ei__f32_simd ei__f32_simd_scalar;
#if defined(__x86_64__)
extern const ei__f32_simd ei__f32_simd_avx2, ei__f32_simd_avx512;
#elif defined(__aarch64__)
extern const ei__f32_simd ei__f32_simd_neon;
#endif

#endif
