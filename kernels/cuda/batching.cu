// Batch gather (twin of host/train/batching.cpp gather_batch) for every launched network at once.
// Shapes: data set x (n,T,I), y and mask (n,T,O) row-major by trial; gathered batches time-major
// (T,B,I) and (T,B,O) per slot. Mapping: grid (slot, chunk of the T*B (step, trial) pairs), one
// thread per pair, trials fastest so that the batch writes coalesce; the reads are one short row
// of a random trial each (the data set is L2-resident for the study's sizes).
#include "host/cuda/error.hpp"
#include "kernels/cuda/batching.cuh"
#include "kernels/cuda/launch.cuh"

namespace eirnn::cuda {

namespace {

constexpr int kThreads = 256;

__global__ void __launch_bounds__(kThreads) gather_batch_kernel(const GatherArgs a) {
    const int slot = static_cast<int>(blockIdx.x);
    const long pair = static_cast<long>(blockIdx.y) * kThreads + threadIdx.x;
    const int net = a.nets ? a.nets[slot] : slot;
    if (pair >= static_cast<long>(a.T) * a.B || (a.status && a.status[net] != 0)) return;
    const int t = static_cast<int>(pair / a.B), b = static_cast<int>(pair % a.B);
    const std::size_t r =
        static_cast<std::size_t>(a.order[static_cast<std::size_t>(slot) * a.n + a.first + b]);
    const std::size_t src_x = (r * a.T + t) * a.I, src_y = (r * a.T + t) * a.O;
    float* x =
        a.x + static_cast<std::size_t>(slot) * a.x_stride + static_cast<std::size_t>(pair) * a.I;
    float* y =
        a.y + static_cast<std::size_t>(slot) * a.y_stride + static_cast<std::size_t>(pair) * a.O;
    float* mk =
        a.mask + static_cast<std::size_t>(slot) * a.y_stride + static_cast<std::size_t>(pair) * a.O;
    for (int i = 0; i < a.I; ++i) x[i] = a.data_x[src_x + i];
    for (int o = 0; o < a.O; ++o) {
        y[o] = a.data_y[src_y + o];
        mk[o] = a.data_mask[src_y + o];
    }
}

}  // namespace

void gather_batch(const GatherArgs& a, cudaStream_t s) {
    if (a.count == 0) return;
    const long pairs = static_cast<long>(a.T) * a.B;
    if (pairs < 1 || a.first + a.B > a.n)
        throw Error("gather_batch: batch outside the epoch order");
    const long chunks = (pairs + kThreads - 1) / kThreads;
    if (chunks > 65535) throw Error("gather_batch: T * B too large");
    dim3 grid(static_cast<unsigned>(a.count), static_cast<unsigned>(chunks));
    launch_kernel(gather_batch_kernel, grid, dim3(kThreads), 0, s, a);
    EIRNN_CHECK_CUDA(cudaGetLastError());
}

}  // namespace eirnn::cuda
