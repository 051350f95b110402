// Tests of the trial generators (tasks/task.cpp) against the timing of docs/MODEL.md §4, written
// out as literal step numbers where docs/MODEL.md gives them: exact contents of hand-picked trials,
// flip-flop holding, determinism, uniformity of trial types and delays, parameter validation,
// accuracy rule.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "host/core/error.hpp"
#include "tasks/task.hpp"

namespace eirnn {
namespace {

struct Trial {
    std::vector<float> x;  // (T,I)
    std::vector<float> y;  // (T,O)
    std::vector<float> mask;
    TrialInfo info;
};

Trial trial_at(const TaskParams& p, std::uint64_t seed, std::int64_t index) {
    Trial tr;
    const std::size_t T = task_steps(p);
    tr.x.resize(T * task_inputs(p));
    tr.y.resize(T * task_outputs(p));
    tr.mask.resize(T * task_outputs(p));
    tr.info = make_trial(p, seed, index, tr.x.data(), tr.y.data(), tr.mask.data());
    return tr;
}

// The first trial of data seed 7 with the wanted type (and delay, when delay > 0).
Trial find_trial(const TaskParams& p, int type, int delay) {
    for (std::int64_t r = 0; r < 200000; ++r) {
        Trial tr = trial_at(p, 7, r);
        if (tr.info.type == type && (delay == 0 || tr.info.delay == delay)) return tr;
    }
    ADD_FAILURE() << "no trial with type " << type << " and delay " << delay;
    return {};
}

TaskParams with_kind(TaskKind kind) {
    TaskParams p;
    p.kind = kind;
    return p;
}

// Input i equals `value` exactly on [begin, end) and 0 elsewhere.
void expect_pulse(const Trial& tr, int I, int i, float value, int begin, int end) {
    const int T = static_cast<int>(tr.x.size()) / I;
    for (int t = 0; t < T; ++t) {
        const float want = (t >= begin && t < end) ? value : 0.0f;
        ASSERT_EQ(tr.x[t * I + i], want) << "input " << i << " at step " << t;
    }
}

// The (single) target is `value` exactly from `from` on and 0 before.
void expect_target_from(const Trial& tr, float value, int from) {
    for (int t = 0; t < static_cast<int>(tr.y.size()); ++t) {
        ASSERT_EQ(tr.y[t], t >= from ? value : 0.0f) << "target at step " << t;
    }
}

void expect_mask_ones(const Trial& tr) {
    for (float m : tr.mask) ASSERT_EQ(m, 1.0f);
}

void expect_input_error(const TaskParams& p, const std::string& name) {
    try {
        make_dataset(p, 1, 1);
        ADD_FAILURE() << "no error for " << name;
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
}

TEST(TaskShape, InputsOutputsSteps) {
    EXPECT_EQ(task_steps(with_kind(TaskKind::And)), 290);
    EXPECT_EQ(task_inputs(with_kind(TaskKind::Xor)), 2);
    EXPECT_EQ(task_inputs(with_kind(TaskKind::Not)), 1);
    EXPECT_EQ(task_steps(with_kind(TaskKind::Not)), 290);
    EXPECT_EQ(task_inputs(with_kind(TaskKind::FlipFlop)), 2);
    EXPECT_EQ(task_steps(with_kind(TaskKind::FlipFlop)), 1010);
    EXPECT_EQ(task_inputs(with_kind(TaskKind::PerceptualDm)), 1);
    EXPECT_EQ(task_steps(with_kind(TaskKind::PerceptualDm)), 400);
    EXPECT_EQ(task_inputs(with_kind(TaskKind::ContextDm)), 4);
    for (TaskKind k : {TaskKind::And, TaskKind::Or, TaskKind::Xor, TaskKind::Not,
                       TaskKind::FlipFlop, TaskKind::PerceptualDm, TaskKind::ContextDm}) {
        EXPECT_EQ(task_outputs(with_kind(k)), 1);
        const Dataset d = make_dataset(with_kind(k), 3, 1);
        EXPECT_EQ(d.n, 3);
        EXPECT_EQ(d.T, task_steps(with_kind(k)));
        EXPECT_EQ(d.x.size(), std::size_t(3) * d.T * d.I);
        EXPECT_EQ(d.y.size(), std::size_t(3) * d.T * d.O);
        EXPECT_EQ(d.mask.size(), d.y.size());
        EXPECT_EQ(d.type.size(), 3u);
        EXPECT_EQ(d.delay.size(), 3u);
    }
}

TEST(TaskNames, RoundTripAndUnknown) {
    for (TaskKind k : {TaskKind::And, TaskKind::Or, TaskKind::Xor, TaskKind::Not,
                       TaskKind::FlipFlop, TaskKind::PerceptualDm, TaskKind::ContextDm}) {
        EXPECT_EQ(parse_task(task_name(k)), k);
        EXPECT_TRUE(task_is_binary(k));
    }
    EXPECT_EQ(parse_task("and"), TaskKind::And);
    EXPECT_EQ(parse_task("ff"), TaskKind::FlipFlop);
    EXPECT_EQ(task_name(TaskKind::ContextDm), "context_dm");
    EXPECT_FALSE(parse_task("AND").has_value());
    EXPECT_FALSE(parse_task("nand").has_value());
    EXPECT_FALSE(parse_task("").has_value());
}

TEST(TaskBinary, AndType3Delay1) {
    const Trial tr = find_trial(with_kind(TaskKind::And), 3, 1);
    expect_pulse(tr, 2, 0, 1.0f, 61, 81);
    expect_pulse(tr, 2, 1, 1.0f, 61, 81);
    expect_target_from(tr, 1.0f, 101);
    expect_mask_ones(tr);
}

TEST(TaskBinary, AndType1GivesZero) {
    const Trial tr = find_trial(with_kind(TaskKind::And), 1, 17);
    expect_pulse(tr, 2, 0, 1.0f, 77, 97);
    expect_pulse(tr, 2, 1, 0.0f, 0, 0);
    expect_target_from(tr, 0.0f, 0);
}

TEST(TaskBinary, Delay50Edge) {
    const Trial tr = find_trial(with_kind(TaskKind::Or), 2, 50);
    expect_pulse(tr, 2, 0, 0.0f, 0, 0);
    expect_pulse(tr, 2, 1, 1.0f, 110, 130);
    expect_target_from(tr, 1.0f, 150);
    int ones = 0;
    for (float v : tr.y) ones += v == 1.0f;
    EXPECT_EQ(ones, 140);  // out_gap steps of target at the longest delay
}

TEST(TaskBinary, XorTruthTable) {
    const TaskParams p = with_kind(TaskKind::Xor);
    expect_target_from(find_trial(p, 0, 5), 0.0f, 0);
    expect_target_from(find_trial(p, 1, 5), 1.0f, 105);
    expect_target_from(find_trial(p, 2, 5), 1.0f, 105);
    const Trial both = find_trial(p, 3, 5);
    expect_pulse(both, 2, 0, 1.0f, 65, 85);
    expect_pulse(both, 2, 1, 1.0f, 65, 85);
    expect_target_from(both, 0.0f, 0);
}

TEST(TaskBinary, OrType0GivesZero) {
    const Trial tr = find_trial(with_kind(TaskKind::Or), 0, 30);
    expect_pulse(tr, 2, 0, 0.0f, 0, 0);
    expect_pulse(tr, 2, 1, 0.0f, 0, 0);
    expect_target_from(tr, 0.0f, 0);
}

TEST(TaskBinary, NotOneInput) {
    const TaskParams p = with_kind(TaskKind::Not);
    const Trial zero = find_trial(p, 0, 12);
    expect_pulse(zero, 1, 0, 0.0f, 0, 0);
    expect_target_from(zero, 1.0f, 112);
    expect_mask_ones(zero);
    const Trial one = find_trial(p, 1, 12);
    expect_pulse(one, 1, 0, 1.0f, 72, 92);
    expect_target_from(one, 0.0f, 0);
    const Dataset d = make_dataset(p, 500, 3);
    for (int k : d.type) ASSERT_TRUE(k == 0 || k == 1);
}

TEST(TaskBinary, CustomTimingEveryTrial) {
    TaskParams p = with_kind(TaskKind::And);
    p.first_in = 5;
    p.stim_dur = 3;
    p.mem_gap = 2;
    p.var_delay = 4;
    p.out_gap = 6;
    const Dataset d = make_dataset(p, 200, 11);
    ASSERT_EQ(d.T, 20);
    for (int r = 0; r < d.n; ++r) {
        const int k = d.type[r], dl = d.delay[r];
        ASSERT_GE(dl, 1);
        ASSERT_LE(dl, 4);
        for (int t = 0; t < d.T; ++t) {
            const bool on = t >= 5 + dl && t < 8 + dl;
            ASSERT_EQ(d.x[(r * d.T + t) * 2], on ? float(k % 2) : 0.0f);
            ASSERT_EQ(d.x[(r * d.T + t) * 2 + 1], on ? float(k / 2) : 0.0f);
            ASSERT_EQ(d.y[r * d.T + t], t >= 10 + dl ? float(k == 3) : 0.0f);
        }
    }
}

TEST(TaskBinary, TypeAndDelayRoughlyUniform) {
    const Dataset d = make_dataset(with_kind(TaskKind::And), 10000, 2024);
    std::vector<int> types(4, 0), delays(51, 0);
    for (int r = 0; r < d.n; ++r) {
        ASSERT_GE(d.type[r], 0);
        ASSERT_LE(d.type[r], 3);
        ASSERT_GE(d.delay[r], 1);
        ASSERT_LE(d.delay[r], 50);
        ++types[d.type[r]];
        ++delays[d.delay[r]];
    }
    double chi_type = 0.0, chi_delay = 0.0;
    for (int c : types) chi_type += (c - 2500.0) * (c - 2500.0) / 2500.0;
    for (int k = 1; k <= 50; ++k) chi_delay += (delays[k] - 200.0) * (delays[k] - 200.0) / 200.0;
    // 3 and 49 degrees of freedom: these bounds are beyond the 1e-6 tail.
    EXPECT_LT(chi_type, 35.0);
    EXPECT_LT(chi_delay, 125.0);
    EXPECT_GT(chi_delay, 15.0);  // suspiciously perfect counts would mean no randomness
}

TEST(TaskFlipFlop, SmallTrialsExact) {
    TaskParams p = with_kind(TaskKind::FlipFlop);
    p.ff_pulses = 2;
    p.ff_first = 2;
    p.ff_spacing = 5;
    p.ff_pulse = 2;
    p.ff_lag = 1;
    p.ff_length = 14;
    // type bit j = pulse j is S; pulses at [2,4) and [7,9); switches at steps 3 and 8.
    const Trial sr = find_trial(p, 0b01, 0);
    expect_pulse(sr, 2, 0, 1.0f, 2, 4);
    expect_pulse(sr, 2, 1, 1.0f, 7, 9);
    for (int t = 0; t < 14; ++t) EXPECT_EQ(sr.y[t], t >= 3 && t < 8 ? 1.0f : 0.0f) << t;
    expect_mask_ones(sr);
    const Trial ss = find_trial(p, 0b11, 0);
    expect_pulse(ss, 2, 1, 0.0f, 0, 0);
    expect_target_from(ss, 1.0f, 3);
    const Trial rs = find_trial(p, 0b10, 0);
    expect_pulse(rs, 2, 0, 1.0f, 7, 9);
    expect_pulse(rs, 2, 1, 1.0f, 2, 4);
    expect_target_from(rs, 1.0f, 8);
    const Trial rr = find_trial(p, 0b00, 0);
    expect_pulse(rr, 2, 0, 0.0f, 0, 0);
    expect_target_from(rr, 0.0f, 0);
}

// Default parameterisation: replays the inputs through a set/reset latch and compares.
TEST(TaskFlipFlop, HoldsStateBetweenPulses) {
    const TaskParams p = with_kind(TaskKind::FlipFlop);
    const Dataset d = make_dataset(p, 64, 5);
    ASSERT_EQ(d.T, 1010);
    int held_ones = 0;
    for (int r = 0; r < d.n; ++r) {
        const float* x = &d.x[std::size_t(r) * d.T * 2];
        const float* y = &d.y[std::size_t(r) * d.T];
        for (int j = 0; j < 8; ++j) {
            const int start = 20 + 120 * j;
            const bool set = (d.type[r] >> j) & 1;
            for (int t = start; t < start + 20; ++t) {
                ASSERT_EQ(x[t * 2], set ? 1.0f : 0.0f);
                ASSERT_EQ(x[t * 2 + 1], set ? 0.0f : 1.0f);
            }
        }
        float state = 0.0f;
        int pulses_seen = 0;
        for (int t = 0; t < d.T; ++t) {
            const bool onset = t >= 20 && (t - 20) % 120 == 0 && (t - 20) / 120 < 8;
            if (!onset && (x[t * 2] != 0.0f || x[t * 2 + 1] != 0.0f)) {
                ASSERT_TRUE(x[(t - 1) * 2] == x[t * 2] && x[(t - 1) * 2 + 1] == x[t * 2 + 1]);
            }
            if (t >= 20) {
                const int s = t - 20;  // a pulse that started ff_lag = 20 steps ago
                if (s >= 20 && (s - 20) % 120 == 0 && (s - 20) / 120 < 8) {
                    state = x[s * 2] == 1.0f ? 1.0f : 0.0f;
                    ++pulses_seen;
                }
            }
            ASSERT_EQ(y[t], state) << "trial " << r << " step " << t;
            held_ones += state == 1.0f;
        }
        EXPECT_EQ(pulses_seen, 8);
        EXPECT_EQ(d.delay[r], 0);
    }
    EXPECT_GT(held_ones, 0);
}

TEST(TaskDecision, PerceptualNoiselessExact) {
    TaskParams p = with_kind(TaskKind::PerceptualDm);
    p.dm_noise = 0.0f;
    p.dm_coherence = 0.25f;
    for (int sign : {0, 1}) {
        const Trial tr = find_trial(p, sign, 0);
        expect_pulse(tr, 1, 0, sign ? 0.25f : -0.25f, 50, 250);
        expect_target_from(tr, float(sign), 300);
        expect_mask_ones(tr);
    }
}

TEST(TaskDecision, PerceptualEvidenceStatistics) {
    TaskParams p = with_kind(TaskKind::PerceptualDm);
    p.dm_coherence = 0.2f;
    p.dm_noise = 0.5f;
    const Dataset d = make_dataset(p, 400, 9);
    double sum = 0.0, sum_sq = 0.0;
    int count = 0, positive = 0;
    for (int r = 0; r < d.n; ++r) {
        const double s = d.type[r] == 1 ? 1.0 : -1.0;
        positive += d.type[r];
        for (int t = 0; t < d.T; ++t) {
            const float v = d.x[std::size_t(r) * d.T + t];
            if (t < 50 || t >= 250) {
                ASSERT_EQ(v, 0.0f);
                continue;
            }
            sum += s * v;
            sum_sq += v * v;
            ++count;
        }
        ASSERT_EQ(d.y[std::size_t(r) * d.T + d.T - 1], float(d.type[r]));
    }
    const double mean = sum / count;
    const double var = sum_sq / count - mean * mean;
    EXPECT_NEAR(mean, 0.2, 0.01);
    EXPECT_NEAR(std::sqrt(var), 0.5, 0.01);
    EXPECT_GT(positive, 140);
    EXPECT_LT(positive, 260);
}

TEST(TaskDecision, ContextCueSelectsChannel) {
    TaskParams p = with_kind(TaskKind::ContextDm);
    p.dm_noise = 0.0f;
    const Dataset d = make_dataset(p, 400, 13);
    ASSERT_EQ(d.I, 4);
    std::vector<int> types(8, 0);
    for (int r = 0; r < d.n; ++r) {
        const int k = d.type[r];
        ASSERT_GE(k, 0);
        ASSERT_LT(k, 8);
        ++types[k];
        const int cue = k / 4;
        const int sign[2] = {k & 1, (k >> 1) & 1};
        for (int t = 0; t < d.T; ++t) {
            const float* x = &d.x[(std::size_t(r) * d.T + t) * 4];
            const bool stim = t >= 50 && t < 250;
            for (int c = 0; c < 2; ++c) {
                ASSERT_EQ(x[c], stim ? (sign[c] ? 0.1f : -0.1f) : 0.0f);
            }
            ASSERT_EQ(x[2], cue == 0 ? 1.0f : 0.0f);
            ASSERT_EQ(x[3], cue == 1 ? 1.0f : 0.0f);
            ASSERT_EQ(d.y[std::size_t(r) * d.T + t], t >= 300 ? float(sign[cue]) : 0.0f);
        }
    }
    for (int c : types) EXPECT_GT(c, 20);
}

TEST(TaskNoise, StimNoiseAddsGaussianOnly) {
    TaskParams clean = with_kind(TaskKind::Xor);
    TaskParams noisy = clean;
    noisy.stim_noise = 0.1f;
    const Dataset a = make_dataset(clean, 300, 21);
    const Dataset b = make_dataset(noisy, 300, 21);
    EXPECT_EQ(a.type, b.type);
    EXPECT_EQ(a.delay, b.delay);
    EXPECT_EQ(a.y, b.y);
    EXPECT_EQ(a.mask, b.mask);
    double sum = 0.0, sum_sq = 0.0;
    for (std::size_t i = 0; i < a.x.size(); ++i) {
        const double e = double(b.x[i]) - a.x[i];
        sum += e;
        sum_sq += e * e;
    }
    const double n = double(a.x.size());
    EXPECT_NEAR(sum / n, 0.0, 0.002);
    EXPECT_NEAR(std::sqrt(sum_sq / n), 0.1, 0.002);
}

TEST(TaskDeterminism, SameSeedSameTrialsDifferentSeedDiffers) {
    for (TaskKind k : {TaskKind::And, TaskKind::FlipFlop, TaskKind::ContextDm}) {
        TaskParams p = with_kind(k);
        p.stim_noise = 0.1f;
        const Dataset a = make_dataset(p, 40, 77);
        const Dataset b = make_dataset(p, 40, 77);
        const Dataset c = make_dataset(p, 40, 78);
        EXPECT_EQ(a.x, b.x);
        EXPECT_EQ(a.y, b.y);
        EXPECT_EQ(a.mask, b.mask);
        EXPECT_EQ(a.type, b.type);
        EXPECT_EQ(a.delay, b.delay);
        EXPECT_NE(a.x, c.x);
        EXPECT_NE(a.type, c.type);
    }
}

TEST(TaskDeterminism, PrefixSliceAndSingleTrialAgree) {
    TaskParams p = with_kind(TaskKind::Or);
    p.stim_noise = 0.1f;
    const Dataset big = make_dataset(p, 100, 5);
    const Dataset small = make_dataset(p, 30, 5);
    const Dataset head = slice(big, 0, 30);
    EXPECT_EQ(head.n, 30);
    EXPECT_EQ(head.x, small.x);
    EXPECT_EQ(head.y, small.y);
    EXPECT_EQ(head.type, small.type);
    EXPECT_EQ(head.delay, small.delay);
    const Dataset mid = slice(big, 60, 5);
    const std::size_t xs = std::size_t(big.T) * big.I;
    for (int r = 0; r < 5; ++r) {
        const Trial tr = trial_at(p, 5, 60 + r);
        EXPECT_EQ(tr.info.type, mid.type[r]);
        EXPECT_EQ(tr.info.delay, mid.delay[r]);
        EXPECT_TRUE(std::equal(tr.x.begin(), tr.x.end(), mid.x.begin() + xs * r));
        EXPECT_TRUE(std::equal(tr.y.begin(), tr.y.end(), mid.y.begin() + big.T * r));
    }
    EXPECT_EQ(slice(big, 100, 0).n, 0);
    EXPECT_THROW(slice(big, 90, 11), InputError);
    EXPECT_THROW(slice(big, -1, 2), InputError);
    EXPECT_EQ(make_dataset(p, 0, 5).n, 0);
    EXPECT_THROW(make_dataset(p, -1, 5), InputError);
    float buf[290 * 2];
    EXPECT_THROW(make_trial(p, 5, -1, buf, buf, buf), InputError);
}

TEST(TaskValidate, NamesTheBadParameter) {
    EXPECT_NO_THROW(validate(TaskParams{}));
    TaskParams p;
    p.stim_dur = 0;
    expect_input_error(p, "stim_dur");
    p = {};
    p.var_delay = 0;
    expect_input_error(p, "var_delay");
    p = {};
    p.first_in = -1;
    expect_input_error(p, "first_in");
    p = {};
    p.mem_gap = -3;
    expect_input_error(p, "mem_gap");
    p = {};
    p.out_gap = 0;
    expect_input_error(p, "out_gap");
    p = {};
    p.stim_noise = -0.1f;
    expect_input_error(p, "stim_noise");
    p.stim_noise = std::numeric_limits<float>::quiet_NaN();
    expect_input_error(p, "stim_noise");
    p = {};
    p.first_in = 2000000000;
    p.out_gap = 2000000000;
    expect_input_error(p, "trial length");

    p = with_kind(TaskKind::FlipFlop);
    EXPECT_NO_THROW(validate(p));
    p.ff_pulse = 0;
    expect_input_error(p, "ff_pulse");
    p = with_kind(TaskKind::FlipFlop);
    p.ff_pulses = 9;  // 20 + 8 * 120 + 20 = 1000 fits 1010
    EXPECT_NO_THROW(validate(p));
    p.ff_pulses = 10;  // 20 + 9 * 120 + 20 > 1010
    expect_input_error(p, "ff_length");
    p = with_kind(TaskKind::FlipFlop);
    p.ff_pulse = 130;
    expect_input_error(p, "ff_spacing");
    p = with_kind(TaskKind::FlipFlop);
    p.ff_lag = -1;
    expect_input_error(p, "ff_lag");
    p = with_kind(TaskKind::FlipFlop);
    p.ff_first = 149;  // last pulse [989, 1009), its switch at step 1009: the last one
    EXPECT_NO_THROW(validate(p));
    p.ff_first = 150;  // last pulse [990, 1010) fits, its switch at step 1010 does not
    expect_input_error(p, "ff_length");

    p = with_kind(TaskKind::PerceptualDm);
    p.dm_stim = 0;
    expect_input_error(p, "dm_stim");
    p = with_kind(TaskKind::ContextDm);
    p.dm_response = -5;
    expect_input_error(p, "dm_response");
    p = with_kind(TaskKind::ContextDm);
    p.dm_noise = -1.0f;
    expect_input_error(p, "dm_noise");
    p = with_kind(TaskKind::PerceptualDm);
    p.dm_coherence = std::numeric_limits<float>::infinity();
    expect_input_error(p, "dm_coherence");

    // Parameters of other tasks are not checked.
    p = with_kind(TaskKind::PerceptualDm);
    p.stim_dur = 0;
    EXPECT_NO_THROW(validate(p));
    p = {};
    p.kind = static_cast<TaskKind>(99);
    EXPECT_THROW(validate(p), InputError);
}

TEST(TaskAccuracy, TrialCorrectEdgeCases) {
    const int T = 100;
    std::vector<float> target(T, 0.0f), out(T, 0.0f);
    for (int t = 80; t < T; ++t) target[t] = 1.0f;
    EXPECT_FALSE(trial_correct(out.data(), target.data(), T, 1));
    for (int t = 50; t < T; ++t) out[t] = 0.51f;
    EXPECT_TRUE(trial_correct(out.data(), target.data(), T, 1));
    for (int t = 50; t < T; ++t) out[t] = 0.5f;
    EXPECT_FALSE(trial_correct(out.data(), target.data(), T, 1));  // exactly 0.5: neither
    // Only the last `window` steps count, and their mean (not every step).
    for (int t = 0; t < 50; ++t) out[t] = -100.0f;
    for (int t = 50; t < T; ++t) out[t] = t % 2 ? 2.0f : 0.2f;  // mean 1.1
    EXPECT_TRUE(trial_correct(out.data(), target.data(), T, 1));
    EXPECT_FALSE(trial_correct(out.data(), target.data(), T, 1, 100));   // window over all steps
    EXPECT_FALSE(trial_correct(out.data(), target.data(), T, 1, 1000));  // clamped to T
    EXPECT_TRUE(trial_correct(out.data(), target.data(), T, 1, 2));
    EXPECT_FALSE(trial_correct(out.data(), target.data(), T, 1, 1));  // last step alone: 2.0
    out[70] = std::numeric_limits<float>::quiet_NaN();
    EXPECT_FALSE(trial_correct(out.data(), target.data(), T, 1));
    // Target 0: within 0.5 below as well.
    std::vector<float> zero(T, 0.0f), low(T, -0.49f);
    EXPECT_TRUE(trial_correct(low.data(), zero.data(), T, 1));
    // Two outputs: both must be right.
    std::vector<float> t2(2 * T, 0.0f), o2(2 * T, 0.0f);
    for (int t = 0; t < T; ++t) t2[t * 2 + 1] = 1.0f;
    EXPECT_FALSE(trial_correct(o2.data(), t2.data(), T, 2));
    for (int t = 0; t < T; ++t) o2[t * 2 + 1] = 0.9f;
    EXPECT_TRUE(trial_correct(o2.data(), t2.data(), T, 2));
    EXPECT_THROW(trial_correct(o2.data(), t2.data(), T, 2, 0), InputError);
    EXPECT_THROW(trial_correct(o2.data(), t2.data(), 0, 2), InputError);
}

}  // namespace
}  // namespace eirnn
