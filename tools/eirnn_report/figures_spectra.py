"""Spectral figures: eigenvalue clouds, histograms of the radii, r_outer vs N and vs f_E, and
constrained vs unconstrained networks. Every statistic is over the networks that learned.
"""
import numpy as np

from .data import STAGES, STAGE_TITLES, Cell, Results, family_label
from .plotting import DALE_COLORS, FigureFile, circle, finish, no_data, save, slug, subplots
from .stats import mean_sem

# docs/MODEL.md §7: bulk radius after one projection
PROJECTED_DISC = float(np.sqrt(0.5 - 0.5 / np.pi))
_LEGEND_CIRCLES = (("unit circle", {"color": "black", "lw": 0.8}),
                   ("mean r_outer", {"color": "tab:red", "lw": 1.4}),
                   ("mean r_inner", {"color": "tab:green", "lw": 1.2, "ls": ":"}),
                   ("mean r_inner_p2", {"color": "tab:green", "lw": 1.2, "ls": "--"}))


def _row_label(cell: Cell) -> str:
    c = cell.condition
    return f"N={c.units}, f_E={c.e_frac:g}\nlearned {int(cell.learned.sum())}/{cell.n_networks}"


def _axis_limit(cells: list) -> float:
    moduli = np.concatenate([np.abs(c.eig(s)).ravel() for c in cells for s in STAGES])
    return max(1.15, 1.05 * float(np.quantile(moduli, 0.995)))


def _cloud(ax, cell: Cell, stage: str, limit: float) -> None:
    """All networks' eigenvalues overlaid (learned in colour) with the mean radii of the learned."""
    lam, learned = cell.eig(stage), cell.learned
    ax.scatter(lam[~learned].real, lam[~learned].imag, s=3, color="0.7", alpha=0.5, lw=0,
               label="not learned")
    ax.scatter(lam[learned].real, lam[learned].imag, s=3, color="tab:blue", alpha=0.5, lw=0,
               label="learned")
    circle(ax, 1.0, label=_LEGEND_CIRCLES[0][0], **_LEGEND_CIRCLES[0][1])
    if learned.any():
        for (label, style), name in zip(_LEGEND_CIRCLES[1:], ("r_outer", "r_inner", "r_inner_p2")):
            circle(ax, mean_sem(cell.counted(stage, name))[0], label=label, **style)
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")


def _groups_by(results: Results, *keys) -> dict:
    """Cells with spectra grouped by the condition attributes in keys (always including family)."""
    out = {}
    for cell in results.cells:
        if cell.has_spectra:
            key = (cell.condition.family,) + tuple(getattr(cell.condition, k) for k in keys)
            out.setdefault(key, []).append(cell)
    return out


def cloud_figures(results: Results, out_dir: str) -> list:
    """One figure per (task, init, dale): rows are (N, f_E), columns the three stages."""
    figures = []
    for (family, init, dale), cells in _groups_by(results, "init", "dale").items():
        cells = sorted(cells, key=lambda c: (c.condition.units, c.condition.e_frac))
        fig, axes = subplots(len(cells), 3, 3.0, 3.0)
        limit = _axis_limit(cells)
        for row, cell in enumerate(cells):
            for col, stage in enumerate(STAGES):
                _cloud(axes[row, col], cell, stage, limit)
                axes[row, col].set_xlabel("Re λ")
                axes[0, col].set_title(STAGE_TITLES[stage])
            axes[row, 0].set_ylabel(f"{_row_label(cell)}\nIm λ")
        title = f"Eigenvalues of W_rec: {family_label(family)}, {init} init, dale={dale}"
        finish(fig, title, axes, markerscale=4)
        path = save(fig, out_dir, slug("clouds", *family, init, dale))
        figures.append(FigureFile("Eigenvalue clouds", path, title,
                                  "All networks overlaid (grey: did not learn); circles: means "
                                  "over the learned networks; axes clipped at the 99.5th "
                                  "percentile of |λ|."))
    return figures


def histogram_figures(results: Results, out_dir: str) -> list:
    """One figure per (task, init, dale): r_outer, r_inner, r_inner_p2 by stage, a line per cell."""
    figures = []
    metrics = ("r_outer", "r_inner", "r_inner_p2")
    for (family, init, dale), cells in _groups_by(results, "init", "dale").items():
        fig, axes = subplots(len(metrics), 3, 3.4, 2.6)
        for row, name in enumerate(metrics):
            for col, stage in enumerate(STAGES):
                ax = axes[row, col]
                series = [(c, c.counted(stage, name)) for c in cells]
                series = [(c, v[np.isfinite(v)]) for c, v in series if np.isfinite(v).any()]
                if not series:
                    no_data(ax, "no learned networks")
                    continue
                values = np.concatenate([v for _, v in series])
                bins = np.linspace(values.min() - 1e-3, values.max() + 1e-3, 16)
                for cell, v in series:
                    label = f"N={cell.condition.units}, f_E={cell.condition.e_frac:g} (n={v.size})"
                    ax.hist(v, bins=bins, histtype="step", lw=1.4, label=label)
                ax.set_xlabel(name)
                ax.set_ylabel("networks")
                ax.set_title(f"{name}, {STAGE_TITLES[stage]}")
        title = f"Radii of the learned networks: {family_label(family)}, {init} init, dale={dale}"
        finish(fig, title, axes)
        path = save(fig, out_dir, slug("hist", *family, init, dale))
        figures.append(FigureFile("Histograms of the radii", path, title,
                                  "Per condition, networks with accuracy >= 0.9 only."))
    return figures


def _vs_factor_figure(results: Results, out_dir: str, family, factor: str, symbol: str,
                      series_key: str, series_symbol: str) -> FigureFile | None:
    cells = [c for c in results.cells if c.condition.family == family and c.has_spectra]
    inits = sorted({c.condition.init for c in cells})
    if not cells:
        return None
    fig, axes = subplots(len(STAGES), len(inits), 4.2, 2.9, sharey="row")
    for col, init in enumerate(inits):
        series = {}
        for cell in cells:
            if cell.condition.init == init:
                key = (cell.condition.dale, getattr(cell.condition, series_key))
                series.setdefault(key, []).append(cell)
        for row, stage in enumerate(STAGES):
            ax = axes[row, col]
            for (dale, level), members in sorted(series.items()):
                members.sort(key=lambda c: getattr(c.condition, factor))
                stats = [mean_sem(c.counted(stage, "r_outer")) for c in members]
                x = [getattr(c.condition, factor) for c, s in zip(members, stats) if s[2] > 0]
                y = [s[0] for s in stats if s[2] > 0]
                err = [np.nan_to_num(s[1]) for s in stats if s[2] > 0]
                if x:
                    ax.errorbar(x, y, yerr=err, marker="o", capsize=3,
                                ls="-" if dale != "none" else "--",
                                label=f"dale={dale}, {series_symbol}={level:g}")
            ax.axhline(1.0, color="black", lw=0.8, ls=":", label="unit radius")
            ax.axhline(PROJECTED_DISC, color="tab:orange", lw=0.8, ls=":",
                       label=f"one projection, N→∞ ({PROJECTED_DISC:.3f})")
            ax.set_title(f"{init} init, {STAGE_TITLES[stage]}")
            ax.set_xlabel(symbol)
            ax.set_ylabel("r_outer (mean ± s.e.m.)")
    title = f"r_outer vs {symbol}: {family_label(family)} (learned networks)"
    finish(fig, title, axes)
    path = save(fig, out_dir, slug("r_outer_vs", factor, *family))
    return FigureFile(f"r_outer vs {symbol}", path, title,
                      f"Mean ± s.e.m. over the learned networks of each cell; one line per "
                      f"(dale, {series_symbol}); dashed: unconstrained.")


def factor_figures(results: Results, out_dir: str) -> list:
    """r_outer vs N and r_outer vs f_E, one figure per task."""
    figures = []
    for family in results.families:
        for factor, symbol, key, key_symbol in (("units", "N", "e_frac", "f_E"),
                                                ("e_frac", "f_E", "units", "N")):
            figure = _vs_factor_figure(results, out_dir, family, factor, symbol, key, key_symbol)
            if figure:
                figures.append(figure)
    return figures


def _strip(ax, cells: list, stage: str) -> None:
    """Per (N, f_E): the learned networks' r_outer, Dale modes and unconstrained side by side."""
    positions = sorted({(c.condition.units, c.condition.e_frac) for c in cells})
    modes = sorted({c.condition.dale for c in cells})
    width = 0.8 / max(len(modes), 1)
    rng = np.random.default_rng(0)
    for i, pos in enumerate(positions):
        for j, mode in enumerate(modes):
            values = np.concatenate([c.counted(stage, "r_outer") for c in cells
                                     if (c.condition.units, c.condition.e_frac) == pos
                                     and c.condition.dale == mode] or [[]])
            values = values[np.isfinite(values)]
            x = i - 0.4 + width * (j + 0.5)
            color = DALE_COLORS.get(mode, "tab:gray")
            ax.scatter(x + rng.uniform(-0.15, 0.15, values.size) * width, values, s=10,
                       color=color, alpha=0.6, lw=0, label=f"dale={mode}")
            mean, sem, n = mean_sem(values)
            if n:
                ax.errorbar(x, mean, yerr=np.nan_to_num(sem), fmt="_", color="black", ms=12,
                            capsize=3)
    ax.set_xticks(range(len(positions)))
    ax.set_xticklabels([f"N={u}\nf_E={e:g}" for u, e in positions])
    ax.axhline(1.0, color="black", lw=0.8, ls=":")
    ax.set_ylabel("r_outer")
    ax.set_title(STAGE_TITLES[stage])


def constraint_figures(results: Results, out_dir: str) -> list:
    """Per (task, init): r_outer of Dale vs unconstrained networks, and their trained spectra."""
    figures = []
    for (family, init), cells in _groups_by(results, "init").items():
        if len({c.condition.dale for c in cells}) < 2:
            continue
        fig, axes = subplots(2, 3, 4.2, 3.6)
        for col, stage in enumerate(STAGES):
            _strip(axes[0, col], cells, stage)
        largest = max(c.condition.units for c in cells)
        e_frac = min(c.condition.e_frac for c in cells if c.condition.units == largest)
        shown = sorted([c for c in cells if (c.condition.units, c.condition.e_frac)
                        == (largest, e_frac)], key=lambda c: c.condition.dale)[:3]
        limit = _axis_limit(shown)
        for col in range(3):
            ax = axes[1, col]
            if col >= len(shown):
                ax.set_visible(False)
                continue
            _cloud(ax, shown[col], "trained", limit)
            ax.set_title(f"trained, dale={shown[col].condition.dale}, N={largest}, f_E={e_frac:g}")
            ax.set_xlabel("Re λ")
            ax.set_ylabel("Im λ")
        title = f"Constrained vs unconstrained: {family_label(family)}, {init} init"
        finish(fig, title, axes, markerscale=2)
        path = save(fig, out_dir, slug("constraint", *family, init))
        figures.append(FigureFile("Constrained vs unconstrained", path, title,
                                  "Top: r_outer of each learned network (bar: mean ± s.e.m.) per "
                                  "stage. Bottom: trained spectra side by side."))
    return figures


def spectral_figures(results: Results, out_dir: str) -> list:
    return (cloud_figures(results, out_dir) + histogram_figures(results, out_dir)
            + factor_figures(results, out_dir) + constraint_figures(results, out_dir))
