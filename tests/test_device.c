/* tests/test_device.c: the device profile (src/server/device.c) and the per-thread counters (src/server/perf.c).
 *   - a fake sysfs tree of a Raspberry Pi 5 (thermal zone cpu-thermal, the same sensor again through hwmon, a
 *     sensor seen through both by its device link, the RP1 ADC, rpi_volt, cpufreq policy0 for cpu0..3, the
 *     firmware's get_throttled) gives the exact expected exposition lines; the sampler thread picks up a change;
 *   - an empty root: every feature 0, the device families absent, every source named in the start-up text;
 *   - the memcpy probe;
 *   - perf: software groups on this thread and on a thread pool's workers (one group read each, consistent
 *     reads, task-clock grows with work), the per-execution path with a pool shared by two overlapping
 *     executions, hardware events failing cleanly where there is no PMU;
 *   - ei_session_planned_traffic_bytes;
 *   - a server (fake transport) with the device profile on: after N requests the version's counters and the
 *     per-model families.
 * usage: test_device MODELS_DIR */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "core/core.h"
#include "core_impl.h"
#include "device.h"
#include "metrics.h"
#include "perf.h"

#include "check.h"

static char tmp[256];

/* ---- the fake tree ---- */

static void mkdirs(const char *path) {
  char p[1024];
  snprintf(p, sizeof p, "%s", path);
  for (char *c = p + 1; *c; c++)
    if (*c == '/') {
      *c = 0;
      mkdir(p, 0755);
      *c = '/';
    }
  mkdir(p, 0755);
}

static void put(const char *root, const char *rel, const char *text) {
  char p[1024];
  snprintf(p, sizeof p, "%s/%s", root, rel);
  char *slash = strrchr(p, '/');
  *slash = 0;
  mkdirs(p);
  *slash = '/';
  FILE *f = fopen(p, "w");
  if (!f || fputs(text, f) < 0) {
    fprintf(stderr, "cannot write %s\n", p);
    exit(1);
  }
  fclose(f);
}

static void link_(const char *root, const char *target, const char *rel) {
  char p[1024];
  snprintf(p, sizeof p, "%s/%s", root, rel);
  char *slash = strrchr(p, '/');
  *slash = 0;
  mkdirs(p);
  *slash = '/';
  if (symlink(target, p)) {
    fprintf(stderr, "symlink %s: %s\n", p, strerror(errno));
    exit(1);
  }
}

/* A Raspberry Pi 5 as its kernel shows it (the parts the device profile reads). */
static void make_pi5(const char *root) {
  put(root, "class/thermal/thermal_zone0/type", "cpu-thermal\n");
  put(root, "class/thermal/thermal_zone0/temp", "85000\n");
  /* the same sensor through the thermal hwmon bridge: name = type with '-' -> '_' */
  put(root, "class/hwmon/hwmon0/name", "cpu_thermal\n");
  put(root, "class/hwmon/hwmon0/temp1_input", "85000\n");
  /* the RP1's ADC sensor: hwmon only */
  put(root, "class/hwmon/hwmon1/name", "rp1_adc\n");
  put(root, "class/hwmon/hwmon1/temp1_input", "52312\n");
  put(root, "class/hwmon/hwmon2/name", "rpi_volt\n");
  put(root, "class/hwmon/hwmon2/in0_lcrit_alarm", "0\n");
  /* a sensor seen through both by the same device link (names differ) */
  mkdirs(tmp);
  char dev[512];
  snprintf(dev, sizeof dev, "%s/devices/platform/pmic-sensor", root);
  mkdirs(dev);
  put(root, "class/thermal/thermal_zone1/type", "pmic\n");
  put(root, "class/thermal/thermal_zone1/temp", "41500\n");
  link_(root, dev, "class/thermal/thermal_zone1/device");
  put(root, "class/hwmon/hwmon3/name", "pmic_adc\n");
  put(root, "class/hwmon/hwmon3/temp1_input", "41500\n");
  link_(root, dev, "class/hwmon/hwmon3/device");
  /* cpufreq: one policy for the four Cortex-A76 cores, cpuN/cpufreq links to it */
  put(root, "devices/system/cpu/cpufreq/policy0/scaling_cur_freq", "1500000\n");
  put(root, "devices/system/cpu/cpufreq/policy0/cpuinfo_max_freq", "2400000\n");
  for (int c = 0; c < 4; c++) {
    char rel[128];
    snprintf(rel, sizeof rel, "devices/system/cpu/cpu%d/online", c);
    put(root, rel, "1\n");
    snprintf(rel, sizeof rel, "devices/system/cpu/cpu%d/cpufreq", c);
    link_(root, "../cpufreq/policy0", rel);
  }
  /* the firmware's throttle word: under-voltage and throttled now and since boot */
  put(root, "devices/platform/soc@107c000000/soc@107c000000:firmware/get_throttled", "50005\n");
  /* the CPU's PMU only: no memory-controller PMU */
  put(root, "bus/event_source/devices/armv8_cortex_a76/type", "8\n");
}

/* ---- exposition helpers ---- */

static char *page(ei__device *d) {
  ei__prom *p = ei__prom_new();
  ei__device_write(d, p);
  size_t n;
  const char *t = ei__prom_text(p, &n);
  char *copy = strdup(t ? t : "");
  ei__prom_free(p);
  return copy;
}

static int has_line(const char *text, const char *line) {
  size_t n = strlen(line);
  for (const char *p = text; (p = strstr(p, line)); p++)
    if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == 0)) return 1;
  return 0;
}

static int count_prefix(const char *text, const char *prefix) {
  int n = 0;
  size_t l = strlen(prefix);
  for (const char *p = text; p && *p;) {
    if (!strncmp(p, prefix, l)) n++;
    p = strchr(p, '\n');
    if (p) p++;
  }
  return n;
}

/* The value of a series ("name{labels}"), NAN when absent. */
static double value_of(const char *text, const char *series) {
  size_t l = strlen(series);
  for (const char *p = text; p && *p;) {
    if (!strncmp(p, series, l) && p[l] == ' ') return strtod(p + l + 1, NULL);
    p = strchr(p, '\n');
    if (p) p++;
  }
  return NAN;
}

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  if (!d) return -1;
  while (readdir(d)) n++;
  closedir(d);
  return n;
}

static ei__device *start(const char *root, int perf, int probe, double interval) {
  ei__device_options o;
  ei__device_options_init(&o);
  o.sysfs_root = root;
  o.perf = perf;
  o.probe = probe;
  o.probe_sync = 1;
  o.probe_bytes = (size_t)1 << 20;
  o.interval_s = interval;
  o.log = 0;
  ei__device *d = NULL;
  char err[256];
  ei_status st = ei__device_start(&o, &d, err, sizeof err);
  CHECK(st == EI_OK && d, "start: %s", err);
  if (!d) exit(1);
  return d;
}

static void test_pi5(void) {
  char root[300];
  snprintf(root, sizeof root, "%s/pi5", tmp);
  make_pi5(root);
  ei__device *d = start(root, 0, 0, 3600);
  char *t = page(d);
  static const char *const expect[] = {
      "# TYPE ei_device_temperature_celsius gauge",
      "ei_device_temperature_celsius{zone=\"cpu-thermal\",source=\"thermal\"} 85",
      "ei_device_temperature_celsius{zone=\"pmic\",source=\"thermal\"} 41.5",
      "# TYPE ei_device_cpu_frequency_hertz gauge",
      "ei_device_cpu_frequency_hertz{cpu=\"0\"} 1500000000",
      "ei_device_cpu_frequency_hertz{cpu=\"1\"} 1500000000",
      "ei_device_cpu_frequency_hertz{cpu=\"2\"} 1500000000",
      "ei_device_cpu_frequency_hertz{cpu=\"3\"} 1500000000",
      "# TYPE ei_device_cpu_max_frequency_hertz gauge",
      "ei_device_cpu_max_frequency_hertz{cpu=\"0\"} 2400000000",
      "ei_device_cpu_max_frequency_hertz{cpu=\"3\"} 2400000000",
      "# TYPE ei_device_throttled gauge",
      "ei_device_throttled{flag=\"under_voltage\"} 1",
      "ei_device_throttled{flag=\"arm_frequency_capped\"} 0",
      "ei_device_throttled{flag=\"throttled\"} 1",
      "ei_device_throttled{flag=\"soft_temp_limit\"} 0",
      "# TYPE ei_device_throttled_since_boot gauge",
      "ei_device_throttled_since_boot{flag=\"under_voltage\"} 1",
      "ei_device_throttled_since_boot{flag=\"arm_frequency_capped\"} 0",
      "ei_device_throttled_since_boot{flag=\"throttled\"} 1",
      "ei_device_throttled_since_boot{flag=\"soft_temp_limit\"} 0",
      "# TYPE ei_device_feature_supported gauge",
      "ei_device_feature_supported{feature=\"thermal\"} 1",
      "ei_device_feature_supported{feature=\"cpufreq\"} 1",
      "ei_device_feature_supported{feature=\"throttle\"} 1",
      "ei_device_feature_supported{feature=\"perf_hw\"} 0",
      "ei_device_feature_supported{feature=\"dram_bw\"} 0",
  };
  for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
    CHECK(has_line(t, expect[i]), "missing line: %s\n--- page:\n%s", expect[i], t);
  /* each sensor once: the hwmon views of cpu-thermal and pmic are not there */
  double adc = value_of(t, "ei_device_temperature_celsius{zone=\"rp1_adc/temp1\",source=\"hwmon\"}");
  CHECK(fabs(adc - 52.312) < 1e-12, "rp1_adc %.17g\n%s", adc, t);
  CHECK(count_prefix(t, "ei_device_temperature_celsius{") == 3, "3 temperatures expected\n%s", t);
  CHECK(!strstr(t, "cpu_thermal") && !strstr(t, "pmic_adc"), "a duplicate sensor is listed\n%s", t);
  CHECK(count_prefix(t, "ei_device_cpu_frequency_hertz{") == 4, "4 CPUs expected");
  CHECK(count_prefix(t, "# HELP ") == count_prefix(t, "# TYPE "), "HELP and TYPE go together");
  CHECK(!strstr(t, "copy_bandwidth"), "no probe was asked for");
  CHECK(strstr(ei__device_missing(d), "dram_bw (") && strstr(ei__device_missing(d), "perf_hw (--perf-counters off)"),
        "missing: %s", ei__device_missing(d));
  CHECK(!strstr(ei__device_missing(d), "thermal (") && !strstr(ei__device_missing(d), "cpufreq ("),
        "missing: %s", ei__device_missing(d));
  free(t);
  ei__device_stop(d);

  /* the sampler thread: a change shows within a few periods */
  d = start(root, 0, 0, 0.05);
  put(root, "class/thermal/thermal_zone0/temp", "70250\n");
  put(root, "devices/platform/soc@107c000000/soc@107c000000:firmware/get_throttled", "0\n");
  int seen = 0;
  for (int i = 0; i < 200 && !seen; i++) {
    t = page(d);
    seen = has_line(t, "ei_device_temperature_celsius{zone=\"cpu-thermal\",source=\"thermal\"} 70.25") &&
           has_line(t, "ei_device_throttled{flag=\"throttled\"} 0");
    free(t);
    if (!seen) usleep(10000);
  }
  CHECK(seen, "the sampler did not pick up the new temperature");
  ei__device_stop(d);

  /* without the firmware word, the rpi_volt alarm alone */
  char p[512];
  snprintf(p, sizeof p, "%s/devices/platform/soc@107c000000/soc@107c000000:firmware/get_throttled", root);
  unlink(p);
  put(root, "class/hwmon/hwmon2/in0_lcrit_alarm", "1\n");
  d = start(root, 0, 0, 3600);
  t = page(d);
  CHECK(has_line(t, "ei_device_throttled{flag=\"under_voltage\"} 1"), "rpi_volt alarm\n%s", t);
  CHECK(count_prefix(t, "ei_device_throttled{") == 1 && !strstr(t, "since_boot"), "alarm only\n%s", t);
  CHECK(has_line(t, "ei_device_feature_supported{feature=\"throttle\"} 1"), "throttle feature");
  free(t);
  ei__device_stop(d);
}

static void test_empty(void) {
  char root[300];
  snprintf(root, sizeof root, "%s/empty", tmp);
  mkdirs(root);
  /* --perf-counters off: no descriptor stays open */
  int fds0 = count_fds();
  ei__device *off = start(root, 0, 0, 3600);
  CHECK(count_fds() == fds0, "perf off opened descriptors: %d -> %d", fds0, count_fds());
  CHECK(ei__device_perf(off) == NULL, "no counters when off");
  ei__device_stop(off);
  ei__device *d = start(root, 1, 0, 3600);
  char *t = page(d);
  static const char *const feats[] = {"thermal", "cpufreq", "throttle", "dram_bw"};
  for (int i = 0; i < 4; i++) {
    char line[128];
    snprintf(line, sizeof line, "ei_device_feature_supported{feature=\"%s\"} 0", feats[i]);
    CHECK(has_line(t, line), "%s\n%s", line, t);
  }
  ei__perf_support ps;
  ei__perf_probe(&ps);
  CHECK(has_line(t, ps.hw ? "ei_device_feature_supported{feature=\"perf_hw\"} 1"
                          : "ei_device_feature_supported{feature=\"perf_hw\"} 0"),
        "perf_hw as the probe says\n%s", t);
  CHECK(!strstr(t, "ei_device_temperature") && !strstr(t, "ei_device_cpu_") && !strstr(t, "ei_device_throttled") &&
            !strstr(t, "copy_bandwidth") && !strstr(t, "ei_device_dram_"),
        "families of missing sources must be absent\n%s", t);
  const char *m = ei__device_missing(d);
  CHECK(strstr(m, "thermal (") && strstr(m, "No such file or directory") && strstr(m, "cpufreq (") &&
            strstr(m, "throttle (") && strstr(m, "dram_bw ("),
        "every missing source is named with its reason: %s", m);
  if (!ps.hw) CHECK(strstr(m, "perf_hw (") && strstr(m, "perf_event_paranoid"), "perf_hw reason: %s", m);
  free(t);
  ei__device_stop(d);

  /* a memory-controller PMU whose events cannot be opened (a made-up type): dram_bw 0, named with the errno of
   * perf_event_open (so the event string was parsed with the format fields) */
  char imc[300];
  snprintf(imc, sizeof imc, "%s/imc", tmp);
  put(imc, "bus/event_source/devices/uncore_imc_0/type", "987654\n");
  put(imc, "bus/event_source/devices/uncore_imc_0/cpumask", "0\n");
  put(imc, "bus/event_source/devices/uncore_imc_0/format/event", "config:0-7\n");
  put(imc, "bus/event_source/devices/uncore_imc_0/format/umask", "config:8-15\n");
  put(imc, "bus/event_source/devices/uncore_imc_0/events/cas_count_read", "event=0x04,umask=0x03\n");
  put(imc, "bus/event_source/devices/uncore_imc_0/events/cas_count_write", "event=0x04,umask=0x0c\n");
  put(imc, "bus/event_source/devices/uncore_imc_0/events/cas_count_read.scale", "6.103515625e-5\n");
  put(imc, "bus/event_source/devices/uncore_imc_0/events/cas_count_read.unit", "MiB\n");
  d = start(imc, 0, 0, 3600);
  t = page(d);
  CHECK(has_line(t, "ei_device_feature_supported{feature=\"dram_bw\"} 0") && !strstr(t, "ei_device_dram_"),
        "dram_bw\n%s", t);
  CHECK(strstr(ei__device_missing(d), "dram_bw (uncore_imc cas_count events: ") &&
            !strstr(ei__device_missing(d), "Invalid argument"),
        "missing: %s", ei__device_missing(d));
  free(t);
  ei__device_stop(d);

  /* the probe */
  d = start(root, 0, 1, 3600);
  t = page(d);
  double bw = value_of(t, "ei_device_copy_bandwidth_bytes_per_second");
  CHECK(bw > 1e6 && bw < 1e13, "copy bandwidth %g\n%s", bw, t);
  free(t);
  ei__device_stop(d);
}

/* ---- perf ---- */

static void spin_ms(double ms) {
  uint64_t t0 = ei__now_ns();
  volatile uint64_t x = 0;
  while ((ei__now_ns() - t0) / 1e6 < ms) x++;
}

static uint64_t thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void busy_chunk(void *arg, int64_t b, int64_t e) {
  (void)arg;
  for (int64_t i = b; i < e; i++) spin_ms(2);
}

static void test_perf(void) {
  ei__perf_support ps;
  ei__perf_probe(&ps);
  printf("perf: software %d, hardware %d (%s), user only %d, perf_event_paranoid %d\n", ps.sw, ps.hw,
         ps.hw ? "" : ps.hw_why, ps.user_only, ps.paranoid);
  if (!ps.hw) CHECK(ps.hw_why[0] && strstr(ps.hw_why, "perf_event_paranoid"), "a reason: %s", ps.hw_why);
  if (!ps.sw) {
    CHECK(ps.sw_why[0], "a reason for the software events");
    printf("perf: software events unavailable here (%s): per-thread checks skipped\n", ps.sw_why);
    return;
  }
  /* this thread */
  ei__perf_thread self;
  char why[160], hwhy[160];
  CHECK(!ei__perf_thread_open(&self, 0, 1, why, sizeof why, hwhy, sizeof hwhy), "open: %s", why);
  CHECK((self.hw_fd[0] >= 0) == ps.hw, "hardware group as probed (%s)", hwhy);
  ei__perf_raw a, b;
  uint64_t c0 = thread_cpu_ns();
  CHECK(!ei__perf_thread_read(&self, &a) && a.sw_ok, "read");
  spin_ms(30);
  CHECK(!ei__perf_thread_read(&self, &b) && b.sw_ok, "read");
  uint64_t c1 = thread_cpu_ns();
  ei__perf_counts d;
  ei__perf_delta(&a, &b, &d);
  /* task-clock is this thread's CPU time: it agrees with CLOCK_THREAD_CPUTIME_ID around it */
  CHECK(d.sw && d.task_clock_ns > 0 && d.task_clock_ns <= c1 - c0 + 1000000 && d.task_clock_ns + 2000000 >= (c1 - c0) * 9 / 10,
        "task-clock %llu ns, thread CPU time %llu ns", (unsigned long long)d.task_clock_ns,
        (unsigned long long)(c1 - c0));
  CHECK(b.sw_enabled >= a.sw_enabled && b.sw_running >= a.sw_running && b.sw_running <= b.sw_enabled,
        "enabled/running times");
  CHECK(b.sw[0] >= a.sw[0] && b.sw[1] >= a.sw[1], "counts never go back");
  ei__perf_thread_close(&self);

  /* a pool's workers */
  ei_threadpool *pool = NULL;
  char err[256];
  CHECK(!ei_threadpool_create(3, NULL, 0, &pool, err, sizeof err), "pool: %s", err);
  int tids[8];
  int n = ei_threadpool_thread_ids(pool, tids, 8);
  CHECK(n == 2, "2 workers, got %d", n);
  int me = (int)syscall(SYS_gettid);
  CHECK(n == 2 && tids[0] > 0 && tids[1] > 0 && tids[0] != tids[1] && tids[0] != me && tids[1] != me, "tids");
  CHECK(ei_threadpool_thread_ids(NULL, tids, 8) == 0, "no pool, no workers");
  ei__perf_thread w[2];
  ei__perf_raw w0[2], w1[2];
  for (int i = 0; i < 2; i++) {
    CHECK(!ei__perf_thread_open(&w[i], tids[i], 0, why, sizeof why, NULL, 0), "worker %d: %s", i, why);
    CHECK(!ei__perf_thread_read(&w[i], &w0[i]), "worker read");
  }
  ei__parallel_for(pool, 48, 1, busy_chunk, NULL); /* ~96 ms of work in 48 chunks */
  uint64_t workers_ns = 0;
  for (int i = 0; i < 2; i++) {
    CHECK(!ei__perf_thread_read(&w[i], &w1[i]), "worker read");
    ei__perf_delta(&w0[i], &w1[i], &d);
    workers_ns += d.task_clock_ns;
  }
  CHECK(workers_ns > 0, "the workers' task-clock grew");

  /* the per-execution path: two overlapping executions on one pool; their worker shares add up to what the
   * workers' own groups saw over an enclosing window */
  ei__perf *P = ei__perf_new(ps.hw);
  CHECK(P != NULL, "perf registry");
  for (int i = 0; i < 2; i++) ei__perf_thread_read(&w[i], &w0[i]);
  ei__perf_exec x1, x2;
  ei__perf_counts d1, d2;
  ei__perf_exec_begin(P, &x1, pool);
  ei__parallel_for(pool, 24, 1, busy_chunk, NULL);
  ei__perf_exec_begin(P, &x2, pool);
  ei__parallel_for(pool, 24, 1, busy_chunk, NULL);
  CHECK(ei__perf_exec_end(P, &x1, &d1), "x1 counted");
  ei__parallel_for(pool, 24, 1, busy_chunk, NULL);
  CHECK(ei__perf_exec_end(P, &x2, &d2), "x2 counted");
  uint64_t enclosing = 0;
  for (int i = 0; i < 2; i++) {
    ei__perf_thread_read(&w[i], &w1[i]);
    ei__perf_delta(&w0[i], &w1[i], &d);
    enclosing += d.task_clock_ns;
  }
  uint64_t shares = x1.workers.task_clock_ns + x2.workers.task_clock_ns;
  CHECK(d1.sw && d2.sw, "software counts");
  CHECK(shares > 0 && shares <= enclosing, "worker shares %llu within the enclosing window %llu",
        (unsigned long long)shares, (unsigned long long)enclosing);
  /* the caller's own part: it ran ~48 ms (x1) and ~72 ms (x2) of wall time, some of it in chunks */
  CHECK(d1.task_clock_ns > x1.workers.task_clock_ns && d2.task_clock_ns > x2.workers.task_clock_ns,
        "the executor thread's own part counts too");
  if (!ps.hw) CHECK(!d1.hw && !d2.hw, "no hardware counts without a PMU");
  /* a single-threaded execution (no pool) and P NULL (counters off) */
  ei__perf_exec x3;
  c0 = thread_cpu_ns();
  ei__perf_exec_begin(P, &x3, NULL);
  spin_ms(5);
  CHECK(ei__perf_exec_end(P, &x3, &d) && d.task_clock_ns > 0 && d.task_clock_ns <= thread_cpu_ns() - c0 + 1000000,
        "no pool: %llu", (unsigned long long)d.task_clock_ns);
  ei__perf_exec_begin(NULL, &x3, pool);
  CHECK(!ei__perf_exec_end(NULL, &x3, &d) && !d.sw && !d.hw, "off");
  for (int i = 0; i < 2; i++) ei__perf_thread_close(&w[i]);
  ei__perf_free(P);
  ei_threadpool_destroy(pool);
}

/* ---- the planned traffic ---- */

static int64_t planned_fashion(const char *models_dir, int64_t *weights) {
  char path[1024], err[256];
  snprintf(path, sizeof path, "%s/fashion_mnist.onnx", models_dir);
  ei_model *m = NULL;
  ei_session *s = NULL;
  int64_t b = -2;
  if (ei_model_load(path, NULL, &m, err, sizeof err)) {
    CHECK(0, "load %s: %s", path, err);
    return -2;
  }
  ei_model_stats ms;
  ei_model_get_stats(m, &ms);
  *weights = (int64_t)ms.weight_bytes;
  if (ei_session_create(m, NULL, &s, err, sizeof err)) goto out;
  CHECK(ei_session_planned_traffic_bytes(s) == -1, "nothing planned yet");
  CHECK(ei_session_planned_traffic_bytes(NULL) == -1, "NULL");
  ei_tensor in = {EI_FLOAT, 4, {1, 1, 28, 28}, NULL};
  float zeros[784] = {0};
  in.data = zeros;
  if (ei_session_plan(s, 1, &in, err, sizeof err)) {
    CHECK(0, "plan: %s", err);
    goto out;
  }
  b = ei_session_planned_traffic_bytes(s);
out:
  ei_session_destroy(s);
  ei_model_destroy(m);
  return b;
}

/* ---- a server with the device profile ---- */

static int ndone;
static float image[784];
static ei__srv_code fake_decode(ei__req *r) {
  ei__ks_tensor *in = ei__req_alloc(r, sizeof *in);
  if (!in) return ei__req_fail(r, EI_SRV_INTERNAL, "oom");
  memset(in, 0, sizeof *in);
  in->name = "input";
  in->dtype = EI_KS_FP32;
  in->rank = 4;
  in->shape[0] = 1, in->shape[1] = 1, in->shape[2] = 28, in->shape[3] = 28;
  in->data = image;
  in->nbytes = sizeof image;
  r->inputs = in;
  r->ninputs = 1;
  return EI_SRV_OK;
}
static void fake_encode(ei__req *r) { (void)r; }
static void fake_done(ei__req *r) {
  CHECK(r->code == EI_SRV_OK, "request failed: %s", r->error);
  ndone++;
  ei__req_release(r);
}
static const ei__req_ops fake_ops = {fake_decode, fake_encode, fake_done};

static void copy_file(const char *from, const char *to) {
  FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
  char buf[65536];
  size_t n;
  if (!a || !b) {
    fprintf(stderr, "copy %s -> %s failed\n", from, to);
    exit(1);
  }
  while ((n = fread(buf, 1, sizeof buf, a)) > 0) fwrite(buf, 1, n, b);
  fclose(a);
  fclose(b);
}

static void test_server(const char *models_dir) {
  char repo[300], mdir[400], src[1024], dst[512], root[300];
  snprintf(repo, sizeof repo, "%s/repo", tmp);
  snprintf(mdir, sizeof mdir, "%s/fm/1", repo);
  mkdirs(mdir);
  snprintf(src, sizeof src, "%s/fashion_mnist.onnx", models_dir);
  snprintf(dst, sizeof dst, "%s/model.onnx", mdir);
  copy_file(src, dst);
  snprintf(root, sizeof root, "%s/pi5", tmp);
  uv_loop_t loop;
  uv_loop_init(&loop);
  ei__srv_options o;
  ei__srv_options_init(&o);
  o.repo_dir = repo;
  o.threads = 2;
  o.device = 1;
  o.device_interval_s = 0.1;
  o.no_probe = 1;
  o.sysfs_root = root;
  ei__server *s = NULL;
  char err[512];
  ei_status st = ei__server_create(&loop, &o, &s, err, sizeof err);
  CHECK(st == EI_OK && s && s->device, "server: %s", err);
  if (!s) return;
  const int N = 7;
  for (int i = 0; i < N; i++) {
    ei__req *r = ei__req_new(EI_REQ_INFER, &fake_ops, NULL);
    r->model_name = "fm";
    r->model_version = "";
    int before = ndone;
    ei__srv_submit(s, r);
    for (int g = 0; g < 100000 && ndone == before; g++) uv_run(&loop, UV_RUN_ONCE);
  }
  CHECK(ndone == N, "%d requests done", ndone);
  ei__version *v = s->models[0]->versions[0];
  pthread_mutex_lock(&v->st_mu);
  ei__perf_counts c = v->perf;
  uint64_t execs = v->st.execution_count;
  pthread_mutex_unlock(&v->st_mu);
  CHECK(execs == (uint64_t)N, "%llu executions", (unsigned long long)execs);
  ei__perf_support ps;
  ei__perf_probe(&ps);
  if (ps.sw) CHECK(c.sw && c.task_clock_ns > 0, "the version's task-clock: %llu", (unsigned long long)c.task_clock_ns);
  CHECK(c.hw == ps.hw, "hardware counts only with a PMU");
  ei__prom *p = ei__prom_new();
  ei__device_write(s->device, p);
  const char *t = ei__prom_text(p, NULL);
  if (ps.sw) {
    double tc = value_of(t, "ei_model_task_clock_seconds_total{model=\"fm\",version=\"1\"}");
    CHECK(fabs(tc - c.task_clock_ns / 1e9) < 1e-9 * (double)c.task_clock_ns + 1e-9, "task clock %g\n%s", tc, t);
    CHECK(!isnan(value_of(t, "ei_model_context_switches_total{model=\"fm\",version=\"1\"}")), "context switches");
  }
  if (!ps.hw) CHECK(!strstr(t, "ei_model_cpu_cycles_total"), "no cycles without a PMU");
  int64_t weights = 0, planned = planned_fashion(models_dir, &weights);
  CHECK(planned > weights, "planned %lld bytes, weights %lld", (long long)planned, (long long)weights);
  char line[160];
  snprintf(line, sizeof line, "ei_model_planned_bytes_per_inference{model=\"fm\",version=\"1\"} %lld",
           (long long)planned);
  CHECK(has_line(t, line), "%s\n%s", line, t);
  CHECK(has_line(t, "ei_device_temperature_celsius{zone=\"cpu-thermal\",source=\"thermal\"} 70.25"),
        "the device families come with the server's profile");
  ei__prom_free(p);
  ei__server_destroy(s);
  uv_run(&loop, UV_RUN_NOWAIT);
  uv_loop_close(&loop);
}

static void rm_rf(const char *path) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
  if (system(cmd)) fprintf(stderr, "cannot remove %s\n", path);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_device MODELS_DIR\n");
    return 2;
  }
  const char *base = getenv("TMPDIR");
  snprintf(tmp, sizeof tmp, "%s/ei-device-XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(tmp)) {
    perror("mkdtemp");
    return 1;
  }
  test_pi5();
  test_empty();
  test_perf();
  test_server(argv[1]);
  rm_rf(tmp);
  if (failures) {
    fprintf(stderr, "%d failure(s)\n", failures);
    return 1;
  }
  printf("test_device: all checks passed\n");
  return 0;
}
