/* AVX-VNNI (256-bit, VEX) integer conv micro-kernel: the body of q8_igemm_vnni256.h with {vex} vpdpbusd. */
#include "kernels/x86/q8_x86.h"

#define Q8_DPBUSD(acc, a, b) _mm256_dpbusd_avx_epi32(acc, a, b)
#define Q8_VNNI256_NAME ei__q8c_igemm_avxvnni
#define Q8_VNNI256_GEMM_NAME ei__q8g_gemm_avxvnni
#include "kernels/x86/q8_igemm_vnni256.h"
