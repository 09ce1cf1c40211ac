"""tests/server/test_metrics.py: GET /metrics of `edgeinfer serve` (Prometheus text format 0.0.4).

A strict exposition checker runs on every scrape: HELP and TYPE once per family and before its samples, every
sample in an announced family, no duplicate label sets, counters named *_total, no _us/_ms units, histogram buckets
sorted by le and cumulative, +Inf equal to _count; counters never decrease between scrapes. After N requests the
serving counts are exact; an invalid request is counted by reason; the explicit-mode unload makes every series of
the version disappear (and a load brings them back at zero); `promtool check metrics` passes on a scrape; HTTP/2
gives the same page; other methods get 405.

usage: test_metrics.py EDGEINFER SOURCE_DIR
"""
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serverlib import Server, check, done, make_repo  # noqa: E402

import numpy as np  # noqa: E402

EXE, SRC = sys.argv[1], sys.argv[2]
CT = "text/plain; version=0.0.4; charset=utf-8"

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')


def parse_labels(s, where):
    out = []
    pos = 0
    while pos < len(s):
        m = LABEL.match(s, pos)
        if not m:
            raise ValueError("%s: bad labels {%s}" % (where, s))
        out.append((m.group(1), m.group(2)))
        pos = m.end()
    names = [k for k, _ in out]
    if len(set(names)) != len(names):
        raise ValueError("%s: a label name twice" % where)
    return tuple(out)


def parse_value(v, where):
    if v in ("+Inf", "-Inf", "NaN"):
        return float(v.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.match(r'^-?[0-9.]+([eE][-+]?[0-9]+)?$', v):
        raise ValueError("%s: bad value %r" % (where, v))
    return float(v)


def strict_parse(text):
    """{family: {"type", "help", "samples": {(name, labels): value}}}; raises ValueError on any violation."""
    if not text.endswith("\n"):
        raise ValueError("the page does not end with a newline")
    fams = {}
    cur = None
    seen_samples = set()
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = "line %d (%s)" % (n, line[:80])
        if line.startswith("# HELP "):
            name = line[7:].split(" ", 1)[0]
            if name in fams:
                raise ValueError("%s: HELP of %s twice" % (where, name))
            fams[name] = {"help": line[7 + len(name) + 1:], "type": None, "samples": {}}
            cur = name
        elif line.startswith("# TYPE "):
            parts = line[7:].split(" ")
            if len(parts) != 2 or parts[0] != cur or fams[cur]["type"] is not None:
                raise ValueError("%s: TYPE not right after its HELP, or twice" % where)
            if parts[1] not in ("counter", "gauge", "histogram"):
                raise ValueError("%s: type %s" % (where, parts[1]))
            fams[cur]["type"] = parts[1]
        elif line.startswith("#") or not line:
            raise ValueError("%s: unexpected line" % where)
        else:
            m = SAMPLE.match(line)
            if not m:
                raise ValueError("%s: not a sample line" % where)
            name, labels, value = m.group(1), parse_labels(m.group(3) or "", where), parse_value(m.group(4), where)
            if cur is None or fams[cur]["type"] is None:
                raise ValueError("%s: sample before any HELP/TYPE" % where)
            t = fams[cur]["type"]
            ok = name == cur or (t == "histogram" and name in (cur + "_bucket", cur + "_sum", cur + "_count"))
            if not ok:
                raise ValueError("%s: sample %s outside its family (%s)" % (where, name, cur))
            key = (name, labels)
            if key in seen_samples:
                raise ValueError("%s: duplicate series" % where)
            seen_samples.add(key)
            fams[cur]["samples"][key] = value
    for name, f in fams.items():
        if f["type"] is None:
            raise ValueError("%s: HELP without TYPE" % name)
        if f["type"] == "counter" and not name.endswith("_total"):
            raise ValueError("counter %s does not end in _total" % name)
        if re.search(r'_(us|ms|microseconds|milliseconds)(_|$)', name):
            raise ValueError("%s: not a base unit" % name)
        if f["type"] == "histogram":
            check_histogram(name, f["samples"])
        for (sn, _), v in f["samples"].items():
            if f["type"] == "counter" and (v < 0 or math.isnan(v)):
                raise ValueError("counter %s is %r" % (sn, v))
    return fams


def check_histogram(name, samples):
    series = {}
    for (sn, labels), v in samples.items():
        base = tuple(kv for kv in labels if kv[0] != "le")
        s = series.setdefault(base, {"buckets": [], "sum": None, "count": None})
        if sn == name + "_bucket":
            le = [x for k, x in labels if k == "le"]
            if len(le) != 1:
                raise ValueError("%s%s: bucket without le" % (name, base))
            s["buckets"].append((float(le[0].replace("+Inf", "inf")), v, le[0]))
        elif sn == name + "_sum":
            s["sum"] = v
        elif sn == name + "_count":
            s["count"] = v
        else:
            raise ValueError("%s: a plain sample in a histogram" % name)
    for base, s in series.items():
        b = s["buckets"]
        les = [x[0] for x in b]
        if les != sorted(les) or len(set(les)) != len(les):
            raise ValueError("%s%s: buckets not sorted by le" % (name, base))
        if not b or b[-1][2] != "+Inf":
            raise ValueError("%s%s: no +Inf bucket" % (name, base))
        for i in range(1, len(b)):
            if b[i][1] < b[i - 1][1]:
                raise ValueError("%s%s: buckets not cumulative" % (name, base))
        if s["count"] is None or s["sum"] is None:
            raise ValueError("%s%s: _sum or _count missing" % (name, base))
        if b[-1][1] != s["count"]:
            raise ValueError("%s%s: +Inf %r != _count %r" % (name, base, b[-1][1], s["count"]))


def counters(fams):
    out = {}
    for name, f in fams.items():
        if f["type"] == "counter":
            out.update(f["samples"])
        elif f["type"] == "histogram":
            out.update(f["samples"])  # buckets, _sum (non-negative observations) and _count only grow
    return out


def val(fams, fam, sample=None, **labels):
    f = fams.get(fam)
    if not f:
        return None
    want = sample or fam
    for (sn, ls), v in f["samples"].items():
        d = dict(ls)
        if sn == want and all(d.get(k) == w for k, w in labels.items()) and \
                set(d) - {"le"} == set(labels) - {"le"}:
            return v
    return None


def scrape(srv, proto="h1"):
    st, h, body = srv.req(proto, "GET", "/metrics")
    return st, h, body.decode("utf-8")


def infer_body(shape=(1, 1, 28, 28), seed=0):
    x = np.random.RandomState(seed).rand(*shape).astype(np.float32)
    return json.dumps({"inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32",
                                   "data": x.reshape(-1).tolist()}]}).encode()


def main():
    tmp = tempfile.mkdtemp(prefix="ei-metrics-")
    root = os.path.join(tmp, "repo")
    make_repo(SRC, root, "fashion")
    srv = Server(EXE, root, tmp, "--model-control", "explicit", "--load-model", "fashion")
    prev = None
    try:
        st, h, text = scrape(srv)
        check(st == 200 and h.get("content-type") == CT, "GET /metrics: 200, %s (%d %s)" % (CT, st, h.get("content-type")))
        try:
            fams = strict_parse(text)
            check(True, "first scrape passes the strict checker (%d families)" % len(fams))
        except ValueError as e:
            check(False, "first scrape passes the strict checker: %s" % e)
            return
        prev = counters(fams)
        want = ["ei_inference_request_success_total", "ei_inference_request_failure_total", "ei_inference_count_total",
                "ei_inference_exec_count_total", "ei_pending_requests", "ei_request_duration_seconds",
                "ei_queue_duration_seconds", "ei_compute_duration_seconds", "ei_batch_size",
                "ei_model_load_duration_seconds", "ei_model_loads_total", "ei_model_load_failures_total",
                "ei_model_ready", "ei_model_weight_bytes", "ei_model_arena_bytes", "process_resident_memory_bytes",
                "process_cpu_seconds_total", "process_open_fds", "process_start_time_seconds", "ei_connections",
                "ei_build_info"]
        missing = [w for w in want if w not in fams]
        check(not missing, "every serving, lifecycle and process family is there (missing: %s)" % missing)
        mv = {"model": "fashion", "version": "1"}
        check(val(fams, "ei_model_ready", **mv) == 1, "ei_model_ready{fashion,1} = 1")
        check((val(fams, "ei_model_weight_bytes", **mv) or 0) > 100000, "weight bytes of fashion_mnist > 100 kB")
        check((val(fams, "ei_model_arena_bytes", **mv) or 0) > 0, "arena bytes > 0")
        check(val(fams, "ei_model_loads_total", model="fashion") == 1 and
              val(fams, "ei_model_load_duration_seconds", "ei_model_load_duration_seconds_count", model="fashion") == 1,
              "one load counted, one load duration observed")
        start = val(fams, "process_start_time_seconds")
        check(start is not None and abs(start - time.time()) < 120, "process_start_time_seconds is about now")
        check((val(fams, "process_resident_memory_bytes") or 0) > 1e6, "resident memory > 1 MB")
        check(any(dict(ls).get("isa") and dict(ls).get("version") for (_, ls) in fams["ei_build_info"]["samples"]),
              "ei_build_info has version and isa")
        # an open HTTP/1.1 connection is counted
        c = srv.conn()
        c.request("GET", "/metrics")
        r = c.getresponse()
        f1 = strict_parse(r.read().decode())
        check(val(f1, "ei_connections", protocol="http1") >= 1, "ei_connections{protocol=http1} >= 1 on a kept connection")
        c.close()
        # HTTP/2 prior knowledge on both ports: counted as http2 and grpc while open
        import socket
        preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
        socks = []
        for port in (srv.http, srv.grpc):
            k = socket.create_connection(("127.0.0.1", port), timeout=10)
            k.sendall(preface)
            k.recv(9)  # the server's SETTINGS: the connection has been sniffed
            socks.append(k)
        f1 = strict_parse(scrape(srv)[2])
        check(val(f1, "ei_connections", protocol="http2") == 1 and val(f1, "ei_connections", protocol="grpc") == 1,
              "ei_connections{protocol=http2} = 1 and {protocol=grpc} = 1 with one h2c and one gRPC connection open")
        for k in socks:
            k.close()
        t1 = time.monotonic()
        while time.monotonic() - t1 < 5:
            f1 = strict_parse(scrape(srv)[2])
            if val(f1, "ei_connections", protocol="http2") == 0 and val(f1, "ei_connections", protocol="grpc") == 0:
                break
            time.sleep(0.02)
        check(val(f1, "ei_connections", protocol="http2") == 0 and val(f1, "ei_connections", protocol="grpc") == 0,
              "closed connections leave the gauge")

        # N requests, one at a time: exact counts
        N = 12
        base = fams
        ok = 0
        for i in range(N):
            st, _, b = srv.h1("POST", "/v2/models/fashion/infer", infer_body(seed=i),
                              {"Content-Type": "application/json"})
            ok += st == 200
        st, _, b = srv.h1("POST", "/v2/models/fashion/infer", infer_body(shape=(1, 1, 28, 27)),
                          {"Content-Type": "application/json"})
        check(ok == N and st == 400, "%d requests answered 200, a wrong shape 400 (%d)" % (ok, st))
        st, _, text = scrape(srv)
        try:
            fams = strict_parse(text)
            check(True, "scrape after traffic passes the strict checker")
        except ValueError as e:
            check(False, "scrape after traffic passes the strict checker: %s" % e)
            return

        def delta(fam, sample=None, **ls):
            return (val(fams, fam, sample, **ls) or 0) - (val(base, fam, sample, **ls) or 0)

        check(delta("ei_inference_request_success_total", **mv) == N, "success_total += %d exactly (%r)" %
              (N, delta("ei_inference_request_success_total", **mv)))
        check(delta("ei_inference_count_total", **mv) == N, "inference_count_total += %d (images)" % N)
        check(delta("ei_inference_exec_count_total", **mv) == N, "exec_count_total += %d (one at a time)" % N)
        for h in ("ei_request_duration_seconds", "ei_queue_duration_seconds"):
            check(delta(h, h + "_count", **mv) == N, "%s_count += %d" % (h, N))
        check(delta("ei_compute_duration_seconds", "ei_compute_duration_seconds_count", **mv) == N and
              delta("ei_batch_size", "ei_batch_size_count", **mv) == N and
              delta("ei_batch_size", "ei_batch_size_sum", **mv) == N,
              "compute and batch histograms: one observation of 1 row per execution")
        check(delta("ei_batch_size", "ei_batch_size_bucket", le="1", **mv) == N, "batch sizes all in le=1")
        check(delta("ei_inference_request_failure_total", reason="invalid", **mv) == 1 and
              all(delta("ei_inference_request_failure_total", reason=r, **mv) == 0
                  for r in ("rejected", "timeout", "internal")),
              "failure_total{reason=invalid} += 1, the other reasons unchanged")
        rs = val(fams, "ei_request_duration_seconds", "ei_request_duration_seconds_sum", **mv)
        check(rs is not None and 0 < rs < 60, "request duration sum in seconds (%r)" % rs)
        check(val(fams, "ei_pending_requests", **mv) == 0, "nothing pending when idle")
        cur = counters(fams)
        dec = [k for k, v in cur.items() if k in prev and v < prev[k]]
        check(not dec, "no counter decreased between scrapes (%s)" % dec[:3])
        prev = cur

        # HTTP/2: the same page; other methods: 405
        st, h, text2 = scrape(srv, "h2")
        try:
            f2 = strict_parse(text2)
            check(st == 200 and h.get("content-type") == CT and
                  val(f2, "ei_inference_request_success_total", **mv) ==
                  val(fams, "ei_inference_request_success_total", **mv), "GET /metrics over h2c")
            dec = [k for k, v in counters(f2).items() if k in prev and v < prev[k]]
            check(not dec, "no counter decreased (h2 scrape)")
        except ValueError as e:
            check(False, "h2 scrape passes the strict checker: %s" % e)
        for m in ("POST", "PUT", "DELETE"):
            st, h, _ = srv.h1(m, "/metrics", b"" if m != "DELETE" else None)
            check(st == 405 and h.get("allow") == "GET", "%s /metrics: 405 with Allow: GET (%d)" % (m, st))

        # scrapes in parallel with inference: every page strict, counters monotonic per scraper
        import threading
        errs = []

        def scraper():
            last = {}
            for _ in range(8):
                try:
                    st, _, t = scrape(srv)
                    cur = counters(strict_parse(t))
                    if st != 200 or any(k in last and v < last[k] for k, v in cur.items()):
                        errs.append("status %d or a counter decreased" % st)
                    last = cur
                except Exception as e:  # noqa: BLE001
                    errs.append(str(e))

        def inferer():
            for i in range(10):
                srv.h1("POST", "/v2/models/fashion/infer", infer_body(seed=i), {"Content-Type": "application/json"})
        ths = [threading.Thread(target=scraper) for _ in range(4)] + [threading.Thread(target=inferer) for _ in range(2)]
        for t in ths:
            t.start()
        for t in ths:
            t.join(60)
        check(not errs, "4 scrapers x 8 pages during inference: all strict and monotonic (%s)" % errs[:2])

        # promtool check metrics on a scrape
        _, _, text = scrape(srv)
        p = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True, timeout=60)
        check(p.returncode == 0, "promtool check metrics: %s" % (p.stdout + p.stderr).decode().strip()[:300])

        # explicit unload: every series of the version disappears; a load brings them back from zero
        st, _, b = srv.h1("POST", "/v2/repository/models/fashion/unload", b"{}", {"Content-Type": "application/json"})
        check(st == 200, "unload fashion (%d %s)" % (st, b[:100]))
        _, _, text = scrape(srv)
        fams = strict_parse(text)
        left = [(sn, ls) for f in fams.values() for (sn, ls) in f["samples"] if ("version", "1") in ls and
                ("model", "fashion") in ls]
        check(not left, "after unload no series of fashion/1 is left (%s)" % left[:2])
        check(val(fams, "ei_model_loads_total", model="fashion") == 1, "the model's load counter stays")
        st, _, b = srv.h1("POST", "/v2/repository/models/fashion/load", b"{}", {"Content-Type": "application/json"})
        check(st == 200, "load fashion again (%d)" % st)
        _, _, text = scrape(srv)
        fams = strict_parse(text)
        check(val(fams, "ei_model_ready", **mv) == 1 and val(fams, "ei_inference_request_success_total", **mv) == 0,
              "after the load: ready again, counters from zero")
        check(val(fams, "ei_model_loads_total", model="fashion") == 2 and
              val(fams, "ei_model_load_duration_seconds", "ei_model_load_duration_seconds_count", model="fashion") == 2,
              "loads_total 2, two load durations")
        check(srv.stop() == 0, "server exits 0")
    finally:
        if srv.p.poll() is None:
            srv.stop()
    test_queue(root, tmp)


def test_queue(root, tmp):
    """Every execution sleeps 1 s (--test-delay-ms), the queue holds 3: pending requests, a dynamic batch of 3,
    the timeout and rejected reasons, all exact."""
    import threading
    srv = Server(EXE, root, tmp, "--test-delay-ms", "1000", "--max-queue", "3")
    mv = {"model": "fashion", "version": "1"}
    try:
        _, _, text = scrape(srv)
        base = strict_parse(text)
        res = {}

        def send(key, body):
            st, _, _ = srv.h1("POST", "/v2/models/fashion/infer", body, {"Content-Type": "application/json"})
            res[key] = st
        timed = json.loads(infer_body(seed=9))
        timed["parameters"] = {"timeout": 50000}  # 50 ms: passes while queued behind the 1 s execution
        t0 = threading.Thread(target=send, args=("r0", infer_body(seed=0)))
        t0.start()
        time.sleep(0.15)
        send("timed", json.dumps(timed).encode())
        ths = [threading.Thread(target=send, args=("r%d" % i, infer_body(seed=i))) for i in (1, 2, 3)]
        for t in ths:
            t.start()
        pend = None
        t1 = time.monotonic()
        while time.monotonic() - t1 < 0.5:
            _, _, text = scrape(srv)
            pend = val(strict_parse(text), "ei_pending_requests", **mv)
            if pend == 3:
                break
            time.sleep(0.02)
        send("full", infer_body(seed=4))
        for t in ths + [t0]:
            t.join(30)
        check(pend == 3, "ei_pending_requests = 3 while three requests wait (%r)" % pend)
        check(res == {"r0": 200, "timed": 504, "r1": 200, "r2": 200, "r3": 200, "full": 503},
              "answers: 4 x 200, a deadline 504, a queue-full 503 (%s)" % res)
        _, _, text = scrape(srv)
        fams = strict_parse(text)

        def delta(fam, sample=None, **ls):
            return (val(fams, fam, sample, **ls) or 0) - (val(base, fam, sample, **ls) or 0)
        check(delta("ei_inference_request_success_total", **mv) == 4 and delta("ei_inference_count_total", **mv) == 4,
              "success and images += 4")
        check(delta("ei_inference_exec_count_total", **mv) == 2 and
              delta("ei_batch_size", "ei_batch_size_sum", **mv) == 4 and
              delta("ei_batch_size", "ei_batch_size_bucket", le="1", **mv) == 1 and
              delta("ei_batch_size", "ei_batch_size_bucket", le="2", **mv) == 1 and
              delta("ei_batch_size", "ei_batch_size_bucket", le="4", **mv) == 2,
              "two executions: batch 1, then the three queued as one batch of 3")
        check(delta("ei_inference_request_failure_total", reason="timeout", **mv) == 1 and
              delta("ei_inference_request_failure_total", reason="rejected", **mv) == 1,
              "failure reasons: timeout += 1, rejected += 1")
        q = delta("ei_queue_duration_seconds", "ei_queue_duration_seconds_sum", **mv)
        check(q > 1.5, "queue durations of the batch sum over 1.5 s (3 x ~0.8 s: %.3f)" % q)
        check(delta("ei_compute_duration_seconds", "ei_compute_duration_seconds_bucket", le="0.5", **mv) == 2,
              "compute durations exclude the test delay (both under 0.5 s)")
        check(val(fams, "ei_pending_requests", **mv) == 0, "nothing pending at the end")
        check(srv.stop() == 0, "queue server exits 0")
    finally:
        if srv.p.poll() is None:
            srv.stop()


if __name__ == "__main__":
    main()
    done()
