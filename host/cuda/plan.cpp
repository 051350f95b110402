// Planning of the CUDA backend (see plan.hpp).
#include "host/cuda/plan.hpp"

#include <algorithm>
#include <string>

#include "host/core/error.hpp"
#include "host/train/batching.hpp"
#include "kernels/optimizer_args.hpp"

namespace eirnn::cuda {

namespace {

std::size_t align4(std::size_t n) {
    return (n + 3) / 4 * 4;
}

/// The geometry of (C, S) when it fits one CTA's limits; g.S is the effective slice count.
bool feasible(const RnnGeometry& g, int N, const DeviceLimits& lim) {
    if (g.tiles() > kMaxThreads) return false;
    if ((g.C - 1) * g.R >= N) return false;  // a row slice without rows
    return g.smem_bytes() <= lim.smem_per_block;
}

}  // namespace

std::vector<RnnChoice> rnn_choices(int N, int I, int O, int T, int B, int networks,
                                   const DeviceLimits& lim) {
    // Slice counts tried: powers of two below ceil(B/8), then ceil(B/8) (8-trial slices).
    std::vector<int> slices;
    const int smax = ceil_div(B, kTileTrials);
    for (int s = 1; s < smax; s *= 2) slices.push_back(s);
    slices.push_back(smax);
    const int cmax = std::min(lim.max_cluster, kMaxCluster);

    // On chip: every (C, S) that fits, fewest CTAs per network first (each holds a copy of its rows
    // of W and re-reads them per trial tile), then fewer CTAs per cluster (less DSMEM traffic).
    std::vector<RnnChoice> onchip;
    for (int C = 1; C <= cmax; C *= 2)
        for (int s : slices) {
            RnnGeometry g = make_rnn_geometry(N, I, O, T, B, C, s, true);
            RnnChoice c{C, g.S, true};
            if (feasible(g, N, lim) && std::find(onchip.begin(), onchip.end(), c) == onchip.end())
                onchip.push_back(c);
        }
    std::stable_sort(onchip.begin(), onchip.end(), [](const RnnChoice& a, const RnnChoice& b) {
        return a.C * a.S != b.C * b.S ? a.C * a.S < b.C * b.S : a.C < b.C;
    });
    // A group smaller than the device gets more batch slices (same C) while they fit.
    if (!onchip.empty()) {
        RnnChoice& best = onchip.front();
        for (int s : slices) {
            if (s <= best.S || static_cast<long>(networks) * best.C * best.S >= lim.sms) continue;
            RnnGeometry g = make_rnn_geometry(N, I, O, T, B, best.C, s, true);
            if (!feasible(g, N, lim)) break;
            best.S = std::max(best.S, g.S);
        }
    }
    std::vector<RnnChoice> out;
    for (const RnnChoice& c : onchip)
        if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
    // Off chip: the fewest CTAs per cluster, then the fewest slices that fit (scratch grows with
    // S).
    for (int C = 1; C <= cmax; C *= 2)
        for (int s : slices) {
            RnnGeometry g = make_rnn_geometry(N, I, O, T, B, C, s, false);
            if (feasible(g, N, lim)) {
                out.push_back(RnnChoice{C, g.S, false});
                break;
            }
        }
    return out;
}

ActivationLayout ActivationLayout::make(const ParamLayout& L, int T, int B, const RnnChoice& c) {
    const std::size_t N = L.N, TB = static_cast<std::size_t>(T) * B;
    ActivationLayout a;
    a.x = align4(TB * L.I);
    a.y = align4(TB * L.O);
    a.h = align4((TB + B) * N);
    a.th = align4(TB * N);
    a.part = align4(static_cast<std::size_t>(ceil_div(B, kTileTrials)) * N);
    if (!c.onchip) {
        RnnGeometry g = make_rnn_geometry(L.N, L.I, L.O, T, B, c.C, c.S, false);
        a.m_scratch = align4(g.m_scratch_floats());
        a.h_scratch = align4(g.h_scratch_floats());
    }
    return a;
}

MemoryNeeds memory_needs(const ParamLayout& L, int T, int B, int n_train, bool mask,
                         const RnnChoice& choice) {
    constexpr std::size_t kMiB = std::size_t(1) << 20;
    MemoryNeeds m;
    const std::size_t f = sizeof(float);
    m.fixed = static_cast<std::size_t>(n_train) * T * (L.I + 2 * L.O) * f  // the data set
              + 32 * kMiB                                                  // cuBLAS workspace
              + 16 * kMiB;                                                 // small tables, slack
    const std::size_t NN = static_cast<std::size_t>(L.N) * L.N;
    const int nb = batches_per_epoch(n_train, B);
    m.per_network = 4 * L.total * f                          // params, grads, Adam m and v
                    + (mask ? NN * f : 0)                    // connectivity mask
                    + static_cast<std::size_t>(n_train) * 4  // epoch order
                    + static_cast<std::size_t>(nb) * f       // step sizes
                    + 64                                     // status, counters, loss, seed
                    + ActivationLayout::make(L, T, B, choice).floats() * f;
    return m;
}

std::vector<Wave> plan_waves(int K, const MemoryNeeds& m, std::size_t free_bytes) {
    constexpr std::size_t kMiB = std::size_t(1) << 20;
    const std::size_t reserve = std::max<std::size_t>(256 * kMiB, free_bytes / 20);
    const std::size_t usable = free_bytes > m.fixed + reserve ? free_bytes - m.fixed - reserve : 0;
    const std::size_t fit = m.per_network ? usable / m.per_network : static_cast<std::size_t>(K);
    if (K > 0 && fit == 0)
        throw InputError("CUDA backend: one network needs " +
                         std::to_string((m.per_network + m.fixed) / kMiB) +
                         " MiB of device memory, " + std::to_string(free_bytes / kMiB) +
                         " MiB are free; lower --units, --batch, --trials or the trial length");
    std::vector<Wave> waves;
    if (K <= 0) return waves;
    const int per = static_cast<int>(std::min<std::size_t>(fit, static_cast<std::size_t>(K)));
    const int count = ceil_div(K, per);
    // count waves whose sizes differ by at most one: the first K % count get one more network.
    for (int w = 0, first = 0; w < count; ++w) {
        const int size = K / count + (w < K % count ? 1 : 0);
        waves.push_back({first, size});
        first += size;
    }
    return waves;
}

void epoch_orders(std::span<const std::uint64_t> seeds, int epoch, int n, int* out) {
    const long A = static_cast<long>(seeds.size());
#pragma omp parallel for schedule(dynamic, 4)
    for (long a = 0; a < A; ++a) {
        std::vector<int> o = epoch_order(seeds[a], epoch, n);
        std::copy(o.begin(), o.end(), out + a * n);
    }
}

void epoch_learning_rates(const TrainConfig& tc, std::span<const std::int32_t> done,
                          std::span<const float> scale, int nb, float* out) {
    if (done.size() != scale.size()) throw Error("epoch_learning_rates: one factor per network");
    // Networks that start the epoch with the same update count share one table of lr_t.
    std::vector<std::int32_t> bases(done.begin(), done.end());
    std::sort(bases.begin(), bases.end());
    bases.erase(std::unique(bases.begin(), bases.end()), bases.end());
    std::vector<double> table(bases.size() * static_cast<std::size_t>(nb));
    for (std::size_t u = 0; u < bases.size(); ++u)
        for (int j = 0; j < nb; ++j)
            table[u * nb + j] =
                keras_adam_lr(tc.lr, tc.decay, tc.beta1, tc.beta2, static_cast<long>(bases[u]) + j);
    for (std::size_t a = 0; a < done.size(); ++a) {
        const std::size_t u = static_cast<std::size_t>(
            std::lower_bound(bases.begin(), bases.end(), done[a]) - bases.begin());
        for (int j = 0; j < nb; ++j)
            out[a * nb + j] = static_cast<float>(scale[a] * table[u * nb + j]);
    }
}

std::array<GemmDesc, 3> weight_grad_gemms(const ParamLayout& L, int T, int B) {
    const int N = L.N, I = L.I, O = L.O, TB = T * B;
    std::array<GemmDesc, 3> g;
    // Row-major G (N,N) = delta^T H_prev is column-major G^T = H_prev_cm delta_cm^T.
    g[0] =
        GemmDesc{false, true, N, N, TB, N, N, N, GemmOperand::HPrev, GemmOperand::Delta, L.w_rec};
    // Row-major G (N,I) = delta^T X: column-major (I,N) = X_cm delta_cm^T.
    g[1] = GemmDesc{false, true, I, N, TB, I, N, I, GemmOperand::X, GemmOperand::Delta, L.w_in};
    // Row-major G (O,N) = grad_y^T H_next: column-major (N,O) = H_next_cm grad_y_cm^T.
    g[2] =
        GemmDesc{false, true, N, O, TB, N, O, N, GemmOperand::HNext, GemmOperand::GradY, L.w_out};
    return g;
}

std::size_t operand_offset(GemmOperand o, const ParamLayout& L, int B) {
    return o == GemmOperand::HNext ? static_cast<std::size_t>(B) * L.N : 0;
}

}  // namespace eirnn::cuda
