// What one CTA of the fused recurrent kernels (kernels/cuda/rnn.cu) does, written as
// __host__ __device__ code over explicit thread ids, so that the CPU tests run this very index math
// by emulating the CTAs of a cluster phase by phase (tests/test_cuda_plan.cpp). No CUDA headers.
//
// Geometry. A network's batch of B trials is cut into S slices of Bs trials (Bs % 8 == 0) and its N
// units into C row slices of R rows (R % 4 == 0). CTA (slot, s, rank) computes rows
// [rank R, rank R + R) of trials [s Bs, s Bs + Bs). The C CTAs of one slice form a thread-block
// cluster: each keeps its part of the matrix, M (N, R), and a full copy of the state (N, Bs),
// double-buffered, on chip, and pushes the rows it computes into every peer's copy (distributed
// shared memory) before the cluster barrier that ends a step. Off chip (the fallback for large N),
// M and one shared state double buffer per slice live in global scratch instead.
// Thread tid < tiles owns a 4 x 8 tile: rows r0 = 4 (tid / BT) .. r0 + 3 of the CTA, trials
// lb0 = 8 (tid % BT) .. lb0 + 7 of the slice, BT = Bs / 8.
//   forward  (step t = 0..T-1):  M[k][r] = W[rank R + r][k],  a = M^T h_t + W_in x_t + b
//   backward (step t = T-1..0):  M[k][r] = W[k][rank R + r],  W^T delta_{t+1} = M^T delta_{t+1}
// The product over k runs in the same order in every geometry, so results do not depend on C, S or
// on-chip versus off-chip (the tests check this bit for bit).
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "kernels/rng.hpp"

// Loops over a tile's rows and trials must unroll so that the tile stays in registers.
#if defined(__CUDA_ARCH__)
#define EIRNN_UNROLL _Pragma("unroll")
#define EIRNN_UNROLL4 _Pragma("unroll 4")
#else
#define EIRNN_UNROLL
#define EIRNN_UNROLL4
#endif

namespace eirnn::cuda {

constexpr int kTileRows = 4;      // rows per thread tile
constexpr int kTileTrials = 8;    // trials per thread tile
constexpr int kMaxThreads = 256;  // threads per CTA of the recurrent kernels (launch bound)
constexpr int kMaxCluster = 8;    // portable cluster size

EIRNN_HD constexpr int ceil_div(int a, int b) {
    return (a + b - 1) / b;
}
EIRNN_HD constexpr int round_up(int a, int b) {
    return ceil_div(a, b) * b;
}

/// Shape of one launch of the recurrent kernels. Offsets and strides count floats.
struct RnnGeometry {
    int N = 0, I = 0, O = 0, T = 0, B = 0;  // B: trials of this batch
    int C = 1;                              // CTAs per cluster (row slices)
    int S = 1;                              // batch slices
    int R = 0;                              // rows per CTA, multiple of 4, C R >= N
    int Bs = 0;                             // trials per slice, multiple of 8, S Bs >= B
    int threads = 0;                        // per CTA: tiles rounded up to a warp
    int ms_stride = 0;                      // row stride of M (N, R)
    int hs_stride = 0;                      // row stride of a state buffer (N, Bs + 4)
    bool onchip = true;                     // M and the state buffers in shared memory
    int off_m = 0, off_h = 0, off_stage = 0, off_win = 0, off_bias = 0, off_wout = 0;
    int smem_floats = 0;  // shared memory of one CTA

    EIRNN_HD int row_tiles() const { return R / kTileRows; }
    EIRNN_HD int trial_tiles() const { return Bs / kTileTrials; }
    EIRNN_HD int tiles() const { return row_tiles() * trial_tiles(); }
    EIRNN_HD int ctas_per_network() const { return C * S; }
    /// Floats of global scratch per launched network (off chip only): M per CTA, states per slice.
    std::size_t m_scratch_floats() const {
        return onchip ? 0 : static_cast<std::size_t>(S) * C * N * ms_stride;
    }
    std::size_t h_scratch_floats() const {
        return onchip ? 0 : static_cast<std::size_t>(S) * 2 * N * hs_stride;
    }
    std::size_t smem_bytes() const { return static_cast<std::size_t>(smem_floats) * sizeof(float); }
};

/// Geometry for C row slices and at most S batch slices (S shrinks so that no slice is empty).
inline RnnGeometry make_rnn_geometry(int N, int I, int O, int T, int B, int C, int S, bool onchip) {
    RnnGeometry g;
    g.N = N;
    g.I = I;
    g.O = O;
    g.T = T;
    g.B = B;
    g.C = C;
    g.onchip = onchip;
    g.R = round_up(ceil_div(N, C), kTileRows);
    const int smax = ceil_div(B, kTileTrials);
    S = S < 1 ? 1 : (S > smax ? smax : S);
    g.Bs = round_up(ceil_div(B, S), kTileTrials);
    g.S = ceil_div(B, g.Bs);
    g.threads = round_up(g.tiles(), 32);
    g.ms_stride = g.R;
    g.hs_stride = g.Bs + 4;  // shifts banks between rows for the tile stores
    int off = 0;
    auto take = [&off](int n) {
        int o = off;
        off += round_up(n, 4);  // 16-byte aligned regions
        return o;
    };
    if (onchip) {
        g.off_m = take(N * g.ms_stride);
        g.off_h = take(2 * N * g.hs_stride);
    }
    g.off_stage = take(2 * g.Bs * (I > O ? I : O));
    g.off_win = take(g.R * I);
    g.off_bias = take(g.R);
    g.off_wout = take(O * N + O);
    g.smem_floats = off;
    return g;
}

/// Which networks a launch covers and where their parameters live. Per-network state is indexed by
/// the network (0..K-1 of the resident group), activations by the launch slot (0..count-1).
struct RnnNetworks {
    int count = 0;                         // launched networks (slots)
    const int* nets = nullptr;             // (count) network of each slot; null: slot = network
    const std::uint8_t* status = nullptr;  // (K) 0 = training, else skipped; null: all train
    const float* params = nullptr;         // (K, P) parameter slices (ParamLayout)
    std::size_t P = 0, w_rec = 0, w_in = 0, b = 0, w_out = 0, b_out = 0;
    const float* mask = nullptr;  // (K,N,N) or null
    const float* sign = nullptr;  // (N), used in reparam mode
    bool reparam = false;         // W = mask |V| diag(s) (outgoing) or diag(s) |V|
    bool incoming = false;
};

/// Forward over T steps (kernels/cpu/rnn.hpp rnn_forward, with the effective matrix built on load).
struct RnnForwardArgs {
    RnnNetworks net;
    const float* x = nullptr;  // (count) x (T,B,I) per slot, slot stride x_stride
    float* h = nullptr;        // (count) h (T+1,B,N); h[0] is written as 0
    float* th = nullptr;       // (count) tanh(a_t) (T,B,N); null: not stored (th_t = h_{t+1})
    float* y = nullptr;        // (count) y (T,B,O)
    std::size_t x_stride = 0, h_stride = 0, th_stride = 0, y_stride = 0;
    float alpha = 1.0f;
    float noise_scale = 0.0f;               // sigma_rec sqrt(alpha); 0: no recurrent noise
    const std::uint64_t* seeds = nullptr;   // (K) noise seeds
    const std::int32_t* updates = nullptr;  // (K) updates done (noise stream kRecNoise + (u << 8))
    float* m_scratch = nullptr;             // off chip: m_scratch_floats per slot
    float* h_scratch = nullptr;             // off chip: h_scratch_floats per slot
    std::size_t scratch_stride = 0;         // slot stride of both scratch buffers
};

/// BPTT through T steps (rnn_backward's delta recurrence); delta may equal th (in place).
struct RnnBackwardArgs {
    RnnNetworks net;
    const float* h = nullptr;       // (count) h (T+1,B,N)
    const float* th = nullptr;      // (count) tanh(a_t) (T,B,N); null: th_t = h_{t+1}
    float* delta = nullptr;         // (count) d loss / d a_t (T,B,N) out
    const float* grad_y = nullptr;  // (count) d loss / d y (T,B,O)
    float* bias_part = nullptr;     // (count) (ceil(B/8), N): per 8-trial tile sums of delta
    std::size_t h_stride = 0, th_stride = 0, delta_stride = 0, gy_stride = 0, part_stride = 0;
    float alpha = 1.0f;
    float rate_coef = 0.0f;  // 2 l2_rate / (T B N): d penalty / d h_t = rate_coef h_t
    float* m_scratch = nullptr;
    float* h_scratch = nullptr;
    std::size_t scratch_stride = 0;
};

/// Where one CTA sits in the grid (blockIdx.x = (slot S + s) C + rank).
struct CtaPlace {
    int slot = 0, net = 0, s = 0, rank = 0;
    bool active = false;
};

EIRNN_HD inline CtaPlace cta_place(const RnnGeometry& g, const RnnNetworks& n, long block) {
    CtaPlace p;
    p.rank = static_cast<int>(block % g.C);
    long q = block / g.C;
    p.s = static_cast<int>(q % g.S);
    p.slot = static_cast<int>(q / g.S);
    p.net = n.nets ? n.nets[p.slot] : p.slot;
    p.active = !n.status || n.status[p.net] == 0;
    return p;
}

/// The working set of one CTA: on chip, carved out of its shared memory; off chip, M and the states
/// in global scratch (one state double buffer per slice, shared by the slice's CTAs).
struct CtaMemory {
    float* m = nullptr;     // (N, ms_stride)
    float* h[2] = {};       // (N, hs_stride) each: states (forward) or deltas (backward)
    float* stage[2] = {};   // (Bs, I) inputs x_t (forward) or (Bs, O) grad_y_t (backward)
    float* win = nullptr;   // (R, I) this CTA's rows of W_in
    float* bias = nullptr;  // (R) this CTA's rows of b
    float* wout = nullptr;  // (O, N) W_out, then b_out (O)
};

template <class Args>
EIRNN_HD inline CtaMemory cta_memory(const RnnGeometry& g, float* smem, const Args& a,
                                     const CtaPlace& p) {
    CtaMemory m;
    const std::size_t hsz = static_cast<std::size_t>(g.N) * g.hs_stride;
    float* hb;
    if (g.onchip) {
        m.m = smem + g.off_m;
        hb = smem + g.off_h;
    } else {
        const std::size_t slot = static_cast<std::size_t>(p.slot) * a.scratch_stride;
        const std::size_t cta = static_cast<std::size_t>(p.s) * g.C + p.rank;
        m.m = a.m_scratch + slot + cta * g.N * g.ms_stride;
        hb = a.h_scratch + slot + static_cast<std::size_t>(p.s) * 2 * hsz;
    }
    m.h[0] = hb;
    m.h[1] = hb + hsz;
    const int st = g.Bs * (g.I > g.O ? g.I : g.O);
    m.stage[0] = smem + g.off_stage;
    m.stage[1] = smem + g.off_stage + st;
    m.win = smem + g.off_win;
    m.bias = smem + g.off_bias;
    m.wout = smem + g.off_wout;
    return m;
}

/// Buffer `parity` (0 or 1) of a double buffer, without indexing an array at run time (which
/// would put the pointers in local memory on the device).
EIRNN_HD inline float* pick(float* const (&buf)[2], int parity) {
    return parity ? buf[1] : buf[0];
}

/// Four floats, loaded and stored as one 16-byte access on the device.
struct alignas(16) F4 {
    float x, y, z, w;
};

EIRNN_HD inline F4 load4(const float* p) {
#if defined(__CUDA_ARCH__)
    return *reinterpret_cast<const F4*>(p);
#else
    return F4{p[0], p[1], p[2], p[3]};
#endif
}

EIRNN_HD inline void store4(float* p, const F4& v) {
#if defined(__CUDA_ARCH__)
    *reinterpret_cast<F4*>(p) = v;
#else
    p[0] = v.x;
    p[1] = v.y;
    p[2] = v.z;
    p[3] = v.w;
#endif
}

/// The recurrent matrix a network computes with, entry (i, j) = j -> i: mask |V| s or mask W.
EIRNN_HD inline float effective_w(const RnnNetworks& n, const float* w, const float* mask, int N,
                                  int i, int j) {
    const std::size_t ij = static_cast<std::size_t>(i) * N + j;
    float v = w[ij];
    if (n.reparam) v = fabsf(v) * n.sign[n.incoming ? i : j];
    if (mask && mask[ij] == 0.0f) v = 0.0f;
    return v;
}

/// acc[m][c] = sum_k M[k][r0 + m] H[k][lb0 + c], k ascending.
EIRNN_HD inline void tile_product(const float* M, int ms, const float* H, int hs, int N, int r0,
                                  int lb0, float (&acc)[kTileRows][kTileTrials]) {
    EIRNN_UNROLL for (int m = 0; m < kTileRows; ++m)
        EIRNN_UNROLL for (int c = 0; c < kTileTrials; ++c) acc[m][c] = 0.0f;
    EIRNN_UNROLL4
    for (int k = 0; k < N; ++k) {
        const F4 w = load4(M + static_cast<std::size_t>(k) * ms + r0);
        const F4 h0 = load4(H + static_cast<std::size_t>(k) * hs + lb0);
        const F4 h1 = load4(H + static_cast<std::size_t>(k) * hs + lb0 + 4);
        const float wv[4] = {w.x, w.y, w.z, w.w};
        const float hv[8] = {h0.x, h0.y, h0.z, h0.w, h1.x, h1.y, h1.z, h1.w};
        EIRNN_UNROLL for (int m = 0; m < kTileRows; ++m)
            EIRNN_UNROLL for (int c = 0; c < kTileTrials; ++c) acc[m][c] += wv[m] * hv[c];
    }
}

/// Writes the tile's row gi (8 trials from lb0: a, then b) into a state buffer of every CTA of the
/// cluster (on chip) or into the slice's shared buffer (off chip). map(p, rank) is p in rank's
/// shared memory.
template <class Map>
EIRNN_HD inline void push_row(const RnnGeometry& g, float* own, int my_rank, int gi, int lb0,
                              const F4& a, const F4& b, Map map) {
    const std::size_t o = static_cast<std::size_t>(gi) * g.hs_stride + lb0;
    store4(own + o, a);
    store4(own + o + 4, b);
    if (!g.onchip) return;
    for (int r = 0; r < g.C; ++r) {
        if (r == my_rank) continue;
        float* dst = map(own, r);
        store4(dst + o, a);
        store4(dst + o + 4, b);
    }
}

/// Stores row m of a tile (8 trials) into a state buffer through push_row.
template <class Map>
EIRNN_HD inline void push_tile_row(const RnnGeometry& g, float* own, int my_rank, int gi, int lb0,
                                   const float (&v)[kTileTrials], Map map) {
    push_row(g, own, my_rank, gi, lb0, F4{v[0], v[1], v[2], v[3]}, F4{v[4], v[5], v[6], v[7]}, map);
}

/// Writes a tile (rows gi0.., trials b0..) into a (B,N) slice of a (T,B,N) array: 16-byte stores
/// across the 4 rows when N % 4 == 0, else one float at a time.
EIRNN_HD inline void store_tile(float* dst, int N, int B, int gi0, int b0,
                                const float (&v)[kTileRows][kTileTrials]) {
    const bool vec = (N % 4) == 0 && gi0 + 3 < N;
    EIRNN_UNROLL for (int c = 0; c < kTileTrials; ++c) {
        const int b = b0 + c;
        if (b >= B) break;
        float* row = dst + static_cast<std::size_t>(b) * N + gi0;
        if (vec) {
            store4(row, F4{v[0][c], v[1][c], v[2][c], v[3][c]});
        } else {
            EIRNN_UNROLL for (int m = 0; m < kTileRows; ++m) if (gi0 + m < N) row[m] = v[m][c];
        }
    }
}

/// sigma sqrt(alpha) xi of one (step, trial, unit) element: the CPU backend's Philox::normal draw
/// in double. On the device cos(2 pi u) is computed as cospi(2 u), which needs no call to the
/// slow-path argument reduction (a call caps the kernel's registers); the two agree to an ulp in
/// double, far below the float the noise is rounded to.
EIRNN_HD inline float recurrent_noise(const Philox& rng, std::uint64_t index, float scale) {
#if defined(__CUDA_ARCH__)
    const auto r = rng.bits(index);
    const std::uint64_t ua = (static_cast<std::uint64_t>(r[0]) << 21) ^ (r[1] >> 11);
    const std::uint64_t ub = (static_cast<std::uint64_t>(r[2]) << 21) ^ (r[3] >> 11);
    const double u1 = (static_cast<double>(ua) + 0.5) * (1.0 / 9007199254740992.0);
    const double u2 = (static_cast<double>(ub) + 0.5) * (1.0 / 9007199254740992.0);
    return scale * static_cast<float>(sqrt(-2.0 * log(u1)) * cospi(2.0 * u2));
#else
    return scale * static_cast<float>(rng.normal(index));
#endif
}

// ---- forward ----

/// Loads M (transposed effective W rows), W_in and b rows, W_out and b_out; zeroes both state
/// buffers (on chip; off chip the rank-0 CTA of a slice zeroes the shared one) and stages x_0.
EIRNN_HD inline void fwd_load(const RnnGeometry& g, const RnnForwardArgs& a, const CtaPlace& p,
                              const CtaMemory& mem, int tid) {
    const int N = g.N, R = g.R, I = g.I, O = g.O;
    const float* prm = a.net.params + static_cast<std::size_t>(p.net) * a.net.P;
    const float* w = prm + a.net.w_rec;
    const float* mask = a.net.mask ? a.net.mask + static_cast<std::size_t>(p.net) * N * N : nullptr;
    for (int e = tid; e < N * R; e += g.threads) {
        const int r = e / N, k = e % N, gi = p.rank * R + r;
        mem.m[static_cast<std::size_t>(k) * g.ms_stride + r] =
            gi < N ? effective_w(a.net, w, mask, N, gi, k) : 0.0f;
    }
    for (int e = tid; e < R * I; e += g.threads) {
        const int gi = p.rank * R + e / I;
        mem.win[e] = gi < N ? prm[a.net.w_in + static_cast<std::size_t>(gi) * I + e % I] : 0.0f;
    }
    for (int r = tid; r < R; r += g.threads) {
        const int gi = p.rank * R + r;
        mem.bias[r] = gi < N ? prm[a.net.b + gi] : 0.0f;
    }
    for (int e = tid; e < O * N; e += g.threads) mem.wout[e] = prm[a.net.w_out + e];
    for (int o = tid; o < O; o += g.threads) mem.wout[O * N + o] = prm[a.net.b_out + o];
    if (g.onchip || p.rank == 0) {
        const int n = 2 * N * g.hs_stride;
        for (int e = tid; e < n; e += g.threads) mem.h[0][e] = 0.0f;
    }
    float* h0 = a.h + static_cast<std::size_t>(p.slot) * a.h_stride;
    for (int e = tid; e < g.Bs * N; e += g.threads) {
        const int b = p.s * g.Bs + e / N;
        if (p.rank == 0 && b < g.B) h0[static_cast<std::size_t>(b) * N + e % N] = 0.0f;
    }
    const float* x = a.x + static_cast<std::size_t>(p.slot) * a.x_stride;
    for (int e = tid; e < g.Bs * I; e += g.threads) {
        const int b = p.s * g.Bs + e / I;
        mem.stage[0][e] = b < g.B ? x[static_cast<std::size_t>(b) * I + e % I] : 0.0f;
    }
}

/// Element e (< threads) of x_t for the stage buffer (0 beyond the batch or past T).
EIRNN_HD inline float fwd_stage_fetch(const RnnGeometry& g, const RnnForwardArgs& a,
                                      const CtaPlace& p, int t, int e) {
    if (t >= g.T || e >= g.Bs * g.I) return 0.0f;
    const int b = p.s * g.Bs + e / g.I;
    if (b >= g.B) return 0.0f;
    const float* x = a.x + static_cast<std::size_t>(p.slot) * a.x_stride;
    return x[(static_cast<std::size_t>(t) * g.B + b) * g.I + e % g.I];
}

/// Stores x_t element tid fetched earlier, and the elements beyond the thread count directly.
EIRNN_HD inline void fwd_stage_put(const RnnGeometry& g, const RnnForwardArgs& a, const CtaPlace& p,
                                   const CtaMemory& mem, int t, int tid, float v) {
    if (t >= g.T) return;
    float* st = pick(mem.stage, t & 1);
    if (tid < g.Bs * g.I) st[tid] = v;
    for (int e = tid + g.threads; e < g.Bs * g.I; e += g.threads)
        st[e] = fwd_stage_fetch(g, a, p, t, e);
}

/// Step t: h_{t+1} of the tile from h_t (state buffer t & 1) and x_t (stage t & 1); writes the new
/// state buffer (all CTAs of the cluster), h (T+1,B,N) and th (T,B,N) when stored. kPlain: alpha 1
/// and no noise, so h_{t+1} = tanh(a_t).
template <bool kPlain, class Map>
EIRNN_HD inline void fwd_step(const RnnGeometry& g, const RnnForwardArgs& a, const CtaPlace& p,
                              const CtaMemory& mem, int tid, int t, Map map) {
    if (tid >= g.tiles()) return;
    const int N = g.N, I = g.I, B = g.B, BT = g.trial_tiles();
    const int r0 = (tid / BT) * kTileRows, lb0 = (tid % BT) * kTileTrials;
    const int gi0 = p.rank * g.R + r0, b0 = p.s * g.Bs + lb0;
    const float* hc = pick(mem.h, t & 1);
    float* hn = pick(mem.h, (t + 1) & 1);
    float v[kTileRows][kTileTrials];  // W h_t, then h_{t+1}
    tile_product(mem.m, g.ms_stride, hc, g.hs_stride, N, r0, lb0, v);
    const float* xs = pick(mem.stage, t & 1);
    const std::size_t BN = static_cast<std::size_t>(B) * N;
    EIRNN_UNROLL for (int m = 0; m < kTileRows; ++m) {
        const int r = r0 + m, gi = gi0 + m;
        EIRNN_UNROLL for (int c = 0; c < kTileTrials; ++c) {
            const int lb = lb0 + c;
            float pre = mem.bias[r];
            for (int q = 0; q < I; ++q) pre += mem.win[r * I + q] * xs[lb * I + q];
            const float th = tanhf(v[m][c] + pre);
            if constexpr (kPlain) {
                v[m][c] = th;
            } else {
                const int b = b0 + c;
                const bool inside = gi < N && b < B;
                const float hp =
                    gi < N ? hc[static_cast<std::size_t>(gi) * g.hs_stride + lb] : 0.0f;
                float nz = 0.0f;
                if (a.noise_scale != 0.0f && inside) {
                    const Philox rng{a.seeds[p.net],
                                     static_cast<std::uint64_t>(RngStream::kRecNoise) +
                                         (static_cast<std::uint64_t>(a.updates[p.net]) << 8)};
                    nz = recurrent_noise(rng, (static_cast<std::uint64_t>(t) * B + b) * N + gi,
                                         a.noise_scale);
                }
                v[m][c] = (1.0f - a.alpha) * hp + a.alpha * th + nz;
                if (a.th && inside)
                    a.th[static_cast<std::size_t>(p.slot) * a.th_stride + t * BN +
                         static_cast<std::size_t>(b) * N + gi] = th;
            }
        }
        if (gi < N) push_tile_row(g, hn, p.rank, gi, lb0, v[m], map);
    }
    store_tile(a.h + static_cast<std::size_t>(p.slot) * a.h_stride + (t + 1) * BN, N, B, gi0, b0,
               v);
}

/// y_t = W_out h_{t+1} + b_out for the slice's trials, from the state buffer holding h_{t+1};
/// the (trial, output) pairs are spread over the cluster's threads.
EIRNN_HD inline void fwd_readout(const RnnGeometry& g, const RnnForwardArgs& a, const CtaPlace& p,
                                 const CtaMemory& mem, int tid, int t) {
    const int N = g.N, O = g.O;
    const float* hb = pick(mem.h, (t + 1) & 1);
    float* y = a.y + static_cast<std::size_t>(p.slot) * a.y_stride;
    for (int q = p.rank * g.threads + tid; q < g.Bs * O; q += g.C * g.threads) {
        const int lb = q / O, o = q % O, b = p.s * g.Bs + lb;
        if (b >= g.B) continue;
        const float* w = mem.wout + static_cast<std::size_t>(o) * N;
        float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
        int i = 0;
        for (; i + 3 < N; i += 4) {
            s0 += w[i] * hb[static_cast<std::size_t>(i) * g.hs_stride + lb];
            s1 += w[i + 1] * hb[static_cast<std::size_t>(i + 1) * g.hs_stride + lb];
            s2 += w[i + 2] * hb[static_cast<std::size_t>(i + 2) * g.hs_stride + lb];
            s3 += w[i + 3] * hb[static_cast<std::size_t>(i + 3) * g.hs_stride + lb];
        }
        for (; i < N; ++i) s0 += w[i] * hb[static_cast<std::size_t>(i) * g.hs_stride + lb];
        y[(static_cast<std::size_t>(t) * g.B + b) * O + o] =
            mem.wout[O * N + o] + ((s0 + s1) + (s2 + s3));
    }
}

// ---- backward ----

/// Loads M (effective W columns of this CTA), W_out and b_out; zeroes both delta buffers and the
/// global bias partials of the slice's tiles; stages grad_y_{T-1}.
EIRNN_HD inline void bwd_load(const RnnGeometry& g, const RnnBackwardArgs& a, const CtaPlace& p,
                              const CtaMemory& mem, int tid) {
    const int N = g.N, R = g.R, O = g.O;
    const float* prm = a.net.params + static_cast<std::size_t>(p.net) * a.net.P;
    const float* w = prm + a.net.w_rec;
    const float* mask = a.net.mask ? a.net.mask + static_cast<std::size_t>(p.net) * N * N : nullptr;
    for (int e = tid; e < N * R; e += g.threads) {
        const int k = e / R, r = e % R, gj = p.rank * R + r;
        mem.m[static_cast<std::size_t>(k) * g.ms_stride + r] =
            gj < N ? effective_w(a.net, w, mask, N, k, gj) : 0.0f;
    }
    for (int e = tid; e < O * N; e += g.threads) mem.wout[e] = prm[a.net.w_out + e];
    if (g.onchip || p.rank == 0) {
        const int n = 2 * N * g.hs_stride;
        for (int e = tid; e < n; e += g.threads) mem.h[0][e] = 0.0f;
    }
    const int T = g.T;
    const float* gy = a.grad_y + static_cast<std::size_t>(p.slot) * a.gy_stride;
    float* st = pick(mem.stage, (T - 1) & 1);
    for (int e = tid; e < g.Bs * O; e += g.threads) {
        const int b = p.s * g.Bs + e / O;
        st[e] = b < g.B ? gy[(static_cast<std::size_t>(T - 1) * g.B + b) * O + e % O] : 0.0f;
    }
}

/// Element e (< threads) of grad_y_t for the stage buffer (0 beyond the batch or before 0).
EIRNN_HD inline float bwd_stage_fetch(const RnnGeometry& g, const RnnBackwardArgs& a,
                                      const CtaPlace& p, int t, int e) {
    if (t < 0 || e >= g.Bs * g.O) return 0.0f;
    const int b = p.s * g.Bs + e / g.O;
    if (b >= g.B) return 0.0f;
    const float* gy = a.grad_y + static_cast<std::size_t>(p.slot) * a.gy_stride;
    return gy[(static_cast<std::size_t>(t) * g.B + b) * g.O + e % g.O];
}

EIRNN_HD inline void bwd_stage_put(const RnnGeometry& g, const RnnBackwardArgs& a,
                                   const CtaPlace& p, const CtaMemory& mem, int t, int tid,
                                   float v) {
    if (t < 0) return;
    float* st = pick(mem.stage, t & 1);
    if (tid < g.Bs * g.O) st[tid] = v;
    for (int e = tid + g.threads; e < g.Bs * g.O; e += g.threads)
        st[e] = bwd_stage_fetch(g, a, p, t, e);
}

/// tanh(a_t) of the tile (0 outside the batch and the units), fetched before the product.
EIRNN_HD inline void bwd_fetch_th(const RnnGeometry& g, const RnnBackwardArgs& a, const CtaPlace& p,
                                  int tid, int t, float (&tv)[kTileRows][kTileTrials]) {
    const int N = g.N, B = g.B;
    const std::size_t BN = static_cast<std::size_t>(B) * N;
    const float* th = a.th ? a.th + static_cast<std::size_t>(p.slot) * a.th_stride + t * BN
                           : a.h + static_cast<std::size_t>(p.slot) * a.h_stride + (t + 1) * BN;
    const int BT = g.trial_tiles();
    const int gi0 = p.rank * g.R + (tid / BT) * kTileRows, lb0 = (tid % BT) * kTileTrials;
    EIRNN_UNROLL for (int m = 0; m < kTileRows; ++m)
        EIRNN_UNROLL for (int c = 0; c < kTileTrials; ++c) {
        const int gi = gi0 + m, b = p.s * g.Bs + lb0 + c;
        tv[m][c] =
            tid < g.tiles() && gi < N && b < B ? th[static_cast<std::size_t>(b) * N + gi] : 0.0f;
    }
}

/// Step t (T-1 down to 0): g = (1-alpha) g_{t+1} + W^T delta_{t+1} + W_out^T grad_y_t + rate
/// term; delta_t = alpha g (1 - th_t^2) into the delta buffer t & 1 (all CTAs), delta (T,B,N) and
/// the tile's bias sums. kLeak (alpha < 1): carry holds (1-alpha) g between steps, else unused.
template <bool kLeak, class Map>
EIRNN_HD inline void bwd_step(const RnnGeometry& g, const RnnBackwardArgs& a, const CtaPlace& p,
                              const CtaMemory& mem, int tid, int t,
                              const float (&tv)[kTileRows][kTileTrials],
                              float (&carry)[kTileRows][kTileTrials], float (&bsum)[kTileRows],
                              Map map) {
    if (tid >= g.tiles()) return;
    const int N = g.N, O = g.O, B = g.B, BT = g.trial_tiles();
    const int r0 = (tid / BT) * kTileRows, lb0 = (tid % BT) * kTileTrials;
    const int gi0 = p.rank * g.R + r0, b0 = p.s * g.Bs + lb0;
    float v[kTileRows][kTileTrials];  // W^T delta_{t+1}, then delta_t
    if (t + 1 < g.T) {
        tile_product(mem.m, g.ms_stride, pick(mem.h, (t + 1) & 1), g.hs_stride, N, r0, lb0, v);
    } else {
        EIRNN_UNROLL for (int m = 0; m < kTileRows; ++m)
            EIRNN_UNROLL for (int c = 0; c < kTileTrials; ++c) v[m][c] = 0.0f;
    }
    const float* gs = pick(mem.stage, t & 1);
    const std::size_t BN = static_cast<std::size_t>(B) * N;
    const float* hg = a.h + static_cast<std::size_t>(p.slot) * a.h_stride + (t + 1) * BN;
    EIRNN_UNROLL for (int m = 0; m < kTileRows; ++m) {
        const int gi = gi0 + m;
        const bool row = gi < N;
        EIRNN_UNROLL for (int c = 0; c < kTileTrials; ++c) {
            const int lb = lb0 + c, b = b0 + c;
            float gv = v[m][c];
            if constexpr (kLeak) gv += carry[m][c];
            for (int o = 0; o < O; ++o)
                gv +=
                    gs[lb * O + o] * (row ? mem.wout[static_cast<std::size_t>(o) * N + gi] : 0.0f);
            if (a.rate_coef != 0.0f && row && b < B)
                gv += a.rate_coef * hg[static_cast<std::size_t>(b) * N + gi];
            const float d = gv * a.alpha * (1.0f - tv[m][c] * tv[m][c]);
            if constexpr (kLeak) carry[m][c] = (1.0f - a.alpha) * gv;
            v[m][c] = d;
            if (row && b < B) bsum[m] += d;
        }
        if (row) push_tile_row(g, pick(mem.h, t & 1), p.rank, gi, lb0, v[m], map);
    }
    store_tile(a.delta + static_cast<std::size_t>(p.slot) * a.delta_stride + t * BN, N, B, gi0, b0,
               v);
}

/// Writes the tile's sums of delta over its trials and all steps: bias_part[b0 / 8][unit].
EIRNN_HD inline void bwd_bias(const RnnGeometry& g, const RnnBackwardArgs& a, const CtaPlace& p,
                              int tid, const float (&bsum)[kTileRows]) {
    if (tid >= g.tiles()) return;
    const int BT = g.trial_tiles();
    const int gi0 = p.rank * g.R + (tid / BT) * kTileRows;
    const int b0 = p.s * g.Bs + (tid % BT) * kTileTrials;
    if (b0 >= g.B) return;
    float* part = a.bias_part + static_cast<std::size_t>(p.slot) * a.part_stride +
                  static_cast<std::size_t>(b0 / kTileTrials) * g.N;
    EIRNN_UNROLL for (int m = 0; m < kTileRows; ++m) if (gi0 + m < g.N) part[gi0 + m] = bsum[m];
}

}  // namespace eirnn::cuda
