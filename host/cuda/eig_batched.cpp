// The batched eigenvalue kernel behind EigSolver: matrices go to the device in memory-sized
// chunks on two streams through pinned staging (the copies of one chunk overlap the kernel of the
// other), one launch per chunk; flagged matrices (QR not converged) are recomputed by Xgeev.
#include <algorithm>
#include <memory>
#include <vector>

#include "host/cuda/eig.hpp"
#include "host/cuda/error.hpp"
#include "host/cuda/handles.hpp"
#include "host/cuda/memory.hpp"
#include "kernels/cuda/eig.cuh"

namespace eirnn::cuda {
namespace {

/// Matrices per chunk: two chunks in flight within 40% of the free device memory, and at most
/// 256 MiB of them (the size of each chunk's pinned staging).
int chunk_size(int K, int N) {
    std::size_t free = 0, total = 0;
    EIRNN_CHECK_CUDA(cudaMemGetInfo(&free, &total));
    const std::size_t per =
        (std::size_t(N) * N + 2 * std::size_t(N)) * sizeof(double) + sizeof(int);
    std::size_t fit = std::min(free / 5 / per, (std::size_t(256) << 20) / per);  // 2 in 40%
    if (fit < 1)
        throw GpuError("eigenvalues: not enough device memory for one " + std::to_string(N) +
                       " x " + std::to_string(N) + " matrix");
    return static_cast<int>(std::min<std::size_t>(fit, std::size_t(K)));
}

class BatchedSolver final : public EigSolver {
public:
    explicit BatchedSolver(const EigBatchedOptions& opt) : opt_(opt) {}
    std::string name() const override { return "batched-cuda"; }

    void eigenvalues(const double* w, int K, int N, cplx* out) override {
        if (K < 0 || N <= 0) throw Error("eigenvalues: need K >= 0 matrices of N >= 1 units");
        if (K == 0) return;
        std::vector<double> wr(std::size_t(K) * N), wi(std::size_t(K) * N);
        std::vector<int> info(K);
        eig_batched_raw(w, K, N, wr.data(), wi.data(), info.data(), opt_);
        std::vector<int> flagged;
        for (int k = 0; k < K; ++k) {
            cplx* row = out + std::size_t(k) * N;
            if (info[k] > 0) {
                flagged.push_back(k);
                continue;
            }
            for (int j = 0; j < N; ++j)
                row[j] = info[k] == 0 ? cplx(wr[std::size_t(k) * N + j], wi[std::size_t(k) * N + j])
                                      : cplx(kNaN, kNaN);
            sort_spectrum(row, N);
        }
        if (!flagged.empty()) {
            if (!fallback_) fallback_ = make_xgeev_eig_solver();
            recompute_flagged(*fallback_, w, N, flagged, out);
        }
        stats_.matrices += K;
        stats_.fallbacks += static_cast<std::int64_t>(flagged.size());
    }

private:
    EigBatchedOptions opt_;
    std::unique_ptr<EigSolver> fallback_;
};

class AutoSolver final : public EigSolver {
public:
    std::string name() const override { return "auto-cuda"; }

    void eigenvalues(const double* w, int K, int N, cplx* out) override {
        std::unique_ptr<EigSolver>& s = N <= kEigBatchedMaxN ? batched_ : xgeev_;
        if (!s) s = N <= kEigBatchedMaxN ? make_batched_eig_solver() : make_xgeev_eig_solver();
        s->eigenvalues(w, K, N, out);
        stats_ = {};
        for (const auto* p : {&batched_, &xgeev_})
            if (*p) {
                stats_.matrices += (*p)->stats().matrices;
                stats_.fallbacks += (*p)->stats().fallbacks;
            }
    }

private:
    std::unique_ptr<EigSolver> batched_, xgeev_;
};

}  // namespace

int eig_onchip_max_n() {
    return eig::max_onchip_n(device_limits().smem_per_block);
}

void eig_batched_raw(const double* w, int K, int N, double* wr, double* wi, int* info,
                     const EigBatchedOptions& opt) {
    if (K < 0 || N <= 0) throw Error("eig_batched_raw: need K >= 0 matrices of N >= 1 units");
    if (opt.itmax_factor < 0) throw Error("eig_batched_raw: itmax_factor must be >= 0");
    if (opt.threads < 0 || opt.threads % 32 != 0 || opt.threads > eig::kMaxThreads)
        throw Error("eig_batched_raw: threads must be 0 or a multiple of 32 up to 256");
    if (K == 0) return;
    const eig::Shape shape =
        eig::make_shape(N, device_limits().smem_per_block, opt.force_global, opt.threads);
    const std::size_t nn = std::size_t(N) * N;
    const int chunk = chunk_size(K, N);
    const int buffers = chunk < K ? 2 : 1;
    // Per buffer: a stream, device buffers and pinned staging (async copies from pageable memory
    // would wait for the host, and the copies of one chunk could not overlap the other's kernel).
    struct Slot {
        Stream stream;
        DeviceBuffer<double> w, wr, wi;
        DeviceBuffer<int> info;
        PinnedBuffer<double> h_w, h_wr, h_wi;
        PinnedBuffer<int> h_info;
        int k0 = 0, n = 0;  // the chunk in flight (n = 0: none)
    };
    Slot slots[2];
    for (int b = 0; b < buffers; ++b) {
        Slot& sl = slots[b];
        sl.stream = make_stream();
        sl.w = DeviceBuffer<double>(std::size_t(chunk) * nn);
        sl.wr = DeviceBuffer<double>(std::size_t(chunk) * N);
        sl.wi = DeviceBuffer<double>(std::size_t(chunk) * N);
        sl.info = DeviceBuffer<int>(chunk);
        sl.h_w = PinnedBuffer<double>(std::size_t(chunk) * nn);
        sl.h_wr = PinnedBuffer<double>(std::size_t(chunk) * N);
        sl.h_wi = PinnedBuffer<double>(std::size_t(chunk) * N);
        sl.h_info = PinnedBuffer<int>(chunk);
    }
    // Waits for the chunk in flight on a slot and copies its results out of the staging.
    auto finish = [&](Slot& sl) {
        if (sl.n == 0) return;
        EIRNN_CHECK_CUDA(cudaStreamSynchronize(sl.stream.get()));
        const std::size_t rows = std::size_t(sl.n) * N;
        std::copy_n(sl.h_wr.data(), rows, wr + std::size_t(sl.k0) * N);
        std::copy_n(sl.h_wi.data(), rows, wi + std::size_t(sl.k0) * N);
        std::copy_n(sl.h_info.data(), sl.n, info + sl.k0);
        sl.n = 0;
    };
    for (int k0 = 0, c = 0; k0 < K; k0 += chunk, ++c) {
        Slot& sl = slots[c % buffers];
        finish(sl);
        const int n = std::min(chunk, K - k0);
        cudaStream_t s = sl.stream.get();
        std::copy_n(w + std::size_t(k0) * nn, std::size_t(n) * nn, sl.h_w.data());
        copy_to_device(sl.w.data(), sl.h_w.data(), std::size_t(n) * nn, s);
        launch_eig_batched(shape, sl.w.data(), n, sl.wr.data(), sl.wi.data(), sl.info.data(),
                           opt.itmax_factor, s);
        copy_to_host(sl.h_wr.data(), sl.wr.data(), std::size_t(n) * N, s);
        copy_to_host(sl.h_wi.data(), sl.wi.data(), std::size_t(n) * N, s);
        copy_to_host(sl.h_info.data(), sl.info.data(), std::size_t(n), s);
        sl.k0 = k0;
        sl.n = n;
    }
    for (int b = 0; b < buffers; ++b) finish(slots[b]);
}

std::unique_ptr<EigSolver> make_batched_eig_solver(const EigBatchedOptions& opt) {
    if (opt.itmax_factor < 0) throw Error("make_batched_eig_solver: itmax_factor must be >= 0");
    return std::make_unique<BatchedSolver>(opt);
}

std::unique_ptr<EigSolver> make_auto_eig_solver() {
    return std::make_unique<AutoSolver>();
}

}  // namespace eirnn::cuda
