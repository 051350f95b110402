// Shared parts of `eirnn sweep` and `eirnn reproduce` (see sweep_cli.hpp).
#include "host/cli/sweep_cli.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>

#include "host/cli/commands.hpp"
#include "host/cli/options.hpp"
#include "host/core/error.hpp"
#include "host/core/limits.hpp"
#include "host/io/results.hpp"
#include "host/sweep/sweep_slurm.hpp"
#include "host/train/progress.hpp"

namespace eirnn::cli {

void SweepCliOptions::add(CLI::App* app) {
    app->add_option("--backend", backend, "auto | cpu | cuda (default: the sweep file's)");
    app->add_option("--eig-method", eig_method,
                    eig_method_help() + " (default: the sweep file's eig_method, else auto)");
    threads_opt = app->add_option("--threads", threads,
                                  "CPU threads (0 = all cores; default: the sweep file's)");
    app->add_flag("--dry-run", dry_run, "print the plan and an estimated time; write nothing");
    rate_opt = app->add_option(
        "--rate", rate_gflops,
        "--dry-run: assume this training rate in GFLOP/s instead of measuring the backend");
    app->add_flag("--restart", restart,
                  "start over: discard the groups an interrupted run left in <output>.parts");
    app->add_flag("--force", force, "replace an output file that is not this sweep's result");
    app->add_flag("--quiet,-q", quiet, "no progress bar");
    app->add_flag("--dynamics", dynamics,
                  "after training, find the fixed points of every network (as `eirnn dynamics`, "
                  "with the options below, on --backend)");
    dyn.add(app);
}

void SweepCliOptions::apply(Sweep& s) const {
    if (!backend.empty()) {
        auto kind = parse_backend(backend);
        if (!kind) throw InputError("--backend: unknown value '" + backend + "' (auto, cpu, cuda)");
        for (SweepCell& c : s.cells) c.cfg.backend = *kind;
    }
    if (!eig_method.empty()) s.eig_method = parse_eig_method_option(eig_method);
    // Checked here so that --dry-run refuses it too (a missing device is found when the run
    // starts).
    if (s.eig_method == EigMethod::Xgeev && !s.cells.empty() &&
        s.cells.front().cfg.backend == BackendKind::Cpu)
        throw InputError(eig_method.empty()
                             ? s.source +
                                   ": eig_method \"xgeev\" needs backend \"cuda\" (the CPU "
                                   "methods are lapack and batched)"
                             : "--eig-method xgeev: needs --backend cuda (the CPU methods are "
                               "lapack and batched)");
    const bool given = threads_opt ? threads_opt->count() > 0 : threads >= 0;
    const int t = resolve_threads(given ? threads : s.threads, given ? "--threads" : "threads");
    if (t != s.threads || given) {
        s.threads = t;
        for (SweepCell& c : s.cells) c.cfg.threads = t;
    }
    if ((rate_opt && rate_opt->count() > 0) || rate_gflops != 0)
        if (!std::isfinite(rate_gflops) || rate_gflops <= 0)
            throw InputError("--rate: must be a finite number > 0 (GFLOP/s)");
    if (dynamics) {
        std::vector<TaskParams> tasks;
        for (const SweepCell& c : s.cells) tasks.push_back(c.cfg.task);
        check_dynamics_options(dyn, tasks);
    }
}

BackendKind sweep_backend(const Sweep& s) {
    return s.cells.empty() ? BackendKind::Auto : s.cells.front().cfg.backend;
}

namespace {

std::string gflop(double f) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", f / 1e9);
    return buf;
}

}  // namespace

double measured_rate(const Sweep& s, const SweepCliOptions& o, std::string& how) {
    if (o.rate_gflops > 0) {
        how = "given by --rate";
        return o.rate_gflops * 1e9;
    }
    auto backend = make_backend(sweep_backend(s), s.threads);
    Calibration cal = calibrate(s, *backend);
    char buf[200];
    std::snprintf(buf, sizeof buf, "measured now: %s backend, %d networks, N=%d, T=%d, B=%d",
                  backend->name().c_str(), cal.networks, cal.units, cal.steps, cal.batch);
    how = buf;
    return cal.flops;
}

void print_plan(const Sweep& s, const SweepCliOptions& o, const Shard& shard) {
    // "task 2 x units 3", or one such product per grid: "(task 4 x dale 2) + (dale_axis 1)".
    std::string shape;
    for (const SweepGrid& g : s.grids) {
        std::string product;
        for (std::size_t a = 0; a < g.axis_names.size(); ++a)
            product += (a ? " x " : "") + g.axis_names[a] + " " + std::to_string(g.axis_sizes[a]);
        if (s.grids.size() == 1)
            shape = product;
        else
            shape += std::string(shape.empty() ? "" : " + ") + "(" +
                     (product.empty() ? "no axes" : product) + ")";
    }
    const int first_round = std::min(s.networks_per_cell, s.max_networks());
    const std::vector<int> shard_of = assign_shards(s, shard.count);
    std::printf("sweep %s (hash %s)%s%s\n", s.source.c_str(), s.hash().c_str(),
                s.description.empty() ? "" : ": ", s.description.c_str());
    std::printf("%zu cells%s%s, one group per cell, %d networks per group", s.cells.size(),
                shape.empty() ? "" : " = ", shape.c_str(), first_round);
    if (s.until_learned > 0)
        std::printf(" (until_learned %d: more rounds of %d until %d learned, at most %d)",
                    s.until_learned, s.networks_per_cell, s.until_learned, s.max_attempts);
    std::printf("\n");
    if (shard.count > 1)
        std::printf("shard %d of %d (0-based; cells balanced by estimated cost):\n", shard.index,
                    shard.count);
    std::printf("%-6s %5s %5s %4s %8s %5s %9s  %s\n", "group", "N", "T", "B", "updates", "nets",
                "GFLOP", "cell");
    double total = 0, most = 0;
    int cells = 0;
    for (const SweepCell& c : s.cells) {
        if (shard_of[c.index] != shard.index) continue;
        CellCost cost = cell_cost(c.cfg);
        total += cell_flop(s, c);
        most += cell_flop_max(s, c);
        ++cells;
        std::printf("%-6s %5d %5d %4d %8lld %5d %9s  %s\n", group_id(c.index).c_str(),
                    c.cfg.model.units, task_steps(c.cfg.task), c.cfg.train.batch, cost.updates,
                    first_round, gflop(cell_flop(s, c)).c_str(), cell_label(s, c).c_str());
    }
    std::printf("total %lld networks, %s GFLOP of training",
                static_cast<long long>(cells) * first_round, gflop(total).c_str());
    if (s.until_learned > 0)
        std::printf(" (at most %lld networks, %s GFLOP)",
                    static_cast<long long>(cells) * s.max_networks(), gflop(most).c_str());
    std::printf("\n");

    std::string how;
    const double rate = measured_rate(s, o, how);
    std::printf("rate %.2f GFLOP/s (%s): about %s", rate / 1e9, how.c_str(),
                ProgressBar::format_duration(total / rate).c_str());
    if (s.until_learned > 0)
        std::printf(", at most %s", ProgressBar::format_duration(most / rate).c_str());
    std::printf(" of training\n");
    if (shard.count > 1) {
        const std::vector<ShardPlan> plans = shard_plans(s, shard.count);
        std::printf("%-6s %5s %12s %10s%s\n", "shard", "cells", "GFLOP", "time",
                    s.until_learned > 0 ? "  (at most)" : "");
        for (std::size_t i = 0; i < plans.size(); ++i) {
            std::printf("%-6zu %5zu %12s %10s", i, plans[i].cells.size(),
                        gflop(plans[i].flop).c_str(),
                        ProgressBar::format_duration(plans[i].flop / rate).c_str());
            if (s.until_learned > 0)
                std::printf("  (%s)",
                            ProgressBar::format_duration(plans[i].flop_max / rate).c_str());
            std::printf("%s\n", static_cast<int>(i) == shard.index ? "  <- this shard" : "");
        }
        std::printf("costliest shard / mean: %.3f\n", shard_imbalance(plans));
    }
    std::printf("output %s (--dry-run: nothing written)\n", s.output.c_str());
}

SweepOutcome run_sweep_cli(const Sweep& s, const SweepCliOptions& o, const Shard& shard) {
    auto backend = make_backend(sweep_backend(s), s.threads);
    const bool spectra = !s.cells.empty() && s.cells.front().cfg.spectra;
    auto solver = spectra ? make_eig_solver(sweep_backend(s), s.eig_method, s.threads) : nullptr;
    SweepRunOptions ro;
    ro.eig_solver = solver.get();
    ro.restart = o.restart;
    ro.force = o.force;
    ro.progress = !o.quiet;
    ro.shard = shard;
    const bool tty = !o.quiet && ProgressBar::stderr_is_tty();
    const int width = static_cast<int>(s.cells.size());
    ro.on_cell = [&](const CellReport& r) {
        if (tty) std::fprintf(stderr, "\r\033[2K");
        const std::string when =
            r.resumed ? "(done earlier)"
                      : ProgressBar::format_duration(r.seconds) +
                            (r.continued > 0 ? " (continued after " + std::to_string(r.continued) +
                                                   " networks of an earlier run)"
                                             : "");
        std::printf("%s %4d/%d  %-56s %3d/%d learned  %s\n", group_id(r.cell->index).c_str(),
                    r.cell->index + 1, width, cell_label(s, *r.cell).c_str(), r.learned, r.trained,
                    when.c_str());
        std::fflush(stdout);
    };
    SweepOutcome out = run_sweep(s, *backend, ro);
    if (out.already_complete) {
        std::printf("%s already holds the results of this sweep (%d groups); nothing to do\n",
                    s.output.c_str(), out.cells);
    } else if (!out.merged) {
        std::printf(
            "shard %d/%d: %d groups (%d from an earlier run), %d networks, %d learned, %s "
            "backend, %s -> %s (merge with --merge when every shard is done)\n",
            shard.index, shard.count, out.cells, out.resumed, out.networks, out.learned,
            backend->name().c_str(), ProgressBar::format_duration(out.seconds).c_str(),
            parts_dir(s.output).c_str());
    } else {
        std::printf(
            "%d groups (%d from an earlier run), %d networks, %d learned (accuracy >= %.1f), "
            "%s backend%s%s, %s -> %s\n",
            out.cells, out.resumed, out.networks, out.learned, kLearnedAccuracy,
            backend->name().c_str(), solver ? ", eigenvalues by " : "",
            solver ? solver->name().c_str() : "", ProgressBar::format_duration(out.seconds).c_str(),
            s.output.c_str());
    }
    std::fflush(stdout);
    // A shard leaves parts only: the fixed points come with the merge (--merge --dynamics).
    if (o.dynamics && (out.merged || out.already_complete))
        run_dynamics_on(s.output, o.dyn, sweep_backend(s), s.eig_method, s.threads);
    return out;
}

}  // namespace eirnn::cli
