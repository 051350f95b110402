// Tests of host/keras (Keras SimpleRNN import, FILE:DATASET matrices) and of `eirnn spectrum` run
// as a program: the real Keras 3.4/3.6 files of shared/data/keras-models against an independent
// eigenvalue solver written here (Householder Hessenberg reduction + Francis double-shift QR, no
// LAPACK), a synthetic Keras 2.x layout, and every bad input: exit 2, one line, nothing written.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "host/analysis/eig_solver.hpp"
#include "host/analysis/spectra.hpp"
#include "host/core/config.hpp"
#include "host/core/error.hpp"
#include "host/io/h5.hpp"
#include "host/io/keras.hpp"
#include "tests/test_util.hpp"

namespace eirnn {
namespace {

namespace fs = std::filesystem;
using testutil::matched_error;

// ---- an independent eigenvalue solver (test oracle) ----

/// Applies the reflector I - beta v v^T (v of length m) to rows r..r+m-1 of columns c0..c1 (left)
/// or to columns r..r+m-1 of rows c0..c1 (right) of the row-major n x n matrix a.
void reflect(std::vector<double>& a, int n, const double* v, int m, double beta, int r, int c0,
             int c1, bool left) {
    for (int c = c0; c <= c1; ++c) {
        double s = 0;
        for (int i = 0; i < m; ++i) s += v[i] * (left ? a[(r + i) * n + c] : a[c * n + r + i]);
        s *= beta;
        for (int i = 0; i < m; ++i) (left ? a[(r + i) * n + c] : a[c * n + r + i]) -= s * v[i];
    }
}

/// Householder vector of x (length m): v = x + sign(x0)|x| e0, beta = 2 / v^T v; false if x = 0.
bool householder(const double* x, int m, double* v, double& beta) {
    double norm = 0;
    for (int i = 0; i < m; ++i) norm += x[i] * x[i];
    norm = std::sqrt(norm);
    if (norm == 0) return false;
    for (int i = 0; i < m; ++i) v[i] = x[i];
    v[0] += std::copysign(norm, x[0]);
    double vv = 0;
    for (int i = 0; i < m; ++i) vv += v[i] * v[i];
    beta = 2 / vv;
    return true;
}

/// All eigenvalues of a (n x n, row-major): Householder reduction to upper Hessenberg form, then
/// Francis double-shift QR steps on the active block with deflation at |h(i,i-1)| <=
/// eps(|h(i-1,i-1)|
/// + |h(i,i)|) (Golub & Van Loan, Matrix Computations, Alg. 7.4.2 and 7.5.1).
std::vector<cplx> reference_eigenvalues(std::vector<double> a, int n) {
    auto h = [&](int i, int j) -> double& { return a[std::size_t(i) * n + j]; };
    double v[3], beta;
    for (int k = 0; k + 2 < n; ++k) {
        std::vector<double> x(n - k - 1), vk(n - k - 1);
        for (int i = k + 1; i < n; ++i) x[i - k - 1] = h(i, k);
        if (!householder(x.data(), n - k - 1, vk.data(), beta)) continue;
        reflect(a, n, vk.data(), n - k - 1, beta, k + 1, 0, n - 1, true);
        reflect(a, n, vk.data(), n - k - 1, beta, k + 1, 0, n - 1, false);
        for (int i = k + 2; i < n; ++i) h(i, k) = 0;
    }
    double norm = 0;
    for (double x : a) norm = std::max(norm, std::abs(x));
    std::vector<cplx> out;
    int hi = n - 1, its = 0;
    while (hi >= 0) {
        int lo = hi;
        while (lo > 0) {
            double s = std::abs(h(lo - 1, lo - 1)) + std::abs(h(lo, lo));
            if (s == 0) s = norm;
            if (std::abs(h(lo, lo - 1)) <= DBL_EPSILON * s) {
                h(lo, lo - 1) = 0;
                break;
            }
            --lo;
        }
        if (lo == hi) {
            out.emplace_back(h(hi, hi), 0.0);
            --hi;
            its = 0;
            continue;
        }
        if (lo == hi - 1) {
            double p = 0.5 * (h(lo, lo) - h(hi, hi)), bc = h(lo, hi) * h(hi, lo), d = h(hi, hi);
            double disc = p * p + bc;
            if (disc >= 0) {
                double z = p + std::copysign(std::sqrt(disc), p);
                out.emplace_back(d + z, 0.0);
                out.emplace_back(z != 0 ? d - bc / z : d, 0.0);
            } else {
                out.emplace_back(d + p, std::sqrt(-disc));
                out.emplace_back(d + p, -std::sqrt(-disc));
            }
            hi -= 2;
            its = 0;
            continue;
        }
        if (++its > 200) throw std::runtime_error("reference QR did not converge");
        double s = h(hi - 1, hi - 1) + h(hi, hi);
        double t = h(hi - 1, hi - 1) * h(hi, hi) - h(hi - 1, hi) * h(hi, hi - 1);
        if (its % 10 == 0) {  // exceptional shift against cycling
            double w = std::abs(h(hi, hi - 1)) + std::abs(h(hi - 1, hi - 2));
            double c = 0.75 * w + h(hi, hi);
            s = 2 * c;
            t = c * c + 0.4375 * w * w;
        }
        double x[3] = {h(lo, lo) * h(lo, lo) + h(lo, lo + 1) * h(lo + 1, lo) - s * h(lo, lo) + t,
                       h(lo + 1, lo) * (h(lo, lo) + h(lo + 1, lo + 1) - s),
                       h(lo + 1, lo) * h(lo + 2, lo + 1)};
        for (int k = lo; k <= hi - 2; ++k) {
            if (householder(x, 3, v, beta)) {
                reflect(a, n, v, 3, beta, k, std::max(lo, k - 1), hi, true);
                reflect(a, n, v, 3, beta, k, lo, std::min(k + 3, hi), false);
                if (k > lo) h(k + 1, k - 1) = h(k + 2, k - 1) = 0;
            }
            x[0] = h(k + 1, k);
            x[1] = h(k + 2, k);
            if (k < hi - 2) x[2] = h(k + 3, k);
        }
        if (householder(x, 2, v, beta)) {
            reflect(a, n, v, 2, beta, hi - 1, hi - 2, hi, true);
            reflect(a, n, v, 2, beta, hi - 1, lo, hi, false);
            h(hi, hi - 2) = 0;
        }
    }
    return out;
}

// ---- helpers ----

const fs::path kModels = fs::path(EIRNN_SHARED_DIR) / "data" / "keras-models";
const char* kCell = "/model_weights/simple_rnn/sequential/simple_rnn/simple_rnn_cell/";

/// The five weight-bearing files with rho, r_outer (k = 6) and min |lambda| computed once with
/// numpy 1.24 as np.sort(abs(np.linalg.eigvals(U.T.astype(float64))))[::-1][[0, 6, -1]], U the
/// file's recurrent_kernel.
struct Pinned {
    const char* file;
    double rho, r_outer, r_inner;
};
const Pinned kPinned[] = {
    {"dm_longshort_normal_final.hdf5", 1.011595506348647, 0.952530694309616, 0.074786987368616},
    {"dm_longshort_normal_initial.hdf5", 1.009564150207713, 0.941981614399349, 0.077823045222564},
    {"dm_normal_nobias_final.hdf5", 1.230708218936948, 1.078035815121303, 0.120463920013278},
    {"dm_orthogonal_bias_final.hdf5", 1.070123478622601, 1.026303208978320, 0.971775475539969},
    {"dm_orthogonal_nobias_final_keras341.hdf5", 1.054097306492701, 1.029169197228402,
     0.951165416956766},
};

#define REQUIRE_SHARED()            \
    if (!fs::is_directory(kModels)) \
    GTEST_SKIP() << "needs the Keras test models in " << kModels.string() << " (shared/ absent)"

fs::path temp_dir(const std::string& name) {
    fs::path d =
        fs::temp_directory_path() / ("eirnn_test_keras_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

void write_fixed_strings_attr(hid_t obj, const char* name, const std::vector<std::string>& v) {
    std::size_t len = 1;
    for (const auto& s : v) len = std::max(len, s.size());
    h5::Id type(H5Tcopy(H5T_C_S1));
    H5Tset_size(type, len);
    hsize_t n = v.size();
    h5::Id space(H5Screate_simple(1, &n, nullptr));
    h5::Id attr(H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT));
    std::vector<char> buf(n * len, '\0');
    for (std::size_t i = 0; i < v.size(); ++i) std::copy(v[i].begin(), v[i].end(), &buf[i * len]);
    ASSERT_GE(H5Awrite(attr, type, buf.data()), 0);
}

std::vector<float> counting(std::size_t n, float scale) {
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = scale * static_cast<float>(std::sin(1.0 + i));
    return v;
}

std::string read_text(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// ---- the oracle itself ----

TEST(ReferenceSolver, AgreesWithKnownSpectra_N9) {
    // Upper triangular plus a rotation block: eigenvalues known exactly.
    const int n = 9;
    std::vector<double> a(n * n, 0.0);
    for (int i = 0; i < n; ++i)
        for (int j = i; j < n; ++j) a[i * n + j] = 0.3 * std::cos(i + 2.0 * j);
    for (int i = 0; i < 7; ++i) a[i * n + i] = -0.9 + 0.3 * i;
    a[7 * n + 7] = a[8 * n + 8] = 0.4;
    a[7 * n + 8] = -0.5;
    a[8 * n + 7] = 0.5;
    std::vector<cplx> expected;
    for (int i = 0; i < 7; ++i) expected.emplace_back(-0.9 + 0.3 * i, 0.0);
    expected.emplace_back(0.4, 0.5);
    expected.emplace_back(0.4, -0.5);
    // Hide the structure behind a fixed orthogonal similarity (a product of two reflectors).
    std::vector<double> u(n), w(n);
    for (int i = 0; i < n; ++i) {
        u[i] = std::sin(1.0 + i);
        w[i] = std::cos(2.0 + 3 * i);
    }
    double bu = 2 / std::inner_product(u.begin(), u.end(), u.begin(), 0.0);
    double bw = 2 / std::inner_product(w.begin(), w.end(), w.begin(), 0.0);
    reflect(a, n, u.data(), n, bu, 0, 0, n - 1, true);
    reflect(a, n, u.data(), n, bu, 0, 0, n - 1, false);
    reflect(a, n, w.data(), n, bw, 0, 0, n - 1, true);
    reflect(a, n, w.data(), n, bw, 0, 0, n - 1, false);
    EXPECT_LT(matched_error(expected, reference_eigenvalues(a, n)), 1e-12);
}

TEST(ReferenceSolver, AgreesWithDgeevOnRandom_N150) {
    const int n = 150;
    std::mt19937_64 rng(5);
    std::normal_distribution<double> d(0.0, 1.0 / std::sqrt(n));
    std::vector<double> a(n * n);
    for (double& x : a) x = d(rng);
    EXPECT_LT(matched_error(reference_eigenvalues(a, n), eigenvalues(a.data(), n)), 1e-10);
}

// ---- Keras import ----

TEST(Keras, FiveModelsMatchIndependentEigenvalues_N100) {
    REQUIRE_SHARED();
    for (const Pinned& p : kPinned) {
        SCOPED_TRACE(p.file);
        KerasModel m = read_keras(kModels / p.file);
        ASSERT_EQ(m.layers.size(), 1u);
        const KerasRnn& l = m.layers[0];
        ASSERT_EQ(l.N, 100);
        EXPECT_EQ(l.layer, std::string(kCell) + "recurrent_kernel");
        EXPECT_EQ(m.keras_version.substr(0, 2), "3.");
        // W_rec = recurrent_kernel^T, read here directly.
        h5::Id f = h5::open_read(kModels / p.file);
        h5::Array<double> u = h5::read_double(f, std::string(kCell) + "recurrent_kernel");
        for (int i = 0; i < 100; ++i)
            for (int j = 0; j < 100; ++j) ASSERT_EQ(l.w_rec[i * 100 + j], u.data[j * 100 + i]);
        std::vector<cplx> ref = reference_eigenvalues(u.data, 100);
        std::vector<cplx> got = eigenvalues(l.w_rec.data(), 100);
        EXPECT_LT(matched_error(ref, got), 1e-8);
        EXPECT_NEAR(std::abs(got[0]), p.rho, 1e-12);
        EXPECT_NEAR(std::abs(got[6]), p.r_outer, 1e-12);
        EXPECT_NEAR(std::abs(got[99]), p.r_inner, 1e-12);
        // Input kernel (1 x 100), the Dense readout (100 x 1), bias only in the "bias" model.
        EXPECT_EQ(l.I, 1);
        EXPECT_EQ(l.w_in.size(), 100u);
        EXPECT_EQ(l.O, 1);
        EXPECT_EQ(l.w_out.size(), 100u);
        EXPECT_EQ(l.b_out.size(), 1u);
        bool has_bias = std::string(p.file).find("_bias_") != std::string::npos;
        EXPECT_EQ(l.b.size(), has_bias ? 100u : 0u);
        EXPECT_TRUE(infer_column_signs(l.w_rec.data(), 100).empty());
    }
}

TEST(Keras, NoWeightsFileGivesClearError) {
    REQUIRE_SHARED();
    try {
        read_keras(kModels / "no_weights_keras341.hdf5");
        FAIL() << "expected InputError";
    } catch (const InputError& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find("no_weights_keras341.hdf5"), std::string::npos) << msg;
        EXPECT_NE(msg.find("no SimpleRNN weights"), std::string::npos) << msg;
        EXPECT_EQ(msg.find('\n'), std::string::npos);
    }
}

TEST(Keras, Keras2LayoutWithColonZeroNames_N5) {
    fs::path dir = temp_dir("k2");
    const int N = 5, I = 2, O = 3;
    std::vector<float> u = counting(N * N, 0.7f), k = counting(I * N, 0.2f), b = counting(N, 0.1f);
    std::vector<float> dk = counting(N * O, 0.3f), db = counting(O, 0.05f);
    {
        h5::Id f = h5::create(dir / "k2.h5");
        h5::Id mw = h5::require_group(f, "model_weights");
        write_fixed_strings_attr(mw, "layer_names", {"simple_rnn_1", "dense_1"});
        h5::Id cell = h5::require_group(mw, "simple_rnn_1/simple_rnn_1");
        h5::write(cell, "kernel:0", k.data(), {I, N});
        h5::write(cell, "recurrent_kernel:0", u.data(), {N, N});
        h5::write(cell, "bias:0", b.data(), {N});
        h5::Id dense = h5::require_group(mw, "dense_1/dense_1");
        h5::write(dense, "kernel:0", dk.data(), {N, O});
        h5::write(dense, "bias:0", db.data(), {O});
        h5::Id opt = h5::require_group(f, "optimizer_weights/rnn");
        std::vector<float> junk(9, 1.0f);
        h5::write(opt, "recurrent_kernel:0", junk.data(), {3, 3});
    }
    KerasModel m = read_keras(dir / "k2.h5");
    ASSERT_EQ(m.layers.size(), 1u);
    const KerasRnn& l = m.layers[0];
    EXPECT_EQ(l.layer, "/model_weights/simple_rnn_1/simple_rnn_1/recurrent_kernel:0");
    ASSERT_EQ(l.N, N);
    ASSERT_EQ(l.I, I);
    ASSERT_EQ(l.O, O);
    for (int i = 0; i < N; ++i) {
        for (int j = 0; j < N; ++j) EXPECT_EQ(l.w_rec[i * N + j], u[j * N + i]);
        for (int x = 0; x < I; ++x) EXPECT_EQ(l.w_in[i * I + x], k[x * N + i]);
        for (int o = 0; o < O; ++o) EXPECT_EQ(l.w_out[o * N + i], dk[i * O + o]);
        EXPECT_EQ(l.b[i], b[i]);
    }
    EXPECT_EQ(l.b_out[2], db[2]);

    // save_weights layout: layer groups at the root, optimizer state beside them.
    {
        h5::Id f = h5::create(dir / "w.h5");
        write_fixed_strings_attr(f, "layer_names", {"rnn"});
        h5::Id cell = h5::require_group(f, "rnn/rnn");
        h5::write(cell, "recurrent_kernel:0", u.data(), {N, N});
        h5::Id opt = h5::require_group(f, "optimizer_weights/x");
        std::vector<float> junk(9, 1.0f);
        h5::write(opt, "recurrent_kernel:0", junk.data(), {3, 3});
    }
    KerasModel w = read_keras(dir / "w.h5");
    ASSERT_EQ(w.layers.size(), 1u);
    EXPECT_EQ(w.layers[0].N, N);
    EXPECT_TRUE(w.layers[0].w_in.empty());
    fs::remove_all(dir);
}

TEST(Keras, BadModelsGiveOneLineInputErrors) {
    fs::path dir = temp_dir("badk");
    std::vector<float> lstm = counting(4 * 16, 1.0f), nan_u = counting(9, 1.0f);
    nan_u[4] = NAN;
    {
        h5::Id f = h5::create(dir / "lstm.h5");
        h5::Id cell = h5::require_group(f, "model_weights/lstm/lstm/lstm_cell");
        h5::write(cell, "recurrent_kernel", lstm.data(), {4, 16});
        h5::Id g = h5::create(dir / "nan.h5");
        h5::Id c2 = h5::require_group(g, "model_weights/rnn/rnn");
        h5::write(c2, "recurrent_kernel", nan_u.data(), {3, 3});
        h5::Id z = h5::create(dir / "empty.h5");
        h5::Id c3 = h5::require_group(z, "model_weights/rnn/rnn");
        h5::write(c3, "recurrent_kernel", nan_u.data(), {0, 0});
    }
    std::ofstream(dir / "text.h5") << "not an HDF5 file\n";
    struct Case {
        std::string file, needle;
    };
    for (const Case& c :
         {Case{"lstm.h5", "not square"}, Case{"nan.h5", "NaN"}, Case{"empty.h5", "N = 0"},
          Case{"text.h5", "not an HDF5 file"}, Case{"missing.h5", "no such file"}}) {
        try {
            read_keras(dir / c.file);
            ADD_FAILURE() << c.file << ": expected InputError";
        } catch (const InputError& e) {
            std::string msg = e.what();
            EXPECT_NE(msg.find(c.needle), std::string::npos) << msg;
            EXPECT_NE(msg.find(c.file), std::string::npos) << msg;
            EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
        }
    }
    fs::remove_all(dir);
}

// ---- FILE:DATASET ----

TEST(H5Matrices, ReadsStacksAndSingleMatrices_K3_N4) {
    fs::path dir = temp_dir("h5m");
    std::vector<double> stack(3 * 16);
    for (std::size_t i = 0; i < stack.size(); ++i) stack[i] = 0.01 * i - 0.2;
    std::vector<float> one = counting(16, 1.0f);
    {
        h5::Id f = h5::create(dir / "m.h5");
        h5::write(f, "stack", stack.data(), {3, 4, 4});
        h5::Id g = h5::require_group(f, "a/b");
        h5::write(g, "w:0", one.data(), {4, 4});
    }
    MatrixStack s = read_h5_matrices((dir / "m.h5").string() + ":stack");
    EXPECT_EQ(s.K, 3);
    EXPECT_EQ(s.N, 4);
    EXPECT_TRUE(s.stacked);
    EXPECT_EQ(s.w, stack);
    EXPECT_EQ(s.dataset, "stack");
    MatrixStack m = read_h5_matrices((dir / "m.h5").string() + ":/a/b/w:0");
    EXPECT_EQ(m.K, 1);
    EXPECT_FALSE(m.stacked);
    EXPECT_EQ(m.dataset, "/a/b/w:0");
    EXPECT_EQ(m.w[5], static_cast<double>(one[5]));
    fs::remove_all(dir);
}

TEST(H5Matrices, BadDatasetsGiveOneLineInputErrors) {
    fs::path dir = temp_dir("h5bad");
    std::vector<double> d(12, 1.0), nan = d;
    nan[7] = INFINITY;
    {
        h5::Id f = h5::create(dir / "m.h5");
        h5::write(f, "rect", d.data(), {3, 4});
        h5::write(f, "nan", nan.data(), {3, 2, 2});
        h5::write(f, "empty", d.data(), {0, 0});
        h5::write(f, "vec", d.data(), {12});
    }
    std::ofstream(dir / "text.txt") << "hello\n";
    const std::string m = (dir / "m.h5").string();
    struct Case {
        std::string spec, needle;
    };
    for (const Case& c : {Case{m + ":rect", "not square"}, Case{m + ":nan", "NaN or infinite"},
                          Case{m + ":empty", "N = 0"}, Case{m + ":vec", "expected [N,N]"},
                          Case{m + ":nothere", "no dataset"}, Case{m, "FILE:DATASET"},
                          Case{(dir / "text.txt").string() + ":x", "not an HDF5 file"},
                          Case{(dir / "nope.h5").string() + ":x", "no such file"}}) {
        try {
            read_h5_matrices(c.spec);
            ADD_FAILURE() << c.spec << ": expected InputError";
        } catch (const InputError& e) {
            std::string msg = e.what();
            EXPECT_NE(msg.find(c.needle), std::string::npos) << c.spec << " -> " << msg;
            EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
        }
    }
    fs::remove_all(dir);
}

TEST(InferSigns, SingleSignedColumnsOnly_N3) {
    std::vector<double> dale = {0.5, -1, 0,  //
                                0,   -2, 0,  //
                                1,   0,  0};
    std::vector<std::int8_t> s = infer_column_signs(dale.data(), 3);
    EXPECT_EQ(s, (std::vector<std::int8_t>{1, -1, 1}));
    dale[5] = -0.1;
    dale[8] = 0.1;
    EXPECT_TRUE(infer_column_signs(dale.data(), 3).empty());
}

// ---- the CLI ----

struct CliRun {
    int status = -1;
    std::string out, err;
};

CliRun run_cli(const fs::path& dir, const std::string& args) {
    std::string cmd = "cd '" + dir.string() + "' && '" + std::string(EIRNN_BINARY) + "' " + args +
                      " >.cli_out 2>.cli_err";
    int rc = std::system(cmd.c_str());
    CliRun r;
    r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    r.out = read_text(dir / ".cli_out");
    r.err = read_text(dir / ".cli_err");
    fs::remove(dir / ".cli_out");
    fs::remove(dir / ".cli_err");
    return r;
}

std::vector<std::string> listing(const fs::path& dir) {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

#define REQUIRE_BINARY() \
    if (!fs::exists(EIRNN_BINARY)) GTEST_SKIP() << "the eirnn binary is not built: " EIRNN_BINARY

/// A results file with one group of K random networks (docs/FORMAT.md names), config outliers = 3.
void write_results(const fs::path& path, int K, int N) {
    GroupConfig cfg;
    cfg.networks = K;
    cfg.model.units = N;
    cfg.outliers = 3;
    std::mt19937_64 rng(17);
    std::normal_distribution<float> d(0.0f, 1.0f / std::sqrt(float(N)));
    std::vector<float> w0(std::size_t(K) * N * N), w1(w0.size());
    for (float& x : w0) x = d(rng);
    for (float& x : w1) x = d(rng);
    std::vector<std::int8_t> sign(std::size_t(K) * N);
    for (std::size_t i = 0; i < sign.size(); ++i) sign[i] = i % N < std::size_t(N) / 2 ? 1 : -1;
    h5::Id f = h5::create(path);
    h5::write_attr(f, "format", std::string("eirnn-results"));
    h5::write_attr(f, "format_version", std::int64_t{1});
    h5::Id g = h5::require_group(f, "groups/g0000");
    h5::write_attr(g, "config", to_json(cfg).dump());
    const hsize_t k = K, n = N;
    h5::write(g, "W_rec_initial", w0.data(), {k, n, n});
    h5::write(g, "W_rec", w1.data(), {k, n, n});
    h5::write(g, "sign", sign.data(), {k, n});
}

TEST(SpectrumCli, KerasTableCsvJson) {
    REQUIRE_SHARED();
    REQUIRE_BINARY();
    fs::path dir = temp_dir("clik");
    std::string files;
    for (const Pinned& p : kPinned) files += " '" + (kModels / p.file).string() + "'";
    CliRun t = run_cli(dir, "spectrum --backend cpu --keras" + files);
    ASSERT_EQ(t.status, 0) << t.err;
    EXPECT_EQ(std::count(t.out.begin(), t.out.end(), '\n'), 6) << t.out;
    EXPECT_NE(t.out.find("r_outer(k=6)"), std::string::npos);
    EXPECT_NE(t.out.find("1.2307"), std::string::npos) << t.out;

    CliRun j = run_cli(dir, "spectrum --backend cpu --format json --outliers 6 --keras" + files);
    ASSERT_EQ(j.status, 0) << j.err;
    nlohmann::json rows = nlohmann::json::parse(j.out);
    ASSERT_EQ(rows.size(), 5u);
    for (std::size_t i = 0; i < 5; ++i) {
        EXPECT_NEAR(rows[i]["metrics"]["rho"].get<double>(), kPinned[i].rho, 1e-12);
        EXPECT_NEAR(rows[i]["metrics"]["r_outer"].get<double>(), kPinned[i].r_outer, 1e-12);
        EXPECT_TRUE(rows[i]["metrics"]["w_ee_mean"].is_null());
        EXPECT_EQ(rows[i]["N"], 100);
    }
    CliRun c = run_cli(dir, "spectrum --backend cpu --format csv --save s.h5 --keras" + files);
    ASSERT_EQ(c.status, 0) << c.err;
    EXPECT_EQ(c.out.substr(0, 30), "source,matrix,stage,k,N,outlie");
    h5::Id s = h5::open_read(dir / "s.h5");
    EXPECT_EQ(h5::read_attr_string(s, "format"), "eirnn-spectra");
    EXPECT_EQ(h5::children(h5::open_group(s, "sets")).size(), 5u);
    EXPECT_EQ(h5::shape(s, "sets/s0002/eig"), (std::vector<hsize_t>{1, 100}));
    EXPECT_EQ(h5::shape(s, "sets/s0002/sv"), (std::vector<hsize_t>{1, 100}));
    EXPECT_EQ(h5::read_double(s, "sets/s0002/sv").data.front(),
              h5::read_double(s, "sets/s0002/metrics/sv_max").data.front());
    EXPECT_EQ(run_cli(dir, "spectrum --save s.h5 --keras" + files).status,
              2);  // exists, no --force
    EXPECT_EQ(run_cli(dir, "spectrum --save s.h5 --force --keras" + files).status, 0);
    fs::remove_all(dir);
}

TEST(SpectrumCli, ResultsFileUpdatedInPlace_K2_N16) {
    REQUIRE_BINARY();
    fs::path dir = temp_dir("clir");
    write_results(dir / "r.h5", 2, 16);
    CliRun r = run_cli(dir, "spectrum r.h5 --backend cpu --format csv");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1 + 3 * 2) << r.out;
    EXPECT_EQ(listing(dir), std::vector<std::string>{"r.h5"});
    {
        h5::Id f = h5::open_read(dir / "r.h5");
        h5::Id g = h5::open_group(f, "groups/g0000");
        h5::Array<float> w = h5::read_float(g, "W_rec");
        // The CPU's automatic method, as the command used it.
        std::vector<double> wd(w.data.begin(), w.data.end());
        std::vector<cplx> expected(2 * 16);
        make_cpu_auto_eig_solver(1)->eigenvalues(wd.data(), 2, 16, expected.data());
        EXPECT_EQ(h5::read_complex(g, "eig").data, expected);
        EXPECT_EQ(h5::shape(g, "eig_projected"), (std::vector<hsize_t>{2, 16}));
        // A file written without singular values gets them, and the nse column.
        for (const char* name : {"sv_initial", "sv_projected", "sv"})
            EXPECT_EQ(h5::shape(g, name), (std::vector<hsize_t>{2, 16})) << name;
        const std::vector<double> sv = h5::read_double(g, "sv").data;
        const std::vector<double> nse = h5::read_double(g, "metrics/nse").data;
        ASSERT_EQ(nse.size(), 2u);
        for (int k = 0; k < 2; ++k)
            EXPECT_EQ(nse[k], normalised_svd_entropy(std::span(sv.data() + k * 16, 16)));
        EXPECT_EQ(h5::read_attr_double(h5::open_group(g, "metrics"), "outliers"), 3.0);
        EXPECT_EQ(h5::shape(g, "metrics_projected/w_ii_zero"), std::vector<hsize_t>{2});
    }
    ASSERT_EQ(run_cli(dir, "spectrum r.h5 --backend cpu --outliers 2").status, 0);
    h5::Id f = h5::open_read(dir / "r.h5");
    EXPECT_EQ(h5::read_attr_double(h5::open_group(f, "groups/g0000/metrics"), "outliers"), 2.0);
    fs::remove_all(dir);
}

TEST(SpectrumCli, BadInputsExit2OneLineNothingWritten) {
    REQUIRE_BINARY();
    fs::path dir = temp_dir("clibad");
    write_results(dir / "r.h5", 1, 8);
    std::vector<double> d(16, 0.5), nan = d;
    nan[3] = NAN;
    {
        h5::Id f = h5::create(dir / "m.h5");
        h5::write(f, "rect", d.data(), {2, 8});
        h5::write(f, "nan", nan.data(), {4, 4});
        h5::write(f, "empty", d.data(), {0, 0});
    }
    std::ofstream(dir / "text.h5") << "plain text\n";
    const std::string before = read_text(dir / "r.h5");
    const std::vector<std::string> files = listing(dir);
    std::vector<std::string> bad = {
        "--keras missing.hdf5", "--keras text.h5",   "--h5 m.h5:rect", "--h5 m.h5:nan",
        "--h5 m.h5:empty",      "--h5 m.h5:nothere", "text.h5",        "m.h5",
        "--outliers -1 r.h5",   "--format xml r.h5"};
    if (fs::is_directory(kModels))
        bad.push_back("--keras '" + (kModels / "no_weights_keras341.hdf5").string() + "'");
    for (const std::string& args : bad) {
        // The good results file comes first: it must not be touched either.
        CliRun r = run_cli(dir, "spectrum r.h5 --save out.h5 " + args);
        EXPECT_EQ(r.status, 2) << args << ": " << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << ": " << r.err;
        EXPECT_TRUE(r.out.empty()) << args << ": " << r.out;
        EXPECT_EQ(listing(dir), files) << args;
        EXPECT_EQ(read_text(dir / "r.h5"), before) << args;
    }
    CliRun none = run_cli(dir, "spectrum");
    EXPECT_EQ(none.status, 2);
    EXPECT_EQ(std::count(none.err.begin(), none.err.end(), '\n'), 1) << none.err;
    fs::remove_all(dir);
}

}  // namespace
}  // namespace eirnn
