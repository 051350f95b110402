// Launcher of the batch gather (batching.cu), the CUDA twin of host/train/batching.hpp
// gather_batch: every launched network gathers its own shuffled batch from the data set resident on
// the device.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace eirnn::cuda {

struct GatherArgs {
    int count = 0;                         // slots
    const int* nets = nullptr;             // (count) network of each slot, or null
    const std::uint8_t* status = nullptr;  // (K) 0 = training, others skipped; or null
    const int* order = nullptr;            // (count, n) epoch order of each slot (plan.hpp)
    int n = 0;                             // row length of order (trials in the data set)
    int first = 0;                         // this batch's first position in the order (j B)
    int B = 0, T = 0, I = 0, O = 0;        // trials of this batch, steps, inputs, outputs
    const float* data_x = nullptr;         // (n,T,I) the data set
    const float* data_y = nullptr;         // (n,T,O)
    const float* data_mask = nullptr;      // (n,T,O)
    float* x = nullptr;                    // (count) (T,B,I), slot stride x_stride
    float* y = nullptr;                    // (count) (T,B,O), slot stride y_stride
    float* mask = nullptr;                 // (count) (T,B,O)
    std::size_t x_stride = 0, y_stride = 0;
};

/// x[slot][t][b] = data_x[order[slot][first + b]][t] (and y, mask), time-major.
void gather_batch(const GatherArgs& a, cudaStream_t s);

}  // namespace eirnn::cuda
