// Eigenvalues on the GPU (fp64, eigenvalues only): the batched Hessenberg + Francis QR kernel
// (kernels/cuda/eig.cu, the algorithm of kernels/eig_hqr.hpp, one thread block per matrix, all K
// matrices of a call in one launch per memory-sized chunk) and cuSOLVER's cusolverDnXgeev (one
// matrix per call, several host threads with a stream, handle and pinned workspace each), the
// baseline and the fallback. Host code only.
#pragma once
#include <memory>

#include "host/analysis/eig_solver.hpp"

namespace eirnn::cuda {

/// Largest N that EigMethod::Auto sends to the batched kernel (Xgeev beyond). The kernel itself
/// takes any N: on chip (shared memory) up to eig_onchip_max_n(), in global memory beyond.
constexpr int kEigBatchedMaxN = 512;

struct EigBatchedOptions {
    int itmax_factor = 30;  // QR iteration cap per deflation: itmax_factor * max(10, n)
    // Keep the working matrix in global memory even when it fits on chip (tests, benchmarks).
    bool force_global = false;
    // Threads per block (a multiple of 32, at most 256); 0: N rounded up to a warp, at most 256.
    int threads = 0;
};

/// Largest N whose working matrix fits in one block's shared memory on this device.
int eig_onchip_max_n();

/// The batched kernel on K row-major N x N matrices (host memory): wr, wi (K,N) unsorted, in the
/// kernel's order; info (K): 0 converged, i > 0 the QR iteration did not converge and eigenvalues
/// 0..i-1 are missing (LAPACK's info, 1-based), -1 non-finite entries (wr = wi = NaN).
void eig_batched_raw(const double* w, int K, int N, double* wr, double* wi, int* info,
                     const EigBatchedOptions& opt = {});

/// The batched kernel behind EigSolver; matrices with info > 0 are recomputed by Xgeev.
std::unique_ptr<EigSolver> make_batched_eig_solver(const EigBatchedOptions& opt = {});

/// cusolverDnXgeev, one matrix per call, on `streams` host threads (0 = 4); a matrix whose Xgeev
/// reports info != 0 is recomputed with LAPACK on the host.
std::unique_ptr<EigSolver> make_xgeev_eig_solver(int streams = 0);

/// Batched kernel for N <= kEigBatchedMaxN, Xgeev beyond.
std::unique_ptr<EigSolver> make_auto_eig_solver();

}  // namespace eirnn::cuda
