/* edgeinfer serve: a KServe v2 inference server over a model repository (src/server/; README "Serving").
 *
 * One libuv loop: the HTTP port (REST over HTTP/1.1 and HTTP/2 with prior knowledge), the gRPC port, signals.
 * SIGTERM/SIGINT: graceful shutdown (readiness 503 at once, HTTP/2 GOAWAY, no new connections, requests in
 * flight finish), exit 0; after --exit-timeout-secs (or a second signal) the server exits 1 at once. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "cli.h"
#include "server/config.h"
#include "server/conn.h"
#include "server/grpc.h"
#include "server/rest.h"
#include "server/server.h"

static const char *serve_help =
    "usage: edgeinfer serve --repo DIR [options]\n"
    "Serves the models of DIR (DIR/<model>/config.json, DIR/<model>/<version>/model.onnx) over the KServe v2\n"
    "protocol: REST on HTTP/1.1 and HTTP/2 (prior knowledge) on the HTTP port, gRPC on the gRPC port.\n"
    "  --repo DIR                  the model repository (required)\n"
    "  --host ADDR                 listen address (default 0.0.0.0; an IPv6 address like ::1 works too)\n"
    "  --http-port N               REST port (default 8000; 0 picks a free port)\n"
    "  --grpc-port N               gRPC port (default 8001; 0 picks a free port)\n"
    "  --port-file FILE            write {\"http\": N, \"grpc\": N} to FILE once both ports listen\n"
    "  --threads N                 the server-wide engine thread pool (default: one per online CPU)\n"
    "  --cpus LIST                 pin the pool's threads, e.g. 0-3 or 0,2\n"
    "  --max-body-bytes SIZE       largest request body, also gRPC messages (default 64M); over it: 413\n"
    "  --max-json-bytes SIZE       largest JSON part of an infer request (default 8M); over it: 413\n"
    "  --max-json-memory SIZE      JSON parsing memory of all requests in flight together (default 32 x\n"
    "                              --max-json-bytes, at least 64M); a parse that would go over it: 503\n"
    "  --max-tensor-elements N     largest input tensor (default 67108864 elements)\n"
    "  --max-image-pixels N        largest photo for classify (default 67108864 pixels)\n"
    "  --max-queue N               requests waiting per model (default 64); beyond it: 503\n"
    "  --max-connections N         open connections (default 256); beyond it new ones are closed at once\n"
    "  --header-timeout-ms N       a request's line and headers must arrive within N ms (default 10000); 408\n"
    "  --idle-timeout-secs N       close a connection idle (or a body stalled) for N s (default 60)\n"
    "  --exit-timeout-secs N       on SIGTERM/SIGINT wait at most N s for requests in flight (default 30)\n"
    "  --test-delay-ms N           test hook: every model run first sleeps N ms\n"
    "  --model-control MODE        poll (default): watch the repository (inotify + rescans) and hot-reload new\n"
    "                              versions and config.json changes; none: load at start only; explicit: load\n"
    "                              --load-model models at start, then only on .../load and .../unload requests\n"
    "  --load-model NAME           explicit mode: load NAME at start (repeatable)\n"
    "  --poll-secs N               poll mode: rescan the repository every N s besides inotify (default 10)\n"
    "  --settle-ms N               poll mode: a version folder copied in place loads once none of its files\n"
    "                              changed for N ms (default 2000); one renamed into place loads at once\n"
    "  --loader-priority nice|idle the loader thread (load, plan, warm-up of new versions) runs at nice 10\n"
    "                              (default: loads progress while serving saturates the CPU) or also SCHED_IDLE\n"
    "                              (only on idle CPU time: serving latency untouched, loads slow under load)\n"
    "  --test-load-delay-ms N      test hook: the loader sleeps N ms before each load (state LOADING)\n"
    "  --device-interval SECS      device profile: read temperatures, CPU frequencies and throttling from sysfs\n"
    "                              every SECS s on a sampler thread (default 5; GET /metrics shows the latest)\n"
    "  --perf-counters on|off      per-model perf_event counters (cycles, instructions, cache references and\n"
    "                              misses, task-clock, context switches) of every execution (default on)\n"
    "  --no-probe                  no memcpy bandwidth probe at start (ei_device_copy_bandwidth_bytes_per_second)\n"
    "  --sysfs-root DIR            read the device profile from DIR instead of /sys (tests, containers)\n";

typedef struct serve {
  uv_loop_t loop;
  uv_signal_t sigterm, sigint;
  uv_timer_t exit_timer;
  ei__server *srv;
  ei__net *net;
  int shutting_down;
  int drained, net_done;
  int exit_code;
  int exit_timeout_secs;
} serve;

/* Seconds, decimals allowed: 0.05 .. 1 day. */
static int parse_secs(const char *s, double *out) {
  char *e;
  errno = 0;
  double v = strtod(s, &e);
  if (e == s || *e || errno || !(v >= 0.05 && v <= 86400)) return 0;
  *out = v;
  return 1;
}

/* Writes the port file atomically (a temporary file in the same folder, then rename). */
static int write_port_file(const char *path, int http, int grpc) {
  char tmp[4096];
  if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp) return -1;
  FILE *f = fopen(tmp, "w");
  if (!f) return -1;
  fprintf(f, "{\"http\": %d, \"grpc\": %d}\n", http, grpc);
  if (fclose(f) != 0 || rename(tmp, path) != 0) {
    unlink(tmp);
    return -1;
  }
  return 0;
}

static void close_handle(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void finish(serve *sv) {
  if (!sv->drained || !sv->net_done) return;
  uv_timer_stop(&sv->exit_timer);
  ei__log_msg("stopped");
  uv_stop(&sv->loop);
}

static void on_drained(ei__server *s, void *ud) {
  (void)s;
  serve *sv = ud;
  sv->drained = 1;
  finish(sv);
}

static void on_net_done(void *ud) {
  serve *sv = ud;
  sv->net_done = 1;
  finish(sv);
}

static void on_exit_timer(uv_timer_t *t) {
  serve *sv = t->data;
  ei__log_msg("requests still in flight after %d s (--exit-timeout-secs): exiting now", sv->exit_timeout_secs);
  fflush(stderr);
  _exit(1); /* the engine's runs cannot be interrupted: no orderly teardown is possible */
}

static void on_signal(uv_signal_t *h, int signum) {
  serve *sv = h->data;
  if (sv->shutting_down) {
    ei__log_msg("second signal (%s): exiting now", signum == SIGINT ? "SIGINT" : "SIGTERM");
    fflush(stderr);
    _exit(1);
  }
  sv->shutting_down = 1;
  ei__log_msg("%s: shutting down (readiness off, no new connections, finishing requests in flight)",
              signum == SIGINT ? "SIGINT" : "SIGTERM");
  uv_timer_start(&sv->exit_timer, on_exit_timer, (uint64_t)sv->exit_timeout_secs * 1000, 0);
  ei__server_drain(sv->srv, on_drained, sv);
  ei__net_shutdown(sv->net, on_net_done, sv);
}

int cmd_serve(int argc, char **argv) {
  const char *repo = NULL, *host = "0.0.0.0", *port_file = NULL, *cpus_s = NULL;
  long http_port = 8000, grpc_port = 8001, v;
  size_t json_memory = 0;
  int cpus[256], ncpus = 0;
  static serve sv; /* signal handles live in it until exit */
  ei__srv_options so;
  ei__net_limits lim;
  ei__srv_options_init(&so);
  so.model_control = EI_SRV_CONTROL_POLL; /* serve's default */
  so.device = 1;                          /* the device profile of GET /metrics */
  static const char *load_models[256];
  int nload = 0;
  ei__net_limits_init(&lim);
  memset(&sv, 0, sizeof sv);
  sv.exit_timeout_secs = 30;
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i];
    if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
      fputs(serve_help, stdout);
      return 0;
    }
    if (!strcmp(o, "--no-probe")) {
      so.no_probe = 1;
      continue;
    }
    if (i + 1 >= argc) return cli_die("serve: unknown option or missing value: %s\n%s", o, serve_help);
    const char *val = argv[++i];
    size_t sz;
    if (!strcmp(o, "--repo"))
      repo = val;
    else if (!strcmp(o, "--host"))
      host = val;
    else if (!strcmp(o, "--port-file"))
      port_file = val;
    else if (!strcmp(o, "--cpus"))
      cpus_s = val;
    else if (!strcmp(o, "--http-port") && cli_parse_long(val, 0, 65535, &v))
      http_port = v;
    else if (!strcmp(o, "--grpc-port") && cli_parse_long(val, 0, 65535, &v))
      grpc_port = v;
    else if (!strcmp(o, "--threads") && cli_parse_long(val, 0, 1024, &v))
      so.threads = (int)v;
    else if (!strcmp(o, "--max-body-bytes") && cli_parse_size(val, &sz) && sz > 0)
      so.max_body_bytes = sz;
    else if (!strcmp(o, "--max-json-bytes") && cli_parse_size(val, &sz) && sz > 0)
      so.max_json_bytes = sz;
    else if (!strcmp(o, "--max-json-memory") && cli_parse_size(val, &sz) && sz > 0)
      json_memory = sz;
    else if (!strcmp(o, "--max-tensor-elements") && cli_parse_long(val, 1, 0x7fffffffffffffffL, &v))
      so.max_tensor_elements = v;
    else if (!strcmp(o, "--max-image-pixels") && cli_parse_long(val, 1, 0x7fffffffffffffffL, &v))
      so.max_image_pixels = (size_t)v;
    else if (!strcmp(o, "--max-queue") && cli_parse_long(val, 1, 1 << 20, &v))
      so.max_queue = (int)v;
    else if (!strcmp(o, "--max-connections") && cli_parse_long(val, 1, 1 << 20, &v))
      lim.max_connections = (int)v;
    else if (!strcmp(o, "--header-timeout-ms") && cli_parse_long(val, 1, 3600 * 1000, &v))
      lim.header_timeout_ms = (int)v;
    else if (!strcmp(o, "--idle-timeout-secs") && cli_parse_long(val, 1, 24 * 3600, &v))
      lim.idle_timeout_secs = (int)v;
    else if (!strcmp(o, "--exit-timeout-secs") && cli_parse_long(val, 0, 24 * 3600, &v))
      sv.exit_timeout_secs = (int)v;
    else if (!strcmp(o, "--test-delay-ms") && cli_parse_long(val, 0, 3600 * 1000, &v))
      so.test_delay_ms = (int)v;
    else if (!strcmp(o, "--model-control") && !strcmp(val, "none"))
      so.model_control = EI_SRV_CONTROL_NONE;
    else if (!strcmp(o, "--model-control") && !strcmp(val, "poll"))
      so.model_control = EI_SRV_CONTROL_POLL;
    else if (!strcmp(o, "--model-control") && !strcmp(val, "explicit"))
      so.model_control = EI_SRV_CONTROL_EXPLICIT;
    else if (!strcmp(o, "--load-model") && nload < (int)(sizeof load_models / sizeof load_models[0]))
      load_models[nload++] = val;
    else if (!strcmp(o, "--poll-secs") && cli_parse_long(val, 1, 24 * 3600, &v))
      so.poll_secs = (int)v;
    else if (!strcmp(o, "--settle-ms") && cli_parse_long(val, 0, 3600 * 1000, &v))
      so.settle_ms = (int)v;
    else if (!strcmp(o, "--loader-priority") && (!strcmp(val, "nice") || !strcmp(val, "idle")))
      so.loader_idle = !strcmp(val, "idle");
    else if (!strcmp(o, "--test-load-delay-ms") && cli_parse_long(val, 0, 3600 * 1000, &v))
      so.test_load_delay_ms = (int)v;
    else if (!strcmp(o, "--device-interval") && parse_secs(val, &so.device_interval_s))
      ;
    else if (!strcmp(o, "--perf-counters") && (!strcmp(val, "on") || !strcmp(val, "off")))
      so.no_perf_counters = !strcmp(val, "off");
    else if (!strcmp(o, "--sysfs-root") && *val)
      so.sysfs_root = val;
    else
      return cli_die("serve: bad option or value: %s %s\n%s", o, val, serve_help);
  }
  if (!repo) return cli_die("serve: --repo DIR is required\n%s", serve_help);
  if (cpus_s) {
    if ((ncpus = ei__config_parse_cpus(cpus_s, cpus, 256)) <= 0) return cli_die("serve: bad --cpus list '%s' (e.g. 0-3 or 0,2)", cpus_s);
    so.cpus = cpus;
    so.ncpus = ncpus;
  }
  so.repo_dir = repo;
  if (nload && so.model_control != EI_SRV_CONTROL_EXPLICIT)
    return cli_die("serve: --load-model needs --model-control explicit");
  so.load_models = load_models;
  so.nload_models = nload;
  lim.max_body_bytes = so.max_body_bytes;
  signal(SIGPIPE, SIG_IGN);

  char err[512] = "";
  int bound_http = 0, bound_grpc = 0, rc = 1;
  static ei__rest rest;
  if (uv_loop_init(&sv.loop) != 0) return cli_die("serve: cannot create the event loop");
  uv_timer_init(&sv.loop, &sv.exit_timer);
  sv.exit_timer.data = &sv;
  /* jansson's memory for every parse in flight: default 32 x --max-json-bytes (at least 64 MiB) */
  if (!json_memory) json_memory = so.max_json_bytes > ((size_t)2 << 20) ? so.max_json_bytes * 32 : (size_t)64 << 20;
  ei__rest_json_budget(json_memory);
  ei_status st = ei__server_create(&sv.loop, &so, &sv.srv, err, sizeof err);
  if (st != EI_OK) {
    fprintf(stderr, "edgeinfer serve: %s\n", err[0] ? err : ei_strerror(st));
    goto out;
  }
  if (!(sv.net = ei__net_new(&sv.loop, &lim))) {
    fprintf(stderr, "edgeinfer serve: out of memory\n");
    goto out;
  }
  rest.srv = sv.srv;
  rest.max_json_bytes = so.max_json_bytes;
  if (ei__net_listen(sv.net, host, (int)http_port, 0, ei__rest_handle, &rest, &bound_http, err, sizeof err) < 0 ||
      ei__net_listen(sv.net, host, (int)grpc_port, 1, ei__grpc_handle, sv.srv, &bound_grpc, err, sizeof err) < 0) {
    fprintf(stderr, "edgeinfer serve: %s\n", err);
    goto out;
  }
  if (port_file && write_port_file(port_file, bound_http, bound_grpc) < 0) {
    fprintf(stderr, "edgeinfer serve: cannot write the port file %s: %s\n", port_file, strerror(errno));
    goto out;
  }
  uv_signal_init(&sv.loop, &sv.sigterm);
  uv_signal_init(&sv.loop, &sv.sigint);
  sv.sigterm.data = sv.sigint.data = &sv;
  uv_signal_start(&sv.sigterm, on_signal, SIGTERM);
  uv_signal_start(&sv.sigint, on_signal, SIGINT);
  {
    ei__srv_index_entry one;
    int n = ei__srv_index(sv.srv, 0, &one, 1);
    ei__log_msg("serving %s (%d model version%s) on %s: HTTP port %d (REST, HTTP/1.1 and HTTP/2), gRPC port %d",
                repo, n, n == 1 ? "" : "s", host, bound_http, bound_grpc);
  }
  uv_run(&sv.loop, UV_RUN_DEFAULT);
  rc = sv.exit_code;
out:
  if (sv.net && !sv.net_done) { /* a start-up failure: close the listeners */
    ei__net_close(sv.net, NULL, NULL);
  }
  if (sv.srv) ei__server_destroy(sv.srv);
  uv_walk(&sv.loop, close_handle, NULL);
  uv_run(&sv.loop, UV_RUN_DEFAULT);
  if (sv.net) ei__net_free(sv.net);
  uv_loop_close(&sv.loop);
  return rc;
}
