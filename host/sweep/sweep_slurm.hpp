// Slurm job scripts of a sharded sweep (docs/CLUSTER.md): a job array with one task per shard, each
// running `eirnn sweep CONFIG --shard $SLURM_ARRAY_TASK_ID/N` (resumable, so a requeued task
// continues from its finished cells), and a merge job meant to run after the array
// (--dependency=afterok). Time limits come from the cost model (cell_flop_max) at a given rate.
#pragma once
#include <string>
#include <vector>

#include "host/sweep/sweep.hpp"

namespace eirnn {

/// The cells and estimated training FLOPs of one shard.
struct ShardPlan {
    std::vector<int> cells;  // cell indices, ascending
    double flop = 0;         // first rounds (cell_flop)
    double flop_max = 0;     // most networks (cell_flop_max)
};
/// Every shard's plan for `count` shards (assign_shards).
std::vector<ShardPlan> shard_plans(const Sweep& s, int count);
/// max over shards of flop / mean of flop: 1 is perfect balance.
double shard_imbalance(const std::vector<ShardPlan>& plans);

/// What the scripts run.
struct SlurmJob {
    int shards = 1;
    std::string eirnn;              // absolute path of the eirnn binary
    std::string config;             // absolute path of the sweep file
    std::string workdir;            // absolute; relative paths of the sweep resolve from here
    std::string log_dir;            // absolute; one log per array task, one for the merge
    std::vector<std::string> args;  // options forwarded to every eirnn command (--out, ...)
    double rate = 0;                // training FLOP/s assumed for the time limit (> 0)
    std::string rate_how;           // where the rate comes from, for the script's comments
    bool gpu = false;               // --gres=gpu:1 (backend cuda)
};

/// The time limit of an array task in minutes: time_factor x the costliest shard's flop_max at
/// job.rate, at least min_minutes.
long long slurm_time_minutes(const Sweep& s, const SlurmJob& job);
/// "D-HH:MM:00" for Slurm's --time.
std::string slurm_time(long long minutes);

/// The job array script (bash with #SBATCH lines).
std::string slurm_array_script(const Sweep& s, const SlurmJob& job);
/// The merge job's script (submit it with --dependency=afterok:<array job id>).
std::string slurm_merge_script(const Sweep& s, const SlurmJob& job);

/// A word quoted for bash ('...', with ' written as '\'').
std::string shell_quote(const std::string& word);

}  // namespace eirnn
