// Launchers of the CUDA twins of kernels/cpu/rnn.hpp: the fused recurrent forward and backward
// (BPTT) over all T steps of many networks in one launch, the masked MSE and the bias gradient.
// Argument structs and the per-CTA work are in rnn_cta.hpp; the kernels are in rnn.cu.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/rnn_cta.hpp"

namespace eirnn::cuda {

/// True when geometry g can be launched on the current device (a cluster of g.C CTAs with
/// g.smem_bytes() each fits a GPC).
bool rnn_launchable(const RnnGeometry& g);

/// Forward over T steps of a.net.count networks: h, th (unless null), y. One cluster of g.C CTAs
/// per batch slice; networks whose status is not 0 are skipped.
void rnn_forward(const RnnGeometry& g, const RnnForwardArgs& a, cudaStream_t s);

/// delta (T,B,N) and the bias partial sums of a.net.count networks (the rest of rnn_backward's
/// gradients are strided-batched GEMMs, host/cuda/plan.hpp weight_grad_gemms).
void rnn_backward(const RnnGeometry& g, const RnnBackwardArgs& a, cudaStream_t s);

/// Masked MSE of every launched network (kernels/cpu/rnn.hpp masked_mse), per slot:
/// loss = sum mask (y - target)^2 / (T B O) in double, grad_y = 2/(T B O) mask (y - target),
/// and grad b_out = sum over (t, b) of grad_y into the slot's gradient slice.
struct MseArgs {
    int count = 0;                         // slots
    const int* nets = nullptr;             // (count) network of each slot, or null
    const std::uint8_t* status = nullptr;  // (K) 0 = training, or null
    int T = 0, B = 0, O = 0;
    const float* y = nullptr;       // (count) outputs (T,B,O), slot stride `stride`
    const float* target = nullptr;  // (count) targets (T,B,O)
    const float* mask = nullptr;    // (count) loss weights (T,B,O)
    float* grad_y = nullptr;        // (count) d loss / d y (T,B,O)
    std::size_t stride = 0;
    double* loss = nullptr;  // (count) data loss
    float* grads = nullptr;  // (count, P) gradient slices
    std::size_t P = 0, b_out = 0;
};
void masked_mse(const MseArgs& a, cudaStream_t s);

/// grads[slot][b + i] = sum over 8-trial tiles of bias_part[slot][tile][i] (tiles ascending).
struct BiasGradArgs {
    int count = 0;
    const int* nets = nullptr;
    const std::uint8_t* status = nullptr;
    int N = 0, B = 0;
    const float* bias_part = nullptr;  // (count) (ceil(B/8), N), slot stride part_stride
    std::size_t part_stride = 0;
    float* grads = nullptr;  // (count, P)
    std::size_t P = 0, b = 0;
};
void bias_grad(const BiasGradArgs& a, cudaStream_t s);

}  // namespace eirnn::cuda
