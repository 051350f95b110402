// Row-major GEMM for float and double over CBLAS (OpenBLAS), so templated kernels can call one
// name. gemm_strided sends float to the hand-written kernels of gemm_small.hpp instead.
#pragma once
#include <cblas.h>

#include <stdexcept>
#include <string_view>

#include "kernels/cpu/gemm_small.hpp"

namespace eirnn::cpu {

/// C (M,N) = alpha op(A) op(B) + beta C, row-major; ta/tb: transpose A/B.
inline void gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda,
                 const float* B, int ldb, float beta, float* C, int ldc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N,
                K, alpha, A, lda, B, ldb, beta, C, ldc);
}

inline void gemm(bool ta, bool tb, int M, int N, int K, double alpha, const double* A, int lda,
                 const double* B, int ldb, double beta, double* C, int ldc) {
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N,
                K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/// C (M,N) = (accumulate ? C : 0) + A·B with A(m,k) = a[m*sam + k*sak], B and C row-major.
/// float runs the hand-written kernels of gemm_small.hpp (the per-step products of the recurrent
/// loop); double goes to cblas_dgemm and needs sak == 1 or sam == 1.
inline void gemm_strided(int M, int N, int K, const float* a, long sam, long sak, const float* b,
                         long ldb, bool accumulate, float* c, long ldc) {
    gemm_small(M, N, K, a, sam, sak, b, ldb, accumulate, c, ldc);
}

inline void gemm_strided(int M, int N, int K, const double* a, long sam, long sak, const double* b,
                         long ldb, bool accumulate, double* c, long ldc) {
    // A single row (column) may carry any stride across rows (columns); CBLAS still checks lda.
    bool ta = false;
    long lda = 0;
    if (sak == 1 && (sam >= K || M == 1)) {
        lda = sam > K ? sam : K;
    } else if (sam == 1 && (sak >= M || K == 1)) {
        ta = true;
        lda = sak > M ? sak : M;
    } else {
        throw std::invalid_argument("gemm_strided: double needs A row- or column-major");
    }
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, CblasNoTrans, M, N, K, 1.0, a,
                static_cast<int>(lda), b, static_cast<int>(ldb), accumulate ? 1.0 : 0.0, c,
                static_cast<int>(ldc));
}

/// The OPENBLAS_CORETYPE that gives this CPU kernels of its own instruction set when the OpenBLAS
/// that loaded picked older ones, or nullptr when its pick stands. picked: openblas_get_corename();
/// Debian's OpenBLAS 0.3.21 does not know recent CPUs and falls back to its SSE3 "Prescott" kernels
/// on them. "SkylakeX" when the CPU has AVX-512 F, BW, DQ and VL, else "Haswell" when it has AVX2
/// and FMA; only replaces a pick without AVX2 (a pick with it, e.g. Zen on an AVX-512 Zen 4,
/// stands).
const char* better_openblas_core(std::string_view picked, bool avx512, bool avx2_fma);

/// For a program's main, before anything else: when OPENBLAS_CORETYPE is unset and
/// better_openblas_core names a core for this CPU, sets the variable and runs the program again
/// (execv of /proc/self/exe with the same arguments; the same process), since OpenBLAS reads it
/// only when it loads. The restarted run removes the variable again, so that the processes it
/// starts (Slurm jobs on other nodes) choose for their own CPU. Returns, changing nothing, when the
/// user set the variable, when the pick stands, or when the exec fails.
void use_the_cpus_openblas_kernels(char** argv);

/// Sets the number of threads BLAS uses inside one call (1 while networks run in parallel).
void set_blas_threads(int n);
int blas_threads();

/// BLAS single-threaded while alive (each OpenMP thread runs its own BLAS/LAPACK call); the count
/// before is restored.
class SingleThreadedBlas {
public:
    SingleThreadedBlas() : saved_(blas_threads()) { set_blas_threads(1); }
    ~SingleThreadedBlas() { set_blas_threads(saved_); }
    SingleThreadedBlas(const SingleThreadedBlas&) = delete;
    SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

private:
    int saved_;
};

}  // namespace eirnn::cpu
