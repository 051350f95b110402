#!/usr/bin/env python3
"""torch.linalg.eigvals on the GPU, the PyTorch side of bench/eig_gpu: matrices per second of all
N eigenvalues (float64) of K random N x N matrices (entries N(0, 1/N), drawn on the device by a
torch.Generator seeded with --seed: the same distribution as eig_gpu's matrices, not the same
values), in one batched call on the (K, N, N) tensor. The data are on the GPU before the clock
starts and the eigenvalues stay there, which favours torch over eig_gpu's end-to-end rows (host
doubles in, sorted eigenvalues out). A warm-up call comes first and torch.cuda.synchronize()
brackets the timed call. When the estimated time of K matrices exceeds --max-seconds, K is cut to
fit (one call still). The first --check matrices are compared with numpy.linalg.eigvals (both
sorted as eirnn's sort_spectrum sorts: descending modulus, then real, then imaginary part). Prints
rows in bench/eig_gpu's table format; exits 77 when torch or a CUDA device is missing.

Usage: python3 bench/eig_torch.py [--sizes 100:10000,256:1000] [--quick] [--max-seconds 15]
                                  [--seed 1] [--check 16]
"""
import argparse
import math
import sys
import time

REL_TOL = 1e-9  # mismatch: > REL_TOL * max(1, ||W||_F) after nearest-neighbour matching
ROW = "%-32s %5s %7s %10s %12s %13s %10s  %s"


def parse_sizes(text):
    cases = []
    for item in text.split(","):
        n, _, k = item.partition(":")
        if not k:
            raise argparse.ArgumentTypeError(f"expected N:K, got {item}")
        cases.append((int(n), int(k)))
    return cases


def sort_spectrum(np, e):
    """eirnn's order: descending modulus, then larger real part, then larger imaginary part."""
    return e[np.lexsort((-e.imag, -e.real, -np.abs(e)))]


def check(np, w, eig):
    """Largest sorted difference and the count of matrices beyond the tolerance after greedy
    nearest-neighbour matching, torch's spectra eig (k, N) against numpy's on w (k, N, N)."""
    max_sorted, mismatched = 0.0, 0
    for a_w, a in zip(w, eig):
        ref = sort_spectrum(np, np.linalg.eigvals(a_w))
        a = sort_spectrum(np, a)
        max_sorted = max(max_sorted, float(np.max(np.abs(a - ref))))
        tol = REL_TOL * max(1.0, float(np.linalg.norm(a_w)))
        used = np.zeros(len(ref), dtype=bool)
        worst = 0.0
        for z in a:
            d = np.where(used, np.inf, np.abs(ref - z))
            j = int(np.argmin(d))
            used[j] = True
            worst = max(worst, float(d[j]))
        if not worst <= tol:
            mismatched += 1
    return max_sorted, mismatched


def run_case(torch, np, n, k, args, warnings):
    gen = torch.Generator(device="cuda")
    gen.manual_seed(args.seed)
    w = torch.randn((k, n, n), generator=gen, dtype=torch.float64, device="cuda") / math.sqrt(n)
    torch.linalg.eigvals(w[: min(k, 4)])  # warm-up: library load, workspaces
    torch.cuda.synchronize()
    probe = min(k, 32)
    t0 = time.perf_counter()
    torch.linalg.eigvals(w[:probe])
    torch.cuda.synchronize()
    per_matrix = (time.perf_counter() - t0) / probe
    timed = k
    note = "one call on (K,N,N), data on the GPU"
    if per_matrix * k > args.max_seconds:
        timed = max(probe, int(args.max_seconds / per_matrix))
        if timed < k:
            note += f"; K cut from {k} to fit --max-seconds {args.max_seconds:g}"
        timed = min(timed, k)
    x = w[:timed].contiguous()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    eig = torch.linalg.eigvals(x)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    diff, mism = "-", "-"
    if np is not None and args.check > 0:
        c = min(args.check, timed)
        max_sorted, mismatched = check(np, x[:c].cpu().numpy(), eig[:c].cpu().numpy())
        diff, mism = f"{max_sorted:.1e}", str(mismatched)
        note += f"; first {c} checked against numpy"
        if mismatched:
            warnings.append(f"MISMATCH N={n} torch.linalg.eigvals: {mismatched} of {c} matrices "
                            f"differ from numpy by more than {REL_TOL:.0e} max(1, ||W||_F)")
    print(f"eig_torch: N={n}: {timed} matrices in {seconds:.3f} s", file=sys.stderr)
    return ROW % ("torch.linalg.eigvals", n, timed, f"{seconds:.3f}", f"{timed / seconds:.1f}",
                  diff, mism, note)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=parse_sizes, default=[(100, 10000), (256, 1000)],
                   help="N:K,... (default 100:10000,256:1000)")
    p.add_argument("--quick", action="store_true", help="K = 2000 at N = 100, 200 at N = 256")
    p.add_argument("--max-seconds", type=float, default=15.0,
                   help="cut K so that one case's timed call takes about this long")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--check", type=int, default=16,
                   help="matrices compared with numpy.linalg.eigvals (0: none)")
    args = p.parse_args()
    if args.quick:
        args.sizes = [(100, 2000), (256, 200)]
        args.max_seconds = min(args.max_seconds, 5.0)
    try:
        import torch
    except ImportError as e:
        print(f"eig_torch: PyTorch is missing ({e})", file=sys.stderr)
        return 77
    if not torch.cuda.is_available():
        print(f"eig_torch: no CUDA device for torch {torch.__version__}", file=sys.stderr)
        return 77
    try:
        import numpy as np
    except ImportError:
        np = None
    warnings = []
    rows = [run_case(torch, np, n, k, args, warnings) for n, k in args.sizes]
    print(f"torch.linalg.eigvals, device: {torch.cuda.get_device_name()} "
          f"(torch {torch.__version__}, CUDA {torch.version.cuda}); float64, matrices N(0, 1/N) "
          f"from torch seed {args.seed}")
    print(ROW % ("", "N", "K", "seconds", "matrices/s", "max|dlambda|", "mismatched", "note"))
    for row in rows:
        print(row)
    print("(max|dlambda|, mismatched: against numpy.linalg.eigvals, as in bench/eig_gpu)")
    for line in warnings:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
