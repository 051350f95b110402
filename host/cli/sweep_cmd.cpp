// `eirnn sweep CONFIG.toml`: expands a sweep file (docs/SWEEP.md) into cells, trains one group per
// cell and writes one results file; resumable after an interruption. --dry-run prints the plan.
#include <memory>

#include "host/cli/commands.hpp"
#include "host/cli/sweep_cli.hpp"

namespace eirnn::cli {

namespace {

struct SweepArgs {
    std::string file, out;
    SweepCliOptions opt;
};

void run(SweepArgs& a) {
    Sweep s = load_sweep(a.file);
    if (!a.out.empty()) s.output = a.out;
    a.opt.apply(s);
    if (a.opt.dry_run)
        print_plan(s, a.opt);
    else
        run_sweep_cli(s, a.opt);
}

}  // namespace

void add_sweep_command(CLI::App& app) {
    auto args = std::make_shared<SweepArgs>();
    CLI::App* sub = app.add_subcommand(
        "sweep",
        "Train every cell of a sweep file (TOML: fixed settings and axes, docs/SWEEP.md) as "
        "one group of a results file. Rerun the same command to resume after an interruption.");
    sub->add_option("config", args->file, "sweep file (TOML)")->required();
    sub->add_option("--out,-o", args->out, "results file (default: the sweep file's `output`)");
    args->opt.add(sub);
    sub->callback([args] { run(*args); });
}

}  // namespace eirnn::cli
