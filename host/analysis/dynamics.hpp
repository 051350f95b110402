// Fixed points and slow points of the autonomous update F(h) = (1-a) h + a tanh(W h + c) of many
// networks at once (Sussillo & Barak 2013, "Opening the black box"), with c = W_in u + b for a
// constant input u. Each problem is minimised from M initial states: q(h) = 1/2 |F(h) - h|^2 by a
// batched L-BFGS (all active states of a problem advance together: two GEMMs (M,N)x(N,N) per
// evaluation), then Newton refinement of the candidates, de-duplication, and the Jacobian
// J = (1-a) I + a diag(1 - tanh^2(W h + c)) W at every point with its eigenvalues (any EigSolver).
// Everything in double precision; threads over chunks of 64 initial states (any problem), then over
// problems; the chunks are fixed, so the results do not depend on the thread count. The L-BFGS
// phase is a DynamicsSearch: the CPU's here, the GPU's in host/cuda/dynamics.hpp (one warp per
// initial state, the same iteration); clustering, Newton, the Jacobians and the spectra stay here.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "host/analysis/spectra.hpp"
#include "host/core/config.hpp"

namespace eirnn {

class EigSolver;

/// Settings of the search (defaults documented in docs/FORMAT.md and `eirnn dynamics --help`).
struct DynamicsSettings {
    int starts = 256;           // M initial states per network and input condition
    double noise = 0.05;        // std of the Gaussian noise added to sampled states
    int sample_trials = 20;     // held-out trials simulated to sample initial states from
    std::uint64_t seed = 1;     // sampling seed (combined with each network's seed)
    int iterations = 400;       // L-BFGS iteration cap per initial state
    int history = 8;            // L-BFGS correction pairs
    double candidate_q = 1e-6;  // endpoints with q below this are Newton-refined
    double fixed_q = 1e-16;     // q below this (after refinement): a fixed point
    double slow_q = 1e-4;       // other endpoints with q below this: slow points
    double dedup_tol = 1e-3;    // max-norm distance under which two points are one
    int newton_iterations = 30;
};

/// Checks the settings; InputError naming the flag (--starts, --noise, ...).
void validate(const DynamicsSettings& s);

/// One autonomous system: F(h) = (1-alpha) h + alpha tanh(W h + c), with M initial states.
struct DynamicsProblem {
    int N = 0;
    double alpha = 1.0;
    const double* w = nullptr;       // (N,N) [i][j] = j -> i
    const double* c = nullptr;       // (N) W_in u + b
    const double* starts = nullptr;  // (M,N) initial states
    int M = 0;
};

enum class PointKind : std::uint8_t { Fixed = 0, Slow = 1 };
/// Stable: no |lambda(J)| > 1; saddle: some but not all; unstable: all N.
enum class Stability : std::int8_t { Stable = 0, Saddle = 1, Unstable = 2 };

/// The points found for one problem, P of them, ordered: fixed points before slow points, stable
/// before saddles before unstable, then by basin (descending), then by h (lexicographic).
struct PointSet {
    int N = 0;
    bool skipped = false;             // non-finite weights or initial states: nothing was searched
    std::vector<double> h;            // (P,N)
    std::vector<double> q;            // (P) 1/2 |F(h) - h|^2
    std::vector<PointKind> kind;      // (P)
    std::vector<std::int32_t> basin;  // (P) initial states that ended at the point
    std::vector<cplx> eig;            // (P,N) eigenvalues of J, sorted as eigenvalues()
    std::vector<double> rho;          // (P) max |lambda(J)|
    std::vector<std::int32_t> n_unstable;  // (P) eigenvalues of J with |lambda| > 1
    std::vector<Stability> stability;      // (P)
    int size() const { return static_cast<int>(q.size()); }
    int count(PointKind k) const;
    int count_stable_fixed() const;
};

/// q(h) = 1/2 |F(h) - h|^2 of one state.
double speed(const DynamicsProblem& p, const double* h);

/// J (N,N) row-major = (1-alpha) I + alpha diag(1 - tanh^2(W h + c)) W at h.
void jacobian(const DynamicsProblem& p, const double* h, double* J);

/// The L-BFGS phase of the search: from every initial state of every problem to its endpoint.
/// Per initial state it is one fixed iteration (kernels/dynamics_lbfgs.hpp); backends differ only
/// in the rounding of their sums and of tanh.
class DynamicsSearch {
public:
    virtual ~DynamicsSearch() = default;
    /// "cpu" or "cuda".
    virtual std::string name() const = 0;
    /// ends[i] (M_i,N_i) and q[i] (M_i): the endpoints of problem i and their q. Every problem
    /// has finite w, c and starts, M >= 1 and N >= 1.
    virtual void descend(std::span<const DynamicsProblem> problems, const DynamicsSettings& s,
                         std::vector<std::vector<double>>& ends,
                         std::vector<std::vector<double>>& q) = 0;
};

/// The CPU's L-BFGS: the active states of a chunk of 64 packed into one matrix (two dgemm calls
/// per evaluation), threads over chunks (0 = all cores).
std::unique_ptr<DynamicsSearch> make_cpu_dynamics_search(int threads);

/// The search of a backend (host/core/backend_select.cpp): Cpu, Cuda (InputError "--backend cuda:
/// ..." without a usable device or CUDA build), Auto (CUDA when usable, else the CPU).
std::unique_ptr<DynamicsSearch> make_dynamics_search(BackendKind kind, int threads);

/// Searches every problem with `search` (null: the CPU's on `threads` threads; 0 = all cores),
/// then clusters, refines and classifies on the CPU and computes the Jacobian spectra with
/// `solver` (null: LAPACK). Results in the order of `problems`.
std::vector<PointSet> find_fixed_points(std::span<const DynamicsProblem> problems,
                                        const DynamicsSettings& s, int threads,
                                        EigSolver* solver = nullptr,
                                        DynamicsSearch* search = nullptr);

}  // namespace eirnn
