// tanh over an array of floats, dispatched with gemm_small's instruction set. With AVX2 + FMA the
// own vector tanh of tanh_avx2.cpp; otherwise the loop here, built with -ffast-math
// (CMakeLists.txt) so that GCC vectorises it through glibc's libmvec SIMD tanhf (max error a few
// ulp): 16 floats with AVX-512, 4 with the baseline x86-64 build's SSE.
#include <cmath>

#include "kernels/cpu/activation.hpp"
#include "kernels/cpu/gemm_small.hpp"
#include "kernels/cpu/rnn.hpp"

namespace eirnn::cpu {
namespace {

void tanh_baseline(float* v, long n) {
#pragma omp simd
    for (long i = 0; i < n; ++i) v[i] = tanhf(v[i]);
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
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
