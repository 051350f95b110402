// Test matrices and checks shared by the eigensolver tests (the CPU twin in test_eig_twin.cpp,
// the GPU kernel and Xgeev in test_eig_cuda.cpp): every case is compared with LAPACK dgeev after
// matching eigenvalues, within 1e-9 max(1, ||W||_F), or, for ill-conditioned matrices, within the
// perturbation bound of dgeevx's reciprocal condition numbers.
#pragma once
#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "host/analysis/spectra.hpp"
#include "host/core/config.hpp"
#include "host/core/error.hpp"
#include "host/core/model.hpp"
#include "host/io/h5.hpp"
#include "host/io/keras.hpp"
#include "tests/test_util.hpp"

namespace eirnn::eigtest {

namespace fs = std::filesystem;
using testutil::matched_error;
using testutil::TempDir;

/// One test matrix (row-major N x N) with a name for messages.
struct Case {
    std::string name;
    int N = 0;
    std::vector<double> w;
};

inline double frobenius(const std::vector<double>& w) {
    double s = 0;
    for (double v : w) s += v * v;
    return std::sqrt(s);
}

inline std::vector<double> gaussian(int N, std::uint64_t seed, double scale = -1) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> d(0.0, scale > 0 ? scale : 1.0 / std::sqrt(double(N)));
    std::vector<double> w(std::size_t(N) * N);
    for (double& v : w) v = d(rng);
    return w;
}

/// Haar orthogonal from the QR of a Gaussian matrix (sign-corrected).
inline std::vector<double> orthogonal(int N, std::uint64_t seed) {
    std::vector<double> a = gaussian(N, seed, 1.0), tau(N);
    if (LAPACKE_dgeqrf(LAPACK_COL_MAJOR, N, N, a.data(), N, tau.data()) != 0)
        throw Error("dgeqrf failed");
    std::vector<double> d(N);
    for (int i = 0; i < N; ++i) d[i] = a[std::size_t(i) * N + i] < 0 ? -1 : 1;
    if (LAPACKE_dorgqr(LAPACK_COL_MAJOR, N, N, N, a.data(), N, tau.data()) != 0)
        throw Error("dorgqr failed");
    for (int j = 0; j < N; ++j)
        for (int i = 0; i < N; ++i) a[std::size_t(j) * N + i] *= d[j];
    return a;  // column-major Q is row-major Q^T: orthogonal as well
}

inline std::vector<double> matmul(const std::vector<double>& a, const std::vector<double>& b,
                                  int N) {
    std::vector<double> c(std::size_t(N) * N, 0.0);
    for (int i = 0; i < N; ++i)
        for (int k = 0; k < N; ++k)
            for (int j = 0; j < N; ++j)
                c[std::size_t(i) * N + j] += a[std::size_t(i) * N + k] * b[std::size_t(k) * N + j];
    return c;
}

inline std::vector<double> transpose(const std::vector<double>& a, int N) {
    std::vector<double> t(a.size());
    for (int i = 0; i < N; ++i)
        for (int j = 0; j < N; ++j) t[std::size_t(j) * N + i] = a[std::size_t(i) * N + j];
    return t;
}

/// Q M Q^T for a Haar orthogonal Q: a dense matrix with the spectrum of M.
inline std::vector<double> similar(const std::vector<double>& m, int N, std::uint64_t seed) {
    std::vector<double> q = orthogonal(N, seed);
    return matmul(matmul(q, m, N), transpose(q, N), N);
}

/// The initial recurrent matrix of an E/I network (docs/MODEL.md §3): Dale-projected normal or
/// orthogonal init with f_E of the units excitatory.
inline std::vector<double> ei_random(int N, double f_e, Init init, std::uint64_t seed) {
    ModelConfig m;
    m.units = N;
    m.e_frac = f_e;
    m.init = init;
    m.dale = DaleMode::Project;
    m.project_init = true;
    ParamLayout L = ParamLayout::make(N, 1, 1);
    std::vector<float> p(L.total), sign = make_signs(m);
    init_network(m, L, seed, sign, nullptr, p.data());
    return std::vector<double>(p.begin() + L.w_rec, p.begin() + L.w_rec + std::size_t(N) * N);
}

/// The cases of the issue at one size: Gaussian, orthogonal, E/I random (normal and orthogonal
/// starts), zero, diagonal (with repeats), upper triangular.
inline std::vector<Case> standard_cases(int N, std::uint64_t seed) {
    std::vector<Case> c;
    const std::string n = "_N" + std::to_string(N);
    c.push_back({"gaussian" + n, N, gaussian(N, seed)});
    c.push_back({"orthogonal" + n, N, orthogonal(N, seed + 1)});
    c.push_back({"ei_normal" + n, N, ei_random(N, 0.8, Init::Normal, seed + 2)});
    c.push_back({"ei_orthogonal" + n, N, ei_random(N, 0.5, Init::Orthogonal, seed + 3)});
    c.push_back({"zero" + n, N, std::vector<double>(std::size_t(N) * N, 0.0)});
    std::vector<double> diag(std::size_t(N) * N, 0.0), tri = gaussian(N, seed + 4);
    for (int i = 0; i < N; ++i) diag[std::size_t(i) * N + i] = (i % 3) - 1.0 + 0.25 * (i % 2);
    for (int i = 0; i < N; ++i)
        for (int j = 0; j < i; ++j) tri[std::size_t(i) * N + j] = 0;
    c.push_back({"diagonal" + n, N, diag});
    c.push_back({"triangular" + n, N, tri});
    return c;
}

/// Every SimpleRNN recurrent matrix of the Keras models in shared/data (empty when absent).
inline std::vector<Case> keras_cases(const fs::path& shared) {
    std::vector<Case> c;
    fs::path dir = shared / "data" / "keras-models";
    if (!fs::is_directory(dir)) return c;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().extension() == ".hdf5") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) {
        KerasModel m;
        try {
            m = read_keras(f);
        } catch (const InputError&) {
            continue;  // the file without weights
        }
        for (const KerasRnn& l : m.layers) c.push_back({f.filename().string(), l.N, l.w_rec});
    }
    return c;
}

/// Matrices of a results file's trained group (W_rec of every network of /groups/g0000).
inline std::vector<Case> results_cases(const fs::path& file) {
    h5::Id f = h5::open_read(file);
    h5::Array<double> a = h5::read_double(f, "groups/g0000/W_rec");
    std::vector<Case> c;
    const int K = static_cast<int>(a.dims[0]), N = static_cast<int>(a.dims[1]);
    const std::size_t nn = std::size_t(N) * N;
    for (int k = 0; k < K; ++k)
        c.push_back({"trained_" + std::to_string(k) + "_N" + std::to_string(N), N,
                     std::vector<double>(a.data.begin() + k * nn, a.data.begin() + (k + 1) * nn)});
    return c;
}

#if defined(EIRNN_BINARY)
/// Trains 3 small networks (N = 40, two epochs, CPU backend) with the eirnn CLI into dir and
/// returns their trained recurrent matrices from the results file.
inline std::vector<Case> trained_cases(const fs::path& dir) {
    fs::path file = dir / "trained.h5";
    std::string cmd = std::string(EIRNN_BINARY) +
                      " train --backend cpu --networks 3 --units 40 --epochs 2 --trials 112"
                      " --test-trials 16 --batch 16 --lr 2e-3 --first-in 5 --stim-dur 4"
                      " --mem-gap 3 --var-delay 5 --out-gap 8 --no-spectra --quiet --force -o " +
                      file.string() + " >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) throw Error("training failed: " + cmd);
    return results_cases(file);
}
#endif

/// LAPACK dgeev eigenvalues of a row-major matrix (unsorted).
inline std::vector<cplx> lapack(const Case& c) {
    return eirnn::eigenvalues(c.w.data(), c.N);
}

/// The tolerance of the issue: 1e-9 max(1, ||W||_F).
inline double tolerance(const Case& c) {
    return 1e-9 * std::max(1.0, frobenius(c.w));
}

// ---- ill-conditioned cases, checked against dgeevx's error bounds ----

/// Eigenvalues with LAPACK's error bound eps ||W||_1 / rcond_i (dgeevx, balanced).
struct Conditioned {
    std::vector<cplx> eig;
    std::vector<double> bound;  // eps * abnrm / rconde(i)
};

inline Conditioned lapack_with_bounds(const Case& c) {
    const int N = c.N;
    std::vector<double> a = c.w, wr(N), wi(N), scale(N), rconde(N), rcondv(N);
    std::vector<double> vl(std::size_t(N) * N), vr(std::size_t(N) * N);
    lapack_int ilo = 0, ihi = 0;
    double abnrm = 0;
    lapack_int info = LAPACKE_dgeevx(LAPACK_ROW_MAJOR, 'B', 'V', 'V', 'E', N, a.data(), N,
                                     wr.data(), wi.data(), vl.data(), N, vr.data(), N, &ilo, &ihi,
                                     scale.data(), &abnrm, rconde.data(), rcondv.data());
    if (info != 0) throw Error("dgeevx failed");
    Conditioned r;
    for (int i = 0; i < N; ++i) {
        r.eig.emplace_back(wr[i], wi[i]);
        r.bound.push_back(2.220446049250313e-16 * abnrm / std::max(rconde[i], 1e-300));
    }
    return r;
}

/// Repeated, clustered, companion and Jordan-like matrices (dense via orthogonal similarity).
inline std::vector<Case> ill_conditioned_cases() {
    std::vector<Case> c;
    {  // repeated eigenvalues: 1 (x6), -0.5 (x6), 0.3 (x4) of a normal matrix
        const int N = 16;
        std::vector<double> d(std::size_t(N) * N, 0.0);
        for (int i = 0; i < N; ++i) d[std::size_t(i) * N + i] = i < 6 ? 1.0 : i < 12 ? -0.5 : 0.3;
        c.push_back({"repeated_N16", N, similar(d, N, 11)});
    }
    {  // a cluster 0.7 + 1e-7 j of a non-normal matrix (upper triangle 0.1)
        const int N = 20;
        std::vector<double> t(std::size_t(N) * N, 0.0);
        for (int i = 0; i < N; ++i) {
            t[std::size_t(i) * N + i] = 0.7 + 1e-7 * i;
            for (int j = i + 1; j < N; ++j) t[std::size_t(i) * N + j] = 0.1;
        }
        c.push_back({"clustered_N20", N, similar(t, N, 12)});
    }
    {  // companion matrix of prod (x - j/4), j = 1..10 (sensitive roots)
        const int N = 10;
        std::vector<double> p = {1.0};  // coefficients, highest degree first
        for (int j = 1; j <= N; ++j) {
            std::vector<double> q(p.size() + 1, 0.0);
            for (std::size_t k = 0; k < p.size(); ++k) {
                q[k] += p[k];
                q[k + 1] -= p[k] * (j / 4.0);
            }
            p = q;
        }
        std::vector<double> w(std::size_t(N) * N, 0.0);
        for (int j = 0; j < N; ++j) w[j] = -p[j + 1];
        for (int i = 1; i < N; ++i) w[std::size_t(i) * N + i - 1] = 1.0;
        c.push_back({"companion_N10", N, w});
    }
    {  // a Jordan block of size 8 at 0.5 with a 1e-10 perturbation in the corner, made dense
        const int N = 8;
        std::vector<double> j(std::size_t(N) * N, 0.0);
        for (int i = 0; i < N; ++i) {
            j[std::size_t(i) * N + i] = 0.5;
            if (i + 1 < N) j[std::size_t(i) * N + i + 1] = 1.0;
        }
        j[std::size_t(N - 1) * N] = 1e-10;
        c.push_back({"jordan_N8", N, similar(j, N, 13)});
    }
    return c;
}

/// The largest ratio |lambda_i - mu_i| / (c bound_i) over a closest-first matching (mu: the
/// solver's eigenvalues); <= 1 passes. c = 10: both LAPACK and the solver are within the bound.
inline double bound_ratio(const Conditioned& ref, const std::vector<cplx>& got, double c = 10) {
    if (got.size() != ref.eig.size()) return INFINITY;
    double worst = 0;
    for (const testutil::MatchedPair& p : testutil::match_spectra(ref.eig, got))
        worst = std::max(worst, p.d / (c * ref.bound[p.i]));
    return worst;
}

/// The cyclic shift (a permutation matrix): Francis shifts stall on it until an exceptional shift,
/// which comes after 10 iterations, so with an iteration cap below that it does not converge.
inline Case cyclic(int N) {
    std::vector<double> w(std::size_t(N) * N, 0.0);
    for (int i = 0; i < N; ++i) w[std::size_t((i + 1) % N) * N + i] = 1.0;
    return {"cyclic_N" + std::to_string(N), N, w};
}

}  // namespace eirnn::eigtest
