// CPU forward / loss / BPTT backward of one network on one batch (see rnn.hpp). FLOPs per trial-step:
// 2N^2 forward (one GEMM per step), 2N^2 for the delta recurrence (one GEMM per step) and 2N^2 for
// the weight gradient (one GEMM over all T*B rows after the sweep).
#include "kernels/cpu/rnn.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/blas.hpp"

namespace eirnn::cpu {

template <class Real>
void rnn_forward(const RnnDims& d, const Real* w_rec, const Real* w_in, const Real* b,
                 const Real* w_out, const Real* b_out, const Real* x, const Real* noise, Real alpha,
                 Real* h, Real* th, Real* y) {
    const int B = d.B, N = d.N, I = d.I, O = d.O, T = d.T;
    const long BN = static_cast<long>(B) * N;
    std::fill(h, h + BN, Real(0));
    const Real keep = Real(1) - alpha;
    for (int t = 0; t < T; ++t) {
        Real* a = th + t * BN;
        const Real* xt = x + static_cast<long>(t) * B * I;
        for (int bb = 0; bb < B; ++bb) {
            Real* ab = a + static_cast<long>(bb) * N;
            const Real* xb = xt + static_cast<long>(bb) * I;
            for (int i = 0; i < N; ++i) {
                Real s = b[i];
                for (int m = 0; m < I; ++m) s += w_in[i * I + m] * xb[m];
                ab[i] = s;
            }
        }
        const Real* hp = h + t * BN;
        if (t > 0) gemm(false, true, B, N, N, Real(1), hp, N, w_rec, N, Real(1), a, N);
        tanh_inplace(a, BN);
        Real* hn = h + (t + 1) * BN;
        const Real* nt = noise ? noise + t * BN : nullptr;
        if (alpha == Real(1) && !nt) {
            std::copy(a, a + BN, hn);
        } else {
            for (long r = 0; r < BN; ++r) hn[r] = keep * hp[r] + alpha * a[r] + (nt ? nt[r] : Real(0));
        }
    }
    const long TB = static_cast<long>(T) * B;
    for (long r = 0; r < TB; ++r)
        for (int o = 0; o < O; ++o) y[r * O + o] = b_out[o];
    gemm(false, true, static_cast<int>(TB), O, N, Real(1), h + BN, N, w_out, N, Real(1), y, O);
}

template <class Real>
Real masked_mse(const RnnDims& d, const Real* y, const Real* target, const Real* mask, Real* grad_y) {
    const long n = static_cast<long>(d.T) * d.B * d.O;
    const double scale = 1.0 / static_cast<double>(n);
    double sum = 0;
    for (long r = 0; r < n; ++r) {
        Real e = y[r] - target[r];
        sum += static_cast<double>(mask[r] * e * e);
        if (grad_y) grad_y[r] = static_cast<Real>(2.0 * scale) * mask[r] * e;
    }
    return static_cast<Real>(sum * scale);
}

template <class Real>
void rnn_backward(const RnnDims& d, const Real* w_rec, const Real* w_out, const Real* x,
                  const Real* h, Real* th, const Real* grad_y, const Real* grad_h_extra, Real alpha,
                  Real* dh, Real* grad_w_rec, Real* grad_w_in, Real* grad_b, Real* grad_w_out,
                  Real* grad_b_out) {
    const int B = d.B, N = d.N, I = d.I, O = d.O, T = d.T;
    const long BN = static_cast<long>(B) * N;
    const Real keep = Real(1) - alpha;
    std::fill(dh, dh + BN, Real(0));
    for (int t = T - 1; t >= 0; --t) {
        Real* da = th + t * BN;
        const Real* gy = grad_y + static_cast<long>(t) * B * O;
        const Real* ex = grad_h_extra ? grad_h_extra + t * BN : nullptr;
        for (int bb = 0; bb < B; ++bb) {
            Real* dab = da + static_cast<long>(bb) * N;
            Real* dhb = dh + static_cast<long>(bb) * N;
            const Real* gyb = gy + static_cast<long>(bb) * O;
            for (int i = 0; i < N; ++i) {
                Real g = dhb[i];
                for (int o = 0; o < O; ++o) g += gyb[o] * w_out[o * N + i];
                if (ex) g += ex[bb * N + i];
                Real tv = dab[i];
                dab[i] = g * alpha * (Real(1) - tv * tv);
                dhb[i] = keep * g;
            }
        }
        if (t > 0) gemm(false, false, B, N, N, Real(1), da, N, w_rec, N, Real(1), dh, N);
    }
    const int TB = T * B;
    // h[0] = 0, so rows t = 0 of H[0..T-1] add nothing; the product is still over all T*B rows.
    gemm(true, false, N, N, TB, Real(1), th, N, h, N, Real(0), grad_w_rec, N);
    gemm(true, false, N, I, TB, Real(1), th, N, x, I, Real(0), grad_w_in, I);
    std::fill(grad_b, grad_b + N, Real(0));
    for (long r = 0; r < static_cast<long>(TB); ++r)
        for (int i = 0; i < N; ++i) grad_b[i] += th[r * N + i];
    gemm(true, false, O, N, TB, Real(1), grad_y, O, h + BN, N, Real(0), grad_w_out, N);
    std::fill(grad_b_out, grad_b_out + O, Real(0));
    for (long r = 0; r < static_cast<long>(TB); ++r)
        for (int o = 0; o < O; ++o) grad_b_out[o] += grad_y[r * O + o];
}

void tanh_inplace(double* v, long n) {
    for (long i = 0; i < n; ++i) v[i] = std::tanh(v[i]);
}

#define EIRNN_INSTANTIATE(Real)                                                                   \
    template void rnn_forward<Real>(const RnnDims&, const Real*, const Real*, const Real*,         \
                                    const Real*, const Real*, const Real*, const Real*, Real, Real*, \
                                    Real*, Real*);                                                 \
    template Real masked_mse<Real>(const RnnDims&, const Real*, const Real*, const Real*, Real*);  \
    template void rnn_backward<Real>(const RnnDims&, const Real*, const Real*, const Real*,        \
                                     const Real*, Real*, const Real*, const Real*, Real, Real*,     \
                                     Real*, Real*, Real*, Real*, Real*);
EIRNN_INSTANTIATE(float)
EIRNN_INSTANTIATE(double)
#undef EIRNN_INSTANTIATE

}  // namespace eirnn::cpu
