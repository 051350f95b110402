// The emulated device's internal interface: what the CUDA headers of this folder (cuda_runtime.h,
// cooperative_groups.h) need from the runtime in src/. Kernel code never includes this directly.
//
// Model: every CUDA thread of a launch is a fiber (its own stack, switched cooperatively); the
// fibers of one cluster run on one worker thread, clusters of a grid on a pool of workers, each
// stream has its own worker. Barriers, warp operations and cluster barriers are rendezvous points
// of the fiber scheduler; ThreadSanitizer is told about every fiber and every happens-before edge a
// barrier makes (and no others), so it reports any pair of accesses that the kernel does not order.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <source_location>

namespace emu {

/// Indices of the running emulated thread (threadIdx, blockIdx, blockDim, gridDim).
struct ThreadView {
    unsigned tid[3], bid[3], bdim[3], gdim[3];
};

/// The emulated thread running on this worker (set by the scheduler at every switch).
extern thread_local constinit const ThreadView* t_view;

/// A thread of a kernel that is not running inside a launch (e.g. a builtin read on the host).
[[noreturn]] void not_in_kernel(const char* what);

inline const ThreadView& view(const char* what) {
    const ThreadView* v = t_view;
    if (!v) not_in_kernel(what);
    return *v;
}

// ---- synchronisation built-ins ----
void syncthreads(const std::source_location& where);
void syncwarp(unsigned mask, const std::source_location& where);
enum class ShuffleMode { kIdx, kUp, kDown, kXor };
std::uint64_t shuffle(unsigned mask, std::uint64_t bits, ShuffleMode mode, int arg, int width,
                      const std::source_location& where);

// ---- shared memory ----
/// The dynamic shared memory of the calling thread's block.
void* dynamic_shared();
/// The static shared array identified by `key` in the calling thread's block (made on first use,
/// filled with NaN bit patterns).
void* static_shared(const void* key, std::size_t bytes, std::size_t align);

// ---- thread-block clusters ----
void cluster_sync(const std::source_location& where);
unsigned cluster_rank();
unsigned cluster_size();
/// p (in the caller's shared memory) mapped to the same offset in cluster rank r's.
void* map_shared_rank(const void* p, unsigned r);

/// Launch parameters after the runtime's checks.
struct LaunchShape {
    unsigned grid[3] = {1, 1, 1}, block[3] = {1, 1, 1}, cluster[3] = {1, 1, 1};
    std::size_t smem = 0;
};

}  // namespace emu
