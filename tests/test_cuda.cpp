// GPU tests of the CUDA backend: every kernel against its CPU twin on awkward sizes and in every
// launchable geometry, the fused update, and whole trainings against the CPU backend. Every test
// skips without a usable device (ctest label gpu).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "host/core/backend.hpp"
#include "host/core/model.hpp"
#include "host/cuda/cuda_backend.hpp"
#include "host/cuda/error.hpp"
#include "host/cuda/gemm.hpp"
#include "host/cuda/handles.hpp"
#include "host/cuda/memory.hpp"
#include "host/cuda/plan.hpp"
#include "host/train/batching.hpp"
#include "host/train/trainer.hpp"
#include "kernels/cpu/optimizer.hpp"
#include "kernels/cpu/rnn.hpp"
#include "kernels/cuda/batching.cuh"
#include "kernels/cuda/optimizer.cuh"
#include "kernels/cuda/rnn.cuh"
#include "tests/cuda_test_util.hpp"
#include "tests/test_util.hpp"

namespace eirnn::cuda {
namespace {

using testutil::gpu_emulated;
using testutil::random_vector;
using testutil::rel_err;

template <class T>
std::vector<T> download(const T* d, std::size_t n) {
    std::vector<T> h(n);
    EIRNN_CHECK_CUDA(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
}

template <class T>
DeviceBuffer<T> upload(const std::vector<T>& h) {
    DeviceBuffer<T> d(h.size());
    EIRNN_CHECK_CUDA(cudaMemcpy(d.data(), h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
    return d;
}

// ---------------------------------------------------------------- the recurrent kernels

struct KernelCase {
    int K, N, B;
};

void PrintTo(const KernelCase& c, std::ostream* os) {
    *os << "K" << c.K << " N" << c.N << " B" << c.B;
}

class CudaKernels : public ::testing::TestWithParam<KernelCase> {};

/// Forward, masked MSE, backward, bias and weight gradients of K networks on the GPU against the
/// CPU kernels, in every launchable geometry (on chip, clusters, batch slices, off chip); every
/// geometry gives the same bits.
TEST_P(CudaKernels, MatchCpu) {
    EIRNN_REQUIRE_GPU();
    auto [K, N, B] = GetParam();
    // Under ThreadSanitizer on the emulated device: the geometries whose synchronisation differs
    // (one trial, a partial tile, an odd N on chip, W from global memory, many networks); the
    // ASan+UBSan build and a GPU run all of them.
    if (gpu_emulated() && testutil::kThreadSanitizer) {
        const bool kept = (K == 7 && N == 2 && B == 1) || (K == 7 && N == 33 && B == 7) ||
                          (K == 7 && N == 127 && B == 64) || (K == 1 && N == 300 && B == 64) ||
                          (K == 33 && N == 100 && B == 7) || (K == 33 && N == 256 && B == 64);
        if (!kept) GTEST_SKIP() << "this geometry runs in the ASan+UBSan build of the device";
    }
    // Emulated: 3 networks, 4 steps (both state buffers in turn), at most 16 trials from N = 256
    // on (two 8-trial tiles, batch slices still), every geometry still.
    if (gpu_emulated()) {
        K = std::min(K, 3);
        if (N >= 256) B = std::min(B, 16);
    }
    const int I = 2, O = 2, T = gpu_emulated() ? 4 : 10;
    const ParamLayout L = ParamLayout::make(N, I, O);
    const std::size_t TB = static_cast<std::size_t>(T) * B, BN = static_cast<std::size_t>(B) * N;
    std::vector<float> params(static_cast<std::size_t>(K) * L.total, 0.0f);
    {
        std::mt19937_64 rng(N * 1000 + B * 10 + K);
        std::normal_distribution<float> nd(0.0f, 1.0f);
        const float sd = 1.2f / std::sqrt(static_cast<float>(N));
        for (int k = 0; k < K; ++k)
            for (int t = 0; t < ParamLayout::kTensors; ++t)
                for (std::size_t i = 0; i < L.size(t); ++i)
                    params[k * L.total + L.offset(t) + i] = (t == 1             ? 0.8f
                                                             : t == 2 || t == 4 ? 0.1f
                                                                                : sd) *
                                                            nd(rng);
    }
    std::vector<float> x = random_vector(K * TB * I, 1 + N);
    std::vector<float> target = random_vector(K * TB * O, 2 + B, 0.5f);
    std::vector<float> lmask(K * TB * O);
    for (std::size_t i = 0; i < lmask.size(); ++i) lmask[i] = (i % 7) ? 1.0f : 0.0f;

    // CPU reference.
    const RnnDims d{B, N, I, O, T};
    std::vector<float> ref_h(K * (T + 1) * BN), ref_y(K * TB * O), ref_grad(K * L.total, 0.0f);
    std::vector<double> ref_loss(K);
#pragma omp parallel for schedule(dynamic)
    for (int k = 0; k < K; ++k) {
        const float* p = params.data() + k * L.total;
        std::vector<float> th(T * BN), gy(TB * O), dh(BN);
        float* h = ref_h.data() + k * (T + 1) * BN;
        float* y = ref_y.data() + k * TB * O;
        cpu::rnn_forward(d, p + L.w_rec, p + L.w_in, p + L.b, p + L.w_out, p + L.b_out,
                         x.data() + k * TB * I, static_cast<const float*>(nullptr), 1.0f, h,
                         th.data(), y);
        ref_loss[k] =
            cpu::masked_mse(d, y, target.data() + k * TB * O, lmask.data() + k * TB * O, gy.data());
        float* g = ref_grad.data() + k * L.total;
        cpu::rnn_backward(d, p + L.w_rec, p + L.w_out, x.data() + k * TB * I, h, th.data(),
                          /*tanh_in_h=*/true, gy.data(), static_cast<const float*>(nullptr), 1.0f,
                          dh.data(), g + L.w_rec, g + L.w_in, g + L.b, g + L.w_out, g + L.b_out);
    }

    // Device buffers, one block per slot as in the backend.
    const std::size_t sx = TB * I, sy = TB * O, sh = (TB + B) * N, sd = TB * N;
    auto a4 = [](std::size_t n) { return (n + 3) / 4 * 4; };
    Stream stream = make_stream();
    cudaStream_t s = stream.get();
    Cublas blas = make_cublas(s);
    DeviceBuffer<float> dparams = upload(params);
    std::vector<float> first_h, first_grads;
    std::vector<RnnChoice> tried;
    const DeviceLimits lim = device_limits();
    std::vector<RnnChoice> choices = rnn_choices(N, I, O, T, B, K, lim);
    for (int S : {1, 2, 64})  // more geometries than the planner would pick
        for (int C : {1, 2, 4, 8})
            for (bool onchip : {true, false}) {
                RnnGeometry g = make_rnn_geometry(N, I, O, T, B, C, S, onchip);
                RnnChoice c{C, g.S, onchip};
                if (g.tiles() <= kMaxThreads && (C - 1) * g.R < N &&
                    g.smem_bytes() <= lim.smem_per_block && C <= lim.max_cluster &&
                    std::find(choices.begin(), choices.end(), c) == choices.end())
                    choices.push_back(c);
            }
    for (const RnnChoice& c : choices) {
        const RnnGeometry g = make_rnn_geometry(N, I, O, T, B, c.C, c.S, c.onchip);
        if (!rnn_launchable(g)) continue;
        tried.push_back(c);
        SCOPED_TRACE("C " + std::to_string(c.C) + " S " + std::to_string(g.S) +
                     (c.onchip ? " on chip" : " off chip"));
        const std::size_t ox = 0, oy = a4(sx), om = oy + a4(sy), oout = om + a4(sy),
                          ogy = oout + a4(sy), oh = ogy + a4(sy), od = oh + a4(sh),
                          op = od + a4(sd),
                          oms = op + a4(static_cast<std::size_t>(ceil_div(B, 8)) * N),
                          ohs = oms + a4(g.m_scratch_floats()), SF = ohs + a4(g.h_scratch_floats());
        std::vector<float> slots(K * SF, std::nanf(""));
        for (int k = 0; k < K; ++k) {
            std::copy_n(x.data() + k * sx, sx, slots.data() + k * SF + ox);
            std::copy_n(target.data() + k * sy, sy, slots.data() + k * SF + oy);
            std::copy_n(lmask.data() + k * sy, sy, slots.data() + k * SF + om);
        }
        DeviceBuffer<float> act = upload(slots);
        DeviceBuffer<float> grads(K * L.total);
        DeviceBuffer<double> loss(K);
        float* a0 = act.data();
        RnnNetworks rn;
        rn.count = K;
        rn.params = dparams.data();
        rn.P = L.total;
        rn.w_rec = L.w_rec;
        rn.w_in = L.w_in;
        rn.b = L.b;
        rn.w_out = L.w_out;
        rn.b_out = L.b_out;
        RnnForwardArgs fa;
        fa.net = rn;
        fa.x = a0 + ox;
        fa.h = a0 + oh;
        fa.y = a0 + oout;
        fa.x_stride = fa.h_stride = fa.y_stride = SF;
        fa.m_scratch = a0 + oms;
        fa.h_scratch = a0 + ohs;
        fa.scratch_stride = SF;
        rnn_forward(g, fa, s);
        MseArgs ma;
        ma.count = K;
        ma.T = T;
        ma.B = B;
        ma.O = O;
        ma.y = a0 + oout;
        ma.target = a0 + oy;
        ma.mask = a0 + om;
        ma.grad_y = a0 + ogy;
        ma.stride = SF;
        ma.loss = loss.data();
        ma.grads = grads.data();
        ma.P = L.total;
        ma.b_out = L.b_out;
        masked_mse(ma, s);
        RnnBackwardArgs ba;
        ba.net = rn;
        ba.h = a0 + oh;
        ba.delta = a0 + od;
        ba.grad_y = a0 + ogy;
        ba.bias_part = a0 + op;
        ba.h_stride = ba.delta_stride = ba.gy_stride = ba.part_stride = SF;
        ba.m_scratch = fa.m_scratch;
        ba.h_scratch = fa.h_scratch;
        ba.scratch_stride = SF;
        rnn_backward(g, ba, s);
        BiasGradArgs bg;
        bg.count = K;
        bg.N = N;
        bg.B = B;
        bg.bias_part = a0 + op;
        bg.part_stride = SF;
        bg.grads = grads.data();
        bg.P = L.total;
        bg.b = L.b;
        bias_grad(bg, s);
        GemmOperands ops;
        ops.h = a0 + oh;
        ops.delta = a0 + od;
        ops.x = a0 + ox;
        ops.grad_y = a0 + ogy;
        ops.stride = static_cast<long long>(SF);
        weight_grads(blas.get(), L, T, B, K, ops, grads.data());
        EIRNN_CHECK_CUDA(cudaStreamSynchronize(s));

        const std::vector<float> hs = download(act.data(), act.size());
        const std::vector<float> gr = download(grads.data(), grads.size());
        const std::vector<double> ls = download(loss.data(), loss.size());
        std::vector<float> all_h, all_grads;
        for (int k = 0; k < K; ++k) {
            SCOPED_TRACE("network " + std::to_string(k));
            const float* h = hs.data() + k * SF + oh;
            // The CPU kernels' vectorised tanh and the device's tanhf differ by a few ulp, which
            // ten steps of a small network can amplify: 2.9e-5 measured at N = 2 (network 6).
            EXPECT_LE(rel_err(h, ref_h.data() + k * (T + 1) * BN, (T + 1) * BN), 1e-4);
            EXPECT_LE(rel_err(hs.data() + k * SF + oout, ref_y.data() + k * TB * O, TB * O), 1e-4);
            EXPECT_NEAR(ls[k], ref_loss[k], 1e-5 * ref_loss[k]);
            for (int t = 0; t < ParamLayout::kTensors; ++t)
                EXPECT_LE(rel_err(gr.data() + k * L.total + L.offset(t),
                                  ref_grad.data() + k * L.total + L.offset(t), L.size(t)),
                          1e-4)
                    << "gradient tensor " << t;
            all_h.insert(all_h.end(), h, h + (T + 1) * BN);
            for (int t = 0; t < ParamLayout::kTensors; ++t)
                all_grads.insert(all_grads.end(), gr.begin() + k * L.total + L.offset(t),
                                 gr.begin() + k * L.total + L.offset(t) + L.size(t));
        }
        if (first_h.empty()) {
            first_h = all_h;
            first_grads = all_grads;
        } else {
            EXPECT_EQ(all_h, first_h) << "states differ between geometries";
            EXPECT_EQ(all_grads, first_grads) << "gradients differ between geometries";
        }
    }
    EXPECT_FALSE(tried.empty());
}

std::vector<KernelCase> kernel_cases() {
    std::vector<KernelCase> v;
    for (int N : {2, 33, 100, 127, 256, 300})
        for (int B : {1, 7, 64}) v.push_back({7, N, B});
    for (int N : {2, 100, 300}) v.push_back({1, N, 64});
    for (int N : {33, 100, 256})
        for (int B : {7, 64}) v.push_back({33, N, B});
    return v;
}

INSTANTIATE_TEST_SUITE_P(Sizes, CudaKernels, ::testing::ValuesIn(kernel_cases()),
                         [](const auto& info) {
                             std::ostringstream s;
                             s << "K" << info.param.K << "_N" << info.param.N << "_B"
                               << info.param.B;
                             return s.str();
                         });

// ---------------------------------------------------------------- batch gather

TEST(CudaBatching, GatherMatchesHost) {
    EIRNN_REQUIRE_GPU();
    TaskParams tp;
    tp.first_in = 4;
    tp.stim_dur = 3;
    tp.mem_gap = 2;
    tp.var_delay = 5;
    tp.out_gap = 6;
    Dataset data = make_dataset(tp, 333, 9);
    const int A = 5, B = 64, j = 2, T = data.T, I = data.I, O = data.O;
    std::vector<std::uint64_t> seeds = {3, 4, 5, 6, 7};
    std::vector<int> orders(A * data.n);
    epoch_orders(seeds, 1, data.n, orders.data());
    DeviceBuffer<float> dx = upload(data.x), dy = upload(data.y), dm = upload(data.mask);
    DeviceBuffer<int> dorder = upload(orders);
    const std::size_t xs = static_cast<std::size_t>(T) * B * I + 4,
                      ys = static_cast<std::size_t>(T) * B * O + 4;
    DeviceBuffer<float> bx(A * xs), by(A * ys), bm(A * ys);
    std::vector<int> nets = {4, 3, 2, 1, 0};
    std::vector<std::uint8_t> status = {0, 0, 1, 0, 0};
    DeviceBuffer<int> dnets = upload(nets);
    DeviceBuffer<std::uint8_t> dstatus = upload(status);
    GatherArgs ga;
    ga.count = A;
    ga.nets = dnets.data();
    ga.status = dstatus.data();
    ga.order = dorder.data();
    ga.n = data.n;
    ga.first = j * B;
    ga.B = B;
    ga.T = T;
    ga.I = I;
    ga.O = O;
    ga.data_x = dx.data();
    ga.data_y = dy.data();
    ga.data_mask = dm.data();
    ga.x = bx.data();
    ga.y = by.data();
    ga.mask = bm.data();
    ga.x_stride = xs;
    ga.y_stride = ys;
    gather_batch(ga, nullptr);
    EIRNN_CHECK_CUDA(cudaDeviceSynchronize());
    auto hx = download(bx.data(), bx.size()), hy = download(by.data(), by.size());
    for (int a = 0; a < A; ++a) {
        if (status[nets[a]]) continue;
        std::vector<float> x(static_cast<std::size_t>(T) * B * I),
            y(static_cast<std::size_t>(T) * B * O), m(y.size());
        gather_batch(data, orders.data() + a * data.n + j * B, B, x.data(), y.data(), m.data());
        EXPECT_TRUE(std::equal(x.begin(), x.end(), hx.begin() + a * xs)) << a;
        EXPECT_TRUE(std::equal(y.begin(), y.end(), hy.begin() + a * ys)) << a;
    }
}

// ---------------------------------------------------------------- the fused update

struct UpdateCase {
    DaleMode dale;
    bool incoming, mask, per_tensor;
    float l2;
};

void PrintTo(const UpdateCase& c, std::ostream* os) {
    *os << eirnn::name(c.dale) << (c.incoming ? " incoming" : "") << (c.mask ? " mask" : "")
        << (c.per_tensor ? " per-tensor" : "") << " l2 " << c.l2;
}

class CudaUpdate : public ::testing::TestWithParam<UpdateCase> {};

/// One clip + Adam + constraints update of K networks against the CPU, within 1e-6.
TEST_P(CudaUpdate, OneUpdateMatchesCpu) {
    EIRNN_REQUIRE_GPU();
    const UpdateCase uc = GetParam();
    const int K = 7, N = 33, I = 2, O = 1;
    const ParamLayout L = ParamLayout::make(N, I, O);
    const std::size_t P = L.total, NN = static_cast<std::size_t>(N) * N;
    std::vector<float> p = random_vector(K * P, 1, 0.2f), g = random_vector(K * P, 2, 0.05f);
    std::vector<float> m = random_vector(K * P, 3, 0.01f), v = random_vector(K * P, 4, 0.001f);
    for (auto& x : v) x = std::abs(x);
    std::vector<float> sign(N), mask(uc.mask ? K * NN : 0);
    for (int i = 0; i < N; ++i) sign[i] = i < 17 ? 1.0f : -1.0f;
    for (std::size_t i = 0; i < mask.size(); ++i)
        mask[i] = (i * 2654435761u) % 10 < 8 ? 1.0f : 0.0f;
    std::vector<double> loss(K, 0.25);
    loss[3] = NAN;  // network 3 diverges: nothing changes
    std::vector<float> lr(K);
    for (int k = 0; k < K; ++k) lr[k] = 1e-3f * (1 + k);
    std::vector<std::uint8_t> status(K, 0);
    std::vector<std::int32_t> updates(K, 5);
    std::vector<double> sums(K, 0.0);

    auto dp = upload(p), dm = upload(m), dv = upload(v), dg = upload(g), dsign = upload(sign),
         dmask = upload(mask);
    auto dloss = upload(loss);
    auto dlr = upload(lr);
    auto dstatus = upload(status);
    auto dupd = upload(updates);
    auto dsum = upload(sums);
    OptimizerArgs a;
    a.count = K;
    a.status = dstatus.data();
    a.updates = dupd.data();
    a.epoch_sum = dsum.data();
    a.params = dp.data();
    a.m = dm.data();
    a.v = dv.data();
    a.grads = dg.data();
    a.loss = dloss.data();
    a.lr = dlr.data();
    a.P = P;
    for (int t = 0; t < 5; ++t) {
        a.off[t] = L.offset(t);
        a.size[t] = L.size(t);
    }
    a.N = N;
    a.sign = dsign.data();
    a.mask = uc.mask ? dmask.data() : nullptr;
    a.project = uc.dale == DaleMode::Project;
    a.reparam = uc.dale == DaleMode::Reparam;
    a.incoming = uc.incoming;
    a.nonneg_input = true;
    a.l2_coef = uc.l2;
    a.clipnorm = 0.5;
    a.per_tensor = uc.per_tensor;
    a.batch = 64;
    adam_update(a, nullptr);
    EIRNN_CHECK_CUDA(cudaDeviceSynchronize());
    auto gp = download(dp.data(), dp.size()), gm = download(dm.data(), dm.size()),
         gv = download(dv.data(), dv.size());
    auto gs = download(dstatus.data(), K);
    auto gu = download(dupd.data(), K);

    for (int k = 0; k < K; ++k) {
        SCOPED_TRACE("network " + std::to_string(k));
        std::vector<float> rp(p.begin() + k * P, p.begin() + (k + 1) * P),
            rm(m.begin() + k * P, m.begin() + (k + 1) * P),
            rv(v.begin() + k * P, v.begin() + (k + 1) * P),
            rg(g.begin() + k * P, g.begin() + (k + 1) * P);
        const float* mk = uc.mask ? mask.data() + k * NN : nullptr;
        if (k == 3) {
            EXPECT_EQ(gs[k], 1);
            EXPECT_EQ(gu[k], 5);
            EXPECT_TRUE(std::equal(rp.begin(), rp.end(), gp.begin() + k * P));
            continue;
        }
        EXPECT_EQ(gs[k], 0);
        EXPECT_EQ(gu[k], 6);
        for (int i = 0; i < N; ++i)
            for (int j = 0; j < N; ++j) {
                const std::size_t ij = static_cast<std::size_t>(i) * N + j;
                if (uc.dale == DaleMode::Reparam)
                    rg[L.w_rec + ij] =
                        reparam_grad_element(rg[L.w_rec + ij], rp[L.w_rec + ij],
                                             sign[uc.incoming ? i : j], mk ? mk[ij] : 1.0f);
                else if (mk && mk[ij] == 0.0f)
                    rg[L.w_rec + ij] = 0;
            }
        if (uc.l2 > 0)
            for (int t : {0, 1, 3})
                for (std::size_t i = 0; i < L.size(t); ++i)
                    if (!(t == 0 && mk && mk[i] == 0.0f))
                        rg[L.offset(t) + i] += uc.l2 * rp[L.offset(t) + i];
        double sq[5], total = 0;
        for (int t = 0; t < 5; ++t)
            total += sq[t] = cpu::sum_squares(rg.data() + L.offset(t), L.size(t));
        AdamStep step{lr[k], 0.9f, 0.999f, 1e-8f};
        for (int t = 0; t < 5; ++t) {
            double norm = std::sqrt(uc.per_tensor ? sq[t] : total);
            float scale = norm > 0.5 ? static_cast<float>(0.5 / norm) : 1.0f;
            cpu::adam_update(rp.data() + L.offset(t), rm.data() + L.offset(t),
                             rv.data() + L.offset(t), rg.data() + L.offset(t), L.size(t), scale,
                             step);
        }
        cpu::ConstraintArgs c;
        c.N = N;
        c.w_rec = L.w_rec;
        c.w_in = L.w_in;
        c.n_in = L.size(1);
        c.sign = sign.data();
        c.mask = mk;
        c.project = uc.dale == DaleMode::Project;
        c.incoming = uc.incoming;
        c.nonneg_input = true;
        cpu::apply_constraints(c, rp.data());
        for (std::size_t i = 0; i < P; ++i) {
            ASSERT_NEAR(gp[k * P + i], rp[i], 1e-6 * (1 + std::abs(rp[i]))) << i;
            ASSERT_NEAR(gm[k * P + i], rm[i], 1e-6 * (1 + std::abs(rm[i]))) << i;
            ASSERT_NEAR(gv[k * P + i], rv[i], 1e-6 * (1 + std::abs(rv[i]))) << i;
        }
        for (int i = 0; i < N; ++i)
            for (int j = 0; j < N; ++j) {
                const float w = gp[k * P + L.w_rec + static_cast<std::size_t>(i) * N + j];
                if (c.project) {
                    EXPECT_GE(sign[uc.incoming ? i : j] * w, 0.0f);
                }
                if (mk && mk[static_cast<std::size_t>(i) * N + j] == 0.0f && c.project) {
                    EXPECT_EQ(w, 0.0f);
                }
            }
    }
}

INSTANTIATE_TEST_SUITE_P(Modes, CudaUpdate,
                         ::testing::Values(UpdateCase{DaleMode::Project, false, true, false, 0},
                                           UpdateCase{DaleMode::Project, true, false, true, 0},
                                           UpdateCase{DaleMode::Reparam, false, true, false, 1e-3f},
                                           UpdateCase{DaleMode::None, false, false, false, 0}));

// ---------------------------------------------------------------- whole trainings

GroupConfig small_group(DaleMode dale, int K, int N) {
    GroupConfig c;
    c.model.units = N;
    c.model.e_frac = 0.5;
    c.model.dale = dale;
    c.model.init = Init::Orthogonal;
    c.task.kind = TaskKind::And;
    c.task.first_in = 5;
    c.task.stim_dur = 4;
    c.task.mem_gap = 3;
    c.task.var_delay = 5;
    c.task.out_gap = 8;
    c.train.batch = 16;
    // 25 updates per epoch; 5 on the emulated device (kernels on the CPU, under sanitizers).
    c.train.trials = (testutil::gpu_emulated() ? 5 : 25) * 16 + 32;
    c.train.test_trials = 32;
    c.train.epochs = 2;  // 50 updates
    c.train.lr = 2e-3;
    c.networks = K;
    c.seed = 40;
    c.threads = 0;
    c.spectra = false;
    return c;
}

GroupResult train_on(const GroupConfig& c, bool gpu, const TrainHooks* hooks = nullptr) {
    auto backend = gpu ? make_cuda_backend() : make_cpu_backend(c.threads);
    return train_group(c, *backend, nullptr, hooks);
}

/// |a - b| / |b| in the 2-norm (infinite when a has a non-finite value).
double norm_rel_err(const float* a, const float* b, std::size_t n) {
    double d = 0, m = 0;
    for (std::size_t i = 0; i < n; ++i) {
        if (!std::isfinite(a[i])) return INFINITY;
        d += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
        m += static_cast<double>(b[i]) * b[i];
    }
    return std::sqrt(d / std::max(m, 1e-60));
}

/// Per network, over its parameter slice: the 2-norm relative difference within tol, and no
/// element further than 10 tol of the largest (Adam turns the sign of a gradient that is zero up
/// to rounding into a full step, so one element may move a little more than the rest).
void expect_params_close(const GroupResult& gpu, const GroupResult& cpu, double tol) {
    const std::size_t P = cpu.st.params.layout.total;
    for (int k = 0; k < cpu.st.params.K; ++k) {
        const float* a = gpu.st.params.params.data() + k * P;
        const float* b = cpu.st.params.params.data() + k * P;
        EXPECT_LE(norm_rel_err(a, b, P), tol) << "network " << k;
        EXPECT_LE(rel_err(a, b, P), 10 * tol) << "network " << k;
    }
}

struct TrainCase {
    const char* name;
    DaleMode dale;
    DaleAxis axis;
    double p_connect, alpha, sigma, l2_rate, l2_weight;
    ClipMode clip;
    int N;
};

void PrintTo(const TrainCase& c, std::ostream* os) {
    *os << c.name;
}

class CudaTraining : public ::testing::TestWithParam<TrainCase> {};

/// 50 updates from identical starts on both backends: weights within 1e-3 relative, the same
/// update counts and flags; Dale signs and mask zeros exactly kept on the GPU.
TEST_P(CudaTraining, FiftyUpdatesMatchCpu) {
    EIRNN_REQUIRE_GPU();
    const TrainCase tc = GetParam();
    GroupConfig c = small_group(tc.dale, gpu_emulated() ? 3 : 7, tc.N);
    c.model.dale_axis = tc.axis;
    c.model.p_connect = tc.p_connect;
    c.model.alpha = tc.alpha;
    c.model.sigma_rec = tc.sigma;
    c.train.l2_rate = tc.l2_rate;
    c.train.l2_weight = tc.l2_weight;
    c.train.clip = tc.clip;
    GroupResult g = train_on(c, true), r = train_on(c, false);
    expect_params_close(g, r, 1e-3);
    for (int k = 0; k < c.networks; ++k) {
        EXPECT_EQ(g.st.updates[k], r.st.updates[k]);
        EXPECT_EQ(g.st.diverged[k], r.st.diverged[k]);
        EXPECT_EQ(g.st.epochs_run[k], r.st.epochs_run[k]);
        for (int e = 0; e < c.train.epochs; ++e)
            EXPECT_NEAR(g.st.loss[k * c.train.epochs + e], r.st.loss[k * c.train.epochs + e],
                        1e-3 * std::abs(r.st.loss[k * c.train.epochs + e]));
    }
    const auto& gp = g.st.params;
    const int N = c.model.units;
    const auto w = g.w_rec_final();
    for (int k = 0; k < c.networks; ++k)
        for (int i = 0; i < N; ++i)
            for (int j = 0; j < N; ++j) {
                const std::size_t ij = (static_cast<std::size_t>(k) * N + i) * N + j;
                if (c.model.dale != DaleMode::None) {
                    ASSERT_GE(gp.sign[tc.axis == DaleAxis::Incoming ? i : j] * w[ij], 0.0f);
                }
                if (!gp.mask.empty() && gp.mask[ij] == 0.0f) {
                    ASSERT_EQ(w[ij], 0.0f);
                }
            }
    for (int k = 0; k < c.networks; ++k) {
        const float* win = gp.params.data() + k * gp.layout.total + gp.layout.w_in;
        for (std::size_t i = 0; i < gp.layout.size(1); ++i) ASSERT_GE(win[i], 0.0f);
    }
}

INSTANTIATE_TEST_SUITE_P(
    Modes, CudaTraining,
    ::testing::Values(TrainCase{"project", DaleMode::Project, DaleAxis::Outgoing, 1.0, 1.0, 0, 0, 0,
                                ClipMode::Global, 33},
                      TrainCase{"project_mask_incoming", DaleMode::Project, DaleAxis::Incoming, 0.8,
                                1.0, 0, 0, 0, ClipMode::PerTensor, 20},
                      TrainCase{"reparam_mask", DaleMode::Reparam, DaleAxis::Outgoing, 0.9, 1.0, 0,
                                0, 1e-4, ClipMode::Global, 12},
                      TrainCase{"leak_noise_rate", DaleMode::Project, DaleAxis::Outgoing, 1.0, 0.5,
                                0.1, 1e-3, 0, ClipMode::Global, 24},
                      TrainCase{"none_n256", DaleMode::None, DaleAxis::Outgoing, 1.0, 1.0, 0, 0, 0,
                                ClipMode::Global, 256}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(CudaTrainingWaves, WavesGiveTheSameNetworks) {
    EIRNN_REQUIRE_GPU();
    GroupConfig c = small_group(DaleMode::Project, 9, 16);
    c.train.epochs = 1;
    CudaBackend one, many;
    GroupResult a = train_group(c, one, nullptr);
    // Room for about four networks at a time: three waves.
    const MemoryNeeds m = memory_needs(a.st.params.layout, a.T, c.train.batch,
                                       c.train.trials - c.train.test_trials, false, RnnChoice{});
    many.limit_memory(m.fixed + (std::size_t(256) << 20) + 4 * m.per_network + m.per_network / 2);
    GroupResult b = train_group(c, many, nullptr);
    EXPECT_EQ(one.timing().waves, 1);
    EXPECT_GE(many.timing().waves, 2);
    expect_params_close(b, a, 1e-4);
}

TEST(CudaTrainingDivergence, OneDivergingNetworkLeavesOthersAlone) {
    EIRNN_REQUIRE_GPU();
    GroupConfig c = small_group(DaleMode::None, 4, 12);
    c.train.clipnorm = 0;
    GroupResult clean = train_on(c, true);
    TrainHooks hooks;
    hooks.lr_scale = {1.0f, 1e30f, 1.0f, 1.0f};
    GroupResult mixed = train_on(c, true, &hooks);
    EXPECT_TRUE(mixed.st.diverged[1]);
    const std::size_t P = clean.st.params.layout.total;
    for (int k : {0, 2, 3}) {
        EXPECT_FALSE(mixed.st.diverged[k]);
        EXPECT_LE(norm_rel_err(mixed.st.params.params.data() + k * P,
                               clean.st.params.params.data() + k * P, P),
                  1e-4);
    }
    for (std::size_t i = 0; i < P; ++i) ASSERT_TRUE(std::isfinite(mixed.st.params.params[P + i]));
    GroupResult cpu = train_on(c, false, &hooks);
    EXPECT_EQ(cpu.st.updates[1], mixed.st.updates[1]) << "diverges at the same update";
}

/// AND with the study's timing, unconstrained orthogonal N = 50, 64 networks, with the CPU learning
/// test's settings (tests/test_train.cpp). The CPU backend learns (held-out accuracy >= 0.9) on 57
/// of these 64 seeds, all of the first eight among them; the other seven stay on the "always 0"
/// plateau (accuracy 0.81), measured 2026-11-28. The GPU must give the same distribution: at least
/// 54 learners, the first eight included, and the CPU's numbers on those eight.
TEST(CudaTrainingLearning, AndN50K64LearnsLikeTheCpu) {
    EIRNN_REQUIRE_GPU();
    if (gpu_emulated())
        GTEST_SKIP() << "learning to criterion takes about a thousand updates: hours on the "
                        "emulated device; the training paths are covered by CudaTraining.*";
    // Emulated: the first eight networks only (all of them learn on the CPU backend).
    const bool trimmed = gpu_emulated();
    GroupConfig c = testutil::and_learning_config(trimmed ? 8 : 64);
    GroupResult g = train_on(c, true);
    int learned = 0;
    for (int k = 0; k < c.networks; ++k) {
        learned += g.accuracy[k] >= 0.9f;
        EXPECT_FALSE(g.st.diverged[k]);
    }
    if (!trimmed) {
        EXPECT_GE(learned, 54) << "of 64 (the CPU backend: 57)";
    }
    c.networks = 8;
    GroupResult r = train_on(c, false);
    for (int k = 0; k < c.networks; ++k) {
        EXPECT_GE(g.accuracy[k], 0.9f) << "network " << k << " test loss " << g.test_loss[k];
        EXPECT_NEAR(g.accuracy[k], r.accuracy[k], 0.05) << "network " << k;
        EXPECT_LE(std::abs(g.st.epochs_run[k] - r.st.epochs_run[k]), 1) << "network " << k;
    }
}

// ---------------------------------------------------------------- the CLI on the device

/// Runs the eirnn CLI; its exit status and standard output.
std::pair<int, std::string> run_cli(const std::string& args, const std::string& dir) {
    const std::string out = dir + "/stdout";
    const int rc = std::system(
        (std::string(EIRNN_BINARY) + " " + args + " >" + out + " 2>&1 </dev/null").c_str());
    std::string text;
    if (FILE* f = std::fopen(out.c_str(), "r")) {
        char buf[4096];
        std::size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
        std::fclose(f);
    }
    return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, text};
}

/// `eirnn train --backend cuda` and `eirnn spectrum --backend cuda` (batched kernel and Xgeev)
/// end to end: the same losses and spectral metrics as the CPU backend, within float rounding.
TEST(CudaCli, TrainAndSpectrumThroughTheCli) {
    EIRNN_REQUIRE_GPU();
    testutil::TempDir tmp("eirnn_cuda_cli");
    const std::string dir = tmp.path.string();
    const std::string common =
        " --networks 3 --units 24 --epochs 2 --trials 112 --test-trials 16 --batch 32"
        " --first-in 5 --stim-dur 4 --mem-gap 3 --var-delay 5 --out-gap 8 --alpha 0.5"
        " --sigma-rec 0.05 --p-connect 0.9 --quiet --force -o ";
    auto [rc_gpu, out_gpu] = run_cli("train --backend cuda" + common + dir + "/gpu.h5", dir);
    ASSERT_EQ(rc_gpu, 0) << out_gpu;
    auto [rc_cpu, out_cpu] = run_cli("train --backend cpu" + common + dir + "/cpu.h5", dir);
    ASSERT_EQ(rc_cpu, 0) << out_cpu;
    auto metrics = [&](const std::string& args) {
        auto [rc, text] = run_cli("spectrum --format csv " + args, dir);
        EXPECT_EQ(rc, 0) << text;
        std::vector<double> v;
        std::stringstream ss(text);
        std::string line;
        std::getline(ss, line);  // header
        while (std::getline(ss, line)) {
            std::stringstream ls(line);
            std::string cell;
            while (std::getline(ls, cell, ','))
                if (!cell.empty() && (std::isdigit(static_cast<unsigned char>(cell[0])) ||
                                      cell[0] == '-' || cell[0] == '.'))
                    v.push_back(std::strtod(cell.c_str(), nullptr));
        }
        return v;
    };
    const std::vector<double> ref = metrics("--backend cpu --eig-method lapack " + dir + "/cpu.h5");
    ASSERT_FALSE(ref.empty());
    for (const char* method : {"batched", "xgeev"}) {
        // The spectra of the GPU-trained file through the device's solvers against LAPACK on the
        // CPU-trained file: the two trainings agree to float rounding (FiftyUpdatesMatchCpu).
        const std::vector<double> got =
            metrics(std::string("--backend cuda --eig-method ") + method + " " + dir + "/gpu.h5");
        ASSERT_EQ(got.size(), ref.size()) << method;
        for (std::size_t i = 0; i < ref.size(); ++i)
            EXPECT_NEAR(got[i], ref[i], 1e-3 * (1 + std::abs(ref[i]))) << method << " value " << i;
    }
}

}  // namespace
}  // namespace eirnn::cuda
