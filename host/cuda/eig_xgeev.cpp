// cuSOLVER's cusolverDnXgeev behind EigSolver: fp64, eigenvalues only, one matrix per call, on
// several host threads that each own a non-blocking stream, a cusolverDn handle and params, device
// buffers and pinned host staging, and take matrices from a shared counter. Xgeev reads A
// column-major: a row-major W is read as W^T, which has the same eigenvalues. With all-real data
// types W holds 2N doubles, the real parts then the imaginary parts (LAPACK's WR, WI).
// It is the baseline the batched kernel is measured against and the kernel's fallback.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "host/analysis/spectra.hpp"
#include "host/core/error.hpp"
#include "host/cuda/eig.hpp"
#include "host/cuda/error.hpp"
#include "host/cuda/handles.hpp"
#include "host/cuda/memory.hpp"

namespace eirnn::cuda {
namespace {

constexpr int kDefaultStreams = 4;

/// One host thread's stream, handle and buffers, sized for N x N matrices.
struct XgeevContext {
    int N = 0;
    Stream stream;  // declared before the handle: the handle is destroyed first
    Cusolver handle;
    CusolverParams params;
    DeviceBuffer<double> a;        // (N,N) column-major: the row-major matrix read as its transpose
    DeviceBuffer<double> w;        // (2N) real parts, then imaginary parts
    DeviceBuffer<int> info;        // (1)
    DeviceBuffer<char> work;       // Xgeev's device workspace
    PinnedBuffer<char> host_work;  // Xgeev's host workspace
    PinnedBuffer<double> a_host;   // (N,N) staging of the matrix
    PinnedBuffer<double> w_host;   // (2N)
    PinnedBuffer<int> info_host;   // (1)
};

/// Makes (or remakes for another N) a context on the current device.
void prepare(XgeevContext& c, int N) {
    if (!c.stream) {
        c.stream = make_stream();
        c.handle = make_cusolver(c.stream.get());
        c.params = make_cusolver_params();
        c.info = DeviceBuffer<int>(1);
        c.info_host = PinnedBuffer<int>(1);
    }
    if (c.N == N) return;
    c.N = 0;  // until every buffer has its new size (an allocation may throw)
    const std::size_t nn = std::size_t(N) * N;
    c.a = DeviceBuffer<double>(nn);
    c.w = DeviceBuffer<double>(2 * std::size_t(N));
    c.a_host = PinnedBuffer<double>(nn);
    c.w_host = PinnedBuffer<double>(2 * std::size_t(N));
    std::size_t device_bytes = 0, host_bytes = 0;
    EIRNN_CHECK_CUSOLVER(cusolverDnXgeev_bufferSize(
        c.handle.get(), c.params.get(), CUSOLVER_EIG_MODE_NOVECTOR, CUSOLVER_EIG_MODE_NOVECTOR, N,
        CUDA_R_64F, c.a.data(), N, CUDA_R_64F, c.w.data(), CUDA_R_64F, nullptr, 1, CUDA_R_64F,
        nullptr, 1, CUDA_R_64F, &device_bytes, &host_bytes));
    c.work = DeviceBuffer<char>(device_bytes);
    c.host_work = PinnedBuffer<char>(host_bytes);
    c.N = N;
}

bool all_finite(const double* w, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
        if (!std::isfinite(w[i])) return false;
    return true;
}

void fill_nan(cplx* out, int N) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    std::fill(out, out + N, cplx(nan, nan));
}

/// Eigenvalues of one finite matrix on context c into out (N), sorted. False when Xgeev's info is
/// not 0 (out is then untouched).
bool solve_one(XgeevContext& c, const double* w, int N, cplx* out) {
    const std::size_t nn = std::size_t(N) * N;
    cudaStream_t s = c.stream.get();
    std::memcpy(c.a_host.data(), w, nn * sizeof(double));
    copy_to_device(c.a.data(), c.a_host.data(), nn, s);
    EIRNN_CHECK_CUSOLVER(cusolverDnXgeev(c.handle.get(), c.params.get(), CUSOLVER_EIG_MODE_NOVECTOR,
                                         CUSOLVER_EIG_MODE_NOVECTOR, N, CUDA_R_64F, c.a.data(), N,
                                         CUDA_R_64F, c.w.data(), CUDA_R_64F, nullptr, 1, CUDA_R_64F,
                                         nullptr, 1, CUDA_R_64F, c.work.data(), c.work.size(),
                                         c.host_work.data(), c.host_work.size(), c.info.data()));
    copy_to_host(c.w_host.data(), c.w.data(), 2 * std::size_t(N), s);
    copy_to_host(c.info_host.data(), c.info.data(), 1, s);
    EIRNN_CHECK_CUDA(cudaStreamSynchronize(s));
    if (c.info_host[0] != 0) return false;
    for (int i = 0; i < N; ++i) out[i] = cplx(c.w_host[i], c.w_host[std::size_t(N) + i]);
    sort_spectrum(out, N);
    return true;
}

class XgeevSolver final : public EigSolver {
public:
    explicit XgeevSolver(int streams) : threads_(streams > 0 ? streams : kDefaultStreams) {}

    std::string name() const override { return "xgeev"; }

    void eigenvalues(const double* w, int K, int N, cplx* out) override {
        if (K < 0 || N <= 0) throw Error("eigenvalues: need K >= 0 matrices of N >= 1 units");
        if (K == 0) return;
        int device = 0;
        EIRNN_CHECK_CUDA(cudaGetDevice(&device));
        if (device_ != device) {  // handles and buffers belong to the device they were made on
            contexts_.clear();
            device_ = device;
        }
        const int T = std::min(threads_, K);
        if (int(contexts_.size()) < T) contexts_.resize(T);

        std::atomic<int> next{0};
        std::atomic<bool> stop{false};
        std::atomic<std::int64_t> fallbacks{0};
        std::exception_ptr first_error;
        std::mutex error_mutex, fallback_mutex;
        const std::size_t nn = std::size_t(N) * N;

        auto work = [&](int t) {
            try {
                EIRNN_CHECK_CUDA(cudaSetDevice(device));
                XgeevContext& c = contexts_[t];
                prepare(c, N);
                for (int k = next++; k < K && !stop; k = next++) {
                    const double* wk = w + std::size_t(k) * nn;
                    cplx* ek = out + std::size_t(k) * N;
                    if (!all_finite(wk, nn)) {
                        fill_nan(ek, N);
                        continue;
                    }
                    if (solve_one(c, wk, N, ek)) continue;
                    // Xgeev flagged this matrix (info != 0): LAPACK on the host decides; a
                    // matrix that LAPACK cannot do either is a NaN row, not an exception. One
                    // fallback at a time: eigenvalues() sets OpenBLAS's process-wide thread count
                    // and restores it, which concurrent calls would interleave.
                    ++fallbacks;
                    std::lock_guard<std::mutex> lock(fallback_mutex);
                    try {
                        const std::vector<cplx> e = ::eirnn::eigenvalues(wk, N);
                        std::copy(e.begin(), e.end(), ek);
                    } catch (const Error&) {
                        fill_nan(ek, N);
                    }
                }
            } catch (...) {
                std::lock_guard<std::mutex> lock(error_mutex);
                if (!first_error) first_error = std::current_exception();
                stop = true;
            }
        };

        std::vector<std::thread> pool;
        pool.reserve(T - 1);
        try {
            for (int t = 1; t < T; ++t) pool.emplace_back(work, t);
        } catch (...) {  // could not start a thread: stop the others, then report it
            stop = true;
            for (std::thread& th : pool) th.join();
            throw;
        }
        work(0);  // the caller's thread is worker 0
        for (std::thread& th : pool) th.join();
        if (first_error) std::rethrow_exception(first_error);
        stats_.matrices += K;
        stats_.fallbacks += fallbacks.load();
    }

private:
    int threads_;
    int device_ = -1;
    std::vector<XgeevContext> contexts_;  // one per worker, reused across calls
};

}  // namespace

std::unique_ptr<EigSolver> make_xgeev_eig_solver(int streams) {
    if (streams < 0) throw InputError("xgeev: streams must be >= 0 (0 = 4)");
    return std::make_unique<XgeevSolver>(streams);
}

}  // namespace eirnn::cuda
