// CLI tests: `eirnn train` end to end on a tiny group, and every bad input exits with status 2,
// prints exactly one line on stderr and creates no file.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include "host/h5.hpp"

namespace fs = std::filesystem;

namespace {

struct Outcome {
    int status = -1;
    std::string out, err;
};

/// Runs the eirnn binary with args (a shell-quoted string), capturing stdout and stderr.
Outcome eirnn(const std::string& args) {
    fs::path dir = fs::temp_directory_path() / ("eirnn_cli_" + std::to_string(getpid()));
    fs::create_directories(dir);
    std::string o = (dir / "stdout").string(), e = (dir / "stderr").string();
    std::string cmd = std::string(EIRNN_BINARY) + " " + args + " >" + o + " 2>" + e + " </dev/null";
    int rc = std::system(cmd.c_str());
    auto slurp = [](const std::string& p) {
        std::string s;
        if (FILE* f = std::fopen(p.c_str(), "r")) {
            std::array<char, 4096> buf;
            std::size_t n;
            while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) s.append(buf.data(), n);
            std::fclose(f);
        }
        return s;
    };
    Outcome r;
    r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    r.out = slurp(o);
    r.err = slurp(e);
    return r;
}

int lines(const std::string& s) {
    int n = 0;
    for (char c : s) n += c == '\n';
    return n;
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

}  // namespace
