// CLI tests: `eirnn train` end to end on a tiny group, and every bad input exits with status 2,
// prints exactly one line on stderr and creates no file; `eirnn spectrum --backend/--eig-method`;
// the OpenBLAS kernels the CLI runs on.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <complex>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "host/core/backend.hpp"
#include "host/io/h5.hpp"
#include "kernels/cpu/blas.hpp"
#include "tests/test_util.hpp"

namespace fs = std::filesystem;
using eirnn::testutil::matched_error;

namespace {

using eirnn::testutil::lines;
using eirnn::testutil::Outcome;

/// Runs the eirnn binary with args (a shell-quoted string), capturing stdout and stderr.
Outcome eirnn(const std::string& args) {
    return eirnn::testutil::run_eirnn(args);
}

class CliTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("eirnn_cli_out_" + std::to_string(getpid()));
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }
    std::string out(const char* name = "r.h5") const { return (dir_ / name).string(); }
    bool empty_dir() const { return fs::is_empty(dir_); }
    fs::path dir_;
};

const char* kTiny =
    " --units 8 --networks 2 --trials 80 --test-trials 16 --batch 16 --epochs 1 --first-in 4"
    " --stim-dur 3 --mem-gap 2 --var-delay 3 --out-gap 4 --quiet";

TEST_F(CliTest, TrainWritesAResultsFile) {
    Outcome r = eirnn(std::string("train") + kTiny + " --out " + out());
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(lines(r.out), 3) << r.out;  // one line per network + a summary line
    eirnn::h5::Id f = eirnn::h5::open_read(out());
    EXPECT_EQ(eirnn::h5::read_attr_string(f, "format"), "eirnn-results");
    auto w = eirnn::h5::read_float(f, "groups/g0000/W_rec");
    ASSERT_EQ(w.dims.size(), 3u);
    EXPECT_EQ(w.dims[0], 2u);
    EXPECT_EQ(w.dims[1], 8u);
    EXPECT_TRUE(eirnn::h5::exists(f, "groups/g0000/eig"));
    EXPECT_TRUE(eirnn::h5::exists(f, "groups/g0000/metrics/r_outer"));
    // An existing output is refused without --force, and kept intact.
    auto before = fs::file_size(out());
    Outcome again = eirnn(std::string("train") + kTiny + " --out " + out());
    EXPECT_EQ(again.status, 2);
    EXPECT_EQ(lines(again.err), 1) << again.err;
    EXPECT_EQ(fs::file_size(out()), before);
    Outcome forced = eirnn(std::string("train") + kTiny + " --force --out " + out());
    EXPECT_EQ(forced.status, 0) << forced.err;
}

TEST_F(CliTest, HelpOnEverySubcommand) {
    for (const char* sub : {"", "train ", "spectrum "}) {
        Outcome r = eirnn(std::string(sub) + "--help");
        EXPECT_EQ(r.status, 0) << sub;
        EXPECT_NE(r.out.find("Usage"), std::string::npos) << sub;
    }
    Outcome r = eirnn("train --help");
    for (const char* flag :
         {"--task", "--units", "--e-frac", "--init", "--dale", "--dale-axis", "--networks",
          "--seed", "--data-seed", "--epochs", "--trials", "--batch", "--lr", "--alpha",
          "--threads", "--backend", "--out", "--force"})
        EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
}

TEST_F(CliTest, BadInputsExitTwoWithOneLineAndNoFile) {
    const char* bad[] = {
        "--task nand",
        "--init uniform",
        "--dale soft",
        "--dale-axis sideways",
        "--units 1",
        "--units 8193",
        "--e-frac 0",
        "--e-frac 1",
        "--e-frac 1.5",
        "--units 4 --e-frac 0.05",
        "--units 4 --e-frac 0.95",
        "--lr 0",
        "--lr -1",
        "--epochs 0",
        "--trials 0",
        "--batch 0",
        "--batch 100000",
        "--lr nan",
        "--alpha nan",
        "--e-frac nan",
        "--p-connect 0",
        "--backend tpu",
        "--alpha 1.5",
        "--units abc",
        "--no-such-flag",
        "--eig-method qr",
        "--backend cpu --eig-method xgeev",
    };
    for (const char* b : bad) {
        Outcome r = eirnn(std::string("train --units 8 --networks 1 --trials 80 --test-trials 16 "
                                      "--batch 16 --epochs 1 --quiet ") +
                          b + " --out " + out());
        EXPECT_EQ(r.status, 2) << b << ": " << r.err;
        EXPECT_EQ(lines(r.err), 1) << b << ": " << r.err;
        EXPECT_TRUE(empty_dir()) << b;
    }
    // Unwritable output: a folder that does not exist.
    Outcome r =
        eirnn(std::string("train") + kTiny + " --out " + (dir_ / "missing" / "r.h5").string());
    EXPECT_EQ(r.status, 2);
    EXPECT_EQ(lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find("--out"), std::string::npos) << r.err;
}

TEST_F(CliTest, TrainIsDeterministic) {
    Outcome a = eirnn(std::string("train") + kTiny + " --out " + out("a.h5"));
    Outcome b = eirnn(std::string("train") + kTiny + " --threads 1 --out " + out("b.h5"));
    ASSERT_EQ(a.status, 0) << a.err;
    ASSERT_EQ(b.status, 0) << b.err;
    eirnn::h5::Id fa = eirnn::h5::open_read(out("a.h5")), fb = eirnn::h5::open_read(out("b.h5"));
    for (const char* d : {"W_rec_initial", "W_rec", "W_in", "b", "W_out", "b_out", "loss"}) {
        auto x = eirnn::h5::read_float(fa, std::string("groups/g0000/") + d);
        auto y = eirnn::h5::read_float(fb, std::string("groups/g0000/") + d);
        ASSERT_EQ(x.data.size(), y.data.size()) << d;
        EXPECT_EQ(std::memcmp(x.data.data(), y.data.data(), x.data.size() * sizeof(float)), 0) << d;
    }
}

// ---- spectra: --backend and --eig-method ----

std::string slurp_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::vector<std::string> listing(const fs::path& dir) {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

const char* kSpectraGroup =
    " --units 24 --networks 3 --trials 80 --test-trials 16 --batch 16 --epochs 1 --first-in 4"
    " --stim-dur 3 --mem-gap 2 --var-delay 3 --out-gap 4 --quiet";

TEST_F(CliTest, TrainRecordsTheEigMethod) {
    Outcome r = eirnn(std::string("train") + kTiny + " --eig-method lapack --out " + out());
    ASSERT_EQ(r.status, 0) << r.err;
    eirnn::h5::Id f = eirnn::h5::open_read(out());
    eirnn::h5::Id g = eirnn::h5::open_group(f, "groups/g0000");
    EXPECT_EQ(eirnn::h5::read_attr_string(g, "eig_method"), "lapack");
    EXPECT_EQ(eirnn::h5::read_attr_double(g, "eig_fallbacks"), 0.0);
    for (const char* sub : {"train", "spectrum", "sweep", "reproduce"}) {
        Outcome h = eirnn(std::string(sub) + " --help");
        EXPECT_NE(h.out.find("--eig-method"), std::string::npos) << sub;
    }
    EXPECT_NE(eirnn("spectrum --help").out.find("--backend"), std::string::npos);
}

TEST_F(CliTest, SpectrumBatchedTwinMatchesLapack_K3_N24) {
    Outcome t = eirnn(std::string("train") + kSpectraGroup + " --out " + out("a.h5"));
    ASSERT_EQ(t.status, 0) << t.err;
    fs::copy_file(out("a.h5"), out("b.h5"));
    Outcome a = eirnn("spectrum --backend cpu --eig-method lapack --format csv " + out("a.h5"));
    ASSERT_EQ(a.status, 0) << a.err;
    Outcome b = eirnn("spectrum --backend cpu --eig-method batched --format csv " + out("b.h5"));
    ASSERT_EQ(b.status, 0) << b.err;
    EXPECT_EQ(lines(b.out), lines(a.out));
    eirnn::h5::Id fa = eirnn::h5::open_read(out("a.h5")), fb = eirnn::h5::open_read(out("b.h5"));
    eirnn::h5::Id ga = eirnn::h5::open_group(fa, "groups/g0000");
    eirnn::h5::Id gb = eirnn::h5::open_group(fb, "groups/g0000");
    EXPECT_EQ(eirnn::h5::read_attr_string(ga, "eig_method"), "lapack");
    EXPECT_EQ(eirnn::h5::read_attr_string(gb, "eig_method"), "batched-cpu");
    EXPECT_GE(eirnn::h5::read_attr_double(gb, "eig_fallbacks"), 0.0);
    const int K = 3, N = 24;
    auto w0 = eirnn::h5::read_float(ga, "W_rec_initial").data;
    auto w1 = eirnn::h5::read_float(ga, "W_rec").data;
    for (const char* name : {"eig_initial", "eig_projected", "eig"}) {
        const auto& w = std::string(name) == "eig" ? w1 : w0;
        auto ea = eirnn::h5::read_complex(ga, name).data;
        auto eb = eirnn::h5::read_complex(gb, name).data;
        ASSERT_EQ(ea.size(), std::size_t(K * N)) << name;
        ASSERT_EQ(eb.size(), ea.size()) << name;
        for (int k = 0; k < K; ++k) {
            double fro2 = 0;
            for (int i = 0; i < N * N; ++i) fro2 += double(w[k * N * N + i]) * w[k * N * N + i];
            std::vector<std::complex<double>> ra(ea.begin() + k * N, ea.begin() + (k + 1) * N);
            std::vector<std::complex<double>> rb(eb.begin() + k * N, eb.begin() + (k + 1) * N);
            EXPECT_LE(matched_error(ra, rb), 1e-9 * std::max(1.0, std::sqrt(fro2)))
                << name << " k=" << k;
        }
    }
}

TEST_F(CliTest, SpectrumBadBackendOrMethodExitTwoFileUntouched) {
    Outcome t = eirnn(std::string("train") + kTiny + " --out " + out());
    ASSERT_EQ(t.status, 0) << t.err;
    const std::string before = slurp_file(out());
    const std::vector<std::string> files = listing(dir_);
    std::vector<std::string> bad = {"--eig-method xgeev --backend cpu", "--eig-method qr",
                                    "--backend tpu",
                                    "--backend cpu --eig-method xgeev --save s.h5"};
    if (!eirnn::cuda_available()) bad.push_back("--backend cuda");
    for (const std::string& args : bad) {
        Outcome r = eirnn("spectrum " + args + " " + out());
        EXPECT_EQ(r.status, 2) << args << ": " << r.err;
        EXPECT_EQ(lines(r.err), 1) << args << ": " << r.err;
        EXPECT_TRUE(r.out.empty()) << args << ": " << r.out;
        EXPECT_EQ(slurp_file(out()), before) << args;
        EXPECT_EQ(listing(dir_), files) << args;
    }
    Outcome x = eirnn("spectrum --eig-method xgeev --backend cpu " + out());
    EXPECT_NE(x.err.find("--eig-method xgeev"), std::string::npos) << x.err;
    if (!eirnn::cuda_available()) {
        Outcome c = eirnn("spectrum --backend cuda " + out());
        EXPECT_NE(c.err.find("--backend cuda"), std::string::npos) << c.err;
    }
}

TEST_F(CliTest, SweepEigMethodKeyAndOption) {
    const std::string toml = out("s.toml");
    auto write_toml = [&](const std::string& method) {
        std::ofstream(toml) << "networks_per_cell = 2\nbackend = \"cpu\"\neig_method = \"" << method
                            << "\"\noutput = \"" << out("sw.h5")
                            << "\"\n[model]\nunits = 8\n[train]\nepochs = 1\ntrials = 48\n"
                               "test_trials = 16\nbatch = 16\n[task]\nfirst_in = 2\nstim_dur = 3\n"
                               "mem_gap = 2\nvar_delay = 3\nout_gap = 4\n[axes]\n"
                               "e_frac = [0.5, 0.75]\n";
    };
    write_toml("xgeev");
    for (const std::string& args : {std::string(""), std::string(" --eig-method xgeev"),
                                    std::string(" --eig-method qr"), std::string(" --dry-run")}) {
        Outcome r = eirnn("sweep -q " + toml + args);
        EXPECT_EQ(r.status, 2) << args << ": " << r.err;
        EXPECT_EQ(lines(r.err), 1) << args << ": " << r.err;
        EXPECT_EQ(listing(dir_), std::vector<std::string>{"s.toml"}) << args;
    }
    write_toml("batched");
    Outcome r = eirnn("sweep -q " + toml);
    ASSERT_EQ(r.status, 0) << r.err;
    eirnn::h5::Id f = eirnn::h5::open_read(out("sw.h5"));
    for (const char* g : {"groups/g0000", "groups/g0001"})
        EXPECT_EQ(eirnn::h5::read_attr_string(eirnn::h5::open_group(f, g), "eig_method"),
                  "batched-cpu")
            << g;
    // The command line overrides the file.
    Outcome o = eirnn("sweep -q --force --eig-method lapack --out " + out("sl.h5") + " " + toml);
    ASSERT_EQ(o.status, 0) << o.err;
    eirnn::h5::Id fl = eirnn::h5::open_read(out("sl.h5"));
    EXPECT_EQ(eirnn::h5::read_attr_string(eirnn::h5::open_group(fl, "groups/g0001"), "eig_method"),
              "lapack");
}

TEST(OpenblasCore, PicksWithoutAvx2GiveWayToTheCpusInstructionSet) {
    using eirnn::cpu::better_openblas_core;
    EXPECT_STREQ(better_openblas_core("Prescott", true, true), "SkylakeX");
    EXPECT_STREQ(better_openblas_core("prescott", false, true), "Haswell");
    EXPECT_STREQ(better_openblas_core("Sandybridge", false, true), "Haswell");
    EXPECT_STREQ(better_openblas_core("Nehalem", true, true), "SkylakeX");
    EXPECT_STREQ(better_openblas_core("Unknown", false, true), "Haswell");
    EXPECT_EQ(better_openblas_core("Prescott", false, false), nullptr);  // nothing better
    for (const char* modern : {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids", ""})
        EXPECT_EQ(better_openblas_core(modern, true, true), nullptr) << modern;
}

/// The cores OpenBLAS reported while loading (OPENBLAS_VERBOSE=2 prints "Core: <name>" each time).
std::vector<std::string> cores_loaded(const std::string& err) {
    std::vector<std::string> cores;
    std::istringstream in(err);
    for (std::string line; std::getline(in, line);)
        if (line.rfind("Core: ", 0) == 0) cores.push_back(line.substr(6));
    return cores;
}

TEST(OpenblasCore, TheCliRunsOnTheCpusKernelsUnlessTheUserChoseSome) {
    Outcome own =
        eirnn::testutil::run_eirnn("--version", "-u OPENBLAS_CORETYPE OPENBLAS_VERBOSE=2");
    ASSERT_EQ(own.status, 0) << own.err;
    EXPECT_EQ(own.out, std::string(EIRNN_VERSION) + "\n");
    const std::vector<std::string> cores = cores_loaded(own.err);
    ASSERT_FALSE(cores.empty()) << own.err;
    // The first load is OpenBLAS's own pick; a second, with the better core, only when it is older
    // than what this CPU runs.
    __builtin_cpu_init();
    const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    const bool avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const char* better = eirnn::cpu::better_openblas_core(cores[0], avx512, avx2_fma);
    if (better == nullptr) {
        EXPECT_EQ(cores.size(), 1u) << own.err;
    } else {
        ASSERT_EQ(cores.size(), 2u) << own.err;
        EXPECT_EQ(cores[1], better);
    }
    // A core the user set stands, and the program runs once.
    Outcome chosen =
        eirnn::testutil::run_eirnn("--version", "OPENBLAS_CORETYPE=Prescott OPENBLAS_VERBOSE=2");
    ASSERT_EQ(chosen.status, 0) << chosen.err;
    EXPECT_EQ(cores_loaded(chosen.err), std::vector<std::string>{"Prescott"}) << chosen.err;
    // Arguments and the exit status pass through the second run: a bad flag is still one line, 2.
    Outcome bad = eirnn::testutil::run_eirnn("train --no-such-flag", "-u OPENBLAS_CORETYPE");
    EXPECT_EQ(bad.status, 2);
    EXPECT_EQ(lines(bad.err), 1) << bad.err;
    EXPECT_NE(bad.err.find("--no-such-flag"), std::string::npos) << bad.err;
}

TEST(OpenblasCore, ProcessesTheCliStartsChooseForThemselves) {
    // A Slurm job may land on a node with another CPU: what the CLI chose for this one must not
    // reach it, while a core the user set does. A stand-in sbatch records what it was given.
    eirnn::testutil::TempDir dir("eirnn_cli_sbatch");
    const fs::path seen = dir.path / "seen", bin = dir.path / "bin";
    fs::create_directories(bin);
    {
        std::ofstream f(bin / "sbatch");
        f << "#!/bin/sh\necho \"${OPENBLAS_CORETYPE-unset} "
             "${EIRNN_OPENBLAS_CORETYPE_CHOSEN-unset}\""
          << " >> " << seen.string() << "\necho 4242\n";
    }
    fs::permissions(bin / "sbatch", fs::perms::owner_all);
    std::ofstream(dir.path / "sweep.toml")
        << "networks_per_cell = 1\nseed = 1\nbackend = \"cpu\"\nthreads = 1\n"
           "output = \""
        << (dir.path / "r.h5").string()
        << "\"\n[axes]\nunits = [8, 16]\n"
           "[slurm]\nshards = 2\nmin_minutes = 5\n";
    const std::string path = "PATH=" + bin.string() + ":" + std::getenv("PATH");
    const std::string sweep =
        "sweep " + (dir.path / "sweep.toml").string() + " --slurm-submit --rate 1";
    Outcome own = eirnn::testutil::run_eirnn(sweep, "-u OPENBLAS_CORETYPE " + path);
    ASSERT_EQ(own.status, 0) << own.err;
    Outcome chosen = eirnn::testutil::run_eirnn(sweep, "OPENBLAS_CORETYPE=Prescott " + path);
    ASSERT_EQ(chosen.status, 0) << chosen.err;
    std::ifstream in(seen);
    std::vector<std::string> got;
    for (std::string line; std::getline(in, line);) got.push_back(line);
    // Two submissions each (the array, then the merge job after it).
    EXPECT_EQ(got, (std::vector<std::string>{"unset unset", "unset unset", "Prescott unset",
                                             "Prescott unset"}));
}

}  // namespace
