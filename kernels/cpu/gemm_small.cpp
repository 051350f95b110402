// Register-blocked SGEMM microkernels behind gemm_small (why: gemm_small.hpp). For C (M,N) (+)= A·B
// C is cut into tiles of R rows x V vectors (AVX-512: 8 x 2x16 = 16 zmm accumulators, 8 x 3x16 for
// a last panel of 33..48 columns; AVX2: 6 x 2x8 = 12 ymm, 3 x 3x8 for a last panel of 17..24
// columns, up to 8 vectors for one or two rows) that stay in registers for the whole K loop. Per k
// a tile loads V vectors of row k of B, broadcasts R scalars A(m,k) (any strides) and does R x V
// FMAs. Loops: K in blocks of kBlockK, then column panels (32 or 16 columns, the wider last ones
// above), then row tiles, so that one panel of B stays in L1 while every row tile reuses it. B
// comes packed (pack_b, once for many calls), is packed per panel when many rows reuse it, or is
// read in place; with AVX2 A is packed too in that case. Tails: the last vector is masked (AVX-512
// k-masks, AVX2 vmaskmov); fewer rows use a smaller instantiation. Each element of C sums its k in
// order in one fp32 accumulator. Segments (gemm_small_segments) are the K blocks' rows in turn
// where AVX2 packs both operands, else one call each.
#include "kernels/cpu/gemm_small.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#define EIRNN_GEMM_X86 1
#define EIRNN_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,fma")))
#define EIRNN_TARGET_AVX2 __attribute__((target("avx2,fma")))
#endif

namespace eirnn::cpu {

namespace {

/// One call's operands (see gemm_small in the header).
struct GemmArgs {
    int M, N, K;
    const float* a;
    long sam, sak;
    const float* b;
    long ldb;
    bool accumulate;
    float* c;
    long ldc;
    /// B already packed by pack_b for this instruction set (b and ldb unused), or null.
    const float* prepacked = nullptr;
    /// S segments of depth K (gemm_small_segments): A and B of segment j start seg_a and seg_b
    /// floats after those of segment j-1.
    int S = 1;
    long seg_a = 0, seg_b = 0;
};

/// Where the rows k = 0..S*K-1 of an operand of a segmented product start: k*stride within a
/// segment of kseg rows, the segments `seg` apart (one segment: k*stride).
struct KRows {
    long stride;
    int kseg;
    long seg;
};

/// Walks the rows of `rows` from row k0 on, one next() per row (no division per row).
class RowCursor {
public:
    RowCursor(const float* base, const KRows& rows, int k0)
        : p_(base + (k0 / rows.kseg) * rows.seg + (k0 % rows.kseg) * rows.stride),
          stride_(rows.stride),
          jump_(rows.seg - (rows.kseg - 1) * rows.stride),
          kseg_(rows.kseg),
          kk_(k0 % rows.kseg) {}
    const float* row() const { return p_; }
    void next() {
        if (++kk_ == kseg_) {
            kk_ = 0;
            p_ += jump_;
        } else {
            p_ += stride_;
        }
    }

private:
    const float* p_;
    long stride_, jump_;
    int kseg_, kk_;
};

/// K block: a 32-column panel of B over kBlockK rows is 32 KiB, which fits L1 beside A's rows.
constexpr int kBlockK = 256;
/// Copy a panel of B to a contiguous buffer only when more rows than this reuse it (the weight
/// gradient: at N = 256 about 15% faster on Sapphire Rapids, as with ldb = 1 KiB the panel's rows
/// alias in L1). The per-step products (M = 64) get B packed once per sweep instead (pack_b).
constexpr int kPackRows = 64;
/// Below this many columns (one AVX-512 vector) the transposed product is used where it can be.
constexpr int kSkinny = 16;

// ---- portable: four rows of C at a time, the column loop left to the auto-vectoriser ----

void gemm_portable(const GemmArgs& g) {
    int m = 0;
    for (; m + 4 <= g.M; m += 4) {
        float* __restrict c0 = g.c + m * g.ldc;
        float* __restrict c1 = c0 + g.ldc;
        float* __restrict c2 = c1 + g.ldc;
        float* __restrict c3 = c2 + g.ldc;
        if (!g.accumulate)
            for (float* r : {c0, c1, c2, c3}) std::fill(r, r + g.N, 0.0f);
        const float* a0 = g.a + m * g.sam;
        for (int k = 0; k < g.K; ++k) {
            const long ak = k * g.sak;
            const float x0 = a0[ak], x1 = a0[g.sam + ak], x2 = a0[2 * g.sam + ak];
            const float x3 = a0[3 * g.sam + ak];
            const float* __restrict br = g.b + k * g.ldb;
            for (int n = 0; n < g.N; ++n) {
                c0[n] += x0 * br[n];
                c1[n] += x1 * br[n];
                c2[n] += x2 * br[n];
                c3[n] += x3 * br[n];
            }
        }
    }
    for (; m < g.M; ++m) {
        float* __restrict cr = g.c + m * g.ldc;
        if (!g.accumulate) std::fill(cr, cr + g.N, 0.0f);
        for (int k = 0; k < g.K; ++k) {
            const float x = g.a[m * g.sam + k * g.sak];
            const float* __restrict br = g.b + k * g.ldb;
            for (int n = 0; n < g.N; ++n) cr[n] += x * br[n];
        }
    }
}

#if defined(EIRNN_GEMM_X86)

// ---- AVX-512: 8 x 32 tiles ----

constexpr int kRows512 = 8, kCols512 = 32;
/// The last panel when 1..16 columns would be left after it: 33..48 columns, three vectors (8 x 3
/// tiles, 24 accumulators), so no one-vector panel makes a second pass over A for them (at
/// N = 100: 32 + 32 + 36 instead of 32 + 32 + 32 + 4).
constexpr int kColsWide512 = 48;

/// The width of the next AVX-512 column panel when `rest` columns are left.
constexpr int avx512_panel_width(int rest) {
    return rest > kCols512 && rest <= kColsWide512 ? rest : std::min(kCols512, rest);
}

/// C tile of R rows x V 16-float vectors over kc steps of k; `last` masks the last vector's lanes.
/// Padded: B is a packed panel, zero past its columns up to 16 * V, so its last vector is loaded
/// whole (a masked load in the inner loop made the 8 x 2 tile about 15% slower at N = 256, where
/// every lane is a column); the padded lanes' sums are not stored.
template <int R, int V, bool Padded>
EIRNN_TARGET_AVX512 void tile_avx512(int kc, const float* a, long sam, long sak, const float* b,
                                     long ldb, bool accumulate, float* c, long ldc,
                                     __mmask16 last) {
    __m512 acc[R][V];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 3
        for (int v = 0; v < V; ++v)
            acc[r][v] =
                accumulate ? _mm512_maskz_loadu_ps(v == V - 1 ? last : 0xFFFF, c + r * ldc + 16 * v)
                           : _mm512_setzero_ps();
    const float* ar[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) ar[r] = a + r * sam;
    long ak = 0;
    for (int k = 0; k < kc; ++k, ak += sak, b += ldb) {
        __m512 bv[V];
#pragma GCC unroll 3
        for (int v = 0; v < V; ++v)
            bv[v] = v == V - 1 && !Padded ? _mm512_maskz_loadu_ps(last, b + 16 * v)
                                          : _mm512_loadu_ps(b + 16 * v);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
            const __m512 x = _mm512_set1_ps(ar[r][ak]);
#pragma GCC unroll 3
            for (int v = 0; v < V; ++v) acc[r][v] = _mm512_fmadd_ps(x, bv[v], acc[r][v]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 3
        for (int v = 0; v < V; ++v)
            _mm512_mask_storeu_ps(c + r * ldc + 16 * v, v == V - 1 ? last : 0xFFFF, acc[r][v]);
}

using Tile512 = void (*)(int, const float*, long, long, const float*, long, bool, float*, long,
                         __mmask16);

/// kTiles512[Padded][R-1][V-1].
#define EIRNN_TILES512(P)                                                       \
    {                                                                           \
        {tile_avx512<1, 1, P>, tile_avx512<1, 2, P>, tile_avx512<1, 3, P>},     \
            {tile_avx512<2, 1, P>, tile_avx512<2, 2, P>, tile_avx512<2, 3, P>}, \
            {tile_avx512<3, 1, P>, tile_avx512<3, 2, P>, tile_avx512<3, 3, P>}, \
            {tile_avx512<4, 1, P>, tile_avx512<4, 2, P>, tile_avx512<4, 3, P>}, \
            {tile_avx512<5, 1, P>, tile_avx512<5, 2, P>, tile_avx512<5, 3, P>}, \
            {tile_avx512<6, 1, P>, tile_avx512<6, 2, P>, tile_avx512<6, 3, P>}, \
            {tile_avx512<7, 1, P>, tile_avx512<7, 2, P>, tile_avx512<7, 3, P>}, \
            {tile_avx512<8, 1, P>, tile_avx512<8, 2, P>, tile_avx512<8, 3, P>}, \
    }
constexpr Tile512 kTiles512[2][kRows512][3] = {EIRNN_TILES512(false), EIRNN_TILES512(true)};
#undef EIRNN_TILES512

/// Copies kc rows of a panel of B (vecs vectors, the last masked: zero past the panel's columns)
/// to bp with row stride 16 * vecs.
EIRNN_TARGET_AVX512 void pack_panel_avx512(int kc, const float* b, long ldb, int vecs,
                                           __mmask16 last, float* bp) {
    for (int k = 0; k < kc; ++k, b += ldb, bp += 16 * vecs) {
        for (int v = 0; v + 1 < vecs; ++v)
            _mm512_storeu_ps(bp + 16 * v, _mm512_loadu_ps(b + 16 * v));
        _mm512_storeu_ps(bp + 16 * (vecs - 1), _mm512_maskz_loadu_ps(last, b + 16 * (vecs - 1)));
    }
}

EIRNN_TARGET_AVX512 void gemm_avx512(const GemmArgs& g) {
    alignas(64) float packed[kBlockK * kColsWide512];
    const bool pack = g.M > kPackRows;
    for (int k0 = 0; k0 < g.K; k0 += kBlockK) {
        const int kc = std::min(kBlockK, g.K - k0);
        const bool accumulate = g.accumulate || k0 > 0;
        const float* a = g.a + k0 * g.sak;
        const float* b = g.b + k0 * g.ldb;
        long offset = 0;  // of the panel in g.prepacked
        for (int j0 = 0, nc = 0; j0 < g.N; j0 += nc) {
            nc = avx512_panel_width(g.N - j0);
            const int vecs = (nc + 15) / 16;
            const __mmask16 last = static_cast<__mmask16>((1u << (nc - 16 * (vecs - 1))) - 1);
            const float* panel = b + j0;
            long ldp = g.ldb;
            if (g.prepacked) {
                // Panels of 16 * vecs columns, each K rows, one after the other (pack_b).
                ldp = 16 * vecs;
                panel = g.prepacked + offset + static_cast<long>(k0) * ldp;
                offset += static_cast<long>(g.K) * ldp;
            } else if (pack) {
                pack_panel_avx512(kc, panel, g.ldb, vecs, last, packed);
                panel = packed;
                ldp = 16 * vecs;
            }
            const bool padded = g.prepacked || pack;
            for (int i0 = 0; i0 < g.M; i0 += kRows512) {
                const int rows = std::min(kRows512, g.M - i0);
                kTiles512[padded][rows - 1][vecs - 1](kc, a + i0 * g.sam, g.sam, g.sak, panel, ldp,
                                                      accumulate, g.c + i0 * g.ldc + j0, g.ldc,
                                                      last);
            }
        }
    }
}

// ---- AVX2 + FMA: 6 x 16 tiles ----

constexpr int kRows256 = 6, kCols256 = 16;

/// C tile of R rows x V 8-float vectors; with Masked the last vector only touches lanes in `last`
/// of C, and of B too unless PaddedB (a packed B is zero past its columns, so it is read whole).
template <int R, int V, bool Masked, bool PaddedB = false>
EIRNN_TARGET_AVX2 void tile_avx2(int kc, const float* a, long sam, long sak, const float* b,
                                 long ldb, bool accumulate, float* c, long ldc, __m256i last) {
    __m256 acc[R][V];
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
        for (int v = 0; v < V; ++v) {
            const float* p = c + r * ldc + 8 * v;
            acc[r][v] = !accumulate              ? _mm256_setzero_ps()
                        : (Masked && v == V - 1) ? _mm256_maskload_ps(p, last)
                                                 : _mm256_loadu_ps(p);
        }
    const float* ar[R];
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) ar[r] = a + r * sam;
    long ak = 0;
    for (int k = 0; k < kc; ++k, ak += sak, b += ldb) {
        __m256 bv[V];
#pragma GCC unroll 8
        for (int v = 0; v < V; ++v)
            bv[v] = (Masked && !PaddedB && v == V - 1) ? _mm256_maskload_ps(b + 8 * v, last)
                                                       : _mm256_loadu_ps(b + 8 * v);
#pragma GCC unroll 12
        for (int r = 0; r < R; ++r) {
            const __m256 x = _mm256_broadcast_ss(ar[r] + ak);
#pragma GCC unroll 8
            for (int v = 0; v < V; ++v) acc[r][v] = _mm256_fmadd_ps(x, bv[v], acc[r][v]);
        }
    }
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
        for (int v = 0; v < V; ++v) {
            float* p = c + r * ldc + 8 * v;
            if (Masked && v == V - 1)
                _mm256_maskstore_ps(p, last, acc[r][v]);
            else
                _mm256_storeu_ps(p, acc[r][v]);
        }
}

using Tile256 = void (*)(int, const float*, long, long, const float*, long, bool, float*, long,
                         __m256i);

template <int R, int V>
struct Tiles256 {
    /// [0: unmasked, 1: masked, 2: masked C, B zero-padded]
    static constexpr Tile256 kFns[3] = {tile_avx2<R, V, false>, tile_avx2<R, V, true>,
                                        tile_avx2<R, V, true, true>};
};

/// Tiles of 16-column panels: kTiles256[R-1][V-1][Masked], R = 1..6, V = 1..2.
constexpr const Tile256* kTiles256[kRows256][2] = {
    {Tiles256<1, 1>::kFns, Tiles256<1, 2>::kFns}, {Tiles256<2, 1>::kFns, Tiles256<2, 2>::kFns},
    {Tiles256<3, 1>::kFns, Tiles256<3, 2>::kFns}, {Tiles256<4, 1>::kFns, Tiles256<4, 2>::kFns},
    {Tiles256<5, 1>::kFns, Tiles256<5, 2>::kFns}, {Tiles256<6, 1>::kFns, Tiles256<6, 2>::kFns},
};

/// The last panel when 1..8 columns would be left after it: 17..24 columns, three vectors, tiles
/// of 4 rows (12 accumulators; M = 64 has no row tail), or 3 when A is packed in panels of 6 rows.
/// kTiles256Wide[R-1][mask].
constexpr int kRowsWide = 4, kRowsWidePackedA = 3, kColsWide = 24;
constexpr const Tile256* kTiles256Wide[kRowsWide] = {Tiles256<1, 3>::kFns, Tiles256<2, 3>::kFns,
                                                     Tiles256<3, 3>::kFns, Tiles256<4, 3>::kFns};

/// C of at most 8 columns (an output layer's product y = h W_out^T on its own: the forward's last
/// step): one vector per row, so tiles of up to 12 rows (12 accumulators).
/// kTiles256Narrow[R-1][Masked].
constexpr int kRowsNarrow = 12;
constexpr const Tile256* kTiles256Narrow[kRowsNarrow] = {
    Tiles256<1, 1>::kFns, Tiles256<2, 1>::kFns,  Tiles256<3, 1>::kFns,  Tiles256<4, 1>::kFns,
    Tiles256<5, 1>::kFns, Tiles256<6, 1>::kFns,  Tiles256<7, 1>::kFns,  Tiles256<8, 1>::kFns,
    Tiles256<9, 1>::kFns, Tiles256<10, 1>::kFns, Tiles256<11, 1>::kFns, Tiles256<12, 1>::kFns};

/// One or two rows of C (the output layer's gradient, a few steps of B rows at a time): a
/// 16-column panel would give 2 or 4 accumulators, too few to cover the FMA latency, so the
/// panels are 1..8 vectors wide (one row) or 1..6 (two rows). kTilesSkinny[R-1][V-1][Masked].
constexpr int kSkinnyV1 = 8, kSkinnyV2 = 6;
constexpr const Tile256* kTilesSkinny[2][kSkinnyV1] = {
    {Tiles256<1, 1>::kFns, Tiles256<1, 2>::kFns, Tiles256<1, 3>::kFns, Tiles256<1, 4>::kFns,
     Tiles256<1, 5>::kFns, Tiles256<1, 6>::kFns, Tiles256<1, 7>::kFns, Tiles256<1, 8>::kFns},
    {Tiles256<2, 1>::kFns, Tiles256<2, 2>::kFns, Tiles256<2, 3>::kFns, Tiles256<2, 4>::kFns,
     Tiles256<2, 5>::kFns, Tiles256<2, 6>::kFns, nullptr, nullptr},
};

/// Lanes 0..tail-1 of a vector (tail = 1..8) as a vmaskmov mask.
EIRNN_TARGET_AVX2 __m256i lanes_below(int tail) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(tail), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/// Copies rows k0..k0+kc-1 of a panel of B (nc columns from b on, rows as `rows` says) to bp
/// with row stride ldp (a multiple of 8 that holds nc), zero past nc.
EIRNN_TARGET_AVX2 void pack_panel_avx2(int kc, const float* b, const KRows& rows, int k0, int nc,
                                       long ldp, float* bp) {
    const int vecs = (nc + 7) / 8;
    const __m256i last = lanes_below(nc - 8 * (vecs - 1));
    RowCursor cur(b, rows, k0);
    for (int k = 0; k < kc; ++k, bp += ldp, cur.next()) {
        const float* br = cur.row();
        for (int v = 0; v + 1 < vecs; ++v)
            _mm256_storeu_ps(bp + 8 * v, _mm256_loadu_ps(br + 8 * v));
        _mm256_storeu_ps(bp + 8 * (vecs - 1), _mm256_maskload_ps(br + 8 * (vecs - 1), last));
    }
}

EIRNN_TARGET_AVX2 void gemm_avx2_skinny(const GemmArgs& g) {
    const int maxv = g.M == 1 ? kSkinnyV1 : kSkinnyV2;
    const int nv = (g.N + 7) / 8;
    const int panels = (nv + maxv - 1) / maxv;
    for (int k0 = 0; k0 < g.K; k0 += kBlockK) {
        const int kc = std::min(kBlockK, g.K - k0);
        const bool accumulate = g.accumulate || k0 > 0;
        int j0 = 0;
        for (int p = 0; p < panels; ++p) {
            const int vecs = nv / panels + (p < nv % panels ? 1 : 0);
            const int nc = std::min(8 * vecs, g.N - j0);
            const int tail = nc - 8 * (vecs - 1);
            kTilesSkinny[g.M - 1][vecs - 1][tail < 8](kc, g.a + k0 * g.sak, g.sam, g.sak,
                                                      g.b + k0 * g.ldb + j0, g.ldb, accumulate,
                                                      g.c + j0, g.ldc, lanes_below(tail));
            j0 += nc;
        }
    }
}

/// The width of the next AVX2 column panel of B when `rest` columns are left: 16, or all of them
/// when 17..24 are left (so no panel of 1..8 columns follows a 16-wide one).
constexpr int avx2_panel_width(int rest) {
    return rest > kCols256 && rest <= kColsWide ? rest : std::min(kCols256, rest);
}

/// Copies a column-major A (A(m,k) = row k of `rows` from a, at m: the weight gradient's) for
/// m < M and k0 <= k < k0 + kc to ap in panels of kRows256 rows: panel p holds A(6p + r, k0 + k)
/// at ap[(p*kc + k)*6 + r], zero past M.
/// Each panel row is stored 8 wide (a masked store is slow on some CPUs): its last 2 floats land
/// on the next row, which is written after it, and up to kPackASlack floats past the last panel.
constexpr int kPackASlack = 8 - kRows256;
EIRNN_TARGET_AVX2 void pack_a_avx2(int M, int kc, const float* a, const KRows& rows, int k0,
                                   float* ap) {
    for (int i0 = 0; i0 < M; i0 += kRows256, ap += static_cast<long>(kc) * kRows256) {
        const __m256i in = lanes_below(std::min(kRows256, M - i0));
        RowCursor cur(a + i0, rows, k0);
        for (int k = 0; k < kc; ++k, cur.next())
            _mm256_storeu_ps(ap + k * kRows256, _mm256_maskload_ps(cur.row(), in));
    }
}

/// Whether gemm_avx2 packs both A and B (then it takes segments: GemmArgs::S).
bool avx2_packs_both(const GemmArgs& g) {
    return !g.prepacked && g.M > kPackRows && g.N >= kSkinny && g.sam == 1;
}

EIRNN_TARGET_AVX2 void gemm_avx2(const GemmArgs& g) {
    if (g.M <= 2 && !g.prepacked) return gemm_avx2_skinny(g);
    alignas(32) float packed[kBlockK * kColsWide];
    const bool pack = g.M > kPackRows;
    // A column-major with many rows (the weight gradient) is packed too, per K block: its rows are
    // then read from one contiguous panel instead of kc lines N floats apart, which alias in L1 at
    // N = 256. A row-major A is read along its rows already.
    const bool narrow = g.N <= 8;
    const bool pack_rows = pack && !narrow && g.sam == 1;
    // Segments (run() passes them only when both operands are packed) are rows of one product.
    const int depth = g.K * g.S;
    const KRows a_rows{g.sak, g.K, g.seg_a}, b_rows{g.ldb, g.K, g.seg_b};
    static thread_local std::vector<float> packed_a;
    if (pack_rows)
        packed_a.resize(static_cast<std::size_t>((g.M + kRows256 - 1) / kRows256) * kRows256 *
                            std::min(kBlockK, depth) +
                        kPackASlack);
    for (int k0 = 0; k0 < depth; k0 += kBlockK) {
        const int kc = std::min(kBlockK, depth - k0);
        const bool accumulate = g.accumulate || k0 > 0;
        // In place (one segment then): this K block of A and of B.
        const float* a = pack_rows ? nullptr : g.a + k0 * g.sak;
        const float* b = pack || g.prepacked ? nullptr : g.b + k0 * g.ldb;
        long sam = g.sam, sak = g.sak;
        if (pack_rows) {
            pack_a_avx2(g.M, kc, g.a, a_rows, k0, packed_a.data());
            a = packed_a.data();
            sam = 1;
            sak = kRows256;
        }
        long offset = 0;  // of the panel in g.prepacked
        for (int j0 = 0, nc = 0; j0 < g.N; j0 += nc) {
            nc = avx2_panel_width(g.N - j0);
            const int vecs = (nc + 7) / 8;
            const int tail = nc - 8 * (vecs - 1);  // lanes used in the last vector, 1..8
            const __m256i last = lanes_below(tail);
            const bool masked = tail < 8;
            const float* panel;
            long ldp = 8 * vecs;
            if (g.prepacked) {
                // Each panel K rows of 8 * vecs floats, one after the other (pack_b).
                panel = g.prepacked + offset + k0 * ldp;
                offset += g.K * ldp;
            } else if (pack) {
                pack_panel_avx2(kc, g.b + j0, b_rows, k0, nc, ldp, packed);
                panel = packed;
            } else {
                panel = b + j0;
                ldp = g.ldb;
            }
            const int rows_per_tile = narrow      ? kRowsNarrow
                                      : vecs == 3 ? (pack_rows ? kRowsWidePackedA : kRowsWide)
                                                  : kRows256;
            // A packed panel of B is zero past nc: only C's last vector needs the mask.
            const int mask = !masked ? 0 : (g.prepacked || pack) ? 2 : 1;
            for (int i0 = 0; i0 < g.M; i0 += rows_per_tile) {
                const int rows = std::min(rows_per_tile, g.M - i0);
                const Tile256* fns = narrow      ? kTiles256Narrow[rows - 1]
                                     : vecs == 3 ? kTiles256Wide[rows - 1]
                                                 : kTiles256[rows - 1][vecs - 1];
                // Packed A: row i0 is in panel i0 / 6 at offset i0 % 6 (3 rows per tile then).
                const float* ai =
                    pack_rows
                        ? a + (i0 / kRows256) * static_cast<long>(kc) * kRows256 + i0 % kRows256
                        : a + i0 * sam;
                fns[mask](kc, ai, sam, sak, panel, ldp, accumulate, g.c + i0 * g.ldc + j0, g.ldc,
                          last);
            }
        }
    }
}

/// Floats of B (K,N) packed in column panels of width(columns left) columns, each padded to whole
/// vectors of `lanes` floats (pack_b).
std::size_t packed_floats(int K, int N, int lanes, int (*width)(int)) {
    std::size_t size = 0;
    for (int j0 = 0, nc = 0; j0 < N; j0 += nc) {
        nc = width(N - j0);
        size += static_cast<std::size_t>(K) * lanes * ((nc + lanes - 1) / lanes);
    }
    return size;
}

#endif  // EIRNN_GEMM_X86

GemmIsa detect_isa() {
#if defined(EIRNN_GEMM_X86)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("fma"))
        return GemmIsa::Avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return GemmIsa::Avx2;
#endif
    return GemmIsa::Portable;
}

void run(GemmIsa isa, const GemmArgs& g) {
    if (g.M <= 0 || g.N <= 0) return;
    if (g.K <= 0 || g.S <= 0) {
        if (!g.accumulate)
            for (int m = 0; m < g.M; ++m) std::fill(g.c + m * g.ldc, g.c + m * g.ldc + g.N, 0.0f);
        return;
    }
    bool one_product = g.S == 1;
#if defined(EIRNN_GEMM_X86)
    one_product = one_product || (isa == GemmIsa::Avx2 && avx2_packs_both(g));
#endif
    if (!one_product) {
        // Segments one call after another: C carries each element's sum from one to the next.
        GemmArgs one = g;
        one.S = 1;
        for (int j = 0; j < g.S; ++j) {
            one.a = g.a + j * g.seg_a;
            one.b = g.b + j * g.seg_b;
            one.accumulate = g.accumulate || j > 0;
            run(isa, one);
        }
        return;
    }
    if (g.N < kSkinny && g.M >= kSkinny && g.sam == 1 && !g.prepacked) {
        // Few columns, A column-major (the input-weight gradient, N = I): the transposed product
        // C^T (N,M) = B^T A^T puts the vector lanes along M. A^T is row-major (leading dimension
        // sak); B^T has strides 1 and ldb.
        // C^T starts from C when accumulating, so that each element's sum is the same as in place.
        std::vector<float> ct(static_cast<std::size_t>(g.N) * g.M);
        if (g.accumulate) transpose(g.M, g.N, g.c, g.ldc, ct.data(), g.M);
        run(isa, GemmArgs{g.N, g.M, g.K, g.b, 1, g.ldb, g.a, g.sak, g.accumulate, ct.data(), g.M});
        transpose(g.N, g.M, ct.data(), g.M, g.c, g.ldc);
        return;
    }
    switch (isa) {
#if defined(EIRNN_GEMM_X86)
        case GemmIsa::Avx512:
            gemm_avx512(g);
            return;
        case GemmIsa::Avx2:
            gemm_avx2(g);
            return;
#endif
        default:
            gemm_portable(g);
            return;
    }
}

}  // namespace

GemmIsa gemm_small_isa() {
    static const GemmIsa isa = detect_isa();
    return isa;
}

bool gemm_isa_supported(GemmIsa isa) {
    // The enumerators are ordered by width, and each wider set implies the narrower ones.
    return static_cast<int>(isa) <= static_cast<int>(gemm_small_isa());
}

const char* gemm_isa_name(GemmIsa isa) {
    switch (isa) {
        case GemmIsa::Avx512:
            return "avx512";
        case GemmIsa::Avx2:
            return "avx2";
        case GemmIsa::Portable:
            return "portable";
    }
    return "?";
}

void gemm_small(int M, int N, int K, const float* a, long sam, long sak, const float* b, long ldb,
                bool accumulate, float* c, long ldc) {
    run(gemm_small_isa(), GemmArgs{M, N, K, a, sam, sak, b, ldb, accumulate, c, ldc});
}

void gemm_small(GemmIsa isa, int M, int N, int K, const float* a, long sam, long sak,
                const float* b, long ldb, bool accumulate, float* c, long ldc) {
    if (!gemm_isa_supported(isa))
        throw std::invalid_argument(std::string("gemm_small: this CPU cannot run ") +
                                    gemm_isa_name(isa));
    run(isa, GemmArgs{M, N, K, a, sam, sak, b, ldb, accumulate, c, ldc});
}

void gemm_small_segments(int M, int N, int K, int S, const float* a, long sam, long sak, long seg_a,
                         const float* b, long ldb, long seg_b, bool accumulate, float* c,
                         long ldc) {
    gemm_small_segments(gemm_small_isa(), M, N, K, S, a, sam, sak, seg_a, b, ldb, seg_b, accumulate,
                        c, ldc);
}

void gemm_small_segments(GemmIsa isa, int M, int N, int K, int S, const float* a, long sam,
                         long sak, long seg_a, const float* b, long ldb, long seg_b,
                         bool accumulate, float* c, long ldc) {
    if (!gemm_isa_supported(isa))
        throw std::invalid_argument(std::string("gemm_small_segments: this CPU cannot run ") +
                                    gemm_isa_name(isa));
    GemmArgs g{M, N, K, a, sam, sak, b, ldb, accumulate, c, ldc};
    g.S = S;
    g.seg_a = seg_a;
    g.seg_b = seg_b;
    run(isa, g);
}

void pack_b(GemmIsa isa, int K, int N, const float* b, long ldb, PackedB& out) {
    if (!gemm_isa_supported(isa))
        throw std::invalid_argument(std::string("pack_b: this CPU cannot run ") +
                                    gemm_isa_name(isa));
    out.isa = isa;
    out.K = K;
    out.N = N;
    switch (isa) {
#if defined(EIRNN_GEMM_X86)
        case GemmIsa::Avx512: {
            out.data.resize(packed_floats(K, N, 16, avx512_panel_width));
            float* dst = out.data.data();
            for (int j0 = 0, nc = 0; j0 < N; j0 += nc) {
                nc = avx512_panel_width(N - j0);
                const int vecs = (nc + 15) / 16;
                const auto last = static_cast<__mmask16>((1u << (nc - 16 * (vecs - 1))) - 1);
                pack_panel_avx512(K, b + j0, ldb, vecs, last, dst);
                dst += static_cast<long>(K) * 16 * vecs;
            }
            return;
        }
        case GemmIsa::Avx2: {
            out.data.resize(packed_floats(K, N, 8, avx2_panel_width));
            float* dst = out.data.data();
            for (int j0 = 0, nc = 0; j0 < N; j0 += nc) {
                nc = avx2_panel_width(N - j0);
                const long ldp = 8 * ((nc + 7) / 8);
                pack_panel_avx2(K, b + j0, KRows{ldb, K, 0}, 0, nc, ldp, dst);
                dst += K * ldp;
            }
            return;
        }
#endif
        default:
            out.data.resize(static_cast<std::size_t>(K) * N);
            for (int k = 0; k < K; ++k)
                std::copy(b + k * ldb, b + k * ldb + N,
                          out.data.begin() + static_cast<long>(k) * N);
            return;
    }
}

void pack_b(int K, int N, const float* b, long ldb, PackedB& out) {
    pack_b(gemm_small_isa(), K, N, b, ldb, out);
}

void gemm_small(int M, const float* a, long sam, long sak, const PackedB& b, bool accumulate,
                float* c, long ldc) {
    GemmArgs g{M, b.N, b.K, a, sam, sak, b.data.data(), b.N, accumulate, c, ldc};
    if (b.isa != GemmIsa::Portable) g.prepacked = b.data.data();
    run(b.isa, g);
}

}  // namespace eirnn::cpu
