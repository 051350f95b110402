// BLAS thread control (OpenBLAS).
#include "kernels/cpu/blas.hpp"

namespace eirnn::cpu {

void set_blas_threads(int n) {
    openblas_set_num_threads(n);
}
int blas_threads() {
    return openblas_get_num_threads();
}

}  // namespace eirnn::cpu
