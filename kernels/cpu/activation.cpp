// tanh over an array of floats. Built with -ffast-math (CMakeLists.txt) so that GCC vectorises the
// loop through glibc's libmvec SIMD tanhf (max error a few ulp); nothing else lives in this file.
#include <cmath>

#include "kernels/cpu/rnn.hpp"

namespace eirnn::cpu {

void tanh_inplace(float* v, long n) {
#pragma omp simd
    for (long i = 0; i < n; ++i) v[i] = tanhf(v[i]);
}

}  // namespace eirnn::cpu
