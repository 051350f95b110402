// Fixed-point search throughput on the CPU (host/analysis/dynamics.hpp): K random networks of N
// units (W ~ N(0, g^2/N), c ~ N(0, 0.1^2)), M initial states each sampled from the networks' own
// trajectories plus noise; prints networks/s and what was found. --dump FILE writes the problems
// and the per-network counts for bench/dynamics_compare.py, which times a SciPy reference on the
// same problems in the same run.
// --backend cuda: the GPU mode (L-BFGS on the device, host/cuda/dynamics.hpp; spectra by the
// GPU's eigensolver), timed after a warm-up call; --compare-cpu then also runs the CPU path once
// on the same problems and prints how far the two are apart (counts, classes, basins, the largest
// |h_gpu - h_cpu| over the fixed points of the networks whose points match one to one). On these
// chaotic networks (thousands of slow points) a few states may end elsewhere when the two paths
// round differently; the tests (tests/test_dynamics_cuda.cpp) hold the GPU to the CPU exactly.
//   dynamics_cpu [--networks 64] [--units 100] [--starts 256] [--backend cpu|cuda|auto]
//                [--compare-cpu] [--repeat 1] [--threads 0] [--gain 1.5] [--dump FILE]
#include <hdf5.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "host/analysis/dynamics.hpp"
#include "host/analysis/eig_solver.hpp"
#include "host/core/backend.hpp"
#include "host/core/config.hpp"
#include "host/core/error.hpp"
#include "host/io/h5.hpp"

namespace {

int arg_int(int argc, char** argv, const char* name, int def) {
    for (int i = 1; i + 1 < argc; ++i)
        if (std::string(argv[i]) == name) return std::atoi(argv[i + 1]);
    return def;
}
double arg_double(int argc, char** argv, const char* name, double def) {
    for (int i = 1; i + 1 < argc; ++i)
        if (std::string(argv[i]) == name) return std::atof(argv[i + 1]);
    return def;
}
std::string arg_str(int argc, char** argv, const char* name) {
    for (int i = 1; i + 1 < argc; ++i)
        if (std::string(argv[i]) == name) return argv[i + 1];
    return "";
}

}  // namespace

bool arg_flag(int argc, char** argv, const char* name) {
    for (int i = 1; i < argc; ++i)
        if (std::string(argv[i]) == name) return true;
    return false;
}

/// Prints how the GPU's points differ from the CPU's; true when they agree (same counts, kinds,
/// classes and basins, fixed points within 1e-9).
bool compare(const std::vector<eirnn::PointSet>& g, const std::vector<eirnn::PointSet>& c) {
    int count_diff = 0, class_diff = 0, basin_diff = 0;
    double hmax = 0;
    for (std::size_t k = 0; k < g.size(); ++k) {
        if (g[k].size() != c[k].size() || g[k].kind != c[k].kind) {
            ++count_diff;
            continue;
        }
        class_diff += g[k].stability != c[k].stability;
        basin_diff += g[k].basin != c[k].basin;
        const std::size_t n = g[k].N;
        for (int p = 0; p < g[k].size(); ++p)
            if (g[k].kind[p] == eirnn::PointKind::Fixed)
                for (std::size_t i = 0; i < n; ++i)
                    hmax = std::max(hmax, std::abs(g[k].h[p * n + i] - c[k].h[p * n + i]));
    }
    std::printf(
        "  vs cpu: of %zu networks, %d with other point counts or kinds, %d with other classes, "
        "%d with other basins; max |h_gpu - h_cpu| over the fixed points of the others %.3g\n",
        g.size(), count_diff, class_diff, basin_diff, hmax);
    std::printf("RESULT gpu_cpu_max_h_diff %.3g\n", hmax);
    return count_diff == 0 && class_diff == 0 && basin_diff == 0 && hmax <= 1e-9;
}

int main(int argc, char** argv) try {
    const int K = arg_int(argc, argv, "--networks", 64);
    const int N = arg_int(argc, argv, "--units", 100);
    const int M = arg_int(argc, argv, "--starts", 256);
    const int threads = arg_int(argc, argv, "--threads", 0);
    const int repeat = arg_int(argc, argv, "--repeat", 1);
    const double gain = arg_double(argc, argv, "--gain", 1.5);
    const std::string dump = arg_str(argc, argv, "--dump");
    const std::string backend_name = arg_str(argc, argv, "--backend");
    const bool compare_cpu = arg_flag(argc, argv, "--compare-cpu");
    const auto backend = eirnn::parse_backend(backend_name.empty() ? "cpu" : backend_name);
    if (!backend) throw eirnn::InputError("--backend: cpu, cuda or auto");
    std::unique_ptr<eirnn::DynamicsSearch> search = eirnn::make_dynamics_search(*backend, threads);
    std::unique_ptr<eirnn::EigSolver> solver =
        eirnn::make_eig_solver(*backend, eirnn::EigMethod::Auto, threads);
    const bool gpu = search->name() != "cpu";
    const std::size_t nn = std::size_t(N) * N;

    std::vector<double> w(K * nn), c(std::size_t(K) * N), x0(std::size_t(K) * M * N);
    for (int k = 0; k < K; ++k) {
        std::mt19937_64 rng(1000 + k);
        std::normal_distribution<double> nd(0.0, 1.0);
        for (std::size_t e = 0; e < nn; ++e) w[k * nn + e] = gain / std::sqrt(N) * nd(rng);
        for (int i = 0; i < N; ++i) c[std::size_t(k) * N + i] = 0.1 * nd(rng);
        // Trajectories: 8 runs of 100 steps from random states; M states drawn plus noise 0.05.
        const int S = 8, T = 100;
        std::vector<double> states(std::size_t(S) * T * N), h(N), a(N);
        for (int s = 0; s < S; ++s) {
            for (int i = 0; i < N; ++i) h[i] = std::tanh(nd(rng));
            for (int t = 0; t < T; ++t) {
                for (int i = 0; i < N; ++i) {
                    double v = c[std::size_t(k) * N + i];
                    for (int j = 0; j < N; ++j) v += w[k * nn + std::size_t(i) * N + j] * h[j];
                    a[i] = std::tanh(v);
                }
                h = a;
                std::copy(h.begin(), h.end(), states.begin() + (std::size_t(s) * T + t) * N);
            }
        }
        std::uniform_int_distribution<int> pick(0, S * T - 1);
        for (int m = 0; m < M; ++m) {
            const int r = pick(rng);
            for (int i = 0; i < N; ++i)
                x0[(std::size_t(k) * M + m) * N + i] =
                    states[std::size_t(r) * N + i] + 0.05 * nd(rng);
        }
    }
    std::vector<eirnn::DynamicsProblem> probs;
    for (int k = 0; k < K; ++k)
        probs.push_back({N, 1.0, w.data() + k * nn, c.data() + std::size_t(k) * N,
                         x0.data() + std::size_t(k) * M * N, M});
    eirnn::DynamicsSettings s;
    s.starts = M;
    s.iterations = arg_int(argc, argv, "--iterations", s.iterations);

    std::vector<eirnn::PointSet> found;
    double best = 1e300;
    if (gpu) found = eirnn::find_fixed_points(probs, s, threads, solver.get(), search.get());
    for (int r = 0; r < repeat; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        found = eirnn::find_fixed_points(probs, s, threads, solver.get(), search.get());
        const double sec =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::min(best, sec);
    }
    long fixed = 0, stable = 0, slow = 0;
    std::vector<std::int32_t> n_fixed(K), n_slow(K);
    for (int k = 0; k < K; ++k) {
        n_fixed[k] = found[k].count(eirnn::PointKind::Fixed);
        n_slow[k] = found[k].count(eirnn::PointKind::Slow);
        fixed += n_fixed[k];
        slow += n_slow[k];
        stable += found[k].count_stable_fixed();
    }
    std::printf("dynamics_cpu: K=%d N=%d M=%d gain=%.2f threads=%d search=%s eig=%s\n", K, N, M,
                gain, threads, search->name().c_str(), solver->name().c_str());
    std::printf("  %.3f s (best of %d)  %.2f networks/s  %.4f s/network\n", best, repeat, K / best,
                best / K);
    std::printf("  found %ld fixed points (%ld stable), %ld slow points\n", fixed, stable, slow);
    std::printf("RESULT eirnn_seconds_per_network %.6f\n", best / K);
    if (gpu) std::printf("RESULT gpu_networks_per_second %.3f\n", K / best);
    bool agree = true;
    if (gpu && compare_cpu) {
        const auto t0 = std::chrono::steady_clock::now();
        std::vector<eirnn::PointSet> cpu = eirnn::find_fixed_points(probs, s, threads);
        const double sec =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::printf("  cpu path: %.3f s  %.2f networks/s\n", sec, K / sec);
        agree = compare(found, cpu);
    }

    if (!dump.empty()) {
        eirnn::h5::quiet();
        eirnn::h5::Id f = eirnn::h5::create(dump);
        const hsize_t hK = K, hN = N, hM = M;
        eirnn::h5::write(f, "w", w.data(), {hK, hN, hN});
        eirnn::h5::write(f, "c", c.data(), {hK, hN});
        eirnn::h5::write(f, "starts", x0.data(), {hK, hM, hN});
        eirnn::h5::write(f, "n_fixed", n_fixed.data(), {hK});
        eirnn::h5::write(f, "n_slow", n_slow.data(), {hK});
        std::vector<double> fp;
        std::vector<std::int64_t> off = {0};
        for (int k = 0; k < K; ++k) {
            for (int p = 0; p < found[k].size(); ++p)
                if (found[k].kind[p] == eirnn::PointKind::Fixed)
                    fp.insert(fp.end(), found[k].h.begin() + std::size_t(p) * N,
                              found[k].h.begin() + std::size_t(p + 1) * N);
            off.push_back(off.back() + n_fixed[k]);
        }
        std::vector<std::uint64_t> offu(off.begin(), off.end());
        eirnn::h5::write(f, "fixed_h", fp.data(), {fp.size() / N, hN});
        eirnn::h5::write(f, "fixed_offsets", offu.data(), {hK + 1});
        eirnn::h5::write_attr(f, "eirnn_seconds_per_network", best / K);
        eirnn::h5::write_attr(f, "threads", static_cast<std::int64_t>(threads));
    }
    if (gpu && compare_cpu) std::printf("RESULT gpu_cpu_agree %d\n", agree ? 1 : 0);
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "dynamics_cpu: %s\n", e.what());
    return 2;
}
