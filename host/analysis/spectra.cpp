// Eigenvalues and docs/MODEL.md §6 metrics of many (K,N,N) recurrent matrices, in double precision
// on the CPU. Eigenvalues: dgeev (JOBVL = JOBVR = 'N', balanced). Henrici: from the real Schur form
// of dgees, H² = Σ_{above the block diagonal} t_ij² + Σ_{2x2 blocks [a b; c d]} ((a−d)² + (b+c)²),
// exactly ‖W‖_F² − Σ|λ|² but without its cancellation (normal matrices give ~1e-15, not ~1e-8).
// lam_sym_max: dsyevd on (W + Wᵀ)/2; singular values: one dgesdd (JOBZ = 'N') per matrix, all N
// of them kept (sv_*, the normalised SVD entropy of Li et al. 2023, and the stored sv datasets).
// Matrices are row-major; LAPACK sees Wᵀ (column-major): same eigenvalues, singular values and
// Henrici number.
// Parallel over matrices with OpenMP, one matrix per thread, OpenBLAS single-threaded inside. With
// an EigSolver (host/analysis/eig_solver.hpp) the eigenvalues come from it and only the metrics run
// here.
#include "host/analysis/spectra.hpp"

#include <cblas.h>
#include <lapacke.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <numbers>
#include <type_traits>

#include "host/analysis/eig_solver.hpp"
#include "host/core/error.hpp"
#include "kernels/cpu/blas.hpp"

namespace eirnn {
namespace {

bool sorted_before(const cplx& a, const cplx& b) {
    double ma = std::abs(a), mb = std::abs(b);
    if (ma != mb) return ma > mb;
    if (a.real() != b.real()) return a.real() > b.real();
    return a.imag() > b.imag();
}

template <class Real>
bool all_finite(const Real* w, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
        if (!std::isfinite(w[i])) return false;
    return true;
}

int lapack_lwork(double query) {
    return std::max(1, static_cast<int>(query));
}

/// Reusable LAPACK workspaces for N x N matrices (one per thread).
class LapackWorkspace {
public:
    explicit LapackWorkspace(int N) : N_(N), a_(std::size_t(N) * N), wr_(N), wi_(N), s_(N) {
        double q = 0;
        lapack_int iq = 0;
        LAPACKE_dgeev_work(LAPACK_COL_MAJOR, 'N', 'N', N, a_.data(), N, wr_.data(), wi_.data(),
                           nullptr, 1, nullptr, 1, &q, -1);
        std::size_t lw = lapack_lwork(q);
        LAPACKE_dgees_work(LAPACK_COL_MAJOR, 'N', 'N', nullptr, N, a_.data(), N, &sdim_, wr_.data(),
                           wi_.data(), nullptr, 1, &q, -1, nullptr);
        lw = std::max<std::size_t>(lw, lapack_lwork(q));
        LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, 'N', 'U', N, a_.data(), N, s_.data(), &q, -1, &iq,
                            -1);
        lw = std::max<std::size_t>(lw, lapack_lwork(q));
        iwork_.resize(std::max<std::size_t>({std::size_t(std::max(iq, 1)), std::size_t(8) * N, 1}));
        LAPACKE_dgesdd_work(LAPACK_COL_MAJOR, 'N', N, N, a_.data(), N, s_.data(), nullptr, 1,
                            nullptr, 1, &q, -1, iwork_.data());
        lw = std::max<std::size_t>(lw, lapack_lwork(q));
        work_.resize(lw);
    }

    /// Sorted eigenvalues of w into out (N); NaN when w has non-finite entries or dgeev fails.
    template <class Real>
    bool eigenvalues(const Real* w, cplx* out) {
        const std::size_t nn = std::size_t(N_) * N_;
        if (!all_finite(w, nn)) {
            std::fill(out, out + N_, cplx(kNaN, kNaN));
            return false;
        }
        std::copy(w, w + nn, a_.begin());
        lapack_int info =
            LAPACKE_dgeev_work(LAPACK_COL_MAJOR, 'N', 'N', N_, a_.data(), N_, wr_.data(),
                               wi_.data(), nullptr, 1, nullptr, 1, work_.data(), lwork());
        if (info != 0) {
            std::fill(out, out + N_, cplx(kNaN, kNaN));
            return false;
        }
        for (int i = 0; i < N_; ++i) out[i] = cplx(wr_[i], wi_[i]);
        std::sort(out, out + N_, sorted_before);
        return true;
    }

    /// Henrici departure from the real Schur form of w (NaN when dgees fails).
    double henrici(const double* w, double fro2) {
        if (fro2 == 0) return 0;
        std::copy(w, w + std::size_t(N_) * N_, a_.begin());
        lapack_int info =
            LAPACKE_dgees_work(LAPACK_COL_MAJOR, 'N', 'N', nullptr, N_, a_.data(), N_, &sdim_,
                               wr_.data(), wi_.data(), nullptr, 1, work_.data(), lwork(), nullptr);
        if (info != 0) return kNaN;
        auto t = [&](int i, int j) { return a_[std::size_t(j) * N_ + i]; };  // column-major T
        double dep2 = 0;
        int i = 0;
        while (i < N_) {
            bool block = i + 1 < N_ && t(i + 1, i) != 0;
            int size = block ? 2 : 1;
            if (block) {
                double a = t(i, i), b = t(i, i + 1), c = t(i + 1, i), d = t(i + 1, i + 1);
                dep2 += (a - d) * (a - d) + (b + c) * (b + c);
            }
            for (int r = i; r < i + size; ++r)
                for (int col = i + size; col < N_; ++col) dep2 += t(r, col) * t(r, col);
            i += size;
        }
        return std::sqrt(std::max(0.0, dep2) / fro2);
    }

    /// Largest eigenvalue of (W + Wᵀ)/2.
    double lam_sym_max(const double* w) {
        for (int i = 0; i < N_; ++i)
            for (int j = 0; j < N_; ++j)
                a_[std::size_t(j) * N_ + i] =
                    0.5 * (w[std::size_t(i) * N_ + j] + w[std::size_t(j) * N_ + i]);
        lapack_int info = LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, 'N', 'U', N_, a_.data(), N_,
                                              s_.data(), work_.data(), lwork(), iwork_.data(),
                                              static_cast<lapack_int>(iwork_.size()));
        return info == 0 ? s_[N_ - 1] : kNaN;
    }

    /// All N singular values of w into out (N), descending (dgesdd's order); NaN when it fails.
    void singular_values(const double* w, double* out) {
        std::copy(w, w + std::size_t(N_) * N_, a_.begin());
        lapack_int info =
            LAPACKE_dgesdd_work(LAPACK_COL_MAJOR, 'N', N_, N_, a_.data(), N_, out, nullptr, 1,
                                nullptr, 1, work_.data(), lwork(), iwork_.data());
        if (info != 0) std::fill(out, out + N_, kNaN);
    }

private:
    lapack_int lwork() const { return static_cast<lapack_int>(work_.size()); }

    int N_;
    lapack_int sdim_ = 0;
    std::vector<double> a_, wr_, wi_, s_, work_;
    std::vector<lapack_int> iwork_;
};

int thread_count(int threads, int K) {
    int t = threads > 0 ? threads : omp_get_max_threads();
    return std::max(1, std::min(t, K));
}

/// Runs body(workspace, k) for k = 0..K-1 on `threads` OpenMP threads; rethrows the first error.
template <class Body>
void parallel_over(int K, int N, int threads, Body body) {
    if (K <= 0) return;
    cpu::SingleThreadedBlas blas_guard;
    std::exception_ptr error;
#pragma omp parallel num_threads(thread_count(threads, K))
    {
        try {
            LapackWorkspace ws(N);
#pragma omp for schedule(dynamic, 1)
            for (int k = 0; k < K; ++k) {
                try {
                    body(ws, k);
                } catch (...) {
#pragma omp critical(eirnn_spectra_error)
                    if (!error) error = std::current_exception();
                }
            }
        } catch (...) {
#pragma omp critical(eirnn_spectra_error)
            if (!error) error = std::current_exception();
        }
    }
    if (error) std::rethrow_exception(error);
}

void check_shape(int K, int N) {
    if (K < 0 || N <= 0) throw Error("spectra: need K >= 0 matrices of N >= 1 units");
}

/// Metrics of one matrix; its singular values go to sv_out (N) when non-null.
SpectralMetrics metrics_with(LapackWorkspace& ws, const double* w, int N, std::span<const cplx> eig,
                             int outliers, double dt, double* sv_out) {
    SpectralMetrics m;
    if (outliers < 0) throw InputError("outliers must be >= 0");
    if (static_cast<int>(eig.size()) != N) throw Error("spectral_metrics: spectrum size != N");
    bool finite =
        std::all_of(eig.begin(), eig.end(), [](const cplx& z) { return std::isfinite(z.real()); });
    if (!finite || !all_finite(w, std::size_t(N) * N)) {
        for (double* p :
             {&m.rho, &m.r_outer, &m.r_inner, &m.r_inner_p2, &m.ring_ratio, &m.dom_re, &m.dom_im,
              &m.freq_arg, &m.freq_study, &m.henrici, &m.lam_sym_max, &m.n_outside_unit,
              &m.n_re_gt1, &m.sv_max, &m.sv_min, &m.sv_spread, &m.nse})
            *p = kNaN;
        if (sv_out) std::fill(sv_out, sv_out + N, kNaN);
        return m;
    }
    std::vector<double> mod(N);
    for (int i = 0; i < N; ++i) mod[i] = std::abs(eig[i]);
    m.rho = *std::max_element(mod.begin(), mod.end());
    m.r_inner = *std::min_element(mod.begin(), mod.end());
    // eig is sorted by descending modulus, so the (k+1)-th largest is eig[k].
    m.r_outer = mod[std::min(outliers, N - 1)];
    std::vector<double> asc = mod;
    std::sort(asc.begin(), asc.end());
    double pos = 0.02 * (N - 1);  // numpy's default (linear) percentile
    int lo = static_cast<int>(std::floor(pos));
    int hi = std::min(lo + 1, N - 1);
    m.r_inner_p2 = asc[lo] + (pos - lo) * (asc[hi] - asc[lo]);
    m.ring_ratio = m.r_outer > 0 ? m.r_inner / m.r_outer : 0.0;

    cplx dom = eig[0];
    for (const cplx& z : eig)
        if (z.real() > dom.real() || (z.real() == dom.real() && z.imag() > dom.imag())) dom = z;
    m.dom_re = dom.real();
    m.dom_im = dom.imag();
    m.freq_arg = std::abs(std::arg(dom)) / (2 * std::numbers::pi * dt);
    m.freq_study =
        dom.imag() == 0 ? 0.0 : std::abs(dom.imag()) / (2 * std::numbers::pi * dom.real());

    double fro2 = 0;
    for (std::size_t i = 0; i < std::size_t(N) * N; ++i) fro2 += w[i] * w[i];
    m.henrici = ws.henrici(w, fro2);
    m.lam_sym_max = ws.lam_sym_max(w);
    for (const cplx& z : eig) {
        if (std::abs(z) > 1) m.n_outside_unit += 1;
        if (z.real() > 1) m.n_re_gt1 += 1;
    }
    std::vector<double> sv_local;
    double* sv = sv_out;
    if (!sv) {
        sv_local.resize(N);
        sv = sv_local.data();
    }
    ws.singular_values(w, sv);
    const double smax = sv[0], smin = sv[N - 1];
    m.sv_max = smax;
    m.sv_min = smin;
    m.sv_spread = smin > 0 ? smax / smin : std::numeric_limits<double>::infinity();
    if (std::isnan(smax)) m.sv_spread = kNaN;
    m.nse = normalised_svd_entropy({sv, std::size_t(N)});
    return m;
}

template <class Real>
void batched(const Real* w, int K, int N, cplx* out, int threads) {
    check_shape(K, N);
    const std::size_t nn = std::size_t(N) * N;
    parallel_over(K, N, threads, [&](LapackWorkspace& ws, int k) {
        ws.eigenvalues(w + k * nn, out + std::size_t(k) * N);
    });
}

/// One row of an analysis table: matrix k (wd, double) with its sorted spectrum eig; its singular
/// values into sv_out (K,N) row k when non-null.
void table_row(LapackWorkspace& ws, MetricsTable& t, int k, const double* wd, int N,
               std::span<const cplx> eig, std::span<const std::int8_t> sign, bool shared_sign,
               int outliers, double* sv_out) {
    SpectralMetrics m = metrics_with(ws, wd, N, eig, outliers, 1e-3,
                                     sv_out ? sv_out + std::size_t(k) * N : nullptr);
    WeightStats stats;
    const WeightStats* ws_ptr = nullptr;
    if (!sign.empty()) {
        stats = weight_stats(wd, N, sign.subspan(shared_sign ? 0 : std::size_t(k) * N, N));
        ws_ptr = &stats;
    }
    std::vector<double> row = metric_row(m, ws_ptr);
    for (std::size_t c = 0; c < row.size(); ++c) t.columns[c][k] = row[c];
}

/// Doubles of matrices converted at once when a solver computes the eigenvalues (256 MiB): large
/// batches for a GPU solver, bounded host memory for large K.
constexpr std::size_t kSolverChunkDoubles = std::size_t(1) << 25;

template <class Real>
MetricsTable analyse_impl(const Real* w, int K, int N, std::span<const std::int8_t> sign,
                          int outliers, cplx* eig_out, int threads, EigSolver* solver,
                          double* sv_out) {
    check_shape(K, N);
    if (outliers < 0) throw InputError("outliers must be >= 0");
    const std::size_t nn = std::size_t(N) * N;
    const bool shared_sign = sign.size() == std::size_t(N);
    if (!sign.empty() && !shared_sign && sign.size() != std::size_t(K) * N)
        throw Error("analyse: sign must have N or K*N entries");
    MetricsTable t;
    t.names = metric_names();
    t.columns.assign(t.names.size(), std::vector<double>(K, kNaN));
    if (!solver) {
        parallel_over(K, N, threads, [&](LapackWorkspace& ws, int k) {
            std::vector<double> wd(w + k * nn, w + (k + 1) * nn);
            std::vector<cplx> eig(N);
            ws.eigenvalues(wd.data(), eig.data());
            table_row(ws, t, k, wd.data(), N, eig, sign, shared_sign, outliers, sv_out);
            if (eig_out) std::copy(eig.begin(), eig.end(), eig_out + std::size_t(k) * N);
        });
        return t;
    }
    // The solver sees a chunk of matrices at once (in double), then the metrics follow per matrix.
    const int chunk = static_cast<int>(
        std::clamp<std::size_t>(kSolverChunkDoubles / nn, 1, static_cast<std::size_t>(K)));
    std::vector<double> converted;
    std::vector<cplx> eig;
    for (int k0 = 0; k0 < K; k0 += chunk) {
        const int kc = std::min(chunk, K - k0);
        const Real* src = w + std::size_t(k0) * nn;
        const double* wd = nullptr;
        if constexpr (std::is_same_v<Real, double>) {
            wd = src;
        } else {
            converted.assign(src, src + std::size_t(kc) * nn);
            wd = converted.data();
        }
        eig.resize(std::size_t(kc) * N);
        solver->eigenvalues(wd, kc, N, eig.data());
        parallel_over(kc, N, threads, [&](LapackWorkspace& ws, int j) {
            std::span<const cplx> e(eig.data() + std::size_t(j) * N, N);
            table_row(ws, t, k0 + j, wd + std::size_t(j) * nn, N, e, sign, shared_sign, outliers,
                      sv_out);
        });
        if (eig_out) std::copy(eig.begin(), eig.end(), eig_out + std::size_t(k0) * N);
    }
    return t;
}

}  // namespace

std::vector<cplx> eigenvalues(const double* w, int N) {
    check_shape(1, N);
    if (!all_finite(w, std::size_t(N) * N))
        throw InputError("eigenvalues: the matrix has NaN or infinite entries");
    cpu::SingleThreadedBlas blas_guard;
    LapackWorkspace ws(N);
    std::vector<cplx> out(N);
    if (!ws.eigenvalues(w, out.data())) throw Error("dgeev did not converge");
    return out;
}

void sort_spectrum(cplx* eig, int N) {
    std::sort(eig, eig + N, sorted_before);
}

void eigenvalues_batched(const float* w, int K, int N, cplx* out, int threads) {
    batched(w, K, N, out, threads);
}

void eigenvalues_batched(const double* w, int K, int N, cplx* out, int threads) {
    batched(w, K, N, out, threads);
}

SpectralMetrics spectral_metrics(const double* w, int N, std::span<const cplx> eig, int outliers,
                                 double dt, double* sv_out) {
    check_shape(1, N);
    cpu::SingleThreadedBlas blas_guard;
    LapackWorkspace ws(N);
    return metrics_with(ws, w, N, eig, outliers, dt, sv_out);
}

double normalised_svd_entropy(std::span<const double> sv) {
    const std::size_t N = sv.size();
    double total = 0;
    for (double s : sv) total += s;
    if (N < 2 || !(total > 0) || !std::isfinite(total)) return kNaN;
    double h = 0;
    for (double s : sv) {
        const double p = s / total;
        if (p > 0) h -= p * std::log(p);
    }
    return h / std::log(static_cast<double>(N));
}

WeightStats weight_stats(const double* w, int N, std::span<const std::int8_t> sign) {
    if (sign.size() != std::size_t(N)) throw Error("weight_stats: sign must have N entries");
    double sum[4] = {}, sum2[4] = {}, zeros[4] = {}, count[4] = {};
    for (int i = 0; i < N; ++i) {
        const bool target_e = sign[i] > 0;
        for (int j = 0; j < N; ++j) {
            const bool source_e = sign[j] > 0;
            // ee = E->E, ei = E->I, ie = I->E, ii = I->I
            int p = source_e ? (target_e ? 0 : 1) : (target_e ? 2 : 3);
            double v = w[std::size_t(i) * N + j];
            sum[p] += v;
            sum2[p] += v * v;
            zeros[p] += v == 0 ? 1 : 0;
            count[p] += 1;
        }
    }
    WeightStats s;
    for (int p = 0; p < 4; ++p) {
        if (count[p] == 0) {
            s.mean[p] = s.std[p] = s.zero_frac[p] = kNaN;
            continue;
        }
        double mean = sum[p] / count[p];
        s.mean[p] = mean;
        s.std[p] = std::sqrt(std::max(0.0, sum2[p] / count[p] - mean * mean));
        s.zero_frac[p] = zeros[p] / count[p];
    }
    return s;
}

const std::vector<std::string>& metric_names() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> n = {
            "rho",      "r_outer",  "r_inner",    "r_inner_p2", "ring_ratio",  "dom_re",
            "dom_im",   "freq_arg", "freq_study", "henrici",    "lam_sym_max", "n_outside_unit",
            "n_re_gt1", "sv_max",   "sv_min",     "sv_spread",  "nse"};
        for (const char* pop : {"ee", "ei", "ie", "ii"})
            for (const char* stat : {"mean", "std", "zero"})
                n.push_back(std::string("w_") + pop + "_" + stat);
        return n;
    }();
    return names;
}

std::vector<double> metric_row(const SpectralMetrics& m, const WeightStats* ws) {
    std::vector<double> row = {
        m.rho,      m.r_outer,  m.r_inner,    m.r_inner_p2, m.ring_ratio,  m.dom_re,
        m.dom_im,   m.freq_arg, m.freq_study, m.henrici,    m.lam_sym_max, m.n_outside_unit,
        m.n_re_gt1, m.sv_max,   m.sv_min,     m.sv_spread,  m.nse};
    for (int p = 0; p < 4; ++p) {
        row.push_back(ws ? ws->mean[p] : kNaN);
        row.push_back(ws ? ws->std[p] : kNaN);
        row.push_back(ws ? ws->zero_frac[p] : kNaN);
    }
    return row;
}

MetricsTable analyse(const float* w, int K, int N, std::span<const std::int8_t> sign, int outliers,
                     cplx* eig_out, int threads, EigSolver* solver, double* sv_out) {
    return analyse_impl(w, K, N, sign, outliers, eig_out, threads, solver, sv_out);
}

MetricsTable analyse(const double* w, int K, int N, std::span<const std::int8_t> sign, int outliers,
                     cplx* eig_out, int threads, EigSolver* solver, double* sv_out) {
    return analyse_impl(w, K, N, sign, outliers, eig_out, threads, solver, sv_out);
}

}  // namespace eirnn
