// The CPU twin of the batched GPU eigensolver (kernels/eig_hqr.hpp run by one CPU thread) against
// LAPACK dgeev: the matrices of the issue at N in {1, 2, 3, 7, 33, 100, 127, 170, 256}, trained
// matrices from a results file, the Keras models of shared/data, ill-conditioned matrices within
// dgeevx's bounds, non-finite and non-converging matrices.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "host/analysis/eig_solver.hpp"
#include "host/analysis/eig_twin.hpp"
#include "kernels/eig_hqr.hpp"
#include "tests/eig_cases.hpp"

namespace eirnn {
namespace {

using namespace eigtest;

std::vector<cplx> twin(const Case& c, int itmax_factor = 30, int* info_out = nullptr) {
    std::vector<double> wr(c.N), wi(c.N);
    int info = eig_twin_raw(c.w.data(), c.N, wr.data(), wi.data(), itmax_factor);
    if (info_out) *info_out = info;
    std::vector<cplx> z;
    for (int i = 0; i < c.N; ++i) z.emplace_back(wr[i], wi[i]);
    return z;
}

void expect_matches_lapack(const Case& c) {
    int info = -2;
    std::vector<cplx> got = twin(c, 30, &info);
    ASSERT_EQ(info, 0) << c.name;
    double err = matched_error(got, lapack(c));
    EXPECT_LE(err, tolerance(c)) << c.name << ": max |lambda - lambda_lapack| = " << err;
}

/// A blocking barrier (threads sleep rather than spin: a team of 4 on 2 cores, under a sanitizer,
/// would otherwise spend its time yielding to each other). Aborts when the team's threads disagree
/// on the number of syncs.
class TeamBarrier {
public:
    explicit TeamBarrier(int n) : n_(n) {}
    void arrive_and_wait() {
        std::unique_lock<std::mutex> lock(mutex_);
        const long g = gen_;
        if (++count_ == n_) {
            count_ = 0;
            ++gen_;
            cv_.notify_all();
            return;
        }
        if (!cv_.wait_for(lock, std::chrono::seconds(20), [&] { return gen_ != g; })) {
            std::fprintf(stderr, "team threads disagree on the number of syncs\n");
            std::abort();
        }
    }

private:
    int n_;
    int count_ = 0;
    long gen_ = 0;
    std::mutex mutex_;
    std::condition_variable cv_;
};

/// A team of P CPU threads with a barrier: the GPU kernel's decomposition of the work (strided
/// loops, leader-only writes, redundant scalar code, all_reduce) run by truly concurrent threads,
/// so that a missing sync shows up as a wrong result or as threads taking different branches.
struct ThreadTeam {
    static constexpr int kLanes = 1;
    int r, p;
    TeamBarrier* bar;
    double* scratch;  // 4 p doubles
    long* syncs;      // p counters
    int rank() const { return r; }
    int size() const { return p; }
    bool leader() const { return r == 0; }
    void sync() const {
        ++syncs[r];
        bar->arrive_and_wait();
    }
    void sync_warp0() const { sync(); }  // the whole team is within one warp (p <= 32)
    void all_reduce(eig::Red4& x) const {
        eig::store(x, scratch + 4 * r);
        sync();
        eig::Red4 t = eig::combine(scratch, p);
        sync();
        x = t;
    }
};

/// Eigenvalues by a team of P threads; every thread's return value must agree.
std::vector<cplx> team_eigenvalues(const Case& c, int P, int& info) {
    std::vector<double> a = c.w, wr(c.N), wi(c.N), scratch(4 * P);
    std::vector<long> syncs(P, 0);
    TeamBarrier bar(P);
    std::vector<int> infos(P, -2);
    std::vector<std::thread> threads;
    for (int r = 0; r < P; ++r)
        threads.emplace_back([&, r] {
            ThreadTeam t{r, P, &bar, scratch.data(), syncs.data()};
            infos[r] = eig::eigenvalues(t, eig::Mat{a.data(), c.N}, c.N, wr.data(), wi.data());
        });
    for (auto& th : threads) th.join();
    info = infos[0];
    for (int r = 1; r < P; ++r)
        if (infos[r] != info || syncs[r] != syncs[0]) info = -3;
    std::vector<cplx> z;
    for (int i = 0; i < c.N; ++i) z.emplace_back(wr[i], wi[i]);
    return z;
}

TEST(EigTwin, TeamsOfConcurrentThreadsMatchLapack_P3_P4) {
    for (int N : {2, 7, 33, 100})
        for (int P : {3, 4})
            for (const Case& c : standard_cases(N, 3000 + N)) {
                int info = -2;
                std::vector<cplx> got = team_eigenvalues(c, P, info);
                ASSERT_EQ(info, 0) << c.name << " P=" << P;
                EXPECT_LE(matched_error(got, lapack(c)), tolerance(c)) << c.name << " P=" << P;
            }
    for (const Case& c : ill_conditioned_cases()) {
        int info = -2;
        std::vector<cplx> got = team_eigenvalues(c, 4, info);
        ASSERT_EQ(info, 0) << c.name;
        EXPECT_LE(bound_ratio(lapack_with_bounds(c), got), 1.0) << c.name;
    }
}

TEST(EigTwin, TheTeamCodeOnOneThreadGivesTheTwinsBits) {
    // The twin (SerialTeam: several rows or columns per pass, the one-core order of a QR sweep) and
    // the team code on one thread (kLanes = 1: the GPU kernel's loops) give every entry the same
    // operations in the same order: the same eigenvalues to the bit, also at sizes that leave a
    // partial pass (N not a multiple of SerialTeam::kLanes). Larger teams sum their reductions in
    // another order and agree within the tolerance (the test above).
    for (int N : {5, 13, 37, 100})
        for (const Case& c : standard_cases(N, 5000 + N)) {
            int info = -2, twin_info = -2;
            std::vector<cplx> team = team_eigenvalues(c, 1, info);
            std::vector<cplx> one = twin(c, 30, &twin_info);
            ASSERT_EQ(info, twin_info) << c.name;
            for (int j = 0; j < N; ++j) {
                ASSERT_EQ(team[j].real(), one[j].real()) << c.name << " j=" << j;
                ASSERT_EQ(team[j].imag(), one[j].imag()) << c.name << " j=" << j;
            }
        }
}

class TwinSizes : public ::testing::TestWithParam<int> {};

TEST_P(TwinSizes, MatchesLapackOnEveryStandardCase) {
    const int N = GetParam();
    for (const Case& c : standard_cases(N, 1000 + N)) expect_matches_lapack(c);
}

INSTANTIATE_TEST_SUITE_P(EigTwin, TwinSizes, ::testing::Values(1, 2, 3, 7, 33, 100, 127, 170, 256),
                         [](const auto& info) {
                             std::string name = "N";
                             name += std::to_string(info.param);
                             return name;
                         });

TEST(EigTwin, IsolatedEigenvaluesThroughPermutation_N12) {
    // Block upper triangular [T1 X Y; 0 A Z; 0 0 T2] with triangular T1, T2 (isolated by the
    // balancing permutation), then a symmetric permutation hides the structure.
    const int N = 12;
    std::vector<double> b = gaussian(N, 7);
    for (int i = 0; i < N; ++i)
        for (int j = 0; j < N; ++j) {
            bool below_t1 = j < 3 && i > j;
            bool below_a = i >= 9 && j < 9;
            bool t2 = i >= 9 && j >= 9 && i > j;
            if (below_t1 || below_a || t2) b[std::size_t(i) * N + j] = 0;
        }
    const int perm[N] = {5, 0, 11, 3, 8, 1, 10, 2, 7, 4, 9, 6};
    std::vector<double> w(b.size());
    for (int i = 0; i < N; ++i)
        for (int j = 0; j < N; ++j)
            w[std::size_t(perm[i]) * N + perm[j]] = b[std::size_t(i) * N + j];
    expect_matches_lapack({"isolated_N12", N, w});
}

TEST(EigTwin, BadlyScaledMatrixIsBalanced_N40) {
    // D A D^-1 with D = diag(2^(-12 .. 12)): entries over 14 orders of magnitude, the spectrum of
    // A.
    const int N = 40;
    std::vector<double> a = gaussian(N, 8), w(a.size());
    for (int i = 0; i < N; ++i)
        for (int j = 0; j < N; ++j)
            w[std::size_t(i) * N + j] =
                std::ldexp(a[std::size_t(i) * N + j], (i % 25 - 12) - (j % 25 - 12));
    Case scaled{"scaled_N40", N, w}, plain{"plain_N40", N, a};
    int info = -2;
    std::vector<cplx> got = twin(scaled, 30, &info);
    ASSERT_EQ(info, 0);
    // Balancing undoes the scaling: the error is that of the unscaled matrix, far below
    // 1e-9 ||D A D^-1||_F.
    EXPECT_LE(matched_error(got, lapack(plain)), tolerance(plain));
}

TEST(EigTwin, TrainedMatricesFromAResultsFile_K3_N40) {
    TempDir dir("eirnn_eig_twin");
    std::vector<Case> cases = trained_cases(dir.path);
    ASSERT_EQ(cases.size(), 3u);
    for (const Case& c : cases) expect_matches_lapack(c);
}

TEST(EigTwin, KerasModelsOfTheStudy) {
    std::vector<Case> cases = keras_cases(EIRNN_SHARED_DIR);
    if (cases.empty()) GTEST_SKIP() << EIRNN_SHARED_DIR << "/data/keras-models is absent";
    for (const Case& c : cases) expect_matches_lapack(c);
}

TEST(EigTwin, IllConditionedWithinLapackBounds) {
    for (const Case& c : ill_conditioned_cases()) {
        int info = -2;
        std::vector<cplx> got = twin(c, 30, &info);
        ASSERT_EQ(info, 0) << c.name;
        Conditioned ref = lapack_with_bounds(c);
        EXPECT_LE(bound_ratio(ref, got), 1.0) << c.name;
    }
}

TEST(EigTwin, CyclicMatrixFlaggedBelowTheExceptionalShift_N10) {
    Case c = cyclic(10);
    int info = 0;
    twin(c, 0, &info);
    EXPECT_GT(info, 0) << "one QR sweep cannot split the cyclic shift";
    std::vector<cplx> full = twin(c, 30, &info);
    ASSERT_EQ(info, 0);
    EXPECT_LE(matched_error(full, lapack(c)), tolerance(c));  // the 10th roots of unity
}

TEST(EigTwin, SolverRecomputesFlaggedMatricesOthersUnaffected_K4_N10) {
    const int N = 10;
    std::vector<Case> cases = {standard_cases(N, 5)[5], cyclic(N), standard_cases(N, 5)[6],
                               standard_cases(N, 5)[4]};  // diagonal, cyclic, triangular, zero
    std::vector<double> w;
    for (const Case& c : cases) w.insert(w.end(), c.w.begin(), c.w.end());
    auto solver = make_twin_eig_solver(2, /*itmax_factor=*/0);
    std::vector<cplx> out(cases.size() * N);
    solver->eigenvalues(w.data(), static_cast<int>(cases.size()), N, out.data());
    EXPECT_EQ(solver->stats().matrices, 4);
    EXPECT_EQ(solver->stats().fallbacks, 1) << "only the cyclic matrix needs the fallback";
    for (std::size_t k = 0; k < cases.size(); ++k) {
        std::vector<cplx> row(out.begin() + k * N, out.begin() + (k + 1) * N);
        std::vector<cplx> ref = lapack(cases[k]);
        EXPECT_LE(matched_error(row, ref), tolerance(cases[k])) << cases[k].name;
        sort_spectrum(ref.data(), N);  // rows come sorted as eigenvalues() sorts
        for (int i = 0; i < N; ++i) EXPECT_NEAR(std::abs(row[i]), std::abs(ref[i]), 1e-12);
    }
}

TEST(EigTwin, NonFiniteMatrixGivesNaNRowOthersUnaffected_K3_N9) {
    const int N = 9;
    std::vector<double> w = gaussian(N, 1), bad = gaussian(N, 2), last = gaussian(N, 3);
    bad[40] = NAN;
    std::vector<double> wr(N), wi(N);
    EXPECT_EQ(eig_twin_raw(bad.data(), N, wr.data(), wi.data()), -1);
    bad[40] = INFINITY;
    EXPECT_EQ(eig_twin_raw(bad.data(), N, wr.data(), wi.data()), -1);
    w.insert(w.end(), bad.begin(), bad.end());
    w.insert(w.end(), last.begin(), last.end());
    std::vector<cplx> out(3 * N);
    make_twin_eig_solver(0)->eigenvalues(w.data(), 3, N, out.data());
    for (int i = 0; i < N; ++i) EXPECT_TRUE(std::isnan(out[N + i].real()));
    std::vector<cplx> first(out.begin(), out.begin() + N), third(out.begin() + 2 * N, out.end());
    EXPECT_LE(matched_error(first, lapack({"g1", N, gaussian(N, 1)})), 1e-9);
    EXPECT_LE(matched_error(third, lapack({"g3", N, last})), 1e-9);
}

TEST(EigTwin, SolverSameBitsForAnyThreadCount_K9_N33) {
    const int K = 9, N = 33;
    std::vector<double> w;
    for (int k = 0; k < K; ++k) {
        std::vector<double> m = ei_random(N, 0.8, Init::Normal, 50 + k);
        w.insert(w.end(), m.begin(), m.end());
    }
    std::vector<cplx> one(K * N), two(K * N);
    make_twin_eig_solver(1)->eigenvalues(w.data(), K, N, one.data());
    make_twin_eig_solver(2)->eigenvalues(w.data(), K, N, two.data());
    for (int i = 0; i < K * N; ++i) {
        EXPECT_EQ(one[i].real(), two[i].real());
        EXPECT_EQ(one[i].imag(), two[i].imag());
    }
}

}  // namespace
}  // namespace eirnn

namespace eirnn {
namespace {

TEST(EigShape, OnChipUpToN170In227KB) {
    const std::size_t hopper = 232448;  // opt-in shared memory per block on H100 / H200
    eig::Shape s = eig::make_shape(100, hopper);
    EXPECT_TRUE(s.onchip);
    EXPECT_EQ(s.ld, 101);  // odd stride: a warp walking down a column hits distinct banks
    EXPECT_EQ(s.threads, 128);
    EXPECT_EQ(s.smem_bytes, (eig::kRedDoubles + 100 * 101) * sizeof(double));
    EXPECT_EQ(eig::make_shape(169, hopper).ld, 169);
    eig::Shape s170 = eig::make_shape(170, hopper);
    EXPECT_TRUE(s170.onchip);
    EXPECT_EQ(s170.ld, 170);  // the padded stride does not fit, the plain one does
    EXPECT_LE(s170.smem_bytes, hopper);
    eig::Shape s171 = eig::make_shape(171, hopper);
    EXPECT_FALSE(s171.onchip);
    EXPECT_EQ(s171.ld, 171);
    EXPECT_EQ(s171.smem_bytes, eig::kRedDoubles * sizeof(double));
    EXPECT_EQ(eig::make_shape(256, hopper).threads, 256);
    EXPECT_EQ(eig::make_shape(1, hopper).threads, 32);
    EXPECT_FALSE(eig::make_shape(33, hopper, /*force_global=*/true).onchip);
    EXPECT_EQ(eig::max_onchip_n(hopper), 170);
    EXPECT_EQ(eig::max_onchip_n(48 * 1024), 77);
}

}  // namespace
}  // namespace eirnn
