// What `eirnn sweep` and `eirnn reproduce` share: command-line overrides of a parsed sweep, the
// --dry-run plan (cells, groups, networks, FLOPs, time from a measured rate) and the run with one
// line per finished group on stdout.
#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "host/cli/options.hpp"
#include "host/sweep/sweep.hpp"

namespace eirnn::cli {

struct SweepCliOptions {
    std::string backend;     // "" keeps the file's
    std::string eig_method;  // "" keeps the file's
    int threads = -1;        // kept from the file's unless --threads is given
    CLI::Option* threads_opt = nullptr;
    CLI::Option* rate_opt = nullptr;
    bool dry_run = false, restart = false, force = false, quiet = false;
    double rate_gflops = 0;  // --rate: 0 measures the backend
    bool dynamics = false;   // --dynamics: fixed points of every network after training
    DynamicsOptions dyn;

    /// Registers --backend, --eig-method, --threads, --dry-run, --rate, --restart, --force,
    /// --quiet, --dynamics and the options of the fixed-point search.
    void add(CLI::App* app);
    /// Applies --backend, --eig-method and --threads (InputError naming the flag or the key).
    void apply(Sweep& s) const;
};

/// Prints the plan with an estimated time (measures the backend unless --rate); with a shard of
/// more than one, that shard's cells and every shard's estimate. Writes nothing.
void print_plan(const Sweep& s, const SweepCliOptions& o, const Shard& shard = {});

/// The backend the sweep's cells train on (they share one; auto for an empty sweep).
BackendKind sweep_backend(const Sweep& s);

/// Runs the sweep (or one shard of it), printing a line per group and a summary on stdout; with
/// --dynamics and a complete output file, then the fixed points of every group.
SweepOutcome run_sweep_cli(const Sweep& s, const SweepCliOptions& o, const Shard& shard = {});

/// How a split sweep's processes are started again: the sweep file and the options they forward.
struct SweepCommand {
    std::string config;                // the sweep file as given
    std::vector<std::string> forward;  // --out, --backend, --eig-method, --threads, ...
};

/// --status: cells done / running / missing per shard, networks learned, estimated time left.
void print_status(const Sweep& s, const SweepCliOptions& o, int shards);

/// --merge: merges every shard's parts into the output; with --dynamics, then the fixed points of
/// every group.
void merge_cli(const Sweep& s, const SweepCliOptions& o);

/// --slurm (print the job array script) or --slurm-submit (write both scripts beside the output
/// and submit them with sbatch, the merge depending on the array).
void slurm_cli(const Sweep& s, const SweepCliOptions& o, const SweepCommand& cmd, int shards,
               bool submit);

/// --devices: one worker process per CUDA device (shard i of D on device i), then the merge.
void run_devices_cli(const Sweep& s, const SweepCliOptions& o, const SweepCommand& cmd,
                     const std::vector<int>& devices);

}  // namespace eirnn::cli
