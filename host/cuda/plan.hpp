// Host-side planning of the CUDA backend in plain C++ (no CUDA headers, part of eirnn_core) so that
// the CPU tests cover it: the recurrent kernels' launch geometry, device memory and waves, the
// per-slot activation layout, the per-epoch index maps and step sizes, and the weight-gradient
// GEMM descriptors (column-major, as cuBLAS takes them).
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "host/core/config.hpp"
#include "host/core/model.hpp"
#include "kernels/cuda/rnn_cta.hpp"

namespace eirnn::cuda {

/// What the planner needs to know about the device (cudaDeviceGetAttribute on the GPU).
struct DeviceLimits {
    int sms = 132;                        // multiprocessors
    std::size_t smem_per_block = 232448;  // opt-in shared memory per block (bytes)
    int max_cluster = kMaxCluster;        // 1 without thread-block clusters
};

/// One launch configuration of the recurrent kernels: C CTAs per cluster, up to S batch slices,
/// W and the states on chip or in global scratch.
struct RnnChoice {
    int C = 1, S = 1;
    bool onchip = true;
    bool operator==(const RnnChoice&) const = default;
};

/// Configurations for `networks` networks of N units on batches of up to B trials, best first:
/// on chip with the fewest CTAs per network (then per cluster), batch slices added to the first
/// while the grid is smaller than the device; the other on-chip ones; then off chip. Empty when N
/// is beyond every configuration.
std::vector<RnnChoice> rnn_choices(int N, int I, int O, int T, int B, int networks,
                                   const DeviceLimits& lim);

/// Floats of each per-slot activation buffer for batches of up to B trials; every size is a
/// multiple of 4 floats so that 16-byte accesses stay aligned.
struct ActivationLayout {
    std::size_t x = 0;     // (T,B,I) gathered inputs
    std::size_t y = 0;     // (T,B,O) targets, loss mask, outputs and grad_y (one each)
    std::size_t h = 0;     // (T+1,B,N) states
    std::size_t th = 0;    // (T,B,N) tanh(a_t), then delta (in place)
    std::size_t part = 0;  // (ceil(B/8),N) bias partial sums
    std::size_t m_scratch = 0, h_scratch = 0;  // off-chip recurrent kernels only

    static ActivationLayout make(const ParamLayout& L, int T, int B, const RnnChoice& c);
    /// Floats of one slot, all buffers.
    std::size_t floats() const { return x + 4 * y + h + th + part + m_scratch + h_scratch; }
};

/// Device bytes of training a group: `fixed` once (data set, library workspace), `per_network`
/// for each resident network (parameters, gradients, moments, mask, state, index map, one slot).
struct MemoryNeeds {
    std::size_t fixed = 0;
    std::size_t per_network = 0;
};
MemoryNeeds memory_needs(const ParamLayout& L, int T, int B, int n_train, bool mask,
                         const RnnChoice& choice);

/// A contiguous range of the group's networks trained together.
struct Wave {
    int first = 0, count = 0;
    bool operator==(const Wave&) const = default;
};

/// Splits K networks into as few waves of near-equal size as fit `free_bytes` minus a reserve
/// (5% and at least 256 MiB). Throws Error when a single network does not fit.
std::vector<Wave> plan_waves(int K, const MemoryNeeds& m, std::size_t free_bytes);

/// Epoch orders (host/train/batching.hpp epoch_order) of the networks with these seeds: out is
/// (seeds.size(), n), row a the order of seeds[a]. The batch gather kernel reads trial
/// out[a * n + j * B + b] for batch j, trial b.
void epoch_orders(std::span<const std::uint64_t> seeds, int epoch, int n, int* out);

/// Step sizes of one epoch of nb updates: out[a * nb + j] = float(scale[a] *
/// keras_adam_lr(lr, decay, beta1, beta2, done[a] + j)), as the CPU backend computes lr_t.
void epoch_learning_rates(const TrainConfig& tc, std::span<const std::int32_t> done,
                          std::span<const float> scale, int nb, float* out);

/// Which activation buffer a GEMM operand is (slot-strided), and where in it the operand starts.
enum class GemmOperand { HPrev, HNext, Delta, X, GradY };

/// One strided-batched SGEMM of the weight gradients in cuBLAS's column-major terms:
/// C (m,n) = op(A) op(B), op = transpose when ta / tb, batched over slots; C lives at `c_offset`
/// of each slot's gradient slice (ParamLayout).
struct GemmDesc {
    bool ta = false, tb = false;
    int m = 0, n = 0, k = 0, lda = 0, ldb = 0, ldc = 0;
    GemmOperand a = GemmOperand::HPrev, b = GemmOperand::Delta;
    std::size_t c_offset = 0;
};

/// grad W_rec = sum_t delta_t h_{t-1}^T, grad W_in = sum_t delta_t x_t^T, grad W_out =
/// sum_t grad_y_t h_t^T for batches of B trials (row-major (N,N), (N,I), (O,N) results).
std::array<GemmDesc, 3> weight_grad_gemms(const ParamLayout& L, int T, int B);

/// Offset (floats) of operand `o` inside its slot buffer for batches of B trials.
std::size_t operand_offset(GemmOperand o, const ParamLayout& L, int B);

}  // namespace eirnn::cuda
