// The GPU's L-BFGS phase: problems grouped by N, each group in memory-sized chunks of problems, one
// launch per chunk (every initial state of the chunk at once), on one stream.
#include "host/cuda/dynamics.hpp"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "host/cuda/error.hpp"
#include "host/cuda/handles.hpp"
#include "host/cuda/memory.hpp"
#include "kernels/cuda/dynamics.cuh"
#include "kernels/dynamics_lbfgs.hpp"

namespace eirnn::cuda {
namespace {

constexpr int kMaxWarps = kDynamicsMaxThreads / 32;

/// Warps per block and where W lives for problems of N units and up to M states each.
struct Shape {
    int warps = 1;
    bool onchip = false;
    int ld = 0;
};

Shape choose_shape(int N, int M, const DynamicsGpuOptions& opt) {
    const std::size_t limit = device_limits().smem_per_block;
    const int want = opt.warps > 0 ? opt.warps : std::min(kMaxWarps, std::max(1, M));
    Shape sh;
    sh.ld = dynamics_ld(N);
    if (!opt.force_global)
        for (int w = want; w >= std::min(want, 4); --w)
            if (dynamics_smem_bytes(N, w, true, sh.ld) <= limit) {
                sh.warps = w;
                sh.onchip = true;
                return sh;
            }
    sh.ld = N;
    for (int w = want; w >= 1; --w)
        if (dynamics_smem_bytes(N, w, false, N) <= limit) {
            sh.warps = w;
            return sh;
        }
    throw GpuError("dynamics: N = " + std::to_string(N) +
                   " leaves no room for one state's vectors in shared memory");
}

class CudaSearch final : public DynamicsSearch {
public:
    explicit CudaSearch(const DynamicsGpuOptions& opt) : opt_(opt) {
        if (opt.warps < 0 || opt.warps > kMaxWarps)
            throw Error("make_cuda_dynamics_search: warps must be 0..16");
    }
    std::string name() const override { return "cuda"; }

    void descend(std::span<const DynamicsProblem> problems, const DynamicsSettings& s,
                 std::vector<std::vector<double>>& ends,
                 std::vector<std::vector<double>>& q) override {
        validate(s);
        const int P = static_cast<int>(problems.size());
        ends.assign(P, {});
        q.assign(P, {});
        std::map<int, std::vector<int>> by_n;
        for (int i = 0; i < P; ++i) {
            const DynamicsProblem& p = problems[i];
            if (p.N < 1 || p.M < 1) throw Error("dynamics: a problem without units or states");
            by_n[p.N].push_back(i);
        }
        if (P == 0) return;
        Stream stream = make_stream();
        for (const auto& [N, idx] : by_n) run_group(problems, idx, N, s, stream.get(), ends, q);
    }

private:
    void run_group(std::span<const DynamicsProblem> problems, const std::vector<int>& idx, int N,
                   const DynamicsSettings& s, cudaStream_t st,
                   std::vector<std::vector<double>>& ends, std::vector<std::vector<double>>& q) {
        const std::size_t n = N, nn = n * n;
        int max_m = 0;
        for (int i : idx) max_m = std::max(max_m, problems[i].M);
        const Shape sh = choose_shape(N, max_m, opt_);
        const std::size_t per_state = (dynamics_scratch_doubles(N, s.history) + n + 1) * 8;
        std::size_t free = 0, total = 0;
        EIRNN_CHECK_CUDA(cudaMemGetInfo(&free, &total));
        const std::size_t budget = std::min(free / 5 * 2, std::size_t(4) << 30);
        // Chunks of whole problems within the budget (at least one problem per chunk).
        for (std::size_t at = 0; at < idx.size();) {
            std::size_t end = at, states = 0, bytes = 0;
            while (end < idx.size()) {
                const DynamicsProblem& p = problems[idx[end]];
                const std::size_t more = std::size_t(p.M) * per_state + (nn + n + 1) * 8;
                if (end > at && bytes + more > budget) break;
                bytes += more;
                states += p.M;
                ++end;
            }
            if (bytes > free)
                throw GpuError("dynamics: not enough device memory for the " +
                               std::to_string(problems[idx[at]].M) + " states of one network");
            run_chunk(problems, idx, at, end, states, N, sh, s, st, ends, q);
            at = end;
        }
    }

    void run_chunk(std::span<const DynamicsProblem> problems, const std::vector<int>& idx,
                   std::size_t at, std::size_t end, std::size_t states, int N, const Shape& sh,
                   const DynamicsSettings& s, cudaStream_t st,
                   std::vector<std::vector<double>>& ends, std::vector<std::vector<double>>& q) {
        const std::size_t n = N, nn = n * n, np = end - at;
        std::vector<double> w(np * nn), c(np * n), alpha(np), x(states * n);
        std::vector<int> block_prob, block_state, block_states;
        std::vector<std::size_t> first_state(np);
        std::size_t s0 = 0;
        for (std::size_t k = 0; k < np; ++k) {
            const DynamicsProblem& p = problems[idx[at + k]];
            std::copy_n(p.w, nn, w.begin() + k * nn);
            std::copy_n(p.c, n, c.begin() + k * n);
            alpha[k] = p.alpha;
            std::copy_n(p.starts, std::size_t(p.M) * n, x.begin() + s0 * n);
            first_state[k] = s0;
            for (int m = 0; m < p.M; m += sh.warps) {
                block_prob.push_back(static_cast<int>(k));
                block_state.push_back(static_cast<int>(s0 + m));
                block_states.push_back(std::min(sh.warps, p.M - m));
            }
            s0 += p.M;
        }
        if (states > std::size_t(1) << 31 || block_prob.size() > (std::size_t(1) << 31) - 1)
            throw GpuError("dynamics: too many initial states for one launch");
        const int blocks = static_cast<int>(block_prob.size());
        DeviceBuffer<double> d_w(w.size()), d_c(c.size()), d_alpha(np), d_x(x.size()), d_q(states),
            d_scratch(states * dynamics_scratch_doubles(N, s.history));
        DeviceBuffer<int> d_bp(blocks), d_bs(blocks), d_bn(blocks);
        copy_to_device(d_w.data(), w.data(), w.size(), st);
        copy_to_device(d_c.data(), c.data(), c.size(), st);
        copy_to_device(d_alpha.data(), alpha.data(), np, st);
        copy_to_device(d_x.data(), x.data(), x.size(), st);
        copy_to_device(d_bp.data(), block_prob.data(), block_prob.size(), st);
        copy_to_device(d_bs.data(), block_state.data(), block_state.size(), st);
        copy_to_device(d_bn.data(), block_states.data(), block_states.size(), st);
        DynamicsArgs a;
        a.w = d_w.data();
        a.c = d_c.data();
        a.alpha = d_alpha.data();
        a.block_prob = d_bp.data();
        a.block_state = d_bs.data();
        a.block_states = d_bn.data();
        a.x = d_x.data();
        a.q = d_q.data();
        a.scratch = d_scratch.data();
        a.N = N;
        a.history = s.history;
        a.iterations = s.iterations;
        a.q_done = s.candidate_q * lbfgs::kDoneFactor;
        a.w_onchip = sh.onchip;
        a.ld = sh.ld;
        launch_dynamics_lbfgs(a, blocks, sh.warps, st);
        std::vector<double> qv(states);
        copy_to_host(x.data(), d_x.data(), x.size(), st);
        copy_to_host(qv.data(), d_q.data(), states, st);
        EIRNN_CHECK_CUDA(cudaStreamSynchronize(st));
        for (std::size_t k = 0; k < np; ++k) {
            const int i = idx[at + k];
            const std::size_t M = problems[i].M;
            ends[i].assign(x.begin() + first_state[k] * n, x.begin() + (first_state[k] + M) * n);
            q[i].assign(qv.begin() + first_state[k], qv.begin() + first_state[k] + M);
        }
    }

    DynamicsGpuOptions opt_;
};

}  // namespace

std::unique_ptr<DynamicsSearch> make_cuda_dynamics_search(const DynamicsGpuOptions& opt) {
    return std::make_unique<CudaSearch>(opt);
}

}  // namespace eirnn::cuda
