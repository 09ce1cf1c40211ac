/* Winograd F(4x4, 3x3) transforms for the float conv path f32_conv_wino4x3 (kernels/ref/conv_fast.c), over 16
 * tiles at a time (one lane per tile), per ISA: kernels/f32_wino43_tmpl.h instantiated by
 * x86/f32_wino43_avx512.c, x86/f32_wino43_avx2.c, arm/f32_wino43_neon.c and ref/f32_wino43.c (portable).
 *
 *   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
 *   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
 *   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
 * (interpolation points 0, 1, -1, 2, -2 and infinity). Y = A^T [(G g G^T) . (B^T d B)] A, 4x fewer multiplies
 * than the direct 3x3 conv (F(2x2, 3x3): 2.25x). */
#ifndef EI_F32_WINO43_H
#define EI_F32_WINO43_H

#include "graph/ir.h"

typedef struct ei__f32_wino43 {
  const char *name;
  /* d[(r*6 + c)*16 + t] is element (r, c) of tile t's 6x6 input patch; writes V = B^T d B as v[xi*xs + t],
   * xi = r*6 + c (36 rows). */
  void (*in)(const float *d, float *v, int64_t xs);
  /* The same straight from the (staged) input, without the gather: tile t's patch element (r, c) is
   * src[off[t] + r*Wp + c] where the 16 tiles form nseg runs of neighbours along tile rows (off steps by 4 inside
   * a run): run s covers lanes [a[s], a[s+1]) and reads from base[s] = off[a[s]] - 4 a[s]; lanes from a[nseg] on
   * are zero. Reads base[s] + r*Wp + [0, 80) for r < 6: the caller makes sure that memory exists. */
  void (*in_rows)(const float *src, int64_t Wp, const int64_t *base, const int *a, int nseg, float *v, int64_t xs);
  /* m[xi*xs + t] is tile t's product (36 rows); Y = A^T m A + bias, then the activation when it is one of the
   * kinds of ei__f32_act_in_kernel (others: the caller applies them). Output row i of the 16 tiles, side by side:
   * tile t's outputs at dst[i*64 + 4t + j]. */
  void (*out)(const float *m, int64_t xs, float bias, const ei__act *act, float *dst);
} ei__f32_wino43;

/* The transforms of a level (the portable ones for levels without their own). Never NULL. */
const ei__f32_wino43 *ei__f32_wino43_get(ei__isa isa);

extern const ei__f32_wino43 ei__f32_wino43_vec;
#if defined(__x86_64__)
extern const ei__f32_wino43 ei__f32_wino43_avx2, ei__f32_wino43_avx512;
#elif defined(__aarch64__)
extern const ei__f32_wino43 ei__f32_wino43_neon;
#endif

#endif
