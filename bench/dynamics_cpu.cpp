// Fixed-point search throughput on the CPU (host/dynamics.hpp): K random networks of N units
// (W ~ N(0, g^2/N), c ~ N(0, 0.1^2)), M initial states each sampled from the networks' own
// trajectories plus noise; prints networks/s and what was found. --dump FILE writes the problems
// and the per-network counts for bench/dynamics_compare.py, which times a SciPy reference on the
// same problems in the same run.
#include <hdf5.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "host/dynamics.hpp"
#include "host/h5.hpp"

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

int main(int argc, char** argv) {
    const int K = arg_int(argc, argv, "--networks", 64);
    const int N = arg_int(argc, argv, "--units", 100);
    const int M = arg_int(argc, argv, "--starts", 256);
    const int threads = arg_int(argc, argv, "--threads", 0);
    const int repeat = arg_int(argc, argv, "--repeat", 1);
    const double gain = arg_double(argc, argv, "--gain", 1.5);
    const std::string dump = arg_str(argc, argv, "--dump");
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
    for (int r = 0; r < repeat; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        found = eirnn::find_fixed_points(probs, s, threads);
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
    std::printf("dynamics_cpu: K=%d N=%d M=%d gain=%.2f threads=%d\n", K, N, M, gain, threads);
    std::printf("  %.3f s (best of %d)  %.2f networks/s  %.4f s/network\n", best, repeat, K / best,
                best / K);
    std::printf("  found %ld fixed points (%ld stable), %ld slow points\n", fixed, stable, slow);
    std::printf("RESULT eirnn_seconds_per_network %.6f\n", best / K);

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
    return 0;
}
