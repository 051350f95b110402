// `eirnn train`: trains one group of K networks and writes a results file (docs/FORMAT.md).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "host/cli/commands.hpp"
#include "host/cli/options.hpp"
#include "host/core/limits.hpp"
#include "host/io/h5.hpp"
#include "host/io/results.hpp"
#include "host/io/spectra_io.hpp"
#include "host/train/progress.hpp"

namespace eirnn::cli {

namespace {

void print_summary(const GroupResult& r, const std::filesystem::path& out) {
    std::vector<double> r_outer(r.cfg.networks, NAN);
    if (r.cfg.spectra) {
        h5::Id f = h5::open_read(out);
        h5::Id grp = h5::open_group(f, "groups/" + group_id(0));
        MetricsTable t = read_metrics(grp, "metrics");
        for (std::size_t c = 0; c < t.names.size(); ++c)
            if (t.names[c] == "r_outer") r_outer = t.columns[c];
    }
    const int E = r.cfg.train.epochs;
    for (int k = 0; k < r.cfg.networks; ++k) {
        int er = r.st.epochs_run[k];
        float last = er > 0 ? r.st.loss[static_cast<std::size_t>(k) * E + er - 1] : NAN;
        std::printf(
            "net %3d  seed %-6llu  loss %.3e  test %.3e  acc %5.3f  epochs %3d  updates %6d  "
            "r_outer %.4f%s\n",
            k, static_cast<unsigned long long>(r.st.params.seeds[k]), last, r.test_loss[k],
            r.accuracy[k], er, r.st.updates[k], r_outer[k],
            r.st.diverged[k] ? "  DIVERGED" : (r.st.stopped[k] ? "  early-stopped" : ""));
    }
    std::printf("%d networks, %s backend, %.1f s training -> %s\n", r.cfg.networks,
                r.backend.c_str(), r.train_seconds, out.c_str());
}

void run(TrainOptions& a) {
    GroupConfig cfg = a.resolve();
    const EigMethod method = parse_eig_method_option(a.eig_method);
    h5::check_writable(a.out, a.force, "--out");
    if (a.dynamics) check_dynamics_options(a.dyn, {cfg.task});
    check_train_memory(cfg);
    // Held until the file is written: a second train on the same --out stops here, at once.
    h5::OutputLock lock(a.out, "--out");
    auto backend = make_backend(cfg.backend, cfg.threads);
    // Made before training so that a method the backend cannot run stops here.
    auto solver = cfg.spectra ? make_eig_solver(cfg.backend, method, cfg.threads) : nullptr;
    TrainProgress progress;
    GroupResult r;
    {
        auto bar = make_train_bar(progress, cfg, !a.quiet);
        progress.active = cfg.networks;
        progress.mean_loss = NAN;
        progress.min_loss = NAN;
        r = train_group(cfg, *backend, &progress);
    }
    write_results_file(a.out, a.force, r, cfg.threads, solver.get());
    print_summary(r, a.out);
    if (a.dynamics) run_dynamics_on(a.out, a.dyn, cfg.backend, method, cfg.threads);
}

}  // namespace

void add_train_command(CLI::App& app) {
    auto args = std::make_shared<TrainOptions>();
    CLI::App* sub = app.add_subcommand(
        "train",
        "Train a group of K networks of equal shape (one batch over all cores or one GPU) and "
        "write weights, losses, accuracies, spectra and metrics to an HDF5 results file. The "
        "model, Dale modes, tasks and training protocol: docs/MODEL.md.");
    args->add(sub);
    sub->callback([args] { run(*args); });
}

}  // namespace eirnn::cli
