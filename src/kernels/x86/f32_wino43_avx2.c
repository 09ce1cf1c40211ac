/* f32_wino43_avx2: the Winograd F(4x4, 3x3) transforms (kernels/f32_wino43_tmpl.h) compiled for AVX2. */
#define WINO43_TABLE ei__f32_wino43_avx2
#define WINO43_NAME "avx2"
#include "kernels/f32_wino43_tmpl.h"
