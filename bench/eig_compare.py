#!/usr/bin/python3
"""eirnn's batched eigenvalues (bench/eig_cpu) side by side with numpy, scipy and torch, fp64.

Every side times repeated passes over the same K random N x N matrices (entries N(0, 1/N), numpy
seed 0, written to a temporary HDF5 file that eig_cpu reads with --input) for at least --seconds:
  eirnn            bench/eig_cpu (its batched solver, all threads)
  numpy-loop       numpy.linalg.eigvals one matrix at a time
  numpy-batched    numpy.linalg.eigvals on the (K,N,N) stack
  scipy-loop       scipy.linalg.eigvals one matrix at a time (check_finite=False)
  torch-batched    torch.linalg.eigvals on the (K,N,N) stack (torch.set_num_threads = cores)
The sides alternate, size by size, for --rounds rounds, so that on a shared machine all see the
same background load; each keeps its median, and eirnn's speed-up is the median of the per-round
ratios to the fastest peer of the round. The script also checks that all give the same eigenvalues.
The peers are the current releases of the virtual environment of `tools/bootstrap --peers`
(/opt/eirnn-peers, or $EIRNN_PEER_PYTHON): the script re-runs itself with that interpreter. A peer
that is not importable is left out with a note. OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, when set,
are removed for the whole run.

Usage: bench/eig_compare.py [--bin build/bench/eig_cpu] [--sizes 100,256] [--k 256]
                            [--seconds 2] [--rounds 3]
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
_PEERS = os.environ.get("EIRNN_PEER_PYTHON") or "/opt/eirnn-peers/bin/python"
if any(v in os.environ for v in _FORCED) or (
    os.access(_PEERS, os.X_OK) and os.path.realpath(sys.prefix) != os.path.realpath(
        os.path.dirname(os.path.dirname(_PEERS))) and "EIRNN_EIG_COMPARE_REEXEC" not in os.environ
):
    env = {k: v for k, v in os.environ.items() if k not in _FORCED}
    env["EIRNN_EIG_COMPARE_REEXEC"] = "1"
    py = _PEERS if os.access(_PEERS, os.X_OK) else sys.executable
    os.execve(py, [py] + sys.argv, env)

import h5py  # noqa: E402
import numpy as np  # noqa: E402


def openblas_core():
    """Core name of the OpenBLAS that numpy loaded in this process."""
    with open("/proc/self/maps") as maps:
        libs = {line.split()[-1] for line in maps if "openblas" in line and ".so" in line}
    for lib in sorted(libs):
        # Debian's library, or the scipy-openblas build of numpy's wheels (prefixed symbols).
        for name in ("openblas_get_corename", "scipy_openblas_get_corename64_"):
            try:
                fn = getattr(ctypes.CDLL(lib), name)
            except (OSError, AttributeError):
                continue
            fn.restype = ctypes.c_char_p
            return fn().decode()
    return "unknown (numpy does not use OpenBLAS)"


def find_binary():
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    pattern = os.path.join(here, "build*", "bench", "eig_cpu")
    found = sorted(glob.glob(pattern), key=os.path.getmtime)
    if not found:
        sys.exit("eig_compare: build bench/eig_cpu first or pass --bin")
    return found[-1]


def peers(threads):
    """{name: (version, function of the (K,N,N) stack returning (K,N) eigenvalues)}."""
    found = {
        "numpy-loop": (np.__version__, lambda w: np.stack([np.linalg.eigvals(m) for m in w])),
        "numpy-batched": (np.__version__, np.linalg.eigvals),
    }
    try:
        import scipy
        import scipy.linalg

        found["scipy-loop"] = (
            scipy.__version__,
            lambda w: np.stack([scipy.linalg.eigvals(m, check_finite=False) for m in w]),
        )
    except ImportError:
        print("eig_compare: scipy is not importable: its column is missing", file=sys.stderr)
    try:
        import torch

        torch.set_num_threads(threads)
        found["torch-batched"] = (
            torch.__version__,
            lambda w: torch.linalg.eigvals(torch.from_numpy(w)).numpy(),
        )
    except ImportError:
        print("eig_compare: torch is not importable: its column is missing", file=sys.stderr)
    return found


def time_peer(fn, w, seconds):
    """Matrices per second of fn over the stack w, repeated for >= seconds; fn's eigenvalues."""
    fn(w[:2])  # warm-up
    count, t0 = 0, time.perf_counter()
    while True:
        eig = fn(w)
        count += len(w)
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return count / elapsed, eig


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
    p.add_argument("--sizes", default="100,256")
    p.add_argument("--k", type=int, default=256, help="matrices per size")
    p.add_argument("--seconds", type=float, default=2.0, help="minimum time per case and side")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds per size")
    args = p.parse_args()
    binary = args.bin or find_binary()
    sizes = [int(s) for s in args.sizes.split(",")]
    threads = len(os.sched_getaffinity(0))
    contenders = peers(threads)

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
            ours, theirs, ratios, diff = [], {name: [] for name in contenders}, [], 0.0
            for r in range(args.rounds):
                rate, header = time_eirnn(binary, inp, n, args.seconds, out if r == 0 else None)
                ours.append(rate)
                if r == 0:
                    with h5py.File(out, "r") as f:
                        eig = f[f"e{n}"][:]
                best = 0.0
                for name, (_, fn) in contenders.items():
                    their_rate, their_eig = time_peer(fn, mats[n], args.seconds)
                    theirs[name].append(their_rate)
                    best = max(best, their_rate)
                    if r == 0:
                        diff = max(
                            [diff] + [max_mismatch(their_eig[k], eig[k]) for k in range(3)]
                        )
                ratios.append(rate / best if best else float("nan"))
            med = {name: statistics.median(v) for name, v in theirs.items()}
            fastest = max(med, key=med.get) if med else None
            rows.append((n, statistics.median(ours), med, fastest, statistics.median(ratios),
                         min(ratios), max(ratios), diff))

    print(header)
    print("peers: " + ", ".join(f"{name} {v}" for name, (v, _) in contenders.items())
          + f" (python {sys.version.split()[0]} at {sys.executable}); "
          f"numpy's OpenBLAS core {openblas_core()}")
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(f"{threads} cores (load average now {' '.join(load)}), {args.k} matrices per "
          f"size, {args.rounds} alternating rounds of >= {args.seconds:g} s per side, fp64")
    print()
    names = list(contenders)
    print(f"{'N':>5} {'eirnn mat/s':>12} " + " ".join(f"{name + ' mat/s':>19}" for name in names)
          + f" {'vs fastest':>11} {'(min..max)':>13} {'max |dlambda|':>14}")
    for n, ours, med, fastest, ratio, lo, hi, diff in rows:
        spread = f"{lo:.2f}..{hi:.2f}x"
        print(f"{n:>5} {ours:>12.1f} " + " ".join(f"{med[name]:>19.1f}" for name in names)
              + f" {ratio:>10.2f}x {spread:>13} {diff:>14.1e}   fastest peer: {fastest}")


if __name__ == "__main__":
    main()
