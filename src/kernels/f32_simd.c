/* The float SIMD kernel table by ISA level (kernels/f32_simd.h) and its plain-C member, f32_simd_scalar: the
 * template kernels/f32_simd_tmpl.h instantiated with one-float "vectors" (for EI_ISA=ref and unknown CPUs). */
#include "kernels/f32_simd.h"

const ei__f32_simd *ei__f32_simd_get(ei__isa isa) {
#if defined(__x86_64__)
  if (isa == EI_ISA_AVX512 || isa == EI_ISA_AVX512VNNI) return &ei__f32_simd_avx512;
  if (isa == EI_ISA_AVX2 || isa == EI_ISA_AVXVNNI) return &ei__f32_simd_avx2;
#elif defined(__aarch64__)
  if (isa == EI_ISA_NEON || isa == EI_ISA_DOTPROD) return &ei__f32_simd_neon;
#endif
  (void)isa;
  return &ei__f32_simd_scalar;
}

#define VF float
#define VW 1
#define VLOAD(p) (*(p))
#define VSTORE(p, v) (*(p) = (v))
#define VLOAD_S2(p) (*(p))
#define VSET1(x) (x)
#define VADD(a, b) ((a) + (b))
#define VSUB(a, b) ((a) - (b))
#define VSTORE2(p, a, b) ((p)[0] = (a), (p)[1] = (b))
#define VMUL(a, b) ((a) * (b))
#define VFMA(a, b, c) ((a) * (b) + (c))
static inline float vrelu(float v) { return v > 0.f ? v : 0.f; }
static inline float vclamp(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }
#define VRELU(v) vrelu(v)
#define VCLAMP(v, lo, hi) vclamp(v, lo, hi)
#define VGE0SEL(v, a, b) ((v) >= 0.f ? (a) : (b))
#define VMAXSEL(m, v) ((v) > (m) ? (v) : (m))
#define SIMD_TABLE ei__f32_simd_scalar
#define SIMD_NAME "scalar"
#include "kernels/f32_simd_tmpl.h"
