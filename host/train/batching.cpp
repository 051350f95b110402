// Epoch orders and batch gathering (see batching.hpp).
#include "host/train/batching.hpp"

#include <algorithm>
#include <numeric>

#include "kernels/rng.hpp"

namespace eirnn {

std::vector<int> epoch_order(std::uint64_t seed, int epoch, int n) {
    std::vector<int> order(n);
    std::iota(order.begin(), order.end(), 0);
    Philox rng{seed, static_cast<std::uint64_t>(RngStream::kShuffle) +
                         (static_cast<std::uint64_t>(epoch) << 8)};
    for (int i = n - 1; i > 0; --i) {
        int j = static_cast<int>(
            rng.below(static_cast<std::uint64_t>(i), static_cast<std::uint64_t>(i) + 1));
        std::swap(order[i], order[j]);
    }
    return order;
}

void gather_batch(const Dataset& d, const int* idx, int B, float* x, float* y, float* mask) {
    const int T = d.T, I = d.I, O = d.O;
    for (int b = 0; b < B; ++b) {
        const std::size_t r = static_cast<std::size_t>(idx[b]);
        const float* xs = d.x.data() + r * T * I;
        const float* ys = d.y.data() + r * T * O;
        const float* ms = d.mask.data() + r * T * O;
        for (int t = 0; t < T; ++t) {
            std::copy(xs + t * I, xs + (t + 1) * I, x + (static_cast<std::size_t>(t) * B + b) * I);
            std::copy(ys + t * O, ys + (t + 1) * O, y + (static_cast<std::size_t>(t) * B + b) * O);
            std::copy(ms + t * O, ms + (t + 1) * O,
                      mask + (static_cast<std::size_t>(t) * B + b) * O);
        }
    }
}

}  // namespace eirnn
