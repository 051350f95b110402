"""Fixed points of the trained networks (the `dynamics/` subgroup written by `eirnn dynamics`, see
docs/FORMAT.md): the distribution of the number of stable fixed points per condition and input, the
flip-flop statement, and figures of the fixed points in the example network's top-3 PCA space and of
the Jacobian spectra at the fixed points over the spectrum of W.
"""
import json

import numpy as np

from .data import Results, family_label
from .plotting import FigureFile, circle, finish, no_data, save, slug, subplots
from .stats import mean_sem

STABILITY_STYLE = {0: ("stable", "tab:blue", "o"), 1: ("saddle", "tab:red", "x"),
                   2: ("unstable", "tab:purple", "^")}
MAX_COUNT = 3  # histogram bins 0, 1, 2, >= 3 stable fixed points


class Dynamics:
    """One group's `dynamics/`: conditions (C), status / n_stable (C,K), ragged points."""

    def __init__(self, node):
        self.node = node
        self.conditions = json.loads(_text(node.attrs["conditions"]))
        self.status = np.asarray(node["status"][()])
        self.n_stable = np.asarray(node["n_stable"][()])
        self.n_fixed = np.asarray(node["n_fixed"][()])
        self.offsets = np.asarray(node["offsets"][()]).astype(np.int64)
        self.K = self.status.shape[1]

    def points(self, c: int, k: int) -> dict:
        """h (P,N), kind, stability, eig_J (P,N) of network k under condition c."""
        lo, hi = self.offsets[c * self.K + k], self.offsets[c * self.K + k + 1]
        out = {name: np.asarray(self.node[name][lo:hi]) for name in ("h", "kind", "stability")}
        eig = np.asarray(self.node["eig_J"][lo:hi])
        if eig.dtype.names:
            eig = eig[eig.dtype.names[0]] + 1j * eig[eig.dtype.names[1]]
        out["eig_J"] = eig
        return out


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def group_dynamics(group):
    """The group's Dynamics, or None when the file has none for it."""
    node = group.dynamics
    if node is None:
        return None
    try:
        return Dynamics(node)
    except (KeyError, ValueError, TypeError):
        return None


def cells_with_dynamics(results: Results) -> list:
    return [c for c in results.cells if any(group_dynamics(g) is not None for g in c.groups)]


def _counts(cell, condition: str) -> np.ndarray:
    """Numbers of stable fixed points of the learned, analysed networks of a cell under one input
    condition (by name)."""
    values = []
    for group in cell.groups:
        d = group_dynamics(group)
        if d is None or condition not in d.conditions:
            continue
        c = d.conditions.index(condition)
        learned = _learned(group)
        for k in range(d.K):
            if learned[k] and d.status[c, k] == 0:
                values.append(int(d.n_stable[c, k]))
    return np.asarray(values, dtype=int)


def _learned(group) -> np.ndarray:
    acc = np.where(np.isfinite(group.accuracy), group.accuracy, -1.0)
    return (acc >= 0.9) & ~group.diverged


def _conditions(cells) -> list:
    names = []
    for cell in cells:
        for group in cell.groups:
            d = group_dynamics(group)
            for name in d.conditions if d is not None else []:
                if name not in names:
                    names.append(name)
    return names


def _distribution(counts: np.ndarray) -> str:
    parts = [f"{b}: {int((counts == b).sum())}" for b in range(MAX_COUNT)]
    parts.append(f"≥{MAX_COUNT}: {int((counts >= MAX_COUNT).sum())}")
    return ", ".join(parts)


def fixed_point_section(doc, results: Results) -> None:
    """The table of stable-fixed-point counts per condition and input, and the flip-flop line."""
    cells = cells_with_dynamics(results)
    if not cells:
        return
    doc.heading(2, "Fixed points (eirnn dynamics)")
    doc.paragraph("Number of stable fixed points (no Jacobian eigenvalue of modulus > 1) of each "
                  "learned network, per condition and constant input; networks skipped by the "
                  "search (diverged, non-finite) are left out.")
    rows = []
    for cell in cells:
        for name in _conditions([cell]):
            counts = _counts(cell, name)
            mean, sem, n = mean_sem(counts.astype(float))
            rows.append([cell.condition.label(), name, n, _distribution(counts),
                         f"{mean:.2f} ± {sem:.2f}" if n > 1 else (f"{mean:.2f}" if n else "n/a")])
    doc.table(["condition", "input", "networks", "stable fixed points: networks with 0, 1, 2, ≥3",
               "mean ± s.e.m."], rows)
    statements = flip_flop_statements(results)
    if statements:
        doc.bullets(statements)


def flip_flop_statements(results: Results) -> list:
    """For flip-flop cells: how many learned networks hold at least two stable fixed points at
    zero input (a 1-bit memory needs two)."""
    out = []
    for cell in cells_with_dynamics(results):
        if cell.condition.task not in ("ff", "flipflop", "flip_flop"):
            continue
        counts = _counts(cell, "zero")
        if counts.size == 0:
            out.append(f"Flip-flop, {cell.condition.label(False)}: no learned network was "
                       "analysed at zero input.")
            continue
        two = int((counts >= 2).sum())
        out.append(f"Flip-flop, {cell.condition.label(False)}: {two} of {counts.size} learned "
                   f"networks have at least two stable fixed points at zero input (a 1-bit memory "
                   f"held in fixed points needs two); "
                   f"distribution {_distribution(counts)}.")
    return out


def _count_figure(results: Results, out_dir: str, family) -> list:
    cells = [c for c in cells_with_dynamics(results) if c.condition.family == family]
    if not cells:
        return []
    names = _conditions(cells)
    fig, axes = subplots(1, len(names), max(4.5, 0.5 * len(cells) + 1.5), 3.6)
    for ax, name in zip(axes[0], names):
        labels, bottoms = [], np.zeros(len(cells))
        fractions = np.zeros((MAX_COUNT + 1, len(cells)))
        for i, cell in enumerate(cells):
            counts = _counts(cell, name)
            c = cell.condition
            labels.append(f"{c.init[:4]} {c.dale}\nN={c.units} f_E={c.e_frac:g}\n(n={counts.size})")
            for b in range(MAX_COUNT + 1):
                hit = counts >= b if b == MAX_COUNT else counts == b
                fractions[b, i] = hit.mean() if counts.size else 0.0
        x = np.arange(len(cells))
        for b in range(MAX_COUNT + 1):
            ax.bar(x, fractions[b], bottom=bottoms, color=f"C{b}",
                   label=f"{b} stable" if b < MAX_COUNT else f"≥{MAX_COUNT} stable")
            bottoms += fractions[b]
        ax.set_xticks(x)
        ax.set_xticklabels(labels, fontsize=6, rotation=90)
        ax.set_ylim(0, 1)
        ax.set_ylabel("fraction of learned networks")
        ax.set_title(f"input {name}")
    title = f"Stable fixed points per network:\n{family_label(family)}"
    finish(fig, title, legend_axes=axes[0, :1])
    path = save(fig, out_dir, slug("fixed_points_count", *family))
    return [FigureFile("Fixed points", path, title,
                       "Fraction of the learned networks of each condition with 0, 1, 2 or ≥3 "
                       "stable fixed points, per constant input.")]


def _example(cell):
    """(group, Dynamics, k) of the cell's example network, when it has dynamics and examples."""
    group = cell.example_group()
    if group is None:
        return None
    d = group_dynamics(group)
    k = group.example_network
    if d is None or not 0 <= k < d.K or d.status[0, k] != 0:
        return None
    return group, d, k


def _pca3(h: np.ndarray):
    """(S,T,N) -> mean (N), components (3,N), explained fractions (3)."""
    flat = h.reshape(-1, h.shape[-1]).astype(np.float64)
    mean = flat.mean(axis=0)
    _, singular, vt = np.linalg.svd(flat - mean, full_matrices=False)
    total = float((singular ** 2).sum())
    comps = np.zeros((3, flat.shape[1]))
    explained = np.zeros(3)
    m = min(3, vt.shape[0])
    comps[:m] = vt[:m]
    if total > 0:
        explained[:m] = singular[:m] ** 2 / total
    return mean, comps, explained


def _pca_figure(results: Results, out_dir: str, family, init, dale) -> list:
    cells = [c for c in cells_with_dynamics(results) if c.condition.family == family
             and c.condition.init == init and c.condition.dale == dale]
    cells = [c for c in sorted(cells, key=lambda c: (c.condition.units, c.condition.e_frac))
             if _example(c) is not None]
    if not cells:
        return []
    fig, axes = subplots(1, len(cells), max(4.5, 9.0 / len(cells)), 4.5,
                         subplot_kw={"projection": "3d"})
    for ax, cell in zip(axes[0], cells):
        group, d, k = _example(cell)
        h = np.asarray(group.examples["h"][()], dtype=np.float64)
        y = np.asarray(group.examples["y"][()])
        mean, comps, explained = _pca3(h)
        for s in range(h.shape[0]):
            p = (h[s] - mean) @ comps.T
            target = float(y[s, -1, 0]) if y.shape[2] else 0.0
            ax.plot(p[:, 0], p[:, 1], p[:, 2], lw=0.7, alpha=0.6,
                    color="tab:green" if target > 0.5 else "tab:gray",
                    label="held-out trial, final target 1" if target > 0.5
                    else "held-out trial, final target 0")
        pts = d.points(0, k)
        proj = (pts["h"] - mean) @ comps.T if len(pts["h"]) else np.zeros((0, 3))
        for code, (label, color, marker) in STABILITY_STYLE.items():
            sel = (pts["kind"] == 0) & (pts["stability"] == code)
            if sel.any():
                ax.scatter(proj[sel, 0], proj[sel, 1], proj[sel, 2], color=color, marker=marker,
                           s=40, depthshade=False, label=f"{label} fixed point")
        slow = pts["kind"] == 1
        if slow.any():
            ax.scatter(proj[slow, 0], proj[slow, 1], proj[slow, 2], color="0.5", marker=".", s=8,
                       depthshade=False, label="slow point")
        c = cell.condition
        ax.set_title(f"N={c.units}, f_E={c.e_frac:g}, network {k}\ninput {d.conditions[0]}",
                     fontsize=8)
        ax.set_xlabel(f"PC1 ({explained[0]:.0%})", fontsize=7)
        ax.set_ylabel(f"PC2 ({explained[1]:.0%})", fontsize=7)
        ax.set_zlabel(f"PC3 ({explained[2]:.0%})", fontsize=7)
    title = (f"Fixed points and trajectories (top-3 PCs):\n{family_label(family)}, {init} init, "
             f"dale={dale}")
    finish(fig, title, legend_axes=axes[0])
    path = save(fig, out_dir, slug("fixed_points_pca", *family, init, dale))
    return [FigureFile("Fixed points", path, title,
                       "The example network of each condition: held-out trajectories and the fixed "
                       "points of the first input condition (usually zero input) projected on the "
                       "trajectories' first three principal components.")]


def _jacobian_figure(results: Results, out_dir: str, family, init, dale) -> list:
    cells = [c for c in cells_with_dynamics(results) if c.condition.family == family
             and c.condition.init == init and c.condition.dale == dale]
    cells = [c for c in sorted(cells, key=lambda c: (c.condition.units, c.condition.e_frac))
             if _example(c) is not None]
    if not cells:
        return []
    fig, axes = subplots(1, len(cells), max(3.6, 7.2 / len(cells)), 3.6)
    for ax, cell in zip(axes[0], cells):
        group, d, k = _example(cell)
        pts = d.points(0, k)
        if "trained" in group.eig:
            lam = group.eig["trained"][k]
            ax.scatter(lam.real, lam.imag, s=6, color="0.6", label="W (trained)")
        fixed = np.flatnonzero(pts["kind"] == 0)
        if fixed.size == 0:
            no_data(ax, "no fixed point")
            continue
        for p in fixed:
            label, color, marker = STABILITY_STYLE[int(pts["stability"][p])]
            lam = pts["eig_J"][p]
            ax.scatter(lam.real, lam.imag, s=8, color=color, marker=marker,
                       label=f"J at a {label} fixed point", alpha=0.8)
        circle(ax, 1.0, color="black", lw=0.8, ls="--")
        ax.set_aspect("equal")
        c = cell.condition
        ax.set_title(f"N={c.units}, f_E={c.e_frac:g}, network {k}", fontsize=8)
        ax.set_xlabel("Re λ")
        ax.set_ylabel("Im λ")
    title = (f"Jacobian spectra at the fixed points over W's spectrum:\n"
             f"{family_label(family)}, {init} init, dale={dale}")
    finish(fig, title, legend_axes=axes[0])
    path = save(fig, out_dir, slug("fixed_points_jacobian", *family, init, dale))
    return [FigureFile("Fixed points", path, title,
                       "Eigenvalues of W (grey) and of the Jacobian J = diag(1 − tanh²) W "
                       "(α = 1; (1−α) I + α diag(1 − tanh²) W in general) at each fixed point of "
                       "the example network at the first input condition; dashed: unit circle.")]


def fixed_point_figures(results: Results, out_dir: str) -> list:
    figures = []
    cells = cells_with_dynamics(results)
    for family in sorted({c.condition.family for c in cells}):
        figures += _count_figure(results, out_dir, family)
        for init, dale in sorted({(c.condition.init, c.condition.dale) for c in cells
                                  if c.condition.family == family}):
            figures += _pca_figure(results, out_dir, family, init, dale)
            figures += _jacobian_figure(results, out_dir, family, init, dale)
    return figures
