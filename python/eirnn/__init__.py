"""eirnn: train many excitatory/inhibitory (Dale's law) recurrent networks and analyse the
eigenvalue spectra of every one of them, from Python.

The module is a thin layer over the same C++ engine as the ``eirnn`` command-line program: the
keywords of :func:`train` are the flags of ``eirnn train`` (parsed and validated by the CLI's own
code), results are the arrays of the results file (docs/FORMAT.md), and :meth:`Result.save`
writes the file ``eirnn train`` writes. The model, Dale modes, tasks, training protocol and
metrics: docs/MODEL.md. Every function: docs/PYTHON.md.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Mapping

import numpy as np

from . import _openblas

_chosen = _openblas.choose()  # before _core loads OpenBLAS: the CLI's kernels (README)

from . import _core  # noqa: E402

_openblas.release(_chosen)

from ._interop import to_jax, to_torch
from ._result import Result, Results, Spectrum, load
from . import keras

__version__: str = _core.__version__

__all__ = [
    "Config",
    "Result",
    "Results",
    "Spectrum",
    "__version__",
    "forward",
    "keras",
    "load",
    "reproduce",
    "spectrum",
    "sweep",
    "to_jax",
    "to_torch",
    "train",
    "trials",
]


class Config:
    """The settings of a training: keywords of ``eirnn train`` (``e_frac=0.7`` is
    ``--e-frac 0.7``), checked when the Config is made, exactly as the CLI checks them.

    ``Config(**settings).as_dict()`` is the full configuration as a results file stores it
    (its ``config`` attribute); ``Config.options()`` lists every keyword with its default.
    """

    def __init__(self, **settings: Any) -> None:
        self.settings: dict[str, Any] = dict(settings)
        self._json = _core.config_json(self.settings)

    def as_dict(self) -> dict[str, Any]:
        """The full configuration (defaults filled in), as the results file's ``config``."""
        return json.loads(self._json)

    def replace(self, **settings: Any) -> "Config":
        """A copy with some settings changed."""
        return Config(**{**self.settings, **settings})

    @staticmethod
    def options() -> list[tuple[str, str, str, bool]]:
        """(keyword, default, help, is_flag) of every ``eirnn train`` option."""
        return [tuple(o) for o in _core.train_options()]

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.settings.items())
        return f"Config({inner})"


def _writable_error(err: ValueError, path: str) -> Exception:
    """The OSError subclass for a bad output path (the message is the CLI's)."""
    msg = str(err)
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.exists(path):
        return FileExistsError(msg)
    if not os.path.isdir(parent):
        return FileNotFoundError(msg)
    return PermissionError(msg) if not os.access(parent, os.W_OK) else OSError(msg)


def train(
    config: Config | None = None,
    *,
    progress: bool | Callable[[int, np.ndarray], Any] | None = None,
    **settings: Any,
) -> Result:
    """Trains a group of K networks of equal shape and computes their spectra and metrics.

    Keywords are the flags of ``eirnn train`` with underscores (``units``, ``networks``,
    ``e_frac``, ``init``, ``dale``, ``epochs``, ``lr``, ``task``, ``first_in``, ``backend``,
    ``threads``, ``eig_method``, ``outliers``, ``no_spectra``, ...; ``Config.options()`` lists
    them), with the same defaults, validation and error messages; or a :class:`Config`
    (keywords given as well override it). Flags take True/False. ``out=PATH`` also writes the
    results file (``force=True`` overwrites), as the CLI does.

    progress: a callable receiving ``(updates done, loss per network)`` (the loss of each
    network's last finished epoch, NaN before the first) from the calling thread, or True for
    the CLI's progress bar on stderr (drawn only on a terminal). Nothing is printed otherwise.

    The GIL is released while the engine trains; Ctrl-C (KeyboardInterrupt) stops the training
    within one update and raises, writing nothing. Bad settings raise ValueError with the CLI's
    message; unknown keywords TypeError. The model and protocol: docs/MODEL.md.
    """
    kw: dict[str, Any] = dict(config.settings) if config is not None else {}
    kw.update(settings)
    out = kw.get("out")
    callback = progress if callable(progress) else None
    try:
        core = _core.train(kw, callback, progress is True)
    except ValueError as err:
        if out is not None and str(err).startswith("--out:"):
            raise _writable_error(err, str(out)) from None
        raise
    result = Result._from_core(core)
    if out is not None:
        result.save(str(out), overwrite=bool(kw.get("force", False)))
    return result


def spectrum(
    W: Any,
    outliers: int = 6,
    method: str = "auto",
    backend: str = "auto",
    threads: int = 0,
) -> Spectrum:
    """Eigenvalues (float64, sorted by descending modulus), singular values (float64,
    descending) and the study's metrics of one matrix (N,N) or a batch (K,N,N), any float dtype,
    C or Fortran order; a C-contiguous float64 array is read in place (no copy). ``W[i][j]`` is
    the weight from unit j to unit i.

    method / backend: as ``--eig-method`` / ``--backend`` of ``eirnn spectrum`` (auto, lapack,
    batched, xgeev / auto, cpu, cuda). The metric names are the results file's columns
    (docs/FORMAT.md; definitions in docs/MODEL.md); weight statistics are computed for matrices
    whose columns are single-signed (a Dale matrix), NaN for the others. The GIL is released.
    """
    arr = np.asarray(W)
    if arr.dtype.kind != "f":
        raise TypeError(f"W: a float array expected, got dtype {arr.dtype}")
    if arr.ndim not in (2, 3):
        raise ValueError(f"W: shape (N,N) or (K,N,N) expected, got {arr.shape}")
    single = arr.ndim == 2
    w = np.ascontiguousarray(arr, dtype=np.float64)
    if single:
        w = w[np.newaxis]
    eig, metrics, sign, solver, sv = _core.spectrum(w, int(outliers), method, backend,
                                                    int(threads))
    if single:
        return Spectrum(eig[0], {k: v[0] for k, v in metrics.items()}, sign[0], solver, sv[0])
    return Spectrum(eig, metrics, sign, solver, sv)


def trials(task: str = "and", n: int = 15050, seed: int = 1, **timing: Any):
    """The engine's trials of a task: ``(x (n,T,I), y (n,T,O), mask (n,T,O), info)`` float32,
    the set ``eirnn train`` draws for the same task flags and data seed (its first n trials;
    ``eirnn data`` writes the same arrays). ``timing``: the task flags of ``eirnn train``
    (``first_in``, ``stim_dur``, ``var_delay``, ``stim_noise``, ``ff_pulses``, ``dm_coherence``,
    ...). info: task, data_seed, T, I, O, config (JSON), type (n) and delay (n).
    The tasks: docs/MODEL.md.
    """
    kw = dict(timing)
    kw.update(task=task, trials=n, data_seed=seed)
    return _core.trials(kw)


def _params_of(params: Any) -> tuple[dict[str, np.ndarray], float | None]:
    if isinstance(params, (Result,)):
        arrays = {k: params[k] for k in ("W_rec", "W_in", "b", "W_out", "b_out")}
        return arrays, float(params.config["model"]["alpha"])
    if isinstance(params, Mapping):
        alpha = None
        cfg = params.get("config")
        if isinstance(cfg, Mapping) and "model" in cfg:
            alpha = float(cfg["model"]["alpha"])
        return {k: params[k] for k in ("W_rec", "W_in", "b", "W_out", "b_out")}, alpha
    raise TypeError("params: a Result, a loaded group or a dict with W_rec, W_in, b, W_out, b_out")


def forward(params: Any, x: Any, alpha: float | None = None, threads: int = 0):
    """Runs networks on inputs: ``(states, outputs)``.

    params: a :class:`Result`, a group of :func:`load`, or a dict with ``W_rec`` (K,N,N) or
    (N,N), ``W_in`` (K,N,I), ``b`` (K,N), ``W_out`` (K,O,N), ``b_out`` (K,O) (the leading K may
    be left out for one network). x: (n,T,I) or (T,I). alpha: dt/tau; default the params'
    config, else 1. The model (docs/MODEL.md) without recurrent noise:
    ``h_t = (1-alpha) h_{t-1} + alpha tanh(W_rec h_{t-1} + W_in x_t + b)``, ``y_t = W_out h_t + b_out``.
    Returns states (K,n,T,N) = h_1..h_T and outputs (K,n,T,O), float32 (leading axes dropped
    as they were in the input). Runs on the CPU, GIL released.
    """
    arrays, cfg_alpha = _params_of(params)
    a = cfg_alpha if alpha is None else float(alpha)
    if a is None:
        a = 1.0
    single_net = np.ndim(arrays["W_rec"]) == 2
    dims = {"W_rec": 3, "W_in": 3, "b": 2, "W_out": 3, "b_out": 2}
    f32 = {}
    for k, d in dims.items():
        v = np.asarray(arrays[k], dtype=np.float32)
        if v.ndim == d - 1:
            v = v[np.newaxis]
        if v.ndim != d:
            raise ValueError(f"{k}: {d}-dimensional (K first) or {d - 1}-dimensional array expected, got shape {v.shape}")
        f32[k] = np.ascontiguousarray(v)
    xs = np.asarray(x, dtype=np.float32)
    single_trial = xs.ndim == 2
    if single_trial:
        xs = xs[np.newaxis]
    if xs.ndim != 3:
        raise ValueError(f"x: shape (n,T,I) or (T,I) expected, got {np.shape(x)}")
    states, outputs = _core.forward(
        f32["W_rec"], f32["W_in"], f32["b"], f32["W_out"], f32["b_out"],
        np.ascontiguousarray(xs), a, int(threads),
    )
    if single_trial:
        states, outputs = states[:, 0], outputs[:, 0]
    if single_net:
        states, outputs = states[0], outputs[0]
    return states, outputs


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        r = repr(float(v))
        return r if any(c in r for c in ".einf") else r + ".0"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"sweep: cannot write {type(v).__name__} values to TOML")


def _to_toml(d: Mapping[str, Any], prefix: str = "") -> str:
    lines, tables, arrays = [], [], []
    for k, v in d.items():
        if isinstance(v, Mapping):
            tables.append((k, v))
        elif isinstance(v, (list, tuple)) and v and all(isinstance(x, Mapping) for x in v):
            arrays.append((k, v))  # a list of tables: [[k]] (e.g. the grids of "axes")
        else:
            lines.append(f"{k} = {_toml_value(v)}")
    out = "\n".join(lines) + "\n"
    for k, v in tables:
        name = f"{prefix}{k}"
        out += f"\n[{name}]\n" + _to_toml(v, name + ".")
    for k, v in arrays:
        name = f"{prefix}{k}"
        for table in v:
            out += f"\n[[{name}]]\n" + _to_toml(table, name + ".")
    return out


def sweep(
    path_or_dict: str | os.PathLike | Mapping[str, Any],
    resume: bool = True,
    dry_run: bool = False,
    *,
    out: str | os.PathLike | None = None,
    force: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Runs a sweep (docs/SWEEP.md) given as a TOML file or as a dict of the same tables
    (``"axes"``: one dict for one grid, or a list of dicts for several grids, as ``[[axes]]``).

    resume: continue from the parts an interrupted run left (False discards them, as
    ``--restart``). dry_run: return the plan (cells, shapes, FLOPs) and write nothing.
    out: the results file (default: the sweep's ``output``). Returns a summary dict; read the
    results with ``eirnn.load(summary["output"])``. The GIL is released while it runs.
    """
    if isinstance(path_or_dict, Mapping):
        text, source, path = _to_toml(path_or_dict), "<dict>", ""
    else:
        text, source, path = "", "", os.fspath(path_or_dict)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: no such file")
    return _core.sweep(text, source, path, "" if out is None else os.fspath(out), bool(resume),
                       bool(dry_run), bool(force), bool(progress))


def reproduce(preset: str = "quick", out: str | os.PathLike | None = None, *,
              dry_run: bool = False, report: bool = True, resume: bool = True) -> dict[str, Any]:
    """Reproduces the study as ``eirnn reproduce`` does: the preset's sweep (quick, standard
    or paper: examples/reproduce_<preset>.toml) into ``out/results.h5`` (default folder
    ``reproduce_<preset>``), then, with report=True, tools/report of the source tree the module
    was built from (EIRNN_REPORT overrides the script, EIRNN_PYTHON the interpreter) writing
    ``out/report.md``. Returns the sweep's summary with ``report`` (the path, or None).
    """
    text = _core.preset(preset)
    folder = os.fspath(out) if out is not None else f"reproduce_{preset}"
    results = os.path.join(folder, "results.h5")
    if dry_run:
        return _core.sweep(text, f"examples/reproduce_{preset}.toml", "", results, bool(resume),
                           True, False, False)
    os.makedirs(folder, exist_ok=True)
    summary = _core.sweep(text, f"examples/reproduce_{preset}.toml", "", results, bool(resume),
                          False, False, False)
    summary["report"] = None
    if report:
        import subprocess

        script = os.environ.get("EIRNN_REPORT") or os.path.join(_core.source_dir(), "tools", "report")
        python = os.environ.get("EIRNN_PYTHON") or "/usr/bin/python3"
        if not os.path.exists(script):
            raise FileNotFoundError(
                f"report: {script} not found (set EIRNN_REPORT to tools/report); the results are in {results}")
        subprocess.run([python, script, results, "--out", folder], check=True,
                       stdout=subprocess.DEVNULL)
        summary["report"] = os.path.join(folder, "report.md")
    return summary
