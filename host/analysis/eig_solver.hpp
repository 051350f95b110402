// Eigenvalue solvers for many recurrent matrices at once, behind one interface so that the spectra
// of a results file (host/spectra_io) can come from LAPACK on the CPU, from the CPU twin of the
// batched GPU kernel, from the batched GPU kernel itself or from cuSOLVER's Xgeev. Every solver
// computes the same function: all N eigenvalues of each matrix, each row sorted as eigenvalues()
// sorts (host/analysis/spectra.hpp), NaN rows for matrices with non-finite entries.
#pragma once
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "host/analysis/spectra.hpp"
#include "host/core/config.hpp"

namespace eirnn {

/// How eigenvalues are computed. Auto: the batched kernel on a CUDA backend when N is within its
/// range (Xgeev beyond); on the CPU backend the CPU twin up to kCpuTwinMaxN units, LAPACK above.
enum class EigMethod { Auto, Lapack, Batched, Xgeev };

/// What the solvers write for a value they could not compute.
inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::optional<EigMethod> parse_eig_method(std::string_view s);  // "auto|lapack|batched|xgeev"
std::string_view name(EigMethod m);

/// Counters of one solver since it was made.
struct EigSolverStats {
    std::int64_t matrices = 0;   // matrices solved
    std::int64_t fallbacks = 0;  // matrices the primary method flagged and the fallback recomputed
};

class EigSolver {
public:
    virtual ~EigSolver() = default;
    /// "lapack", "batched-cpu", "batched-cuda", "xgeev", "auto-cuda" ...
    virtual std::string name() const = 0;
    /// Eigenvalues of K row-major N x N matrices w (K,N,N) into out (K,N), each row sorted as
    /// eigenvalues() sorts; rows of matrices with non-finite entries are NaN. Throws Error on a
    /// failure that is not one matrix's (a device error, out of memory).
    virtual void eigenvalues(const double* w, int K, int N, cplx* out) = 0;
    EigSolverStats stats() const { return stats_; }

protected:
    EigSolverStats stats_;
};

/// Recomputes the matrices of w (K,N,N) listed in `flagged` with `fallback`, all in one call, into
/// their rows of out (K,N): how the batched kernel and its twin redo the matrices they flag.
void recompute_flagged(EigSolver& fallback, const double* w, int N, const std::vector<int>& flagged,
                       cplx* out);

/// LAPACK dgeev over matrices on `threads` CPU threads (0 = all cores): the reference.
std::unique_ptr<EigSolver> make_lapack_eig_solver(int threads);

/// The CPU twin of the batched GPU kernel (kernels/eig_hqr.hpp, one matrix per thread) on
/// `threads` threads; matrices it flags as not converged are recomputed with LAPACK.
/// itmax_factor: the QR iteration cap per deflation is itmax_factor * max(10, n) (LAPACK: 30).
std::unique_ptr<EigSolver> make_twin_eig_solver(int threads, int itmax_factor = 30);

/// Up to this N the CPU twin (dgehd2 + dlahqr, one matrix per thread) beats dgeev's blocked and
/// multishift path on the CPU (2 cores, Intel Xeon with AVX-512, dgeev on OpenBLAS's SkylakeX
/// kernels, `bench/eig_cpu --method twin|lapack`, 3 alternated rounds: 1.5-1.7x at N = 112,
/// 1.3x at 144, 1.3-1.6x at 160, 1.2-1.7x at 176, 0.8-1.25x at 192 and 0.9-1.3x at 256).
constexpr int kCpuTwinMaxN = 176;

/// The CPU's Auto: the twin for N <= kCpuTwinMaxN, LAPACK above, chosen per call; its name() is
/// the method of the last call.
std::unique_ptr<EigSolver> make_cpu_auto_eig_solver(int threads);

/// The solver for a backend and a method: Cpu+Auto: make_cpu_auto_eig_solver; Cpu+Lapack: LAPACK;
/// Cpu+Batched: the CPU twin;
/// Cpu+Xgeev: InputError; Cuda+Auto: batched kernel for N within its range, Xgeev beyond;
/// Cuda+Batched / Cuda+Xgeev: that one; Cuda+Lapack: LAPACK on the host; Auto backend: Cuda when a
/// device is usable, else Cpu. Cuda without a usable device or build: InputError naming the option.
/// Defined in host/core/backend_select.cpp (it sees whether the build has CUDA).
std::unique_ptr<EigSolver> make_eig_solver(BackendKind backend, EigMethod method, int threads);

}  // namespace eirnn
