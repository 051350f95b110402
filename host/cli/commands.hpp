// The subcommands of the eirnn CLI. Each add_*_command registers its subcommand (options, help,
// callback) on the app. Callbacks throw InputError for bad input; main() prints one line, exits 2.
#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "host/cli/options.hpp"

namespace eirnn::cli {

void add_train_command(CLI::App& app);
void add_spectrum_command(CLI::App& app);
void add_dynamics_command(CLI::App& app);
void add_data_command(CLI::App& app);
void add_sweep_command(CLI::App& app);
void add_reproduce_command(CLI::App& app);
void add_merge_command(CLI::App& app);

/// Checks --dynamics options against the tasks they will run on, before anything is trained
/// (InputError naming the flag).
void check_dynamics_options(const DynamicsOptions& d, const std::vector<TaskParams>& tasks);
/// `--dynamics` of train / sweep / reproduce: the fixed points of every group of a finished
/// results file, written into it in place; one summary line on stdout, notes on stderr.
void run_dynamics_on(const std::string& path, const DynamicsOptions& d, BackendKind backend,
                     EigMethod method, int threads);

}  // namespace eirnn::cli
