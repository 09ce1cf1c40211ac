/* Internal core services: allocation, errors, small helpers. `ei__` names are internal (libuv's `uv__`). */
#ifndef EI_CORE_H
#define EI_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "edgeinfer.h"

#define EI_ALIGN 64

/* All library memory goes through these (the pluggable ei_allocator). */
void *ei__malloc(size_t n);                    /* 64-byte aligned */
void *ei__calloc(size_t count, size_t size);   /* zeroed, overflow-checked */
void *ei__realloc(void *p, size_t old_n, size_t new_n);
void ei__free(void *p);
char *ei__strdup(const char *s);
char *ei__strndup(const char *s, size_t n);

/* Writes a formatted message into err (if err != NULL) and returns s. */
ei_status ei__err(char *err, size_t errlen, ei_status s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Overflow-checked arithmetic: return 0 on overflow. */
static inline int ei__mul_size(size_t a, size_t b, size_t *r) { return !__builtin_mul_overflow(a, b, r); }
static inline int ei__add_size(size_t a, size_t b, size_t *r) { return !__builtin_add_overflow(a, b, r); }
static inline size_t ei__align_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }

/* Alignment-safe loads of little-endian fixed-width values (model bytes may be unaligned). */
static inline float ei__load_f32(const void *p) { float v; memcpy(&v, p, 4); return v; }
static inline uint32_t ei__load_u32(const void *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t ei__load_u64(const void *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* Monotonic clock in nanoseconds. */
uint64_t ei__now_ns(void);

/* ---- thread pool (src/core/threadpool.c) ---- */
/* fn(arg, begin, end) over [0, n) split into chunks; runs on the pool's threads and the caller.
 * pool == NULL runs fn(arg, 0, n) on the caller. */
typedef void (*ei__range_fn)(void *arg, int64_t begin, int64_t end);
void ei__parallel_for(ei_threadpool *pool, int64_t n, int64_t min_chunk, ei__range_fn fn, void *arg);
/* Counters since the pool was made (tests/test_threadpool.c): parallel regions, their chunks, chunks run by the
 * caller and by workers, times the caller slept waiting for a chunk a worker had claimed, times a worker went to
 * sleep on the futex (idle). */
typedef struct ei__pool_stats {
  uint64_t regions, chunks, caller_chunks, worker_chunks, caller_sleeps, worker_sleeps;
} ei__pool_stats;
void ei__threadpool_stats(const ei_threadpool *pool, ei__pool_stats *s);
/* Test hook: hook(arg, worker) runs on a worker (worker = 1) when it wakes for a region, before it claims any
 * chunk, and on the caller (worker = 0) before its first chunk. NULL removes it. */
void ei__threadpool_set_test_hook(ei_threadpool *pool, void (*hook)(void *arg, int worker), void *arg);

/* ---- CPU features (src/core/cpu.c) ---- */
typedef enum ei__isa {
  EI_ISA_REF = 0,
  EI_ISA_AVX2,       /* AVX2 + FMA */
  EI_ISA_AVXVNNI,    /* AVX2 + AVX-VNNI (256-bit) */
  EI_ISA_AVX512,     /* AVX-512 F/BW/DQ/VL */
  EI_ISA_AVX512VNNI, /* + AVX-512 VNNI */
  EI_ISA_NEON,
  EI_ISA_DOTPROD
} ei__isa;
ei__isa ei__isa_current(void);
int ei__isa_supported(ei__isa isa);
const char *ei__isa_str(ei__isa isa);

#endif
