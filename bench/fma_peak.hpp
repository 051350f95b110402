// The machine's fp32 limit, measured (x86-64): the core clock (chains of dependent integer adds
// and multiplies, clock_hz) and the fused multiply-add throughput of each vector ISA the CPU runs
// (independent FMA chains, enough to cover the latency of every FMA unit; the fastest counts) on
// `threads` threads at once, and the estimate clock x FMA units x lanes x 2 x threads.
// bench/peak_cpu prints it; bench/train_cpu divides by the larger of it and its SGEMM.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace eirnn::bench {

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Cycles per second of one core, the smaller of two dependent chains that run at one link per
/// cycle and three cycles per link on every x86-64 core: register-to-register adds (not adds of
/// an immediate, which Intel's cores since Golden Cove fold at rename, several per cycle: such a
/// chain measured 7-11 "GHz" on a 2.9 GHz Xeon) and 64-bit multiplies. Each is the best of 5
/// rounds; a core that ever shortened one chain would still be timed by the other.
inline double clock_hz() {
    double add_rate = 0, mul_rate = 0;
    for (int round = 0; round < 5; ++round) {
        const long iters = 50'000'000;
        long x = 0;
        const long one = 1;
        auto t0 = std::chrono::steady_clock::now();
        for (long i = 0; i < iters; ++i) {
            asm volatile(
                "add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\t"
                "add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0"
                : "+r"(x)
                : "r"(one));
        }
        add_rate = std::max(add_rate, 8.0 * iters / seconds_since(t0));
        if (x != 8 * iters) std::abort();
        long y = 3;
        t0 = std::chrono::steady_clock::now();
        for (long i = 0; i < iters / 3; ++i) {
            asm volatile(
                "imul %0, %0\n\timul %0, %0\n\timul %0, %0\n\timul %0, %0\n\t"
                "imul %0, %0\n\timul %0, %0\n\timul %0, %0\n\timul %0, %0"
                : "+r"(y));
        }
        mul_rate = std::max(mul_rate, 3.0 * 8.0 * (iters / 3) / seconds_since(t0));
        if (y == 12345) std::abort();  // keeps the chain alive; 3^(2^k) mod 2^64 is odd, never it
    }
    return std::min(add_rate, mul_rate);
}

// Independent accumulators: enough to cover latency (4-5 cycles) x FMA units (2-3), few enough to
// stay in registers with the two operands (AVX2 has 16 ymm registers: 16 chains would spill and
// measure the stores instead of the FMA units; AVX-512 has 32 zmm).
inline constexpr int kChains2 = 12, kChains512 = 16;

__attribute__((target("avx2,fma"))) inline double fma_avx2(long iters) {
    constexpr int kChains = kChains2;
    __m256 acc[kChains];
    for (int c = 0; c < kChains; ++c) acc[c] = _mm256_set1_ps(0.001f * c);
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (long i = 0; i < iters; ++i)
#pragma GCC unroll 12
        for (int c = 0; c < kChains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
    __m256 s = acc[0];
    for (int c = 1; c < kChains; ++c) s = _mm256_add_ps(s, acc[c]);
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0];
}

__attribute__((target("avx512f"))) inline double fma_avx512(long iters) {
    constexpr int kChains = kChains512;
    __m512 acc[kChains];
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(0.001f * c);
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (long i = 0; i < iters; ++i)
#pragma GCC unroll 16
        for (int c = 0; c < kChains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
    for (int c = 1; c < kChains; ++c) acc[0] = _mm512_add_ps(acc[0], acc[c]);
    float out[16];
    _mm512_storeu_ps(out, acc[0]);
    return out[0];
}

/// GFLOP/s of `threads` threads each running the FMA loop of `lanes` fp32 lanes and `chains`
/// accumulators, all together (the wall time of the slowest); best_thread: the fastest single
/// thread's own rate, timed by itself, which another tenant's work on one of the cores does not
/// pull down as it does the aggregate.
inline double fma_gflops(double (*loop)(long), int lanes, int chains, int threads,
                         double& best_thread) {
    const long iters = 20'000'000;
    const double flops = 2.0 * lanes * chains * double(iters);
    double best = 0;
    best_thread = 0;
    for (int round = 0; round < 3; ++round) {
        std::atomic<int> ready{0};
        std::atomic<bool> go{false};
        std::vector<double> sink(threads), own(threads);
        std::vector<std::thread> pool;
        for (int t = 0; t < threads; ++t)
            pool.emplace_back([&, t] {
                ready.fetch_add(1);
                while (!go.load()) std::this_thread::yield();
                const auto start = std::chrono::steady_clock::now();
                sink[t] = loop(iters);
                own[t] = seconds_since(start);
            });
        while (ready.load() < threads) std::this_thread::yield();
        auto t0 = std::chrono::steady_clock::now();
        go.store(true);
        for (auto& th : pool) th.join();
        const double s = seconds_since(t0);
        best = std::max(best, flops * threads / s / 1e9);
        for (double o : own) best_thread = std::max(best_thread, flops / o / 1e9);
        if (sink[0] == 12345.0) std::abort();  // keeps the results alive; never equal
    }
    return best;
}

struct FmaPeak {
    int threads = 1;
    double clock_ghz = 0;
    std::string isa = "none";  ///< the fastest ISA measured: avx2+fma, avx512f
    double measured = 0;       ///< GFLOP/s of the FMA loop on all threads at once
    double best_thread = 0;    ///< the fastest thread's own GFLOP/s in that loop
    std::vector<std::pair<std::string, double>> loops;  ///< every ISA: aggregate GFLOP/s
    std::vector<std::pair<std::string, double>> loops_best_thread;
    int units = 0;        ///< FMA units per core (0: no estimate)
    double estimate = 0;  ///< clock x units x lanes x 2 x threads, GFLOP/s
    double peak() const { return std::max(measured, estimate); }
};

/// The FMA loops of every vector ISA the CPU runs, and the estimate from the clock and the ISA:
/// whole FMA units per core (the FMAs per cycle of the fastest thread, rounded: a property of the
/// core, which a thread that lost its core to other work for a while would halve) x lanes x 2
/// FLOPs x clock x threads. The estimate is above the measurement when a thread lost time to other
/// work, or the clock moved, while it ran.
inline FmaPeak measure_fma_peak(int threads) {
    __builtin_cpu_init();
    FmaPeak p;
    p.threads = threads;
    p.clock_ghz = clock_hz() / 1e9;
    int lanes = 0;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        double one = 0;
        const double g = fma_gflops(fma_avx2, 8, kChains2, threads, one);
        p.loops.emplace_back("avx2", g);
        p.loops_best_thread.emplace_back("avx2", one);
        if (g > p.measured) p.measured = g, p.best_thread = one, p.isa = "avx2+fma", lanes = 8;
    }
    if (__builtin_cpu_supports("avx512f")) {
        double one = 0;
        const double g = fma_gflops(fma_avx512, 16, kChains512, threads, one);
        p.loops.emplace_back("avx512", g);
        p.loops_best_thread.emplace_back("avx512", one);
        if (g > p.measured) p.measured = g, p.best_thread = one, p.isa = "avx512f", lanes = 16;
    }
    if (lanes > 0 && p.clock_ghz > 0) {
        const double per_cycle =
            std::max(p.measured / threads, p.best_thread) / p.clock_ghz / (2.0 * lanes);
        p.units = std::max(1, static_cast<int>(per_cycle + 0.5));
        p.estimate = p.units * 2.0 * lanes * p.clock_ghz * threads;
    }
    return p;
}

}  // namespace eirnn::bench
