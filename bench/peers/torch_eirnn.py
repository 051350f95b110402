#!/usr/bin/python3
"""PyTorch peer of eirnn: the same K-network ensemble and training step (docs/MODEL.md §1,
§2, §5), written the way a PyTorch user writes an ensemble.

Three forms (--form), each as a competent PyTorch user writes it:
  bmm      all K networks' tensors stacked on a leading axis, a time loop of T `torch.baddbmm`
           steps over them, autograd for the gradients (BPTT);
  compile  the same with the recurrent step under `torch.compile` (TorchInductor fuses the
           product, tanh and leak of a step, forward and backward; compilation happens in the
           warm-up and is reported separately as warmup_seconds). Compiling the whole loss
           instead unrolls the 290-step loop into one graph: on a 2-core machine its compilation
           did not finish within 15 minutes, which no user would wait for;
  vmap     one network's loss written functionally (a time loop of `torch.addmm`), its gradient
           from `torch.func.grad_and_value`, mapped over the K networks with `torch.func.vmap`.
Then, per network: gradient clipping to a global L2
norm (or per tensor), Keras-2 Adam with time decay, and the constraints (Dale projection of W_rec,
the fixed connectivity mask, W_in >= 0). Dale modes: project (W free, wrong signs set to 0 after
each update), reparam (W = |V| diag(s), or diag(s) |V| on the incoming axis) and none. fp32
throughout; TF32 is off. On CUDA the whole update (gather, forward, backward, clip, Adam,
constraints) is captured once in a CUDA graph and replayed, which removes the ~10^4 kernel launches
per update (bmm form).

Subcommands:
  bench  speed on the workload of record; prints one line `RESULT {json}`
  trace  replays the batches of an eirnn_trace file from its initial weights and writes the
         per-update losses and raw gradients (before clipping) in the same layout
Needs torch 2.x (torch.compile, torch.func); numpy and h5py for the files (peer_io.py).
"""

import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_io  # noqa: E402


class Ensemble:
    """K networks of equal shape, trained together; parameters (K,...) on one device."""

    def __init__(self, start, device="cpu", form="bmm"):
        self.model = start.model
        self.form = form
        self.device = torch.device(device)
        self.params = [
            torch.tensor(p, device=self.device, requires_grad=True) for p in start.params()
        ]
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.sign_mat = torch.tensor(start.sign_matrix(), device=self.device)  # (N,N)
        self.mask = None if start.mask is None else torch.tensor(start.mask, device=self.device)
        self.updates = 0
        self.lr_t = torch.zeros((), device=self.device)  # a tensor so that a captured graph sees it
        self.b1, self.one_b1, self.b2, self.one_b2, self.eps = self.model.adam_constants()
        self.step_fn = self.cell
        if form == "compile":
            self.step_fn = torch.compile(self.cell)
        elif form == "vmap":
            grad = torch.func.grad_and_value(self.network_loss, has_aux=True)
            # The connectivity mask is one (N,N) per network: mapped with the rest (None: not).
            mask_dim = None if self.mask is None else 0
            self.vmapped = torch.func.vmap(grad, in_dims=(0, 0, 0, 0, mask_dim))
        elif form != "bmm":
            raise ValueError(f"unknown form {form!r} (bmm, compile, vmap)")

    def effective_w_rec(self):
        """The recurrent matrix the networks compute with: mask * W, or mask * |V| s."""
        w = self.params[0]
        if self.model.dale == "reparam":
            w = w.abs() * self.sign_mat
        if self.mask is not None:
            w = w * self.mask
        return w

    def cell(self, h, d, wt):
        """One step of every network: (K,B,N) states, (K,B,N) input drive, (K,N,N) W^T."""
        r = torch.tanh(torch.baddbmm(d, h, wt))
        alpha = self.model.alpha
        return r if alpha == 1.0 else (1.0 - alpha) * h + alpha * r

    def losses(self, x, y, m):
        """Data loss (masked MSE) and total loss per network, both (K).
        x (K,T,B,I), y and m (K,T,B,O)."""
        w_rec, w_in, b, w_out, b_out = self.params
        K, T, B, I = x.shape
        N, O = w_in.shape[1], w_out.shape[1]
        alpha = self.model.alpha
        wt = self.effective_w_rec().transpose(1, 2)
        drive = torch.baddbmm(b.unsqueeze(1), x.reshape(K, T * B, I), w_in.transpose(1, 2))
        # unbind, not drive[:, t]: the backward of T slices would write T full-size zero tensors.
        drive = drive.reshape(K, T, B, N).unbind(1)
        h = torch.tanh(drive[0])
        if alpha != 1.0:
            h = alpha * h
        states = [h]
        for t in range(1, T):
            h = self.step_fn(h, drive[t], wt)
            states.append(h)
        hs = torch.stack(states, 1).reshape(K, T * B, N)
        out = torch.baddbmm(b_out.unsqueeze(1), hs, w_out.transpose(1, 2))
        err = out - y.reshape(K, T * B, O)
        data = (m.reshape(K, T * B, O) * err * err).sum((1, 2)) / (T * B * O)
        total = data
        if self.model.l2_rate > 0:
            total = total + self.model.l2_rate * (hs * hs).mean((1, 2))
        if self.model.l2_weight > 0:
            rec = w_rec * w_rec if self.mask is None else w_rec * w_rec * self.mask
            total = total + self.model.l2_weight * (
                rec.sum((1, 2)) + (w_in * w_in).sum((1, 2)) + (w_out * w_out).sum((1, 2))
            )
        return data, total

    def network_loss(self, params, x, y, m, mask):
        """One network, functionally (the vmap form): (total loss, data loss).
        params: the five tensors of one network; x (T,B,I), y and m (T,B,O); mask (N,N) or None."""
        w_rec, w_in, b, w_out, b_out = params
        T, B, I = x.shape
        O = w_out.shape[0]
        alpha = self.model.alpha
        w = w_rec.abs() * self.sign_mat if self.model.dale == "reparam" else w_rec
        if mask is not None:
            w = w * mask
        wt = w.t()
        drive = torch.addmm(b, x.reshape(T * B, I), w_in.t()).reshape(T, B, -1).unbind(0)
        h = torch.tanh(drive[0])
        if alpha != 1.0:
            h = alpha * h
        states = [h]
        for t in range(1, T):
            r = torch.tanh(torch.addmm(drive[t], h, wt))
            h = r if alpha == 1.0 else (1.0 - alpha) * h + alpha * r
            states.append(h)
        hs = torch.stack(states, 0).reshape(T * B, -1)
        err = torch.addmm(b_out, hs, w_out.t()) - y.reshape(T * B, O)
        data = (m.reshape(T * B, O) * err * err).sum() / (T * B * O)
        total = data
        if self.model.l2_rate > 0:
            total = total + self.model.l2_rate * (hs * hs).mean()
        if self.model.l2_weight > 0:
            rec = w_rec * w_rec if mask is None else w_rec * w_rec * mask
            total = total + self.model.l2_weight * (
                rec.sum() + (w_in * w_in).sum() + (w_out * w_out).sum()
            )
        return total, data

    def gradients(self, x, y, m):
        """Data loss (K) and the raw gradients of the total loss w.r.t. the five tensors."""
        if self.form == "vmap":
            params = tuple(p.detach() for p in self.params)
            grads, (_, data) = self.vmapped(params, x, y, m, self.mask)
            return data, grads
        data, total = self.losses(x, y, m)
        grads = torch.autograd.grad(total.sum(), self.params)
        return data.detach(), grads

    @torch.no_grad()
    def apply(self, grads):
        """Clip, Adam (step size self.lr_t), constraints. No host synchronisation."""
        mdl = self.model
        K = grads[0].shape[0]
        sq = [(g * g).reshape(K, -1).sum(1) for g in grads]
        if mdl.clip == "global":
            norms = [torch.sqrt(sum(sq))] * len(grads)
        else:
            norms = [torch.sqrt(s) for s in sq]
        for p, g, m, v, norm in zip(self.params, grads, self.m, self.v, norms):
            if mdl.clipnorm > 0:
                scale = mdl.clipnorm / torch.clamp(norm, min=mdl.clipnorm)
                g = g * scale.reshape((K,) + (1,) * (g.dim() - 1))
            m.mul_(self.b1).add_(g, alpha=self.one_b1)
            v.mul_(self.b2).addcmul_(g, g, value=self.one_b2)
            p.sub_(self.lr_t * m / (v.sqrt() + self.eps))
        w_rec, w_in = self.params[0], self.params[1]
        if mdl.dale == "project":
            w_rec.masked_fill_(w_rec * self.sign_mat < 0, 0.0)
        if self.mask is not None:
            w_rec.masked_fill_(self.mask == 0, 0.0)
        if mdl.nonneg_input:
            w_in.clamp_(min=0.0)

    def set_step_size(self):
        self.lr_t.fill_(float(np.float32(self.model.lr_t(self.updates))))

    def step(self, x, y, m):
        """One update of every network on its batch; returns the data losses (K) as a tensor."""
        self.set_step_size()
        data, grads = self.gradients(x, y, m)
        self.apply(grads)
        self.updates += 1
        return data

    def state(self):
        return [p.detach().cpu().numpy() for p in self.params]


class Trainer:
    """Update loop of one ensemble in a speed run: batches gathered on the device by index from the
    device-resident trials (x, y, mask) shared by every ensemble."""

    def __init__(self, ens, trials, cuda_graph):
        self.ens = ens
        self.x, self.y, self.m = trials
        self.graph = None
        self.cuda_graph = cuda_graph and ens.device.type == "cuda" and ens.form == "bmm"

    def gather(self, index):
        def tm(a):
            return a[index].transpose(1, 2).contiguous()  # (K,B,T,.) -> (K,T,B,.)

        return tm(self.x), tm(self.y), tm(self.m)

    def _capture(self, index):
        self.static_index = index.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):
                self.ens.gradients(*self.gather(self.static_index))
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            data, grads = self.ens.gradients(*self.gather(self.static_index))
            self.ens.apply(grads)
        self.static_loss = data

    def update(self, index):
        """index: (K,B) int64 tensor on the device."""
        if self.cuda_graph and self.graph is None:
            try:
                self._capture(index)
            except RuntimeError as e:
                print(
                    f"torch peer: CUDA graph capture failed ({e}); running eagerly", file=sys.stderr
                )
                self.graph = None
                self.cuda_graph = False
        if self.graph is not None:
            self.ens.set_step_size()
            self.static_index.copy_(index)
            self.graph.replay()
            self.ens.updates += 1
            return self.static_loss
        return self.ens.step(*self.gather(index))


def synchronize(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def memory_budget(device, gigabytes):
    """Bytes the ensemble's activations may take: --memory-gb, else half the GPU's memory or 40% of
    the host memory available."""
    if gigabytes:
        return gigabytes * 1e9
    if torch.device(device).type == "cuda":
        return 0.5 * torch.cuda.get_device_properties(torch.device(device)).total_memory
    return 0.4 * peer_io.available_memory()


def bench(args):
    torch.set_num_threads(args.threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = torch.device(args.device)
    b = peer_io.BenchSetup(args, memory_budget(device, args.memory_gb))
    trials, chunks = b.trials, b.chunks
    on_device = tuple(torch.tensor(a, device=device) for a in (trials.x, trials.y, trials.mask))
    trainers = [
        Trainer(
            Ensemble(b.start.slice(lo, hi), device, args.form), on_device, not args.no_cuda_graph
        )
        for lo, hi in chunks
    ]
    index = torch.tensor(b.batches, dtype=torch.int64, device=device)

    def update(u, which):
        return [trainers[c].update(index[u, chunks[c][0] : chunks[c][1]]) for c in which]

    # Warm-up: every chunk when each captures its own CUDA graph, else one chunk per shape.
    everything = range(len(chunks))
    warm = everything if trainers[0].cuda_graph else peer_io.one_per_size(chunks)
    t_warm = time.perf_counter()
    for u in range(args.warmup):
        update(u, warm)
    synchronize(device)
    t_warm = time.perf_counter() - t_warm
    t0 = time.perf_counter()
    for u in range(args.warmup, args.warmup + args.updates):
        losses = update(u, everything)
    synchronize(device)
    seconds = time.perf_counter() - t0
    result = b.result(
        args,
        "torch" if args.form == "bmm" else f"torch-{args.form}",
        seconds,
        form=args.form,
        version=torch.__version__,
        device=str(device),
        threads=torch.get_num_threads(),
        cuda_graph=trainers[0].graph is not None,
    )
    result["warmup_seconds"] = t_warm
    result["final_loss_mean"] = float(torch.cat(losses).mean())
    print("RESULT " + json.dumps(result), flush=True)


def run_trace(start, trials, batch_index, device="cpu", form="bmm"):
    """Replays batch_index (U,K,B) from start: per-update data loss (U,K), raw gradients (five
    (U,K,...)) and the final parameters."""
    torch.backends.cuda.matmul.allow_tf32 = False
    ens = Ensemble(start, device, form)
    losses, grads = [], [[] for _ in peer_io.TENSORS]
    for index in batch_index:
        x, y, m = (torch.tensor(a, device=ens.device) for a in peer_io.time_major(trials, index))
        ens.set_step_size()
        data, g = ens.gradients(x, y, m)
        losses.append(data.cpu().numpy())
        for store, gt in zip(grads, g):
            store.append(gt.cpu().numpy())
        ens.apply(g)
        ens.updates += 1
    return np.array(losses), [np.array(g) for g in grads], ens.state()


def trace(args):
    torch.set_num_threads(args.threads)
    start = peer_io.read_results(args.init)
    trials = peer_io.read_trials(args.data)
    batch_index = peer_io.read_trace(args.trace)["batch_index"]
    loss, grads, final = run_trace(start, trials, batch_index, args.device, args.form)
    producer = f"torch {torch.__version__} ({args.form})"
    peer_io.write_trace(args.out, batch_index, loss, grads, final, producer)
    print(
        f"torch peer: {batch_index.shape[0]} updates of {batch_index.shape[1]} networks"
        f" -> {args.out}"
    )


def main(argv=None):
    p, b, t = peer_io.command_line(__doc__.split("\n\n")[0])
    b.add_argument("--no-cuda-graph", action="store_true", help="run the CUDA update eagerly")
    for s in (b, t):
        s.add_argument("--threads", type=int, default=os.cpu_count(), help="intra-op CPU threads")
        s.add_argument(
            "--form",
            default="bmm",
            choices=["bmm", "compile", "vmap"],
            help="bmm time loop, the same under torch.compile, or torch.func.vmap",
        )
    args = p.parse_args(argv)
    bench(args) if args.command == "bench" else trace(args)


if __name__ == "__main__":
    main()
