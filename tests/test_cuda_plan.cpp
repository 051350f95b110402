// CPU tests of the CUDA backend's host-side plan (launch geometry, memory and waves, index maps,
// step sizes, GEMM descriptors) and of its kernels' per-CTA code, emulated on the CPU phase by
// phase (kernels/cuda/rnn_cta.hpp, optimizer_cta.hpp) against the CPU kernels. Needs no GPU.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "host/core/backend.hpp"
#include "host/core/error.hpp"
#include "host/core/model.hpp"
#include "host/cuda/plan.hpp"
#include "host/train/batching.hpp"
#include "kernels/cpu/optimizer.hpp"
#include "kernels/cpu/rnn.hpp"
#include "kernels/cuda/optimizer_cta.hpp"
#include "kernels/cuda/rnn_cta.hpp"
#include "kernels/rng.hpp"
#include "tests/test_util.hpp"

namespace eirnn::cuda {
namespace {

using testutil::random_vector;
using testutil::rel_err;

// ---------------------------------------------------------------- planner

TEST(CudaPlan, GeometryInvariants) {
    for (int N : {2, 5, 33, 100, 127, 256, 300, 1000})
        for (int B : {1, 7, 8, 33, 64, 100})
            for (int C : {1, 2, 4, 8})
                for (int S : {1, 2, 3, 4, 8, 16}) {
                    RnnGeometry g = make_rnn_geometry(N, 2, 1, 10, B, C, S, true);
                    EXPECT_EQ(g.R % kTileRows, 0);
                    EXPECT_GE(g.C * g.R, N);
                    EXPECT_EQ(g.Bs % kTileTrials, 0);
                    EXPECT_GE(g.S * g.Bs, B);
                    EXPECT_LT((g.S - 1) * g.Bs, B) << "an empty batch slice";
                    EXPECT_LE(g.S, std::max(1, S));
                    EXPECT_EQ(g.threads % 32, 0);
                    EXPECT_GE(g.threads, g.tiles());
                    for (int off :
                         {g.off_m, g.off_h, g.off_stage, g.off_win, g.off_bias, g.off_wout})
                        EXPECT_EQ(off % 4, 0);
                    EXPECT_GE(g.smem_floats, g.off_wout + N + 1);
                }
}

TEST(CudaPlan, ChoicesFitTheDevice) {
    DeviceLimits lim;  // H100 defaults
    for (int N : {2, 33, 100, 127, 256, 300, 512, 600, 1000, 4000, 8192})
        for (int B : {1, 7, 64})
            for (int K : {1, 64, 4096}) {
                auto cs = rnn_choices(N, 2, 1, 290, B, K, lim);
                ASSERT_FALSE(cs.empty()) << "N " << N;
                for (const RnnChoice& c : cs) {
                    RnnGeometry g = make_rnn_geometry(N, 2, 1, 290, B, c.C, c.S, c.onchip);
                    EXPECT_LE(g.tiles(), kMaxThreads);
                    EXPECT_LE(g.smem_bytes(), lim.smem_per_block);
                    EXPECT_LT((g.C - 1) * g.R, N);
                    EXPECT_EQ(g.S, c.S);
                }
                if (N <= 512) {
                    EXPECT_TRUE(cs.front().onchip) << "N " << N << " B " << B;
                }
                if (N >= 1000) {
                    EXPECT_FALSE(cs.front().onchip);
                }
            }
}

TEST(CudaPlan, ChoicesPreferFewCtasPerCluster) {
    DeviceLimits lim;
    auto big = rnn_choices(100, 2, 1, 290, 64, 1024, lim);
    EXPECT_EQ(big.front(), (RnnChoice{1, 1, true}));
    auto few = rnn_choices(100, 2, 1, 290, 64, 16, lim);
    EXPECT_EQ(few.front().C, 1);
    EXPECT_GT(few.front().S, 1) << "small groups fill the device with batch slices";
    auto n256 = rnn_choices(256, 2, 1, 290, 64, 1024, lim);
    EXPECT_TRUE(n256.front().onchip);
    EXPECT_GT(n256.front().C, 1) << "N = 256 needs a cluster";
    lim.max_cluster = 1;  // no clusters: N = 256 goes off chip
    auto flat = rnn_choices(256, 2, 1, 290, 64, 1024, lim);
    EXPECT_FALSE(flat.front().onchip);
    EXPECT_TRUE(rnn_choices(9000, 2, 1, 290, 64, 1, DeviceLimits{}).empty());
}

TEST(CudaPlan, WavesFitAndCoverEveryNetwork) {
    MemoryNeeds m{std::size_t(100) << 20, std::size_t(1) << 30};  // 100 MiB + 1 GiB per network
    for (std::size_t free_gib : {2, 10, 80})
        for (int K : {1, 7, 33, 1000}) {
            auto waves = plan_waves(K, m, free_gib << 30);
            ASSERT_FALSE(waves.empty());
            int next = 0, largest = 0, smallest = K;
            for (const Wave& w : waves) {
                EXPECT_EQ(w.first, next);
                next += w.count;
                largest = std::max(largest, w.count);
                smallest = std::min(smallest, w.count);
            }
            EXPECT_EQ(next, K);
            EXPECT_LE(m.fixed + largest * m.per_network, free_gib << 30);
            EXPECT_LE(largest - smallest, 1) << "near-equal waves";
        }
    // Not even one network fits: bad input (exit 2) naming the flags to lower.
    try {
        plan_waves(4, m, std::size_t(1) << 30);
        ADD_FAILURE() << "no error";
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("--units"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("1124 MiB"), std::string::npos) << e.what();
    }
    EXPECT_EQ(plan_waves(100000, MemoryNeeds{0, 1000}, std::size_t(80) << 30).size(), 1u);
}

TEST(CudaPlan, MemoryNeedsCountTheActivations) {
    ParamLayout L = ParamLayout::make(256, 2, 1);
    RnnChoice on{2, 2, true}, off{2, 8, false};
    MemoryNeeds a = memory_needs(L, 290, 64, 15000, false, on);
    MemoryNeeds b = memory_needs(L, 290, 64, 15000, true, off);
    const std::size_t states = (2 * 290 + 1) * std::size_t(64) * 256 * 4;
    EXPECT_GT(a.per_network, states);
    EXPECT_LT(a.per_network, 2 * states);
    EXPECT_GT(b.per_network, a.per_network + 256 * 256 * 4) << "mask and off-chip scratch";
    EXPECT_GT(a.fixed, std::size_t(15000) * 290 * 4 * 4);
}

TEST(CudaPlan, ActivationBuffersKeep16ByteAlignment) {
    for (int N : {2, 33, 100, 256})
        for (int B : {1, 7, 64})
            for (bool onchip : {true, false}) {
                ParamLayout L = ParamLayout::make(N, 3, 1);
                ActivationLayout a = ActivationLayout::make(L, 29, B, RnnChoice{2, 2, onchip});
                for (std::size_t n : {a.x, a.y, a.h, a.th, a.part, a.m_scratch, a.h_scratch})
                    EXPECT_EQ(n % 4, 0u);
                EXPECT_GE(a.h, std::size_t(30) * B * N);
                EXPECT_EQ(a.m_scratch > 0, !onchip);
            }
}

TEST(CudaPlan, EpochOrdersAreTheBackendsShuffles) {
    std::vector<std::uint64_t> seeds = {1, 2, 99, 123456789};
    const int n = 1000;
    std::vector<int> out(seeds.size() * n);
    epoch_orders(seeds, 3, n, out.data());
    for (std::size_t a = 0; a < seeds.size(); ++a) {
        std::vector<int> want = epoch_order(seeds[a], 3, n);
        EXPECT_TRUE(std::equal(want.begin(), want.end(), out.begin() + a * n));
        std::vector<int> sorted(out.begin() + a * n, out.begin() + (a + 1) * n);
        std::sort(sorted.begin(), sorted.end());
        for (int i = 0; i < n; ++i) ASSERT_EQ(sorted[i], i);
    }
}

TEST(CudaPlan, StepSizesAreTheCpuBackends) {
    TrainConfig tc;
    tc.lr = 3e-3;
    tc.decay = 1e-3;
    std::vector<std::int32_t> done = {0, 235, 0, 470};
    std::vector<float> scale = {1.0f, 1.0f, 0.5f, 1e30f};
    const int nb = 235;
    std::vector<float> lr(done.size() * nb);
    epoch_learning_rates(tc, done, scale, nb, lr.data());
    for (std::size_t a = 0; a < done.size(); ++a)
        for (int j = 0; j < nb; ++j) {
            float want = static_cast<float>(
                scale[a] * keras_adam_lr(tc.lr, tc.decay, tc.beta1, tc.beta2, done[a] + j));
            ASSERT_EQ(lr[a * nb + j], want) << a << " " << j;
        }
}

/// The batch a network gathers for update j from its index map is the CPU backend's batch.
TEST(CudaPlan, IndexMapGivesTheCpuBatches) {
    TaskParams tp;
    tp.first_in = 3;
    tp.stim_dur = 2;
    tp.mem_gap = 2;
    tp.var_delay = 3;
    tp.out_gap = 4;
    Dataset d = make_dataset(tp, 100, 5);
    std::vector<std::uint64_t> seeds = {7, 8};
    std::vector<int> orders(seeds.size() * d.n);
    epoch_orders(seeds, 1, d.n, orders.data());
    const int B = 16;
    for (std::size_t a = 0; a < seeds.size(); ++a) {
        auto cpu_order = epoch_order(seeds[a], 1, d.n);
        for (int j = 0; j < batches_per_epoch(d.n, B); ++j) {
            const int bj = std::min(B, d.n - j * B);
            std::vector<float> x1(d.T * bj * d.I), y1(d.T * bj * d.O), m1(y1.size());
            std::vector<float> x2(x1.size()), y2(y1.size()), m2(y1.size());
            gather_batch(d, cpu_order.data() + j * B, bj, x1.data(), y1.data(), m1.data());
            // What the gather kernel reads: order[a * n + first + b], first = j B.
            gather_batch(d, orders.data() + a * d.n + j * B, bj, x2.data(), y2.data(), m2.data());
            EXPECT_EQ(x1, x2);
            EXPECT_EQ(y1, y2);
        }
    }
}

// ---------------------------------------------------------------- emulation helpers

/// Random parameters of `K` networks of a layout, with a mask when asked.
struct Group {
    ParamLayout L;
    int K = 0;
    std::vector<float> params, mask, sign;
    std::vector<std::uint64_t> seeds;
    std::vector<std::int32_t> updates;
};

Group make_group(int K, int N, int I, int O, bool with_mask, std::uint64_t seed) {
    Group g;
    g.L = ParamLayout::make(N, I, O);
    g.K = K;
    g.params.assign(static_cast<std::size_t>(K) * g.L.total, 0.0f);
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const float sd = 1.2f / std::sqrt(static_cast<float>(N));
    for (int k = 0; k < K; ++k) {
        float* p = g.params.data() + k * g.L.total;
        for (std::size_t i = 0; i < g.L.size(0); ++i) p[g.L.w_rec + i] = sd * nd(rng);
        for (std::size_t i = 0; i < g.L.size(1); ++i) p[g.L.w_in + i] = 0.8f * nd(rng);
        for (std::size_t i = 0; i < g.L.size(2); ++i) p[g.L.b + i] = 0.1f * nd(rng);
        for (std::size_t i = 0; i < g.L.size(3); ++i) p[g.L.w_out + i] = sd * nd(rng);
        for (std::size_t i = 0; i < g.L.size(4); ++i) p[g.L.b_out + i] = 0.1f * nd(rng);
    }
    g.sign.resize(N);
    for (int i = 0; i < N; ++i) g.sign[i] = i < (N + 1) / 2 ? 1.0f : -1.0f;
    if (with_mask) {
        g.mask.resize(static_cast<std::size_t>(K) * N * N);
        std::bernoulli_distribution on(0.8);
        for (auto& v : g.mask) v = on(rng) ? 1.0f : 0.0f;
    }
    for (int k = 0; k < K; ++k) {
        g.seeds.push_back(1000 + k);
        g.updates.push_back(3 * k);
    }
    return g;
}

/// Per-slot activation blocks laid out like the backend's (one block per slot, all buffers).
struct Slots {
    std::size_t x, y, gy, h, th, delta, part, ms, hs, stride;
    std::vector<float> mem;
    Slots(const RnnGeometry& g, int count, int Bmax) {
        const std::size_t TB = static_cast<std::size_t>(g.T) * Bmax;
        x = 0;
        y = x + TB * g.I + 4;
        gy = y + TB * g.O + 4;
        h = gy + TB * g.O + 4;
        th = h + (TB + Bmax) * g.N + 4;
        delta = th + TB * g.N + 4;
        part = delta + TB * g.N + 4;
        ms = part + static_cast<std::size_t>(ceil_div(Bmax, kTileTrials)) * g.N + 4;
        hs = ms + g.m_scratch_floats() + 4;
        stride = (hs + g.h_scratch_floats() + 4 + 3) / 4 * 4;
        mem.assign(stride * count, std::nanf(""));  // unwritten values show up as NaN
    }
    float* at(int slot, std::size_t off) { return mem.data() + slot * stride + off; }
};

RnnNetworks networks_of(const Group& grp, int count, bool reparam, bool incoming) {
    RnnNetworks n;
    n.count = count;
    n.params = grp.params.data();
    n.P = grp.L.total;
    n.w_rec = grp.L.w_rec;
    n.w_in = grp.L.w_in;
    n.b = grp.L.b;
    n.w_out = grp.L.w_out;
    n.b_out = grp.L.b_out;
    n.mask = grp.mask.empty() ? nullptr : grp.mask.data();
    n.sign = grp.sign.data();
    n.reparam = reparam;
    n.incoming = incoming;
    return n;
}

/// The shared memory of the C CTAs of one cluster; map(p, r) translates p into rank r's memory.
struct Cluster {
    std::vector<std::vector<float>> smem;
    struct Map {
        Cluster* c;
        int me;
        float* operator()(float* p, int r) const {
            return c->smem[r].data() + (p - c->smem[me].data());
        }
    };
    Cluster(const RnnGeometry& g) : smem(g.C, std::vector<float>(g.smem_floats, std::nanf(""))) {}
};

/// Emulates rnn_forward_kernel: every cluster, every phase, every thread, in kernel order.
void emulate_forward(const RnnGeometry& g, const RnnForwardArgs& a) {
    const bool plain = a.alpha == 1.0f && a.noise_scale == 0.0f && !a.th;
    for (int q = 0; q < a.net.count * g.S; ++q) {
        Cluster cl(g);
        std::vector<CtaPlace> p(g.C);
        std::vector<CtaMemory> mem(g.C);
        for (int r = 0; r < g.C; ++r) {
            p[r] = cta_place(g, a.net, static_cast<long>(q) * g.C + r);
            mem[r] = cta_memory(g, cl.smem[r].data(), a, p[r]);
        }
        if (!p[0].active) continue;
        for (int r = 0; r < g.C; ++r)
            for (int tid = 0; tid < g.threads; ++tid) fwd_load(g, a, p[r], mem[r], tid);
        std::vector<float> xv(static_cast<std::size_t>(g.C) * g.threads);
        for (int t = 0; t < g.T; ++t) {
            for (int r = 0; r < g.C; ++r)
                for (int tid = 0; tid < g.threads; ++tid)
                    xv[r * g.threads + tid] = fwd_stage_fetch(g, a, p[r], t + 1, tid);
            for (int r = 0; r < g.C; ++r)
                for (int tid = 0; tid < g.threads; ++tid) {
                    if (plain)
                        fwd_step<true>(g, a, p[r], mem[r], tid, t, Cluster::Map{&cl, r});
                    else
                        fwd_step<false>(g, a, p[r], mem[r], tid, t, Cluster::Map{&cl, r});
                }
            for (int r = 0; r < g.C; ++r)
                for (int tid = 0; tid < g.threads; ++tid) {
                    if (t > 0) fwd_readout(g, a, p[r], mem[r], tid, t - 1);
                    fwd_stage_put(g, a, p[r], mem[r], t + 1, tid, xv[r * g.threads + tid]);
                }
        }
        for (int r = 0; r < g.C; ++r)
            for (int tid = 0; tid < g.threads; ++tid) fwd_readout(g, a, p[r], mem[r], tid, g.T - 1);
    }
}

/// Emulates rnn_backward_kernel.
void emulate_backward(const RnnGeometry& g, const RnnBackwardArgs& a) {
    const bool leak = a.alpha != 1.0f;
    for (int q = 0; q < a.net.count * g.S; ++q) {
        Cluster cl(g);
        std::vector<CtaPlace> p(g.C);
        std::vector<CtaMemory> mem(g.C);
        for (int r = 0; r < g.C; ++r) {
            p[r] = cta_place(g, a.net, static_cast<long>(q) * g.C + r);
            mem[r] = cta_memory(g, cl.smem[r].data(), a, p[r]);
        }
        if (!p[0].active) continue;
        // Per-thread registers of the kernel.
        struct TileRegs {
            float v[kTileRows][kTileTrials] = {};
        };
        struct SumRegs {
            float v[kTileRows] = {};
        };
        const std::size_t nt = static_cast<std::size_t>(g.C) * g.threads;
        std::vector<TileRegs> carry(nt), tv(nt);
        std::vector<SumRegs> bsum(nt);
        for (int r = 0; r < g.C; ++r)
            for (int tid = 0; tid < g.threads; ++tid) bwd_load(g, a, p[r], mem[r], tid);
        std::vector<float> gv(nt);
        for (int t = g.T - 1; t >= 0; --t) {
            for (int r = 0; r < g.C; ++r)
                for (int tid = 0; tid < g.threads; ++tid) {
                    const std::size_t i = r * g.threads + tid;
                    bwd_fetch_th(g, a, p[r], tid, t, tv[i].v);
                    gv[i] = bwd_stage_fetch(g, a, p[r], t - 1, tid);
                }
            for (int r = 0; r < g.C; ++r)
                for (int tid = 0; tid < g.threads; ++tid) {
                    const std::size_t i = r * g.threads + tid;
                    const Cluster::Map map{&cl, r};
                    if (leak)
                        bwd_step<true>(g, a, p[r], mem[r], tid, t, tv[i].v, carry[i].v, bsum[i].v,
                                       map);
                    else
                        bwd_step<false>(g, a, p[r], mem[r], tid, t, tv[i].v, carry[i].v, bsum[i].v,
                                        map);
                }
            for (int r = 0; r < g.C; ++r)
                for (int tid = 0; tid < g.threads; ++tid)
                    bwd_stage_put(g, a, p[r], mem[r], t - 1, tid, gv[r * g.threads + tid]);
        }
        for (int r = 0; r < g.C; ++r)
            for (int tid = 0; tid < g.threads; ++tid)
                bwd_bias(g, a, p[r], tid, bsum[r * g.threads + tid].v);
    }
}

/// Column-major SGEMM as cuBLAS computes it: C (m,n) = op(A) op(B), beta = 0.
void colmajor_gemm(const GemmDesc& d, const float* A, const float* B, float* C) {
    for (int i = 0; i < d.m; ++i)
        for (int j = 0; j < d.n; ++j) {
            double s = 0;
            for (int k = 0; k < d.k; ++k) {
                const float a = d.ta ? A[k + static_cast<std::size_t>(i) * d.lda]
                                     : A[i + static_cast<std::size_t>(k) * d.lda];
                const float b = d.tb ? B[j + static_cast<std::size_t>(k) * d.ldb]
                                     : B[k + static_cast<std::size_t>(j) * d.ldb];
                s += static_cast<double>(a) * b;
            }
            C[i + static_cast<std::size_t>(j) * d.ldc] = static_cast<float>(s);
        }
}

struct Case {
    int N, B, K;
    float alpha;
    float sigma;
    bool mask, reparam, incoming;
    float rate;  // l2_rate coefficient (0 = off)
};

std::string name(const Case& c) {
    std::ostringstream s;
    s << "N" << c.N << "_B" << c.B << "_K" << c.K << (c.alpha != 1 ? "_leak" : "")
      << (c.sigma > 0 ? "_noise" : "") << (c.mask ? "_mask" : "") << (c.reparam ? "_reparam" : "")
      << (c.incoming ? "_incoming" : "") << (c.rate > 0 ? "_rate" : "");
    return s.str();
}

void PrintTo(const Case& c, std::ostream* os) {
    *os << name(c);
}

/// Geometries worth emulating for a size: the planner's and every cluster size and slice count.
std::vector<RnnChoice> emulated_choices(int N, int B) {
    std::vector<RnnChoice> out;
    for (bool onchip : {true, false})
        for (int C : {1, 2, 4, 8})
            for (int S : {1, 2, 64}) {
                RnnGeometry g = make_rnn_geometry(N, 2, 1, 4, B, C, S, onchip);
                if (g.tiles() > kMaxThreads || (C - 1) * g.R >= N) continue;
                RnnChoice c{C, g.S, onchip};
                if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
            }
    return out;
}

class CudaEmulation : public ::testing::TestWithParam<Case> {};

/// Forward, loss gradient, backward and weight gradients of the emulated kernels against the CPU
/// kernels, for every geometry; all geometries agree bit for bit.
TEST_P(CudaEmulation, KernelsMatchCpuInEveryGeometry) {
    const Case cs = GetParam();
    const int N = cs.N, B = cs.B, K = cs.K, I = 2, O = 2, T = 9;
    Group grp = make_group(K, N, I, O, cs.mask, 17 + N * 31 + B);
    const ParamLayout& L = grp.L;
    const std::size_t TB = static_cast<std::size_t>(T) * B, BN = static_cast<std::size_t>(B) * N;
    std::vector<float> x = random_vector(K * TB * I, 5 + B);
    std::vector<float> gy = random_vector(K * TB * O, 6 + N, 0.05f);
    const bool plain = cs.alpha == 1.0f && cs.sigma == 0.0f;
    const float noise_scale =
        cs.sigma > 0 ? static_cast<float>(cs.sigma * std::sqrt(cs.alpha)) : 0.0f;

    // CPU reference per network.
    ModelConfig mc;
    mc.dale = cs.reparam ? DaleMode::Reparam : DaleMode::Project;
    mc.dale_axis = cs.incoming ? DaleAxis::Incoming : DaleAxis::Outgoing;
    std::vector<std::vector<float>> ref_h(K), ref_th(K), ref_y(K), ref_delta(K), ref_grad(K);
    const RnnDims d{B, N, I, O, T};
    for (int k = 0; k < K; ++k) {
        const float* p = grp.params.data() + k * L.total;
        const float* mk = cs.mask ? grp.mask.data() + static_cast<std::size_t>(k) * N * N : nullptr;
        std::vector<float> w(static_cast<std::size_t>(N) * N);
        effective_w_rec(mc, L, p, grp.sign.data(), mk, w.data());
        std::vector<float> noise;
        if (noise_scale > 0) {
            Philox rng{grp.seeds[k], static_cast<std::uint64_t>(RngStream::kRecNoise) +
                                         (static_cast<std::uint64_t>(grp.updates[k]) << 8)};
            noise.resize(TB * N);
            for (std::size_t i = 0; i < noise.size(); ++i)
                noise[i] = noise_scale * static_cast<float>(rng.normal(i));
        }
        ref_h[k].resize((T + 1) * BN);
        ref_th[k].resize(T * BN);
        ref_y[k].resize(TB * O);
        cpu::rnn_forward(d, w.data(), p + L.w_in, p + L.b, p + L.w_out, p + L.b_out,
                         x.data() + k * TB * I, noise.empty() ? nullptr : noise.data(), cs.alpha,
                         ref_h[k].data(), ref_th[k].data(), ref_y[k].data());
        std::vector<float> th = ref_th[k], dh(BN), grad_h;
        if (cs.rate > 0) {
            grad_h.resize(T * BN);
            for (std::size_t i = 0; i < grad_h.size(); ++i) grad_h[i] = cs.rate * ref_h[k][BN + i];
        }
        ref_grad[k].assign(L.total, 0.0f);
        float* gr = ref_grad[k].data();
        cpu::rnn_backward(
            d, w.data(), p + L.w_out, x.data() + k * TB * I, ref_h[k].data(), th.data(),
            cpu::tanh_in_states(cs.alpha, noise.empty() ? nullptr : noise.data()),
            gy.data() + k * TB * O, grad_h.empty() ? nullptr : grad_h.data(), cs.alpha, dh.data(),
            gr + L.w_rec, gr + L.w_in, gr + L.b, gr + L.w_out, gr + L.b_out);
        ref_delta[k] = th;
    }

    std::vector<std::vector<float>> first_h, first_delta, first_grad;
    for (const RnnChoice& c : emulated_choices(N, B)) {
        SCOPED_TRACE("C " + std::to_string(c.C) + " S " + std::to_string(c.S) +
                     (c.onchip ? " on chip" : " off chip"));
        const RnnGeometry g = make_rnn_geometry(N, I, O, T, B, c.C, c.S, c.onchip);
        Slots sl(g, K, B);
        for (int k = 0; k < K; ++k) {
            std::copy_n(x.data() + k * TB * I, TB * I, sl.at(k, sl.x));
            std::copy_n(gy.data() + k * TB * O, TB * O, sl.at(k, sl.gy));
        }
        RnnForwardArgs fa;
        fa.net = networks_of(grp, K, cs.reparam, cs.incoming);
        fa.x = sl.at(0, sl.x);
        fa.h = sl.at(0, sl.h);
        fa.th = plain ? nullptr : sl.at(0, sl.th);
        fa.y = sl.at(0, sl.y);
        fa.x_stride = fa.h_stride = fa.th_stride = fa.y_stride = sl.stride;
        fa.alpha = cs.alpha;
        fa.noise_scale = noise_scale;
        fa.seeds = grp.seeds.data();
        fa.updates = grp.updates.data();
        fa.m_scratch = sl.at(0, sl.ms);
        fa.h_scratch = sl.at(0, sl.hs);
        fa.scratch_stride = sl.stride;
        emulate_forward(g, fa);

        RnnBackwardArgs ba;
        ba.net = fa.net;
        ba.h = fa.h;
        ba.th = fa.th;
        ba.delta = plain ? sl.at(0, sl.delta) : sl.at(0, sl.th);
        ba.grad_y = sl.at(0, sl.gy);
        ba.bias_part = sl.at(0, sl.part);
        ba.h_stride = ba.th_stride = ba.delta_stride = ba.gy_stride = ba.part_stride = sl.stride;
        ba.alpha = cs.alpha;
        ba.rate_coef = cs.rate;
        ba.m_scratch = fa.m_scratch;
        ba.h_scratch = fa.h_scratch;
        ba.scratch_stride = sl.stride;
        emulate_backward(g, ba);

        std::vector<float> grads(static_cast<std::size_t>(K) * L.total, 0.0f);
        for (int k = 0; k < K; ++k) {
            // Bias: the bias_grad kernel's sum over 8-trial tiles; weights: the cuBLAS GEMMs.
            for (int i = 0; i < N; ++i) {
                float s = 0;
                for (int bt = 0; bt < ceil_div(B, kTileTrials); ++bt)
                    s += sl.at(k, sl.part)[bt * N + i];
                grads[k * L.total + L.b + i] = s;
            }
            auto operand = [&](GemmOperand o) {
                std::size_t off = o == GemmOperand::X       ? sl.x
                                  : o == GemmOperand::GradY ? sl.gy
                                  : o == GemmOperand::Delta ? (plain ? sl.delta : sl.th)
                                                            : sl.h;
                return sl.at(k, off) + operand_offset(o, L, B);
            };
            for (const GemmDesc& gd : weight_grad_gemms(L, T, B))
                colmajor_gemm(gd, operand(gd.a), operand(gd.b),
                              grads.data() + k * L.total + gd.c_offset);
        }
        for (int k = 0; k < K; ++k) {
            SCOPED_TRACE("network " + std::to_string(k));
            const float* h = sl.at(k, sl.h);
            EXPECT_LE(rel_err(h, ref_h[k].data(), (T + 1) * BN), 1e-5);
            EXPECT_LE(rel_err(sl.at(k, sl.y), ref_y[k].data(), TB * O), 1e-5);
            const float* delta = plain ? sl.at(k, sl.delta) : sl.at(k, sl.th);
            EXPECT_LE(rel_err(delta, ref_delta[k].data(), T * BN), 1e-4);
            for (int t = 0; t < ParamLayout::kTensors; ++t) {
                if (t == 4) continue;  // grad b_out comes from the loss kernel
                EXPECT_LE(rel_err(grads.data() + k * L.total + L.offset(t),
                                  ref_grad[k].data() + L.offset(t), L.size(t)),
                          1e-4)
                    << "tensor " << t;
            }
        }
        std::vector<float> all_h, all_delta;
        for (int k = 0; k < K; ++k) {
            const float* h = sl.at(k, sl.h);
            all_h.insert(all_h.end(), h, h + (T + 1) * BN);
            const float* dl = plain ? sl.at(k, sl.delta) : sl.at(k, sl.th);
            all_delta.insert(all_delta.end(), dl, dl + T * BN);
        }
        if (first_h.empty()) {
            first_h.push_back(all_h);
            first_delta.push_back(all_delta);
            first_grad.push_back(grads);
        } else {
            EXPECT_EQ(all_h, first_h[0]) << "states differ between geometries";
            EXPECT_EQ(all_delta, first_delta[0]) << "deltas differ between geometries";
            EXPECT_EQ(grads, first_grad[0]) << "gradients differ between geometries";
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Sizes, CudaEmulation,
                         ::testing::Values(Case{2, 1, 1, 1.0f, 0, false, false, false, 0},
                                           Case{33, 7, 3, 1.0f, 0, false, false, false, 0},
                                           Case{100, 64, 2, 1.0f, 0, false, false, false, 0},
                                           Case{127, 7, 2, 1.0f, 0, true, false, false, 0},
                                           Case{256, 7, 1, 1.0f, 0, false, true, false, 0},
                                           Case{300, 1, 2, 1.0f, 0, true, true, true, 0},
                                           Case{33, 64, 2, 0.3f, 0, false, false, false, 0},
                                           Case{36, 33, 2, 0.5f, 0.2f, true, false, false, 0},
                                           Case{20, 17, 2, 1.0f, 0.1f, false, true, true, 0},
                                           Case{24, 9, 2, 1.0f, 0, false, false, false, 0.01f}),
                         [](const auto& info) { return name(info.param); });

/// Networks whose status is not 0 are skipped and their buffers untouched.
TEST(CudaEmulation, SkipsNetworksThatDoNotTrain) {
    const int N = 12, B = 8, K = 3, T = 4;
    Group grp = make_group(K, N, 2, 1, false, 3);
    const RnnGeometry g = make_rnn_geometry(N, 2, 1, T, B, 2, 1, true);
    Slots sl(g, K, B);
    std::vector<float> x = random_vector(static_cast<std::size_t>(K) * T * B * 2, 4);
    for (int k = 0; k < K; ++k) std::copy_n(x.data() + k * T * B * 2, T * B * 2, sl.at(k, sl.x));
    std::vector<std::uint8_t> status = {0, 1, 0};
    std::vector<int> nets = {2, 1, 0};  // slot -> network
    RnnForwardArgs fa;
    fa.net = networks_of(grp, K, false, false);
    fa.net.status = status.data();
    fa.net.nets = nets.data();
    fa.x = sl.at(0, sl.x);
    fa.h = sl.at(0, sl.h);
    fa.y = sl.at(0, sl.y);
    fa.x_stride = fa.h_stride = fa.y_stride = sl.stride;
    emulate_forward(g, fa);
    EXPECT_TRUE(std::isfinite(sl.at(0, sl.h)[B * N]));
    EXPECT_TRUE(std::isnan(sl.at(1, sl.h)[B * N])) << "slot 1 runs network 1, which is skipped";
    EXPECT_TRUE(std::isfinite(sl.at(2, sl.h)[B * N]));
}

// ---------------------------------------------------------------- optimizer

struct OptCase {
    DaleMode dale;
    bool incoming, mask, nonneg, per_tensor;
    float l2;
    double clipnorm;
};

void PrintTo(const OptCase& c, std::ostream* os) {
    *os << eirnn::name(c.dale) << (c.incoming ? " incoming" : "") << (c.mask ? " mask" : "")
        << (c.per_tensor ? " per-tensor" : "") << " l2 " << c.l2 << " clip " << c.clipnorm;
}

class CudaOptimizerEmulation : public ::testing::TestWithParam<OptCase> {};

/// The fused update's per-element code against the CPU path (network_grad's gradient transform,
/// cpu::adam_update, cpu::apply_constraints) on one network.
TEST_P(CudaOptimizerEmulation, MatchesCpuUpdate) {
    const OptCase oc = GetParam();
    const int N = 13, I = 2, O = 2;
    Group grp = make_group(1, N, I, O, oc.mask, 11);
    const ParamLayout& L = grp.L;
    std::vector<float> p = grp.params, g = random_vector(L.total, 12, 0.3f);
    std::vector<float> m = random_vector(L.total, 13, 0.01f),
                       v = random_vector(L.total, 14, 0.001f);
    for (auto& x : v) x = std::abs(x);
    const float* mask = oc.mask ? grp.mask.data() : nullptr;
    const float lr = 0.01f;

    // CPU: gradient transform of host/train/network_grad.cpp, clipping of
    // host/train/cpu_backend.cpp.
    std::vector<float> rp = p, rm = m, rv = v, rg = g;
    const bool outgoing = !oc.incoming;
    for (int i = 0; i < N; ++i)
        for (int j = 0; j < N; ++j) {
            const std::size_t ij = static_cast<std::size_t>(i) * N + j;
            if (oc.dale == DaleMode::Reparam)
                rg[L.w_rec + ij] =
                    reparam_grad_element(rg[L.w_rec + ij], rp[L.w_rec + ij],
                                         grp.sign[outgoing ? j : i], mask ? mask[ij] : 1.0f);
            else if (mask && mask[ij] == 0.0f)
                rg[L.w_rec + ij] = 0;
        }
    if (oc.l2 > 0)
        for (int t : {0, 1, 3})
            for (std::size_t i = 0; i < L.size(t); ++i) {
                if (t == 0 && mask && mask[i] == 0.0f) continue;
                rg[L.offset(t) + i] += oc.l2 * rp[L.offset(t) + i];
            }
    double sq[5], total = 0;
    for (int t = 0; t < 5; ++t) {
        sq[t] = cpu::sum_squares(rg.data() + L.offset(t), L.size(t));
        total += sq[t];
    }
    AdamStep step{lr, 0.9f, 0.999f, 1e-8f};
    for (int t = 0; t < 5; ++t) {
        double norm = std::sqrt(oc.per_tensor ? sq[t] : total);
        float scale =
            oc.clipnorm > 0 && norm > oc.clipnorm ? static_cast<float>(oc.clipnorm / norm) : 1.0f;
        cpu::adam_update(rp.data() + L.offset(t), rm.data() + L.offset(t), rv.data() + L.offset(t),
                         rg.data() + L.offset(t), L.size(t), scale, step);
    }
    cpu::ConstraintArgs c;
    c.N = N;
    c.w_rec = L.w_rec;
    c.w_in = L.w_in;
    c.n_in = L.size(1);
    c.sign = grp.sign.data();
    c.mask = mask;
    c.project = oc.dale == DaleMode::Project;
    c.incoming = oc.incoming;
    c.nonneg_input = oc.nonneg;
    cpu::apply_constraints(c, rp.data());

    // The kernel's two passes, emulated.
    OptimizerArgs a;
    a.P = L.total;
    for (int t = 0; t < 5; ++t) {
        a.off[t] = L.offset(t);
        a.size[t] = L.size(t);
    }
    a.N = N;
    a.sign = grp.sign.data();
    a.project = oc.dale == DaleMode::Project;
    a.reparam = oc.dale == DaleMode::Reparam;
    a.incoming = oc.incoming;
    a.nonneg_input = oc.nonneg;
    a.l2_coef = oc.l2;
    a.clipnorm = oc.clipnorm;
    a.per_tensor = oc.per_tensor;
    double ksq[5] = {};
    for (int t = 0; t < 5; ++t)
        for (std::size_t e = 0; e < L.size(t); ++e) {
            float gr = final_grad(a, p.data(), g.data(), mask, t, e);
            ksq[t] += static_cast<double>(gr) * gr;
        }
    for (int t = 0; t < 5; ++t) {
        EXPECT_NEAR(ksq[t], sq[t], 1e-12 * (1 + sq[t]));
        const float scale = clip_scale(a, ksq, t);
        for (std::size_t e = 0; e < L.size(t); ++e)
            update_element(a, p.data(), m.data(), v.data(), mask, t, e,
                           final_grad(a, p.data(), g.data(), mask, t, e) * scale, step);
    }
    for (std::size_t i = 0; i < L.total; ++i) {
        ASSERT_NEAR(p[i], rp[i], 1e-6f * (1 + std::abs(rp[i]))) << i;
        ASSERT_NEAR(m[i], rm[i], 1e-6f * (1 + std::abs(rm[i]))) << i;
        ASSERT_NEAR(v[i], rv[i], 1e-6f * (1 + std::abs(rv[i]))) << i;
    }
    for (int i = 0; i < N; ++i)
        for (int j = 0; j < N; ++j) {
            const std::size_t ij = static_cast<std::size_t>(i) * N + j;
            if (a.project) {
                EXPECT_GE(grp.sign[oc.incoming ? i : j] * p[L.w_rec + ij], 0.0f);
            }
            if (mask && mask[ij] == 0.0f && oc.dale != DaleMode::Reparam) {
                EXPECT_EQ(p[L.w_rec + ij], 0.0f);
            }
        }
}

INSTANTIATE_TEST_SUITE_P(
    Modes, CudaOptimizerEmulation,
    ::testing::Values(OptCase{DaleMode::Project, false, false, true, false, 0, 0.5},
                      OptCase{DaleMode::Project, true, true, true, true, 0, 0.5},
                      OptCase{DaleMode::Reparam, false, true, false, false, 0.01f, 0.5},
                      OptCase{DaleMode::None, false, false, false, false, 0.02f, 0},
                      OptCase{DaleMode::None, true, true, true, true, 0, 1e-3}));

// ---------------------------------------------------------------- command line

/// `eirnn train --backend cuda` on a machine without a usable GPU: one line on stderr, status 2.
TEST(CudaCli, BackendCudaWithoutDeviceIsOneLineAndStatus2) {
    if (!std::filesystem::exists(EIRNN_BINARY)) GTEST_SKIP() << "the eirnn binary is not built";
    if (cuda_available()) GTEST_SKIP() << "a CUDA device is usable here";
    const auto dir =
        std::filesystem::temp_directory_path() / ("eirnn_cuda_cli_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    const std::string err = (dir / "stderr").string(), out = (dir / "out.h5").string();
    const std::string cmd = std::string(EIRNN_BINARY) +
                            " train --backend cuda --networks 1 --units 8 --epochs 1 --trials 80 "
                            "--test-trials 16 --quiet -o " +
                            out + " >/dev/null 2>" + err + " </dev/null";
    const int rc = std::system(cmd.c_str());
    ASSERT_TRUE(WIFEXITED(rc));
    EXPECT_EQ(WEXITSTATUS(rc), 2);
    std::ifstream f(err);
    std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    EXPECT_EQ(std::count(all.begin(), all.end(), '\n'), 1) << all;
    EXPECT_NE(all.find("--backend cuda"), std::string::npos) << all;
    EXPECT_FALSE(std::filesystem::exists(out));
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace eirnn::cuda
