#!/usr/bin/python3
"""tests/server/test_grpc.py: `edgeinfer serve`'s gRPC service (inference.GRPCInferenceService) end to end, with
Debian's python3-grpcio and stubs generated from proto/grpc_service.proto by python3-grpc-tools at test time
(into the build directory, never committed). Raw HTTP/2 details that grpcio hides (trailers-only responses and
their content-type, grpc-timeout units, te, framing) are checked with nghttp (nghttp2-client).

usage: test_grpc.py EDGEINFER SOURCE_DIR WORK_DIR

Two servers, both on port 0 with --port-file: one plain (every RPC, typed and raw contents against
`edgeinfer run`, 600 KB and 10 MB tensors, classification, every error), one with --test-delay-ms (deadline
while queued, cancel while queued, queue full) whose executor sleeps before each run, so that requests wait in
the queue for a known time.
"""
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

EDGEINFER, SRC, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
PREFIX = "/inference.GRPCInferenceService/"
BIG = 64 << 20
failures = []


def check(cond, what):
    if cond:
        print("ok   " + what)
    else:
        print("FAIL " + what)
        failures.append(what)


# ---- stubs from our .proto (build directory) ----
STUBS = os.path.join(WORK, "grpc-stubs")
os.makedirs(STUBS, exist_ok=True)
subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I" + os.path.join(SRC, "proto"),
                "--python_out=" + STUBS, "--grpc_python_out=" + STUBS,
                os.path.join(SRC, "proto", "grpc_service.proto")], check=True)
sys.path.insert(0, STUBS)
import grpc  # noqa: E402
import grpc_service_pb2 as pb  # noqa: E402
import grpc_service_pb2_grpc as pbg  # noqa: E402


# ---- test models (onnx.helper, build directory) ----
def make_models(d):
    import onnx
    from onnx import TensorProto, helper

    def save(graph, path):
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="test_grpc")
        m.ir_version = 7
        onnx.checker.check_model(m)
        onnx.save(m, path)

    # x + 1 over a [1, n] float tensor: 600 KB and 10 MiB inputs
    for name, n in (("add_600k", 153600), ("add_10m", 2621440)):
        one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
        g = helper.make_graph([helper.make_node("Add", ["x", "one"], ["y"])], name,
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])], [one])
        save(g, os.path.join(d, name + ".onnx"))
    # typed inputs, each cast to float
    types = [("i8", TensorProto.INT8), ("i32", TensorProto.INT32), ("i64", TensorProto.INT64),
             ("u8", TensorProto.UINT8), ("b", TensorProto.BOOL)]
    nodes = [helper.make_node("Cast", [n], ["f_" + n], to=TensorProto.FLOAT) for n, _ in types]
    g = helper.make_graph(nodes, "types", [helper.make_tensor_value_info(n, t, [4]) for n, t in types],
                          [helper.make_tensor_value_info("f_" + n, TensorProto.FLOAT, [4]) for n, _ in types])
    save(g, os.path.join(d, "types.onnx"))


def make_repo(root, delay_queue=None):
    models = os.path.join(WORK, "grpc-models")
    os.makedirs(models, exist_ok=True)
    make_models(models)
    src = {"fashion_mnist": os.path.join(SRC, "models", "fashion_mnist.onnx"),
           "add_600k": os.path.join(models, "add_600k.onnx"), "add_10m": os.path.join(models, "add_10m.onnx"),
           "types": os.path.join(models, "types.onnx")}
    for name, path in src.items():
        os.makedirs(os.path.join(root, name, "1"))
        shutil.copy(path, os.path.join(root, name, "1", "model.onnx"))
    labels = os.path.join(SRC, "models", "fashion_mnist.json")
    cfg = {"max_batch_size": 0} if delay_queue is not None else {}
    if os.path.exists(labels):
        with open(labels) as f:
            meta = json.load(f)
        names = meta.get("classes") if isinstance(meta, dict) else None
        if isinstance(names, list):
            with open(os.path.join(root, "fashion_mnist", "labels.txt"), "w") as f:
                f.write("\n".join(str(n) for n in names) + "\n")
            cfg["edgeinfer"] = {"labels": "labels.txt"}
    if delay_queue is not None:
        cfg.setdefault("edgeinfer", {})["max_queue"] = delay_queue
    with open(os.path.join(root, "fashion_mnist", "config.json"), "w") as f:
        json.dump(cfg, f)


class Server:
    def __init__(self, name, extra=(), delay_queue=None):
        os.makedirs(WORK, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix="ei-grpc-" + name + "-", dir=WORK)
        self.repo = os.path.join(self.dir, "repo")
        os.makedirs(self.repo)
        make_repo(self.repo, delay_queue)
        pf = os.path.join(self.dir, "ports.json")
        self.log = open(os.path.join(self.dir, "server.log"), "w")
        cmd = (os.environ.get("EI_RUN", "").split() + [EDGEINFER, "serve", "--repo", self.repo, "--http-port", "0",
                                                        "--grpc-port", "0", "--port-file", pf] + list(extra))
        self.p = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        t0 = time.time()
        ports = None
        while ports is None:  # the server writes the file atomically once both ports listen
            if self.p.poll() is not None or time.time() - t0 > 120:
                self.stop()
                sys.exit("server did not start:\n" + open(os.path.join(self.dir, "server.log")).read())
            try:
                with open(pf) as f:
                    ports = json.load(f)
            except (OSError, ValueError):
                time.sleep(0.05)
        self.grpc_port = next(v for k, v in ports.items() if "grpc" in k)
        self.addr = "127.0.0.1:%d" % self.grpc_port
        opts = [("grpc.max_receive_message_length", BIG), ("grpc.max_send_message_length", BIG)]
        self.ch = grpc.insecure_channel(self.addr, options=opts)
        self.stub = pbg.GRPCInferenceServiceStub(self.ch)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                rc = self.p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.p.kill()
                rc = self.p.wait()
        else:
            rc = self.p.returncode
        self.log.close()
        if rc == 0 and not failures:
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            print("server %s left in %s (server.log)" % (self.p.args[1:3], self.dir))
        return rc


def code_of(fn, *a, **kw):
    try:
        fn(*a, **kw)
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details()


def fm_request(x, raw=True, name="fashion_mnist", dtype="FP32", shape=(1, 1, 28, 28)):
    r = pb.ModelInferRequest(model_name=name, id="req-1")
    t = r.inputs.add(name="input", datatype=dtype, shape=list(shape))
    if raw:
        r.raw_input_contents.append(x.tobytes())
    else:
        t.contents.fp32_contents.extend(x.ravel().tolist())
    return r


def out_array(resp, i=0):
    o = resp.outputs[i]
    dt = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64, "INT32": np.int32}[o.datatype]
    return np.frombuffer(resp.raw_output_contents[i], dt).reshape(list(o.shape))


def bytes_elems(b):
    out, off = [], 0
    while off < len(b):
        n = struct.unpack_from("<I", b, off)[0]
        out.append(b[off + 4:off + 4 + n].decode())
        off += 4 + n
    return out


def nghttp(port, path, body, headers=(), timeout=30):
    """One request with nghttp -v; returns (response header block text, stdout)."""
    bf = tempfile.NamedTemporaryFile(dir=WORK, delete=False)
    bf.write(body)
    bf.close()
    cmd = ["nghttp", "-v", "-n", "-t", str(timeout), "-d", bf.name, "-H", ":method: POST"]
    base = {"content-type": "application/grpc", "te": "trailers"}
    for h in headers:
        k, v = h.split(":", 1)
        base[k.strip()] = v.strip()
    for k, v in base.items():
        if v is not None and v != "":
            cmd += ["-H", "%s: %s" % (k, v)]
    cmd.append("http://127.0.0.1:%d%s" % (port, path))
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 30).stdout
    os.unlink(bf.name)
    return out


def frame(b, flag=0):
    return bytes([flag]) + struct.pack(">I", len(b)) + b


def recv_headers(out):
    """The HEADERS frames nghttp received, in order: {"end_stream": bool, "h": ["name: value", ...]}. nghttp -v
    prints a frame's header fields ("recv (stream_id=N) name: value") before its "recv HEADERS frame" line."""
    frames, pending = [], []
    for line in out.splitlines():
        m = re.search(r"\] recv \(stream_id=\d+\) (.*)$", line)
        if m:
            pending.append(m.group(1))
            continue
        m = re.search(r"\] recv HEADERS frame <.*flags=0x([0-9a-fA-F]+)", line)
        if m:
            frames.append({"end_stream": bool(int(m.group(1), 16) & 1), "h": pending})
            pending = []
    return frames


def hval(frames, name):
    for f in frames:
        for h in f["h"]:
            if h.startswith(name + ": "):
                return h[len(name) + 2:]
    return None


def main():
    rng = np.random.default_rng(5)
    s = Server("plain")
    try:
        st = s.stub
        # ---- health and metadata ----
        check(st.ServerLive(pb.ServerLiveRequest()).live, "ServerLive: live")
        check(st.ServerReady(pb.ServerReadyRequest()).ready, "ServerReady: ready")
        check(st.ModelReady(pb.ModelReadyRequest(name="fashion_mnist")).ready, "ModelReady fashion_mnist: ready")
        check(st.ModelReady(pb.ModelReadyRequest(name="fashion_mnist", version="1")).ready, "ModelReady version 1")
        check(not st.ModelReady(pb.ModelReadyRequest(name="no_such_model")).ready, "ModelReady unknown: not ready")
        md = st.ServerMetadata(pb.ServerMetadataRequest())
        check(md.name != "" and md.version != "" and "classification" in md.extensions,
              "ServerMetadata: name %r version %r extensions %s" % (md.name, md.version, list(md.extensions)))
        mm = st.ModelMetadata(pb.ModelMetadataRequest(name="fashion_mnist"))
        check(mm.name == "fashion_mnist" and mm.platform == "onnx_onnxv1" and list(mm.versions) == ["1"] and
              mm.inputs[0].datatype == "FP32" and list(mm.inputs[0].shape)[1:] == [1, 28, 28] and
              len(mm.outputs) == 1, "ModelMetadata: %s" % str(mm).replace("\n", " "))
        in_name, out_name = mm.inputs[0].name, mm.outputs[0].name
        check(code_of(st.ModelMetadata, pb.ModelMetadataRequest(name="nope"))[0] == grpc.StatusCode.NOT_FOUND,
              "ModelMetadata unknown model: NOT_FOUND")
        check(code_of(st.ModelMetadata, pb.ModelMetadataRequest(name="fashion_mnist", version="7"))[0] ==
              grpc.StatusCode.NOT_FOUND, "ModelMetadata unknown version: NOT_FOUND")
        ix = st.RepositoryIndex(pb.RepositoryIndexRequest(ready=True))
        names = sorted(m.name for m in ix.models)
        check(names == ["add_10m", "add_600k", "fashion_mnist", "types"] and
              all(m.state == "READY" and m.version == "1" for m in ix.models), "RepositoryIndex: %s" % names)
        c_, d_ = code_of(st.RepositoryModelLoad, pb.RepositoryModelLoadRequest(model_name="fashion_mnist"))
        check(c_ == grpc.StatusCode.UNIMPLEMENTED and "explicit" in (d_ or ""),
              "RepositoryModelLoad in poll mode: UNIMPLEMENTED naming --model-control explicit (%s)" % d_)
        check(code_of(st.RepositoryModelLoad, pb.RepositoryModelLoadRequest(model_name="nope"))[0] ==
              grpc.StatusCode.NOT_FOUND, "RepositoryModelLoad unknown: NOT_FOUND")
        check(code_of(st.RepositoryModelUnload, pb.RepositoryModelUnloadRequest(model_name="fashion_mnist"))[0] ==
              grpc.StatusCode.UNIMPLEMENTED, "RepositoryModelUnload in poll mode: UNIMPLEMENTED")
        check(code_of(st.ModelConfig, pb.ModelConfigRequest(name="fashion_mnist"))[0] ==
              grpc.StatusCode.UNIMPLEMENTED, "ModelConfig: UNIMPLEMENTED")
        check(code_of(lambda: list(st.ModelStreamInfer(iter([fm_request(np.zeros((1, 1, 28, 28), np.float32))]))))[0]
              == grpc.StatusCode.UNIMPLEMENTED, "ModelStreamInfer: UNIMPLEMENTED")
        nope = s.ch.unary_unary(PREFIX + "NoSuchRpc", request_serializer=None, response_deserializer=None)
        check(code_of(nope, b"")[0] == grpc.StatusCode.UNIMPLEMENTED, "unknown method: UNIMPLEMENTED")

        # ---- ModelInfer against `edgeinfer run` ----
        x = rng.random((1, 1, 28, 28), dtype=np.float32)
        np.save(os.path.join(s.dir, "x.npy"), x)
        outdir = os.path.join(s.dir, "run-out")
        subprocess.run(os.environ.get("EI_RUN", "").split() +
                       [EDGEINFER, "run", os.path.join(SRC, "models", "fashion_mnist.onnx"), "--input",
                        os.path.join(s.dir, "x.npy"), "--save-outputs", outdir], check=True, capture_output=True)
        ref = np.load(os.path.join(outdir, [f for f in os.listdir(outdir) if f.endswith(".npy")][0]))
        r = fm_request(x, raw=True)
        r.inputs[0].name = in_name
        resp = st.ModelInfer(r)
        got = out_array(resp)
        check(resp.model_name == "fashion_mnist" and resp.model_version == "1" and resp.id == "req-1" and
              resp.outputs[0].name == out_name and len(resp.raw_output_contents) == 1,
              "ModelInfer raw: model_name, model_version, id, one output in raw_output_contents")
        check(got.shape == ref.shape and np.allclose(got, ref, rtol=1e-5, atol=1e-6),
              "ModelInfer raw_input_contents == edgeinfer run (max diff %g)" %
              (float(np.abs(got - ref).max()) if got.shape == ref.shape else -1))
        r = fm_request(x, raw=False)
        r.inputs[0].name = in_name
        got2 = out_array(st.ModelInfer(r))
        check(np.array_equal(got, got2), "ModelInfer fp32_contents == raw_input_contents")
        # classification extension
        r = fm_request(x)
        r.inputs[0].name = in_name
        r.outputs.add(name=out_name).parameters["classification"].int64_param = 3
        resp = st.ModelInfer(r)
        o = resp.outputs[0]
        cls = bytes_elems(resp.raw_output_contents[0])
        top = list(np.argsort(-ref.ravel(), kind="stable")[:3])
        e = np.exp(ref.ravel().astype(np.float64) - ref.max())
        sm = e / e.sum()  # the score is the softmax probability, as /classify
        with open(os.path.join(SRC, "models", "fashion_mnist.json")) as f:
            classes = json.load(f)["classes"]
        check(o.datatype == "BYTES" and list(o.shape)[-1] == 3 and [int(c.split(":")[1]) for c in cls] == top and
              abs(float(cls[0].split(":")[0]) - float(sm[top[0]])) < 1e-5 and
              all(c.split(":", 2)[2] == classes[i] for c, i in zip(cls, top)),
              "classification 3: %s (top %s)" % (cls, top))

        # ---- typed contents of every integer kind ----
        r = pb.ModelInferRequest(model_name="types")
        vals = {"i8": [-128, -1, 0, 127], "i32": [-2 ** 31, -5, 7, 2 ** 31 - 1], "i64": [-2 ** 40, -1, 3, 2 ** 40],
                "u8": [0, 1, 200, 255], "b": [True, False, False, True]}
        for n, dt, field in (("i8", "INT8", "int_contents"), ("i32", "INT32", "int_contents"),
                             ("i64", "INT64", "int64_contents"), ("u8", "UINT8", "uint_contents"),
                             ("b", "BOOL", "bool_contents")):
            t = r.inputs.add(name=n, datatype=dt, shape=[4])
            getattr(t.contents, field).extend(vals[n])
        code, det = code_of(st.ModelInfer, r)
        if code == grpc.StatusCode.OK:
            resp = st.ModelInfer(r)
            outs = {o.name: np.frombuffer(resp.raw_output_contents[i], np.float32) for i, o in enumerate(resp.outputs)}
            check(all(np.array_equal(outs["f_" + n], np.array(vals[n], np.float64).astype(np.float32)) for n in vals),
                  "typed int_contents/int64_contents/uint_contents/bool_contents converted")
        else:
            check(False, "types model: %s %s" % (code, det))
        r.inputs[0].contents.int_contents[0] = 128
        code, det = code_of(st.ModelInfer, r)
        check(code == grpc.StatusCode.INVALID_ARGUMENT and "range" in det, "INT8 value 128: INVALID_ARGUMENT (%s)" % det)

        # ---- large tensors ----
        for name, n in (("add_600k", 153600), ("add_10m", 2621440)):
            v = rng.standard_normal((1, n)).astype(np.float32)
            r = pb.ModelInferRequest(model_name=name)
            r.inputs.add(name="x", datatype="FP32", shape=[1, n])
            r.raw_input_contents.append(v.tobytes())
            t0 = time.time()
            resp = st.ModelInfer(r, timeout=120)
            dt = time.time() - t0
            got = out_array(resp)
            check(got.shape == (1, n) and np.array_equal(got, v + np.float32(1)),
                  "%s: %d-byte tensor in and out, correct (%.0f ms)" % (name, n * 4, dt * 1000))
        v = rng.standard_normal((1, 153600)).astype(np.float32)
        r = pb.ModelInferRequest(model_name="add_600k")
        r.inputs.add(name="x", datatype="FP32", shape=[1, 153600]).contents.fp32_contents.extend(v.ravel().tolist())
        check(np.array_equal(out_array(st.ModelInfer(r)), v + np.float32(1)), "add_600k with fp32_contents")

        # ---- errors ----
        z = np.zeros((1, 1, 28, 28), np.float32)
        def infer_code(req, **kw):
            return code_of(st.ModelInfer, req, **kw)
        r = fm_request(z, name="no_such_model")
        check(infer_code(r)[0] == grpc.StatusCode.NOT_FOUND, "unknown model: NOT_FOUND")
        r = fm_request(z)
        r.model_version = "9"
        check(infer_code(r)[0] == grpc.StatusCode.NOT_FOUND, "unknown version: NOT_FOUND")
        r = fm_request(np.zeros((1, 1, 28, 27), np.float32), shape=(1, 1, 28, 27))
        r.inputs[0].name = in_name
        c, d = infer_code(r)
        check(c == grpc.StatusCode.INVALID_ARGUMENT, "wrong shape: INVALID_ARGUMENT (%s)" % d)
        r = fm_request(np.zeros((1, 1, 28, 28), np.int32), dtype="INT32")
        r.inputs[0].name = in_name
        c, d = infer_code(r)
        check(c == grpc.StatusCode.INVALID_ARGUMENT, "wrong datatype: INVALID_ARGUMENT (%s)" % d)
        r = fm_request(z)
        r.raw_input_contents[0] = r.raw_input_contents[0][:-4]
        c, d = infer_code(r)
        check(c == grpc.StatusCode.INVALID_ARGUMENT, "raw contents 4 bytes short: INVALID_ARGUMENT (%s)" % d)
        r = fm_request(z)
        r.raw_input_contents.append(b"1234")
        c, d = infer_code(r)
        check(c == grpc.StatusCode.INVALID_ARGUMENT, "2 raw_input_contents for 1 input: INVALID_ARGUMENT (%s)" % d)
        r = fm_request(z, raw=False)
        del r.inputs[0].contents.fp32_contents[-1]
        c, d = infer_code(r)
        check(c == grpc.StatusCode.INVALID_ARGUMENT, "783 fp32_contents for 784: INVALID_ARGUMENT (%s)" % d)
        raw_infer = s.ch.unary_unary(PREFIX + "ModelInfer", request_serializer=None, response_deserializer=None)
        for bad in (b"\xff\xff\xff", b"\x0a\x05ab", b"\x2a\x03\x0a\x05a"):
            c, d = code_of(raw_infer, bad)
            check(c == grpc.StatusCode.INVALID_ARGUMENT, "bad protobuf %r: INVALID_ARGUMENT (%s)" % (bad, d))
        c, d = infer_code(fm_request(z), compression=grpc.Compression.Gzip)
        check(c == grpc.StatusCode.UNIMPLEMENTED, "gzip-compressed message: UNIMPLEMENTED (%s)" % d)
        check(np.array_equal(out_array(st.ModelInfer(fm_request(x))), got2), "still serving after the errors")

        # ---- raw HTTP/2 (nghttp): trailers-only shape, grpc-timeout units, te, framing ----
        if shutil.which("nghttp"):
            live = frame(b"")
            out = nghttp(s.grpc_port, PREFIX + "ServerLive", live)
            fr = recv_headers(out)
            check(hval(fr, ":status") == "200" and hval(fr, "content-type") == "application/grpc" and
                  hval(fr, "grpc-status") == "0" and len(fr) == 2, "nghttp ServerLive: headers, message, trailers")
            out = nghttp(s.grpc_port, PREFIX + "NoSuch%C3%A9%25", live)
            fr = recv_headers(out)
            check(len(fr) == 1 and fr[0]["end_stream"] and hval(fr, "content-type") == "application/grpc" and
                  hval(fr, "grpc-status") == "12" and "NoSuch%C3%A9%25 " in (hval(fr, "grpc-message") or ""),
                  "trailers-only: one HEADERS with END_STREAM, content-type, grpc-status, percent-encoded message")
            for unit in ("1H", "2M", "3S", "400m", "5000000u", "99999999n"):
                out = nghttp(s.grpc_port, PREFIX + "ServerLive", live, ["grpc-timeout: " + unit])
                check(hval(recv_headers(out), "grpc-status") == "0", "grpc-timeout %s accepted" % unit)
            for bad in ("123456789S", "10", "5x", "m"):
                out = nghttp(s.grpc_port, PREFIX + "ServerLive", live, ["grpc-timeout: " + bad])
                check(hval(recv_headers(out), "grpc-status") == "3", "grpc-timeout %r: INVALID_ARGUMENT" % bad)
            out = nghttp(s.grpc_port, PREFIX + "ServerLive", live, ["te:"])
            check(hval(recv_headers(out), "grpc-status") == "3", "no te: trailers: INVALID_ARGUMENT")
            out = nghttp(s.grpc_port, PREFIX + "ServerLive", live, ["content-type: application/json"])
            check(hval(recv_headers(out), ":status") == "415", "content-type application/json: HTTP 415")
            out = nghttp(s.grpc_port, PREFIX + "ServerLive", live, ["content-type: application/grpc+proto"])
            check(hval(recv_headers(out), "grpc-status") == "0", "content-type application/grpc+proto accepted")
            out = nghttp(s.grpc_port, PREFIX + "ServerLive", frame(b"", 1), ["grpc-encoding: gzip"])
            check(hval(recv_headers(out), "grpc-status") == "12", "compressed flag: UNIMPLEMENTED (raw)")
            for what, body in (("two messages", live + live), ("truncated prefix", live[:3]),
                               ("length past the body", frame(b"\x08\x01")[:-1])):
                out = nghttp(s.grpc_port, PREFIX + "ServerLive", body)
                check(hval(recv_headers(out), "grpc-status") == "13", "%s: INTERNAL" % what)
        else:
            check(False, "nghttp (nghttp2-client) is missing: raw HTTP/2 checks not run")

        # ---- statistics ----
        ms = st.ModelStatistics(pb.ModelStatisticsRequest(name="fashion_mnist"))
        m = ms.model_stats[0] if ms.model_stats else None
        check(m is not None and m.name == "fashion_mnist" and m.version == "1" and m.inference_count >= 4 and
              m.inference_stats.success.count >= 4 and m.inference_stats.fail.count >= 1 and m.last_inference > 0,
              "ModelStatistics fashion_mnist: %s" % (str(m).replace("\n", " ")[:300] if m else None))
        ms = st.ModelStatistics(pb.ModelStatisticsRequest())
        check(len(ms.model_stats) == 4, "ModelStatistics all: %d models" % len(ms.model_stats))
        check(code_of(st.ModelStatistics, pb.ModelStatisticsRequest(name="nope"))[0] == grpc.StatusCode.NOT_FOUND,
              "ModelStatistics unknown: NOT_FOUND")
    finally:
        s.ch.close()
        rc = s.stop()
    check(rc == 0, "plain server exits 0 on SIGTERM")

    # ---- the delayed server: deadline, cancel and queue full ----
    delay_ms = 700
    d = Server("delay", ["--test-delay-ms", str(delay_ms), "--max-body-bytes", "2000000"], delay_queue=2)
    try:
        st = d.stub
        x = rng.random((1, 1, 28, 28), dtype=np.float32)
        req = fm_request(x)
        req.inputs[0].name = st.ModelMetadata(pb.ModelMetadataRequest(name="fashion_mnist")).inputs[0].name
        st.ModelInfer(req, timeout=30)  # warm
        base = st.ModelStatistics(pb.ModelStatisticsRequest(name="fashion_mnist")).model_stats[0]
        # deadline while queued: A runs (delay), B (grpc-timeout 200m, sent raw so that only the server's
        # deadline can end it) waits behind it and is never executed
        a = st.ModelInfer.future(req, timeout=30)
        time.sleep(0.1)
        t0 = time.time()
        out = nghttp(d.grpc_port, PREFIX + "ModelInfer", frame(req.SerializeToString()), ["grpc-timeout: 200m"],
                     timeout=10)
        dt = time.time() - t0
        check(hval(recv_headers(out), "grpc-status") == "4" and dt < delay_ms / 1000.0,
              "grpc-timeout 200m while queued behind a %d ms run: DEADLINE_EXCEEDED from the server when it passes "
              "(%.0f ms)" %
              (delay_ms, dt * 1000))
        check(a.result() is not None, "the running request finishes")
        # python grpcio's own deadline too
        a = st.ModelInfer.future(req, timeout=30)
        time.sleep(0.1)
        c, det = code_of(st.ModelInfer, req, timeout=0.2)
        check(c == grpc.StatusCode.DEADLINE_EXCEEDED, "grpcio timeout=0.2 while queued: DEADLINE_EXCEEDED")
        a.result()
        # cancel while queued
        a = st.ModelInfer.future(req, timeout=30)
        time.sleep(0.1)
        b = st.ModelInfer.future(req, timeout=30)
        time.sleep(0.1)
        check(b.cancel(), "future.cancel() of a queued request")
        a.result()
        after = st.ModelStatistics(pb.ModelStatisticsRequest(name="fashion_mnist")).model_stats[0]
        ran = after.execution_count - base.execution_count
        check(ran == 3, "only the 3 running requests executed; the expired and the cancelled ones never ran "
                        "(executions +%d)" % ran)
        check(after.inference_stats.fail.count - base.inference_stats.fail.count >= 3,
              "fail count +%d (2 deadlines, 1 cancel)" %
              (after.inference_stats.fail.count - base.inference_stats.fail.count))
        # cancel while running (RST_STREAM during the run), and a whole connection gone with one request running
        # and one queued: each request is released once (the ASan build checks), the server keeps serving
        a = st.ModelInfer.future(req, timeout=30)
        time.sleep(0.1)
        check(a.cancel(), "future.cancel() of a running request")
        ch2 = grpc.insecure_channel(d.addr)
        st2 = pbg.GRPCInferenceServiceStub(ch2)
        f1 = st2.ModelInfer.future(req, timeout=30)
        f2 = st2.ModelInfer.future(req, timeout=30)
        time.sleep(0.2)
        ch2.close()
        check(code_of(f1.result)[0] == grpc.StatusCode.CANCELLED and code_of(f2.result)[0] == grpc.StatusCode.CANCELLED,
              "channel closed with a request running and one queued")
        check(st.ModelInfer(req, timeout=30).model_name == "fashion_mnist", "serving after the disconnect")
        # a message over --max-body-bytes
        r = pb.ModelInferRequest(model_name="add_600k")
        r.inputs.add(name="x", datatype="FP32", shape=[1, 600000])
        r.raw_input_contents.append(bytes(2400000))
        c, det = code_of(st.ModelInfer, r, timeout=30)
        check(c == grpc.StatusCode.RESOURCE_EXHAUSTED, "2.4 MB message over --max-body-bytes 2000000: "
              "RESOURCE_EXHAUSTED (%s %s)" % (c, det))
        # queue full (max_queue 2): 1 running + 2 queued, the rest refused at once
        futs = [st.ModelInfer.future(req, timeout=60) for _ in range(8)]
        codes = [code_of(f.result)[0] for f in futs]
        nok = codes.count(grpc.StatusCode.OK)
        nfull = codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED)
        check(nok >= 1 and nfull >= 1 and nok + nfull == 8 and nok <= 3,
              "8 at once on max_queue 2: %d OK, %d RESOURCE_EXHAUSTED" % (nok, nfull))
        check(np.array_equal(out_array(st.ModelInfer(req, timeout=30)), out_array(st.ModelInfer(req, timeout=30))),
              "still serving after deadline, cancel and queue full")
    finally:
        d.ch.close()
        rc = d.stop()
    check(rc == 0, "delayed server exits 0 on SIGTERM")

    # ---- explicit model control (issue 6): RepositoryModelLoad / RepositoryModelUnload ----
    e = Server("explicit", ["--model-control", "explicit", "--load-model", "add_600k"])
    try:
        st = e.stub
        req = fm_request(np.zeros((1, 1, 28, 28), np.float32))
        c, det = code_of(st.ModelInfer, req, timeout=30)
        check(c == grpc.StatusCode.UNAVAILABLE and "not loaded" in det, "explicit: fashion_mnist not loaded (%s)" % det)
        check(code_of(st.RepositoryModelLoad, pb.RepositoryModelLoadRequest(model_name="fashion_mnist"),
                      timeout=60)[0] == grpc.StatusCode.OK, "RepositoryModelLoad: OK")
        check(st.ModelReady(pb.ModelReadyRequest(name="fashion_mnist")).ready, "loaded: ModelReady")
        check(code_of(st.ModelInfer, req, timeout=30)[0] == grpc.StatusCode.OK, "loaded: ModelInfer OK")
        ix = {(m.name, m.version): m.state for m in st.RepositoryIndex(pb.RepositoryIndexRequest()).models}
        check(ix.get(("fashion_mnist", "1")) == "READY", "RepositoryIndex: fashion_mnist 1 READY (%s)" % ix)
        check(code_of(st.RepositoryModelUnload, pb.RepositoryModelUnloadRequest(model_name="fashion_mnist"),
                      timeout=60)[0] == grpc.StatusCode.OK, "RepositoryModelUnload: OK")
        check(code_of(st.ModelInfer, req, timeout=30)[0] == grpc.StatusCode.UNAVAILABLE, "unloaded: UNAVAILABLE")
        ix = {(m.name, m.version): (m.state, m.reason) for m in st.RepositoryIndex(pb.RepositoryIndexRequest()).models}
        check(ix.get(("fashion_mnist", "")) == ("UNAVAILABLE", "unloaded"), "RepositoryIndex: unloaded (%s)" % ix)
        check(code_of(st.RepositoryModelLoad, pb.RepositoryModelLoadRequest(model_name="nope"))[0] ==
              grpc.StatusCode.NOT_FOUND, "RepositoryModelLoad unknown (explicit): NOT_FOUND")
    finally:
        e.ch.close()
        rc = e.stop()
    check(rc == 0, "explicit server exits 0 on SIGTERM")
    if failures:
        print("%d FAILED:\n  %s" % (len(failures), "\n  ".join(failures)))
        sys.exit(1)
    print("all gRPC checks passed")


if __name__ == "__main__":
    main()
