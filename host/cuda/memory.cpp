// The only place that allocates device and pinned memory (see memory.hpp). Frees never throw: a
// failure there is reported by the next checked call.
#include "host/cuda/memory.hpp"

#include <string>

#include "host/cuda/error.hpp"

namespace eirnn::cuda::detail {

void* device_alloc(std::size_t bytes) {
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess) check(e, ("cudaMalloc(" + std::to_string(bytes) + " bytes)").c_str());
    return p;
}

void device_free(void* p) noexcept {
    if (p) cudaFree(p);
}

void* pool_alloc(std::size_t bytes, cudaStream_t s) {
    void* p = nullptr;
    cudaError_t e = cudaMallocAsync(&p, bytes, s);
    if (e != cudaSuccess)
        check(e, ("cudaMallocAsync(" + std::to_string(bytes) + " bytes)").c_str());
    return p;
}

void pool_free(void* p, cudaStream_t s) noexcept {
    if (p) cudaFreeAsync(p, s);
}

void* pinned_alloc(std::size_t bytes) {
    void* p = nullptr;
    cudaError_t e = cudaMallocHost(&p, bytes);
    if (e != cudaSuccess) check(e, ("cudaMallocHost(" + std::to_string(bytes) + " bytes)").c_str());
    return p;
}

void pinned_free(void* p) noexcept {
    if (p) cudaFreeHost(p);
}

void copy_async(void* dst, const void* src, std::size_t bytes, cudaStream_t s) {
    if (bytes) EIRNN_CHECK_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, s));
}

void zero_async(void* p, std::size_t bytes, cudaStream_t s) {
    if (bytes) EIRNN_CHECK_CUDA(cudaMemsetAsync(p, 0, bytes, s));
}

}  // namespace eirnn::cuda::detail
