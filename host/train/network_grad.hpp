// Loss and gradient of one network on one time-major batch, with everything the model adds around
// the kernels: the effective recurrent matrix (mask ⊙ W, or mask ⊙ |V| s), noise, L2 penalties and
// the chain rule back to the trained parameters. Real = float (the CPU backend) or double (tests).
#pragma once
#include <vector>

#include "host/core/config.hpp"
#include "host/core/model.hpp"

namespace eirnn {

/// Buffers of one network's pass, sized for B trials of T steps. th (T·B·N) only with keep_th:
/// plain steps (alpha = 1, no noise) keep tanh(a_t) in h and never touch it (at N = 256, B = 64, T
/// = 290, 19 MB per thread).
template <class Real>
struct NetworkWorkspace {
    std::vector<Real> out, grad_y, h, th, dh, grad_h, w_eff, p_real;
    void resize(const ParamLayout& L, int B, int T, bool rate_penalty, bool keep_th = true);
};

struct LossParts {
    double data = 0;   // masked MSE
    double total = 0;  // data + penalties
};

/// p: the network's parameter slice (ParamLayout); x (T,B,I), y (T,B,O), mask (T,B,O) time-major;
/// noise (T,B,N) scaled, or null; loss_mask entries weight the MSE. grad (layout.total) receives
/// d total / d p (w.r.t. V in reparam mode; masked entries 0). Returns the loss parts.
template <class Real>
LossParts network_loss_grad(const ModelConfig& mc, const TrainConfig& tc, const ParamLayout& L,
                            int B, int T, const Real* p, const float* sign, const float* mask,
                            const Real* x, const Real* y, const Real* loss_mask, const Real* noise,
                            NetworkWorkspace<Real>& ws, Real* grad);

/// Squared L2 norm of each of the five gradient tensors of one network (ParamLayout order).
void gradient_norms(const ParamLayout& L, const float* grad, double* sq);

/// The optimizer step of one network after its gradient (docs/MODEL.md §5): clipping (global over
/// the five tensors or per tensor, from the squared norms sq), Keras-2 Adam for update number
/// k_done + 1 with the learning rate times lr_scale, then Dale projection, mask and input
/// non-negativity.
void apply_update(const ModelConfig& mc, const TrainConfig& tc, const ParamLayout& L, float* p,
                  float* m, float* v, const float* grad, const double* sq, long k_done,
                  float lr_scale, const float* sign, const float* mask);

}  // namespace eirnn
