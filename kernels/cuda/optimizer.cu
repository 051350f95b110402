// Fused update of every network of a group (twin of kernels/cpu/optimizer.cpp + the divergence and
// clipping logic of host/train/cpu_backend.cpp).
//
// Math (docs/MODEL.md §5): per network, the five gradient tensors' sums of squares (double) give
// the clip factors (global norm or per tensor, Keras clipnorm); a non-finite loss or norm marks the
// network diverged and leaves it untouched. Otherwise Keras-2 Adam with the network's lr_t
// (computed on the host in double), then Dale projection / mask of W_rec and W_in >= 0. Shapes:
// params, m, v (K, P) by network; grads (count, P) by launch slot (ParamLayout slices). Mapping:
// one CTA of 256 threads per launched network; two passes over its P parameters (norms, then
// update), the second mostly from L1/L2. Deterministic: fixed-order block reductions.
#include <cmath>

#include "host/cuda/error.hpp"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/optimizer.cuh"

namespace eirnn::cuda {

namespace {

constexpr int kThreads = 256;

/// Sums of v over the CTA in a fixed order; the result in every thread.
__device__ double block_sum(double v, double* scratch) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    double s = 0.0;
    for (int w = 0; w < kThreads / 32; ++w) s += scratch[w];
    return s;
}

__global__ void __launch_bounds__(kThreads) adam_update_kernel(const OptimizerArgs a) {
    EIRNN_STATIC_SHARED(double, scratch, kThreads / 32);
    EIRNN_STATIC_SHARED(int, diverged, 1);
    const int slot = static_cast<int>(blockIdx.x);
    const int net = a.nets ? a.nets[slot] : slot;
    if (a.status[net] != 0) return;
    float* p = a.params + static_cast<std::size_t>(net) * a.P;
    float* m = a.m + static_cast<std::size_t>(net) * a.P;
    float* v = a.v + static_cast<std::size_t>(net) * a.P;
    const float* g = a.grads + static_cast<std::size_t>(slot) * a.P;
    const float* mask = a.mask ? a.mask + static_cast<std::size_t>(net) * a.N * a.N : nullptr;
    double sq[5];
    for (int t = 0; t < 5; ++t) {
        double s = 0.0;
        for (std::size_t e = threadIdx.x; e < a.size[t]; e += kThreads) {
            const float gr = final_grad(a, p, g, mask, t, e);
            s += static_cast<double>(gr) * gr;
        }
        sq[t] = block_sum(s, scratch);
    }
    const double loss = a.loss[slot];
    if (threadIdx.x == 0) {
        const double total = sq[0] + sq[1] + sq[2] + sq[3] + sq[4];
        diverged[0] = !isfinite(loss) || !isfinite(total);
        if (diverged[0]) a.status[net] = 1;
    }
    __syncthreads();
    if (diverged[0]) return;
    const AdamStep step{a.lr[static_cast<std::size_t>(slot) * a.lr_stride], a.beta1, a.beta2,
                        a.eps};
    for (int t = 0; t < 5; ++t) {
        const float scale = clip_scale(a, sq, t);
        for (std::size_t e = threadIdx.x; e < a.size[t]; e += kThreads)
            update_element(a, p, m, v, mask, t, e, final_grad(a, p, g, mask, t, e) * scale, step);
    }
    if (threadIdx.x == 0) {
        a.updates[net] += 1;
        a.epoch_sum[net] += static_cast<double>(static_cast<float>(loss)) * a.batch;
    }
}

}  // namespace

void adam_update(const OptimizerArgs& a, cudaStream_t s) {
    if (a.count == 0) return;
    if (!a.params || !a.m || !a.v || !a.grads || !a.loss || !a.lr || !a.status || !a.updates ||
        !a.epoch_sum || a.N < 1)
        throw Error("adam_update: missing buffers");
    launch_kernel(adam_update_kernel, dim3(static_cast<unsigned>(a.count)), dim3(kThreads), 0, s,
                  a);
    EIRNN_CHECK_CUDA(cudaGetLastError());
}

}  // namespace eirnn::cuda
