// RAII owners of CUDA streams, events and the cuBLAS handle (unique_ptr with deleters), and the
// device's properties the planner needs.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

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

using Stream = std::unique_ptr<CUstream_st, StreamDeleter>;
using Event = std::unique_ptr<CUevent_st, EventDeleter>;
using Cublas = std::unique_ptr<cublasContext, CublasDeleter>;

/// A non-blocking stream.
Stream make_stream();
/// An event; timing = false makes a lighter one for ordering only.
Event make_event(bool timing = false);
/// A cuBLAS handle bound to stream s, FP32 math without tensor-core shortcuts.
Cublas make_cublas(cudaStream_t s);

/// Limits of the current device for the planner.
DeviceLimits device_limits();
/// "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.1 GiB)".
std::string device_description();
/// Milliseconds between two recorded events.
float elapsed_ms(cudaEvent_t a, cudaEvent_t b);

}  // namespace eirnn::cuda
