// Shared state of the emulated device's runtime (runtime.cpp: devices, errors, memory, streams,
// events, launches; execute.cpp: kernels on fibers; libraries.cpp: cuBLAS and cuSOLVER).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "cuda_emu/control.hpp"
#include "cuda_emu/device.hpp"
#include "cuda_runtime.h"

#if defined(EIRNN_EMU_TSAN)
#include <sanitizer/tsan_interface.h>
#define EMU_TSAN_RELEASE(addr) __tsan_release(const_cast<void*>(static_cast<const void*>(addr)))
#define EMU_TSAN_ACQUIRE(addr) __tsan_acquire(const_cast<void*>(static_cast<const void*>(addr)))
#else
#define EMU_TSAN_RELEASE(addr) ((void)(addr))
#define EMU_TSAN_ACQUIRE(addr) ((void)(addr))
#endif

namespace emu {

/// Settings, from the environment (tests/cuda_emu/README.md lists them).
struct Options {
    std::size_t device_memory = std::size_t(80) << 30;  // what cudaMemGetInfo reports
    int devices = 1;
    int workers = 2;                  // OS threads that run clusters
    std::size_t stack_bytes = 0;      // per emulated thread (0: by build)
    bool fill_nan = true;             // new device memory starts as NaN bit patterns
    bool abort_on_fault = false;      // abort() at a device fault (for a debugger)
    std::string fault_kernel;         // fault injection only in kernels whose name has this
    long drop_syncthreads = 0;        // skip every thread's k-th __syncthreads (0: none)
    int drop_syncthreads_warp = -1;   // ... only in this warp (-1: all warps)
    long drop_cluster_sync = 0;       // skip every thread's k-th cluster.sync()
    std::size_t misalign_shared = 0;  // offset (bytes) of the dynamic shared memory
    long misalign_allocation = 0;     // the k-th device allocation is offset by 4 bytes
};
Options& options();

/// One global lock for streams, events and the memory registry; one condition for all waits.
std::mutex& lock();
std::condition_variable& changed();

// ---- errors ----
/// Records e as the calling thread's last error (unless success) and returns it.
cudaError_t fail(cudaError_t e);
/// The sticky error of a device fault (cudaSuccess when none).
cudaError_t sticky();
/// A rule of the device broken by a running kernel: prints the message, makes the error sticky.
void device_fault(cudaError_t e, const std::string& message);
void note_launch_done();
void note_async_copy(bool pageable);

// ---- memory ----
enum class MemKind { kNone, kDevice, kPinned };
struct Region {
    MemKind kind = MemKind::kNone;
    int device = 0;
    const std::byte* base = nullptr;  // the allocation holding the pointer
    std::size_t size = 0;
    bool inside = false;  // the queried range lies inside it
    bool freed = false;   // the pointer is in device memory freed earlier
};
/// Where [p, p + bytes) lies.
Region find_region(const void* p, std::size_t bytes);

// ---- streams ----
struct StreamState;
/// The stream (the device's legacy stream for nullptr); null with *err set when the handle is
/// not a live stream.
StreamState* resolve(cudaStream_t s, cudaError_t* err);
int stream_device(const StreamState* s);
/// Appends an operation; it runs on the stream's worker after everything enqueued before it.
void enqueue(StreamState* s, std::function<void()> op);
/// Blocks until everything enqueued on s so far has run.
void wait_idle(StreamState* s);
int current_device();

// ---- kernels ----
struct KernelAttributes {
    int max_dynamic_smem = 48 * 1024;
    bool non_portable_cluster = false;
};
KernelAttributes kernel_attributes(const void* kernel);
/// The kernel's __launch_bounds__ (max threads per block), 0 when it has none.
unsigned launch_bound(const void* kernel);
/// "eirnn::cuda::(anonymous namespace)::rnn_forward_kernel<true, false>(...)" or "kernel@0x...".
std::string kernel_name(const void* kernel);

/// Runs a checked launch to the end on the calling (stream worker) thread and the cluster pool.
void execute(const void* kernel, const LaunchShape& shape, const std::function<void()>& body);

// Hardware model: an H100 / H200 SXM (sm_90).
constexpr int kSms = 132;
constexpr int kMaxThreadsPerBlock = 1024;
constexpr int kMaxThreadsPerSm = 2048;
constexpr std::size_t kStaticSmemLimit = 48 * 1024;
constexpr std::size_t kOptinSmem = 232448;  // 227 KB per block with the attribute
constexpr std::size_t kSmemPerSm = 233472;  // 228 KB per SM, 1 KB reserved per block
constexpr int kPortableCluster = 8, kMaxCluster = 16;
constexpr int kGpcs = 8, kSmsPerGpc = 16;  // clusters stay inside a GPC

}  // namespace emu
