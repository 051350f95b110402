// How kernels/cuda launches kernels and declares shared memory: one spelling that nvcc and the
// emulated device of the tests (tests/cuda_emu, which defines these macros first) both accept.
// A launch goes through cudaLaunchKernelEx (no <<<>>>); the launcher still checks
// cudaGetLastError() afterwards, as every launcher does.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

#include "host/cuda/error.hpp"

#ifndef EIRNN_DYNAMIC_SHARED
/// The block's dynamic shared memory as an array of T named `name`.
#define EIRNN_DYNAMIC_SHARED(T, name) extern __shared__ T name[]
/// A static shared array of n T named `name`.
#define EIRNN_STATIC_SHARED(T, name, n) __shared__ T name[n]
#endif

namespace eirnn::cuda {

/// kernel<<<grid, block, smem, stream>>>(args...), checked.
template <class... Params, class... Args>
void launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t smem,
                   cudaStream_t stream, Args&&... args) {
    cudaLaunchConfig_t cfg{};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = stream;
    EIRNN_CHECK_CUDA(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...));
}

}  // namespace eirnn::cuda
