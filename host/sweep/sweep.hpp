// Sweeps (docs/SWEEP.md): a TOML file of fixed settings and axes, expanded into cells (the
// cartesian product of the axes, or of each grid's axes in turn), each trained as its own group of
// networks and written as one group of a results file tagged with its `cell`. Runs are resumable:
// every finished cell is an atomic part file in `<output>.parts/`, merged into the results file
// when all are done.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "host/analysis/eig_solver.hpp"
#include "host/core/backend.hpp"
#include "host/train/trainer.hpp"

namespace eirnn {

/// Held-out accuracy from which a network counts as learned (docs/MODEL.md §7).
inline constexpr double kLearnedAccuracy = 0.9;

/// One cell of a sweep: a point of one grid's axes' product.
struct SweepCell {
    int index = 0;        // position in the expansion (last axis fastest); group id group_id(index)
    int grid = 0;         // its grid (Sweep::grids)
    nlohmann::json axes;  // {axis: value} of its grid's axes, written as the group's `cell`
    GroupConfig cfg;      // networks = networks_per_cell, seed = first seed of the cell's range
};

/// One grid of a sweep: an `[axes]` table, or one `[[axes]]` table of several. Its cells are the
/// cartesian product of its axes, cells first_cell .. first_cell + cells - 1 of the sweep.
struct SweepGrid {
    std::vector<std::string> axis_names;  // in the order written
    std::vector<std::size_t> axis_sizes;
    int first_cell = 0, cells = 0;
    int line = 0;  // of its table in the file (0: no axes at all), for messages
};

/// Settings of the Slurm job scripts (the `[slurm]` table; docs/CLUSTER.md). They do not change
/// the results and are not part of the sweep's hash.
struct SlurmSettings {
    int shards = 0;  // array tasks (0: the command line must give --shards)
    std::string partition, account, qos, constraint, mem;
    int cpus_per_task = 0;           // 0: not set (the cluster's default)
    double time_factor = 1.5;        // time limit = factor x the costliest shard's longest estimate
    int min_minutes = 10;            // ... and at least this many minutes
    std::vector<std::string> extra;  // more "#SBATCH" lines, e.g. "--mail-type=END"
    std::vector<std::string> setup;  // shell lines run before eirnn, e.g. "module load hdf5"
};

/// A parsed and expanded sweep.
struct Sweep {
    std::string source;  // file name used in messages
    std::string description;
    std::filesystem::path output = "sweep.h5";
    std::vector<SweepGrid> grids;         // at least one; several with `[[axes]]`
    std::vector<std::string> axis_names;  // every grid's axes, in the order first written
    std::vector<SweepCell> cells;         // the grids' cells, concatenated in file order
    int networks_per_cell = 4;            // networks of one training round of a cell
    int until_learned = 0;                // 0: one round; n: rounds until n networks learned
    int max_attempts = 0;                 // networks a cell trains at most (until_learned)
    std::uint64_t seed = 1;               // cell i's seeds: seed + i * seed_stride + [0, stride)
    std::uint64_t seed_stride = 0;
    int threads = 0;
    EigMethod eig_method = EigMethod::Auto;  // how the spectra are computed (with the backend)
    SlurmSettings slurm;

    /// Most networks a cell can train (max_attempts with until_learned, else networks_per_cell).
    int max_networks() const { return until_learned > 0 ? max_attempts : networks_per_cell; }
    /// Everything that determines the results (not the output path, threads or eig_method: the
    /// eigensolvers differ by rounding only, and each group records its own), canonical JSON.
    /// One grid: {"axes": [[name, size], ...], ...}, as before grids existed (the same hash).
    /// Several: {"grids": [{"axes": [[name, size], ...], "cells": n}, ...], ...}, version 2.
    nlohmann::json plan_json() const;
    /// 16 hex digits identifying plan_json(): a part file belongs to the sweep with its hash.
    std::string hash() const;
};

/// Parses a sweep from TOML text; `source` names it in messages ("file:line:col: key: problem").
/// Throws InputError for any bad key, type or value, an unknown or empty axis, an empty grid, a
/// duplicate value or a cell whose full configuration repeats one of another grid.
Sweep parse_sweep(std::string_view toml_text, const std::string& source);
/// Reads and parses a sweep file.
Sweep load_sweep(const std::filesystem::path& path);

/// "task=and init=normal units=50": the cell's axis values in the order the axes are declared.
/// "(no axes)" for the single cell of a sweep without axes.
std::string cell_label(const Sweep& s, const SweepCell& c);

/// Refuses (InputError naming the cell, the size and what to lower) a sweep whose costliest cell
/// needs more host memory than is available (train_memory_bytes, memory_limit).
void check_sweep_memory(const Sweep& s);

/// Cost of training one network of a cell to the end of its budget: 6 N^2 B T per update (forward
/// and backward products), updates = epochs * ceil(train trials / batch).
struct CellCost {
    long long updates = 0;
    double flop_per_update = 0;
    double flop() const { return flop_per_update * static_cast<double>(updates); }
};
CellCost cell_cost(const GroupConfig& cfg);

/// Training FLOPs of a cell's first round (networks_per_cell networks, or max_attempts when fewer):
/// the cost model of --dry-run, shard balancing and time estimates.
double cell_flop(const Sweep& s, const SweepCell& c);
/// Training FLOPs of a cell's most networks (max_attempts with until_learned).
double cell_flop_max(const Sweep& s, const SweepCell& c);

/// Shard `index` of `count` (0 <= index < count): the cells a process of a split sweep trains.
struct Shard {
    int index = 0, count = 1;
};
/// Parses "I/N"; InputError naming `flag` when malformed or out of range.
Shard parse_shard(const std::string& text, const std::string& flag);
/// The shard of every cell (indexed like s.cells) for `count` shards, balanced by cell_flop: the
/// costliest cells first, each to the shard with the least cost so far (ties: the lower index).
/// Deterministic; a cell, with all its until_learned rounds, belongs to exactly one shard.
std::vector<int> assign_shards(const Sweep& s, int count);

/// Training rate of a backend in FLOP/s, measured on a short run (two updates of a few networks)
/// shaped like the sweep's largest cell with N capped at 128 (a calibration of about a second).
struct Calibration {
    double flops = 0;
    int units = 0, networks = 0, steps = 0, batch = 0;
};
Calibration calibrate(const Sweep& s, Backend& backend);

/// What happened to one cell during run_sweep.
struct CellReport {
    const SweepCell* cell = nullptr;
    bool resumed = false;  // found complete in the parts folder
    int trained = 0;       // networks in the group
    int learned = 0;       // held-out accuracy >= kLearnedAccuracy and not diverged
    int continued = 0;     // networks of the cell's rounds saved by an interrupted run, reused
    double seconds = 0;
};

struct SweepRunOptions {
    bool restart = false;  // discard the groups an earlier run left in the parts folder
    bool force = false;    // replace an output file that is not this sweep's result
    bool progress = true;  // progress bar on stderr (only drawn on a terminal)
    std::function<void(const CellReport&)> on_cell;  // after each cell (resumed ones too)
    EigSolver* eig_solver = nullptr;                 // computes the spectra (null: LAPACK)
    Shard shard;  // count > 1: train only this shard's cells and leave the parts unmerged
};

struct SweepOutcome {
    bool already_complete = false;  // the output already held this sweep's results
    bool merged = false;            // the results file was written (false for a shard)
    int cells = 0, resumed = 0, networks = 0, learned = 0;
    double seconds = 0;
};

/// Trains every cell not yet in `<output>.parts/`, then merges the parts into s.output atomically
/// and removes the parts folder. Rerunning after an interruption continues where it stopped and
/// gives byte-identical datasets. InputError when the parts folder holds another sweep's groups
/// (unless restart), when the output exists and is not this sweep's (unless force), or when
/// another process runs the same sweep. Creates the output's folder when missing.
SweepOutcome run_sweep(const Sweep& s, Backend& backend, const SweepRunOptions& opt);

/// The parts folder of an output file: "<output>.parts".
std::filesystem::path parts_dir(const std::filesystem::path& output);

/// Merges finished part files into one results file, written atomically: the groups in cell order,
/// copied without re-encoding, so the datasets equal those of the same sweep run unsharded.
/// `inputs` are part files or folders of them. InputError (one line) when a part belongs to
/// another sweep configuration (hash), a cell appears twice, or cells are missing (named).
struct MergeOptions {
    const Sweep* sweep = nullptr;  // the parts must be this sweep's (else: the first part's)
    bool force = false;            // replace an existing output that is not this sweep's result
    bool untrusted = false;        // inputs from elsewhere (`eirnn merge`): h5::check_structure
};
struct MergeOutcome {
    int groups = 0, parts = 0;
    std::string hash;
};
MergeOutcome merge_sweep(const std::vector<std::filesystem::path>& inputs,
                         const std::filesystem::path& output, const MergeOptions& opt);

/// `eirnn sweep --merge`: merges the parts folder of s into s.output and removes the folder.
/// already_complete when the output already holds the results.
SweepOutcome merge_sweep_parts(const Sweep& s, bool force);

/// State of a sweep read from its output and parts folder, without touching them.
struct ShardStatus {
    int cells = 0, done = 0, running = 0, missing = 0;
    int networks = 0, learned = 0;  // in the finished cells
    double flop_left = 0;           // first rounds of the unfinished cells
};
struct SweepStatus {
    bool complete = false;  // the output holds this sweep's results
    int shard_count = 1;
    std::vector<ShardStatus> shards;
    ShardStatus total;
    double rate = 0;  // FLOP/s measured on the finished cells (0: none finished)
    std::vector<std::string> running_cells;  // "g0003 (host pid 123)"
};
/// shards 0: the count recorded by the running shards (1 when none).
SweepStatus sweep_status(const Sweep& s, int shards);

}  // namespace eirnn
