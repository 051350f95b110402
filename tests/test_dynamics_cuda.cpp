// The fixed-point search with its L-BFGS phase on the GPU (host/cuda/dynamics.hpp) and the Jacobian
// spectra by the GPU's batched eigensolver, against closed forms and against the CPU path: the
// linear regime, bistable W = w I (N = 1, 2) and a coupled pair, random networks (the same points
// within 1e-9, the same counts, kinds, stability classes and basins), W on chip and in global
// memory, partial blocks, bit-identical repeats, non-finite and empty problems skipped, and
// `eirnn dynamics --backend cuda` end to end. Every test skips without a CUDA device (fails with
// EIRNN_REQUIRE_GPU=1). Label gpu; emulated on the emulated device, where the sizes are trimmed.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "host/analysis/dynamics.hpp"
#include "host/analysis/eig_solver.hpp"
#include "host/cuda/dynamics.hpp"
#include "host/cuda/eig.hpp"
#include "host/io/h5.hpp"
#include "tests/cuda_test_util.hpp"
#include "tests/dynamics_cases.hpp"
#include "tests/test_util.hpp"

namespace eirnn {
namespace {

using testutil::bistable_root;
using testutil::coupled_pair;
using testutil::expect_bistable_three_points;
using testutil::expect_coupled_three_points;
using testutil::expect_decoupled_nine_points;
using testutil::uniform_states;

namespace fs = std::filesystem;

/// The GPU path: L-BFGS on the device, the spectra by the batched GPU eigensolver.
std::vector<PointSet> gpu_solve(std::span<const DynamicsProblem> probs,
                                const DynamicsSettings& s = {},
                                const cuda::DynamicsGpuOptions& opt = {}) {
    std::unique_ptr<DynamicsSearch> search = cuda::make_cuda_dynamics_search(opt);
    std::unique_ptr<EigSolver> eig = cuda::make_batched_eig_solver();
    return find_fixed_points(probs, s, 1, eig.get(), search.get());
}

PointSet gpu_solve_one(const DynamicsProblem& p, const DynamicsSettings& s = {}) {
    return gpu_solve({&p, 1}, s).at(0);
}

/// The CPU path on the same problems (LAPACK spectra), on OpenMP's thread count (one under
/// ThreadSanitizer, which does not see OpenMP's synchronisation).
std::vector<PointSet> cpu_solve(std::span<const DynamicsProblem> probs,
                                const DynamicsSettings& s = {}) {
    return find_fixed_points(probs, s, 0);
}

/// Same points, kinds, classes and basins; h and the eigenvalues within tol. Adds the largest
/// |h_gpu - h_cpu| over the fixed points to *max_fixed_err.
void expect_same_points(const PointSet& g, const PointSet& c, double tol, const std::string& what,
                        double* max_fixed_err = nullptr) {
    ASSERT_EQ(g.skipped, c.skipped) << what;
    ASSERT_EQ(g.size(), c.size()) << what;
    ASSERT_EQ(g.N, c.N) << what;
    const std::size_t n = g.N;
    EXPECT_EQ(g.kind, c.kind) << what;
    EXPECT_EQ(g.stability, c.stability) << what;
    EXPECT_EQ(g.n_unstable, c.n_unstable) << what;
    EXPECT_EQ(g.basin, c.basin) << what;
    for (int p = 0; p < g.size(); ++p) {
        double err = 0;
        for (std::size_t i = 0; i < n; ++i)
            err = std::max(err, std::abs(g.h[p * n + i] - c.h[p * n + i]));
        // Slow points stop where the iteration stalls: the same point, not the same digits.
        const double t = g.kind[p] == PointKind::Fixed ? tol : 1e-5;
        EXPECT_LE(err, t) << what << " point " << p;
        if (g.kind[p] != PointKind::Fixed) continue;
        if (max_fixed_err) *max_fixed_err = std::max(*max_fixed_err, err);
        std::vector<cplx> eg(g.eig.begin() + p * n, g.eig.begin() + (p + 1) * n);
        std::vector<cplx> ec(c.eig.begin() + p * n, c.eig.begin() + (p + 1) * n);
        EXPECT_LE(testutil::matched_error(eg, ec), tol) << what << " point " << p;
        EXPECT_NEAR(g.rho[p], c.rho[p], tol) << what << " point " << p;
    }
}

TEST(CudaDynamics, LinearRegimeOneFixedPointAtZero) {
    EIRNN_REQUIRE_GPU();
    const int N = testutil::gpu_emulated() ? 8 : 20, M = testutil::gpu_emulated() ? 12 : 64;
    for (double alpha : {1.0, 0.3}) {
        std::vector<float> wf = testutil::random_vector(std::size_t(N) * N, 7, 0.4f / 5);
        std::vector<double> w(wf.begin(), wf.end()), c(N, 0.0);
        std::vector<double> x0 = uniform_states(M, N, 3, 1.0);
        PointSet ps = gpu_solve_one({N, alpha, w.data(), c.data(), x0.data(), M});
        ASSERT_EQ(ps.size(), 1) << "alpha " << alpha;
        EXPECT_EQ(ps.kind[0], PointKind::Fixed);
        EXPECT_EQ(ps.stability[0], Stability::Stable);
        EXPECT_EQ(ps.basin[0], M);
        for (int i = 0; i < N; ++i) EXPECT_LT(std::abs(ps.h[i]), 1e-10);
        std::vector<cplx> exact = eigenvalues(w.data(), N);
        for (cplx& z : exact) z = (1 - alpha) + alpha * z;
        std::vector<cplx> got(ps.eig.begin(), ps.eig.begin() + N);
        EXPECT_LE(testutil::matched_error(got, exact), 1e-10) << "alpha " << alpha;
    }
}

TEST(CudaDynamics, BistableN1ThreeFixedPoints) {
    EIRNN_REQUIRE_GPU();
    const double w = 2.0, hs = bistable_root(w);
    std::vector<double> W = {w}, c = {0.0};
    const int M = testutil::gpu_emulated() ? 24 : 64;
    std::vector<double> x0 = uniform_states(M, 1, 5, 1.2);
    PointSet ps = gpu_solve_one({1, 1.0, W.data(), c.data(), x0.data(), M});
    expect_bistable_three_points(ps, w, hs);
    EXPECT_EQ(ps.basin[0] + ps.basin[1] + ps.basin[2], M);
}

TEST(CudaDynamics, BistableN2DecoupledNineFixedPoints) {
    // W = w I: {-h*, 0, h*}^2, four stable corners, four saddles, the unstable origin.
    EIRNN_REQUIRE_GPU();
    const double w = 2.0, hs = bistable_root(w);
    const int M = testutil::gpu_emulated() ? 64 : 256;
    std::vector<double> W = {w, 0, 0, w}, c = {0.0, 0.0};
    std::vector<double> x0 = uniform_states(M, 2, 9, 1.2);
    expect_decoupled_nine_points(gpu_solve_one({2, 0.5, W.data(), c.data(), x0.data(), M}), hs);
}

TEST(CudaDynamics, BistableN2CoupledThreeFixedPoints) {
    EIRNN_REQUIRE_GPU();
    const double w = 1.8;
    std::vector<double> W = coupled_pair(w), c = {0.0, 0.0};
    const int M = testutil::gpu_emulated() ? 32 : 128;
    std::vector<double> x0 = uniform_states(M, 2, 11, 1.2);
    expect_coupled_three_points(gpu_solve_one({2, 1.0, W.data(), c.data(), x0.data(), M}),
                                bistable_root(w));
}

/// The default settings; on the emulated device (about half a second per initial state under
/// ThreadSanitizer) at most 60 L-BFGS iterations, for both paths alike.
DynamicsSettings emulated_settings() {
    DynamicsSettings s;
    if (testutil::gpu_emulated()) s.iterations = 60;
    return s;
}

/// K random networks with several fixed points each (gain 1.6), a NaN one (index 2) and one
/// without initial states (index 3).
struct RandomSet {
    int N, M, K;
    std::vector<std::vector<double>> w, c, x0;
    std::vector<DynamicsProblem> probs;

    RandomSet(int N_, int M_, int K_) : N(N_), M(M_), K(K_), w(K_), c(K_), x0(K_) {
        for (int k = 0; k < K; ++k) {
            std::vector<float> wf =
                testutil::random_vector(std::size_t(N) * N, 100 + k, 1.6f / std::sqrt(float(N)));
            std::vector<float> cf = testutil::random_vector(N, 200 + k, 0.1f);
            w[k].assign(wf.begin(), wf.end());
            c[k].assign(cf.begin(), cf.end());
            x0[k] = uniform_states(M, N, 300 + k, 0.9);
        }
        w[2][7] = NAN;
        for (int k = 0; k < K; ++k)
            probs.push_back(
                {N, k % 2 ? 0.5 : 1.0, w[k].data(), c[k].data(), x0[k].data(), k == 3 ? 0 : M});
    }
};

TEST(CudaDynamics, RandomNetworksMatchTheCpu_OnChipAndGlobal) {
    EIRNN_REQUIRE_GPU();
    const bool emu = testutil::gpu_emulated();
    RandomSet rs(emu ? 8 : 24, emu ? 8 : 96, emu ? 5 : 8);
    const DynamicsSettings s = emulated_settings();
    std::vector<PointSet> cpu = cpu_solve(rs.probs, s);
    int fixed = 0, multi = 0, slow = 0;
    for (const PointSet& ps : cpu) {
        fixed += ps.count(PointKind::Fixed);
        slow += ps.count(PointKind::Slow);
        multi += ps.count(PointKind::Fixed) >= 2;
    }
    ASSERT_GT(fixed, 0);
    EXPECT_GT(multi, 0) << "the test systems should have networks with several fixed points";
    EXPECT_TRUE(cpu[2].skipped);
    EXPECT_TRUE(cpu[3].skipped);
    // On chip with full blocks, on chip with partial blocks (3 states per block; not on the
    // emulated device, where SameSeedsBitIdentical has partial blocks), global memory.
    struct Variant {
        const char* name;
        cuda::DynamicsGpuOptions opt;
    };
    std::vector<Variant> variants = {{"on chip", {}}};
    if (!emu) variants.push_back({"on chip, 3 warps", {false, 3}});
    variants.push_back({"global", {true, 0}});
    double max_err = 0;
    for (const Variant& v : variants) {
        std::vector<PointSet> gpu = gpu_solve(rs.probs, s, v.opt);
        ASSERT_EQ(gpu.size(), cpu.size());
        for (int k = 0; k < rs.K; ++k)
            expect_same_points(gpu[k], cpu[k], 1e-9,
                               std::string(v.name) + " network " + std::to_string(k), &max_err);
    }
    std::printf(
        "%d fixed points (%d networks with several), %d slow points; max |h_gpu - h_cpu| "
        "over the fixed points %.3g\n",
        fixed, multi, slow, max_err);
}

TEST(CudaDynamics, SameSeedsBitIdentical) {
    EIRNN_REQUIRE_GPU();
    const bool emu = testutil::gpu_emulated();
    RandomSet rs(emu ? 8 : 24, emu ? 6 : 96, 4);
    const DynamicsSettings s = emulated_settings();
    std::vector<PointSet> a = gpu_solve(rs.probs, s), b = gpu_solve(rs.probs, s);
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t k = 0; k < a.size(); ++k) {
        EXPECT_EQ(a[k].skipped, b[k].skipped);
        EXPECT_EQ(a[k].h, b[k].h) << k;
        EXPECT_EQ(a[k].q, b[k].q) << k;
        EXPECT_EQ(a[k].basin, b[k].basin) << k;
        EXPECT_EQ(a[k].rho, b[k].rho) << k;
        EXPECT_EQ(a[k].eig, b[k].eig) << k;
    }
    // The raw endpoints too, and independent of how the states share blocks.
    std::unique_ptr<DynamicsSearch> s1 = cuda::make_cuda_dynamics_search(),
                                    s2 = cuda::make_cuda_dynamics_search({false, 5});
    std::vector<DynamicsProblem> live = {rs.probs[0], rs.probs[1]};
    if (emu) live.pop_back();
    std::vector<std::vector<double>> e1, q1, e2, q2;
    s1->descend(live, s, e1, q1);
    s2->descend(live, s, e2, q2);
    EXPECT_EQ(e1, e2);
    EXPECT_EQ(q1, q2);
}

TEST(CudaDynamics, NonFiniteAndEmptyProblemsSkipped) {
    EIRNN_REQUIRE_GPU();
    const int N = 6, M = 8;
    std::vector<double> w(N * N, 0.1), c(N, 0.0), x0 = uniform_states(M, N, 1, 0.5);
    std::vector<double> bad_w = w, bad_x = x0;
    bad_w[3] = INFINITY;
    bad_x[5] = NAN;
    std::vector<DynamicsProblem> probs = {{N, 1.0, bad_w.data(), c.data(), x0.data(), M},
                                          {N, 1.0, w.data(), c.data(), bad_x.data(), M},
                                          {N, 1.0, w.data(), c.data(), x0.data(), 0},
                                          {N, 1.0, w.data(), c.data(), x0.data(), M}};
    std::vector<PointSet> r = gpu_solve(probs);
    ASSERT_EQ(r.size(), 4u);
    for (int k = 0; k < 3; ++k) {
        EXPECT_TRUE(r[k].skipped) << k;
        EXPECT_EQ(r[k].size(), 0) << k;
    }
    EXPECT_FALSE(r[3].skipped);
    EXPECT_EQ(r[3].count_stable_fixed(), 1);
    // Nothing searchable at all: no launch, no error.
    std::vector<PointSet> none = gpu_solve({probs.data(), 3});
    for (const PointSet& ps : none) EXPECT_TRUE(ps.skipped);
}

// ---- eirnn dynamics --backend cuda ----

std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

int eirnn_run(const fs::path& dir, const std::string& args, std::string* err = nullptr) {
    const fs::path o = dir / "stdout", e = dir / "stderr";
    const std::string cmd = std::string(EIRNN_BINARY) + " " + args + " >" + o.string() + " 2>" +
                            e.string() + " </dev/null";
    const int rc = std::system(cmd.c_str());
    if (err) *err = slurp(e);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

TEST(CudaDynamicsCli, BackendCudaMatchesCpuDivergedSkipped) {
    EIRNN_REQUIRE_GPU();
    testutil::TempDir dir("eirnn_dyn_cuda");
    const std::string a = (dir.path / "a.h5").string(), b = (dir.path / "b.h5").string();
    ASSERT_EQ(
        eirnn_run(dir.path, "train -o " + a +
                                " --units 8 --networks 3 --trials 40 --test-trials 8 --batch 8"
                                " --epochs 1 --first-in 4 --stim-dur 3 --mem-gap 2 --var-delay 3"
                                " --out-gap 4 --quiet --dale none --backend cpu"),
        0);
    {
        h5::Id f = h5::open_rw(a);
        h5::Id g = h5::open_group(f, "groups/g0000");
        std::vector<std::uint8_t> div = {0, 1, 0};
        h5::write(g, "diverged", div.data(), {3});
    }
    fs::copy_file(a, b);
    std::string err;
    ASSERT_EQ(eirnn_run(dir.path, "dynamics " + a + " --starts 12 --backend cpu", &err), 0) << err;
    ASSERT_EQ(eirnn_run(dir.path, "dynamics " + b + " --starts 12 --backend cuda", &err), 0) << err;
    EXPECT_NE(err.find("network 1: skipped (diverged"), std::string::npos) << err;
    h5::Id fa = h5::open_read(a), fb = h5::open_read(b);
    const std::string d = "groups/g0000/dynamics/";
    EXPECT_EQ(h5::read_attr_string(h5::open_group(fa, "groups/g0000/dynamics"), "search"), "cpu");
    EXPECT_EQ(h5::read_attr_string(h5::open_group(fb, "groups/g0000/dynamics"), "search"), "cuda");
    for (const char* name : {"offsets", "basin", "kind", "stability", "n_unstable", "status"})
        EXPECT_EQ(h5::read_int(fa, d + name).data, h5::read_int(fb, d + name).data) << name;
    const auto ha = h5::read_double(fa, d + "h").data, hb = h5::read_double(fb, d + "h").data;
    const auto kind = h5::read_int(fa, d + "kind").data;
    ASSERT_EQ(ha.size(), hb.size());
    ASSERT_GT(ha.size(), 0u);
    for (std::size_t e = 0; e < ha.size(); ++e)
        EXPECT_NEAR(ha[e], hb[e], kind[e / 8] == 0 ? 1e-9 : 1e-5) << e;
}

}  // namespace
}  // namespace eirnn
