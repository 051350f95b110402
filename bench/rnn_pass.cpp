// The forward and the BPTT backward of one network (kernels/cpu/rnn.*) on one thread, without the
// rest of an update (batches, loss, Adam): the rate of the recurrent loop itself. Plain steps
// (alpha = 1, no noise), B = 64, 2 inputs, 1 output, random weights and output gradient.
// Prints the best and the median of R repetitions, in GFLOP/s (2 N^2 per trial-step forward,
// 4 N^2 backward). --steps T (default 290): fewer steps keep the states in cache.
// Usage: rnn_pass [--units N] [--reps R] [--steps T]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/gemm_small.hpp"
#include "kernels/cpu/rnn.hpp"

int main(int argc, char** argv) {
    int N = 100, reps = 30, T = 290;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string f = argv[i];
        const int v = std::atoi(argv[i + 1]);
        if (f == "--units" && v >= 2)
            N = v;
        else if (f == "--reps" && v >= 1)
            reps = v;
        else if (f == "--steps" && v >= 1)
            T = v;
        else {
            std::fprintf(stderr, "rnn_pass: bad flag or value: %s %s\n", argv[i], argv[i + 1]);
            return 2;
        }
    }
    eirnn::RnnDims d;
    d.N = N;
    d.B = 64;
    d.T = T;
    d.I = 2;
    d.O = 1;
    const std::size_t BN = static_cast<std::size_t>(d.B) * N, NN = static_cast<std::size_t>(N) * N;
    const std::size_t TB = static_cast<std::size_t>(d.T) * d.B;
    std::mt19937 gen(1);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    auto filled = [&](std::size_t n, float scale) {
        std::vector<float> v(n);
        for (float& x : v) x = scale * normal(gen);
        return v;
    };
    const std::vector<float> w = filled(NN, 1.0f / std::sqrt(static_cast<float>(N))),
                             w_in = filled(2 * static_cast<std::size_t>(N), 1.0f),
                             b = filled(N, 0.1f), w_out = filled(N, 0.1f), b_out(1, 0.0f),
                             x = filled(TB * 2, 1.0f), grad_y = filled(TB, 1e-3f);
    std::vector<float> h((d.T + 1) * BN), th(d.T * BN), y(TB), dh(BN), g_rec(NN), g_in(2 * N),
        g_b(N), g_out(N), g_b_out(1);
    std::vector<double> fw, bw;
    using clock = std::chrono::steady_clock;
    for (int r = 0; r < reps; ++r) {
        const auto t0 = clock::now();
        eirnn::cpu::rnn_forward(d, w.data(), w_in.data(), b.data(), w_out.data(), b_out.data(),
                                x.data(), static_cast<const float*>(nullptr), 1.0f, h.data(),
                                th.data(), y.data());
        const auto t1 = clock::now();
        eirnn::cpu::rnn_backward(d, w.data(), w_out.data(), x.data(), h.data(),
                                 static_cast<float*>(nullptr), true, grad_y.data(),
                                 static_cast<const float*>(nullptr), 1.0f, dh.data(), g_rec.data(),
                                 g_in.data(), g_b.data(), g_out.data(), g_b_out.data());
        const auto t2 = clock::now();
        fw.push_back(std::chrono::duration<double>(t1 - t0).count());
        bw.push_back(std::chrono::duration<double>(t2 - t1).count());
    }
    std::sort(fw.begin(), fw.end());
    std::sort(bw.begin(), bw.end());
    const double gf = 2.0 * static_cast<double>(TB) * static_cast<double>(NN) / 1e9;
    std::printf("rnn_pass: N=%d B=64 T=%d, one thread, %s kernels, %d repetitions\n", N, T,
                eirnn::cpu::gemm_isa_name(eirnn::cpu::gemm_small_isa()), reps);
    std::printf("forward   best %6.1f  median %6.1f GFLOP/s\n", gf / fw.front(),
                gf / fw[fw.size() / 2]);
    std::printf("backward  best %6.1f  median %6.1f GFLOP/s\n", 2 * gf / bw.front(),
                2 * gf / bw[bw.size() / 2]);
    return 0;
}
