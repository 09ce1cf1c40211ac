/* bench/peak: this machine's per-core multiply-accumulate peak, FP32 and INT8, per cycle and per second.
 *
 *   peak [--seconds S] [--json] [--out FILE | --no-write]
 *
 * x86-64: vfmadd231ps ymm/zmm (FP32) and vpdpbusd ymm/zmm (INT8, AVX-VNNI or AVX512-VNNI); AArch64: fmla v.4s
 * (FP32) and sdot (INT8, with the dot-product extension). Each loop keeps 14 independent accumulators (more than
 * latency x pipes) so it runs at the core's issue limit. The core clock is estimated with a dependent chain of
 * register adds (1 cycle each on every core; on x86 a chain of 3-cycle imuls checks it), measured right before
 * and after each throughput window, so instructions/cycle = instructions/s / clock. Runs on one core (the
 * process is pinned to the CPU it starts on) in ~2 ms windows, keeping the fastest window that no context switch
 * disturbed (getrusage counts them), so a busy machine slows the tool down rather than its numbers. Writes the best FP32 and INT8 GMAC/s into ${EI_CACHE:-~/.cache/edgeinfer}/
 * peak.json (unless --no-write), which `edgeinfer bench --profile` reads to print each node's share of peak. */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#if defined(__aarch64__)
#include <sys/auxv.h>
#endif

#include "peak.h"

typedef uint64_t (*peak_loop)(uint64_t iters, double *sink);

typedef struct kernel {
  const char *name;  /* the instruction, e.g. "vpdpbusd zmm" */
  const char *kind;  /* "fp32" or "int8" */
  int macs;          /* multiply-accumulates per instruction */
  int width;         /* vector bits */
  peak_loop loop;
  int available;
  /* results */
  double ginstr_per_s, per_cycle, gmacs, clock_ghz;
  int windows; /* undisturbed timed windows */
} kernel;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- clock ---- */

#define CHAIN8(ins) ins ins ins ins ins ins ins ins
#if defined(__x86_64__)
#define ADD1 "add %[one], %[x]\n\t"
#define MUL1 "imul %[one], %[x]\n\t"
#elif defined(__aarch64__)
#define ADD1 "add %[x], %[x], %[one]\n\t"
#endif

/* Runs `iters` x 64 dependent adds (1 cycle each); returns the seconds it took. */
static double add_chain(uint64_t iters) {
  uint64_t x = 0, one = 1;
  double t0 = now_s();
  for (uint64_t i = 0; i < iters; i++)
    __asm__ volatile(CHAIN8(CHAIN8(ADD1)) : [x] "+r"(x) : [one] "r"(one));
  double t = now_s() - t0;
  if (x != iters * 64) fprintf(stderr, "peak: add chain miscounted\n");
  return t;
}

#if defined(__x86_64__)
/* Runs `iters` x 32 dependent 64-bit imuls (3 cycles each on Intel and AMD cores); returns the seconds. */
static double mul_chain(uint64_t iters) {
  uint64_t x = 3, one = 1;
  double t0 = now_s();
  for (uint64_t i = 0; i < iters; i++)
    __asm__ volatile(CHAIN8(MUL1) CHAIN8(MUL1) CHAIN8(MUL1) CHAIN8(MUL1) : [x] "+r"(x) : [one] "r"(one));
  return now_s() - t0;
}
#endif

/* Context switches so far (voluntary + involuntary): a timed window during which this changed was shared with
 * another task and is thrown away, so the tool still measures the core on a busy machine. */
static long switches(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_nvcsw + ru.ru_nivcsw;
}

#define WINDOW_S 0.002 /* one timed window: short, so that many pass without a context switch */
#define MAX_TRIES 2000

/* The clock in GHz from one undisturbed ~2 ms add chain (the best of 3), or 0 if none was undisturbed. */
static double clock_ghz(void) {
  static uint64_t iters = 0;
  if (!iters) { /* size a run to WINDOW_S */
    iters = 64;
    double t;
    while ((t = add_chain(iters)) < WINDOW_S / 4) iters *= 2;
    iters = (uint64_t)(iters * WINDOW_S / t) + 1;
  }
  double best = 0;
  for (int r = 0, tries = 0; r < 3 && tries < MAX_TRIES; tries++) {
    long sw = switches();
    double t = add_chain(iters);
    if (switches() != sw) continue;
    double ghz = iters * 64 / t / 1e9;
    if (ghz > best) best = ghz;
    r++;
  }
  return best;
}

/* ---- throughput ---- */

/* Runs k->loop in ~2 ms windows for about `seconds`, each window between two clock readings; keeps the fastest
 * window of those that no context switch disturbed (the clock readings around it undisturbed too). */
static void measure(kernel *k, double seconds) {
  double sink = 0, dt;
  uint64_t iters = 16;
  for (;;) { /* size a window */
    double s0 = now_s();
    k->loop(iters, &sink);
    dt = now_s() - s0;
    if (dt >= WINDOW_S / 4) break;
    iters *= 2;
  }
  uint64_t window = (uint64_t)(iters * WINDOW_S / dt) + 1;
  double end = now_s() + seconds;
  int clean = 0;
  for (int tries = 0; tries < MAX_TRIES && (now_s() < end || clean < 5); tries++) {
    double c0 = clock_ghz();
    long sw = switches();
    double s0 = now_s();
    uint64_t n = k->loop(window, &sink);
    double el = now_s() - s0;
    int disturbed = switches() != sw;
    double c1 = clock_ghz();
    if (disturbed || c0 <= 0 || c1 <= 0) continue;
    clean++;
    double gips = n / el / 1e9;
    if (gips > k->ginstr_per_s) {
      k->ginstr_per_s = gips;
      k->clock_ghz = (c0 + c1) / 2;
    }
  }
  k->windows = clean;
  k->per_cycle = k->clock_ghz > 0 ? k->ginstr_per_s / k->clock_ghz : 0;
  k->gmacs = k->ginstr_per_s * k->macs;
  if (sink == 12345.678) fprintf(stderr, " "); /* keeps the sink alive */
}

/* ---- machine ---- */

static void cpu_name(char *out, size_t len) {
  snprintf(out, len, "unknown");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[512], family[32] = "", model[32] = "";
  while (fgets(line, sizeof line, f)) {
    /* x86: "cpu family" and "model" (the number, not "model name") name the core generation */
    const char *value = strchr(line, ':');
    if (value && !strncmp(line, "cpu family", 10)) snprintf(family, sizeof family, "%d", atoi(value + 1));
    if (value && !strncmp(line, "model\t", 6)) snprintf(model, sizeof model, "%d", atoi(value + 1));
    const char *keys[] = {"model name", "Hardware", "CPU part"};
    for (int i = 0; i < 3; i++) {
      if (strncmp(line, keys[i], strlen(keys[i]))) continue;
      char *colon = strchr(line, ':');
      if (!colon) continue;
      colon++;
      while (*colon == ' ' || *colon == '\t') colon++;
      colon[strcspn(colon, "\n")] = 0;
      if (!*out || !strcmp(out, "unknown")) snprintf(out, len, "%s%s", i == 2 ? "CPU part " : "", colon);
    }
    if (line[0] == '\n' && strcmp(out, "unknown")) break; /* the first processor's block is enough */
  }
  fclose(f);
  if (*family && *model) {
    size_t used = strlen(out);
    snprintf(out + used, len - used, " (family %s, model %s)", family, model);
  }
}

static int make_kernels(kernel *ks) {
  int n = 0;
#if defined(__x86_64__)
  __builtin_cpu_init();
  int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  int avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  int avx512vnni = avx512 && __builtin_cpu_supports("avx512vnni");
  int avxvnni = avx2 && __builtin_cpu_supports("avxvnni");
  ks[n++] = (kernel){"vfmadd231ps ymm", "fp32", 8, 256, peak_fma_ymm_avx2, avx2, 0, 0, 0, 0, 0};
  ks[n++] = (kernel){"vfmadd231ps zmm", "fp32", 16, 512, peak_fma_zmm_avx512, avx512, 0, 0, 0, 0, 0};
  ks[n++] = (kernel){"vpdpbusd ymm (VEX)", "int8", 32, 256, peak_dot_ymm_avxvnni, avxvnni, 0, 0, 0, 0, 0};
  ks[n++] = (kernel){"vpdpbusd ymm (EVEX)", "int8", 32, 256, peak_dot_ymm_avx512vnni, avx512vnni, 0, 0, 0, 0, 0};
  ks[n++] = (kernel){"vpdpbusd zmm", "int8", 64, 512, peak_dot_zmm_avx512vnni, avx512vnni, 0, 0, 0, 0, 0};
#elif defined(__aarch64__)
  int dot = (getauxval(AT_HWCAP) >> 20) & 1; /* HWCAP_ASIMDDP */
  ks[n++] = (kernel){"fmla v.4s", "fp32", 4, 128, peak_fmla_neon, 1, 0, 0, 0, 0, 0};
  ks[n++] = (kernel){"sdot v.4s", "int8", 16, 128, peak_sdot_dotprod, dot, 0, 0, 0, 0, 0};
#endif
  return n;
}

/* ---- output ---- */

static int cache_path(char *out, size_t len) {
  const char *cache = getenv("EI_CACHE"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  char dir[4096];
  if (cache && *cache) snprintf(dir, sizeof dir, "%s", cache);
  else if (xdg && *xdg) snprintf(dir, sizeof dir, "%s/edgeinfer", xdg);
  else if (home && *home) snprintf(dir, sizeof dir, "%s/.cache/edgeinfer", home);
  else return -1;
  /* mkdir -p */
  for (char *p = dir + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(dir, 0755) && errno != EEXIST) return -1;
    *p = '/';
  }
  if (mkdir(dir, 0755) && errno != EEXIST) return -1;
  int w = snprintf(out, len, "%s/peak.json", dir);
  return w > 0 && (size_t)w < len ? 0 : -1;
}

static const kernel *best_of(const kernel *ks, int n, const char *kind) {
  const kernel *b = NULL;
  for (int i = 0; i < n; i++)
    if (ks[i].available && !strcmp(ks[i].kind, kind) && (!b || ks[i].gmacs > b->gmacs)) b = &ks[i];
  return b;
}

static void write_json(FILE *f, const char *cpu, int cores, double ghz, const kernel *ks, int n) {
  const kernel *fp = best_of(ks, n, "fp32"), *q = best_of(ks, n, "int8");
#if defined(__x86_64__)
  const char *arch = "x86_64";
#elif defined(__aarch64__)
  const char *arch = "aarch64";
#else
  const char *arch = "unknown";
#endif
  fprintf(f, "{\n  \"cpu\": \"");
  for (const char *c = cpu; *c; c++) {
    if (*c == '"' || *c == '\\') fputc('\\', f);
    fputc(*c >= ' ' ? *c : ' ', f);
  }
  fprintf(f, "\",\n  \"arch\": \"%s\",\n  \"cores\": %d,\n  \"clock_ghz\": %.3f,\n", arch, cores, ghz);
  fprintf(f, "  \"fp32_instr\": \"%s\",\n  \"fp32_per_cycle\": %.3f,\n  \"fp32_gmacs_per_core\": %.2f,\n",
          fp ? fp->name : "", fp ? fp->per_cycle : 0, fp ? fp->gmacs : 0);
  fprintf(f, "  \"int8_instr\": \"%s\",\n  \"int8_per_cycle\": %.3f,\n  \"int8_gmacs_per_core\": %.2f,\n",
          q ? q->name : "", q ? q->per_cycle : 0, q ? q->gmacs : 0);
  fprintf(f, "  \"measurements\": [");
  int first = 1;
  for (int i = 0; i < n; i++) {
    if (!ks[i].available) continue;
    fprintf(f, "%s\n    {\"instr\": \"%s\", \"kind\": \"%s\", \"bits\": %d, \"macs_per_instr\": %d, "
               "\"per_cycle\": %.3f, \"ginstr_per_s\": %.3f, \"gmacs\": %.2f, \"clock_ghz\": %.3f, \"windows\": %d}",
            first ? "" : ",", ks[i].name, ks[i].kind, ks[i].width, ks[i].macs, ks[i].per_cycle, ks[i].ginstr_per_s,
            ks[i].gmacs, ks[i].clock_ghz, ks[i].windows);
    first = 0;
  }
  fprintf(f, "\n  ]\n}\n");
}

#if defined(__x86_64__)
/* Explains a 512-bit rate below 1.9/cycle: if the 256-bit form of the same instruction issues about twice as
 * often, the core splits 512-bit operations into two 256-bit halves (AMD Zen 4), so the peak is the same. */
static void explain(const kernel *ks, int n, const char *wide, const char *narrow) {
  const kernel *w = NULL, *s = NULL;
  for (int i = 0; i < n; i++) {
    if (!ks[i].available) continue;
    if (!strcmp(ks[i].name, wide)) w = &ks[i];
    if (!strncmp(ks[i].name, narrow, strlen(narrow)) && (!s || ks[i].per_cycle > s->per_cycle)) s = &ks[i];
  }
  if (!w) return;
  if (w->per_cycle >= 1.9) {
    printf("  %s: %.2f per cycle (>= 1.9: two full-width 512-bit pipes)\n", wide, w->per_cycle);
  } else if (s && s->per_cycle >= 1.6 * w->per_cycle) {
    printf("  %s: %.2f per cycle, %s: %.2f per cycle. This core runs a 512-bit operation as two 256-bit\n"
           "    halves on two 256-bit pipes (as AMD Zen 4 does): 512-bit and 256-bit code share one peak, %.1f GMAC/s;\n"
           "    1.9 per cycle in 512 bits needs two full-width 512-bit pipes (most Intel Xeon cores, AMD Zen 5)\n",
           wide, w->per_cycle, s->name, s->per_cycle, s->gmacs);
  } else {
    printf("  %s: %.2f per cycle, below 1.9 (%s: %.2f per cycle): one 512-bit pipe, or a busy/throttled core\n",
           wide, w->per_cycle, s ? s->name : "no 256-bit form", s ? s->per_cycle : 0.0);
  }
}
#endif

int main(int argc, char **argv) {
  double seconds = 1.0;
  int json = 0, write = 1;
  const char *out = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
      seconds = atof(argv[++i]);
      if (!(seconds > 0 && seconds < 600)) return fprintf(stderr, "peak: bad --seconds\n"), 2;
    } else if (!strcmp(argv[i], "--json")) {
      json = 1;
    } else if (!strcmp(argv[i], "--out") && i + 1 < argc) {
      out = argv[++i];
    } else if (!strcmp(argv[i], "--no-write")) {
      write = 0;
    } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      printf("usage: peak [--seconds S] [--json] [--out FILE | --no-write]\n"
             "  measures the per-core FP32 and INT8 multiply-accumulate peak (S seconds per instruction,\n"
             "  default 1) and writes it to ${EI_CACHE:-~/.cache/edgeinfer}/peak.json (or FILE)\n");
      return 0;
    } else {
      return fprintf(stderr, "peak: unknown option '%s' (see --help)\n", argv[i]), 2;
    }
  }
  int cpu = sched_getcpu();
  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
  }
  char name[256];
  cpu_name(name, sizeof name);
  int cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
  kernel ks[8];
  int n = make_kernels(ks);
  for (int i = 0; i < 3; i++) clock_ghz(); /* wake the core up */
  double ghz = clock_ghz();
#if defined(__x86_64__)
  uint64_t mi = (uint64_t)(ghz * 1e9 * WINDOW_S / 96) + 1; /* 32 imuls x 3 cycles per iteration */
  double mul_ghz = 0;
  for (int r = 0, tries = 0; r < 5 && tries < MAX_TRIES; tries++) {
    long sw = switches();
    double t = mul_chain(mi);
    if (switches() != sw) continue;
    if (mi * 96 / t / 1e9 > mul_ghz) mul_ghz = mi * 96 / t / 1e9;
    r++;
  }
#endif
  for (int i = 0; i < n; i++)
    if (ks[i].available) measure(&ks[i], seconds);
  double ghz_after = clock_ghz();
  if (json) {
    write_json(stdout, name, cores, (ghz + ghz_after) / 2, ks, n);
  } else {
    printf("cpu: %s, %d core%s online; measured on one core (cpu %d)\n", name, cores, cores > 1 ? "s" : "", cpu);
#if defined(__x86_64__)
    printf("clock: %.3f GHz at start, %.3f GHz at end (dependent add chain, 1 cycle/add; imul chain at 3 "
           "cycles/imul says %.3f GHz)\n", ghz, ghz_after, mul_ghz);
#else
    printf("clock: %.3f GHz at start, %.3f GHz at end (dependent add chain, 1 cycle/add)\n", ghz, ghz_after);
#endif
    printf("%-22s %5s %10s %10s %11s %14s\n", "instruction", "bits", "per cycle", "G instr/s", "MACs/instr",
           "GMAC/s (core)");
    for (int i = 0; i < n; i++) {
      if (!ks[i].available) {
        printf("%-22s %5d %10s\n", ks[i].name, ks[i].width, "(not on this CPU)");
        continue;
      }
      printf("%-22s %5d %10.2f %10.2f %11d %14.1f\n", ks[i].name, ks[i].width, ks[i].per_cycle, ks[i].ginstr_per_s,
             ks[i].macs, ks[i].gmacs);
    }
    const kernel *fp = best_of(ks, n, "fp32"), *q = best_of(ks, n, "int8");
    printf("peak per core: fp32 %.1f GMAC/s (%s), int8 %.1f GMAC/s (%s)\n", fp ? fp->gmacs : 0.0,
           fp ? fp->name : "none", q ? q->gmacs : 0.0, q ? q->name : "none");
#if defined(__x86_64__)
    explain(ks, n, "vfmadd231ps zmm", "vfmadd231ps ymm");
    explain(ks, n, "vpdpbusd zmm", "vpdpbusd ymm");
#endif
  }
  if (write) {
    char path[4200];
    if (out) snprintf(path, sizeof path, "%s", out);
    else if (cache_path(path, sizeof path)) return fprintf(stderr, "peak: cannot make the cache folder\n"), 1;
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return fprintf(stderr, "peak: cannot write %s: %s\n", tmp, strerror(errno)), 1;
    write_json(f, name, cores, (ghz + ghz_after) / 2, ks, n);
    if (fclose(f) || rename(tmp, path)) {
      remove(tmp);
      return fprintf(stderr, "peak: cannot write %s: %s\n", path, strerror(errno)), 1;
    }
    if (!json) printf("wrote %s\n", path);
  }
  return 0;
}
