// The names of the eigenvalue methods and the LAPACK solver (host/analysis/eig_solver.hpp). The
// solver for a backend (make_eig_solver) lives in host/core/backend_select.cpp, which sees whether
// the build has CUDA.
#include "host/analysis/eig_solver.hpp"

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

}  // namespace eirnn
