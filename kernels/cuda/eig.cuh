// The batched eigenvalue kernel (kernels/eig_hqr.hpp on one thread block per matrix).
#pragma once
#include <cuda_runtime.h>

#include "kernels/eig_hqr.hpp"

namespace eirnn::cuda {

/// Eigenvalues of K row-major N x N matrices d_w (device, (K,N,N); overwritten when the shape is
/// off chip) into d_wr, d_wi (K,N) and d_info (K), one thread block per matrix, on stream s.
void launch_eig_batched(const eig::Shape& shape, double* d_w, int K, double* d_wr, double* d_wi,
                        int* d_info, int itmax_factor, cudaStream_t s);

}  // namespace eirnn::cuda
