// Systems with known fixed points, shared by the CPU and GPU fixed-point tests
// (tests/test_dynamics.cpp, tests/test_dynamics_cuda.cpp).
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "host/analysis/dynamics.hpp"

namespace eirnn::testutil {

/// M initial states of N units, uniform in [-lim, lim], from seed.
inline std::vector<double> uniform_states(int M, int N, std::uint64_t seed, double lim) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> u(-lim, lim);
    std::vector<double> v(std::size_t(M) * N);
    for (double& x : v) x = u(rng);
    return v;
}

/// The positive root of h = tanh(w h) (w > 1), by Newton from 1 in double precision.
inline double bistable_root(double w) {
    double h = 1.0;
    for (int i = 0; i < 100; ++i) {
        const double t = std::tanh(w * h);
        h -= (t - h) / (w * (1 - t * t) - 1);
    }
    return h;
}

/// The fixed points of the N = 1 system h = tanh(w h), w > 1 (alpha = 1), hs its positive root:
/// -h* and h* stable (in that order), then the unstable origin; the spectral radius of J is w at
/// the origin and w (1 - h*^2) at the stable points.
inline void expect_bistable_three_points(const PointSet& ps, double w, double hs) {
    ASSERT_EQ(ps.size(), 3);
    EXPECT_NEAR(ps.h[0], -hs, 1e-10);
    EXPECT_NEAR(ps.h[1], hs, 1e-10);
    EXPECT_NEAR(ps.h[2], 0.0, 1e-10);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(ps.kind[i], PointKind::Fixed);
    EXPECT_EQ(ps.stability[0], Stability::Stable);
    EXPECT_EQ(ps.stability[1], Stability::Stable);
    EXPECT_EQ(ps.stability[2], Stability::Unstable);
    EXPECT_NEAR(ps.rho[2], w, 1e-12);
    EXPECT_NEAR(ps.rho[0], w * (1 - hs * hs), 1e-10);
}

/// W = (w/2) [[1,1],[1,1]] (N = 2, alpha = 1, w > 1): the diagonal h1 = h2 = h with h = tanh(w h).
/// Two stable points on the diagonal (+-hs, to 1e-10), then the origin, a saddle with one unstable
/// mode (the eigenvalues of W are w and 0).
inline std::vector<double> coupled_pair(double w) {
    return {w / 2, w / 2, w / 2, w / 2};
}
inline void expect_coupled_three_points(const PointSet& ps, double hs) {
    ASSERT_EQ(ps.size(), 3);
    for (int p = 0; p < 2; ++p) {
        EXPECT_EQ(ps.stability[p], Stability::Stable);
        EXPECT_NEAR(std::abs(ps.h[p * 2]), hs, 1e-10);
        EXPECT_NEAR(ps.h[p * 2], ps.h[p * 2 + 1], 1e-12);
    }
    EXPECT_EQ(ps.stability[2], Stability::Saddle);
    EXPECT_EQ(ps.n_unstable[2], 1);
    EXPECT_NEAR(ps.h[4], 0.0, 1e-10);
    EXPECT_NEAR(ps.h[5], 0.0, 1e-10);
}

/// The fixed points of W = w I with N = 2 (each unit the N = 1 system): {-h*, 0, h*}^2, four
/// stable corners, four saddles with one unstable mode, the unstable origin; h* = hs to 1e-10.
inline void expect_decoupled_nine_points(const PointSet& ps, double hs) {
    ASSERT_EQ(ps.size(), 9);
    int stable = 0, saddle = 0, unstable = 0;
    for (int p = 0; p < 9; ++p) {
        EXPECT_EQ(ps.kind[p], PointKind::Fixed);
        int zeros = 0;
        for (int i = 0; i < 2; ++i) {
            const double v = std::abs(ps.h[p * 2 + i]);
            EXPECT_TRUE(v < 1e-10 || std::abs(v - hs) < 1e-10) << v;
            zeros += v < 1e-10;
        }
        EXPECT_EQ(ps.n_unstable[p], zeros);
        stable += ps.stability[p] == Stability::Stable;
        saddle += ps.stability[p] == Stability::Saddle;
        unstable += ps.stability[p] == Stability::Unstable;
    }
    EXPECT_EQ(stable, 4);
    EXPECT_EQ(saddle, 4);
    EXPECT_EQ(unstable, 1);
}

}  // namespace eirnn::testutil
