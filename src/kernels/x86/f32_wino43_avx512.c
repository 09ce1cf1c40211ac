/* f32_wino43_avx512: the Winograd F(4x4, 3x3) transforms (kernels/f32_wino43_tmpl.h) compiled for AVX-512. */
#define WINO43_TABLE ei__f32_wino43_avx512
#define WINO43_NAME "avx512"
#include "kernels/f32_wino43_tmpl.h"
