// The batched eigenvalue kernel: one thread block per matrix runs kernels/eig_hqr.hpp (balance,
// Hessenberg reduction, Francis double-shift QR) with the matrix in shared memory when it fits and
// in place in global memory otherwise.
#include "host/cuda/error.hpp"
#include "kernels/cuda/eig.cuh"
#include "kernels/cuda/launch.cuh"

namespace eirnn::cuda {
namespace {

/// A thread block as a team of kernels/eig_hqr.hpp. red: kRedDoubles of shared scratch.
struct BlockTeam {
    static constexpr int kLanes = 1;  // a thread's rows or columns at a time: one
    double* red;

    __device__ int rank() const { return static_cast<int>(threadIdx.x); }
    __device__ int size() const { return static_cast<int>(blockDim.x); }
    __device__ bool leader() const { return threadIdx.x == 0; }
    __device__ void sync() const { __syncthreads(); }
    __device__ void sync_warp0() const {
        if (threadIdx.x < 32) __syncwarp();
    }

    /// Sums s0, s1 and maxima m0, m1 over the block; every thread gets the same values (the warp
    /// partials are combined in one fixed order by every thread).
    __device__ void all_reduce(eig::Red4& r) const {
        constexpr unsigned full = 0xffffffffu;
        for (int o = 16; o > 0; o >>= 1) {
            r.s0 += __shfl_xor_sync(full, r.s0, o);
            r.s1 += __shfl_xor_sync(full, r.s1, o);
            r.m0 = fmax(r.m0, __shfl_xor_sync(full, r.m0, o));
            r.m1 = fmax(r.m1, __shfl_xor_sync(full, r.m1, o));
        }
        const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
        if (lane == 0) eig::store(r, red + 4 * warp);
        __syncthreads();
        eig::Red4 t = eig::combine(red, warps);
        __syncthreads();  // the scratch is free again
        r = t;
    }
};

__global__ void __launch_bounds__(eig::kMaxThreads)
    eig_batched_kernel(double* w, int N, int ld, bool onchip, double* wr, double* wi, int* info,
                       int itmax_factor) {
    EIRNN_DYNAMIC_SHARED(double, smem);
    const std::size_t k = blockIdx.x;
    const std::size_t nn = std::size_t(N) * N;
    BlockTeam team{smem};
    double* src = w + k * nn;
    double* a = src;
    if (onchip) {
        a = smem + eig::kRedDoubles;
        for (int idx = threadIdx.x; idx < N * N; idx += blockDim.x)
            a[(idx / N) * ld + idx % N] = src[idx];
        __syncthreads();
    }
    int r = eig::eigenvalues(team, eig::Mat{a, ld}, N, wr + k * N, wi + k * N, itmax_factor);
    if (threadIdx.x == 0) info[k] = r;
}

}  // namespace

void launch_eig_batched(const eig::Shape& shape, double* d_w, int K, double* d_wr, double* d_wi,
                        int* d_info, int itmax_factor, cudaStream_t s) {
    if (K <= 0) return;
    if (shape.smem_bytes > 48 * 1024)
        EIRNN_CHECK_CUDA(cudaFuncSetAttribute(eig_batched_kernel,
                                              cudaFuncAttributeMaxDynamicSharedMemorySize,
                                              static_cast<int>(shape.smem_bytes)));
    launch_kernel(eig_batched_kernel, dim3(static_cast<unsigned>(K)),
                  dim3(static_cast<unsigned>(shape.threads)), shape.smem_bytes, s, d_w, shape.N,
                  shape.ld, shape.onchip, d_wr, d_wi, d_info, itmax_factor);
    EIRNN_CHECK_CUDA(cudaGetLastError());
}

}  // namespace eirnn::cuda
