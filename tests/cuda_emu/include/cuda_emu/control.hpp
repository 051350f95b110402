// What the emulated device offers beyond the CUDA API: its counters and a reset, for the
// emulator's own tests (tests/cuda_emu/test_cuda_emu.cpp). Project code never includes this.
#pragma once
#include <cstddef>
#include <string>

namespace emu {

struct Stats {
    long launches = 0;               // kernels run to the end
    long device_faults = 0;          // launches stopped by a rule of the device
    long async_pageable_copies = 0;  // cudaMemcpyAsync with pageable host memory (synchronous)
    long async_pinned_copies = 0;    // cudaMemcpyAsync between pinned and device memory
    std::size_t device_bytes_in_use = 0;
};
Stats stats();

/// The last device fault's message ("" when none).
std::string last_fault();

/// Clears the sticky error of a device fault and the last error, and waits for every stream.
/// The real device cannot recover from a fault in the same process; the tests of the rules do.
void reset_after_fault();

/// Sets the emulated device memory (bytes) as cudaMemGetInfo reports it (0: the default).
void set_device_memory(std::size_t bytes);

}  // namespace emu
