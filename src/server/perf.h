/* src/server/perf.h: hardware and software event counters of the inference threads (perf_event_open), for the
 * per-model counters of GET /metrics. Implemented in perf.c.
 *
 * Per thread, two counter groups (so that the software one works where there is no PMU, e.g. in a VM):
 *   hardware  cycles (leader), instructions, cache-references, cache-misses
 *   software  task-clock (leader), context-switches
 * Each group is read with one read(2) of its leader (PERF_FORMAT_GROUP, with the enabled/running times, so that a
 * multiplexed group is scaled). Events count user and kernel space; where perf_event_paranoid forbids kernel
 * counting (>= 2 without CAP_PERFMON) they fall back to user space only, and context switches (a kernel-side
 * event) then read 0.
 *
 * Per execution (batcher.c, around ei_session_run): the executor thread reads its own groups before and after
 * (exact), and the engine pool's workers are read at both points too. A pool may be shared by several executors
 * (several models, or instance_group count > 1, on the server-wide pool): the workers' counts between two reads
 * of a pool are split evenly among the executions running on that pool at that time, so every worker count is
 * attributed once (to no execution while none runs: idle polling is not charged) and, when executions on a pool
 * do not overlap, each gets exactly the workers' counts of its own run. */
#ifndef EI_SERVER_PERF_H
#define EI_SERVER_PERF_H

#include <stdint.h>

#include "edgeinfer.h"

/* Counts of one model version, summed over its executions (the executor thread and the engine pool's workers).
 * hw: the hardware events (cycles .. cache_misses) were counted; sw: the software ones. Kept in ei__version
 * under st_mu. */
typedef struct ei__perf_counts {
  uint64_t cycles, instructions, cache_references, cache_misses;
  uint64_t task_clock_ns, context_switches;
  int hw, sw;
} ei__perf_counts;

/* ---- one thread's groups ---- */
enum { EI__PERF_NHW = 4, EI__PERF_NSW = 2 };
typedef struct ei__perf_thread {
  int tid;
  int hw_fd[EI__PERF_NHW]; /* [0] leads; -1 when not open */
  int sw_fd[EI__PERF_NSW];
  int user_only;           /* opened with exclude_kernel (perf_event_paranoid) */
} ei__perf_thread;

/* A reading of one thread's groups: raw values and the groups' enabled/running times. */
typedef struct ei__perf_raw {
  uint64_t hw[EI__PERF_NHW], hw_enabled, hw_running;
  uint64_t sw[EI__PERF_NSW], sw_enabled, sw_running;
  int hw_ok, sw_ok;
} ei__perf_raw;

/* Opens the groups of thread tid (0: the calling thread); want_hw 0: the software group only. Returns 0 when at
 * least the software group is open; else -1 with why set. When the hardware group fails, hw_why (may be NULL)
 * says why (errno text) and the thread keeps the software group. */
int ei__perf_thread_open(ei__perf_thread *t, int tid, int want_hw, char *why, size_t whylen, char *hw_why,
                         size_t hw_whylen);
/* One group read per open group. Returns 0, or -1 when nothing could be read. */
int ei__perf_thread_read(const ei__perf_thread *t, ei__perf_raw *out);
void ei__perf_thread_close(ei__perf_thread *t);
/* d = b - a, scaled by the groups' running share (multiplexing); d->hw / d->sw as both readings have them. */
void ei__perf_delta(const ei__perf_raw *a, const ei__perf_raw *b, ei__perf_counts *d);
/* acc += d (flags or'ed). */
void ei__perf_counts_add(ei__perf_counts *acc, const ei__perf_counts *d);

/* What this machine allows, found by opening the groups on the calling thread (closed again). hw / sw: 1 when
 * the group opened; the reasons name the errno text and /proc/sys/kernel/perf_event_paranoid (-99 unreadable). */
typedef struct ei__perf_support {
  int hw, sw, user_only, paranoid;
  char hw_why[192], sw_why[192];
} ei__perf_support;
void ei__perf_probe(ei__perf_support *s);

/* ---- the per-execution path (batcher.c) ---- */
typedef struct ei__perf ei__perf; /* the pools' worker groups; owned by the device profile (device.c) */
ei__perf *ei__perf_new(int want_hw);
void ei__perf_free(ei__perf *P); /* after every executor that used it has stopped */

typedef struct ei__perf_exec {
  struct ei__perf_exec *next;   /* the pool entry's running executions */
  struct ei__perf_pool *pool;   /* NULL: no pool (or its groups could not be opened) */
  ei__perf_raw self0;
  ei__perf_counts workers;      /* this execution's share of the workers' counts so far */
  int self_ok;
} ei__perf_exec;
/* Around one engine run on the calling (executor) thread, whose groups are opened at its first use and closed
 * when the thread exits. pool: the engine pool of the session (NULL: single-threaded). P NULL: nothing. */
void ei__perf_exec_begin(ei__perf *P, ei__perf_exec *x, ei_threadpool *pool);
/* The counts of the run into *d; returns 1 when anything was counted (d->hw / d->sw say what). */
int ei__perf_exec_end(ei__perf *P, ei__perf_exec *x, ei__perf_counts *d);

#endif
