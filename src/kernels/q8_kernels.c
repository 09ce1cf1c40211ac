/* The per-ISA tables of the integer kernel families (q8_kernels.h): which micro-kernel each kernel level uses
 * for the conv, the GEMM with a constant B and the elementwise ops; the portable QLinearAdd driver; and the 2-D
 * uint8 / int8 MaxPool (bytes compare in the baseline SIMD of the architecture, SSE2 or AdvSIMD). */
#include <string.h>

#include "kernels/q8_kernels.h"
#include "quant/requant.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#if defined(__x86_64__)
#include <cpuid.h>

/* AVX-VNNI proper (VEX vpdpbusd), CPUID.(EAX=7,ECX=1):EAX[4]. The AVXVNNI kernel level is also reported for CPUs
 * that only have the EVEX form (AVX512-VNNI + VL); those run the same kernel compiled for EVEX. */
static int cpu_has_avxvnni(void) {
  unsigned a = 0, b, c, d;
  if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return 0;
  return (a >> 4) & 1;
}

static const ei__q8c_kernel conv_avx2 = {"q8_conv_igemm_4x16c4_avx2", "q8_dwconv_8x_avx2", 4, 8, 2, EI_Q8W_MADD, 0,
                                         ei__q8c_igemm_avx2, ei__q8dw_avx2, NULL, NULL, NULL};
static const ei__q8c_kernel conv_avxvnni = {"q8_conv_igemm_4x24c4_avxvnni", "q8_dwconv_8x_avx2", 4, 8, 3,
                                            EI_Q8W_DOT4, 0, ei__q8c_igemm_avxvnni, ei__q8dw_avx2, NULL, NULL, NULL};
static const ei__q8c_kernel conv_vnni256_evex = {"q8_conv_igemm_4x24c4_avxvnni_evex", "q8_dwconv_8x_avx2", 4, 8, 3,
                                                 EI_Q8W_DOT4, 0, ei__q8c_igemm_vnni256_evex, ei__q8dw_avx2, NULL, NULL, NULL};
static const ei__q8c_kernel conv_avx512 = {"q8_conv_igemm_8x32c4_avx512", "q8_dwconv_16x_avx512", 8, 16, 2,
                                           EI_Q8W_MADD, 0, ei__q8c_igemm_avx512, ei__q8dw_avx512, NULL, NULL, NULL};
static const ei__q8c_kernel conv_avx512vnni = {"q8_conv_igemm_8x48c4_avx512vnni", "q8_dwconv_16x_avx512", 8, 16, 3,
                                               EI_Q8W_DOT4, 0, ei__q8c_igemm_avx512vnni, ei__q8dw_avx512,
                                               ei__q8c_igemm_cl_avx512vnni, ei__q8dwd_avx512vnni,
                                               "q8_dwconv_direct_16x_avx512vnni"};

static const ei__q8e_kernels elt_avx2 = {"q8_add_8x_avx2",     "q8_gavgpool_sad_avx2", ei__q8add_avx2,
                                         ei__q8sum_avx2,       "q8_quantize_8x_avx2",  "q8_dequantize_8x_avx2",
                                         ei__q8quant_avx2,     ei__q8dequant_avx2};
static const ei__q8e_kernels elt_avx512 = {"q8_add_16x_avx512",    "q8_gavgpool_sad_avx512", ei__q8add_avx512,
                                           ei__q8sum_avx512,       "q8_quantize_16x_avx512", "q8_dequantize_16x_avx512",
                                           ei__q8quant_avx512,     ei__q8dequant_avx512};

const ei__q8e_kernels *ei__q8e_kernels_for(ei__isa isa) {
  switch (isa) {
    case EI_ISA_AVX2:
    case EI_ISA_AVXVNNI: return &elt_avx2;
    case EI_ISA_AVX512:
    case EI_ISA_AVX512VNNI: return &elt_avx512;
    default: return NULL;
  }
}

/* name, mr, lanes, nv, kpad, bfmt, asigned, a16, run */
static const ei__q8g_kernel gemm_avx2 = {"q8_gemm_4x16c4_avx2", 4, 8, 2, 4, EI_Q8W_MADD, 0, 1, ei__q8g_gemm_avx2};
static const ei__q8g_kernel gemm_avxvnni = {"q8_gemm_4x16c4_avxvnni", 4, 8, 2, 4, EI_Q8W_DOT4, 0, 0,
                                            ei__q8g_gemm_avxvnni};
static const ei__q8g_kernel gemm_vnni256_evex = {"q8_gemm_4x16c4_avxvnni_evex", 4, 8, 2, 4, EI_Q8W_DOT4, 0, 0,
                                                 ei__q8g_gemm_vnni256_evex};
static const ei__q8g_kernel gemm_avx512 = {"q8_gemm_4x64c4_avx512", 4, 16, 4, 4, EI_Q8W_MADD, 0, 1,
                                           ei__q8g_gemm_avx512};
static const ei__q8g_kernel gemm_avx512vnni = {"q8_gemm_4x64c4_avx512vnni", 4, 16, 4, 4, EI_Q8W_DOT4, 0, 0,
                                               ei__q8g_gemm_avx512vnni};

const ei__q8g_kernel *ei__q8g_kernel_for(ei__isa isa) {
  switch (isa) {
    case EI_ISA_AVX2: return &gemm_avx2;
    case EI_ISA_AVXVNNI: return cpu_has_avxvnni() ? &gemm_avxvnni : &gemm_vnni256_evex;
    case EI_ISA_AVX512: return &gemm_avx512;
    case EI_ISA_AVX512VNNI: return &gemm_avx512vnni;
    default: return NULL;
  }
}

const ei__q8c_kernel *ei__q8c_kernel_for(ei__isa isa) {
  switch (isa) {
    case EI_ISA_AVX2: return &conv_avx2;
    case EI_ISA_AVXVNNI: return cpu_has_avxvnni() ? &conv_avxvnni : &conv_vnni256_evex;
    case EI_ISA_AVX512: return &conv_avx512;
    case EI_ISA_AVX512VNNI: return &conv_avx512vnni;
    default: return NULL;
  }
}

#elif defined(__aarch64__)

static const ei__q8c_kernel conv_neon = {"q8_conv_igemm_8x8c4_neon", "q8_dwconv_8x_neon", 8, 8, 1, EI_Q8W_MLAL, 1,
                                         ei__q8c_igemm_neon, ei__q8dw_neon, NULL, NULL, NULL};
static const ei__q8c_kernel conv_dotprod = {"q8_conv_igemm_8x12c4_dotprod", "q8_dwconv_8x_neon", 8, 4, 3,
                                            EI_Q8W_DOT4, 1, ei__q8c_igemm_dotprod, ei__q8dw_neon, NULL, ei__q8dwd_dotprod,
                                            "q8_dwconv_direct_16x_dotprod"};

static const ei__q8e_kernels elt_neon = {"q8_add_8x_neon",    "q8_gavgpool_neon",   ei__q8add_neon,
                                         ei__q8sum_neon,      "q8_quantize_8x_neon", "q8_dequantize_8x_neon",
                                         ei__q8quant_neon,    ei__q8dequant_neon};

const ei__q8e_kernels *ei__q8e_kernels_for(ei__isa isa) {
  return isa == EI_ISA_NEON || isa == EI_ISA_DOTPROD ? &elt_neon : NULL;
}

static const ei__q8g_kernel gemm_neon = {"q8_gemm_4x16_neon", 4, 8, 2, 8, EI_Q8W_MLAL, 1, 1, ei__q8g_gemm_neon};
static const ei__q8g_kernel gemm_dotprod = {"q8_gemm_4x16c4_dotprod", 4, 4, 4, 16, EI_Q8W_DOT4, 1, 0,
                                            ei__q8g_gemm_dotprod};

const ei__q8g_kernel *ei__q8g_kernel_for(ei__isa isa) {
  switch (isa) {
    case EI_ISA_NEON: return &gemm_neon;
    case EI_ISA_DOTPROD: return &gemm_dotprod;
    default: return NULL;
  }
}

const ei__q8c_kernel *ei__q8c_kernel_for(ei__isa isa) {
  switch (isa) {
    case EI_ISA_NEON: return &conv_neon;
    case EI_ISA_DOTPROD: return &conv_dotprod;
    default: return NULL;
  }
}

#else

const ei__q8c_kernel *ei__q8c_kernel_for(ei__isa isa) {
  (void)isa;
  return NULL;
}
const ei__q8e_kernels *ei__q8e_kernels_for(ei__isa isa) {
  (void)isa;
  return NULL;
}
const ei__q8g_kernel *ei__q8g_kernel_for(ei__isa isa) {
  (void)isa;
  return NULL;
}

#endif

/* ---- QLinearAdd driver ---- */

typedef struct add_job {
  const ei__q8e_kernels *k;
  const ei__q8add_args *a;
} add_job;

static void add_task(void *arg, int64_t b, int64_t e) {
  const add_job *j = arg;
  j->k->add(j->a, b * 4096, e * 4096 < j->a->n ? e * 4096 : j->a->n);
}

void ei__q8add_run(const ei__q8e_kernels *k, const ei__q8add_args *a, ei_threadpool *pool) {
  add_job j = {k, a};
  ei__parallel_for(pool, (a->n + 4095) / 4096, 8, add_task, &j);
}

/* ---- 2-D MaxPool ---- */

#define Q8_POOL_ROW 8192 /* bytes of the window-max row (on the stack) */

int ei__q8_maxpool2d_ok(const ei__q8_maxpool_args *a) {
  if (a->planes < 0 || a->H < 1 || a->W < 1 || a->OH < 0 || a->OW < 0 || a->KH < 1 || a->KW < 1 || a->sh < 1 ||
      a->sw < 1 || a->pt < 0 || a->pl < 0 || a->KH > 64 || a->KW > 64 || a->sh > 64 || a->sw > 64)
    return 0;
  return a->OW == 0 || (a->OW - 1) * a->sw + a->KW <= Q8_POOL_ROW - 64;
}

/* d[i] = max(d[i], s[i] ^ flip) for n bytes (unsigned compare). */
static void max_row(uint8_t *d, const uint8_t *s, int64_t n, uint8_t flip) {
  int64_t i = 0;
#if defined(__SSE2__)
  const __m128i f = _mm_set1_epi8((char)flip);
  for (; i + 16 <= n; i += 16)
    _mm_storeu_si128((__m128i *)(d + i), _mm_max_epu8(_mm_loadu_si128((const __m128i *)(d + i)),
                                                      _mm_xor_si128(_mm_loadu_si128((const __m128i *)(s + i)), f)));
#elif defined(__aarch64__)
  const uint8x16_t f = vdupq_n_u8(flip);
  for (; i + 16 <= n; i += 16) vst1q_u8(d + i, vmaxq_u8(vld1q_u8(d + i), veorq_u8(vld1q_u8(s + i), f)));
#endif
  for (; i < n; i++) {
    const uint8_t v = (uint8_t)(s[i] ^ flip);
    d[i] = v > d[i] ? v : d[i];
  }
}

/* y[o] = max_k v[o * sw + k] ^ flip for o < n, k < kw. */
static void max_cols(uint8_t *y, const uint8_t *v, int64_t n, int64_t kw, int64_t sw, uint8_t flip) {
  int64_t o = 0;
#if defined(__SSE2__)
  const __m128i f = _mm_set1_epi8((char)flip), lo = _mm_set1_epi16(0xff);
  if (sw == 1)
    for (; o + 16 <= n; o += 16) {
      __m128i m = _mm_loadu_si128((const __m128i *)(v + o));
      for (int64_t k = 1; k < kw; k++) m = _mm_max_epu8(m, _mm_loadu_si128((const __m128i *)(v + o + k)));
      _mm_storeu_si128((__m128i *)(y + o), _mm_xor_si128(m, f));
    }
  else if (sw == 2)
    for (; o + 16 <= n; o += 16) {
      __m128i m = _mm_setzero_si128();
      for (int64_t k = 0; k < kw; k++) {
        const uint8_t *p = v + 2 * o + k;
        const __m128i u = _mm_and_si128(_mm_loadu_si128((const __m128i *)p), lo);
        const __m128i w = _mm_and_si128(_mm_loadu_si128((const __m128i *)(p + 16)), lo);
        m = _mm_max_epu8(m, _mm_packus_epi16(u, w));
      }
      _mm_storeu_si128((__m128i *)(y + o), _mm_xor_si128(m, f));
    }
#elif defined(__aarch64__)
  const uint8x16_t f = vdupq_n_u8(flip);
  if (sw == 1)
    for (; o + 16 <= n; o += 16) {
      uint8x16_t m = vld1q_u8(v + o);
      for (int64_t k = 1; k < kw; k++) m = vmaxq_u8(m, vld1q_u8(v + o + k));
      vst1q_u8(y + o, veorq_u8(m, f));
    }
  else if (sw == 2)
    for (; o + 16 <= n; o += 16) {
      uint8x16_t m = vdupq_n_u8(0);
      for (int64_t k = 0; k < kw; k++) m = vmaxq_u8(m, vld2q_u8(v + 2 * o + k).val[0]);
      vst1q_u8(y + o, veorq_u8(m, f));
    }
#endif
  for (; o < n; o++) {
    uint8_t m = 0;
    for (int64_t k = 0; k < kw; k++) m = v[o * sw + k] > m ? v[o * sw + k] : m;
    y[o] = (uint8_t)(m ^ flip);
  }
}

static void maxpool_task(void *arg, int64_t b, int64_t e) {
  const ei__q8_maxpool_args *a = arg;
  const uint8_t flip = a->is_signed ? 0x80 : 0;
  /* window-max row: column c holds input column c - pl (0 = the lowest value outside the input); the SIMD
   * column loops read up to 32 bytes past the last window */
  uint8_t v[Q8_POOL_ROW];
  const int64_t vn = a->OW ? (a->OW - 1) * a->sw + a->KW : 0;
  const int64_t in_lo = a->pl < vn ? a->pl : vn, in_hi = a->pl + a->W < vn ? a->pl + a->W : vn;
  for (int64_t r = b; r < e; r++) {
    const int64_t plane = r / a->OH, oy = r % a->OH;
    const uint8_t *xp = a->x + plane * a->H * a->W;
    memset(v, 0, (size_t)vn + 64);
    for (int64_t ky = 0; ky < a->KH; ky++) {
      const int64_t iy = oy * a->sh - a->pt + ky;
      if (iy < 0 || iy >= a->H) continue;
      if (in_hi > in_lo) max_row(v + in_lo, xp + iy * a->W + (in_lo - a->pl), in_hi - in_lo, flip);
    }
    max_cols(a->y + r * a->OW, v, a->OW, a->KW, a->sw, flip);
  }
}

void ei__q8_maxpool2d(const ei__q8_maxpool_args *a, ei_threadpool *pool) {
  const int64_t rows = a->planes * a->OH, per = a->OW * a->KH * a->KW + 1;
  if (rows <= 0 || a->OW <= 0) return;
  ei__parallel_for(pool, rows, per >= 16384 ? 1 : 16384 / per + 1, maxpool_task, (void *)a);
}
