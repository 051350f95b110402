// What `eirnn sweep` and `eirnn reproduce` share: command-line overrides of a parsed sweep, the
// --dry-run plan (cells, groups, networks, FLOPs, time from a measured rate) and the run with one
// line per finished group on stdout.
#pragma once
#include <CLI/CLI.hpp>
#include <string>

#include "host/cli/options.hpp"
#include "host/sweep.hpp"

namespace eirnn::cli {

struct SweepCliOptions {
    std::string backend;     // "" keeps the file's
    std::string eig_method;  // "" keeps the file's
    int threads = -1;        // -1 keeps the file's
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

/// Prints the plan with an estimated time (measures the backend unless --rate). Writes nothing.
void print_plan(const Sweep& s, const SweepCliOptions& o);

/// Runs the sweep, printing a line per group and a summary on stdout; with --dynamics, then the
/// fixed points of every group.
SweepOutcome run_sweep_cli(const Sweep& s, const SweepCliOptions& o);

}  // namespace eirnn::cli
