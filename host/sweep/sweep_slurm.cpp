// Slurm job scripts of a sharded sweep (host/sweep/sweep_slurm.hpp, docs/CLUSTER.md).
#include "host/sweep/sweep_slurm.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "host/core/error.hpp"
#include "host/io/results.hpp"
#include "host/train/progress.hpp"

namespace eirnn {

namespace {

/// A job name Slurm and a file system accept: letters, digits, '-', '_', '.' of the sweep file's
/// stem.
std::string job_name(const Sweep& s) {
    std::string stem = std::filesystem::path(s.source).stem().string();
    for (char& c : stem)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
            c = '_';
    return "eirnn-" + (stem.empty() ? std::string("sweep") : stem);
}

/// The #SBATCH lines of the [slurm] table shared by both jobs.
void site_lines(const SlurmSettings& st, std::string& out) {
    auto add = [&](const char* opt, const std::string& v) {
        if (!v.empty()) out += std::string("#SBATCH --") + opt + "=" + v + "\n";
    };
    add("partition", st.partition);
    add("account", st.account);
    add("qos", st.qos);
    add("constraint", st.constraint);
    add("mem", st.mem);
    if (st.cpus_per_task > 0) add("cpus-per-task", std::to_string(st.cpus_per_task));
    for (const std::string& e : st.extra) out += "#SBATCH " + e + "\n";
}

std::string command(const SlurmJob& job, const std::string& tail) {
    // Appended piece by piece: GCC 12 warns (-Wrestrict, a false positive) on the chained form.
    std::string c = "exec ";
    c.append(shell_quote(job.eirnn)).append(" sweep ").append(shell_quote(job.config));
    for (const std::string& a : job.args) c.append(" ").append(shell_quote(a));
    return c.append(tail).append("\n");
}

std::string setup_lines(const SlurmSettings& st) {
    std::string out = "set -euo pipefail\n";
    for (const std::string& l : st.setup) out += l + "\n";
    return out;
}

}  // namespace

std::string shell_quote(const std::string& word) {
    if (!word.empty() &&
        word.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                               "0123456789_-./=:,+@%") == std::string::npos)
        return word;
    std::string q = "'";
    for (char c : word) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

std::vector<ShardPlan> shard_plans(const Sweep& s, int count) {
    const std::vector<int> shard = assign_shards(s, count);
    std::vector<ShardPlan> plans(static_cast<std::size_t>(count));
    for (const SweepCell& c : s.cells) {
        ShardPlan& p = plans[static_cast<std::size_t>(shard[c.index])];
        p.cells.push_back(c.index);
        p.flop += cell_flop(s, c);
        p.flop_max += cell_flop_max(s, c);
    }
    return plans;
}

double shard_imbalance(const std::vector<ShardPlan>& plans) {
    double most = 0, sum = 0;
    for (const ShardPlan& p : plans) {
        most = std::max(most, p.flop);
        sum += p.flop;
    }
    return sum > 0 ? most / (sum / static_cast<double>(plans.size())) : 1.0;
}

long long slurm_time_minutes(const Sweep& s, const SlurmJob& job) {
    if (!(job.rate > 0)) throw InputError("--rate: the time limit needs a training rate > 0");
    double most = 0;
    for (const ShardPlan& p : shard_plans(s, job.shards)) most = std::max(most, p.flop_max);
    const double minutes = s.slurm.time_factor * most / job.rate / 60.0;
    return std::max<long long>(s.slurm.min_minutes, static_cast<long long>(std::ceil(minutes)));
}

std::string slurm_time(long long minutes) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%lld-%02lld:%02lld:00", minutes / (24 * 60), minutes / 60 % 24,
                  minutes % 60);
    return buf;
}

std::string slurm_array_script(const Sweep& s, const SlurmJob& job) {
    const std::vector<ShardPlan> plans = shard_plans(s, job.shards);
    const long long minutes = slurm_time_minutes(s, job);
    const bool rounds = s.until_learned > 0;
    std::string out = "#!/bin/bash\n";
    out += "# eirnn sweep " + s.source + " (hash " + s.hash() +
           "): " + std::to_string(s.cells.size()) + " cells in " + std::to_string(job.shards) +
           " shards, one array task per shard.\n";
    out += "# Submit, then merge when every task has succeeded:\n";
    out += "#   jid=$(sbatch --parsable THIS_SCRIPT)\n";
    out +=
        "#   sbatch --dependency=afterok:$jid MERGE_SCRIPT   (eirnn sweep ... --slurm-submit "
        "does both)\n";
    char buf[256];
    std::snprintf(buf, sizeof buf, "# Estimated training time per shard at %.1f GFLOP/s (%s)%s:\n",
                  job.rate / 1e9, job.rate_how.c_str(),
                  rounds ? ", first round .. most networks" : "");
    out += buf;
    for (std::size_t i = 0; i < plans.size(); ++i) {
        std::string t = ProgressBar::format_duration(plans[i].flop / job.rate);
        if (rounds) t += " .. " + ProgressBar::format_duration(plans[i].flop_max / job.rate);
        std::snprintf(buf, sizeof buf, "#   shard %3zu: %3zu cells, %s\n", i, plans[i].cells.size(),
                      t.c_str());
        out += buf;
    }
    std::snprintf(buf, sizeof buf,
                  "# Time limit: %.2f x the longest estimate, at least %d minutes. A requeued or "
                  "resubmitted task\n# resumes from its finished cells.\n",
                  s.slurm.time_factor, s.slurm.min_minutes);
    out += buf;
    out += "#SBATCH --job-name=" + job_name(s) + "\n";
    out += "#SBATCH --array=0-" + std::to_string(job.shards - 1) + "\n";
    out += "#SBATCH --ntasks=1\n";
    out += "#SBATCH --time=" + slurm_time(minutes) + "\n";
    out += "#SBATCH --requeue\n";
    out += "#SBATCH --open-mode=append\n";
    out += "#SBATCH --output=" + job.log_dir + "/%x-%A_%a.out\n";
    out += "#SBATCH --chdir=" + job.workdir + "\n";
    if (job.gpu) out += "#SBATCH --gres=gpu:1\n";
    site_lines(s.slurm, out);
    out += setup_lines(s.slurm);
    out += command(
        job, " --shard \"${SLURM_ARRAY_TASK_ID}/" + std::to_string(job.shards) + "\" --quiet");
    return out;
}

std::string slurm_merge_script(const Sweep& s, const SlurmJob& job) {
    std::string out = "#!/bin/bash\n";
    out += "# eirnn sweep " + s.source + " (hash " + s.hash() +
           "): merges the parts of every shard into " + s.output.string() +
           ".\n# Submit with --dependency=afterok:<job id of the array>.\n";
    out += "#SBATCH --job-name=" + job_name(s) + "-merge\n";
    out += "#SBATCH --ntasks=1\n";
    out += "#SBATCH --time=" + slurm_time(std::max(s.slurm.min_minutes, 30)) + "\n";
    out += "#SBATCH --output=" + job.log_dir + "/%x-%j.out\n";
    out += "#SBATCH --chdir=" + job.workdir + "\n";
    SlurmSettings st = s.slurm;
    st.cpus_per_task = 0;
    site_lines(st, out);
    out += setup_lines(s.slurm);
    out += command(job, " --merge");
    return out;
}

}  // namespace eirnn
