#!/usr/bin/python3
"""Fixed-point search: eirnn (bench/dynamics_cpu, all networks at once) against a straightforward
SciPy reference (bench/peers/fixed_points_scipy.py, one network at a time) on the same problems,
in one run. Prints seconds per network for both, their ratio, and how many fixed points each found
on the networks the reference ran.

    bench/dynamics_compare.py --bin build/bench/dynamics_cpu [--networks 64 --units 100
        --starts 256 --ref-networks 4 --threads 0]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers"))
import fixed_points_scipy  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True, help="the dynamics_cpu benchmark program")
    ap.add_argument("--networks", type=int, default=64)
    ap.add_argument("--units", type=int, default=100)
    ap.add_argument("--starts", type=int, default=256)
    ap.add_argument("--gain", type=float, default=1.5)
    ap.add_argument("--threads", type=int, default=0, help="eirnn threads (0 = all cores)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--ref-networks", type=int, default=4,
                    help="networks the reference solves (it is slow; its time is per network)")
    a = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        dump = os.path.join(tmp, "problems.h5")
        cmd = [a.bin, "--networks", str(a.networks), "--units", str(a.units), "--starts",
               str(a.starts), "--gain", str(a.gain), "--threads", str(a.threads), "--repeat",
               str(a.repeat), "--dump", dump]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        sys.stdout.write(out)
        with h5py.File(dump, "r") as f:
            w, c, starts = f["w"][:], f["c"][:], f["starts"][:]
            n_fixed = f["n_fixed"][:]
            fixed_h, off = f["fixed_h"][:], f["fixed_offsets"][:]
            eirnn_s = float(f.attrs["eirnn_seconds_per_network"])

    R = min(a.ref_networks, a.networks)
    t0 = time.perf_counter()
    ref = [fixed_points_scipy.find_fixed_points(w[k], c[k], starts[k]) for k in range(R)]
    ref_s = (time.perf_counter() - t0) / R
    agree = 0
    ref_fixed = 0
    for k in range(R):
        pts = [p[0] for p in ref[k] if p[2]]
        ref_fixed += len(pts)
        mine = fixed_h[off[k]:off[k + 1]]
        for h in pts:
            if len(mine) and np.min(np.max(np.abs(mine - h), axis=1)) < 1e-6:
                agree += 1
    print(f"reference (scipy least_squares lm, one network at a time): {R} networks, "
          f"{ref_s:.3f} s/network")
    print(f"fixed points on those networks: eirnn {int(n_fixed[:R].sum())}, reference {ref_fixed},"
          f" of which eirnn also found {agree}")
    print(f"RESULT ratio_reference_over_eirnn {ref_s / eirnn_s:.1f}")


if __name__ == "__main__":
    main()
