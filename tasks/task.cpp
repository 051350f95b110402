// Trial generators of docs/MODEL.md §4: and/or/xor/not with a variable delay, flip-flop, perceptual
// and context-dependent decisions. Trial r is a pure function of (params, data seed, r): its draws
// come from Philox counter (r << 32 | field) of stream kTrials, its input noise from counter (r <<
// 32 | t*I + i) of stream kStimNoise, so trials can be generated in any order or in parallel.
// Uniform draws are exact integer arithmetic; Gaussian draws go through the host libm once.
#include "tasks/task.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <utility>

#include "host/core/error.hpp"
#include "kernels/rng.hpp"

namespace eirnn {
namespace {

// Bounds every trial length so that step and counter arithmetic cannot overflow.
constexpr std::int64_t kMaxSteps = std::int64_t{1} << 24;
constexpr std::int64_t kMaxTrialIndex = std::int64_t{1} << 32;

// Fields of counter (r << 32 | field) in stream kTrials.
constexpr std::uint64_t kFieldType = 0;
constexpr std::uint64_t kFieldDelay = 1;
constexpr std::uint64_t kFieldSign0 = 2;
constexpr std::uint64_t kFieldSign1 = 3;
constexpr std::uint64_t kFieldContext = 4;
constexpr std::uint64_t kFieldPulse = 16;                         // + pulse j (flip-flop)
constexpr std::uint64_t kFieldEvidence = std::uint64_t{1} << 31;  // + t*I + i (decision evidence)

constexpr std::array<std::pair<std::string_view, TaskKind>, 7> kNames = {{
    {"and", TaskKind::And},
    {"or", TaskKind::Or},
    {"xor", TaskKind::Xor},
    {"not", TaskKind::Not},
    {"ff", TaskKind::FlipFlop},
    {"perceptual_dm", TaskKind::PerceptualDm},
    {"context_dm", TaskKind::ContextDm},
}};

std::uint64_t counter(std::uint64_t trial, std::uint64_t field) {
    return (trial << 32) | field;
}

[[noreturn]] void fail(const std::string& what) {
    throw InputError("task: " + what);
}

void require_positive(int v, const char* name) {
    if (v <= 0) fail(std::string(name) + " must be > 0 (got " + std::to_string(v) + ")");
}

void require_non_negative(int v, const char* name) {
    if (v < 0) fail(std::string(name) + " must be >= 0 (got " + std::to_string(v) + ")");
}

void require_noise(float v, const char* name) {
    if (!std::isfinite(v) || v < 0.0f) {
        fail(std::string(name) + " must be finite and >= 0 (got " + std::to_string(v) + ")");
    }
}

void require_steps(std::int64_t T) {
    if (T > kMaxSteps) {
        fail("trial length " + std::to_string(T) + " exceeds " + std::to_string(kMaxSteps) +
             " steps");
    }
}

bool is_binary_logic(TaskKind kind) {
    return kind == TaskKind::And || kind == TaskKind::Or || kind == TaskKind::Xor ||
           kind == TaskKind::Not;
}

std::int64_t binary_steps(const TaskParams& p) {
    return std::int64_t{p.first_in} + p.stim_dur + p.mem_gap + p.var_delay + p.out_gap;
}

std::int64_t dm_steps(const TaskParams& p) {
    return std::int64_t{p.dm_fixation} + p.dm_stim + p.dm_delay + p.dm_response;
}

Philox trial_rng(std::uint64_t seed) {
    return Philox{seed, static_cast<std::uint64_t>(RngStream::kTrials)};
}

int draw_below(const Philox& rng, std::uint64_t r, std::uint64_t field, int n) {
    return static_cast<int>(rng.below(counter(r, field), static_cast<std::uint64_t>(n)));
}

// x (T,I), y (T,O) zero on entry.
TrialInfo fill_binary(const TaskParams& p, std::uint64_t seed, std::uint64_t r, float* x,
                      float* y) {
    const Philox rng = trial_rng(seed);
    const bool one_input = p.kind == TaskKind::Not;
    const int k = draw_below(rng, r, kFieldType, one_input ? 2 : 4);
    const int d = 1 + draw_below(rng, r, kFieldDelay, p.var_delay);
    const int a = k % 2;
    const int b = k / 2;
    int target = 0;
    switch (p.kind) {
        case TaskKind::And:
            target = a & b;
            break;
        case TaskKind::Or:
            target = a | b;
            break;
        case TaskKind::Xor:
            target = a ^ b;
            break;
        default:
            target = 1 - a;
            break;
    }
    const int I = one_input ? 1 : 2;
    const int T = task_steps(p);
    for (int t = p.first_in + d; t < p.first_in + p.stim_dur + d; ++t) {
        x[t * I] = static_cast<float>(a);
        if (!one_input) x[t * I + 1] = static_cast<float>(b);
    }
    for (int t = p.first_in + p.stim_dur + p.mem_gap + d; t < T; ++t) {
        y[t] = static_cast<float>(target);
    }
    return {k, d};
}

// x (T,2), y (T,1) zero on entry.
TrialInfo fill_flip_flop(const TaskParams& p, std::uint64_t seed, std::uint64_t r, float* x,
                         float* y) {
    const Philox rng = trial_rng(seed);
    const int T = p.ff_length;
    int type = 0;
    for (int j = 0; j < p.ff_pulses; ++j) {
        const bool set = draw_below(rng, r, kFieldPulse + static_cast<std::uint64_t>(j), 2) == 1;
        if (set && j < 31) type |= 1 << j;
        const int start = p.ff_first + j * p.ff_spacing;
        for (int t = start; t < start + p.ff_pulse; ++t) x[t * 2 + (set ? 0 : 1)] = 1.0f;
        // The state set by pulse j holds until pulse j+1 takes over, ff_spacing steps later.
        const int next = j + 1 < p.ff_pulses ? start + p.ff_spacing + p.ff_lag : T;
        for (int t = start + p.ff_lag; t < std::min(next, T); ++t) y[t] = set ? 1.0f : 0.0f;
    }
    return {type, 0};
}

// x (T,I), y (T,1) zero on entry. I = 1 (perceptual_dm) or 4 (context_dm).
TrialInfo fill_decision(const TaskParams& p, std::uint64_t seed, std::uint64_t r, float* x,
                        float* y) {
    const Philox rng = trial_rng(seed);
    const bool context = p.kind == TaskKind::ContextDm;
    const int I = context ? 4 : 1;
    const int T = task_steps(p);
    const int channels = context ? 2 : 1;
    std::array<int, 2> sign = {draw_below(rng, r, kFieldSign0, 2),
                               context ? draw_below(rng, r, kFieldSign1, 2) : 0};
    const int cue = context ? draw_below(rng, r, kFieldContext, 2) : 0;
    const double coherence = p.dm_coherence;
    const double noise = p.dm_noise;
    for (int t = p.dm_fixation; t < p.dm_fixation + p.dm_stim; ++t) {
        for (int c = 0; c < channels; ++c) {
            const std::uint64_t i = static_cast<std::uint64_t>(t) * I + c;
            double v = sign[c] == 1 ? coherence : -coherence;
            if (noise > 0.0) v += noise * rng.normal(counter(r, kFieldEvidence + i));
            x[i] = static_cast<float>(v);
        }
    }
    if (context) {
        for (int t = 0; t < T; ++t) x[t * I + 2 + cue] = 1.0f;
    }
    const float target = static_cast<float>(sign[cue]);
    for (int t = T - p.dm_response; t < T; ++t) y[t] = target;
    return {context ? sign[0] + 2 * sign[1] + 4 * cue : sign[0], 0};
}

// Writes every element of x (T,I), y (T,O), mask (T,O); p must be valid.
TrialInfo fill_trial(const TaskParams& p, std::uint64_t seed, std::uint64_t r, float* x, float* y,
                     float* mask) {
    const int T = task_steps(p);
    const int I = task_inputs(p);
    const int O = task_outputs(p);
    std::fill(x, x + std::size_t(T) * I, 0.0f);
    std::fill(y, y + std::size_t(T) * O, 0.0f);
    // Mask 1 everywhere for every task, the study's choice: the decision tasks also train the
    // network to hold 0 through fixation, stimulus and delay, as the logic tasks do before the cue.
    std::fill(mask, mask + std::size_t(T) * O, 1.0f);
    TrialInfo info;
    if (is_binary_logic(p.kind)) {
        info = fill_binary(p, seed, r, x, y);
    } else if (p.kind == TaskKind::FlipFlop) {
        info = fill_flip_flop(p, seed, r, x, y);
    } else {
        info = fill_decision(p, seed, r, x, y);
    }
    if (p.stim_noise > 0.0f) {
        const Philox noise{seed, static_cast<std::uint64_t>(RngStream::kStimNoise)};
        const double std_dev = p.stim_noise;
        for (std::uint64_t i = 0; i < std::uint64_t(T) * I; ++i) {
            x[i] = static_cast<float>(double{x[i]} + std_dev * noise.normal(counter(r, i)));
        }
    }
    return info;
}

}  // namespace

int task_inputs(const TaskParams& p) {
    switch (p.kind) {
        case TaskKind::And:
        case TaskKind::Or:
        case TaskKind::Xor:
        case TaskKind::FlipFlop:
            return 2;
        case TaskKind::Not:
        case TaskKind::PerceptualDm:
            return 1;
        case TaskKind::ContextDm:
            return 4;
    }
    fail("unknown task kind");
}

int task_outputs(const TaskParams& p) {
    task_inputs(p);  // rejects an unknown kind
    return 1;
}

int task_steps(const TaskParams& p) {
    switch (p.kind) {
        case TaskKind::And:
        case TaskKind::Or:
        case TaskKind::Xor:
        case TaskKind::Not:
            return static_cast<int>(binary_steps(p));
        case TaskKind::FlipFlop:
            return p.ff_length;
        case TaskKind::PerceptualDm:
        case TaskKind::ContextDm:
            return static_cast<int>(dm_steps(p));
    }
    fail("unknown task kind");
}

void validate(const TaskParams& p) {
    task_inputs(p);
    require_noise(p.stim_noise, "stim_noise");
    if (is_binary_logic(p.kind)) {
        require_non_negative(p.first_in, "first_in");
        require_positive(p.stim_dur, "stim_dur");
        require_non_negative(p.mem_gap, "mem_gap");
        require_positive(p.var_delay, "var_delay");
        require_positive(p.out_gap, "out_gap");
        require_steps(binary_steps(p));
    } else if (p.kind == TaskKind::FlipFlop) {
        require_positive(p.ff_pulse, "ff_pulse");
        require_positive(p.ff_pulses, "ff_pulses");
        require_positive(p.ff_spacing, "ff_spacing");
        require_non_negative(p.ff_first, "ff_first");
        require_positive(p.ff_length, "ff_length");
        require_non_negative(p.ff_lag, "ff_lag");
        require_steps(p.ff_length);
        if (p.ff_pulse > p.ff_spacing) {
            fail("ff_pulse (" + std::to_string(p.ff_pulse) + ") must be <= ff_spacing (" +
                 std::to_string(p.ff_spacing) + ") so that pulses do not overlap");
        }
        // The last pulse and the switch it causes must both lie inside the trial.
        const std::int64_t last =
            std::int64_t{p.ff_first} + std::int64_t{p.ff_pulses - 1} * p.ff_spacing;
        const std::int64_t end = last + std::max(p.ff_pulse, p.ff_lag + 1);
        if (end > p.ff_length) {
            fail(
                "ff pulses do not fit: the last one starts at ff_first + (ff_pulses - 1) * "
                "ff_spacing = " +
                std::to_string(last) + " and needs " + std::to_string(end - last) +
                " steps (max of ff_pulse, ff_lag + 1), beyond "
                "ff_length = " +
                std::to_string(p.ff_length));
        }
    } else {
        require_non_negative(p.dm_fixation, "dm_fixation");
        require_positive(p.dm_stim, "dm_stim");
        require_non_negative(p.dm_delay, "dm_delay");
        require_positive(p.dm_response, "dm_response");
        require_noise(p.dm_coherence, "dm_coherence");
        require_noise(p.dm_noise, "dm_noise");
        require_steps(dm_steps(p));
    }
}

TrialInfo make_trial(const TaskParams& p, std::uint64_t data_seed, std::int64_t index, float* x,
                     float* y, float* mask) {
    validate(p);
    if (index < 0 || index >= kMaxTrialIndex) {
        fail("trial index " + std::to_string(index) + " outside [0, 2^32)");
    }
    return fill_trial(p, data_seed, static_cast<std::uint64_t>(index), x, y, mask);
}

Dataset make_dataset(const TaskParams& p, int n, std::uint64_t data_seed) {
    validate(p);
    if (n < 0) fail("trial count must be >= 0 (got " + std::to_string(n) + ")");
    Dataset d;
    d.n = n;
    d.T = task_steps(p);
    d.I = task_inputs(p);
    d.O = task_outputs(p);
    const std::size_t xs = std::size_t(d.T) * d.I;
    const std::size_t ys = std::size_t(d.T) * d.O;
    d.x.assign(xs * n, 0.0f);
    d.y.assign(ys * n, 0.0f);
    d.mask.assign(ys * n, 0.0f);
    d.type.assign(n, 0);
    d.delay.assign(n, 0);
#pragma omp parallel for schedule(static)
    for (int r = 0; r < n; ++r) {
        const TrialInfo info =
            fill_trial(p, data_seed, static_cast<std::uint64_t>(r), d.x.data() + xs * r,
                       d.y.data() + ys * r, d.mask.data() + ys * r);
        d.type[r] = info.type;
        d.delay[r] = info.delay;
    }
    return d;
}

Dataset slice(const Dataset& d, int first, int count) {
    if (first < 0 || count < 0 || std::int64_t{first} + count > d.n) {
        throw InputError("slice: rows [" + std::to_string(first) + ", " +
                         std::to_string(std::int64_t{first} + count) + ") outside a dataset of " +
                         std::to_string(d.n) + " trials");
    }
    const std::size_t xs = std::size_t(d.T) * d.I;
    const std::size_t ys = std::size_t(d.T) * d.O;
    if (d.x.size() != xs * d.n || d.y.size() != ys * d.n || d.mask.size() != ys * d.n) {
        throw InputError("slice: dataset arrays do not match its shape (n, T, I, O)");
    }
    Dataset out;
    out.n = count;
    out.T = d.T;
    out.I = d.I;
    out.O = d.O;
    out.x.assign(d.x.begin() + xs * first, d.x.begin() + xs * (first + count));
    out.y.assign(d.y.begin() + ys * first, d.y.begin() + ys * (first + count));
    out.mask.assign(d.mask.begin() + ys * first, d.mask.begin() + ys * (first + count));
    // type and delay are optional (a dataset read from a file may lack them).
    if (d.type.size() == std::size_t(d.n)) {
        out.type.assign(d.type.begin() + first, d.type.begin() + first + count);
    }
    if (d.delay.size() == std::size_t(d.n)) {
        out.delay.assign(d.delay.begin() + first, d.delay.begin() + first + count);
    }
    return out;
}

std::optional<TaskKind> parse_task(std::string_view name) {
    for (const auto& [text, kind] : kNames) {
        if (text == name) return kind;
    }
    return std::nullopt;
}

std::string_view task_name(TaskKind kind) {
    for (const auto& [text, k] : kNames) {
        if (k == kind) return text;
    }
    return "unknown";
}

bool task_is_binary(TaskKind kind) {
    // Every task's targets are 0/1 (the decision tasks report the sign as 0/1), so accuracy is
    // defined for all of them; for ff it judges the state held at the end of the trial.
    return parse_task(task_name(kind)).has_value();
}

bool trial_correct(const float* output, const float* target, int T, int O, int window) {
    if (T < 1 || O < 1 || window < 1) {
        throw InputError("trial_correct: T, O and window must be >= 1 (got " + std::to_string(T) +
                         ", " + std::to_string(O) + ", " + std::to_string(window) + ")");
    }
    const int w = std::min(window, T);
    for (int o = 0; o < O; ++o) {
        double sum = 0.0;
        for (int t = T - w; t < T; ++t) sum += output[std::size_t(t) * O + o];
        const double mean = sum / w;
        // Strict, so that an output of exactly 0.5 counts for neither 0 nor 1; NaN fails.
        if (!(std::fabs(mean - target[std::size_t(T - 1) * O + o]) < 0.5)) return false;
    }
    return true;
}

}  // namespace eirnn
