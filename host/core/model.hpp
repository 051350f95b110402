// Parameters of a group of K networks of equal shape: one flat float allocation per kind (params,
// grads, Adam moments) split by a ParamLayout offsets table, plus the fixed sign vector and mask.
// Initial weights are generated on the host from each network's seed (Philox), docs/MODEL.md §3.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "host/core/config.hpp"

namespace eirnn {

/// Offsets of one network's tensors inside its slice of length `total` (floats).
struct ParamLayout {
    int N = 0, I = 0, O = 0;
    std::size_t w_rec = 0;  // (N,N) [i][j] = j -> i  (in reparam mode: the free V)
    std::size_t w_in = 0;   // (N,I)
    std::size_t b = 0;      // (N)
    std::size_t w_out = 0;  // (O,N)
    std::size_t b_out = 0;  // (O)
    std::size_t total = 0;

    static ParamLayout make(int N, int I, int O);
    /// Tensor t (0..4 in the order above): offset and size.
    std::size_t offset(int t) const;
    std::size_t size(int t) const;
    static constexpr int kTensors = 5;
};

/// Everything the backends need about a group, host side.
struct GroupParams {
    ParamLayout layout;
    int K = 0;
    std::vector<float> params;         // (K, layout.total)
    std::vector<float> sign;           // (N) +1 E, -1 I (the same for every network)
    std::vector<float> mask;           // (K,N,N) 1/0; empty when there is no mask
    std::vector<std::uint64_t> seeds;  // (K)
};

/// Sign vector of docs/MODEL.md §2: first round(f_E N) units +1, the rest -1.
std::vector<float> make_signs(const ModelConfig& m);

/// Initial weights of network k (seed) into one slice p (layout.total floats): W_rec by the chosen
/// init (then masked; projected when project_init; in reparam mode V = W, so the effective W is the
/// reflection |W| diag(s)), W_in and W_out Glorot uniform, biases 0. mask (N,N) may be null.
/// With dale_axis incoming the normal init puts the mean sign on rows instead of columns.
void init_network(const ModelConfig& m, const ParamLayout& L, std::uint64_t seed,
                  std::span<const float> sign, const float* mask, float* p);

/// Fixed connectivity mask of network `seed` (N,N): Bernoulli(p_connect), diagonal 0 without
/// autapses. Returns empty when the model has no mask.
std::vector<float> make_mask(const ModelConfig& m, std::uint64_t seed);

/// The whole group: K networks with seeds seed .. seed + K - 1.
GroupParams init_group(const GroupConfig& c, int I, int O);

/// Dale projection of one N x N matrix in place: entries whose sign disagrees with the sign of
/// their column (outgoing) or row (incoming) become 0. Also applies the mask when non-null.
template <class Real>
void project_dale(Real* w, int N, const float* sign, DaleAxis axis, const float* mask);

/// The effective recurrent matrix of a reparam network: W = |V| diag(s) (outgoing) or diag(s) |V|.
template <class Real>
void reparam_effective(const Real* v, Real* w, int N, const float* sign, DaleAxis axis,
                       const float* mask);

/// The recurrent matrix a network computes with, from its parameter slice (copy, or |V| s).
void effective_w_rec(const ModelConfig& m, const ParamLayout& L, const float* p, const float* sign,
                     const float* mask, float* w);

}  // namespace eirnn
