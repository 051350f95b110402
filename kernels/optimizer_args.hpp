// Element-wise math of the update (docs/MODEL.md §5), shared by the CPU optimizer and its CUDA twin
// so both compute the same function: Keras-2 Adam with the step size lr_t precomputed on the host
// in double, then Dale projection, connectivity mask and input non-negativity. No CUDA headers.
#pragma once
#include <cmath>

#include "kernels/hd.hpp"

namespace eirnn {

/// One update's constants. lr_t = lr / (1 + decay k) sqrt(1 - beta2^t) / (1 - beta1^t), t = k + 1.
struct AdamStep {
    float lr_t = 0;
    float beta1 = 0.9f;
    float beta2 = 0.999f;
    float eps = 1e-8f;
};

/// lr_t of update number t = k + 1 (k updates done before), in double.
inline double keras_adam_lr(double lr, double decay, double beta1, double beta2, long k) {
    double t = static_cast<double>(k + 1);
    return lr / (1.0 + decay * static_cast<double>(k)) * std::sqrt(1.0 - std::pow(beta2, t)) /
           (1.0 - std::pow(beta1, t));
}

/// Adam on one parameter with the (already clipped) gradient g.
EIRNN_HD inline void adam_element(float& p, float& m, float& v, float g, const AdamStep& s) {
    m = s.beta1 * m + (1.0f - s.beta1) * g;
    v = s.beta2 * v + (1.0f - s.beta2) * g * g;
    p -= s.lr_t * m / (sqrtf(v) + s.eps);
}

/// Dale projection of one recurrent weight: 0 when its sign disagrees with its unit's sign s,
/// or when the mask entry is 0.
EIRNN_HD inline float project_element(float w, float s, float mask) {
    return (s * w < 0.0f || mask == 0.0f) ? 0.0f : w;
}

/// Gradient w.r.t. the free V of a reparam network from the gradient w.r.t. W = mask |V| s.
template <class Real>
EIRNN_HD inline Real reparam_grad_element(Real grad_w, Real v, Real s, Real mask) {
    Real sv = v > Real(0) ? Real(1) : (v < Real(0) ? Real(-1) : Real(0));
    return grad_w * s * sv * mask;
}

}  // namespace eirnn
