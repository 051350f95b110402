"""Zero-copy hand-over to PyTorch and JAX (DLPack), in the layout of ``torch.nn.RNN``."""

from __future__ import annotations

from typing import Any

import numpy as np


def _layout(params: Any, network: int | None) -> dict[str, np.ndarray]:
    names = {
        "weight_ih_l0": "W_in",   # (N,I): h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
        "weight_hh_l0": "W_rec",  # (N,N), [i][j] = j -> i, as torch's weight_hh
        "bias_ih_l0": "b",        # (N)
        "weight_out": "W_out",    # (O,N): the readout, y_t = weight_out h_t + bias_out
        "bias_out": "b_out",      # (O)
    }
    out = {}
    for key, name in names.items():
        a = np.asarray(params[name])
        out[key] = a if network is None else a[network]
    out["bias_hh_l0"] = np.zeros_like(out["bias_ih_l0"])  # the engine has one bias
    return out


def to_torch(params: Any, network: int | None = None) -> dict[str, Any]:
    """The networks' parameters as torch tensors sharing the arrays' memory (DLPack), named as
    ``torch.nn.RNN`` names them: ``weight_ih_l0`` (K,N,I), ``weight_hh_l0`` (K,N,N),
    ``bias_ih_l0`` (K,N), ``bias_hh_l0`` (zeros), plus the readout ``weight_out`` (K,O,N) and
    ``bias_out`` (K,O). network=k: that network's tensors without the K axis, so that
    ``rnn.load_state_dict({k: v for k, v in d.items() if k.endswith("_l0")})`` loads it into
    ``torch.nn.RNN(I, N, batch_first=True)`` (the same function as eirnn.forward for alpha = 1).
    ImportError when torch is not installed."""
    import torch

    return {k: torch.from_dlpack(np.ascontiguousarray(v)) for k, v in _layout(params, network).items()}


def to_jax(params: Any, network: int | None = None) -> dict[str, Any]:
    """As :func:`to_torch`, as jax arrays (DLPack; jax may copy into its own alignment).
    ImportError when jax is not installed."""
    import jax.numpy as jnp

    return {k: jnp.from_dlpack(np.ascontiguousarray(v)) for k, v in _layout(params, network).items()}
