// Single-precision GEMMs of the CPU backend's recurrent loop, written by hand: per step
// (B,N) += (B,N)·(N,N) with B = 64 and N = 100..512, and the weight gradient over T·B rows.
// OpenBLAS re-packs the (N,N) operand on every such small call, and the packaged 0.3.21 does not
// recognise recent CPUs (Sapphire Rapids falls back to its SSE3 kernels, and OPENBLAS_CORETYPE is
// only read when the library loads). Register-blocked kernels for AVX-512 and AVX2+FMA, plus a
// portable loop, are selected once at run time from the CPU's features; the build itself needs no
// -march flag. Double precision stays on cblas_dgemm (kernels/cpu/blas.hpp).
#pragma once
#include <vector>

namespace eirnn::cpu {

/// Instruction sets gemm_small can run on.
enum class GemmIsa { Portable, Avx2, Avx512 };

/// Whether this CPU (and this build) can run isa.
bool gemm_isa_supported(GemmIsa isa);
/// The widest supported instruction set; what gemm_small uses. Chosen once.
GemmIsa gemm_small_isa();
/// "portable", "avx2" or "avx512".
const char* gemm_isa_name(GemmIsa isa);

/// C[m][n] = (accumulate ? C[m][n] : 0) + sum_k A(m,k) B[k][n]  for m < M, n < N, k < K, where
/// A(m,k) = a[m*sam + k*sak] (any strides: a row-major A has sak = 1, a transposed one sam = 1),
/// b is row-major with leading dimension ldb and c row-major with ldc. M, N, K are GEMM sizes here.
void gemm_small(int M, int N, int K, const float* a, long sam, long sak, const float* b, long ldb,
                bool accumulate, float* c, long ldc);

/// The same on a named instruction set (tests, benchmarks); throws std::invalid_argument when this
/// CPU cannot run it.
void gemm_small(GemmIsa isa, int M, int N, int K, const float* a, long sam, long sak,
                const float* b, long ldb, bool accumulate, float* c, long ldc);

/// C (M,N) (+)= sum over j = 0..S-1 of A_j·B_j, products of depth K each: A_j(m,k) =
/// a[j*seg_a + m*sam + k*sak] and B_j row-major at b + j*seg_b with leading dimension ldb (the
/// segment strides may be negative); accumulate applies to the first. The same sums, in the same
/// order and to the bit, as S gemm_small calls in turn (j = 0 first, the later ones accumulating).
/// Where the kernels pack both operands (AVX2, M > 64, sam = 1, N >= 16) it is one product of depth
/// S*K, so C and the packing per call are touched once for all S: the recurrent weight gradient
/// over several steps (hot in cache at N = 100: about 74 GFLOP/s at depth 256 against 53 at depth
/// 64 on one Zen 3 core; in the whole backward a few percent at N = 256, bench/RESULTS.md).
void gemm_small_segments(int M, int N, int K, int S, const float* a, long sam, long sak, long seg_a,
                         const float* b, long ldb, long seg_b, bool accumulate, float* c, long ldc);
void gemm_small_segments(GemmIsa isa, int M, int N, int K, int S, const float* a, long sam,
                         long sak, long seg_a, const float* b, long ldb, long seg_b,
                         bool accumulate, float* c, long ldc);

/// B (K,N) copied once into the column panels the kernels of `isa` read (zero-padded, each panel's
/// rows contiguous), for many products with the same B: the recurrent matrix in every step of a
/// sweep. Reading it so costs no packing per call, and its rows do not alias in L1 (at N = 256 a
/// row-major panel's rows are 1 KiB apart: the per-step products ran about 20% faster packed).
struct PackedB {
    GemmIsa isa = GemmIsa::Portable;
    int K = 0, N = 0;
    std::vector<float> data;
};

/// Packs b (K,N), row-major with leading dimension ldb, into out (its storage is reused) for
/// gemm_small_isa(), or for isa (throws std::invalid_argument when this CPU cannot run it).
void pack_b(int K, int N, const float* b, long ldb, PackedB& out);
void pack_b(GemmIsa isa, int K, int N, const float* b, long ldb, PackedB& out);

/// C (M, b.N) = (accumulate ? C : 0) + A·B for a packed B, A(m,k) = a[m*sam + k*sak]: the same
/// sums, in the same order, as the unpacked call.
void gemm_small(int M, const float* a, long sam, long sak, const PackedB& b, bool accumulate,
                float* c, long ldc);

/// dst[j][i] = src[i][j] for i < rows, j < cols: packs W^T once, so each step reads it row-major.
template <class Real>
void transpose(int rows, int cols, const Real* src, long lds, Real* dst, long ldd) {
    constexpr int kTile = 32;  // a 32x32 tile of each side stays in L1
    for (int i0 = 0; i0 < rows; i0 += kTile)
        for (int j0 = 0; j0 < cols; j0 += kTile) {
            const int i1 = i0 + kTile < rows ? i0 + kTile : rows;
            const int j1 = j0 + kTile < cols ? j0 + kTile : cols;
            for (int j = j0; j < j1; ++j)
                for (int i = i0; i < i1; ++i) dst[j * ldd + i] = src[i * lds + j];
        }
}

}  // namespace eirnn::cpu
