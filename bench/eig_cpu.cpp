// Throughput of the CPU's eigenvalue solvers (--method auto, the default: what eirnn uses on the
// CPU, the twin up to kCpuTwinMaxN and dgeev above; lapack: eigenvalues_batched, dgeev per matrix,
// OpenMP threads over matrices; twin: the CPU twin of the batched GPU eigensolver,
// kernels/eig_hqr.hpp): matrices per
// second on all cores for K random N x N matrices (N = 100, 256, 500 by default), K grown until a
// case runs >= --seconds. --input FILE: time repeated passes over the (K,N,N) float64 datasets n<N>
// of FILE whose N is in --sizes (bench/eig_compare.py writes them and times numpy on the same);
// --output FILE: store their eigenvalues as e<N> (K,N) complex128 for checking. Prints one line per
// case and a machine-readable "RESULT N=.. K=.. matrices=.. seconds=.. rate=..". Like eirnn, it
// re-runs itself with OPENBLAS_CORETYPE set when OpenBLAS picked kernels older than the CPU.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "host/analysis/eig_solver.hpp"
#include "host/analysis/spectra.hpp"
#include "host/core/error.hpp"
#include "host/io/h5.hpp"
#include "kernels/cpu/blas.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
    std::vector<int> sizes = {100, 256, 500};
    double seconds = 2.0;
    int threads = 0;
    std::string input, output;
    std::string method = "auto";  // auto | lapack | twin
};

/// The solver of --method (made once in run()).
std::unique_ptr<eirnn::EigSolver> g_solver;

void solve(const double* w, int K, int N, eirnn::cplx* eig) {
    g_solver->eigenvalues(w, K, N, eig);
}

double since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Timing {
    long matrices = 0;
    double seconds = 0;
};

/// Repeated passes of one batched call over the K matrices until `seconds` have passed.
Timing time_passes(const std::vector<double>& w, int K, int N, double seconds,
                   std::vector<eirnn::cplx>& eig) {
    solve(w.data(), K, N, eig.data());  // warm-up
    Timing t;
    auto t0 = Clock::now();
    do {
        solve(w.data(), K, N, eig.data());
        t.matrices += K;
        t.seconds = since(t0);
    } while (t.seconds < seconds);
    return t;
}

std::vector<double> random_matrices(int K, int N, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> d(0.0, 1.0 / std::sqrt(double(N)));
    std::vector<double> w(std::size_t(K) * N * N);
    for (double& x : w) x = d(rng);
    return w;
}

/// One batched call over K fresh matrices, K doubled until the call takes >= `seconds`.
Timing time_generated(int N, double seconds, int threads, int& K) {
    K = 2 * (threads > 0 ? threads : omp_get_max_threads());
    while (true) {
        std::vector<double> w = random_matrices(K, N, 1000 + N);
        std::vector<eirnn::cplx> eig(std::size_t(K) * N);
        auto t0 = Clock::now();
        solve(w.data(), K, N, eig.data());
        double s = since(t0);
        if (s >= seconds) return {K, s};
        K = static_cast<int>(std::ceil(K * std::min(8.0, 1.2 * seconds / std::max(s, 1e-3))));
    }
}

void report(int N, int K, const Timing& t) {
    double rate = t.matrices / t.seconds;
    std::printf("N %4d  K %5d  %7ld matrices in %6.2f s  %10.1f matrices/s\n", N, K, t.matrices,
                t.seconds, rate);
    std::printf("RESULT N=%d K=%d matrices=%ld seconds=%.4f rate=%.4f\n", N, K, t.matrices,
                t.seconds, rate);
    std::fflush(stdout);
}

std::vector<int> parse_sizes(const std::string& s) {
    std::vector<int> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) out.push_back(std::stoi(item));
    return out;
}

Args parse(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        std::string k = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) throw eirnn::InputError(k + ": needs a value");
            return argv[++i];
        };
        if (k == "--sizes")
            a.sizes = parse_sizes(next());
        else if (k == "--seconds")
            a.seconds = std::stod(next());
        else if (k == "--threads")
            a.threads = std::stoi(next());
        else if (k == "--input")
            a.input = next();
        else if (k == "--output")
            a.output = next();
        else if (k == "--method")
            a.method = next();
        else
            throw eirnn::InputError(
                "usage: eig_cpu [--sizes 100,256,500] [--seconds 2] "
                "[--threads 0] [--method auto|lapack|twin] [--input FILE] [--output FILE]");
    }
    if (a.method != "auto" && a.method != "lapack" && a.method != "twin")
        throw eirnn::InputError("--method: auto, lapack or twin, not '" + a.method + "'");
    return a;
}

void run(const Args& a) {
    const int threads = a.threads > 0 ? a.threads : omp_get_max_threads();
    g_solver = a.method == "twin"     ? eirnn::make_twin_eig_solver(a.threads)
               : a.method == "lapack" ? eirnn::make_lapack_eig_solver(a.threads)
                                      : eirnn::make_cpu_auto_eig_solver(a.threads);
    const std::string what =
        a.method == "twin" ? "CPU twin of the batched GPU eigensolver"
        : a.method == "lapack"
            ? "dgeev"
            : "auto: the CPU twin up to N = " + std::to_string(eirnn::kCpuTwinMaxN) +
                  ", dgeev above";
    std::printf("eirnn %s (%s, eigenvalues only): %d threads, OpenBLAS core %s\n", a.method.c_str(),
                what.c_str(), threads, openblas_get_corename());
    if (a.input.empty()) {
        for (int N : a.sizes) {
            int K = 0;
            Timing t = time_generated(N, a.seconds, a.threads, K);
            report(N, K, t);
        }
        return;
    }
    eirnn::h5::Id in = eirnn::h5::open_read(a.input);
    eirnn::h5::Id out;
    if (!a.output.empty()) out = eirnn::h5::create(a.output);
    for (const std::string& name : eirnn::h5::children(in)) {
        if (name.empty() || name[0] != 'n') continue;
        eirnn::h5::Array<double> w = eirnn::h5::read_double(in, name);
        if (w.dims.size() != 3 || w.dims[1] != w.dims[2])
            throw eirnn::InputError(a.input + ":" + name + ": expected (K,N,N)");
        const int K = static_cast<int>(w.dims[0]), N = static_cast<int>(w.dims[1]);
        if (std::find(a.sizes.begin(), a.sizes.end(), N) == a.sizes.end()) continue;
        std::vector<eirnn::cplx> eig(std::size_t(K) * N);
        Timing t = time_passes(w.data, K, N, a.seconds, eig);
        report(N, K, t);
        if (out.valid()) {
            std::string eig_name = name;
            eig_name[0] = 'e';
            eirnn::h5::write(out, eig_name, eig.data(), {w.dims[0], w.dims[1]});
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    eirnn::cpu::use_the_cpus_openblas_kernels(argv);  // as eirnn does
    try {
        run(parse(argc, argv));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "eig_cpu: %s\n", e.what());
        return 2;
    }
    return 0;
}
