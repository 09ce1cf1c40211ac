"""tests/server/serverlib.py: helpers for the `edgeinfer serve` end-to-end tests (REST).

A temporary repository with models/fashion_mnist.onnx, a server started on port 0 with --port-file, HTTP/1.1
requests with http.client or a raw socket, HTTP/2 requests with `curl --http2-prior-knowledge`, PNG writing
(zlib; no imaging library needed) and `edgeinfer run` as the reference.
"""
import http.client
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib

import numpy as np

FAILURES = []


def check(cond, what):
    if cond:
        print("ok   %s" % what, flush=True)
    else:
        print("FAIL %s" % what, flush=True)
        FAILURES.append(what)
    return cond


def done():
    if FAILURES:
        print("\n%d check(s) failed:" % len(FAILURES))
        for f in FAILURES:
            print("  " + f)
        sys.exit(1)
    print("\nall checks passed")


# ---- the repository ----
def make_repo(src, root, name="fashion", max_batch=8):
    """root/name/{config.json,labels.txt,1/model.onnx} from models/fashion_mnist.onnx."""
    meta = json.load(open(os.path.join(src, "models", "fashion_mnist.json")))
    d = os.path.join(root, name)
    os.makedirs(os.path.join(d, "1"), exist_ok=True)
    shutil.copy(os.path.join(src, "models", "fashion_mnist.onnx"), os.path.join(d, "1", "model.onnx"))
    with open(os.path.join(d, "labels.txt"), "w") as f:
        f.write("\n".join(meta["classes"]) + "\n")
    cfg = {
        "max_batch_size": max_batch,
        "dynamic_batching": {"max_queue_delay_microseconds": 100},
        "edgeinfer": {
            "labels": "labels.txt",
            "preprocessing": {"resize": 28, "crop": 28, "channels": 1, "scale": 1.0 / 255,
                              "mean": [0, 0, 0], "std": [1, 1, 1]},
        },
    }
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)
    return meta["classes"]


# ---- the server ----
class Server:
    def __init__(self, exe, repo, tmp, *extra):
        self.port_file = os.path.join(tmp, "ports-%d.json" % time.monotonic_ns())
        self.log_path = self.port_file + ".log"
        self.log = open(self.log_path, "w")
        args = [exe, "serve", "--repo", repo, "--http-port", "0", "--grpc-port", "0", "--port-file",
                self.port_file, "--host", "127.0.0.1", "--threads", "2"] + list(extra)
        self.p = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        t0 = time.monotonic()
        while not os.path.exists(self.port_file):
            if self.p.poll() is not None:
                raise RuntimeError("server exited (%d) at start:\n%s" % (self.p.returncode, self.log_text()))
            if time.monotonic() - t0 > 60:
                raise RuntimeError("no port file after 60 s")
            time.sleep(0.02)
        ports = json.load(open(self.port_file))
        self.http, self.grpc = ports["http"], ports["grpc"]

    def log_text(self):
        if not self.log.closed:
            self.log.flush()
        return open(self.log_path).read()

    def wait_log(self, text, timeout=10):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if text in self.log_text():
                return True
            time.sleep(0.02)
        return False

    def stop(self, timeout=30):
        """SIGTERM; returns the exit code (None if it did not exit in time: then it is killed)."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            return None
        finally:
            self.log.close()

    # ---- requests ----
    def conn(self, timeout=30):
        return http.client.HTTPConnection("127.0.0.1", self.http, timeout=timeout)

    def h1(self, method, path, body=None, headers=None, conn=None):
        """(status, headers (lower-case names), body bytes) over HTTP/1.1."""
        c = conn or self.conn()
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        if conn is None:
            c.close()
        return r.status, hdrs, data

    def h2(self, method, path, body=None, headers=None, tmp=None):
        """The same over HTTP/2 (curl --http2-prior-knowledge); checks that HTTP/2 was used."""
        tmp = tmp or tempfile.gettempdir()
        hfile = os.path.join(tmp, "h2-headers-%d" % os.getpid())
        args = ["curl", "-s", "--http2-prior-knowledge", "-X", method, "-D", hfile, "-o", "-",
                "-w", "\n%{http_code} %{http_version}", "http://127.0.0.1:%d%s" % (self.http, path)]
        for k, v in (headers or {}).items():
            args += ["-H", "%s: %s" % (k, v)]
        if body is not None:
            bfile = os.path.join(tmp, "h2-body-%d" % os.getpid())
            with open(bfile, "wb") as f:
                f.write(body)
            args += ["--data-binary", "@" + bfile]
            if not any(k.lower() == "content-type" for k in (headers or {})):
                args += ["-H", "Content-Type: application/json"]
        out = subprocess.run(args, stdout=subprocess.PIPE, timeout=60).stdout
        data, _, tail = out.rpartition(b"\n")
        code, ver = tail.decode().split()
        if ver != "2":
            raise RuntimeError("curl did not use HTTP/2 (%s)" % ver)
        hdrs = {}
        for line in open(hfile, "rb").read().decode("latin-1").splitlines()[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                hdrs[k.strip().lower()] = v.strip()
        return int(code), hdrs, data

    def req(self, proto, method, path, body=None, headers=None):
        return (self.h2 if proto == "h2" else self.h1)(method, path, body, headers)

    def raw(self, data, timeout=10, shut=False):
        """Sends raw bytes on a new connection and reads until the server closes (or timeout)."""
        s = socket.create_connection(("127.0.0.1", self.http), timeout=timeout)
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        out = b""
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                out += b
        except socket.timeout:
            pass
        s.close()
        return out


def split_responses(raw):
    """Splits HTTP/1.1 responses (with content-length) in a byte string: [(status, headers, body)]."""
    out = []
    while raw:
        head, sep, rest = raw.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for l in lines[1:]:
            k, v = l.split(":", 1)
            hdrs[k.strip().lower()] = v.strip()
        n = int(hdrs.get("content-length", "0")) if status >= 200 else 0
        out.append((status, hdrs, rest[:n]))
        raw = rest[n:]
    return out


# ---- tensors and photos ----
def png_grey(pixels):
    """An 8-bit greyscale PNG (pixels: 2-D uint8 array)."""
    h, w = pixels.shape
    raw = b"".join(b"\x00" + pixels[y].tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def fashion_test_images(n):
    """The first n Fashion-MNIST test images (uint8 [n,28,28]) and labels, from Debian's dataset-fashion-mnist."""
    import gzip
    d = "/usr/share/datasets/fashion-mnist"
    raw = gzip.open(os.path.join(d, "t10k-images-idx3-ubyte.gz")).read()
    lab = gzip.open(os.path.join(d, "t10k-labels-idx1-ubyte.gz")).read()
    imgs = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)[:n]
    labels = np.frombuffer(lab, np.uint8, offset=8)[:n]
    return imgs, labels


def run_reference(exe, model, inputs, tmp, extra=()):
    """`edgeinfer run MODEL --input input=FILE --save-outputs DIR`: the outputs as {name: array}. inputs is an
    array (saved as .npy) or a photo path."""
    out = tempfile.mkdtemp(dir=tmp)
    if isinstance(inputs, np.ndarray):
        path = os.path.join(out, "input.npy")
        np.save(path, inputs)
    else:
        path = inputs
    subprocess.run([exe, "run", model, "--input", "input=" + path, "--save-outputs", out] + list(extra),
                   check=True, stdout=subprocess.DEVNULL)
    return {f[:-4]: np.load(os.path.join(out, f)) for f in os.listdir(out) if f.endswith(".npy") and f != "input.npy"}


def softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()
