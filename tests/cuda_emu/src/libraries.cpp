// cuBLAS and cuSOLVER of the emulated device, to their documented contracts: argument checks
// with the libraries' status codes, column-major operands with leading dimensions and batch
// strides, every operand range checked against its device allocation, the work enqueued on the
// handle's stream (stream-ordered, as the real libraries run), computed by OpenBLAS / LAPACK.
#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "cublas_v2.h"
#include "cusolverDn.h"
#include "internal.hpp"

struct cublasContext {
    cudaStream_t stream = nullptr;
    cublasMath_t math = CUBLAS_DEFAULT_MATH;
};

struct cusolverDnContext {
    cudaStream_t stream = nullptr;
};

struct cusolverDnParams {
    int unused = 0;
};

namespace {

/// True when [p, p + bytes) lies inside one live device allocation. lock() held.
bool device_range(const void* p, std::size_t bytes) {
    if (bytes == 0) return true;
    const emu::Region r = emu::find_region(p, bytes);
    return r.kind == emu::MemKind::kDevice && r.inside;
}

/// Bytes an operand of `rows` x `cols` (column-major, leading dimension ld) spans.
std::size_t span(long long rows, long long cols, long long ld, std::size_t elem) {
    if (rows <= 0 || cols <= 0) return 0;
    return static_cast<std::size_t>((cols - 1) * ld + rows) * elem;
}

/// Enqueues op on stream s; a device fault when an operand is outside device memory.
template <class F>
bool enqueue_on(cudaStream_t s, F&& op) {
    std::lock_guard<std::mutex> g(emu::lock());
    cudaError_t e = cudaSuccess;
    emu::StreamState* st = emu::resolve(s, &e);
    if (!st) return false;
    emu::enqueue(st, std::forward<F>(op));
    return true;
}

}  // namespace

cublasStatus_t cublasCreate(cublasHandle_t* handle) {
    if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) return CUBLAS_STATUS_NOT_INITIALIZED;
    *handle = new cublasContext;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t handle) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    handle->stream = stream;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream(cublasHandle_t handle, cudaStream_t* stream) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!stream) return CUBLAS_STATUS_INVALID_VALUE;
    *stream = handle->stream;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (mode > CUBLAS_TF32_TENSOR_OP_MATH) return CUBLAS_STATUS_INVALID_VALUE;
    handle->math = mode;
    return CUBLAS_STATUS_SUCCESS;
}

const char* cublasGetStatusName(cublasStatus_t s) {
    switch (s) {
        case CUBLAS_STATUS_SUCCESS:
            return "CUBLAS_STATUS_SUCCESS";
        case CUBLAS_STATUS_NOT_INITIALIZED:
            return "CUBLAS_STATUS_NOT_INITIALIZED";
        case CUBLAS_STATUS_ALLOC_FAILED:
            return "CUBLAS_STATUS_ALLOC_FAILED";
        case CUBLAS_STATUS_INVALID_VALUE:
            return "CUBLAS_STATUS_INVALID_VALUE";
        case CUBLAS_STATUS_ARCH_MISMATCH:
            return "CUBLAS_STATUS_ARCH_MISMATCH";
        case CUBLAS_STATUS_MAPPING_ERROR:
            return "CUBLAS_STATUS_MAPPING_ERROR";
        case CUBLAS_STATUS_EXECUTION_FAILED:
            return "CUBLAS_STATUS_EXECUTION_FAILED";
        case CUBLAS_STATUS_INTERNAL_ERROR:
            return "CUBLAS_STATUS_INTERNAL_ERROR";
        case CUBLAS_STATUS_NOT_SUPPORTED:
            return "CUBLAS_STATUS_NOT_SUPPORTED";
        case CUBLAS_STATUS_LICENSE_ERROR:
            return "CUBLAS_STATUS_LICENSE_ERROR";
    }
    return "CUBLAS_STATUS_UNKNOWN";
}

const char* cublasGetStatusString(cublasStatus_t s) {
    return cublasGetStatusName(s);
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa,
                                         cublasOperation_t transb, int m, int n, int k,
                                         const float* alpha, const float* A, int lda,
                                         long long strideA, const float* B, int ldb,
                                         long long strideB, const float* beta, float* C, int ldc,
                                         long long strideC, int batchCount) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    const bool ta = transa != CUBLAS_OP_N, tb = transb != CUBLAS_OP_N;
    if (transa > CUBLAS_OP_C || transb > CUBLAS_OP_C || m < 0 || n < 0 || k < 0 || batchCount < 0 ||
        lda < std::max(1, ta ? k : m) || ldb < std::max(1, tb ? n : k) || ldc < std::max(1, m) ||
        !alpha || !beta)
        return CUBLAS_STATUS_INVALID_VALUE;
    if (m == 0 || n == 0 || batchCount == 0) return CUBLAS_STATUS_SUCCESS;
    if (cudaError_t e = emu::sticky()) {
        (void)e;
        return CUBLAS_STATUS_EXECUTION_FAILED;
    }
    // Host pointer mode: the scalars are read now.
    const float a = *alpha, b = *beta;
    const long long ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
    {
        std::lock_guard<std::mutex> g(emu::lock());
        for (int i = 0; i < batchCount; ++i) {
            const bool ok = (k == 0 || a == 0.0f ||
                             (device_range(A + i * strideA, span(ar, ac, lda, 4)) &&
                              device_range(B + i * strideB, span(br, bc, ldb, 4)))) &&
                            device_range(C + i * strideC, span(m, n, ldc, 4));
            if (!ok) {
                emu::device_fault(cudaErrorIllegalAddress,
                                  "cublasSgemmStridedBatched: an operand of batch " +
                                      std::to_string(i) + " lies outside device memory (m " +
                                      std::to_string(m) + ", n " + std::to_string(n) + ", k " +
                                      std::to_string(k) + ", lda " + std::to_string(lda) +
                                      ", ldb " + std::to_string(ldb) + ", ldc " +
                                      std::to_string(ldc) + ")");
                return CUBLAS_STATUS_EXECUTION_FAILED;
            }
        }
    }
    if (!enqueue_on(handle->stream, [=] {
            for (int i = 0; i < batchCount; ++i)
                cblas_sgemm(CblasColMajor, ta ? CblasTrans : CblasNoTrans,
                            tb ? CblasTrans : CblasNoTrans, m, n, k, a, A + i * strideA, lda,
                            B + i * strideB, ldb, b, C + i * strideC, ldc);
        }))
        return CUBLAS_STATUS_INVALID_VALUE;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa,
                           cublasOperation_t transb, int m, int n, int k, const float* alpha,
                           const float* A, int lda, const float* B, int ldb, const float* beta,
                           float* C, int ldc) {
    return cublasSgemmStridedBatched(handle, transa, transb, m, n, k, alpha, A, lda, 0, B, ldb, 0,
                                     beta, C, ldc, 0, 1);
}

// ---------------------------------------------------------------- cuSOLVER

cusolverStatus_t cusolverDnCreate(cusolverDnHandle_t* handle) {
    if (!handle) return CUSOLVER_STATUS_INVALID_VALUE;
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) return CUSOLVER_STATUS_NOT_INITIALIZED;
    *handle = new cusolverDnContext;
    return CUSOLVER_STATUS_SUCCESS;
}

cusolverStatus_t cusolverDnDestroy(cusolverDnHandle_t handle) {
    if (!handle) return CUSOLVER_STATUS_NOT_INITIALIZED;
    delete handle;
    return CUSOLVER_STATUS_SUCCESS;
}

cusolverStatus_t cusolverDnSetStream(cusolverDnHandle_t handle, cudaStream_t stream) {
    if (!handle) return CUSOLVER_STATUS_NOT_INITIALIZED;
    handle->stream = stream;
    return CUSOLVER_STATUS_SUCCESS;
}

cusolverStatus_t cusolverDnCreateParams(cusolverDnParams_t* params) {
    if (!params) return CUSOLVER_STATUS_INVALID_VALUE;
    *params = new cusolverDnParams;
    return CUSOLVER_STATUS_SUCCESS;
}

cusolverStatus_t cusolverDnDestroyParams(cusolverDnParams_t params) {
    if (!params) return CUSOLVER_STATUS_INVALID_VALUE;
    delete params;
    return CUSOLVER_STATUS_SUCCESS;
}

namespace {

/// LAPACK dgeev's workspace (doubles) for eigenvalues only.
lapack_int dgeev_lwork(std::int64_t n) {
    double q = 0;
    double dummy = 0;
    lapack_int one = 1;
    LAPACKE_dgeev_work(LAPACK_COL_MAJOR, 'N', 'N', static_cast<lapack_int>(n), &dummy,
                       static_cast<lapack_int>(std::max<std::int64_t>(1, n)), &dummy, &dummy,
                       &dummy, one, &dummy, one, &q, -1);
    return std::max<lapack_int>(static_cast<lapack_int>(q), 1);
}

/// The parameter checks of Xgeev and its query: eigenvalues of real fp64 matrices, no vectors.
cusolverStatus_t check_geev(cusolverDnHandle_t handle, cusolverDnParams_t params,
                            cusolverEigMode_t jobvl, cusolverEigMode_t jobvr, std::int64_t n,
                            cudaDataType ta, std::int64_t lda, cudaDataType tw, std::int64_t ldvl,
                            std::int64_t ldvr, cudaDataType tc) {
    if (!handle) return CUSOLVER_STATUS_NOT_INITIALIZED;
    if (!params || n < 0 || lda < std::max<std::int64_t>(1, n) ||
        (jobvl != CUSOLVER_EIG_MODE_NOVECTOR && jobvl != CUSOLVER_EIG_MODE_VECTOR) ||
        (jobvr != CUSOLVER_EIG_MODE_NOVECTOR && jobvr != CUSOLVER_EIG_MODE_VECTOR) || ldvl < 1 ||
        ldvr < 1 || (jobvl == CUSOLVER_EIG_MODE_VECTOR && ldvl < n) ||
        (jobvr == CUSOLVER_EIG_MODE_VECTOR && ldvr < n))
        return CUSOLVER_STATUS_INVALID_VALUE;
    if (jobvl == CUSOLVER_EIG_MODE_VECTOR || jobvr == CUSOLVER_EIG_MODE_VECTOR ||
        ta != CUDA_R_64F || tw != CUDA_R_64F || tc != CUDA_R_64F)
        return CUSOLVER_STATUS_NOT_SUPPORTED;  // what this emulation implements
    return CUSOLVER_STATUS_SUCCESS;
}

}  // namespace

cusolverStatus_t cusolverDnXgeev_bufferSize(cusolverDnHandle_t handle, cusolverDnParams_t params,
                                            cusolverEigMode_t jobvl, cusolverEigMode_t jobvr,
                                            std::int64_t n, cudaDataType dataTypeA, const void*,
                                            std::int64_t lda, cudaDataType dataTypeW, const void*,
                                            cudaDataType, const void*, std::int64_t ldvl,
                                            cudaDataType, const void*, std::int64_t ldvr,
                                            cudaDataType computeType, std::size_t* device_bytes,
                                            std::size_t* host_bytes) {
    if (cusolverStatus_t s = check_geev(handle, params, jobvl, jobvr, n, dataTypeA, lda, dataTypeW,
                                        ldvl, ldvr, computeType))
        return s;
    if (!device_bytes || !host_bytes) return CUSOLVER_STATUS_INVALID_VALUE;
    // Device: a copy of A and LAPACK's work array; host: the eigenvalues' staging.
    *device_bytes = (static_cast<std::size_t>(n) * n + dgeev_lwork(n)) * sizeof(double);
    *host_bytes = 2 * static_cast<std::size_t>(std::max<std::int64_t>(n, 1)) * sizeof(double);
    return CUSOLVER_STATUS_SUCCESS;
}

cusolverStatus_t cusolverDnXgeev(cusolverDnHandle_t handle, cusolverDnParams_t params,
                                 cusolverEigMode_t jobvl, cusolverEigMode_t jobvr, std::int64_t n,
                                 cudaDataType dataTypeA, void* A, std::int64_t lda,
                                 cudaDataType dataTypeW, void* W, cudaDataType, void*,
                                 std::int64_t ldvl, cudaDataType, void*, std::int64_t ldvr,
                                 cudaDataType computeType, void* device_work,
                                 std::size_t device_bytes, void* host_work, std::size_t host_bytes,
                                 int* info) {
    if (cusolverStatus_t s = check_geev(handle, params, jobvl, jobvr, n, dataTypeA, lda, dataTypeW,
                                        ldvl, ldvr, computeType))
        return s;
    const lapack_int lwork = dgeev_lwork(n);
    const std::size_t need_device = (static_cast<std::size_t>(n) * n + lwork) * sizeof(double);
    const std::size_t need_host =
        2 * static_cast<std::size_t>(std::max<std::int64_t>(n, 1)) * sizeof(double);
    if (device_bytes < need_device || host_bytes < need_host || !host_work || !info)
        return CUSOLVER_STATUS_INVALID_VALUE;
    if (emu::sticky()) return CUSOLVER_STATUS_EXECUTION_FAILED;
    {
        std::lock_guard<std::mutex> g(emu::lock());
        const bool ok = device_range(A, span(n, n, lda, 8)) &&
                        device_range(W, 2 * static_cast<std::size_t>(n) * 8) &&
                        device_range(device_work, need_device) && device_range(info, sizeof(int));
        if (!ok) {
            emu::device_fault(cudaErrorIllegalAddress,
                              "cusolverDnXgeev: A, W, the device workspace or info lies outside "
                              "device memory (n " +
                                  std::to_string(n) + ", lda " + std::to_string(lda) + ")");
            return CUSOLVER_STATUS_EXECUTION_FAILED;
        }
    }
    auto* a = static_cast<double*>(A);
    auto* w = static_cast<double*>(W);
    auto* work = static_cast<double*>(device_work);
    auto* staging = static_cast<double*>(host_work);
    if (!enqueue_on(handle->stream, [=] {
            // The eigenvalues go through the host workspace, as the library's host part does.
            const lapack_int N = static_cast<lapack_int>(n);
            lapack_int r = 0;
            if (N > 0) {
                double vdummy = 0;
                r = LAPACKE_dgeev_work(LAPACK_COL_MAJOR, 'N', 'N', N, a,
                                       static_cast<lapack_int>(lda), staging, staging + N, &vdummy,
                                       1, &vdummy, 1, work + std::size_t(N) * N, lwork);
                std::copy(staging, staging + 2 * std::size_t(N), w);
            }
            *info = static_cast<int>(r);
        }))
        return CUSOLVER_STATUS_INVALID_VALUE;
    return CUSOLVER_STATUS_SUCCESS;
}
