"""Trains 64 Dale networks (orthogonal init, projection) on a shortened AND task with the Python
package, then plots the eigenvalues of their recurrent matrices at the three stages (initial,
after the first projection, trained) and saves the figure. About half a minute on 2 cores.

    python examples/python_spectra.py [--out spectra.png]

Needs the package (`pip install .`, docs/PYTHON.md) and matplotlib. The model: docs/MODEL.md."""

import argparse
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import eirnn

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", default="spectra.png", help="figure file")
args = parser.parse_args()

t0 = time.monotonic()
result = eirnn.train(
    networks=64, units=40, init="orthogonal", dale="project", e_frac=0.5,
    task="and", first_in=5, stim_dur=10, mem_gap=5, var_delay=10, out_gap=50,  # T = 80 steps
    trials=650, test_trials=50, epochs=4, batch=32, lr=1e-3,
    progress=True,
)
print(f"trained {result.K} networks in {time.monotonic() - t0:.1f} s; "
      f"mean accuracy {np.nanmean(result.accuracy):.3f}, "
      f"trained r_outer {result.metrics['r_outer'].mean():.3f} ± {result.metrics['r_outer'].std():.3f}")

fig, axes = plt.subplots(1, 3, figsize=(12, 4), sharex=True, sharey=True)
circle = np.exp(1j * np.linspace(0, 2 * np.pi, 200))
for ax, stage in zip(axes, ("eig_initial", "eig_projected", "eig")):
    eig = result[stage].ravel()
    ax.scatter(eig.real, eig.imag, s=2, alpha=0.4)
    ax.plot(circle.real, circle.imag, "k--", lw=0.5)
    ax.set_title({"eig_initial": "initial", "eig_projected": "after the first projection",
                  "eig": "trained"}[stage])
    ax.set_xlabel("Re λ")
    ax.set_aspect("equal")
axes[0].set_ylabel("Im λ")
fig.suptitle(f"{result.K} Dale networks, N = {result.N} (eirnn {eirnn.__version__})")
fig.tight_layout()
fig.savefig(args.out, dpi=120)
print(f"figure -> {args.out}")
