// Fixed points (host/analysis/dynamics.hpp): systems whose fixed points are known in closed form
// (the linear regime, bistable W = w I and a coupled pair), the Jacobian against central finite
// differences, determinism across thread counts, non-finite problems skipped; `eirnn dynamics` end
// to end on a trained results file (storage, determinism, diverged networks, bad input) and on a
// trained flip-flop network, which must hold its bit in at least two stable fixed points.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "host/analysis/dynamics.hpp"
#include "host/analysis/spectra.hpp"
#include "host/core/backend.hpp"
#include "host/core/error.hpp"
#include "host/io/dynamics_io.hpp"
#include "host/io/h5.hpp"
#include "host/io/results.hpp"
#include "host/train/trainer.hpp"
#include "tests/dynamics_cases.hpp"
#include "tests/test_util.hpp"

namespace fs = std::filesystem;
using eirnn::cplx;
using eirnn::DynamicsProblem;
using eirnn::DynamicsSettings;
using eirnn::PointKind;
using eirnn::PointSet;
using eirnn::Stability;

namespace {

using eirnn::testutil::bistable_root;
using eirnn::testutil::coupled_pair;
using eirnn::testutil::expect_bistable_three_points;
using eirnn::testutil::expect_coupled_three_points;
using eirnn::testutil::expect_decoupled_nine_points;
using eirnn::testutil::uniform_states;

PointSet solve_one(const DynamicsProblem& p, const DynamicsSettings& s = {}, int threads = 1) {
    std::vector<PointSet> r = eirnn::find_fixed_points({&p, 1}, s, threads);
    return r.at(0);
}

TEST(Dynamics, LinearRegimeOneFixedPointAtZero_N20) {
    const int N = 20, M = 64;
    for (double alpha : {1.0, 0.3}) {
        std::vector<float> wf = eirnn::testutil::random_vector(std::size_t(N) * N, 7, 0.4f / 5);
        std::vector<double> w(wf.begin(), wf.end()), c(N, 0.0);
        std::vector<double> x0 = uniform_states(M, N, 3, 1.0);
        DynamicsProblem p{N, alpha, w.data(), c.data(), x0.data(), M};
        PointSet ps = solve_one(p);
        ASSERT_EQ(ps.size(), 1) << "alpha " << alpha;
        EXPECT_EQ(ps.kind[0], PointKind::Fixed);
        EXPECT_EQ(ps.stability[0], Stability::Stable);
        EXPECT_EQ(ps.basin[0], M);
        for (int i = 0; i < N; ++i) EXPECT_LT(std::abs(ps.h[i]), 1e-10);
        std::vector<cplx> exact = eirnn::eigenvalues(w.data(), N);
        for (cplx& z : exact) z = (1 - alpha) + alpha * z;
        std::vector<cplx> got(ps.eig.begin(), ps.eig.begin() + N);
        EXPECT_LE(eirnn::testutil::matched_error(got, exact), 1e-10);
    }
}

TEST(Dynamics, BistableN1ThreeFixedPoints) {
    const double w = 2.0, hs = bistable_root(w);
    std::vector<double> W = {w}, c = {0.0};
    std::vector<double> x0 = uniform_states(64, 1, 5, 1.2);
    PointSet ps = solve_one({1, 1.0, W.data(), c.data(), x0.data(), 64});
    // Order: stable (+-h*, lexicographic: -h* first), then the unstable origin.
    expect_bistable_three_points(ps, w, hs);
}

TEST(Dynamics, BistableN2DecoupledNineFixedPoints) {
    // W = w I: each unit is the N = 1 system, so the fixed points are {-h*, 0, h*}^2: four stable
    // corners, four saddles with one unstable mode, the unstable origin.
    const double w = 2.0, hs = bistable_root(w);
    std::vector<double> W = {w, 0, 0, w}, c = {0.0, 0.0};
    std::vector<double> x0 = uniform_states(256, 2, 9, 1.2);
    expect_decoupled_nine_points(solve_one({2, 0.5, W.data(), c.data(), x0.data(), 256}), hs);
}

TEST(Dynamics, BistableN2CoupledThreeFixedPoints) {
    const double w = 1.8;
    std::vector<double> W = coupled_pair(w), c = {0.0, 0.0};
    std::vector<double> x0 = uniform_states(128, 2, 11, 1.2);
    expect_coupled_three_points(solve_one({2, 1.0, W.data(), c.data(), x0.data(), 128}),
                                bistable_root(w));
}

TEST(Dynamics, JacobianMatchesCentralDifferences_N31) {
    const int N = 31;
    for (double alpha : {1.0, 0.2}) {
        std::vector<float> wf = eirnn::testutil::random_vector(std::size_t(N) * N, 21, 1.5f / 5.5f);
        std::vector<float> cf = eirnn::testutil::random_vector(N, 22, 0.5f);
        std::vector<float> hf = eirnn::testutil::random_vector(N, 23, 0.5f);
        std::vector<double> w(wf.begin(), wf.end()), c(cf.begin(), cf.end()),
            h(hf.begin(), hf.end());
        DynamicsProblem p{N, alpha, w.data(), c.data(), nullptr, 0};
        std::vector<double> J(std::size_t(N) * N), fd(std::size_t(N) * N);
        eirnn::jacobian(p, h.data(), J.data());
        auto F = [&](const std::vector<double>& x, int i) {
            double a = c[i];
            for (int j = 0; j < N; ++j) a += w[std::size_t(i) * N + j] * x[j];
            return (1 - alpha) * x[i] + alpha * std::tanh(a);
        };
        const double eps = 1e-5;
        double num = 0, den = 0;
        for (int j = 0; j < N; ++j) {
            std::vector<double> hp = h, hm = h;
            hp[j] += eps;
            hm[j] -= eps;
            for (int i = 0; i < N; ++i) {
                fd[std::size_t(i) * N + j] = (F(hp, i) - F(hm, i)) / (2 * eps);
                num =
                    std::max(num, std::abs(fd[std::size_t(i) * N + j] - J[std::size_t(i) * N + j]));
                den = std::max(den, std::abs(J[std::size_t(i) * N + j]));
            }
        }
        EXPECT_LE(num / den, 1e-7) << "alpha " << alpha;
    }
}

TEST(Dynamics, SameResultOnOneAndTwoThreads_NonFiniteSkipped) {
    const int N = 24, M = 96, K = 5;
    std::vector<std::vector<double>> w(K), c(K), x0(K);
    std::vector<DynamicsProblem> probs;
    for (int k = 0; k < K; ++k) {
        std::vector<float> wf =
            eirnn::testutil::random_vector(std::size_t(N) * N, 100 + k, 1.6f / std::sqrt(24.0f));
        std::vector<float> cf = eirnn::testutil::random_vector(N, 200 + k, 0.1f);
        w[k].assign(wf.begin(), wf.end());
        c[k].assign(cf.begin(), cf.end());
        x0[k] = uniform_states(M, N, 300 + k, 0.9);
    }
    w[3][7] = NAN;
    for (int k = 0; k < K; ++k)
        probs.push_back({N, 1.0, w[k].data(), c[k].data(), x0[k].data(), M});
    std::vector<PointSet> a = eirnn::find_fixed_points(probs, {}, 1);
    std::vector<PointSet> b = eirnn::find_fixed_points(probs, {}, 2);
    ASSERT_EQ(a.size(), std::size_t(K));
    EXPECT_TRUE(a[3].skipped);
    EXPECT_EQ(a[3].size(), 0);
    int total = 0;
    for (int k = 0; k < K; ++k) {
        if (k != 3) {
            EXPECT_FALSE(a[k].skipped);
        }
        total += a[k].size();
        EXPECT_EQ(a[k].h, b[k].h);
        EXPECT_EQ(a[k].q, b[k].q);
        EXPECT_EQ(a[k].basin, b[k].basin);
        EXPECT_EQ(a[k].rho, b[k].rho);
        for (int p = 0; p < a[k].size(); ++p) {
            // Every point found is a fixed point or a slow point below the threshold.
            EXPECT_LT(a[k].q[p], DynamicsSettings{}.slow_q);
            EXPECT_NEAR(eirnn::speed(probs[k], &a[k].h[std::size_t(p) * N]), a[k].q[p],
                        1e-12 + 1e-9 * a[k].q[p]);
        }
    }
    EXPECT_GT(total, 0);
}

TEST(Dynamics, BadSettingsNameTheFlag) {
    DynamicsSettings s;
    s.starts = 0;
    try {
        eirnn::validate(s);
        FAIL() << "no error";
    } catch (const eirnn::InputError& e) {
        EXPECT_NE(std::string(e.what()).find("--starts"), std::string::npos);
    }
}

// ---- eirnn dynamics on results files ----

using eirnn::testutil::lines;
using eirnn::testutil::Outcome;
using eirnn::testutil::slurp;

const char* kTiny =
    " --units 12 --networks 3 --trials 80 --test-trials 16 --batch 16 --epochs 1 --first-in 4"
    " --stim-dur 3 --mem-gap 2 --var-delay 3 --out-gap 4 --quiet --dale none";

TEST(DynamicsCli, WritesRaggedPointsDeterministically) {
    eirnn::testutil::TempDir dir("eirnn_dyn_cli");
    const std::string r1 = (dir.path / "a.h5").string(), r2 = (dir.path / "b.h5").string();
    ASSERT_EQ(eirnn::testutil::run_eirnn("train -o " + r1 + kTiny).status, 0);
    fs::copy_file(r1, r2);
    Outcome o =
        eirnn::testutil::run_eirnn("dynamics " + r1 + " --input task --starts 32 --format csv");
    ASSERT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(lines(o.out), 1 + 4 * 3);  // header + 4 (A,B) conditions x 3 networks
    ASSERT_EQ(eirnn::testutil::run_eirnn("dynamics " + r2 + " --input task --starts 32 --threads 1")
                  .status,
              0);
    eirnn::h5::Id fa = eirnn::h5::open_read(r1), fb = eirnn::h5::open_read(r2);
    for (const char* name : {"h", "q", "rho_J", "offsets", "basin", "n_stable", "inputs"}) {
        std::string path = std::string("groups/g0000/dynamics/") + name;
        EXPECT_EQ(eirnn::h5::read_double(fa, path).data, eirnn::h5::read_double(fb, path).data)
            << name;
    }
    auto off = eirnn::h5::read_int(fa, "groups/g0000/dynamics/offsets");
    ASSERT_EQ(off.data.size(), std::size_t(4 * 3 + 1));
    auto h = eirnn::h5::read_double(fa, "groups/g0000/dynamics/h");
    auto eig = eirnn::h5::read_complex(fa, "groups/g0000/dynamics/eig_J");
    const std::size_t P = off.data.back();
    EXPECT_GT(P, 0u);
    ASSERT_EQ(h.dims, (std::vector<hsize_t>{P, 12}));
    ASSERT_EQ(eig.dims, (std::vector<hsize_t>{P, 12}));
    // The stored stability agrees with the stored eigenvalues.
    auto n_unst = eirnn::h5::read_int(fa, "groups/g0000/dynamics/n_unstable");
    for (std::size_t p = 0; p < P; ++p) {
        int n = 0;
        for (int i = 0; i < 12; ++i) n += std::abs(eig.data[p * 12 + i]) > 1.0;
        EXPECT_EQ(n, n_unst.data[p]);
    }
}

TEST(DynamicsCli, DivergedNetworkSkippedWithANote) {
    eirnn::testutil::TempDir dir("eirnn_dyn_div");
    const std::string r = (dir.path / "r.h5").string();
    ASSERT_EQ(eirnn::testutil::run_eirnn("train -o " + r + kTiny).status, 0);
    {
        eirnn::h5::Id f = eirnn::h5::open_rw(r);
        std::vector<std::uint8_t> div = {0, 1, 0};
        eirnn::h5::Id g = eirnn::h5::open_group(f, "groups/g0000");
        eirnn::h5::write(g, "diverged", div.data(), {3});
        auto w = eirnn::h5::read_float(g, "W_rec");
        w.data[2 * 144 + 5] = NAN;  // network 2: non-finite weights
        eirnn::h5::write(g, "W_rec", w.data.data(), w.dims);
    }
    Outcome o = eirnn::testutil::run_eirnn("dynamics " + r + " --starts 16 --format json");
    ASSERT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(lines(o.err), 2);
    EXPECT_NE(o.err.find("network 1: skipped (diverged"), std::string::npos) << o.err;
    EXPECT_NE(o.err.find("network 2: skipped (non-finite"), std::string::npos) << o.err;
    eirnn::h5::Id f = eirnn::h5::open_read(r);
    auto status = eirnn::h5::read_int(f, "groups/g0000/dynamics/status");
    EXPECT_EQ(status.data, (std::vector<std::int64_t>{0, 1, 2}));
    auto off = eirnn::h5::read_int(f, "groups/g0000/dynamics/offsets");
    EXPECT_GT(off.data[1], 0);
    EXPECT_EQ(off.data[1], off.data[3]);  // nothing stored for the skipped networks
}

TEST(DynamicsCli, BadInputExitsTwoOneLineFileUntouched) {
    eirnn::testutil::TempDir dir("eirnn_dyn_bad");
    const std::string r = (dir.path / "r.h5").string();
    ASSERT_EQ(eirnn::testutil::run_eirnn("train -o " + r + kTiny).status, 0);
    const std::string before = slurp(r);
    const std::string nogroups = (dir.path / "empty.h5").string();
    {
        eirnn::h5::Id f = eirnn::h5::create(nogroups);
        eirnn::write_root_attrs(f);
    }
    const std::string broken = (dir.path / "broken.h5").string();
    fs::copy_file(r, broken);
    {
        eirnn::h5::Id f = eirnn::h5::open_rw(broken);
        eirnn::h5::remove(f, "groups/g0000/W_in");
    }
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"dynamics " + (dir.path / "missing.h5").string(), "missing.h5"},
        {"dynamics " + nogroups, "groups"},
        {"dynamics " + broken, "W_in"},
        {"dynamics " + r + " --input 1,2,3", "--input"},
        {"dynamics " + r + " --input banana", "--input"},
        {"dynamics " + r + " --starts 0", "--starts"},
        {"dynamics " + r + " --slow-q -1", "--slow-q"},
        {"dynamics " + broken + " " + r, "W_in"},
    };
    for (const auto& [args, word] : cases) {
        Outcome o = eirnn::testutil::run_eirnn(args);
        EXPECT_EQ(o.status, 2) << args;
        EXPECT_EQ(lines(o.err), 1) << args << ": " << o.err;
        EXPECT_NE(o.err.find(word), std::string::npos) << args << ": " << o.err;
        EXPECT_EQ(slurp(r), before) << args;
    }
    for (const auto& e : fs::directory_iterator(dir.path))  // no temporary left behind
        EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
}

TEST(DynamicsCli, TrainWithDynamicsFlag) {
    eirnn::testutil::TempDir dir("eirnn_dyn_train");
    const std::string r = (dir.path / "r.h5").string();
    Outcome bad = eirnn::testutil::run_eirnn("train -o " + r + kTiny + " --dynamics --input 1,2,3");
    EXPECT_EQ(bad.status, 2);
    EXPECT_EQ(lines(bad.err), 1) << bad.err;
    EXPECT_FALSE(fs::exists(r));  // refused before training
    Outcome o = eirnn::testutil::run_eirnn("train -o " + r + kTiny + " --dynamics --starts 16");
    ASSERT_EQ(o.status, 0) << o.err;
    EXPECT_NE(o.out.find("dynamics: 3 networks"), std::string::npos) << o.out;
    eirnn::h5::Id f = eirnn::h5::open_read(r);
    EXPECT_EQ(eirnn::h5::read_int(f, "groups/g0000/dynamics/offsets").data.size(), 4u);
    EXPECT_TRUE(eirnn::h5::exists(f, "groups/g0000/eig"));  // the rest of the file is kept
}

TEST(DynamicsCli, SweepWithDynamicsFlag) {
    eirnn::testutil::TempDir dir("eirnn_dyn_sweep");
    const fs::path toml = dir.path / "s.toml", out = dir.path / "s.h5";
    {
        std::ofstream f(toml);
        f << "networks_per_cell = 2\nseed = 5\nbackend = \"cpu\"\n"
             "[model]\nunits = 8\n"
             "[train]\nepochs = 1\ntrials = 64\ntest_trials = 16\nbatch = 16\n"
             "[task]\nfirst_in = 2\nstim_dur = 3\nmem_gap = 2\nvar_delay = 3\nout_gap = 4\n"
             "[axes]\ntask = [\"and\", \"not\"]\n";
    }
    Outcome bad = eirnn::testutil::run_eirnn("sweep " + toml.string() + " -o " + out.string() +
                                             " --quiet --dynamics --input 1,0");
    EXPECT_EQ(bad.status, 2);  // "not" has one input
    EXPECT_NE(bad.err.find("--input"), std::string::npos) << bad.err;
    EXPECT_FALSE(fs::exists(out));
    Outcome o = eirnn::testutil::run_eirnn("sweep " + toml.string() + " -o " + out.string() +
                                           " --quiet --dynamics --input task --starts 16");
    ASSERT_EQ(o.status, 0) << o.err;
    eirnn::h5::Id f = eirnn::h5::open_read(out.string());
    // and: four (A,B) conditions; not: A = 0 and A = 1; two networks each.
    EXPECT_EQ(eirnn::h5::read_int(f, "groups/g0000/dynamics/offsets").data.size(), 4u * 2 + 1);
    EXPECT_EQ(eirnn::h5::read_int(f, "groups/g0001/dynamics/offsets").data.size(), 2u * 2 + 1);
}

TEST(DynamicsCli, ShardedSweepFindsTheFixedPointsAtTheMerge) {
    eirnn::testutil::TempDir dir("eirnn_dyn_shards");
    const fs::path toml = dir.path / "s.toml", out = dir.path / "s.h5";
    const fs::path parts = out.string() + ".parts";
    {
        std::ofstream f(toml);
        f << "networks_per_cell = 2\nseed = 5\nbackend = \"cpu\"\nthreads = 1\n"
             "[model]\nunits = 8\n"
             "[train]\nepochs = 1\ntrials = 64\ntest_trials = 16\nbatch = 16\n"
             "[task]\nfirst_in = 2\nstim_dur = 3\nmem_gap = 2\nvar_delay = 3\nout_gap = 4\n"
             "[axes]\ntask = [\"and\", \"not\"]\n";
    }
    const std::string sweep = "sweep " + toml.string() + " -o " + out.string() + " --quiet";
    // A shard writes no results file, and the Slurm merge job has no time for the search.
    Outcome shard = eirnn::testutil::run_eirnn(sweep + " --shard 0/2 --dynamics");
    EXPECT_EQ(shard.status, 2);
    EXPECT_EQ(lines(shard.err), 1) << shard.err;
    EXPECT_NE(shard.err.find("--merge"), std::string::npos) << shard.err;
    EXPECT_FALSE(fs::exists(parts));  // refused before training
    Outcome slurm = eirnn::testutil::run_eirnn(sweep + " --slurm --shards 2 --rate 1 --dynamics");
    EXPECT_EQ(slurm.status, 2);
    EXPECT_NE(slurm.err.find("--slurm"), std::string::npos) << slurm.err;
    for (const char* s : {"0/2", "1/2"}) {
        Outcome o = eirnn::testutil::run_eirnn(sweep + " --shard " + s);
        ASSERT_EQ(o.status, 0) << o.err;
    }
    EXPECT_FALSE(fs::exists(out));
    Outcome m = eirnn::testutil::run_eirnn(sweep + " --merge --dynamics --input task --starts 16");
    ASSERT_EQ(m.status, 0) << m.err;
    EXPECT_NE(m.out.find("merged 2 groups"), std::string::npos) << m.out;
    EXPECT_NE(m.out.find("dynamics: 4 networks"), std::string::npos) << m.out;
    eirnn::h5::Id f = eirnn::h5::open_read(out.string());
    EXPECT_EQ(eirnn::h5::read_int(f, "groups/g0000/dynamics/offsets").data.size(), 4u * 2 + 1);
    EXPECT_EQ(eirnn::h5::read_int(f, "groups/g0001/dynamics/offsets").data.size(), 2u * 2 + 1);
}

// ---- a trained flip-flop network ----

TEST(DynamicsFlipFlop, TrainedNetworkHoldsItsBitInTwoStableFixedPoints) {
    // Short flip-flop trials (4 pulses, 40 steps apart, 40 steps after the last one); unconstrained
    // N = 20 networks learn them in a second. A network may hold its bit in a slowly decaying
    // state or a limit cycle instead (measured: 5 of 8 seeds have two stable fixed points), so the
    // test asks it of one of four networks, and checks that network's held-out trials end there.
    eirnn::GroupConfig c;
    c.task.kind = eirnn::TaskKind::FlipFlop;
    c.task.ff_pulse = 5;
    c.task.ff_pulses = 4;
    c.task.ff_spacing = 40;
    c.task.ff_first = 5;
    c.task.ff_length = 170;
    c.task.ff_lag = 3;
    c.model.units = 20;
    c.model.dale = eirnn::DaleMode::None;
    c.model.init = eirnn::Init::Orthogonal;
    c.train.trials = 600;
    c.train.test_trials = 40;
    c.train.epochs = 12;
    c.train.batch = 16;
    c.train.lr = 1e-2;
    c.train.decay = 0;
    c.train.early_stop = 0;
    c.networks = 4;
    c.seed = 1;
    c.spectra = false;
    auto backend = eirnn::make_backend(eirnn::BackendKind::Cpu, 0);
    eirnn::GroupResult r = eirnn::train_group(c, *backend, nullptr);

    eirnn::testutil::TempDir dir("eirnn_dyn_ff");
    const fs::path path = dir.path / "ff.h5";
    eirnn::write_results_file(path, false, r, 0);
    eirnn::DynamicsFile f = eirnn::read_dynamics_file(path);
    DynamicsSettings s;
    s.starts = 128;
    std::vector<eirnn::GroupDynamics> d = eirnn::update_file_dynamics(f, {"zero"}, s, 0, nullptr);
    int k = -1;
    for (int n = 0; n < c.networks && k < 0; ++n)
        if (r.accuracy[n] >= 0.95 && d.at(0).sets.at(n).count_stable_fixed() >= 2) k = n;
    ASSERT_GE(k, 0) << "no learned network with two stable fixed points";
    const PointSet& ps = d[0].sets[k];

    // Ends of held-out trials (40 steps after the last pulse) lie near a stable fixed point.
    const eirnn::DynamicsGroupData& g = f.groups[0];
    const int N = g.N;
    const float* w = g.w_rec.data() + std::size_t(k) * N * N;
    const float* w_in = g.w_in.data() + std::size_t(k) * N * 2;
    const float* b = g.b.data() + std::size_t(k) * N;
    eirnn::Dataset all = eirnn::make_dataset(c.task, c.train.trials, c.data_seed);
    const int T = all.T, first = c.train.trials - c.train.test_trials, trials = 10;
    int near = 0;
    for (int t = 0; t < trials; ++t) {
        std::vector<double> h(N, 0.0), a(N);
        for (int step = 0; step < T; ++step) {
            const float* x = &all.x[(std::size_t(first + t) * T + step) * 2];
            for (int i = 0; i < N; ++i) {
                double v = b[i] + double(w_in[i * 2]) * x[0] + double(w_in[i * 2 + 1]) * x[1];
                for (int j = 0; j < N; ++j) v += double(w[i * N + j]) * h[j];
                a[i] = std::tanh(v);
            }
            h = a;
        }
        double best = INFINITY;
        for (int p = 0; p < ps.size(); ++p) {
            if (ps.kind[p] != PointKind::Fixed || ps.stability[p] != Stability::Stable) continue;
            double dist = 0;
            for (int i = 0; i < N; ++i)
                dist = std::max(dist, std::abs(h[i] - ps.h[std::size_t(p) * N + i]));
            best = std::min(best, dist);
        }
        near += best < 0.1;
    }
    EXPECT_GE(near, trials - 1);
}

}  // namespace
