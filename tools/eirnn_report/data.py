"""Reads an eirnn results file (docs/FORMAT.md) into cells: all networks of one condition.

A condition is (task, init, e_frac, units, dale) read from each group's `config` JSON (falling
back to its `cell` attribute and to the arrays' shapes), plus any other sweep axis found in `cell`
(and dale_axis=incoming from the config when no axis says so). Groups with the same condition are
merged. Spectral metrics come from the file; when a metric, a stage's eigenvalues or its singular
values are missing they are computed here from the stored eigenvalues, singular values or weights.
"""
from dataclasses import dataclass, field
import json
import math
import os

import h5py
import numpy as np

STAGES = ("initial", "projected", "trained")
STAGE_TITLES = {"initial": "initial", "projected": "after first projection", "trained": "trained"}
_EIG_NAMES = {"initial": "eig_initial", "projected": "eig_projected", "trained": "eig"}
_METRICS_NAMES = {"initial": "metrics_initial", "projected": "metrics_projected",
                  "trained": "metrics"}
_SV_NAMES = {"initial": "sv_initial", "projected": "sv_projected", "trained": "sv"}
LEARNED_ACCURACY = 0.9
DEFAULT_OUTLIERS = 6
CONSTRAINED_MODES = ("project", "reparam")
_AXES = ("task", "init", "e_frac", "units", "dale")


class ResultsError(Exception):
    """The input is not a readable eirnn results file."""


@dataclass(frozen=True, order=True)
class Condition:
    """One cell of the study design; `other` holds any further sweep axes as 'key=value' text."""
    task: str
    other: str
    init: str
    dale: str
    units: int
    e_frac: float

    @property
    def family(self) -> tuple[str, str]:
        """Conditions compared with each other: same task and same other axes."""
        return (self.task, self.other)

    @property
    def constrained(self) -> bool:
        return self.dale in CONSTRAINED_MODES

    @property
    def dale_axis(self) -> str:
        """'incoming' when the other axes say so, else 'outgoing' (the default)."""
        return "incoming" if "dale_axis=incoming" in self.other.split(", ") else "outgoing"

    @property
    def other_without_axis(self) -> str:
        """The other axes without dale_axis: what an incoming cell and its outgoing match share."""
        return without_axis(self.other)

    def label(self, with_family: bool = True) -> str:
        parts = [family_label(self.family)] if with_family else []
        parts += [self.init, f"dale={self.dale}", f"N={self.units}", f"f_E={self.e_frac:g}"]
        return ", ".join(parts)


def without_axis(other: str) -> str:
    """'key=value, ...' text of other axes with any dale_axis removed."""
    return ", ".join(p for p in other.split(", ") if p and not p.startswith("dale_axis="))


def family_label(family: tuple[str, str]) -> str:
    task, other = family
    return f"{task} ({other})" if other else task


@dataclass
class Group:
    """One `/groups/<id>` of the file, read into memory (examples stay in the file until needed)."""
    name: str
    condition: Condition
    config: dict
    n_e: int
    accuracy: np.ndarray        # (K)
    diverged: np.ndarray        # (K) bool
    loss: np.ndarray            # (K,E)
    eig: dict                   # stage -> (K,N) complex128, or missing
    sv: dict                    # stage -> (K,N) float64 singular values (descending), or missing
    metrics: dict               # stage -> {name: (K) float64}
    notes: list                 # what the report had to compute or assume for this group
    example_network: int
    examples: h5py.Group | None
    dynamics: h5py.Group | None = None  # `dynamics/` of eirnn dynamics (fixed_points.py reads it)


@dataclass
class Cell:
    """All networks of one condition, over every group that has it."""
    condition: Condition
    groups: list = field(default_factory=list)

    def _cat(self, pick) -> np.ndarray:
        return np.concatenate([pick(g) for g in self.groups])

    @property
    def accuracy(self) -> np.ndarray:
        return self._cat(lambda g: g.accuracy)

    @property
    def learned(self) -> np.ndarray:
        """(K) bool: held-out accuracy >= 0.9 and not diverged (NaN accuracy never counts)."""
        acc = self.accuracy
        ok = np.where(np.isfinite(acc), acc, -1.0) >= LEARNED_ACCURACY
        return ok & ~self._cat(lambda g: g.diverged)

    @property
    def diverged(self) -> np.ndarray:
        return self._cat(lambda g: g.diverged)

    @property
    def n_networks(self) -> int:
        return int(sum(g.accuracy.size for g in self.groups))

    @property
    def has_spectra(self) -> bool:
        return all(all(s in g.eig for s in STAGES) for g in self.groups)

    def eig(self, stage: str) -> np.ndarray:
        return self._cat(lambda g: g.eig[stage])

    @property
    def has_sv(self) -> bool:
        return all(all(s in g.sv for s in STAGES) for g in self.groups)

    def metric(self, stage: str, name: str) -> np.ndarray:
        """(K) values of one metric at one stage; NaN where the file has no such metric."""
        return self._cat(lambda g: g.metrics[stage].get(name, np.full(g.accuracy.size, np.nan)))

    def counted(self, stage: str, name: str) -> np.ndarray:
        """The metric over the networks that learned: the values every claim is computed on."""
        return self.metric(stage, name)[self.learned]

    def loss(self) -> np.ndarray:
        """(K,E) epoch losses, padded with NaN to the longest group."""
        epochs = max(g.loss.shape[1] for g in self.groups)
        padded = [np.pad(g.loss, ((0, 0), (0, epochs - g.loss.shape[1])), constant_values=np.nan)
                  for g in self.groups]
        return np.concatenate(padded)

    def example_group(self) -> Group | None:
        """The group whose example network is shown: preferably one that learned."""
        with_examples = [g for g in self.groups if g.examples is not None]
        for g in with_examples:
            k = g.example_network
            if 0 <= k < g.accuracy.size and np.nan_to_num(g.accuracy[k]) >= LEARNED_ACCURACY:
                return g
        return with_examples[0] if with_examples else None


@dataclass
class Results:
    """A whole results file: its attributes and its cells, sorted by condition."""
    path: str
    attrs: dict
    groups: list
    cells: list

    @property
    def families(self) -> list:
        return sorted({c.condition.family for c in self.cells})

    def cells_of(self, family, **fixed) -> list:
        """Cells of one family whose condition matches every keyword given."""
        return [c for c in self.cells if c.condition.family == family
                and all(getattr(c.condition, k) == v for k, v in fixed.items())]


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.size == 1:
        return _text(value.item())
    return str(value)


def _json_attr(node, name: str) -> dict:
    if name not in node.attrs:
        return {}
    try:
        value = json.loads(_text(node.attrs[name]))
    except (json.JSONDecodeError, TypeError):
        return {}
    return value if isinstance(value, dict) else {}


def _lookup(tree: dict, *paths: str):
    """The first of the dotted paths present in a nested dict, else None."""
    for path in paths:
        node = tree
        for key in path.split("."):
            if not isinstance(node, dict) or key not in node:
                break
            node = node[key]
        else:
            return node
    return None


def _cell_axes(cell: dict) -> dict:
    """Sweep axes with any 'model.' / 'task.' / 'train.' prefix removed."""
    axes = {}
    for key, value in cell.items():
        short = key.split(".")[-1].replace("-", "_")
        axes["task" if short == "kind" else short] = value
    return axes


def _enum_text(value, default: str) -> str:
    if value is None:
        return default
    return _text(value).strip().lower()


def _condition(config: dict, cell: dict, units: int, n_e: int) -> Condition:
    axes = _cell_axes(cell)
    task = _lookup(config, "task.kind", "task_kind", "task")
    if isinstance(task, dict):
        task = None
    task = task if task is not None else axes.get("task")
    init = _lookup(config, "model.init", "init")
    dale = _lookup(config, "model.dale", "dale")
    units_cfg = _lookup(config, "model.units", "units")
    e_frac = _lookup(config, "model.e_frac", "e_frac")
    if e_frac is None:
        e_frac = axes.get("e_frac", n_e / units if units else math.nan)
    # dale_axis: 'outgoing' is the default and never shown; 'incoming' (from the cell or, when no
    # sweep axis says so, from the config) always is, so the two are never merged into one cell.
    axis = _enum_text(axes.get("dale_axis", _lookup(config, "model.dale_axis", "dale_axis")),
                      "outgoing")
    axes.pop("dale_axis", None)
    if axis != "outgoing":
        axes["dale_axis"] = axis
    other = ", ".join(f"{k}={_text(v)}" for k, v in sorted(axes.items()) if k not in _AXES)
    return Condition(
        task=_enum_text(task, "task?"),
        other=other,
        init=_enum_text(init if init is not None else axes.get("init"), "init?"),
        dale=_enum_text(dale if dale is not None else axes.get("dale"), "dale?"),
        units=int(units_cfg if units_cfg is not None else axes.get("units", units)),
        e_frac=round(float(e_frac), 6),
    )


def _complex(array) -> np.ndarray:
    """complex128 from h5py's complex read or from a compound {r, i} read as a structured array."""
    array = np.asarray(array)
    if array.dtype.names:
        real, imag = array.dtype.names[:2]
        return array[real].astype(float) + 1j * array[imag].astype(float)
    return array.astype(np.complex128)


def _sorted_eigs(w: np.ndarray) -> np.ndarray:
    """(K,N,N) -> (K,N) eigenvalues sorted by descending modulus."""
    lam = np.linalg.eigvals(w.astype(np.float64))
    order = np.argsort(-np.abs(lam), axis=1, kind="stable")
    return np.take_along_axis(lam, order, axis=1)


def _project(w: np.ndarray, sign: np.ndarray, axis: str) -> np.ndarray:
    """One Dale projection (docs/MODEL.md §2): wrong-signed entries set to 0."""
    signs = sign[:, None, :] if axis != "incoming" else sign[:, :, None]
    return np.where(w * signs >= 0, w, 0.0)


def _stage_weights(node, config: dict, stage: str) -> np.ndarray | None:
    """(K,N,N) float64 W_rec of a stage from the stored weights: W_rec_initial, its one Dale
    projection (unless the initial matrix was already projected or dale is not 'project'), W_rec."""
    if stage == "trained":
        return node["W_rec"][()].astype(np.float64) if "W_rec" in node else None
    if "W_rec_initial" not in node:
        return None
    w = node["W_rec_initial"][()].astype(np.float64)
    if stage == "projected":
        dale = _enum_text(_lookup(config, "model.dale", "dale"), "project")
        project_init = bool(_lookup(config, "model.project_init", "project_init"))
        if dale == "project" and not project_init and "sign" in node:
            axis = _enum_text(_lookup(config, "model.dale_axis", "dale_axis"), "outgoing")
            w = _project(w, node["sign"][()].astype(np.float64), axis)
    return w


def _read_eigs(node, config: dict, notes: list) -> dict:
    """Eigenvalues of each stage: from the file, else computed from W_rec_initial / W_rec."""
    eig = {s: _complex(node[d][()]) for s, d in _EIG_NAMES.items() if d in node}
    missing = [s for s in STAGES if s not in eig]
    for stage in missing:
        w = _stage_weights(node, config, stage)
        if w is not None:
            eig[stage] = _sorted_eigs(w)
    computed = [s for s in missing if s in eig]
    if computed:
        notes.append("eigenvalues of stage(s) " + ", ".join(computed)
                     + " computed by the report from the stored weights")
    return eig


def _read_svs(node, config: dict, notes: list) -> dict:
    """Singular values (descending) of each stage: sv_initial / sv_projected / sv from the file,
    else computed in float64 from the same matrices as the eigenvalues."""
    sv = {s: np.asarray(node[d][()], dtype=np.float64) for s, d in _SV_NAMES.items() if d in node}
    shape = node["W_rec"].shape[:2]
    for stage, values in sv.items():
        if values.shape != shape:
            raise ResultsError(f"{_SV_NAMES[stage]} has shape {values.shape}, expected "
                               f"(K, N) = {tuple(shape)}")
    missing = [s for s in STAGES if s not in sv]
    for stage in missing:
        w = _stage_weights(node, config, stage)
        if w is not None:
            sv[stage] = np.linalg.svd(w, compute_uv=False)
    computed = [s for s in missing if s in sv]
    if computed:
        notes.append("singular values of stage(s) " + ", ".join(computed)
                     + " computed by the report from the stored weights")
    return sv


def metrics_from_svs(sv: np.ndarray) -> dict:
    """sv_max and the normalised SVD entropy of (K,N) singular values: p_i = s_i / sum_j s_j,
    nse = -sum_i p_i ln p_i / ln N (1: all equal, e.g. orthogonal; 0: rank one)."""
    sv = np.asarray(sv, dtype=np.float64)
    n = sv.shape[1]
    total = sv.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = sv / total
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
        nse = -terms.sum(axis=1) / np.log(n) if n > 1 else np.full(sv.shape[0], np.nan)
    nse = np.where(total[:, 0] > 0, nse, np.nan)
    return {"sv_max": sv.max(axis=1) if n else np.full(sv.shape[0], np.nan), "nse": nse}


def metrics_from_eigs(lam: np.ndarray, outliers: int) -> dict:
    """rho, r_outer, r_inner, r_inner_p2 and ring_ratio of (K,N) eigenvalues (docs/MODEL.md §6)."""
    modulus = -np.sort(-np.abs(lam), axis=1)
    k = min(outliers, modulus.shape[1] - 1)
    r_outer = modulus[:, k]
    r_inner = modulus[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = r_inner / r_outer
    return {"rho": modulus[:, 0], "r_outer": r_outer, "r_inner": r_inner,
            "r_inner_p2": np.percentile(modulus, 2, axis=1), "ring_ratio": ratio}


def _read_metrics(node, eig: dict, sv: dict, config: dict, notes: list) -> dict:
    """Metrics of each stage from metrics*/ datasets, completed from the eigenvalues and the
    singular values."""
    metrics, absent_by_names = {}, {}
    for stage, group_name in _METRICS_NAMES.items():
        stored = node.get(group_name)
        outliers = _lookup(config, "outliers", "analysis.outliers")
        if stored is not None and "outliers" in stored.attrs:
            outliers = stored.attrs["outliers"]
        outliers = int(outliers) if outliers is not None else DEFAULT_OUTLIERS
        values = {}
        if stored is not None:
            values = {name: np.asarray(ds[()], dtype=float) for name, ds in stored.items()
                      if isinstance(ds, h5py.Dataset)}
        computed = metrics_from_eigs(eig[stage], outliers) if stage in eig else {}
        if stage in sv:
            computed.update(metrics_from_svs(sv[stage]))
        if computed:
            absent = [name for name in computed if name not in values]
            if absent and stored is not None:
                absent_by_names.setdefault(", ".join(absent), []).append(group_name)
            for name in absent:
                values[name] = computed[name]
        with np.errstate(divide="ignore", invalid="ignore"):
            if "r_inner_p2" in values and "r_outer" in values:
                values["ring_ratio_p2"] = values["r_inner_p2"] / values["r_outer"]
        metrics[stage] = values
    for names, where in absent_by_names.items():
        notes.append(f"{names} computed by the report ({', '.join(where)})")
    return metrics


def _dataset(node, name: str, k: int, default: float, dtype=float) -> np.ndarray:
    if name in node:
        return np.asarray(node[name][()]).astype(dtype).reshape(k, *node[name].shape[1:])
    return np.full(k, default, dtype=dtype)


def _has_examples(node) -> bool:
    return isinstance(node, h5py.Group) and all(n in node for n in ("x", "y", "output", "h"))


def _read_group(name: str, node) -> Group:
    if "W_rec" not in node:
        raise ResultsError(f"group {name} has no W_rec dataset")
    config = _json_attr(node, "config")
    cell = _json_attr(node, "cell")
    k, n = node["W_rec"].shape[0], node["W_rec"].shape[-1]
    n_e = int(node.attrs.get("n_units_e", n))
    notes = [] if config else ["no readable config attribute"]
    eig = _read_eigs(node, config, notes)
    try:
        sv = _read_svs(node, config, notes)
    except ResultsError as error:
        raise ResultsError(f"group {name}: {error}") from None
    metrics = _read_metrics(node, eig, sv, config, notes)
    loss = np.asarray(node["loss"][()], dtype=float) if "loss" in node else np.full((k, 0), np.nan)
    examples = node.get("examples")
    return Group(
        name=name,
        condition=_condition(config, cell, n, n_e),
        config=config,
        n_e=n_e,
        accuracy=_dataset(node, "accuracy", k, np.nan),
        diverged=_dataset(node, "diverged", k, 0, dtype=np.uint8).astype(bool),
        loss=loss.reshape(k, -1),
        eig=eig,
        sv=sv,
        metrics=metrics,
        notes=notes,
        example_network=int(node.attrs.get("example_network", 0)),
        examples=examples if _has_examples(examples) else None,
        dynamics=node["dynamics"] if isinstance(node.get("dynamics"), h5py.Group) else None,
    )


def open_results(path: str) -> tuple[h5py.File, Results]:
    """Opens and reads a results file; raises ResultsError with a one-line reason."""
    if not os.path.exists(path):
        raise ResultsError(f"{path}: no such file")
    try:
        handle = h5py.File(path, "r")
    except OSError:
        raise ResultsError(f"{path}: not an HDF5 file") from None
    if _text(handle.attrs.get("format", "")) != "eirnn-results" or "groups" not in handle:
        handle.close()
        raise ResultsError(f"{path}: not an eirnn results file "
                           "(no format='eirnn-results' attribute or no groups)")
    try:
        groups = [_read_group(name, handle["groups"][name]) for name in sorted(handle["groups"])]
    except ResultsError as error:
        handle.close()
        raise ResultsError(f"{path}: {error}") from None
    if not groups:
        handle.close()
        raise ResultsError(f"{path}: the results file has no groups")
    cells = {}
    for group in groups:
        cells.setdefault(group.condition, Cell(group.condition)).groups.append(group)
    for cell in cells.values():
        widths = {g.eig["trained"].shape[1] for g in cell.groups if "trained" in g.eig}
        if len(widths) > 1:
            handle.close()
            raise ResultsError(f"{path}: groups of {cell.condition.label()} differ in size")
    attrs = {key: _text(value) for key, value in handle.attrs.items()}
    return handle, Results(path, attrs, groups, [cells[c] for c in sorted(cells)])
