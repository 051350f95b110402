// Status texts and the throwing checks (see error.hpp).
#include "host/cuda/error.hpp"

#include <string>

namespace eirnn::cuda {

namespace {

[[noreturn]] void fail(const char* expr, const std::source_location& where,
                       const std::string& what) {
    throw GpuError(std::string(expr) + " failed at " + where.file_name() + ":" +
                   std::to_string(where.line()) + ": " + what);
}

}  // namespace

const char* status_text(cublasStatus_t s) {
    return cublasGetStatusString(s);
}

const char* status_text(cusolverStatus_t s) {
    switch (s) {
        case CUSOLVER_STATUS_SUCCESS:
            return "CUSOLVER_STATUS_SUCCESS";
        case CUSOLVER_STATUS_NOT_INITIALIZED:
            return "CUSOLVER_STATUS_NOT_INITIALIZED";
        case CUSOLVER_STATUS_ALLOC_FAILED:
            return "CUSOLVER_STATUS_ALLOC_FAILED";
        case CUSOLVER_STATUS_INVALID_VALUE:
            return "CUSOLVER_STATUS_INVALID_VALUE";
        case CUSOLVER_STATUS_ARCH_MISMATCH:
            return "CUSOLVER_STATUS_ARCH_MISMATCH";
        case CUSOLVER_STATUS_MAPPING_ERROR:
            return "CUSOLVER_STATUS_MAPPING_ERROR";
        case CUSOLVER_STATUS_EXECUTION_FAILED:
            return "CUSOLVER_STATUS_EXECUTION_FAILED";
        case CUSOLVER_STATUS_INTERNAL_ERROR:
            return "CUSOLVER_STATUS_INTERNAL_ERROR";
        case CUSOLVER_STATUS_MATRIX_TYPE_NOT_SUPPORTED:
            return "CUSOLVER_STATUS_MATRIX_TYPE_NOT_SUPPORTED";
        case CUSOLVER_STATUS_NOT_SUPPORTED:
            return "CUSOLVER_STATUS_NOT_SUPPORTED";
        case CUSOLVER_STATUS_ZERO_PIVOT:
            return "CUSOLVER_STATUS_ZERO_PIVOT";
        case CUSOLVER_STATUS_INVALID_LICENSE:
            return "CUSOLVER_STATUS_INVALID_LICENSE";
        case CUSOLVER_STATUS_IRS_PARAMS_NOT_INITIALIZED:
            return "CUSOLVER_STATUS_IRS_PARAMS_NOT_INITIALIZED";
        case CUSOLVER_STATUS_IRS_PARAMS_INVALID:
            return "CUSOLVER_STATUS_IRS_PARAMS_INVALID";
        case CUSOLVER_STATUS_IRS_INTERNAL_ERROR:
            return "CUSOLVER_STATUS_IRS_INTERNAL_ERROR";
        case CUSOLVER_STATUS_IRS_NOT_SUPPORTED:
            return "CUSOLVER_STATUS_IRS_NOT_SUPPORTED";
        case CUSOLVER_STATUS_IRS_OUT_OF_RANGE:
            return "CUSOLVER_STATUS_IRS_OUT_OF_RANGE";
        case CUSOLVER_STATUS_INVALID_WORKSPACE:
            return "CUSOLVER_STATUS_INVALID_WORKSPACE";
        default:
            return "unknown cuSOLVER status";
    }
}

void check(cudaError_t s, const char* expr, std::source_location where) {
    if (s == cudaSuccess) return;
    cudaGetLastError();  // reset a non-sticky error so that the next check does not report it
    fail(expr, where, std::string(cudaGetErrorName(s)) + " (" + cudaGetErrorString(s) + ")");
}

void check(cublasStatus_t s, const char* expr, std::source_location where) {
    if (s == CUBLAS_STATUS_SUCCESS) return;
    fail(expr, where, status_text(s));
}

void check(cusolverStatus_t s, const char* expr, std::source_location where) {
    if (s == CUSOLVER_STATUS_SUCCESS) return;
    fail(expr, where, status_text(s));
}

}  // namespace eirnn::cuda
