// CPU optimizer step (see optimizer.hpp).
#include "kernels/cpu/optimizer.hpp"

#include <algorithm>

namespace eirnn::cpu {

double sum_squares(const float* g, std::size_t n) {
    double s = 0;
    for (std::size_t i = 0; i < n; ++i) s += static_cast<double>(g[i]) * g[i];
    return s;
}

void adam_update(float* p, float* m, float* v, const float* g, std::size_t n, float scale,
                 const AdamStep& s) {
    for (std::size_t i = 0; i < n; ++i) adam_element(p[i], m[i], v[i], g[i] * scale, s);
}

void apply_constraints(const ConstraintArgs& c, float* p) {
    const int N = c.N;
    if (c.project || c.mask) {
        float* w = p + c.w_rec;
        for (int i = 0; i < N; ++i)
            for (int j = 0; j < N; ++j) {
                std::size_t ij = static_cast<std::size_t>(i) * N + j;
                float s = c.project ? c.sign[c.incoming ? i : j] : 1.0f;
                float mk = c.mask ? c.mask[ij] : 1.0f;
                w[ij] = c.project ? project_element(w[ij], s, mk) : (mk == 0.0f ? 0.0f : w[ij]);
            }
    }
    if (c.nonneg_input) {
        float* w = p + c.w_in;
        for (std::size_t i = 0; i < c.n_in; ++i) w[i] = std::max(w[i], 0.0f);
    }
}

}  // namespace eirnn::cpu
