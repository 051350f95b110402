// The CUDA backend (see cuda_backend.hpp). Per group: the data set is uploaded once (pinned
// staging, copy stream); the networks are trained in waves that fit the free device memory
// (host/cuda/plan.hpp); per epoch the host computes every network's shuffle and step sizes, uploads
// them on the copy stream and enqueues all updates on the compute stream: gather -> fused forward
// -> masked MSE -> fused backward -> bias gradient and weight gradients (cuBLAS strided-batched)
// -> fused clip / Adam / constraints. Per-network loss sums, divergence flags and update counts
// come back once per epoch; networks that diverged or stopped are skipped by every kernel.
#include "host/cuda/cuda_backend.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <tuple>
#include <vector>

#include "host/cuda/error.hpp"
#include "host/cuda/gemm.hpp"
#include "host/cuda/handles.hpp"
#include "host/cuda/memory.hpp"
#include "host/cuda/plan.hpp"
#include "host/train/batching.hpp"
#include "kernels/cuda/batching.cuh"
#include "kernels/cuda/optimizer.cuh"
#include "kernels/cuda/rnn.cuh"

namespace eirnn::cuda {

std::string device_problem() {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return cudaGetErrorString(e);
    }
    return n > 0 ? "" : "no CUDA device";
}

bool device_usable() {
    return device_problem().empty();
}

int device_count() {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n;
}

namespace {

constexpr std::uint8_t kTraining = 0, kDiverged = 1, kIdle = 2;  // per-network status
constexpr int kProgressEvery = 8;  // updates between two progress reads (bounds the queue too)

/// The training set on the device.
struct DeviceDataset {
    DeviceBuffer<float> x, y, mask;  // (n,T,I), (n,T,O), (n,T,O)
    PinnedBuffer<float> staging;     // kept until the copies are done (the group's end)
    Event ready;                     // recorded on the copy stream after the copies
};

DeviceDataset upload_dataset(const Dataset& d, cudaStream_t copy) {
    DeviceDataset dd;
    const std::size_t nx = d.x.size(), ny = d.y.size();
    dd.staging = PinnedBuffer<float>(nx + 2 * ny);
    std::copy(d.x.begin(), d.x.end(), dd.staging.data());
    std::copy(d.y.begin(), d.y.end(), dd.staging.data() + nx);
    std::copy(d.mask.begin(), d.mask.end(), dd.staging.data() + nx + ny);
    dd.x = DeviceBuffer<float>(nx);
    dd.y = DeviceBuffer<float>(ny);
    dd.mask = DeviceBuffer<float>(ny);
    copy_to_device(dd.x.data(), dd.staging.data(), nx, copy);
    copy_to_device(dd.y.data(), dd.staging.data() + nx, ny, copy);
    copy_to_device(dd.mask.data(), dd.staging.data() + nx + ny, ny, copy);
    dd.ready = make_event();
    EIRNN_CHECK_CUDA(cudaEventRecord(dd.ready.get(), copy));
    return dd;
}

/// Offsets (floats) of the buffers inside one slot's block of the activation allocation.
struct SlotOffsets {
    std::size_t x, y, ymask, out, gy, h, th, part, ms, hs, floats;
    explicit SlotOffsets(const ActivationLayout& a) {
        x = 0;
        y = x + a.x;
        ymask = y + a.y;
        out = ymask + a.y;
        gy = out + a.y;
        h = gy + a.y;
        th = h + a.h;
        part = th + a.th;
        ms = part + a.part;
        hs = ms + a.m_scratch;
        floats = hs + a.h_scratch;
    }
};

/// Everything one train() call shares between its waves.
class GroupRun {
public:
    GroupRun(const GroupConfig& cfg, const Dataset& data, TrainState& st, TrainProgress* progress,
             TrainTiming& timing, std::size_t memory_limit)
        : cfg_(cfg),
          data_(data),
          st_(st),
          progress_(progress),
          timing_(timing),
          L_(st.params.layout),
          memory_limit_(memory_limit) {
        K_ = st.params.K;
        E_ = cfg.train.epochs;
        n_ = data.n;
        T_ = data.T;
        N_ = L_.N;
        I_ = data.I;
        O_ = data.O;
        B_ = std::min(cfg.train.batch, n_);
        nb_ = batches_per_epoch(n_, B_);
        if (L_.I != I_ || L_.O != O_) throw Error("CUDA backend: data set and model shapes differ");
        if (n_ < 1 || T_ < 1 || B_ < 1) throw Error("CUDA backend: empty data set");
        plain_ = cfg.model.alpha == 1.0 && cfg.model.sigma_rec <= 0.0;
    }

    void run() {
        if (K_ == 0 || E_ == 0) return;
        stream_ = make_stream();
        copy_ = make_stream();
        blas_ = make_cublas(stream_.get());
        lim_ = device_limits();
        base_ = first_launchable(K_);
        dd_ = upload_dataset(data_, copy_.get());
        EIRNN_CHECK_CUDA(cudaStreamWaitEvent(stream_.get(), dd_.ready.get(), 0));
        std::size_t free_bytes = 0, total_bytes = 0;
        EIRNN_CHECK_CUDA(cudaMemGetInfo(&free_bytes, &total_bytes));
        if (memory_limit_ > 0) free_bytes = std::min(free_bytes, memory_limit_);
        const MemoryNeeds needs = memory_needs(L_, T_, B_, n_, !st_.params.mask.empty(), base_);
        // The data set is already resident: count it out of the fixed part.
        MemoryNeeds rest = needs;
        rest.fixed -= std::min(rest.fixed, dd_.x.size() * 4 + 2 * dd_.y.size() * 4);
        const std::vector<Wave> waves = plan_waves(K_, rest, free_bytes);
        timing_.waves = static_cast<int>(waves.size());
        if (progress_) progress_->updates_total = static_cast<long>(K_) * E_ * nb_;
        for (std::size_t w = 0; w < waves.size(); ++w) {
            later_ = 0;
            for (std::size_t u = w + 1; u < waves.size(); ++u)
                for (int k = waves[u].first; k < waves[u].first + waves[u].count; ++k)
                    later_ += trainable(k);
            wave(waves[w].first, waves[w].count);
        }
        EIRNN_CHECK_CUDA(cudaStreamSynchronize(copy_.get()));
    }

private:
    bool trainable(int k) const { return !st_.diverged[k] && !st_.stopped[k]; }

    bool launchable(const RnnChoice& c, int B) {
        auto key = std::make_tuple(c.C, c.S, c.onchip, B);
        auto it = launchable_.find(key);
        if (it != launchable_.end()) return it->second;
        bool ok = rnn_launchable(make_rnn_geometry(N_, I_, O_, T_, B, c.C, c.S, c.onchip));
        launchable_[key] = ok;
        return ok;
    }

    RnnChoice first_launchable(int networks) {
        for (const RnnChoice& c : rnn_choices(N_, I_, O_, T_, B_, networks, lim_))
            if (launchable(c, B_)) return c;
        throw Error(
            "CUDA backend: no recurrent kernel configuration fits N = " + std::to_string(N_) +
            " units with batches of " + std::to_string(B_) + " trials on this device");
    }

    /// The configuration for A networks: the best launchable one of base_'s kind (on chip or
    /// off chip, as the memory was planned for).
    RnnChoice pick(int A) {
        for (const RnnChoice& c : rnn_choices(N_, I_, O_, T_, B_, A, lim_)) {
            if (c.onchip != base_.onchip || (!c.onchip && !(c == base_))) continue;
            if (launchable(c, B_)) return c;
        }
        return base_;
    }

    void wave(int first, int count);

    const GroupConfig& cfg_;
    const Dataset& data_;
    TrainState& st_;
    TrainProgress* progress_;
    TrainTiming& timing_;
    const ParamLayout L_;
    std::size_t memory_limit_ = 0;
    int K_ = 0, E_ = 0, n_ = 0, T_ = 0, N_ = 0, I_ = 0, O_ = 0, B_ = 0, nb_ = 0;
    bool plain_ = true;  // alpha 1 and no noise: th_t = h_{t+1} is not stored
    Stream stream_, copy_;
    Cublas blas_;
    DeviceLimits lim_;
    RnnChoice base_;
    DeviceDataset dd_;
    std::map<std::tuple<int, int, bool, int>, bool> launchable_;
    long later_ = 0;  // trainable networks in the waves after the current one
};

void GroupRun::wave(int first, int count) {
    const ModelConfig& mc = cfg_.model;
    const TrainConfig& tc = cfg_.train;
    const std::size_t P = L_.total, NN = static_cast<std::size_t>(N_) * N_;
    const bool has_mask = !st_.params.mask.empty();
    const SlotOffsets so(ActivationLayout::make(L_, T_, B_, base_));
    const std::size_t SF = so.floats;
    cudaStream_t s = stream_.get();

    // Device state of the wave (stream-ordered pool) and its pinned host mirrors.
    const std::size_t cP = static_cast<std::size_t>(count) * P;
    PoolBuffer<float> params(cP, s), grads(cP, s), m(cP, s), v(cP, s);
    PoolBuffer<float> mask(has_mask ? count * NN : 0, s), sign(N_, s);
    PoolBuffer<float> act(count * SF, s), lr(static_cast<std::size_t>(count) * nb_, s);
    PoolBuffer<int> order(static_cast<std::size_t>(count) * n_, s), nets(count, s);
    PoolBuffer<std::uint8_t> status(count, s);
    PoolBuffer<std::int32_t> updates(count, s);
    PoolBuffer<double> loss(count, s), epoch_sum(count, s);
    PoolBuffer<std::uint64_t> seeds(count, s);
    PinnedBuffer<float> h_params(cP), h_lr(static_cast<std::size_t>(count) * nb_);
    PinnedBuffer<int> h_order(static_cast<std::size_t>(count) * n_), h_nets(count);
    PinnedBuffer<std::uint8_t> h_status(count);
    PinnedBuffer<std::int32_t> h_updates(count);
    PinnedBuffer<double> h_sum(count);
    PinnedBuffer<std::uint64_t> h_seeds(count);
    PinnedBuffer<float> h_const(has_mask ? count * NN + N_ : N_);

    std::copy_n(st_.params.params.begin() + first * P, cP, h_params.data());
    std::copy(st_.params.sign.begin(), st_.params.sign.end(), h_const.data());
    if (has_mask)
        std::copy_n(st_.params.mask.begin() + first * NN, count * NN, h_const.data() + N_);
    for (int k = 0; k < count; ++k) {
        h_status[k] = trainable(first + k) ? kTraining : kIdle;
        h_updates[k] = st_.updates[first + k];
        h_seeds[k] = st_.params.seeds[first + k];
    }
    copy_to_device(params.data(), h_params.data(), cP, s);
    copy_to_device(sign.data(), h_const.data(), N_, s);
    if (has_mask) copy_to_device(mask.data(), h_const.data() + N_, count * NN, s);
    copy_to_device(updates.data(), h_updates.data(), count, s);
    copy_to_device(seeds.data(), h_seeds.data(), count, s);
    zero(m.data(), cP, s);
    zero(v.data(), cP, s);
    zero(grads.data(), cP, s);
    zero(act.data(), count * SF, s);
    zero(loss.data(), count, s);

    RnnNetworks rn;
    rn.nets = nets.data();
    rn.status = status.data();
    rn.params = params.data();
    rn.P = P;
    rn.w_rec = L_.w_rec;
    rn.w_in = L_.w_in;
    rn.b = L_.b;
    rn.w_out = L_.w_out;
    rn.b_out = L_.b_out;
    rn.mask = has_mask ? mask.data() : nullptr;
    rn.sign = sign.data();
    rn.reparam = mc.dale == DaleMode::Reparam;
    rn.incoming = mc.dale_axis == DaleAxis::Incoming;

    OptimizerArgs oa;
    oa.nets = nets.data();
    oa.status = status.data();
    oa.updates = updates.data();
    oa.epoch_sum = epoch_sum.data();
    oa.params = params.data();
    oa.m = m.data();
    oa.v = v.data();
    oa.grads = grads.data();
    oa.loss = loss.data();
    oa.lr_stride = static_cast<std::size_t>(nb_);
    oa.P = P;
    for (int t = 0; t < ParamLayout::kTensors; ++t) {
        oa.off[t] = L_.offset(t);
        oa.size[t] = L_.size(t);
    }
    oa.N = N_;
    oa.sign = sign.data();
    oa.mask = rn.mask;
    oa.project = mc.dale == DaleMode::Project;
    oa.reparam = rn.reparam;
    oa.incoming = rn.incoming;
    oa.nonneg_input = mc.nonneg_input;
    oa.l2_coef = tc.l2_weight > 0 ? static_cast<float>(2.0 * tc.l2_weight) : 0.0f;
    oa.clipnorm = tc.clipnorm;
    oa.per_tensor = tc.clip == ClipMode::PerTensor;
    oa.beta1 = static_cast<float>(tc.beta1);
    oa.beta2 = static_cast<float>(tc.beta2);
    oa.eps = static_cast<float>(tc.eps);

    Event t0 = make_event(true), t1 = make_event(true), uploaded = make_event();
    Event compute_done = make_event();
    Event ring[2] = {make_event(), make_event()};
    float* a0 = act.data();
    std::vector<std::uint64_t> act_seeds;
    std::vector<std::int32_t> act_done;
    std::vector<float> act_scale;

    for (int e = 0; e < E_; ++e) {
        int A = 0;
        for (int k = 0; k < count; ++k)
            if (h_status[k] == kTraining) h_nets[A++] = k;
        if (A == 0) break;
        if (progress_) progress_->epoch = e + 1;
        const RnnChoice choice = pick(A);
        if (timing_.kernels.empty())
            timing_.kernels = "C=" + std::to_string(choice.C) + " S=" + std::to_string(choice.S) +
                              (choice.onchip ? " on-chip" : " off-chip");
        act_seeds.resize(A);
        act_done.resize(A);
        act_scale.resize(A);
        for (int a = 0; a < A; ++a) {
            const int k = first + h_nets[a];
            act_seeds[a] = st_.params.seeds[k];
            act_done[a] = st_.updates[k];
            act_scale[a] = st_.lr_scale[k];
        }
        epoch_orders(act_seeds, e, n_, h_order.data());
        epoch_learning_rates(tc, act_done, act_scale, nb_, h_lr.data());
        // The copy stream writes buffers allocated (stream-ordered) and last used on s: it waits.
        cudaStream_t c = copy_.get();
        EIRNN_CHECK_CUDA(cudaEventRecord(compute_done.get(), s));
        EIRNN_CHECK_CUDA(cudaStreamWaitEvent(c, compute_done.get(), 0));
        copy_to_device(order.data(), h_order.data(), static_cast<std::size_t>(A) * n_, c);
        copy_to_device(lr.data(), h_lr.data(), static_cast<std::size_t>(A) * nb_, c);
        copy_to_device(nets.data(), h_nets.data(), A, c);
        copy_to_device(status.data(), h_status.data(), count, c);
        EIRNN_CHECK_CUDA(cudaEventRecord(uploaded.get(), c));
        EIRNN_CHECK_CUDA(cudaStreamWaitEvent(s, uploaded.get(), 0));
        zero(epoch_sum.data(), count, s);
        rn.count = A;
        oa.count = A;
        EIRNN_CHECK_CUDA(cudaEventRecord(t0.get(), s));

        for (int j = 0; j < nb_; ++j) {
            const int Bj = std::min(B_, n_ - j * B_);
            const RnnGeometry g =
                make_rnn_geometry(N_, I_, O_, T_, Bj, choice.C, choice.S, choice.onchip);

            GatherArgs ga;
            ga.count = A;
            ga.nets = nets.data();
            ga.status = status.data();
            ga.order = order.data();
            ga.n = n_;
            ga.first = j * B_;
            ga.B = Bj;
            ga.T = T_;
            ga.I = I_;
            ga.O = O_;
            ga.data_x = dd_.x.data();
            ga.data_y = dd_.y.data();
            ga.data_mask = dd_.mask.data();
            ga.x = a0 + so.x;
            ga.y = a0 + so.y;
            ga.mask = a0 + so.ymask;
            ga.x_stride = ga.y_stride = SF;
            gather_batch(ga, s);

            RnnForwardArgs fa;
            fa.net = rn;
            fa.x = a0 + so.x;
            fa.h = a0 + so.h;
            fa.th = plain_ ? nullptr : a0 + so.th;
            fa.y = a0 + so.out;
            fa.x_stride = fa.h_stride = fa.th_stride = fa.y_stride = SF;
            fa.alpha = static_cast<float>(mc.alpha);
            fa.noise_scale =
                mc.sigma_rec > 0 ? static_cast<float>(mc.sigma_rec * std::sqrt(mc.alpha)) : 0.0f;
            fa.seeds = seeds.data();
            fa.updates = updates.data();
            fa.m_scratch = a0 + so.ms;
            fa.h_scratch = a0 + so.hs;
            fa.scratch_stride = SF;
            rnn_forward(g, fa, s);

            MseArgs ma;
            ma.count = A;
            ma.nets = nets.data();
            ma.status = status.data();
            ma.T = T_;
            ma.B = Bj;
            ma.O = O_;
            ma.y = a0 + so.out;
            ma.target = a0 + so.y;
            ma.mask = a0 + so.ymask;
            ma.grad_y = a0 + so.gy;
            ma.stride = SF;
            ma.loss = loss.data();
            ma.grads = grads.data();
            ma.P = P;
            ma.b_out = L_.b_out;
            masked_mse(ma, s);

            RnnBackwardArgs ba;
            ba.net = rn;
            ba.h = a0 + so.h;
            ba.th = plain_ ? nullptr : a0 + so.th;
            ba.delta = a0 + so.th;
            ba.grad_y = a0 + so.gy;
            ba.bias_part = a0 + so.part;
            ba.h_stride = ba.th_stride = ba.delta_stride = ba.gy_stride = ba.part_stride = SF;
            ba.alpha = fa.alpha;
            ba.rate_coef =
                tc.l2_rate > 0
                    ? static_cast<float>(2.0 * tc.l2_rate / (static_cast<double>(T_) * Bj * N_))
                    : 0.0f;
            ba.m_scratch = fa.m_scratch;
            ba.h_scratch = fa.h_scratch;
            ba.scratch_stride = SF;
            rnn_backward(g, ba, s);

            BiasGradArgs bg;
            bg.count = A;
            bg.nets = nets.data();
            bg.status = status.data();
            bg.N = N_;
            bg.B = Bj;
            bg.bias_part = a0 + so.part;
            bg.part_stride = SF;
            bg.grads = grads.data();
            bg.P = P;
            bg.b = L_.b;
            bias_grad(bg, s);

            GemmOperands ops;
            ops.h = a0 + so.h;
            ops.delta = a0 + so.th;
            ops.x = a0 + so.x;
            ops.grad_y = a0 + so.gy;
            ops.stride = static_cast<long long>(SF);
            weight_grads(blas_.get(), L_, T_, Bj, A, ops, grads.data());

            oa.lr = lr.data() + j;
            oa.batch = Bj;
            adam_update(oa, s);

            if (progress_) progress_->check_cancel();
            if ((j + 1) % kProgressEvery == 0) {
                Event& now = ring[((j + 1) / kProgressEvery) % 2];
                Event& before = ring[((j + 1) / kProgressEvery + 1) % 2];
                EIRNN_CHECK_CUDA(cudaEventRecord(now.get(), s));
                if (j + 1 >= 2 * kProgressEvery) {
                    EIRNN_CHECK_CUDA(cudaEventSynchronize(before.get()));
                    if (progress_)
                        progress_->updates_done.fetch_add(static_cast<long>(A) * kProgressEvery);
                }
            }
        }
        EIRNN_CHECK_CUDA(cudaEventRecord(t1.get(), s));
        copy_to_host(h_sum.data(), epoch_sum.data(), count, s);
        copy_to_host(h_status.data(), status.data(), count, s);
        copy_to_host(h_updates.data(), updates.data(), count, s);
        EIRNN_CHECK_CUDA(cudaStreamSynchronize(s));
        timing_.device_seconds += elapsed_ms(t0.get(), t1.get()) / 1e3;
        timing_.network_updates += static_cast<long>(A) * nb_;
        timing_.trial_steps += static_cast<double>(A) * n_ * T_;

        // Per-network bookkeeping, as the CPU backend does it at the end of an epoch.
        const int E = E_;
        int still = 0, finite = 0;
        double mean = 0, mn = std::numeric_limits<double>::infinity();
        for (int a = 0; a < A; ++a) {
            const int kw = h_nets[a], k = first + kw;
            st_.updates[k] = h_updates[kw];
            if (h_status[kw] == kDiverged) {
                st_.diverged[k] = 1;
                continue;
            }
            const float epoch_loss = static_cast<float>(h_sum[kw] / n_);
            st_.loss[static_cast<std::size_t>(k) * E + e] = epoch_loss;
            st_.epochs_run[k] = e + 1;
            if (tc.early_stop > 0 && epoch_loss < tc.early_stop) {
                st_.stopped[k] = 1;
                h_status[kw] = kIdle;
            }
            if (std::isfinite(epoch_loss)) {
                mean += epoch_loss;
                mn = std::min(mn, static_cast<double>(epoch_loss));
                ++finite;
            }
        }
        for (int k = 0; k < count; ++k) still += h_status[k] == kTraining;
        if (progress_) {
            const long done_now = progress_->updates_done.load();
            const long in_epoch = static_cast<long>(A) * nb_;
            const long counted =
                static_cast<long>(A) * kProgressEvery * std::max(0, nb_ / kProgressEvery - 1);
            progress_->updates_done.fetch_add(in_epoch - counted);
            progress_->updates_total = done_now + in_epoch - counted +
                                       static_cast<long>(still) * nb_ * (E - e - 1) +
                                       later_ * static_cast<long>(E) * nb_;
            progress_->active = still;
            progress_->mean_loss = finite ? mean / finite : std::nan("");
            progress_->min_loss = finite ? mn : std::nan("");
            progress_->record_epoch(st_, E, e);
        }
    }
    copy_to_host(h_params.data(), params.data(), cP, s);
    EIRNN_CHECK_CUDA(cudaStreamSynchronize(s));
    std::copy_n(h_params.data(), cP, st_.params.params.begin() + first * P);
}

}  // namespace

CudaBackend::CudaBackend() {
    const std::string problem = device_problem();
    if (!problem.empty()) throw Error("CUDA backend: " + problem);
}

CudaBackend::~CudaBackend() = default;

void CudaBackend::train(const GroupConfig& cfg, const Dataset& train, TrainState& st,
                        TrainProgress* progress) {
    timing_ = TrainTiming{};
    GroupRun run(cfg, train, st, progress, timing_, memory_limit_);
    run.run();
}

std::unique_ptr<Backend> make_cuda_backend() {
    return std::make_unique<CudaBackend>();
}

}  // namespace eirnn::cuda
