// Row-major GEMM for float and double over CBLAS (OpenBLAS), so templated kernels can call one name.
#pragma once
#include <cblas.h>

namespace eirnn::cpu {

/// C (M,N) = alpha op(A) op(B) + beta C, row-major; ta/tb: transpose A/B.
inline void gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda,
                 const float* B, int ldb, float beta, float* C, int ldc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K,
                alpha, A, lda, B, ldb, beta, C, ldc);
}

inline void gemm(bool ta, bool tb, int M, int N, int K, double alpha, const double* A, int lda,
                 const double* B, int ldb, double beta, double* C, int ldc) {
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K,
                alpha, A, lda, B, ldb, beta, C, ldc);
}

/// Sets the number of threads BLAS uses inside one call (1 while networks run in parallel).
void set_blas_threads(int n);
int blas_threads();

}  // namespace eirnn::cpu
