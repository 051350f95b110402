// Eigenvalue spectra, singular values and the study's metrics (docs/MODEL.md §6) for many recurrent
// matrices at once. Eigenvalues: LAPACK dgeev (eigenvalues only, balanced) in double precision,
// threads over matrices, or any EigSolver (host/analysis/eig_solver.hpp); singular values: dgesdd.
// Matrices are float32 or float64 (K,N,N) row-major with W[i][j] = weight from unit j to unit i.
#pragma once
#include <complex>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace eirnn {

using cplx = std::complex<double>;

/// All N eigenvalues of one N x N matrix, sorted by descending modulus (ties: larger real part,
/// then larger imaginary part first). Throws Error if dgeev fails to converge.
std::vector<cplx> eigenvalues(const double* w, int N);

/// Sorts a spectrum of N eigenvalues in that order (descending modulus, then real, then imaginary).
void sort_spectrum(cplx* eig, int N);

/// Eigenvalues of K matrices (K,N,N) into out (K,N), each row sorted as above. threads 0 = all
/// cores.
void eigenvalues_batched(const float* w, int K, int N, cplx* out, int threads = 0);
void eigenvalues_batched(const double* w, int K, int N, cplx* out, int threads = 0);

/// The metrics of docs/MODEL.md §6 for one matrix and its sorted spectrum.
struct SpectralMetrics {
    double rho = 0;         // max |lambda|
    double r_outer = 0;     // |lambda| of the (outliers+1)-th largest modulus
    double r_inner = 0;     // min |lambda|
    double r_inner_p2 = 0;  // 2nd percentile of |lambda| (robust inner radius)
    double ring_ratio = 0;  // r_inner / r_outer (0 when r_outer = 0)
    double dom_re = 0;      // lambda_dom: the eigenvalue with the largest real part
    double dom_im = 0;
    double freq_arg = 0;        // |arg lambda_dom| / (2 pi dt), Hz with dt = 1 ms
    double freq_study = 0;      // |Im lambda_dom| / (2 pi Re lambda_dom) (study's form)
    double henrici = 0;         // sqrt(max(0, ||W||_F^2 - sum |lambda|^2)) / ||W||_F
    double lam_sym_max = 0;     // largest eigenvalue of (W + W^T)/2
    double n_outside_unit = 0;  // count of |lambda| > 1
    double n_re_gt1 = 0;        // count of Re lambda > 1
    double sv_max = 0;          // largest singular value
    double sv_min = 0;          // smallest singular value
    double sv_spread = 0;       // sv_max / sv_min (inf when sv_min = 0)
    double nse = 0;             // normalised SVD entropy (normalised_svd_entropy)
};

/// Normalised SVD entropy of Li et al. 2023 ("Learning better with Dale's Law: a spectral
/// perspective", NeurIPS): p_i = s_i / sum_j s_j, NSE = -(1 / ln N) sum_i p_i ln p_i (terms with
/// p_i = 0 count 0) over the N singular values s. 1 when all are equal (an orthogonal matrix), 0
/// for rank 1; NaN when they sum to 0, for N = 1, or when any is NaN.
double normalised_svd_entropy(std::span<const double> sv);

/// Per-population weight statistics of W_rec: populations by (source, target), E = sign +1.
/// ee = E->E (columns E, rows E), ei = E->I (columns E, rows I), ie = I->E, ii = I->I.
/// For an empty block (no E or no I units) all three numbers are NaN.
struct WeightStats {
    double mean[4] = {};  // order ee, ei, ie, ii
    double std[4] = {};
    double zero_frac[4] = {};  // fraction of entries exactly 0
};

/// Metrics of one matrix (N x N, double) with its spectrum sorted as by eigenvalues().
/// dt: time step in seconds for freq_arg (default 1 ms). sv_out (N), when non-null, receives the
/// singular values the sv_* and nse metrics come from, descending (NaN where those are NaN).
SpectralMetrics spectral_metrics(const double* w, int N, std::span<const cplx> eig, int outliers,
                                 double dt = 1e-3, double* sv_out = nullptr);

/// sign: (N) +1 for excitatory units, -1 for inhibitory; signs along `axis` columns (outgoing).
WeightStats weight_stats(const double* w, int N, std::span<const std::int8_t> sign);

/// Column names of the metrics table in a fixed order (those of SpectralMetrics, then
/// w_{ee,ei,ie,ii}_{mean,std,zero}), and the row of values in that order.
const std::vector<std::string>& metric_names();
std::vector<double> metric_row(const SpectralMetrics& m, const WeightStats* ws);

/// A table of K rows (one per matrix) with the columns of metric_names().
struct MetricsTable {
    std::vector<std::string> names;
    std::vector<std::vector<double>> columns;  // columns[c][k]
};

class EigSolver;  // host/analysis/eig_solver.hpp

/// Spectra + metrics for K matrices (K,N,N) float, in parallel. sign: (N) shared by all matrices,
/// (K,N) one row per matrix, or empty (no weight stats, those columns NaN). eig_out (K,N) and
/// sv_out (K,N) (all singular values, descending, in double; the sv_* and nse columns come from
/// them) are filled when non-null. A matrix with non-finite entries gets NaN eigenvalues, singular
/// values and metrics (so does one whose eigenvalues the solver could not compute). solver: null
/// computes each matrix's eigenvalues with LAPACK next to its metrics; otherwise the solver
/// computes the eigenvalues of all matrices first (in double), then the metrics follow in parallel
/// (the LAPACK solver gives bit-identical results).
MetricsTable analyse(const float* w, int K, int N, std::span<const std::int8_t> sign, int outliers,
                     cplx* eig_out, int threads = 0, EigSolver* solver = nullptr,
                     double* sv_out = nullptr);
MetricsTable analyse(const double* w, int K, int N, std::span<const std::int8_t> sign, int outliers,
                     cplx* eig_out, int threads = 0, EigSolver* solver = nullptr,
                     double* sv_out = nullptr);

}  // namespace eirnn
