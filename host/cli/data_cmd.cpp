// `eirnn data`: writes the trial set that `eirnn train` draws for (task, data seed) to an HDF5 file
// (docs/FORMAT.md, "The data file"), so that other programs (the PyTorch / JAX peers of
// bench/peers, a user's own analysis) train and test on exactly the engine's trials. Shapes: x
// (n,T,I), y (n,T,O), mask (n,T,O), type (n), delay (n); trial-major, row-major.
#include <cstdio>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "host/cli/commands.hpp"
#include "host/cli/options.hpp"
#include "host/core/error.hpp"
#include "host/core/limits.hpp"
#include "host/io/h5.hpp"

namespace eirnn::cli {

namespace {

void run(DataOptions& a) {
    a.resolve();
    GroupConfig& cfg = a.g.cfg;
    h5::check_writable(a.out, a.force, "--out");
    check_memory(2 * data_memory_bytes(cfg.task, a.trials), "--trials " + std::to_string(a.trials),
                 "lower --trials, or raise EIRNN_MEMORY_LIMIT");
    h5::OutputLock lock(a.out, "--out");

    const Dataset d = make_dataset(cfg.task, a.trials, cfg.data_seed);
    const nlohmann::json all = to_json(cfg);
    const nlohmann::json config = {{"task", all.at("task")}, {"data_seed", cfg.data_seed}};
    const hsize_t n = d.n, T = d.T, I = d.I, O = d.O;

    h5::AtomicFile file(a.out, a.force);
    h5::write_attr(file.file(), "format", std::string("eirnn-data"));
    h5::write_attr(file.file(), "format_version", std::int64_t{1});
    h5::write_attr(file.file(), "eirnn_version", std::string(EIRNN_VERSION));
    h5::write_attr(file.file(), "config", config.dump());
    h5::write(file.file(), "x", d.x.data(), {n, T, I});
    h5::write(file.file(), "y", d.y.data(), {n, T, O});
    h5::write(file.file(), "mask", d.mask.data(), {n, T, O});
    h5::write(file.file(), "type", d.type.data(), {n});
    h5::write(file.file(), "delay", d.delay.data(), {n});
    file.commit();
    std::printf("%d trials of %s (T=%d, I=%d, O=%d, data seed %llu) -> %s\n", d.n,
                std::string(task_name(cfg.task.kind)).c_str(), d.T, d.I, d.O,
                static_cast<unsigned long long>(cfg.data_seed), a.out.c_str());
}

}  // namespace

void add_data_command(CLI::App& app) {
    auto args = std::make_shared<DataOptions>();
    CLI::App* sub = app.add_subcommand(
        "data",
        "Write the trials of a task (the set `eirnn train` draws from the same task flags and "
        "--data-seed) to an HDF5 file: inputs, targets, loss mask, trial types and delays. The "
        "tasks: docs/MODEL.md.");
    args->add(sub);
    sub->callback([args] { run(*args); });
}

}  // namespace eirnn::cli
