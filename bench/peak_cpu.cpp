// The machine's fp32 limit, measured: the core clock (a chain of dependent integer adds, one per
// cycle) and the fused multiply-add throughput of the widest vector ISA the CPU runs (independent
// FMA chains, enough to cover the latency of every FMA unit), on each of --threads threads at
// once, and the estimate clock x FMA units x lanes x 2 x threads. Prints one `key value` line per
// figure; peak_gflops is the larger of the two. bench/compare divides every rate by the largest of
// this peak and the best SGEMM it measures.
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

/// Cycles per second of one core: 8 dependent adds per iteration, one cycle each.
double clock_hz() {
    double best = 0;
    for (int round = 0; round < 5; ++round) {
        const long iters = 50'000'000;
        long x = 0;
        auto t0 = Clock::now();
        for (long i = 0; i < iters; ++i) {
            asm volatile(
                "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
                "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0"
                : "+r"(x));
        }
        best = std::max(best, 8.0 * iters / seconds_since(t0));
        if (x != 8 * iters) std::abort();
    }
    return best;
}

// Independent accumulators: enough to cover latency (4-5 cycles) x FMA units (2-3), few enough to
// stay in registers with the two operands (AVX2 has 16 ymm registers: 16 chains would spill and
// measure the stores instead of the FMA units; AVX-512 has 32 zmm).
constexpr int kChains2 = 12, kChains512 = 16;

__attribute__((target("avx2,fma"))) double fma_avx2(long iters) {
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

__attribute__((target("avx512f"))) double fma_avx512(long iters) {
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
double fma_gflops(double (*loop)(long), int lanes, int chains, int threads, double& best_thread) {
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
                const auto start = Clock::now();
                sink[t] = loop(iters);
                own[t] = seconds_since(start);
            });
        while (ready.load() < threads) std::this_thread::yield();
        auto t0 = Clock::now();
        go.store(true);
        for (auto& th : pool) th.join();
        const double s = seconds_since(t0);
        best = std::max(best, flops * threads / s / 1e9);
        for (double o : own) best_thread = std::max(best_thread, flops / o / 1e9);
        if (sink[0] == 12345.0) std::puts("");  // keep the results alive
    }
    return best;
}

}  // namespace

int main(int argc, char** argv) {
    int threads = 1;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--threads" && i + 1 < argc) {
            threads = std::atoi(argv[++i]);
        } else {
            std::fprintf(stderr, "usage: peak_cpu [--threads N]\n");
            return 2;
        }
    }
    if (threads < 1 || threads > 4096) {
        std::fprintf(stderr, "peak_cpu: --threads must be 1..4096\n");
        return 2;
    }
    __builtin_cpu_init();
    std::printf("threads %d\n", threads);
    const double ghz = clock_hz() / 1e9;
    std::printf("clock_ghz %.3f\n", ghz);
    std::string isa = "none";
    double measured = 0, per_thread = 0;
    int lanes = 0;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        double one = 0;
        const double g = fma_gflops(fma_avx2, 8, kChains2, threads, one);
        std::printf("fma_avx2_gflops %.1f\n", g);
        std::printf("fma_avx2_best_thread_gflops %.1f\n", one);
        if (g > measured) measured = g, per_thread = one, isa = "avx2+fma", lanes = 8;
    }
    if (__builtin_cpu_supports("avx512f")) {
        double one = 0;
        const double g = fma_gflops(fma_avx512, 16, kChains512, threads, one);
        std::printf("fma_avx512_gflops %.1f\n", g);
        std::printf("fma_avx512_best_thread_gflops %.1f\n", one);
        if (g > measured) measured = g, per_thread = one, isa = "avx512f", lanes = 16;
    }
    // The estimate from the clock and the ISA: whole FMA units per core (the FMAs per cycle of the
    // fastest thread, rounded: a property of the core, which a thread that lost its core to other
    // work for a while would halve) x lanes x 2 FLOPs x clock x threads. It is above the
    // measurement when a thread lost time to other work, or the clock moved, while it ran.
    double estimate = 0;
    if (lanes > 0 && ghz > 0) {
        const double per_cycle = std::max(measured / threads, per_thread) / ghz / (2.0 * lanes);
        const int units = std::max(1, static_cast<int>(per_cycle + 0.5));
        estimate = units * 2.0 * lanes * ghz * threads;
        std::printf("fma_units_per_core %d\n", units);
        std::printf("estimate_gflops %.1f\n", estimate);
    }
    std::printf("peak_isa %s\n", isa.c_str());
    std::printf("peak_from %s\n", estimate > measured ? "clock x ISA" : "measured FMA throughput");
    std::printf("peak_gflops %.1f\n", std::max(measured, estimate));
    return 0;
}
