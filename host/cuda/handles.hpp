// RAII owners of CUDA streams, events, the cuBLAS handle and the cuSOLVER dense handle and params
// (unique_ptr with deleters), and the device's properties the planner needs.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>

#include <memory>
#include <string>

#include "host/cuda/plan.hpp"

namespace eirnn::cuda {

struct StreamDeleter {
    void operator()(cudaStream_t s) const noexcept;
};
struct EventDeleter {
    void operator()(cudaEvent_t e) const noexcept;
};
struct CublasDeleter {
    void operator()(cublasHandle_t h) const noexcept;
};
struct CusolverDeleter {
    void operator()(cusolverDnHandle_t h) const noexcept;
};
struct CusolverParamsDeleter {
    void operator()(cusolverDnParams_t p) const noexcept;
};

using Stream = std::unique_ptr<CUstream_st, StreamDeleter>;
using Event = std::unique_ptr<CUevent_st, EventDeleter>;
using Cublas = std::unique_ptr<cublasContext, CublasDeleter>;
using Cusolver = std::unique_ptr<cusolverDnContext, CusolverDeleter>;
using CusolverParams = std::unique_ptr<cusolverDnParams, CusolverParamsDeleter>;

/// A non-blocking stream.
Stream make_stream();
/// An event; timing = false makes a lighter one for ordering only.
Event make_event(bool timing = false);
/// A cuBLAS handle bound to stream s, FP32 math without tensor-core shortcuts.
Cublas make_cublas(cudaStream_t s);
/// A cuSOLVER dense handle bound to stream s.
Cusolver make_cusolver(cudaStream_t s);
/// cuSOLVER's options of its 64-bit API (cusolverDnX*), at their defaults.
CusolverParams make_cusolver_params();

/// Limits of the current device for the planner.
DeviceLimits device_limits();
/// "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.1 GiB)".
std::string device_description();
/// Milliseconds between two recorded events.
float elapsed_ms(cudaEvent_t a, cudaEvent_t b);

}  // namespace eirnn::cuda
