// Sweeps: TOML parsing and expansion into cells (unit), bad sweep files through the binary (one
// line naming the key, exit 2, nothing written), until_learned rounds, and resume: a sweep killed
// with SIGKILL after its first group and rerun ends with the same datasets, byte for byte, as an
// uninterrupted run.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "host/error.hpp"
#include "host/h5.hpp"
#include "host/sweep.hpp"

namespace fs = std::filesystem;
using eirnn::InputError;
using eirnn::Sweep;
using nlohmann::json;

namespace {

// Tiny networks and short trials: a cell trains in a fraction of a second.
const char* kTinyFixed = R"(
networks_per_cell = 2
seed = 100
data_seed = 3
backend = "cpu"
threads = 2

[model]
units = 8

[train]
epochs = 2
trials = 96
test_trials = 16
batch = 16
lr = 0.001

[task]
first_in = 2
stim_dur = 3
mem_gap = 2
var_delay = 3
out_gap = 4
)";

/// kTinyFixed without its [model] units, for sweeps with a units axis.
std::string tiny_without_units() {
    std::string f = kTinyFixed;
    f.erase(f.find("units = 8\n"), 10);
    return f;
}

Sweep parse(const std::string& text) {
    return eirnn::parse_sweep(text, "s.toml");
}

/// The InputError message of parsing `text`, or "" when it parses.
std::string parse_error(const std::string& text) {
    try {
        parse(text);
    } catch (const InputError& e) {
        return e.what();
    }
    return {};
}

TEST(SweepExpand, CartesianProductLastAxisFastest) {
    Sweep s = parse(std::string(kTinyFixed) + R"(
[axes]
task = ["and", "xor"]
e_frac = [0.5, 0.75]
dale = ["project", "none"]
)");
    ASSERT_EQ(s.cells.size(), 8u);
    EXPECT_EQ(s.axis_names, (std::vector<std::string>{"task", "e_frac", "dale"}));
    EXPECT_EQ(s.axis_sizes, (std::vector<std::size_t>{2, 2, 2}));
    const char* tasks[] = {"and", "xor"};
    const double fracs[] = {0.5, 0.75};
    const char* dales[] = {"project", "none"};
    for (int i = 0; i < 8; ++i) {
        const eirnn::SweepCell& c = s.cells[i];
        EXPECT_EQ(c.index, i);
        EXPECT_EQ(c.axes.at("task"), tasks[i / 4]);
        EXPECT_EQ(c.axes.at("e_frac"), fracs[(i / 2) % 2]);
        EXPECT_EQ(c.axes.at("dale"), dales[i % 2]);
        EXPECT_EQ(c.axes.size(), 3u);
        EXPECT_EQ(eirnn::task_name(c.cfg.task.kind), tasks[i / 4]);
        EXPECT_EQ(c.cfg.model.e_frac, fracs[(i / 2) % 2]);
        EXPECT_EQ(eirnn::name(c.cfg.model.dale), dales[i % 2]);
        // Fixed settings reach every cell.
        EXPECT_EQ(c.cfg.model.units, 8);
        EXPECT_EQ(c.cfg.train.epochs, 2);
        EXPECT_EQ(c.cfg.train.lr, 0.001);
        EXPECT_EQ(c.cfg.task.out_gap, 4);
        EXPECT_EQ(c.cfg.data_seed, 3u);
        EXPECT_EQ(c.cfg.backend, eirnn::BackendKind::Cpu);
        EXPECT_EQ(c.cfg.networks, 2);
        // Disjoint seed ranges by cell index.
        EXPECT_EQ(c.cfg.seed, 100u + 2u * i);
    }
    EXPECT_EQ(eirnn::cell_label(s, s.cells[5]), "task=xor e_frac=0.5 dale=none");
}

TEST(SweepExpand, AxesKeepTheirDeclarationOrder) {
    Sweep s = parse(tiny_without_units() + R"(
[axes]
units = [8, 12, 16]
alpha = [1.0, 0.5]
)");
    EXPECT_EQ(s.axis_names, (std::vector<std::string>{"units", "alpha"}));
    ASSERT_EQ(s.cells.size(), 6u);
    EXPECT_EQ(s.cells[1].cfg.model.units, 8);
    EXPECT_EQ(s.cells[1].cfg.model.alpha, 0.5);
    EXPECT_EQ(s.cells[2].cfg.model.units, 12);
    // An integer given for a real-valued setting is read as a real.
    Sweep t = parse(std::string(kTinyFixed) + "[axes]\ngain = [2, 0.5]\n");
    EXPECT_EQ(t.cells[0].cfg.model.gain, 2.0);
    EXPECT_TRUE(t.cells[0].axes.at("gain").is_number_float());
}

TEST(SweepExpand, NoAxesIsOneCellAndDefaultsApply) {
    Sweep s = parse("[model]\nunits = 20\n");
    ASSERT_EQ(s.cells.size(), 1u);
    EXPECT_TRUE(s.cells[0].axes.empty());
    EXPECT_EQ(s.cells[0].cfg.model.units, 20);
    EXPECT_EQ(s.cells[0].cfg.train.epochs, eirnn::GroupConfig{}.train.epochs);
    EXPECT_EQ(s.networks_per_cell, 4);
    EXPECT_EQ(s.output, fs::path("sweep.h5"));
}

TEST(SweepExpand, UntilLearnedReservesMaxAttemptsSeedsPerCell) {
    Sweep s = parse("until_learned = 3\nmax_attempts = 7\n" + tiny_without_units() +
                    "[axes]\nunits = [8, 9]\n");
    EXPECT_EQ(s.until_learned, 3);
    EXPECT_EQ(s.max_attempts, 7);
    EXPECT_EQ(s.seed_stride, 7u);
    EXPECT_EQ(s.cells[1].cfg.seed, 107u);
    Sweep d = parse("until_learned = 3\n" + std::string(kTinyFixed));
    EXPECT_EQ(d.max_attempts, 9);  // default: max(networks_per_cell, 3 * until_learned)
}

TEST(SweepExpand, HashFollowsTheResultsNotTheOutput) {
    const std::string a = tiny_without_units() + "[axes]\nunits = [8, 9]\n";
    EXPECT_EQ(parse(a).hash(), parse(a).hash());
    EXPECT_EQ(parse(a).hash(), parse("output = \"elsewhere.h5\"\n" + a).hash());
    EXPECT_NE(parse(a).hash(), parse(tiny_without_units() + "[axes]\nunits = [8, 10]\n").hash());
    EXPECT_NE(parse(a).hash(), parse("networks_per_cell = 3\n" + a.substr(a.find('\n', 1))).hash());
}

TEST(SweepExpand, CellCostIsSixN2BTPerUpdate) {
    Sweep s = parse(kTinyFixed);
    eirnn::CellCost c = eirnn::cell_cost(s.cells[0].cfg);
    EXPECT_EQ(c.updates, 2 * 5);  // 80 training trials in batches of 16, 2 epochs
    EXPECT_DOUBLE_EQ(c.flop_per_update, 6.0 * 8 * 8 * 16 * 14);
}

TEST(SweepErrors, NameTheKeyAndItsPosition) {
    const std::string f = tiny_without_units();
    std::string e = parse_error(f + "[axes]\nunits = [8]\nsize = [1, 2]\n");
    EXPECT_NE(e.find("axes.size"), std::string::npos) << e;
    EXPECT_NE(e.find("unknown axis"), std::string::npos) << e;
    EXPECT_EQ(e.rfind("s.toml:", 0), 0u) << e;

    e = parse_error(f + "[axes]\ne_frac = []\n");
    EXPECT_NE(e.find("axes.e_frac"), std::string::npos) << e;
    EXPECT_NE(e.find("empty"), std::string::npos) << e;

    e = parse_error(f + "[axes]\nunits = [8, 12]\ne_frac = [0.5, 1.5]\n");
    EXPECT_NE(e.find("axes.e_frac"), std::string::npos) << e;
    EXPECT_NE(e.find("1.5"), std::string::npos) << e;
    // Line and column of the bad element: the [axes] table starts after kTinyFixed's lines.
    const int line = 3 + static_cast<int>(std::count(f.begin(), f.end(), '\n'));
    EXPECT_NE(e.find("s.toml:" + std::to_string(line) + ":16:"), std::string::npos) << e;

    e = parse_error(f + "[axes]\nunits = [8, 12, 8]\n");
    EXPECT_NE(e.find("axes.units"), std::string::npos) << e;
    EXPECT_NE(e.find("duplicate"), std::string::npos) << e;

    e = parse_error(f + "[axes]\ninit = [\"normal\", \"uniform\"]\n");
    EXPECT_NE(e.find("axes.init"), std::string::npos) << e;
    EXPECT_NE(e.find("uniform"), std::string::npos) << e;

    e = parse_error(f + "[axes]\nunits = [8, \"big\"]\n");
    EXPECT_NE(e.find("axes.units"), std::string::npos) << e;
    EXPECT_NE(e.find("integer"), std::string::npos) << e;

    e = parse_error(std::string("[model]\nunit = 5\n"));
    EXPECT_NE(e.find("model.unit"), std::string::npos) << e;

    e = parse_error(std::string("[model]\ne_frac = 2.0\n"));
    EXPECT_NE(e.find("model.e_frac"), std::string::npos) << e;
    EXPECT_EQ(e.rfind("s.toml:2:", 0), 0u) << e;

    e = parse_error(std::string("[model]\nunits = 8\n[axes]\nunits = [8, 9]\n"));
    EXPECT_NE(e.find("axes.units"), std::string::npos) << e;

    e = parse_error(std::string("networks = 5\n"));
    EXPECT_NE(e.find("networks"), std::string::npos) << e;

    e = parse_error(std::string("[axes]\nunits = 8\n"));
    EXPECT_NE(e.find("axes.units"), std::string::npos) << e;

    e = parse_error(std::string("[task]\nstim_dur = 0\n"));
    EXPECT_NE(e.find("task.stim_dur"), std::string::npos) << e;

    e = parse_error(std::string("max_attempts = 3\n"));
    EXPECT_NE(e.find("max_attempts"), std::string::npos) << e;

    e = parse_error(std::string("[axes\nunits = [1]\n"));
    EXPECT_EQ(e.rfind("s.toml:1:", 0), 0u) << e;
}

// ---- through the binary ----

struct CmdResult {
    int status = -1;
    std::string out, err;
};

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

class SweepCli : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("eirnn_sweep_" + std::to_string(getpid()) + "_" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    fs::path write(const std::string& name, const std::string& text) const {
        fs::path p = dir_ / name;
        std::ofstream(p) << text;
        return p;
    }

    /// Runs eirnn with args (shell-quoted), capturing stdout and stderr.
    CmdResult run_eirnn(const std::string& args) const {
        const fs::path o = dir_ / "stdout.txt", e = dir_ / "stderr.txt";
        std::string cmd = std::string(EIRNN_BINARY) + " " + args + " >" + o.string() + " 2>" +
                          e.string() + " </dev/null";
        int rc = std::system(cmd.c_str());
        CmdResult r;
        r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
        r.out = slurp(o);
        r.err = slurp(e);
        fs::remove(o);
        fs::remove(e);
        return r;
    }

    fs::path dir_;
};

int lines(const std::string& s) {
    return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
}

TEST_F(SweepCli, BadFilesExitTwoWithOneLineNamingTheKey) {
    const std::string f =
        std::string("output = \"") + (dir_ / "r.h5").string() + "\"\n" + tiny_without_units();
    const std::pair<const char*, const char*> cases[] = {
        {"[axes]\nunits = [8]\nwidth = [1, 2]\n", "axes.width"},
        {"[axes]\nunits = []\n", "axes.units"},
        {"[axes]\nunits = [8]\ne_frac = [0.5, -0.5]\n", "axes.e_frac"},
        {"[axes]\nunits = [8]\ntask = [\"and\", \"xor\", \"and\"]\n", "axes.task"},
    };
    for (const auto& [axes, key] : cases) {
        fs::path cfg = write("bad.toml", f + axes);
        CmdResult r = run_eirnn("sweep " + cfg.string());
        EXPECT_EQ(r.status, 2) << axes;
        EXPECT_EQ(lines(r.err), 1) << r.err;
        EXPECT_NE(r.err.find(key), std::string::npos) << r.err;
        EXPECT_NE(r.err.find("bad.toml:"), std::string::npos) << r.err;
        EXPECT_FALSE(fs::exists(dir_ / "r.h5"));
        EXPECT_FALSE(fs::exists(dir_ / "r.h5.parts"));
    }
    CmdResult r = run_eirnn("sweep " + (dir_ / "missing.toml").string());
    EXPECT_EQ(r.status, 2);
    EXPECT_EQ(lines(r.err), 1) << r.err;
}

TEST_F(SweepCli, DryRunPrintsThePlanAndWritesNothing) {
    fs::path cfg = write("s.toml", std::string("output = \"") + (dir_ / "r.h5").string() + "\"\n" +
                                       tiny_without_units() +
                                       "[axes]\nunits = [8, 12]\ndale = [\"project\", \"none\"]\n");
    CmdResult r = run_eirnn("sweep " + cfg.string() + " --dry-run");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("4 cells"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("g0003"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("GFLOP/s"), std::string::npos) << r.out;
    EXPECT_FALSE(fs::exists(dir_ / "r.h5"));
    EXPECT_FALSE(fs::exists(dir_ / "r.h5.parts"));
}

/// Every dataset of a file: path -> raw bytes (in the file's own type) and the group attributes
/// that describe cells.
std::map<std::string, std::string> contents(const fs::path& path) {
    eirnn::h5::Id f = eirnn::h5::open_read(path);
    std::map<std::string, std::string> out;
    struct Ctx {
        hid_t file;
        std::map<std::string, std::string>* out;
    } ctx{f, &out};
    auto visit = [](hid_t, const char* name, const H5O_info_t* info, void* p) -> herr_t {
        auto* c = static_cast<Ctx*>(p);
        if (info->type == H5O_TYPE_GROUP) {
            eirnn::h5::Id g(H5Gopen2(c->file, name, H5P_DEFAULT));
            for (const char* a : {"cell", "config"})
                if (eirnn::h5::has_attr(g, a))
                    (*c->out)[std::string(name) + "@" + a] = eirnn::h5::read_attr_string(g, a);
            return 0;
        }
        if (info->type != H5O_TYPE_DATASET) return 0;
        eirnn::h5::Id d(H5Dopen2(c->file, name, H5P_DEFAULT));
        eirnn::h5::Id type(H5Dget_type(d));
        eirnn::h5::Id space(H5Dget_space(d));
        std::string bytes(
            static_cast<std::size_t>(H5Sget_simple_extent_npoints(space)) * H5Tget_size(type),
            '\0');
        if (!bytes.empty()) H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data());
        (*c->out)[name] = bytes;
        return 0;
    };
    H5Ovisit2(f, H5_INDEX_NAME, H5_ITER_INC, visit, &ctx, H5O_INFO_BASIC);
    return out;
}

std::string resume_sweep(const fs::path& out) {
    // Four cells; the first is tiny, the others take long enough to be interrupted.
    return std::string("output = \"") + out.string() + "\"\n" + R"(
networks_per_cell = 2
seed = 7
backend = "cpu"
threads = 2
[train]
trials = 416
test_trials = 32
batch = 32
lr = 0.002
[task]
first_in = 2
stim_dur = 3
mem_gap = 2
var_delay = 3
out_gap = 10
[axes]
units = [8, 64]
dale = ["project", "none"]
epochs = [12]
)";
}

pid_t spawn_sweep(const fs::path& cfg) {
    pid_t pid = fork();
    if (pid == 0) {
        int null = ::open("/dev/null", O_RDWR);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        execl(EIRNN_BINARY, EIRNN_BINARY, "sweep", cfg.c_str(), "--quiet",
              static_cast<char*>(nullptr));
        _exit(127);
    }
    return pid;
}

TEST_F(SweepCli, KilledAfterTheFirstGroupResumesToIdenticalDatasets) {
    const fs::path full = dir_ / "full.h5", part = dir_ / "resumed.h5";
    const fs::path parts = eirnn::parts_dir(part);

    // Interrupted run: SIGKILL as soon as the first group's part file is complete.
    fs::path cfg = write("resumed.toml", resume_sweep(part));
    pid_t pid = spawn_sweep(cfg);
    ASSERT_GT(pid, 0);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    bool first_done = false;
    while (std::chrono::steady_clock::now() < deadline) {
        if (fs::exists(parts / "g0000.h5")) {
            first_done = true;
            break;
        }
        int st = 0;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            pid = -1;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ASSERT_TRUE(first_done) << "the sweep never finished its first group";
    ASSERT_GT(pid, 0) << "the sweep ended before it could be interrupted";
    kill(pid, SIGKILL);
    int st = 0;
    waitpid(pid, &st, 0);
    ASSERT_TRUE(WIFSIGNALED(st));
    ASSERT_FALSE(fs::exists(part)) << "the sweep completed before it was killed";
    ASSERT_TRUE(fs::exists(parts / "g0000.h5"));
    ASSERT_FALSE(fs::exists(parts / "g0003.h5"));

    // A changed sweep file with the same output refuses to mix its groups with the old ones.
    std::string changed = resume_sweep(part);
    changed.replace(changed.find("lr = 0.002"), 10, "lr = 0.003");
    fs::path cfg2 = write("changed.toml", changed);
    CmdResult r = run_eirnn("sweep " + cfg2.string() + " --quiet");
    EXPECT_EQ(r.status, 2);
    EXPECT_EQ(lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find("--restart"), std::string::npos) << r.err;

    // Rerun: continues, keeps g0000, ends with the results file and no parts folder.
    r = run_eirnn("sweep " + cfg.string() + " --quiet");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("done earlier"), std::string::npos) << r.out;
    EXPECT_TRUE(fs::exists(part));
    EXPECT_FALSE(fs::exists(parts));

    // Uninterrupted run of the same sweep into another file.
    fs::path cfg_full = write("full.toml", resume_sweep(full));
    r = run_eirnn("sweep " + cfg_full.string() + " --quiet");
    ASSERT_EQ(r.status, 0) << r.err;

    auto a = contents(full), b = contents(part);
    ASSERT_EQ(a.size(), b.size());
    int datasets = 0;
    for (const auto& [name, bytes] : a) {
        ASSERT_TRUE(b.count(name)) << name;
        EXPECT_TRUE(bytes == b.at(name)) << name << " differs";
        datasets += name.find('@') == std::string::npos;
    }
    EXPECT_GT(datasets, 4 * 20);
    for (int g = 0; g < 4; ++g) EXPECT_TRUE(a.count("groups/g000" + std::to_string(g) + "@cell"));
    EXPECT_EQ(json::parse(a.at("groups/g0002@cell")),
              json::parse(R"({"units":64,"dale":"project","epochs":12})"));

    // Running a finished sweep again does nothing.
    r = run_eirnn("sweep " + cfg.string() + " --quiet");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("nothing to do"), std::string::npos) << r.out;
}

TEST_F(SweepCli, UntilLearnedTrainsRoundsWithConsecutiveSeeds) {
    fs::path out = dir_ / "u.h5";
    fs::path cfg = write("u.toml", std::string("output = \"") + out.string() +
                                       "\"\nuntil_learned = 2\n" + "max_attempts = 5\n" +
                                       kTinyFixed + "[axes]\ndale = [\"project\", \"none\"]\n");
    CmdResult r = run_eirnn("sweep " + cfg.string() + " --quiet");
    ASSERT_EQ(r.status, 0) << r.err;
    eirnn::h5::Id f = eirnn::h5::open_read(out);
    for (int g = 0; g < 2; ++g) {
        const std::string grp = "groups/g000" + std::to_string(g);
        auto seed = eirnn::h5::read_int(f, grp + "/seed");
        auto acc = eirnn::h5::read_float(f, grp + "/accuracy");
        const int K = static_cast<int>(seed.data.size());
        EXPECT_GE(K, 2);
        EXPECT_LE(K, 5);
        for (int k = 0; k < K; ++k) EXPECT_EQ(seed.data[k], 100 + 5 * g + k);
        int learned = 0;
        for (float a : acc.data) learned += a >= 0.9f;
        if (K < 5) {
            EXPECT_GE(learned, 2);
        }
        EXPECT_EQ(eirnn::h5::read_float(f, grp + "/W_rec").dims[0], static_cast<hsize_t>(K));
        EXPECT_EQ(eirnn::h5::read_float(f, grp + "/loss").dims[0], static_cast<hsize_t>(K));
        EXPECT_EQ(eirnn::h5::read_float(f, grp + "/metrics/r_outer").dims[0],
                  static_cast<hsize_t>(K));
        const hsize_t N = eirnn::h5::read_float(f, grp + "/W_rec").dims[1];
        for (const char* sv : {"/sv_initial", "/sv_projected", "/sv"})
            EXPECT_EQ(eirnn::h5::shape(f, grp + sv), (std::vector<hsize_t>{hsize_t(K), N})) << sv;
        EXPECT_EQ(eirnn::h5::read_double(f, grp + "/sv").data.front(),
                  eirnn::h5::read_double(f, grp + "/metrics/sv_max").data.front());
        EXPECT_EQ(eirnn::h5::read_double(f, grp + "/metrics/nse").dims[0], static_cast<hsize_t>(K));
        eirnn::h5::Id gid = eirnn::h5::open_group(f, grp);
        json config = json::parse(eirnn::h5::read_attr_string(gid, "config"));
        EXPECT_EQ(config.at("networks"), K);
        EXPECT_EQ(config.at("seed"), 100 + 5 * g);
    }
}

TEST_F(SweepCli, RoundsGiveTheSameGroupAsOneBatch) {
    // Five networks trained in rounds of 2, 2 and 1 (until_learned that tiny networks never reach)
    // and the same five seeds in one batch: the same group, dataset for dataset.
    const fs::path rounds = dir_ / "rounds.h5", batch = dir_ / "batch.h5";
    std::string fixed = kTinyFixed;
    fixed.replace(fixed.find("networks_per_cell = 2"), 21, "networks_per_cell = NPC");
    auto with = [&](const std::string& npc) {
        std::string f = fixed;
        f.replace(f.find("NPC"), 3, npc);
        return f;
    };
    write("rounds.toml", "output = \"" + rounds.string() +
                             "\"\nuntil_learned = 5\nmax_attempts = 5\n" + with("2"));
    write("batch.toml", "output = \"" + batch.string() + "\"\n" + with("5"));
    CmdResult r = run_eirnn("sweep " + (dir_ / "rounds.toml").string() + " --quiet");
    ASSERT_EQ(r.status, 0) << r.err;
    r = run_eirnn("sweep " + (dir_ / "batch.toml").string() + " --quiet");
    ASSERT_EQ(r.status, 0) << r.err;
    auto a = contents(rounds), b = contents(batch);
    ASSERT_EQ(eirnn::h5::read_float(eirnn::h5::open_read(rounds), "groups/g0000/accuracy").dims[0],
              5u);
    ASSERT_EQ(a.size(), b.size());
    for (const auto& [name, bytes] : a) {
        ASSERT_TRUE(b.count(name)) << name;
        EXPECT_TRUE(bytes == b.at(name)) << name << " differs";
    }
}

}  // namespace
