/* tests/test_metrics_prom.c: the Prometheus page builder of GET /metrics (src/server/metrics.h): HELP/TYPE lines,
 * label-value and HELP escaping, value spelling (+Inf, -Inf, NaN, integers, shortest round-trip decimals),
 * histogram cumulation (+Inf == _count), ei__metrics_observe's bucket choice (le: upper bound inclusive), and a
 * large page (growth). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static int failures;

static void expect(int cond, const char *what) {
  printf("%s %s\n", cond ? "ok  " : "FAIL", what);
  if (!cond) failures++;
}

static void expect_text(ei__prom *p, const char *want, const char *what) {
  size_t len = 0;
  const char *t = ei__prom_text(p, &len);
  int ok = t && len == strlen(want) && !strcmp(t, want);
  expect(ok, what);
  if (!ok) printf("---- got:\n%s---- want:\n%s----\n", t ? t : "(null)", want);
}

int main(void) {
  ei__prom *p = ei__prom_new();
  expect(p != NULL, "ei__prom_new");
  if (!p) return 1;
  expect_text(p, "", "a new page is empty");

  ei__prom_family(p, "ei_x_total", "counter", "a \\ back\nslash");
  ei__prom_label l[2] = {{"model", "a\"b\\c\nd"}, {"version", "1"}};
  ei__prom_sample(p, "ei_x_total", l, 2, 42);
  ei__prom_sample(p, "ei_x_total", NULL, 0, 0.1);
  ei__prom_sample(p, "ei_x_total", NULL, 0, INFINITY);
  ei__prom_sample(p, "ei_x_total", NULL, 0, -INFINITY);
  ei__prom_sample(p, "ei_x_total", NULL, 0, NAN);
  ei__prom_sample(p, "ei_x_total", NULL, 0, 1e21);
  ei__prom_sample(p, "ei_x_total", NULL, 0, 18446744073709551615.0);
  ei__prom_sample(p, "ei_x_total", NULL, 0, 1.0 / 3);
  expect_text(p,
              "# HELP ei_x_total a \\\\ back\\nslash\n"
              "# TYPE ei_x_total counter\n"
              "ei_x_total{model=\"a\\\"b\\\\c\\nd\",version=\"1\"} 42\n"
              "ei_x_total 0.1\n"
              "ei_x_total +Inf\n"
              "ei_x_total -Inf\n"
              "ei_x_total NaN\n"
              "ei_x_total 1e+21\n"
              "ei_x_total 1.8446744073709552e+19\n"
              "ei_x_total 0.3333333333333333\n",
              "HELP escaping, label escaping (\\\\ \\\" \\n), +Inf/-Inf/NaN, integers, round-trip decimals");
  ei__prom_free(p);

  /* histogram: per-bucket counts in, cumulative lines out */
  p = ei__prom_new();
  const double bounds[3] = {0.001, 0.25, 10};
  const uint64_t counts[4] = {2, 0, 3, 1};
  ei__prom_family(p, "ei_h_seconds", "histogram", "h");
  ei__prom_label hl[1] = {{"model", "m"}};
  ei__prom_histogram(p, "ei_h_seconds", hl, 1, bounds, counts, 3, 12.5);
  ei__prom_histogram(p, "ei_h_seconds", NULL, 0, bounds, counts, 0, 0);
  expect_text(p,
              "# HELP ei_h_seconds h\n"
              "# TYPE ei_h_seconds histogram\n"
              "ei_h_seconds_bucket{model=\"m\",le=\"0.001\"} 2\n"
              "ei_h_seconds_bucket{model=\"m\",le=\"0.25\"} 2\n"
              "ei_h_seconds_bucket{model=\"m\",le=\"10\"} 5\n"
              "ei_h_seconds_bucket{model=\"m\",le=\"+Inf\"} 6\n"
              "ei_h_seconds_sum{model=\"m\"} 12.5\n"
              "ei_h_seconds_count{model=\"m\"} 6\n"
              "ei_h_seconds_bucket{le=\"+Inf\"} 2\n"
              "ei_h_seconds_sum 0\n"
              "ei_h_seconds_count 2\n",
              "histogram lines cumulative, +Inf == _count, no labels but le");
  ei__prom_free(p);

  /* observe: a value equal to a bound belongs to it (le), above every bound to the last bucket */
  ei__metrics_hist h;
  memset(&h, 0, sizeof h);
  ei__metrics_observe(&h, ei__metrics_dur_bounds, EI__METRICS_NDUR, 0.0001);
  ei__metrics_observe(&h, ei__metrics_dur_bounds, EI__METRICS_NDUR, 0.00010001);
  ei__metrics_observe(&h, ei__metrics_dur_bounds, EI__METRICS_NDUR, 0);
  ei__metrics_observe(&h, ei__metrics_dur_bounds, EI__METRICS_NDUR, 11);
  expect(h.counts[0] == 2 && h.counts[1] == 1 && h.counts[EI__METRICS_NDUR] == 1 && fabs(h.sum - 11.00020001) < 1e-12,
         "observe: le inclusive, 0 in the first bucket, 11 s above every bound");
  expect(ei__metrics_dur_bounds[0] == 0.0001 && ei__metrics_dur_bounds[EI__METRICS_NDUR - 1] == 10,
         "duration buckets from 100 us to 10 s");
  for (int i = 1; i < EI__METRICS_NDUR; i++)
    if (ei__metrics_dur_bounds[i] <= ei__metrics_dur_bounds[i - 1]) expect(0, "duration bounds ascending");
  for (int i = 1; i < EI__METRICS_NBATCH; i++)
    if (ei__metrics_batch_bounds[i] <= ei__metrics_batch_bounds[i - 1]) expect(0, "batch bounds ascending");
  for (int i = 1; i < EI__METRICS_NLOAD; i++)
    if (ei__metrics_load_bounds[i] <= ei__metrics_load_bounds[i - 1]) expect(0, "load bounds ascending");

  /* a page far larger than the first buffer */
  p = ei__prom_new();
  ei__prom_family(p, "ei_big", "gauge", "big");
  char v[32];
  for (int i = 0; i < 20000; i++) {
    snprintf(v, sizeof v, "%d", i);
    ei__prom_label bl[1] = {{"i", v}};
    ei__prom_sample(p, "ei_big", bl, 1, i);
  }
  size_t len = 0;
  const char *t = ei__prom_text(p, &len);
  expect(t && len > 300000 && strstr(t, "ei_big{i=\"19999\"} 19999\n") && strlen(t) == len,
         "20000 samples: the page grows, NUL-terminated, length right");
  ei__prom_free(p);
  ei__prom_free(NULL);

  if (failures) printf("\n%d check(s) failed\n", failures);
  else printf("\nall checks passed\n");
  return failures ? 1 : 0;
}
