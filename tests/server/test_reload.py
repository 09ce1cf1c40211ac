"""tests/server/test_reload.py: hot reload of model versions (`serve --model-control poll|explicit|none`).

usage: test_reload.py EDGEINFER_EXE SOURCE_DIR

A second "version" of models/fashion_mnist.onnx with other weights is made here with onnx (the last bias
shifted), so that every answer shows which version computed it; `edgeinfer run` of each file is the reference.
Deterministic hooks instead of sleeps: --test-load-delay-ms (the loader holds a version in LOADING),
--test-delay-ms (every run sleeps: requests stay in flight), and polling the repository index until a state is
reached. The one deliberate pause is the partial-write scenario itself (a writer that stops for less than
--settle-ms).
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serverlib import FAILURES, Server, check, done, make_repo, run_reference  # noqa: E402

EXE, SRC = sys.argv[1], sys.argv[2]
TMP = tempfile.mkdtemp(prefix="ei-reload-")
ORIG = os.path.join(SRC, "models", "fashion_mnist.onnx")

# ---- the second version: the same graph, the last initializer (a bias) shifted ----
ALT = os.path.join(TMP, "fashion_alt.onnx")
_m = onnx.load(ORIG)
_init = _m.graph.initializer
_k = max(range(len(_init)), key=lambda i: i if len(_init[i].dims) == 1 else -1)
_b = numpy_helper.to_array(_init[_k]).copy()
_b += np.linspace(0.5, 5.0, _b.size).astype(_b.dtype)
_init[_k].CopyFrom(numpy_helper.from_array(_b, _init[_k].name))
onnx.save(_m, ALT)

X = np.random.default_rng(7).random((1, 1, 28, 28), dtype=np.float32)
REF = {"orig": list(run_reference(EXE, ORIG, X, TMP).values())[0].ravel(),
       "alt": list(run_reference(EXE, ALT, X, TMP).values())[0].ravel()}
check(not np.allclose(REF["orig"], REF["alt"], atol=1e-3), "the two model files answer differently")
BODY = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 1, 28, 28],
                              "data": X.ravel().tolist()}]})


def which(out):
    """'orig' / 'alt' / None: the reference an output matches."""
    for k, ref in REF.items():
        if np.allclose(out, ref, rtol=1e-4, atol=1e-4):
            return k
    return None


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def deploy(model_dir, version, src, sums=True, bad_sum=False, extra_file=False):
    """The safe pattern: copy to a staging name, write SHA256SUMS, rename into place."""
    stage = os.path.join(model_dir, ".incoming-%s" % version)
    os.makedirs(stage)
    shutil.copy(src, os.path.join(stage, "model.onnx"))
    if extra_file:
        with open(os.path.join(stage, "notes.txt"), "w") as f:
            f.write("not listed\n")
    if sums:
        h = sha256(os.path.join(stage, "model.onnx"))
        if bad_sum:
            h = ("0" if h[0] != "0" else "1") + h[1:]
        with open(os.path.join(stage, "SHA256SUMS"), "w") as f:
            f.write("%s  model.onnx\n" % h)
    os.rename(stage, os.path.join(model_dir, str(version)))


def new_repo(name, cfg_extra=None, src=ORIG):
    root = tempfile.mkdtemp(dir=TMP)
    make_repo(SRC, root, name=name)
    d = os.path.join(root, name)
    if src != ORIG:
        shutil.copy(src, os.path.join(d, "1", "model.onnx"))
    if cfg_extra:
        write_config(d, cfg_extra)
    return root, d


def write_config(d, extra):
    cfg = json.load(open(os.path.join(d, "config.json")))
    cfg.update(extra)
    with open(os.path.join(d, ".config.json.tmp"), "w") as f:
        json.dump(cfg, f)
    os.rename(os.path.join(d, ".config.json.tmp"), os.path.join(d, "config.json"))


def index(srv, name):
    st, _, b = srv.h1("POST", "/v2/repository/index", body="{}")
    return {e["version"]: e for e in json.loads(b) if e["name"] == name} if st == 200 else {}


def wait_index(srv, name, pred, timeout=60):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        ix = index(srv, name)
        if pred(ix):
            return ix
        time.sleep(0.02)
    return index(srv, name)


def ready_versions(ix):
    return sorted(int(v) for v, e in ix.items() if e["state"] == "READY" and v)


def infer(srv, name, version="", conn=None):
    path = "/v2/models/%s%s/infer" % (name, "/versions/%s" % version if version else "")
    st, _, b = srv.h1("POST", path, body=BODY, headers={"Content-Type": "application/json"}, conn=conn)
    if st != 200:
        return st, None, b
    r = json.loads(b)
    return st, r["model_version"], np.array(r["outputs"][0]["data"], np.float32)


def stats(srv, name):
    st, _, b = srv.h1("GET", "/v2/models/%s/stats" % name)
    return json.loads(b)["model_stats"] if st == 200 else []


class Clients:
    """n sequential clients (keep-alive) recording every answer until stopped."""

    def __init__(self, srv, name, n=4):
        self.srv, self.name, self.stop_ev = srv, name, threading.Event()
        self.results = [[] for _ in range(n)]
        self.errors = []
        self.th = [threading.Thread(target=self.run, args=(i,)) for i in range(n)]
        for t in self.th:
            t.start()

    def run(self, i):
        c = self.srv.conn()
        while not self.stop_ev.is_set():
            try:
                st, v, out = infer(self.srv, self.name, conn=c)
            except Exception as e:  # noqa: BLE001
                self.errors.append(repr(e))
                c = self.srv.conn()
                continue
            if st != 200:
                self.errors.append("%d %s" % (st, out))
            else:
                self.results[i].append((int(v), which(out)))

    def stop(self):
        self.stop_ev.set()
        for t in self.th:
            t.join()
        return self.results, self.errors


# ---- 1. poll: swaps while requests run; load/unload refused; ignored names; checksum refusals ----
def test_swap():
    root, d = new_repo("fm")
    make_repo(SRC, root, name="empty")
    shutil.rmtree(os.path.join(root, "empty", "1"))
    srv = Server(EXE, root, TMP, "--settle-ms", "300", "--poll-secs", "1", "--test-load-delay-ms", "500")
    try:
        st, _, b = srv.h1("POST", "/v2/repository/models/fm/load")
        check(st == 501 and b"explicit" in b, "poll: POST .../load refused naming explicit mode (%d %s)" % (st, b[:120]))
        cl = Clients(srv, "fm")
        src = {1: "orig"}
        for ver in (2, 3, 4):
            f = ALT if ver % 2 == 0 else ORIG
            src[ver] = "alt" if f == ALT else "orig"
            deploy(d, ver, f)
            ix = wait_index(srv, "fm", lambda ix, v=ver: str(v) in ix and ix[str(v)]["state"] in ("LOADING", "READY"))
            if ver == 2:
                ix = wait_index(srv, "fm", lambda ix: ix.get("2", {}).get("state") == "LOADING", 10)
                check(ix.get("2", {}).get("state") == "LOADING", "index shows version 2 LOADING: %s" % ix)
                st, _, _ = srv.h1("GET", "/v2/models/fm/ready")
                check(st == 200, "the model stays ready while version 2 loads")
                st, _, _ = srv.h1("GET", "/v2/health/ready")
                check(st == 200, "the server stays ready while version 2 loads")
                st, _, b = srv.h1("POST", "/v2/models/fm/versions/2/infer", body=BODY)
                check(st == 404 and b"loading" in b, "a request for the loading version: 404 (%s)" % b[:120])
            ix = wait_index(srv, "fm", lambda ix, v=ver: ready_versions(ix) == [v])
            check(ready_versions(ix) == [ver], "version %d current, the previous one unloaded: %s" % (ver, ix))
        # a model folder with no version at start gets its first version
        e = os.path.join(os.path.dirname(d), "empty")
        ix = index(srv, "empty")
        check(ix.get("", {}).get("state") == "UNAVAILABLE", "a model without a version: UNAVAILABLE (%s)" % ix)
        deploy(e, 1, ORIG)
        ix = wait_index(srv, "empty", lambda ix: ready_versions(ix) == [1])
        check(ready_versions(ix) == [1] and "" not in ix, "its first version renamed in: READY (%s)" % ix)
        st, v, out = infer(srv, "empty")
        check(st == 200 and which(out) == "orig", "the first version answers")
        # ignored names
        for junk in (".incoming-9", "9.tmp"):
            os.makedirs(os.path.join(d, junk))
            shutil.copy(ORIG, os.path.join(d, junk, "model.onnx"))
        time.sleep(0.1)
        results, errors = cl.stop()
        check(not errors, "no failed request during 3 swaps (%d errors: %s)" % (len(errors), errors[:3]))
        n = sum(len(r) for r in results)
        seen = sorted({v for r in results for v, _ in r})
        check(n > 20 and seen[-1] == 4, "%d requests answered by versions %s" % (n, seen))
        mono = all(all(a[0] <= b[0] for a, b in zip(r, r[1:])) for r in results)
        check(mono, "versions never go backwards for a sequential client")
        check(all(w == src[v] for r in results for v, w in r), "every output equals `edgeinfer run` of its version")
        # checksum refused while the current version serves
        deploy(d, 5, ALT, bad_sum=True)
        ix = wait_index(srv, "fm", lambda ix: ix.get("5", {}).get("state") == "UNAVAILABLE")
        check(ix.get("5", {}).get("state") == "UNAVAILABLE" and "checksum mismatch" in ix["5"]["reason"],
              "SHA256SUMS mismatch: version 5 UNAVAILABLE with the reason (%s)" % ix.get("5"))
        deploy(d, 6, ALT, extra_file=True)
        ix = wait_index(srv, "fm", lambda ix: ix.get("6", {}).get("state") == "UNAVAILABLE")
        check("not listed" in ix.get("6", {}).get("reason", ""), "an unlisted file: version 6 refused (%s)" % ix.get("6"))
        st, v, out = infer(srv, "fm")
        check(st == 200 and v == "4" and which(out) == "alt", "version 4 still serves (%s %s)" % (st, v))
        check(ready_versions(ix) == [4], "index: version 4 READY after the refusals (%s)" % ix)
        st, _, b = srv.h1("POST", "/v2/models/fm/versions/5/infer", body=BODY)
        check(st == 404 and b"checksum" in b, "a request for the refused version 5: 404 with the reason (%s)" % b[:160])
        s = stats(srv, "fm")
        ld = s[0].get("edgeinfer_loads", {}) if s else {}
        check(ld.get("failures") == 2 and "not listed" in ld.get("last_error", ""),
              "stats: load failures and the last reason (%s)" % ld)
        log = srv.log_text()
        check("version 5 failed to load" in log and "checksum mismatch" in log, "the log names the refusal")
        ix = index(srv, "fm")
        check("9" not in ix, ".incoming-9 and 9.tmp are ignored (%s)" % sorted(ix))
        # unload by removing the folder of a version not current: version policy latest 1 has only 4; remove 4
        # with 3 still on disk: 3 takes its place
        shutil.rmtree(os.path.join(d, "4"))
        ix = wait_index(srv, "fm", lambda ix: ready_versions(ix) == [3])
        check(ready_versions(ix) == [3], "folder 4 removed: version 3 serves (%s)" % ix)
    finally:
        check(srv.stop() == 0, "poll server exits 0")


# ---- 2. a partial write that still parses, paused for less than the settle time ----
def test_partial_write():
    root, d = new_repo("fm")
    settle = 3000
    srv = Server(EXE, root, TMP, "--settle-ms", str(settle), "--poll-secs", "1")
    try:
        m = onnx.load(ALT)
        opset = list(m.opset_import)
        del m.opset_import[:]
        part1 = m.SerializeToString()  # a whole model without its opset_import: parses
        tail = onnx.ModelProto()
        tail.opset_import.extend(opset)
        part2 = tail.SerializeToString()  # protobuf concatenation merges: part1 + part2 == the model
        full = onnx.load_from_string(part1 + part2)
        check(len(full.opset_import) == len(opset), "the cut is at a field boundary (part1 + part2 parses)")
        os.makedirs(os.path.join(d, "2"))
        with open(os.path.join(d, "2", "model.onnx"), "wb") as f:
            f.write(part1)
            f.flush()
            time.sleep(settle / 1000 * 0.3)  # the writer stalls, for less than the settle time
            f.write(part2)
        ix = wait_index(srv, "fm", lambda ix: ready_versions(ix) == [2], 30)
        check(ready_versions(ix) == [2], "the completed version 2 loads once settled (%s)" % ix)
        log = srv.log_text()
        check(log.count("version 2: loading") == 1, "exactly one load attempt of version 2 (log)")
        s = stats(srv, "fm")
        ld = s[0].get("edgeinfer_loads", {}) if s else {}
        check(ld.get("attempts") == 2 and ld.get("failures") == 0,
              "stats: 2 load attempts (start + the completed file), no failure (%s)" % ld)
        st, v, out = infer(srv, "fm")
        check(st == 200 and v == "2" and which(out) == "alt", "version 2 answers with its weights")
    finally:
        check(srv.stop() == 0, "partial-write server exits 0")


# ---- 3. version policies and config.json reloads ----
def test_policies():
    root, d = new_repo("fm", {"version_policy": {"all": {}}})
    deploy(d, 2, ALT, sums=False)
    srv = Server(EXE, root, TMP, "--settle-ms", "200", "--poll-secs", "1")
    try:
        ix = wait_index(srv, "fm", lambda ix: ready_versions(ix) == [1, 2])
        check(ready_versions(ix) == [1, 2], "policy all: versions 1 and 2 (%s)" % ix)
        st1, v1, o1 = infer(srv, "fm", "1")
        st2, v2, o2 = infer(srv, "fm", "2")
        check(which(o1) == "orig" and which(o2) == "alt", "each version answers with its own weights")
        deploy(d, 3, ORIG, sums=False)
        ix = wait_index(srv, "fm", lambda ix: ready_versions(ix) == [1, 2, 3])
        check(ready_versions(ix) == [1, 2, 3], "policy all: version 3 added (%s)" % ix)
        write_config(d, {"version_policy": {"specific": {"versions": [1, 3]}}})
        ix = wait_index(srv, "fm", lambda ix: ready_versions(ix) == [1, 3])
        check(ready_versions(ix) == [1, 3], "config.json change to specific [1, 3] (%s)" % ix)
        st, _, b = srv.h1("POST", "/v2/models/fm/versions/2/infer", body=BODY)
        check(st == 404, "a version the policy dropped: 404 (%s)" % b[:100])
        write_config(d, {"version_policy": {"latest": {"num_versions": 2}}})
        ix = wait_index(srv, "fm", lambda ix: ready_versions(ix) == [2, 3])
        check(ready_versions(ix) == [2, 3], "latest 2 (%s)" % ix)
        write_config(d, {"input": [{"name": "input", "data_type": "TYPE_FP32", "dims": [3, 28, 28]}]})
        ix = wait_index(srv, "fm", lambda ix: "dims" in ix.get("3", {}).get("reason", ""))
        check(ready_versions(ix) == [2, 3] and "dims" in ix.get("3", {}).get("reason", ""),
              "a config.json whose input does not match the model: the reload fails, 2 and 3 keep serving (%s)" % ix)
        st, v, _ = infer(srv, "fm")
        check(st == 200 and v == "3", "the model answers after the failed reload")
        with open(os.path.join(d, "config.json"), "w") as f:
            f.write("{ not json")
        ix = wait_index(srv, "fm", lambda ix: "" in ix)
        check("" in ix and ready_versions(ix) == [2, 3], "a broken config.json: reported, versions 2 and 3 serve (%s)" % ix)
        st, v, _ = infer(srv, "fm")
        check(st == 200 and v == "3", "the model still answers with a broken config.json")
    finally:
        check(srv.stop() == 0, "policy server exits 0")


# ---- 4. explicit load/unload, unload with requests in flight, a failed explicit load ----
def test_explicit():
    root, d = new_repo("a")
    make_repo(SRC, root, name="b")
    make_repo(SRC, root, name="c")
    with open(os.path.join(root, "c", "1", "model.onnx"), "r+b") as f:
        f.truncate(100)
    srv = Server(EXE, root, TMP, "--model-control", "explicit", "--load-model", "a", "--test-delay-ms", "600")
    try:
        st, _, _ = infer(srv, "a")
        check(st == 200, "explicit: --load-model a serves")
        st, _, b = infer(srv, "b")
        check(st == 503 and b"not loaded" in b, "explicit: b is not loaded (%d %s)" % (st, b[:100]))
        st, _, b = srv.h1("POST", "/v2/repository/models/b/load")
        check(st == 200, "POST .../b/load: 200 (%s)" % b[:100])
        st, v, _ = infer(srv, "b")
        check(st == 200 and v == "1", "b serves after its load")
        st, _, b = srv.h1("POST", "/v2/repository/models/c/load")
        check(st == 400 and b"c" in b, "a corrupt model's load: 400 with the reason (%s)" % b[:160])
        st, _, b = srv.h1("POST", "/v2/repository/models/nope/load")
        check(st == 404, "load of an unknown model: 404")
        # unload with requests in flight
        res = []
        th = [threading.Thread(target=lambda: res.append(infer(srv, "b")[:2])) for _ in range(4)]
        for t in th:
            t.start()
        wait_index(srv, "b", lambda ix: False, 0.3)  # let them be admitted (each run takes 600 ms)
        st, _, b = srv.h1("POST", "/v2/repository/models/b/unload")
        check(st == 200, "POST .../b/unload with requests in flight: 200")
        for t in th:
            t.join()
        check(len(res) == 4 and all(r == (200, "1") for r in res), "the in-flight requests finished: %s" % res)
        st, _, _ = infer(srv, "b")
        check(st == 503, "b after its unload: 503")
        ix = index(srv, "b")
        check(ix.get("", {}).get("state") == "UNAVAILABLE" and ix[""]["reason"] == "unloaded",
              "index: b unloaded (%s)" % ix)
        st, _, b = srv.h1("POST", "/v2/repository/models/b/load")
        st2, v, _ = infer(srv, "b")
        check(st == 200 and st2 == 200, "b loads again")
    finally:
        check(srv.stop() == 0, "explicit server exits 0")
    # --load-model of a model that does not exist: the server does not start
    p = subprocess.run([EXE, "serve", "--repo", root, "--http-port", "0", "--grpc-port", "0", "--model-control",
                        "explicit", "--load-model", "nope"], capture_output=True, text=True, timeout=60)
    check(p.returncode != 0 and "--load-model nope" in p.stderr, "--load-model of an unknown model: refused at start (%s)"
          % p.stderr.strip()[:120])
    # none: load refused
    srv = Server(EXE, root, TMP, "--model-control", "none")
    try:
        st, _, b = srv.h1("POST", "/v2/repository/models/a/unload")
        check(st == 501 and b"none" in b, "none: unload refused (%s)" % b[:120])
    finally:
        srv.stop()


# ---- 4b. poll: removing the served version's folder with requests in flight ----
def test_remove_inflight():
    root, d = new_repo("fm")
    deploy(d, 2, ALT, sums=False)
    srv = Server(EXE, root, TMP, "--settle-ms", "200", "--poll-secs", "1", "--test-delay-ms", "600")
    try:
        ix = wait_index(srv, "fm", lambda ix: ready_versions(ix) == [2])
        res = []
        th = [threading.Thread(target=lambda: res.append(infer(srv, "fm")[:2])) for _ in range(4)]
        for t in th:
            t.start()
        wait_index(srv, "fm", lambda ix: False, 0.3)  # let them be admitted (each run takes 600 ms)
        shutil.rmtree(os.path.join(d, "2"))
        ix = wait_index(srv, "fm", lambda ix: ready_versions(ix) == [1])
        check(ready_versions(ix) == [1], "folder 2 removed: version 1 loads and serves (%s)" % ix)
        check(ix.get("2", {}).get("state") == "UNLOADING", "index: version 2 UNLOADING while its requests run (%s)" % ix)
        for t in th:
            t.join()
        ix = wait_index(srv, "fm", lambda ix: "2" not in ix)
        check("2" not in ix, "version 2 leaves the index after its last request (%s)" % ix)
        check(len(res) == 4 and all(r == (200, "2") for r in res),
              "the requests in flight on version 2 finished on it: %s" % res)
        st, v, out = infer(srv, "fm")
        check(st == 200 and v == "1" and which(out) == "orig", "the next request: version 1")
        check("version 2: unloaded" in srv.log_text(), "the log says version 2 was unloaded")
    finally:
        check(srv.stop() == 0, "remove-in-flight server exits 0")


# ---- 4c. the loader runs at nice 10 (and SCHED_IDLE with --loader-priority idle); a model's own pool
# (edgeinfer.cpus) made by it does not ----
def test_nice():
    root, d = new_repo("fm", {"edgeinfer": {"cpus": [0, 1], "labels": "labels.txt"}})
    srv = Server(EXE, root, TMP, "--settle-ms", "200", "--poll-secs", "1")
    try:
        deploy(d, 2, ALT)
        ix = wait_index(srv, "fm", lambda ix: ready_versions(ix) == [2])
        check(ready_versions(ix) == [2], "version 2 with its own pool loaded (%s)" % ix)

        def nices():
            out = []
            for t in os.listdir("/proc/%d/task" % srv.p.pid):
                try:
                    st = open("/proc/%d/task/%s/stat" % (srv.p.pid, t)).read()
                except OSError:
                    continue
                f = st[st.rindex(")") + 2:].split()
                out.append((int(f[16]), int(f[38])))  # fields 19 (nice) and 41 (policy; 5: SCHED_IDLE)
            return out
        n = nices()
        check([x[0] for x in n].count(10) == 1, "exactly one thread (the loader) at nice 10: %s" % sorted(n))
        check([x[1] for x in n].count(5) == 0, "no thread in SCHED_IDLE by default: %s" % sorted(n))
        st, v, out = infer(srv, "fm")
        check(st == 200 and v == "2" and which(out) == "alt", "version 2 answers on its own pool")
    finally:
        check(srv.stop() == 0, "nice server exits 0")
    # --loader-priority idle: the loader also runs SCHED_IDLE
    srv = Server(EXE, root, TMP, "--settle-ms", "200", "--poll-secs", "1", "--loader-priority", "idle")
    try:
        deadline = time.monotonic() + 5  # the loader sets its priority first thing, maybe after the port file
        n = nices()
        while [x[1] for x in n].count(5) != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
            n = nices()
        check([x[0] for x in n].count(10) == 1 and [x[1] for x in n].count(5) == 1,
              "--loader-priority idle: exactly one thread (the loader) at nice 10 and SCHED_IDLE: %s" % sorted(n))
    finally:
        check(srv.stop() == 0, "idle-loader server exits 0")


# ---- 5. the served file truncated and overwritten during requests ----
def test_truncate():
    root, d = new_repo("fm")
    srv = Server(EXE, root, TMP, "--settle-ms", "200", "--poll-secs", "1")
    try:
        cl = Clients(srv, "fm", 2)
        time.sleep(0.2)
        p = os.path.join(d, "1", "model.onnx")
        with open(p, "r+b") as f:
            f.truncate(0)
        time.sleep(0.2)
        with open(p, "wb") as f:
            f.write(b"\x00garbage" * 1000)
        time.sleep(0.5)  # past the settle time: a plain write to a loaded version is ignored
        os.unlink(p)
        time.sleep(0.2)
        results, errors = cl.stop()
        check(not errors, "no failed request while the served file was truncated, overwritten, deleted (%s)" % errors[:3])
        check(sum(len(r) for r in results) > 5 and all(w == "orig" for r in results for _, w in r),
              "outputs unchanged")
        ix = index(srv, "fm")
        check(ready_versions(ix) == [1], "version 1 still READY (%s)" % ix)
        st, v, out = infer(srv, "fm")
        check(st == 200 and which(out) == "orig", "version 1 answers as before")
        # a file renamed over a file of the loaded version reloads it
        shutil.copy(ALT, os.path.join(d, "1", ".model.onnx.tmp"))
        os.rename(os.path.join(d, "1", ".model.onnx.tmp"), p)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 30:
            st, v, out = infer(srv, "fm")
            if st == 200 and which(out) == "alt":
                break
            time.sleep(0.02)
        check(st == 200 and v == "1" and which(out) == "alt", "a file renamed over model.onnx reloads version 1")
        check(srv.log_text().count("version 1: loading") == 1, "exactly one reload of version 1 (log)")
    finally:
        check(srv.stop() == 0, "truncate server exits 0")


only = sys.argv[3:] or ["swap", "partial", "policies", "explicit", "remove", "nice", "truncate"]
for name, fn in [("swap", test_swap), ("partial", test_partial_write), ("policies", test_policies),
                 ("explicit", test_explicit), ("remove", test_remove_inflight), ("nice", test_nice),
                 ("truncate", test_truncate)]:
    if name in only:
        print("==== %s" % name, flush=True)
        try:
            fn()
        except Exception as e:  # noqa: BLE001
            import traceback
            traceback.print_exc()
            check(False, "%s raised %r" % (name, e))
shutil.rmtree(TMP, ignore_errors=True)
done()
