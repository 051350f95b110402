// CPU forward / loss / BPTT backward of one network on one batch (see rnn.hpp). FLOPs per
// trial-step: 2N^2 forward (one GEMM per step), 2N^2 for the delta recurrence (one GEMM per step)
// and 2N^2 for the weight gradient (products of depth B per step, summed a few steps at a time
// while delta_t is in cache). The products go through gemm_strided (blas.hpp): hand-written
// kernels for float, cblas_dgemm for double.
#include "kernels/cpu/rnn.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "kernels/cpu/blas.hpp"

namespace eirnn::cpu {

namespace {

/// The per-step product with the recurrent matrix, c (B,cols) (+)= a (B,K) m (K,cols), m row-major
/// and c with leading dimension ldc. For float, m is packed once per sweep into the panels the
/// kernels read (gemm_small.hpp); the storage is kept per thread, as the backend's threads train
/// networks one after another.
template <class Real>
class StepProduct {
public:
    void set(int K, int cols, const Real* m) { m_ = m, k_ = K, cols_ = cols; }
    void apply(int B, const Real* a, Real* c, long ldc) const {
        gemm_strided(B, cols_, k_, a, k_, 1, m_, cols_, true, c, ldc);
    }

private:
    const Real* m_ = nullptr;
    int k_ = 0, cols_ = 0;
};

template <>
class StepProduct<float> {
public:
    void set(int K, int cols, const float* m) { pack_b(K, cols, m, cols, packed_); }
    void apply(int B, const float* a, float* c, long ldc) const {
        gemm_small(B, a, packed_.K, 1, packed_, true, c, ldc);
    }

private:
    PackedB packed_;
};

/// grad_w_rec (N,N) += sum over j = 0..steps-1 (in that order) of delta_{t_hi-j}^T h_{t_hi-j},
/// each (B,N), the blocks of step t_hi at da_hi and h_hi and those of the steps before it B*N
/// floats lower: products of depth B. Float goes to gemm_small_segments (the same sums, in the
/// same order; with AVX2 one product of depth steps*B, grad_w_rec and the packing touched once).
template <class Real>
void weight_gradient(int N, int B, int steps, const Real* da_hi, const Real* h_hi,
                     Real* grad_w_rec) {
    const long BN = static_cast<long>(B) * N;
    for (int j = 0; j < steps; ++j)
        gemm_strided(N, N, B, da_hi - j * BN, 1, N, h_hi - j * BN, N, true, grad_w_rec, N);
}

template <>
void weight_gradient<float>(int N, int B, int steps, const float* da_hi, const float* h_hi,
                            float* grad_w_rec) {
    const long BN = static_cast<long>(B) * N;
    gemm_small_segments(N, N, B, steps, da_hi, 1, N, -BN, h_hi, N, -BN, true, grad_w_rec, N);
}

/// grad_w_out (O,N) += sum over j = 0..steps-1 (in that order) of gy_{t_hi-j}^T h_{t_hi+1-j}, gy
/// blocks (B,O) and h blocks (B,N), those of step t_hi at gy_hi and h_hi: the output layer's
/// gradient a few steps at a time while their states are in cache from the element-wise loop (as
/// one product over all T·B rows at the end, its pass over the states in memory took about 3% of
/// the pass at N = 100).
template <class Real>
void output_gradient(int O, int N, int B, int steps, const Real* gy_hi, const Real* h_hi,
                     Real* grad_w_out) {
    const long BO = static_cast<long>(B) * O, BN = static_cast<long>(B) * N;
    for (int j = 0; j < steps; ++j)
        gemm_strided(O, N, B, gy_hi - j * BO, 1, O, h_hi - j * BN, N, true, grad_w_out, N);
}

template <>
void output_gradient<float>(int O, int N, int B, int steps, const float* gy_hi, const float* h_hi,
                            float* grad_w_out) {
    const long BO = static_cast<long>(B) * O, BN = static_cast<long>(B) * N;
    gemm_small_segments(O, N, B, steps, gy_hi, 1, O, -BO, h_hi, N, -BN, true, grad_w_out, N);
}

/// Steps per weight-gradient product: a depth of about 256 (B = 64: 4 steps).
int weight_gradient_steps(int B) {
    return std::max(1, 256 / std::max(B, 1));
}

}  // namespace

// The element-wise loops of the forward and backward (inputs, activation updates, the small
// gradients) vectorise as wide as the CPU allows: their bodies are inlined into copies built for
// AVX-512 and for AVX2, and the float entry points pick the one gemm_small runs. This file is
// compiled with -ffp-contract=off (CMakeLists.txt) and the AVX2 copy without FMA, so every element
// gets the same operations, rounded the same way, in every copy and in the baseline build.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define EIRNN_RNN_AVX2 1
#define EIRNN_BODY inline __attribute__((always_inline))
#else
#define EIRNN_BODY inline
#endif

/// Asks for the cache lines of n values from p on (for writing: their lines come exclusive).
template <class Real>
EIRNN_BODY void prefetch_row(const Real* p, int n, bool write) {
    const char* c = reinterpret_cast<const char*>(p);
    const long bytes = static_cast<long>(n) * static_cast<long>(sizeof(Real));
    for (long off = 0; off < bytes; off += 64) {
        if (write)
            __builtin_prefetch(c + off, 1, 3);
        else
            __builtin_prefetch(c + off, 0, 3);
    }
}

/// A forward row's start, s = b + W_in x (N units), each unit's terms added in the order
/// m = 0..I-1; w_in_t (I,N). With I known at compile time (IC > 0) in one pass over the row, the
/// units in vector lanes; otherwise a pass per input.
template <int IC, class Real>
EIRNN_BODY void input_row(int N, int I, const Real* b, const Real* w_in_t, const Real* xb,
                          Real* sb) {
    if constexpr (IC > 0) {
#pragma omp simd
        for (int i = 0; i < N; ++i) {
            Real v = b[i];
            for (int m = 0; m < IC; ++m) v += w_in_t[static_cast<long>(m) * N + i] * xb[m];
            sb[i] = v;
        }
    } else {
        std::copy(b, b + N, sb);
        for (int m = 0; m < I; ++m) {
            const Real xm = xb[m];
            const Real* wm = w_in_t + static_cast<long>(m) * N;
            for (int i = 0; i < N; ++i) sb[i] += wm[i] * xm;
        }
    }
}

/// A backward row (N units; the step's rows of dh, delta, tanh(a), gy, x, extra): g = dh +
/// W_out^T gy (+ extra), summed in the order o = 0..O-1, then extra; delta = g alpha (1 - tanh^2)
/// to da; grad_b += delta; dh = keep g; grad_w_in^T (I,N) += x delta, inputs m = 0..I-1. With I,
/// O and whether there is an extra term known at compile time (IC > 0) in one pass over the row,
/// the units in vector lanes; otherwise a pass per term. Each element's operations are the same.
template <int IC, int OC, bool EX, class Real>
EIRNN_BODY void backward_row(int N, int I, int O, const Real* w_out, const Real* gyb,
                             const Real* xb, const Real* exb, const Real* tb, Real alpha, Real keep,
                             Real* dhb, Real* dab, Real* grad_b, Real* grad_w_in_t) {
    if constexpr (IC > 0) {
#pragma omp simd
        for (int i = 0; i < N; ++i) {
            Real g = dhb[i];
            for (int o = 0; o < OC; ++o) g += gyb[o] * w_out[static_cast<long>(o) * N + i];
            if constexpr (EX) g += exb[i];
            const Real tv = tb[i];
            const Real delta = g * alpha * (Real(1) - tv * tv);
            dab[i] = delta;
            grad_b[i] += delta;
            dhb[i] = keep * g;
            for (int m = 0; m < IC; ++m) grad_w_in_t[static_cast<long>(m) * N + i] += delta * xb[m];
        }
    } else {
        for (int o = 0; o < O; ++o) {
            const Real go = gyb[o];
            const Real* wo = w_out + static_cast<long>(o) * N;
            for (int i = 0; i < N; ++i) dhb[i] += go * wo[i];
        }
        if (exb)
            for (int i = 0; i < N; ++i) dhb[i] += exb[i];
        for (int i = 0; i < N; ++i) {
            const Real g = dhb[i];
            const Real tv = tb[i];
            const Real delta = g * alpha * (Real(1) - tv * tv);
            dab[i] = delta;
            grad_b[i] += delta;
            dhb[i] = keep * g;
        }
        for (int m = 0; m < I; ++m) {
            const Real xm = xb[m];
            Real* gm = grad_w_in_t + static_cast<long>(m) * N;
            for (int i = 0; i < N; ++i) gm[i] += dab[i] * xm;
        }
    }
}

template <class Real>
EIRNN_BODY void forward_body(const RnnDims& d, const Real* w_rec, const Real* w_in, const Real* b,
                             const Real* w_out, const Real* b_out, const Real* x, const Real* noise,
                             Real alpha, Real* h, Real* th, Real* y) {
    const int B = d.B, N = d.N, I = d.I, O = d.O, T = d.T;
    const long BN = static_cast<long>(B) * N;
    std::fill(h, h + BN, Real(0));
    const Real keep = Real(1) - alpha;
    // Plain steps (h_{t+1} = tanh(a_t)) build a_t in h_{t+1} itself and leave th alone.
    const bool plain = tanh_in_states(alpha, noise);
    // The weights transposed once, so that every step reads them row-major (and the loops over
    // units vectorise): W_rec^T (N,N) [j][i] = j -> i in m_step (below), w_in_t (I,N), w_out_t
    // (N,O).
    std::vector<Real> w_in_t(static_cast<std::size_t>(I) * N);
    std::vector<Real> w_out_t(static_cast<std::size_t>(N) * O);
    transpose(N, I, w_in, I, w_in_t.data(), N);
    transpose(O, N, w_out, N, w_out_t.data(), O);
    // Float: the output layer rides on the recurrent product. Step t multiplies h_t by
    // [W_rec^T | W_out^T] (N, N+O), so the same pass over h_t gives a_t and y_{t-1} (at N = 100 in
    // the lanes the last vector of a row leaves free; as its own product, about 12% of the
    // forward). The sums land in `wide` (B rows of N+O, started from b + W_in x_t and b_out) and
    // are then copied to a_t and y_{t-1}: each element is summed as by two products, to the bit.
    constexpr bool fused = std::is_same_v<Real, float>;
    const int cols = fused ? N + O : N;
    const long ldw = fused ? (cols + 15) / 16 * 16 : N;  // rows of `wide` on 64-byte lines
    // The step's matrix (N, cols): W_rec^T, and W_out^T beside it when fused.
    static thread_local std::vector<Real> m_step, wide;
    m_step.resize(static_cast<std::size_t>(N) * cols);
    transpose(N, N, w_rec, N, m_step.data(), cols);
    if constexpr (fused) {
        transpose(O, N, w_out, N, m_step.data() + N, cols);
        wide.resize(static_cast<std::size_t>(B) * ldw + 16);
    }
    // `wide` from a 64-byte boundary on, so that its rows' vectors do not straddle cache lines.
    Real* const wide0 =
        fused ? wide.data() + (-(reinterpret_cast<std::uintptr_t>(wide.data()) / sizeof(Real)) &
                               (64 / sizeof(Real) - 1))
              : nullptr;
    static thread_local StepProduct<Real> step;
    step.set(N, cols, m_step.data());
    for (int t = 0; t < T; ++t) {
        Real* hn = h + (t + 1) * BN;
        Real* a = plain ? hn : th + t * BN;
        Real* s = fused ? wide0 : a;  // where the step's sums are built
        const Real* xt = x + static_cast<long>(t) * B * I;
        // The blocks the next step writes (h_{t+2}, and th_{t+1} unless plain) are requested for
        // writing a row per row of this step, as the states never were in cache.
        Real* h_next = t + 2 <= T ? h + (t + 2) * BN : nullptr;
        Real* th_next = !plain && t + 1 < T ? th + (t + 1) * BN : nullptr;
        for (int bb = 0; bb < B; ++bb) {
            Real* sb = s + bb * ldw;
            const Real* xb = xt + static_cast<long>(bb) * I;
            if (h_next) prefetch_row(h_next + static_cast<long>(bb) * N, N, true);
            if (th_next) prefetch_row(th_next + static_cast<long>(bb) * N, N, true);
            // a = b + W_in x (the tasks have 1, 2 or 4 inputs).
            switch (I) {
                case 1:
                    input_row<1>(N, I, b, w_in_t.data(), xb, sb);
                    break;
                case 2:
                    input_row<2>(N, I, b, w_in_t.data(), xb, sb);
                    break;
                case 4:
                    input_row<4>(N, I, b, w_in_t.data(), xb, sb);
                    break;
                default:
                    input_row<0>(N, I, b, w_in_t.data(), xb, sb);
            }
            if (fused) std::copy(b_out, b_out + O, sb + N);
        }
        const Real* hp = h + t * BN;
        if (t > 0) step.apply(B, hp, s, ldw);
        if (fused) {
            Real* yp = t > 0 ? y + static_cast<long>(t - 1) * B * O : nullptr;
            // Loops, not std::copy: memmove called per row took about 3% of the pass at N = 100,
            // the loops about 1.6%.
            for (int bb = 0; bb < B; ++bb) {
                const Real* sb = s + bb * ldw;
                Real* ab = a + static_cast<long>(bb) * N;
#pragma omp simd
                for (int i = 0; i < N; ++i) ab[i] = sb[i];
                if (yp)
                    for (int o = 0; o < O; ++o) yp[static_cast<long>(bb) * O + o] = sb[N + o];
            }
        }
        tanh_inplace(a, BN);
        if (!plain) {
            const Real* nt = noise ? noise + t * BN : nullptr;
            for (long r = 0; r < BN; ++r)
                hn[r] = keep * hp[r] + alpha * a[r] + (nt ? nt[r] : Real(0));
        }
        // Unfused, y_t = W_out h_t + b_out while h_t is still in cache.
        if (!fused || t == T - 1) {
            Real* yt = y + static_cast<long>(t) * B * O;
            for (int r = 0; r < B; ++r)
                for (int o = 0; o < O; ++o) yt[r * O + o] = b_out[o];
            gemm_strided(B, O, N, hn, N, 1, w_out_t.data(), O, true, yt, O);
        }
    }
}

#if defined(EIRNN_RNN_AVX2)
static __attribute__((target("avx2"))) void forward_avx2(const RnnDims& d, const float* w_rec,
                                                         const float* w_in, const float* b,
                                                         const float* w_out, const float* b_out,
                                                         const float* x, const float* noise,
                                                         float alpha, float* h, float* th,
                                                         float* y) {
    forward_body(d, w_rec, w_in, b, w_out, b_out, x, noise, alpha, h, th, y);
}
static __attribute__((target("avx512f,avx512vl"))) void forward_avx512(
    const RnnDims& d, const float* w_rec, const float* w_in, const float* b, const float* w_out,
    const float* b_out, const float* x, const float* noise, float alpha, float* h, float* th,
    float* y) {
    forward_body(d, w_rec, w_in, b, w_out, b_out, x, noise, alpha, h, th, y);
}
#endif

template <class Real>
void rnn_forward(const RnnDims& d, const Real* w_rec, const Real* w_in, const Real* b,
                 const Real* w_out, const Real* b_out, const Real* x, const Real* noise, Real alpha,
                 Real* h, Real* th, Real* y) {
#if defined(EIRNN_RNN_AVX2)
    if constexpr (std::is_same_v<Real, float>) {
        if (gemm_small_isa() == GemmIsa::Avx512)
            return forward_avx512(d, w_rec, w_in, b, w_out, b_out, x, noise, alpha, h, th, y);
        if (gemm_small_isa() != GemmIsa::Portable)
            return forward_avx2(d, w_rec, w_in, b, w_out, b_out, x, noise, alpha, h, th, y);
    }
#endif
    forward_body(d, w_rec, w_in, b, w_out, b_out, x, noise, alpha, h, th, y);
}

template <class Real>
Real masked_mse(const RnnDims& d, const Real* y, const Real* target, const Real* mask,
                Real* grad_y) {
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
EIRNN_BODY void backward_body(const RnnDims& d, const Real* w_rec, const Real* w_out, const Real* x,
                              const Real* h, Real* th, bool tanh_in_h, const Real* grad_y,
                              const Real* grad_h_extra, Real alpha, Real* dh, Real* grad_w_rec,
                              Real* grad_w_in, Real* grad_b, Real* grad_w_out, Real* grad_b_out) {
    if (!th && !tanh_in_h)
        throw std::invalid_argument("rnn_backward: th is needed unless tanh_in_h");
    const int B = d.B, N = d.N, I = d.I, O = d.O, T = d.T;
    const long BN = static_cast<long>(B) * N;
    const Real keep = Real(1) - alpha;
    std::fill(dh, dh + BN, Real(0));
    // The gradients of W_rec, W_in, b and W_out are summed while delta_t and the states are in
    // cache, over t = T-1..0 and, within a step, b = 0..B-1: grad_w_rec += delta_t^T h_t and
    // grad_w_out += gy_t^T h_{t+1} (products of depth B, a few steps per call; h_0 = 0 adds
    // nothing), grad_w_in^T (I,N) and grad_b in the element-wise loop.
    std::fill(grad_w_rec, grad_w_rec + static_cast<long>(N) * N, Real(0));
    std::fill(grad_w_out, grad_w_out + static_cast<long>(O) * N, Real(0));
    std::fill(grad_b, grad_b + N, Real(0));
    static thread_local std::vector<Real> grad_w_in_t;
    grad_w_in_t.assign(static_cast<std::size_t>(I) * N, Real(0));
    static thread_local StepProduct<Real> step;
    step.set(N, N, w_rec);
    // The weight gradient of steps t_hi down to t waits until `group` steps are there (or t = 1).
    const int group = weight_gradient_steps(B);
    // Without th the deltas of a group live in `group` blocks that stay in cache, step t_hi in the
    // last one and each step before it one block lower; th (T blocks) would be written out to
    // memory and read back for nothing.
    static thread_local std::vector<Real> ring;
    if (!th) ring.resize(static_cast<std::size_t>(group) * BN);
    auto delta_block = [&](int t, int hi) {
        return th ? th + t * BN : ring.data() + (group - 1 - (hi - t)) * BN;
    };
    int t_hi = T - 1, o_hi = T - 1;  // the newest steps not in grad_w_rec, grad_w_out yet
    for (int t = T - 1; t >= 0; --t) {
        Real* da = delta_block(t, t_hi);
        const Real* tanh_a = tanh_in_h ? h + (t + 1) * BN : da;
        const Real* gy = grad_y + static_cast<long>(t) * B * O;
        const Real* xt = x + static_cast<long>(t) * B * I;
        const Real* ex = grad_h_extra ? grad_h_extra + t * BN : nullptr;
        // The sweep walks h and th backwards, a (B,N) block per step, which the hardware
        // prefetchers do not follow: the blocks of step t-1 (h_{t-1} for its weight gradient,
        // th_{t-1}, written there) are requested a row per row of this step.
        const Real* h_next = t > 0 ? h + (t - 1) * BN : nullptr;
        const Real* th_next = t > 0 && th ? th + (t - 1) * BN : nullptr;
        for (int bb = 0; bb < B; ++bb) {
            if (h_next) prefetch_row(h_next + static_cast<long>(bb) * N, N, false);
            if (th_next) prefetch_row(th_next + static_cast<long>(bb) * N, N, true);
            Real* dab = da + static_cast<long>(bb) * N;
            Real* dhb = dh + static_cast<long>(bb) * N;
            const Real* tb = tanh_a + static_cast<long>(bb) * N;
            const Real* gyb = gy + static_cast<long>(bb) * O;
            const Real* xb = xt + static_cast<long>(bb) * I;
            const Real* exb = ex ? ex + static_cast<long>(bb) * N : nullptr;
            // One output and 1, 2 or 4 inputs (the tasks) in one pass over the row.
            auto row = [&]<int IC, int OC, bool EX>() {
                backward_row<IC, OC, EX>(N, I, O, w_out, gyb, xb, exb, tb, alpha, keep, dhb, dab,
                                         grad_b, grad_w_in_t.data());
            };
            const int shape = O == 1 && (I == 1 || I == 2 || I == 4) ? I : 0;
            auto rows = [&]<bool EX>() {
                switch (shape) {
                    case 1:
                        row.template operator()<1, 1, EX>();
                        break;
                    case 2:
                        row.template operator()<2, 1, EX>();
                        break;
                    case 4:
                        row.template operator()<4, 1, EX>();
                        break;
                    default:
                        row.template operator()<0, 0, EX>();
                }
            };
            if (exb)
                rows.template operator()<true>();
            else
                rows.template operator()<false>();
        }
        if (t > 0) {
            step.apply(B, da, dh, N);
            if (t_hi - t + 1 == group || t == 1) {
                weight_gradient(N, B, t_hi - t + 1, delta_block(t_hi, t_hi), h + t_hi * BN,
                                grad_w_rec);
                t_hi = t - 1;
            }
        }
        // grad_w_out += gy_t^T h_{t+1}, a group of steps at a time (down to t = 0).
        if (o_hi - t + 1 == group || t == 0) {
            output_gradient(O, N, B, o_hi - t + 1, grad_y + static_cast<long>(o_hi) * B * O,
                            h + (o_hi + 1) * BN, grad_w_out);
            o_hi = t - 1;
        }
    }
    transpose(I, N, grad_w_in_t.data(), N, grad_w_in, I);
    const int TB = T * B;
    std::fill(grad_b_out, grad_b_out + O, Real(0));
    for (long r = 0; r < static_cast<long>(TB); ++r)
        for (int o = 0; o < O; ++o) grad_b_out[o] += grad_y[r * O + o];
}

#if defined(EIRNN_RNN_AVX2)
static __attribute__((target("avx2"))) void backward_avx2(
    const RnnDims& d, const float* w_rec, const float* w_out, const float* x, const float* h,
    float* th, bool tanh_in_h, const float* grad_y, const float* grad_h_extra, float alpha,
    float* dh, float* grad_w_rec, float* grad_w_in, float* grad_b, float* grad_w_out,
    float* grad_b_out) {
    backward_body(d, w_rec, w_out, x, h, th, tanh_in_h, grad_y, grad_h_extra, alpha, dh, grad_w_rec,
                  grad_w_in, grad_b, grad_w_out, grad_b_out);
}
static __attribute__((target("avx512f,avx512vl"))) void backward_avx512(
    const RnnDims& d, const float* w_rec, const float* w_out, const float* x, const float* h,
    float* th, bool tanh_in_h, const float* grad_y, const float* grad_h_extra, float alpha,
    float* dh, float* grad_w_rec, float* grad_w_in, float* grad_b, float* grad_w_out,
    float* grad_b_out) {
    backward_body(d, w_rec, w_out, x, h, th, tanh_in_h, grad_y, grad_h_extra, alpha, dh, grad_w_rec,
                  grad_w_in, grad_b, grad_w_out, grad_b_out);
}
#endif

template <class Real>
void rnn_backward(const RnnDims& d, const Real* w_rec, const Real* w_out, const Real* x,
                  const Real* h, Real* th, bool tanh_in_h, const Real* grad_y,
                  const Real* grad_h_extra, Real alpha, Real* dh, Real* grad_w_rec, Real* grad_w_in,
                  Real* grad_b, Real* grad_w_out, Real* grad_b_out) {
#if defined(EIRNN_RNN_AVX2)
    if constexpr (std::is_same_v<Real, float>) {
        if (gemm_small_isa() == GemmIsa::Avx512)
            return backward_avx512(d, w_rec, w_out, x, h, th, tanh_in_h, grad_y, grad_h_extra,
                                   alpha, dh, grad_w_rec, grad_w_in, grad_b, grad_w_out,
                                   grad_b_out);
        if (gemm_small_isa() != GemmIsa::Portable)
            return backward_avx2(d, w_rec, w_out, x, h, th, tanh_in_h, grad_y, grad_h_extra, alpha,
                                 dh, grad_w_rec, grad_w_in, grad_b, grad_w_out, grad_b_out);
    }
#endif
    backward_body(d, w_rec, w_out, x, h, th, tanh_in_h, grad_y, grad_h_extra, alpha, dh, grad_w_rec,
                  grad_w_in, grad_b, grad_w_out, grad_b_out);
}

void tanh_inplace(double* v, long n) {
    for (long i = 0; i < n; ++i) v[i] = std::tanh(v[i]);
}

#define EIRNN_INSTANTIATE(Real)                                                                   \
    template void rnn_forward<Real>(const RnnDims&, const Real*, const Real*, const Real*,        \
                                    const Real*, const Real*, const Real*, const Real*, Real,     \
                                    Real*, Real*, Real*);                                         \
    template Real masked_mse<Real>(const RnnDims&, const Real*, const Real*, const Real*, Real*); \
    template void rnn_backward<Real>(const RnnDims&, const Real*, const Real*, const Real*,       \
                                     const Real*, Real*, bool, const Real*, const Real*, Real,    \
                                     Real*, Real*, Real*, Real*, Real*, Real*);
EIRNN_INSTANTIATE(float)
EIRNN_INSTANTIATE(double)
#undef EIRNN_INSTANTIATE

}  // namespace eirnn::cpu
