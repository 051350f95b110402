// The emulated device's own tests: every rule of the hardware it enforces fires on a kernel that
// breaks it (launch limits and attributes, clusters, streams of another device, freed memory,
// late distributed shared memory, divergent barriers, shuffles with missing lanes), shared
// memory starts as NaN, streams and events order work, cuBLAS and cuSOLVER keep their contracts,
// and the eigensolver's copies can overlap its kernels (pinned staging only).
#include <cooperative_groups.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>
#include <gtest/gtest.h>
#include <lapacke.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cuda_emu/control.hpp"
#include "host/cuda/eig.hpp"
#include "tests/test_util.hpp"

namespace cg = cooperative_groups;

namespace {

// Two emulated devices, for the launch on another device's stream (read at first use).
const int kTwoDevices = setenv("EIRNN_EMU_DEVICES", "2", 0);

/// A launch through cudaLaunchKernelEx; cluster > 1 adds the cluster attribute.
template <class... P, class... A>
cudaError_t launch(void (*k)(P...), unsigned grid, unsigned block, std::size_t smem, cudaStream_t s,
                   unsigned cluster, A... args) {
    cudaLaunchConfig_t cfg{};
    cfg.gridDim = dim3(grid);
    cfg.blockDim = dim3(block);
    cfg.dynamicSmemBytes = smem;
    cfg.stream = s;
    cudaLaunchAttribute attr{};
    if (cluster > 1) {
        attr.id = cudaLaunchAttributeClusterDimension;
        attr.val.clusterDim.x = cluster;
        attr.val.clusterDim.y = 1;
        attr.val.clusterDim.z = 1;
        cfg.attrs = &attr;
        cfg.numAttrs = 1;
    }
    return cudaLaunchKernelEx(&cfg, k, args...);
}

/// Expects the next synchronisation to report a device fault whose message contains `what`,
/// then clears the fault.
void expect_fault(cudaError_t code, const std::string& what) {
    EXPECT_EQ(cudaDeviceSynchronize(), code);
    EXPECT_NE(emu::last_fault().find(what), std::string::npos) << emu::last_fault();
    EXPECT_EQ(cudaMalloc(nullptr, 4), code) << "the error is sticky";
    emu::reset_after_fault();
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

// ---------------------------------------------------------------- kernels

__global__ void write_index(int* out) {
    out[blockIdx.x * blockDim.x + threadIdx.x] = static_cast<int>(blockIdx.x * 1000 + threadIdx.x);
}

__global__ void __launch_bounds__(64) bounded(int* out) {
    out[threadIdx.x] = 1;
}

/// Copies the first n words of dynamic and static shared memory before writing them.
__global__ void read_fresh_shared(std::uint32_t* out, int n) {
    EIRNN_DYNAMIC_SHARED(std::uint32_t, dyn);
    EIRNN_STATIC_SHARED(std::uint32_t, stat, 8);
    if (threadIdx.x == 0) {
        for (int i = 0; i < n; ++i) out[i] = dyn[i];
        for (int i = 0; i < 8; ++i) out[n + i] = stat[i];
    }
}

/// Block sum through static shared memory and warp shuffles; one value per block.
__global__ void block_sums(const float* in, float* out) {
    EIRNN_STATIC_SHARED(float, part, 32);
    float v = in[blockIdx.x * blockDim.x + threadIdx.x];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = v;
    __syncthreads();
    if (threadIdx.x == 0) {
        float s = 0;
        for (unsigned w = 0; w < blockDim.x / 32; ++w) s += part[w];
        out[blockIdx.x] = s;
    }
}

/// Every block of a cluster writes its rank into every peer's shared memory, then reads them.
__global__ void cluster_exchange(int* out) {
    EIRNN_DYNAMIC_SHARED(int, slots);
    cg::cluster_group cl = cg::this_cluster();
    const unsigned r = cl.block_rank(), C = cl.num_blocks();
    cl.sync();
    if (threadIdx.x < C) {
        int* peer = cl.map_shared_rank(slots, threadIdx.x);
        peer[r] = static_cast<int>(100 * blockIdx.x + r);
    }
    cl.sync();
    if (threadIdx.x < C) out[blockIdx.x * C + threadIdx.x] = slots[threadIdx.x];
}

/// Rank 1 exits at once; rank 0 then writes into its shared memory.
__global__ void late_dsmem(int* flag) {
    EIRNN_DYNAMIC_SHARED(int, slots);
    cg::cluster_group cl = cg::this_cluster();
    cl.sync();
    if (cl.block_rank() == 1) return;
    __syncthreads();
    int* peer = cl.map_shared_rank(slots, 1);
    peer[0] = 1;
    *flag = 1;
}

/// DSMEM before any cluster.sync(): the peer may not have started.
__global__ void early_dsmem() {
    EIRNN_DYNAMIC_SHARED(int, slots);
    cg::cluster_group cl = cg::this_cluster();
    cl.map_shared_rank(slots, 1 - cl.block_rank())[0] = 1;
    cl.sync();
}

/// Half the block waits at one barrier, half at another.
__global__ void divergent_barrier() {
    if (threadIdx.x < 32) {
        __syncthreads();
    } else {
        __syncthreads();
    }
}

/// The first warp skips a barrier the second waits at, then both wait at the next one.
__global__ void missing_barrier() {
    if (threadIdx.x >= 32) __syncthreads();
    __syncthreads();
}

/// Lane 0 reads lane 1 through a shuffle whose mask leaves lane 1 out.
__global__ void shuffle_missing_lane(int* out) {
    if (threadIdx.x == 0 || threadIdx.x >= 2) {
        const unsigned mask = 0xffffffffu & ~2u;
        out[threadIdx.x] = __shfl_sync(mask, static_cast<int>(threadIdx.x), 1);
    }
}

/// A full mask in a block of 40 threads: the second warp has 8 lanes.
__global__ void shuffle_partial_warp(int* out) {
    out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, static_cast<int>(threadIdx.x), 1);
}

/// Lanes named in the mask must call the shuffle; the mask must name the caller.
__global__ void shuffle_not_in_mask(int* out) {
    out[threadIdx.x] = __shfl_xor_sync(0x0000ffffu, static_cast<int>(threadIdx.x), 1);
}

__global__ void spin_add(int* value, int times) {
    if (threadIdx.x == 0)
        for (int i = 0; i < times; ++i) *value += 1;
}

template <class T>
std::vector<T> download(const T* d, std::size_t n) {
    std::vector<T> h(n);
    EXPECT_EQ(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return h;
}

// ---------------------------------------------------------------- launches run, and run right

TEST(EmulatedDevice, DescribesAnH100AndRunsEveryThread) {
    cudaDeviceProp p{};
    ASSERT_EQ(cudaGetDeviceProperties(&p, 0), cudaSuccess);
    EXPECT_EQ(p.major, 9);
    EXPECT_EQ(p.multiProcessorCount, 132);
    EXPECT_EQ(p.sharedMemPerBlockOptin, 232448u);
    int* d = nullptr;
    ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&d), 3 * 96 * sizeof(int)), cudaSuccess);
    ASSERT_EQ(launch(write_index, 3, 96, 0, nullptr, 1, d), cudaSuccess);
    std::vector<int> h = download(d, 3 * 96);
    for (int b = 0; b < 3; ++b)
        for (int t = 0; t < 96; ++t) ASSERT_EQ(h[b * 96 + t], b * 1000 + t);
    EXPECT_EQ(cudaFree(d), cudaSuccess);
}

TEST(EmulatedDevice, SharedMemoryStartsAsNaN) {
    std::uint32_t* d = nullptr;
    ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&d), 24 * 4), cudaSuccess);
    ASSERT_EQ(launch(read_fresh_shared, 1, 32, 64, nullptr, 1, d, 16), cudaSuccess);
    for (std::uint32_t w : download(d, 24)) {
        float f;
        std::memcpy(&f, &w, 4);
        EXPECT_TRUE(std::isnan(f)) << std::hex << w;
    }
    cudaFree(d);
}

TEST(EmulatedDevice, StaticSharedMemoryAndShufflesPerBlock) {
    const int blocks = 5, threads = 128;
    std::vector<float> in(blocks * threads);
    for (std::size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(i % 17);
    float *din = nullptr, *dout = nullptr;
    ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&din), in.size() * 4), cudaSuccess);
    ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&dout), blocks * 4), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(din, in.data(), in.size() * 4, cudaMemcpyHostToDevice), cudaSuccess);
    ASSERT_EQ(launch(block_sums, blocks, threads, 0, nullptr, 1, din, dout), cudaSuccess);
    std::vector<float> out = download(dout, blocks);
    for (int b = 0; b < blocks; ++b) {
        float s = 0;
        for (int t = 0; t < threads; ++t) s += in[b * threads + t];
        EXPECT_EQ(out[b], s) << b;
    }
    cudaFree(din);
    cudaFree(dout);
}

TEST(EmulatedDevice, ClusterBlocksShareTheirSharedMemory) {
    for (unsigned C : {2u, 4u, 8u}) {
        int* d = nullptr;
        const unsigned grid = 2 * C;
        ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&d), grid * C * sizeof(int)), cudaSuccess);
        ASSERT_EQ(launch(cluster_exchange, grid, 32, C * sizeof(int), nullptr, C, d), cudaSuccess);
        std::vector<int> h = download(d, grid * C);
        for (unsigned b = 0; b < grid; ++b)
            for (unsigned r = 0; r < C; ++r)
                EXPECT_EQ(h[b * C + r], static_cast<int>(100 * ((b / C) * C + r) + r))
                    << "C " << C << " block " << b << " slot " << r;
        cudaFree(d);
    }
}

// ---------------------------------------------------------------- launch rules

TEST(EmulatedDeviceRules, DynamicSharedMemoryAbove48KBNeedsTheAttribute) {
    int* d = nullptr;
    ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&d), 64 * sizeof(int)), cudaSuccess);
    EXPECT_EQ(launch(write_index, 1, 32, 48 * 1024, nullptr, 1, d), cudaSuccess);
    EXPECT_EQ(launch(write_index, 1, 32, 48 * 1024 + 16, nullptr, 1, d), cudaErrorInvalidValue);
    EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
    EXPECT_EQ(cudaGetLastError(), cudaSuccess) << "not sticky";
    EXPECT_EQ(
        cudaFuncSetAttribute(write_index, cudaFuncAttributeMaxDynamicSharedMemorySize, 232448 + 1),
        cudaErrorInvalidValue);
    ASSERT_EQ(
        cudaFuncSetAttribute(write_index, cudaFuncAttributeMaxDynamicSharedMemorySize, 100 * 1024),
        cudaSuccess);
    EXPECT_EQ(launch(write_index, 1, 32, 100 * 1024, nullptr, 1, d), cudaSuccess);
    EXPECT_EQ(launch(write_index, 1, 32, 100 * 1024 + 4, nullptr, 1, d), cudaErrorInvalidValue);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    cudaGetLastError();
    cudaFree(d);
}

TEST(EmulatedDeviceRules, ThreadsPerBlockAndLaunchBounds) {
    int* d = nullptr;
    ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&d), 2048 * sizeof(int)), cudaSuccess);
    EXPECT_EQ(launch(write_index, 1, 1025, 0, nullptr, 1, d), cudaErrorInvalidConfiguration);
    EXPECT_EQ(launch(write_index, 0, 32, 0, nullptr, 1, d), cudaErrorInvalidConfiguration);
    EXPECT_EQ(launch(bounded, 1, 64, 0, nullptr, 1, d), cudaSuccess);
    EXPECT_EQ(launch(bounded, 1, 96, 0, nullptr, 1, d), cudaErrorInvalidValue)
        << "__launch_bounds__(64)";
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    cudaGetLastError();
    cudaFree(d);
}

TEST(EmulatedDeviceRules, ClusterSizeAndGridDivisibility) {
    int* d = nullptr;
    ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&d), 1024 * sizeof(int)), cudaSuccess);
    EXPECT_EQ(launch(cluster_exchange, 16, 32, 64, nullptr, 16, d), cudaErrorInvalidClusterSize)
        << "16 is not portable";
    EXPECT_EQ(launch(cluster_exchange, 9, 32, 64, nullptr, 9, d), cudaErrorInvalidClusterSize);
    EXPECT_EQ(launch(cluster_exchange, 6, 32, 64, nullptr, 4, d), cudaErrorInvalidClusterSize)
        << "grid 6 is not a multiple of 4";
    ASSERT_EQ(
        cudaFuncSetAttribute(cluster_exchange, cudaFuncAttributeNonPortableClusterSizeAllowed, 1),
        cudaSuccess);
    EXPECT_EQ(launch(cluster_exchange, 16, 32, 64, nullptr, 16, d), cudaSuccess);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    cudaGetLastError();
    cudaFree(d);
}

TEST(EmulatedDeviceRules, LaunchOnAStreamOfAnotherDevice) {
    int n = 0;
    ASSERT_EQ(cudaGetDeviceCount(&n), cudaSuccess);
    ASSERT_EQ(n, 2) << "EIRNN_EMU_DEVICES=2 is set by this test program";
    ASSERT_EQ(cudaSetDevice(1), cudaSuccess);
    cudaStream_t s1 = nullptr;
    ASSERT_EQ(cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking), cudaSuccess);
    ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
    int* d = nullptr;
    ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&d), 32 * sizeof(int)), cudaSuccess);
    EXPECT_EQ(launch(write_index, 1, 32, 0, s1, 1, d), cudaErrorInvalidResourceHandle);
    cudaGetLastError();
    EXPECT_EQ(cudaStreamDestroy(s1), cudaSuccess);
    EXPECT_EQ(cudaStreamDestroy(s1), cudaErrorInvalidResourceHandle) << "destroyed twice";
    cudaGetLastError();
    cudaFree(d);
}

TEST(EmulatedDeviceRules, FreedAndOutOfRangeMemory) {
    int* d = nullptr;
    std::vector<int> h(64, 7);
    ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&d), 64 * sizeof(int)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(d, h.data(), 65 * sizeof(int), cudaMemcpyHostToDevice),
              cudaErrorInvalidValue)
        << "one element past the allocation";
    EXPECT_EQ(cudaMemcpy(h.data(), d, 64 * sizeof(int), cudaMemcpyHostToDevice),
              cudaErrorInvalidValue)
        << "direction";
    ASSERT_EQ(cudaFree(d), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(d, h.data(), 4, cudaMemcpyHostToDevice), cudaErrorInvalidValue) << "freed";
    EXPECT_EQ(cudaMemset(d, 0, 4), cudaErrorInvalidValue);
    EXPECT_EQ(cudaFree(d), cudaErrorInvalidValue) << "freed twice";
    cudaGetLastError();
}

TEST(EmulatedDeviceRules, DeviceMemorySizeIsEnforced) {
    emu::set_device_memory(std::size_t(64) << 20);
    std::size_t free_bytes = 0, total = 0;
    ASSERT_EQ(cudaMemGetInfo(&free_bytes, &total), cudaSuccess);
    EXPECT_EQ(total, std::size_t(64) << 20);
    void* a = nullptr;
    void* b = nullptr;
    EXPECT_EQ(cudaMalloc(&a, std::size_t(40) << 20), cudaSuccess);
    EXPECT_EQ(cudaMalloc(&b, std::size_t(40) << 20), cudaErrorMemoryAllocation);
    cudaGetLastError();
    cudaFree(a);
    emu::set_device_memory(0);
}

// ---------------------------------------------------------------- faults inside kernels

TEST(EmulatedDeviceFaults, SharedMemoryOfAnExitedClusterBlock) {
    int* d = nullptr;
    ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&d), sizeof(int)), cudaSuccess);
    ASSERT_EQ(launch(late_dsmem, 2, 32, 64, nullptr, 2, d), cudaSuccess);
    expect_fault(cudaErrorIllegalAddress, "which has exited");
    cudaFree(d);
}

TEST(EmulatedDeviceFaults, SharedMemoryOfAPeerBeforeTheFirstClusterSync) {
    ASSERT_EQ(launch(early_dsmem, 2, 32, 64, nullptr, 2), cudaSuccess);
    expect_fault(cudaErrorIllegalAddress, "before this thread's first cluster.sync()");
}

TEST(EmulatedDeviceFaults, DivergentBarriersNameTheKernelAndWhere) {
    ASSERT_EQ(launch(divergent_barrier, 1, 64, 0, nullptr, 1), cudaSuccess);
    expect_fault(cudaErrorLaunchFailure, "divergent barrier");
    ASSERT_EQ(launch(missing_barrier, 2, 64, 0, nullptr, 1), cudaSuccess);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaErrorLaunchFailure);
    const std::string f = emu::last_fault();
    EXPECT_NE(f.find("missing_barrier"), std::string::npos) << f;
    EXPECT_NE(f.find("__syncthreads() at"), std::string::npos) << f;
    EXPECT_NE(f.find("test_cuda_emu.cpp"), std::string::npos) << f;
    emu::reset_after_fault();
}

TEST(EmulatedDeviceFaults, ShufflesWithLanesMissingFromTheMask) {
    int* d = nullptr;
    ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&d), 64 * sizeof(int)), cudaSuccess);
    ASSERT_EQ(launch(shuffle_missing_lane, 1, 32, 0, nullptr, 1, d), cudaSuccess);
    expect_fault(cudaErrorIllegalInstruction, "reads lane 1, which is not in the mask");
    ASSERT_EQ(launch(shuffle_partial_warp, 1, 40, 0, nullptr, 1, d), cudaSuccess);
    expect_fault(cudaErrorIllegalInstruction, "names lanes that do not exist");
    ASSERT_EQ(launch(shuffle_not_in_mask, 1, 32, 0, nullptr, 1, d), cudaSuccess);
    expect_fault(cudaErrorIllegalInstruction, "does not name the calling lane");
    cudaFree(d);
}

// ---------------------------------------------------------------- streams and events

TEST(EmulatedDeviceStreams, EventsOrderWorkAcrossStreams) {
    cudaStream_t a = nullptr, b = nullptr;
    ASSERT_EQ(cudaStreamCreateWithFlags(&a, cudaStreamNonBlocking), cudaSuccess);
    ASSERT_EQ(cudaStreamCreateWithFlags(&b, cudaStreamNonBlocking), cudaSuccess);
    int* d = nullptr;
    ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&d), sizeof(int)), cudaSuccess);
    ASSERT_EQ(cudaMemsetAsync(d, 0, sizeof(int), a), cudaSuccess);
    ASSERT_EQ(launch(spin_add, 1, 32, 0, a, 1, d, 100000), cudaSuccess);
    cudaEvent_t e = nullptr, t0 = nullptr;
    ASSERT_EQ(cudaEventCreate(&t0), cudaSuccess);
    ASSERT_EQ(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), cudaSuccess);
    ASSERT_EQ(cudaEventRecord(t0, a), cudaSuccess);
    ASSERT_EQ(cudaEventRecord(e, a), cudaSuccess);
    ASSERT_EQ(cudaStreamWaitEvent(b, e, 0), cudaSuccess);
    ASSERT_EQ(launch(spin_add, 1, 32, 0, b, 1, d, 1), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(b), cudaSuccess);
    EXPECT_EQ(download(d, 1)[0], 100001) << "b's kernel ran after a's";
    float ms = 0;
    EXPECT_EQ(cudaEventElapsedTime(&ms, t0, e), cudaErrorInvalidResourceHandle)
        << "an event without timing";
    cudaGetLastError();
    EXPECT_EQ(cudaEventDestroy(e), cudaSuccess);
    EXPECT_EQ(cudaEventRecord(e, a), cudaErrorInvalidResourceHandle) << "destroyed";
    cudaGetLastError();
    cudaEventDestroy(t0);
    cudaStreamDestroy(a);
    cudaStreamDestroy(b);
    cudaFree(d);
}

// ---------------------------------------------------------------- cuBLAS, cuSOLVER

TEST(EmulatedLibraries, SgemmStridedBatchedIsColumnMajorWithStrides) {
    const int m = 3, n = 4, k = 5, lda = 7, ldb = 6, ldc = 5, batches = 3;
    const long long sa = lda * m + 1, sb = ldb * n + 2, sc = ldc * n + 3;  // A is op T: (k, m)
    std::vector<float> A(sa * batches), B(sb * batches), C(sc * batches, -1.0f);
    for (std::size_t i = 0; i < A.size(); ++i) A[i] = static_cast<float>(i % 11) - 5;
    for (std::size_t i = 0; i < B.size(); ++i) B[i] = static_cast<float>(i % 7) - 3;
    float *dA, *dB, *dC;
    cudaMalloc(reinterpret_cast<void**>(&dA), A.size() * 4);
    cudaMalloc(reinterpret_cast<void**>(&dB), B.size() * 4);
    cudaMalloc(reinterpret_cast<void**>(&dC), C.size() * 4);
    cudaMemcpy(dA, A.data(), A.size() * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(dB, B.data(), B.size() * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(dC, C.data(), C.size() * 4, cudaMemcpyHostToDevice);
    cublasHandle_t h = nullptr;
    ASSERT_EQ(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
    const float alpha = 2.0f, beta = 0.5f;
    EXPECT_EQ(cublasSgemmStridedBatched(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &alpha, dA, 2, sa, dB,
                                        ldb, sb, &beta, dC, ldc, sc, batches),
              CUBLAS_STATUS_INVALID_VALUE)
        << "lda < k for op T";
    ASSERT_EQ(cublasSgemmStridedBatched(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &alpha, dA, lda, sa,
                                        dB, ldb, sb, &beta, dC, ldc, sc, batches),
              CUBLAS_STATUS_SUCCESS);
    std::vector<float> got = download(dC, C.size());
    for (int bt = 0; bt < batches; ++bt)
        for (int i = 0; i < m; ++i)
            for (int j = 0; j < n; ++j) {
                double s = 0;
                for (int q = 0; q < k; ++q)
                    s += A[bt * sa + i * lda + q] * B[bt * sb + j * ldb + q];
                EXPECT_FLOAT_EQ(got[bt * sc + j * ldc + i], static_cast<float>(2 * s - 0.5));
            }
    // An operand past its allocation is a fault of the device, as on a GPU.
    EXPECT_EQ(cublasSgemmStridedBatched(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &alpha, dA, lda, sa,
                                        dB, ldb, sb, &beta, dC, ldc, sc, batches + 1),
              CUBLAS_STATUS_EXECUTION_FAILED);
    expect_fault(cudaErrorIllegalAddress, "cublasSgemmStridedBatched");
    cublasDestroy(h);
    cudaFree(dA);
    cudaFree(dB);
    cudaFree(dC);
}

TEST(EmulatedLibraries, XgeevQueriesItsWorkspaceAndMatchesLapack) {
    const int n = 9;
    std::vector<double> a(n * n);
    for (int i = 0; i < n * n; ++i) a[i] = std::sin(1.0 + i * 0.7);
    double *dA, *dW;
    int* dinfo;
    cudaMalloc(reinterpret_cast<void**>(&dA), a.size() * 8);
    cudaMalloc(reinterpret_cast<void**>(&dW), 2 * n * 8);
    cudaMalloc(reinterpret_cast<void**>(&dinfo), sizeof(int));
    cudaMemcpy(dA, a.data(), a.size() * 8, cudaMemcpyHostToDevice);
    cusolverDnHandle_t h = nullptr;
    cusolverDnParams_t p = nullptr;
    ASSERT_EQ(cusolverDnCreate(&h), CUSOLVER_STATUS_SUCCESS);
    ASSERT_EQ(cusolverDnCreateParams(&p), CUSOLVER_STATUS_SUCCESS);
    std::size_t dev = 0, host = 0;
    ASSERT_EQ(
        cusolverDnXgeev_bufferSize(h, p, CUSOLVER_EIG_MODE_NOVECTOR, CUSOLVER_EIG_MODE_NOVECTOR, n,
                                   CUDA_R_64F, dA, n, CUDA_R_64F, dW, CUDA_R_64F, nullptr, 1,
                                   CUDA_R_64F, nullptr, 1, CUDA_R_64F, &dev, &host),
        CUSOLVER_STATUS_SUCCESS);
    void* work = nullptr;
    cudaMalloc(&work, dev);
    std::vector<char> hwork(host);
    auto call = [&](std::size_t dbytes) {
        return cusolverDnXgeev(h, p, CUSOLVER_EIG_MODE_NOVECTOR, CUSOLVER_EIG_MODE_NOVECTOR, n,
                               CUDA_R_64F, dA, n, CUDA_R_64F, dW, CUDA_R_64F, nullptr, 1,
                               CUDA_R_64F, nullptr, 1, CUDA_R_64F, work, dbytes, hwork.data(), host,
                               dinfo);
    };
    EXPECT_EQ(call(dev - 8), CUSOLVER_STATUS_INVALID_VALUE) << "workspace smaller than queried";
    ASSERT_EQ(call(dev), CUSOLVER_STATUS_SUCCESS);
    std::vector<double> w = download(dW, 2 * n);
    EXPECT_EQ(download(dinfo, 1)[0], 0);
    std::vector<double> wr(n), wi(n), ref = a;
    ASSERT_EQ(LAPACKE_dgeev(LAPACK_COL_MAJOR, 'N', 'N', n, ref.data(), n, wr.data(), wi.data(),
                            nullptr, 1, nullptr, 1),
              0);
    std::vector<std::complex<double>> got, want;
    for (int i = 0; i < n; ++i) {
        got.emplace_back(w[i], w[n + i]);
        want.emplace_back(wr[i], wi[i]);
    }
    EXPECT_LE(eirnn::testutil::matched_error(got, want), 1e-12);
    cusolverDnDestroyParams(p);
    cusolverDnDestroy(h);
    cudaFree(work);
    cudaFree(dA);
    cudaFree(dW);
    cudaFree(dinfo);
}

// ---------------------------------------------------------------- the eigensolver's copies

TEST(EmulatedDeviceStreams, BatchedEigensolverCopiesOnlyFromPinnedMemory) {
    // Small device memory: several chunks on two streams, whose copies overlap the other
    // stream's kernel only if every async copy is between pinned and device memory.
    const int N = 12, K = 40;
    std::vector<double> w(std::size_t(K) * N * N);
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = std::cos(0.37 * static_cast<double>(i));
    std::vector<double> wr(K * N), wi(K * N);
    std::vector<int> info(K);
    emu::set_device_memory(5 * 8 * (N * N + 2 * N) * 8 + 1);  // 8 matrices per chunk
    const emu::Stats before = emu::stats();
    eirnn::cuda::eig_batched_raw(w.data(), K, N, wr.data(), wi.data(), info.data());
    const emu::Stats after = emu::stats();
    emu::set_device_memory(0);
    EXPECT_EQ(after.async_pageable_copies, before.async_pageable_copies);
    EXPECT_GT(after.async_pinned_copies, before.async_pinned_copies);
    EXPECT_GE(after.launches - before.launches, 5) << "chunks";
    for (int k = 0; k < K; ++k) EXPECT_EQ(info[k], 0);
}

}  // namespace
