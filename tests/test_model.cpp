// Model tests: initialisation statistics, Dale projection, and the gradient of every parameter
// tensor against central finite differences in double precision (every Dale mode, alpha < 1 and =
// 1, mask).
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <random>
#include <stdexcept>

#include "host/core/model.hpp"
#include "host/train/network_grad.hpp"
#include "kernels/cpu/blas.hpp"

namespace eirnn {
namespace {

ModelConfig small_model(int N, DaleMode dale, double alpha, bool masked) {
    ModelConfig m;
    m.units = N;
    m.e_frac = 0.6;
    m.dale = dale;
    m.alpha = alpha;
    if (masked) {
        m.p_connect = 0.7;
        m.autapses = false;
    }
    return m;
}

struct GradCase {
    DaleMode dale;
    double alpha;
    bool masked;
    DaleAxis axis;
    double l2_weight, l2_rate;
};

/// Max over entries of |fd - analytic| / max |analytic| for each tensor.
void check_gradients(const GradCase& gc) {
    const int N = 7, I = 2, O = 2, B = 3, T = 6;
    ModelConfig m = small_model(N, gc.dale, gc.alpha, gc.masked);
    m.dale_axis = gc.axis;
    TrainConfig tc;
    tc.l2_weight = gc.l2_weight;
    tc.l2_rate = gc.l2_rate;
    ParamLayout L = ParamLayout::make(N, I, O);
    std::vector<float> sign = make_signs(m);
    std::vector<float> mask = make_mask(m, 11);
    const float* mk = mask.empty() ? nullptr : mask.data();
    std::mt19937_64 gen(7);
    std::normal_distribution<double> nd(0.0, 0.5);
    std::vector<double> p(L.total, 0.0), x(T * B * I), y(T * B * O), lm(T * B * O);
    for (int t = 0; t < ParamLayout::kTensors; ++t)
        for (std::size_t i = 0; i < L.size(t); ++i) p[L.offset(t) + i] = nd(gen);
    for (auto& v : x) v = nd(gen);
    for (auto& v : y) v = nd(gen);
    for (std::size_t i = 0; i < lm.size(); ++i) lm[i] = (i % 5 == 0) ? 0.0 : 1.0;
    if (gc.dale == DaleMode::Project) project_dale(p.data() + L.w_rec, N, sign.data(), gc.axis, mk);

    // Plain steps (alpha = 1, no noise) run in a workspace without th, as the CPU backend's.
    NetworkWorkspace<double> ws;
    ws.resize(L, B, T, tc.l2_rate > 0, gc.alpha != 1.0);
    EXPECT_EQ(ws.th.empty(), gc.alpha == 1.0);
    std::vector<double> grad(L.total), scratch(L.total);
    network_loss_grad(m, tc, L, B, T, p.data(), sign.data(), mk, x.data(), y.data(), lm.data(),
                      static_cast<const double*>(nullptr), ws, grad.data());
    auto loss_at = [&](const std::vector<double>& q) {
        return network_loss_grad(m, tc, L, B, T, q.data(), sign.data(), mk, x.data(), y.data(),
                                 lm.data(), static_cast<const double*>(nullptr), ws, scratch.data())
            .total;
    };
    const char* names[] = {"W_rec", "W_in", "b", "W_out", "b_out"};
    for (int t = 0; t < ParamLayout::kTensors; ++t) {
        double gmax = 0, err = 0;
        for (std::size_t i = 0; i < L.size(t); ++i) {
            std::size_t o = L.offset(t) + i;
            const double h = 1e-6;
            std::vector<double> q = p;
            q[o] = p[o] + h;
            double lp = loss_at(q);
            q[o] = p[o] - h;
            double lmn = loss_at(q);
            double fd = (lp - lmn) / (2 * h);
            // A projected network's zero entries sit on the constraint boundary; the gradient there
            // is still the unconstrained one, which central differences measure.
            err = std::max(err, std::abs(fd - grad[o]));
            gmax = std::max(gmax, std::abs(grad[o]));
        }
        ASSERT_GT(gmax, 0.0) << names[t];
        EXPECT_LE(err / gmax, 1e-6)
            << names[t] << " dale=" << name(gc.dale) << " alpha=" << gc.alpha;
    }
    if (mk) {
        for (int ij = 0; ij < N * N; ++ij) {
            if (mask[ij] == 0.0f) {
                EXPECT_EQ(grad[L.w_rec + ij], 0.0);
            }
        }
    }
}

TEST(Gradients, MatchFiniteDifferences_AllModes) {
    for (DaleMode d : {DaleMode::None, DaleMode::Project, DaleMode::Reparam})
        for (double alpha : {1.0, 0.3})
            for (bool masked : {false, true}) {
                SCOPED_TRACE(std::string(name(d)) + " alpha " + std::to_string(alpha) +
                             (masked ? " masked" : ""));
                check_gradients({d, alpha, masked, DaleAxis::Outgoing, 0.0, 0.0});
            }
}

// Leaky steps need th: a workspace sized without it is refused, not written past its end.
TEST(Gradients, LeakyStepsRefuseAWorkspaceWithoutTh) {
    const int N = 5, I = 2, O = 1, B = 2, T = 3;
    const ModelConfig m = small_model(N, DaleMode::None, 0.3, false);
    const TrainConfig tc;
    const ParamLayout L = ParamLayout::make(N, I, O);
    const std::vector<float> sign = make_signs(m);
    std::vector<double> p(L.total, 0.1), x(T * B * I, 1.0), y(T * B * O, 0.5), lm(y.size(), 1.0),
        grad(L.total);
    NetworkWorkspace<double> ws;
    ws.resize(L, B, T, false, false);
    EXPECT_THROW(
        network_loss_grad(m, tc, L, B, T, p.data(), sign.data(), nullptr, x.data(), y.data(),
                          lm.data(), static_cast<const double*>(nullptr), ws, grad.data()),
        std::logic_error);
    ws.resize(L, B, T, false, true);
    EXPECT_NO_THROW(network_loss_grad(m, tc, L, B, T, p.data(), sign.data(), nullptr, x.data(),
                                      y.data(), lm.data(), static_cast<const double*>(nullptr), ws,
                                      grad.data()));
}

TEST(Gradients, MatchFiniteDifferences_IncomingAxisAndPenalties) {
    check_gradients({DaleMode::Reparam, 0.5, true, DaleAxis::Incoming, 0.0, 0.0});
    check_gradients({DaleMode::Project, 1.0, false, DaleAxis::Outgoing, 1e-3, 0.1});
    check_gradients({DaleMode::None, 0.2, true, DaleAxis::Outgoing, 1e-2, 0.5});
}

TEST(Init, OrthogonalIsOrthogonal) {
    for (int N : {2, 33, 100}) {
        ModelConfig m;
        m.units = N;
        m.init = Init::Orthogonal;
        m.dale = DaleMode::None;
        ParamLayout L = ParamLayout::make(N, 2, 1);
        std::vector<float> p(L.total), sign = make_signs(m);
        init_network(m, L, 42, sign, nullptr, p.data());
        double worst = 0;
        for (int a = 0; a < N; ++a)
            for (int b = 0; b < N; ++b) {
                double s = 0;  // (Q^T Q)[a][b]
                for (int i = 0; i < N; ++i) s += double(p[i * N + a]) * p[i * N + b];
                worst = std::max(worst, std::abs(s - (a == b ? 1.0 : 0.0)));
            }
        EXPECT_LE(worst, 1e-5) << "N=" << N;
    }
}

TEST(Init, NormalMomentsPerPopulation) {
    const int N = 400;
    ModelConfig m;
    m.units = N;
    m.init = Init::Normal;
    m.mu = 0.05;
    m.gain = 1.5;
    m.e_frac = 0.7;
    ParamLayout L = ParamLayout::make(N, 2, 1);
    std::vector<float> p(L.total), sign = make_signs(m);
    init_network(m, L, 3, sign, nullptr, p.data());
    for (float s : {1.0f, -1.0f}) {
        double sum = 0, sq = 0;
        long n = 0;
        for (int i = 0; i < N; ++i)
            for (int j = 0; j < N; ++j)
                if (sign[j] == s) {
                    sum += p[i * N + j];
                    sq += double(p[i * N + j]) * p[i * N + j];
                    ++n;
                }
        double mean = sum / n, var = sq / n - mean * mean;
        double var_true = m.gain * m.gain / N;
        EXPECT_NEAR(mean, s * m.mu, 4 * std::sqrt(var_true / n)) << "sign " << s;
        // The variance of a sample variance is about 2 sigma^4 / n.
        EXPECT_NEAR(var, var_true, 4 * std::sqrt(2.0 / n) * var_true) << "sign " << s;
    }
}

TEST(Init, GlorotLimitsAndZeroBiases) {
    ModelConfig m;
    m.units = 50;
    ParamLayout L = ParamLayout::make(50, 2, 1);
    std::vector<float> p(L.total), sign = make_signs(m);
    init_network(m, L, 9, sign, nullptr, p.data());
    double lim_in = std::sqrt(6.0 / 52), lim_out = std::sqrt(6.0 / 51);
    for (std::size_t i = 0; i < L.size(1); ++i) EXPECT_LE(std::abs(p[L.w_in + i]), lim_in);
    for (std::size_t i = 0; i < L.size(3); ++i) EXPECT_LE(std::abs(p[L.w_out + i]), lim_out);
    for (std::size_t i = 0; i < L.size(2); ++i) EXPECT_EQ(p[L.b + i], 0.0f);
    EXPECT_EQ(p[L.b_out], 0.0f);
}

TEST(Init, SameSeedSameWeightsOtherSeedOther) {
    ModelConfig m;
    m.units = 20;
    ParamLayout L = ParamLayout::make(20, 2, 1);
    std::vector<float> a(L.total), b(L.total), c(L.total), sign = make_signs(m);
    init_network(m, L, 5, sign, nullptr, a.data());
    init_network(m, L, 5, sign, nullptr, b.data());
    init_network(m, L, 6, sign, nullptr, c.data());
    EXPECT_EQ(a, b);
    EXPECT_NE(a, c);
}

// init_group runs the networks' LAPACK calls with one BLAS thread each (the networks themselves
// run in parallel) and gives the BLAS thread count back; the weights do not depend on it.
TEST(Init, GroupIndependentOfBlasThreadsWhichItRestores) {
    GroupConfig c;
    c.model.units = 160;
    c.model.init = Init::Orthogonal;
    c.networks = 3;
    c.seed = 17;
    cpu::set_blas_threads(2);
    const int before = cpu::blas_threads();
    const GroupParams a = init_group(c, 2, 1);
    EXPECT_EQ(cpu::blas_threads(), before);
    cpu::set_blas_threads(1);
    const GroupParams b = init_group(c, 2, 1);
    EXPECT_EQ(cpu::blas_threads(), 1);
    cpu::set_blas_threads(before);
    ASSERT_EQ(a.params.size(), b.params.size());
    EXPECT_EQ(a.params, b.params);
    // Each network is the one init_network makes from its seed alone.
    std::vector<float> one(a.layout.total);
    for (int k = 0; k < c.networks; ++k) {
        init_network(c.model, a.layout, a.seeds[k], a.sign, nullptr, one.data());
        EXPECT_TRUE(std::equal(one.begin(), one.end(), a.params.begin() + k * a.layout.total))
            << "network " << k;
    }
}

TEST(Signs, LayoutAndRounding) {
    ModelConfig m;
    m.units = 10;
    m.e_frac = 0.75;  // round(7.5) = 8
    auto s = make_signs(m);
    EXPECT_EQ(std::count(s.begin(), s.end(), 1.0f), 8);
    EXPECT_EQ(s[7], 1.0f);
    EXPECT_EQ(s[8], -1.0f);
}

TEST(Mask, DensityAndNoAutapses) {
    ModelConfig m;
    m.units = 200;
    m.p_connect = 0.9;
    m.autapses = false;
    auto mask = make_mask(m, 4);
    double on = std::accumulate(mask.begin(), mask.end(), 0.0) / mask.size();
    EXPECT_NEAR(on, 0.9 * 199.0 / 200.0, 0.01);
    for (int i = 0; i < 200; ++i) EXPECT_EQ(mask[i * 200 + i], 0.0f);
    m.p_connect = 1.0;
    m.autapses = true;
    EXPECT_TRUE(make_mask(m, 4).empty());
}

TEST(Projection, ZeroesWrongSignsOnTheChosenAxis) {
    const int N = 4;
    std::vector<float> sign = {1, 1, -1, -1};
    std::vector<float> w(N * N);
    for (int i = 0; i < N * N; ++i) w[i] = (i % 3 == 0) ? -1.0f : 1.0f;
    auto out = w;
    project_dale(out.data(), N, sign.data(), DaleAxis::Outgoing, nullptr);
    for (int i = 0; i < N; ++i)
        for (int j = 0; j < N; ++j) EXPECT_GE(sign[j] * out[i * N + j], 0.0f);
    auto in = w;
    project_dale(in.data(), N, sign.data(), DaleAxis::Incoming, nullptr);
    for (int i = 0; i < N; ++i)
        for (int j = 0; j < N; ++j) EXPECT_GE(sign[i] * in[i * N + j], 0.0f);
}

}  // namespace
}  // namespace eirnn
