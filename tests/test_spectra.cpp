// Tests of host/spectra and host/spectra_io: eigenvalues of matrices with exactly known spectra
// (orthogonal, triangular, rotation blocks), random-matrix laws (Girko's circular law; Rajan &
// Abbott 2006 for balanced E/I columns), the docs/MODEL.md §6 metrics, singular values and the
// normalised SVD entropy (Li et al. 2023) against an independent SVD (dgesvd), and the
// results-file round trip.
#include <gtest/gtest.h>
#include <lapacke.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <numbers>
#include <random>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "host/analysis/eig_solver.hpp"
#include "host/analysis/spectra.hpp"
#include "host/core/error.hpp"
#include "host/core/model.hpp"
#include "host/io/h5.hpp"
#include "host/io/spectra_io.hpp"
#include "tests/test_util.hpp"

namespace eirnn {
namespace {

namespace fs = std::filesystem;
using testutil::matched_error;

std::vector<double> gaussian(int rows, int cols, double stddev, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> d(0.0, stddev);
    std::vector<double> w(std::size_t(rows) * cols);
    for (double& x : w) x = d(rng);
    return w;
}

/// Haar-random orthogonal N x N matrix: Q of QR(G), columns sign-corrected by diag(R).
std::vector<double> orthogonal(int N, std::uint64_t seed) {
    std::vector<double> a = gaussian(N, N, 1.0, seed);
    std::vector<double> tau(N);
    EXPECT_EQ(LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, N, N, a.data(), N, tau.data()), 0);
    std::vector<double> diag(N);
    for (int i = 0; i < N; ++i) diag[i] = a[std::size_t(i) * N + i];
    EXPECT_EQ(LAPACKE_dorgqr(LAPACK_ROW_MAJOR, N, N, N, a.data(), N, tau.data()), 0);
    for (int i = 0; i < N; ++i)
        for (int j = 0; j < N; ++j) a[std::size_t(i) * N + j] *= diag[j] < 0 ? -1.0 : 1.0;
    return a;
}

/// Block diagonal of 2x2 rotation-scalings r [cos t, -sin t; sin t, cos t]: eigenvalues r e^{±it}.
std::vector<double> rotation_blocks(const std::vector<double>& r, const std::vector<double>& t) {
    const int N = 2 * static_cast<int>(r.size());
    std::vector<double> w(std::size_t(N) * N, 0.0);
    for (std::size_t b = 0; b < r.size(); ++b) {
        std::size_t i = 2 * b;
        w[i * N + i] = r[b] * std::cos(t[b]);
        w[i * N + i + 1] = -r[b] * std::sin(t[b]);
        w[(i + 1) * N + i] = r[b] * std::sin(t[b]);
        w[(i + 1) * N + i + 1] = r[b] * std::cos(t[b]);
    }
    return w;
}

/// C = A B for N x N row-major matrices.
std::vector<double> matmul(const std::vector<double>& a, const std::vector<double>& b, int N,
                           bool transpose_b = false) {
    std::vector<double> c(std::size_t(N) * N, 0.0);
    for (int i = 0; i < N; ++i)
        for (int k = 0; k < N; ++k) {
            double aik = a[std::size_t(i) * N + k];
            for (int j = 0; j < N; ++j)
                c[std::size_t(i) * N + j] +=
                    aik * (transpose_b ? b[std::size_t(j) * N + k] : b[std::size_t(k) * N + j]);
        }
    return c;
}

/// Singular values of an N x N row-major matrix by dgesvd (QR iteration; the code under test uses
/// the divide-and-conquer dgesdd), descending.
std::vector<double> reference_singular_values(std::vector<double> a, int N) {
    std::vector<double> s(N), superb(std::max(1, N - 1));
    EXPECT_EQ(LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'N', 'N', N, N, a.data(), N, s.data(), nullptr, 1,
                             nullptr, 1, superb.data()),
              0);
    return s;
}

/// The largest of |a_i - b_i| / |b_i| (a_i = b_i = 0 counts 0).
double max_relative_error(const std::vector<double>& a, const std::vector<double>& b) {
    EXPECT_EQ(a.size(), b.size());
    double worst = 0;
    for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i)
        if (a[i] != b[i]) worst = std::max(worst, std::abs(a[i] - b[i]) / std::abs(b[i]));
    return worst;
}

/// a and b hold the same doubles, NaN where either is NaN.
template <class V>
bool same_or_both_nan(const V& a, const V& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const auto& x = a[i];
        const auto& y = b[i];
        if constexpr (std::is_same_v<std::decay_t<decltype(x)>, cplx>) {
            if (std::isnan(x.real()) && std::isnan(y.real())) continue;
        } else {
            if (std::isnan(x) && std::isnan(y)) continue;
        }
        if (x != y) return false;
    }
    return true;
}

fs::path temp_dir(const std::string& name) {
    fs::path d = fs::temp_directory_path() /
                 ("eirnn_test_spectra_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

TEST(Eigenvalues, OrthogonalUnitModulus_N10_N100_N400) {
    for (int N : {10, 100, 400}) {
        std::vector<double> q = orthogonal(N, 7 + N);
        std::vector<cplx> eig = eigenvalues(q.data(), N);
        ASSERT_EQ(static_cast<int>(eig.size()), N);
        for (const cplx& z : eig) EXPECT_NEAR(std::abs(z), 1.0, 1e-10) << "N=" << N;
    }
}

TEST(Eigenvalues, TriangularGivesDiagonal_N50) {
    const int N = 50;
    std::vector<double> w = gaussian(N, N, 1.0, 3);
    std::vector<cplx> diag;
    for (int i = 0; i < N; ++i)
        for (int j = 0; j < i; ++j) w[std::size_t(i) * N + j] = 0;
    for (int i = 0; i < N; ++i) {
        w[std::size_t(i) * N + i] = -1.5 + 0.06 * i;
        diag.emplace_back(w[std::size_t(i) * N + i], 0.0);
    }
    std::vector<cplx> eig = eigenvalues(w.data(), N);
    EXPECT_LT(matched_error(diag, eig), 1e-12);
    for (const cplx& z : eig) EXPECT_EQ(z.imag(), 0.0);
}

TEST(Eigenvalues, RotationBlocksExactPairsSorted_N8) {
    std::vector<double> r = {0.5, 1.2, 0.9, 1.2}, t = {0.3, 2.0, -1.1, 0.7};
    std::vector<double> w = rotation_blocks(r, t);
    std::vector<cplx> eig = eigenvalues(w.data(), 8);
    std::vector<cplx> expected;
    for (std::size_t b = 0; b < r.size(); ++b) {
        expected.push_back(std::polar(r[b], t[b]));
        expected.push_back(std::polar(r[b], -t[b]));
    }
    EXPECT_LT(matched_error(expected, eig), 1e-14);
    // Descending modulus; ties by larger real part, then larger imaginary part first.
    for (int i = 0; i + 1 < 8; ++i) {
        double a = std::abs(eig[i]), b = std::abs(eig[i + 1]);
        EXPECT_GE(a, b - 1e-15);
    }
    EXPECT_NEAR(eig[0].real(), 1.2 * std::cos(0.7), 1e-14);
    EXPECT_GT(eig[0].imag(), 0);
    EXPECT_EQ(eig[1], std::conj(eig[0]));
    EXPECT_NEAR(eig[2].real(), 1.2 * std::cos(2.0), 1e-14);
}

TEST(Eigenvalues, BatchedMatchesSingleAndThreadCount_K7_N33) {
    const int K = 7, N = 33;
    std::vector<double> w = gaussian(K * N, N, 1.0 / std::sqrt(N), 11);
    std::vector<float> wf(w.begin(), w.end());
    std::vector<cplx> one(std::size_t(K) * N), two(std::size_t(K) * N), fl(std::size_t(K) * N);
    eigenvalues_batched(w.data(), K, N, one.data(), 1);
    eigenvalues_batched(w.data(), K, N, two.data(), 2);
    eigenvalues_batched(wf.data(), K, N, fl.data(), 0);
    EXPECT_EQ(one, two);
    for (int k = 0; k < K; ++k) {
        std::vector<cplx> single = eigenvalues(w.data() + std::size_t(k) * N * N, N);
        for (int i = 0; i < N; ++i) EXPECT_EQ(single[i], one[std::size_t(k) * N + i]);
        std::vector<double> wk(wf.begin() + std::size_t(k) * N * N,
                               wf.begin() + std::size_t(k + 1) * N * N);
        std::vector<cplx> from_float = eigenvalues(wk.data(), N);
        for (int i = 0; i < N; ++i) EXPECT_EQ(from_float[i], fl[std::size_t(k) * N + i]);
    }
}

TEST(Eigenvalues, NonFiniteMatrixGivesNaNRowInBatch_K3_N5) {
    const int K = 3, N = 5;
    std::vector<double> w = gaussian(K * N, N, 1.0, 5);
    w[N * N + 7] = std::nan("");
    std::vector<cplx> out(K * N);
    eigenvalues_batched(w.data(), K, N, out.data(), 0);
    for (int i = 0; i < N; ++i) {
        EXPECT_TRUE(std::isfinite(out[i].real()));
        EXPECT_TRUE(std::isnan(out[N + i].real()));
        EXPECT_TRUE(std::isfinite(out[2 * N + i].real()));
    }
    EXPECT_THROW(eigenvalues(w.data() + N * N, N), InputError);
}

TEST(Eigenvalues, GirkoCircularLaw_N1000) {
    const int N = 1000;
    std::vector<double> w = gaussian(N, N, 1.0 / std::sqrt(N), 2024);
    std::vector<cplx> eig = eigenvalues(w.data(), N);
    double rho = std::abs(eig[0]);
    EXPECT_GE(rho, 0.95);
    EXPECT_LE(rho, 1.1);
    int inside = 0;
    for (const cplx& z : eig) inside += std::abs(z) <= 1.02;
    EXPECT_GE(inside, 990);
}

/// E columns N(mu_E, sigma_E^2/N), I columns N(mu_I, sigma_I^2/N) with f_E mu_E + (1-f_E) mu_I = 0:
/// bulk radius sqrt(f_E sigma_E^2 + (1-f_E) sigma_I^2) (Rajan & Abbott 2006, PRL 97, 188104).
std::vector<double> rajan_abbott(int N, double f_e, double mu_e, double s_e, double s_i,
                                 bool balance_rows, std::uint64_t seed) {
    const int n_e = static_cast<int>(std::lround(f_e * N));
    const double mu_i = -f_e * mu_e / (1 - f_e);
    std::vector<double> z = gaussian(N, N, 1.0 / std::sqrt(N), seed);
    std::vector<double> w(std::size_t(N) * N);
    for (int i = 0; i < N; ++i) {
        double row_mean = 0;
        for (int j = 0; j < N; ++j) {
            double& x = z[std::size_t(i) * N + j];
            x *= j < n_e ? s_e : s_i;
            row_mean += x / N;
        }
        for (int j = 0; j < N; ++j)
            w[std::size_t(i) * N + j] =
                (j < n_e ? mu_e : mu_i) + z[std::size_t(i) * N + j] - (balance_rows ? row_mean : 0);
    }
    return w;
}

TEST(Eigenvalues, RajanAbbottBulkRadius_N1000) {
    const int N = 1000, k = 6;
    const double f_e = 0.8, s_e = 1.0, s_i = 2.0;
    const double radius = std::sqrt(f_e * s_e * s_e + (1 - f_e) * s_i * s_i);
    // Zero means; then strong opposite means with the rows balanced exactly (their "local
    // balance"), which removes the outliers the mean structure would otherwise create.
    struct Case {
        double mu_e;
        bool balance;
    };
    const Case cases[2] = {{0.0, false}, {0.5, true}};
    std::vector<double> w;
    for (const Case& c : cases) {
        std::vector<double> wc = rajan_abbott(N, f_e, c.mu_e, s_e, s_i, c.balance, 99);
        w.insert(w.end(), wc.begin(), wc.end());
    }
    std::vector<cplx> eig(2 * N);
    eigenvalues_batched(w.data(), 2, N, eig.data());
    for (int c = 0; c < 2; ++c) {
        double r_outer = std::abs(eig[c * N + k]);  // the (k+1)-th largest modulus
        EXPECT_NEAR(r_outer / radius, 1.0, 0.05) << "mu_E=" << cases[c].mu_e;
    }
}

TEST(Metrics, HenriciNearZeroForNormalMatrices_N100) {
    const int N = 100;
    std::vector<std::vector<double>> normals;
    normals.push_back(orthogonal(N, 1));
    std::vector<double> g = gaussian(N, N, 1.0, 2), sym(std::size_t(N) * N);
    for (int i = 0; i < N; ++i)
        for (int j = 0; j < N; ++j)
            sym[std::size_t(i) * N + j] = g[std::size_t(i) * N + j] + g[std::size_t(j) * N + i];
    normals.push_back(sym);
    std::vector<double> r(N / 2), t(N / 2);
    for (int b = 0; b < N / 2; ++b) {
        r[b] = 0.2 + 0.015 * b;
        t[b] = 0.1 + 0.05 * b;
    }
    std::vector<double> blocks = rotation_blocks(r, t);
    normals.push_back(blocks);
    std::vector<double> q = orthogonal(N, 3);
    normals.push_back(matmul(matmul(q, blocks, N), q, N, true));  // Q B Q^T: normal, not symmetric
    for (std::size_t c = 0; c < normals.size(); ++c) {
        std::vector<cplx> eig = eigenvalues(normals[c].data(), N);
        SpectralMetrics m = spectral_metrics(normals[c].data(), N, eig, 6);
        EXPECT_LE(m.henrici, 1e-12) << "case " << c;
        EXPECT_GE(m.henrici, 0.0);
    }
}

TEST(Metrics, HenriciLargeForJordanBlock_N10) {
    const int N = 10;
    std::vector<double> j(N * N, 0.0);
    for (int i = 0; i < N; ++i) j[i * N + i] = 0.5;
    for (int i = 0; i + 1 < N; ++i) j[i * N + i + 1] = 1.0;
    std::vector<cplx> eig = eigenvalues(j.data(), N);
    SpectralMetrics m = spectral_metrics(j.data(), N, eig, 6);
    // Exact: sqrt(N - 1) / sqrt(N 0.25 + N - 1) = 0.838.
    EXPECT_GT(m.henrici, 0.5);
    EXPECT_NEAR(m.henrici, std::sqrt(9.0 / 11.5), 1e-6);
}

TEST(Metrics, ROuterIsKPlusOnethLargestModulus_N30) {
    const int N = 30;
    std::vector<double> w = gaussian(N, N, 1.0 / std::sqrt(N), 8);
    std::vector<cplx> eig = eigenvalues(w.data(), N);
    std::vector<double> mod;
    for (const cplx& z : eig) mod.push_back(std::abs(z));
    std::sort(mod.rbegin(), mod.rend());
    for (int k = 0; k < N; ++k) {
        SpectralMetrics m = spectral_metrics(w.data(), N, eig, k);
        EXPECT_EQ(m.r_outer, mod[k]) << "k=" << k;
    }
    SpectralMetrics m = spectral_metrics(w.data(), N, eig, 6);
    EXPECT_EQ(m.rho, mod.front());
    EXPECT_EQ(m.r_inner, mod.back());
    EXPECT_DOUBLE_EQ(m.ring_ratio, mod.back() / mod[6]);
    EXPECT_EQ(spectral_metrics(w.data(), N, eig, 100).r_outer, mod.back());
    EXPECT_THROW(spectral_metrics(w.data(), N, eig, -1), InputError);
}

TEST(Metrics, KnownValuesOfRotationBlocks_N4) {
    // Blocks 1.2 e^{±0.7i} and 0.5 e^{±0.3i}: lam_dom = 1.2 e^{0.7i}.
    std::vector<double> w = rotation_blocks({1.2, 0.5}, {0.7, 0.3});
    std::vector<cplx> eig = eigenvalues(w.data(), 4);
    SpectralMetrics m = spectral_metrics(w.data(), 4, eig, 1);
    EXPECT_NEAR(m.rho, 1.2, 1e-14);
    EXPECT_NEAR(m.r_outer, 1.2, 1e-14);
    EXPECT_NEAR(m.r_inner, 0.5, 1e-14);
    EXPECT_NEAR(m.dom_re, 1.2 * std::cos(0.7), 1e-14);
    EXPECT_NEAR(m.dom_im, 1.2 * std::sin(0.7), 1e-14);
    EXPECT_NEAR(m.freq_arg, 0.7 / (2 * std::numbers::pi * 1e-3), 1e-9);
    EXPECT_NEAR(m.freq_study, std::tan(0.7) / (2 * std::numbers::pi), 1e-12);
    EXPECT_NEAR(m.lam_sym_max, 1.2 * std::cos(0.7), 1e-14);
    EXPECT_EQ(m.n_outside_unit, 2);
    EXPECT_EQ(m.n_re_gt1, 0);
    EXPECT_NEAR(m.sv_max, 1.2, 1e-14);
    EXPECT_NEAR(m.sv_min, 0.5, 1e-14);
    EXPECT_NEAR(m.sv_spread, 2.4, 1e-13);
    EXPECT_LT(m.henrici, 1e-14);
}

TEST(Metrics, SymmetricPartAndSingularValues_N6) {
    // Upper triangular ones: symmetric part has known largest eigenvalue; compare with LAPACK on
    // it.
    const int N = 6;
    std::vector<double> w(N * N, 0.0), s(N * N);
    for (int i = 0; i < N; ++i)
        for (int j = i; j < N; ++j) w[i * N + j] = 0.5 + 0.1 * (i + 2 * j);
    for (int i = 0; i < N; ++i)
        for (int j = 0; j < N; ++j) s[i * N + j] = 0.5 * (w[i * N + j] + w[j * N + i]);
    std::vector<double> ev(N);
    ASSERT_EQ(LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', N, s.data(), N, ev.data()), 0);
    std::vector<cplx> eig = eigenvalues(w.data(), N);
    SpectralMetrics m = spectral_metrics(w.data(), N, eig, 0);
    EXPECT_NEAR(m.lam_sym_max, ev.back(), 1e-12);
    EXPECT_EQ(m.n_re_gt1, 4);  // diagonal 0.5, 0.8, ..., 2.0
    std::vector<double> singular(N * N, 0.0);
    for (int i = 0; i < N; ++i) singular[i * N + i] = i;  // diag(0..5): singular
    SpectralMetrics z = spectral_metrics(singular.data(), N, eigenvalues(singular.data(), N), 0);
    EXPECT_EQ(z.sv_min, 0.0);
    EXPECT_TRUE(std::isinf(z.sv_spread));
    EXPECT_EQ(z.freq_study, 0.0);
}

TEST(SpectraNse, KnownValuesAndEdgeCases) {
    // p = (3/4, 1/4): H = -(3/4 ln 3/4 + 1/4 ln 1/4) / ln 2.
    const double expected = -(0.75 * std::log(0.75) + 0.25 * std::log(0.25)) / std::log(2.0);
    EXPECT_NEAR(normalised_svd_entropy(std::vector<double>{3.0, 1.0}), expected, 1e-15);
    EXPECT_NEAR(normalised_svd_entropy(std::vector<double>(7, 0.3)), 1.0, 1e-15);
    EXPECT_EQ(normalised_svd_entropy(std::vector<double>{2.0, 0.0, 0.0}), 0.0);  // 0 ln 0 = 0
    EXPECT_TRUE(std::isnan(normalised_svd_entropy(std::vector<double>(5, 0.0))));
    EXPECT_TRUE(std::isnan(normalised_svd_entropy(std::vector<double>{1.5})));
    EXPECT_TRUE(std::isnan(normalised_svd_entropy(std::vector<double>{1.0, std::nan("")})));
}

TEST(SpectraNse, OrthogonalMatrixIsOne_N10_N100) {
    for (int N : {10, 100}) {
        std::vector<double> q = orthogonal(N, 60 + N);
        std::vector<double> sv(N);
        SpectralMetrics m =
            spectral_metrics(q.data(), N, eigenvalues(q.data(), N), 6, 1e-3, sv.data());
        EXPECT_NEAR(m.nse, 1.0, 1e-12) << "N=" << N;
        EXPECT_LE(m.nse, 1.0 + 1e-15) << "N=" << N;
        for (double s : sv) EXPECT_NEAR(s, 1.0, 1e-12) << "N=" << N;
    }
}

TEST(SpectraNse, RankOneMatrixIsZero_N30) {
    const int N = 30;
    std::vector<double> u = gaussian(N, 1, 1.0, 61), v = gaussian(N, 1, 1.0, 62);
    std::vector<double> w(std::size_t(N) * N);
    for (int i = 0; i < N; ++i)
        for (int j = 0; j < N; ++j) w[std::size_t(i) * N + j] = u[i] * v[j];
    std::vector<double> sv(N);
    SpectralMetrics m = spectral_metrics(w.data(), N, eigenvalues(w.data(), N), 6, 1e-3, sv.data());
    EXPECT_NEAR(m.nse, 0.0, 1e-12);
    EXPECT_GE(m.nse, 0.0);
    double norm_u = 0, norm_v = 0;
    for (int i = 0; i < N; ++i) {
        norm_u += u[i] * u[i];
        norm_v += v[i] * v[i];
    }
    EXPECT_NEAR(sv[0], std::sqrt(norm_u * norm_v), 1e-12 * sv[0]);  // sigma_1 = |u| |v|
    EXPECT_LT(sv[1], 1e-13 * sv[0]);
}

TEST(SpectraSingularValues, MatchDgesvdAndDriveSvMetrics_N7_N33_N127) {
    for (int N : {7, 33, 127}) {
        std::vector<double> w = gaussian(N, N, 1.0 / std::sqrt(N), 70 + N);
        std::vector<double> sv(N);
        SpectralMetrics m =
            spectral_metrics(w.data(), N, eigenvalues(w.data(), N), 3, 1e-3, sv.data());
        std::vector<double> ref = reference_singular_values(w, N);
        EXPECT_LE(max_relative_error(sv, ref), 1e-10) << "N=" << N;
        EXPECT_TRUE(std::is_sorted(sv.rbegin(), sv.rend())) << "N=" << N;
        EXPECT_EQ(m.sv_max, sv.front());
        EXPECT_EQ(m.sv_min, sv.back());
        EXPECT_EQ(m.sv_spread, sv.front() / sv.back());
        EXPECT_EQ(m.nse, normalised_svd_entropy(sv));
        EXPECT_GT(m.nse, 0.5);
        EXPECT_LT(m.nse, 1.0);
        // Without sv_out the same metrics.
        SpectralMetrics again = spectral_metrics(w.data(), N, eigenvalues(w.data(), N), 3);
        EXPECT_EQ(again.nse, m.nse);
        EXPECT_EQ(again.sv_max, m.sv_max);
    }
}

TEST(SpectraSingularValues, AnalyseRowsFloatWidenedAndNaNRows_K5_N21) {
    const int K = 5, N = 21;
    std::vector<double> wd = gaussian(K * N, N, 1.0 / std::sqrt(N), 81);
    std::vector<float> wf(wd.begin(), wd.end());
    wf[2 * N * N + 17] = std::numeric_limits<float>::quiet_NaN();  // matrix 2: a NaN row
    std::vector<cplx> eig(K * N);
    std::vector<double> sv(K * N, -1.0), sv_solver(K * N, -1.0);
    MetricsTable t = analyse(wf.data(), K, N, {}, 3, eig.data(), 2, nullptr, sv.data());
    std::unique_ptr<EigSolver> lapack = make_lapack_eig_solver(2);
    MetricsTable ts = analyse(wf.data(), K, N, {}, 3, nullptr, 2, lapack.get(), sv_solver.data());
    EXPECT_TRUE(same_or_both_nan(sv, sv_solver));
    const auto& names = t.names;
    const std::size_t c_max = std::find(names.begin(), names.end(), "sv_max") - names.begin();
    const std::size_t c_min = std::find(names.begin(), names.end(), "sv_min") - names.begin();
    const std::size_t c_nse = std::find(names.begin(), names.end(), "nse") - names.begin();
    ASSERT_LT(c_nse, names.size());
    for (int k = 0; k < K; ++k) {
        std::vector<double> row(sv.begin() + k * N, sv.begin() + (k + 1) * N);
        if (k == 2) {
            for (double s : row) EXPECT_TRUE(std::isnan(s));
            EXPECT_TRUE(std::isnan(t.columns[c_nse][k]));
            EXPECT_TRUE(std::isnan(t.columns[c_max][k]));
            continue;
        }
        // The float32 matrix widened to double, then its singular values.
        std::vector<double> widened(wf.begin() + k * N * N, wf.begin() + (k + 1) * N * N);
        EXPECT_LE(max_relative_error(row, reference_singular_values(widened, N)), 1e-10)
            << "k=" << k;
        EXPECT_EQ(t.columns[c_max][k], row.front());
        EXPECT_EQ(t.columns[c_min][k], row.back());
        EXPECT_EQ(t.columns[c_nse][k], normalised_svd_entropy(row));
    }
}

TEST(WeightStats, PopulationsMeansStdsZeros_N4) {
    // Units 0,1 excitatory, 2,3 inhibitory; w[i][j] = j -> i.
    std::vector<double> w = {1, 3, -2, 0,   //
                             0, 2, -4, -2,  //
                             5, 0, 0,  -1,  //
                             1, 1, -1, -3};
    std::vector<std::int8_t> sign = {1, 1, -1, -1};
    WeightStats s = weight_stats(w.data(), 4, sign);
    // ee: rows 0,1 cols 0,1 = {1,3,0,2}; ei: rows 2,3 cols 0,1 = {5,0,1,1};
    // ie: rows 0,1 cols 2,3 = {-2,0,-4,-2}; ii: rows 2,3 cols 2,3 = {0,-1,-1,-3}.
    EXPECT_DOUBLE_EQ(s.mean[0], 1.5);
    EXPECT_DOUBLE_EQ(s.mean[1], 1.75);
    EXPECT_DOUBLE_EQ(s.mean[2], -2.0);
    EXPECT_DOUBLE_EQ(s.mean[3], -1.25);
    EXPECT_DOUBLE_EQ(s.std[0], std::sqrt(1.25));
    EXPECT_DOUBLE_EQ(s.zero_frac[0], 0.25);
    EXPECT_DOUBLE_EQ(s.zero_frac[1], 0.25);
    EXPECT_DOUBLE_EQ(s.zero_frac[2], 0.25);
    EXPECT_DOUBLE_EQ(s.zero_frac[3], 0.25);
    std::vector<std::int8_t> all_e = {1, 1, 1, 1};
    WeightStats e = weight_stats(w.data(), 4, all_e);
    EXPECT_TRUE(std::isnan(e.mean[1]) && std::isnan(e.std[2]) && std::isnan(e.zero_frac[3]));
    EXPECT_DOUBLE_EQ(e.mean[0], 0.0);
}

TEST(Analyse, TableColumnsMatchSingleMatrixMetrics_K5_N20) {
    const int K = 5, N = 20;
    std::vector<double> wd = gaussian(K * N, N, 1.0 / std::sqrt(N), 21);
    std::vector<float> w(wd.begin(), wd.end());
    std::vector<std::int8_t> sign(N);
    for (int i = 0; i < N; ++i) sign[i] = i < 12 ? 1 : -1;
    std::vector<cplx> eig(K * N);
    MetricsTable t = analyse(w.data(), K, N, sign, 3, eig.data(), 2);
    ASSERT_EQ(t.names, metric_names());
    ASSERT_EQ(t.columns.size(), t.names.size());
    EXPECT_EQ(t.names.size(), 17u + 12u);
    for (int k = 0; k < K; ++k) {
        std::vector<double> wk(w.begin() + k * N * N, w.begin() + (k + 1) * N * N);
        std::vector<cplx> e = eigenvalues(wk.data(), N);
        WeightStats ws = weight_stats(wk.data(), N, sign);
        std::vector<double> row = metric_row(spectral_metrics(wk.data(), N, e, 3), &ws);
        for (std::size_t c = 0; c < row.size(); ++c)
            EXPECT_EQ(row[c], t.columns[c][k]) << t.names[c] << " k=" << k;
        for (int i = 0; i < N; ++i) EXPECT_EQ(e[i], eig[k * N + i]);
    }
    MetricsTable no_sign = analyse(w.data(), K, N, {}, 3, nullptr, 0);
    EXPECT_TRUE(std::isnan(no_sign.columns.back()[0]));
    EXPECT_EQ(no_sign.columns[0], t.columns[0]);
}

TEST(SpectraIo, MetricsTableRoundTripsThroughHdf5) {
    fs::path dir = temp_dir("roundtrip");
    MetricsTable t;
    t.names = metric_names();
    for (std::size_t c = 0; c < t.names.size(); ++c)
        t.columns.push_back(
            {0.1 * c, -1.0 / 3.0, std::nan(""), 1e300, std::numeric_limits<double>::infinity()});
    {
        h5::Id f = h5::create(dir / "m.h5");
        h5::Id g = h5::require_group(f, "groups/g0000");
        write_metrics(g, "metrics", t, 4);
        write_metrics(g, "metrics", t, 5);  // replaces
    }
    h5::Id f = h5::open_read(dir / "m.h5");
    h5::Id g = h5::open_group(f, "groups/g0000");
    MetricsTable back = read_metrics(g, "metrics");
    ASSERT_EQ(back.names, t.names);
    for (std::size_t c = 0; c < t.names.size(); ++c)
        for (std::size_t k = 0; k < t.columns[c].size(); ++k) {
            double a = t.columns[c][k], b = back.columns[c][k];
            if (std::isnan(a))
                EXPECT_TRUE(std::isnan(b));
            else
                EXPECT_EQ(a, b);
        }
    h5::Id mg = h5::open_group(g, "metrics");
    EXPECT_EQ(h5::read_attr_double(mg, "outliers"), 5.0);
    fs::remove_all(dir);
}

TEST(SpectraIo, GroupSpectraThreeStages_K3_N24) {
    const int K = 3, N = 24;
    std::vector<double> w0d = gaussian(K * N, N, 1.0 / std::sqrt(N), 31);
    std::vector<double> w1d = gaussian(K * N, N, 0.5 / std::sqrt(N), 32);
    std::vector<float> w0(w0d.begin(), w0d.end()), w1(w1d.begin(), w1d.end());
    std::vector<std::int8_t> sign(K * N);
    std::vector<float> sign_f(N);
    for (int i = 0; i < N; ++i) sign_f[i] = i < 16 ? 1.0f : -1.0f;
    for (int k = 0; k < K; ++k)
        for (int i = 0; i < N; ++i) sign[k * N + i] = static_cast<std::int8_t>(sign_f[i]);
    fs::path dir = temp_dir("group");
    for (DaleMode dale : {DaleMode::Project, DaleMode::None}) {
        fs::path file = dir / (dale == DaleMode::Project ? "p.h5" : "n.h5");
        {
            h5::Id f = h5::create(file);
            h5::Id g = h5::require_group(f, "groups/g0000");
            GroupMatrices gm;
            gm.K = K;
            gm.N = N;
            gm.w_initial = w0.data();
            gm.w_final = w1.data();
            gm.sign = sign.data();
            gm.dale = dale;
            write_group_spectra(g, gm, 6, 0);
        }
        h5::Id f = h5::open_read(file);
        h5::Id g = h5::open_group(f, "groups/g0000");
        for (const char* name :
             {"eig_initial", "eig_projected", "eig", "sv_initial", "sv_projected", "sv"})
            EXPECT_EQ(h5::shape(g, name), (std::vector<hsize_t>{K, N})) << name;
        auto sv0 = h5::read_double(g, "sv_initial").data;
        auto svp = h5::read_double(g, "sv_projected").data;
        auto sv1 = h5::read_double(g, "sv").data;
        auto eig0 = h5::read_complex(g, "eig_initial").data;
        auto eigp = h5::read_complex(g, "eig_projected").data;
        auto eig1 = h5::read_complex(g, "eig").data;
        for (int k = 0; k < K; ++k) {
            std::vector<double> a(w0.begin() + k * N * N, w0.begin() + (k + 1) * N * N);
            std::vector<double> b(w1.begin() + k * N * N, w1.begin() + (k + 1) * N * N);
            std::vector<cplx> e0 = eigenvalues(a.data(), N), e1 = eigenvalues(b.data(), N);
            std::vector<float> pf(w0.begin() + k * N * N, w0.begin() + (k + 1) * N * N);
            project_dale(pf.data(), N, sign_f.data(), DaleAxis::Outgoing, nullptr);
            std::vector<double> p(pf.begin(), pf.end());
            std::vector<cplx> ep = dale == DaleMode::Project ? eigenvalues(p.data(), N) : e0;
            for (int i = 0; i < N; ++i) {
                EXPECT_EQ(eig0[k * N + i], e0[i]);
                EXPECT_EQ(eigp[k * N + i], ep[i]);
                EXPECT_EQ(eig1[k * N + i], e1[i]);
            }
            auto row = [&](const std::vector<double>& v) {
                return std::vector<double>(v.begin() + k * N, v.begin() + (k + 1) * N);
            };
            const std::vector<double> r0 = reference_singular_values(a, N);
            EXPECT_LE(max_relative_error(row(sv0), r0), 1e-10) << "k=" << k;
            EXPECT_LE(max_relative_error(row(sv1), reference_singular_values(b, N)), 1e-10);
            if (dale == DaleMode::Project) {
                EXPECT_LE(max_relative_error(row(svp), reference_singular_values(p, N)), 1e-10);
                EXPECT_NE(row(svp), row(sv0));
            } else {
                EXPECT_EQ(row(svp), row(sv0));
            }
        }
        for (const auto& [sv_name, metrics_name] :
             {std::pair{"sv_initial", "metrics_initial"},
              std::pair{"sv_projected", "metrics_projected"}, std::pair{"sv", "metrics"}}) {
            const std::vector<double> svs = h5::read_double(g, sv_name).data;
            MetricsTable t = read_metrics(g, metrics_name);
            auto column = [&](const char* n) {
                return t.columns[std::find(t.names.begin(), t.names.end(), n) - t.names.begin()];
            };
            for (int k = 0; k < K; ++k) {
                std::vector<double> r(svs.begin() + k * N, svs.begin() + (k + 1) * N);
                EXPECT_EQ(column("sv_max")[k], r.front()) << sv_name;
                EXPECT_EQ(column("sv_min")[k], r.back()) << sv_name;
                EXPECT_EQ(column("nse")[k], normalised_svd_entropy(r)) << sv_name;
            }
        }
        for (const char* name : {"metrics_initial", "metrics_projected", "metrics"}) {
            MetricsTable t = read_metrics(g, name);
            EXPECT_EQ(t.names, metric_names());
            EXPECT_EQ(t.columns[0].size(), std::size_t(K));
            EXPECT_FALSE(std::isnan(t.columns.back()[0])) << "weight stats present";
        }
        MetricsTable tp = read_metrics(g, "metrics_projected");
        const auto& names = tp.names;
        std::size_t zero = std::find(names.begin(), names.end(), "w_ie_zero") - names.begin();
        // One projection zeroes the wrong-signed half of the I columns.
        if (dale == DaleMode::Project)
            EXPECT_GT(tp.columns[zero][0], 0.25);
        else
            EXPECT_EQ(tp.columns[zero][0], 0.0);
    }
    fs::remove_all(dir);
}

// The CPU's automatic method: the twin up to kCpuTwinMaxN units, LAPACK above, the same bits as
// the solver it picks, and the name of the one it used last (what a results file records).
TEST(Analyse, CpuAutoSolverPicksTheTwinUpToItsSizeAndLapackAbove) {
    auto solver = make_cpu_auto_eig_solver(2);
    EXPECT_EQ(solver->name(), "lapack");
    for (int N : {kCpuTwinMaxN, kCpuTwinMaxN + 1}) {
        const int K = 3;
        std::vector<double> w = gaussian(K * N, N, 1.0 / std::sqrt(N), 43);
        std::vector<cplx> got(K * N), want(K * N);
        solver->eigenvalues(w.data(), K, N, got.data());
        const bool twin = N <= kCpuTwinMaxN;
        EXPECT_EQ(solver->name(), twin ? "batched-cpu" : "lapack") << N;
        auto reference = twin ? make_twin_eig_solver(1) : make_lapack_eig_solver(1);
        reference->eigenvalues(w.data(), K, N, want.data());
        EXPECT_TRUE(same_or_both_nan(got, want)) << N;
    }
    EXPECT_EQ(solver->stats().matrices, 6);
}

TEST(Analyse, LapackSolverBitIdenticalToBuiltIn_K6_N21) {
    const int K = 6, N = 21;
    std::vector<double> wd = gaussian(K * N, N, 1.3 / std::sqrt(N), 41);
    wd[3 * N * N + 5] = std::numeric_limits<double>::infinity();  // matrix 3: a NaN row
    std::vector<float> wf(wd.begin(), wd.end());
    std::vector<std::int8_t> sign(K * N);
    for (int i = 0; i < K * N; ++i) sign[i] = (i % N) < 8 + i / N ? 1 : -1;
    std::unique_ptr<EigSolver> lapack = make_lapack_eig_solver(2);
    EXPECT_EQ(lapack->name(), "lapack");
    std::vector<cplx> e0(K * N), e1(K * N), e2(K * N), e3(K * N);
    MetricsTable t0 = analyse(wf.data(), K, N, sign, 4, e0.data(), 2);
    MetricsTable t1 = analyse(wf.data(), K, N, sign, 4, e1.data(), 2, lapack.get());
    MetricsTable t2 = analyse(wd.data(), K, N, sign, 4, e2.data(), 3);
    MetricsTable t3 = analyse(wd.data(), K, N, sign, 4, e3.data(), 3, lapack.get());
    EXPECT_EQ(lapack->stats().matrices, 2 * K);
    EXPECT_EQ(lapack->stats().fallbacks, 0);
    ASSERT_EQ(t1.names, t0.names);
    ASSERT_EQ(t3.names, t2.names);
    for (std::size_t c = 0; c < t0.names.size(); ++c) {
        EXPECT_TRUE(same_or_both_nan(t0.columns[c], t1.columns[c])) << t0.names[c];
        EXPECT_TRUE(same_or_both_nan(t2.columns[c], t3.columns[c])) << t2.names[c];
    }
    EXPECT_TRUE(same_or_both_nan(e0, e1));
    EXPECT_TRUE(same_or_both_nan(e2, e3));
    EXPECT_TRUE(std::isnan(e1[3 * N].real()) && std::isnan(t1.columns[0][3]));
    EXPECT_FALSE(std::isnan(e1[2 * N].real()));
}

TEST(SpectraIo, GroupSpectraRecordTheSolver_K3_N16) {
    const int K = 3, N = 16;
    std::vector<double> w0d = gaussian(K * N, N, 1.0 / std::sqrt(N), 51);
    std::vector<double> w1d = gaussian(K * N, N, 0.7 / std::sqrt(N), 52);
    std::vector<float> w0(w0d.begin(), w0d.end()), w1(w1d.begin(), w1d.end());
    std::vector<std::int8_t> sign(K * N);
    for (int i = 0; i < K * N; ++i) sign[i] = i % N < 10 ? 1 : -1;
    GroupMatrices gm;
    gm.K = K;
    gm.N = N;
    gm.w_initial = w0.data();
    gm.w_final = w1.data();
    gm.sign = sign.data();
    fs::path dir = temp_dir("solver");
    std::unique_ptr<EigSolver> twin = make_twin_eig_solver(1);
    {
        h5::Id f = h5::create(dir / "s.h5");
        write_group_spectra(h5::require_group(f, "groups/g0000"), gm, 6, 1);
        write_group_spectra(h5::require_group(f, "groups/g0001"), gm, 6, 1, twin.get());
    }
    h5::Id f = h5::open_read(dir / "s.h5");
    h5::Id g0 = h5::open_group(f, "groups/g0000"), g1 = h5::open_group(f, "groups/g0001");
    EXPECT_EQ(h5::read_attr_string(g0, "eig_method"), "lapack");
    EXPECT_EQ(h5::read_attr_double(g0, "eig_fallbacks"), 0.0);
    EXPECT_EQ(h5::read_attr_string(g1, "eig_method"), twin->name());
    EXPECT_EQ(h5::read_attr_double(g1, "eig_fallbacks"), double(twin->stats().fallbacks));
    EXPECT_EQ(twin->stats().matrices, 3 * K);  // three stages
    for (const char* name : {"eig_initial", "eig_projected", "eig"}) {
        auto a = h5::read_complex(g0, name).data, b = h5::read_complex(g1, name).data;
        ASSERT_EQ(a.size(), b.size());
        for (int k = 0; k < K; ++k) {
            std::vector<cplx> ea(a.begin() + k * N, a.begin() + (k + 1) * N);
            std::vector<cplx> eb(b.begin() + k * N, b.begin() + (k + 1) * N);
            EXPECT_LT(matched_error(ea, eb), 1e-9) << name << " k=" << k;
        }
    }
    fs::remove_all(dir);
}

}  // namespace
}  // namespace eirnn
