// Trial generators for the cognitive tasks of docs/MODEL.md §4. Pure C++, deterministic from (task
// params, data seed): the same call gives the same trials on every machine and backend. Shapes: x
// (n,T,I) inputs, y (n,T,O) targets, mask (n,T,O) loss weights; row-major.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace eirnn {

enum class TaskKind { And, Or, Xor, Not, FlipFlop, PerceptualDm, ContextDm };

/// Every timing parameter of every task (docs/MODEL.md §4). Units: time steps (1 step = 1 ms of
/// task time).
struct TaskParams {
    TaskKind kind = TaskKind::And;
    // Binary tasks (and, or, xor, not): pulse at [first_in + d, first_in + stim_dur + d),
    // target from first_in + stim_dur + mem_gap + d on, d ~ U{1..var_delay};
    // T = first_in + stim_dur + mem_gap + var_delay + out_gap.
    int first_in = 60;
    int stim_dur = 20;
    int mem_gap = 20;
    int var_delay = 50;
    int out_gap = 140;
    float stim_noise = 0.0f;  // std of Gaussian noise added to every input sample (all tasks)
    // Flip-flop (Jarne & Laje): inputs S and R, ff_pulses pulses of ff_pulse steps, one every
    // ff_spacing steps (first at ff_first), each S or R at random; output switches ff_lag steps
    // after a pulse starts and holds; initial output 0; trial length ff_length.
    int ff_pulse = 20;
    int ff_pulses = 8;
    int ff_spacing = 120;
    int ff_first = 20;
    int ff_length = 1010;
    int ff_lag = 20;
    // Perceptual decision (perceptual_dm): evidence of sign ±1 with mean |dm_coherence| and noise
    // dm_noise on one input for dm_stim steps after dm_fixation; report the sign (as 0/1) after
    // dm_delay steps, for dm_response steps. context_dm: two such channels, a context cue (inputs
    // 3,4) picks which one to report.
    int dm_fixation = 50;
    int dm_stim = 200;
    int dm_delay = 50;
    int dm_response = 100;
    float dm_coherence = 0.1f;
    float dm_noise = 1.0f;
};

/// A set of trials. Trial r occupies x[r*T*I ...], y[r*T*O ...], mask[r*T*O ...].
struct Dataset {
    int n = 0;                // trials
    int T = 0;                // steps per trial
    int I = 0;                // inputs
    int O = 0;                // outputs
    std::vector<float> x;     // (n,T,I)
    std::vector<float> y;     // (n,T,O)
    std::vector<float> mask;  // (n,T,O)
    std::vector<int> type;    // (n) trial type (binary tasks: k in 0..3, A = k % 2, B = k / 2)
    std::vector<int> delay;   // (n) variable delay d (binary tasks), 0 where not used
};

/// Number of inputs / outputs / steps of a task.
int task_inputs(const TaskParams& p);
int task_outputs(const TaskParams& p);
int task_steps(const TaskParams& p);

/// Generates n trials from data_seed. Throws InputError on invalid parameters (naming them).
Dataset make_dataset(const TaskParams& p, int n, std::uint64_t data_seed);

// Trial contents beyond the comments above (docs/MODEL.md §4; mask 1 everywhere for every task).
// Inputs are numbered from 0.
//   not: type k in {0,1}, A = k; one input, target 1 - A from first_in + stim_dur + mem_gap + d on.
//   ff: input 0 = S, input 1 = R; type bit j (j < 31) set when pulse j is S; delay 0.
//   perceptual_dm: type 1 for evidence sign s = +1, 0 for s = -1; input 0 is
//     s * dm_coherence + dm_noise * N(0,1) on [dm_fixation, dm_fixation + dm_stim), else 0;
//     target = type on the last dm_response steps, else 0;
//     T = dm_fixation + dm_stim + dm_delay + dm_response; delay 0.
//   context_dm: inputs 0, 1 = two independent evidence channels as above, inputs 2, 3 = one-hot cue
//     (on for all T steps); type = sign0 + 2 sign1 + 4 c (c = cued channel, sign 1 for +); target =
//     sign of the cued channel on the last dm_response steps; delay 0.
// Trial r depends only on (p, data_seed, r): make_dataset(p, n, s) is a prefix of
// make_dataset(p, m, s) for m > n.

/// Type and variable delay of one generated trial (as in Dataset::type and Dataset::delay).
struct TrialInfo {
    int type = 0;
    int delay = 0;
};

/// Writes trial `index` (0 <= index < 2^32) of the data set of data_seed: x (T,I), y (T,O),
/// mask (T,O), every element. Equals row `index` of make_dataset(p, n, data_seed) for any
/// n > index.
TrialInfo make_trial(const TaskParams& p, std::uint64_t data_seed, std::int64_t index, float* x,
                     float* y, float* mask);

/// Rows [first, first + count) of a dataset, as a new dataset.
Dataset slice(const Dataset& d, int first, int count);

/// Checks every parameter (positive durations, noise >= 0); throws InputError naming the bad one.
void validate(const TaskParams& p);

/// Task names as on the command line: and, or, xor, not, ff, perceptual_dm, context_dm.
std::optional<TaskKind> parse_task(std::string_view name);
std::string_view task_name(TaskKind kind);
/// True for tasks whose accuracy is defined (binary output in {0, 1}).
bool task_is_binary(TaskKind kind);

/// Accuracy of one trial (docs/MODEL.md §4): mean output over the last `window` steps within 0.5 of
/// the target at the last step, for every output. output and target are (T,O) of one trial.
bool trial_correct(const float* output, const float* target, int T, int O, int window = 50);

}  // namespace eirnn
