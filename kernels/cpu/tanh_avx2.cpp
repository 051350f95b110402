// The AVX2 + FMA tanh behind tanh_inplace (activation.hpp). Built without -ffast-math: the
// division and the NaN test below must stay as written.
#include <cstdint>
#include <cstring>

#include "kernels/cpu/activation.hpp"

#if defined(EIRNN_TANH_AVX2_BUILT)
#include <immintrin.h>

namespace eirnn::cpu {
namespace {

/// tanh of 8 floats, within 2 ulp of the exact value (1.95 ulp at most over every float of
/// [0, 11]; tests/test_gemm_small.cpp checks every 16th). With t = -2|x| (|x| clamped to 10, where
/// tanh rounds to 1) and m = expm1(t), tanh|x| = -m / (2 + m). t = n ln2 + r, |r| <= ln2 / 2, s =
/// 2^n, and expm1(r) = r + r^2 Q(r) with Q of degree 5 (a Chebyshev fit; relative error of expm1
/// below 1e-9, evaluated in Estrin's order); then -m = (1 - s) - s expm1(r) and 2 + m = (1 + s) +
/// s expm1(r), each one FMA, so that each is rounded once (1 - s and 1 + s are exact). The sign
/// is copied from x, and NaN passes through. Built without -ffast-math, which would turn the
/// division into a reciprocal estimate (up to 4 ulp) and could drop the NaN test.
EIRNN_TANH_AVX2 inline __m256 tanh8(__m256 x) {
    const __m256 sign_bit = _mm256_castsi256_ps(_mm256_set1_epi32(INT32_MIN));
    const __m256 a = _mm256_min_ps(_mm256_andnot_ps(sign_bit, x), _mm256_set1_ps(10.0f));
    const __m256 t = _mm256_mul_ps(a, _mm256_set1_ps(-2.0f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(t, _mm256_set1_ps(1.442695041f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(6.931152344e-01f), t);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(3.194618495e-05f), r);
    const __m256 r2 = _mm256_mul_ps(r, r);
    const __m256 r4 = _mm256_mul_ps(r2, r2);
    const __m256 q01 = _mm256_fmadd_ps(_mm256_set1_ps(1.666666668e-01f), r, _mm256_set1_ps(0.5f));
    const __m256 q23 =
        _mm256_fmadd_ps(_mm256_set1_ps(8.333310934e-03f), r, _mm256_set1_ps(4.166646501e-02f));
    const __m256 q45 =
        _mm256_fmadd_ps(_mm256_set1_ps(1.989098087e-04f), r, _mm256_set1_ps(1.393364103e-03f));
    const __m256 q = _mm256_fmadd_ps(q45, r4, _mm256_fmadd_ps(q23, r2, q01));
    const __m256 em_r = _mm256_fmadd_ps(r2, q, r);
    // s = 2^n (n in [-29, 0]) from its exponent field.
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 s = _mm256_castsi256_ps(
        _mm256_add_epi32(_mm256_slli_epi32(_mm256_cvtps_epi32(n), 23), _mm256_castps_si256(one)));
    const __m256 num = _mm256_fnmadd_ps(s, em_r, _mm256_sub_ps(one, s));
    const __m256 den = _mm256_fmadd_ps(s, em_r, _mm256_add_ps(one, s));
    const __m256 y = _mm256_or_ps(_mm256_div_ps(num, den), _mm256_and_ps(sign_bit, x));
    // NaN in, NaN out (|x| above the bits of infinity).
    const __m256i abs_bits = _mm256_castps_si256(_mm256_andnot_ps(sign_bit, x));
    const __m256i nan = _mm256_cmpgt_epi32(abs_bits, _mm256_set1_epi32(0x7F800000));
    return _mm256_blendv_ps(y, x, _mm256_castsi256_ps(nan));
}

}  // namespace

EIRNN_TANH_AVX2 void tanh_avx2(float* v, long n) {
    long i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(v + i, tanh8(_mm256_loadu_ps(v + i)));
    if (i < n) {
        float tail[8] = {};
        std::memcpy(tail, v + i, static_cast<std::size_t>(n - i) * sizeof(float));
        _mm256_storeu_ps(tail, tanh8(_mm256_loadu_ps(tail)));
        std::memcpy(v + i, tail, static_cast<std::size_t>(n - i) * sizeof(float));
    }
}

}  // namespace eirnn::cpu

#endif  // EIRNN_TANH_AVX2_BUILT
