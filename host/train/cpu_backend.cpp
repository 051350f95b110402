// The CPU backend: networks of a group run in parallel (OpenMP, one network per thread at a time,
// single-threaded BLAS inside); each update is gather -> forward -> masked MSE -> BPTT -> clip ->
// Adam -> constraints (docs/MODEL.md §5). A network whose loss or gradient becomes non-finite is
// marked diverged and frozen at its last finite parameters; the others carry on.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "host/core/backend.hpp"
#include "host/core/error.hpp"
#include "host/train/batching.hpp"
#include "host/train/network_grad.hpp"
#include "kernels/cpu/blas.hpp"
#include "kernels/cpu/optimizer.hpp"
#include "kernels/rng.hpp"

namespace eirnn {

void TrainState::reset(int K, int epochs) {
    loss.assign(static_cast<std::size_t>(K) * epochs, std::numeric_limits<float>::quiet_NaN());
    diverged.assign(K, 0);
    stopped.assign(K, 0);
    epochs_run.assign(K, 0);
    updates.assign(K, 0);
    lr_scale.assign(K, 1.0f);
}

void TrainProgress::record_epoch(const TrainState& st, int epochs, int e) {
    const std::size_t K = st.diverged.size();
    std::lock_guard<std::mutex> lock(mu);
    epoch_loss.assign(K, std::numeric_limits<float>::quiet_NaN());
    for (std::size_t k = 0; k < K; ++k)
        if (!st.diverged[k] && st.epochs_run[k] > 0)
            epoch_loss[k] = st.loss[k * epochs + std::min(e, st.epochs_run[k] - 1)];
}

void TrainProgress::check_cancel() const {
    if (cancel.load()) throw Interrupted("training interrupted");
}

namespace {

/// Buffers of one thread, sized for the group's largest batch.
struct Workspace {
    std::vector<float> x, y, mask, noise, grad;
    NetworkWorkspace<float> net;

    Workspace(const ParamLayout& L, int B, int T, bool noise_on, bool rate_on, bool plain) {
        x.resize(static_cast<std::size_t>(T) * B * L.I);
        y.resize(static_cast<std::size_t>(T) * B * L.O);
        mask.resize(y.size());
        if (noise_on) noise.resize(static_cast<std::size_t>(T) * B * L.N);
        grad.resize(L.total);
        net.resize(L, B, T, rate_on, !plain);
    }
};

/// Adam moments of every network: (K, total) each.
struct Moments {
    std::vector<float> m, v;
};

class CpuBackend final : public Backend {
public:
    explicit CpuBackend(int threads) : threads_(threads > 0 ? threads : omp_get_max_threads()) {}
    std::string name() const override { return "cpu"; }
    void train(const GroupConfig& cfg, const Dataset& train, TrainState& st,
               TrainProgress* progress) override;

private:
    int threads_;
};

/// One update of a network on batch idx[0..B) (k_done updates before it). Returns the batch's data
/// loss; a non-finite value means the network diverged and nothing was applied.
float update_network(const GroupConfig& cfg, const Dataset& data, const GroupParams& g, float* p,
                     float* m, float* v, const float* mask, const int* idx, int B, long k_done,
                     float lr_scale, std::uint64_t seed, Workspace& ws) {
    const ParamLayout& L = g.layout;
    const ModelConfig& mc = cfg.model;
    const TrainConfig& tc = cfg.train;
    const int N = L.N, T = data.T;
    gather_batch(data, idx, B, ws.x.data(), ws.y.data(), ws.mask.data());
    const float* noise = nullptr;
    if (mc.sigma_rec > 0) {
        Philox rng{seed, static_cast<std::uint64_t>(RngStream::kRecNoise) +
                             (static_cast<std::uint64_t>(k_done) << 8)};
        const float scale = static_cast<float>(mc.sigma_rec * std::sqrt(mc.alpha));
        const std::size_t n = static_cast<std::size_t>(T) * B * N;
        for (std::size_t i = 0; i < n; ++i) ws.noise[i] = scale * static_cast<float>(rng.normal(i));
        noise = ws.noise.data();
    }
    float* gr = ws.grad.data();
    LossParts loss = network_loss_grad(mc, tc, L, B, T, p, g.sign.data(), mask, ws.x.data(),
                                       ws.y.data(), ws.mask.data(), noise, ws.net, gr);
    double sq[ParamLayout::kTensors];
    gradient_norms(L, gr, sq);
    double total = 0;
    for (double q : sq) total += q;
    if (!std::isfinite(loss.total) || !std::isfinite(total))
        return std::numeric_limits<float>::infinity();
    apply_update(mc, tc, L, p, m, v, gr, sq, k_done, lr_scale, g.sign.data(), mask);
    return static_cast<float>(loss.data);
}

void CpuBackend::train(const GroupConfig& cfg, const Dataset& data, TrainState& st,
                       TrainProgress* progress) {
    GroupParams& g = st.params;
    const int K = g.K, E = cfg.train.epochs, B = cfg.train.batch;
    const int n = data.n;
    const int nb = batches_per_epoch(n, B);
    const std::size_t P = g.layout.total, NN = static_cast<std::size_t>(g.layout.N) * g.layout.N;
    Moments mo{std::vector<float>(static_cast<std::size_t>(K) * P, 0.0f),
               std::vector<float>(static_cast<std::size_t>(K) * P, 0.0f)};
    if (progress) progress->updates_total = static_cast<long>(K) * E * nb;
    const int threads = std::max(1, std::min(threads_, K));
    const int blas_before = cpu::blas_threads();
    cpu::set_blas_threads(std::max(1, threads_ / threads));

    for (int e = 0; e < E; ++e) {
        if (progress) progress->epoch = e + 1;
#pragma omp parallel num_threads(threads)
        {
            // Plain steps (network_loss_grad: alpha = 1 in float, no noise) need no th.
            const bool plain =
                static_cast<float>(cfg.model.alpha) == 1.0f && !(cfg.model.sigma_rec > 0);
            Workspace ws(g.layout, B, data.T, cfg.model.sigma_rec > 0, cfg.train.l2_rate > 0,
                         plain);
#pragma omp for schedule(dynamic, 1)
            for (int k = 0; k < K; ++k) {
                if (st.diverged[k] || st.stopped[k]) continue;
                float* p = g.params.data() + k * P;
                const float* mask = g.mask.empty() ? nullptr : g.mask.data() + k * NN;
                auto order = epoch_order(g.seeds[k], e, n);
                double sum = 0;
                for (int j = 0; j < nb; ++j) {
                    // No exception may leave the parallel region: a cancelled network stops here
                    // and the training throws after it.
                    if (progress && progress->cancel.load(std::memory_order_relaxed)) break;
                    int bsz = std::min(B, n - j * B);
                    float l = update_network(cfg, data, g, p, mo.m.data() + k * P,
                                             mo.v.data() + k * P, mask, order.data() + j * B, bsz,
                                             st.updates[k], st.lr_scale[k], g.seeds[k], ws);
                    if (!std::isfinite(l)) {
                        st.diverged[k] = 1;
                        break;
                    }
                    ++st.updates[k];
                    sum += static_cast<double>(l) * bsz;
                    if (progress) progress->updates_done.fetch_add(1, std::memory_order_relaxed);
                }
                if (st.diverged[k]) continue;
                if (progress && progress->cancel.load(std::memory_order_relaxed)) continue;
                float epoch_loss = static_cast<float>(sum / n);
                st.loss[static_cast<std::size_t>(k) * E + e] = epoch_loss;
                st.epochs_run[k] = e + 1;
                if (cfg.train.early_stop > 0 && epoch_loss < cfg.train.early_stop)
                    st.stopped[k] = 1;
            }
        }
        if (progress) {
            if (progress->cancel.load()) {
                cpu::set_blas_threads(blas_before);
                progress->check_cancel();
            }
            progress->record_epoch(st, E, e);
        }
        int active = 0;
        double mean = 0, mn = std::numeric_limits<double>::infinity();
        for (int k = 0; k < K; ++k) {
            float l = st.loss[static_cast<std::size_t>(k) * E + e];
            if (std::isfinite(l)) {
                mean += l;
                mn = std::min(mn, static_cast<double>(l));
                ++active;
            }
        }
        if (progress) {
            int still = 0;
            for (int k = 0; k < K; ++k) still += !st.diverged[k] && !st.stopped[k];
            progress->updates_total =
                progress->updates_done.load() + static_cast<long>(still) * nb * (E - e - 1);
            progress->active = still;
            progress->mean_loss = active ? mean / active : std::nan("");
            progress->min_loss = active ? mn : std::nan("");
        }
        bool any = false;
        for (int k = 0; k < K; ++k) any = any || (!st.diverged[k] && !st.stopped[k]);
        if (!any) break;
    }
    cpu::set_blas_threads(blas_before);
}

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int threads) {
    return std::make_unique<CpuBackend>(threads);
}

}  // namespace eirnn
