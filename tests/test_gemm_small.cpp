// The hand-written SGEMM kernels (kernels/cpu/gemm_small.*) on every instruction set this CPU runs,
// forced one by one, against a double-precision reference: awkward sizes, the operand layouts of
// the recurrent loop (row-major A for the per-step products, transposed A for the weight gradient)
// plus padded and fully strided ones, beta 0 and 1; then the float recurrent pass that runs on them
// against the double one, which goes to cblas_dgemm.
#include "kernels/cpu/gemm_small.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cpu/activation.hpp"
#include "kernels/cpu/rnn.hpp"

namespace eirnn::cpu {
namespace {

// 2: the two-row panels; 20, 33 and 100: a last panel of 17..24 columns; 7: one vector per row.
constexpr int kSizes[] = {1, 2, 7, 20, 33, 64, 100, 127, 256, 300};
/// Fewer sizes for the layouts the engine does not use, to keep the suite short.
constexpr int kFewSizes[] = {1, 7, 33, 127, 300};

/// How A, B and C sit in memory.
enum class Layout {
    Rows,     // A row-major (sam = K, sak = 1): the forward and delta products
    Columns,  // A(m,k) = a[k*M + m] (sam = 1, sak = M): the weight gradient
    Padded,   // rows with leading dimensions wider than the matrices
    Strided,  // neither stride of A is 1
};

constexpr Layout kLayouts[] = {Layout::Rows, Layout::Columns, Layout::Padded, Layout::Strided};

const char* layout_name(Layout l) {
    switch (l) {
        case Layout::Rows:
            return "rows";
        case Layout::Columns:
            return "columns";
        case Layout::Padded:
            return "padded";
        case Layout::Strided:
            return "strided";
    }
    return "?";
}

/// One product's operands, filled with values drawn by `draw`; the C padding holds a sentinel.
struct Problem {
    int M, N, K;
    long sam, sak, ldb, ldc;
    bool accumulate;
    std::vector<float> a, b, c0;

    template <class Draw>
    Problem(Layout l, int M_, int N_, int K_, bool acc, Draw&& draw)
        : M(M_), N(N_), K(K_), accumulate(acc) {
        const bool pad = l == Layout::Padded;
        sam = l == Layout::Rows ? K : l == Layout::Columns ? 1 : l == Layout::Padded ? K + 5 : 2;
        sak = l == Layout::Rows || l == Layout::Padded ? 1 : l == Layout::Columns ? M : 2L * M + 1;
        ldb = pad ? N + 3 : N;
        ldc = pad ? N + 9 : N;
        a.resize(static_cast<std::size_t>((M - 1) * sam + (K - 1) * sak + 1));
        b.resize(static_cast<std::size_t>((K - 1) * ldb + N));
        c0.resize(static_cast<std::size_t>((M - 1) * ldc + N));
        for (float& v : a) v = draw();
        for (float& v : b) v = draw();
        // Without accumulate C must not be read: NaN there would show up in the result.
        for (float& v : c0) v = acc ? draw() : std::numeric_limits<float>::quiet_NaN();
        for (int m = 0; m < M; ++m)
            for (long n = N; n < ldc && m * ldc + n < static_cast<long>(c0.size()); ++n)
                c0[m * ldc + n] = kSentinel;
    }

    static constexpr float kSentinel = 12345.0f;

    float A(int m, int k) const { return a[m * sam + k * sak]; }
    float B(int k, int n) const { return b[k * ldb + n]; }
};

/// Exact value in double and the sum of the magnitudes of its terms, element by element.
struct Reference {
    std::vector<double> value, magnitude;  // (M,N) dense
};

Reference reference(const Problem& p) {
    Reference r;
    const std::size_t MN = static_cast<std::size_t>(p.M) * p.N;
    r.value.assign(MN, 0.0);
    r.magnitude.assign(MN, 0.0);
    for (int m = 0; m < p.M; ++m) {
        double* v = r.value.data() + static_cast<std::size_t>(m) * p.N;
        double* g = r.magnitude.data() + static_cast<std::size_t>(m) * p.N;
        if (p.accumulate)
            for (int n = 0; n < p.N; ++n) {
                v[n] = p.c0[m * p.ldc + n];
                g[n] = std::fabs(v[n]);
            }
        for (int k = 0; k < p.K; ++k) {
            const double x = p.A(m, k);
            const float* br = p.b.data() + k * p.ldb;
            for (int n = 0; n < p.N; ++n) {
                v[n] += x * br[n];
                g[n] += std::fabs(x * br[n]);
            }
        }
    }
    return r;
}

/// Runs p on isa and counts elements off the reference by more than tol(value, magnitude), plus
/// any change to C's padding. Reports the first few failures.
template <class Tol>
int count_mismatches(GemmIsa isa, Layout l, const Problem& p, const Reference& r, Tol&& tol) {
    std::vector<float> c = p.c0;
    gemm_small(isa, p.M, p.N, p.K, p.a.data(), p.sam, p.sak, p.b.data(), p.ldb, p.accumulate,
               c.data(), p.ldc);
    int bad = 0;
    for (int m = 0; m < p.M; ++m)
        for (long n = 0; n < p.ldc && m * p.ldc + n < static_cast<long>(c.size()); ++n) {
            const float got = c[m * p.ldc + n];
            bool ok;
            double want;
            if (n < p.N) {
                const std::size_t i = static_cast<std::size_t>(m) * p.N + n;
                want = r.value[i];
                ok = std::fabs(got - want) <= tol(r.magnitude[i]);
            } else {
                want = Problem::kSentinel;
                ok = got == Problem::kSentinel;
            }
            if (!ok && ++bad <= 3)
                ADD_FAILURE() << gemm_isa_name(isa) << " " << layout_name(l) << " M=" << p.M
                              << " N=" << p.N << " K=" << p.K << " accumulate=" << p.accumulate
                              << ": C[" << m << "][" << n << "] = " << got << ", want " << want;
        }
    return bad;
}

class GemmSmallIsa : public ::testing::TestWithParam<GemmIsa> {
protected:
    void SetUp() override {
        if (!gemm_isa_supported(GetParam()))
            GTEST_SKIP() << "this CPU cannot run " << gemm_isa_name(GetParam());
    }
};

// Random data in [-1, 1]. Tolerance: any summation order of K products and one addend, with or
// without FMA, stays within gamma_{K+1} = (K+1)u / (1-(K+1)u) of the sum of the terms' magnitudes
// (Higham, Accuracy and Stability, section 3.1), u = 2^-24. The bound is rigorous, so the test
// cannot be flaky, and it is tight next to the error of a wrong, lost or repeated term: at K = 300
// it is about 1e-3 while a term is about 0.3. (The usual sqrt(K) estimate is the typical, not the
// worst, error.)
TEST_P(GemmSmallIsa, MatchesDoubleReference) {
    std::mt19937 gen(7);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    auto draw = [&] { return dist(gen); };
    const double u = std::ldexp(1.0, -24);
    for (Layout l : kLayouts) {
        const bool used = l == Layout::Rows || l == Layout::Columns;
        const std::vector<int> sizes =
            used ? std::vector<int>(std::begin(kSizes), std::end(kSizes))
                 : std::vector<int>(std::begin(kFewSizes), std::end(kFewSizes));
        for (bool acc : {false, true})
            for (int M : sizes)
                for (int N : sizes)
                    for (int K : sizes) {
                        Problem p(l, M, N, K, acc, draw);
                        Reference r = reference(p);
                        const double n1 = K + 1;
                        const double gamma = n1 * u / (1 - n1 * u);
                        auto tol = [&](double magnitude) { return gamma * magnitude; };
                        ASSERT_EQ(count_mismatches(GetParam(), l, p, r, tol), 0);
                    }
    }
}

// Small integers: every product and partial sum is exact in fp32 (|sum| <= 16 * 301 < 2^24), so any
// order must give the reference exactly; a single misplaced term cannot hide in a tolerance.
TEST_P(GemmSmallIsa, ExactOnSmallIntegers) {
    std::mt19937 gen(11);
    std::uniform_int_distribution<int> dist(-4, 4);
    auto draw = [&] { return static_cast<float>(dist(gen)); };
    for (Layout l : {Layout::Rows, Layout::Columns})
        for (int M : kSizes)
            for (int N : kSizes)
                for (int K : {1, 33, 300}) {
                    Problem p(l, M, N, K, true, draw);
                    Reference r = reference(p);
                    ASSERT_EQ(count_mismatches(GetParam(), l, p, r, [](double) { return 0.0; }), 0);
                }
}

// The vector kernels sum each element's k in order, one fused multiply-add per term, in one fp32
// accumulator (stored and reloaded between K blocks, which is exact): the result is that of a
// scalar fmaf loop bit for bit, whatever the tiling. Tiling and packing may change; the training's
// bits may not. A packed B (pack_b) gives the bits of the unpacked call on every instruction set
// (the portable loop may not fuse, so there only that is checked).
TEST_P(GemmSmallIsa, VectorKernelsEqualOrderedFmaBitForBit) {
    const bool fused = GetParam() != GemmIsa::Portable;
    std::mt19937 gen(13);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    auto draw = [&] { return dist(gen); };
    for (Layout l : {Layout::Rows, Layout::Columns, Layout::Padded})
        for (int M : kSizes)
            for (int N : kSizes)
                for (int K : {1, 33, 300}) {
                    Problem p(l, M, N, K, true, draw);
                    std::vector<float> want = p.c0, got = p.c0;
                    for (int m = 0; m < M && fused; ++m)
                        for (int n = 0; n < N; ++n) {
                            float acc = want[m * p.ldc + n];
                            for (int k = 0; k < K; ++k) acc = std::fmaf(p.A(m, k), p.B(k, n), acc);
                            want[m * p.ldc + n] = acc;
                        }
                    gemm_small(GetParam(), M, N, K, p.a.data(), p.sam, p.sak, p.b.data(), p.ldb,
                               true, got.data(), p.ldc);
                    if (!fused) want = got;
                    ASSERT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float)))
                        << gemm_isa_name(GetParam()) << " " << layout_name(l) << " M=" << M
                        << " N=" << N << " K=" << K;
                    // B packed once (pack_b), as the recurrent matrix is for a whole sweep.
                    PackedB packed;
                    pack_b(GetParam(), K, N, p.b.data(), p.ldb, packed);
                    got = p.c0;
                    gemm_small(M, p.a.data(), p.sam, p.sak, packed, true, got.data(), p.ldc);
                    ASSERT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float)))
                        << gemm_isa_name(GetParam()) << " packed " << layout_name(l) << " M=" << M
                        << " N=" << N << " K=" << K;
                }
}

// A packed panel is zero past its columns and its last vector is read whole, so an infinite A
// element gives NaN (0 x inf) in the lanes past the columns: they must stay out of C's padding, and
// every column must hold the ordered FMA sum (inf or NaN where the infinity reaches it).
TEST_P(GemmSmallIsa, PackedPanelsKeepNonFiniteLanesOutOfThePadding) {
    if (GetParam() == GemmIsa::Portable) GTEST_SKIP() << "the portable kernel packs nothing";
    std::mt19937 gen(29);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    auto draw = [&] { return dist(gen); };
    const float inf = std::numeric_limits<float>::infinity();
    for (int N : {20, 36, 100})
        for (int M : {8, 13}) {
            const int K = 7;
            Problem p(Layout::Padded, M, N, K, true, draw);
            p.a[3 * p.sam + 2 * p.sak] = inf;
            p.a[(M - 1) * p.sam + 5 * p.sak] = -inf;
            PackedB packed;
            pack_b(GetParam(), K, N, p.b.data(), p.ldb, packed);
            std::vector<float> got = p.c0;
            gemm_small(M, p.a.data(), p.sam, p.sak, packed, true, got.data(), p.ldc);
            int non_finite = 0;
            for (int m = 0; m < M; ++m)
                for (long n = 0; n < p.ldc && m * p.ldc + n < static_cast<long>(got.size()); ++n) {
                    const float g = got[m * p.ldc + n];
                    if (n >= N) {
                        ASSERT_EQ(g, Problem::kSentinel) << "padding C[" << m << "][" << n << "]";
                        continue;
                    }
                    float want = p.c0[m * p.ldc + n];
                    for (int k = 0; k < K; ++k) want = std::fmaf(p.A(m, k), p.B(k, n), want);
                    non_finite += !std::isfinite(want);
                    if (std::isnan(want))
                        ASSERT_TRUE(std::isnan(g)) << "C[" << m << "][" << n << "] = " << g;
                    else
                        ASSERT_EQ(g, want)
                            << "N=" << N << " M=" << M << " C[" << m << "][" << n << "]";
                }
            EXPECT_EQ(non_finite, 2 * N) << "rows 3 and M-1 are the non-finite ones";
        }
}

// The weight-gradient shape of the workload of record: K = T*B rows, blocked inside the kernel.
TEST_P(GemmSmallIsa, MatchesReferenceOnLongK) {
    std::mt19937 gen(3);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    auto draw = [&] { return dist(gen); };
    const int K = 290 * 64;
    Problem p(Layout::Columns, 100, 100, K, false, draw);
    Reference r = reference(p);
    const double n1 = K + 1, u = std::ldexp(1.0, -24);
    const double gamma = n1 * u / (1 - n1 * u);
    EXPECT_EQ(count_mismatches(GetParam(), Layout::Columns, p, r,
                               [&](double magnitude) { return gamma * magnitude; }),
              0);
}

TEST_P(GemmSmallIsa, EmptyKClearsOrKeepsC) {
    std::vector<float> c(6, 2.0f);
    const float a = 1.0f, b = 1.0f;
    gemm_small(GetParam(), 2, 3, 0, &a, 1, 1, &b, 3, true, c.data(), 3);
    for (float v : c) EXPECT_EQ(v, 2.0f);
    gemm_small(GetParam(), 2, 3, 0, &a, 1, 1, &b, 3, false, c.data(), 3);
    for (float v : c) EXPECT_EQ(v, 0.0f);
}

// gemm_small_segments against S gemm_small calls in turn, bit for bit: the engine's weight gradient
// over several steps (A column-major, M = N > 64, the segments one step back each: negative
// strides), where AVX2 makes them one product; and the layouts and sizes that take one call per
// segment (A row-major, M <= 64, few columns), segments across the kernels' K blocks of 256
// (K = 100, S = 4), forward strides, and a first segment that overwrites C.
TEST_P(GemmSmallIsa, SegmentsEqualCallsInTurnBitForBit) {
    std::mt19937 gen(17);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    struct Case {
        int M, N, K, S;
        bool column_major, backwards, accumulate;
    };
    const Case cases[] = {
        {100, 100, 64, 4, true, true, true},  {100, 100, 100, 4, true, true, true},
        {256, 256, 64, 4, true, true, true},  {127, 20, 33, 5, true, false, true},
        {100, 100, 64, 3, true, true, false}, {65, 33, 7, 2, true, false, true},
        {64, 100, 64, 4, true, true, true},   {100, 7, 64, 4, true, true, true},
        {100, 100, 64, 4, false, true, true}, {2, 100, 64, 3, true, true, true},
        {100, 100, 64, 1, true, true, true},
    };
    for (const Case& t : cases) {
        const long sam = t.column_major ? 1 : t.K, sak = t.column_major ? t.M : 1;
        const long seg_a = static_cast<long>(t.M) * t.K, seg_b = static_cast<long>(t.K) * t.N;
        std::vector<float> a(static_cast<std::size_t>(seg_a) * t.S),
            b(static_cast<std::size_t>(seg_b) * t.S), c0(static_cast<std::size_t>(t.M) * t.N);
        for (auto* v : {&a, &b, &c0})
            for (float& x : *v) x = dist(gen);
        // backwards: segment j is the (S-1-j)-th block in memory, as the steps t, t-1, ...
        const long first = t.backwards ? t.S - 1 : 0, dir = t.backwards ? -1 : 1;
        std::vector<float> want = c0, got = c0;
        for (int j = 0; j < t.S; ++j)
            gemm_small(GetParam(), t.M, t.N, t.K, a.data() + (first + dir * j) * seg_a, sam, sak,
                       b.data() + (first + dir * j) * seg_b, t.N, t.accumulate || j > 0,
                       want.data(), t.N);
        gemm_small_segments(GetParam(), t.M, t.N, t.K, t.S, a.data() + first * seg_a, sam, sak,
                            dir * seg_a, b.data() + first * seg_b, t.N, dir * seg_b, t.accumulate,
                            got.data(), t.N);
        ASSERT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float)))
            << gemm_isa_name(GetParam()) << " M=" << t.M << " N=" << t.N << " K=" << t.K
            << " S=" << t.S << (t.column_major ? " column-major" : " row-major") << " A";
    }
}

INSTANTIATE_TEST_SUITE_P(GemmSmall, GemmSmallIsa,
                         ::testing::Values(GemmIsa::Portable, GemmIsa::Avx2, GemmIsa::Avx512),
                         [](const ::testing::TestParamInfo<GemmIsa>& info) {
                             return std::string(gemm_isa_name(info.param));
                         });

TEST(GemmSmall, DispatchPicksTheWidestSupportedIsa) {
    const GemmIsa isa = gemm_small_isa();
    EXPECT_TRUE(gemm_isa_supported(isa));
    EXPECT_TRUE(gemm_isa_supported(GemmIsa::Portable));
    EXPECT_EQ(gemm_isa_supported(GemmIsa::Avx512), isa == GemmIsa::Avx512);
    EXPECT_EQ(gemm_isa_supported(GemmIsa::Avx2), isa != GemmIsa::Portable);
}

TEST(GemmSmall, UnsupportedIsaThrows) {
    if (gemm_isa_supported(GemmIsa::Avx512)) GTEST_SKIP() << "every instruction set is supported";
    float a = 1, b = 1, c = 0;
    EXPECT_THROW(gemm_small(GemmIsa::Avx512, 1, 1, 1, &a, 1, 1, &b, 1, false, &c, 1),
                 std::invalid_argument);
}

TEST(GemmSmall, TransposePacksAwkwardShapes) {
    for (int rows : {1, 7, 33, 100})
        for (int cols : {1, 31, 64, 127}) {
            std::vector<float> src(static_cast<std::size_t>(rows) * (cols + 2));
            for (std::size_t i = 0; i < src.size(); ++i) src[i] = static_cast<float>(i);
            std::vector<float> dst(static_cast<std::size_t>(cols) * rows, -1.0f);
            transpose(rows, cols, src.data(), cols + 2, dst.data(), rows);
            for (int i = 0; i < rows; ++i)
                for (int j = 0; j < cols; ++j)
                    ASSERT_EQ(dst[j * rows + i], src[i * (cols + 2) + j]) << rows << "x" << cols;
        }
}

/// n values scale * N(0, 1) drawn from gen, as Real.
template <class Real>
std::vector<Real> normal_values(std::mt19937& gen, std::size_t n, double scale) {
    std::normal_distribution<double> normal(0.0, 1.0);
    std::vector<Real> v(n);
    for (Real& x : v) x = static_cast<Real>(scale * normal(gen));
    return v;
}

/// Forward, loss and backward of one network in Real on the given double data; returns h, y and
/// every gradient, in double. plain: alpha = 1 and no noise (tanh(a_t) kept only in h), else
/// alpha = 0.2 with the noise of in[6].
template <class Real>
std::vector<std::vector<double>> rnn_pass(const RnnDims& d,
                                          const std::vector<std::vector<double>>& in, bool plain) {
    auto cast = [](const std::vector<double>& v) { return std::vector<Real>(v.begin(), v.end()); };
    const std::vector<Real> w_rec = cast(in[0]), w_in = cast(in[1]), b = cast(in[2]),
                            w_out = cast(in[3]), b_out = cast(in[4]), x = cast(in[5]),
                            noise = cast(in[6]), target = cast(in[7]), mask = cast(in[8]);
    const std::size_t BN = static_cast<std::size_t>(d.B) * d.N;
    std::vector<Real> h((d.T + 1) * BN), th(d.T * BN), y(target.size()), grad_y(y.size()), dh(BN);
    std::vector<Real> g_rec(w_rec.size()), g_in(w_in.size()), g_b(b.size()), g_out(w_out.size()),
        g_b_out(b_out.size());
    const Real alpha = plain ? Real(1) : Real(0.2);
    const Real* nz = plain ? nullptr : noise.data();
    rnn_forward(d, w_rec.data(), w_in.data(), b.data(), w_out.data(), b_out.data(), x.data(), nz,
                alpha, h.data(), th.data(), y.data());
    masked_mse(d, y.data(), target.data(), mask.data(), grad_y.data());
    rnn_backward(d, w_rec.data(), w_out.data(), x.data(), h.data(), th.data(),
                 tanh_in_states(alpha, nz), grad_y.data(), static_cast<const Real*>(nullptr), alpha,
                 dh.data(), g_rec.data(), g_in.data(), g_b.data(), g_out.data(), g_b_out.data());
    std::vector<std::vector<double>> out;
    for (const auto* v : {&h, &y, &g_rec, &g_in, &g_b, &g_out, &g_b_out})
        out.emplace_back(v->begin(), v->end());
    return out;
}

// The float pass (hand-written kernels, weights packed per call, y per step) against the double
// one, tensor by tensor. Both compute the same sums; fp32 rounding over a few steps of a tanh
// network stays far below 1e-4 of each tensor's largest value, while a wrong index or a lost term
// would be of its order. T = 11 at B = 64 sums the weight and output gradients in groups of 4, 4
// and 3 steps.
TEST(GemmSmallInRnn, FloatPassMatchesDouble) {
    const char* names[] = {"h",      "y",          "grad_w_rec", "grad_w_in",
                           "grad_b", "grad_w_out", "grad_b_out"};
    for (RnnDims d :
         {RnnDims{9, 37, 3, 2, 6}, RnnDims{64, 300, 2, 1, 4}, RnnDims{64, 30, 2, 3, 11}}) {
        std::mt19937 gen(5);
        auto draw = [&](std::size_t n, double scale) {
            return normal_values<double>(gen, n, scale);
        };
        const std::size_t N = d.N, BN = static_cast<std::size_t>(d.B) * d.N;
        const std::size_t TB = static_cast<std::size_t>(d.T) * d.B;
        const std::vector<std::vector<double>> in = {draw(N * N, 1.5 / std::sqrt(double(N))),
                                                     draw(N * d.I, 1.0),
                                                     draw(N, 0.1),
                                                     draw(d.O * N, 1.0 / std::sqrt(double(N))),
                                                     draw(d.O, 0.1),
                                                     draw(TB * d.I, 1.0),
                                                     draw(d.T * BN, 0.05),
                                                     draw(TB * d.O, 1.0),
                                                     std::vector<double>(TB * d.O, 1.0)};
        for (bool plain : {false, true}) {
            const auto f = rnn_pass<float>(d, in, plain), ref = rnn_pass<double>(d, in, plain);
            ASSERT_EQ(f.size(), ref.size());
            for (std::size_t t = 0; t < f.size(); ++t) {
                double scale = 0, worst = 0;
                for (std::size_t i = 0; i < f[t].size(); ++i) {
                    scale = std::max(scale, std::fabs(ref[t][i]));
                    worst = std::max(worst, std::fabs(f[t][i] - ref[t][i]));
                }
                EXPECT_GT(scale, 0.0) << names[t];
                EXPECT_LE(worst, 1e-4 * scale)
                    << names[t] << ", B=" << d.B << " N=" << d.N << (plain ? ", plain" : "");
            }
        }
    }
}

// Plain steps without th: the backward keeps only a group of steps' deltas, in a ring of blocks,
// and gives the same gradients to the bit as with th, for T shorter than a group, T not a multiple
// of it, T = 1, and with an extra gradient of the states. Without th and without tanh in h it
// refuses.
template <class Real>
void expect_backward_without_th_same_bits() {
    for (RnnDims d : {RnnDims{9, 37, 3, 2, 6}, RnnDims{64, 30, 2, 1, 11}, RnnDims{5, 20, 1, 1, 1},
                      RnnDims{128, 17, 2, 3, 7}}) {
        for (bool extra : {false, true}) {
            std::mt19937 gen(11);
            auto draw = [&](std::size_t n, double scale) {
                return normal_values<Real>(gen, n, scale);
            };
            const std::size_t N = d.N, BN = static_cast<std::size_t>(d.B) * d.N;
            const std::size_t TB = static_cast<std::size_t>(d.T) * d.B;
            const std::vector<Real> w_rec = draw(N * N, 1.5 / std::sqrt(double(N))),
                                    w_in = draw(N * d.I, 1.0), b = draw(N, 0.1),
                                    w_out = draw(d.O * N, 1.0 / std::sqrt(double(N))),
                                    b_out = draw(d.O, 0.1), x = draw(TB * d.I, 1.0),
                                    grad_y = draw(TB * d.O, 1e-2),
                                    ex = extra ? draw(d.T * BN, 1e-3) : std::vector<Real>();
            std::vector<Real> h((d.T + 1) * BN), th(d.T * BN), y(TB * d.O);
            rnn_forward(d, w_rec.data(), w_in.data(), b.data(), w_out.data(), b_out.data(),
                        x.data(), static_cast<const Real*>(nullptr), Real(1), h.data(), th.data(),
                        y.data());
            std::vector<std::vector<Real>> out[2];
            for (int with_th = 0; with_th < 2; ++with_th) {
                std::vector<Real> dh(BN), g_rec(N * N), g_in(N * d.I), g_b(N), g_out(d.O * N),
                    g_b_out(d.O);
                rnn_backward(d, w_rec.data(), w_out.data(), x.data(), h.data(),
                             with_th ? th.data() : static_cast<Real*>(nullptr), true, grad_y.data(),
                             extra ? ex.data() : static_cast<const Real*>(nullptr), Real(1),
                             dh.data(), g_rec.data(), g_in.data(), g_b.data(), g_out.data(),
                             g_b_out.data());
                out[with_th] = {dh, g_rec, g_in, g_b, g_out, g_b_out};
            }
            for (std::size_t t = 0; t < out[0].size(); ++t) {
                ASSERT_EQ(out[0][t].size(), out[1][t].size());
                double worst = 0;
                for (std::size_t i = 0; i < out[0][t].size(); ++i)
                    worst = std::max(worst, std::fabs(double(out[0][t][i]) - out[1][t][i]));
                EXPECT_EQ(std::memcmp(out[0][t].data(), out[1][t].data(),
                                      out[0][t].size() * sizeof(Real)),
                          0)
                    << "tensor " << t << ", B=" << d.B << " N=" << d.N << " T=" << d.T
                    << (extra ? ", extra" : "") << ": largest difference " << worst;
            }
            // grad_w_rec sums delta_t^T h_t over t >= 1 (h_0 = 0): nothing to compare at T = 1.
            double mag = 0;
            for (Real v : out[0][1]) mag = std::max(mag, std::fabs(double(v)));
            if (d.T > 1) {
                EXPECT_GT(mag, 0.0) << "grad_w_rec is all zero, B=" << d.B << " T=" << d.T;
            }
        }
    }
    const RnnDims d{4, 8, 1, 1, 3};
    std::vector<Real> w(64), wi(8), bb(8), wo(8), bo(1), x(12), h(4 * 32), gy(12), dh(32), g(64),
        gi(8), gb(8), go(8), gbo(1);
    EXPECT_THROW(
        rnn_backward(d, w.data(), wo.data(), x.data(), h.data(), static_cast<Real*>(nullptr), false,
                     gy.data(), static_cast<const Real*>(nullptr), Real(0.5), dh.data(), g.data(),
                     gi.data(), gb.data(), go.data(), gbo.data()),
        std::invalid_argument);
}

TEST(GemmSmallInRnn, BackwardWithoutThGivesTheSameBits) {
    expect_backward_without_th_same_bits<float>();
    expect_backward_without_th_same_bits<double>();
}

// The float forward, element by element: a_t = b + W_in x_t (terms m = 0..I-1, each product
// rounded), then h_t's terms k = 0..N-1 added by one fused multiply-add each, in order; y_t
// likewise from b_out over h_{t+1}. The forward computes y_{t-1} within step t's product (the
// output layer in the recurrent product's columns), so this pins that both sums are the ordered
// ones, to the bit: with spare lanes after N (N = 100), without (N = 32), more outputs than spare
// lanes (N = 37, O = 20), T = 1, plain steps and leaky, noisy ones.
TEST(GemmSmallInRnn, ForwardSumsInOrderToTheBit) {
    for (RnnDims d : {RnnDims{64, 100, 2, 1, 5}, RnnDims{9, 32, 3, 2, 4}, RnnDims{7, 37, 2, 20, 3},
                      RnnDims{5, 20, 1, 1, 1}}) {
        for (bool plain : {true, false}) {
            std::mt19937 gen(23);
            auto draw = [&](std::size_t n, float scale) {
                return normal_values<float>(gen, n, scale);
            };
            const int B = d.B, N = d.N, I = d.I, O = d.O, T = d.T;
            const std::size_t BN = static_cast<std::size_t>(B) * N;
            const std::size_t TB = static_cast<std::size_t>(T) * B;
            const float scale = 1.5f / std::sqrt(static_cast<float>(N));
            const std::vector<float> w_rec = draw(BN / B * N, scale), w_in = draw(N * I, 1.0f),
                                     b = draw(N, 0.1f), w_out = draw(O * N, scale),
                                     b_out = draw(O, 0.1f), x = draw(TB * I, 1.0f),
                                     noise = draw(T * BN, 0.05f);
            const float alpha = plain ? 1.0f : 0.2f;
            const float* nz = plain ? nullptr : noise.data();
            std::vector<float> h((T + 1) * BN), th(T * BN), y(TB * O);
            rnn_forward(d, w_rec.data(), w_in.data(), b.data(), w_out.data(), b_out.data(),
                        x.data(), nz, alpha, h.data(), th.data(), y.data());
            long bad_a = 0, bad_y = 0;
            std::vector<float> a(BN);  // a_t of every trial, then tanh in one call as the forward
            for (int t = 0; t < T; ++t) {
                for (int r = 0; r < B; ++r) {
                    const float* hp = h.data() + t * BN + r * N;
                    const float* xr = x.data() + (static_cast<std::size_t>(t) * B + r) * I;
                    for (int i = 0; i < N; ++i) {
                        float v = b[i];
                        for (int m = 0; m < I; ++m) {
                            const float p = w_in[i * I + m] * xr[m];
                            v = v + p;
                        }
                        for (int k = 0; k < N; ++k) v = std::fma(hp[k], w_rec[i * N + k], v);
                        a[r * N + i] = v;
                    }
                }
                tanh_inplace(a.data(), static_cast<long>(BN));
                for (int r = 0; r < B; ++r) {
                    const float* hn = h.data() + (t + 1) * BN + r * N;
                    const float* got = plain ? hn : th.data() + t * BN + r * N;
                    bad_a += std::memcmp(a.data() + r * N, got, N * sizeof(float)) != 0;
                    for (int o = 0; o < O; ++o) {
                        float v = b_out[o];
                        for (int k = 0; k < N; ++k) v = std::fma(hn[k], w_out[o * N + k], v);
                        const float yo = y[(static_cast<std::size_t>(t) * B + r) * O + o];
                        bad_y += std::memcmp(&v, &yo, sizeof v) != 0;
                    }
                }
            }
            EXPECT_EQ(bad_a, 0) << "rows of tanh(a_t) differing, B=" << B << " N=" << N
                                << (plain ? ", plain" : "");
            EXPECT_EQ(bad_y, 0) << "outputs differing, B=" << B << " N=" << N << " O=" << O
                                << (plain ? ", plain" : "");
        }
    }
}

// The float backward's element-wise part, element by element: delta_t = g alpha (1 - tanh^2), g =
// dh_t + the terms gy_o W_out[o] in the order o = 0..O-1, then the extra gradient of the states
// (dh_t from the step after it: (1 - alpha) g + delta W_rec, the step product); grad_b sums delta
// over the steps t = T-1..0 and, within a step, the trials r = 0..B-1, in that order, and grad_w_in
// the rounded products delta x likewise. Pinned to the bit for 1 to 4 inputs, one and two outputs,
// with and without the extra gradient (one output with 1, 2 or 4 inputs take one pass over a row,
// the others a pass per term), on rows with a vector tail (N = 37) and without (N = 32).
TEST(GemmSmallInRnn, BackwardElementwiseSumsInOrderToTheBit) {
    for (const int N : {37, 32})
        for (const int I : {1, 2, 3, 4})
            for (const int O : {1, 2})
                for (const bool extra : {false, true}) {
                    const RnnDims d{9, N, I, O, 4};
                    const int B = d.B, T = d.T;
                    std::mt19937 gen(29);
                    auto draw = [&](std::size_t n, float scale) {
                        return normal_values<float>(gen, n, scale);
                    };
                    const std::size_t BN = static_cast<std::size_t>(B) * N;
                    const std::size_t TB = static_cast<std::size_t>(T) * B;
                    const float scale = 1.5f / std::sqrt(static_cast<float>(N));
                    const std::vector<float> w_rec = draw(BN / B * N, scale),
                                             w_in = draw(N * I, 1.0f), b = draw(N, 0.1f),
                                             w_out = draw(O * N, scale), b_out = draw(O, 0.1f),
                                             x = draw(TB * I, 1.0f), noise = draw(T * BN, 0.05f),
                                             grad_y = draw(TB * O, 0.1f), ex = draw(T * BN, 0.01f);
                    const float alpha = 0.2f;
                    std::vector<float> h((T + 1) * BN), th(T * BN), y(TB * O);
                    rnn_forward(d, w_rec.data(), w_in.data(), b.data(), w_out.data(), b_out.data(),
                                x.data(), noise.data(), alpha, h.data(), th.data(), y.data());
                    const std::vector<float> tanh_a = th;  // the backward overwrites th
                    std::vector<float> dh(BN), g_rec(N * N), g_in(N * I), g_b(N), g_out(O * N),
                        g_b_out(O);
                    rnn_backward(d, w_rec.data(), w_out.data(), x.data(), h.data(), th.data(),
                                 false, grad_y.data(), extra ? ex.data() : nullptr, alpha,
                                 dh.data(), g_rec.data(), g_in.data(), g_b.data(), g_out.data(),
                                 g_b_out.data());
                    // The deltas step by step: g = dh + the gy terms (+ extra), then dh of the
                    // step before = (1 - alpha) g + delta W_rec, its terms k = 0..N-1 added by one
                    // fused multiply-add each, in order (the step product).
                    long bad_delta = 0, bad_b = 0, bad_in = 0;
                    const float keep = 1.0f - alpha;
                    std::vector<float> ref_dh(BN, 0.0f), delta(BN);
                    for (int t = T - 1; t >= 0; --t) {
                        for (int r = 0; r < B; ++r)
                            for (int i = 0; i < N; ++i) {
                                const std::size_t e = t * BN + r * N + i;
                                float g = ref_dh[r * N + i];
                                for (int o = 0; o < O; ++o) {
                                    const float p = grad_y[(t * B + r) * O + o] * w_out[o * N + i];
                                    g = g + p;
                                }
                                if (extra) g = g + ex[e];
                                const float tv = tanh_a[e];
                                delta[r * N + i] = g * alpha * (1.0f - tv * tv);
                                bad_delta += std::memcmp(&delta[r * N + i], &th[e], 4) != 0;
                                ref_dh[r * N + i] = keep * g;
                            }
                        for (int r = 0; r < B; ++r)
                            for (int i = 0; i < N; ++i)
                                for (int k = 0; k < N; ++k)
                                    ref_dh[r * N + i] = std::fma(delta[r * N + k], w_rec[k * N + i],
                                                                 ref_dh[r * N + i]);
                    }
                    for (int i = 0; i < N; ++i) {
                        float sb = 0.0f;
                        std::vector<float> sin(I, 0.0f);
                        for (int t = T - 1; t >= 0; --t)
                            for (int r = 0; r < B; ++r) {
                                const float delta = th[t * BN + r * N + i];
                                sb = sb + delta;
                                for (int m = 0; m < I; ++m) {
                                    const float p = delta * x[(t * B + r) * I + m];
                                    sin[m] = sin[m] + p;
                                }
                            }
                        bad_b += std::memcmp(&sb, &g_b[i], 4) != 0;
                        for (int m = 0; m < I; ++m)
                            bad_in += std::memcmp(&sin[m], &g_in[i * I + m], 4) != 0;
                    }
                    EXPECT_EQ(bad_delta + bad_b + bad_in, 0)
                        << "N=" << N << " I=" << I << " O=" << O << (extra ? ", extra" : "")
                        << ": deltas " << bad_delta << ", grad_b " << bad_b << ", grad_w_in "
                        << bad_in << " differing";
                }
}

// The activation (kernels/cpu/activation.cpp), built per instruction set like the GEMM and
// dispatched with it: within a few float ulp of tanh in double on every input class (tiny, the
// steep middle, saturation, zero), of the sign of x, and tails of any length (n not a multiple of
// the vector width).
TEST(Activation, TanhWithinFourUlpOfDoubleTanh) {
    std::vector<float> x;
    for (int i = -20000; i <= 20000; ++i) x.push_back(static_cast<float>(i) * 5e-4f);  // [-10, 10]
    for (float v : {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-7f, 9.0f, 20.0f, -20.0f, 88.0f, -88.0f})
        x.push_back(v);
    for (long n : {static_cast<long>(x.size()), 1L, 7L, 9L, 15L, 17L, 33L}) {
        std::vector<float> y(x.begin(), x.begin() + n);
        tanh_inplace(y.data(), n);
        for (long i = 0; i < n; ++i) {
            const double want = std::tanh(static_cast<double>(x[i]));
            const double ulp = std::ldexp(1.0, std::ilogb(std::max(std::abs(want), 1e-38)) - 23);
            ASSERT_LE(std::abs(y[i] - want), 4 * ulp)
                << "x = " << x[i] << " (" << gemm_isa_name(gemm_small_isa()) << ")";
            if (x[i] != 0.0f) {
                ASSERT_EQ(std::signbit(y[i]), std::signbit(x[i])) << "x = " << x[i];
            }
        }
    }
}

#if defined(EIRNN_TANH_AVX2_BUILT)
// The AVX2 tanh (kernels/cpu/tanh_avx2.cpp) on every 16th float of [0, 11] (tanh rounds to 1 from
// 9.01; above 10 the input is clamped), with the odd symmetry and the special values: within 2 ulp
// of tanh in double, NaN passed through, tanh(+-inf) = +-1, the sign of zero kept.
TEST(Activation, TanhAvx2WithinTwoUlpOnEvery16thFloat) {
    if (!gemm_isa_supported(GemmIsa::Avx2)) GTEST_SKIP() << "this CPU has no AVX2 + FMA";
    const std::uint32_t end = 0x41300000;  // 11.0f
    constexpr long kChunk = 1 << 16;
    std::vector<float> x(kChunk), y(kChunk);
    double worst = 0;
    float worst_x = 0;
    for (std::uint64_t b0 = 0; b0 < end; b0 += 16 * kChunk) {
        long n = 0;
        for (std::uint64_t b = b0; b < end && n < kChunk; b += 16) {
            const auto bits = static_cast<std::uint32_t>(b);
            std::memcpy(&x[n], &bits, sizeof bits);
            x[n] = (n % 2) ? -x[n] : x[n];
            ++n;
        }
        std::copy(x.begin(), x.begin() + n, y.begin());
        tanh_avx2(y.data(), n);
        for (long i = 0; i < n; ++i) {
            const double want = std::tanh(static_cast<double>(x[i]));
            const double ulp = std::ldexp(1.0, std::ilogb(std::max(std::abs(want), 1.2e-38)) - 23);
            const double err = std::abs(y[i] - want) / ulp;
            if (err > worst) worst = err, worst_x = x[i];
        }
    }
    EXPECT_LE(worst, 2.0) << "worst at x = " << worst_x;
    const float inf = std::numeric_limits<float>::infinity();
    float special[] = {
        std::numeric_limits<float>::quiet_NaN(), inf, -inf, 0.0f, -0.0f, 1e-45f, -30.0f};
    tanh_avx2(special, 7);
    EXPECT_TRUE(std::isnan(special[0]));
    EXPECT_EQ(special[1], 1.0f);
    EXPECT_EQ(special[2], -1.0f);
    EXPECT_TRUE(special[3] == 0.0f && !std::signbit(special[3]));
    EXPECT_TRUE(special[4] == 0.0f && std::signbit(special[4]));
    EXPECT_EQ(special[5], 1e-45f);
    EXPECT_EQ(special[6], -1.0f);
}
#endif

}  // namespace
}  // namespace eirnn::cpu
