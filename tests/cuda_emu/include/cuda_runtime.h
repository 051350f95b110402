// The CUDA runtime API of the emulated device: what eirnn's kernels (kernels/cuda) and its CUDA
// backend (host/cuda) use, with the documented semantics and error codes, executed on the CPU
// (tests/cuda_emu/README.md). Compiled as plain C++: device code is host code here, the built-in
// variables read the running emulated thread, and the launch helpers take the kernel's pointer.
#pragma once
#include <math.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <source_location>
#include <tuple>
#include <type_traits>
#include <utility>

#include "cuda_emu/device.hpp"

#define CUDART_VERSION 13000
#define EIRNN_CUDA_EMULATED 1

// ---- execution space qualifiers: all code is host code here ----
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __align__(n) alignas(n)
// The first argument (max threads per block) is kept where the runtime can read it: as the length
// of the function's patchable entry (a run of NOPs that the runtime counts at launch).
#define __launch_bounds__(max_threads, ...) \
    __attribute__((patchable_function_entry(sizeof(char[max_threads]), 0)))

// Shared memory declarations (kernels/cuda/shared_memory.cuh spells them for nvcc).
#define EIRNN_DYNAMIC_SHARED(T, name) T* const name = static_cast<T*>(::emu::dynamic_shared())
#define EIRNN_STATIC_SHARED(T, name, n) T* const name = ::emu::static_array<T, (n)>([] {})

namespace emu {
/// A static shared array: one per declaration (the lambda's type) and block.
template <class T, std::size_t n, class Tag>
T* static_array(Tag) {
    static const char key = 0;
    return static_cast<T*>(static_shared(&key, n * sizeof(T), alignof(T)));
}
}  // namespace emu

// ---- vector types ----
struct dim3 {
    unsigned x = 1, y = 1, z = 1;
    constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};
struct uint3 {
    unsigned x, y, z;
};
struct alignas(16) float4 {
    float x, y, z, w;
};
struct alignas(8) float2 {
    float x, y;
};
struct alignas(16) double2 {
    double x, y;
};
inline float4 make_float4(float x, float y, float z, float w) {
    return {x, y, z, w};
}

// ---- built-in variables: threadIdx, blockIdx, blockDim, gridDim ----
namespace emu {
template <int W, int F>
struct BuiltinField {
    operator unsigned() const {
        static constexpr const char* names[] = {"threadIdx", "blockIdx", "blockDim", "gridDim"};
        const ThreadView& v = view(names[W]);
        const unsigned* a = W == 0 ? v.tid : W == 1 ? v.bid : W == 2 ? v.bdim : v.gdim;
        return a[F];
    }
};
template <int W>
struct Builtin {
    BuiltinField<W, 0> x;
    BuiltinField<W, 1> y;
    BuiltinField<W, 2> z;
    operator uint3() const { return {x, y, z}; }
    operator dim3() const { return dim3(x, y, z); }
};
}  // namespace emu
inline constexpr emu::Builtin<0> threadIdx{};
inline constexpr emu::Builtin<1> blockIdx{};
inline constexpr emu::Builtin<2> blockDim{};
inline constexpr emu::Builtin<3> gridDim{};
inline constexpr int warpSize = 32;

// ---- synchronisation and warp intrinsics ----
inline void __syncthreads(std::source_location where = std::source_location::current()) {
    emu::syncthreads(where);
}
inline void __syncwarp(unsigned mask = 0xffffffffu,
                       std::source_location where = std::source_location::current()) {
    emu::syncwarp(mask, where);
}

namespace emu {
template <class T>
T shuffle_value(unsigned mask, T v, ShuffleMode mode, int arg, int width,
                const std::source_location& where) {
    static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8,
                  "warp shuffles move 4- or 8-byte values");
    std::uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    bits = shuffle(mask, bits, mode, arg, width, where);
    T r;
    std::memcpy(&r, &bits, sizeof(T));
    return r;
}
}  // namespace emu

template <class T>
T __shfl_sync(unsigned mask, T v, int src_lane, int width = warpSize,
              std::source_location where = std::source_location::current()) {
    return emu::shuffle_value(mask, v, emu::ShuffleMode::kIdx, src_lane, width, where);
}
template <class T>
T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = warpSize,
                 std::source_location where = std::source_location::current()) {
    return emu::shuffle_value(mask, v, emu::ShuffleMode::kUp, static_cast<int>(delta), width,
                              where);
}
template <class T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = warpSize,
                   std::source_location where = std::source_location::current()) {
    return emu::shuffle_value(mask, v, emu::ShuffleMode::kDown, static_cast<int>(delta), width,
                              where);
}
template <class T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = warpSize,
                  std::source_location where = std::source_location::current()) {
    return emu::shuffle_value(mask, v, emu::ShuffleMode::kXor, lane_mask, width, where);
}

// ---- device math that the host library lacks or spells differently ----
using std::fmax;
using std::fmin;
using std::isfinite;
using std::isinf;
using std::isnan;
/// cos(pi x), with the argument reduced exactly in units of pi (as the device's cospi does).
inline double cospi(double x) {
    if (!std::isfinite(x)) return std::nan("");
    double r = std::fmod(std::fabs(x), 2.0);  // exact
    if (r > 1.0) r = 2.0 - r;                 // cos(pi r) is even about 1
    const double pi = 3.141592653589793238462643383279502884;
    if (r == 0.5) return 0.0;
    return r < 0.5 ? std::cos(pi * r) : -std::cos(pi * (1.0 - r));
}
inline float cospif(float x) {
    return static_cast<float>(cospi(x));
}
inline double sinpi(double x) {
    return cospi(x - 0.5);
}
inline float rsqrtf(float x) {
    return 1.0f / std::sqrt(x);
}
inline double rsqrt(double x) {
    return 1.0 / std::sqrt(x);
}

// ---- runtime types ----
enum cudaError_t {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInitializationError = 3,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDevicePointer = 17,
    cudaErrorInvalidMemcpyDirection = 21,
    cudaErrorNoDevice = 100,
    cudaErrorInvalidDevice = 101,
    cudaErrorInvalidResourceHandle = 400,
    cudaErrorNotReady = 600,
    cudaErrorIllegalAddress = 700,
    cudaErrorLaunchOutOfResources = 701,
    cudaErrorIllegalInstruction = 715,
    cudaErrorMisalignedAddress = 716,
    cudaErrorLaunchFailure = 719,
    cudaErrorNotSupported = 801,
    cudaErrorInvalidClusterSize = 912,
    cudaErrorUnknown = 999,
};

typedef struct CUstream_st* cudaStream_t;
typedef struct CUevent_st* cudaEvent_t;

#define cudaStreamDefault 0x00u
#define cudaStreamNonBlocking 0x01u
#define cudaEventDefault 0x00u
#define cudaEventBlockingSync 0x01u
#define cudaEventDisableTiming 0x02u
#define cudaHostAllocDefault 0x00u

enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4,
};

enum cudaDeviceAttr {
    cudaDevAttrMaxThreadsPerBlock = 1,
    cudaDevAttrMaxSharedMemoryPerBlock = 8,
    cudaDevAttrWarpSize = 10,
    cudaDevAttrMultiProcessorCount = 16,
    cudaDevAttrComputeCapabilityMajor = 75,
    cudaDevAttrComputeCapabilityMinor = 76,
    cudaDevAttrMaxSharedMemoryPerMultiprocessor = 81,
    cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
    cudaDevAttrClusterLaunch = 120,
};

enum cudaFuncAttribute {
    cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
    cudaFuncAttributePreferredSharedMemoryCarveout = 9,
    cudaFuncAttributeNonPortableClusterSizeAllowed = 14,
};

enum cudaLaunchAttributeID {
    cudaLaunchAttributeClusterDimension = 4,
};
union cudaLaunchAttributeValue {
    char pad[64];
    struct {
        unsigned x, y, z;
    } clusterDim;
};
struct cudaLaunchAttribute {
    cudaLaunchAttributeID id;
    char pad[8 - sizeof(cudaLaunchAttributeID)];
    cudaLaunchAttributeValue val;
};
struct cudaLaunchConfig_t {
    dim3 gridDim;
    dim3 blockDim;
    std::size_t dynamicSmemBytes;
    cudaStream_t stream;
    cudaLaunchAttribute* attrs;
    unsigned numAttrs;
};

struct cudaDeviceProp {
    char name[256];
    std::size_t totalGlobalMem;
    std::size_t sharedMemPerBlock;
    int regsPerBlock;
    int warpSize;
    int maxThreadsPerBlock;
    int maxThreadsDim[3];
    int maxGridSize[3];
    int clockRate;
    int major;
    int minor;
    int multiProcessorCount;
    int l2CacheSize;
    int maxThreadsPerMultiProcessor;
    std::size_t sharedMemPerMultiprocessor;
    std::size_t sharedMemPerBlockOptin;
    int clusterLaunch;
    int memoryBusWidth;
};

// ---- runtime API (tests/cuda_emu/src/runtime.cpp) ----
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaDeviceReset();
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorName(cudaError_t error);
const char* cudaGetErrorString(cudaError_t error);
cudaError_t cudaMemGetInfo(std::size_t* free, std::size_t* total);

cudaError_t cudaMalloc(void** ptr, std::size_t bytes);
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMallocAsync(void** ptr, std::size_t bytes, cudaStream_t stream);
cudaError_t cudaFreeAsync(void* ptr, cudaStream_t stream);
cudaError_t cudaMallocHost(void** ptr, std::size_t bytes);
cudaError_t cudaHostAlloc(void** ptr, std::size_t bytes, unsigned flags);
cudaError_t cudaFreeHost(void* ptr);
cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* ptr, int value, std::size_t bytes);
cudaError_t cudaMemsetAsync(void* ptr, int value, std::size_t bytes, cudaStream_t stream = nullptr);

cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamQuery(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags = 0);

cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);

namespace emu {
cudaError_t func_set_attribute(const void* kernel, cudaFuncAttribute attr, int value);
/// Checks a launch and enqueues `body` (one call per emulated thread) on the launch's stream.
cudaError_t launch_kernel(const cudaLaunchConfig_t& cfg, const void* kernel,
                          std::function<void()> body);
cudaError_t max_active_clusters(int* clusters, const void* kernel, const cudaLaunchConfig_t& cfg);
}  // namespace emu

template <class T>
cudaError_t cudaFuncSetAttribute(T* kernel, cudaFuncAttribute attr, int value) {
    return emu::func_set_attribute(reinterpret_cast<const void*>(kernel), attr, value);
}

/// cudaLaunchKernelEx: kernel parameters are copied (converted to the kernel's parameter types)
/// when the launch is made, as on the device.
template <class... Exp, class... Act>
cudaError_t cudaLaunchKernelEx(const cudaLaunchConfig_t* cfg, void (*kernel)(Exp...),
                               Act&&... args) {
    static_assert(sizeof...(Exp) == sizeof...(Act), "wrong number of kernel arguments");
    if (!cfg) return cudaErrorInvalidValue;
    auto params =
        std::make_shared<const std::tuple<std::decay_t<Exp>...>>(std::forward<Act>(args)...);
    return emu::launch_kernel(*cfg, reinterpret_cast<const void*>(kernel),
                              [kernel, params] { std::apply(kernel, *params); });
}

template <class... Exp>
cudaError_t cudaOccupancyMaxActiveClusters(int* clusters, void (*kernel)(Exp...),
                                           const cudaLaunchConfig_t* cfg) {
    if (!cfg || !clusters) return cudaErrorInvalidValue;
    return emu::max_active_clusters(clusters, reinterpret_cast<const void*>(kernel), *cfg);
}
