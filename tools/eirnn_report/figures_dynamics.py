"""Training and dynamics figures: loss curves, example trials (inputs, target, output), and the E
and I activity and PCA trajectories (all units, E only, I only) of one network per condition.
"""
import numpy as np

from .data import LEARNED_ACCURACY, Results, family_label
from .plotting import FigureFile, finish, no_data, save, slug, subplots

MAX_TRIALS = 4


def loss_figures(results: Results, out_dir: str) -> list:
    """Per task: one panel per (init, dale), one line per network coloured by (N, f_E)."""
    figures = []
    for family in results.families:
        panels = sorted({(c.condition.init, c.condition.dale) for c in results.cells_of(family)})
        cols = min(len(panels), 4)
        rows = -(-len(panels) // cols)
        fig, axes = subplots(rows, cols, 4.0, 3.0)
        for ax in axes.ravel()[len(panels):]:
            ax.set_visible(False)
        for ax, (init, dale) in zip(axes.ravel(), panels):
            _loss_panel(ax, results.cells_of(family, init=init, dale=dale))
            ax.set_title(f"{init} init, dale={dale}")
        title = f"Training loss: {family_label(family)}"
        finish(fig, title)
        path = save(fig, out_dir, slug("loss", *family))
        figures.append(FigureFile("Loss curves", path, title,
                                  "Mean training loss per epoch, every network; solid: learned "
                                  f"(accuracy >= {LEARNED_ACCURACY}), dashed: not learned."))
    return figures


def _loss_panel(ax, cells: list) -> None:
    drawn = False
    for index, cell in enumerate(cells):
        loss, learned = cell.loss(), cell.learned
        color = f"C{index % 10}"
        epochs = np.arange(1, loss.shape[1] + 1)
        for k in range(loss.shape[0]):
            if np.isfinite(loss[k]).any() and np.nanmin(loss[k]) > 0:
                ax.plot(epochs, loss[k], color=color, lw=1.0, alpha=0.7,
                        ls="-" if learned[k] else "--")
                drawn = True
        c = cell.condition
        ax.plot([], [], color=color, label=f"N={c.units}, f_E={c.e_frac:g} "
                f"({int(learned.sum())}/{cell.n_networks} learned)")
    if not drawn:
        no_data(ax, "no loss recorded")
        return
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (MSE)")
    ax.legend()


def _example_cell(results: Results, family):
    """The cell whose example trials are shown: a constrained one that learned if there is one."""
    cells = [c for c in results.cells_of(family) if c.example_group() is not None]
    ranked = sorted(cells, key=lambda c: (not c.condition.constrained,
                                          not c.learned.any(), c.condition))
    return ranked[0] if ranked else None


def example_figures(results: Results, out_dir: str) -> list:
    """Per task: inputs, target and output of a few held-out trials."""
    figures = []
    for family in results.families:
        cell = _example_cell(results, family)
        if cell is None:
            continue
        group = cell.example_group()
        ex = group.examples
        n_trials = min(MAX_TRIALS, ex["x"].shape[0])
        x, y, out = (ex[name][:n_trials] for name in ("x", "y", "output"))
        fig, axes = subplots(2, n_trials, 3.2, 2.4, sharex=True, sharey="row")
        steps = np.arange(x.shape[1])
        for s in range(n_trials):
            for i in range(x.shape[2]):
                axes[0, s].plot(steps, x[s, :, i], lw=1.0, label=f"input {i}")
            for o in range(y.shape[2]):
                axes[1, s].plot(steps, y[s, :, o], color="black", ls="--", lw=1.2,
                                label=f"target {o}")
                axes[1, s].plot(steps, out[s, :, o], color=f"C{o}", lw=1.2, label=f"output {o}")
            axes[0, s].set_title(f"trial {s + 1}")
            axes[1, s].set_xlabel("time step")
        axes[0, 0].set_ylabel("input")
        axes[1, 0].set_ylabel("target / output")
        axes[0, 0].legend()
        axes[1, 0].legend()
        k = group.example_network
        title = (f"Example trials: {family_label(family)} ({cell.condition.label(False)}, "
                 f"network {k}, accuracy {group.accuracy[k]:.2f})")
        finish(fig, title)
        path = save(fig, out_dir, slug("examples", *family))
        figures.append(FigureFile("Example trials", path, title,
                                  "Held-out trials: inputs (top), target (dashed) and the "
                                  "network's output (bottom)."))
    return figures


def _pca(h: np.ndarray):
    """(S,T,n) activity -> (S,T,2) projection on the first two PCs and their variance fractions."""
    flat = h.reshape(-1, h.shape[-1]).astype(np.float64)
    flat = flat - flat.mean(axis=0)
    _, singular, vt = np.linalg.svd(flat, full_matrices=False)
    total = float((singular ** 2).sum())
    explained = singular[:2] ** 2 / total if total > 0 else np.zeros(2)
    components = vt[:2]
    if components.shape[0] < 2:
        components = np.vstack([components, np.zeros_like(components)])
        explained = np.append(explained, 0.0)
    return (flat @ components.T).reshape(h.shape[0], h.shape[1], 2), explained


def _heatmap(ax, h: np.ndarray, title: str):
    """(T,n) activity as an image; returns the image (None when there are no units)."""
    if h.shape[1] == 0:
        no_data(ax, f"no {title.split()[0]} units")
        return None
    image = ax.imshow(h.T, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_title(title)
    ax.set_xlabel("time step")
    ax.set_ylabel("unit")
    ax.grid(False)
    return image


def _trajectory(ax, h: np.ndarray, y: np.ndarray, title: str) -> None:
    if h.shape[2] < 2:
        no_data(ax, f"{title}: fewer than 2 units")
        return
    pcs, explained = _pca(h)
    colors = [f"C{s % 10}" for s in range(pcs.shape[0])]
    for s, color in enumerate(colors):
        target = float(y[s, -1, 0]) if y.shape[2] else np.nan
        ax.plot(pcs[s, :, 0], pcs[s, :, 1], lw=1.0, color=color,
                label=f"trial {s + 1} (target {target:g})")
    ax.scatter(pcs[:, 0, 0], pcs[:, 0, 1], marker="o", s=16, c=colors, zorder=3)
    ax.scatter(pcs[:, -1, 0], pcs[:, -1, 1], marker="s", s=16, c=colors, zorder=3)
    ax.set_title(f"PCA, {title}")
    ax.set_xlabel(f"PC1 ({explained[0]:.0%} var.)")
    ax.set_ylabel(f"PC2 ({explained[1]:.0%} var.)")


def _activity_row(axes, cell):
    """One condition's row; returns a heat-map image (for the colour bar) or None."""
    group = cell.example_group()
    if group is None:
        for ax in axes:
            no_data(ax, "no examples stored")
        return None
    ex = group.examples
    n_trials = min(MAX_TRIALS, ex["h"].shape[0])
    h, y = ex["h"][:n_trials], ex["y"][:n_trials]
    n_e = group.n_e
    shown = int(np.argmax(np.abs(h).sum(axis=(1, 2))))  # the most active trial, not a silent one
    n_i = h.shape[2] - n_e
    images = [_heatmap(axes[0], h[shown, :, :n_e], f"E units ({n_e}), trial {shown + 1}"),
              _heatmap(axes[1], h[shown, :, n_e:], f"I units ({n_i}), trial {shown + 1}")]
    for ax, part, name in ((axes[2], h, "all units"), (axes[3], h[:, :, :n_e], "E only"),
                           (axes[4], h[:, :, n_e:], "I only")):
        _trajectory(ax, part, y, name)
    axes[4].legend(fontsize=7)
    k = group.example_network
    axes[0].set_ylabel(f"N={cell.condition.units}, f_E={cell.condition.e_frac:g}\n"
                       f"network {k} (acc. {group.accuracy[k]:.2f})\nunit")
    return next((image for image in images if image is not None), None)


def activity_figures(results: Results, out_dir: str) -> list:
    """Per (task, init, dale): one row per (N, f_E) with E/I activity and three PCA trajectories."""
    figures = []
    keys = sorted({(c.condition.family, c.condition.init, c.condition.dale) for c in results.cells})
    for family, init, dale in keys:
        cells = sorted(results.cells_of(family, init=init, dale=dale),
                       key=lambda c: (c.condition.units, c.condition.e_frac))
        if all(c.example_group() is None for c in cells):
            continue
        fig, axes = subplots(len(cells), 5, 3.3, 2.9)
        images = [_activity_row(axes[row], cell) for row, cell in enumerate(cells)]
        image = next((i for i in images if i is not None), None)
        title = (f"Activity of one network per condition: {family_label(family)}, {init} init, "
                 f"dale={dale}")
        finish(fig, title, colorbar_image=image, colorbar_label="unit activity h")
        path = save(fig, out_dir, slug("activity", *family, init, dale))
        figures.append(FigureFile("Unit activity and PCA", path, title,
                                  "E and I units' activity on the most active of the shown "
                                  "held-out trials, and the population trajectory on the first two "
                                  "principal components (all units, E only, I only; circle: start, "
                                  "square: end)."))
    return figures


def dynamics_figures(results: Results, out_dir: str) -> list:
    return (loss_figures(results, out_dir) + example_figures(results, out_dir)
            + activity_figures(results, out_dir))
