// Fixed and slow points of many networks (host/analysis/dynamics.hpp). Per problem: a batched
// L-BFGS on q(h) = 1/2 |F(h) - h|^2 from all M initial states (the states still moving are packed
// into one (m,N) matrix, so each evaluation of q and its gradient is two dgemm calls), greedy
// clustering of the endpoints, damped Newton refinement of one representative per cluster, a second
// merge, and the Jacobian spectra of all kept points of all problems through one EigSolver. The
// L-BFGS phase is the CPU's DynamicsSearch (CpuSearch below) unless another one (the GPU's) is
// given.
//   G(h) = F(h) - h = a (tanh(W h + c) - h),  grad q = J_G^T G = a (W^T (D G) - G),
//   D = diag(1 - tanh^2(W h + c)),            J_G = a (D W - I).
// Written by hand: no packaged library batches many small nonlinear least-squares problems.
#include "host/analysis/dynamics.hpp"

#include <cblas.h>
#include <lapacke.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <numeric>

#include "host/analysis/eig_solver.hpp"
#include "host/core/error.hpp"
#include "kernels/cpu/blas.hpp"
#include "kernels/dynamics_lbfgs.hpp"

namespace eirnn {
namespace {

using lbfgs::kArmijo;
using lbfgs::kMaxStep;      // largest max-norm step of one L-BFGS iteration
constexpr int kChunk = 64;  // initial states per job of the L-BFGS phase

bool finite(const double* x, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
        if (!std::isfinite(x[i])) return false;
    return true;
}

/// q and grad q of m packed states X (m,N) of one problem. Scratch a, gs: (m,N).
void evaluate(const DynamicsProblem& p, int m, const double* X, double* a, double* gs, double* q,
              double* grad) {
    const int N = p.N;
    const double al = p.alpha;
    // a = X W^T: row r holds W x_r.
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, N, N, 1.0, X, N, p.w, N, 0.0, a, N);
    for (int r = 0; r < m; ++r) {
        double s = 0;
        double* ar = a + std::size_t(r) * N;
        double* gr = gs + std::size_t(r) * N;
        const double* xr = X + std::size_t(r) * N;
        for (int i = 0; i < N; ++i) {
            const double t = std::tanh(ar[i] + p.c[i]);
            const double g = al * (t - xr[i]);
            s += g * g;
            gr[i] = g;
            ar[i] = (1.0 - t * t) * g;  // D G
        }
        q[r] = 0.5 * s;
    }
    // grad = a ((D G)^T W - G^T) per row.
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, N, N, 1.0, a, N, p.w, N, 0.0, grad,
                N);
    for (std::size_t e = 0; e < std::size_t(m) * N; ++e) grad[e] = al * (grad[e] - gs[e]);
}

/// The batched L-BFGS of one problem: X (M,N) starts in, endpoints out; q (M) their q.
void lbfgs(const DynamicsProblem& p, const DynamicsSettings& s, std::vector<double>& X,
           std::vector<double>& q) {
    const int N = p.N, M = p.M, H = std::max(1, s.history);
    const std::size_t n = N;
    std::vector<double> g(M * n), S(std::size_t(M) * H * n), Y(std::size_t(M) * H * n);
    std::vector<double> rho(std::size_t(M) * H), alpha_h(H);
    std::vector<int> count(M, 0), head(M, 0);
    std::vector<char> active(M, 1);
    q.assign(M, 0.0);
    // Packed buffers for the rows being evaluated.
    std::vector<double> xp(M * n), a(M * n), gs(M * n), gp(M * n), qp(M);
    std::vector<double> d(M * n), t(M, 1.0), slope(M);
    evaluate(p, M, X.data(), a.data(), gs.data(), q.data(), g.data());
    for (int r = 0; r < M; ++r)
        if (!std::isfinite(q[r]) || !finite(&g[r * n], n)) active[r] = 0;
    const double q_done = s.candidate_q * lbfgs::kDoneFactor;
    std::vector<int> rows, trial, retry;
    for (int it = 0; it < s.iterations; ++it) {
        rows.clear();
        for (int r = 0; r < M; ++r)
            if (active[r]) rows.push_back(r);
        if (rows.empty()) break;
        // Directions by the two-loop recursion (BLAS level 1: the reductions vectorise there).
        for (int r : rows) {
            double* dr = &d[r * n];
            const double* gr = &g[r * n];
            for (std::size_t i = 0; i < n; ++i) dr[i] = -gr[i];
            const int c = count[r];
            for (int j = 0; j < c; ++j) {
                const int h = (head[r] - 1 - j + H) % H;
                const double* sj = &S[(std::size_t(r) * H + h) * n];
                const double* yj = &Y[(std::size_t(r) * H + h) * n];
                alpha_h[j] = rho[std::size_t(r) * H + h] * cblas_ddot(N, sj, 1, dr, 1);
                cblas_daxpy(N, -alpha_h[j], yj, 1, dr, 1);
            }
            if (c > 0) {
                const int h = (head[r] - 1 + H) % H;
                const double* yj = &Y[(std::size_t(r) * H + h) * n];
                const double sy = 1.0 / rho[std::size_t(r) * H + h];
                cblas_dscal(N, sy / cblas_ddot(N, yj, 1, yj, 1), dr, 1);
            }
            for (int j = c - 1; j >= 0; --j) {
                const int h = (head[r] - 1 - j + H) % H;
                const double* sj = &S[(std::size_t(r) * H + h) * n];
                const double* yj = &Y[(std::size_t(r) * H + h) * n];
                const double beta = rho[std::size_t(r) * H + h] * cblas_ddot(N, yj, 1, dr, 1);
                cblas_daxpy(N, alpha_h[j] - beta, sj, 1, dr, 1);
            }
            double gd = cblas_ddot(N, gr, 1, dr, 1);
            if (!(gd < 0)) {  // not a descent direction: restart from steepest descent
                count[r] = 0;
                for (std::size_t i = 0; i < n; ++i) dr[i] = -gr[i];
                gd = -cblas_ddot(N, gr, 1, gr, 1);
            }
            const double dmax = std::abs(dr[cblas_idamax(N, dr, 1)]);
            if (dmax > kMaxStep) {
                const double f = kMaxStep / dmax;
                cblas_dscal(N, f, dr, 1);
                gd *= f;
            }
            slope[r] = gd;
            t[r] = 1.0;
        }
        // Backtracking (Armijo) line search, all rows that still search in one evaluation.
        trial = rows;
        for (int ls = 0; ls < lbfgs::kLineSearchTries && !trial.empty(); ++ls) {
            const int m = static_cast<int>(trial.size());
            for (int k = 0; k < m; ++k) {
                const int r = trial[k];
                for (std::size_t i = 0; i < n; ++i)
                    xp[k * n + i] = X[r * n + i] + t[r] * d[r * n + i];
            }
            evaluate(p, m, xp.data(), a.data(), gs.data(), qp.data(), gp.data());
            retry.clear();
            for (int k = 0; k < m; ++k) {
                const int r = trial[k];
                if (std::isfinite(qp[k]) && qp[k] <= q[r] + kArmijo * t[r] * slope[r]) {
                    double* sr = &S[(std::size_t(r) * H + head[r]) * n];
                    double* yr = &Y[(std::size_t(r) * H + head[r]) * n];
                    for (std::size_t i = 0; i < n; ++i) {
                        sr[i] = xp[k * n + i] - X[r * n + i];
                        yr[i] = gp[k * n + i] - g[r * n + i];
                    }
                    const double sy = cblas_ddot(N, sr, 1, yr, 1);
                    if (sy > lbfgs::kMinCurvature) {
                        rho[std::size_t(r) * H + head[r]] = 1.0 / sy;
                        head[r] = (head[r] + 1) % H;
                        count[r] = std::min(count[r] + 1, H);
                    }
                    const double q_old = q[r];
                    std::copy(&xp[k * n], &xp[k * n] + n, &X[r * n]);
                    std::copy(&gp[k * n], &gp[k * n] + n, &g[r * n]);
                    q[r] = qp[k];
                    double gmax = 0;
                    for (std::size_t i = 0; i < n; ++i)
                        gmax = std::max(gmax, std::abs(g[r * n + i]));
                    if (q[r] < q_done || gmax < lbfgs::kGradTol ||
                        q_old - q[r] <= lbfgs::kRelDecrease * q_old)
                        active[r] = 0;
                } else {
                    t[r] *= 0.5;
                    retry.push_back(r);
                }
            }
            trial.swap(retry);
        }
        for (int r : trial) active[r] = 0;  // no decrease along the direction: a minimum of q
    }
}

/// Damped Newton on G(h) = 0 from h (in place); returns the final q.
double newton(const DynamicsProblem& p, const DynamicsSettings& s, double* h) {
    const int N = p.N;
    const std::size_t n = N;
    std::vector<double> a(n), r(n), J(n * n), hn(n);
    std::vector<lapack_int> piv(n);
    auto residual = [&](const double* x, double* res) {  // res = tanh(W x + c) - x; returns q
        cblas_dgemv(CblasRowMajor, CblasNoTrans, N, N, 1.0, p.w, N, x, 1, 0.0, a.data(), 1);
        double ss = 0;
        for (std::size_t i = 0; i < n; ++i) {
            a[i] = std::tanh(a[i] + p.c[i]);
            res[i] = a[i] - x[i];
            ss += res[i] * res[i];
        }
        return 0.5 * p.alpha * p.alpha * ss;
    };
    double q = residual(h, r.data());
    std::vector<double> rn(n);
    for (int it = 0; it < s.newton_iterations && q > 0; ++it) {
        // (D W - I) delta = -r
        for (std::size_t i = 0; i < n; ++i) {
            const double di = 1.0 - a[i] * a[i];
            for (std::size_t j = 0; j < n; ++j) J[i * n + j] = di * p.w[i * n + j];
            J[i * n + i] -= 1.0;
        }
        std::vector<double> delta(n);
        for (std::size_t i = 0; i < n; ++i) delta[i] = -r[i];
        if (LAPACKE_dgesv(LAPACK_ROW_MAJOR, N, 1, J.data(), N, piv.data(), delta.data(), 1) != 0)
            break;
        if (!finite(delta.data(), n)) break;
        bool moved = false;
        for (double step = 1.0; step > 1e-6; step *= 0.5) {
            for (std::size_t i = 0; i < n; ++i) hn[i] = h[i] + step * delta[i];
            const double qn = residual(hn.data(), rn.data());
            if (qn < q) {
                std::copy(hn.begin(), hn.end(), h);
                r.swap(rn);
                q = qn;
                moved = true;
                break;
            }
        }
        if (!moved) break;
        if (q < s.fixed_q * 1e-8) break;
    }
    return q;
}

double max_dist(const double* x, const double* y, std::size_t n) {
    double m = 0;
    for (std::size_t i = 0; i < n; ++i) m = std::max(m, std::abs(x[i] - y[i]));
    return m;
}

struct Cluster {
    std::vector<double> h;
    double q;
    int basin;
};

bool searchable(const DynamicsProblem& p) {
    const std::size_t n = p.N;
    return p.M > 0 && p.N > 0 && finite(p.w, n * n) && finite(p.c, n) && finite(p.starts, p.M * n);
}

/// Clusters, refines and merges the endpoints X (M,N) with their q: the points of one problem
/// without the spectra (eig fields left empty).
PointSet refine(const DynamicsProblem& p, const DynamicsSettings& s, const std::vector<double>& X,
                const std::vector<double>& q) {
    PointSet out;
    out.N = p.N;
    const std::size_t n = p.N;
    // Endpoints in order of q (ties: start index), clustered greedily.
    std::vector<int> order(p.M);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return q[x] < q[y]; });
    std::vector<Cluster> cl;
    for (int r : order) {
        if (!(q[r] < s.slow_q)) break;
        const double* x = &X[r * n];
        bool joined = false;
        for (Cluster& c : cl)
            if (max_dist(c.h.data(), x, n) < s.dedup_tol) {
                ++c.basin;
                joined = true;
                break;
            }
        if (!joined) cl.push_back({std::vector<double>(x, x + n), q[r], 1});
    }
    for (Cluster& c : cl)
        if (c.q < s.candidate_q) c.q = std::min(c.q, newton(p, s, c.h.data()));
    // Refined representatives of one point merge (the lower q stays).
    std::vector<Cluster> merged;
    for (Cluster& c : cl) {
        bool joined = false;
        for (Cluster& m : merged)
            if (max_dist(m.h.data(), c.h.data(), n) < s.dedup_tol) {
                m.basin += c.basin;
                if (c.q < m.q) {
                    m.q = c.q;
                    m.h = c.h;
                }
                joined = true;
                break;
            }
        if (!joined) merged.push_back(std::move(c));
    }
    for (const Cluster& c : merged) {
        out.h.insert(out.h.end(), c.h.begin(), c.h.end());
        out.q.push_back(c.q);
        out.basin.push_back(c.basin);
        out.kind.push_back(c.q < s.fixed_q ? PointKind::Fixed : PointKind::Slow);
    }
    return out;
}

/// Reorders the points of a set by the documented order.
void sort_points(PointSet& ps) {
    const int P = ps.size();
    const std::size_t n = ps.N;
    std::vector<int> idx(P);
    std::iota(idx.begin(), idx.end(), 0);
    std::sort(idx.begin(), idx.end(), [&](int x, int y) {
        if (ps.kind[x] != ps.kind[y]) return ps.kind[x] < ps.kind[y];
        if (ps.stability[x] != ps.stability[y]) return ps.stability[x] < ps.stability[y];
        if (ps.basin[x] != ps.basin[y]) return ps.basin[x] > ps.basin[y];
        return std::lexicographical_compare(&ps.h[x * n], &ps.h[x * n] + n, &ps.h[y * n],
                                            &ps.h[y * n] + n);
    });
    PointSet o;
    o.N = ps.N;
    o.skipped = ps.skipped;
    for (int i : idx) {
        o.h.insert(o.h.end(), &ps.h[i * n], &ps.h[i * n] + n);
        o.q.push_back(ps.q[i]);
        o.kind.push_back(ps.kind[i]);
        o.basin.push_back(ps.basin[i]);
        o.eig.insert(o.eig.end(), &ps.eig[i * n], &ps.eig[i * n] + n);
        o.rho.push_back(ps.rho[i]);
        o.n_unstable.push_back(ps.n_unstable[i]);
        o.stability.push_back(ps.stability[i]);
    }
    ps = std::move(o);
}

}  // namespace

void validate(const DynamicsSettings& s) {
    if (s.starts < 1) throw InputError("--starts: must be >= 1");
    if (!(s.noise >= 0) || !std::isfinite(s.noise)) throw InputError("--noise: must be >= 0");
    if (s.sample_trials < 1) throw InputError("--sample-trials: must be >= 1");
    if (s.iterations < 1) throw InputError("--iterations: must be >= 1");
    if (s.history < 1) throw InputError("--history: must be >= 1");
    if (!(s.fixed_q > 0)) throw InputError("--fixed-q: must be > 0");
    if (!(s.candidate_q >= s.fixed_q)) throw InputError("--candidate-q: must be >= --fixed-q");
    if (!(s.slow_q >= s.candidate_q)) throw InputError("--slow-q: must be >= --candidate-q");
    if (!(s.dedup_tol > 0)) throw InputError("--dedup-tol: must be > 0");
    if (s.newton_iterations < 0) throw InputError("--newton-iterations: must be >= 0");
}

int PointSet::count(PointKind k) const {
    return static_cast<int>(std::count(kind.begin(), kind.end(), k));
}

int PointSet::count_stable_fixed() const {
    int c = 0;
    for (int i = 0; i < size(); ++i)
        c += kind[i] == PointKind::Fixed && stability[i] == Stability::Stable;
    return c;
}

double speed(const DynamicsProblem& p, const double* h) {
    double s = 0;
    for (int i = 0; i < p.N; ++i) {
        double a = p.c[i];
        for (int j = 0; j < p.N; ++j) a += p.w[std::size_t(i) * p.N + j] * h[j];
        const double g = p.alpha * (std::tanh(a) - h[i]);
        s += g * g;
    }
    return 0.5 * s;
}

void jacobian(const DynamicsProblem& p, const double* h, double* J) {
    const std::size_t n = p.N;
    for (std::size_t i = 0; i < n; ++i) {
        double a = p.c[i];
        for (std::size_t j = 0; j < n; ++j) a += p.w[i * n + j] * h[j];
        const double t = std::tanh(a);
        const double di = p.alpha * (1.0 - t * t);
        for (std::size_t j = 0; j < n; ++j) J[i * n + j] = di * p.w[i * n + j];
        J[i * n + i] += 1.0 - p.alpha;
    }
}

namespace {

class CpuSearch final : public DynamicsSearch {
public:
    explicit CpuSearch(int threads) : threads_(threads) {}
    std::string name() const override { return "cpu"; }

    void descend(std::span<const DynamicsProblem> problems, const DynamicsSettings& s,
                 std::vector<std::vector<double>>& ends,
                 std::vector<std::vector<double>>& qs) override {
        const int n_prob = static_cast<int>(problems.size());
        ends.assign(n_prob, {});
        qs.assign(n_prob, {});
        // Jobs of at most kChunk initial states of one problem: threads share the work even for a
        // single network, and a fixed chunk keeps the results independent of the thread count.
        struct Job {
            int prob, first, count;
        };
        std::vector<Job> jobs;
        for (int i = 0; i < n_prob; ++i) {
            const DynamicsProblem& p = problems[i];
            ends[i].resize(std::size_t(p.M) * p.N);
            qs[i].resize(p.M);
            for (int first = 0; first < p.M; first += kChunk)
                jobs.push_back({i, first, std::min(kChunk, p.M - first)});
        }
        const int max_threads = threads_ > 0 ? threads_ : omp_get_max_threads();
        const int nt = std::max(1, std::min<int>(max_threads, static_cast<int>(jobs.size())));
        const cpu::SingleThreadedBlas blas_guard;  // restored on every exit
        std::exception_ptr err;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
        for (std::size_t j = 0; j < jobs.size(); ++j) {
            try {
                const Job& job = jobs[j];
                DynamicsProblem sub = problems[job.prob];
                const std::size_t n = sub.N;
                sub.starts += std::size_t(job.first) * n;
                sub.M = job.count;
                std::vector<double> X(sub.starts, sub.starts + job.count * n), q;
                lbfgs(sub, s, X, q);
                std::copy(X.begin(), X.end(), ends[job.prob].begin() + job.first * n);
                std::copy(q.begin(), q.end(), qs[job.prob].begin() + job.first);
            } catch (...) {
#pragma omp critical
                if (!err) err = std::current_exception();
            }
        }
        if (err) std::rethrow_exception(err);
    }

private:
    int threads_;
};

}  // namespace

std::unique_ptr<DynamicsSearch> make_cpu_dynamics_search(int threads) {
    return std::make_unique<CpuSearch>(threads);
}

std::vector<PointSet> find_fixed_points(std::span<const DynamicsProblem> problems,
                                        const DynamicsSettings& s, int threads, EigSolver* solver,
                                        DynamicsSearch* search) {
    validate(s);
    const int n_prob = static_cast<int>(problems.size());
    std::vector<PointSet> out(n_prob);
    std::vector<DynamicsProblem> live;  // the searchable problems
    std::vector<int> where;
    for (int i = 0; i < n_prob; ++i) {
        out[i].N = problems[i].N;
        if (!searchable(problems[i])) {
            out[i].skipped = true;
            continue;
        }
        live.push_back(problems[i]);
        where.push_back(i);
    }
    std::unique_ptr<DynamicsSearch> cpu_search;
    if (!search) {
        cpu_search = make_cpu_dynamics_search(threads);
        search = cpu_search.get();
    }
    std::vector<std::vector<double>> ends, qs;
    if (!live.empty()) search->descend(live, s, ends, qs);
    if (ends.size() != live.size() || qs.size() != live.size())
        throw Error("find_fixed_points: the " + search->name() + " search returned " +
                    std::to_string(ends.size()) + " results for " + std::to_string(live.size()) +
                    " problems");
    const int max_threads = threads > 0 ? threads : omp_get_max_threads();
    const int nt = std::max(1, std::min(max_threads, n_prob));
    {
        const cpu::SingleThreadedBlas blas_guard;  // restored on every exit
        std::exception_ptr err;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
        for (std::size_t t = 0; t < live.size(); ++t) {
            try {
                out[where[t]] = refine(live[t], s, ends[t], qs[t]);
            } catch (...) {
#pragma omp critical
                if (!err) err = std::current_exception();
            }
        }
        if (err) std::rethrow_exception(err);
    }

    // Jacobian spectra, in chunks of matrices of equal N.
    std::unique_ptr<EigSolver> lapack;
    if (!solver) {
        lapack = make_lapack_eig_solver(threads);
        solver = lapack.get();
    }
    struct Ref {
        int prob, point;
    };
    std::vector<int> sizes;
    for (const PointSet& ps : out) sizes.push_back(ps.N);
    std::sort(sizes.begin(), sizes.end());
    sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
    constexpr std::size_t kChunkDoubles = std::size_t(1) << 24;  // 128 MiB of matrices at most
    for (int N : sizes) {
        const std::size_t nn = std::size_t(N) * N;
        std::vector<Ref> refs;
        for (int i = 0; i < n_prob; ++i) {
            if (out[i].N != N) continue;
            PointSet& ps = out[i];
            ps.eig.assign(std::size_t(ps.size()) * N, cplx(0, 0));
            ps.rho.assign(ps.size(), 0.0);
            ps.n_unstable.assign(ps.size(), 0);
            ps.stability.assign(ps.size(), Stability::Stable);
            for (int j = 0; j < ps.size(); ++j) refs.push_back({i, j});
        }
        const std::size_t chunk = std::max<std::size_t>(1, kChunkDoubles / nn);
        std::vector<double> J;
        std::vector<cplx> eig;
        for (std::size_t at = 0; at < refs.size(); at += chunk) {
            const std::size_t m = std::min(chunk, refs.size() - at);
            J.resize(m * nn);
            eig.resize(m * N);
#pragma omp parallel for num_threads(nt)
            for (std::size_t k = 0; k < m; ++k) {
                const Ref& r = refs[at + k];
                jacobian(problems[r.prob], &out[r.prob].h[std::size_t(r.point) * N],
                         J.data() + k * nn);
            }
            solver->eigenvalues(J.data(), static_cast<int>(m), N, eig.data());
            for (std::size_t k = 0; k < m; ++k) {
                const Ref& r = refs[at + k];
                PointSet& ps = out[r.prob];
                std::copy(eig.begin() + k * N, eig.begin() + (k + 1) * N,
                          ps.eig.begin() + std::size_t(r.point) * N);
                double rho = 0;
                int unstable = 0;
                for (int e = 0; e < N; ++e) {
                    const double mod = std::abs(eig[k * N + e]);
                    rho = std::max(rho, mod);
                    unstable += mod > 1.0;
                }
                ps.rho[r.point] = rho;
                ps.n_unstable[r.point] = unstable;
                ps.stability[r.point] = unstable == 0   ? Stability::Stable
                                        : unstable == N ? Stability::Unstable
                                                        : Stability::Saddle;
            }
        }
    }
    for (PointSet& ps : out) sort_points(ps);
    return out;
}

}  // namespace eirnn
