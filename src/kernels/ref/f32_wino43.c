/* Winograd F(4x4, 3x3): the portable transforms (kernels/f32_wino43_tmpl.h with the base flags) and the choice of
 * the transforms per level (the weight transform is conv_fast.c's wino_pack). */
#include <string.h>

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
