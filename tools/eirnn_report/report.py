"""Assembles report.md (and report.html): the claims table, the verdict rules, the networks that
learned per cell, the per-condition numbers behind each claim, and every figure.
"""
import os

from .claims import MIN_LEARNED, VERDICT_RULES, evaluate_claims
from .data import LEARNED_ACCURACY, STAGES, STAGE_TITLES, Results
from .document import Document
from .figures_dynamics import dynamics_figures
from .figures_spectra import spectral_figures
from .fixed_points import fixed_point_figures, fixed_point_section
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


def _claims_tables(doc: Document, claims: list) -> None:
    doc.heading(2, "Claims (docs/MODEL.md §7)")
    header = ["claim", "statement", "verdict"] + [STAGE_TITLES[s] for s in STAGES] + ["controls"]
    doc.table(header, [[c.claim, c.statement, c.verdict]
                       + [c.stages[s].outcome for s in STAGES] + [c.control] for c in claims])
    doc.paragraph("Numbers are mean ± s.e.m. over the networks that learned (n = how many); the "
                  "same networks are used at every stage.")
    rows = [[c.claim, STAGE_TITLES[s], c.stages[s].numbers, c.stages[s].test, c.stages[s].outcome]
            for c in claims for s in STAGES]
    doc.table(["claim", "stage", "numbers", "test", "outcome"], rows)


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
                     int(cell.diverged.sum()), accuracy])
    doc.table(["task", "other axes", "init", "dale", "N", "f_E", "groups", "networks", "learned",
               "diverged", "accuracy (mean ± s.e.m.)"], rows)


def _details(doc: Document, claims: list) -> None:
    doc.heading(2, "Claims in detail")
    for claim in claims:
        doc.heading(3, f"{claim.claim}: {claim.statement}")
        if claim.detail_rows:
            doc.table(claim.detail_header, claim.detail_rows)
        else:
            doc.paragraph("No condition of this file bears on this claim.")


def _figures(doc: Document, figures: list) -> None:
    doc.heading(2, "Figures")
    sections = []
    for figure in figures:
        if figure.section not in sections:
            sections.append(figure.section)
    for section in sections:
        doc.heading(3, section)
        for figure in (f for f in figures if f.section == section):
            doc.image(figure.path, figure.title, figure.caption)


def _notes(doc: Document, results: Results) -> None:
    notes = [n for g in results.groups for n in g.notes]
    missing = [c.condition.label() for c in results.cells if not c.has_spectra]
    if missing:
        notes.append("no spectra (and no weights to compute them) for: " + "; ".join(missing))
    if notes:
        doc.heading(2, "Notes")
        doc.bullets(notes)


def write_report(results: Results, out_dir: str, with_html: bool) -> str:
    """Writes the figures and report.md (and report.html); returns report.md's path."""
    os.makedirs(os.path.join(out_dir, FIGURE_DIR), exist_ok=True)
    claims = evaluate_claims(results)
    figures = (spectral_figures(results, out_dir) + dynamics_figures(results, out_dir)
               + fixed_point_figures(results, out_dir))
    doc = Document(f"eirnn report: {os.path.basename(results.path)}")
    _overview(doc, results)
    _claims_tables(doc, claims)
    _rules(doc)
    _cells_table(doc, results)
    _details(doc, claims)
    fixed_point_section(doc, results)
    _figures(doc, figures)
    _notes(doc, results)
    path = os.path.join(out_dir, "report.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write(doc.to_markdown())
    if with_html:
        with open(os.path.join(out_dir, "report.html"), "w", encoding="utf-8") as f:
            f.write(doc.to_html())
    return path
