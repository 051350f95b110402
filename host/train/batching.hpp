// Per-network batch index maps: each network shuffles the training set with its own seed every
// epoch (Fisher-Yates on Philox draws), and batches are gathered time-major. Shared by every
// backend.
#pragma once
#include <cstdint>
#include <vector>

#include "tasks/task.hpp"

namespace eirnn {

/// Permutation of 0..n-1 for (network seed, epoch): identical on every backend.
std::vector<int> epoch_order(std::uint64_t seed, int epoch, int n);

/// Number of batches of an epoch of n trials (the last one may be partial).
inline int batches_per_epoch(int n, int batch) {
    return (n + batch - 1) / batch;
}

/// Gathers trials idx[0..B) of d into time-major x (T,B,I), y (T,B,O), mask (T,B,O).
void gather_batch(const Dataset& d, const int* idx, int B, float* x, float* y, float* mask);

}  // namespace eirnn
