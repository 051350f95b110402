#!/usr/bin/python3
"""JAX peer of eirnn: the same K-network ensemble and training step (docs/MODEL.md §1, §2,
§5), written the way a JAX user writes an ensemble.

One network's loss is a `lax.scan` over the T steps; `jax.value_and_grad` gives its gradients
(BPTT); `jax.vmap` maps loss, gradient and update over the K networks and `jax.jit` compiles the
whole update (gather of each network's batch, forward, backward, clipping to a global L2 norm or per
tensor, Keras-2 Adam with time decay, Dale projection / mask / W_in >= 0) into one XLA program, with
the state donated so that it is updated in place. Dale modes: project, reparam (W = |V| diag(s), or
diag(s) |V| on the incoming axis) and none. fp32 throughout: matmul precision is "highest" (no TF32
or bf16 passes on a GPU), as the engine computes.

Subcommands:
  bench  speed on the workload of record; prints one line `RESULT {json}`
  trace  replays the batches of an eirnn_trace file from its initial weights and writes the
         per-update losses and raw gradients (before clipping) in the same layout
Uses only long-standing JAX APIs (jit, vmap, value_and_grad, lax.scan; jax 0.4.30 up to current).
"""

import json
import os
import sys
import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_io  # noqa: E402

jax.config.update("jax_default_matmul_precision", "highest")


def network_losses(params, sign_mat, mask, x, y, m, model):
    """One network: (total loss, data loss). x (T,B,I), y and m (T,B,O); mask (N,N) or None."""
    w_rec, w_in, b, w_out, b_out = params
    alpha = model.alpha
    w = jnp.abs(w_rec) * sign_mat if model.dale == "reparam" else w_rec
    if mask is not None:
        w = w * mask
    drive = jnp.einsum("tbi,ni->tbn", x, w_in) + b

    def cell(h, d):
        r = jnp.tanh(h @ w.T + d)
        h = r if alpha == 1.0 else (1.0 - alpha) * h + alpha * r
        return h, h

    h0 = jnp.zeros((x.shape[1], w.shape[0]), x.dtype)
    _, hs = lax.scan(cell, h0, drive)  # (T,B,N)
    out = hs @ w_out.T + b_out
    data = jnp.mean(m * (out - y) ** 2)
    total = data
    if model.l2_rate > 0:
        total = total + model.l2_rate * jnp.mean(hs * hs)
    if model.l2_weight > 0:
        rec = w_rec * w_rec if mask is None else w_rec * w_rec * mask
        total = total + model.l2_weight * (
            jnp.sum(rec) + jnp.sum(w_in * w_in) + jnp.sum(w_out * w_out)
        )
    return total, data


def network_update(params, m, v, grads, lr_t, sign_mat, mask, model):
    """One network: clip, Adam, constraints. Returns (params, m, v)."""
    b1, one_b1, b2, one_b2, eps = model.adam_constants()
    sq = [jnp.sum(g * g) for g in grads]
    norms = (
        [jnp.sqrt(sum(sq))] * len(grads) if model.clip == "global" else [jnp.sqrt(s) for s in sq]
    )
    new_p, new_m, new_v = [], [], []
    for p, mt, vt, g, norm in zip(params, m, v, grads, norms):
        if model.clipnorm > 0:
            g = g * (model.clipnorm / jnp.maximum(norm, model.clipnorm))
        mt = b1 * mt + one_b1 * g
        vt = b2 * vt + one_b2 * g * g
        new_p.append(p - lr_t * mt / (jnp.sqrt(vt) + eps))
        new_m.append(mt)
        new_v.append(vt)
    w_rec, w_in = new_p[0], new_p[1]
    if model.dale == "project":
        w_rec = jnp.where(w_rec * sign_mat < 0, 0.0, w_rec)
    if mask is not None:
        w_rec = jnp.where(mask == 0, 0.0, w_rec)
    if model.nonneg_input:
        w_in = jnp.maximum(w_in, 0.0)
    new_p[0], new_p[1] = w_rec, w_in
    return tuple(new_p), tuple(new_m), tuple(new_v)


def make_step(model, with_grads):
    """The jitted update of all K networks: (state, consts, x, y, m, lr_t) -> (state, data losses
    (K) [, raw gradients]). state = (params, m, v), each a tuple of five (K,...) arrays; consts =
    (sign_mat (N,N), mask (K,N,N) or None); x (K,T,B,I), y and m (K,T,B,O)."""
    grad_fn = jax.value_and_grad(partial(network_losses, model=model), has_aux=True)

    def step(state, consts, x, y, m, lr_t):
        params, mom, vel = state
        sign_mat, mask = consts
        mask_axis = None if mask is None else 0
        (_, data), grads = jax.vmap(grad_fn, in_axes=(0, None, mask_axis, 0, 0, 0))(
            params, sign_mat, mask, x, y, m
        )
        update = partial(network_update, model=model)
        new_state = jax.vmap(update, in_axes=(0, 0, 0, 0, None, None, mask_axis))(
            params, mom, vel, grads, lr_t, sign_mat, mask
        )
        return (new_state, data, grads) if with_grads else (new_state, data)

    return jax.jit(step, donate_argnums=(0,))


def make_gather_step(model):
    """The jitted update that also gathers each network's batch from the device-resident trials:
    (state, consts, trials (x, y, m) trial-major, index (K,B), lr_t) -> (state, data losses)."""
    step = make_step(model, with_grads=False)

    def gather_step(state, consts, trials, index, lr_t):
        def tm(a):
            return jnp.swapaxes(a[index], 1, 2)  # (K,B,T,.) -> (K,T,B,.)

        x, y, m = (tm(a) for a in trials)
        return step(state, consts, x, y, m, lr_t)

    return jax.jit(gather_step, donate_argnums=(0,))


def initial_state(start, device):
    params = tuple(jax.device_put(jnp.asarray(p), device) for p in start.params())
    zeros = tuple(jnp.zeros_like(p) for p in params)
    consts = (
        jax.device_put(jnp.asarray(start.sign_matrix()), device),
        None if start.mask is None else jax.device_put(jnp.asarray(start.mask), device),
    )
    return (params, zeros, tuple(jnp.zeros_like(p) for p in params)), consts


def lr_t(model, k):
    return np.float32(model.lr_t(k))


def pick_device(name):
    """The first device of a platform: cpu, or cuda (named "gpu" by older JAX releases)."""
    if name in ("cuda", "gpu"):
        try:
            return jax.devices("cuda")[0]
        except RuntimeError:
            return jax.devices("gpu")[0]
    return jax.devices(name)[0]


def memory_budget(device, gigabytes):
    """Bytes the ensemble's activations may take: --memory-gb, else half the GPU's memory (XLA
    preallocates most of it) or 40% of the host memory available."""
    if gigabytes:
        return gigabytes * 1e9
    if device.platform in ("gpu", "cuda"):
        stats = device.memory_stats() or {}
        return 0.5 * stats.get("bytes_limit", 40e9)
    return 0.4 * peer_io.available_memory()


def bench(args):
    device = pick_device(args.device)
    b = peer_io.BenchSetup(args, memory_budget(device, args.memory_gb))
    trials, model, chunks = b.trials, b.model, b.chunks
    states = [initial_state(b.start.slice(lo, hi), device) for lo, hi in chunks]
    data = tuple(jax.device_put(jnp.asarray(a), device) for a in (trials.x, trials.y, trials.mask))
    index = jax.device_put(jnp.asarray(b.batches), device)
    step = make_gather_step(model)

    def update(u, which):
        losses = []
        for c in which:
            lo, hi = chunks[c]
            state, consts = states[c]
            state, loss = step(state, consts, data, index[u, lo:hi], lr_t(model, u))
            states[c] = (state, consts)
            losses.append(loss)
        return losses

    # Warm-up (compilation): one chunk of each shape.
    t_warm = time.perf_counter()
    for u in range(args.warmup):
        update(u, peer_io.one_per_size(chunks))
    jax.block_until_ready([s for s, _ in states])
    t_warm = time.perf_counter() - t_warm
    t0 = time.perf_counter()
    for u in range(args.warmup, args.warmup + args.updates):
        losses = update(u, range(len(chunks)))
    jax.block_until_ready([s for s, _ in states])
    seconds = time.perf_counter() - t0
    result = b.result(args, "jax", seconds, version=jax.__version__, device=str(device))
    result["warmup_seconds"] = t_warm
    result["final_loss_mean"] = float(jnp.mean(jnp.concatenate(losses)))
    print("RESULT " + json.dumps(result), flush=True)


def run_trace(start, trials, batch_index, device="cpu"):
    """Replays batch_index (U,K,B) from start: per-update data loss (U,K), raw gradients (five
    (U,K,...)) and the final parameters."""
    dev = pick_device(device)
    state, consts = initial_state(start, dev)
    step = make_step(start.model, with_grads=True)
    losses, grads = [], [[] for _ in peer_io.TENSORS]
    for u, index in enumerate(batch_index):
        x, y, m = (jax.device_put(jnp.asarray(a), dev) for a in peer_io.time_major(trials, index))
        state, data, g = step(state, consts, x, y, m, lr_t(start.model, u))
        losses.append(np.asarray(data))
        for store, gt in zip(grads, g):
            store.append(np.asarray(gt))
    return np.array(losses), [np.array(g) for g in grads], [np.asarray(p) for p in state[0]]


def trace(args):
    start = peer_io.read_results(args.init)
    trials = peer_io.read_trials(args.data)
    batch_index = peer_io.read_trace(args.trace)["batch_index"]
    loss, grads, final = run_trace(start, trials, batch_index, args.device)
    peer_io.write_trace(args.out, batch_index, loss, grads, final, f"jax {jax.__version__}")
    print(
        f"jax peer: {batch_index.shape[0]} updates of {batch_index.shape[1]} networks -> {args.out}"
    )


def main(argv=None):
    p, _, _ = peer_io.command_line(
        __doc__.split("\n\n")[0], warmup_help="untimed updates first (the first compiles)"
    )
    args = p.parse_args(argv)
    bench(args) if args.command == "bench" else trace(args)


if __name__ == "__main__":
    main()
