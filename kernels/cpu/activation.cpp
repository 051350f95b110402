// tanh over an array of floats. Built with -ffast-math (CMakeLists.txt) so that GCC vectorises the
// loop through glibc's libmvec SIMD tanhf (max error a few ulp); nothing else lives in this file.
// The loop is compiled once per instruction set that gemm_small dispatches to, so that the
// vectoriser calls libmvec's variant of that width (8 floats with AVX2, 16 with AVX-512; the
// baseline x86-64 build calls the 4-wide SSE4 one), and the same set is chosen as gemm_small's.
#include <cmath>

#include "kernels/cpu/gemm_small.hpp"
#include "kernels/cpu/rnn.hpp"

namespace eirnn::cpu {
namespace {

void tanh_baseline(float* v, long n) {
#pragma omp simd
    for (long i = 0; i < n; ++i) v[i] = tanhf(v[i]);
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target("avx2,fma"))) void tanh_avx2(float* v, long n) {
#pragma omp simd
    for (long i = 0; i < n; ++i) v[i] = tanhf(v[i]);
}

__attribute__((target("avx512f,avx512vl,fma"))) void tanh_avx512(float* v, long n) {
#pragma omp simd
    for (long i = 0; i < n; ++i) v[i] = tanhf(v[i]);
}
#define EIRNN_TANH_DISPATCH 1
#endif

}  // namespace

void tanh_inplace(float* v, long n) {
#if defined(EIRNN_TANH_DISPATCH)
    switch (gemm_small_isa()) {
        case GemmIsa::Avx512:
            return tanh_avx512(v, n);
        case GemmIsa::Avx2:
            return tanh_avx2(v, n);
        case GemmIsa::Portable:
            break;
    }
#endif
    tanh_baseline(v, n);
}

}  // namespace eirnn::cpu
