/* src/server/device.c: the device profile (see device.h for what is read from where and the dedupe rule). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <stdarg.h>
#include <limits.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "core_impl.h"
#include "device.h"
#include "strbuf.h"

#define MAX_TEMPS 64
#define MAX_CPUS 256
#define MAX_IMC 16

typedef struct temp_reading {
  char zone[128];
  int hwmon; /* source: 0 thermal, 1 hwmon */
  double celsius;
} temp_reading;

typedef struct cpu_reading {
  int cpu;
  int has_cur, has_max;
  double cur_hz, max_hz;
} cpu_reading;

typedef struct snapshot {
  int ntemps;
  temp_reading temps[MAX_TEMPS];
  int ncpus;
  cpu_reading cpus[MAX_CPUS];
  int throttle;           /* 0: none, 1: firmware get_throttled word, 2: rpi_volt under-voltage alarm only */
  uint32_t throttled;     /* 1: the word; 2: bit 0 = the alarm */
  int dram;               /* the DRAM counters were read */
  double dram_read_bytes, dram_write_bytes;
  char why_thermal[256], why_cpufreq[256], why_throttle[256];
  uint64_t samples;
} snapshot;

/* One memory-controller PMU's read and write byte counters (system-wide, on one CPU). */
typedef struct imc {
  int fd_read, fd_write;
  double scale_read, scale_write; /* bytes per count */
  uint64_t last_read, last_write;
} imc;

struct ei__device {
  ei__device_options opt;
  char root[PATH_MAX];
  pthread_t thread;
  int started;
  pthread_mutex_t mu;     /* snap, copy_bw, stop */
  pthread_cond_t cv;
  int stop;
  snapshot snap;
  snapshot scratch;       /* sampler thread only */
  double copy_bw;         /* bytes/s, 0 until the probe ran */
  int probe_state;        /* 0 not run, 1 done, -1 failed */
  char why_probe[128];
  ei__perf_support perf;
  char why_perf[256];     /* "" when the hardware counters work */
  ei__perf *P;
  int nimc;
  imc imcs[MAX_IMC];
  double dram_read, dram_write; /* sampler thread: bytes since start */
  char why_dram[256];
  char missing[1536];
};

static const char *const throttle_flags[4] = {"under_voltage", "arm_frequency_capped", "throttled",
                                              "soft_temp_limit"};

void ei__device_options_init(ei__device_options *o) {
  memset(o, 0, sizeof *o);
  o->interval_s = 5;
  o->perf = 1;
  o->probe = 1;
  o->probe_bytes = (size_t)32 << 20;
  o->log = 1;
}

/* ---- sysfs helpers ---- */

/* Reads a small file into buf (NUL-terminated, trailing newline dropped); 0 or an errno value. */
static int read_text(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "re");
  if (!f) return errno ? errno : EIO;
  size_t n = fread(buf, 1, cap - 1, f);
  int e = ferror(f) ? (errno ? errno : EIO) : 0;
  fclose(f);
  if (e) return e;
  buf[n] = 0;
  while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' ' || buf[n - 1] == '\r')) buf[--n] = 0;
  return 0;
}

static int read_i64(const char *path, long long *v) {
  char buf[64], *e;
  int rc = read_text(path, buf, sizeof buf);
  if (rc) return rc;
  errno = 0;
  *v = strtoll(buf, &e, 10);
  if (e == buf || errno) return EINVAL;
  return 0;
}

/* Numbered entries prefix<N> of a folder, sorted by N; returns the count (at most cap) or -errno. */
static int list_numbered(const char *dir, const char *prefix, const char *suffix, int *out, int cap) {
  DIR *d = opendir(dir);
  if (!d) return -(errno ? errno : EIO);
  size_t pl = strlen(prefix), sl = suffix ? strlen(suffix) : 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < cap) {
    const char *s = e->d_name;
    if (strncmp(s, prefix, pl) || s[pl] < '0' || s[pl] > '9') continue;
    char *end;
    long v = strtol(s + pl, &end, 10);
    if (v < 0 || v > INT_MAX) continue;
    if (sl ? strcmp(end, suffix) : *end != 0) continue;
    int k = n++;
    while (k > 0 && out[k - 1] > v) out[k] = out[k - 1], k--;
    out[k] = (int)v;
  }
  closedir(d);
  return n;
}

/* The device a `device` link points to (realpath), "" when none. */
static void device_of(const char *dir, char *out, size_t cap) {
  char p[PATH_MAX + 16], r[PATH_MAX];
  out[0] = 0;
  ei__fmt(p, sizeof p, "%s/device", dir);
  if (realpath(p, r)) ei__fmt(out, cap, "%s", r);
}

static void add_temp(snapshot *s, const char *zone, int hwmon, double c) {
  if (s->ntemps >= MAX_TEMPS) return;
  temp_reading *t = &s->temps[s->ntemps];
  /* zone names must be unique within a source: a repeated one gets a #2, #3 ... */
  ei__fmt(t->zone, sizeof t->zone, "%s", zone);
  for (int k = 2;; k++) {
    int clash = 0;
    for (int i = 0; i < s->ntemps; i++)
      if (s->temps[i].hwmon == hwmon && !strcmp(s->temps[i].zone, t->zone)) clash = 1;
    if (!clash) break;
    ei__fmt(t->zone, sizeof t->zone, "%.100s#%d", zone, k);
  }
  t->hwmon = hwmon;
  t->celsius = c;
  s->ntemps++;
}

typedef struct zone_id {
  char type[96];
  char dev[PATH_MAX];
} zone_id;

static void sample_temps(const char *root, snapshot *s, int *undervolt) {
  char dir[PATH_MAX + 64], p[PATH_MAX + 128];
  int idx[MAX_TEMPS];
  zone_id *zones = calloc(MAX_TEMPS, sizeof *zones); /* NULL: no dedupe */
  int nz = 0, why_set = 0;
  *undervolt = -1;
  ei__fmt(dir, sizeof dir, "%s/class/thermal", root);
  int n = list_numbered(dir, "thermal_zone", NULL, idx, MAX_TEMPS);
  if (n < 0) {
    ei__fmt(s->why_thermal, sizeof s->why_thermal, "%s: %s", dir, strerror(-n));
    why_set = 1;
  }
  for (int i = 0; i < n; i++) {
    char zd[PATH_MAX + 96], type[96];
    long long mdeg;
    ei__fmt(zd, sizeof zd, "%s/thermal_zone%d", dir, idx[i]);
    ei__fmt(p, sizeof p, "%s/type", zd);
    if (read_text(p, type, sizeof type) || !type[0]) ei__fmt(type, sizeof type, "thermal_zone%d", idx[i]);
    if (zones) {
      ei__fmt(zones[nz].type, sizeof zones[nz].type, "%s", type);
      device_of(zd, zones[nz].dev, sizeof zones[nz].dev);
      nz++;
    }
    ei__fmt(p, sizeof p, "%s/temp", zd);
    int rc = read_i64(p, &mdeg);
    if (rc) {
      if (!why_set) ei__fmt(s->why_thermal, sizeof s->why_thermal, "%s: %s", p, strerror(rc)), why_set = 1;
      continue;
    }
    add_temp(s, type, 0, mdeg / 1000.0);
  }
  ei__fmt(dir, sizeof dir, "%s/class/hwmon", root);
  n = list_numbered(dir, "hwmon", NULL, idx, MAX_TEMPS);
  if (n < 0 && !s->ntemps && !why_set)
    ei__fmt(s->why_thermal, sizeof s->why_thermal, "no thermal zone; %s: %s", dir, strerror(-n)), why_set = 1;
  for (int i = 0; i < n; i++) {
    char hd[PATH_MAX + 96], name[96], dev[PATH_MAX];
    ei__fmt(hd, sizeof hd, "%s/hwmon%d", dir, idx[i]);
    ei__fmt(p, sizeof p, "%s/name", hd);
    if (read_text(p, name, sizeof name) || !name[0]) ei__fmt(name, sizeof name, "hwmon%d", idx[i]);
    if (!strcmp(name, "rpi_volt")) {
      long long a;
      ei__fmt(p, sizeof p, "%s/in0_lcrit_alarm", hd);
      if (!read_i64(p, &a)) *undervolt = a != 0;
    }
    device_of(hd, dev, sizeof dev);
    int dup = 0;
    for (int z = 0; z < nz && !dup; z++) {
      char t[96];
      ei__fmt(t, sizeof t, "%s", zones[z].type);
      for (char *c = t; *c; c++)
        if (*c == '-') *c = '_';
      if (!strcmp(t, name) || (dev[0] && !strcmp(dev, zones[z].dev))) dup = 1;
    }
    if (dup) continue;
    int ti[32];
    int nt = list_numbered(hd, "temp", "_input", ti, 32);
    for (int k = 0; k < nt; k++) {
      char label[64], zone[192];
      long long mdeg;
      ei__fmt(p, sizeof p, "%s/temp%d_input", hd, ti[k]);
      int rc = read_i64(p, &mdeg);
      if (rc) {
        if (!why_set) ei__fmt(s->why_thermal, sizeof s->why_thermal, "%s: %s", p, strerror(rc)), why_set = 1;
        continue;
      }
      ei__fmt(p, sizeof p, "%s/temp%d_label", hd, ti[k]);
      if (read_text(p, label, sizeof label) || !label[0]) ei__fmt(label, sizeof label, "temp%d", ti[k]);
      ei__fmt(zone, sizeof zone, "%.90s/%.60s", name, label);
      add_temp(s, zone, 1, mdeg / 1000.0);
    }
  }
  if (!s->ntemps && !why_set)
    ei__fmt(s->why_thermal, sizeof s->why_thermal, "no thermal zone or hwmon temperature under %s/class", root);
  free(zones);
}

static void sample_cpufreq(const char *root, snapshot *s) {
  char dir[PATH_MAX + 64], p[PATH_MAX + 128];
  int idx[MAX_CPUS];
  ei__fmt(dir, sizeof dir, "%s/devices/system/cpu", root);
  int n = list_numbered(dir, "cpu", NULL, idx, MAX_CPUS), why_set = 0;
  if (n < 0) {
    ei__fmt(s->why_cpufreq, sizeof s->why_cpufreq, "%s: %s", dir, strerror(-n));
    return;
  }
  for (int i = 0; i < n; i++) {
    cpu_reading *c = &s->cpus[s->ncpus];
    long long khz;
    memset(c, 0, sizeof *c);
    c->cpu = idx[i];
    ei__fmt(p, sizeof p, "%s/cpu%d/cpufreq/scaling_cur_freq", dir, idx[i]);
    int rc = read_i64(p, &khz);
    if (!rc) c->has_cur = 1, c->cur_hz = khz * 1000.0;
    else if (!why_set) ei__fmt(s->why_cpufreq, sizeof s->why_cpufreq, "%s: %s", p, strerror(rc)), why_set = 1;
    ei__fmt(p, sizeof p, "%s/cpu%d/cpufreq/cpuinfo_max_freq", dir, idx[i]);
    if (!read_i64(p, &khz)) c->has_max = 1, c->max_hz = khz * 1000.0;
    if (c->has_cur || c->has_max) s->ncpus++;
  }
  if (!s->ncpus && !why_set) ei__fmt(s->why_cpufreq, sizeof s->why_cpufreq, "no cpuN folder under %s", dir);
}

static void sample_throttle(const char *root, snapshot *s, int undervolt) {
  static const char *const pats[] = {"%s/devices/platform/*/*:firmware/get_throttled",
                                     "%s/devices/platform/*firmware*/get_throttled"};
  int first_err = 0;
  char first_path[PATH_MAX + 64] = "";
  for (int k = 0; k < 2 && !s->throttle; k++) {
    char pat[PATH_MAX + 64];
    glob_t g;
    ei__fmt(pat, sizeof pat, pats[k], root);
    if (glob(pat, 0, NULL, &g)) continue;
    for (size_t i = 0; i < g.gl_pathc && !s->throttle; i++) {
      char buf[64], *e;
      int rc = read_text(g.gl_pathv[i], buf, sizeof buf);
      if (!rc) {
        errno = 0;
        unsigned long v = strtoul(buf, &e, 16);
        if (e != buf && !errno && !*e) {
          s->throttle = 1;
          s->throttled = (uint32_t)v;
          break;
        }
        rc = EINVAL;
      }
      if (!first_err) first_err = rc, ei__fmt(first_path, sizeof first_path, "%s", g.gl_pathv[i]);
    }
    globfree(&g);
  }
  if (!s->throttle && undervolt >= 0) {
    s->throttle = 2;
    s->throttled = (uint32_t)undervolt;
  }
  if (!s->throttle) {
    if (first_err)
      ei__fmt(s->why_throttle, sizeof s->why_throttle, "%s: %s", first_path, strerror(first_err));
    else
      ei__fmt(s->why_throttle, sizeof s->why_throttle,
               "no Raspberry Pi firmware get_throttled under %s/devices/platform and no rpi_volt hwmon: %s", root,
               strerror(ENOENT));
  }
}

/* ---- DRAM traffic: a memory-controller PMU (Intel uncore_imc_N: cas_count_read / cas_count_write) ---- */

/* "event=0x04,umask=0x03" with the device's format/ fields ("config:0-7") -> config. 0 or -1. */
static int pmu_config(const char *dev, const char *spec, uint64_t *config) {
  char buf[256];
  ei__fmt(buf, sizeof buf, "%s", spec);
  *config = 0;
  for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
    char *eq = strchr(tok, '=');
    unsigned long long v = 1;
    if (eq) *eq = 0, v = strtoull(eq + 1, NULL, 0);
    char fp[PATH_MAX + 256], fmt[64];
    int lo, hi;
    ei__fmt(fp, sizeof fp, "%s/format/%s", dev, tok);
    if (read_text(fp, fmt, sizeof fmt)) return -1;
    int nf = sscanf(fmt, "config:%d-%d", &lo, &hi);
    if (nf == 1) hi = lo;
    else if (nf != 2) return -1; /* config1/config2 fields: not used by the IMC events */
    if (lo < 0 || hi > 63 || hi < lo) return -1;
    *config |= ((uint64_t)v & (hi - lo == 63 ? ~0ull : ((1ull << (hi - lo + 1)) - 1))) << lo;
  }
  return 0;
}

/* Bytes per count from events/NAME.scale and .unit (MiB, KiB, bytes). */
static double pmu_scale(const char *dev, const char *name) {
  char p[PATH_MAX + 128], buf[64];
  double scale = 1;
  ei__fmt(p, sizeof p, "%s/events/%s.scale", dev, name);
  if (!read_text(p, buf, sizeof buf)) scale = strtod(buf, NULL);
  ei__fmt(p, sizeof p, "%s/events/%s.unit", dev, name);
  if (!read_text(p, buf, sizeof buf)) {
    if (!strcmp(buf, "MiB")) scale *= 1048576.0;
    else if (!strcmp(buf, "KiB")) scale *= 1024.0;
  }
  return scale;
}

static int pmu_open(const char *dev, const char *name, int *err) {
  char p[PATH_MAX + 128], spec[256], mask[64];
  long long type;
  uint64_t config;
  ei__fmt(p, sizeof p, "%s/type", dev);
  if ((*err = read_i64(p, &type))) return -1;
  ei__fmt(p, sizeof p, "%s/events/%s", dev, name);
  if ((*err = read_text(p, spec, sizeof spec))) return -1;
  if (pmu_config(dev, spec, &config)) return *err = EINVAL, -1;
  int cpu = 0;
  ei__fmt(p, sizeof p, "%s/cpumask", dev);
  if (!read_text(p, mask, sizeof mask)) cpu = atoi(mask);
  struct perf_event_attr a;
  memset(&a, 0, sizeof a);
  a.size = sizeof a;
  a.type = (uint32_t)type;
  a.config = config;
  int fd = (int)syscall(SYS_perf_event_open, &a, -1, cpu, -1, (unsigned long)PERF_FLAG_FD_CLOEXEC);
  if (fd < 0) *err = errno;
  return fd;
}

static void dram_open(ei__device *d) {
  char dir[PATH_MAX + 64];
  ei__fmt(dir, sizeof dir, "%s/bus/event_source/devices", d->root);
  DIR *dd = opendir(dir);
  if (!dd) {
    ei__fmt(d->why_dram, sizeof d->why_dram, "%s: %s", dir, strerror(errno));
    return;
  }
  struct dirent *e;
  int seen = 0, err = 0;
  char other[64] = "";
  while ((e = readdir(dd)) && d->nimc < MAX_IMC) {
    if (!strncmp(e->d_name, "arm_dsu", 7) || !strncmp(e->d_name, "arm_cmn", 7))
      ei__fmt(other, sizeof other, "%s", e->d_name);
    if (strncmp(e->d_name, "uncore_imc", 10)) continue;
    seen = 1;
    char dev[PATH_MAX + 320];
    ei__fmt(dev, sizeof dev, "%s/%s", dir, e->d_name);
    imc *m = &d->imcs[d->nimc];
    m->fd_read = pmu_open(dev, "cas_count_read", &err);
    m->fd_write = m->fd_read >= 0 ? pmu_open(dev, "cas_count_write", &err) : -1;
    if (m->fd_read < 0 || m->fd_write < 0) {
      if (m->fd_read >= 0) close(m->fd_read);
      continue;
    }
    m->scale_read = pmu_scale(dev, "cas_count_read");
    m->scale_write = pmu_scale(dev, "cas_count_write");
    if (read(m->fd_read, &m->last_read, 8) != 8 || read(m->fd_write, &m->last_write, 8) != 8) {
      close(m->fd_read);
      close(m->fd_write);
      continue;
    }
    d->nimc++;
  }
  closedir(dd);
  if (d->nimc) return;
  if (seen)
    ei__fmt(d->why_dram, sizeof d->why_dram, "uncore_imc cas_count events: %s (perf_event_paranoid %d)",
             strerror(err ? err : EINVAL), d->perf.paranoid);
  else if (other[0])
    ei__fmt(d->why_dram, sizeof d->why_dram, "%s has no DRAM byte event; no uncore_imc PMU in %s", other, dir);
  else
    ei__fmt(d->why_dram, sizeof d->why_dram, "no memory-controller PMU (uncore_imc*) in %s", dir);
}

static void dram_sample(ei__device *d, snapshot *s) {
  if (!d->nimc) return;
  for (int i = 0; i < d->nimc; i++) {
    imc *m = &d->imcs[i];
    uint64_t r, w;
    if (read(m->fd_read, &r, 8) != 8 || read(m->fd_write, &w, 8) != 8) continue;
    d->dram_read += (double)(r - m->last_read) * m->scale_read;
    d->dram_write += (double)(w - m->last_write) * m->scale_write;
    m->last_read = r;
    m->last_write = w;
  }
  s->dram = 1;
  s->dram_read_bytes = d->dram_read;
  s->dram_write_bytes = d->dram_write;
}

/* ---- sampling ---- */

static void take_sample(ei__device *d) {
  snapshot *s = &d->scratch;
  int undervolt;
  uint64_t n = s->samples;
  memset(s, 0, sizeof *s);
  s->samples = n + 1;
  sample_temps(d->root, s, &undervolt);
  sample_cpufreq(d->root, s);
  sample_throttle(d->root, s, undervolt);
  dram_sample(d, s);
  pthread_mutex_lock(&d->mu);
  d->snap = *s;
  pthread_mutex_unlock(&d->mu);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Copies a buffer back and forth for about 0.2 s (at least 3 times); the best rate in bytes copied per second. */
static void run_probe(ei__device *d) {
  size_t n = d->opt.probe_bytes;
  char *a = malloc(n), *b = malloc(n);
  double best = 0;
  if (!a || !b) {
    free(a);
    free(b);
    pthread_mutex_lock(&d->mu);
    ei__fmt(d->why_probe, sizeof d->why_probe, "out of memory for 2 x %zu bytes", n);
    d->probe_state = -1;
    pthread_mutex_unlock(&d->mu);
    return;
  }
  memset(a, 1, n);
  memset(b, 2, n);
  double start = now_s();
  for (int rep = 0; rep < 1000; rep++) {
    double t0 = now_s();
    memcpy(rep & 1 ? a : b, rep & 1 ? b : a, n);
    __asm__ volatile("" : : "r"(a), "r"(b) : "memory"); /* the copy is used */
    double dt = now_s() - t0;
    if (dt > 0 && n / dt > best) best = n / dt;
    if (rep >= 2 && now_s() - start > 0.2) break;
    pthread_mutex_lock(&d->mu);
    int stop = d->stop;
    pthread_mutex_unlock(&d->mu);
    if (stop) break;
  }
  free(a);
  free(b);
  pthread_mutex_lock(&d->mu);
  d->copy_bw = best;
  d->probe_state = best > 0 ? 1 : -1;
  if (best <= 0) ei__fmt(d->why_probe, sizeof d->why_probe, "stopped before it finished");
  pthread_mutex_unlock(&d->mu);
}

static void *sampler(void *arg) {
  ei__device *d = arg;
  if (d->opt.probe && !d->opt.probe_sync) run_probe(d);
  pthread_mutex_lock(&d->mu);
  while (!d->stop) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double until = (double)ts.tv_sec + ts.tv_nsec / 1e9 + d->opt.interval_s;
    ts.tv_sec = (time_t)until;
    ts.tv_nsec = (long)((until - (double)ts.tv_sec) * 1e9);
    while (!d->stop && pthread_cond_timedwait(&d->cv, &d->mu, &ts) != ETIMEDOUT) {
    }
    if (d->stop) break;
    pthread_mutex_unlock(&d->mu);
    take_sample(d);
    pthread_mutex_lock(&d->mu);
  }
  pthread_mutex_unlock(&d->mu);
  return NULL;
}

static void append(char *buf, size_t cap, const char *feature, const char *why) {
  size_t n = strlen(buf);
  if (n + 1 >= cap) return;
  ei__fmt(buf + n, cap - n, "%s%s (%s)", n ? "; " : "", feature, why);
}

ei_status ei__device_start(const ei__device_options *o, ei__device **out, char *err, size_t errlen) {
  *out = NULL;
  ei__device *d = calloc(1, sizeof *d);
  pthread_condattr_t ca;
  int ca_made = 0;
  ei_status st = EI_OK;
  if (!d) {
    ei__fmt(err, errlen, "out of memory");
    return EI_E_NOMEM;
  }
  if (o) d->opt = *o;
  else ei__device_options_init(&d->opt);
  if (!(d->opt.interval_s > 0)) d->opt.interval_s = 5;
  if (!d->opt.probe_bytes) d->opt.probe_bytes = (size_t)32 << 20;
  const char *root = d->opt.sysfs_root && d->opt.sysfs_root[0] ? d->opt.sysfs_root : "/sys";
  if (strlen(root) >= sizeof d->root - 256) {
    ei__fmt(err, errlen, "--sysfs-root: path too long");
    st = EI_E_INVALID_ARGUMENT;
    goto err;
  }
  ei__fmt(d->root, sizeof d->root, "%s", root);
  size_t rl = strlen(d->root);
  while (rl > 1 && d->root[rl - 1] == '/') d->root[--rl] = 0;
  d->opt.sysfs_root = d->root;
  pthread_mutex_init(&d->mu, NULL);
  if (pthread_condattr_init(&ca) || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) ||
      pthread_cond_init(&d->cv, &ca)) {
    ei__fmt(err, errlen, "cannot make the sampler's condition variable");
    pthread_mutex_destroy(&d->mu);
    st = EI_E_INTERNAL;
    goto err;
  }
  ca_made = 1;
  /* counters */
  if (d->opt.perf) {
    ei__perf_probe(&d->perf);
    if (!d->perf.hw) ei__fmt(d->why_perf, sizeof d->why_perf, "%s", d->perf.hw_why);
    if (d->perf.sw || d->perf.hw) {
      if (!(d->P = ei__perf_new(d->perf.hw))) {
        ei__fmt(err, errlen, "out of memory");
        st = EI_E_NOMEM;
        goto err_sync;
      }
    }
  } else {
    d->perf.paranoid = -99;
    ei__fmt(d->why_perf, sizeof d->why_perf, "--perf-counters off");
  }
  dram_open(d);
  take_sample(d);
  if (d->opt.probe && d->opt.probe_sync) run_probe(d);
  if (!d->opt.probe) ei__fmt(d->why_probe, sizeof d->why_probe, "--no-probe");
  /* the start-up line */
  if (d->snap.ntemps == 0) append(d->missing, sizeof d->missing, "thermal", d->snap.why_thermal);
  if (d->snap.ncpus == 0) append(d->missing, sizeof d->missing, "cpufreq", d->snap.why_cpufreq);
  if (!d->snap.throttle) append(d->missing, sizeof d->missing, "throttle", d->snap.why_throttle);
  if (d->why_perf[0]) append(d->missing, sizeof d->missing, "perf_hw", d->why_perf);
  if (d->opt.perf && !d->perf.sw) append(d->missing, sizeof d->missing, "perf_sw", d->perf.sw_why);
  if (!d->nimc) append(d->missing, sizeof d->missing, "dram_bw", d->why_dram);
  if (d->opt.log) {
    if (d->missing[0]) ei__log_msg("device profile (%s): missing %s", d->root, d->missing);
    else ei__log_msg("device profile (%s): every source present", d->root);
  }
  int rc = pthread_create(&d->thread, NULL, sampler, d);
  if (rc) {
    ei__fmt(err, errlen, "cannot start the device sampler: %s", strerror(rc));
    st = EI_E_INTERNAL;
    goto err_sync;
  }
  d->started = 1;
  pthread_condattr_destroy(&ca);
  *out = d;
  return EI_OK;
err_sync:
  pthread_cond_destroy(&d->cv);
  pthread_mutex_destroy(&d->mu);
err:
  if (ca_made) pthread_condattr_destroy(&ca);
  for (int i = 0; i < d->nimc; i++) close(d->imcs[i].fd_read), close(d->imcs[i].fd_write);
  ei__perf_free(d->P);
  free(d);
  return st;
}

void ei__device_stop(ei__device *d) {
  if (!d) return;
  if (d->started) {
    pthread_mutex_lock(&d->mu);
    d->stop = 1;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->thread, NULL);
  }
  for (int i = 0; i < d->nimc; i++) close(d->imcs[i].fd_read), close(d->imcs[i].fd_write);
  ei__perf_free(d->P);
  pthread_cond_destroy(&d->cv);
  pthread_mutex_destroy(&d->mu);
  free(d);
}

ei__perf *ei__device_perf(ei__device *d) { return d ? d->P : NULL; }

const char *ei__device_missing(ei__device *d) { return d ? d->missing : ""; }

/* ---- exposition ---- */

void ei__device_write(ei__device *d, ei__prom *p) {
  if (!d) return;
  /* heap: the snapshot is large for a libuv worker's stack */
  snapshot *s = malloc(sizeof *s);
  if (!s) return;
  pthread_mutex_lock(&d->mu);
  *s = d->snap;
  double bw = d->probe_state == 1 ? d->copy_bw : 0;
  pthread_mutex_unlock(&d->mu);
  char cpu[16];
  if (s->ntemps) {
    ei__prom_family(p, "ei_device_temperature_celsius", "gauge",
                    "Temperature of a sensor (thermal zone or hwmon; a sensor seen through both is reported once).");
    for (int i = 0; i < s->ntemps; i++) {
      ei__prom_label l[2] = {{"zone", s->temps[i].zone}, {"source", s->temps[i].hwmon ? "hwmon" : "thermal"}};
      ei__prom_sample(p, "ei_device_temperature_celsius", l, 2, s->temps[i].celsius);
    }
  }
  int any_cur = 0, any_max = 0;
  for (int i = 0; i < s->ncpus; i++) any_cur |= s->cpus[i].has_cur, any_max |= s->cpus[i].has_max;
  if (any_cur) {
    ei__prom_family(p, "ei_device_cpu_frequency_hertz", "gauge", "Current CPU frequency (cpufreq scaling_cur_freq).");
    for (int i = 0; i < s->ncpus; i++) {
      if (!s->cpus[i].has_cur) continue;
      ei__fmt(cpu, sizeof cpu, "%d", s->cpus[i].cpu);
      ei__prom_label l = {"cpu", cpu};
      ei__prom_sample(p, "ei_device_cpu_frequency_hertz", &l, 1, s->cpus[i].cur_hz);
    }
  }
  if (any_max) {
    ei__prom_family(p, "ei_device_cpu_max_frequency_hertz", "gauge",
                    "Highest CPU frequency (cpufreq cpuinfo_max_freq).");
    for (int i = 0; i < s->ncpus; i++) {
      if (!s->cpus[i].has_max) continue;
      ei__fmt(cpu, sizeof cpu, "%d", s->cpus[i].cpu);
      ei__prom_label l = {"cpu", cpu};
      ei__prom_sample(p, "ei_device_cpu_max_frequency_hertz", &l, 1, s->cpus[i].max_hz);
    }
  }
  if (s->throttle) {
    ei__prom_family(p, "ei_device_throttled", "gauge",
                    "1 while the condition holds (Raspberry Pi firmware get_throttled bits 0-3, or the rpi_volt "
                    "under-voltage alarm).");
    for (int b = 0; b < (s->throttle == 1 ? 4 : 1); b++) {
      ei__prom_label l = {"flag", throttle_flags[b]};
      ei__prom_sample(p, "ei_device_throttled", &l, 1, (s->throttled >> b) & 1);
    }
    if (s->throttle == 1) {
      ei__prom_family(p, "ei_device_throttled_since_boot", "gauge",
                      "1 when the condition has occurred since boot (get_throttled bits 16-19).");
      for (int b = 0; b < 4; b++) {
        ei__prom_label l = {"flag", throttle_flags[b]};
        ei__prom_sample(p, "ei_device_throttled_since_boot", &l, 1, (s->throttled >> (16 + b)) & 1);
      }
    }
  }
  ei__prom_family(p, "ei_device_feature_supported", "gauge",
                  "1 when the device source is present and read (the start-up log names the reason of a 0).");
  const struct { const char *name; int on; } feats[] = {
      {"thermal", s->ntemps > 0}, {"cpufreq", s->ncpus > 0}, {"throttle", s->throttle != 0},
      {"perf_hw", d->P && d->perf.hw}, {"dram_bw", s->dram}};
  for (size_t i = 0; i < sizeof feats / sizeof feats[0]; i++) {
    ei__prom_label l = {"feature", feats[i].name};
    ei__prom_sample(p, "ei_device_feature_supported", &l, 1, feats[i].on);
  }
  if (bw > 0) {
    ei__prom_family(p, "ei_device_copy_bandwidth_bytes_per_second", "gauge",
                    "memcpy rate measured at start-up (bytes copied per second; each byte is read and written).");
    ei__prom_sample(p, "ei_device_copy_bandwidth_bytes_per_second", NULL, 0, bw);
  }
  if (s->dram) {
    ei__prom_family(p, "ei_device_dram_read_bytes_total", "counter",
                    "Bytes read from DRAM since start (memory-controller PMU).");
    ei__prom_sample(p, "ei_device_dram_read_bytes_total", NULL, 0, s->dram_read_bytes);
    ei__prom_family(p, "ei_device_dram_write_bytes_total", "counter",
                    "Bytes written to DRAM since start (memory-controller PMU).");
    ei__prom_sample(p, "ei_device_dram_write_bytes_total", NULL, 0, s->dram_write_bytes);
  }
  free(s);
  if (d->opt.srv) ei__device_write_models(d->opt.srv, p);
}

typedef struct model_row {
  char model[128], version[32];
  ei__perf_counts c;
  int64_t planned;
  int planned_batch;
} model_row;

void ei__device_write_models(ei__server *s, ei__prom *p) {
  if (!s) return;
  int n = 0, cap = 0;
  model_row *rows = NULL;
  for (int i = 0; i < s->nmodels; i++) {
    ei__model *m = s->models[i];
    pthread_mutex_lock(&m->vmu);
    for (int k = 0; k < m->nversions; k++) {
      ei__version *v = m->versions[k];
      if (n == cap) {
        int nc = cap ? cap * 2 : 16;
        model_row *nr = realloc(rows, sizeof *nr * (size_t)nc);
        if (!nr) break;
        rows = nr, cap = nc;
      }
      model_row *r = &rows[n++];
      ei__fmt(r->model, sizeof r->model, "%s", m->name);
      ei__fmt(r->version, sizeof r->version, "%s", v->name);
      pthread_mutex_lock(&v->st_mu);
      r->c = v->perf;
      pthread_mutex_unlock(&v->st_mu);
      r->planned = v->planned_bytes;
      r->planned_batch = v->planned_batch;
    }
    pthread_mutex_unlock(&m->vmu);
  }
  static const struct {
    const char *name, *help;
    int hw;
  } fam[] = {
      {"ei_model_cpu_cycles_total", "CPU cycles of the model's executions (executor thread and pool workers).", 1},
      {"ei_model_cpu_instructions_total", "Instructions retired in the model's executions.", 1},
      {"ei_model_cache_references_total", "Cache references in the model's executions (perf cache-references).",
       1},
      {"ei_model_cache_misses_total", "Cache misses in the model's executions (perf cache-misses).", 1},
      {"ei_model_task_clock_seconds_total", "CPU time of the model's executions (perf task-clock).", 0},
      {"ei_model_context_switches_total", "Context switches in the model's executions.", 0},
  };
  for (size_t f = 0; f < sizeof fam / sizeof fam[0]; f++) {
    int any = 0;
    for (int i = 0; i < n; i++) any |= fam[f].hw ? rows[i].c.hw : rows[i].c.sw;
    if (!any) continue;
    ei__prom_family(p, fam[f].name, "counter", fam[f].help);
    for (int i = 0; i < n; i++) {
      const ei__perf_counts *c = &rows[i].c;
      if (!(fam[f].hw ? c->hw : c->sw)) continue;
      double v = f == 0 ? (double)c->cycles : f == 1 ? (double)c->instructions : f == 2 ? (double)c->cache_references
               : f == 3 ? (double)c->cache_misses : f == 4 ? c->task_clock_ns / 1e9 : (double)c->context_switches;
      ei__prom_label l[2] = {{"model", rows[i].model}, {"version", rows[i].version}};
      ei__prom_sample(p, fam[f].name, l, 2, v);
    }
  }
  int any = 0;
  for (int i = 0; i < n; i++) any |= rows[i].planned > 0;
  if (any) {
    ei__prom_family(p, "ei_model_planned_bytes_per_inference", "gauge",
                    "Estimate from the memory plan: bytes read (inputs, weights) and written (outputs) by the nodes "
                    "of one run at the smallest planned batch, divided by that batch.");
    for (int i = 0; i < n; i++) {
      if (rows[i].planned <= 0) continue;
      ei__prom_label l[2] = {{"model", rows[i].model}, {"version", rows[i].version}};
      ei__prom_sample(p, "ei_model_planned_bytes_per_inference", l, 2,
                      (double)rows[i].planned / (rows[i].planned_batch > 0 ? rows[i].planned_batch : 1));
    }
  }
  free(rows);
}

void ei__device_print(ei__device *d, FILE *f) {
  if (!d) return;
  snapshot *s = malloc(sizeof *s);
  if (!s) return;
  pthread_mutex_lock(&d->mu);
  *s = d->snap;
  double bw = d->probe_state == 1 ? d->copy_bw : 0;
  char why_probe[sizeof d->why_probe];
  memcpy(why_probe, d->why_probe, sizeof why_probe);
  pthread_mutex_unlock(&d->mu);
  fprintf(f, "device (%s):\n", d->root);
  if (s->ntemps) {
    fprintf(f, "  temperature:");
    for (int i = 0; i < s->ntemps; i++)
      fprintf(f, " %s%s %.1f C", s->temps[i].zone, s->temps[i].hwmon ? " (hwmon)" : "", s->temps[i].celsius);
    fputc('\n', f);
  } else {
    fprintf(f, "  temperature: not available: %s\n", s->why_thermal);
  }
  if (s->ncpus) {
    fprintf(f, "  frequency:");
    for (int i = 0; i < s->ncpus; i++) {
      fprintf(f, " cpu%d", s->cpus[i].cpu);
      if (s->cpus[i].has_cur) fprintf(f, " %.0f MHz", s->cpus[i].cur_hz / 1e6);
      if (s->cpus[i].has_max) fprintf(f, " (max %.0f MHz)", s->cpus[i].max_hz / 1e6);
      if (i + 1 < s->ncpus) fputc(',', f);
    }
    fputc('\n', f);
  } else {
    fprintf(f, "  frequency: not available: %s\n", s->why_cpufreq);
  }
  if (s->throttle == 1) {
    fprintf(f, "  throttling: 0x%x (now:", s->throttled);
    int any = 0;
    for (int b = 0; b < 4; b++)
      if ((s->throttled >> b) & 1) fprintf(f, " %s", throttle_flags[b]), any = 1;
    fprintf(f, "%s; since boot:", any ? "" : " none");
    any = 0;
    for (int b = 0; b < 4; b++)
      if ((s->throttled >> (16 + b)) & 1) fprintf(f, " %s", throttle_flags[b]), any = 1;
    fprintf(f, "%s)\n", any ? "" : " none");
  } else if (s->throttle == 2) {
    fprintf(f, "  throttling: under-voltage alarm %s (rpi_volt)\n", s->throttled ? "on" : "off");
  } else {
    fprintf(f, "  throttling: not available: %s\n", s->why_throttle);
  }
  fprintf(f, "  features: thermal %d, cpufreq %d, throttle %d, perf_hw %d, dram_bw %d\n", s->ntemps > 0,
          s->ncpus > 0, s->throttle != 0, d->P && d->perf.hw, s->dram);
  if (bw > 0) fprintf(f, "  copy bandwidth: %.2f GB/s (memcpy, bytes copied per second)\n", bw / 1e9);
  else fprintf(f, "  copy bandwidth: not available: %s\n", why_probe[0] ? why_probe : "probe not finished");
  if (s->dram)
    fprintf(f, "  DRAM traffic since start: read %.1f MB, written %.1f MB\n", s->dram_read_bytes / 1e6,
            s->dram_write_bytes / 1e6);
  else fprintf(f, "  DRAM traffic: not available: %s\n", d->why_dram);
  free(s);
}
