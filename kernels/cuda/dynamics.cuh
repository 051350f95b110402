// The GPU's L-BFGS of the fixed-point search (host/analysis/dynamics.hpp,
// kernels/dynamics_lbfgs.hpp): one warp per initial state, the states of one problem (network x
// input condition) in the warps of a block, W of that problem in the block's shared memory when it
// fits (global memory otherwise).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

#include "kernels/hd.hpp"

namespace eirnn::cuda {

/// Threads per block of the search kernel at most (16 warps: 16 initial states).
constexpr int kDynamicsMaxThreads = 512;

/// One launch over problems of equal N. Device pointers.
struct DynamicsArgs {
    const double* w = nullptr;          // (P,N,N) row-major, [i][j] = j -> i
    const double* c = nullptr;          // (P,N)
    const double* alpha = nullptr;      // (P)
    const int* block_prob = nullptr;    // (blocks) problem of each block
    const int* block_state = nullptr;   // (blocks) its first state (global index)
    const int* block_states = nullptr;  // (blocks) its states (<= warps per block)
    double* x = nullptr;                // (S,N) initial states in, endpoints out
    double* q = nullptr;                // (S) q at the endpoints
    double* scratch = nullptr;          // (S, dynamics_scratch_doubles(N, H))
    int N = 0;
    int history = 8;
    int iterations = 400;
    double q_done = 0;      // candidate_q * lbfgs::kDoneFactor
    bool w_onchip = false;  // W (and c) copied to shared memory, leading dimension ld
    int ld = 0;
};

/// Scratch per initial state: g, d, trial x, trial g, G (N each), S and Y (history x N each), and
/// per lane rho and the two-loop coefficients (2 history x 32).
EIRNN_HD inline std::size_t dynamics_scratch_doubles(int N, int history) {
    return (5 + 2 * static_cast<std::size_t>(history)) * N +
           2 * static_cast<std::size_t>(history) * 32;
}

/// Dynamic shared memory of a launch: per warp two broadcast vectors (N) and two reduction slots
/// (32 each), and W (N x ld) and c (N) when on chip.
std::size_t dynamics_smem_bytes(int N, int warps, bool w_onchip, int ld);

/// Leading dimension of W on chip: N rounded up to an odd number (rows read by lanes without bank
/// conflicts).
int dynamics_ld(int N);

/// The search on `blocks` blocks of 32 * warps threads, on stream s.
void launch_dynamics_lbfgs(const DynamicsArgs& a, int blocks, int warps, cudaStream_t s);

}  // namespace eirnn::cuda
