// Benchmark of the hand-written SGEMMs (kernels/cpu/gemm_small.*) against cblas_sgemm (OpenBLAS) on
// the three products of the recurrent loop, B = 64, T = 290: the forward a_t += h_t W^T and the
// delta dh += da_t W over a T-step sweep (one product per step; the kernels get W^T or W packed
// once per sweep, pack_b, as the engine does), and the weight gradient DA^T H over T*B rows; then a
// large square SGEMM. "1 thr": one thread; "Px1": P threads each running its own network's products
// with one BLAS thread (what the CPU backend does); "1xP": one stream with P OpenBLAS threads. Best
// of several timed runs. Usage: gemm_small [--seconds S] [--threads P] [--isa portable|avx2|avx512]
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cpu/gemm_small.hpp"

namespace {

using eirnn::cpu::GemmIsa;

constexpr int kB = 64, kT = 290, kLarge = 2048, kRepeats = 5;

enum class Op { Forward, Delta, WeightGrad, Large };
enum class Impl { Kernels, Cblas };

/// One thread's operands of one product stream.
struct Buffers {
    int N;
    std::vector<float> h, a, w, wt, dh, g;  // h (T+1,B,N), a (T,B,N), w and wt (N,N), dh (B,N), g
    eirnn::cpu::PackedB packed;             // wt (forward) or w (delta), packed once per sweep

    Buffers(Op op, int n) : N(n) {
        std::mt19937 gen(1);
        std::uniform_real_distribution<float> dist(-0.5f, 0.5f);
        auto fill = [&](std::vector<float>& v, std::size_t size, float scale) {
            v.resize(size);
            for (float& x : v) x = scale * dist(gen);
        };
        const std::size_t NN = static_cast<std::size_t>(N) * N,
                          BN = static_cast<std::size_t>(kB) * N;
        if (op == Op::Large) {
            fill(h, NN, 1.0f);
            fill(w, NN, 1.0f / N);
            fill(g, NN, 1.0f);
            return;
        }
        fill(h, (kT + 1) * BN, 1.0f);
        fill(a, kT * BN, 1.0f);
        fill(w, NN, 1.0f / N);
        wt.resize(NN);
        fill(dh, BN, 1.0f);
        g.resize(NN);
    }
};

/// One sweep (or one large product) on buf; returns its FLOPs.
double run_once(Op op, Impl impl, GemmIsa isa, Buffers& buf) {
    const int N = buf.N;
    const long BN = static_cast<long>(kB) * N;
    switch (op) {
        case Op::Forward:
            if (impl == Impl::Kernels) {
                eirnn::cpu::transpose(N, N, buf.w.data(), N, buf.wt.data(), N);
                eirnn::cpu::pack_b(isa, N, N, buf.wt.data(), N, buf.packed);
            }
            for (int t = 0; t < kT; ++t) {
                const float* ht = buf.h.data() + t * BN;
                float* at = buf.a.data() + t * BN;
                if (impl == Impl::Kernels)
                    eirnn::cpu::gemm_small(kB, ht, N, 1, buf.packed, true, at, N);
                else
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, kB, N, N, 1.0f, ht, N,
                                buf.w.data(), N, 1.0f, at, N);
            }
            return 2.0 * kT * kB * N * double(N);
        case Op::Delta:
            if (impl == Impl::Kernels) eirnn::cpu::pack_b(isa, N, N, buf.w.data(), N, buf.packed);
            for (int t = kT - 1; t >= 0; --t) {
                const float* dat = buf.a.data() + t * BN;
                if (impl == Impl::Kernels)
                    eirnn::cpu::gemm_small(kB, dat, N, 1, buf.packed, true, buf.dh.data(), N);
                else
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, kB, N, N, 1.0f, dat, N,
                                buf.w.data(), N, 1.0f, buf.dh.data(), N);
            }
            return 2.0 * kT * kB * N * double(N);
        case Op::WeightGrad: {
            const int TB = kT * kB;
            if (impl == Impl::Kernels)
                eirnn::cpu::gemm_small(isa, N, N, TB, buf.a.data(), 1, N, buf.h.data(), N, false,
                                       buf.g.data(), N);
            else
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, N, TB, 1.0f, buf.a.data(),
                            N, buf.h.data(), N, 0.0f, buf.g.data(), N);
            return 2.0 * TB * N * double(N);
        }
        case Op::Large:
            if (impl == Impl::Kernels)
                eirnn::cpu::gemm_small(isa, N, N, N, buf.h.data(), N, 1, buf.w.data(), N, false,
                                       buf.g.data(), N);
            else
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0f, buf.h.data(),
                            N, buf.w.data(), N, 0.0f, buf.g.data(), N);
            return 2.0 * N * double(N) * N;
    }
    return 0;
}

double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

/// Aggregate GFLOP/s of `streams` threads, each running its own copy of op for about `seconds`;
/// OpenBLAS gets `blas_threads` threads inside each call. Best of kRepeats runs.
double gflops(Op op, Impl impl, GemmIsa isa, int N, int streams, int blas_threads, double seconds) {
    openblas_set_num_threads(blas_threads);
    std::vector<Buffers> bufs;
    for (int s = 0; s < streams; ++s) bufs.emplace_back(op, N);
    // Warm-up and calibration on one stream: how many runs fill `seconds`.
    double t0 = now(), flops = run_once(op, impl, isa, bufs[0]);
    double once = now() - t0;
    t0 = now();
    run_once(op, impl, isa, bufs[0]);
    once = std::min(once, now() - t0);
    const int runs = std::max(1, static_cast<int>(seconds / std::max(once, 1e-6)));
    double best = 0;
    for (int rep = 0; rep < kRepeats; ++rep) {
        const double start = now();
#pragma omp parallel num_threads(streams)
        {
            Buffers& b = bufs[omp_get_thread_num()];
            for (int r = 0; r < runs; ++r) run_once(op, impl, isa, b);
        }
        best = std::max(best, streams * runs * flops / (now() - start) / 1e9);
    }
    return best;
}

GemmIsa parse_isa(const std::string& s) {
    if (s == "portable") return GemmIsa::Portable;
    if (s == "avx2") return GemmIsa::Avx2;
    if (s == "avx512") return GemmIsa::Avx512;
    throw std::invalid_argument("unknown --isa " + s);
}

}  // namespace

int main(int argc, char** argv) {
    try {
        double seconds = 0.3;
        int P = omp_get_max_threads();
        GemmIsa isa = eirnn::cpu::gemm_small_isa();
        for (int i = 1; i + 1 < argc; i += 2) {
            const std::string f = argv[i], v = argv[i + 1];
            if (f == "--seconds")
                seconds = std::atof(v.c_str());
            else if (f == "--threads")
                P = std::atoi(v.c_str());
            else if (f == "--isa")
                isa = parse_isa(v);
            else
                throw std::invalid_argument("unknown flag " + f);
        }
        std::printf("kernels: %s; OpenBLAS core: %s (%s); B=%d, T=%d; best of %d runs of ~%.2f s\n",
                    eirnn::cpu::gemm_isa_name(isa), openblas_get_corename(), openblas_get_config(),
                    kB, kT, kRepeats, seconds);
        std::printf("GFLOP/s           %10s %10s %10s %10s %10s\n", "ours 1", "cblas 1",
                    ("ours " + std::to_string(P) + "x1").c_str(),
                    ("cblas " + std::to_string(P) + "x1").c_str(),
                    ("cblas 1x" + std::to_string(P)).c_str());
        struct Row {
            const char* name;
            Op op;
            int N;
        };
        const Row rows[] = {{"forward", Op::Forward, 100},
                            {"delta", Op::Delta, 100},
                            {"weight grad", Op::WeightGrad, 100},
                            {"forward", Op::Forward, 256},
                            {"delta", Op::Delta, 256},
                            {"weight grad", Op::WeightGrad, 256},
                            {"large sgemm", Op::Large, kLarge}};
        for (const Row& r : rows) {
            const double ours1 = gflops(r.op, Impl::Kernels, isa, r.N, 1, 1, seconds);
            const double blas1 = gflops(r.op, Impl::Cblas, isa, r.N, 1, 1, seconds);
            const double oursP = gflops(r.op, Impl::Kernels, isa, r.N, P, 1, seconds);
            const double blasP = gflops(r.op, Impl::Cblas, isa, r.N, P, 1, seconds);
            const double blas1P = gflops(r.op, Impl::Cblas, isa, r.N, 1, P, seconds);
            std::printf("%-11s N=%-4d %10.1f %10.1f %10.1f %10.1f %10.1f\n", r.name, r.N, ours1,
                        blas1, oursP, blasP, blas1P);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "gemm_small: %s\n", e.what());
        return 1;
    }
    return 0;
}
