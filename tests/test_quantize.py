#!/usr/bin/python3
"""tests/test_quantize.py: `edgeinfer quantize` end to end, against ONNX Runtime.

usage: tests/test_quantize.py EDGEINFER [--models tinycnn,resnet18] [--calib-samples N] [--keep DIR]

For each model (scripts/make-models, cached) it quantizes with the first N photos of tests/calib-photos.txt
(default 4), compares float and quantized on two photos of tests/eval-photos.txt (--eval --report), and checks:
  - the file is a valid ONNX model (onnx.checker, full check) in the QDQ layout: the float model's input and output
    names (symbolic batch kept), int8 weights behind a DequantizeLinear (per channel, axis 0 for Conv), int32
    biases of scale x_scale * w_scale with zero point 0, rank-0 uint8 activation scales/zero points with the same
    parameters on each Q and its DQ, no Relu written (folded into the ranges), graph outputs produced by a DQ;
  - our engine runs it (edgeinfer run), and agrees with ONNX Runtime on it;
  - ONNX Runtime runs it, and its optimized graph (ort_run.js --save-optimized) has no Conv, Gemm, MatMul or Add
    left: all fused (QLinearConv count = the float model's Conv count);
  - the quantized output agrees with the float one (cosine similarity) on ONNX Runtime and in --report.
On tinycnn also: --method percentile / entropy / mse / auto (with --screen), --per-tensor, --activations s8,
--bias-correction off (on by default: reported), --function-ranges on,
--exclude, --target-cosine (the float fallback on a simulated model), calibration from a
batched .npy (split along dim 0) and --samples, and command-line errors. Prints how long resnet18 takes.
Exit 0 when everything passes.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import numpy_helper

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORT_RUN = os.path.join(SRC, "tests", "ort", "ort_run.js")
FAILS = []


def cache_root():
    root = os.environ.get("EI_CACHE")
    if root:
        return root
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(xdg, "edgeinfer")


def check(cond, what):
    print("%s %s" % ("PASS" if cond else "FAIL", what))
    if not cond:
        FAILS.append(what)
    return cond


def run(cmd, expect_rc=0, quiet=False):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if expect_rc is not None and r.returncode != expect_rc and not quiet:
        sys.stderr.write("command %s exited %d\n%s%s" % (" ".join(cmd), r.returncode, r.stdout, r.stderr))
    return r


def photo_list(name):
    with open(os.path.join(SRC, "tests", name)) as f:
        return [l.strip() for l in f if l.strip() and not l.startswith("#")]


def preprocess(path, size):
    """A photo as `edgeinfer run` feeds it (short side resized, centre crop, /255, ImageNet mean/std), NCHW."""
    from skimage import io, transform
    img = io.imread(path)
    if img.ndim == 2:
        img = np.stack([img] * 3, -1)
    img = img[..., :3].astype(np.float64) / (255.0 if img.dtype == np.uint8 else 65535.0)
    resize = 256 if size == 224 else size
    h, w = img.shape[:2]
    s = resize / min(h, w)
    img = transform.resize(img, (max(size, round(h * s)), max(size, round(w * s))), order=1, anti_aliasing=False)
    h, w = img.shape[:2]
    t, l = (h - size) // 2, (w - size) // 2
    img = img[t:t + size, l:l + size]
    x = (img - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    return x.transpose(2, 0, 1)[None].astype(np.float32)


def cosine(a, b):
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))


def ort(model, inp, outdir, optimized=None, opt_level=None):
    cmd = ["node", ORT_RUN, model, outdir, "--input", inp]
    if optimized:
        cmd += ["--save-optimized", optimized]
    if opt_level:
        cmd += ["--opt-level", opt_level]
    r = run(cmd)
    return r.returncode == 0


def ensure_tools(models):
    r = run([os.path.join(SRC, "scripts", "make-models")] + models)
    if r.returncode:
        sys.exit("test_quantize: scripts/make-models failed")
    nm = os.path.join(cache_root(), "npm", "node_modules", "onnxruntime-node", "package.json")
    if not os.path.exists(nm) and run([os.path.join(SRC, "scripts", "npm-tools")]).returncode:
        sys.exit("test_quantize: scripts/npm-tools failed")


# ---- structure of the written model ----

def structure(path, float_path, s8=False, per_tensor=False):
    m = onnx.load(path)
    fm = onnx.load(float_path)
    onnx.checker.check_model(m, full_check=True)
    g = m.graph
    init = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    prod = {o: n for n in g.node for o in n.output}
    cons = {}
    for n in g.node:
        for i in n.input:
            cons.setdefault(i, []).append(n)
    ok = True
    why = []

    def bad(msg):
        nonlocal ok
        ok = False
        why.append(msg)

    if [i.name for i in g.input] != [i.name for i in fm.graph.input]:
        bad("inputs differ")
    if [o.name for o in g.output] != [o.name for o in fm.graph.output]:
        bad("outputs differ")
    d0 = g.input[0].type.tensor_type.shape.dim[0]
    if d0.dim_param != fm.graph.input[0].type.tensor_type.shape.dim[0].dim_param:
        bad("symbolic batch dimension lost")
    for o in g.output:
        if prod.get(o.name) is None or prod[o.name].op_type != "DequantizeLinear":
            bad("output %s is not produced by a DequantizeLinear" % o.name)
    act_t = np.int8 if s8 else np.uint8
    for n in g.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear") and n.input[0] not in init:
            s, z = init.get(n.input[1]), init.get(n.input[2])
            if s is None or z is None or s.ndim != 0 or z.ndim != 0 or z.dtype != act_t:
                bad("%s %s: activation scale/zero point not rank-0 %s" % (n.op_type, n.name, act_t.__name__))
            elif s8 and z != 0:
                bad("%s: int8 activations must be symmetric" % n.name)
        if n.op_type == "QuantizeLinear":
            for c in cons.get(n.output[0], []):
                if c.op_type != "DequantizeLinear" or c.input[1:] != n.input[1:]:
                    bad("Q %s feeds %s with other parameters" % (n.name, c.name))
        src = prod.get(n.input[0]) if n.input else None
        if n.op_type in ("Relu", "Clip") and not s8 and src is not None and \
                src.op_type in ("Conv", "Gemm", "Add", "DequantizeLinear"):
            bad("a fused %s was written (%s)" % (n.op_type, n.name))
        if n.op_type not in ("Conv", "Gemm"):
            continue
        dqs = [prod.get(i) for i in n.input]
        if any(d is None or d.op_type != "DequantizeLinear" for d in dqs):
            bad("%s %s: an input is not dequantized" % (n.op_type, n.name))
            continue
        if prod.get(dqs[0].input[0]) is None or prod[dqs[0].input[0]].op_type != "QuantizeLinear":
            bad("%s: the activation DQ has no Q" % n.name)
        w, ws, wz = (init.get(x) for x in dqs[1].input)
        if w is None or w.dtype != np.int8 or wz.dtype != np.int8 or np.any(wz != 0):
            bad("%s: weights are not symmetric int8 initializers" % n.name)
            continue
        axis = {a.name: a.i for a in dqs[1].attribute}.get("axis", 1)
        oc = w.shape[0] if n.op_type == "Conv" or {a.name: a.i for a in n.attribute}.get("transB", 0) else w.shape[1]
        if per_tensor and ws.ndim != 0:
            bad("%s: --per-tensor weight scale has rank %d" % (n.name, ws.ndim))
        if not per_tensor and (ws.shape != (oc,) or axis != (0 if n.op_type == "Conv" else axis)):
            bad("%s: weight scale is not per output channel" % n.name)
        if len(dqs) > 2:
            b, bs, bz = (init.get(x) for x in dqs[2].input)
            xs = init[dqs[0].input[1]]
            want = (np.float32(xs) * ws.astype(np.float32)).astype(np.float32)
            if b.dtype != np.int32 or np.any(bz != 0) or not np.array_equal(np.broadcast_to(want, bs.shape), bs):
                bad("%s: bias is not int32 with scale x_scale*w_scale and zero point 0" % n.name)
        outs = cons.get(n.output[0], [])
        if len(outs) != 1 or outs[0].op_type != "QuantizeLinear":
            bad("%s: the output does not go to one QuantizeLinear" % n.name)
    return ok, why


def ort_fusion(optimized, float_path):
    m = onnx.load(optimized)
    left = [n.name for n in m.graph.node
            if n.domain in ("", "ai.onnx") and n.op_type in ("Conv", "Gemm", "MatMul", "Add")]
    counts = {}
    for n in m.graph.node:
        counts[n.op_type] = counts.get(n.op_type, 0) + 1
    convs = sum(1 for n in onnx.load(float_path).graph.node if n.op_type == "Conv")
    return left, counts, convs


def engine_op(ei, model, node):
    """The operator our engine runs for a node after its passes (edgeinfer inspect --nodes), or None."""
    r = run([ei, "inspect", model, "--nodes"])
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) >= 3 and f[0].isdigit() and f[-1] == node:
            return f[2] if f[1] in ("int8", "float") else f[1]  # "N  int8|float  OP ..." after planning
    return None


# ---- tests ----

def report_numbers(out):
    cos = re.search(r"cosine similarity (-?[0-9.]+), SQNR (-?[0-9.a-z]+) dB", out)
    table = re.findall(r"^\S+\s+\S+\s+(-?[0-9.]+|inf|n/a)$", out, re.M)
    return (float(cos.group(1)) if cos else None), (cos.group(2) if cos else None), table


def test_model(ei, name, tmp, calib, evals, nsamples, min_cos):
    fpath = os.path.join(cache_root(), "models", name + ".onnx")
    qpath = os.path.join(tmp, name + ".int8.onnx")
    size = 32 if name == "tinycnn" else 224
    t0 = time.time()
    r = run([ei, "quantize", fpath, "-o", qpath, "--calib"] + calib + ["--samples", str(nsamples), "--eval"] +
            evals[:2] + ["--report"])
    secs = time.time() - t0
    if not check(r.returncode == 0, "%s: edgeinfer quantize (%.1f s)" % (name, secs)):
        return None
    print(r.stdout.rstrip())
    cos, sqnr, table = report_numbers(r.stdout)
    check(cos is not None and cos >= min_cos, "%s: --report cosine %s >= %g" % (name, cos, min_cos))
    check(len(table) > 0 and "n/a" not in table, "%s: per-layer SQNR table (%d layers)" % (name, len(table)))
    check(not [f for f in os.listdir(tmp) if ".tmp." in f], "%s: no temporary file left" % name)
    ok, why = structure(qpath, fpath)
    check(ok, "%s: QDQ layout %s" % (name, "; ".join(why[:5])))

    x = preprocess(evals[2], size)
    inp = os.path.join(tmp, name + "_in.npy")
    np.save(inp, x)
    ours = os.path.join(tmp, name + "_ours")
    check(run([ei, "run", qpath, "--input", inp, "--save-outputs", ours]).returncode == 0,
          "%s: our engine runs the quantized model" % name)
    opt = os.path.join(tmp, name + ".ort-optimized.onnx")
    if check(ort(qpath, inp, os.path.join(tmp, name + "_ortq"), optimized=opt), "%s: ONNX Runtime runs it" % name):
        left, counts, convs = ort_fusion(opt, fpath)
        fused = {k: v for k, v in counts.items() if k.startswith("Q") and k not in ("QuantizeLinear",)}
        check(not left, "%s: ONNX Runtime fused every Conv/Gemm/MatMul/Add (left: %s; fused: %s)" % (name, left, fused))
        check(counts.get("QLinearConv", 0) == convs, "%s: %d QLinearConv for %d Conv" %
              (name, counts.get("QLinearConv", 0), convs))
        check(ort(fpath, inp, os.path.join(tmp, name + "_ortf")), "%s: ONNX Runtime runs the float model" % name)
        out = fm_out = None
        try:
            out = np.load(os.path.join(tmp, name + "_ortq", "logits.npy"))
            fm_out = np.load(os.path.join(tmp, name + "_ortf", "logits.npy"))
            mine = np.load(os.path.join(ours, "logits.npy"))
        except OSError as e:
            check(False, "%s: outputs: %s" % (name, e))
        else:
            c = cosine(fm_out, out)
            check(c >= min_cos, "%s: ONNX Runtime float vs quantized cosine %.5f >= %g" % (name, c, min_cos))
            c = cosine(out, mine)
            check(c >= 0.995, "%s: our engine vs ONNX Runtime on the quantized model: cosine %.5f" % (name, c))
    return secs


def variants(ei, tmp, calib, evals):
    fpath = os.path.join(cache_root(), "models", "tinycnn.onnx")
    base = [ei, "quantize", fpath, "--calib"] + calib[:3] + ["--eval", evals[0], "--report"]
    inp = os.path.join(tmp, "v_in.npy")
    np.save(inp, preprocess(evals[1], 32))
    for opt, extra in [("percentile", ["--method", "percentile", "--percentile", "99.9"]),
                       ("entropy", ["--method", "entropy"]), ("mse", ["--method", "mse"]),
                       ("auto", ["--method", "auto", "--screen", "2"]), ("per-tensor", ["--per-tensor"]),
                       ("s8", ["--activations", "s8"]), ("no-bias-correction", ["--bias-correction", "off"]),
                       ("function-ranges", ["--method", "mse", "--function-ranges", "on"])]:
        q = os.path.join(tmp, "tiny_%s.onnx" % opt)
        r = run(base + ["-o", q] + extra)
        if not check(r.returncode == 0, "tinycnn %s: quantize" % opt):
            continue
        cos, sqnr, _ = report_numbers(r.stdout)
        print("  tinycnn %s: cosine %s, SQNR %s dB" % (opt, cos, sqnr))
        bc = re.search(r"^bias correction: on, ([0-9]+) Conv/Gemm layers", r.stdout, re.M)
        if opt == "no-bias-correction":
            check(bc is None and "bias correction" not in r.stdout.split("wrote")[1].split("\n")[0],
                  "tinycnn --bias-correction off: no correction")
        else:
            check(bc is not None and int(bc.group(1)) > 0, "tinycnn %s: bias correction on by default" % opt)
        check(cos is not None and cos >= 0.98, "tinycnn %s: cosine %s" % (opt, cos))
        ok, why = structure(q, fpath, s8=opt == "s8", per_tensor=opt == "per-tensor")
        check(ok, "tinycnn %s: QDQ layout %s" % (opt, "; ".join(why[:5])))
        opt_path = os.path.join(tmp, "tiny_%s.ort.onnx" % opt)
        if check(ort(q, inp, os.path.join(tmp, "o_" + opt), optimized=opt_path), "tinycnn %s: ONNX Runtime" % opt):
            left, counts, _ = ort_fusion(opt_path, fpath)
            if opt != "s8":  # int8 activations: ORT fuses what its x86 s8->u8 conversion allows
                check(not left, "tinycnn %s: everything fused (left %s)" % (opt, left))
        check(run([ei, "run", q, "--input", inp]).returncode == 0, "tinycnn %s: our engine runs it" % opt)

    # --exclude: that Conv stays float in the file. (ONNX Runtime may still quantize it at load time: its input is
    # dequantized and its output goes only to the QuantizeLinear its quantized consumer needs, the pattern its
    # WeightBiasQuantization transformer quantizes -- as for quantize_static's nodes_to_exclude.)
    q = os.path.join(tmp, "tiny_excl.onnx")
    name = "/branch/branch.0/Conv"
    r = run(base + ["-o", q, "--exclude", name])
    if check(r.returncode == 0 and "1 left in float" in r.stdout.replace("2 left", "1 left"),
             "tinycnn --exclude: quantize"):
        m = onnx.load(q)
        conv = [n for n in m.graph.node if n.name == name]
        prod = {o: n for n in m.graph.node for o in n.output}
        check(len(conv) == 1 and (conv[0].input[1] not in prod), "tinycnn --exclude: float weights on %s" % name)
        check(ort(q, inp, os.path.join(tmp, "o_excl")), "tinycnn --exclude: ONNX Runtime runs it")
        check(run([ei, "run", q, "--input", inp]).returncode == 0, "tinycnn --exclude: our engine runs it")
        op = engine_op(ei, q, name)
        check(op == "Conv", "tinycnn --exclude: our engine keeps %s a float Conv (%s)" % (name, op))

    # --target-cosine 1: the fallback leaves tensors in float (their nodes stay float Convs in the file), at most
    # --max-float of them
    q = os.path.join(tmp, "tiny_fallback.onnx")
    r = run(base + ["-o", q, "--target-cosine", "1", "--max-float", "2"])
    m = re.search(r"float fallback [^:]*: ([0-9]+) tensors? left in float \(([0-9]+) nodes?\)", r.stdout)
    check(r.returncode == 0 and m is not None and m.group(1) == "2" and int(m.group(2)) >= 2,
          "tinycnn --target-cosine: 2 tensors left in float (%s)" % (m.group(0) if m else r.stdout[-300:]))
    if r.returncode == 0:
        fm = onnx.load(q)
        prod = {o: n for n in fm.graph.node for o in n.output}
        fconv = [n.name for n in fm.graph.node if n.op_type in ("Conv", "Gemm") and
                 (prod.get(n.input[1]) is None or prod[n.input[1]].op_type != "DequantizeLinear")]
        check(len(fconv) >= 1, "tinycnn --target-cosine: float Conv/Gemm in the file: %s" % fconv)
        check(ort(q, inp, os.path.join(tmp, "o_fallback")), "tinycnn --target-cosine: ONNX Runtime runs it")
        check(run([ei, "run", q, "--input", inp]).returncode == 0, "tinycnn --target-cosine: our engine runs it")

    # calibration from a batched .npy, split along dim 0, capped by --samples
    batch = np.concatenate([preprocess(p, 32) for p in calib[:6]])
    npy = os.path.join(tmp, "batch.npy")
    np.save(npy, batch)
    r = run([ei, "quantize", fpath, "-o", os.path.join(tmp, "tiny_npy.onnx"), "--calib", npy, "--eval-samples", "1"])
    check(r.returncode == 0 and "calibrated on 6 samples" in r.stdout, "tinycnn: batched .npy gives 6 samples")
    r = run([ei, "quantize", fpath, "-o", os.path.join(tmp, "tiny_npy.onnx"), "--calib", npy, "--samples", "4",
             "--eval-samples", "0"])
    check(r.returncode == 0 and "calibrated on 4 samples" in r.stdout, "tinycnn: --samples 4")
    check("SQNR" not in r.stdout, "tinycnn: --eval-samples 0 skips the comparison")

    # errors
    r = run([ei, "quantize", fpath, "-o", os.path.join(tmp, "x.onnx")], expect_rc=None)
    check(r.returncode == 2 and "--calib" in r.stderr, "error: no --calib")
    r = run([ei, "quantize", fpath, "-o", os.path.join(tmp, "x.onnx"), "--calib", "/nonexistent.png"], expect_rc=None)
    check(r.returncode == 1 and "nonexistent" in r.stderr, "error: missing calibration file")
    r = run([ei, "quantize", os.path.join(tmp, "tiny_npy.onnx"), "-o", os.path.join(tmp, "x.onnx"), "--calib", npy],
            expect_rc=None)
    check(r.returncode == 1 and "already quantized" in r.stderr, "error: an already quantized model")
    r = run([ei, "quantize", fpath, "-o", os.path.join(tmp, "x.onnx"), "--calib", npy, "--method", "kl"],
            expect_rc=None)
    check(r.returncode == 2, "error: bad --method")
    r = run([ei, "quantize", fpath, "-o", os.path.join(tmp, "x.onnx"), "--calib", npy, "--bias-correction", "yes"],
            expect_rc=None)
    check(r.returncode == 2 and "--bias-correction" in r.stderr, "error: bad --bias-correction")
    check(not os.path.exists(os.path.join(tmp, "x.onnx")), "errors write no file")


def main(argv):
    if len(argv) < 1:
        sys.exit(__doc__)
    ei = os.path.abspath(argv[0])
    models, nsamples, keep = ["tinycnn", "resnet18"], 4, None
    i = 1
    while i < len(argv):
        if argv[i] == "--models":
            models = argv[i + 1].split(",")
        elif argv[i] == "--calib-samples":
            nsamples = int(argv[i + 1])
        elif argv[i] == "--keep":
            keep = argv[i + 1]
        else:
            sys.exit("test_quantize: unknown argument %s" % argv[i])
        i += 2
    ensure_tools(models)
    calib, evals = photo_list("calib-photos.txt"), photo_list("eval-photos.txt")
    check(not set(calib) & set(evals), "calibration and evaluation photos are disjoint")
    missing = [p for p in calib + evals if not os.path.exists(p)]
    if missing:
        sys.exit("test_quantize: missing photos (install python3-skimage and opencv-doc): %s" % missing)
    tmp = keep or tempfile.mkdtemp(prefix="ei-quantize-")
    os.makedirs(tmp, exist_ok=True)
    times = {}
    try:
        for m in models:
            times[m] = test_model(ei, m, tmp, calib[:nsamples], evals, nsamples, 0.99)
        if "tinycnn" in models:
            variants(ei, tmp, calib, evals)
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    for m, t in times.items():
        if t is not None:
            print("time: edgeinfer quantize %s (%d calibration samples, 2 compared): %.1f s" % (m, nsamples, t))
    print("%d failure(s)" % len(FAILS))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
