// Command-line options that describe a group (model, task, training), shared by the subcommands
// that build one (train, data). Enum flags are read as strings and checked by resolve(), so every
// bad value gets the same one-line error naming the flag.
#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "host/analysis/dynamics.hpp"
#include "host/analysis/eig_solver.hpp"
#include "host/core/config.hpp"

namespace eirnn::cli {

struct GroupOptions {
    GroupConfig cfg;
    std::string task = "and", init = "orthogonal", dale = "project", dale_axis = "outgoing";
    std::string clip = "global", backend = "auto";
    bool free_input = false, no_autapses = false;

    void add_task(CLI::App* app);      // --task and its timing flags
    void add_model(CLI::App* app);     // model and initialisation
    void add_training(CLI::App* app);  // training protocol, seeds, networks, threads, backend
    /// Parses the enum strings into cfg and validates it; InputError naming the flag.
    const GroupConfig& resolve();
    /// Parses --task into cfg.task and validates the task alone (`eirnn data`); InputError naming
    /// the flag.
    const TaskParams& resolve_task();
};

/// Options of the fixed-point search (`eirnn dynamics`, and train / sweep / reproduce with
/// --dynamics): --input (repeatable), --starts, --noise, --sample-trials, --dynamics-seed,
/// --fp-iterations, --candidate-q, --fixed-q, --slow-q, --dedup-tol.
struct DynamicsOptions {
    DynamicsSettings settings;
    std::vector<std::string> inputs = {"zero"};
    void add(CLI::App* app);
};

/// Makes every numeric option of `app` and its subcommands (recursively) strict: an empty value,
/// trailing text, a hexadecimal or octal spelling, a sign on an unsigned option, and nan / inf
/// are refused with the flag named (exit 2), before the value is converted. Call once, after
/// every option is added. The check is eirnn::check_number_text (host/core/limits.hpp).
void strict_numbers(CLI::App& app);

/// Every option of `eirnn train` (also what the Python module's train() keywords are parsed by).
struct TrainOptions {
    GroupOptions g;
    std::string out = "results.h5";
    std::string eig_method = "auto";
    bool force = false, quiet = false, no_spectra = false, dynamics = false;
    DynamicsOptions dyn;
    /// Registers the options on the `train` subcommand (or any app).
    void add(CLI::App* app);
    /// The group config (resolve() with --no-spectra applied), validated; InputError naming the
    /// flag.
    GroupConfig resolve();
};

/// Every option of `eirnn data` (also the Python module's trials() keywords).
struct DataOptions {
    GroupOptions g;
    int trials = 15050;
    std::string out = "trials.h5";
    bool force = false;
    /// Registers the options on the `data` subcommand (or any app).
    void add(CLI::App* app);
    /// The task (resolve_task()) after checking --trials; InputError naming the flag.
    const TaskParams& resolve();
};

/// Help text of --eig-method: the methods and what auto picks.
std::string eig_method_help();
/// Parses an --eig-method value; InputError naming the flag.
EigMethod parse_eig_method_option(const std::string& value);
/// Parses a --backend value; InputError naming the flag.
BackendKind parse_backend_option(const std::string& value);

}  // namespace eirnn::cli
