"""tests/server/test_metrics_prometheus.py: Debian's prometheus scrapes `edgeinfer serve` and evaluates every PromQL
expression of deploy/ (the recording rules and the Grafana dashboard's targets) through /api/v1/query: each one
returns data.

Prometheus runs on loopback (a free port, a temporary storage directory, scrape and rule evaluation every second,
the rules file loaded); `promtool check rules` and `promtool check config` pass first. Traffic (infer requests,
one invalid request) runs in the background while the expressions are evaluated. Grafana's variables are given
their "All" values ($model -> .*, $__rate_interval -> 1m). An expression is allowed to return nothing only when
every sample it reads is of a family that the server leaves out on purpose on this machine (the per-model
perf_event counters without a PMU or with --perf-counters off, the device readings of a VM), and only when that
family is indeed absent from the server's page: it is then reported as skipped, with the reason.

usage: test_metrics_prometheus.py EDGEINFER SOURCE_DIR
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serverlib import Server, check, done, make_repo  # noqa: E402

import numpy as np  # noqa: E402

EXE, SRC = sys.argv[1], sys.argv[2]
RULES = os.path.join(SRC, "deploy", "prometheus", "edgeinfer-rules.yml")
DASH = os.path.join(SRC, "deploy", "grafana", "edgeinfer-dashboard.json")

# families the server may leave out on this machine, and why
CONDITIONAL = {
    "ei_model_cpu_cycles_total": "hardware counters need a PMU (perf_hw)",
    "ei_model_cpu_instructions_total": "hardware counters need a PMU (perf_hw)",
    "ei_model_cache_references_total": "hardware counters need a PMU (perf_hw)",
    "ei_model_cache_misses_total": "hardware counters need a PMU (perf_hw)",
    "ei_model_task_clock_seconds_total": "per-model counters are off or perf_event_open is refused",
    "ei_model_context_switches_total": "per-model counters are off or perf_event_open is refused",
    "ei_device_temperature_celsius": "no thermal zone / hwmon sensor (VM)",
    "ei_device_copy_bandwidth_bytes_per_second": "the copy-bandwidth probe is off or not built in",
    "ei_device_feature_supported": "the device profile is not built in",
    "ei_model_planned_bytes_per_inference": "the device profile is not built in",
}


PERF_HW = ("ei_model_cpu_cycles_total", "ei_model_cpu_instructions_total", "ei_model_cache_references_total",
           "ei_model_cache_misses_total")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def rule_exprs(path):
    """The expr of every rule (a small reader of the rules file's layout: `expr: ...` or `expr: |` blocks)."""
    out = []
    lines = open(path).read().split("\n")
    i = 0
    while i < len(lines):
        m = re.match(r'^(\s*)(- )?expr:\s*(.*)$', lines[i])
        if m:
            ind = len(m.group(1)) + (2 if m.group(2) else 0)
            rest = m.group(3).strip()
            if rest in ("|", ">", "|-", ">-"):
                block = []
                i += 1
                while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > ind):
                    block.append(lines[i].strip())
                    i += 1
                out.append(" ".join(b for b in block if b))
                continue
            out.append(rest)
        i += 1
    return out


def dash_exprs(path):
    d = json.load(open(path))
    out = []

    def walk(o):
        if isinstance(o, dict):
            if isinstance(o.get("expr"), str):
                out.append(o["expr"])
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)
    walk(d.get("panels", []))
    return out


def grafana_vars(e):
    return e.replace("$__rate_interval", "1m").replace("$model", ".*").replace("$version", ".*")


def metric_names(e):
    """Metric names an expression reads (identifiers followed by { or [ or a space/paren, that are ours)."""
    names = set(re.findall(r'\b((?:ei|process)_[a-zA-Z0-9_]+)\b', e))
    base = set()
    for n in names:
        for suf in ("_bucket", "_sum", "_count"):
            if n.endswith(suf) and n[:-len(suf)] in ("ei_request_duration_seconds", "ei_queue_duration_seconds",
                                                      "ei_compute_duration_seconds", "ei_batch_size",
                                                      "ei_model_load_duration_seconds"):
                n = n[:-len(suf)]
        base.add(n)
    return base


def api(port, path, params=None):
    url = "http://127.0.0.1:%d%s" % (port, path)
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read().decode())


def main():
    if not shutil.which("prometheus") or not shutil.which("promtool"):
        check(False, "Debian's prometheus package is installed (scripts/setup)")
        return
    tmp = tempfile.mkdtemp(prefix="ei-prom-")
    root = os.path.join(tmp, "repo")
    make_repo(SRC, root, "fashion")
    r = subprocess.run(["promtool", "check", "rules", RULES], capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "promtool check rules deploy/prometheus/edgeinfer-rules.yml (%s)" %
          (r.stdout + r.stderr).strip().splitlines()[-1:])
    exprs = [("rules", e) for e in rule_exprs(RULES)] + [("dashboard", e) for e in dash_exprs(DASH)]
    check(len([1 for k, _ in exprs if k == "rules"]) >= 10 and len([1 for k, _ in exprs if k == "dashboard"]) >= 10,
          "deploy/ holds %d rule and %d dashboard expressions" %
          (len([1 for k, _ in exprs if k == "rules"]), len([1 for k, _ in exprs if k == "dashboard"])))
    srv = Server(EXE, root, tmp)
    prom = None
    stop = threading.Event()
    try:
        pport = free_port()
        cfg = os.path.join(tmp, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "rule_files:\n  - %s\n"
                    "scrape_configs:\n  - job_name: edgeinfer\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n" % (RULES, srv.http))
        r = subprocess.run(["promtool", "check", "config", cfg], capture_output=True, text=True, timeout=60)
        check(r.returncode == 0, "promtool check config (the README's scrape config + the rules)")
        plog = open(os.path.join(tmp, "prometheus.log"), "w")
        prom = subprocess.Popen(["prometheus", "--config.file=" + cfg, "--storage.tsdb.path=" + os.path.join(tmp, "tsdb"),
                                 "--web.listen-address=127.0.0.1:%d" % pport, "--log.level=warn"],
                                stdout=plog, stderr=subprocess.STDOUT)

        # traffic in the background
        x = np.random.RandomState(0).rand(1, 1, 28, 28).astype(np.float32)
        good = json.dumps({"inputs": [{"name": "input", "shape": [1, 1, 28, 28], "datatype": "FP32",
                                       "data": x.reshape(-1).tolist()}]}).encode()
        bad = json.dumps({"inputs": [{"name": "input", "shape": [1, 1, 28, 27], "datatype": "FP32",
                                      "data": x.reshape(-1)[:28 * 27].tolist()}]}).encode()
        sent = [0, 0]

        def traffic():
            c = srv.conn()
            n = 0
            while not stop.is_set():
                body = bad if n % 10 == 9 else good
                c.request("POST", "/v2/models/fashion/infer", body=body, headers={"Content-Type": "application/json"})
                resp = c.getresponse()
                resp.read()
                sent[resp.status != 200] += 1
                n += 1
                time.sleep(0.01)
            c.close()
        th = threading.Thread(target=traffic, daemon=True)
        th.start()

        t0 = time.monotonic()
        up = None
        while time.monotonic() - t0 < 20:
            try:
                res = api(pport, "/api/v1/query", {"query": 'up{job="edgeinfer"}'})["data"]["result"]
                if res and res[0]["value"][1] == "1":
                    up = True
                    break
            except Exception:
                pass
            if prom.poll() is not None:
                break
            time.sleep(0.25)
        check(up, "prometheus is up and scrapes the server (up == 1)")
        if not up:
            print(open(os.path.join(tmp, "prometheus.log")).read()[-2000:])
            return
        # the page as the server serves it, to tell an absent family from a wrong expression
        _, _, page = srv.h1("GET", "/metrics")
        present = set(re.findall(r'^# TYPE (\S+) ', page.decode(), re.M))

        pending = list(exprs)
        results = {}
        deadline = time.monotonic() + 15
        while pending and time.monotonic() < deadline:
            left = []
            for kind, e in pending:
                q = grafana_vars(e)
                try:
                    res = api(pport, "/api/v1/query", {"query": q})
                except Exception as ex:  # a 400 is a bad expression: no retry
                    results[(kind, e)] = "error: %s" % ex
                    continue
                if res.get("status") == "success" and res["data"]["result"]:
                    results[(kind, e)] = "ok"
                else:
                    left.append((kind, e))
            pending = left
            if pending:
                time.sleep(1)
        for kind, e in exprs:
            st = results.get((kind, e))
            short = re.sub(r'\s+', ' ', e)[:110]
            if st == "ok":
                check(True, "%s: %s returns data" % (kind, short))
                continue
            names = metric_names(e)
            absent = [n for n in names if n not in present]
            # where the server says the source is supported, its families must be there
            feat = {n: ("perf_hw" if n in PERF_HW else "thermal" if n == "ei_device_temperature_celsius" else None)
                    for n in absent}
            claimed = [n for n, f in feat.items() if f and re.search(
                r'^ei_device_feature_supported\{feature="%s"\} 1$' % f, page.decode(), re.M)]
            if st is None and absent and all(n in CONDITIONAL for n in absent) and not claimed:
                print("skip %s: %s (absent here: %s)" % (kind, short,
                                                          "; ".join("%s: %s" % (n, CONDITIONAL[n]) for n in absent)))
                continue
            check(False, "%s: %s returns data (%s)" % (kind, short, st or "empty"))
        stop.set()
        th.join(10)
        check(sent[0] > 20 and sent[1] >= 1, "traffic: %d answered, %d refused (invalid)" % tuple(sent))
        # the recorded series exist too (rules evaluated by prometheus itself)
        res = api(pport, "/api/v1/query", {"query": "model:ei_inference_request_success:rate1m"})
        check(res["data"]["result"], "the recording rules were evaluated (model:ei_inference_request_success:rate1m)")
        check(srv.stop() == 0, "server exits 0")
    finally:
        stop.set()
        if prom and prom.poll() is None:
            prom.terminate()
            try:
                prom.wait(10)
            except subprocess.TimeoutExpired:
                prom.kill()
                prom.wait()
        if srv.p.poll() is None:
            srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
    done()
