// Benchmark of the CUDA backend on the workload of record (AND, B=64, T=290, study protocol) for
// K networks of N units, next to the device's FP32 SGEMM rate measured in the same run (cuBLAS,
// 8192^3, CUDA events, median of 10 after warm-up). Prints trial-steps/s, the recurrent TFLOP/s
// (6 N^2 FLOPs per trial-step: forward, delta recurrence, weight gradient) and their percentage of
// SGEMM (its ceiling), in bench/train_cpu's columns (GFLOP/s), one row per (K, N). Timing: CUDA
// events around the backend's update loops (host set-up and copies excluded), after a warm-up
// training; the L2 cache is flushed before each measured run. --cluster-cost also times the fused
// forward + backward kernels alone at one N with the matrix on one CTA (C = 1, __syncthreads per
// step) and split over a cluster of two (C = 2, one cluster barrier per step), the price of the
// cluster barrier.
// Usage: train_gpu [--networks 64,1024,4096] [--units 100,256] [--updates U] [--quick]
//                  [--cluster-cost] [--cluster-units N] [--cluster-steps T]
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <sstream>
#include <string>
#include <vector>

#include "host/core/backend.hpp"
#include "host/core/model.hpp"
#include "host/cuda/cuda_backend.hpp"
#include "host/cuda/error.hpp"
#include "host/cuda/handles.hpp"
#include "host/cuda/memory.hpp"
#include "host/cuda/plan.hpp"
#include "host/train/batching.hpp"
#include "kernels/cuda/rnn.cuh"

namespace {

using namespace eirnn;

std::vector<int> parse_list(const std::string& s) {
    std::vector<int> v;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) v.push_back(std::stoi(item));
    return v;
}

/// Median FP32 SGEMM rate (TFLOP/s) of an n x n x n product on random data.
double sgemm_tflops(int n) {
    using namespace eirnn::cuda;
    Stream s = make_stream();
    Cublas h = make_cublas(s.get());
    const std::size_t nn = static_cast<std::size_t>(n) * n;
    std::vector<float> host(nn);
    for (std::size_t i = 0; i < nn; ++i)
        host[i] = static_cast<float>((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    DeviceBuffer<float> a(nn), b(nn), c(nn);
    copy_to_device(a.data(), host.data(), nn, s.get());
    copy_to_device(b.data(), host.data(), nn, s.get());
    const float one = 1.0f, zero = 0.0f;
    auto run = [&] {
        EIRNN_CHECK_CUBLAS(cublasSgemm(h.get(), CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, a.data(),
                                       n, b.data(), n, &zero, c.data(), n));
    };
    for (int i = 0; i < 3; ++i) run();
    Event e0 = make_event(true), e1 = make_event(true);
    std::vector<double> ms;
    for (int i = 0; i < 10; ++i) {
        EIRNN_CHECK_CUDA(cudaEventRecord(e0.get(), s.get()));
        run();
        EIRNN_CHECK_CUDA(cudaEventRecord(e1.get(), s.get()));
        EIRNN_CHECK_CUDA(cudaEventSynchronize(e1.get()));
        ms.push_back(elapsed_ms(e0.get(), e1.get()));
    }
    std::sort(ms.begin(), ms.end());
    return 2.0 * n * static_cast<double>(n) * n / (ms[ms.size() / 2] * 1e-3) / 1e12;
}

/// Overwrites a buffer larger than the L2 cache.
void flush_l2() {
    using namespace eirnn::cuda;
    DeviceBuffer<char> junk(std::size_t(512) << 20);
    zero(junk.data(), junk.size(), nullptr);
    EIRNN_CHECK_CUDA(cudaDeviceSynchronize());
}

struct Result {
    int K = 0, N = 0, updates = 0, waves = 0;
    double seconds = 0, trial_steps = 0;
    std::string kernels;
};

/// U updates of K networks (one epoch of U batches of 64 trials) on the CUDA backend.
Result run(int K, int N, int U, bool warm) {
    GroupConfig c;
    c.model.units = N;
    c.model.init = Init::Normal;  // the orthogonal init's QR would dominate set-up time
    c.model.dale = DaleMode::Project;
    c.task.kind = TaskKind::And;
    c.train.batch = 64;
    c.train.epochs = 1;
    c.train.early_stop = 0;
    c.networks = K;
    c.seed = 1;
    c.spectra = false;
    Dataset train = make_dataset(c.task, 64 * U, c.data_seed);
    TrainState st;
    st.params = init_group(c, train.I, train.O);
    st.reset(K, c.train.epochs);
    eirnn::cuda::CudaBackend backend;
    if (!warm) flush_l2();
    backend.train(c, train, st, nullptr);
    Result r;
    r.K = K;
    r.N = N;
    r.updates = U;
    r.seconds = backend.timing().device_seconds;
    r.trial_steps = backend.timing().trial_steps;
    r.waves = backend.timing().waves;
    r.kernels = backend.timing().kernels;
    return r;
}

/// Milliseconds per step of rnn_forward + rnn_backward for K networks of N units (B = 64, T steps,
/// plain: alpha 1, no noise) with C CTAs per network on chip; negative when not launchable.
double kernel_ms_per_step(int K, int N, int T, int C) {
    using namespace eirnn::cuda;
    const int I = 2, O = 1, B = 64;
    const RnnGeometry g = make_rnn_geometry(N, I, O, T, B, C, 1, true);
    if (g.tiles() > kMaxThreads || (C - 1) * g.R >= N || !rnn_launchable(g)) return -1;
    const ParamLayout L = ParamLayout::make(N, I, O);
    const std::size_t TB = static_cast<std::size_t>(T) * B;
    std::vector<float> params(static_cast<std::size_t>(K) * L.total), x(K * TB * I), gy(K * TB * O);
    for (std::size_t i = 0; i < params.size(); ++i)
        params[i] = 0.1f * static_cast<float>(static_cast<int>((i * 2654435761u) % 21) - 10) /
                    std::sqrt(static_cast<float>(N));
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 3 == 0);
    for (std::size_t i = 0; i < gy.size(); ++i) gy[i] = 1e-3f * static_cast<float>(i % 5);
    Stream s = make_stream();
    DeviceBuffer<float> dp(params.size()), dx(x.size()), dgy(gy.size());
    DeviceBuffer<float> dh(K * (TB + B) * N), dy(K * TB * O), dd(K * TB * N),
        dpart(static_cast<std::size_t>(K) * ceil_div(B, kTileTrials) * N);
    copy_to_device(dp.data(), params.data(), params.size(), s.get());
    copy_to_device(dx.data(), x.data(), x.size(), s.get());
    copy_to_device(dgy.data(), gy.data(), gy.size(), s.get());
    RnnNetworks rn;
    rn.count = K;
    rn.params = dp.data();
    rn.P = L.total;
    rn.w_rec = L.w_rec;
    rn.w_in = L.w_in;
    rn.b = L.b;
    rn.w_out = L.w_out;
    rn.b_out = L.b_out;
    RnnForwardArgs fa;
    fa.net = rn;
    fa.x = dx.data();
    fa.h = dh.data();
    fa.y = dy.data();
    fa.x_stride = TB * I;
    fa.h_stride = (TB + B) * N;
    fa.y_stride = TB * O;
    RnnBackwardArgs ba;
    ba.net = rn;
    ba.h = dh.data();
    ba.delta = dd.data();
    ba.grad_y = dgy.data();
    ba.bias_part = dpart.data();
    ba.h_stride = fa.h_stride;
    ba.delta_stride = TB * N;
    ba.gy_stride = TB * O;
    ba.part_stride = static_cast<std::size_t>(ceil_div(B, kTileTrials)) * N;
    auto once = [&] {
        rnn_forward(g, fa, s.get());
        rnn_backward(g, ba, s.get());
    };
    once();  // warm-up
    Event e0 = make_event(true), e1 = make_event(true);
    const int reps = 5;
    EIRNN_CHECK_CUDA(cudaEventRecord(e0.get(), s.get()));
    for (int r = 0; r < reps; ++r) once();
    EIRNN_CHECK_CUDA(cudaEventRecord(e1.get(), s.get()));
    EIRNN_CHECK_CUDA(cudaEventSynchronize(e1.get()));
    return elapsed_ms(e0.get(), e1.get()) / (reps * T);
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<int> Ks = {64, 1024, 4096}, Ns = {100, 256};
    int updates = 4;
    bool cluster_cost = false;
    int cluster_units = 100, cluster_steps = 290;
    for (int i = 1; i < argc; ++i) {
        std::string f = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "train_gpu: %s needs a value\n", f.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (f == "--networks")
            Ks = parse_list(value());
        else if (f == "--units")
            Ns = parse_list(value());
        else if (f == "--updates")
            updates = std::stoi(value());
        else if (f == "--quick")
            updates = 2;
        else if (f == "--cluster-cost")
            cluster_cost = true;
        else if (f == "--cluster-units")
            cluster_units = std::stoi(value());
        else if (f == "--cluster-steps")
            cluster_steps = std::stoi(value());
        else {
            std::fprintf(stderr, "train_gpu: unknown flag %s\n", f.c_str());
            return 2;
        }
    }
    try {
        if (!eirnn::cuda::device_usable()) {
            std::fprintf(stderr, "train_gpu: no CUDA device: %s\n",
                         eirnn::cuda::device_problem().c_str());
            return 2;
        }
        const std::string device = eirnn::cuda::device_description();
        if (cluster_cost) {
            // One network per SM: the step's latency, not the throughput, is what C changes.
            const int K = 132, N = cluster_units, T = cluster_steps;
            const double c1 = kernel_ms_per_step(K, N, T, 1), c2 = kernel_ms_per_step(K, N, T, 2);
            std::printf("cluster barrier: N=%d K=%d B=64 T=%d, forward+backward per step: ", N, K,
                        T);
            if (c1 < 0 || c2 < 0)
                std::printf("C=1 %s, C=2 %s\n", c1 < 0 ? "not launchable" : "ok",
                            c2 < 0 ? "not launchable" : "ok");
            else
                std::printf("C=1 %.2f us, C=2 %.2f us (%+.2f us per step with the cluster)\n",
                            1e3 * c1, 1e3 * c2, 1e3 * (c2 - c1));
            if (Ks.empty()) return 0;
        }
        const double peak = sgemm_tflops(8192);
        run(64, 100, 2, true);  // warm-up: module load, cuBLAS kernels, the memory pool
        std::vector<Result> results;
        for (int N : Ns)
            for (int K : Ks) {
                results.push_back(run(K, N, updates, false));
                const Result& r = results.back();
                std::fprintf(stderr, "train_gpu: K=%d N=%d done (%.2f s on the device)\n", K, N,
                             r.seconds);
            }
        std::printf("device: %s\n", device.c_str());
        std::printf("workload: AND, B=64, T=290, %d updates per network, Dale projection, fp32\n",
                    updates);
        for (const Result& r : results)
            std::printf("K=%d N=%d: %d wave%s, %.1f ms per update, kernels %s\n", r.K, r.N, r.waves,
                        r.waves == 1 ? "" : "s", 1e3 * r.seconds / r.updates, r.kernels.c_str());
        // The columns of bench/train_cpu (bench/compare reads the rows that end in a percentage or
        // n/a). The ceiling is the measured cuBLAS SGEMM.
        std::printf("%-28s %14s %12s %12s %12s %8s\n", "", "trial-steps/s", "GFLOP/s", "SGEMM GF/s",
                    "ceiling GF/s", "% ceil");
        for (const Result& r : results) {
            const double ts = r.trial_steps / r.seconds;
            const double gf = ts * 6.0 * r.N * r.N / 1e9;
            char label[64];
            std::snprintf(label, sizeof label, "eirnn cuda K=%d N=%d", r.K, r.N);
            // No percentage above the ceiling (as in bench/train_cpu): n/a, and why on stderr.
            char pct[16] = "n/a";
            if (gf <= 1e3 * peak) std::snprintf(pct, sizeof pct, "%.1f%%", 0.1 * gf / peak);
            std::printf("%-28s %14.4g %12.1f %12.1f %12.1f %8s\n", label, ts, gf, 1e3 * peak,
                        1e3 * peak, pct);
            if (gf > 1e3 * peak)
                std::fprintf(stderr,
                             "train_gpu: %s ran faster than the SGEMM ceiling; no %% is given\n",
                             label);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "train_gpu: error: %s\n", e.what());
        return 1;
    }
    return 0;
}
