// Reliability of the CLI and its files (docs/RELIABILITY.md), one suite per class of hostile input:
// sizes that overflow or do not fit in memory, inputs that would hang (hard-link cycles, huge sweep
// axes, absurd thread counts), library crashes (a merge onto a full disk), leftovers and overwrites
// (signals, two writers, non-regular outputs), and weak validation (empty, signed, nan values;
// damaged files; a full disk). Every file a test needs is made here with the HDF5 C API.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "host/core/error.hpp"
#include "host/core/limits.hpp"
#include "host/io/h5.hpp"
#include "host/sweep/sweep.hpp"
#include "tests/test_util.hpp"

namespace fs = std::filesystem;
using eirnn::testutil::TempDir;

namespace {

using eirnn::testutil::lines;
using eirnn::testutil::Outcome;
using eirnn::testutil::slurp;

/// Runs `env eirnn args` (args shell-quoted) under a 60 s timeout, capturing stdout and stderr.
Outcome eirnn(const std::string& args, const std::string& env = "") {
    return eirnn::testutil::run_eirnn(args, env, 60);
}

/// "first,first+1,...": `count` integers, comma-separated.
std::string integers(long first, long count) {
    std::string v;
    v.reserve(static_cast<std::size_t>(count) * 8);
    for (long i = 0; i < count; ++i) {
        if (i) v += ',';
        v += std::to_string(first + i);
    }
    return v;
}

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

// Short trials and one epoch; kTiny adds 2 networks of 8 units.
const char* kShort =
    " --trials 80 --test-trials 16 --batch 16 --epochs 1 --first-in 4 --stim-dur 3 --mem-gap 2"
    " --var-delay 3 --out-gap 4 --quiet";
const std::string kTiny = std::string(" --units 8 --networks 2") + kShort;

/// A float dataset of the given shape at `path` (groups created), chunked so that a huge declared
/// shape costs nothing on disk; `data` (row-major) written when given.
void make_dataset(hid_t file, const std::string& path, const std::vector<hsize_t>& dims,
                  const std::vector<float>* data = nullptr) {
    hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    std::vector<hsize_t> chunk(dims.size());
    for (std::size_t i = 0; i < dims.size(); ++i) chunk[i] = std::min<hsize_t>(dims[i], 16);
    H5Pset_chunk(dcpl, static_cast<int>(chunk.size()), chunk.data());
    hid_t d = H5Dcreate2(file, path.c_str(), H5T_NATIVE_FLOAT, space, lcpl, dcpl, H5P_DEFAULT);
    ASSERT_GE(d, 0) << path;
    if (data) H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data->data());
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Pclose(lcpl);
    H5Sclose(space);
}

std::vector<float> small_matrix(int N) {
    std::vector<float> w(static_cast<std::size_t>(N) * N);
    for (int i = 0; i < N; ++i)
        for (int j = 0; j < N; ++j) w[i * N + j] = (i == j ? 0.5f : 0.0f) + 0.01f * (i - j);
    return w;
}

class Reliability : public ::testing::Test {
protected:
    TempDir dir_{"eirnn_rel_" +
                 std::string(::testing::UnitTest::GetInstance()->current_test_info()->name())};
    fs::path p(const std::string& name) const { return dir_.path / name; }
    std::vector<std::string> listing() const {
        std::vector<std::string> names;
        for (const auto& e : fs::directory_iterator(dir_.path))
            names.push_back(e.path().filename().string());
        std::sort(names.begin(), names.end());
        return names;
    }
};

/// A tmpfs of `kib` KiB mounted at `at` while alive; ok() false where mounting is not allowed
/// (not root, no CAP_SYS_ADMIN): the tests that need it skip.
struct SmallDisk {
    fs::path at;
    bool mounted = false;
    SmallDisk(const fs::path& where, int kib) : at(where) {
        fs::create_directories(at);
        const std::string opt = "size=" + std::to_string(kib) + "k";
        mounted = ::mount("tmpfs", at.c_str(), "tmpfs", 0, opt.c_str()) == 0;
    }
    ~SmallDisk() {
        if (mounted) ::umount2(at.c_str(), MNT_DETACH);
    }
    bool ok() const { return mounted; }
};

// ---- 1. sizes that wrap or do not fit -------------------------------------------------------

TEST_F(Reliability, SizesKerasKernelDeclared2e32SquaredExitsTwoNamingIt) {
    const fs::path f = p("huge.h5");
    hid_t file = H5Fcreate(f.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    make_dataset(file, "/rnn/simple_rnn_cell/recurrent_kernel:0", {1ull << 32, 1ull << 32});
    H5Fclose(file);
    Outcome r = eirnn("spectrum --keras " + f.string());
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_EQ(lines(r.err), 1) << r.err;
    EXPECT_TRUE(has(r.err, f.string())) << r.err;
    EXPECT_TRUE(has(r.err, "recurrent_kernel")) << r.err;
    EXPECT_TRUE(has(r.err, "4294967296x4294967296")) << r.err;
}

TEST_F(Reliability, SizesH5StackDeclaredHugeExitsTwoNotAnEmptyTable) {
    const fs::path f = p("stack.h5");
    hid_t file = H5Fcreate(f.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    make_dataset(file, "w", {1ull << 32, 65536, 65536});
    make_dataset(file, "big", {65536, 65536});  // fits 64 bits, not the memory limit
    H5Fclose(file);
    Outcome r = eirnn("spectrum --h5 " + f.string() + ":w");
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_TRUE(has(r.err, f.string() + ":w")) << r.err;
    EXPECT_TRUE(has(r.err, "4294967296x65536x65536")) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    r = eirnn("spectrum --h5 " + f.string() + ":big", "EIRNN_MEMORY_LIMIT=1G");
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_TRUE(has(r.err, "65536x65536")) << r.err;
    EXPECT_TRUE(has(r.err, "32.0 GiB")) << r.err;
}

TEST_F(Reliability, SizesRequestsBeyondMemoryRefusedNamingTheFlag) {
    const std::string out = " --out " + p("r.h5").string();
    const char* requests[] = {
        "--networks 100000 --units 2000", "--networks 1000 --units 2000",
        "--units 8192 --networks 64",     "--trials 2000000000",
        "--networks 10000000 --units 64",
    };
    for (const char* q : requests) {
        Outcome r = eirnn(std::string("train --quiet ") + q + out, "EIRNN_MEMORY_LIMIT=4G");
        EXPECT_EQ(r.status, 2) << q << ": " << r.err;
        EXPECT_EQ(lines(r.err), 1) << q << ": " << r.err;
        EXPECT_TRUE(has(r.err, "needs about")) << q << ": " << r.err;
        EXPECT_TRUE(has(r.err, "--networks")) << q << ": " << r.err;
        EXPECT_FALSE(has(r.err, "bad_alloc")) << q << ": " << r.err;
    }
    Outcome r =
        eirnn("data --trials 2000000000 --out " + p("d.h5").string(), "EIRNN_MEMORY_LIMIT=4G");
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_TRUE(has(r.err, "--trials")) << r.err;
    r = eirnn(std::string("train") + kTiny + out, "EIRNN_MEMORY_LIMIT=lots");
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_TRUE(has(r.err, "EIRNN_MEMORY_LIMIT")) << r.err;
    EXPECT_TRUE(listing().empty());
}

TEST_F(Reliability, SizesSweepCellBeyondMemoryRefusedAndDryRunTotalIs64Bit) {
    const fs::path toml = p("s.toml");
    std::ofstream(toml) << "output = \"" << p("s.h5").string() << "\"\n"
                        << "networks_per_cell = 1000000\nbackend = \"cpu\"\n"
                        << "[model]\nunits = 2000\n[axes]\ne_frac = [0.3, 0.4, 0.5, 0.6]\n"
                        << "gain = [1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9]\n"
                        << "mu = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]\n";
    Outcome r = eirnn("sweep " + toml.string() + " --dry-run --rate 10");
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(has(r.out, "total 400000000 networks")) << r.out.substr(0, 400);
    // 400 cells of a million networks each: 4e8 networks, and each cell alone is refused.
    r = eirnn("sweep " + toml.string() + " --quiet", "EIRNN_MEMORY_LIMIT=64G");
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_TRUE(has(r.err, "networks_per_cell")) << r.err;
    EXPECT_TRUE(has(r.err, "needs about")) << r.err;
    EXPECT_FALSE(fs::exists(p("s.h5")));
}

TEST(ReliabilityUnit, CheckedSizesAndMemoryLimit) {
    EXPECT_FALSE(eirnn::checked_mul(1ull << 32, 1ull << 32));
    EXPECT_EQ(*eirnn::checked_mul(1ull << 31, 1ull << 32), 1ull << 63);
    EXPECT_THROW(eirnn::checked_bytes({1ull << 32, 1ull << 32}, 4, "x"), eirnn::InputError);
    ::setenv("EIRNN_MEMORY_LIMIT", "1M", 1);
    EXPECT_EQ(eirnn::memory_limit(), 1u << 20);
    EXPECT_NO_THROW(eirnn::checked_bytes({512, 512}, 4, "x"));
    EXPECT_THROW(eirnn::checked_bytes({1024, 1024}, 4, "x"), eirnn::InputError);
    ::setenv("EIRNN_MEMORY_LIMIT", "-5", 1);
    EXPECT_THROW(eirnn::memory_limit(), eirnn::InputError);
    ::unsetenv("EIRNN_MEMORY_LIMIT");
    EXPECT_GT(eirnn::memory_limit(), 0u);  // MemAvailable
}

TEST(ReliabilityUnit, SweepHashStreamedEqualsTheWholePlansHash) {
    // The hash is fed cell by cell; it must stay the FNV-1a of plan_json().dump(), the value
    // stored in results and part files by earlier versions.
    eirnn::Sweep s = eirnn::parse_sweep(
        "networks_per_cell = 3\n[axes]\nunits = [8, 16]\ntask = [\"and\", \"xor\"]\n", "h.toml");
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s.plan_json().dump()) {
        h ^= c;
        h *= 1099511628211ull;
    }
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    EXPECT_EQ(s.hash(), std::string(buf));
}

// ---- 2. hangs -------------------------------------------------------------------------------

TEST_F(Reliability, HangsKerasHardLinkCyclesWalkedOnce) {
    // Every group links back to the root twice: 2^depth paths, one of each group.
    const fs::path f = p("cycle.h5");
    hid_t file = H5Fcreate(f.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    const std::vector<float> w = small_matrix(4);
    make_dataset(file, "/rnn/cell/recurrent_kernel:0", {4, 4}, &w);
    std::string g = "/rnn/cell";
    for (int d = 0; d < 30; ++d) {
        const std::string next = g + "/sub";
        hid_t grp = H5Gcreate2(file, next.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5Gclose(grp);
        H5Lcreate_hard(file, "/rnn", file, (next + "/back").c_str(), H5P_DEFAULT, H5P_DEFAULT);
        H5Lcreate_hard(file, "/", file, (next + "/root").c_str(), H5P_DEFAULT, H5P_DEFAULT);
        g = next;
    }
    H5Fclose(file);
    const auto t0 = std::chrono::steady_clock::now();
    Outcome r = eirnn("spectrum --format csv --keras " + f.string());
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_LT(s, 20.0);
    EXPECT_EQ(lines(r.out), 2) << r.out;  // header + the one matrix
    EXPECT_TRUE(has(r.out, "recurrent_kernel")) << r.out;
}

TEST_F(Reliability, HangsSweepHugeAxisLinearAndCappedBeforeExpansion) {
    // 700,000 values with one duplicate at the very end: found in linear time.
    const std::string values = integers(1, 700'000) + ",5";
    std::ofstream(p("dup.toml")) << "[axes]\nepochs = [" << values << "]\n";
    auto t0 = std::chrono::steady_clock::now();
    Outcome r = eirnn("sweep " + p("dup.toml").string() + " --dry-run --rate 1");
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_TRUE(has(r.err, "duplicate value 5")) << r.err;
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 20.0);
    // One axis past the cap: refused before its values are converted.
    const std::string more = integers(1, 1'000'001);
    std::ofstream(p("cap.toml")) << "[axes]\nepochs = [" << more << "]\n";
    r = eirnn("sweep " + p("cap.toml").string() + " --dry-run --rate 1");
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_TRUE(has(r.err, "1000001 values")) << r.err;
    // Two axes whose product passes the cap.
    std::ofstream(p("prod.toml")) << "[axes]\nepochs = [" << values.substr(0, values.rfind(','))
                                  << "]\ngain = [1.0, 2.0]\n";
    r = eirnn("sweep " + p("prod.toml").string() + " --dry-run --rate 1");
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_TRUE(has(r.err, "more than 1,000,000 cells")) << r.err;
}

TEST_F(Reliability, HangsThreadsClampedWithANote) {
    Outcome r = eirnn(std::string("train") + kTiny + " --no-spectra --threads 100000 --out " +
                      p("r.h5").string());
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(has(r.err, "--threads 100000 clamped")) << r.err;
    const fs::path f = p("m.h5");
    hid_t file = H5Fcreate(f.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    const std::vector<float> w = small_matrix(6);
    make_dataset(file, "w", {6, 6}, &w);
    H5Fclose(file);
    r = eirnn("spectrum --threads 2000000000 --h5 " + f.string() + ":w");
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(has(r.err, "clamped")) << r.err;
    EXPECT_EQ(eirnn::resolve_threads(0), 0);
    EXPECT_EQ(eirnn::resolve_threads(1), 1);
    EXPECT_THROW(eirnn::resolve_threads(-1), eirnn::InputError);
    EXPECT_LE(eirnn::resolve_threads(1 << 30), 4 * eirnn::hardware_threads());
}

// ---- 3. crashes inside libraries ------------------------------------------------------------

TEST_F(Reliability, CrashesMergeOntoAFullDiskRefusedNamingTheOutput) {
    const fs::path toml = p("s.toml");
    std::ofstream(toml) << "output = \"" << p("s.h5").string() << "\"\n"
                        << "networks_per_cell = 2\nbackend = \"cpu\"\nthreads = 1\n"
                        << "[model]\nunits = 32\n[train]\nepochs = 1\ntrials = 48\n"
                        << "test_trials = 16\nbatch = 16\n"
                        << "[task]\nfirst_in = 2\nstim_dur = 3\nmem_gap = 2\nvar_delay = 3\n"
                        << "out_gap = 4\n[axes]\ngain = [1.0, 1.5]\n";
    Outcome r = eirnn("sweep " + toml.string() + " --quiet --shard 0/2");
    ASSERT_EQ(r.status, 0) << r.err;
    r = eirnn("sweep " + toml.string() + " --quiet --shard 1/2");
    ASSERT_EQ(r.status, 0) << r.err;
    SmallDisk disk(p("disk"), 64);
    if (!disk.ok()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
    const fs::path out = disk.at / "merged.h5";
    r = eirnn("merge " + out.string() + " " + p("s.h5.parts").string());
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_TRUE(has(r.err, out.string())) << r.err;
    EXPECT_TRUE(has(r.err, "disk is full")) << r.err;
    EXPECT_TRUE(fs::is_empty(disk.at));
}

TEST_F(Reliability, CrashesDryRunOfTheCellCapInBoundedMemory) {
    // 300 x 300 cells (the cap, 1,000 x 1,000, takes about a minute of CPU: docs/RELIABILITY.md):
    // the plan printed, peak memory far below what the whole plan's JSON took (about 16 KiB a
    // cell). Under AddressSanitizer, whose build runs the sweep code at -O0, 300 x 30 cells: the
    // same code, a tenth of the minute and more it takes there.
#if defined(__SANITIZE_ADDRESS__)
    const int units = 30;
#else
    const int units = 300;
#endif
    const int cells = 300 * units;
    const std::string a = integers(1, 300), b = integers(8, units);
    std::ofstream(p("cap.toml")) << "[axes]\nepochs = [" << a << "]\nunits = [" << b << "]\n";
    const std::string cmd = std::string(EIRNN_BINARY) + " sweep " + p("cap.toml").string() +
                            " --dry-run --rate 1 >" + p("plan.txt").string() + " 2>" +
                            p("err.txt").string();
    const int rc = std::system(cmd.c_str());
    struct rusage ru {};
    ::getrusage(RUSAGE_CHILDREN, &ru);
    ASSERT_TRUE(WIFEXITED(rc));
    EXPECT_EQ(WEXITSTATUS(rc), 0) << slurp(p("err.txt"));
    const double peak_gib = static_cast<double>(ru.ru_maxrss) / (1024.0 * 1024.0);
    // Under AddressSanitizer the children's peak includes its quarantine of freed memory (256 MiB)
    // and shadow memory: the bound doubles there. The whole plan's JSON (the old way) took about
    // 1.4 GiB at 90,000 cells without a sanitizer.
#if defined(__SANITIZE_ADDRESS__)
    const double bound_gib = 1.0;
#else
    const double bound_gib = 0.5;
#endif
    EXPECT_LT(peak_gib, bound_gib) << "peak resident memory of the children";
    std::printf("%d-cell --dry-run: peak %.3f GiB\n", cells, peak_gib);
    const std::string plan = slurp(p("plan.txt"));
    EXPECT_TRUE(has(plan, "\n" + std::to_string(cells) + " cells = epochs 300 x units " +
                              std::to_string(units)))
        << plan.substr(0, 300);
    EXPECT_TRUE(has(plan, "\ng" + std::to_string(cells - 1) + " "))
        << plan.substr(plan.size() > 300 ? plan.size() - 300 : 0);
    EXPECT_FALSE(has(plan, "\ng" + std::to_string(cells) + " ")) << "one group per cell";
}

/// A Keras-like file whose root attribute `keras_version` is a variable-length string, with the
/// size of that string's object in the global heap patched to 2^31 - 1 bytes: libhdf5 1.10
/// (H5HG_read) copies that many bytes out of a heap collection of a few KB.
fs::path vlen_heap_overrun(const fs::path& f) {
    hid_t file = H5Fcreate(f.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(file, "keras_version", type, space, H5P_DEFAULT, H5P_DEFAULT);
    const char* version = "2.11.0";
    H5Awrite(attr, type, &version);
    H5Aclose(attr);
    H5Sclose(space);
    H5Tclose(type);
    std::vector<float> w(16, 0.5f);
    make_dataset(file, "/rnn/simple_rnn_cell/recurrent_kernel:0", {4, 4}, &w);
    H5Fclose(file);
    std::string bytes = slurp(f);
    // Global heap collection: "GCOL", version, 3 reserved, collection size (8); then object 1:
    // index (2), reference count (2), reserved (4), size (8).
    const std::size_t at = bytes.find("GCOL");
    EXPECT_NE(at, std::string::npos);
    if (at == std::string::npos) return f;
    const std::uint64_t huge = 0x7fffffff;
    for (int i = 0; i < 8; ++i) bytes[at + 24 + i] = static_cast<char>((huge >> (8 * i)) & 0xff);
    std::ofstream(f, std::ios::binary | std::ios::trunc) << bytes;
    return f;
}

TEST_F(Reliability, CrashesInsideLibhdf5OnHostileFilesAreExitTwo) {
    // Files on which libhdf5 1.10 itself reads out of bounds or loops: one made here, two found by
    // fuzzing (tests/fuzz/keras). eirnn reads their structure in a child process first.
    std::vector<fs::path> files{vlen_heap_overrun(p("overrun.h5"))};
    for (const char* name :
         {"regress-hdf5-vlen-global-heap-overflow", "regress-hdf5-vlen-global-heap-hang"}) {
        const fs::path src = fs::path(EIRNN_SOURCE_DIR) / "tests/fuzz/keras" / name;
        ASSERT_TRUE(fs::exists(src)) << src;
        fs::copy_file(src, p(std::string(name) + ".h5"));
        files.push_back(p(std::string(name) + ".h5"));
    }
    for (const fs::path& f : files)
        for (const std::string& cmd : {std::string("spectrum --keras "), std::string("spectrum "),
                                       std::string("dynamics ")}) {
            const auto t0 = std::chrono::steady_clock::now();
            Outcome r = eirnn(cmd + f.string(), "EIRNN_H5_CHECK_TIMEOUT=3");
            const double s =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            EXPECT_EQ(r.status, 2) << cmd << f << ": " << r.err;
            EXPECT_EQ(lines(r.err), 1) << cmd << f << ": " << r.err;
            EXPECT_TRUE(has(r.err, f.string())) << r.err;
            EXPECT_TRUE(has(r.err, "corrupt HDF5 file")) << r.err;
            EXPECT_LT(s, 30.0) << cmd << f;
        }
    // A sound file passes the check, and the check's own setting is validated.
    Outcome r = eirnn("spectrum --keras " + p("overrun.h5").string(), "EIRNN_H5_CHECK_TIMEOUT=x");
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_TRUE(has(r.err, "EIRNN_H5_CHECK_TIMEOUT")) << r.err;
}

TEST(ReliabilityUnit, StructureCheckPassesSoundFilesAndIsQuiet) {
    TempDir dir{"h5check"};
    const fs::path f = dir.path / "ok.h5";
    hid_t file = H5Fcreate(f.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    std::vector<float> w(9, 1.0f);
    make_dataset(file, "/a/b/c", {3, 3}, &w);
    H5Fclose(file);
    eirnn::h5::write_attr(eirnn::h5::open_rw(f), "note", std::string("text"));
    EXPECT_NO_THROW(eirnn::h5::check_structure(f));
    EXPECT_NO_THROW(eirnn::h5::check_structure(dir.path / "missing.h5"));  // the reader says so
    eirnn::h5::Id g = eirnn::h5::open_untrusted(f);
    EXPECT_TRUE(g.valid());
}

// ---- 4. leftovers and overwrites ------------------------------------------------------------

/// A child that opens an AtomicFile (and an OutputLock) on target, then is killed by `sig`.
void killed_while_writing(const fs::path& target, int sig) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        eirnn::h5::OutputLock lock(target, "--out");
        eirnn::h5::AtomicFile f(target, false);
        std::vector<float> big(1 << 20, 1.0f);
        eirnn::h5::write(f.file(), "x", big.data(), {hsize_t{1} << 20});
        ::kill(::getpid(), sig);
        ::pause();
        ::_exit(0);
    }
    int st = 0;
    ::waitpid(pid, &st, 0);
    ASSERT_TRUE(WIFSIGNALED(st)) << st;
    EXPECT_EQ(WTERMSIG(st), sig);
}

TEST_F(Reliability, LeftoversSignalsRemoveTheTemporaryAndTheLock) {
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
        killed_while_writing(p("r.h5"), sig);
        EXPECT_TRUE(listing().empty()) << "signal " << sig << ": " << listing().front();
    }
}

TEST_F(Reliability, LeftoversOfAKilledProcessRemovedByTheNextRun) {
    // A temporary of a process that is gone (as after SIGKILL): a child's pid after it exited.
    pid_t pid = ::fork();
    if (pid == 0) ::_exit(0);
    ::waitpid(pid, nullptr, 0);
    const std::string stale = "r.h5.tmp." + std::to_string(pid);
    std::ofstream(p(stale)) << "half-written";
    std::ofstream(p("r.h5.lock")) << "";  // a lock file nobody holds
    Outcome r = eirnn(std::string("train") + kTiny + " --no-spectra --out " + p("r.h5").string());
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(has(r.err, "removed")) << r.err;
    EXPECT_EQ(listing(), std::vector<std::string>{"r.h5"});
    // The same for `spectrum --save`, and a live process's temporary is left alone.
    std::ofstream(p("s.h5.tmp." + std::to_string(pid))) << "x";
    std::ofstream(p("s.h5.tmp.1")) << "init's";  // pid 1 is alive
    r = eirnn("spectrum " + p("r.h5").string() + " --save " + p("s.h5").string());
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(listing(), (std::vector<std::string>{"r.h5", "s.h5", "s.h5.tmp.1"}));
}

TEST_F(Reliability, LeftoversSecondWriterOfTheSameOutputRefused) {
    Outcome r = eirnn(std::string("train") + kTiny + " --no-spectra --out " + p("r.h5").string());
    ASSERT_EQ(r.status, 0) << r.err;
    const std::string before = slurp(p("r.h5"));
    {
        eirnn::h5::OutputLock held(p("r.h5"), "test");  // as a running `train --out r.h5` holds it
        r = eirnn(std::string("train") + kTiny + " --force --out " + p("r.h5").string());
        EXPECT_EQ(r.status, 2) << r.err;
        EXPECT_TRUE(has(r.err, "another eirnn process")) << r.err;
        r = eirnn("spectrum " + p("r.h5").string());
        EXPECT_EQ(r.status, 2) << r.err;
        EXPECT_TRUE(has(r.err, "another eirnn process")) << r.err;
        r = eirnn(std::string("train") + kTiny + " --out " + p("other.h5").string() +
                  " --no-spectra");
        EXPECT_EQ(r.status, 0) << r.err;  // other outputs are not affected
    }
    EXPECT_EQ(slurp(p("r.h5")), before);
    // Two writers without --force that both found no file: the second commit never replaces.
    eirnn::h5::AtomicFile a(p("new.h5"), false);
    std::ofstream(p("new.h5")) << "the other writer's";
    EXPECT_THROW(a.commit(), eirnn::InputError);
    EXPECT_EQ(slurp(p("new.h5")), "the other writer's");
}

TEST_F(Reliability, LeftoversOutMustBeARegularFile) {
    ASSERT_EQ(::mkfifo(p("fifo").c_str(), 0644), 0);
    fs::create_directories(p("folder"));
    std::ofstream(p("real.h5")) << "x";
    fs::create_symlink(p("real.h5"), p("link.h5"));
    for (const std::string& target : {std::string("/dev/null"), p("fifo").string(),
                                      p("folder").string(), p("link.h5").string()}) {
        Outcome r = eirnn(std::string("train") + kTiny + " --force --out " + target);
        EXPECT_EQ(r.status, 2) << target << ": " << r.err;
        EXPECT_EQ(lines(r.err), 1) << r.err;
        EXPECT_TRUE(has(r.err, "--out")) << r.err;
    }
    struct stat st {};
    ASSERT_EQ(::stat("/dev/null", &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode));
    EXPECT_TRUE(fs::is_fifo(p("fifo")));
    EXPECT_TRUE(fs::is_symlink(p("link.h5")));
    EXPECT_EQ(slurp(p("real.h5")), "x");
    Outcome r = eirnn("data --force --out /dev/null");
    EXPECT_EQ(r.status, 2) << r.err;
    // An input updated in place through a link: the file is updated, the link kept.
    r = eirnn(std::string("train") + kTiny + " --no-spectra --out " + p("res.h5").string());
    ASSERT_EQ(r.status, 0) << r.err;
    fs::create_symlink(p("res.h5"), p("res_link.h5"));
    r = eirnn("spectrum " + p("res_link.h5").string());
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(fs::is_symlink(p("res_link.h5")));
    hid_t f = H5Fopen(p("res.h5").c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    ASSERT_GE(f, 0);
    EXPECT_GT(H5Lexists(f, "groups/g0000/eig", H5P_DEFAULT), 0);  // spectra written into it
    H5Fclose(f);
}

// ---- 5. weak validation ---------------------------------------------------------------------

TEST_F(Reliability, ValidationEmptySignedAndNonFiniteValuesNamed) {
    const char* flags[] = {"--clipnorm", "--seed",     "--data-seed", "--units",   "--networks",
                           "--epochs",   "--trials",   "--batch",     "--lr",      "--decay",
                           "--e-frac",   "--gain",     "--mu",        "--alpha",   "--sigma-rec",
                           "--threads",  "--outliers", "--first-in",  "--l2-rate", "--early-stop"};
    for (const char* f : flags) {
        Outcome r = eirnn(std::string("train --quiet ") + f + " '' --out " + p("r.h5").string());
        EXPECT_EQ(r.status, 2) << f << ": " << r.err;
        EXPECT_EQ(lines(r.err), 1) << f << ": " << r.err;
        EXPECT_TRUE(has(r.err, f)) << f << ": " << r.err;
    }
    const char* values[] = {"--seed -1",   "--data-seed -5", "--units 0x10", "--units 010x",
                            "--lr inf",    "--gain nan",     "--lr 1e999",   "--threads -1",
                            "--units 1.5", "--epochs +",     "--mu 0x1p3"};
    for (const char* v : values) {
        Outcome r = eirnn(std::string("train") + kTiny + " " + v + " --out " + p("r.h5").string());
        EXPECT_EQ(r.status, 2) << v << ": " << r.err;
        EXPECT_TRUE(has(r.err, std::string(v).substr(0, std::string(v).find(' '))))
            << v << ": " << r.err;
    }
    EXPECT_TRUE(listing().empty());
    EXPECT_EQ(eirnn::check_number_text("-0.5e-3", true, false), "");
    EXPECT_EQ(eirnn::check_number_text("+12", false, true), "");
    EXPECT_NE(eirnn::check_number_text("-1", false, true), "");
    EXPECT_NE(eirnn::check_number_text("nan", true, false), "");
}

TEST_F(Reliability, ValidationOutliersRatesAndThreadsOfSweep) {
    Outcome r = eirnn(std::string("train --units 4") + kShort + " --out " + p("r.h5").string());
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_TRUE(has(r.err, "--outliers 3 or less")) << r.err;
    const fs::path f = p("m.h5");
    hid_t file = H5Fcreate(f.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    const std::vector<float> w = small_matrix(4);
    make_dataset(file, "w", {4, 4}, &w);
    H5Fclose(file);
    for (const char* k : {"4", "9"}) {
        r = eirnn("spectrum --outliers " + std::string(k) + " --h5 " + f.string() + ":w");
        EXPECT_EQ(r.status, 2) << r.err;
        EXPECT_TRUE(has(r.err, "--outliers")) << r.err;
    }
    r = eirnn("spectrum --outliers 3 --h5 " + f.string() + ":w");
    EXPECT_EQ(r.status, 0) << r.err;
    std::ofstream(p("s.toml")) << "output = \"" << p("s.h5").string()
                               << "\"\n[axes]\ngain = [1.0, 2.0]\n";
    for (const char* bad : {"--rate nan", "--rate 0", "--rate -3", "--rate inf", "--threads -1",
                            "--threads ''", "--rate ''"}) {
        r = eirnn("sweep " + p("s.toml").string() + " --dry-run " + bad);
        EXPECT_EQ(r.status, 2) << bad << ": " << r.err;
        EXPECT_TRUE(has(r.err, std::string(bad).substr(0, std::string(bad).find(' '))))
            << bad << ": " << r.err;
    }
}

TEST_F(Reliability, ValidationDamagedInputExitsTwoNamingTheFile) {
    Outcome r = eirnn(std::string("train") + kTiny + " --out " + p("r.h5").string());
    ASSERT_EQ(r.status, 0) << r.err;
    const std::string whole = slurp(p("r.h5"));
    std::ofstream(p("cut.h5"), std::ios::binary) << whole.substr(0, whole.size() / 2);
    std::string flipped = whole;
    for (std::size_t i = 200; i < flipped.size(); i += 97)
        flipped[i] = static_cast<char>(~flipped[i]);
    std::ofstream(p("flipped.h5"), std::ios::binary) << flipped;
    for (const char* name : {"cut.h5", "flipped.h5"}) {
        for (const std::string& cmd : {std::string("spectrum "), std::string("dynamics ")}) {
            r = eirnn(cmd + p(name).string());
            EXPECT_EQ(r.status, 2) << cmd << name << ": " << r.err;
            EXPECT_EQ(lines(r.err), 1) << cmd << name << ": " << r.err;
            EXPECT_TRUE(has(r.err, name)) << cmd << name << ": " << r.err;
        }
    }
}

TEST_F(Reliability, ValidationFullDiskNamesTheOutputAndLeavesNothing) {
    SmallDisk disk(p("disk"), 128);
    if (!disk.ok()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
    const fs::path out = disk.at / "r.h5";
    Outcome r =
        eirnn(std::string("train --units 64 --networks 8") + kShort + " --out " + out.string());
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_EQ(lines(r.err), 1) << r.err;
    EXPECT_TRUE(has(r.err, "cannot write " + out.string())) << r.err;
    EXPECT_TRUE(has(r.err, "disk is full")) << r.err;
    EXPECT_TRUE(fs::is_empty(disk.at));
    r = eirnn("data --trials 20000 --out " + (disk.at / "d.h5").string());
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_TRUE(has(r.err, "cannot write " + (disk.at / "d.h5").string())) << r.err;
    EXPECT_TRUE(has(r.err, "disk is full")) << r.err;
    EXPECT_TRUE(fs::is_empty(disk.at));
}

}  // namespace
