#!/usr/bin/python3
"""tests/server/test_rest.py: `edgeinfer serve` end to end over REST, on HTTP/1.1 and HTTP/2.

usage: test_rest.py EDGEINFER SOURCE_DIR

Starts servers (port 0 + --port-file) on a temporary repository holding models/fashion_mnist.onnx and checks:
every endpoint on both protocols; JSON (nested and flat) and binary infer against `edgeinfer run` on the same
input; the classification extension; /classify with PNG and JPEG photos against `edgeinfer run` on the same photo;
bad inputs of every kind (malformed JSON, wrong shape/datatype, truncated binary data, body and JSON limits 413,
unknown model/version 404, wrong method 405, broken photos 400/415, a slow client cut off, too many connections,
idle connections closed); Expect: 100-continue, chunked bodies, pipelining; queue full 503 and deadline 504 with
--test-delay-ms; a client that goes away while its request waits; after each group the server still answers;
SIGTERM with a request in flight (it completes, readiness turns 503, exit 0).
"""
import json
import os
import socket
import sys
import tempfile
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serverlib import (FAILURES, Server, check, done, fashion_test_images, make_repo, png_grey, run_reference,  # noqa: E402
                       softmax, split_responses)

EXE, SRC = sys.argv[1], sys.argv[2]
TMP = tempfile.mkdtemp(prefix="ei-serve-")
REPO = os.path.join(TMP, "repo")
CLASSES = make_repo(SRC, REPO)
MODEL = os.path.join(REPO, "fashion", "1", "model.onnx")
PROTOS = ("h1", "h2")


def jbody(obj):
    return json.dumps(obj).encode()


def infer_req(x, nested=True, **extra):
    data = x.tolist() if nested else x.reshape(-1).tolist()
    req = {"inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32", "data": data}]}
    req.update(extra)
    return req


def still_answers(s, what):
    st, _, body = s.h1("GET", "/v2/health/live")
    check(st == 200 and json.loads(body) == {"live": True}, "%s: the server still answers" % what)


def test_endpoints(s):
    for p in PROTOS:
        st, h, b = s.req(p, "GET", "/v2")
        meta = json.loads(b)
        check(st == 200 and meta["name"] == "edgeinfer" and "binary_tensor_data" in meta["extensions"] and
              "classification" in meta["extensions"] and h.get("content-type") == "application/json",
              "%s GET /v2: server metadata %s" % (p, meta))
        st, _, b = s.req(p, "GET", "/v2/health/live")
        check(st == 200 and json.loads(b) == {"live": True}, "%s live" % p)
        st, _, b = s.req(p, "GET", "/v2/health/ready")
        check(st == 200 and json.loads(b) == {"ready": True}, "%s ready" % p)
        for path in ("/v2/models/fashion", "/v2/models/fashion/versions/1"):
            st, _, b = s.req(p, "GET", path)
            m = json.loads(b)
            check(st == 200 and m["name"] == "fashion" and m["versions"] == ["1"] and m["platform"] == "onnx_onnxv1"
                  and m["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 1, 28, 28]}]
                  and m["outputs"] == [{"name": "logits", "datatype": "FP32", "shape": [-1, 10]}],
                  "%s GET %s: model metadata" % (p, path))
            st, _, b = s.req(p, "GET", path + "/ready")
            check(st == 200 and json.loads(b)["ready"] is True, "%s GET %s/ready" % (p, path))
            st, _, b = s.req(p, "GET", path + "/stats")
            ms = json.loads(b)["model_stats"]
            check(st == 200 and ms[0]["name"] == "fashion" and ms[0]["version"] == "1" and
                  set(ms[0]["inference_stats"]) >= {"success", "fail", "queue", "compute_input", "compute_infer",
                                                    "compute_output"}, "%s GET %s/stats" % (p, path))
        st, _, b = s.req(p, "GET", "/v2/models/stats")
        check(st == 200 and len(json.loads(b)["model_stats"]) == 1, "%s GET /v2/models/stats (every model)" % p)
        st, _, b = s.req(p, "POST", "/v2/repository/index", b"")
        check(st == 200 and json.loads(b) == [{"name": "fashion", "version": "1", "state": "READY", "reason": ""}],
              "%s POST /v2/repository/index" % p)
        st, _, b = s.req(p, "POST", "/v2/repository/index", jbody({"ready": True}))
        check(st == 200 and len(json.loads(b)) == 1, "%s POST /v2/repository/index {ready: true}" % p)
        # 404 / 405 with {"error": ...}
        for path in ("/v2/models/nope", "/v2/models/nope/ready", "/v2/models/fashion/versions/7",
                     "/v2/models/fashion/versions/7/ready", "/v3", "/v2/models/fashion/bogus", "/v2/models/%FF%22x"):
            st, _, b = s.req(p, "GET", path)
            check(st == 404 and "error" in json.loads(b), "%s GET %s: 404 %s" % (p, path, b[:80]))
        st, _, b = s.req(p, "POST", "/v2/models/nope/infer", jbody(infer_req(np.zeros((1, 1, 28, 28), np.float32))))
        check(st == 404 and "error" in json.loads(b), "%s infer on an unknown model: 404" % p)
        st, _, b = s.req(p, "POST", "/v2/models/fashion/versions/7/infer",
                         jbody(infer_req(np.zeros((1, 1, 28, 28), np.float32))))
        check(st == 404 and "error" in json.loads(b), "%s infer on an unknown version: 404" % p)
        st, h, b = s.req(p, "GET", "/v2/models/fashion/infer")
        check(st == 405 and "error" in json.loads(b) and h.get("allow") == "POST", "%s GET .../infer: 405" % p)
        st, _, b = s.req(p, "POST", "/v2/health/live", b"{}")
        check(st == 405 and "error" in json.loads(b), "%s POST /v2/health/live: 405" % p)
    # the gRPC port speaks HTTP/2 only: an HTTP/1.1 request there is closed without an answer
    c = socket.create_connection(("127.0.0.1", s.grpc), timeout=5)
    c.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
    check(c.recv(100) == b"", "HTTP/1.1 on the gRPC port: closed")
    c.close()
    # HTTP/2 SETTINGS: large initial stream window and connection window, MAX_CONCURRENT_STREAMS (nghttp -v)
    import shutil
    import subprocess
    if shutil.which("nghttp"):
        out = subprocess.run(["nghttp", "-nv", "http://127.0.0.1:%d/v2/health/ready" % s.http], stdout=subprocess.PIPE,
                             timeout=30).stdout.decode()
        check("[SETTINGS_INITIAL_WINDOW_SIZE(0x04):16777216]" in out and
              "[SETTINGS_MAX_CONCURRENT_STREAMS(0x03):128]" in out and "window_size_increment=16711681" in out,
              "HTTP/2 SETTINGS: initial window 16 MiB, connection window 16 MiB, 128 streams")
    # percent-encoded paths are decoded
    st, _, b = s.h1("GET", "/v2/models/fash%69on/ready")
    check(st == 200, "a percent-encoded path")


def test_infer(s):
    rng = np.random.default_rng(5)
    x1 = rng.random((1, 1, 28, 28), dtype=np.float32)
    x3 = rng.random((3, 1, 28, 28), dtype=np.float32)
    ref1 = run_reference(EXE, MODEL, x1, TMP)["logits"]
    ref3 = run_reference(EXE, MODEL, x3, TMP)["logits"]
    for p in PROTOS:
        for nested in (True, False):
            for x, ref in ((x1, ref1), (x3, ref3)):
                st, _, b = s.req(p, "POST", "/v2/models/fashion/infer", jbody(infer_req(x, nested, id="req-7")))
                r = json.loads(b)
                ok = st == 200 and r["model_name"] == "fashion" and r["model_version"] == "1" and r["id"] == "req-7"
                out = r["outputs"][0] if ok else {}
                ok = ok and out["name"] == "logits" and out["datatype"] == "FP32" and out["shape"] == [x.shape[0], 10]
                got = np.array(out.get("data", []), np.float32)
                ok = ok and got.size == ref.size and np.allclose(got.reshape(ref.shape), ref, rtol=1e-5, atol=1e-5)
                check(ok, "%s JSON infer batch %d (%s data) matches `edgeinfer run`" %
                      (p, x.shape[0], "nested" if nested else "flat"))
        # versioned path, explicit output
        st, _, b = s.req(p, "POST", "/v2/models/fashion/versions/1/infer",
                         jbody(infer_req(x1, outputs=[{"name": "logits"}])))
        r = json.loads(b)
        check(st == 200 and np.allclose(np.array(r["outputs"][0]["data"]).reshape(1, 10), ref1, atol=1e-5),
              "%s infer on /versions/1 with a requested output" % p)
        # binary tensor data extension, binary output
        hdr = jbody({"inputs": [{"name": "input", "shape": [3, 1, 28, 28], "datatype": "FP32",
                                 "parameters": {"binary_data_size": x3.nbytes}}],
                     "outputs": [{"name": "logits", "parameters": {"binary_data": True}}]})
        st, h, b = s.req(p, "POST", "/v2/models/fashion/infer", hdr + x3.tobytes(),
                         {"Inference-Header-Content-Length": str(len(hdr)), "Content-Type": "application/octet-stream"})
        ok = st == 200 and "inference-header-content-length" in h
        if ok:
            n = int(h["inference-header-content-length"])
            r = json.loads(b[:n])
            out = r["outputs"][0]
            raw = b[n:]
            ok = (out["parameters"]["binary_data_size"] == 120 and len(raw) == 120 and "data" not in out and
                  np.allclose(np.frombuffer(raw, np.float32).reshape(3, 10), ref3, rtol=1e-5, atol=1e-5))
        check(ok, "%s binary infer (binary input and output) matches `edgeinfer run`" % p)
        # binary input, JSON output; and binary_data_output on the request
        hdr = jbody({"inputs": [{"name": "input", "shape": [1, 1, 28, 28], "datatype": "FP32",
                                 "parameters": {"binary_data_size": x1.nbytes}}]})
        st, h, b = s.req(p, "POST", "/v2/models/fashion/infer", hdr + x1.tobytes(),
                         {"Inference-Header-Content-Length": str(len(hdr))})
        check(st == 200 and "inference-header-content-length" not in h and
              np.allclose(np.array(json.loads(b)["outputs"][0]["data"]).reshape(1, 10), ref1, atol=1e-5),
              "%s binary input, JSON output" % p)
        st, h, b = s.req(p, "POST", "/v2/models/fashion/infer",
                         jbody(infer_req(x1, parameters={"binary_data_output": True})))
        n = int(h.get("inference-header-content-length", "0"))
        check(st == 200 and n > 0 and np.allclose(np.frombuffer(b[n:], np.float32).reshape(1, 10), ref1, atol=1e-5),
              "%s JSON input, binary_data_output" % p)
        # the classification extension
        st, _, b = s.req(p, "POST", "/v2/models/fashion/infer",
                         jbody(infer_req(x3, outputs=[{"name": "logits", "parameters": {"classification": 3}}])))
        r = json.loads(b)
        out = r["outputs"][0]
        ok = st == 200 and out["datatype"] == "BYTES" and out["shape"] == [3, 3]
        for i in range(3 if ok else 0):
            best = int(np.argmax(ref3[i]))
            score, idx, label = out["data"][i * 3].split(":", 2)
            ok = ok and int(idx) == best and label == CLASSES[best] and abs(float(score) -
                                                                             softmax(ref3[i])[best]) < 1e-5
        check(ok, "%s classification extension: top-3 BYTES 'score:index:label' per row" % p)
        # 600 KB body over HTTP/2 (large initial windows) and HTTP/1.1
        x = rng.random((8, 1, 28, 28), dtype=np.float32)
        big = jbody(infer_req(x))
        st, _, b = s.req(p, "POST", "/v2/models/fashion/infer", big + b" " * (600000 - len(big)))
        check(st == 200 and len(json.loads(b)["outputs"][0]["data"]) == 80, "%s a 600 KB JSON body" % p)


def test_bad_inputs(s):
    z = np.zeros((1, 1, 28, 28), np.float32)
    cases = [
        ("malformed JSON", b'{"inputs": [', {}, 400),
        ("not an object", b"[1, 2]", {}, 400),
        ("no inputs", b"{}", {}, 400),
        ("wrong shape", jbody({"inputs": [{"name": "input", "shape": [1, 1, 28, 27], "datatype": "FP32",
                                           "data": [0.0] * 756}]}), {}, 400),
        ("data count != shape", jbody({"inputs": [{"name": "input", "shape": [1, 1, 28, 28], "datatype": "FP32",
                                                   "data": [0.0] * 783}]}), {}, 400),
        ("wrong datatype", jbody({"inputs": [{"name": "input", "shape": [1, 1, 28, 28], "datatype": "INT32",
                                              "data": [0] * 784}]}), {}, 400),
        ("unknown datatype", jbody({"inputs": [{"name": "input", "shape": [1, 1, 28, 28], "datatype": "FP31",
                                                "data": [0] * 784}]}), {}, 400),
        ("string in FP32 data", jbody({"inputs": [{"name": "input", "shape": [1, 1, 28, 28], "datatype": "FP32",
                                                   "data": ["x"] * 784}]}), {}, 400),
        ("unknown input", jbody({"inputs": [{"name": "nope", "shape": [1, 1, 28, 28], "datatype": "FP32",
                                             "data": [0.0] * 784}]}), {}, 400),
        ("negative dim", jbody({"inputs": [{"name": "input", "shape": [-1, 1, 28, 28], "datatype": "FP32",
                                            "data": [0.0] * 784}]}), {}, 400),
        ("batch over max_batch_size", jbody(infer_req(np.zeros((9, 1, 28, 28), np.float32))), {}, 400),
        ("unknown output", jbody(infer_req(z, outputs=[{"name": "nope"}])), {}, 400),
        ("bad classification", jbody(infer_req(z, outputs=[{"name": "logits", "parameters":
                                                             {"classification": 0}}])), {}, 400),
        ("bad timeout", jbody(infer_req(z, parameters={"timeout": "soon"})), {}, 400),
    ]
    hdr = jbody({"inputs": [{"name": "input", "shape": [1, 1, 28, 28], "datatype": "FP32",
                             "parameters": {"binary_data_size": 3136}}]})
    ih = {"Inference-Header-Content-Length": str(len(hdr))}
    cases += [
        ("truncated binary data", hdr + z.tobytes()[:3000], ih, 400),
        ("binary data beyond the inputs", hdr + z.tobytes() + b"xx", ih, 400),
        ("binary_data_size without the header", hdr + z.tobytes(), {}, 400),
        ("Inference-Header-Content-Length over the body", hdr, {"Inference-Header-Content-Length": "99999"}, 400),
        ("Inference-Header-Content-Length not a number", hdr, {"Inference-Header-Content-Length": "x1"}, 400),
        ("empty body", b"", {}, 400),
    ]
    for p in PROTOS:
        for what, body, headers, want in cases:
            st, _, b = s.req(p, "POST", "/v2/models/fashion/infer", body, headers)
            try:
                err = json.loads(b)["error"]
            except Exception:
                err = None
            check(st == want and isinstance(err, str) and err, "%s %s: %d %s" % (p, what, st, err))
    still_answers(s, "bad inputs")


def test_limits(s):
    """The server runs with --max-body-bytes 2M --max-json-bytes 1M."""
    # Content-Length over the limit: 413 at once, without sending (or the server reading) the body
    t0 = time.monotonic()
    out = s.raw(b"POST /v2/models/fashion/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 3000000\r\n\r\n", timeout=5)
    resp = split_responses(out)
    check(resp and resp[0][0] == 413 and "error" in json.loads(resp[0][2]) and time.monotonic() - t0 < 3,
          "HTTP/1.1 Content-Length over --max-body-bytes: 413 before the body is sent")
    # chunked, growing over the limit
    s1 = socket.create_connection(("127.0.0.1", s.http), timeout=10)
    s1.sendall(b"POST /v2/models/fashion/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (1 << 20, b" " * (1 << 20))
    got = b""
    try:
        for _ in range(4):
            s1.sendall(chunk)
    except OSError:
        pass
    try:
        while True:
            d = s1.recv(65536)
            if not d:
                break
            got += d
    except OSError:
        pass
    s1.close()
    resp = split_responses(got)
    check(resp and resp[0][0] == 413, "HTTP/1.1 chunked body over --max-body-bytes: 413")
    # Expect: 100-continue with a body over the limit: 413 instead of 100
    out = s.raw(b"POST /v2/models/fashion/infer HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                b"Content-Length: 3000000\r\n\r\n", timeout=5)
    check(out.startswith(b"HTTP/1.1 413"), "Expect: 100-continue over the limit: 413, no 100")
    # HTTP/2 body over the limit
    st, _, b = s.h2("POST", "/v2/models/fashion/infer", b" " * 2500000, tmp=TMP)
    check(st == 413 and "error" in json.loads(b), "HTTP/2 body over --max-body-bytes: 413")
    # JSON over --max-json-bytes (the body itself is under --max-body-bytes)
    for p in PROTOS:
        big = jbody(infer_req(np.zeros((1, 1, 28, 28), np.float32)))
        st, _, b = s.req(p, "POST", "/v2/models/fashion/infer", big + b" " * 1200000)
        check(st == 413 and "max-json-bytes" in json.loads(b)["error"], "%s JSON over --max-json-bytes: 413" % p)
    # a JSON header within the limit, with binary data beyond it: accepted
    z = np.zeros((8, 1, 28, 28), np.float32)
    hdr = jbody({"inputs": [{"name": "input", "shape": [8, 1, 28, 28], "datatype": "FP32",
                             "parameters": {"binary_data_size": z.nbytes}}]})
    st, _, _ = s.h1("POST", "/v2/models/fashion/infer", hdr + z.tobytes(),
                    {"Inference-Header-Content-Length": str(len(hdr))})
    check(st == 200, "binary data counts against --max-body-bytes only")
    still_answers(s, "limits")


def test_http1(s):
    z = np.zeros((1, 1, 28, 28), np.float32)
    body = jbody(infer_req(z))
    # Expect: 100-continue
    c = socket.create_connection(("127.0.0.1", s.http), timeout=10)
    c.sendall(b"POST /v2/models/fashion/infer HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body))
    first = c.recv(100)
    c.sendall(body)
    rest = b""
    while b"}]}" not in rest:
        d = c.recv(65536)
        if not d:
            break
        rest += d
    c.close()
    check(first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n") and b"HTTP/1.1 200" in first + rest,
          "Expect: 100-continue: 100 Continue, then the response")
    # chunked request body
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 1000]), body[i:i + 1000]) for i in range(0, len(body), 1000))
    out = s.raw(b"POST /v2/models/fashion/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                b"Connection: close\r\n\r\n" + chunks + b"0\r\n\r\n")
    resp = split_responses(out)
    check(resp and resp[0][0] == 200 and len(json.loads(resp[0][2])["outputs"][0]["data"]) == 10,
          "chunked request body")
    # pipelining: three requests in one write, answered in order
    out = s.raw(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n" +
                b"POST /v2/models/fashion/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body +
                b"GET /v2/models/fashion/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    resp = split_responses(out)
    check(len(resp) == 3 and [r[0] for r in resp] == [200, 200, 200] and json.loads(resp[0][2]) == {"live": True}
          and "outputs" in json.loads(resp[1][2]) and json.loads(resp[2][2])["ready"] is True,
          "pipelined requests answered in order")
    # keep-alive: several requests on one connection
    c = s.conn()
    codes = [s.h1("POST", "/v2/models/fashion/infer", body, conn=c)[0] for _ in range(5)]
    c.close()
    check(codes == [200] * 5, "keep-alive: 5 requests on one connection")
    # HTTP/1.0 without keep-alive: the server closes after the response
    out = s.raw(b"GET /v2/health/ready HTTP/1.0\r\n\r\n")
    check(out.startswith(b"HTTP/1.1 200") and out.endswith(b'{"ready": true}'), "HTTP/1.0 request")
    # garbage
    out = s.raw(b"\x00\x01\x02 garbage\r\n\r\n")
    check(out.startswith(b"HTTP/1.1 400"), "garbage instead of a request line: 400")
    out = s.raw(b"GET /v2/models/%zz HTTP/1.1\r\nHost: x\r\n\r\n")
    check(out.startswith(b"HTTP/1.1 400"), "bad percent-encoding: 400")
    out = s.raw(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n")
    check(out.startswith(b"HTTP/1.1 431"), "headers over the limit: 431")
    still_answers(s, "HTTP/1.1 protocol checks")


def photo_ref(path):
    ref = run_reference(EXE, MODEL, path, TMP, ["--grey", "--resize", "28", "--crop", "28", "--mean", "0,0,0",
                                               "--std", "1,1,1", "--scale", str(1.0 / 255)])
    return softmax(ref["logits"].reshape(-1))


def test_classify(s):
    imgs, labels = fashion_test_images(4)
    png = png_grey(imgs[0])
    ppath = os.path.join(TMP, "img0.png")
    open(ppath, "wb").write(png)
    prob = photo_ref(ppath)
    order = np.argsort(-prob, kind="stable")
    for p in PROTOS:
        for q, k in (("", 5), ("?k=3", 3)):
            st, _, b = s.req(p, "POST", "/v2/models/fashion/classify" + q, png, {"Content-Type": "image/png"})
            r = json.loads(b)
            cl = r.get("classes", [])
            ok = st == 200 and r["model_name"] == "fashion" and r["model_version"] == "1" and len(cl) == k
            for i in range(k if ok else 0):
                ok = ok and cl[i]["index"] == order[i] and cl[i]["label"] == CLASSES[order[i]] and \
                    abs(cl[i]["score"] - prob[order[i]]) < 1e-5
            check(ok, "%s classify PNG%s: top-%d index/label/score as `edgeinfer run`" % (p, q, k))
    jpg = "/usr/share/doc/opencv-doc/examples/data/starry_night.jpg"
    if os.path.exists(jpg):
        prob = photo_ref(jpg)
        st, _, b = s.h1("POST", "/v2/models/fashion/versions/1/classify?k=2", open(jpg, "rb").read(),
                        {"Content-Type": "image/jpeg"})
        cl = json.loads(b).get("classes", [])
        check(st == 200 and len(cl) == 2 and cl[0]["index"] == int(np.argmax(prob)) and
              abs(cl[0]["score"] - prob.max()) < 1e-5, "classify JPEG on /versions/1 as `edgeinfer run`")
    bad = [
        ("truncated PNG", png[:len(png) // 2], "image/png", 400),
        ("text as a PNG", b"this is not an image", "image/png", (400, 415)),
        ("PNG as a JPEG", png, "image/jpeg", None),  # decoded by magic bytes or refused: never a crash
        ("text/plain", png, "text/plain", 415),
        ("no content type", png, None, 415),
        ("empty body", b"", "image/png", 400),
    ]
    for p in PROTOS:
        for what, body, ct, want in bad:
            st, _, b = s.req(p, "POST", "/v2/models/fashion/classify", body, {"Content-Type": ct} if ct else {})
            if want is None:
                want = (200, 400, 415)
            ok = st in (want if isinstance(want, tuple) else (want,)) and (st == 200 or "error" in json.loads(b))
            check(ok, "%s classify %s: %d" % (p, what, st))
        for q in ("?k=0", "?k=x", "?k=100000"):
            st, _, b = s.req(p, "POST", "/v2/models/fashion/classify" + q, png, {"Content-Type": "image/png"})
            check(st == 400 and "error" in json.loads(b), "%s classify %s: 400" % (p, q))
        st, _, b = s.req(p, "POST", "/v2/models/nope/classify", png, {"Content-Type": "image/png"})
        check(st == 404, "%s classify on an unknown model: 404" % p)
    still_answers(s, "classify")


def test_json_memory(exe):
    s = Server(exe, REPO, TMP, "--max-json-memory", "4M")
    try:
        n = 400000  # 800 KB of "0," costs far more than 4 MB of jansson memory
        body = b'{"inputs": [{"name": "input", "shape": [%d], "datatype": "FP32", "data": [' % n + \
            b"0," * (n - 1) + b"0]}]}"
        st, _, b = s.h1("POST", "/v2/models/fashion/infer", body)
        check(st == 503 and "JSON parsing memory" in json.loads(b)["error"],
              "a JSON body over --max-json-memory: 503 (%d %s)" % (st, b[:100]))
        st, _, b = s.h1("POST", "/v2/models/fashion/infer", jbody(infer_req(np.zeros((1, 1, 28, 28), np.float32))))
        check(st == 200, "the JSON memory is given back: the next request parses")
    finally:
        check(s.stop() == 0, "JSON-memory server: exit 0 on SIGTERM")


def test_slow_clients(exe):
    s = Server(exe, REPO, TMP, "--header-timeout-ms", "600", "--idle-timeout-secs", "1")
    try:
        # trickling header bytes: cut off at the header-time bound with 408
        c = socket.create_connection(("127.0.0.1", s.http), timeout=10)
        c.sendall(b"GET /v2/health/live HTTP/1.1\r\n")
        t0 = time.monotonic()
        got = b""
        try:
            for _ in range(100):  # up to 5 s
                c.sendall(b"X-Slow: 1\r\n")
                time.sleep(0.05)
                c.setblocking(False)
                try:
                    d = c.recv(4096)
                    got += d
                    if not d:
                        break
                except BlockingIOError:
                    pass
                finally:
                    c.setblocking(True)
        except OSError:
            pass
        elapsed = time.monotonic() - t0
        c.close()
        check(got.startswith(b"HTTP/1.1 408") and 0.5 < elapsed < 4,
              "a client trickling header bytes is cut off (408 after %.2f s)" % elapsed)
        # HTTP/2: a HEADERS frame without END_HEADERS, then CONTINUATION frames trickling (a few: nghttp2 itself
        # refuses many): GOAWAY at the header-time bound
        def frame(kind, flags, sid, payload):
            return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + sid.to_bytes(4, "big") + payload
        c = socket.create_connection(("127.0.0.1", s.http), timeout=10)
        c.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b"") + frame(1, 0, 1, b"\x82\x86\x84"))
        t0 = time.monotonic()
        got, closed = b"", False
        try:
            for i in range(100):  # up to 5 s
                if i % 3 == 0 and i < 15:
                    c.sendall(frame(9, 0, 1, b"\x00\x01x\x01y"))
                time.sleep(0.05)
                c.setblocking(False)
                try:
                    d = c.recv(65536)
                    got += d
                    if not d:
                        closed = True
                        break
                except BlockingIOError:
                    pass
                finally:
                    c.setblocking(True)
        except OSError:
            closed = True
        elapsed = time.monotonic() - t0
        c.close()
        goaway = any(got[i + 3] == 7 for i in range(len(got) - 8) if got[i:i + 3] == b"\x00\x00\x08")
        check(closed and goaway and elapsed < 4.5 and s.wait_log("HTTP/2 request headers not received", 2),
              "HTTP/2 headers trickling in CONTINUATION frames: GOAWAY and close after %.2f s" % elapsed)
        # an idle keep-alive connection is closed after --idle-timeout-secs
        c = socket.create_connection(("127.0.0.1", s.http), timeout=5)
        c.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        t0 = time.monotonic()
        got = b""
        while True:
            d = c.recv(4096)
            if not d:
                break
            got += d
        elapsed = time.monotonic() - t0
        c.close()
        check(got.startswith(b"HTTP/1.1 200") and 0.8 < elapsed < 5, "idle keep-alive connection closed after %.2f s"
              % elapsed)
        # a connection that never sends anything: closed at the header-time bound
        c = socket.create_connection(("127.0.0.1", s.http), timeout=8)
        t0 = time.monotonic()
        d = c.recv(10)
        elapsed = time.monotonic() - t0
        c.close()
        check(d == b"" and elapsed < 4, "a silent connection is closed (%.2f s)" % elapsed)
        still_answers(s, "slow clients")
    finally:
        check(s.stop() == 0, "slow-client server: exit 0 on SIGTERM")


def test_connection_limit(exe):
    s = Server(exe, REPO, TMP, "--max-connections", "3")
    try:
        # three connections held open (in the middle of a request); the 4th is closed at once, without an answer
        held = [socket.create_connection(("127.0.0.1", s.http), timeout=10) for _ in range(3)]
        for h in held:
            h.sendall(b"GET /v2/health/live HTTP/1.1\r\n")
        time.sleep(0.3)
        extra = socket.create_connection(("127.0.0.1", s.http), timeout=10)
        t0 = time.monotonic()
        try:
            d = extra.recv(10)
        except ConnectionResetError:
            d = b""
        elapsed = time.monotonic() - t0
        extra.close()
        check(d == b"" and elapsed < 3 and s.wait_log("refused", 5),
              "a connection beyond --max-connections is closed at once and logged (%.2f s)" % elapsed)
        # the held ones still work
        held[0].sendall(b"Host: x\r\nConnection: close\r\n\r\n")
        got = b""
        while True:
            d = held[0].recv(4096)
            if not d:
                break
            got += d
        check(got.startswith(b"HTTP/1.1 200"), "a connection within the limit is served")
        for h in held:
            h.close()
        t0 = time.monotonic()
        while s.h1("GET", "/v2/health/live")[0] != 200 and time.monotonic() - t0 < 5:
            time.sleep(0.05)
        still_answers(s, "connection limit")
    finally:
        check(s.stop() == 0, "connection-limit server: exit 0 on SIGTERM")


def post_async(s, body, results, key, timeout=30):
    def go():
        try:
            results[key] = s.h1("POST", "/v2/models/fashion/infer", body)[:3:2]
        except Exception as e:  # noqa: BLE001
            results[key] = (None, str(e).encode())
    t = threading.Thread(target=go)
    t.start()
    return t


def test_overload(exe):
    s = Server(exe, REPO, TMP, "--test-delay-ms", "1500", "--max-queue", "1")
    try:
        z = jbody(infer_req(np.zeros((1, 1, 28, 28), np.float32)))
        # batches of 8 (max_batch_size): two of them never share a run, so the queue state does not depend on timing
        z8 = jbody(infer_req(np.zeros((8, 1, 28, 28), np.float32)))
        res = {}
        threads = [post_async(s, z8, res, i) for i in range(6)]
        for t in threads:
            t.join()
        codes = sorted(res[i][0] for i in range(6))
        n503 = codes.count(503)
        errs = [json.loads(res[i][1]).get("error", "") for i in range(6) if res[i][0] == 503]
        check(n503 >= 3 and codes.count(200) >= 1 and set(codes) <= {200, 503} and all(errs),
              "queue full (--max-queue 1): 503 with an error body (%s)" % codes)
        # deadline: a request queued behind a 1.5 s run (a full batch: it cannot join) with a 200 ms timeout gets
        # 504 and never runs
        res = {}
        t1 = post_async(s, z8, res, "slow")
        time.sleep(0.5)  # the first request is running (the model was idle: it starts at once)
        try:
            st, _, b = s.h1("POST", "/v2/models/fashion/infer",
                            jbody(infer_req(np.zeros((1, 1, 28, 28), np.float32), parameters={"timeout": 200000})),
                            conn=s.conn(timeout=20))
        except OSError as e:
            st, b = None, json.dumps({"error": "no answer: %s" % e}).encode()
        t1.join()
        check(st == 504 and "error" in json.loads(b) and res["slow"][0] == 200,
              "parameters.timeout passes while queued: 504 (%s), the running request 200" % st)
        # a client that goes away while its request is queued or running
        res = {}
        t1 = post_async(s, z8, res, "run")
        time.sleep(0.5)
        c = socket.create_connection(("127.0.0.1", s.http), timeout=5)
        c.sendall(b"POST /v2/models/fashion/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(z) + z)
        time.sleep(0.3)
        c.close()
        t1.join()
        check(res["run"][0] == 200, "a request next to a cancelled one completes")
        s.wait_log("status=499", 5)
        check("status=499" in s.log_text(), "the cancelled request is logged (499)")
        # HTTP/2: curl gives up while its request waits
        import subprocess
        subprocess.run(["curl", "-s", "--http2-prior-knowledge", "--max-time", "0.2", "-d", z.decode(),
                        "http://127.0.0.1:%d/v2/models/fashion/infer" % s.http], stdout=subprocess.DEVNULL)
        time.sleep(1.6)
        st, _, b = s.h2("POST", "/v2/models/fashion/infer", z, tmp=TMP)
        check(st == 200, "HTTP/2 after a stream abandoned mid-request: the server still answers")
        st, _, b = s.h1("GET", "/v2/models/fashion/stats")
        ms = json.loads(b)["model_stats"][0]
        check(ms["inference_stats"]["success"]["count"] >= 3, "stats count the successes (%s)" %
              ms["inference_stats"]["success"])
        still_answers(s, "overload")
    finally:
        check(s.stop() == 0, "overload server: exit 0 on SIGTERM")


def test_sigterm(exe):
    s = Server(exe, REPO, TMP, "--test-delay-ms", "3000")
    z = jbody(infer_req(np.zeros((1, 1, 28, 28), np.float32)))
    res = {}
    t = post_async(s, z, res, "inflight")

    def h2_inflight():
        res["h2"] = s.h2("POST", "/v2/models/fashion/infer", z, tmp=TMP)
    t2 = threading.Thread(target=h2_inflight)
    t2.start()
    time.sleep(1.0)  # both requests have arrived and run (the HTTP/2 one queued behind, or batched with, the other)
    # a second connection in the middle of a request when the signal comes: answered 503 (not ready), then closed
    c = socket.create_connection(("127.0.0.1", s.http), timeout=10)
    c.sendall(b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n")
    time.sleep(0.3)
    t0 = time.monotonic()
    s.p.send_signal(15)
    check(s.wait_log("shutting down", 5), "SIGTERM: the server logs its shutdown")
    c.sendall(b"\r\n")
    got = b""
    while True:
        d = c.recv(4096)
        if not d:
            break
        got += d
    c.close()
    resp = split_responses(got)
    check(resp and resp[0][0] == 503 and resp[0][1].get("connection") == "close",
          "readiness during shutdown: 503 with Connection: close")
    try:
        socket.create_connection(("127.0.0.1", s.http), timeout=2).close()
        refused = False
    except OSError:
        refused = True
    check(refused, "no new connections after SIGTERM")
    t.join()
    t2.join()
    check(res["inflight"][0] == 200 and "outputs" in json.loads(res["inflight"][1]),
          "the HTTP/1.1 request in flight at SIGTERM completes (200)")
    check(res["h2"][0] == 200 and "outputs" in json.loads(res["h2"][2]),
          "the HTTP/2 request in flight at SIGTERM completes (200) after GOAWAY")
    rc = s.p.wait(30)
    check(rc == 0 and time.monotonic() - t0 < 20, "exit 0 after SIGTERM (%s, %.2f s)" % (rc, time.monotonic() - t0))
    s.log.close()
    # access log lines
    lines = [l for l in s.log_text().splitlines() if "/v2/models/fashion/infer" in l]
    check(lines and "model=fashion" in lines[0] and "version=1" in lines[0] and "status=200" in lines[0] and
          "ms" in lines[0], "access log line: %s" % (lines[0] if lines else None))


def main():
    print("temporary directory: %s" % TMP)
    s = Server(EXE, REPO, TMP, "--max-body-bytes", "2M", "--max-json-bytes", "1M")
    try:
        test_endpoints(s)
        test_infer(s)
        test_bad_inputs(s)
        test_limits(s)
        test_http1(s)
        test_classify(s)
    finally:
        rc = s.stop()
        check(rc == 0, "main server: exit 0 on SIGTERM (%s)" % rc)
        if FAILURES:
            print("---- server log (tail) ----\n" + "\n".join(s.log_text().splitlines()[-40:]))
    test_json_memory(EXE)
    test_slow_clients(EXE)
    test_connection_limit(EXE)
    test_overload(EXE)
    test_sigterm(EXE)
    done()


if __name__ == "__main__":
    main()
