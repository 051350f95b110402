#!/usr/bin/python3
"""tools/report on synthetic results files written here with h5py, following docs/FORMAT.md.

Checks: every figure is a non-empty PNG referenced by report.md; the claims table has a verdict per
claim; the C4 verdict follows the data (Dale radius below / above the unconstrained one); a
one-group plain-train file works; the fixed-point table, figures and flip-flop statement of a file
with `dynamics/`; input errors exit 2 with one line on stderr; the t distribution. Per-task
verdicts (C3 failing for XOR only); the Dale-axis section (present with incoming cells, absent
without); singular values and NSE computed from the weights or read from the file; the NSE
separation table on files built to separate and not to; the Mann-Whitney test.
Run: /usr/bin/python3 tests/test_report.py   (exit 0 = pass)
"""
import json
import os
import re
import subprocess
import sys
import tempfile

import h5py
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPORT = os.path.join(ROOT, "tools", "report")
VERDICTS = ("not reproduced", "reproduced", "inconclusive")
FIGURE_KINDS = ("clouds_", "hist_", "r_outer_vs_units_", "r_outer_vs_e_frac_", "constraint_",
                "loss_", "examples_", "activity_", "nse_")
K, EPOCHS, S, T, OUTLIERS = 5, 6, 4, 60, 6


def orthogonal(rng, n):
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def project(w, sign):
    """Dale projection on outgoing weights: column j keeps the sign of unit j."""
    return np.where(w * sign[None, :] >= 0, w, 0.0)


def sorted_eigs(w):
    lam = np.linalg.eigvals(w)
    return lam[np.argsort(-np.abs(lam), kind="stable")]


def block_stats(block):
    return {"mean": block.mean(), "std": block.std(), "zero": float(np.mean(block == 0))}


def metrics(w, lam, n_e):
    """Every metrics column of docs/FORMAT.md for one matrix."""
    modulus = np.abs(lam)
    dom = lam[np.argmax(lam.real)]
    sv = np.linalg.svd(w, compute_uv=False)
    fro2 = float((w * w).sum())
    out = {
        "rho": modulus[0], "r_outer": modulus[OUTLIERS], "r_inner": modulus.min(),
        "r_inner_p2": np.percentile(modulus, 2), "ring_ratio": modulus.min() / modulus[OUTLIERS],
        "dom_re": dom.real, "dom_im": dom.imag,
        "freq_arg": abs(np.angle(dom)) / (2 * np.pi * 1e-3),
        "freq_study": abs(dom.imag) / (2 * np.pi * dom.real) if dom.real else np.nan,
        "henrici": np.sqrt(max(0.0, fro2 - float((modulus ** 2).sum()))) / np.sqrt(fro2),
        "lam_sym_max": np.linalg.eigvalsh((w + w.T) / 2).max(),
        "n_outside_unit": float((modulus > 1).sum()), "n_re_gt1": float((lam.real > 1).sum()),
        "sv_max": sv[0], "sv_min": sv[-1], "sv_spread": sv[0] / sv[-1],
    }
    e, i = slice(0, n_e), slice(n_e, None)
    for name, block in (("ee", w[e, e]), ("ei", w[i, e]), ("ie", w[e, i]), ("ii", w[i, i])):
        for stat, value in block_stats(block).items():
            out[f"w_{name}_{stat}"] = value
    return out


def and_trials(rng):
    """S trials of a shortened AND task: x (S,T,2), y (S,T,1)."""
    x, y = np.zeros((S, T, 2), np.float32), np.zeros((S, T, 1), np.float32)
    for s in range(S):
        a, b = s % 2, s // 2
        x[s, 10:20] = (a, b)
        y[s, 30:, 0] = a & b
    return x, y


def write_group(parent, gid, cond, scale, rng, with_cell=True):
    """One group of K networks; `scale` maps 'dale'/'none' to the trained-matrix factor."""
    init, dale, n, e_frac = cond
    n_e = int(round(e_frac * n))
    sign = np.where(np.arange(n) < n_e, 1, -1).astype(np.int8)
    w0 = np.stack([orthogonal(rng, n) if init == "orthogonal" else rng.standard_normal((n, n))
                   / np.sqrt(n) for _ in range(K)])
    if dale == "project":
        wp = np.stack([project(w, sign) for w in w0])
        wt = np.stack([project(w * scale["dale"] + rng.normal(0, 0.02 / np.sqrt(n), w.shape), sign)
                       for w in wp])
    else:
        wp = w0
        wt = np.stack([w * scale["none"] + rng.normal(0, 0.02 / np.sqrt(n), w.shape) for w in w0])
    accuracy = np.ones(K, np.float32)
    if dale == "project":
        accuracy[-1] = 0.733
    g = parent.create_group(gid)
    config = {"model": {"units": n, "e_frac": e_frac, "init": init, "dale": dale,
                        "dale_axis": "outgoing", "project_init": False},
              "train": {"epochs": EPOCHS, "lr": 1e-3}, "task": {"kind": "and"},
              "networks": K, "seed": 1, "data_seed": 1, "outliers": OUTLIERS}
    g.attrs.update({"config": json.dumps(config), "eirnn_version": "0.1.0", "backend": "cpu",
                    "n_units_e": n_e, "example_network": 0, "train_seconds": 1.5})
    if with_cell:
        g.attrs["cell"] = json.dumps({"task": "and", "init": init, "dale": dale, "units": n,
                                      "e_frac": e_frac})
    w_in0 = np.abs(rng.normal(0, 0.5, (K, n, 2)))
    f32 = np.float32
    g["W_rec_initial"], g["W_rec"] = w0.astype(f32), wt.astype(f32)
    g["W_in_initial"], g["W_in"] = w_in0.astype(f32), (w_in0 * 1.1).astype(f32)
    g["b"], g["W_out"] = np.zeros((K, n), f32), rng.normal(0, 0.3, (K, 1, n)).astype(f32)
    g["b_out"], g["sign"] = np.zeros((K, 1), f32), np.tile(sign, (K, 1))
    g["seed"] = np.arange(1, K + 1, dtype=np.uint64)
    loss = (0.12 * np.exp(-np.outer(np.where(accuracy > 0.9, 1.0, 0.05), np.arange(EPOCHS))))
    loss[0, -2:] = np.nan  # network 0 stopped early
    g["loss"], g["test_loss"] = loss.astype(f32), loss[:, 0].astype(f32) / 10
    g["accuracy"], g["diverged"] = accuracy, np.zeros(K, np.uint8)
    g["epochs_run"] = np.array([EPOCHS - 2] + [EPOCHS] * (K - 1), np.int32)
    g["updates"] = g["epochs_run"][()] * 10
    for name, mats, metrics_name in (("eig_initial", w0, "metrics_initial"),
                                     ("eig_projected", wp, "metrics_projected"),
                                     ("eig", wt, "metrics")):
        lams = np.stack([sorted_eigs(w.astype(np.float64)) for w in mats])
        g[name] = lams.astype(np.complex128)
        rows = [metrics(w.astype(np.float64), lam, n_e) for w, lam in zip(mats, lams)]
        m = g.create_group(metrics_name)
        m.attrs["outliers"] = OUTLIERS
        for column in rows[0]:
            m[column] = np.array([r[column] for r in rows], np.float64)
    x, y = and_trials(rng)
    h = np.zeros((S, T, n))
    for t in range(1, T):
        h[:, t] = np.tanh(h[:, t - 1] @ wt[0].T + x[:, t] @ w_in0[0].T)
    ex = g.create_group("examples")
    ex["x"], ex["y"], ex["h"] = x, y, h.astype(f32)
    ex["output"] = (h @ g["W_out"][0].T).astype(f32)


def write_dynamics(g, n_stable, rng):
    """A `dynamics/` subgroup (docs/FORMAT.md) at zero input: network k has n_stable[k] stable
    fixed points and one saddle."""
    k_count, n = g["W_rec"].shape[0], g["W_rec"].shape[1]
    d = g.create_group("dynamics")
    d.attrs.update({"conditions": json.dumps(["zero"]), "settings": json.dumps({"starts": 64}),
                    "alpha": 1.0, "eig_method": "lapack", "seconds": 0.1})
    counts = np.asarray(n_stable) + 1
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.uint64)
    total = int(offsets[-1])
    stability = np.concatenate([[0] * s + [1] for s in n_stable]).astype(np.int8)
    eig = rng.normal(0, 0.3, (total, n)) + 1j * rng.normal(0, 0.3, (total, n))
    eig[stability == 1, 0] = 1.5
    d["inputs"] = np.zeros((1, 2))
    d["offsets"], d["h"] = offsets, rng.uniform(-1, 1, (total, n))
    d["q"], d["kind"] = np.full(total, 1e-30), np.zeros(total, np.uint8)
    d["stability"], d["n_unstable"] = stability, (stability == 1).astype(np.int32)
    d["rho_J"], d["basin"] = np.abs(eig).max(axis=1), np.full(total, 3, np.int32)
    d["eig_J"] = eig.astype(np.complex128)
    d["status"] = np.zeros((1, k_count), np.uint8)
    d["n_fixed"] = counts.reshape(1, -1).astype(np.int32)
    d["n_stable"] = np.asarray(n_stable, np.int32).reshape(1, -1)
    d["n_slow"] = np.zeros((1, k_count), np.int32)


def write_results(path, conditions, scale, seed=0, with_cell=True):
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        f.attrs.update({"format": "eirnn-results", "format_version": 1, "eirnn_version": "0.1.0"})
        groups = f.create_group("groups")
        for index, cond in enumerate(conditions):
            write_group(groups, f"g{index:04d}", cond, scale, rng, with_cell)


def run_report(results, out_dir, *extra):
    return subprocess.run([REPORT, results, "--out", out_dir, *extra], capture_output=True,
                          text=True, timeout=300)


def table_after(report_md, heading, first="claim"):
    """Rows (lists of cells) of the first table after a heading whose header starts with `first`:
    rows[0] is the header, rows[1] the |---| line, rows[2:] the data."""
    lines = report_md.splitlines()
    rows = []
    for line in lines[lines.index(heading) + 1:]:
        if line.startswith("#"):
            break
        if line.startswith(f"| {first} |") and not rows:
            rows.append([c.strip() for c in line.strip()[2:-2].split(" | ")])
        elif line.startswith("|") and rows:
            rows.append([c.strip() for c in line.strip()[2:-2].split(" | ")])
        elif rows:
            break
    return rows


def verdicts(report_md):
    """claim -> {task: verdict, 'overall': text}, from the claims table (a column per task)."""
    rows = table_after(report_md, "## Claims (docs/MODEL.md §7)")
    header = rows[0]
    return {row[0]: dict(zip(header[2:], row[2:])) for row in rows[2:]}


def check(condition, what):
    if not condition:
        raise AssertionError(what)
    print(f"ok: {what}")


def check_report(results, out_dir, expect_figures=True, *extra):
    proc = run_report(results, out_dir, *extra)
    name = os.path.basename(results)
    check(proc.returncode == 0, f"report exits 0 on {name} ({proc.stderr[-300:]})")
    md_path = os.path.join(out_dir, "report.md")
    check(proc.stdout.strip().splitlines()[-1] == md_path, "prints the path of report.md last")
    text = open(md_path, encoding="utf-8").read()
    figures = sorted(os.listdir(os.path.join(out_dir, "figures")))
    for name in figures:
        with open(os.path.join(out_dir, "figures", name), "rb") as f:
            head = f.read(8)
        size = os.path.getsize(os.path.join(out_dir, "figures", name))
        check(head == b"\x89PNG\r\n\x1a\n" and size > 1000, f"{name} is a non-empty PNG")
        check(f"](figures/{name})" in text, f"report.md embeds figures/{name}")
    referenced = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    check(all(os.path.isfile(os.path.join(out_dir, p)) for p in referenced),
          f"all {len(referenced)} figures referenced by report.md exist")
    if expect_figures:
        for kind in FIGURE_KINDS:
            check(any(n.startswith(kind) for n in figures), f"a {kind}* figure was written")
    found = verdicts(text)
    for claim in ("C1", "C2", "C3", "C4"):
        tasks = {k: v for k, v in found.get(claim, {}).items() if k != "overall"}
        check(tasks and all(v in VERDICTS for v in tasks.values()),
              f"{claim} has a verdict per task: {tasks}")
        check(bool(found[claim].get("overall")), f"{claim} has an overall statement")
    return text, found


def check_t_distribution():
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from eirnn_report.stats import t_quantile, t_two_sided_p, welch
    for df, q in ((1, 12.7062), (5, 2.5706), (10, 2.2281), (30, 2.0423)):
        check(abs(t_quantile(0.975, df) - q) < 1e-3, f"t quantile 0.975, df={df} = {q}")
    check(abs(t_two_sided_p(2.0, 10) - 0.07339) < 1e-4, "two-sided p of t=2, df=10")
    est = welch([1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 8.0, 10.0])
    check(abs(est.df - 5.5208) < 1e-3 and abs(est.value + 3.5) < 1e-12, "Welch df and difference")



def nse_of(sv):
    """Normalised SVD entropy of descending singular values, written out independently."""
    p = sv / sv.sum()
    return float(-(p * np.log(p)).sum() / np.log(sv.size))


def low_rank(rng, n, decay):
    """A matrix with singular values exp(-k / decay), k = 0 .. n-1 (a low NSE for small decay)."""
    u, v = orthogonal(rng, n), orthogonal(rng, n)
    return (u * np.exp(-np.arange(n) / decay)) @ v.T


def write_minimal(parent, gid, cond, w0, wt, accuracy, axis=None, axis_in_cell=True, sv=None,
                  nse=None):
    """A group with only what the report needs: config, cell, weights, sign, accuracy (no
    eigenvalues, metrics or examples: the report computes them from the weights). cond = (task,
    init, dale, N, f_E); axis: the dale_axis, written into the cell (sweep axis) or only the
    config; sv: stage -> (K,N) singular values written as sv_initial/sv_projected/sv; nse: a
    metrics/nse column."""
    task, init, dale, n, e_frac = cond
    n_e = int(round(e_frac * n))
    sign = np.where(np.arange(n) < n_e, 1, -1).astype(np.int8)
    config = {"model": {"units": n, "e_frac": e_frac, "init": init, "dale": dale,
                        "dale_axis": axis or "outgoing", "project_init": False},
              "task": {"kind": task}, "networks": len(accuracy), "seed": 1, "outliers": OUTLIERS}
    cell = {"task": task, "init": init, "dale": dale, "units": n, "e_frac": e_frac}
    if axis and axis_in_cell:
        cell["dale_axis"] = axis
    g = parent.create_group(gid)
    g.attrs.update({"config": json.dumps(config), "cell": json.dumps(cell), "n_units_e": n_e})
    g["W_rec_initial"], g["W_rec"] = np.asarray(w0, np.float32), np.asarray(wt, np.float32)
    g["sign"] = np.tile(sign, (len(accuracy), 1))
    g["accuracy"] = np.asarray(accuracy, np.float32)
    g["diverged"] = np.zeros(len(accuracy), np.uint8)
    names = {"initial": "sv_initial", "projected": "sv_projected", "trained": "sv"}
    for stage, name in names.items() if sv is not None else ():
        g[name] = sv[stage]
    if nse is not None:
        g.create_group("metrics")["nse"] = np.asarray(nse, np.float64)
    return sign


def write_minimal_file(path, groups):
    with h5py.File(path, "w") as f:
        f.attrs.update({"format": "eirnn-results", "format_version": 1, "eirnn_version": "0.1.0"})
        parent = f.create_group("groups")
        for index, (args, kwargs) in enumerate(groups):
            write_minimal(parent, f"g{index:04d}", *args, **kwargs)


def check_per_task_verdicts(tmp):
    """C3 fails for XOR only: r_outer grows with N there and is flat for the other tasks."""
    rng = np.random.default_rng(10)
    groups = []
    for task in ("and", "or", "xor", "ff"):
        for n in (24, 48):
            for e_frac in (0.5, 0.7):
                radius = 0.8 + (0.4 * (n - 24) / 24 if task == "xor" else 0.0)
                w0 = [rng.standard_normal((n, n)) / np.sqrt(n) for _ in range(4)]
                wt = [radius * orthogonal(rng, n) + rng.normal(0, 1e-4, (n, n)) for _ in range(4)]
                groups.append((((task, "normal", "project", n, e_frac), w0, wt, [1.0] * 4), {}))
    path = os.path.join(tmp, "tasks.h5")
    write_minimal_file(path, groups)
    text, found = check_report(path, os.path.join(tmp, "tasks_report"), False, "--no-figures")
    c3 = found["C3"]
    check(c3["xor"] == "not reproduced", f"C3 not reproduced for xor: {c3['xor']}")
    check(all(c3[t] == "reproduced" for t in ("and", "or", "ff")),
          f"C3 reproduced for and, or, ff: {c3}")
    check("not reproduced for 1 of 4 tasks (xor)" in c3["overall"]
          and "reproduced for 3 of 4 tasks (and, ff, or)" in c3["overall"]
          and "all" not in c3["overall"], f"C3 overall names the failing task: {c3['overall']}")
    check("| C3 | xor | not reproduced |" in text, "the per-task stage table has C3 for xor")
    check("## The Dale axis" not in text, "no Dale-axis section without incoming cells")
    return path


def check_dale_axis(tmp):
    """Incoming vs outgoing: with incoming signs the orthogonal networks end in a disc (C2 fails),
    with outgoing ones in a ring (C2 holds); C1 holds on both sides."""
    rng = np.random.default_rng(11)
    n, k = 48, 5

    def disc():
        return [0.6 * rng.standard_normal((n, n)) / np.sqrt(n) for _ in range(k)]

    def ring():
        return [0.8 * orthogonal(rng, n) + rng.normal(0, 1e-3, (n, n)) for _ in range(k)]

    w0 = [rng.standard_normal((n, n)) / np.sqrt(n) for _ in range(k)]
    learned = [1.0] * k
    groups = [
        ((("and", "normal", "project", n, 0.5), w0, disc(), learned), {}),
        ((("and", "orthogonal", "project", n, 0.5), w0, ring(), learned), {}),
        ((("and", "normal", "project", n, 0.5), w0, disc(), learned), {"axis": "incoming"}),
        # dale_axis only in the config: still its own condition, never merged with outgoing
        ((("and", "orthogonal", "project", n, 0.5), w0, disc(), learned),
         {"axis": "incoming", "axis_in_cell": False}),
        ((("and", "normal", "none", n, 0.5), w0, [1.5 * w for w in disc()], learned), {}),
        ((("and", "orthogonal", "none", n, 0.5), w0, [1.2 * w for w in ring()], learned), {}),
    ]
    path = os.path.join(tmp, "axis.h5")
    write_minimal_file(path, groups)
    text, found = check_report(path, os.path.join(tmp, "axis_report"), False, "--no-figures")
    check("## The Dale axis: incoming (the study's Keras constraint) vs outgoing" in text,
          "Dale-axis section present with incoming cells")
    check(found["C2"]["and"] == "reproduced"
          and found["C2"]["and (dale_axis=incoming)"] == "not reproduced",
          f"per-family C2: outgoing reproduced, incoming not: {found['C2']}")
    check("Yes: for and, the axis changes the verdict of C2 (incoming: not reproduced, "
          "outgoing: reproduced)" in text, "the one-sentence answer names C2's change")
    rows = table_after(text, "### and: incoming vs outgoing")
    verdict_rows = {r[0]: r for r in rows[2:]}
    check(verdict_rows["C1"][2:4] == ["reproduced", "reproduced"]
          and verdict_rows["C4"][2:4] == ["reproduced", "reproduced"],
          "C1 and C4 reproduced with both axes (C4 against the same unconstrained networks)")
    rows = table_after(text, "### and: incoming vs outgoing", first="condition")
    check(len(rows) == 4 and rows[2][1] == "5/5 / 5/5" and rows[2][0].endswith("N=48, f_E=0.5"),
          "the per-condition table has both matched conditions with their learned counts")


def check_nse_values(tmp, tasks_path):
    """NSE and sv_max computed from the weights (float64) when the file has no sv datasets; the
    file's sv datasets and nse column used when present."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from eirnn_report.data import open_results
    handle, results = open_results(tasks_path)
    try:
        group = results.groups[0]
        w0 = handle[f"groups/{group.name}/W_rec_initial"][()].astype(np.float64)
        wt = handle[f"groups/{group.name}/W_rec"][()].astype(np.float64)
        sign = handle[f"groups/{group.name}/sign"][()][0].astype(np.float64)
    finally:
        handle.close()
    wp = np.stack([project(w, sign) for w in w0])
    worst = 0.0
    for stage, mats in (("initial", w0), ("projected", wp), ("trained", wt)):
        expected = np.array([nse_of(np.linalg.svd(w, compute_uv=False)) for w in mats])
        worst = max(worst, float(np.abs(group.metrics[stage]["nse"] - expected).max()))
        sv_max = np.array([np.linalg.svd(w, compute_uv=False)[0] for w in mats])
        worst = max(worst, float(np.abs(group.metrics[stage]["sv_max"] - sv_max).max()))
    check(worst < 1e-12,
          f"NSE and sv_max from the weights equal numpy's svd (max error {worst:.1e})")
    check(np.all(group.metrics["projected"]["nse"] != group.metrics["initial"]["nse"]),
          "the projected stage's NSE is of the Dale projection of the initial matrix")

    rng = np.random.default_rng(12)
    n, k = 16, 3
    w = [rng.standard_normal((n, n)) / np.sqrt(n) for _ in range(k)]
    stored = {stage: np.tile(np.linspace(2.0, 0.1 * (i + 1), n), (k, 1))
              for i, stage in enumerate(("initial", "projected", "trained"))}
    path = os.path.join(tmp, "sv.h5")
    write_minimal_file(path, [((("and", "normal", "none", n, 0.5), w, w, [1.0] * k),
                               {"sv": stored}),
                              ((("and", "orthogonal", "none", n, 0.5), w, w, [1.0] * k),
                               {"nse": [0.25, 0.5, 0.75]})])
    handle, results = open_results(path)
    handle.close()
    from_sv, from_column = results.groups
    check(all(np.allclose(from_sv.metrics[s]["nse"], nse_of(stored[s][0]), rtol=0, atol=1e-14)
              and np.allclose(from_sv.metrics[s]["sv_max"], 2.0) for s in stored),
          "the file's sv datasets are used when present (not the weights')")
    check(np.array_equal(from_column.metrics["trained"]["nse"], [0.25, 0.5, 0.75]),
          "the file's metrics/nse column is used when present")


def check_nse_separation(tmp):
    """12 networks, 6 learned: NSE separates when the not learned ones start low-rank, and does not
    when learned and not learned alternate in NSE rank."""
    rng = np.random.default_rng(13)
    n = 24
    cond = ("and", "normal", "none", n, 0.5)
    w0 = ([rng.standard_normal((n, n)) / np.sqrt(n) for _ in range(6)]
          + [low_rank(rng, n, 2.0) for _ in range(6)])
    wt = [w + rng.normal(0, 1e-3, (n, n)) for w in w0]
    accuracy = [1.0] * 6 + [0.5] * 6
    separated = os.path.join(tmp, "separated.h5")
    write_minimal_file(separated, [((cond, w0, wt, accuracy), {})])
    text, _ = check_report(separated, os.path.join(tmp, "separated_report"), False,
                          "--no-figures")
    heading = "## Singular values: does NSE separate networks that learn?"
    rows = table_after(text, heading, first="task")
    check(len(rows) == 3 and rows[2][:5] == ["and", "normal", "none", "6", "6"],
          f"separation table: n learned 6, not learned 6: {rows[2:]}")
    check(all("AUC 1.00" in rows[2][i] and "n = 6 vs 6 (separates)" in rows[2][i]
              for i in (6, 8, 10)), "NSE separates at every stage (AUC 1, n = 6 vs 6)")
    check("Yes: after first projection (the matrix training starts from), NSE separates the "
          "learned from the not learned networks in 1 of 1 testable" in text,
          "the one-sentence answer: yes")
    check(not os.listdir(os.path.join(tmp, "separated_report", "figures"))
          and "Not drawn (--no-figures)." in text, "--no-figures draws no figure")
    check("| and | - | normal | none | 24 | 0.5 | 1 | 12 | 6 | 0 |" in text,
          "the cells table has the learned count beside the NSE columns")

    mats = [rng.standard_normal((n, n)) / np.sqrt(n) for _ in range(12)]
    order = np.argsort([nse_of(np.linalg.svd(w, compute_uv=False)) for w in mats])
    accuracy = np.empty(12)
    accuracy[order] = [1.0, 0.5] * 6  # learned at every other NSE rank: AUC 15/36
    mixed = os.path.join(tmp, "mixed.h5")
    write_minimal_file(mixed, [((cond, mats, [w.copy() for w in mats], accuracy), {})])
    text, _ = check_report(mixed, os.path.join(tmp, "mixed_report"), False, "--no-figures")
    rows = table_after(text, heading, first="task")
    check(rows[2][3:5] == ["6", "6"] and "AUC 0.42" in rows[2][6]
          and not any("(separates)" in cell for cell in rows[2]),
          f"no separation when learned and not learned alternate: {rows[2][5:]}")
    check("No: after first projection" in text and "in 0 of 1 testable" in text,
          "the one-sentence answer: no")


def check_mann_whitney():
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from eirnn_report.stats import mann_whitney, stratified_mann_whitney
    test = mann_whitney([0.1, 0.5, 0.9, 1.3, 1.7], [0.2, 0.3, 0.4, 0.6, 0.7, 0.8])
    check(test.exact and test.u == 21.0 and abs(test.auc - 0.7) < 1e-12
          and abs(test.p - 0.329004329) < 1e-8, "Mann-Whitney exact p (5 vs 6, no ties)")
    test = mann_whitney([1, 2, 2, 3, 5, 6, 6, 7], [0, 1, 1, 2, 3, 3, 4])
    check(not test.exact and test.u == 42.0 and abs(test.p - 0.113928928) < 1e-8,
          "Mann-Whitney normal approximation with ties")
    # a confounder: stratum 2 has higher values and more of a; within each stratum a is not higher
    a1, b1, a2, b2 = [1.0], [2.0, 3.0, 4.0, 5.0, 6.0], [10.0, 12.0, 14.0, 16.0, 18.0], [11.0]
    pooled, within = mann_whitney(a1 + a2, b1 + b2), stratified_mann_whitney([(a1, b1), (a2, b2)])
    check(pooled.auc > 0.8 and within.u == 4.0 and abs(within.auc - 0.4) < 1e-12
          and within.p > 0.5 and (within.n_a, within.n_b) == (6, 6),
          f"stratified Mann-Whitney compares within strata only (pooled AUC {pooled.auc:.2f}, "
          f"within {within.auc:.2f}, p = {within.p:.2f})")


def main():
    conditions = [(init, dale, n, e)
                  for init in ("normal", "orthogonal") for dale in ("project", "none")
                  for n, e in ((24, 0.5), (24, 0.7), (48, 0.5))]
    with tempfile.TemporaryDirectory() as tmp:
        check_t_distribution()
        check_mann_whitney()
        tasks = check_per_task_verdicts(tmp)
        check_nse_values(tmp, tasks)
        check_dale_axis(tmp)
        check_nse_separation(tmp)

        study = os.path.join(tmp, "study.h5")
        write_results(study, conditions, {"dale": 1.05, "none": 1.0})
        text, found = check_report(study, os.path.join(tmp, "study_report"), True, "--html")
        check(os.path.isfile(os.path.join(tmp, "study_report", "report.html")),
              "--html writes report.html")
        check("| and | - | normal | project | 24 | 0.5 | 1 | 5 | 4 |" in text,
              "the cells table states how many networks learned (4 of 5)")
        check(found["C4"]["and"] == "reproduced",
              "C4 reproduced when Dale r_outer < unconstrained")

        inverted = os.path.join(tmp, "inverted.h5")
        pair = [("orthogonal", "project", 24, 0.5), ("orthogonal", "none", 24, 0.5)]
        write_results(inverted, pair, {"dale": 2.0, "none": 0.5}, seed=1)
        _, found = check_report(inverted, os.path.join(tmp, "inverted_report"), False,
                                "--no-figures")
        check(found["C4"]["and"] == "not reproduced",
              "C4 not reproduced when Dale r_outer > unconstrained")

        single = os.path.join(tmp, "single.h5")
        write_results(single, [("orthogonal", "project", 24, 0.7)], {"dale": 1.0}, seed=2,
                      with_cell=False)
        _, found = check_report(single, os.path.join(tmp, "single_report"), False, "--no-figures")
        check(found["C4"]["and"] == "inconclusive",
              "C4 inconclusive without unconstrained networks")

        flipflop = os.path.join(tmp, "flipflop.h5")
        write_results(flipflop, [("orthogonal", "none", 24, 0.5)], {"none": 1.0}, seed=3)
        with h5py.File(flipflop, "r+") as f:
            g = f["groups/g0000"]
            config = json.loads(g.attrs["config"])
            config["task"]["kind"] = "ff"
            g.attrs["config"] = json.dumps(config)
            g.attrs["cell"] = json.dumps({"task": "ff"})
            g["accuracy"][-1] = 0.5  # not learned: left out of the counts
            write_dynamics(g, [2, 2, 1, 2, 0], np.random.default_rng(4))
        text, _ = check_report(flipflop, os.path.join(tmp, "flipflop_report"), False)
        figures = os.listdir(os.path.join(tmp, "flipflop_report", "figures"))
        for kind in ("fixed_points_count_", "fixed_points_pca_", "fixed_points_jacobian_"):
            check(any(n.startswith(kind) for n in figures), f"a {kind}* figure was written")
        check("| zero | 4 | 0: 0, 1: 1, 2: 3, ≥3: 0 | 1.75 ± 0.25 |" in text,
              "the fixed-point table counts the learned networks' stable fixed points")
        check("3 of 4 learned networks have at least two stable fixed points" in text,
              "the flip-flop statement")
        check(not any(n.startswith("fixed_points")
                      for n in os.listdir(os.path.join(tmp, "study_report", "figures"))),
              "no fixed-point figures without dynamics/")

        with h5py.File(os.path.join(tmp, "sv.h5"), "r+") as f:
            del f["groups/g0000/sv"]
            f["groups/g0000/sv"] = np.ones((2, 5))
        proc = run_report(os.path.join(tmp, "sv.h5"), os.path.join(tmp, "z"))
        check(proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
              and "sv has shape (2, 5), expected (K, N) = (3, 16)" in proc.stderr,
              f"sv of the wrong shape: exit 2, one line naming it ({proc.stderr.strip()})")
        proc = run_report(os.path.join(tmp, "missing.h5"), os.path.join(tmp, "x"))
        check(proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1,
              "missing file: exit 2, one line on stderr")
        with h5py.File(os.path.join(tmp, "other.h5"), "w") as f:
            f["data"] = np.zeros(3)
        proc = run_report(os.path.join(tmp, "other.h5"), os.path.join(tmp, "y"))
        check(proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1,
              "not a results file: exit 2, one line on stderr")
    print("test_report: all checks passed")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssertionError as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
