// The CPU twin of the batched GPU eigensolver (kernels/eig_hqr.hpp with a one-thread team),
// threads over matrices; non-converged matrices are recomputed with LAPACK dgeev afterwards. Also
// the CPU's automatic choice between the twin and LAPACK.
#include "host/analysis/eig_twin.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <vector>

#include "host/analysis/eig_solver.hpp"
#include "host/core/error.hpp"
#include "kernels/eig_hqr.hpp"

namespace eirnn {
namespace {

class TwinSolver final : public EigSolver {
public:
    TwinSolver(int threads, int itmax_factor)
        : threads_(threads),
          itmax_factor_(itmax_factor),
          fallback_(make_lapack_eig_solver(threads)) {}

    std::string name() const override { return "batched-cpu"; }

    void eigenvalues(const double* w, int K, int N, cplx* out) override {
        if (K < 0 || N <= 0) throw Error("eigenvalues: need K >= 0 matrices of N >= 1 units");
        if (K == 0) return;
        const std::size_t nn = std::size_t(N) * N;
        std::vector<int> flagged;
        std::exception_ptr error;
        const int threads =
            std::max(1, std::min(threads_ > 0 ? threads_ : omp_get_max_threads(), K));
#pragma omp parallel num_threads(threads)
        {
            std::vector<double> wr(N), wi(N);
#pragma omp for schedule(dynamic, 1)
            for (int k = 0; k < K; ++k) {
                cplx* row = out + std::size_t(k) * N;
                try {
                    int info = eig_twin_raw(w + k * nn, N, wr.data(), wi.data(), itmax_factor_);
                    if (info > 0) {
#pragma omp critical(eirnn_twin_flagged)
                        flagged.push_back(k);
                        continue;
                    }
                    for (int j = 0; j < N; ++j)
                        row[j] = info == 0 ? cplx(wr[j], wi[j]) : cplx(kNaN, kNaN);
                    sort_spectrum(row, N);
                } catch (...) {
#pragma omp critical(eirnn_twin_error)
                    if (!error) error = std::current_exception();
                }
            }
        }
        if (error) std::rethrow_exception(error);
        // LAPACK redoes the flagged matrices after the parallel part, in one call of its own.
        std::sort(flagged.begin(), flagged.end());
        recompute_flagged(*fallback_, w, N, flagged, out);
        stats_.matrices += K;
        stats_.fallbacks += static_cast<std::int64_t>(flagged.size());
    }

private:
    int threads_;
    int itmax_factor_;
    std::unique_ptr<EigSolver> fallback_;
};

/// The CPU's default: the CPU twin up to kCpuTwinMaxN, LAPACK above; name() is the method of the
/// last call (what a results file records), "lapack" before any.
class CpuAutoEigSolver final : public EigSolver {
public:
    explicit CpuAutoEigSolver(int threads)
        : lapack_(make_lapack_eig_solver(threads)), twin_(make_twin_eig_solver(threads)) {}
    std::string name() const override { return last_->name(); }
    void eigenvalues(const double* w, int K, int N, cplx* out) override {
        last_ = N <= kCpuTwinMaxN ? twin_.get() : lapack_.get();
        const EigSolverStats before = last_->stats();
        last_->eigenvalues(w, K, N, out);
        stats_.matrices += last_->stats().matrices - before.matrices;
        stats_.fallbacks += last_->stats().fallbacks - before.fallbacks;
    }

private:
    std::unique_ptr<EigSolver> lapack_, twin_;
    EigSolver* last_ = lapack_.get();
};

}  // namespace

int eig_twin_raw(const double* w, int N, double* wr, double* wi, int itmax_factor) {
    if (N <= 0) throw Error("eig_twin_raw: N must be >= 1");
    if (itmax_factor < 0) throw Error("eig_twin_raw: itmax_factor must be >= 0");
    // The odd row stride of the GPU kernel: with N a power of 2 (2 KB rows at N = 256) the walks
    // down a column hit the same few cache sets (N = 256, 2 cores: 35 against 62 matrices/s).
    const int ld = eig::odd_stride(N);
    std::vector<double> a(std::size_t(N) * ld + N);
    for (int r = 0; r < N; ++r)
        std::copy(w + std::size_t(r) * N, w + std::size_t(r + 1) * N,
                  a.begin() + std::size_t(r) * ld);
    eig::SerialTeam team{a.data() + std::size_t(N) * ld};
    return eig::eigenvalues(team, eig::Mat{a.data(), ld}, N, wr, wi, itmax_factor);
}

std::unique_ptr<EigSolver> make_twin_eig_solver(int threads, int itmax_factor) {
    if (threads < 0) throw InputError("--threads: must be >= 0 (0 = all cores)");
    if (itmax_factor < 0) throw Error("make_twin_eig_solver: itmax_factor must be >= 0");
    return std::make_unique<TwinSolver>(threads, itmax_factor);
}

std::unique_ptr<EigSolver> make_cpu_auto_eig_solver(int threads) {
    return std::make_unique<CpuAutoEigSolver>(threads);
}

}  // namespace eirnn
