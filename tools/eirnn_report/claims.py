"""The claims C1-C4 of docs/MODEL.md §7, tested on the networks that learned, at every stage.

Each claim is evaluated separately for every family (task and other sweep axes) on that family's
cells, and at the three stages (initial, after the first projection, trained) with the same rule;
a family's verdict (reproduced / not reproduced / inconclusive) is its trained stage's outcome. The
overall statement only counts the families per verdict, so a failure for one task stays visible.
The other two stages are the controls: a claim that already holds after the first projection is a
property of the constraint, not of learning. Every threshold is a named constant below, and the text
of the rules (VERDICT_RULES) is generated from them.
"""
from dataclasses import dataclass, field

import numpy as np

from .data import LEARNED_ACCURACY, STAGES, STAGE_TITLES, Cell, Results, family_label, \
    without_axis
from .stats import CONFIDENCE, Estimate, fixed_effects_slope, mean_sem, one_sample, welch, \
    welch_contrast

MIN_LEARNED = 3       # learned networks a cell needs to enter a test
HOLE_RATIO = 0.3      # r_inner_p2 / r_outer below: a disc; above: a ring (a hole)
MARGIN = 0.05         # change of r_outer that counts as a real dependence / a real difference

HOLDS, FAILS, UNCLEAR, TOO_FEW = "holds", "does not hold", "unclear", "too few data"
VERDICTS = {HOLDS: "reproduced", FAILS: "not reproduced", UNCLEAR: "inconclusive",
            TOO_FEW: "inconclusive"}
_CI = f"{CONFIDENCE:.0%} CI"

STATEMENTS = {
    "C1": "random-normal init + Dale, trained: the non-dominant eigenvalues lie in a disc of "
          "radius < 1",
    "C2": "orthogonal init + Dale, trained: they lie in a ring (clear hole, r_inner well above 0)",
    "C3": "that radius (r_outer) depends neither on f_E nor on N",
    "C4": "the radius is smaller than for the same networks trained without the constraint",
}

VERDICT_RULES = {
    "all": (
        "Every claim is evaluated separately for each task (a family: task and any other sweep "
        "axes), on that family's cells only; the overall column counts the families per verdict "
        "and names them. "
        f"Only networks with held-out accuracy >= {LEARNED_ACCURACY} (and not diverged) count, "
        f"at every stage; a cell enters a test only with >= {MIN_LEARNED} of them. Each claim is "
        "computed with the same rule at the three stages; the verdict is the trained stage's "
        "outcome: holds -> reproduced, does not hold -> not reproduced, unclear or too few data "
        "-> inconclusive. The initial and projected stages are controls: a claim that already "
        "holds after the first projection is a property of the constraint rather than of "
        "learning. Where a claim is tested per condition, the stage outcome is: does not hold if "
        "any tested condition does not hold; holds if every tested condition holds; too few data "
        "if no condition could be tested; unclear otherwise."),
    "C1": (
        "Per condition with normal init and Dale (project or reparam): holds when the upper "
        f"bound of the {_CI} of the mean r_outer is < 1 and that of the mean r_inner_p2 / r_outer "
        f"is < {HOLE_RATIO} (a disc, no hole); does not hold when the lower bound of r_outer's "
        f"CI is >= 1 or that of r_inner_p2 / r_outer is > {HOLE_RATIO}; unclear otherwise."),
    "C2": (
        "Per condition with orthogonal init and Dale: holds when the lower bound of the "
        f"{_CI} of the mean r_inner_p2 / r_outer is > {HOLE_RATIO} (a ring); does not hold when "
        f"its upper bound is < {HOLE_RATIO} (a disc); unclear otherwise."),
    "C3": (
        "Over all Dale cells, r_outer is regressed (ordinary least squares, one intercept per "
        "stratum) on N within strata of equal (task, other axes, init, dale, f_E), and on f_E "
        "within strata of equal (task, other axes, init, dale, N). The dependence is the slope "
        f"times the studied range of the factor, with its {_CI}. A factor passes when that CI "
        f"lies within +-{MARGIN} and fails when the CI excludes 0 and |change| > {MARGIN}. C3 "
        "holds when both factors pass, does not hold when either fails, too few data when a "
        "factor has no stratum where it varies, unclear otherwise."),
    "C4": (
        "Cells are matched on (task, other axes, init, f_E, N): Dale (project/reparam) vs none "
        "(the unconstrained cells matched ignoring dale_axis, which has no effect without a "
        "constraint). "
        "The difference d = mean over matched conditions of (mean r_outer Dale - mean r_outer "
        "unconstrained) gets a Welch-Satterthwaite standard error (with one matched condition "
        f"this is Welch's t-test). Holds when the {_CI} of d lies below 0; does not hold when it "
        f"lies above -{MARGIN} (not smaller by a relevant amount); unclear otherwise."),
}


@dataclass
class StageResult:
    """One claim at one stage."""
    outcome: str
    numbers: str
    test: str


@dataclass
class ClaimResult:
    """One claim: its per-stage results, verdict and the per-condition detail table."""
    claim: str
    statement: str
    stages: dict = field(default_factory=dict)
    detail_header: list = field(default_factory=list)
    detail_rows: list = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return VERDICTS[self.stages["trained"].outcome]

    @property
    def control(self) -> str:
        """What the controls say: did the claim already hold before learning?"""
        where = {"initial": "at the initial stage", "projected": "after the first projection"}
        before = [where[s] for s in where if self.stages[s].outcome == HOLDS]
        outcomes = {self.stages[s].outcome for s in where}
        if before:
            return "already holds " + " and ".join(before)
        if outcomes == {FAILS}:
            return "does not hold before learning"
        return "too few data" if outcomes == {TOO_FEW} else "not established before learning"


def fmt(x: float, digits: int = 3) -> str:
    return "nan" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def fmt_mean(values) -> str:
    mean, sem, n = mean_sem(values)
    if n == 0:
        return "no learned networks (n=0)"
    return f"{fmt(mean)} (n=1)" if n == 1 else f"{fmt(mean)} ± {fmt(sem)} (n={n})"


def fmt_ci(est: Estimate | None, scale: float = 1.0) -> str:
    if est is None:
        return "-"
    return f"{fmt(est.value * scale)} [{fmt(est.lo * scale)}, {fmt(est.hi * scale)}]"


def fmt_test(est: Estimate | None) -> str:
    if est is None:
        return "-"
    return f"t({est.df:.1f}) = {est.t:.2f}, p = {est.p:.2g}"


def _learned_text(cell: Cell) -> str:
    return f"{int(cell.learned.sum())}/{cell.n_networks}"


def _combine_any(outcomes: list) -> str:
    """Stage outcome of a per-condition claim (rule 'all' of VERDICT_RULES)."""
    tested = [o for o in outcomes if o != TOO_FEW]
    if not tested:
        return TOO_FEW
    if FAILS in tested:
        return FAILS
    return HOLDS if all(o == HOLDS for o in tested) else UNCLEAR


def _combine_all(outcomes: list) -> str:
    """Stage outcome of a claim needing every part: C3's two factors."""
    if FAILS in outcomes:
        return FAILS
    if all(o == HOLDS for o in outcomes):
        return HOLDS
    return TOO_FEW if TOO_FEW in outcomes else UNCLEAR


def _count_text(outcomes: list) -> str:
    counts = {o: outcomes.count(o) for o in (HOLDS, FAILS, UNCLEAR, TOO_FEW) if o in outcomes}
    return ", ".join(f"{n} {o}" for o, n in counts.items()) or "no condition"


def _spectral_cells(cells: list, **fixed) -> list:
    return [c for c in cells if c.has_spectra
            and all(getattr(c.condition, k) == v for k, v in fixed.items())]


def _per_condition_claim(claim: str, cells: list, judge) -> ClaimResult:
    """C1/C2: one test per cell, the stage outcome from _combine_any."""
    result = ClaimResult(claim, STATEMENTS[claim])
    result.detail_header = ["stage", "condition", "learned", "r_outer", "r_inner",
                            "r_inner_p2 / r_outer", f"{_CI} (r_outer; ratio)", "outcome"]
    for stage in STAGES:
        outcomes = []
        for cell in cells:
            r_outer = cell.counted(stage, "r_outer")
            ratio = cell.counted(stage, "ring_ratio_p2")
            outcome, est_r, est_q = judge(r_outer, ratio)
            outcomes.append(outcome)
            result.detail_rows.append([
                STAGE_TITLES[stage], cell.condition.label(False), _learned_text(cell),
                fmt_mean(r_outer),
                fmt_mean(cell.counted(stage, "r_inner")), fmt_mean(ratio),
                f"{fmt_ci(est_r)}; {fmt_ci(est_q)}", outcome])
        pooled_outer = np.concatenate([c.counted(stage, "r_outer") for c in cells] or [[]])
        pooled_ratio = np.concatenate([c.counted(stage, "ring_ratio_p2") for c in cells] or [[]])
        numbers = (f"r_outer {fmt_mean(pooled_outer)}; r_inner_p2/r_outer "
                   f"{fmt_mean(pooled_ratio)}")
        test = (f"one-sample {_CI} per condition: {_count_text(outcomes)}" if cells
                else "no condition of this kind in the file")
        result.stages[stage] = StageResult(_combine_any(outcomes), numbers, test)
    return result


def _enough(values: np.ndarray) -> bool:
    return int(np.isfinite(values).sum()) >= MIN_LEARNED


def _judge_disc(r_outer, ratio):
    if not _enough(r_outer) or not _enough(ratio):
        return TOO_FEW, None, None
    est_r, est_q = one_sample(r_outer), one_sample(ratio)
    if est_r.hi < 1.0 and est_q.hi < HOLE_RATIO:
        return HOLDS, est_r, est_q
    if est_r.lo >= 1.0 or est_q.lo > HOLE_RATIO:
        return FAILS, est_r, est_q
    return UNCLEAR, est_r, est_q


def _judge_ring(r_outer, ratio):
    if not _enough(ratio):
        return TOO_FEW, None, None
    est_r, est_q = one_sample(r_outer), one_sample(ratio)
    if est_q.lo > HOLE_RATIO:
        return HOLDS, est_r, est_q
    if est_q.hi < HOLE_RATIO:
        return FAILS, est_r, est_q
    return UNCLEAR, est_r, est_q


def claim_c1(cells: list) -> ClaimResult:
    cells = [c for c in _spectral_cells(cells, init="normal") if c.condition.constrained]
    return _per_condition_claim("C1", cells, _judge_disc)


def claim_c2(cells: list) -> ClaimResult:
    cells = [c for c in _spectral_cells(cells, init="orthogonal") if c.condition.constrained]
    return _per_condition_claim("C2", cells, _judge_ring)


def _factor_test(cells: list, stage: str, factor: str, strata_keys: tuple):
    """Fixed-effects slope of r_outer on `factor` over cells with enough learned networks."""
    usable = [c for c in cells if _enough(c.counted(stage, "r_outer"))]
    strata = {}
    for cell in usable:
        key = tuple(getattr(cell.condition, k) for k in strata_keys)
        strata.setdefault(key, []).append(cell)
    varying = [cs for cs in strata.values() if len({getattr(c.condition, factor) for c in cs}) > 1]
    y, x, labels = [], [], []
    for index, stratum in enumerate(varying):
        for cell in stratum:
            values = cell.counted(stage, "r_outer")
            values = values[np.isfinite(values)]
            y += list(values)
            x += [float(getattr(cell.condition, factor))] * values.size
            labels += [index] * values.size
    est = fixed_effects_slope(y, x, labels) if varying else None
    span = (max(x) - min(x)) if x else 0.0
    return est, span, sum(len(s) for s in varying)


def _judge_change(est: Estimate | None, span: float) -> str:
    if est is None:
        return TOO_FEW
    lo, hi, change = est.lo * span, est.hi * span, est.value * span
    if -MARGIN <= lo and hi <= MARGIN:
        return HOLDS
    if (lo > 0 or hi < 0) and abs(change) > MARGIN:
        return FAILS
    return UNCLEAR


def claim_c3(cells: list) -> ClaimResult:
    cells = [c for c in _spectral_cells(cells) if c.condition.constrained]
    result = ClaimResult("C3", STATEMENTS["C3"])
    result.detail_header = ["stage", "factor", "cells used", "slope per unit [95% CI]",
                            "change over the range [95% CI]", "test", "outcome"]
    factors = (("units", "N", ("task", "other", "init", "dale", "e_frac")),
               ("e_frac", "f_E", ("task", "other", "init", "dale", "units")))
    for stage in STAGES:
        outcomes, numbers, tests = [], [], []
        for factor, symbol, keys in factors:
            est, span, n_cells = _factor_test(cells, stage, factor, keys)
            outcome = _judge_change(est, span)
            outcomes.append(outcome)
            change = fmt_ci(est, span) if est else "-"
            numbers.append(f"change of r_outer over the {symbol} range: {change}")
            tests.append(f"{symbol}: {fmt_test(est)} ({outcome})")
            slope = f"{est.value:.3g} [{est.lo:.3g}, {est.hi:.3g}]" if est else "-"
            result.detail_rows.append([STAGE_TITLES[stage], symbol, str(n_cells), slope,
                                       change, fmt_test(est), outcome])
        pooled = np.concatenate([c.counted(stage, "r_outer") for c in cells] or [[]])
        numbers.insert(0, f"r_outer {fmt_mean(pooled)}")
        test = "fixed-effects OLS slope, " + "; ".join(tests)
        result.stages[stage] = StageResult(_combine_all(outcomes), "; ".join(numbers), test)
    return result


def _matched_pairs(cells: list, controls: list, stage: str) -> list:
    """(condition label, Dale values, unconstrained values) per matched condition: the Dale cells
    of `cells` against the unconstrained cells of `controls` (dale_axis ignored: it has no effect
    without a constraint)."""
    pairs = {}
    sides = [("dale", c) for c in _spectral_cells(cells) if c.condition.constrained]
    sides += [("none", c) for c in _spectral_cells(controls, dale="none")]
    for side, cell in sides:
        c = cell.condition
        key = (c.task, c.other_without_axis, c.init, c.e_frac, c.units)
        pairs.setdefault(key, {"dale": [], "none": []})[side].append(
            cell.counted(stage, "r_outer"))
    rows = []
    for key, sides in sorted(pairs.items()):
        if sides["dale"] and sides["none"]:
            label = f"{key[2]}, N={key[4]}, f_E={key[3]:g}"
            rows.append((label, np.concatenate(sides["dale"]), np.concatenate(sides["none"])))
    return rows


def claim_c4(cells: list, controls: list) -> ClaimResult:
    result = ClaimResult("C4", STATEMENTS["C4"])
    result.detail_header = ["stage", "matched condition", "Dale r_outer", "unconstrained r_outer",
                            "difference [95% CI]", "Welch's t", "used"]
    for stage in STAGES:
        used = []
        for label, dale, none in _matched_pairs(cells, controls, stage):
            ok = _enough(dale) and _enough(none)
            est = welch(dale, none) if ok else None
            result.detail_rows.append([STAGE_TITLES[stage], label, fmt_mean(dale), fmt_mean(none),
                                       fmt_ci(est), fmt_test(est), "yes" if ok else "too few"])
            if ok:
                used.append((dale, none))
        m = len(used)
        est = welch_contrast([(c / m, v) for d, n in used for c, v in ((1.0, d), (-1.0, n))]) \
            if used else None
        if est is None:
            outcome = TOO_FEW
        elif est.hi < 0:
            outcome = HOLDS
        elif est.lo > -MARGIN:
            outcome = FAILS
        else:
            outcome = UNCLEAR
        dale_all = np.concatenate([d for d, _ in used] or [[]])
        none_all = np.concatenate([n for _, n in used] or [[]])
        numbers = f"Dale r_outer {fmt_mean(dale_all)} vs unconstrained {fmt_mean(none_all)}"
        test = (f"Welch contrast over {m} matched condition(s): d = {fmt_ci(est)}, {fmt_test(est)}"
                if est else "no matched condition with enough learned networks")
        result.stages[stage] = StageResult(outcome, numbers, test)
    return result


def evaluate_cells(cells: list, controls: list) -> list:
    """C1-C4, in order, over `cells`; C4's unconstrained side comes from `controls`."""
    return [claim_c1(cells), claim_c2(cells), claim_c3(cells), claim_c4(cells, controls)]


def unconstrained_controls(results: Results, family) -> list:
    """The dale=none cells a family's Dale cells are compared with in C4: same task and other axes
    apart from dale_axis."""
    key = (family[0], without_axis(family[1]))
    return [c for c in results.cells if c.condition.dale == "none"
            and (c.condition.task, c.condition.other_without_axis) == key]


@dataclass
class FamilyClaims:
    """C1-C4 over the cells of one family (task and other axes)."""
    family: tuple
    claims: list

    @property
    def label(self) -> str:
        return family_label(self.family)


def evaluate_claims(results: Results) -> list:
    """One FamilyClaims per family of the file: the per-task verdicts."""
    return [FamilyClaims(family, evaluate_cells(results.cells_of(family),
                                                unconstrained_controls(results, family)))
            for family in results.families]


def overall(per_family: list, index: int) -> str:
    """The claim's verdicts over the families in one line: how many tasks reproduce it, naming
    those that do not."""
    names = {}
    for fc in per_family:
        names.setdefault(fc.claims[index].verdict, []).append(fc.label)
    total = len(per_family)
    plain = all(not fc.family[1] for fc in per_family)
    noun = "tasks" if plain else "task families"
    if total == 1:
        only = "task" if plain else "task family"
        return f"{per_family[0].claims[index].verdict} (the file's only {only})"
    parts = []
    for verdict in ("reproduced", "not reproduced", "inconclusive"):
        if verdict in names:
            listed = names[verdict]
            if len(listed) == total:
                return f"{verdict} for {'both' if total == 2 else f'all {total}'} {noun}"
            parts.append(f"{verdict} for {len(listed)} of {total} {noun} ({', '.join(listed)})")
    return "; ".join(parts)
