"""Shared by the PyTorch and JAX peers of eirnn (bench/peers): eirnn's files in numpy form.

* the results file (docs/FORMAT.md) of an untrained group gives the initial weights and the whole
  configuration (Dale mode and axis, alpha, Adam, clipping, L2 terms);
* the data file (`eirnn data`, docs/FORMAT.md) gives the trials;
* the trace file (bench/peers/eirnn_trace) gives the batches the engine trained on, per update and
  network, so a peer can replay them; a peer's own trace is written in the same layout.

Shapes: K networks, N units, I inputs, O outputs, T steps, B trials per batch, U updates. Batches
are time-major per network: x (K,T,B,I), y and loss mask (K,T,B,O). Only numpy and h5py are used
here."""

import argparse
import json
from dataclasses import dataclass, field

import h5py
import numpy as np

TENSORS = ("W_rec", "W_in", "b", "W_out", "b_out")


@dataclass
class Model:
    """What docs/MODEL.md §1, §2 and §5 leave configurable, with the engine's defaults."""

    dale: str = "project"  # project | reparam | none
    axis: str = "outgoing"  # outgoing: sign of column j (unit j's outgoing weights); incoming: rows
    alpha: float = 1.0
    nonneg_input: bool = True
    lr: float = 1e-4
    decay: float = 1e-4
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    clipnorm: float = 0.5
    clip: str = "global"  # global (one network's five gradients together) | per-tensor
    l2_weight: float = 0.0
    l2_rate: float = 0.0

    @classmethod
    def from_config(cls, config):
        """From the `config` JSON of a results group; refuses what the peers do not model."""
        model, train = config["model"], config["train"]
        if model.get("sigma_rec", 0.0) > 0:
            raise ValueError(
                "recurrent noise (sigma_rec > 0) is drawn by the engine; the peers have none"
            )
        return cls(
            dale=model["dale"],
            axis=model["dale_axis"],
            alpha=float(model["alpha"]),
            nonneg_input=bool(model["nonneg_input"]),
            lr=train["lr"],
            decay=train["decay"],
            beta1=train["beta1"],
            beta2=train["beta2"],
            eps=train["eps"],
            clipnorm=train["clipnorm"],
            clip=train["clip"],
            l2_weight=train["l2_weight"],
            l2_rate=train["l2_rate"],
        )

    def lr_t(self, k):
        """Keras-2 Adam step size of update k + 1 (k updates done), in double as the engine does."""
        t = k + 1
        return (
            self.lr
            / (1.0 + self.decay * k)
            * np.sqrt(1.0 - self.beta2**t)
            / (1.0 - self.beta1**t)
        )

    def adam_constants(self):
        """beta1, 1 - beta1, beta2, 1 - beta2, eps rounded to float32, as the engine's kernels
        see them."""
        one = np.float32(1.0)
        b1, b2 = np.float32(self.beta1), np.float32(self.beta2)
        return float(b1), float(one - b1), float(b2), float(one - b2), float(np.float32(self.eps))


@dataclass
class Start:
    """Initial state of K networks (float32)."""

    model: Model
    w_rec: np.ndarray  # (K,N,N) trained W (project, none) or V (reparam); [k,i,j] = j -> i
    w_in: np.ndarray  # (K,N,I)
    b: np.ndarray  # (K,N)
    w_out: np.ndarray  # (K,O,N)
    b_out: np.ndarray  # (K,O)
    sign: np.ndarray  # (N) +1 excitatory, -1 inhibitory
    mask: np.ndarray = None  # (K,N,N) 1/0, or None without a connectivity mask
    seeds: np.ndarray = field(default=None)  # (K) the networks' seeds

    @property
    def shape(self):
        """(K, N, I, O)."""
        K, N, I = self.w_in.shape
        return K, N, I, self.w_out.shape[1]

    def slice(self, lo, hi):
        """Networks lo..hi-1 as a Start of their own."""
        return Start(
            model=self.model,
            w_rec=self.w_rec[lo:hi],
            w_in=self.w_in[lo:hi],
            b=self.b[lo:hi],
            w_out=self.w_out[lo:hi],
            b_out=self.b_out[lo:hi],
            sign=self.sign,
            mask=None if self.mask is None else self.mask[lo:hi],
            seeds=None if self.seeds is None else self.seeds[lo:hi],
        )

    def params(self):
        """The five trained tensors in the engine's order (W_rec, W_in, b, W_out, b_out)."""
        return [self.w_rec, self.w_in, self.b, self.w_out, self.b_out]

    def sign_matrix(self):
        """(N,N) sign of each recurrent entry: s_j on column j (outgoing) or s_i on row i
        (incoming)."""
        s = self.sign.astype(np.float32)
        return np.broadcast_to(
            s[None, :] if self.model.axis == "outgoing" else s[:, None], (s.size, s.size)
        ).copy()


def read_results(path, group="g0000"):
    """Initial weights and configuration of one group of an eirnn results file.

    W_rec_initial and W_in_initial are stored for every group; W_out, b and b_out are the initial
    ones only while no update has been applied (bench/peers/eirnn_trace writes such a file). In
    reparam mode the trained V is taken to be W_rec_initial = |V0| diag(s): the same effective
    matrix."""
    with h5py.File(path, "r") as f:
        g = f["groups"][group]
        config = json.loads(_text(g.attrs["config"]))
        if np.any(g["updates"][:] != 0):
            raise ValueError(
                f"{path}: group {group} has been trained, so its W_out, b and b_out are not "
                "the initial ones; write an untrained group with bench/peers/eirnn_trace"
            )
        sign = g["sign"][:]
        if np.any(sign != sign[0]):
            raise ValueError(f"{path}: networks of one group must share their sign vector")
        mask = g["mask"][:].astype(np.float32) if "mask" in g else None
        return Start(
            model=Model.from_config(config),
            w_rec=g["W_rec_initial"][:].astype(np.float32),
            w_in=g["W_in_initial"][:].astype(np.float32),
            b=g["b"][:].astype(np.float32),
            w_out=g["W_out"][:].astype(np.float32),
            b_out=g["b_out"][:].astype(np.float32),
            sign=sign[0].astype(np.float32),
            mask=mask,
            seeds=g["seed"][:],
        )


def synthetic_start(K, N, I, O, model, e_frac=0.5, seed=0):
    """A start with the engine's initial distributions (docs/MODEL.md §3: orthogonal W_rec,
    Glorot-uniform W_in and W_out, zero biases) drawn with numpy, for speed runs whose K x N x N weights need not
    come from a file. No connectivity mask."""
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((K, N, N)))
    w_rec = (q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]).astype(np.float32)
    n_e = int(round(e_frac * N))
    sign = np.where(np.arange(N) < n_e, 1.0, -1.0).astype(np.float32)
    if model.dale == "reparam":
        s = sign[None, :] if model.axis == "outgoing" else sign[:, None]
        w_rec = (np.abs(w_rec) * s).astype(np.float32)

    def glorot(shape, fan_in, fan_out):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, shape).astype(np.float32)

    return Start(
        model=model,
        w_rec=w_rec,
        w_in=glorot((K, N, I), I, N),
        b=np.zeros((K, N), np.float32),
        w_out=glorot((K, O, N), N, O),
        b_out=np.zeros((K, O), np.float32),
        sign=sign,
        seeds=np.arange(K),
    )


@dataclass
class Trials:
    """The trials of an `eirnn data` file, trial-major."""

    x: np.ndarray  # (n,T,I) float32
    y: np.ndarray  # (n,T,O) float32
    mask: np.ndarray  # (n,T,O) float32 loss weights
    config: dict  # {"task": {...}, "data_seed": s}

    @property
    def n(self):
        return self.x.shape[0]

    @property
    def T(self):
        return self.x.shape[1]


def read_trials(path):
    """All trials of an `eirnn data` file."""
    with h5py.File(path, "r") as f:
        if _text(f.attrs.get("format", b"")) != "eirnn-data":
            raise ValueError(f"{path}: not an eirnn data file (eirnn data --out ...)")
        return Trials(
            x=f["x"][:].astype(np.float32),
            y=f["y"][:].astype(np.float32),
            mask=f["mask"][:].astype(np.float32),
            config=json.loads(_text(f.attrs["config"])),
        )


def time_major(trials, index):
    """Batches of K networks: index (K,B) trial numbers -> x (K,T,B,I), y (K,T,B,O),
    mask (K,T,B,O)."""

    def gather(a):
        return np.ascontiguousarray(a[index].transpose(0, 2, 1, 3))

    return gather(trials.x), gather(trials.y), gather(trials.mask)


def read_trace(path):
    """A trace file: batch_index (U,K,B), loss (U,K), grads {tensor: (U,K,...)},
    final {tensor: (K,...)} and its attributes."""
    with h5py.File(path, "r") as f:
        return {
            "batch_index": f["batch_index"][:],
            "loss": f["loss"][:],
            "grads": {t: f["grad"][t][:] for t in TENSORS},
            "final": {t: f["final"][t][:] for t in TENSORS},
            "attrs": {k: _text(v) for k, v in f.attrs.items()},
        }


def write_trace(path, batch_index, loss, grads, final, producer):
    """A peer's trace, in the layout of eirnn_trace's (grads: five (U,K,...) arrays, final: five
    (K,...))."""
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "eirnn-trace"
        f.attrs["backend"] = producer
        f["batch_index"] = np.asarray(batch_index, np.int32)
        f["loss"] = np.asarray(loss, np.float64)
        for name, g in zip(TENSORS, grads):
            f[f"grad/{name}"] = np.asarray(g, np.float32)
        for name, p in zip(TENSORS, final):
            f[f"final/{name}"] = np.asarray(p, np.float32)


def epoch_batches(rng, K, n, B, updates):
    """Batch indices (updates,K,B) for speed runs: each network walks its own shuffle of the n
    trials, reshuffled every epoch (the engine's protocol; the permutations are numpy's, not the
    engine's)."""
    per_epoch = n // B
    out = np.empty((updates, K, B), np.int32)
    for u in range(updates):
        j = u % per_epoch
        if j == 0:
            perm = np.argsort(rng.random((K, n)), axis=1)
        out[u] = perm[:, j * B : (j + 1) * B]
    return out


def chunks(K, bytes_per_network, budget):
    """Ranges (lo, hi) of at most budget / bytes_per_network networks each, of equal sizes where
    possible (one compiled shape): how a user trains an ensemble larger than memory."""
    per = max(1, min(K, int(budget // bytes_per_network)))
    count = -(-K // per)
    size = -(-K // count)
    return [(lo, min(K, lo + size)) for lo in range(0, K, size)]


def openblas_core():
    """Core name of the OpenBLAS this process has loaded (None when it has loaded none)."""
    import ctypes

    with open("/proc/self/maps") as maps:
        libs = sorted({line.split()[-1] for line in maps if "openblas" in line and ".so" in line})
    for lib in libs:
        try:
            fn = ctypes.CDLL(lib).openblas_get_corename
        except (OSError, AttributeError):
            continue
        fn.restype = ctypes.c_char_p
        return fn().decode()
    return None


def one_per_size(chunks):
    """Indices of the first chunk of each size (what a warm-up must touch to compile every
    shape)."""
    first = {}
    for c, (lo, hi) in enumerate(chunks):
        first.setdefault(hi - lo, c)
    return sorted(first.values())


def available_memory():
    """Bytes of host memory available (MemAvailable of /proc/meminfo)."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 8e9


class BenchSetup:
    """What both peers' `bench` starts from: the trials, the model, the synthetic initial weights,
    the chunks of networks that fit `budget` bytes, and the (U,K,B) batch indices of warm-up and
    timed updates."""

    def __init__(self, args, budget):
        self.trials = read_trials(args.data)
        self.model = Model(dale=args.dale, alpha=args.alpha)
        self.start = synthetic_start(
            args.networks,
            args.units,
            self.trials.x.shape[2],
            self.trials.y.shape[2],
            self.model,
            seed=args.seed,
        )
        # The frameworks keep about six (K,T,B,N) float arrays for the backward pass; larger
        # ensembles are trained in chunks of networks (independent, so the function is the same).
        self.chunks = chunks(args.networks, 6 * 4 * self.trials.T * args.batch * args.units, budget)
        rng = np.random.default_rng(args.seed)
        self.batches = epoch_batches(
            rng,
            args.networks,
            self.trials.n - args.test_trials,
            args.batch,
            args.warmup + args.updates,
        )

    def result(self, args, peer, seconds, **extra):
        """The RESULT record of a timed run (trial-steps/s over the timed updates)."""
        r = {"peer": peer, **extra, "openblas": openblas_core()}
        r.update(
            K=args.networks,
            N=args.units,
            B=args.batch,
            T=self.trials.T,
            chunks=len(self.chunks),
            updates=args.updates,
            seconds=seconds,
            trial_steps_per_s=args.networks * args.updates * args.batch * self.trials.T / seconds,
        )
        return r


def command_line(description, warmup_help="untimed updates first"):
    """The command line both peers share: `bench` (speed of the training step) and `trace`
    (replay of an eirnn_trace run), each with --device. Returns (parser, bench, trace) so that a
    peer can add its own options."""
    p = argparse.ArgumentParser(description=description)
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bench", help="speed of the training step (trial-steps/s)")
    b.add_argument("--data", required=True, help="trials (eirnn data --out ...)")
    b.add_argument("--units", "-N", type=int, default=100)
    b.add_argument("--networks", "-K", type=int, default=16)
    b.add_argument("--batch", type=int, default=64)
    b.add_argument("--updates", type=int, default=8, help="timed updates")
    b.add_argument("--warmup", type=int, default=2, help=warmup_help)
    b.add_argument(
        "--test-trials", type=int, default=50, help="trials at the end of --data not trained on"
    )
    b.add_argument("--dale", default="project", choices=["project", "reparam", "none"])
    b.add_argument("--alpha", type=float, default=1.0)
    b.add_argument("--seed", type=int, default=1)
    b.add_argument(
        "--memory-gb",
        type=float,
        default=0,
        help="activation memory per chunk of networks (default: half the GPU, 40%% of free RAM)",
    )
    t = sub.add_parser("trace", help="replay an eirnn_trace run; write losses and raw gradients")
    t.add_argument("--data", required=True, help="trials (eirnn data --out ...)")
    t.add_argument(
        "--init", required=True, help="results file of the untrained group (eirnn_trace --init-out)"
    )
    t.add_argument(
        "--trace", required=True, help="eirnn_trace --out file (its batches are replayed)"
    )
    t.add_argument("--out", required=True)
    for s in (b, t):
        s.add_argument("--device", default="cpu", help="cpu | cuda")
    return p, b, t


def _text(v):
    return v.decode() if isinstance(v, bytes) else str(v)
