// Launcher of the fused update (optimizer.cu), the CUDA twin of kernels/cpu/optimizer.hpp's
// adam_update + apply_constraints for every network of a group in one launch.
#pragma once
#include <cuda_runtime.h>

#include "kernels/cuda/optimizer_cta.hpp"

namespace eirnn::cuda {

/// Per network: non-finite loss or gradient norm marks it diverged (status 1) and changes
/// nothing; otherwise clip, Adam, constraints, count the update and add its loss to the epoch.
void adam_update(const OptimizerArgs& a, cudaStream_t s);

}  // namespace eirnn::cuda
