// The fixed-point search's L-BFGS phase on the GPU (kernels/cuda/dynamics.cu): every initial state
// of every problem at once, one warp per state; the rest of the search (clustering, Newton
// refinement, de-duplication, Jacobians) stays on the host, the spectra go to the EigSolver given
// to find_fixed_points (the GPU's with --backend cuda). Host code only.
#pragma once
#include <memory>

#include "host/analysis/dynamics.hpp"

namespace eirnn::cuda {

struct DynamicsGpuOptions {
    // Keep W in global memory even when it fits on chip (tests, benchmarks).
    bool force_global = false;
    // Initial states (warps) per block, 1..16; 0: 16, fewer when W would not fit on chip.
    int warps = 0;
};

/// The GPU search behind DynamicsSearch (name "cuda"); needs a usable device when descend() runs.
std::unique_ptr<DynamicsSearch> make_cuda_dynamics_search(const DynamicsGpuOptions& opt = {});

}  // namespace eirnn::cuda
