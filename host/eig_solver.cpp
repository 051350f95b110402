// The names of the eigenvalue methods and the LAPACK solver (host/eig_solver.hpp). The solver for a
// backend (make_eig_solver) lives in host/backend_select.cpp, which sees whether the build has
// CUDA.
#include "host/eig_solver.hpp"

#include <algorithm>
#include <utility>

namespace eirnn {
namespace {

constexpr std::pair<EigMethod, const char*> kEigMethod[] = {{EigMethod::Auto, "auto"},
                                                            {EigMethod::Lapack, "lapack"},
                                                            {EigMethod::Batched, "batched"},
                                                            {EigMethod::Xgeev, "xgeev"}};

/// dgeev over matrices, threads over matrices (eigenvalues_batched): the reference.
class LapackEigSolver final : public EigSolver {
public:
    explicit LapackEigSolver(int threads) : threads_(threads) {}
    std::string name() const override { return "lapack"; }
    void eigenvalues(const double* w, int K, int N, cplx* out) override {
        eigenvalues_batched(w, K, N, out, threads_);
        stats_.matrices += K;
    }

private:
    int threads_;
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

std::optional<EigMethod> parse_eig_method(std::string_view s) {
    for (const auto& [m, n] : kEigMethod)
        if (s == n) return m;
    return std::nullopt;
}

std::string_view name(EigMethod m) {
    for (const auto& [e, n] : kEigMethod)
        if (e == m) return n;
    return "?";
}

void recompute_flagged(EigSolver& fallback, const double* w, int N, const std::vector<int>& flagged,
                       cplx* out) {
    if (flagged.empty()) return;
    const std::size_t nn = std::size_t(N) * N, F = flagged.size();
    std::vector<double> again(F * nn);
    for (std::size_t f = 0; f < F; ++f)
        std::copy(w + flagged[f] * nn, w + (flagged[f] + 1) * nn, again.begin() + f * nn);
    std::vector<cplx> eig(F * N);
    fallback.eigenvalues(again.data(), static_cast<int>(F), N, eig.data());
    for (std::size_t f = 0; f < F; ++f)
        std::copy(eig.begin() + f * N, eig.begin() + (f + 1) * N,
                  out + std::size_t(flagged[f]) * N);
}

std::unique_ptr<EigSolver> make_lapack_eig_solver(int threads) {
    return std::make_unique<LapackEigSolver>(threads);
}

std::unique_ptr<EigSolver> make_cpu_auto_eig_solver(int threads) {
    return std::make_unique<CpuAutoEigSolver>(threads);
}

}  // namespace eirnn
