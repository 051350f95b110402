// Counter-based random numbers (Random123 Philox4x32-10), stateless: the value at (seed, stream,
// index) is a pure function, so every backend and every thread draws identical numbers in any
// order. Usable on host and device. Key = seed (64 bit); counter = (index lo, index hi, stream lo,
// stream hi).
#pragma once
#include <Random123/philox.h>
#include <cmath>
#include <cstdint>

#include "kernels/hd.hpp"

namespace eirnn {

/// Streams: distinct purposes never share counters.
enum class RngStream : std::uint32_t {
    kWRec = 1,       // recurrent initial weights
    kWIn = 2,        // input weights
    kWOut = 3,       // readout weights
    kMask = 4,       // connectivity mask
    kShuffle = 5,    // per-epoch shuffles (stream + epoch << 8)
    kTrials = 6,     // task trial parameters
    kStimNoise = 7,  // input noise
    kRecNoise = 8,   // recurrent noise (stream + update << 8)
    kDynamics = 9,   // initial states of the fixed-point search (stream + seed << 8)
};

struct Philox {
    std::uint64_t seed;
    std::uint64_t stream;

    /// Four 32-bit words for counter `index`.
    EIRNN_HD r123::Philox4x32::ctr_type bits(std::uint64_t index) const {
        r123::Philox4x32 gen;
        r123::Philox4x32::ctr_type c = {
            {static_cast<std::uint32_t>(index), static_cast<std::uint32_t>(index >> 32),
             static_cast<std::uint32_t>(stream), static_cast<std::uint32_t>(stream >> 32)}};
        r123::Philox4x32::key_type k = {
            {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)}};
        return gen(c, k);
    }

    /// Uniform in (0, 1), 53-bit resolution, from words 0 and 1 of counter `index`.
    EIRNN_HD double uniform(std::uint64_t index) const {
        auto r = bits(index);
        std::uint64_t u = (static_cast<std::uint64_t>(r[0]) << 21) ^ (r[1] >> 11);
        return (static_cast<double>(u) + 0.5) * (1.0 / 9007199254740992.0);  // 2^-53
    }

    /// Standard normal (Box-Muller on the four words of counter `index`), double precision.
    EIRNN_HD double normal(std::uint64_t index) const {
        auto r = bits(index);
        std::uint64_t a = (static_cast<std::uint64_t>(r[0]) << 21) ^ (r[1] >> 11);
        std::uint64_t b = (static_cast<std::uint64_t>(r[2]) << 21) ^ (r[3] >> 11);
        double u1 = (static_cast<double>(a) + 0.5) * (1.0 / 9007199254740992.0);
        double u2 = (static_cast<double>(b) + 0.5) * (1.0 / 9007199254740992.0);
        return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
    }

    /// Integer uniform on [0, n) (n > 0), from word 0..1 of counter `index`.
    EIRNN_HD std::uint64_t below(std::uint64_t index, std::uint64_t n) const {
        return static_cast<std::uint64_t>(uniform(index) * static_cast<double>(n)) % n;
    }
};

}  // namespace eirnn
