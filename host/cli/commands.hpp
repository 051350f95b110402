// The subcommands of the eirnn CLI. Each add_*_command registers its subcommand (options, help,
// callback) on the app. Callbacks throw InputError for bad input; main() prints one line, exits 2.
#pragma once
#include <CLI/CLI.hpp>

namespace eirnn::cli {

void add_train_command(CLI::App& app);
void add_spectrum_command(CLI::App& app);
void add_dynamics_command(CLI::App& app);
void add_data_command(CLI::App& app);
void add_sweep_command(CLI::App& app);
void add_reproduce_command(CLI::App& app);

}  // namespace eirnn::cli
