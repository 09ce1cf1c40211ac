/* f32_wino43_neon: the Winograd F(4x4, 3x3) transforms (kernels/f32_wino43_tmpl.h) compiled for NEON. */
#define WINO43_TABLE ei__f32_wino43_neon
#define WINO43_NAME "neon"
#include "kernels/f32_wino43_tmpl.h"
