/* CPU feature detection and the kernel level (ISA) in use. EI_ISA=<name> forces a level the CPU supports. */
#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
static uint64_t xgetbv0(void) {
  uint32_t a, d;
  __asm__ volatile("xgetbv" : "=a"(a), "=d"(d) : "c"(0));
  return ((uint64_t)d << 32) | a;
}
static unsigned detect(void) {
  unsigned a, b, c, d, m = 1u << EI_ISA_REF;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return m;
  int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1;
  if (!osxsave) return m;
  uint64_t xcr0 = xgetbv0();
  int ymm = (xcr0 & 6) == 6, zmm = (xcr0 & 0xe6) == 0xe6;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return m;
  int avx2 = (b >> 5) & 1, avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1, avx512bw = (b >> 30) & 1,
      avx512vl = (b >> 31) & 1, avx512vnni = (c >> 11) & 1;
  unsigned a1 = 0, b1, c1, d1;
  __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1);
  int avxvnni = (a1 >> 4) & 1;
  if (ymm && avx2 && fma) m |= 1u << EI_ISA_AVX2;
  if (ymm && avx2 && fma && (avxvnni || (zmm && avx512vnni && avx512vl))) m |= 1u << EI_ISA_AVXVNNI;
  if (zmm && avx512f && avx512bw && avx512dq && avx512vl && avx2 && fma) m |= 1u << EI_ISA_AVX512;
  if ((m & (1u << EI_ISA_AVX512)) && avx512vnni) m |= 1u << EI_ISA_AVX512VNNI;
  return m;
}
#elif defined(__aarch64__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
static unsigned detect(void) {
  unsigned m = (1u << EI_ISA_REF) | (1u << EI_ISA_NEON);
  if (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) m |= 1u << EI_ISA_DOTPROD;
  return m;
}
#else
static unsigned detect(void) { return 1u << EI_ISA_REF; }
#endif

static const char *const names[] = {"ref", "avx2", "avxvnni", "avx512", "avx512vnni", "neon", "dotprod"};
static unsigned g_mask;
static int g_isa = -1;

static unsigned mask(void) {
  if (!g_mask) g_mask = detect();
  return g_mask;
}

const char *ei__isa_str(ei__isa isa) { return (unsigned)isa < 7 ? names[isa] : "?"; }

int ei__isa_supported(ei__isa isa) { return (unsigned)isa < 7 && (mask() >> isa) & 1; }

static int best(void) {
  unsigned m = mask();
  for (int i = 6; i >= 0; i--) {
    /* AVX-VNNI (256-bit) is a distinct level below AVX-512: prefer AVX-512 levels when present. */
    if ((m >> i) & 1) {
      if (i == EI_ISA_AVXVNNI && ((m >> EI_ISA_AVX512) & 1)) continue;
      return i;
    }
  }
  return EI_ISA_REF;
}

ei__isa ei__isa_current(void) {
  if (g_isa < 0) {
    int isa = best();
    const char *env = getenv("EI_ISA");
    if (env && *env) {
      char err[128];
      if (ei_set_isa(env, err, sizeof err) == EI_OK) return (ei__isa)g_isa;
      fprintf(stderr, "edgeinfer: EI_ISA ignored: %s\n", err);
    }
    g_isa = isa;
  }
  return (ei__isa)g_isa;
}

const char *ei_isa_name(void) { return ei__isa_str(ei__isa_current()); }

ei_status ei_set_isa(const char *name, char *err, size_t errlen) {
  for (int i = 0; i < 7; i++) {
    if (strcmp(name, names[i])) continue;
    if (!ei__isa_supported((ei__isa)i))
      return ei__err(err, errlen, EI_E_UNSUPPORTED, "this CPU does not support the '%s' kernel level", name);
    g_isa = i;
    return EI_OK;
  }
  return ei__err(err, errlen, EI_E_INVALID_ARGUMENT,
                 "unknown kernel level '%s' (ref, avx2, avxvnni, avx512, avx512vnni, neon, dotprod)", name);
}
