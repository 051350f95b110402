"""Results as Python objects: a trained or loaded group (Result), a results file (Results), a
spectrum (Spectrum). Array names and shapes are those of the results file (docs/FORMAT.md)."""

from __future__ import annotations

import json
import os
from typing import Any, Iterator, Mapping

import numpy as np

from . import _core


class Result(Mapping[str, Any]):
    """One group of K trained networks: the results file's datasets as numpy arrays.

    Attributes (and ``result["name"]``): ``W_rec`` (K,N,N), ``W_rec_initial``, ``W_in`` (K,N,I),
    ``b`` (K,N), ``W_out`` (K,O,N), ``b_out`` (K,O), ``sign`` (K,N), ``seed`` (K),
    ``loss`` (K,epochs), ``test_loss``, ``accuracy``, ``diverged``, ``epochs_run``, ``updates``
    (K), ``eig`` / ``eig_initial`` / ``eig_projected`` (K,N) complex128, ``sv`` /
    ``sv_initial`` / ``sv_projected`` (K,N) float64 (singular values, descending; absent in files
    written before they were stored), ``metrics`` / ``metrics_initial`` / ``metrics_projected``
    (dicts of (K,) float64 arrays), ``examples`` (dict), ``mask`` when the model has one;
    ``config`` (dict) and ``attrs`` (the group's attributes). A Result returned by train() shares
    the engine's buffers (treat the arrays as read-only) and :meth:`save` writes the file
    ``eirnn train`` writes.
    """

    def __init__(self, arrays: dict[str, Any], attrs: dict[str, Any], core: Any = None) -> None:
        self._arrays = arrays
        self.attrs: dict[str, Any] = attrs
        self._core = core
        cfg = attrs.get("config")
        self.config: dict[str, Any] = json.loads(cfg) if isinstance(cfg, str) else {}

    @classmethod
    def _from_core(cls, core: Any) -> "Result":
        return cls(core.arrays(), core.attrs(), core)

    # Mapping over the dataset names.
    def __getitem__(self, name: str) -> Any:
        return self._arrays[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    def __getattr__(self, name: str) -> Any:
        arrays = self.__dict__.get("_arrays")
        if arrays is not None and name in arrays:
            return arrays[name]
        raise AttributeError(name)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._arrays))

    @property
    def K(self) -> int:
        """Networks in the group."""
        return int(self._arrays["W_rec"].shape[0])

    @property
    def N(self) -> int:
        """Units per network."""
        return int(self._arrays["W_rec"].shape[1])

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> None:
        """Writes the results file ``eirnn train`` writes for the same settings (the same
        datasets, bit for bit; written to a temporary file and renamed). FileExistsError when
        ``path`` exists and not overwrite."""
        if self._core is None:
            raise TypeError("save: only a Result returned by eirnn.train() can be saved "
                            "(a loaded one is already a file)")
        p = os.fspath(path)
        try:
            self._core.save(p, bool(overwrite))
        except ValueError as err:
            from . import _writable_error

            raise _writable_error(err, p) from None

    def __repr__(self) -> str:
        cfg = self.config
        task = cfg.get("task", {}).get("kind", "?") if cfg else "?"
        return f"<eirnn.Result: {self.K} networks, N={self.N}, task {task}>"


class Results(Mapping[str, Result]):
    """A results file read by :func:`load`: its groups by id (``"g0000"``, ...), in order;
    ``results[0]`` is the first group; ``attrs``: the root attributes."""

    def __init__(self, path: str, tree: dict[str, Any]) -> None:
        self.path = path
        self.attrs: dict[str, Any] = tree.get("attrs", {})
        groups = tree.get("groups", {})
        self.groups: dict[str, Result] = {}
        for gid in sorted(k for k in groups if k != "attrs"):
            g = dict(groups[gid])
            attrs = g.pop("attrs", {})
            for k, v in list(g.items()):
                if isinstance(v, dict):
                    v.pop("attrs", None)
            self.groups[gid] = Result(g, attrs)

    def __getitem__(self, key: str | int) -> Result:
        if isinstance(key, int):
            return list(self.groups.values())[key]
        return self.groups[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.groups)

    def __len__(self) -> int:
        return len(self.groups)

    def __repr__(self) -> str:
        return f"<eirnn.Results {self.path!r}: {len(self)} groups>"


def load(path: str | os.PathLike) -> Results:
    """Reads a results file (every group; docs/FORMAT.md). FileNotFoundError when it does not
    exist, ValueError (the CLI's message) when it is not a readable HDF5 file."""
    p = os.fspath(path)
    try:
        tree = _core.load_file(p)
    except ValueError as err:
        if not os.path.exists(p):
            raise FileNotFoundError(str(err)) from None
        raise
    return Results(p, tree)


class Spectrum:
    """Eigenvalues, singular values and metrics of :func:`eirnn.spectrum`.

    ``eig``: (K,N) or (N,) complex128, each row sorted by descending modulus; ``sv``: (K,N) or
    (N,) float64, the singular values, each row descending; ``metrics``: the results file's
    metric columns, (K,) float64 arrays (scalars for one matrix); ``sign``: the unit signs
    inferred from single-signed columns (0 rows where a matrix is not a Dale matrix);
    ``method``: the solver that computed the eigenvalues."""

    def __init__(self, eig: np.ndarray, metrics: dict[str, Any], sign: np.ndarray,
                 method: str, sv: np.ndarray) -> None:
        self.eig = eig
        self.sv = sv
        self.metrics = metrics
        self.sign = sign
        self.method = method

    def __repr__(self) -> str:
        return f"<eirnn.Spectrum eig {self.eig.shape} ({self.method})>"
