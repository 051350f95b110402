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
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "host/core/error.hpp"
#include "host/io/h5.hpp"
#include "host/io/results.hpp"
#include "host/sweep/sweep.hpp"
#include "host/sweep/sweep_parts.hpp"
#include "host/train/trainer.hpp"
#include "tasks/task.hpp"

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
    ASSERT_EQ(s.grids.size(), 1u);
    EXPECT_EQ(s.grids[0].axis_sizes, (std::vector<std::size_t>{2, 2, 2}));
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

// ---- several grids: [[axes]] ----

/// A main grid and a side grid of kTinyFixed without units: 2 x 2 x 2 cells, then 1 x 1 x 2.
std::string two_grids() {
    return tiny_without_units() + R"(
[[axes]]
task = ["and", "xor"]
dale = ["project", "none"]
units = [8, 12]

[[axes]]
task = ["and"]
dale_axis = ["incoming"]
units = [8, 12]
)";
}

/// FNV-1a of a text, as Sweep::hash() computes it.
std::string fnv(const std::string& text) {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : text) {
        h ^= c;
        h *= 1099511628211ull;
    }
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return buf;
}

TEST(SweepGrids, CellsAreTheGridsConcatenatedInFileOrder) {
    Sweep s = parse(two_grids());
    ASSERT_EQ(s.cells.size(), 10u);
    ASSERT_EQ(s.grids.size(), 2u);
    EXPECT_EQ(s.grids[0].axis_names, (std::vector<std::string>{"task", "dale", "units"}));
    EXPECT_EQ(s.grids[0].axis_sizes, (std::vector<std::size_t>{2, 2, 2}));
    EXPECT_EQ(s.grids[0].first_cell, 0);
    EXPECT_EQ(s.grids[0].cells, 8);
    EXPECT_EQ(s.grids[1].axis_names, (std::vector<std::string>{"task", "dale_axis", "units"}));
    EXPECT_EQ(s.grids[1].axis_sizes, (std::vector<std::size_t>{1, 1, 2}));
    EXPECT_EQ(s.grids[1].first_cell, 8);
    EXPECT_EQ(s.grids[1].cells, 2);
    EXPECT_EQ(s.axis_names, (std::vector<std::string>{"task", "dale", "units", "dale_axis"}));
    for (int i = 0; i < 10; ++i) {
        const eirnn::SweepCell& c = s.cells[i];
        EXPECT_EQ(c.index, i);
        EXPECT_EQ(c.grid, i < 8 ? 0 : 1);
        EXPECT_EQ(c.cfg.seed, 100u + 2u * i);  // seed ranges by the sweep-wide index
        EXPECT_EQ(c.cfg.networks, 2);
        EXPECT_EQ(c.cfg.train.epochs, 2);
        EXPECT_EQ(c.cfg.task.out_gap, 4);
        EXPECT_EQ(c.cfg.model.units, i % 2 ? 12 : 8);
    }
    // Main grid: the last axis fastest; dale_axis is not one of its axes, so its default applies.
    EXPECT_EQ(s.cells[5].axes, json::parse(R"({"task":"xor","dale":"project","units":12})"));
    EXPECT_EQ(eirnn::name(s.cells[5].cfg.model.dale_axis), "outgoing");
    EXPECT_EQ(eirnn::name(s.cells[6].cfg.model.dale), "none");
    // Side grid: its own axes only in `cell`; dale, absent there, keeps its fixed value.
    EXPECT_EQ(s.cells[8].axes, json::parse(R"({"task":"and","dale_axis":"incoming","units":8})"));
    EXPECT_EQ(s.cells[9].axes, json::parse(R"({"task":"and","dale_axis":"incoming","units":12})"));
    EXPECT_EQ(eirnn::name(s.cells[9].cfg.model.dale_axis), "incoming");
    EXPECT_EQ(eirnn::name(s.cells[9].cfg.model.dale), "project");
    EXPECT_EQ(eirnn::task_name(s.cells[9].cfg.task.kind), "and");
    EXPECT_EQ(eirnn::cell_label(s, s.cells[9]), "task=and dale_axis=incoming units=12");
    EXPECT_EQ(eirnn::cell_label(s, s.cells[2]), "task=and dale=none units=8");

    // The plan describes the grids; the hash covers every cell and stays FNV-1a of the plan.
    const json plan = s.plan_json();
    EXPECT_EQ(plan.at("version"), 2);
    EXPECT_FALSE(plan.contains("axes"));
    EXPECT_EQ(plan.at("grids"), json::parse(R"([
        {"axes": [["task", 2], ["dale", 2], ["units", 2]], "cells": 8},
        {"axes": [["task", 1], ["dale_axis", 1], ["units", 2]], "cells": 2}])"));
    EXPECT_EQ(plan.at("cells").size(), 10u);
    EXPECT_EQ(plan.at("cells").at(8).at("cell"), s.cells[8].axes);
    EXPECT_EQ(s.hash(), fnv(plan.dump()));
    std::string other = two_grids();
    other.replace(other.rfind("units = [8, 12]"), 15, "units = [8, 16]");
    EXPECT_NE(parse(other).hash(), s.hash());

    // Shards cover every cell of every grid exactly once.
    const std::vector<int> shard_of = eirnn::assign_shards(s, 3);
    ASSERT_EQ(shard_of.size(), 10u);
    for (int k : shard_of) EXPECT_TRUE(k >= 0 && k < 3);
}

TEST(SweepGrids, OneAxesTableKeepsThePlanAndHashItHadBeforeGrids) {
    // Values computed by eirnn before sweeps could have several grids: results of existing sweep
    // files must still resume and merge.
    const std::string one = std::string(kTinyFixed) + R"(
[axes]
task = ["and", "xor"]
e_frac = [0.5, 0.75]
dale = ["project", "none"]
)";
    Sweep s = parse(one);
    EXPECT_EQ(s.hash(), "6a95540ad44d38f6");
    json frame = s.plan_json();
    EXPECT_EQ(frame.at("cells").size(), 8u);
    EXPECT_EQ(fnv(frame.dump()), "6a95540ad44d38f6");
    frame["cells"] = json::array();
    EXPECT_EQ(frame.dump(),
              R"({"axes":[["task",2],["e_frac",2],["dale",2]],"cells":[],"format":"eirnn-sweep",)"
              R"("learned_accuracy":0.9,"max_attempts":0,"networks_per_cell":2,"seed":100,)"
              R"("seed_stride":2,"until_learned":0,"version":1})");
    const std::pair<const char*, const char*> files[] = {
        {"sweep.toml", "80a2fbe4f819a50e"},
        {"reproduce_quick.toml", "aea015374f0be7dd"},
        {"reproduce_paper.toml", "deecf1cd3fe81856"},
    };
    for (const auto& [name, hash] : files)
        EXPECT_EQ(eirnn::load_sweep(fs::path(EIRNN_SOURCE_DIR) / "examples" / name).hash(), hash)
            << name;
    // One [[axes]] table is the same single grid: the same cells, plan and hash.
    std::string as_array = one;
    as_array.replace(as_array.find("[axes]"), 6, "[[axes]]");
    EXPECT_EQ(parse(as_array).plan_json(), s.plan_json());
    EXPECT_EQ(parse(as_array).hash(), s.hash());
    // No axes at all: one cell, one grid without axes.
    Sweep none = parse(kTinyFixed);
    ASSERT_EQ(none.grids.size(), 1u);
    EXPECT_EQ(none.plan_json().at("axes"), json::array());
}

TEST(SweepGrids, ErrorsNameTheGridsAndKeys) {
    const std::string f = tiny_without_units();
    const int base = static_cast<int>(std::count(f.begin(), f.end(), '\n'));
    auto one_line = [](const std::string& e) {
        return !e.empty() && e.find('\n') == std::string::npos && e.rfind("s.toml:", 0) == 0;
    };

    // The same cell in two grids: named by both grids, at the second grid's table.
    std::string e = parse_error(f + "[[axes]]\nunits = [8, 12]\n\n[[axes]]\nunits = [12]\n");
    EXPECT_TRUE(one_line(e)) << e;
    EXPECT_NE(e.find("axes: "), std::string::npos) << e;
    EXPECT_NE(e.find("grid 1 (line " + std::to_string(base + 1) + ")"), std::string::npos) << e;
    EXPECT_NE(e.find("grid 2 (line " + std::to_string(base + 4) + ")"), std::string::npos) << e;
    EXPECT_NE(e.find("same cell twice"), std::string::npos) << e;
    EXPECT_EQ(e.rfind("s.toml:" + std::to_string(base + 4) + ":", 0), 0u) << e;
    // ... also when the repeat comes from a fixed value: dale "project" is the default.
    e = parse_error(
        f + "[[axes]]\nunits = [8]\n[[axes]]\nunits = [8]\ndale = [\"none\", \"project\"]\n");
    EXPECT_NE(e.find("grid 1"), std::string::npos) << e;
    EXPECT_NE(e.find("\"dale\":\"project\""), std::string::npos) << e;
    // ... and when the same value is written differently: 2 and 2.0 of a real setting.
    e = parse_error(f + "[[axes]]\ngain = [2, 3]\n[[axes]]\ngain = [1.5, 2.0]\n");
    EXPECT_NE(e.find("cell g0003 {\"gain\":2.0} of grid 2"), std::string::npos) << e;
    EXPECT_NE(e.find("cell g0000 {\"gain\":2.0} of grid 1"), std::string::npos) << e;
    // Different settings in different grids are fine.
    EXPECT_EQ(parse_error(f + "[[axes]]\nunits = [8]\n[[axes]]\ndale = [\"none\"]\n"), "");

    // An axis in one grid that is fixed at the top level.
    e = parse_error(std::string(kTinyFixed) +
                    "[[axes]]\ndale = [\"none\"]\n[[axes]]\nunits = [8, 12]\n");
    EXPECT_TRUE(one_line(e)) << e;
    EXPECT_NE(e.find("axes.units"), std::string::npos) << e;
    EXPECT_NE(e.find("also set in [model]"), std::string::npos) << e;

    // An empty [[axes]] table, at its own line.
    e = parse_error(f + "[[axes]]\nunits = [8]\n[[axes]]\n");
    EXPECT_TRUE(one_line(e)) << e;
    EXPECT_NE(e.find("empty grid"), std::string::npos) << e;
    EXPECT_EQ(e.rfind("s.toml:" + std::to_string(base + 3) + ":", 0), 0u) << e;

    // [axes] and [[axes]] in one file: TOML refuses the redefinition, in one line.
    e = parse_error(f + "[axes]\nunits = [8]\n[[axes]]\ndale = [\"none\"]\n");
    EXPECT_TRUE(one_line(e)) << e;
    EXPECT_NE(e.find("axes"), std::string::npos) << e;
    e = parse_error(f + "[[axes]]\nunits = [8]\n[axes]\ndale = [\"none\"]\n");
    EXPECT_TRUE(one_line(e)) << e;
    EXPECT_NE(e.find("axes"), std::string::npos) << e;

    // Within one grid, values stay unique; an axis of a later grid is checked like any other.
    e = parse_error(f + "[[axes]]\nunits = [8]\n[[axes]]\nunits = [12, 16, 12]\n");
    EXPECT_NE(e.find("axes.units"), std::string::npos) << e;
    EXPECT_NE(e.find("duplicate value 12"), std::string::npos) << e;
    e = parse_error(f + "[[axes]]\nunits = [8]\n[[axes]]\nwidth = [1]\n");
    EXPECT_NE(e.find("axes.width"), std::string::npos) << e;
    e = parse_error(f + "[[axes]]\nunits = [8]\n[[axes]]\nunits = [1]\n");
    EXPECT_NE(e.find("axes.units"), std::string::npos) << e;
    EXPECT_EQ(e.rfind("s.toml:" + std::to_string(base + 4) + ":", 0), 0u) << e;

    // axes given as something else than tables.
    for (const char* bad : {"axes = []\n", "axes = [1, 2]\n", "axes = 3\n"}) {
        e = parse_error(std::string(bad) + f);
        EXPECT_TRUE(one_line(e)) << e;
        EXPECT_NE(e.find("s.toml:1:"), std::string::npos) << e;
        EXPECT_NE(e.find("axes: must be a table"), std::string::npos) << e;
    }
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
        {"[[axes]]\nunits = [8, 12]\n[[axes]]\nunits = [12]\n", "axes: cell"},
        {"[[axes]]\nunits = [8]\n[[axes]]\n", "axes: empty grid"},
        {"[axes]\nunits = [8]\n[[axes]]\nunits = [12]\n", "axes"},
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

/// The two files' contents (contents()) are the same: every dataset byte for byte, every cell
/// and config attribute.
void expect_same_contents(const std::map<std::string, std::string>& a,
                          const std::map<std::string, std::string>& b) {
    EXPECT_EQ(a.size(), b.size());
    for (const auto& [name, bytes] : a) {
        const auto it = b.find(name);
        if (it == b.end()) {
            ADD_FAILURE() << name << " missing";
            continue;
        }
        EXPECT_TRUE(bytes == it->second) << name << " differs";
    }
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

/// Starts `eirnn sweep cfg` and kills it (SIGKILL) as soon as `file` exists: "" when it was killed
/// so, else why not.
std::string kill_sweep_when(const fs::path& cfg, const fs::path& file) {
    pid_t pid = spawn_sweep(cfg);
    if (pid <= 0) return "cannot start the sweep";
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    int st = 0;
    while (std::chrono::steady_clock::now() < deadline) {
        if (fs::exists(file)) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return WIFSIGNALED(st) ? "" : "the sweep ended before it could be interrupted";
        }
        if (waitpid(pid, &st, WNOHANG) == pid)
            return "the sweep ended before " + file.string() + " appeared";
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return file.string() + " never appeared";
}

TEST_F(SweepCli, KilledAfterTheFirstGroupResumesToIdenticalDatasets) {
    const fs::path full = dir_ / "full.h5", part = dir_ / "resumed.h5";
    const fs::path parts = eirnn::parts_dir(part);

    // Interrupted run: SIGKILL as soon as the first group's part file is complete.
    fs::path cfg = write("resumed.toml", resume_sweep(part));
    ASSERT_EQ(kill_sweep_when(cfg, parts / "g0000.h5"), "");
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
    expect_same_contents(a, b);
    int datasets = 0;
    for (const auto& entry : a) datasets += entry.first.find('@') == std::string::npos;
    EXPECT_GT(datasets, 4 * 20);
    for (int g = 0; g < 4; ++g) EXPECT_TRUE(a.count("groups/g000" + std::to_string(g) + "@cell"));
    EXPECT_EQ(json::parse(a.at("groups/g0002@cell")),
              json::parse(R"({"units":64,"dale":"project","epochs":12})"));

    // Running a finished sweep again does nothing.
    r = run_eirnn("sweep " + cfg.string() + " --quiet");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("nothing to do"), std::string::npos) << r.out;
}

TEST_F(SweepCli, TwoGridsRunShardResumeAndMerge) {
    // A main grid (dale project / none) and a side grid (the incoming Dale axis): three cells.
    auto sweep_file = [&](const fs::path& out) {
        return "output = \"" + out.string() + "\"\n" + kTinyFixed +
               "\n[[axes]]\ndale = [\"project\", \"none\"]\n\n[[axes]]\ndale_axis = "
               "[\"incoming\"]\n";
    };
    const fs::path whole = dir_ / "whole.h5", split = dir_ / "split.h5";
    const fs::path parts = eirnn::parts_dir(split);
    const std::string w = write("whole.toml", sweep_file(whole)).string();
    const std::string c = write("split.toml", sweep_file(split)).string();

    CmdResult r = run_eirnn("sweep " + c + " --dry-run --rate 1");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("3 cells = (dale 2) + (dale_axis 1)"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("dale_axis=incoming"), std::string::npos) << r.out;
    EXPECT_FALSE(fs::exists(split));
    EXPECT_FALSE(fs::exists(parts));

    // Unsharded: one group per cell of both grids, with that grid's axes as `cell`.
    r = run_eirnn("sweep " + w + " --quiet");
    ASSERT_EQ(r.status, 0) << r.err;
    {
        eirnn::h5::Id f = eirnn::h5::open_read(whole);
        const json plan = json::parse(eirnn::h5::read_attr_string(f, "sweep"));
        EXPECT_EQ(plan.at("cells"), 3);
        EXPECT_EQ(plan.at("grids").size(), 2u);
        const char* cells[] = {R"({"dale":"project"})", R"({"dale":"none"})",
                               R"({"dale_axis":"incoming"})"};
        const char* dales[] = {"project", "none", "project"};
        const char* dale_axes[] = {"outgoing", "outgoing", "incoming"};
        for (int g = 0; g < 3; ++g) {
            eirnn::h5::Id grp = eirnn::h5::open_group(f, "groups/" + eirnn::group_id(g));
            EXPECT_EQ(json::parse(eirnn::h5::read_attr_string(grp, "cell")), json::parse(cells[g]));
            const json config = json::parse(eirnn::h5::read_attr_string(grp, "config"));
            EXPECT_EQ(config.at("model").at("dale"), dales[g]);
            EXPECT_EQ(config.at("model").at("dale_axis"), dale_axes[g]);
            EXPECT_EQ(config.at("seed"), 100 + 2 * g);
            const auto seed = eirnn::h5::read_int(f, "groups/" + eirnn::group_id(g) + "/seed");
            EXPECT_EQ(seed.data, (std::vector<std::int64_t>{100 + 2 * g, 101 + 2 * g}));
        }
    }

    // Two shards: together they write every cell's part exactly once.
    int groups = 0;
    for (const char* shard : {"0/2", "1/2"}) {
        r = run_eirnn("sweep " + c + " --shard " + shard + " --quiet");
        ASSERT_EQ(r.status, 0) << r.err;
        const std::size_t at = r.out.find("shard " + std::string(shard) + ": ");
        ASSERT_NE(at, std::string::npos) << r.out;
        groups += std::stoi(r.out.substr(at + 10));
    }
    EXPECT_EQ(groups, 3);
    EXPECT_FALSE(fs::exists(split));
    std::vector<std::string> written;
    for (const auto& e : fs::directory_iterator(parts))
        if (e.path().extension() == ".h5") written.push_back(e.path().filename().string());
    std::sort(written.begin(), written.end());
    EXPECT_EQ(written, (std::vector<std::string>{"g0000.h5", "g0001.h5", "g0002.h5"}));
    r = run_eirnn("sweep " + c + " --status");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("every cell is done"), std::string::npos) << r.out;

    // A lost part of the side grid: the merge names it by its own axes; a rerun trains it alone.
    fs::remove(parts / "g0002.h5");
    r = run_eirnn("sweep " + c + " --merge");
    EXPECT_EQ(r.status, 2);
    EXPECT_EQ(lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find("g0002 (dale_axis=incoming)"), std::string::npos) << r.err;
    r = run_eirnn("sweep " + c + " --quiet");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(static_cast<int>(std::count(r.out.begin(), r.out.end(), '\n')), 4) << r.out;
    EXPECT_NE(r.out.find("2/3  dale=none"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("3/3  dale_axis=incoming"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("2 from an earlier run"), std::string::npos) << r.out;
    EXPECT_FALSE(fs::exists(parts));

    auto a = contents(whole), b = contents(split);
    expect_same_contents(a, b);
    EXPECT_TRUE(a.count("groups/g0002@cell"));
    r = run_eirnn("sweep " + c + " --quiet");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("nothing to do"), std::string::npos) << r.out;

    // The Slurm script of a sweep of several grids: one array task per shard.
    r = run_eirnn("sweep " + c + " --slurm --shards 2 --rate 1");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("--array=0-1"), std::string::npos) << r.out;
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
    expect_same_contents(a, b);
}

// A cell trained in rounds (until_learned) and killed between two rounds continues after its
// saved rounds: the rerun trains only the rest, and the group equals an uninterrupted run's.
TEST_F(SweepCli, KilledInsideACellContinuesAfterItsSavedRounds) {
    auto sweep_file = [](const fs::path& out) {
        std::string f = kTinyFixed;
        f.replace(f.find("networks_per_cell = 2"), 21, "networks_per_cell = 1");
        f.replace(f.find("units = 8"), 9, "units = 48");
        f.replace(f.find("epochs = 2"), 10, "epochs = 8");
        return "output = \"" + out.string() + "\"\nuntil_learned = 7\nmax_attempts = 7\n" + f;
    };
    const fs::path whole = dir_ / "whole.h5", cut = dir_ / "cut.h5";
    const fs::path parts = eirnn::parts_dir(cut);
    const fs::path rounds = eirnn::sweep_parts::rounds_file(parts, 0);
    const fs::path cfg = write("cut.toml", sweep_file(cut));

    ASSERT_EQ(kill_sweep_when(cfg, rounds), "");
    ASSERT_FALSE(fs::exists(parts / "g0000.h5")) << "the cell finished before it was killed";

    // The saved rounds: the cell's first networks, with their seeds, readable for this sweep only.
    const Sweep s = eirnn::load_sweep(cfg);
    const std::string hash =
        json::parse(slurp(parts / eirnn::sweep_parts::kManifest)).at("hash").get<std::string>();
    std::optional<eirnn::GroupResult> r0 =
        eirnn::sweep_parts::load_rounds(rounds, hash, s.cells[0]);
    ASSERT_TRUE(r0.has_value());
    const int k = r0->cfg.networks;
    ASSERT_GE(k, 1);
    ASSERT_LT(k, 7);
    for (int i = 0; i < k; ++i) EXPECT_EQ(r0->st.params.seeds[i], s.cells[0].cfg.seed + i);
    EXPECT_FALSE(eirnn::sweep_parts::load_rounds(rounds, "0000000000000000", s.cells[0]));
    EXPECT_FALSE(fs::exists(rounds)) << "rounds of another sweep are removed";
    eirnn::sweep_parts::save_rounds(rounds, hash, s.cells[0], *r0);

    CmdResult r = run_eirnn("sweep " + cfg.string() + " --quiet");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("continued after " + std::to_string(k) + " networks"), std::string::npos)
        << r.out;
    EXPECT_FALSE(fs::exists(parts));

    r = run_eirnn("sweep " + write("whole.toml", sweep_file(whole)).string() + " --quiet");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out.find("continued"), std::string::npos) << r.out;
    auto a = contents(whole), b = contents(cut);
    ASSERT_EQ(eirnn::h5::read_float(eirnn::h5::open_read(cut), "groups/g0000/accuracy").dims[0],
              7u);
    expect_same_contents(a, b);
}

// A damaged rounds file is not trusted: the cell starts over, with one line saying so.
TEST_F(SweepCli, DamagedSavedRoundsAreDiscarded) {
    std::string f = kTinyFixed;
    f.replace(f.find("networks_per_cell = 2"), 21, "networks_per_cell = 1");
    const fs::path out = dir_ / "d.h5", parts = eirnn::parts_dir(out);
    const fs::path cfg = write(
        "d.toml", "output = \"" + out.string() + "\"\nuntil_learned = 3\nmax_attempts = 3\n" + f);
    const Sweep s = eirnn::load_sweep(cfg);
    eirnn::GroupConfig one = s.cells[0].cfg;
    one.networks = 1;
    auto backend = eirnn::make_backend(eirnn::BackendKind::Cpu, 2);
    const eirnn::GroupResult g = eirnn::train_group(one, *backend, nullptr);
    fs::create_directories(parts);
    const fs::path rounds = eirnn::sweep_parts::rounds_file(parts, 0);
    eirnn::sweep_parts::save_rounds(rounds, "abc", s.cells[0], g);
    const auto back = eirnn::sweep_parts::load_rounds(rounds, "abc", s.cells[0]);
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(back->st.params.params, g.st.params.params);
    EXPECT_EQ(back->w_rec_initial, g.w_rec_initial);
    EXPECT_EQ(back->ex_h, g.ex_h);
    EXPECT_EQ(back->accuracy, g.accuracy);
    std::string bytes = slurp(rounds);
    for (std::size_t at : {bytes.size() / 2, bytes.size() - 3, std::size_t{20}}) {
        std::string bad = bytes;
        bad[at] = static_cast<char>(bad[at] ^ 0x40);
        std::ofstream(rounds, std::ios::binary) << bad;
        EXPECT_FALSE(eirnn::sweep_parts::load_rounds(rounds, "abc", s.cells[0])) << at;
        EXPECT_FALSE(fs::exists(rounds));
    }
    std::ofstream(rounds, std::ios::binary) << bytes.substr(0, bytes.size() / 3);
    EXPECT_FALSE(eirnn::sweep_parts::load_rounds(rounds, "abc", s.cells[0]));
}

// The standard preset (docs/SWEEP.md): the four tasks at the study's timing, both inits, both E
// fractions, Dale vs unconstrained, N 50 and 100, and the incoming-axis side grid for AND.
TEST_F(SweepCli, StandardPresetIsTheStudysTimingWithAnIncomingSideGrid) {
    Sweep s =
        eirnn::load_sweep(fs::path(EIRNN_SOURCE_DIR) / "examples" / "reproduce_standard.toml");
    ASSERT_EQ(s.grids.size(), 2u);
    ASSERT_EQ(s.cells.size(), 72u);
    EXPECT_EQ(s.until_learned, 10);
    std::map<std::string, int> per_task;
    int incoming = 0;
    for (const auto& c : s.cells) {
        const auto& cfg = c.cfg;
        per_task[std::string(eirnn::task_name(cfg.task.kind))]++;
        const bool ff = cfg.task.kind == eirnn::TaskKind::FlipFlop;
        EXPECT_EQ(eirnn::task_steps(cfg.task), ff ? 1010 : 290) << c.axes.dump();
        EXPECT_EQ(cfg.train.test_trials, 200);
        EXPECT_TRUE(cfg.model.units == 50 || cfg.model.units == 100);
        if (cfg.model.dale_axis == eirnn::DaleAxis::Incoming) {
            ++incoming;
            EXPECT_EQ(c.grid, 1);
            EXPECT_EQ(cfg.task.kind, eirnn::TaskKind::And);
            EXPECT_EQ(cfg.model.dale, eirnn::DaleMode::Project);
        }
    }
    EXPECT_EQ(incoming, 8);
    EXPECT_EQ(per_task,
              (std::map<std::string, int>{{"and", 24}, {"ff", 16}, {"or", 16}, {"xor", 16}}));

    // The dry run through `eirnn reproduce` prints the same plan and the cost docs/SWEEP.md gives
    // for one round of every cell (365 TFLOP).
    CmdResult r =
        run_eirnn("reproduce --preset standard --dry-run --rate 45 --out " + dir_.string());
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("72 cells"), std::string::npos) << r.out;
    const auto at = r.out.find("total 144 networks, ");
    ASSERT_NE(at, std::string::npos) << r.out;
    const double gflop = std::stod(r.out.substr(at + 20));
    EXPECT_NEAR(gflop, 364694.4, 1.0);
    EXPECT_FALSE(fs::exists(dir_ / "results.h5"));
}

}  // namespace
