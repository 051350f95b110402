#!/usr/bin/python3
"""tools/report on synthetic results files written here with h5py, following docs/FORMAT.md.

Checks: every figure is a non-empty PNG referenced by report.md; the claims table has a verdict per
claim; the C4 verdict follows the data (Dale radius below / above the unconstrained one); a
one-group plain-train file works; the fixed-point table, figures and flip-flop statement of a file
with `dynamics/`; input errors exit 2 with one line on stderr; the t distribution.
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
                "loss_", "examples_", "activity_")
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


def verdicts(report_md):
    """claim -> verdict, from the rows '| C1 | statement | verdict | ...' of the claims table."""
    found = {}
    for line in report_md.splitlines():
        m = re.match(r"\| (C[1-4]) \| [^|]+ \| ([a-z ]+) \|", line)
        if m and m.group(1) not in found:
            found[m.group(1)] = m.group(2).strip()
    return found


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
        check(found.get(claim) in VERDICTS, f"{claim} has a verdict: {found.get(claim)}")
    return text, found


def check_t_distribution():
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from eirnn_report.stats import t_quantile, t_two_sided_p, welch
    for df, q in ((1, 12.7062), (5, 2.5706), (10, 2.2281), (30, 2.0423)):
        check(abs(t_quantile(0.975, df) - q) < 1e-3, f"t quantile 0.975, df={df} = {q}")
    check(abs(t_two_sided_p(2.0, 10) - 0.07339) < 1e-4, "two-sided p of t=2, df=10")
    est = welch([1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 8.0, 10.0])
    check(abs(est.df - 5.5208) < 1e-3 and abs(est.value + 3.5) < 1e-12, "Welch df and difference")


def main():
    conditions = [(init, dale, n, e)
                  for init in ("normal", "orthogonal") for dale in ("project", "none")
                  for n, e in ((24, 0.5), (24, 0.7), (48, 0.5))]
    with tempfile.TemporaryDirectory() as tmp:
        check_t_distribution()

        study = os.path.join(tmp, "study.h5")
        write_results(study, conditions, {"dale": 1.05, "none": 1.0})
        text, found = check_report(study, os.path.join(tmp, "study_report"), True, "--html")
        check(os.path.isfile(os.path.join(tmp, "study_report", "report.html")),
              "--html writes report.html")
        check("| and | - | normal | project | 24 | 0.5 | 1 | 5 | 4 |" in text,
              "the cells table states how many networks learned (4 of 5)")
        check(found["C4"] == "reproduced", "C4 reproduced when Dale r_outer < unconstrained")

        inverted = os.path.join(tmp, "inverted.h5")
        pair = [("orthogonal", "project", 24, 0.5), ("orthogonal", "none", 24, 0.5)]
        write_results(inverted, pair, {"dale": 2.0, "none": 0.5}, seed=1)
        _, found = check_report(inverted, os.path.join(tmp, "inverted_report"), False)
        check(found["C4"] == "not reproduced",
              "C4 not reproduced when Dale r_outer > unconstrained")

        single = os.path.join(tmp, "single.h5")
        write_results(single, [("orthogonal", "project", 24, 0.7)], {"dale": 1.0}, seed=2,
                      with_cell=False)
        _, found = check_report(single, os.path.join(tmp, "single_report"), False)
        check(found["C4"] == "inconclusive", "C4 inconclusive without unconstrained networks")

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
