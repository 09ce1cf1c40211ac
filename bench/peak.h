/* bench/peak: the per-ISA throughput loops. Each runs `iters` iterations of a block of independent multiply-
 * accumulate instructions (enough accumulators to cover latency x pipes: 4-5 cycles x 2 pipes on every core we
 * know), returns the number of instructions it executed and stores a value derived from the accumulators in
 * *sink so the work cannot be dropped. Each lives in a file compiled with its own ISA flags only; peak.c calls a
 * loop only when the CPU has its ISA. */
#ifndef EI_BENCH_PEAK_H
#define EI_BENCH_PEAK_H

#include <stdint.h>

#if defined(__x86_64__)
uint64_t peak_fma_ymm_avx2(uint64_t iters, double *sink);        /* vfmadd231ps ymm: 8 MACs */
uint64_t peak_fma_zmm_avx512(uint64_t iters, double *sink);      /* vfmadd231ps zmm: 16 MACs */
uint64_t peak_dot_ymm_avxvnni(uint64_t iters, double *sink);     /* {vex} vpdpbusd ymm: 32 MACs */
uint64_t peak_dot_zmm_avx512vnni(uint64_t iters, double *sink);  /* vpdpbusd zmm: 64 MACs */
uint64_t peak_dot_ymm_avx512vnni(uint64_t iters, double *sink);  /* vpdpbusd ymm (EVEX): 32 MACs */
#elif defined(__aarch64__)
uint64_t peak_fmla_neon(uint64_t iters, double *sink);           /* fmla v.4s: 4 MACs */
uint64_t peak_sdot_dotprod(uint64_t iters, double *sink);        /* sdot v.4s, v.16b: 16 MACs */
#endif

/* Fourteen instructions "OP %15, %14, %k" for k = 0..13 (AT&T operand order, accumulator last): 14 in-out
 * accumulators + 2 sources = GCC's limit of 30 asm operands (an in-out operand counts twice). 14 covers a
 * latency of up to 7 cycles at 2 instructions per cycle. */
#define PEAK_X14(op)                                                                                         \
  op " %15, %14, %0\n\t" op " %15, %14, %1\n\t" op " %15, %14, %2\n\t" op " %15, %14, %3\n\t" op                \
     " %15, %14, %4\n\t" op " %15, %14, %5\n\t" op " %15, %14, %6\n\t" op " %15, %14, %7\n\t" op " %15, %14, %8\n\t" \
        op " %15, %14, %9\n\t" op " %15, %14, %10\n\t" op " %15, %14, %11\n\t" op " %15, %14, %12\n\t" op            \
           " %15, %14, %13\n\t"
/* The same for AArch64 (accumulator first): "OP %k.<acc>, %14.<src>, %15.<src>" for k = 0..13. */
#define PEAK_A1(op, acc, src, k) op " %" #k "." acc ", %14." src ", %15." src "\n\t"
#define PEAK_A14(op, acc, src)                                                                                \
  PEAK_A1(op, acc, src, 0) PEAK_A1(op, acc, src, 1) PEAK_A1(op, acc, src, 2) PEAK_A1(op, acc, src, 3)             \
  PEAK_A1(op, acc, src, 4) PEAK_A1(op, acc, src, 5) PEAK_A1(op, acc, src, 6) PEAK_A1(op, acc, src, 7)             \
  PEAK_A1(op, acc, src, 8) PEAK_A1(op, acc, src, 9) PEAK_A1(op, acc, src, 10) PEAK_A1(op, acc, src, 11)           \
  PEAK_A1(op, acc, src, 12) PEAK_A1(op, acc, src, 13)
/* The accumulators a0..a13 as "+<c>" asm operands, c the register constraint. */
#define PEAK_OUT14(c) \
  "+" c(a0), "+" c(a1), "+" c(a2), "+" c(a3), "+" c(a4), "+" c(a5), "+" c(a6), "+" c(a7), "+" c(a8), "+" c(a9), \
      "+" c(a10), "+" c(a11), "+" c(a12), "+" c(a13)
#define PEAK_REPS 4 /* the block is repeated this many times per loop iteration */

#endif
