// Sweeps split into shards (docs/CLUSTER.md): the cost-balanced assignment (the paper preset at 16
// shards), and through the binary: an 8-cell sweep run unsharded and as 3 shards (one of them
// killed with SIGKILL and resumed) merges into a file identical to the unsharded one (every
// dataset, every attribute but train_seconds); until_learned rounds inside their shard; merge
// refusals (another configuration, a duplicate cell, missing cells), --status, --dry-run --shard,
// the Slurm script, and --devices without a GPU.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "host/core/backend.hpp"
#include "host/core/error.hpp"
#include "host/io/h5.hpp"
#include "host/io/results.hpp"
#include "host/sweep/sweep.hpp"
#include "host/sweep/sweep_slurm.hpp"

namespace fs = std::filesystem;
using eirnn::Sweep;

namespace {

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(SweepShards, PaperPresetSixteenShardsWithinThirtyPercentOfTheMean) {
    const fs::path preset = fs::path(EIRNN_SOURCE_DIR) / "examples" / "reproduce_paper.toml";
    Sweep s = eirnn::load_sweep(preset);
    ASSERT_EQ(s.cells.size(), 192u);
    const auto plans = eirnn::shard_plans(s, 16);
    ASSERT_EQ(plans.size(), 16u);
    std::vector<int> seen(s.cells.size(), 0);
    for (const auto& p : plans)
        for (int c : p.cells) ++seen[static_cast<std::size_t>(c)];
    for (int n : seen) EXPECT_EQ(n, 1);  // every cell, rounds included, in exactly one shard
    const double ratio = eirnn::shard_imbalance(plans);
    EXPECT_LE(ratio, 1.3);
    EXPECT_GE(ratio, 1.0);
    // Round-robin by index is worse: it puts the costliest cells (N = 500, the flip-flop's long
    // trials) unevenly.
    std::vector<double> rr(16, 0.0);
    for (const auto& c : s.cells) rr[c.index % 16] += eirnn::cell_flop(s, c);
    double sum = 0, most = 0;
    for (double v : rr) {
        sum += v;
        most = std::max(most, v);
    }
    EXPECT_GT(most / (sum / 16), ratio + 0.1);
    std::printf("paper preset, 16 shards: costliest / mean = %.4f (round-robin by index %.2f)\n",
                ratio, most / (sum / 16));
    // Deterministic.
    EXPECT_EQ(eirnn::assign_shards(s, 16), eirnn::assign_shards(eirnn::load_sweep(preset), 16));
}

TEST(SweepShards, MoreShardsThanCellsLeavesSomeEmpty) {
    Sweep s = eirnn::parse_sweep("[axes]\nunits = [10, 20, 30]\n", "s.toml");
    const auto a = eirnn::assign_shards(s, 5);
    EXPECT_EQ(a[2], 0);  // the costliest cell first, to shard 0
    EXPECT_EQ(a[1], 1);
    EXPECT_EQ(a[0], 2);
    const auto one = eirnn::assign_shards(s, 1);
    EXPECT_TRUE(std::all_of(one.begin(), one.end(), [](int x) { return x == 0; }));
}

TEST(SweepShards, ParseShardRefusesBadValues) {
    auto sh = eirnn::parse_shard("2/3", "--shard");
    EXPECT_EQ(sh.index, 2);
    EXPECT_EQ(sh.count, 3);
    for (const char* bad : {"3/3", "1", "-1/3", "a/b", "1/0", "/2", "1/"}) {
        try {
            eirnn::parse_shard(bad, "--shard");
            ADD_FAILURE() << bad;
        } catch (const eirnn::InputError& e) {
            EXPECT_NE(std::string(e.what()).find("--shard"), std::string::npos) << e.what();
        }
    }
}

TEST(SweepShards, SlurmTableIsNotPartOfTheHash) {
    const std::string base = "[axes]\nunits = [10, 20]\n";
    Sweep a = eirnn::parse_sweep(base, "s.toml");
    Sweep b = eirnn::parse_sweep(
        "[slurm]\npartition = \"gpu\"\nshards = 4\nextra = "
        "[\"--mail-type=END\"]\n" +
            base,
        "s.toml");
    EXPECT_EQ(a.hash(), b.hash());
    EXPECT_EQ(b.slurm.partition, "gpu");
    EXPECT_EQ(b.slurm.shards, 4);
    ASSERT_EQ(b.slurm.extra.size(), 1u);
    try {
        eirnn::parse_sweep("[slurm]\nnodes = 3\n", "s.toml");
        ADD_FAILURE();
    } catch (const eirnn::InputError& e) {
        EXPECT_NE(std::string(e.what()).find("slurm.nodes"), std::string::npos) << e.what();
    }
}

TEST(SweepShards, TimeLimitFollowsTheCostliestShard) {
    Sweep s = eirnn::parse_sweep("[axes]\nunits = [100, 200]\n", "s.toml");
    eirnn::SlurmJob job;
    job.shards = 2;
    job.rate = 1e9;
    // Costliest shard: the N = 200 cell, 4 networks; 1.5x, in minutes, rounded up.
    const double flop = eirnn::cell_flop(s, s.cells[1]);
    const long long expect = static_cast<long long>(std::ceil(1.5 * flop / 1e9 / 60));
    EXPECT_EQ(eirnn::slurm_time_minutes(s, job), std::max(10LL, expect));
    EXPECT_EQ(eirnn::slurm_time(61), "0-01:01:00");
    EXPECT_EQ(eirnn::slurm_time(24 * 60 + 5), "1-00:05:00");
    EXPECT_EQ(eirnn::shell_quote("a b'c"), "'a b'\\''c'");
}

// ---- through the binary ----

struct CmdResult {
    int status = -1;
    std::string out, err;
};

int lines(const std::string& s) {
    return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
}

class ShardCli : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("eirnn_shard_" + std::to_string(getpid()) + "_" +
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

/// Eight cells: four N = 8 ones, then four N = 48 ones that take long enough to be interrupted.
std::string eight_cells(const std::string& lr = "0.002") {
    return std::string(R"(
networks_per_cell = 2
seed = 11
backend = "cpu"
threads = 1
output = "whole.h5"
[train]
trials = 288
test_trials = 32
batch = 32
epochs = 6
lr = )") + lr +
           R"(
[task]
first_in = 2
stim_dur = 3
mem_gap = 2
var_delay = 3
out_gap = 10
[axes]
units = [8, 48]
task = ["and", "xor"]
dale = ["project", "none"]
)";
}

/// Every attribute of obj but train_seconds, as "<where>@<name>" -> bytes (strings as text).
void read_attrs(hid_t obj, const std::string& where, std::map<std::string, std::string>& o) {
    struct A {
        std::string where;
        std::map<std::string, std::string>* o;
    } a{where, &o};
    auto each = [](hid_t loc, const char* name, const H5A_info_t*, void* p) -> herr_t {
        namespace h5 = eirnn::h5;
        auto* a = static_cast<A*>(p);
        if (std::string(name) == "train_seconds") return 0;
        h5::Id attr(H5Aopen(loc, name, H5P_DEFAULT));
        h5::Id type(H5Aget_type(attr));
        std::string v;
        if (H5Tget_class(type) == H5T_STRING) {
            for (const std::string& s : h5::read_attr_strings(loc, name)) v += s + '\0';
        } else {
            h5::Id space(H5Aget_space(attr));
            v.resize(static_cast<std::size_t>(H5Sget_simple_extent_npoints(space)) *
                     H5Tget_size(type));
            H5Aread(attr, type, v.data());
        }
        (*a->o)[a->where + "@" + name] = v;
        return 0;
    };
    H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, nullptr, each, &a);
}

/// Every dataset (raw bytes) and every attribute of every object except train_seconds.
std::map<std::string, std::string> everything(const fs::path& path) {
    namespace h5 = eirnn::h5;
    h5::Id f = h5::open_read(path);
    std::map<std::string, std::string> out;
    struct Ctx {
        hid_t file;
        std::map<std::string, std::string>* out;
    } ctx{f, &out};
    read_attrs(f, "/", out);
    auto visit = [](hid_t, const char* name, const H5O_info_t* info, void* p) -> herr_t {
        auto* c = static_cast<Ctx*>(p);
        if (std::string(name) == ".") return 0;
        h5::Id obj(H5Oopen(c->file, name, H5P_DEFAULT));
        read_attrs(obj, name, *c->out);
        if (info->type != H5O_TYPE_DATASET) {
            (*c->out)[std::string(name) + "/"] = "group";
            return 0;
        }
        h5::Id type(H5Dget_type(obj));
        h5::Id space(H5Dget_space(obj));
        std::string bytes(
            static_cast<std::size_t>(H5Sget_simple_extent_npoints(space)) * H5Tget_size(type),
            '\0');
        if (!bytes.empty()) H5Dread(obj, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data());
        (*c->out)[name] = bytes;
        return 0;
    };
    H5Ovisit2(f, H5_INDEX_NAME, H5_ITER_INC, visit, &ctx, H5O_INFO_BASIC);
    return out;
}

/// The groups of a file in the order HDF5 stores their links (H5_ITER_NATIVE).
std::vector<std::string> group_order(const fs::path& path) {
    namespace h5 = eirnn::h5;
    h5::Id f = h5::open_read(path);
    h5::Id g = h5::open_group(f, "groups");
    std::vector<std::string> names;
    auto each = [](hid_t, const char* name, const H5L_info_t*, void* p) -> herr_t {
        static_cast<std::vector<std::string>*>(p)->push_back(name);
        return 0;
    };
    H5Literate(g, H5_INDEX_NAME, H5_ITER_NATIVE, nullptr, each, &names);
    return names;
}

void expect_identical(const fs::path& a_path, const fs::path& b_path) {
    auto a = everything(a_path), b = everything(b_path);
    EXPECT_EQ(a.size(), b.size());
    int datasets = 0, attributes = 0;
    for (const auto& [name, bytes] : a) {
        ASSERT_TRUE(b.count(name)) << name << " missing in " << b_path;
        EXPECT_TRUE(bytes == b.at(name)) << name << " differs";
        (name.find('@') == std::string::npos ? datasets : attributes) += 1;
    }
    EXPECT_GT(datasets, 8 * 20);
    EXPECT_GT(attributes, 8 * 5);
    const std::vector<std::string> order = group_order(a_path);
    EXPECT_EQ(order, group_order(b_path));
    EXPECT_EQ(order.size(), 8u);
    EXPECT_TRUE(std::is_sorted(order.begin(), order.end()));
}

pid_t spawn(const std::vector<std::string>& args) {
    pid_t pid = fork();
    if (pid == 0) {
        int null = ::open("/dev/null", O_RDWR);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        std::vector<char*> argv{const_cast<char*>(EIRNN_BINARY)};
        for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        execv(EIRNN_BINARY, argv.data());
        _exit(127);
    }
    return pid;
}

TEST_F(ShardCli, ThreeShardsOneKilledMergeToTheUnshardedFile) {
    const fs::path cfg = write("s.toml", eight_cells());
    const fs::path whole = dir_ / "whole.h5", split = dir_ / "split.h5";
    const fs::path parts = eirnn::parts_dir(split);
    const std::string c = cfg.string(), out = " --out " + split.string();

    // The plan of one shard, and every shard's estimate.
    CmdResult r = run_eirnn("sweep " + c + out + " --dry-run --shard 1/3 --rate 1");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("shard 1 of 3"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("<- this shard"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("costliest shard / mean"), std::string::npos) << r.out;
    EXPECT_FALSE(fs::exists(parts));

    // Shard 1 holds one N = 48 cell after its N = 8 cells: killed after its first part.
    Sweep s = eirnn::load_sweep(cfg);
    const auto shard_of = eirnn::assign_shards(s, 3);
    std::vector<std::string> mine;
    for (int i = 0; i < 8; ++i)
        if (shard_of[static_cast<std::size_t>(i)] == 1) mine.push_back(eirnn::group_id(i) + ".h5");
    ASSERT_GE(mine.size(), 2u);
    ASSERT_GE(s.cells[std::stoi(mine.back().substr(1, 4))].cfg.model.units, 48);
    pid_t pid = spawn({"sweep", c, "--out", split.string(), "--shard", "1/3", "--quiet"});
    ASSERT_GT(pid, 0);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    bool first = false;
    while (std::chrono::steady_clock::now() < deadline && !first) {
        first = fs::exists(parts / mine.front());
        int st = 0;
        if (!first && waitpid(pid, &st, WNOHANG) == pid) {
            pid = -1;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ASSERT_TRUE(first) << "shard 1 never finished its first cell";
    ASSERT_GT(pid, 0) << "shard 1 ended before it could be interrupted";
    kill(pid, SIGKILL);
    int st = 0;
    waitpid(pid, &st, 0);
    ASSERT_TRUE(WIFSIGNALED(st));
    ASSERT_FALSE(fs::exists(parts / mine.back())) << "shard 1 finished before it was killed";

    // The other shards; the status knows shard 1 is unfinished and --merge names what is missing.
    for (const char* sh : {"0/3", "2/3"}) {
        r = run_eirnn("sweep " + c + out + " --shard " + sh + " --quiet");
        ASSERT_EQ(r.status, 0) << r.err;
        EXPECT_NE(r.out.find("--merge"), std::string::npos) << r.out;
    }
    EXPECT_FALSE(fs::exists(split));
    r = run_eirnn("sweep " + c + out + " --status");
    ASSERT_EQ(r.status, 0) << r.err;
    // Rows "shard cells done running missing networks learned time-left": shards 0 and 2 are
    // complete, shard 1 (3 shards learned from the records the shards left) is not.
    {
        std::map<std::string, std::vector<int>> rows;
        std::istringstream in(r.out);
        for (std::string line; std::getline(in, line);) {
            std::istringstream ls(line);
            std::string name;
            std::vector<int> v(6, -1);
            ls >> name >> v[0] >> v[1] >> v[2] >> v[3] >> v[4] >> v[5];
            if (ls) rows[name] = v;
        }
        ASSERT_EQ(rows.size(), 4u) << r.out;  // 0, 1, 2, all
        EXPECT_EQ(rows["0"][1], rows["0"][0]) << r.out;
        EXPECT_EQ(rows["2"][1], rows["2"][0]) << r.out;
        EXPECT_EQ(rows["1"][0], static_cast<int>(mine.size())) << r.out;
        EXPECT_LT(rows["1"][1], rows["1"][0]) << r.out;
        EXPECT_GE(rows["1"][3], 1) << r.out;  // the killed process's cell: missing, not running
        EXPECT_EQ(rows["all"][0], 8) << r.out;
        EXPECT_EQ(rows["all"][4], 2 * rows["all"][1]) << r.out;  // two networks per finished cell
    }
    EXPECT_NE(r.out.find("time left: about"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("every cell is done"), std::string::npos) << r.out;
    r = run_eirnn("sweep " + c + out + " --merge");
    EXPECT_EQ(r.status, 2);
    EXPECT_EQ(lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find("missing"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(mine.back().substr(0, 5)), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("units=48"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(split));

    // Shard 1 again: resumes from its finished cells.
    r = run_eirnn("sweep " + c + out + " --shard 1/3 --quiet");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("done earlier"), std::string::npos) << r.out;
    r = run_eirnn("sweep " + c + out + " --status");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("every cell is done"), std::string::npos) << r.out;

    // eirnn merge of the parts folder (left in place), then sweep --merge (removes it).
    const fs::path merged = dir_ / "merged.h5";
    r = run_eirnn("merge " + merged.string() + " " + parts.string());
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("merged 8 groups"), std::string::npos) << r.out;
    r = run_eirnn("sweep " + c + out + " --merge");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_FALSE(fs::exists(parts));
    r = run_eirnn("sweep " + c + out + " --status");
    EXPECT_NE(r.out.find("complete"), std::string::npos) << r.out;

    // The same sweep unsharded, from the same file.
    r = run_eirnn("sweep " + c + " --out " + whole.string() + " --quiet");
    ASSERT_EQ(r.status, 0) << r.err;
    expect_identical(whole, split);
    expect_identical(whole, merged);
}

TEST_F(ShardCli, UntilLearnedRoundsStayInTheirShard) {
    // Tiny networks that never learn: every cell trains rounds of 2 up to 5 networks, in one shard.
    std::string t = eight_cells();
    t.replace(t.find("networks_per_cell = 2"), 21,
              "networks_per_cell = 2\nuntil_learned = 4\nmax_attempts = 5");
    t.replace(t.find("units = [8, 48]"), 15, "units = [8, 12]");
    t.replace(t.find("epochs = 6"), 10, "epochs = 1");
    const std::string dale = "dale = [\"project\", \"none\"]";
    t.replace(t.find(dale), dale.size(), "dale = [\"project\"]");
    const fs::path cfg = write("u.toml", t);
    const fs::path whole = dir_ / "whole.h5", split = dir_ / "split.h5";
    for (const char* sh : {"1/2", "0/2"}) {
        CmdResult r = run_eirnn("sweep " + cfg.string() + " --out " + split.string() +
                                " --quiet --shard " + sh);
        ASSERT_EQ(r.status, 0) << r.err;
    }
    CmdResult r = run_eirnn("sweep " + cfg.string() + " --out " + split.string() + " --merge");
    ASSERT_EQ(r.status, 0) << r.err;
    r = run_eirnn("sweep " + cfg.string() + " --out " + whole.string() + " --quiet");
    ASSERT_EQ(r.status, 0) << r.err;
    auto a = everything(whole), b = everything(split);
    ASSERT_EQ(a.size(), b.size());
    for (const auto& [name, bytes] : a) {
        ASSERT_TRUE(b.count(name)) << name;
        EXPECT_TRUE(bytes == b.at(name)) << name << " differs";
    }
    eirnn::h5::Id f = eirnn::h5::open_read(split);
    for (int g = 0; g < 4; ++g) {
        auto seeds = eirnn::h5::read_int(f, "groups/" + eirnn::group_id(g) + "/seed");
        EXPECT_GE(seeds.data.size(), 4u);  // more than one round
        for (std::size_t k = 0; k < seeds.data.size(); ++k)
            EXPECT_EQ(seeds.data[k], 11 + 5 * g + static_cast<long>(k));
    }
}

TEST_F(ShardCli, MergeRefusesAnotherConfigADuplicateAndMissingCells) {
    // Parts of a 4-cell sweep (two shards) and one part of the same sweep with another lr.
    auto four = [](const std::string& lr) {
        std::string t = eight_cells(lr);
        t.replace(t.find("units = [8, 48]"), 15, "units = [8]");
        t.replace(t.find("epochs = 6"), 10, "epochs = 1");
        return t;
    };
    const fs::path a = write("a.toml", four("0.002")), b = write("b.toml", four("0.003"));
    const fs::path a_out = dir_ / "a.h5", b_out = dir_ / "b.h5", m = dir_ / "m.h5";
    for (const char* sh : {"0/2", "1/2"}) {
        CmdResult r = run_eirnn("sweep " + a.string() + " --out " + a_out.string() + " --shard " +
                                sh + " --quiet");
        ASSERT_EQ(r.status, 0) << r.err;
    }
    CmdResult r =
        run_eirnn("sweep " + b.string() + " --out " + b_out.string() + " --shard 0/2 --quiet");
    ASSERT_EQ(r.status, 0) << r.err;  // g0000 and g0002; a shard leaves its parts unmerged
    ASSERT_FALSE(fs::exists(b_out));
    const fs::path ap = eirnn::parts_dir(a_out), bp = eirnn::parts_dir(b_out);
    ASSERT_TRUE(fs::exists(ap / "g0003.h5"));

    auto refused = [&](const std::string& args, const std::string& what) {
        CmdResult x = run_eirnn(args);
        EXPECT_EQ(x.status, 2) << args << "\n" << x.out;
        EXPECT_EQ(lines(x.err), 1) << x.err;
        EXPECT_NE(x.err.find(what), std::string::npos) << x.err;
        EXPECT_FALSE(fs::exists(m));
        return x.err;
    };
    refused("merge " + m.string() + " " + (ap / "g0000.h5").string() + " " +
                (ap / "g0001.h5").string() + " " + (bp / "g0002.h5").string() + " " +
                (ap / "g0003.h5").string(),
            "different sweep configuration");
    fs::copy_file(ap / "g0002.h5", dir_ / "copy.h5");
    refused("merge " + m.string() + " " + ap.string() + " " + (dir_ / "copy.h5").string(),
            "duplicate cell g0002");
    fs::rename(ap / "g0001.h5", dir_ / "g0001.h5");
    std::string e = refused("merge " + m.string() + " " + ap.string(), "missing 1 of 4 cells");
    EXPECT_NE(e.find("g0001 (units=8 task=and dale=none)"), std::string::npos) << e;
    // With every part: merged.
    r = run_eirnn("merge " + m.string() + " " + ap.string() + " " + (dir_ / "g0001.h5").string());
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(
        eirnn::h5::children(eirnn::h5::open_group(eirnn::h5::open_read(m), "groups").get()).size(),
        4u);
}

TEST_F(ShardCli, SlurmScriptAndDevices) {
    std::string t = eight_cells();
    t += "[slurm]\npartition = \"gpu-short\"\naccount = \"lab42\"\nextra = [\"--mail-type=END\"]\n"
         "setup = [\"module load hdf5\"]\n";
    const fs::path cfg = write("s.toml", t);
    const std::string c = cfg.string() + " --out " + (dir_ / "x.h5").string();
    CmdResult r = run_eirnn("sweep " + c + " --slurm --rate 2");
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("--shards"), std::string::npos) << r.err;

    r = run_eirnn("sweep " + c + " --slurm --shards 4 --rate 2");
    ASSERT_EQ(r.status, 0) << r.err;
    const std::string& sc = r.out;
    for (const char* want :
         {"#!/bin/bash\n", "#SBATCH --array=0-3\n", "#SBATCH --requeue\n",
          "#SBATCH --time=0-00:10:00\n", "#SBATCH --partition=gpu-short\n",
          "#SBATCH --account=lab42\n", "#SBATCH --mail-type=END\n", "module load hdf5\n",
          "--shard \"${SLURM_ARRAY_TASK_ID}/4\"", "afterok", "shard   3:"})
        EXPECT_NE(sc.find(want), std::string::npos) << want << "\n" << sc;
    EXPECT_EQ(sc.find("--gres"), std::string::npos) << sc;
    EXPECT_NE(sc.find(fs::absolute(cfg).string()), std::string::npos) << sc;
    EXPECT_TRUE(fs::is_directory(dir_ / "x.h5.slurm"));  // the log folder must exist for Slurm

    r = run_eirnn("sweep " + c + " --slurm --shards 2 --rate 2 --restart");
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("--restart: not with --slurm"), std::string::npos) << r.err;

    r = run_eirnn("sweep " + c + " --slurm --shards 2 --rate 2 --backend cuda");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("#SBATCH --gres=gpu:1\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("--backend cuda"), std::string::npos) << r.out;

    if (!eirnn::cuda_available()) {
        r = run_eirnn("sweep " + c + " --devices 0,1");
        EXPECT_EQ(r.status, 2);
        EXPECT_EQ(lines(r.err), 1) << r.err;
        EXPECT_NE(r.err.find("--devices: needs a usable CUDA device"), std::string::npos) << r.err;
        EXPECT_FALSE(fs::exists(dir_ / "x.h5.parts"));
    }
    r = run_eirnn("sweep " + c + " --shard 3/3");
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("--shard"), std::string::npos) << r.err;
}

}  // namespace
