// Checked CUDA, cuBLAS and cuSOLVER calls: EIRNN_CHECK_CUDA(expr) and friends throw eirnn::GpuError
// naming the expression, file:line and the library's status text. Host code only.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>

#include <source_location>

#include "host/core/error.hpp"

namespace eirnn {

/// A failed call into the CUDA runtime or a CUDA library.
struct GpuError : Error {
    using Error::Error;
};

namespace cuda {

/// Status text of cuBLAS / cuSOLVER codes (cuSOLVER has no such function of its own).
const char* status_text(cublasStatus_t s);
const char* status_text(cusolverStatus_t s);

/// Throws GpuError unless s is success. `expr` is the checked expression.
void check(cudaError_t s, const char* expr,
           std::source_location where = std::source_location::current());
void check(cublasStatus_t s, const char* expr,
           std::source_location where = std::source_location::current());
void check(cusolverStatus_t s, const char* expr,
           std::source_location where = std::source_location::current());

}  // namespace cuda
}  // namespace eirnn

#define EIRNN_CHECK_CUDA(expr) ::eirnn::cuda::check(static_cast<cudaError_t>(expr), #expr)
#define EIRNN_CHECK_CUBLAS(expr) ::eirnn::cuda::check(static_cast<cublasStatus_t>(expr), #expr)
#define EIRNN_CHECK_CUSOLVER(expr) ::eirnn::cuda::check(static_cast<cusolverStatus_t>(expr), #expr)
