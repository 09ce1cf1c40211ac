/* Winograd F(4x4, 3x3): the portable transforms (kernels/f32_wino43_tmpl.h with the base flags), the choice of
 * the transforms per level, and the weight transform U = G g G^T (in double) packed for the GEMM micro-kernel. */
#include <string.h>

#include "kernels/f32_gemm.h"

#define WINO43_TABLE ei__f32_wino43_vec
#define WINO43_NAME "vec"
#include "kernels/f32_wino43_tmpl.h"

const ei__f32_wino43 *ei__f32_wino43_get(ei__isa isa) {
#if defined(__x86_64__)
  if (isa == EI_ISA_AVX512 || isa == EI_ISA_AVX512VNNI) return &ei__f32_wino43_avx512;
  if (isa == EI_ISA_AVX2 || isa == EI_ISA_AVXVNNI) return &ei__f32_wino43_avx2;
#elif defined(__aarch64__)
  if (isa == EI_ISA_NEON || isa == EI_ISA_DOTPROD) return &ei__f32_wino43_neon;
#endif
  (void)isa;
  return &ei__f32_wino43_vec;
}

void ei__f32_wino43_pack(int mr, int64_t M, int64_t C, const float *w, float *dst) {
  static const double G[6][3] = {{1.0 / 4, 0, 0},
                                 {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                 {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                 {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                 {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                 {0, 0, 1}};
  const size_t per = ei__f32_gemm_packed_a_floats(mr, M, C);
  memset(dst, 0, 36 * per * sizeof(float));
  for (int64_t m = 0; m < M; m++)
    for (int64_t c = 0; c < C; c++) {
      const float *g = w + (m * C + c) * 9;
      double t[6][3];
      for (int i = 0; i < 6; i++)
        for (int k = 0; k < 3; k++) t[i][k] = G[i][0] * g[0 * 3 + k] + G[i][1] * g[1 * 3 + k] + G[i][2] * g[2 * 3 + k];
      for (int i = 0; i < 6; i++)
        for (int jj = 0; jj < 6; jj++) {
          const double u = t[i][0] * G[jj][0] + t[i][1] * G[jj][1] + t[i][2] * G[jj][2];
          /* A panel layout: panel m / mr, element (c, m % mr) */
          dst[(size_t)(i * 6 + jj) * per + (size_t)((m / mr) * mr * C + c * mr + m % mr)] = (float)u;
        }
    }
}
