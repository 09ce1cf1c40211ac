#!/usr/bin/python3
"""tests/compare_npy.py: compare the .npy outputs in two directories (or two .npy files) with a tolerance.

usage: tests/compare_npy.py GOT EXPECTED [--tol T] [--rtol R --atol A] [--only NAME[,NAME...]] [--quiet]

Every EXPECTED/*.npy must have a GOT/*.npy of the same shape (extra files in GOT are ignored). Float outputs:
by default max|got-exp| <= T * max(1, max|exp|) with T = 1e-4 (the project's model tolerance); with --rtol
and/or --atol, numpy.testing.assert_allclose style: |got-exp| <= atol + rtol*|exp| elementwise (defaults rtol 0,
atol 0 for the one not given). NaN must match NaN, +-inf must match exactly. Integer and bool outputs must be
equal (a float vs integer dtype mismatch is a failure; float32 vs float64 is not).
Prints one line per output (max error, limit, ok/FAIL) unless --quiet, which prints only failures.
Exit 0 when everything matches, 1 on any failure, 2 on a usage error.
"""
import os
import sys

import numpy as np


def usage(msg=None):
    if msg:
        sys.stderr.write("compare_npy: %s\n" % msg)
    sys.stderr.write("usage: compare_npy.py GOT EXPECTED [--tol T] [--rtol R --atol A] [--only NAMES] [--quiet]\n")
    sys.exit(2)


def parse_args(argv):
    opts = {"tol": None, "rtol": None, "atol": None, "only": None, "quiet": False}
    pos = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("--tol", "--rtol", "--atol", "--only"):
            if i + 1 >= len(argv):
                usage("%s needs a value" % a)
            v = argv[i + 1]
            i += 1
            if a == "--only":
                opts["only"] = [s for s in v.split(",") if s]
            else:
                try:
                    opts[a[2:]] = float(v)
                except ValueError:
                    usage("%s: bad number '%s'" % (a, v))
                if not opts[a[2:]] >= 0:
                    usage("%s must be >= 0" % a)
        elif a == "--quiet":
            opts["quiet"] = True
        elif a in ("-h", "--help"):
            print(__doc__.strip())
            sys.exit(0)
        elif a.startswith("--"):
            usage("unknown option %s" % a)
        else:
            pos.append(a)
        i += 1
    if len(pos) != 2:
        usage()
    if opts["tol"] is not None and (opts["rtol"] is not None or opts["atol"] is not None):
        usage("--tol and --rtol/--atol exclude each other")
    return pos[0], pos[1], opts


def pairs(got, exp, only):
    """[(label, got_file, exp_file)] for every expected output."""
    if os.path.isfile(exp):
        return [(os.path.basename(exp)[:-4] if exp.endswith(".npy") else exp, got, exp)]
    if not os.path.isdir(exp):
        usage("no such file or directory: %s" % exp)
    names = sorted(f[:-4] for f in os.listdir(exp) if f.endswith(".npy"))
    if only is not None:
        missing = [n for n in only if n not in names]
        if missing:
            usage("not in %s: %s" % (exp, ", ".join(missing)))
        names = only
    if not names:
        usage("no .npy files in %s" % exp)
    return [(n, os.path.join(got, n + ".npy"), os.path.join(exp, n + ".npy")) for n in names]


def compare(a, b, opts):
    """(ok, message) for got a vs expected b."""
    if a.shape != b.shape:
        return False, "shape %s, expected %s" % (a.shape, b.shape)
    fa, fb = a.dtype.kind in "fc", b.dtype.kind in "fc"
    if not fa or not fb:
        if fa != fb or (a.dtype.kind == "b") != (b.dtype.kind == "b"):
            return False, "dtype %s, expected %s" % (a.dtype, b.dtype)
        bad = int(np.count_nonzero(a != b))
        return bad == 0, "%s exact, %d of %d differ" % (b.dtype, bad, b.size)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    nan_a, nan_b = np.isnan(a64), np.isnan(b64)
    if np.any(nan_a != nan_b):
        return False, "NaN mismatch at %d positions" % int(np.count_nonzero(nan_a != nan_b))
    inf_any = np.isinf(b64) | np.isinf(a64)
    if np.any(a64[inf_any] != b64[inf_any]):
        return False, "inf mismatch at %d positions" % int(np.count_nonzero(a64[inf_any] != b64[inf_any]))
    fin = ~(nan_b | inf_any)
    diff = np.abs(a64[fin] - b64[fin])
    err = float(diff.max()) if diff.size else 0.0
    bmax = float(np.abs(b64[fin]).max()) if diff.size else 0.0
    if opts["rtol"] is None and opts["atol"] is None:
        tol = 1e-4 if opts["tol"] is None else opts["tol"]
        limit = tol * max(1.0, bmax)
        ok = err <= limit
        return ok, "max err %.3g, limit %.3g (max|exp| %.3g)" % (err, limit, bmax)
    rtol, atol = opts["rtol"] or 0.0, opts["atol"] or 0.0
    allowed = atol + rtol * np.abs(b64[fin])
    over = diff > allowed
    nbad = int(np.count_nonzero(over))
    worst = float((diff - allowed).max()) if diff.size else 0.0
    return nbad == 0, "max err %.3g, %d of %d over atol %g + rtol %g*|exp| (worst excess %.3g)" % (
        err, nbad, b.size, atol, rtol, max(worst, 0.0))


def load(path):
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        return e


def main(argv):
    got, exp, opts = parse_args(argv)
    failed = 0
    for label, gf, ef in pairs(got, exp, opts["only"]):
        b = load(ef)
        if isinstance(b, Exception):
            usage("cannot read %s: %s" % (ef, b))
        a = load(gf) if os.path.exists(gf) else FileNotFoundError("missing %s" % gf)
        if isinstance(a, Exception):
            ok, msg = False, str(a)
        else:
            ok, msg = compare(a, b, opts)
        failed += not ok
        if not ok or not opts["quiet"]:
            sys.stdout.write("%s: %s %s\n" % (label, msg, "ok" if ok else "FAIL"))
    if failed:
        sys.stderr.write("compare_npy: %d output(s) differ\n" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
