// cuBLAS strided-batched weight gradients (see gemm.hpp).
#include "host/cuda/gemm.hpp"

#include "host/cuda/error.hpp"
#include "host/cuda/plan.hpp"

namespace eirnn::cuda {

void weight_grads(cublasHandle_t handle, const ParamLayout& L, int T, int B, int count,
                  const GemmOperands& ops, float* grads) {
    if (count == 0) return;
    auto base = [&](GemmOperand o) -> const float* {
        switch (o) {
            case GemmOperand::HPrev:
            case GemmOperand::HNext:
                return ops.h + operand_offset(o, L, B);
            case GemmOperand::Delta:
                return ops.delta;
            case GemmOperand::X:
                return ops.x;
            case GemmOperand::GradY:
                return ops.grad_y;
        }
        return nullptr;
    };
    const float one = 1.0f, zero = 0.0f;
    for (const GemmDesc& d : weight_grad_gemms(L, T, B)) {
        if (d.m == 0 || d.n == 0) continue;  // a task without inputs
        EIRNN_CHECK_CUBLAS(cublasSgemmStridedBatched(
            handle, d.ta ? CUBLAS_OP_T : CUBLAS_OP_N, d.tb ? CUBLAS_OP_T : CUBLAS_OP_N, d.m, d.n,
            d.k, &one, base(d.a), d.lda, ops.stride, base(d.b), d.ldb, ops.stride, &zero,
            grads + d.c_offset, d.ldc, static_cast<long long>(L.total), count));
    }
}

}  // namespace eirnn::cuda
