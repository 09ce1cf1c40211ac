/* edgeinfer bench: warm-up, then latency percentiles, images/s and peak RSS (optionally per-node profile, as a
 * fraction of the machine's peak measured by bench/peak into $EI_CACHE/peak.json). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "server/device.h"

static const char *help =
    "usage: edgeinfer bench MODEL [--threads N] [--batch B] [--iters N] [--warmup N] [--json] [--profile]\n"
    "       edgeinfer bench --idle [--threads N] [--json]\n"
    "  --iters N     timed runs (default: as many as fit in --seconds, at least --min-iters, at most --max-iters)\n"
    "  --seconds S   time budget of the timed runs when --iters is not given (default 3)\n"
    "  --min-iters N, --max-iters N   bounds on the timed runs without --iters (default 10, 1000)\n"
    "  --warmup N    untimed runs after the first (default 3)\n"
    "  --json        print one JSON object\n"
    "  --profile     per-node time, GMAC/s and the share of this machine's peak (bench/peak writes\n"
    "                $EI_CACHE/peak.json; int8 nodes against the int8 peak, others against fp32)\n"
    "  --idle        load no model: print the peak RSS of the process with the runtime (and thread pool) only\n"
    "  --no-device   do not print the device profile (temperatures, CPU frequencies, throttling, counters)\n"
    "  --no-probe    device profile without the memcpy bandwidth probe\n"
    "  --sysfs-root DIR   read the device profile from DIR instead of /sys\n"
    "The timed runs are counted with perf_event_open (this thread and the pool's workers): cycles, IPC and the\n"
    "cache-miss ratio where the CPU's PMU is available, task-clock and context switches everywhere.\n";

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* The per-core peaks (GMAC/s) from $EI_CACHE/peak.json, written by bench/peak; 0 where unknown. */
typedef struct peak_info {
  double fp32, int8;
  int cores;
} peak_info;

static double json_number(const char *text, const char *key) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\"", key);
  const char *p = strstr(text, pat);
  if (!p) return 0;
  p += strlen(pat);
  while (*p == ' ' || *p == ':') p++;
  double v = strtod(p, NULL);
  return v > 0 ? v : 0;
}

static peak_info read_peak(void) {
  peak_info pk = {0, 0, 0};
  char path[4096], text[8192];
  const char *cache = getenv("EI_CACHE"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  if (cache && *cache) snprintf(path, sizeof path, "%s/peak.json", cache);
  else if (xdg && *xdg) snprintf(path, sizeof path, "%s/edgeinfer/peak.json", xdg);
  else snprintf(path, sizeof path, "%s/.cache/edgeinfer/peak.json", home ? home : ".");
  FILE *f = fopen(path, "r");
  if (!f) return pk;
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = 0;
  pk.fp32 = json_number(text, "fp32_gmacs_per_core");
  pk.int8 = json_number(text, "int8_gmacs_per_core");
  pk.cores = (int)json_number(text, "cores");
  return pk;
}

/* The process's own peak RSS in MB: VmHWM of /proc/self/status, since getrusage's ru_maxrss also covers the
 * process that forked us (Linux keeps it across exec: a benchmark driver's size would show up as ours). */
static double peak_rss_mb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, "VmHWM:", 6)) kb = strtol(line + 6, NULL, 10);
  if (f) fclose(f);
  return (kb >= 0 ? kb : cli_peak_rss_kb()) / 1024.0;
}

/* Whether a node's MACs are integer ones: ei_node_info.is_int8, or an integer operator or kernel by name (the
 * graph's value types are not all known before planning, so is_int8 can miss a QLinearConv). */
static int node_is_int8(const ei_node_info *ni) {
  static const char *const ops[] = {"QLinearConv", "QLinearMatMul", "QGemm", "ConvInteger", "MatMulInteger", NULL};
  if (ni->is_int8) return 1;
  for (int k = 0; ops[k]; k++)
    if (!strcmp(ni->op_type, ops[k])) return 1;
  return ni->kernel && (!strncmp(ni->kernel, "q8_", 3) || !strncmp(ni->kernel, "qs8_", 4) ||
                        !strncmp(ni->kernel, "qu8_", 4));
}

static int bench_idle(const cli_common *c, int json) {
  ei_threadpool *pool = NULL;
  if (cli_make_pool(c, &pool)) return 1;
  double rss_mb = peak_rss_mb();
  if (json)
    printf("{\"engine\": \"edgeinfer\", \"idle\": true, \"isa\": \"%s\", \"threads\": %d, \"peak_rss_mb\": %.2f}\n",
           ei_isa_name(), c->threads, rss_mb);
  else
    printf("idle (no model), %d thread%s: peak RSS %.1f MB\n", c->threads, c->threads > 1 ? "s" : "", rss_mb);
  ei_threadpool_destroy(pool);
  return 0;
}

static double pct(const double *v, int n, double p) {
  double pos = p * (n - 1);
  int i = (int)pos;
  double f = pos - i;
  return i + 1 < n ? v[i] * (1 - f) + v[i + 1] * f : v[n - 1];
}

int cmd_bench(int argc, char **argv) {
  cli_common c;
  cli_common_init(&c);
  const char *model = NULL;
  int iters = 0, warmup = 3, json = 0, profile = 0, idle = 0, min_iters = 10, max_iters = 1000;
  int device = 1, probe = 1;
  const char *sysfs_root = NULL;
  double seconds = 3;
  for (int i = 1; i < argc; i++) {
    int r = cli_common_option(&c, argc, argv, &i);
    if (r < 0) return 2;
    if (r) continue;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      printf("%s%s", help, cli_common_help);
      return 0;
    } else if (!strcmp(argv[i], "--iters") && i + 1 < argc) {
      iters = atoi(argv[++i]);
      if (iters < 1) return cli_die("--iters needs a positive number"), 2;
    } else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) {
      warmup = atoi(argv[++i]);
      if (warmup < 0) return cli_die("--warmup needs a number >= 0"), 2;
    } else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
      char *end;
      seconds = strtod(argv[++i], &end);
      if (*end || !(seconds >= 0 && seconds <= 86400)) return cli_die("--seconds needs a number of seconds"), 2;
    } else if (!strcmp(argv[i], "--min-iters") && i + 1 < argc) {
      min_iters = atoi(argv[++i]);
      if (min_iters < 1) return cli_die("--min-iters needs a positive number"), 2;
    } else if (!strcmp(argv[i], "--max-iters") && i + 1 < argc) {
      max_iters = atoi(argv[++i]);
      if (max_iters < 1) return cli_die("--max-iters needs a positive number"), 2;
    } else if (!strcmp(argv[i], "--no-device")) {
      device = 0;
    } else if (!strcmp(argv[i], "--no-probe")) {
      probe = 0;
    } else if (!strcmp(argv[i], "--sysfs-root") && i + 1 < argc) {
      sysfs_root = argv[++i];
    } else if (!strcmp(argv[i], "--idle")) {
      idle = 1;
    } else if (!strcmp(argv[i], "--json")) {
      json = 1;
    } else if (!strcmp(argv[i], "--profile")) {
      profile = 1;
    } else if (argv[i][0] == '-') {
      return cli_die("bench: unknown option '%s'", argv[i]), 2;
    } else {
      model = argv[i];
    }
  }
  if (idle) return model ? (cli_die("bench: --idle takes no model"), 2) : bench_idle(&c, json);
  if (!model) return cli_die("bench: no model given"), 2;
  if (min_iters > max_iters) min_iters = max_iters;
  ei_model *m = NULL;
  ei_threadpool *pool = NULL;
  ei_session *s = NULL;
  cli_inputs in = {0};
  ei_tensor outs[16];
  double load_ms, session_ms = 0, first_ms = 0, *lat = NULL;
  char err[1024];
  int rc = 1;
  if (cli_load_model(model, &c, &m, &load_ms) || cli_make_pool(&c, &pool) || cli_make_inputs(m, &c, &in)) goto out;
  double t_session = cli_now_ms();
  if (ei_session_create(m, pool, &s, err, sizeof err)) { cli_die("%s", err); goto out; }
  session_ms = cli_now_ms() - t_session;
  int nout = ei_model_output_count(m) < 16 ? ei_model_output_count(m) : 16;
  for (int i = 0; i < warmup + 1; i++) {
    double t0 = cli_now_ms();
    if (ei_session_run(s, in.n, in.t, nout, outs, err, sizeof err)) { cli_die("%s", err); goto out; }
    if (i == 0) first_ms = cli_now_ms() - t0;
  }
  int cap = iters ? iters : max_iters;
  lat = malloc(sizeof(double) * (size_t)cap);
  if (!lat) goto out;
  int n = 0;
  /* counters of the timed runs: this thread's and the pool workers' groups, read before and after */
  ei__perf_support psup;
  ei__perf_probe(&psup);
  ei__perf *perf = psup.sw || psup.hw ? ei__perf_new(psup.hw) : NULL;
  ei__perf_exec px;
  ei__perf_counts pc;
  memset(&pc, 0, sizeof pc);
  ei__perf_exec_begin(perf, &px, pool);
  double start = cli_now_ms();
  while (n < cap) {
    double t0 = cli_now_ms();
    if (ei_session_run(s, in.n, in.t, nout, outs, err, sizeof err)) { cli_die("%s", err); goto out; }
    lat[n++] = cli_now_ms() - t0;
    if (!iters && n >= min_iters && cli_now_ms() - start > seconds * 1000) break;
  }
  ei__perf_exec_end(perf, &px, &pc);
  ei__perf_free(perf);
  qsort(lat, (size_t)n, sizeof(double), cmp_d);
  int64_t batch = in.n && in.t[0].rank ? in.t[0].dims[0] : 1;
  double med = pct(lat, n, 0.5), p90 = pct(lat, n, 0.9), p99 = pct(lat, n, 0.99);
  double rss_mb = peak_rss_mb();
  ei_plan_stats ps;
  ei_session_plan_stats(s, &ps);
  /* the device profile, taken after the timed runs (the probe does not disturb them) */
  ei__device *dev = NULL;
  if (device) {
    ei__device_options dopt;
    ei__device_options_init(&dopt);
    dopt.sysfs_root = sysfs_root;
    dopt.probe = probe;
    dopt.probe_sync = 1;
    dopt.log = 0;
    dopt.interval_s = 3600;
    if (ei__device_start(&dopt, &dev, err, sizeof err)) fprintf(stderr, "bench: device profile: %s\n", err);
  }
  int64_t traffic = ei_session_planned_traffic_bytes(s);
  if (json) {
    printf("{\"model\": \"%s\", \"engine\": \"edgeinfer\", \"isa\": \"%s\", \"threads\": %d, \"batch\": %lld, "
           "\"iters\": %d, \"median_ms\": %.4f, \"p90_ms\": %.4f, \"p99_ms\": %.4f, \"min_ms\": %.4f, "
           "\"images_per_s\": %.2f, \"peak_rss_mb\": %.2f, \"load_ms\": %.2f, \"session_ms\": %.2f, "
           "\"first_run_ms\": %.2f, \"arena_bytes\": %zu, \"gmac_per_image\": %.4f, \"planned_bytes_per_run\": %lld",
           model, ei_isa_name(), c.threads, (long long)batch, n, med, p90, p99, lat[0], batch * 1000.0 / med, rss_mb,
           load_ms, session_ms, first_ms, ps.arena_bytes, ps.macs / 1e9 / (batch ? batch : 1), (long long)traffic);
    if (pc.sw)
      printf(", \"task_clock_ms\": %.3f, \"context_switches\": %llu", pc.task_clock_ns / 1e6,
             (unsigned long long)pc.context_switches);
    if (pc.hw)
      printf(", \"cycles\": %llu, \"instructions\": %llu, \"ipc\": %.4f, \"cache_references\": %llu, "
             "\"cache_misses\": %llu, \"cache_miss_ratio\": %.6f",
             (unsigned long long)pc.cycles, (unsigned long long)pc.instructions,
             pc.cycles ? (double)pc.instructions / (double)pc.cycles : 0.0, (unsigned long long)pc.cache_references,
             (unsigned long long)pc.cache_misses,
             pc.cache_references ? (double)pc.cache_misses / (double)pc.cache_references : 0.0);
    printf("}\n");
  } else {
    printf("model %s, batch %lld, %d thread%s, kernels %s, %d runs\n", model, (long long)batch, c.threads,
           c.threads > 1 ? "s" : "", ei_isa_name(), n);
    printf("latency median %.3f ms, p90 %.3f ms, p99 %.3f ms, min %.3f ms\n", med, p90, p99, lat[0]);
    printf("throughput %.1f images/s; %.2f GMAC/s\n", batch * 1000.0 / med, ps.macs / 1e6 / med);
    printf("load %.1f ms; peak RSS %.1f MB; arena %.2f MB\n", load_ms, rss_mb, ps.arena_bytes / 1e6);
    if (traffic > 0)
      printf("planned traffic %.2f MB per run (estimate from the plan: inputs, weights and outputs of every node)\n",
             traffic / 1e6);
    printf("counters of the %d timed runs (this thread and %d pool worker%s):\n", n, c.threads - 1,
           c.threads == 2 ? "" : "s");
    if (pc.hw)
      printf("  cycles %.4g, instructions %.4g, IPC %.2f, cache misses %.4g of %.4g references (%.2f%%)\n",
             (double)pc.cycles, (double)pc.instructions, pc.cycles ? (double)pc.instructions / pc.cycles : 0.0,
             (double)pc.cache_misses, (double)pc.cache_references,
             pc.cache_references ? 100.0 * pc.cache_misses / pc.cache_references : 0.0);
    else
      printf("  cycles, IPC, cache-miss ratio: not available: %s\n", psup.hw_why[0] ? psup.hw_why : "not counted");
    if (pc.sw)
      printf("  task-clock %.1f ms (%.3f ms per run), %llu context switches\n", pc.task_clock_ns / 1e6,
             pc.task_clock_ns / 1e6 / (n ? n : 1), (unsigned long long)pc.context_switches);
    else
      printf("  task-clock: not available: %s\n", psup.sw_why);
    if (dev) ei__device_print(dev, stdout);
  }
  ei__device_stop(dev);
  if (profile) {
    ei_session_set_profiling(s, 1);
    int nn = ei_model_node_count(m);
    double *acc = calloc((size_t)nn + 1, sizeof(double));
    int reps = 10;
    for (int r = 0; acc && r < reps; r++) {
      if (ei_session_run(s, in.n, in.t, nout, outs, err, sizeof err)) break;
      for (int i = 0; i < nn; i++) {
        uint64_t ns;
        int64_t macs;
        ei_session_node_time_ns(s, i, &ns, &macs);
        acc[i] += ns / 1e6 / reps;
      }
    }
    peak_info pk = read_peak();
    int cores = pk.cores > 0 && pk.cores < c.threads ? pk.cores : c.threads;
    if (pk.fp32 <= 0 && pk.int8 <= 0) printf("(no peak.json: run build/peak for the %%peak column)\n");
    else
      printf("peak per core: fp32 %.1f GMAC/s, int8 %.1f GMAC/s; %%peak is against %d core%s\n", pk.fp32, pk.int8,
             cores, cores > 1 ? "s" : "");
    printf("%-5s %-20s %-26s %10s %9s %6s  %s\n", "node", "op", "kernel", "ms", "GMAC/s", "%peak", "name");
    for (int i = 0; acc && i < nn; i++) {
      ei_node_info ni;
      uint64_t ns;
      int64_t macs;
      ei_model_node_info(m, i, &ni);
      ei_session_node_time_ns(s, i, &ns, &macs);
      double gmacs = acc[i] > 0 ? macs / 1e6 / acc[i] : 0.0, peak = (node_is_int8(&ni) ? pk.int8 : pk.fp32) * cores;
      char share[16] = "";
      if (peak > 0 && macs > 0) snprintf(share, sizeof share, "%.1f", 100.0 * gmacs / peak);
      printf("%-5d %-20s %-26s %10.4f %9.2f %6s  %s\n", i, ni.op_type, ni.kernel ? ni.kernel : "", acc[i], gmacs,
             share, ni.name);
    }
    free(acc);
  }
  rc = 0;
out:
  free(lat);
  ei_session_destroy(s);
  cli_free_inputs(&in);
  ei_model_destroy(m);
  ei_threadpool_destroy(pool);
  return rc;
}
