"""The Dale axis: claims C1-C4 with the sign on incoming weights (rows, `dale_axis = incoming`, the
constraint the study's Keras code applied) against the matching cells with the sign on outgoing
weights (columns, docs/MODEL.md §2): same task, other axes, init, dale mode, N and f_E.

Both sides are evaluated with the rules of claims.py on the matched cells only; C4's unconstrained
networks are the same for both (dale_axis has no effect without a constraint).
"""
import numpy as np

from .claims import MARGIN, MIN_LEARNED, STATEMENTS, evaluate_cells, fmt_ci, fmt_mean, \
    unconstrained_controls
from .data import Results, family_label, without_axis
from .stats import welch

INCONCLUSIVE = "inconclusive"


def matched_cells(results: Results) -> dict:
    """incoming family -> [(incoming cell, outgoing cell or None)] for its constrained cells."""
    out = {}
    for cell in results.cells:
        c = cell.condition
        if c.dale_axis != "incoming" or not c.constrained:
            continue
        match = [m for m in results.cells
                 if m.condition.dale_axis == "outgoing" and m.condition.task == c.task
                 and m.condition.other == without_axis(c.other) and m.condition.init == c.init
                 and m.condition.dale == c.dale and m.condition.units == c.units
                 and m.condition.e_frac == c.e_frac]
        out.setdefault(c.family, []).append((cell, match[0] if match else None))
    return out


def _sentence(label: str, claims_in: list, claims_out: list, differing: int, compared: int) -> str:
    """Does the study's choice of axis change its conclusions? One sentence from the verdicts:
    a claim counts only where both sides reached a verdict (inconclusive is no evidence)."""
    pairs = [(a.claim, a.verdict, b.verdict) for a, b in zip(claims_in, claims_out)]
    unknown = [p for p in pairs if INCONCLUSIVE in p[1:]]
    changed = [p for p in pairs if p not in unknown and p[1] != p[2]]
    agree = [p for p in pairs if p not in unknown and p[1] == p[2]]
    radius = (f"; trained r_outer differs by more than {MARGIN} (95% CI excluding 0) in "
              f"{differing} of {compared} matched conditions with >= {MIN_LEARNED} learned "
              "networks on both sides" if compared else "")
    rest = ("; inconclusive on at least one side: "
            + ", ".join(f"{c} (incoming: {a}, outgoing: {b})" for c, a, b in unknown)
            if unknown else "")
    if changed:
        listing = ", ".join(f"{c} (incoming: {a}, outgoing: {b})" for c, a, b in changed)
        return f"Yes: for {label}, the axis changes the verdict of {listing}{rest}{radius}."
    if agree:
        listing = ", ".join(f"{c} {a}" for c, a, _ in agree)
        return (f"No: for {label}, the sign on incoming weights (the study's choice) gives the "
                f"same verdicts as on outgoing weights ({listing}){rest}{radius}.")
    return (f"Cannot tell: for {label}, no claim reaches a verdict on both sides{rest}{radius}.")


def _condition_row(cell_in, cell_out) -> tuple:
    c = cell_in.condition
    label = f"{c.init}, dale={c.dale}, N={c.units}, f_E={c.e_frac:g}"
    if cell_out is None:
        return [label, f"{int(cell_in.learned.sum())}/{cell_in.n_networks} / -",
                fmt_mean(cell_in.counted("trained", "r_outer")), "no outgoing cell", "-", "-",
                "-", "-"], False, False
    r_in, r_out = cell_in.counted("trained", "r_outer"), cell_out.counted("trained", "r_outer")
    ok = all(int(np.isfinite(v).sum()) >= MIN_LEARNED for v in (r_in, r_out))
    est = welch(r_in, r_out) if ok else None
    differs = est is not None and (est.lo > 0 or est.hi < 0) and abs(est.value) > MARGIN
    return [label,
            f"{int(cell_in.learned.sum())}/{cell_in.n_networks} / "
            f"{int(cell_out.learned.sum())}/{cell_out.n_networks}",
            fmt_mean(r_in), fmt_mean(r_out), fmt_ci(est) if est else "too few",
            fmt_mean(cell_in.counted("trained", "ring_ratio_p2")),
            fmt_mean(cell_out.counted("trained", "ring_ratio_p2")),
            f"{fmt_mean(cell_in.counted('trained', 'nse'))} / "
            f"{fmt_mean(cell_out.counted('trained', 'nse'))}"], ok, differs


def dale_axis_section(doc, results: Results) -> None:
    """Absent when the file has no constrained cell with dale_axis = incoming."""
    families = matched_cells(results)
    if not families:
        return
    doc.heading(2, "The Dale axis: incoming (the study's Keras constraint) vs outgoing")
    doc.paragraph(
        "Cells with `dale_axis = incoming` (the sign on each unit's incoming weights, rows of "
        "W_rec) against the cells with the same task, other axes, init, dale mode, N and f_E and "
        "the sign on outgoing weights (columns, Dale's law proper). C1-C4 are evaluated on the "
        "matched cells of each side with the rules above; C4 uses the same unconstrained "
        "networks for both. Numbers are of the trained stage, over the learned networks.")
    for family, pairs in sorted(families.items()):
        label = family_label((family[0], without_axis(family[1])))
        matched = [(a, b) for a, b in pairs if b is not None]
        doc.heading(3, f"{label}: incoming vs outgoing")
        rows, compared, differing = [], 0, 0
        for cell_in, cell_out in pairs:
            row, ok, differs = _condition_row(cell_in, cell_out)
            rows.append(row)
            compared += ok
            differing += differs
        if not matched:
            doc.paragraph("No outgoing cell matches these incoming cells; nothing to compare.")
        else:
            controls = unconstrained_controls(results, family)
            claims_in = evaluate_cells([a for a, _ in matched], controls)
            claims_out = evaluate_cells([b for _, b in matched], controls)
            doc.paragraph(_sentence(label, claims_in, claims_out, differing, compared))
            doc.table(["claim", "statement", "verdict incoming", "verdict outgoing",
                       "incoming: numbers (trained)", "outgoing: numbers (trained)"],
                      [[a.claim, STATEMENTS[a.claim], a.verdict, b.verdict,
                        a.stages["trained"].numbers, b.stages["trained"].numbers]
                       for a, b in zip(claims_in, claims_out)])
        doc.table(["condition", "learned incoming / outgoing", "r_outer incoming",
                   "r_outer outgoing", "difference [95% CI]", "r_inner_p2 / r_outer incoming",
                   "r_inner_p2 / r_outer outgoing", "NSE (trained) incoming / outgoing"], rows)
