// Benchmark of the CPU backend on the workload of record (AND, B=64, T=290, K networks of N units,
// a few updates each) next to the machine's fp32 ceiling measured in the same run: the larger of
// a 2048^3 SGEMM (the BLAS eirnn links) and the FMA peak of bench/fma_peak.hpp (x86-64: clock x
// FMA units x lanes x 2 x threads, or the FMA loop if faster).
// Prints trial-steps/s, recurrent GFLOP/s (6 N^2 per trial-step), the SGEMM rate, the ceiling and
// the percentage of the ceiling (bench/compare reads that row).
// Usage: train_cpu [--units N] [--networks K] [--updates U] [--threads P]
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#if defined(__x86_64__)
#include "bench/fma_peak.hpp"
#endif
#include "host/core/backend.hpp"
#include "host/train/trainer.hpp"
#include "kernels/cpu/blas.hpp"

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// SGEMM GFLOP/s on large square matrices with all threads.
double sgemm_gflops(int threads) {
    const int n = 2048;
    std::vector<float> a(static_cast<std::size_t>(n) * n, 0.5f), b(a.size(), 0.25f), c(a.size());
    eirnn::cpu::set_blas_threads(threads);
    eirnn::cpu::gemm(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    int reps = 0;
    auto t0 = std::chrono::steady_clock::now();
    do {
        eirnn::cpu::gemm(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
        ++reps;
    } while (seconds_since(t0) < 2.0);
    return 2.0 * n * n * double(n) * reps / seconds_since(t0) / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
    int N = 100, K = 16, updates = 8, threads = omp_get_max_threads();
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string f = argv[i];
        int v = std::atoi(argv[i + 1]);
        if (f == "--units")
            N = v;
        else if (f == "--networks")
            K = v;
        else if (f == "--updates")
            updates = v;
        else if (f == "--threads")
            threads = v;
        else {
            std::fprintf(stderr, "train_cpu: unknown flag %s\n", f.c_str());
            return 2;
        }
    }
    eirnn::GroupConfig c;
    c.model.units = N;
    c.model.dale = eirnn::DaleMode::Project;
    c.task.kind = eirnn::TaskKind::And;
    c.train.batch = 64;
    c.train.test_trials = 50;
    c.train.trials = 64 * updates + c.train.test_trials;
    c.train.epochs = 1;
    c.networks = K;
    c.threads = threads;
    c.spectra = false;
    auto backend = eirnn::make_cpu_backend(threads);
    eirnn::GroupResult r = eirnn::train_group(c, *backend, nullptr);  // warm-up
    r = eirnn::train_group(c, *backend, nullptr);
    const double T = 290, B = 64;
    double trial_steps = double(K) * updates * B * T;
    double ts_per_s = trial_steps / r.train_seconds;
    double gflops = ts_per_s * 6.0 * N * N / 1e9;
    const double sgemm = sgemm_gflops(threads);
    double ceiling = sgemm;
    std::string ceiling_from = "the 2048^3 SGEMM";
#if defined(__x86_64__)
    // On a shared machine one measurement of the FMA peak can lose its clock or a thread to other
    // work (once 184 GFLOP/s instead of about 368: one FMA unit per core counted, not two), so it
    // is measured three times and the largest kept.
    eirnn::bench::FmaPeak fma = eirnn::bench::measure_fma_peak(threads);
    for (int retry = 0; retry < 2; ++retry) {
        eirnn::bench::FmaPeak again = eirnn::bench::measure_fma_peak(threads);
        if (again.peak() > fma.peak()) fma = again;
    }
    if (fma.peak() > ceiling) {
        ceiling = fma.peak();
        char what[160];
        std::snprintf(what, sizeof what,
                      "the FMA peak (%s, clock %.2f GHz, %d FMA units per core%s)", fma.isa.c_str(),
                      fma.clock_ghz, fma.units,
                      fma.estimate > fma.measured ? ", clock x ISA" : ", FMA loop");
        ceiling_from = what;
    }
#endif
    std::printf("workload: AND, N=%d, B=64, T=290, K=%d, %d updates each, %d threads\n", N, K,
                updates, threads);
    std::printf("ceiling: %.1f GFLOP/s, %s\n", ceiling, ceiling_from.c_str());
    std::printf("%-28s %14s %12s %12s %12s %8s\n", "", "trial-steps/s", "GFLOP/s", "SGEMM GF/s",
                "ceiling GF/s", "% ceil");
    // A rate above the ceiling means every measurement of the ceiling lost time to other work:
    // no percentage then (one such run would have printed 114 %).
    char pct[16] = "n/a";
    if (gflops <= ceiling) std::snprintf(pct, sizeof pct, "%.1f%%", 100.0 * gflops / ceiling);
    std::printf("%-28s %14.4g %12.2f %12.2f %12.2f %8s\n", "eirnn cpu train", ts_per_s, gflops,
                sgemm, ceiling, pct);
    if (gflops > ceiling)
        std::fprintf(stderr,
                     "train_cpu: the training ran faster than the ceiling measured after it; the "
                     "machine was busy while the ceiling was measured, so no %% is given\n");
    return 0;
}
