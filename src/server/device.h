/* src/server/device.h: the device profile of GET /metrics and `edgeinfer bench` (device.c).
 *
 * A sampler thread reads sysfs every interval into a snapshot (under a mutex); ei__device_write only copies the
 * snapshot, so a scrape never reads sysfs and never runs on the I/O thread's time. What is read (ROOT is /sys,
 * or --sysfs-root):
 *   temperature  ROOT/class/thermal/thermal_zoneN/temp (zone = its `type`) and ROOT/class/hwmon/hwmonN/tempK_input
 *                (zone = `name`/`tempK_label`, or `name`/tempK), millidegrees -> celsius. A sensor seen through
 *                both is reported once, as source="thermal": an hwmon device is the same sensor as a thermal zone
 *                when its `name` is the zone's `type` with '-' turned into '_' (the name the kernel's thermal
 *                hwmon bridge gives it: zone cpu-thermal -> hwmon cpu_thermal on a Raspberry Pi 5) or when both
 *                `device` links resolve to the same device.
 *   frequency    ROOT/devices/system/cpu/cpuN/cpufreq/scaling_cur_freq and cpuinfo_max_freq, kHz -> hertz.
 *   throttling   the Raspberry Pi firmware's get_throttled attribute (`vcgencmd get_throttled` as a hex word:
 *                bits 0-3 now, 16-19 since boot: under-voltage, arm frequency capped, throttled, soft
 *                temperature limit), found as ROOT/devices/platform/<soc node>/<soc node>:firmware/get_throttled
 *                (soc/soc:firmware up to the Pi 4; the Pi 5's bcm2712 tree names the node after its address,
 *                soc@107c000000); else the rpi_volt hwmon's in0_lcrit_alarm (under-voltage now).
 *   counters     perf.c (per model) and, for DRAM traffic, a memory-controller PMU (uncore_imc*) under
 *                ROOT/bus/event_source/devices when there is one.
 * A missing source leaves its families out, ei_device_feature_supported{feature} 0, and is named (with the errno
 * text, or perf_event_paranoid) in one start-up line on stderr. */
#ifndef EI_SERVER_DEVICE_H
#define EI_SERVER_DEVICE_H

#include <stddef.h>
#include <stdio.h>

#include "edgeinfer.h"
#include "metrics.h"
#include "perf.h"

typedef struct ei__device ei__device;
struct ei__server;

typedef struct ei__device_options {
  double interval_s;       /* sampler period (default 5 s) */
  const char *sysfs_root;  /* NULL or "": /sys */
  int perf;                /* per-thread counters for the executors (default 1); 0: no perf fd is opened */
  int probe;               /* the memcpy bandwidth probe (default 1) */
  int probe_sync;          /* run the probe in ei__device_start instead of on the sampler thread (bench, tests) */
  size_t probe_bytes;      /* the probe's buffer (default 32 MiB, copied back and forth) */
  int log;                 /* the start-up line on stderr (default 1) */
  struct ei__server *srv;  /* its models for the per-model families (NULL: none) */
} ei__device_options;

void ei__device_options_init(ei__device_options *o);
/* Takes the first sample, probes the counters, logs, then starts the sampler thread. */
ei_status ei__device_start(const ei__device_options *o, ei__device **out, char *err, size_t errlen);
/* Joins the sampler; call after the executors have stopped (they use ei__device_perf). NULL: nothing. */
void ei__device_stop(ei__device *d);
/* The per-execution counters of batcher.c; NULL when --perf-counters off (or d NULL). */
ei__perf *ei__device_perf(ei__device *d);
/* The device families from the latest snapshot, then (with a server) the per-model ones: ei_model_cpu_cycles_total,
 * ei_model_cpu_instructions_total, ei_model_cache_references_total, ei_model_cache_misses_total,
 * ei_model_task_clock_seconds_total, ei_model_context_switches_total, ei_model_planned_bytes_per_inference. */
void ei__device_write(ei__device *d, ei__prom *p);
/* The per-model families alone (walks s->models under each model's vmu and each version's st_mu). */
void ei__device_write_models(struct ei__server *s, ei__prom *p);
/* The profile as text (edgeinfer bench): temperatures, frequencies, throttling, features, copy bandwidth. */
void ei__device_print(ei__device *d, FILE *f);
/* The reasons of the missing sources, "" when nothing is missing (the start-up line's text). */
const char *ei__device_missing(ei__device *d);

#endif
