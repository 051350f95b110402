// One network's loss and gradient (see network_grad.hpp).
#include "host/train/network_grad.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "kernels/cpu/optimizer.hpp"
#include "kernels/cpu/rnn.hpp"
#include "kernels/optimizer_args.hpp"

namespace eirnn {

template <class Real>
void NetworkWorkspace<Real>::resize(const ParamLayout& L, int B, int T, bool rate_penalty,
                                    bool keep_th) {
    const std::size_t BN = static_cast<std::size_t>(B) * L.N;
    out.resize(static_cast<std::size_t>(T) * B * L.O);
    grad_y.resize(out.size());
    h.resize((T + 1) * BN);
    th.resize(keep_th ? T * BN : 0);
    th.shrink_to_fit();
    dh.resize(BN);
    grad_h.resize(rate_penalty ? T * BN : 0);
    w_eff.resize(static_cast<std::size_t>(L.N) * L.N);
}

template <class Real>
LossParts network_loss_grad(const ModelConfig& mc, const TrainConfig& tc, const ParamLayout& L,
                            int B, int T, const Real* p, const float* sign, const float* mask,
                            const Real* x, const Real* y, const Real* loss_mask, const Real* noise,
                            NetworkWorkspace<Real>& ws, Real* grad) {
    const int N = L.N;
    const std::size_t NN = static_cast<std::size_t>(N) * N;
    const RnnDims d{B, N, L.I, L.O, T};
    const Real alpha = static_cast<Real>(mc.alpha);
    const bool outgoing = mc.dale_axis == DaleAxis::Outgoing;
    // Plain steps keep tanh(a_t) in h, and the deltas are not needed afterwards: no th.
    const bool plain = cpu::tanh_in_states(alpha, noise);
    if (!plain && ws.th.size() < static_cast<std::size_t>(T) * B * N)
        throw std::logic_error(
            "network_loss_grad: workspace sized without th for leaky or noisy steps");
    if (mc.dale == DaleMode::Reparam)
        reparam_effective(p + L.w_rec, ws.w_eff.data(), N, sign, mc.dale_axis, mask);
    else
        for (std::size_t ij = 0; ij < NN; ++ij)
            ws.w_eff[ij] = mask && mask[ij] == 0.0f ? Real(0) : p[L.w_rec + ij];
    cpu::rnn_forward(d, ws.w_eff.data(), p + L.w_in, p + L.b, p + L.w_out, p + L.b_out, x, noise,
                     alpha, ws.h.data(), ws.th.data(), ws.out.data());
    LossParts loss;
    loss.data = cpu::masked_mse(d, ws.out.data(), y, loss_mask, ws.grad_y.data());
    loss.total = loss.data;
    const Real* grad_h = nullptr;
    if (tc.l2_rate > 0) {
        const std::size_t n = static_cast<std::size_t>(T) * B * N;
        const Real c = static_cast<Real>(2.0 * tc.l2_rate / static_cast<double>(n));
        double s = 0;
        for (std::size_t i = 0; i < n; ++i) {
            Real hv = ws.h[static_cast<std::size_t>(B) * N + i];
            s += static_cast<double>(hv) * hv;
            ws.grad_h[i] = c * hv;
        }
        loss.total += tc.l2_rate * s / static_cast<double>(n);
        grad_h = ws.grad_h.data();
    }
    std::fill(grad, grad + L.total, Real(0));
    cpu::rnn_backward(d, ws.w_eff.data(), p + L.w_out, x, ws.h.data(),
                      plain ? nullptr : ws.th.data(), plain, ws.grad_y.data(), grad_h, alpha,
                      ws.dh.data(), grad + L.w_rec, grad + L.w_in, grad + L.b, grad + L.w_out,
                      grad + L.b_out);
    Real* gw = grad + L.w_rec;
    if (mc.dale == DaleMode::Reparam) {
        for (int i = 0; i < N; ++i)
            for (int j = 0; j < N; ++j) {
                std::size_t ij = static_cast<std::size_t>(i) * N + j;
                Real s = sign[outgoing ? j : i];
                gw[ij] =
                    reparam_grad_element(gw[ij], p[L.w_rec + ij], s, Real(mask ? mask[ij] : 1.0f));
            }
    } else if (mask) {
        for (std::size_t ij = 0; ij < NN; ++ij)
            if (mask[ij] == 0.0f) gw[ij] = 0;
    }
    if (tc.l2_weight > 0) {
        const Real c = static_cast<Real>(2.0 * tc.l2_weight);
        double s = 0;
        for (int t : {0, 1, 3})
            for (std::size_t i = 0; i < L.size(t); ++i) {
                Real w = p[L.offset(t) + i];
                if (t == 0 && mask && mask[i] == 0.0f) continue;
                s += static_cast<double>(w) * w;
                grad[L.offset(t) + i] += c * w;
            }
        loss.total += tc.l2_weight * s;
    }
    return loss;
}

void gradient_norms(const ParamLayout& L, const float* grad, double* sq) {
    for (int t = 0; t < ParamLayout::kTensors; ++t)
        sq[t] = cpu::sum_squares(grad + L.offset(t), L.size(t));
}

void apply_update(const ModelConfig& mc, const TrainConfig& tc, const ParamLayout& L, float* p,
                  float* m, float* v, const float* grad, const double* sq, long k_done,
                  float lr_scale, const float* sign, const float* mask) {
    double total = 0;
    for (int t = 0; t < ParamLayout::kTensors; ++t) total += sq[t];
    AdamStep step;
    step.lr_t =
        static_cast<float>(lr_scale * keras_adam_lr(tc.lr, tc.decay, tc.beta1, tc.beta2, k_done));
    step.beta1 = static_cast<float>(tc.beta1);
    step.beta2 = static_cast<float>(tc.beta2);
    step.eps = static_cast<float>(tc.eps);
    for (int t = 0; t < ParamLayout::kTensors; ++t) {
        double norm = std::sqrt(tc.clip == ClipMode::Global ? total : sq[t]);
        float scale = 1.0f;
        if (tc.clipnorm > 0 && norm > tc.clipnorm) scale = static_cast<float>(tc.clipnorm / norm);
        const std::size_t o = L.offset(t);
        cpu::adam_update(p + o, m + o, v + o, grad + o, L.size(t), scale, step);
    }
    cpu::ConstraintArgs c;
    c.N = L.N;
    c.w_rec = L.w_rec;
    c.w_in = L.w_in;
    c.n_in = L.size(1);
    c.sign = sign;
    c.mask = mask;
    c.project = mc.dale == DaleMode::Project;
    c.incoming = mc.dale_axis == DaleAxis::Incoming;
    c.nonneg_input = mc.nonneg_input;
    cpu::apply_constraints(c, p);
}

template struct NetworkWorkspace<float>;
template struct NetworkWorkspace<double>;
template LossParts network_loss_grad<float>(const ModelConfig&, const TrainConfig&,
                                            const ParamLayout&, int, int, const float*,
                                            const float*, const float*, const float*, const float*,
                                            const float*, const float*, NetworkWorkspace<float>&,
                                            float*);
template LossParts network_loss_grad<double>(const ModelConfig&, const TrainConfig&,
                                             const ParamLayout&, int, int, const double*,
                                             const float*, const float*, const double*,
                                             const double*, const double*, const double*,
                                             NetworkWorkspace<double>&, double*);

}  // namespace eirnn
