// `eirnn sweep CONFIG.toml`: expands a sweep file (docs/SWEEP.md) into cells, trains one group per
// cell and writes one results file; resumable after an interruption. --dry-run prints the plan.
// Beyond one process (docs/CLUSTER.md): --shard I/N trains one shard's cells, --merge joins the
// shards' parts, --status reports progress, --slurm / --slurm-submit write Slurm job scripts,
// --devices runs one worker process per GPU.
#include <memory>
#include <sstream>

#include "host/cli/commands.hpp"
#include "host/cli/sweep_cli.hpp"
#include "host/core/error.hpp"

namespace eirnn::cli {

namespace {

struct SweepArgs {
    std::string file, out, shard, devices;
    int shards = 0;
    bool merge = false, status = false, slurm = false, slurm_submit = false;
    SweepCliOptions opt;
};

std::vector<int> parse_devices(const std::string& text) {
    std::vector<int> out;
    if (text == "all") {
        for (int d = 0; d < cuda_device_count(); ++d) out.push_back(d);
        return out;
    }
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ',')) {
        if (item.empty() || item.size() > 4 ||
            item.find_first_not_of("0123456789") != std::string::npos)
            throw InputError(
                "--devices: expected a list of device numbers like 0,1,2,3 or 'all', got '" + text +
                "'");
        const int d = std::stoi(item);
        for (int e : out)
            if (e == d) throw InputError("--devices: device " + item + " given twice");
        out.push_back(d);
    }
    if (out.empty()) throw InputError("--devices: no device given");
    return out;
}

/// The options a worker or a job script repeats.
std::vector<std::string> forwarded(const SweepArgs& a) {
    std::vector<std::string> f;
    if (!a.out.empty()) f.insert(f.end(), {"--out", a.out});
    if (!a.opt.backend.empty()) f.insert(f.end(), {"--backend", a.opt.backend});
    if (!a.opt.eig_method.empty()) f.insert(f.end(), {"--eig-method", a.opt.eig_method});
    if (a.opt.threads >= 0) f.insert(f.end(), {"--threads", std::to_string(a.opt.threads)});
    if (a.opt.force) f.push_back("--force");
    return f;
}

void run(SweepArgs& a) {
    const int modes = a.opt.dry_run + a.merge + a.status + a.slurm + a.slurm_submit;
    if (modes > 1)
        throw InputError(
            "--dry-run, --merge, --status, --slurm and --slurm-submit exclude each other");
    if (a.shards < 0) throw InputError("--shards: must be >= 1");
    Shard shard;
    if (!a.shard.empty()) {
        shard = parse_shard(a.shard, "--shard");
        if (a.merge || a.slurm || a.slurm_submit || !a.devices.empty())
            throw InputError("--shard: not with --merge, --slurm, --slurm-submit or --devices");
        if (a.shards > 0 && a.shards != shard.count)
            throw InputError("--shards: " + std::to_string(a.shards) + " does not match --shard " +
                             a.shard);
    }
    // The fixed points are found in the merged results file: by --merge, by the process that
    // runs the --devices workers, or by an unsharded run; never by a shard or a job array task.
    if (a.opt.dynamics && shard.count > 1)
        throw InputError(
            "--dynamics: not with --shard (a shard writes no results file); give it to --merge");
    if (a.opt.dynamics && (a.slurm || a.slurm_submit))
        throw InputError(
            "--dynamics: not with --slurm or --slurm-submit (the merge job has one CPU and a "
            "short time limit); after the merge run eirnn sweep CONFIG --merge --dynamics or "
            "eirnn dynamics on the results file");
    Sweep s = load_sweep(a.file);
    if (!a.out.empty()) s.output = a.out;
    a.opt.apply(s);
    SweepCommand cmd{a.file, forwarded(a)};
    if (a.opt.dry_run) {
        if (a.shard.empty() && a.shards > 1) shard = Shard{0, a.shards};
        print_plan(s, a.opt, shard);
    } else if (a.status) {
        print_status(s, a.opt, a.shards > 0 ? a.shards : shard.count > 1 ? shard.count : 0);
    } else if (a.merge) {
        merge_cli(s, a.opt);
    } else if (a.slurm || a.slurm_submit) {
        if (!a.devices.empty()) throw InputError("--devices: not with --slurm (one GPU per task)");
        if (a.opt.restart)
            throw InputError(
                "--restart: not with --slurm (a requeued task would discard its "
                "finished cells); remove " +
                parts_dir(s.output).string() + " to start over");
        slurm_cli(s, a.opt, cmd, a.shards, a.slurm_submit);
    } else if (!a.devices.empty()) {
        run_devices_cli(s, a.opt, cmd, parse_devices(a.devices));
    } else if (shard.count == 1 && !s.cells.empty() &&
               s.cells.front().cfg.backend == BackendKind::Cuda && cuda_device_count() > 1) {
        // Every visible GPU, one worker process each.
        run_devices_cli(s, a.opt, cmd, parse_devices("all"));
    } else {
        run_sweep_cli(s, a.opt, shard);
    }
}

}  // namespace

void add_sweep_command(CLI::App& app) {
    auto args = std::make_shared<SweepArgs>();
    CLI::App* sub = app.add_subcommand(
        "sweep",
        "Train every cell of a sweep file (TOML: fixed settings and axes, one grid or several, "
        "docs/SWEEP.md) as "
        "one group of a results file. Rerun the same command to resume after an interruption. "
        "Split over processes, GPUs and Slurm nodes: docs/CLUSTER.md.");
    sub->add_option("config", args->file, "sweep file (TOML)")->required();
    sub->add_option("--out,-o", args->out, "results file (default: the sweep file's `output`)");
    args->opt.add(sub);
    sub->add_option("--shard", args->shard,
                    "I/N: train only shard I of N (cells balanced by estimated cost) into "
                    "<output>.parts; with --dry-run: show that shard and every shard's estimate");
    sub->add_option(
        "--shards", args->shards,
        "N shards for --slurm, --slurm-submit, --status and --dry-run (default: [slurm] "
        "shards; --status: the count the shards recorded)");
    sub->add_flag("--merge", args->merge,
                  "merge every shard's parts into the output (when all cells are done); with "
                  "--dynamics, then the fixed points of every network");
    sub->add_flag("--status", args->status,
                  "cells done / running / missing per shard, networks learned, time left");
    sub->add_flag("--slurm", args->slurm,
                  "print a Slurm job array script (one task per shard; see --slurm-submit)");
    sub->add_flag("--slurm-submit", args->slurm_submit,
                  "write the job array and merge scripts to <output>.slurm/ and submit both with "
                  "sbatch (the merge after the array succeeded)");
    sub->add_option("--devices", args->devices,
                    "0,1,2,3 or all: one worker process per CUDA device, then the merge (default "
                    "with backend cuda: every visible device)");
    sub->callback([args] { run(*args); });
}

}  // namespace eirnn::cli
