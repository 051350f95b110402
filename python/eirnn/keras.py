"""Keras models: ``eirnn.keras.load(path)`` reads the SimpleRNN layers of a Keras 2.x / 3.x
model saved to HDF5, as ``eirnn spectrum --keras`` reads them, converted to the engine's
convention ``W_rec[i][j]`` = weight from unit j to unit i (Keras stores its transpose)."""

from __future__ import annotations

import os
from typing import Any

from . import _core


class KerasModel:
    """``layers``: one dict per SimpleRNN layer in model order with ``layer`` (the HDF5 path of
    its recurrent kernel), ``N``, ``I``, ``O``, ``W_rec`` (N,N), ``W_in`` (N,I), ``b`` (N),
    ``W_out`` (O,N) and ``b_out`` (O) of the Dense readout that follows it (None where absent),
    float64; ``keras_version`` and ``path``. ``eirnn.spectrum(model.layers[0]["W_rec"])`` gives
    what ``eirnn spectrum --keras`` prints; ``eirnn.forward(model.layers[0], x)`` runs it."""

    def __init__(self, d: dict[str, Any]) -> None:
        self.path: str = d["path"]
        self.keras_version: str = d["keras_version"]
        self.layers: list[dict[str, Any]] = d["layers"]

    def __repr__(self) -> str:
        return f"<eirnn.keras.KerasModel {self.path!r}: {len(self.layers)} SimpleRNN layers>"


def load(path: str | os.PathLike) -> KerasModel:
    """Reads a Keras HDF5 model file. FileNotFoundError when missing, ValueError (the CLI's
    message) when it holds no SimpleRNN weights or is not HDF5."""
    p = os.fspath(path)
    try:
        return KerasModel(_core.read_keras(p))
    except ValueError as err:
        if not os.path.exists(p):
            raise FileNotFoundError(str(err)) from None
        raise
