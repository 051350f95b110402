// CPU update of one network's parameter slice (ParamLayout): clipping, Keras-2 Adam, Dale
// projection, mask, input non-negativity. The element math is in kernels/optimizer_args.hpp (shared
// with CUDA).
#pragma once
#include <cstddef>

#include "kernels/optimizer_args.hpp"

namespace eirnn::cpu {

/// What the constraints need to know about a network.
struct ConstraintArgs {
    int N = 0;
    std::size_t w_rec = 0, w_in = 0, n_in = 0;  // offsets in the slice, size of W_in
    const float* sign = nullptr;                // (N)
    const float* mask = nullptr;                // (N,N) or null
    bool project = false;                       // Dale projection of W_rec
    bool incoming = false;                      // sign rows instead of columns
    bool nonneg_input = false;
};

/// Sum of squares of n gradients, accumulated in double.
double sum_squares(const float* g, std::size_t n);

/// p, m, v, g: n values; every gradient is multiplied by `scale` (clipping) first.
void adam_update(float* p, float* m, float* v, const float* g, std::size_t n, float scale,
                 const AdamStep& s);

/// Applies the constraints to one network's slice after an update.
void apply_constraints(const ConstraintArgs& c, float* p);

}  // namespace eirnn::cpu
