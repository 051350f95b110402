// The weight gradients of the recurrent layer as cuBLAS strided-batched SGEMMs over all launched
// networks (plan.hpp weight_grad_gemms gives the shapes): grad W_rec, grad W_in, grad W_out.
#pragma once
#include <cublas_v2.h>

#include "host/core/model.hpp"

namespace eirnn::cuda {

/// Operands of slot 0; slot a's are at + a * stride floats.
struct GemmOperands {
    const float* h = nullptr;       // (T+1,B,N) states
    const float* delta = nullptr;   // (T,B,N) d loss / d a_t
    const float* x = nullptr;       // (T,B,I) inputs
    const float* grad_y = nullptr;  // (T,B,O) d loss / d y
    long long stride = 0;
};

/// Writes the three weight gradients of `count` slots into grads (count, L.total) at the tensors'
/// offsets, on the handle's stream. FP32 (no TF32).
void weight_grads(cublasHandle_t handle, const ParamLayout& L, int T, int B, int count,
                  const GemmOperands& ops, float* grads);

}  // namespace eirnn::cuda
