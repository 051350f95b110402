// Throughput of the GPU eigensolvers (fp64, all N eigenvalues, no vectors) on K random N x N
// matrices (entries Gaussian / sqrt(N), std::mt19937_64 from a fixed seed), all on the same
// matrices in one run: the batched kernel end to end (host doubles in, sorted eigenvalues out,
// make_batched_eig_solver), its raw call (eig_batched_raw: copies + kernel, unsorted, no
// fallback) and its kernel alone (one launch on matrices already on the device, CUDA events, for
// each block size of --block-threads);
// cuSOLVER Xgeev looped over matrices on 1, 2, 4, 8 host threads (each its own stream;
// timed on as many matrices as fit --xgeev-seconds); LAPACK dgeev on all CPU cores
// (eigenvalues_batched), the reference of the sanity columns: the largest |lambda - lambda_lapack|
// with both spectra sorted by sort_spectrum, and the count of matrices that differ by more than
// 1e-9 max(1, ||W||_F) after nearest-neighbour matching. Times: steady clock after a warm-up call.
// Usage: eig_gpu [--sizes 100:10000,256:1000] [--quick] [--xgeev-threads 1,2,4,8]
//                [--xgeev-seconds 3] [--reps 3] [--seed 1] [--block-threads 0,32,64,128,256]
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "host/analysis/eig_solver.hpp"
#include "host/analysis/spectra.hpp"
#include "host/core/error.hpp"
#include "host/cuda/cuda_backend.hpp"
#include "host/cuda/eig.hpp"
#include "host/cuda/error.hpp"
#include "host/cuda/handles.hpp"
#include "host/cuda/memory.hpp"
#include "kernels/cuda/eig.cuh"

namespace {

using namespace eirnn;
using Clock = std::chrono::steady_clock;

constexpr const char* kUsage =
    "usage: eig_gpu [--sizes 100:10000,256:1000] [--quick] [--xgeev-threads 1,2,4,8]\n"
    "               [--xgeev-seconds 3] [--reps 3] [--seed 1] [--block-threads 0,32,64,128,256]\n"
    "  --sizes N:K,...     matrix size N and count K of each case\n"
    "  --quick             K = 2000 at N = 100 and 200 at N = 256, 1 s per Xgeev run, 1 rep\n"
    "  --xgeev-threads L   host threads (one stream each) of the looped Xgeev runs\n"
    "  --xgeev-seconds S   each Xgeev run solves the first matrices until S seconds have passed\n"
    "  --reps R            timed calls of the batched solver (the best is reported)\n"
    "  --seed S            seed of the matrices\n"
    "  --block-threads L   threads per block of the kernel-only runs (0: the kernel's own "
    "choice)\n";

/// The kernel's raw output (wr, wi, info) as sorted spectra in eig (K,N); returns how many
/// matrices have info != 0.
int sorted_spectra(const std::vector<double>& wr, const std::vector<double>& wi,
                   const std::vector<int>& info, int K, int N, cplx* eig) {
    int failed = 0;
    for (int k = 0; k < K; ++k) {
        cplx* e = eig + std::size_t(k) * N;
        for (int i = 0; i < N; ++i)
            e[i] = cplx(wr[std::size_t(k) * N + i], wi[std::size_t(k) * N + i]);
        sort_spectrum(e, N);
        failed += info[k] != 0;
    }
    return failed;
}

constexpr double kRelTol = 1e-9;  // mismatch: > kRelTol * max(1, ||W||_F) after matching

struct Case {
    int N = 0, K = 0;
};

struct Args {
    std::vector<Case> cases = {{100, 10000}, {256, 1000}};
    std::vector<int> xgeev_threads = {1, 2, 4, 8};
    std::vector<int> block_threads = {0, 32, 64, 128, 256};
    double xgeev_seconds = 3.0;
    int reps = 3;
    std::uint64_t seed = 1;
};

double since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::vector<int> parse_ints(const std::string& s) {
    std::vector<int> v;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) v.push_back(std::stoi(item));
    return v;
}

std::vector<Case> parse_cases(const std::string& s) {
    std::vector<Case> v;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) {
        const std::size_t colon = item.find(':');
        if (colon == std::string::npos) throw InputError("--sizes: expected N:K, got " + item);
        Case c{std::stoi(item.substr(0, colon)), std::stoi(item.substr(colon + 1))};
        if (c.N < 1 || c.K < 1) throw InputError("--sizes: N and K must be >= 1 in " + item);
        v.push_back(c);
    }
    return v;
}

/// K matrices (K,N,N), entries N(0, 1/N); matrix k from its own generator seeded by (seed, k), so
/// the set does not depend on the thread count.
std::vector<double> random_matrices(int K, int N, std::uint64_t seed) {
    const std::size_t nn = std::size_t(N) * N;
    std::vector<double> w(std::size_t(K) * nn);
#pragma omp parallel for schedule(static)
    for (int k = 0; k < K; ++k) {
        std::seed_seq sq{seed, std::uint64_t(k)};
        std::mt19937_64 rng(sq);
        std::normal_distribution<double> d(0.0, 1.0 / std::sqrt(double(N)));
        for (std::size_t i = 0; i < nn; ++i) w[std::size_t(k) * nn + i] = d(rng);
    }
    return w;
}

/// One contender's result on one case.
struct Row {
    std::string label;
    int N = 0, K = 0;  // K: matrices timed
    double seconds = 0;
    bool compared = false;
    double max_sorted = 0;  // largest |lambda - lambda_lapack|, both sorted by sort_spectrum
    int mismatches = 0;     // matrices beyond the tolerance after nearest-neighbour matching
    int worst = -1;  // the matrix with the largest matched distance relative to the tolerance
    double worst_distance = 0;
    std::string note;
    double rate() const { return K / seconds; }
};

/// Compares the first K spectra of eig with LAPACK's (ref), both (K,N) sorted.
void compare(Row& r, const cplx* eig, const cplx* ref, const double* w, int K, int N) {
    const std::size_t nn = std::size_t(N) * N;
    std::vector<double> sorted_diff(K), matched(K), tol(K);
#pragma omp parallel for schedule(static)
    for (int k = 0; k < K; ++k) {
        const cplx* a = eig + std::size_t(k) * N;
        const cplx* b = ref + std::size_t(k) * N;
        double fro2 = 0;
        for (std::size_t i = 0; i < nn; ++i) fro2 += w[k * nn + i] * w[k * nn + i];
        tol[k] = kRelTol * std::max(1.0, std::sqrt(fro2));
        double ds = 0;
        for (int i = 0; i < N; ++i) ds = std::max(ds, std::abs(a[i] - b[i]));
        // Greedy nearest-neighbour matching: each eigenvalue takes the closest unused reference.
        std::vector<char> used(N, 0);
        double dm = 0;
        for (int i = 0; i < N; ++i) {
            int best = -1;
            double best_d2 = std::numeric_limits<double>::infinity();
            for (int j = 0; j < N; ++j) {
                if (used[j]) continue;
                const double d2 = std::norm(a[i] - b[j]);
                if (d2 < best_d2) best_d2 = d2, best = j;
            }
            if (best < 0) {  // NaN in a: nothing is close
                dm = std::numeric_limits<double>::infinity();
                break;
            }
            used[best] = 1;
            dm = std::max(dm, std::sqrt(best_d2));
        }
        sorted_diff[k] = std::isnan(ds) ? std::numeric_limits<double>::infinity() : ds;
        matched[k] = dm;
    }
    r.compared = true;
    r.max_sorted = 0;
    r.mismatches = 0;
    double worst_ratio = -1;
    for (int k = 0; k < K; ++k) {
        r.max_sorted = std::max(r.max_sorted, sorted_diff[k]);
        if (!(matched[k] <= tol[k])) ++r.mismatches;
        const double ratio = matched[k] / tol[k];
        if (ratio > worst_ratio) worst_ratio = ratio, r.worst = k, r.worst_distance = matched[k];
    }
}

void progress(const Row& r) {
    std::fprintf(stderr, "eig_gpu: N=%d %s: %d matrices in %.3f s\n", r.N, r.label.c_str(), r.K,
                 r.seconds);
}

struct CaseResult {
    Case c;
    std::vector<Row> rows;
    int batched = -1, best_xgeev = -1, lapack = -1;  // indices into rows
};

CaseResult run_case(const Case& cs, const Args& a) {
    const int N = cs.N, K = cs.K;
    const std::size_t nn = std::size_t(N) * N;
    CaseResult res;
    res.c = cs;
    std::fprintf(stderr, "eig_gpu: N=%d K=%d: generating the matrices\n", N, K);
    const std::vector<double> w = random_matrices(K, N, a.seed);
    std::vector<cplx> ref(std::size_t(K) * N), eig(std::size_t(K) * N);

    // LAPACK on all cores: the reference spectra.
    {
        const int threads = omp_get_max_threads();
        eigenvalues_batched(w.data(), std::min(K, 2 * threads), N, ref.data());  // warm-up
        Row r;
        r.label = "LAPACK dgeev, " + std::to_string(threads) + " threads";
        r.N = N;
        r.K = K;
        const auto t0 = Clock::now();
        eigenvalues_batched(w.data(), K, N, ref.data());
        r.seconds = since(t0);
        r.note = "reference";
        progress(r);
        res.rows.push_back(r);
        res.lapack = int(res.rows.size()) - 1;
    }

    // The batched kernel, end to end.
    {
        std::unique_ptr<EigSolver> solver = cuda::make_batched_eig_solver();
        solver->eigenvalues(w.data(), std::min(K, 256), N, eig.data());  // warm-up
        const EigSolverStats before = solver->stats();
        Row r;
        r.label = "batched kernel (end to end)";
        r.N = N;
        r.K = K;
        r.seconds = std::numeric_limits<double>::infinity();
        int reps = 0;
        for (int rep = 0; rep < std::max(1, a.reps); ++rep) {
            const auto t0 = Clock::now();
            solver->eigenvalues(w.data(), K, N, eig.data());
            const double s = since(t0);
            r.seconds = std::min(r.seconds, s);
            ++reps;
            if (s > 2.0) break;  // a slow case is not worth repeating
        }
        const std::int64_t fallbacks = (solver->stats().fallbacks - before.fallbacks) / reps;
        r.note = "best of " + std::to_string(reps) + ", " + std::to_string(fallbacks) +
                 " fallback" + (fallbacks == 1 ? "" : "s") + " to Xgeev";
        compare(r, eig.data(), ref.data(), w.data(), K, N);
        progress(r);
        res.rows.push_back(r);
        res.batched = int(res.rows.size()) - 1;
    }

    // The batched kernel's raw call: copies and kernel, unsorted, no fallback.
    {
        std::vector<double> wr(std::size_t(K) * N), wi(std::size_t(K) * N);
        std::vector<int> info(K);
        const int warm = std::min(K, 256);
        cuda::eig_batched_raw(w.data(), warm, N, wr.data(), wi.data(), info.data());
        Row r;
        r.label = "batched kernel (raw call)";
        r.N = N;
        r.K = K;
        const auto t0 = Clock::now();
        cuda::eig_batched_raw(w.data(), K, N, wr.data(), wi.data(), info.data());
        r.seconds = since(t0);
        const int failed = sorted_spectra(wr, wi, info, K, N, eig.data());
        r.note = "copies + kernel, unsorted; " + std::to_string(failed) + " with info != 0";
        compare(r, eig.data(), ref.data(), w.data(), K, N);
        progress(r);
        res.rows.push_back(r);
    }

    // The kernel alone: one launch over all K matrices already on the device, timed with events,
    // for each block size of --block-threads (0 = the kernel's own choice).
    for (int block : a.block_threads) {
        const eig::Shape shape =
            eig::make_shape(N, cuda::device_limits().smem_per_block, false, block);
        cuda::Stream stream = cuda::make_stream();
        cudaStream_t s = stream.get();
        cuda::DeviceBuffer<double> dw(std::size_t(K) * nn), dwr(std::size_t(K) * N),
            dwi(std::size_t(K) * N);
        cuda::DeviceBuffer<int> dinfo(K);
        const int itmax_factor = cuda::EigBatchedOptions{}.itmax_factor;
        cuda::copy_to_device(dw.data(), w.data(), std::size_t(K) * nn, s);
        cuda::launch_eig_batched(shape, dw.data(), std::min(K, 256), dwr.data(), dwi.data(),
                                 dinfo.data(), itmax_factor, s);            // warm-up
        cuda::copy_to_device(dw.data(), w.data(), std::size_t(K) * nn, s);  // off chip: in place
        cuda::Event e0 = cuda::make_event(true), e1 = cuda::make_event(true);
        EIRNN_CHECK_CUDA(cudaEventRecord(e0.get(), s));
        cuda::launch_eig_batched(shape, dw.data(), K, dwr.data(), dwi.data(), dinfo.data(),
                                 itmax_factor, s);
        EIRNN_CHECK_CUDA(cudaEventRecord(e1.get(), s));
        EIRNN_CHECK_CUDA(cudaEventSynchronize(e1.get()));
        Row r;
        r.label = "batched kernel (kernel only, " + std::to_string(shape.threads) + " threads" +
                  (block == 0 ? ", default)" : ")");
        r.N = N;
        r.K = K;
        r.seconds = 1e-3 * cuda::elapsed_ms(e0.get(), e1.get());
        std::vector<double> wr(std::size_t(K) * N), wi(std::size_t(K) * N);
        std::vector<int> info(K);
        cuda::copy_to_host(wr.data(), dwr.data(), wr.size(), s);
        cuda::copy_to_host(wi.data(), dwi.data(), wi.size(), s);
        cuda::copy_to_host(info.data(), dinfo.data(), info.size(), s);
        EIRNN_CHECK_CUDA(cudaStreamSynchronize(s));
        const int failed = sorted_spectra(wr, wi, info, K, N, eig.data());
        r.note = std::string("one launch, data on the device, ") +
                 (shape.onchip ? "on chip" : "global memory") + "; " + std::to_string(failed) +
                 " with info != 0";
        compare(r, eig.data(), ref.data(), w.data(), K, N);
        progress(r);
        res.rows.push_back(r);
    }

    // Looped Xgeev on 1, 2, 4, 8 host threads, each on the first matrices until the time is up.
    double best_rate = 0;
    for (int threads : a.xgeev_threads) {
        std::unique_ptr<EigSolver> solver = cuda::make_xgeev_eig_solver(threads);
        solver->eigenvalues(w.data(), std::min(K, 2 * threads), N, eig.data());  // warm-up
        const EigSolverStats before = solver->stats();
        const int chunk = std::max(16, 16 * threads);
        int done = 0;
        const auto t0 = Clock::now();
        double s = 0;
        while (done < K && s < a.xgeev_seconds) {
            const int n = std::min(chunk, K - done);
            solver->eigenvalues(w.data() + std::size_t(done) * nn, n, N,
                                eig.data() + std::size_t(done) * N);
            done += n;
            s = since(t0);
        }
        Row r;
        r.label =
            "Xgeev looped, " + std::to_string(threads) + " thread" + (threads == 1 ? "" : "s");
        r.N = N;
        r.K = done;
        r.seconds = s;
        const std::int64_t fallbacks = solver->stats().fallbacks - before.fallbacks;
        r.note =
            std::to_string(fallbacks) + " fallback" + (fallbacks == 1 ? "" : "s") + " to LAPACK";
        compare(r, eig.data(), ref.data(), w.data(), done, N);
        progress(r);
        res.rows.push_back(r);
        if (r.rate() > best_rate) best_rate = r.rate(), res.best_xgeev = int(res.rows.size()) - 1;
    }
    return res;
}

void print(const std::vector<CaseResult>& results) {
    std::printf("%-32s %5s %7s %10s %12s %13s %10s  %s\n", "", "N", "K", "seconds", "matrices/s",
                "max|dlambda|", "mismatched", "note");
    for (const CaseResult& cr : results)
        for (const Row& r : cr.rows) {
            char diff[32] = "-", mism[32] = "-";
            if (r.compared) {
                std::snprintf(diff, sizeof diff, "%.1e", r.max_sorted);
                std::snprintf(mism, sizeof mism, "%d", r.mismatches);
            }
            std::printf("%-32s %5d %7d %10.3f %12.1f %13s %10s  %s\n", r.label.c_str(), r.N, r.K,
                        r.seconds, r.rate(), diff, mism, r.note.c_str());
        }
    std::printf(
        "(max|dlambda|: largest |lambda - lambda_lapack|, both sorted by modulus; "
        "mismatched: matrices farther than %.0e max(1, ||W||_F) from LAPACK's spectrum "
        "after nearest-neighbour matching)\n",
        kRelTol);
    for (const CaseResult& cr : results)
        for (const Row& r : cr.rows)
            if (r.compared && r.mismatches > 0)
                std::printf(
                    "MISMATCH N=%d %s: %d of %d matrices differ from LAPACK by more than "
                    "%.0e max(1, ||W||_F) (worst: matrix %d, %.2e)\n",
                    r.N, r.label.c_str(), r.mismatches, r.K, kRelTol, r.worst, r.worst_distance);
    for (const CaseResult& cr : results) {
        const Row& b = cr.rows[cr.batched];
        const Row& l = cr.rows[cr.lapack];
        std::printf("speed-up N=%d K=%d: batched %.1fx LAPACK (%s)", cr.c.N, cr.c.K,
                    b.rate() / l.rate(), l.label.c_str());
        if (cr.best_xgeev >= 0) {
            const Row& x = cr.rows[cr.best_xgeev];
            std::printf(", %.1fx the best looped Xgeev (%s)", b.rate() / x.rate(), x.label.c_str());
        }
        std::printf("\n");
        if (cr.c.N == 100) {
            const double s10k = b.seconds * 10000.0 / cr.c.K;
            std::printf("target N=100: 10,000 spectra in %.3f s%s (<= 1 s: %s)", s10k,
                        cr.c.K == 10000 ? "" : " (scaled from this K)",
                        s10k <= 1.0 ? "met" : "not met");
            if (cr.best_xgeev >= 0) {
                const double x = b.rate() / cr.rows[cr.best_xgeev].rate();
                std::printf(", %.1fx looped Xgeev (>= 10x: %s)", x, x >= 10 ? "met" : "not met");
            }
            std::printf("; torch.linalg.eigvals: bench/eig_torch.py\n");
        }
    }
}

Args parse(int argc, char** argv, bool& help) {
    Args a;
    help = false;
    for (int i = 1; i < argc; ++i) {
        const std::string f = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw InputError(f + ": needs a value");
            return argv[++i];
        };
        if (f == "--help" || f == "-h")
            help = true;
        else if (f == "--sizes")
            a.cases = parse_cases(value());
        else if (f == "--quick") {
            a.cases = {{100, 2000}, {256, 200}};
            a.xgeev_seconds = 1.0;
            a.reps = 1;
        } else if (f == "--xgeev-threads")
            a.xgeev_threads = parse_ints(value());
        else if (f == "--block-threads")
            a.block_threads = parse_ints(value());
        else if (f == "--xgeev-seconds")
            a.xgeev_seconds = std::stod(value());
        else if (f == "--reps")
            a.reps = std::stoi(value());
        else if (f == "--seed")
            a.seed = std::stoull(value());
        else
            throw InputError("unknown flag " + f + "\n" + kUsage);
    }
    for (int t : a.xgeev_threads)
        if (t < 1) throw InputError("--xgeev-threads: counts must be >= 1");
    for (int t : a.block_threads)
        if (t < 0 || t % 32 != 0 || t > eig::kMaxThreads)
            throw InputError("--block-threads: 0 or multiples of 32 up to 256");
    return a;
}

}  // namespace

int main(int argc, char** argv) {
    Args a;
    try {
        bool help = false;
        a = parse(argc, argv, help);
        if (help) {
            std::printf("%s", kUsage);
            return 0;
        }
    } catch (const std::exception& e) {  // InputError, or std::stoi's
        std::fprintf(stderr, "eig_gpu: %s\n", e.what());
        return 2;
    }
    try {
        if (!cuda::device_usable()) {
            std::fprintf(stderr, "eig_gpu: no CUDA device: %s\n", cuda::device_problem().c_str());
            return 2;
        }
        const std::string device = cuda::device_description();
        std::vector<CaseResult> results;
        for (const Case& c : a.cases) results.push_back(run_case(c, a));
        std::printf("GPU eigensolvers, device: %s; LAPACK on %d CPU threads (OpenBLAS core %s)\n",
                    device.c_str(), omp_get_max_threads(), openblas_get_corename());
        std::printf(
            "target (H100): 10,000 spectra of N = 100 in <= 1 s, >= 10x looped Xgeev, >= 10x "
            "torch.linalg.eigvals\n");
        std::printf(
            "matrices: entries N(0, 1/N), std::mt19937_64 seed %llu, fp64, all "
            "eigenvalues; Xgeev runs take the first matrices for %.1f s each\n",
            static_cast<unsigned long long>(a.seed), a.xgeev_seconds);
        print(results);
    } catch (const InputError& e) {
        std::fprintf(stderr, "eig_gpu: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "eig_gpu: error: %s\n", e.what());
        return 1;
    }
    return 0;
}
