// CPU reference and backend kernels of one network's forward pass, masked MSE and BPTT backward.
// Real = float (the backend) or double (finite-difference tests). The products go to gemm_small's
// own kernels for float and to BLAS for double (single-threaded inside; the backend runs networks
// in parallel). Shapes in kernels/rnn_args.hpp.
#pragma once
#include "kernels/rnn_args.hpp"

namespace eirnn::cpu {

/// Whether the states themselves hold tanh(a_t) (h_{t+1} = tanh(a_t): alpha = 1, no noise); then
/// rnn_forward does not write th, and rnn_backward reads tanh(a_t) from h.
template <class Real>
bool tanh_in_states(Real alpha, const Real* noise) {
    return alpha == Real(1) && noise == nullptr;
}

/// Forward over T steps.
///   w_rec (N,N) [i][j] = j -> i (effective matrix), w_in (N,I), b (N), w_out (O,N), b_out (O)
///   x (T,B,I), noise (T,B,N) already scaled by sigma sqrt(alpha), or null
///   h (T+1,B,N) out, h[0] = 0;  y (T,B,O) out
///   th (T,B,N) out, tanh(a_t); left untouched when tanh_in_states(alpha, noise)
template <class Real>
void rnn_forward(const RnnDims& d, const Real* w_rec, const Real* w_in, const Real* b,
                 const Real* w_out, const Real* b_out, const Real* x, const Real* noise, Real alpha,
                 Real* h, Real* th, Real* y);

/// Masked MSE sum mask (y - target)^2 / (T B O); grad_y (T,B,O) = d loss / d y when non-null.
template <class Real>
Real masked_mse(const RnnDims& d, const Real* y, const Real* target, const Real* mask,
                Real* grad_y);

/// BPTT backward through all T steps. th is overwritten (it becomes d loss / d a_t, the deltas).
///   tanh_in_h: tanh_in_states(alpha, noise) of the forward (tanh(a_t) is read from h, not th);
///   then th may be null: the deltas are not returned and the sweep keeps only a few steps of them,
///   in cache (the same gradients, to the bit).
///   grad_h_extra: (T,B,N) extra d loss / d h_t (t = 1..T), e.g. a rate penalty, or null.
///   dh: (B,N) scratch. Gradients are overwritten (not accumulated):
///   grad_w_rec (N,N) w.r.t. the effective matrix, grad_w_in (N,I), grad_b (N), grad_w_out (O,N),
///   grad_b_out (O).
template <class Real>
void rnn_backward(const RnnDims& d, const Real* w_rec, const Real* w_out, const Real* x,
                  const Real* h, Real* th, bool tanh_in_h, const Real* grad_y,
                  const Real* grad_h_extra, Real alpha, Real* dh, Real* grad_w_rec, Real* grad_w_in,
                  Real* grad_b, Real* grad_w_out, Real* grad_b_out);

/// tanh over n values in place (vectorised for float).
void tanh_inplace(float* v, long n);
void tanh_inplace(double* v, long n);

}  // namespace eirnn::cpu
