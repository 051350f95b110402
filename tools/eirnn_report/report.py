"""Assembles report.md (and report.html): the claims table (a verdict per claim and task), the
verdict rules, the Dale-axis comparison, the networks that learned per cell, the per-condition
numbers behind each claim, singular values and NSE, and every figure.
"""
import os

from .claims import MIN_LEARNED, STATEMENTS, VERDICT_RULES, evaluate_claims, overall
from .dale_axis import dale_axis_section
from .data import LEARNED_ACCURACY, STAGES, STAGE_TITLES, Results
from .document import Document
from .figures_dynamics import dynamics_figures
from .figures_spectra import spectral_figures
from .fixed_points import fixed_point_figures, fixed_point_section
from .nse import nse_figures, nse_section
from .plotting import FIGURE_DIR
from .stats import mean_sem


def _overview(doc: Document, results: Results) -> None:
    networks = sum(c.n_networks for c in results.cells)
    learned = sum(int(c.learned.sum()) for c in results.cells)
    attrs = results.attrs
    doc.paragraph(
        f"Results file: {results.path} (format {attrs.get('format', '?')} version "
        f"{attrs.get('format_version', '?')}, written by eirnn {attrs.get('eirnn_version', '?')}). "
        f"{len(results.groups)} group(s), {len(results.cells)} condition(s), {networks} networks, "
        f"{learned} of which learned (held-out accuracy >= {LEARNED_ACCURACY}).")


def _claims_tables(doc: Document, per_family: list) -> None:
    doc.heading(2, "Claims (docs/MODEL.md §7)")
    doc.paragraph("Verdict per claim and task (each family of cells tested on its own); the last "
                  "column counts the tasks per verdict.")
    labels = [fc.label for fc in per_family]
    rows = []
    for index, claim in enumerate(STATEMENTS):
        rows.append([claim, STATEMENTS[claim]] + [fc.claims[index].verdict for fc in per_family]
                    + [overall(per_family, index)])
    doc.table(["claim", "statement"] + labels + ["overall"], rows)
    doc.paragraph("Per task, the outcome at each stage and what the controls say (a claim that "
                  "already holds after the first projection is a property of the constraint):")
    doc.table(["claim", "task", "verdict"] + [STAGE_TITLES[s] for s in STAGES] + ["controls"],
              [[c.claim, label, c.verdict] + [c.stages[s].outcome for s in STAGES] + [c.control]
               for c, label in _by_claim(per_family)])
    doc.paragraph("Numbers are mean ± s.e.m. over the networks that learned (n = how many); the "
                  "same networks are used at every stage.")
    doc.table(["claim", "task", "stage", "numbers", "test", "outcome"],
              [[c.claim, label, STAGE_TITLES[s], c.stages[s].numbers, c.stages[s].test,
                c.stages[s].outcome] for c, label in _by_claim(per_family) for s in STAGES])


def _by_claim(per_family: list) -> list:
    """(ClaimResult, task label) of every family, ordered by claim, then family."""
    return [(fc.claims[index], fc.label) for index in range(len(STATEMENTS))
            for fc in per_family]


def _rules(doc: Document) -> None:
    doc.heading(2, "Verdict rules")
    doc.bullets([f"{key}: {text}" if key != "all" else text for key, text in VERDICT_RULES.items()])


def _cells_table(doc: Document, results: Results) -> None:
    doc.heading(2, "Networks per cell")
    doc.paragraph(f"learned = held-out accuracy >= {LEARNED_ACCURACY} and not diverged; a cell "
                  f"enters a claim's test with >= {MIN_LEARNED} learned networks.")
    rows = []
    for cell in results.cells:
        c = cell.condition
        mean, sem, n = mean_sem(cell.accuracy)
        accuracy = f"{mean:.3f} ± {sem:.3f}" if n > 1 else (f"{mean:.3f}" if n else "n/a")
        rows.append([c.task, c.other or "-", c.init, c.dale, c.units, f"{c.e_frac:g}",
                     len(cell.groups), cell.n_networks, int(cell.learned.sum()),
                     int(cell.diverged.sum()), accuracy]
                    + [_nse_text(cell, stage) for stage in ("projected", "trained")])
    doc.table(["task", "other axes", "init", "dale", "N", "f_E", "groups", "networks", "learned",
               "diverged", "accuracy (mean ± s.e.m.)", "NSE after first projection: learned / "
               "not learned", "NSE trained: learned / not learned"], rows)


def _nse_text(cell, stage: str) -> str:
    """Mean NSE of the learned and of the other networks of a cell at one stage."""
    values = cell.metric(stage, "nse")
    parts = []
    for chosen in (cell.learned, ~cell.learned):
        mean, _, n = mean_sem(values[chosen])
        parts.append(f"{mean:.3f}" if n else "-")
    return " / ".join(parts)


def _details(doc: Document, per_family: list) -> None:
    doc.heading(2, "Claims in detail")
    for index, claim in enumerate(STATEMENTS):
        doc.heading(3, f"{claim}: {STATEMENTS[claim]}")
        parts = [fc.claims[index] for fc in per_family]
        rows = [[fc.label] + row for fc, part in zip(per_family, parts) for row in part.detail_rows]
        if rows:
            doc.table(["task"] + parts[0].detail_header, rows)
        else:
            doc.paragraph("No condition of this file bears on this claim.")


def _figures(doc: Document, figures: list, drawn: bool) -> None:
    doc.heading(2, "Figures")
    if not drawn:
        doc.paragraph("Not drawn (--no-figures).")
    sections = []
    for figure in figures:
        if figure.section not in sections:
            sections.append(figure.section)
    for section in sections:
        doc.heading(3, section)
        for figure in (f for f in figures if f.section == section):
            doc.image(figure.path, figure.title, figure.caption)


def _notes(doc: Document, results: Results) -> None:
    groups_of = {}
    for group in results.groups:
        for note in group.notes:
            groups_of.setdefault(note, []).append(group.name)
    every = len(results.groups)
    notes = [f"{_group_list(names, every)}: {note}" for note, names in groups_of.items()]
    missing = [c.condition.label() for c in results.cells if not c.has_spectra]
    if missing:
        notes.append("no spectra (and no weights to compute them) for: " + "; ".join(missing))
    if notes:
        doc.heading(2, "Notes")
        doc.bullets(notes)


def _group_list(names: list, every: int) -> str:
    """'group g0001', 'groups g0000, g0002' or 'all 12 groups', for a note."""
    if len(names) == 1:
        return f"group {names[0]}"
    return f"all {every} groups" if len(names) == every else f"groups {', '.join(names)}"


def write_report(results: Results, out_dir: str, with_html: bool,
                 with_figures: bool = True) -> str:
    """Writes the figures (unless with_figures is false) and report.md (and report.html); returns
    report.md's path."""
    os.makedirs(os.path.join(out_dir, FIGURE_DIR), exist_ok=True)
    per_family = evaluate_claims(results)
    figures = []
    if with_figures:
        figures = (spectral_figures(results, out_dir) + nse_figures(results, out_dir)
                   + dynamics_figures(results, out_dir) + fixed_point_figures(results, out_dir))
    doc = Document(f"eirnn report: {os.path.basename(results.path)}")
    _overview(doc, results)
    _claims_tables(doc, per_family)
    _rules(doc)
    dale_axis_section(doc, results)
    _cells_table(doc, results)
    _details(doc, per_family)
    nse_section(doc, results)
    fixed_point_section(doc, results)
    _figures(doc, figures, with_figures)
    _notes(doc, results)
    path = os.path.join(out_dir, "report.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write(doc.to_markdown())
    if with_html:
        with open(os.path.join(out_dir, "report.html"), "w", encoding="utf-8") as f:
            f.write(doc.to_html())
    return path
