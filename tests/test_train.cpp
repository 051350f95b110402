// Training tests on the CPU backend: constraints after every update, determinism, learning, and a
// diverging network that leaves the others untouched.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "host/core/backend.hpp"
#include "host/train/trainer.hpp"
#include "tests/test_util.hpp"

namespace eirnn {
namespace {

GroupConfig tiny(DaleMode dale, int K = 6) {
    GroupConfig c;
    c.model.units = 12;
    c.model.e_frac = 0.5;
    c.model.dale = dale;
    c.task.kind = TaskKind::And;
    c.task.first_in = 5;
    c.task.stim_dur = 4;
    c.task.mem_gap = 3;
    c.task.var_delay = 5;
    c.task.out_gap = 8;
    c.train.trials = 160;
    c.train.test_trials = 32;
    c.train.batch = 16;
    c.train.epochs = 2;
    c.train.lr = 0.05;  // large steps so that many entries cross zero
    c.networks = K;
    c.seed = 100;
    c.threads = 2;
    c.spectra = false;
    return c;
}

GroupResult train(const GroupConfig& c, const TrainHooks* hooks = nullptr) {
    auto backend = make_cpu_backend(c.threads);
    return train_group(c, *backend, nullptr, hooks);
}

TEST(TrainConstraints, ProjectKeepsColumnSignsAndMaskZeros) {
    for (int rep = 0; rep < 4; ++rep) {
        GroupConfig c = tiny(DaleMode::Project);
        c.seed = 1000 + rep * 17;
        c.model.p_connect = 0.8;
        c.model.autapses = false;
        c.model.init = rep % 2 ? Init::Normal : Init::Orthogonal;
        // one update per epoch boundary check: train epoch by epoch
        for (int e = 1; e <= 2; ++e) {
            c.train.epochs = e;
            GroupResult r = train(c);
            const int N = c.model.units;
            auto w = r.w_rec_final();
            const auto& g = r.st.params;
            for (int k = 0; k < c.networks; ++k) {
                EXPECT_GT(r.st.updates[k], 0);
                for (int i = 0; i < N; ++i)
                    for (int j = 0; j < N; ++j) {
                        float v = w[(k * N + i) * N + j];
                        EXPECT_GE(g.sign[j] * v, 0.0f) << "k" << k << " " << i << "," << j;
                        if (g.mask[(k * N + i) * N + j] == 0.0f) {
                            EXPECT_EQ(v, 0.0f);
                        }
                    }
                const float* win = g.params.data() + k * g.layout.total + g.layout.w_in;
                for (std::size_t i = 0; i < g.layout.size(1); ++i) EXPECT_GE(win[i], 0.0f);
            }
        }
    }
}

TEST(TrainConstraints, ProjectAfterEveryUpdate) {
    // One update at a time: after each, every column has its unit's sign.
    GroupConfig c = tiny(DaleMode::Project, 3);
    c.train.trials = c.train.batch + c.train.test_trials;  // one batch per epoch
    for (int e = 1; e <= 5; ++e) {
        c.train.epochs = e;
        GroupResult r = train(c);
        auto w = r.w_rec_final();
        const int N = c.model.units;
        int nonzero = 0;
        for (int k = 0; k < c.networks; ++k) {
            ASSERT_EQ(r.st.updates[k], e);
            for (int i = 0; i < N; ++i)
                for (int j = 0; j < N; ++j) {
                    float v = w[(k * N + i) * N + j];
                    EXPECT_GE(r.st.params.sign[j] * v, 0.0f);
                    nonzero += v != 0.0f;
                }
        }
        EXPECT_GT(nonzero, 0);
    }
}

TEST(TrainConstraints, ReparamAlwaysSigned) {
    GroupConfig c = tiny(DaleMode::Reparam);
    GroupResult r = train(c);
    auto w = r.w_rec_final();
    const int N = c.model.units;
    for (int k = 0; k < c.networks; ++k)
        for (int i = 0; i < N; ++i)
            for (int j = 0; j < N; ++j)
                EXPECT_GE(r.st.params.sign[j] * w[(k * N + i) * N + j], 0.0f);
}

TEST(TrainConstraints, IncomingAxisSignsRows) {
    GroupConfig c = tiny(DaleMode::Project);
    c.model.dale_axis = DaleAxis::Incoming;
    GroupResult r = train(c);
    auto w = r.w_rec_final();
    const int N = c.model.units;
    int wrong_for_columns = 0;
    for (int k = 0; k < c.networks; ++k)
        for (int i = 0; i < N; ++i)
            for (int j = 0; j < N; ++j) {
                float v = w[(k * N + i) * N + j];
                EXPECT_GE(r.st.params.sign[i] * v, 0.0f);
                wrong_for_columns += r.st.params.sign[j] * v < 0.0f;
            }
    EXPECT_GT(wrong_for_columns, 0);  // rows, not columns, carry the sign
}

// With recurrent noise, and without (then the kernels keep tanh(a_t) only in the states).
TEST(TrainDeterminism, SameSeedsSameBytesOtherSeedOther) {
    for (double sigma : {0.05, 0.0}) {
        GroupConfig c = tiny(DaleMode::Project, 4);
        c.model.sigma_rec = sigma;
        GroupResult a = train(c);
        c.threads = 1;  // thread count does not change the numbers
        GroupResult b = train(c);
        EXPECT_EQ(a.st.params.params, b.st.params.params) << sigma;
        EXPECT_EQ(std::memcmp(a.st.loss.data(), b.st.loss.data(), a.st.loss.size() * sizeof(float)),
                  0)
            << sigma;
        c.seed += 1;
        GroupResult d = train(c);
        EXPECT_NE(a.st.params.params, d.st.params.params) << sigma;
    }
}

TEST(TrainDivergence, OneDivergingNetworkLeavesOthersIdentical) {
    GroupConfig c = tiny(DaleMode::None, 4);
    c.train.clipnorm = 0;
    GroupResult clean = train(c);
    TrainHooks hooks;
    hooks.lr_scale = {1.0f, 1e30f, 1.0f, 1.0f};
    GroupResult mixed = train(c, &hooks);
    EXPECT_TRUE(mixed.st.diverged[1]);
    const std::size_t P = clean.st.params.layout.total;
    for (int k : {0, 2, 3}) {
        EXPECT_FALSE(mixed.st.diverged[k]);
        for (std::size_t i = 0; i < P; ++i)
            ASSERT_EQ(clean.st.params.params[k * P + i], mixed.st.params.params[k * P + i]) << k;
        EXPECT_EQ(clean.accuracy[k], mixed.accuracy[k]);
    }
    // The diverged network's parameters stay finite (frozen at its last finite update).
    for (std::size_t i = 0; i < P; ++i) ASSERT_TRUE(std::isfinite(mixed.st.params.params[P + i]));
}

TEST(TrainLearning, AndUnconstrainedN50Learns) {
    // AND with the study's timing (T = 290), 2,000 trials, 10 epochs, 16 unconstrained orthogonal
    // networks with gain 1.3, batch 8 and lr 5e-4: at least 11 of 16 must reach >= 0.9 held-out
    // accuracy, none may diverge. Which networks learn depends on the last bit of every sum (a
    // network either leaves the "always 0" plateau, accuracy 0.81, early or stays on it for all
    // 10 epochs), so the test asks for the rate, not for given seeds. Measured over seeds 1-64 with
    // `eirnn train --units 50 --dale none --init orthogonal --gain 1.3 --trials 2000
    // --test-trials 100 --epochs 10 --batch 8 --lr 5e-4`: 54 to 57 of 64 learned with the CPU
    // kernels' different summation orders (p ~ 0.86, so 11 of 16 fails with probability ~3%);
    // lr >= 2e-3, or gain 1 with batch 64, left most networks on the plateau, and a wrong gradient
    // leaves all of them there.
    GroupConfig c = testutil::and_learning_config(16);
    GroupResult r = train(c);
    int learned = 0;
    for (int k = 0; k < c.networks; ++k) {
        learned += r.accuracy[k] >= 0.9f;
        EXPECT_FALSE(r.st.diverged[k]) << "network " << k;
        EXPECT_TRUE(std::isfinite(r.test_loss[k])) << "network " << k;
    }
    EXPECT_GE(learned, 11) << "of " << c.networks << " networks reached 0.9 accuracy";
}

}  // namespace
}  // namespace eirnn
