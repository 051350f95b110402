// Initial weights (docs/MODEL.md §3), signs and masks (docs/MODEL.md §2), generated on the host
// from each network's seed with Philox so that every backend starts from bit-identical numbers.
#include <lapacke.h>

#include <algorithm>
#include <cmath>

#include "host/core/error.hpp"
#include "host/core/model.hpp"
#include "kernels/cpu/blas.hpp"
#include "kernels/rng.hpp"

namespace eirnn {

namespace {
constexpr std::size_t kAlign = 32;  // floats: every tensor starts on a 128-byte boundary
std::size_t align_up(std::size_t n) {
    return (n + kAlign - 1) / kAlign * kAlign;
}

/// Haar-distributed orthogonal N x N (row-major) from a standard normal matrix: QR, Q diag(sign
/// R_ii).
std::vector<double> haar_orthogonal(int N, const Philox& rng) {
    std::vector<double> a(static_cast<std::size_t>(N) * N);
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = rng.normal(i);
    std::vector<double> tau(N);
    if (LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, N, N, a.data(), N, tau.data()) != 0)
        throw Error("orthogonal init: dgeqrf failed");
    std::vector<double> rdiag(N);
    for (int i = 0; i < N; ++i) rdiag[i] = a[static_cast<std::size_t>(i) * N + i];
    if (LAPACKE_dorgqr(LAPACK_ROW_MAJOR, N, N, N, a.data(), N, tau.data()) != 0)
        throw Error("orthogonal init: dorgqr failed");
    for (int i = 0; i < N; ++i)
        for (int j = 0; j < N; ++j)
            if (rdiag[j] < 0)
                a[static_cast<std::size_t>(i) * N + j] = -a[static_cast<std::size_t>(i) * N + j];
    return a;
}

void glorot(float* w, std::size_t n, int fan_in, int fan_out, const Philox& rng) {
    double limit = std::sqrt(6.0 / (fan_in + fan_out));
    for (std::size_t i = 0; i < n; ++i)
        w[i] = static_cast<float>((2.0 * rng.uniform(i) - 1.0) * limit);
}
}  // namespace

ParamLayout ParamLayout::make(int N, int I, int O) {
    ParamLayout L;
    L.N = N;
    L.I = I;
    L.O = O;
    std::size_t n = static_cast<std::size_t>(N);
    L.w_rec = 0;
    L.w_in = align_up(L.w_rec + n * n);
    L.b = align_up(L.w_in + n * I);
    L.w_out = align_up(L.b + n);
    L.b_out = align_up(L.w_out + static_cast<std::size_t>(O) * n);
    L.total = align_up(L.b_out + O);
    return L;
}

std::size_t ParamLayout::offset(int t) const {
    const std::size_t o[kTensors] = {w_rec, w_in, b, w_out, b_out};
    return o[t];
}

std::size_t ParamLayout::size(int t) const {
    std::size_t n = static_cast<std::size_t>(N);
    const std::size_t s[kTensors] = {n * n, n * I, n, static_cast<std::size_t>(O) * n,
                                     static_cast<std::size_t>(O)};
    return s[t];
}

std::vector<float> make_signs(const ModelConfig& m) {
    int ne = excitatory_units(m);
    std::vector<float> s(m.units, -1.0f);
    std::fill(s.begin(), s.begin() + ne, 1.0f);
    return s;
}

std::vector<float> make_mask(const ModelConfig& m, std::uint64_t seed) {
    if (m.p_connect >= 1.0 && m.autapses) return {};
    int N = m.units;
    std::vector<float> mask(static_cast<std::size_t>(N) * N, 1.0f);
    Philox rng{seed, static_cast<std::uint64_t>(RngStream::kMask)};
    for (int i = 0; i < N; ++i)
        for (int j = 0; j < N; ++j) {
            std::size_t ij = static_cast<std::size_t>(i) * N + j;
            bool on = m.p_connect >= 1.0 || rng.uniform(ij) < m.p_connect;
            if (i == j && !m.autapses) on = false;
            mask[ij] = on ? 1.0f : 0.0f;
        }
    return mask;
}

template <class Real>
void project_dale(Real* w, int N, const float* sign, DaleAxis axis, const float* mask) {
    for (int i = 0; i < N; ++i)
        for (int j = 0; j < N; ++j) {
            std::size_t ij = static_cast<std::size_t>(i) * N + j;
            float s = axis == DaleAxis::Outgoing ? sign[j] : sign[i];
            if (s * w[ij] < 0) w[ij] = 0;
            if (mask && mask[ij] == 0.0f) w[ij] = 0;
        }
}

template <class Real>
void reparam_effective(const Real* v, Real* w, int N, const float* sign, DaleAxis axis,
                       const float* mask) {
    for (int i = 0; i < N; ++i)
        for (int j = 0; j < N; ++j) {
            std::size_t ij = static_cast<std::size_t>(i) * N + j;
            Real s = axis == DaleAxis::Outgoing ? sign[j] : sign[i];
            w[ij] = std::abs(v[ij]) * s;
            if (mask && mask[ij] == 0.0f) w[ij] = 0;
        }
}

template void project_dale<float>(float*, int, const float*, DaleAxis, const float*);
template void project_dale<double>(double*, int, const float*, DaleAxis, const float*);
template void reparam_effective<float>(const float*, float*, int, const float*, DaleAxis,
                                       const float*);
template void reparam_effective<double>(const double*, double*, int, const float*, DaleAxis,
                                        const float*);

void init_network(const ModelConfig& m, const ParamLayout& L, std::uint64_t seed,
                  std::span<const float> sign, const float* mask, float* p) {
    const int N = L.N;
    std::fill(p, p + L.total, 0.0f);
    float* w = p + L.w_rec;
    Philox rec{seed, static_cast<std::uint64_t>(RngStream::kWRec)};
    if (m.init == Init::Orthogonal) {
        auto q = haar_orthogonal(N, rec);
        for (std::size_t i = 0; i < q.size(); ++i) w[i] = static_cast<float>(m.gain * q[i]);
    } else {
        double sd = m.gain / std::sqrt(static_cast<double>(N));
        for (int i = 0; i < N; ++i)
            for (int j = 0; j < N; ++j) {
                std::size_t ij = static_cast<std::size_t>(i) * N + j;
                float s = m.dale_axis == DaleAxis::Outgoing ? sign[j] : sign[i];
                w[ij] = static_cast<float>(s * m.mu + sd * rec.normal(ij));
            }
    }
    if (mask)
        for (std::size_t i = 0; i < static_cast<std::size_t>(N) * N; ++i) w[i] *= mask[i];
    if (m.project_init && m.dale == DaleMode::Project)
        project_dale(w, N, sign.data(), m.dale_axis, mask);
    glorot(p + L.w_in, L.size(1), L.I, N,
           Philox{seed, static_cast<std::uint64_t>(RngStream::kWIn)});
    glorot(p + L.w_out, L.size(3), N, L.O,
           Philox{seed, static_cast<std::uint64_t>(RngStream::kWOut)});
    if (m.project_init && m.nonneg_input)
        for (std::size_t i = 0; i < L.size(1); ++i) p[L.w_in + i] = std::max(p[L.w_in + i], 0.0f);
}

GroupParams init_group(const GroupConfig& c, int I, int O) {
    GroupParams g;
    g.layout = ParamLayout::make(c.model.units, I, O);
    g.K = c.networks;
    g.sign = make_signs(c.model);
    g.params.resize(static_cast<std::size_t>(g.K) * g.layout.total);
    g.seeds.resize(g.K);
    const std::size_t NN = static_cast<std::size_t>(c.model.units) * c.model.units;
    bool has_mask = c.model.p_connect < 1.0 || !c.model.autapses;
    if (has_mask) g.mask.resize(static_cast<std::size_t>(g.K) * NN);
    // The networks are initialised in parallel: their LAPACK calls (orthogonal init) take one BLAS
    // thread each, or BLAS's own threads would compete with them and spin on after the loop.
    const cpu::SingleThreadedBlas blas_guard;
#pragma omp parallel for schedule(dynamic)
    for (int k = 0; k < g.K; ++k) {
        std::uint64_t seed = c.seed + static_cast<std::uint64_t>(k);
        g.seeds[k] = seed;
        const float* mk = nullptr;
        if (has_mask) {
            auto m = make_mask(c.model, seed);
            std::copy(m.begin(), m.end(), g.mask.begin() + k * NN);
            mk = g.mask.data() + k * NN;
        }
        init_network(c.model, g.layout, seed, g.sign, mk, g.params.data() + k * g.layout.total);
    }
    return g;
}

void effective_w_rec(const ModelConfig& m, const ParamLayout& L, const float* p, const float* sign,
                     const float* mask, float* w) {
    const std::size_t NN = static_cast<std::size_t>(L.N) * L.N;
    if (m.dale == DaleMode::Reparam)
        reparam_effective(p + L.w_rec, w, L.N, sign, m.dale_axis, mask);
    else
        for (std::size_t ij = 0; ij < NN; ++ij)
            w[ij] = mask && mask[ij] == 0.0f ? 0.0f : p[L.w_rec + ij];
}

}  // namespace eirnn
