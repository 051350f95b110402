// The machine's fp32 limit, measured: the core clock (chains of dependent integer adds and
// multiplies) and the fused multiply-add throughput of each vector ISA the CPU runs (AVX2,
// AVX-512; independent FMA chains, enough to cover the latency of every FMA unit; the fastest
// counts), on each of --threads threads at once, and the estimate clock x FMA units x lanes x 2 x
// threads (bench/fma_peak.hpp). Prints one `key value` line per figure; peak_gflops is the larger
// of the two. bench/compare divides every rate by the largest of this peak and the best SGEMM it
// measures.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "bench/fma_peak.hpp"

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
    const eirnn::bench::FmaPeak p = eirnn::bench::measure_fma_peak(threads);
    std::printf("threads %d\n", threads);
    std::printf("clock_ghz %.3f\n", p.clock_ghz);
    for (std::size_t i = 0; i < p.loops.size(); ++i) {
        std::printf("fma_%s_gflops %.1f\n", p.loops[i].first.c_str(), p.loops[i].second);
        std::printf("fma_%s_best_thread_gflops %.1f\n", p.loops_best_thread[i].first.c_str(),
                    p.loops_best_thread[i].second);
    }
    if (p.units > 0) {
        std::printf("fma_units_per_core %d\n", p.units);
        std::printf("estimate_gflops %.1f\n", p.estimate);
    }
    std::printf("peak_isa %s\n", p.isa.c_str());
    std::printf("peak_from %s\n",
                p.estimate > p.measured ? "clock x ISA" : "measured FMA throughput");
    std::printf("peak_gflops %.1f\n", p.peak());
    return 0;
}
