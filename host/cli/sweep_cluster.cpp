// `eirnn sweep` beyond one process (docs/CLUSTER.md): --status, --merge, --slurm / --slurm-submit
// and --devices. The library owns the shards, the merge, the status and the scripts; this file
// presents them and starts processes (sbatch, the per-device workers).
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "host/cli/commands.hpp"
#include "host/cli/sweep_cli.hpp"
#include "host/core/error.hpp"
#include "host/sweep/sweep_slurm.hpp"
#include "host/train/progress.hpp"

namespace eirnn::cli {

namespace fs = std::filesystem;

namespace {

std::string self_path() {
    std::error_code ec;
    fs::path p = fs::read_symlink("/proc/self/exe", ec);
    if (ec) throw Error("cannot find the path of the eirnn binary (/proc/self/exe)");
    return p.string();
}

/// The rate assumed for time estimates: --rate, else measured on the sweep's backend here.
double rate_for(const Sweep& s, const SweepCliOptions& o, const char* flag, std::string& how) {
    if (o.rate_gflops > 0) {
        how = "given by --rate";
        return o.rate_gflops * 1e9;
    }
    if (sweep_backend(s) == BackendKind::Cuda && !cuda_available())
        throw InputError(std::string(flag) +
                         ": the cuda backend cannot be measured on this machine; give its "
                         "training rate with --rate GFLOPS (eirnn sweep --dry-run on a GPU node "
                         "prints it)");
    auto backend = make_backend(sweep_backend(s), s.threads);
    Calibration cal = calibrate(s, *backend);
    char buf[200];
    std::snprintf(buf, sizeof buf, "measured at generation: %s backend, N=%d, T=%d, B=%d",
                  backend->name().c_str(), cal.units, cal.steps, cal.batch);
    how = buf;
    return cal.flops;
}

/// Runs argv (searched in PATH), returning its stdout; Error with its stderr-free status when it
/// fails.
std::string run_capture(const std::vector<std::string>& argv) {
    std::string cmd;
    for (const std::string& a : argv) cmd += (cmd.empty() ? "" : " ") + shell_quote(a);
    std::fflush(stdout);
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) throw Error("cannot run " + argv.front());
    std::string out;
    char buf[512];
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    const int st = ::pclose(p);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
            throw InputError(argv.front() + ": not found (is this a Slurm login node?)");
        throw Error(cmd + " failed (exit status " +
                    std::to_string(WIFEXITED(st) ? WEXITSTATUS(st) : -1) + ")");
    }
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    return out;
}

void write_file(const fs::path& path, const std::string& text) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << text;
    if (!f) throw InputError("cannot write " + path.string());
}

}  // namespace

void print_status(const Sweep& s, const SweepCliOptions& o, int shards) {
    const SweepStatus st = sweep_status(s, shards);
    std::printf("sweep %s (hash %s): %d cells, output %s\n", s.source.c_str(), s.hash().c_str(),
                st.total.cells, s.output.c_str());
    if (st.complete) {
        std::printf("complete: %s holds every cell (%d networks, %d learned)\n", s.output.c_str(),
                    st.total.networks, st.total.learned);
        return;
    }
    double rate = st.rate;
    std::string how = "measured on the finished cells";
    if (rate <= 0 && o.rate_gflops > 0) {
        rate = o.rate_gflops * 1e9;
        how = "given by --rate";
    }
    std::printf("%-6s %5s %5s %8s %8s %9s %8s %12s\n", "shard", "cells", "done", "running",
                "missing", "networks", "learned", "time left");
    auto row = [&](const std::string& name, const ShardStatus& sh) {
        const std::string left = sh.flop_left <= 0 ? "-"
                                 : rate > 0 ? ProgressBar::format_duration(sh.flop_left / rate)
                                            : "?";
        std::printf("%-6s %5d %5d %8d %8d %9d %8d %12s\n", name.c_str(), sh.cells, sh.done,
                    sh.running, sh.missing, sh.networks, sh.learned, left.c_str());
    };
    double longest = 0;
    for (std::size_t i = 0; i < st.shards.size(); ++i) {
        row(std::to_string(i), st.shards[i]);
        longest = std::max(longest, st.shards[i].flop_left);
    }
    if (st.shards.size() > 1) row("all", st.total);
    for (const std::string& r : st.running_cells) std::printf("running: %s\n", r.c_str());
    if (rate > 0)
        std::printf(
            "rate %.2f GFLOP/s (%s); time left: about %s with the shards in parallel, "
            "%s in one process (first rounds)\n",
            rate / 1e9, how.c_str(), ProgressBar::format_duration(longest / rate).c_str(),
            ProgressBar::format_duration(st.total.flop_left / rate).c_str());
    else
        std::printf("time left: unknown until a cell finishes (or give --rate GFLOPS)\n");
    if (st.total.done == st.total.cells)
        std::printf("every cell is done: merge with eirnn sweep %s --merge\n", s.source.c_str());
}

void merge_cli(const Sweep& s, const SweepCliOptions& o) {
    SweepOutcome out = merge_sweep_parts(s, o.force);
    if (out.already_complete)
        std::printf("%s already holds the results of this sweep (%d groups); nothing to do\n",
                    s.output.c_str(), out.cells);
    else
        std::printf("merged %d groups -> %s\n", out.cells, s.output.c_str());
    std::fflush(stdout);
    if (o.dynamics) run_dynamics_on(s.output, o.dyn, sweep_backend(s), s.eig_method, s.threads);
}

void slurm_cli(const Sweep& s, const SweepCliOptions& o, const SweepCommand& cmd, int shards,
               bool submit) {
    const char* flag = submit ? "--slurm-submit" : "--slurm";
    if (shards <= 0) shards = s.slurm.shards;
    if (shards <= 0)
        throw InputError(std::string(flag) +
                         ": give the number of array tasks with --shards N (or [slurm] shards)");
    SlurmJob job;
    job.shards = shards;
    job.eirnn = self_path();
    // As given: the jobs start in this folder (--chdir), and the results' `sweep` attribute names
    // the file as the unsharded run would.
    job.config = cmd.config;
    job.workdir = fs::current_path().string();
    const fs::path dir = fs::absolute(s.output).lexically_normal().string() + ".slurm";
    job.log_dir = dir.string();
    job.args = cmd.forward;
    job.gpu = sweep_backend(s) == BackendKind::Cuda;
    job.rate = rate_for(s, o, flag, job.rate_how);
    const std::string array = slurm_array_script(s, job);
    const std::string merge = slurm_merge_script(s, job);
    // Slurm does not create the log folder: it must exist when the jobs start.
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw InputError(std::string(flag) + ": cannot create " + dir.string());
    if (!submit) {
        std::fputs(array.c_str(), stdout);
        return;
    }
    const fs::path array_path = dir / "array.sbatch", merge_path = dir / "merge.sbatch";
    write_file(array_path, array);
    write_file(merge_path, merge);
    const std::string array_id = run_capture({"sbatch", "--parsable", array_path.string()});
    const std::string id = array_id.substr(0, array_id.find(';'));
    if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos)
        throw Error("sbatch printed '" + array_id + "', not a job id");
    const std::string merge_id =
        run_capture({"sbatch", "--parsable", "--dependency=afterok:" + id, merge_path.string()});
    std::printf(
        "submitted job array %s (%d tasks, %s) and merge job %s (after the array)\n"
        "scripts and logs: %s\nprogress: eirnn sweep %s --status\n",
        id.c_str(), shards, slurm_time(slurm_time_minutes(s, job)).c_str(),
        merge_id.substr(0, merge_id.find(';')).c_str(), dir.c_str(), cmd.config.c_str());
}

void run_devices_cli(const Sweep& s, const SweepCliOptions& o, const SweepCommand& cmd,
                     const std::vector<int>& devices) {
    if (!cuda_available())
        throw InputError("--devices: needs a usable CUDA device (" + cuda_problem() + ")");
    if (devices.empty()) throw InputError("--devices: no device given");
    const int count = cuda_device_count();
    for (int d : devices)
        if (d < 0 || d >= count)
            throw InputError("--devices: no device " + std::to_string(d) + " (" +
                             std::to_string(count) + " visible)");
    const fs::path parts = parts_dir(s.output);
    std::error_code ec;
    if (!s.output.parent_path().empty()) fs::create_directories(s.output.parent_path(), ec);
    fs::create_directories(parts, ec);
    if (ec) throw InputError("output: cannot create " + parts.string());
    const std::string self = self_path();
    const int D = static_cast<int>(devices.size());
    std::vector<pid_t> pids(devices.size(), -1);
    std::fflush(stdout);
    std::fflush(stderr);
    for (int i = 0; i < D; ++i) {
        const fs::path log = parts / ("worker-" + std::to_string(i) + ".log");
        std::vector<std::string> argv = {self, "sweep", cmd.config};
        argv.insert(argv.end(), cmd.forward.begin(), cmd.forward.end());
        // Each worker discards its own cells only; never written into job scripts, where a requeued
        // task would discard its progress.
        if (o.restart) argv.push_back("--restart");
        for (const char* a : {"--backend", "cuda", "--quiet", "--shard"}) argv.push_back(a);
        argv.push_back(std::to_string(i) + "/" + std::to_string(D));
        const pid_t pid = fork();
        if (pid < 0) throw Error("cannot start a worker process");
        if (pid == 0) {
            ::setenv("CUDA_VISIBLE_DEVICES", std::to_string(devices[i]).c_str(), 1);
            FILE* f = std::freopen(log.c_str(), "a", stdout);
            if (f) ::dup2(STDOUT_FILENO, STDERR_FILENO);
            std::vector<char*> args;
            for (std::string& a : argv) args.push_back(a.data());
            args.push_back(nullptr);
            ::execv(self.c_str(), args.data());
            _exit(127);
        }
        pids[i] = pid;
        std::printf("worker %d: device %d, shard %d/%d, log %s\n", i, devices[i], i, D,
                    log.c_str());
    }
    std::fflush(stdout);
    std::string failed;
    for (int i = 0; i < D; ++i) {
        int st = 0;
        while (waitpid(pids[i], &st, 0) < 0)
            if (errno != EINTR) break;
        const bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
        std::printf("worker %d (device %d): %s\n", i, devices[i],
                    ok              ? "done"
                    : WIFEXITED(st) ? ("exit status " + std::to_string(WEXITSTATUS(st))).c_str()
                                    : "killed");
        if (!ok) failed += (failed.empty() ? "" : ", ") + std::to_string(i);
    }
    std::fflush(stdout);
    if (!failed.empty())
        throw Error("worker(s) " + failed + " failed (logs in " + parts.string() +
                    "); rerun the same command to resume");
    merge_cli(s, o);
}

}  // namespace eirnn::cli
