// Fused recurrent kernels of the CUDA backend (twins of kernels/cpu/rnn.cpp).
//
// Math (docs/MODEL.md §1, kernels/rnn_args.hpp): forward a_t = W h_t + W_in x_t + b,
// h_{t+1} = (1-alpha) h_t + alpha tanh(a_t) + noise_t, y_t = W_out h_{t+1} + b_out; backward
// g_t = (1-alpha) g_{t+1} + W^T delta_{t+1} + W_out^T grad_y_t (+ rate term),
// delta_t = alpha g_t (1 - tanh(a_t)^2). Shapes per network: x (T,B,I), h (T+1,B,N), th and
// delta (T,B,N), y and grad_y (T,B,O), time-major like the CPU kernels.
//
// Mapping (rnn_cta.hpp has the details and the per-thread code): one launch covers every network
// and all T steps. Grid x = (slot, batch slice, rank); a cluster of C CTAs shares one batch slice
// of one network, each CTA holding R rows of the effective W (mask and reparam applied on load)
// in shared memory for the whole sequence; 256 threads at most, each a 4-unit x 8-trial register
// tile of the per-step product. Every step ends with one barrier (cluster barrier when C > 1): the
// states are double-buffered and each CTA pushes its rows into its peers' buffers through
// distributed shared memory. Off chip (N too large for a cluster's shared memory) the same code
// runs with M and the states in global scratch (L2-resident).
// References: persistent RNNs (Diamos et al. 2016), CUDA thread-block clusters (Hopper).
#include <cooperative_groups.h>

#include <string>

#include "host/cuda/error.hpp"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/rnn.cuh"

namespace cg = cooperative_groups;

namespace eirnn::cuda {

namespace {

constexpr int kReduceThreads = 256;

/// Address of p in the shared memory of cluster rank r.
struct DsmemMap {
    EIRNN_HD float* operator()(float* p, int r) const {
#if defined(__CUDA_ARCH__)
        return cg::this_cluster().map_shared_rank(p, r);
#else
        (void)r;
        return p;
#endif
    }
};

/// The step barrier: the whole cluster (release/acquire at cluster scope covers the pushes into
/// peers' shared memory and the shared global state off chip), or the CTA.
__device__ __forceinline__ void step_barrier(int C) {
    if (C > 1)
        cg::this_cluster().sync();
    else
        __syncthreads();
}

template <bool kOnChip, bool kPlain>
__global__ void __launch_bounds__(kMaxThreads)
    rnn_forward_kernel(const RnnForwardArgs a, const RnnGeometry geometry) {
    EIRNN_DYNAMIC_SHARED(float4, smem4);
    RnnGeometry g = geometry;
    g.onchip = kOnChip;  // a compile-time constant from here on: shared-memory loads on chip
    const CtaPlace p = cta_place(g, a.net, blockIdx.x);
    if (!p.active) return;  // the same for every CTA of the cluster
    const CtaMemory mem = cta_memory(g, reinterpret_cast<float*>(smem4), a, p);
    const int tid = static_cast<int>(threadIdx.x);
    fwd_load(g, a, p, mem, tid);
    step_barrier(g.C);  // also: every peer has started before the first push
    for (int t = 0; t < g.T; ++t) {
        const float xv = fwd_stage_fetch(g, a, p, t + 1, tid);
        fwd_step<kPlain>(g, a, p, mem, tid, t, DsmemMap{});
        if (t > 0) fwd_readout(g, a, p, mem, tid, t - 1);
        fwd_stage_put(g, a, p, mem, t + 1, tid, xv);
        step_barrier(g.C);
    }
    fwd_readout(g, a, p, mem, tid, g.T - 1);
}

template <bool kOnChip, bool kLeak>
__global__ void __launch_bounds__(kMaxThreads)
    rnn_backward_kernel(const RnnBackwardArgs a, const RnnGeometry geometry) {
    EIRNN_DYNAMIC_SHARED(float4, smem4);
    RnnGeometry g = geometry;
    g.onchip = kOnChip;
    const CtaPlace p = cta_place(g, a.net, blockIdx.x);
    if (!p.active) return;
    const CtaMemory mem = cta_memory(g, reinterpret_cast<float*>(smem4), a, p);
    const int tid = static_cast<int>(threadIdx.x);
    bwd_load(g, a, p, mem, tid);
    step_barrier(g.C);
    float carry[kTileRows][kTileTrials] = {};
    float bsum[kTileRows] = {};
    for (int t = g.T - 1; t >= 0; --t) {
        float tv[kTileRows][kTileTrials];
        bwd_fetch_th(g, a, p, tid, t, tv);
        const float gv = bwd_stage_fetch(g, a, p, t - 1, tid);
        bwd_step<kLeak>(g, a, p, mem, tid, t, tv, carry, bsum, DsmemMap{});
        bwd_stage_put(g, a, p, mem, t - 1, tid, gv);
        step_barrier(g.C);
    }
    bwd_bias(g, a, p, tid, bsum);
}

/// Sum of v over the CTA (blockDim.x a multiple of 32, at most 1024); the result in every thread.
template <class T>
__device__ T block_sum(T v, T* scratch) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
    const int warps = static_cast<int>(blockDim.x) / 32;
    __syncthreads();  // scratch may still be read by a previous call
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    T s = T(0);
    for (int w = 0; w < warps; ++w) s += scratch[w];  // fixed order: deterministic
    return s;
}

__device__ __forceinline__ bool slot_active(const int* nets, const std::uint8_t* status, int slot) {
    const int net = nets ? nets[slot] : slot;
    return !status || status[net] == 0;
}

/// One CTA per slot: loss (double), grad_y and grad b_out.
__global__ void __launch_bounds__(kReduceThreads) masked_mse_kernel(const MseArgs a) {
    EIRNN_STATIC_SHARED(double, dscratch, kReduceThreads / 32);
    EIRNN_STATIC_SHARED(float, fscratch, kReduceThreads / 32);
    const int slot = static_cast<int>(blockIdx.x);
    if (!slot_active(a.nets, a.status, slot)) return;
    const std::size_t off = static_cast<std::size_t>(slot) * a.stride;
    const long n = static_cast<long>(a.T) * a.B * a.O;
    const double scale = 1.0 / static_cast<double>(n);
    const float c = static_cast<float>(2.0 * scale);
    double sum = 0.0;
    for (long r = threadIdx.x; r < n; r += blockDim.x) {
        const float e = a.y[off + r] - a.target[off + r];
        const float mk = a.mask[off + r];
        sum += static_cast<double>(mk * e * e);
        a.grad_y[off + r] = c * mk * e;
    }
    sum = block_sum(sum, dscratch);
    if (threadIdx.x == 0) a.loss[slot] = sum * scale;
    // grad b_out: this thread's own grad_y writes are read back, then reduced per output.
    const long rows = static_cast<long>(a.T) * a.B;
    for (int o = 0; o < a.O; ++o) {
        float s = 0.0f;
        for (long r = threadIdx.x; r < rows; r += blockDim.x) {
            const long q = r * a.O + o;
            const float e = a.y[off + q] - a.target[off + q];
            s += c * a.mask[off + q] * e;
        }
        s = block_sum(s, fscratch);
        if (threadIdx.x == 0) a.grads[static_cast<std::size_t>(slot) * a.P + a.b_out + o] = s;
    }
}

__global__ void bias_grad_kernel(const BiasGradArgs a) {
    const int slot = static_cast<int>(blockIdx.x);
    const int i = static_cast<int>(blockIdx.y * blockDim.x + threadIdx.x);
    if (i >= a.N || !slot_active(a.nets, a.status, slot)) return;
    const float* part = a.bias_part + static_cast<std::size_t>(slot) * a.part_stride;
    const int tiles = ceil_div(a.B, kTileTrials);
    float s = 0.0f;
    for (int bt = 0; bt < tiles; ++bt) s += part[static_cast<std::size_t>(bt) * a.N + i];
    a.grads[static_cast<std::size_t>(slot) * a.P + a.b + i] = s;
}

void validate(const RnnGeometry& g, int count) {
    if (g.N < 1 || g.T < 1 || g.B < 1 || g.I < 0 || g.O < 1 || g.C < 1 || g.C > kMaxCluster ||
        g.tiles() > kMaxThreads || g.threads % 32 != 0 ||
        static_cast<long>(count) * g.C * g.S > 0x7fffffffL)
        throw Error("recurrent kernel: invalid geometry (N " + std::to_string(g.N) + ", B " +
                    std::to_string(g.B) + ", C " + std::to_string(g.C) + ", S " +
                    std::to_string(g.S) + ", tiles " + std::to_string(g.tiles()) + ")");
}

/// The kernel instance for a geometry, with its dynamic shared memory limit raised once.
template <class Args>
using RnnKernel = void (*)(Args, RnnGeometry);

template <class Args>
void raise_smem_limit(RnnKernel<Args> k, std::size_t bytes) {
    int dev = 0, optin = 0;
    EIRNN_CHECK_CUDA(cudaGetDevice(&dev));
    EIRNN_CHECK_CUDA(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    if (bytes > static_cast<std::size_t>(optin))
        throw Error("recurrent kernel: " + std::to_string(bytes) +
                    " bytes of shared memory per block, " + "the device allows " +
                    std::to_string(optin));
    EIRNN_CHECK_CUDA(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, optin));
}

cudaLaunchConfig_t launch_config(const RnnGeometry& g, unsigned blocks, cudaStream_t s,
                                 cudaLaunchAttribute* attr) {
    cudaLaunchConfig_t cfg{};
    cfg.gridDim = dim3(blocks);
    cfg.blockDim = dim3(static_cast<unsigned>(g.threads));
    cfg.dynamicSmemBytes = g.smem_bytes();
    cfg.stream = s;
    if (g.C > 1) {
        attr->id = cudaLaunchAttributeClusterDimension;
        attr->val.clusterDim.x = static_cast<unsigned>(g.C);
        attr->val.clusterDim.y = 1;
        attr->val.clusterDim.z = 1;
        cfg.attrs = attr;
        cfg.numAttrs = 1;
    }
    return cfg;
}

template <class Args>
void launch(RnnKernel<Args> k, const RnnGeometry& g, const Args& a, cudaStream_t s) {
    if (a.net.count == 0) return;
    validate(g, a.net.count);
    raise_smem_limit<Args>(k, g.smem_bytes());
    cudaLaunchAttribute attr{};
    const auto blocks = static_cast<unsigned>(static_cast<long>(a.net.count) * g.C * g.S);
    cudaLaunchConfig_t cfg = launch_config(g, blocks, s, &attr);
    EIRNN_CHECK_CUDA(cudaLaunchKernelEx(&cfg, k, a, g));
    EIRNN_CHECK_CUDA(cudaGetLastError());
}

/// The instance for these arguments: on chip or not; the plain forward (alpha 1, no noise, th not
/// stored) and the backward without leak (alpha 1) carry less state.
RnnKernel<RnnForwardArgs> forward_kernel(const RnnGeometry& g, const RnnForwardArgs& a) {
    const bool plain = a.alpha == 1.0f && a.noise_scale == 0.0f && !a.th;
    if (g.onchip) return plain ? rnn_forward_kernel<true, true> : rnn_forward_kernel<true, false>;
    return plain ? rnn_forward_kernel<false, true> : rnn_forward_kernel<false, false>;
}

RnnKernel<RnnBackwardArgs> backward_kernel(const RnnGeometry& g, const RnnBackwardArgs& a) {
    const bool leak = a.alpha != 1.0f;
    if (g.onchip) return leak ? rnn_backward_kernel<true, true> : rnn_backward_kernel<true, false>;
    return leak ? rnn_backward_kernel<false, true> : rnn_backward_kernel<false, false>;
}

}  // namespace

bool rnn_launchable(const RnnGeometry& g) {
    validate(g, 1);
    int dev = 0, optin = 0;
    EIRNN_CHECK_CUDA(cudaGetDevice(&dev));
    EIRNN_CHECK_CUDA(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    if (g.smem_bytes() > static_cast<std::size_t>(optin)) return false;
    if (g.C == 1) return true;
    // Every instance of both kernels must fit: the largest register footprint decides.
    RnnForwardArgs fa;
    RnnBackwardArgs ba;
    for (int variant = 0; variant < 4; ++variant) {
        cudaLaunchAttribute attr{};
        cudaLaunchConfig_t cfg = launch_config(g, static_cast<unsigned>(g.C), nullptr, &attr);
        int clusters = 0;
        if (variant < 2) {
            fa.alpha = variant == 0 ? 1.0f : 0.5f;
            auto k = forward_kernel(g, fa);
            raise_smem_limit<RnnForwardArgs>(k, g.smem_bytes());
            if (cudaOccupancyMaxActiveClusters(&clusters, k, &cfg) != cudaSuccess) {
                cudaGetLastError();  // a geometry the device refuses: not launchable
                return false;
            }
        } else {
            ba.alpha = variant == 2 ? 1.0f : 0.5f;
            auto k = backward_kernel(g, ba);
            raise_smem_limit<RnnBackwardArgs>(k, g.smem_bytes());
            if (cudaOccupancyMaxActiveClusters(&clusters, k, &cfg) != cudaSuccess) {
                cudaGetLastError();  // a geometry the device refuses: not launchable
                return false;
            }
        }
        if (clusters < 1) return false;
    }
    return true;
}

void rnn_forward(const RnnGeometry& g, const RnnForwardArgs& a, cudaStream_t s) {
    launch<RnnForwardArgs>(forward_kernel(g, a), g, a, s);
}

void rnn_backward(const RnnGeometry& g, const RnnBackwardArgs& a, cudaStream_t s) {
    launch<RnnBackwardArgs>(backward_kernel(g, a), g, a, s);
}

void masked_mse(const MseArgs& a, cudaStream_t s) {
    if (a.count == 0) return;
    if (a.T < 1 || a.B < 1 || a.O < 1) throw Error("masked_mse: empty batch");
    launch_kernel(masked_mse_kernel, dim3(static_cast<unsigned>(a.count)), dim3(kReduceThreads), 0,
                  s, a);
    EIRNN_CHECK_CUDA(cudaGetLastError());
}

void bias_grad(const BiasGradArgs& a, cudaStream_t s) {
    if (a.count == 0) return;
    constexpr int threads = 128;
    dim3 grid(static_cast<unsigned>(a.count), static_cast<unsigned>(ceil_div(a.N, threads)));
    launch_kernel(bias_grad_kernel, grid, dim3(threads), 0, s, a);
    EIRNN_CHECK_CUDA(cudaGetLastError());
}

}  // namespace eirnn::cuda
