// Benchmark of the CUDA backend on the workload of record (AND, B=64, T=290, study protocol) for
// K networks of N units, next to the device's FP32 SGEMM rate measured in the same run (cuBLAS,
// 8192^3, CUDA events, median of 10 after warm-up). Prints trial-steps/s, the recurrent TFLOP/s
// (6 N^2 FLOPs per trial-step: forward, delta recurrence, weight gradient) and their ratio to
// SGEMM, in bench/train_cpu's columns (GFLOP/s), one row per (K, N). Timing: CUDA events around the
// backend's update loops (host set-up and copies excluded), after a warm-up training; the L2 cache
// is flushed before each measured run. Usage: train_gpu [--networks 64,1024,4096] [--units 100,256]
// [--updates U] [--quick]
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

#include "host/backend.hpp"
#include "host/batching.hpp"
#include "host/cuda/cuda_backend.hpp"
#include "host/cuda/error.hpp"
#include "host/cuda/handles.hpp"
#include "host/cuda/memory.hpp"
#include "host/model.hpp"

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

}  // namespace

int main(int argc, char** argv) {
    std::vector<int> Ks = {64, 1024, 4096}, Ns = {100, 256};
    int updates = 4;
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
        // The columns of bench/train_cpu (bench/compare reads the rows that end in a ratio).
        std::printf("%-28s %14s %12s %12s %8s\n", "", "trial-steps/s", "GFLOP/s", "SGEMM GF/s",
                    "ratio");
        for (const Result& r : results) {
            const double ts = r.trial_steps / r.seconds;
            const double gf = ts * 6.0 * r.N * r.N / 1e9;
            char label[64];
            std::snprintf(label, sizeof label, "eirnn cuda K=%d N=%d", r.K, r.N);
            std::printf("%-28s %14.4g %12.1f %12.1f %7.1f%%\n", label, ts, gf, 1e3 * peak,
                        0.1 * gf / peak);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "train_gpu: error: %s\n", e.what());
        return 1;
    }
    return 0;
}
