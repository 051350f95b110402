// What the fused update (kernels/cuda/optimizer.cu) does to one element, as __host__ __device__
// code that the CPU tests run too: the gradient as the update sees it (reparam chain rule, mask,
// L2 on weights: host/train/network_grad.cpp), then Keras-2 Adam and the constraints
// (kernels/cpu/optimizer.cpp). No CUDA headers.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/optimizer_args.hpp"

namespace eirnn::cuda {

/// One fused update of count networks. Parameters and moments are indexed by network (K, P),
/// gradients and losses by launch slot (count, P).
struct OptimizerArgs {
    int count = 0;                    // slots
    const int* nets = nullptr;        // (count) network of each slot, or null
    std::uint8_t* status = nullptr;   // (K) 0 = training; set to 1 when a network diverges
    std::int32_t* updates = nullptr;  // (K) applied updates, incremented
    double* epoch_sum = nullptr;      // (K) += float(loss) * batch
    float* params = nullptr;          // (K, P)
    float* m = nullptr;               // (K, P) Adam first moments
    float* v = nullptr;               // (K, P) Adam second moments
    const float* grads = nullptr;     // (count, P) d loss / d effective parameters
    const double* loss = nullptr;     // (count) data loss of this update
    const float* lr = nullptr;        // lr_t of slot a at lr[a * lr_stride]
    std::size_t lr_stride = 1;
    std::size_t P = 0;
    std::size_t off[5] = {};   // ParamLayout offsets: w_rec, w_in, b, w_out, b_out
    std::size_t size[5] = {};  // and sizes
    int N = 0;
    const float* sign = nullptr;  // (N)
    const float* mask = nullptr;  // (K,N,N) or null
    bool project = false;         // Dale projection of W_rec after the update
    bool reparam = false;         // W_rec = |V| s: chain rule to V
    bool incoming = false;        // signs on rows
    bool nonneg_input = false;    // W_in >= 0 after the update
    float l2_coef = 0.0f;         // 2 l2_weight: d penalty / d w = l2_coef w
    double clipnorm = 0.0;        // 0: no clipping
    bool per_tensor = false;      // clip each tensor by its own norm
    float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
    int batch = 0;  // trials of this update
};

/// Gradient of element e of tensor t of a network (p its parameters, g its raw gradients, mask
/// its (N,N) mask or null) as the update uses it.
EIRNN_HD inline float final_grad(const OptimizerArgs& a, const float* p, const float* g,
                                 const float* mask, int t, std::size_t e) {
    const std::size_t o = a.off[t] + e;
    float gr = g[o];
    if (t == 0) {
        const float mk = mask ? mask[e] : 1.0f;
        if (a.reparam) {
            const int i = static_cast<int>(e / a.N), j = static_cast<int>(e % a.N);
            gr = reparam_grad_element(gr, p[o], a.sign[a.incoming ? i : j], mk);
        } else if (mask && mk == 0.0f) {
            gr = 0.0f;
        }
        if (a.l2_coef > 0.0f && !(mask && mk == 0.0f)) gr += a.l2_coef * p[o];
    } else if ((t == 1 || t == 3) && a.l2_coef > 0.0f) {
        gr += a.l2_coef * p[o];
    }
    return gr;
}

/// Adam on element e of tensor t with the clipped gradient gs, then the constraints.
EIRNN_HD inline void update_element(const OptimizerArgs& a, float* p, float* m, float* v,
                                    const float* mask, int t, std::size_t e, float gs,
                                    const AdamStep& step) {
    const std::size_t o = a.off[t] + e;
    adam_element(p[o], m[o], v[o], gs, step);
    if (t == 0 && (a.project || mask)) {
        const float mk = mask ? mask[e] : 1.0f;
        if (a.project) {
            const int i = static_cast<int>(e / a.N), j = static_cast<int>(e % a.N);
            p[o] = project_element(p[o], a.sign[a.incoming ? i : j], mk);
        } else if (mk == 0.0f) {
            p[o] = 0.0f;
        }
    } else if (t == 1 && a.nonneg_input) {
        p[o] = p[o] < 0.0f ? 0.0f : p[o];
    }
}

/// Clip factor of tensor t from the per-tensor sums of squares (1 when no clipping applies).
EIRNN_HD inline float clip_scale(const OptimizerArgs& a, const double (&sq)[5], int t) {
    double total = 0.0;
    for (int u = 0; u < 5; ++u) total += sq[u];
    const double norm = sqrt(a.per_tensor ? sq[t] : total);
    return a.clipnorm > 0.0 && norm > a.clipnorm ? static_cast<float>(a.clipnorm / norm) : 1.0f;
}

}  // namespace eirnn::cuda
