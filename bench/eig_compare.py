#!/usr/bin/python3
"""eirnn's batched eigenvalues (bench/eig_cpu) side by side with numpy.linalg.eigvals in a loop.

Both time repeated passes over the same K random N x N matrices (entries N(0, 1/N), numpy seed 0,
written to a temporary HDF5 file that eig_cpu reads with --input) for at least --seconds per case.
The two sides alternate, size by size, for --rounds rounds, so that on a shared machine both see the
same background load; the speed-up reported is the median of the per-round ratios. The script also
checks that both give the same eigenvalues. OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, when set, are
removed for the whole run (both sides load the same OpenBLAS; a forced core type slows a current
build), and the OpenBLAS kernel each side runs is printed.

Usage: /usr/bin/python3 bench/eig_compare.py [--bin build/bench/eig_cpu] [--sizes 100,256,500]
                                             [--k 24] [--seconds 2] [--rounds 3]
"""
import argparse
import ctypes
import glob
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

_FORCED = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if any(v in os.environ for v in _FORCED):
    env = {k: v for k, v in os.environ.items() if k not in _FORCED}
    os.execve(sys.executable, [sys.executable] + sys.argv, env)

import h5py  # noqa: E402
import numpy as np  # noqa: E402


def openblas_core():
    """Core name of the OpenBLAS that numpy loaded in this process."""
    with open("/proc/self/maps") as maps:
        libs = {line.split()[-1] for line in maps if "openblas" in line and ".so" in line}
    for lib in sorted(libs):
        try:
            fn = ctypes.CDLL(lib).openblas_get_corename
            fn.restype = ctypes.c_char_p
            return fn().decode()
        except (OSError, AttributeError):
            continue
    return "unknown (numpy does not use OpenBLAS)"


def find_binary():
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    pattern = os.path.join(here, "build*", "bench", "eig_cpu")
    found = sorted(glob.glob(pattern), key=os.path.getmtime)
    if not found:
        sys.exit("eig_compare: build bench/eig_cpu first or pass --bin")
    return found[-1]


def time_numpy(w, seconds):
    """Matrices per second of numpy.linalg.eigvals over the stack w, repeated for >= seconds."""
    for k in range(min(2, len(w))):  # warm-up
        np.linalg.eigvals(w[k])
    count, t0 = 0, time.perf_counter()
    while True:
        for k in range(len(w)):
            np.linalg.eigvals(w[k])
        count += len(w)
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return count / elapsed


def time_eirnn(binary, inp, n, seconds, out=None):
    """Matrices per second of eig_cpu over the dataset n<n> of inp; its header line."""
    cmd = [binary, "--input", inp, "--sizes", str(n), "--seconds", str(seconds)]
    if out:
        cmd += ["--output", out]
    run = subprocess.run(cmd, capture_output=True, text=True, check=True)
    m = re.search(r"RESULT N=\d+ .* rate=([\d.]+)", run.stdout)
    return float(m.group(1)), run.stdout.splitlines()[0]


def max_mismatch(a, b):
    """Largest distance from each eigenvalue in a to its nearest unused one in b."""
    b = list(b)
    worst = 0.0
    for z in a:
        d = np.abs(np.array(b) - z)
        i = int(np.argmin(d))
        worst = max(worst, float(d[i]))
        b.pop(i)
    return worst


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bin", help="eig_cpu to run (default: the newest build*/bench/eig_cpu)")
    p.add_argument("--sizes", default="100,256,500")
    p.add_argument("--k", type=int, default=24, help="matrices per size")
    p.add_argument("--seconds", type=float, default=2.0, help="minimum time per case and side")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds per size")
    args = p.parse_args()
    binary = args.bin or find_binary()
    sizes = [int(s) for s in args.sizes.split(",")]

    rng = np.random.default_rng(0)
    mats = {n: rng.normal(0.0, 1.0 / np.sqrt(n), size=(args.k, n, n)) for n in sizes}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = os.path.join(tmp, "in.h5"), os.path.join(tmp, "eig.h5")
        with h5py.File(inp, "w") as f:
            for n, w in mats.items():
                f[f"n{n}"] = w
        header = ""
        for n in sizes:
            ours, theirs = [], []
            for r in range(args.rounds):
                rate, header = time_eirnn(binary, inp, n, args.seconds, out if r == 0 else None)
                ours.append(rate)
                theirs.append(time_numpy(mats[n], args.seconds))
                if r == 0:
                    with h5py.File(out, "r") as f:
                        eig = f[f"e{n}"][:]
            diff = max(max_mismatch(np.linalg.eigvals(mats[n][k]), eig[k]) for k in range(3))
            ratios = [a / b for a, b in zip(ours, theirs)]
            rows.append((n, statistics.median(ours), statistics.median(theirs),
                         statistics.median(ratios), min(ratios), max(ratios), diff))

    print(header)
    print(f"numpy {np.__version__} linalg.eigvals, one matrix at a time: "
          f"OpenBLAS core {openblas_core()}")
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(f"{os.cpu_count()} cores (load average now {' '.join(load)}), {args.k} matrices per "
          f"size, {args.rounds} alternating rounds of >= {args.seconds:g} s per side")
    print()
    print(f"{'N':>5} {'eirnn mat/s':>12} {'numpy mat/s':>12} {'speed-up':>9} {'(min..max)':>13} "
          f"{'max |dlambda|':>14}")
    for n, ours, theirs, ratio, lo, hi, diff in rows:
        spread = f"{lo:.2f}..{hi:.2f}x"
        print(f"{n:>5} {ours:>12.1f} {theirs:>12.1f} {ratio:>8.2f}x {spread:>13} {diff:>14.1e}")


if __name__ == "__main__":
    main()
