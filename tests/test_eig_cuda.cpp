// The batched GPU eigenvalue kernel and cuSOLVER Xgeev against LAPACK dgeev, on the cases of
// tests/eig_cases.hpp (as for the CPU twin), on chip and in global memory; flagged matrices go to
// the fallback; every test skips without a CUDA device. Label gpu.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "host/analysis/eig_solver.hpp"
#include "host/analysis/eig_twin.hpp"
#include "host/cuda/cuda_backend.hpp"
#include "host/cuda/eig.hpp"
#include "tests/cuda_test_util.hpp"
#include "tests/eig_cases.hpp"

namespace eirnn {
namespace {

using namespace eigtest;

#define REQUIRE_DEVICE() EIRNN_REQUIRE_GPU()

/// The kernel's raw eigenvalues of a set of equal-size cases in one launch.
std::vector<std::vector<cplx>> kernel(const std::vector<Case>& cases, std::vector<int>& info,
                                      const cuda::EigBatchedOptions& opt = {}) {
    const int K = static_cast<int>(cases.size()), N = cases.front().N;
    std::vector<double> w;
    for (const Case& c : cases) w.insert(w.end(), c.w.begin(), c.w.end());
    std::vector<double> wr(std::size_t(K) * N), wi(std::size_t(K) * N);
    info.assign(K, -2);
    cuda::eig_batched_raw(w.data(), K, N, wr.data(), wi.data(), info.data(), opt);
    std::vector<std::vector<cplx>> out(K);
    for (int k = 0; k < K; ++k)
        for (int j = 0; j < N; ++j)
            out[k].emplace_back(wr[std::size_t(k) * N + j], wi[std::size_t(k) * N + j]);
    return out;
}

/// The first cases only on the emulated device (a matrix of N = 100 takes seconds there under
/// ThreadSanitizer): three, and one from N = 128 on.
std::vector<Case> trimmed(std::vector<Case> cases) {
    if (!testutil::gpu_emulated() || cases.empty()) return cases;
    const std::size_t keep = cases.front().N >= 128 ? 1 : 3;
    if (cases.size() > keep) cases.resize(keep);
    return cases;
}

void expect_kernel_matches_lapack(const std::vector<Case>& in, bool force_global) {
    const std::vector<Case> cases = trimmed(in);
    std::vector<int> info;
    cuda::EigBatchedOptions opt;
    opt.force_global = force_global;
    auto got = kernel(cases, info, opt);
    for (std::size_t k = 0; k < cases.size(); ++k) {
        ASSERT_EQ(info[k], 0) << cases[k].name;
        double err = matched_error(got[k], lapack(cases[k]));
        EXPECT_LE(err, tolerance(cases[k]))
            << cases[k].name << (force_global ? " (global)" : " (on chip)") << ": " << err;
    }
}

TEST(CudaEig, SmallSizesMatchLapack_N1_N2_N3_N7_N33) {
    REQUIRE_DEVICE();
    for (int N : {1, 2, 3, 7, 33})
        for (bool global : {false, true})
            expect_kernel_matches_lapack(standard_cases(N, 1000 + N), global);
}

TEST(CudaEig, SmallAnyBlockSizeMatchesLapack_N33_N100) {
    REQUIRE_DEVICE();
    for (int N : {33, 100}) {
        if (N == 100 && testutil::gpu_emulated()) continue;  // N = 33 shows every block size
        for (int threads : {32, 64, 256}) {
            std::vector<int> info;
            cuda::EigBatchedOptions opt;
            opt.threads = threads;
            std::vector<Case> cases = trimmed(standard_cases(N, 5000 + N));
            auto got = kernel(cases, info, opt);
            for (std::size_t k = 0; k < cases.size(); ++k) {
                ASSERT_EQ(info[k], 0) << cases[k].name << " threads " << threads;
                EXPECT_LE(matched_error(got[k], lapack(cases[k])), tolerance(cases[k]))
                    << cases[k].name << " threads " << threads;
            }
        }
    }
}

class CudaEigSizes : public ::testing::TestWithParam<int> {};

TEST_P(CudaEigSizes, MatchesLapackOnEveryStandardCase) {
    REQUIRE_DEVICE();
    const int N = GetParam();
    // Under ThreadSanitizer on the emulated device: the odd on-chip size, which runs both the
    // on-chip and the global-memory path; the ASan+UBSan build and a GPU run every size.
    if (testutil::gpu_emulated() && testutil::kThreadSanitizer && N != 127)
        GTEST_SKIP() << "N = " << N << " runs in the ASan+UBSan build of the emulated device";
    const bool onchip = N <= cuda::eig_onchip_max_n();
    expect_kernel_matches_lapack(standard_cases(N, 1000 + N), !onchip);
    if (onchip) expect_kernel_matches_lapack(standard_cases(N, 2000 + N), true);
}

INSTANTIATE_TEST_SUITE_P(CudaEig, CudaEigSizes, ::testing::Values(100, 127, 170, 256),
                         [](const auto& info) {
                             std::string name = "N";
                             name += std::to_string(info.param);
                             return name;
                         });

TEST(CudaEig, OnChipUpToN170OnHopper) {
    REQUIRE_DEVICE();
    EXPECT_GE(cuda::eig_onchip_max_n(), 170)
        << "227 KB of shared memory hold a 170 x 170 fp64 matrix";
}

TEST(CudaEig, AgreesWithTheCpuTwin_K16_N100) {
    REQUIRE_DEVICE();
    std::vector<Case> cases;
    // On the emulated device 4 matrices, 2 under ThreadSanitizer (about 10 s each there).
    const int K = testutil::gpu_emulated() ? (testutil::kThreadSanitizer ? 2 : 4) : 16;
    for (int k = 0; k < K; ++k)
        cases.push_back({"ei" + std::to_string(k), 100, ei_random(100, 0.8, Init::Normal, 70 + k)});
    std::vector<int> info;
    auto got = kernel(cases, info);
    for (std::size_t k = 0; k < cases.size(); ++k) {
        std::vector<double> wr(100), wi(100);
        ASSERT_EQ(eig_twin_raw(cases[k].w.data(), 100, wr.data(), wi.data()), info[k]);
        std::vector<cplx> twin;
        for (int j = 0; j < 100; ++j) twin.emplace_back(wr[j], wi[j]);
        EXPECT_LE(matched_error(got[k], twin), tolerance(cases[k]));
    }
}

TEST(CudaEig, SameBitsOnEveryRun_K32_N64) {
    REQUIRE_DEVICE();
    std::vector<Case> cases;
    // On the emulated device 6 matrices, 3 under ThreadSanitizer (each runs twice there).
    const int K = testutil::gpu_emulated() ? (testutil::kThreadSanitizer ? 3 : 6) : 32;
    for (int k = 0; k < K; ++k) cases.push_back({"g", 64, gaussian(64, 300 + k)});
    std::vector<int> i1, i2;
    auto a = kernel(cases, i1), b = kernel(cases, i2);
    for (std::size_t k = 0; k < cases.size(); ++k)
        for (int j = 0; j < 64; ++j) {
            EXPECT_EQ(a[k][j].real(), b[k][j].real());
            EXPECT_EQ(a[k][j].imag(), b[k][j].imag());
        }
}

TEST(CudaEig, TrainedMatricesFromAResultsFile_K3_N40) {
    REQUIRE_DEVICE();
    TempDir dir("eirnn_eig_cuda");
    expect_kernel_matches_lapack(trained_cases(dir.path), false);
}

TEST(CudaEig, KerasModelsOfTheStudy) {
    REQUIRE_DEVICE();
    std::vector<Case> cases = keras_cases(EIRNN_SHARED_DIR);
    if (cases.empty()) GTEST_SKIP() << EIRNN_SHARED_DIR << "/data/keras-models is absent";
    if (testutil::gpu_emulated() && cases.size() > 2) cases.resize(2);  // minutes each there
    for (const Case& c : cases) expect_kernel_matches_lapack({c}, false);
}

TEST(CudaEig, IllConditionedWithinLapackBounds) {
    REQUIRE_DEVICE();
    for (const Case& c : ill_conditioned_cases()) {
        std::vector<int> info;
        auto got = kernel({c}, info);
        ASSERT_EQ(info[0], 0) << c.name;
        EXPECT_LE(bound_ratio(lapack_with_bounds(c), got[0]), 1.0) << c.name;
    }
}

TEST(CudaEig, SmallFlaggedMatrixRecomputedByXgeevOthersUnaffected_K4_N10) {
    REQUIRE_DEVICE();
    const int N = 10;
    std::vector<Case> std10 = standard_cases(N, 5);
    std::vector<Case> cases = {std10[5], cyclic(N), std10[6], std10[4]};
    cuda::EigBatchedOptions opt;
    opt.itmax_factor = 0;  // one QR sweep per deflation: the cyclic shift cannot split
    std::vector<int> info;
    kernel(cases, info, opt);
    EXPECT_EQ(info[0], 0);
    EXPECT_GT(info[1], 0);
    EXPECT_EQ(info[2], 0);
    EXPECT_EQ(info[3], 0);
    std::vector<double> w;
    for (const Case& c : cases) w.insert(w.end(), c.w.begin(), c.w.end());
    auto solver = cuda::make_batched_eig_solver(opt);
    std::vector<cplx> out(cases.size() * N);
    solver->eigenvalues(w.data(), 4, N, out.data());
    EXPECT_EQ(solver->stats().fallbacks, 1);
    for (std::size_t k = 0; k < cases.size(); ++k) {
        std::vector<cplx> row(out.begin() + k * N, out.begin() + (k + 1) * N);
        EXPECT_LE(matched_error(row, lapack(cases[k])), tolerance(cases[k])) << cases[k].name;
    }
}

TEST(CudaEig, SmallNonFiniteMatrixGivesNaNRow_K3_N9) {
    REQUIRE_DEVICE();
    const int N = 9;
    Case bad{"bad", N, gaussian(N, 2)};
    bad.w[40] = NAN;
    std::vector<Case> cases = {{"g1", N, gaussian(N, 1)}, bad, {"g3", N, gaussian(N, 3)}};
    std::vector<int> info;
    auto got = kernel(cases, info);
    EXPECT_EQ(info[1], -1);
    for (const cplx& z : got[1]) EXPECT_TRUE(std::isnan(z.real()));
    EXPECT_LE(matched_error(got[0], lapack(cases[0])), 1e-9);
    EXPECT_LE(matched_error(got[2], lapack(cases[2])), 1e-9);
}

TEST(CudaEig, XgeevMatchesLapackAnyStreamCount) {
    REQUIRE_DEVICE();
    for (int N : {1, 7, 33, 100}) {
        std::vector<Case> cases = standard_cases(N, 4000 + N);
        std::vector<double> w;
        for (const Case& c : cases) w.insert(w.end(), c.w.begin(), c.w.end());
        const int K = static_cast<int>(cases.size());
        std::vector<cplx> one(std::size_t(K) * N), four(std::size_t(K) * N);
        auto s1 = cuda::make_xgeev_eig_solver(1), s4 = cuda::make_xgeev_eig_solver(4);
        s1->eigenvalues(w.data(), K, N, one.data());
        s4->eigenvalues(w.data(), K, N, four.data());
        EXPECT_EQ(s4->stats().matrices, K);
        for (int k = 0; k < K; ++k) {
            std::vector<cplx> row(one.begin() + k * N, one.begin() + (k + 1) * N);
            EXPECT_LE(matched_error(row, lapack(cases[k])), tolerance(cases[k])) << cases[k].name;
            // cuSOLVER does not promise the same bits on every stream: rounding error, as
            // LAPACK's (docs/FORMAT.md).
            std::vector<cplx> row4(four.begin() + k * N, four.begin() + (k + 1) * N);
            EXPECT_LE(matched_error(row4, row), tolerance(cases[k])) << cases[k].name;
        }
    }
}

TEST(CudaEig, SolversThroughTheBackendChoice_N48_N600) {
    REQUIRE_DEVICE();
    for (int N : {48, 600}) {
        std::vector<double> w = gaussian(N, 9);
        auto solver = make_eig_solver(BackendKind::Cuda, EigMethod::Auto, 0);
        std::vector<cplx> out(N);
        solver->eigenvalues(w.data(), 1, N, out.data());
        EXPECT_LE(matched_error(out, lapack({"g", N, w})), tolerance({"g", N, w})) << N;
        EXPECT_EQ(solver->stats().matrices, 1);
    }
    EXPECT_EQ(make_eig_solver(BackendKind::Cuda, EigMethod::Batched, 0)->name(), "batched-cuda");
    EXPECT_EQ(make_eig_solver(BackendKind::Cuda, EigMethod::Xgeev, 0)->name(), "xgeev");
}

}  // namespace
}  // namespace eirnn
