#!/usr/bin/python3
"""tests/int8/int8_agree.py: the INT8 agreement rule between our engine's outputs and ONNX Runtime's.

usage: int8_agree.py MODEL.onnx GOT_DIR REF_DIR [--min-identical PCT] [--max-steps N]
       int8_agree.py --make-inputs MODEL.onnx DIR     (seeded inputs for a model given without any; prints
                                                       --input NAME=FILE arguments for edgeinfer run)

Every graph output in REF_DIR/<name>.npy (the name with characters outside [A-Za-z0-9._-] replaced by '_') is
compared with GOT_DIR/<name>.npy:
  integer outputs: compared as they are;
  float outputs produced by a DequantizeLinear (directly or through Identity/Reshape/Flatten/Squeeze/Unsqueeze/
    Transpose): both re-quantized with that DequantizeLinear's scale, zero point and axis,
    q = clamp(round_half_even(x / scale) + zp, qmin, qmax), then compared as integers;
  other float outputs: with the model's last DequantizeLinear (in node order) when that one is per-tensor,
    else (a model without DequantizeLinear) as floats within 1e-4 * max(1, max|expected|).
The rule: at least --min-identical percent (default 99) of the elements identical and none more than
--max-steps (default 1) apart. Prints one line per output; exit 0 when every output passes, 1 otherwise,
2 on usage or file errors.
"""
import os
import re
import sys

import numpy as np
import onnx
from onnx import numpy_helper

PASS_THROUGH = {"Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose"}
QRANGE = {np.dtype(np.uint8): (0, 255), np.dtype(np.int8): (-128, 127), np.dtype(np.int32): (-2**31, 2**31 - 1),
          np.dtype(np.uint16): (0, 65535), np.dtype(np.int16): (-32768, 32767)}


def die(msg, code=2):
    sys.stderr.write("int8_agree: %s\n" % msg)
    sys.exit(code)


def safe_name(name):
    s = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    return "output" if s in ("", ".", "..") else s


class Graph:
    def __init__(self, path):
        try:
            self.model = onnx.load(path)
        except Exception as e:  # onnx raises several types for bad files
            die("cannot load %s: %s" % (path, e))
        g = self.model.graph
        self.consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        self.producer = {}
        for n in g.node:
            if n.op_type == "Constant" and n.domain in ("", "ai.onnx"):
                for a in n.attribute:
                    if a.name == "value":
                        self.consts[n.output[0]] = numpy_helper.to_array(a.t)
            for o in n.output:
                self.producer[o] = n
        self.dqs = [n for n in g.node if n.op_type == "DequantizeLinear"]

    def dq_params(self, node):
        """(scale, zero point, axis, quantized dtype) of a DequantizeLinear with constant parameters."""
        if len(node.input) < 2 or node.input[1] not in self.consts:
            return None
        scale = self.consts[node.input[1]].astype(np.float32)
        if len(node.input) > 2 and node.input[2]:
            if node.input[2] not in self.consts:
                return None
            zp = self.consts[node.input[2]]
        else:
            zp = np.zeros(scale.shape, np.uint8)  # no zero point: uint8 0
        axis = 1
        for a in node.attribute:
            if a.name == "axis":
                axis = a.i
        return scale, zp, axis, zp.dtype

    def requant_for(self, output):
        """(params, how) for a float graph output, or (None, reason)."""
        name = output
        while name in self.producer:
            n = self.producer[name]
            if n.op_type == "DequantizeLinear":
                p = self.dq_params(n)
                return (p, "its DequantizeLinear '%s'" % n.name) if p else (None, "non-constant DQ params")
            if n.op_type not in PASS_THROUGH or not n.input:
                break
            name = n.input[0]
        for n in reversed(self.dqs):
            p = self.dq_params(n)
            if p and p[0].size == 1:
                return p, "the last DequantizeLinear '%s'" % n.name
        return None, "no DequantizeLinear"


def requantize(x, params):
    scale, zp, axis, qtype = params
    qmin, qmax = QRANGE.get(np.dtype(qtype), (None, None))
    if qmin is None:
        die("unsupported quantized type %s" % qtype)
    x = x.astype(np.float64)
    if scale.size == 1:
        scale, zp = scale.reshape(()), zp.reshape(())
    else:  # per-axis
        if x.ndim == 0 or not -x.ndim <= axis < x.ndim or x.shape[axis] != scale.size:
            die("DequantizeLinear scale of %d values does not fit axis %d of shape %s" % (scale.size, axis,
                                                                                          x.shape))
        shape = [1] * x.ndim
        shape[axis % x.ndim] = scale.size
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    q = np.rint(x / scale.astype(np.float64)) + zp.astype(np.float64)
    return np.clip(q, qmin, qmax).astype(np.int64)


def check_ints(a, b, min_identical, max_steps):
    diff = np.abs(a.astype(np.int64) - b.astype(np.int64))
    n = diff.size
    same = int(np.count_nonzero(diff == 0))
    pct = 100.0 * same / n if n else 100.0
    worst = int(diff.max()) if n else 0
    ok = pct >= min_identical and worst <= max_steps
    return ok, "%d elements, %.2f%% identical, max diff %d step%s" % (n, pct, worst, "" if worst == 1 else "s")


def compare(graph, got_dir, ref_dir, min_identical, max_steps):
    failed = 0
    for out in graph.model.graph.output:
        fname = safe_name(out.name) + ".npy"
        try:
            b = np.load(os.path.join(ref_dir, fname), allow_pickle=False)
        except (OSError, ValueError) as e:
            die("reference %s: %s" % (fname, e))
        try:
            a = np.load(os.path.join(got_dir, fname), allow_pickle=False)
        except (OSError, ValueError) as e:
            print("  %-20s FAIL: no output from our engine (%s)" % (out.name, e))
            failed += 1
            continue
        if a.shape != b.shape:
            ok, msg = False, "shape %s, expected %s" % (a.shape, b.shape)
        elif (a.dtype.kind == "f") != (b.dtype.kind == "f"):
            ok, msg = False, "dtype %s, expected %s" % (a.dtype, b.dtype)
        elif b.dtype.kind in "iub":
            ok, msg = check_ints(a, b, min_identical, max_steps)
            msg = "%s: %s" % (b.dtype, msg)
        else:
            params, how = graph.requant_for(out.name)
            if params is not None:
                ok, msg = check_ints(requantize(a, params), requantize(b, params), min_identical, max_steps)
                s = params[0].ravel()
                msg = "float re-quantized (%s, scale %s, %s): %s" % (
                    how, "%.4g" % s[0] if s.size == 1 else "per-channel[%d]" % s.size, params[3], msg)
            else:
                err = float(np.abs(a.astype(np.float64) - b).max()) if b.size else 0.0
                lim = 1e-4 * max(1.0, float(np.abs(b).max()) if b.size else 0.0)
                ok, msg = err <= lim, "float (%s): max err %.3g, limit %.3g" % (how, err, lim)
        print("  %-20s %s %s" % (out.name, msg, "ok" if ok else "FAIL"))
        failed += not ok
    return failed


def make_inputs(path, d):
    """Seeded inputs for every graph input that is not an initializer: symbolic dims -> 2 (first) or 1."""
    graph = Graph(path)
    rng = np.random.default_rng(1234)
    os.makedirs(d, exist_ok=True)
    args = []
    types = {1: np.float32, 2: np.uint8, 3: np.int8, 6: np.int32, 7: np.int64}
    init = {t.name for t in graph.model.graph.initializer}
    for i, vi in enumerate(x for x in graph.model.graph.input if x.name not in init):
        tt = vi.type.tensor_type
        if tt.elem_type not in types:
            die("%s: input '%s' has an unsupported type %d" % (path, vi.name, tt.elem_type))
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else (2 if k == 0 else 1)
                for k, d in enumerate(tt.shape.dim)]
        dt = np.dtype(types[tt.elem_type])
        if dt.kind == "f":
            data = rng.uniform(0.0, 1.0, dims).astype(dt)
        else:
            lo, hi = QRANGE.get(dt, (0, 100))
            data = rng.integers(max(lo, -1000), min(hi, 1000) + 1, dims).astype(dt)
        f = os.path.join(d, "input_%d.npy" % i)
        np.save(f, data, allow_pickle=False)
        args.append("--input %s=%s" % (vi.name, f))
    print(" ".join(args))


def main(argv):
    if argv and argv[0] == "--make-inputs":
        if len(argv) != 3:
            die("usage: int8_agree.py --make-inputs MODEL.onnx DIR")
        make_inputs(argv[1], argv[2])
        return 0
    pos, min_identical, max_steps = [], 99.0, 1
    i = 0
    while i < len(argv):
        if argv[i] in ("--min-identical", "--max-steps") and i + 1 < len(argv):
            try:
                v = float(argv[i + 1])
            except ValueError:
                die("%s: bad number '%s'" % (argv[i], argv[i + 1]))
            if argv[i] == "--min-identical":
                min_identical = v
            else:
                max_steps = int(v)
            i += 2
        elif argv[i] in ("-h", "--help"):
            print(__doc__.strip())
            return 0
        else:
            pos.append(argv[i])
            i += 1
    if len(pos) != 3:
        die("usage: int8_agree.py MODEL.onnx GOT_DIR REF_DIR [--min-identical PCT] [--max-steps N]")
    failed = compare(Graph(pos[0]), pos[1], pos[2], min_identical, max_steps)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
