// The instruction-set kernels behind tanh_inplace (rnn.hpp), which picks one with gemm_small's
// instruction set.
#pragma once

namespace eirnn::cpu {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define EIRNN_TANH_AVX2_BUILT 1
#define EIRNN_TANH_AVX2 __attribute__((target("avx2,fma")))
/// tanh in place over n floats with AVX2 + FMA (the CPU must have both), within 2 ulp.
EIRNN_TANH_AVX2 void tanh_avx2(float* v, long n);
#endif

}  // namespace eirnn::cpu
