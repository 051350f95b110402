"""Singular values of W_rec: the normalised SVD entropy (NSE) and sv_max of learned and not learned
networks, per stage, and whether NSE separates the networks that learn from those that do not.

NSE = -(1/ln N) sum_i p_i ln p_i with p_i = s_i / sum_j s_j (1 for an orthogonal matrix, 0 for rank
one). Separation is tested per (task, init, dale) with the Mann-Whitney U test of NSE of the learned
against the not learned networks, stratified by cell (N, f_E and other axes: networks are compared
only within their cell, since N and f_E change both NSE and how often networks learn); AUC = P(NSE
of a learned network > NSE of a not learned one of the same cell).
"""
import numpy as np

from .claims import MIN_LEARNED
from .data import LEARNED_ACCURACY, STAGES, STAGE_TITLES, Results, family_label
from .plotting import FigureFile, finish, no_data, save, slug, subplots
from .stats import stratified_mann_whitney

SEPARATION_AUC = 0.75   # AUC >= this or <= 1 - this ...
SEPARATION_P = 0.05     # ... and two-sided Mann-Whitney p below this: NSE separates
ANSWER_STAGE = "projected"  # the matrix training starts from (docs/MODEL.md §2)
_METRICS = (("nse", "NSE"), ("sv_max", "sv_max"))


def _groups(results: Results) -> dict:
    """(family, init, dale) -> cells, for cells with singular values."""
    out = {}
    for cell in results.cells:
        if cell.has_sv:
            c = cell.condition
            out.setdefault((c.family, c.init, c.dale), []).append(cell)
    return out


def _split(cells: list, stage: str, name: str) -> tuple:
    """(values of the learned networks, values of the others) of one metric, over cells."""
    values = np.concatenate([c.metric(stage, name) for c in cells])
    learned = np.concatenate([c.learned for c in cells])
    return values[learned], values[~learned]


def separation(cells: list, stage: str):
    """Mann-Whitney test of NSE (learned vs not, within cells) and whether it separates; None when
    the cells with both kinds hold fewer than MIN_LEARNED networks of either kind."""
    test = stratified_mann_whitney([_split([cell], stage, "nse") for cell in cells])
    if test is None or test.n_a < MIN_LEARNED or test.n_b < MIN_LEARNED:
        return None, False
    separates = test.p < SEPARATION_P and abs(test.auc - 0.5) >= SEPARATION_AUC - 0.5
    return test, separates


def _test_text(test, separates: bool) -> str:
    if test is None:
        return "too few"
    return (f"AUC {test.auc:.2f}, U = {test.u:g}, p = {test.p:.2g}, n = {test.n_a} vs "
            f"{test.n_b}" + (" (separates)" if separates else ""))


def _median(values: np.ndarray) -> str:
    values = values[np.isfinite(values)]
    return f"{np.median(values):.3f}" if values.size else "-"


def answer(results: Results) -> str:
    """One sentence: does NSE separate the networks that learn from those that do not?"""
    tested, separated, after = [], [], []
    for (family, init, dale), cells in sorted(_groups(results).items()):
        test, separates = separation(cells, ANSWER_STAGE)
        if test is None:
            continue
        name = f"{family_label(family)}, {init}, dale={dale}"
        tested.append(name)
        if separates:
            separated.append(name)
        if separation(cells, "trained")[1]:
            after.append(name)
    where = STAGE_TITLES[ANSWER_STAGE]
    if not tested:
        return (f"Cannot tell: no (task, init, dale) group has >= {MIN_LEARNED} learned and >= "
                f"{MIN_LEARNED} not learned networks with singular values in cells that have "
                "both.")
    k, m = len(separated), len(tested)
    word = "Yes" if k == m else ("No" if k == 0 else "Partly")
    listed = f" ({'; '.join(separated)})" if 0 < k < m else ""
    return (f"{word}: {where} (the matrix training starts from), NSE separates the learned from "
            f"the not learned networks in {k} of {m} testable (task, init, dale) groups{listed}; "
            f"after training in {len(after)} of {m}.")


def nse_section(doc, results: Results) -> None:
    """The separation table and its one-sentence answer."""
    groups = _groups(results)
    if not groups:
        return
    doc.heading(2, "Singular values: does NSE separate networks that learn?")
    doc.paragraph(
        "NSE = -(1/ln N) Σ p_i ln p_i, p_i = σ_i / Σ σ_j (1: all singular values equal, as for "
        "an orthogonal matrix; 0: rank one). Per (task, init, dale), the Mann-Whitney U test of "
        f"NSE of the learned (accuracy >= {LEARNED_ACCURACY}) against the not learned networks, "
        "stratified by cell: networks are compared only within their (N, f_E) cell, since N and "
        "f_E change both NSE and how often networks learn; AUC = P(NSE of a learned network > "
        "NSE of a not learned one of the same cell); n = the networks of the cells that have "
        f"both. NSE separates when AUC >= {SEPARATION_AUC} or <= {1 - SEPARATION_AUC:g} and p < "
        f"{SEPARATION_P}; a group is tested with >= {MIN_LEARNED} networks on each side.")
    doc.paragraph(answer(results))
    rows = []
    for (family, init, dale), cells in sorted(groups.items()):
        learned, other = _split(cells, ANSWER_STAGE, "nse")
        row = [family_label(family), init, dale, int(learned.size), int(other.size)]
        for stage in STAGES:
            yes, no = _split(cells, stage, "nse")
            row.append(f"{_median(yes)} / {_median(no)}")
            row.append(_test_text(*separation(cells, stage)))
        rows.append(row)
    header = ["task", "init", "dale", "n learned", "n not learned"]
    for stage in STAGES:
        header += [f"NSE {STAGE_TITLES[stage]}: median learned / not",
                   f"{STAGE_TITLES[stage]}: test"]
    doc.table(header, rows)


def _strips(ax, panels: list, stage: str, name: str) -> None:
    """Per (init, dale) panel: the learned networks' values (colour) beside the others (grey)."""
    rng = np.random.default_rng(0)
    drawn = False
    for x, (_, cells) in enumerate(panels):
        learned, other = _split(cells, stage, name)
        for offset, values, color, label in ((-0.18, learned, "tab:blue", "learned"),
                                             (0.18, other, "0.55", "not learned")):
            values = values[np.isfinite(values)]
            if values.size:
                jitter = rng.uniform(-0.08, 0.08, values.size)
                ax.scatter(x + offset + jitter, values, s=9, color=color, alpha=0.7, lw=0,
                           label=label)
                ax.plot([x + offset - 0.13, x + offset + 0.13], [np.median(values)] * 2,
                        color="black", lw=1.2)
                drawn = True
    ax.set_xticks(range(len(panels)))
    ax.set_xticklabels([f"{init}\n{dale}" for (init, dale), _ in panels], fontsize=8)
    if not drawn:
        no_data(ax, "no values")


def nse_figures(results: Results, out_dir: str) -> list:
    """Per family: NSE and sv_max by stage (columns), learned vs not, per (init, dale)."""
    figures = []
    by_family = {}
    for (family, init, dale), cells in sorted(_groups(results).items()):
        by_family.setdefault(family, []).append(((init, dale), cells))
    for family, panels in by_family.items():
        fig, axes = subplots(len(_METRICS), len(STAGES), 3.6, 2.8)
        for row, (name, title) in enumerate(_METRICS):
            for col, stage in enumerate(STAGES):
                _strips(axes[row, col], panels, stage, name)
                axes[0, col].set_title(STAGE_TITLES[stage])
            axes[row, 0].set_ylabel(title)
        figure_title = f"Singular values of W_rec: {family_label(family)}"
        finish(fig, figure_title, axes)
        path = save(fig, out_dir, slug("nse", *family))
        figures.append(FigureFile(
            "Singular values (NSE, sv_max)", path, figure_title,
            "NSE (top) and largest singular value (bottom) of every network per (init, dale), "
            "all cells together (the test compares within cells), learned (blue) beside not "
            "learned (grey); black bars: medians."))
    return figures
