// Streams, events, cuBLAS and cuSOLVER handles and device properties (see handles.hpp).
#include "host/cuda/handles.hpp"

#include <cstdio>

#include "host/cuda/error.hpp"

namespace eirnn::cuda {

void StreamDeleter::operator()(cudaStream_t s) const noexcept {
    cudaStreamDestroy(s);
}
void EventDeleter::operator()(cudaEvent_t e) const noexcept {
    cudaEventDestroy(e);
}
void CublasDeleter::operator()(cublasHandle_t h) const noexcept {
    cublasDestroy(h);
}
void CusolverDeleter::operator()(cusolverDnHandle_t h) const noexcept {
    cusolverDnDestroy(h);
}
void CusolverParamsDeleter::operator()(cusolverDnParams_t p) const noexcept {
    cusolverDnDestroyParams(p);
}

Stream make_stream() {
    cudaStream_t s = nullptr;
    EIRNN_CHECK_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    return Stream(s);
}

Event make_event(bool timing) {
    cudaEvent_t e = nullptr;
    EIRNN_CHECK_CUDA(
        cudaEventCreateWithFlags(&e, timing ? cudaEventDefault : cudaEventDisableTiming));
    return Event(e);
}

Cublas make_cublas(cudaStream_t s) {
    cublasHandle_t h = nullptr;
    EIRNN_CHECK_CUBLAS(cublasCreate(&h));
    Cublas owner(h);
    EIRNN_CHECK_CUBLAS(cublasSetStream(h, s));
    EIRNN_CHECK_CUBLAS(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH));
    return owner;
}

Cusolver make_cusolver(cudaStream_t s) {
    cusolverDnHandle_t h = nullptr;
    EIRNN_CHECK_CUSOLVER(cusolverDnCreate(&h));
    Cusolver owner(h);
    EIRNN_CHECK_CUSOLVER(cusolverDnSetStream(h, s));
    return owner;
}

CusolverParams make_cusolver_params() {
    cusolverDnParams_t p = nullptr;
    EIRNN_CHECK_CUSOLVER(cusolverDnCreateParams(&p));
    return CusolverParams(p);
}

DeviceLimits device_limits() {
    int dev = 0, sms = 0, smem = 0, cluster = 0;
    EIRNN_CHECK_CUDA(cudaGetDevice(&dev));
    EIRNN_CHECK_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    EIRNN_CHECK_CUDA(cudaDeviceGetAttribute(&smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    EIRNN_CHECK_CUDA(cudaDeviceGetAttribute(&cluster, cudaDevAttrClusterLaunch, dev));
    DeviceLimits lim;
    lim.sms = sms;
    lim.smem_per_block = static_cast<std::size_t>(smem);
    lim.max_cluster = cluster ? kMaxCluster : 1;
    return lim;
}

std::string device_description() {
    int dev = 0;
    EIRNN_CHECK_CUDA(cudaGetDevice(&dev));
    cudaDeviceProp p{};
    EIRNN_CHECK_CUDA(cudaGetDeviceProperties(&p, dev));
    char buf[96];
    std::snprintf(buf, sizeof buf, " (sm_%d%d, %d SMs, %.1f GiB)", p.major, p.minor,
                  p.multiProcessorCount, static_cast<double>(p.totalGlobalMem) / (1 << 30));
    return std::string(p.name) + buf;
}

float elapsed_ms(cudaEvent_t a, cudaEvent_t b) {
    float ms = 0;
    EIRNN_CHECK_CUDA(cudaEventElapsedTime(&ms, a, b));
    return ms;
}

}  // namespace eirnn::cuda
