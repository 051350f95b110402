// The CPU twin of the batched GPU eigensolver: the same algorithm (kernels/eig_hqr.hpp) run by
// one CPU thread per matrix. It proves the kernel's algorithm on the CPU and is selectable as
// `--backend cpu --eig-method batched`.
#pragma once

namespace eirnn {

/// Eigenvalues of one row-major N x N matrix w (not modified) into wr, wi (N, unsorted, in the
/// algorithm's order). Returns the kernel's info: 0 converged, -1 non-finite entries (NaN output),
/// i > 0 the QR iteration did not converge within itmax_factor * max(10, N) iterations per
/// deflation (eigenvalues 0..i-1 missing).
int eig_twin_raw(const double* w, int N, double* wr, double* wi, int itmax_factor = 30);

}  // namespace eirnn
