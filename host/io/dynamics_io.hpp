// Fixed points of the networks of a results file (docs/FORMAT.md, `dynamics/`): reading a group's
// trained weights, the input conditions, initial states sampled from each network's trajectories
// on held-out trials, the search (host/analysis/dynamics.hpp) and the ragged storage of the points.
#pragma once
#include <hdf5.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "host/analysis/dynamics.hpp"
#include "host/core/config.hpp"

namespace eirnn {

/// A constant input u held on: a name ("zero", "A=1,B=0", "u=0.5,0") and u (I).
struct InputCondition {
    std::string name;
    std::vector<double> u;
};

/// The conditions of --input values for a task with I inputs: "zero" (u = 0), "task" (the task's
/// own input patterns held on: the four (A,B) of and/or/xor, A = 0/1 of not, zero/S/R of ff,
/// zero/±coherence of perceptual_dm, each cue of context_dm) or I comma-separated numbers.
/// Duplicates by name are dropped. InputError naming --input.
std::vector<InputCondition> input_conditions(const std::vector<std::string>& specs,
                                             const TaskParams& task, int I);

/// What the search needs from one results group.
struct DynamicsGroupData {
    std::string id;  // "g0000"
    GroupConfig cfg;
    int K = 0, N = 0, I = 0;
    std::vector<float> w_rec;            // (K,N,N) trained, effective
    std::vector<float> w_in;             // (K,N,I)
    std::vector<float> b;                // (K,N)
    std::vector<std::uint64_t> seeds;    // (K)
    std::vector<std::uint8_t> diverged;  // (K)
};

/// Reads group `id` of an open results file; InputError naming the group and the dataset.
DynamicsGroupData read_dynamics_group(hid_t file, const std::string& id);

/// Initial states of network k (M,N): states of its trajectories on the first sample_trials
/// held-out trials (h_0 = 0, the task's inputs, no recurrent noise), drawn uniformly with Philox
/// keyed by the network's seed and s.seed, plus N(0, noise^2). Empty when a trajectory is not
/// finite.
std::vector<double> sample_initial_states(const DynamicsGroupData& g, int k,
                                          const DynamicsSettings& s);

/// The result for one group: C conditions x K networks.
struct GroupDynamics {
    std::string id;
    int K = 0, N = 0, I = 0;
    double alpha = 1.0;
    DynamicsSettings settings;
    std::vector<InputCondition> conditions;  // (C)
    std::vector<PointSet> sets;              // (C*K) index c*K + k
    std::vector<std::uint8_t> status;        // (C*K) 0 analysed, 1 diverged, 2 not finite
    std::vector<std::string> notes;          // one line per skipped network
    std::string eig_method;
    std::string search = "cpu";  // where the L-BFGS phase ran (DynamicsSearch::name())
    double seconds = 0;
};

/// Searches every network of a group under every condition of `inputs` (--input values), the
/// L-BFGS phase with `search` (null: the CPU's), the spectra with `solver` (null: LAPACK).
GroupDynamics analyse_group_dynamics(const DynamicsGroupData& g,
                                     const std::vector<std::string>& inputs,
                                     const DynamicsSettings& s, int threads, EigSolver* solver,
                                     DynamicsSearch* search = nullptr);

/// Writes (replacing) the group's `dynamics/` subgroup.
void write_group_dynamics(hid_t group, const GroupDynamics& d);

/// The settings as JSON (stored as the attribute `settings`).
nlohmann::json to_json(const DynamicsSettings& s);

/// Every group of a results file, read and checked (InputError naming the file and the group).
struct DynamicsFile {
    std::filesystem::path path;
    std::vector<DynamicsGroupData> groups;
};
DynamicsFile read_dynamics_file(const std::filesystem::path& path);

/// Analyses every group of a loaded file and writes the results into it atomically (a copy,
/// renamed over the file). Returns the results; notes on skipped networks are in them.
std::vector<GroupDynamics> update_file_dynamics(const DynamicsFile& f,
                                                const std::vector<std::string>& inputs,
                                                const DynamicsSettings& s, int threads,
                                                EigSolver* solver,
                                                DynamicsSearch* search = nullptr);

}  // namespace eirnn
