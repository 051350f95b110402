// Eigenvalues (only) of one real non-symmetric N x N matrix in double precision, written once for
// a team of threads that works on one matrix together: balancing as in LAPACK dgebal ('B':
// permutation, then scaling by powers of 2), Householder reduction of the balanced block to upper
// Hessenberg form (dgehd2), Francis implicit double-shift QR with deflation (dlahqr, eigenvalues
// only, with its Ahues-Kressner deflation test, exceptional shifts and dlanv2 for 2 x 2 blocks).
//
// The team is one CUDA thread block (kernels/cuda/eig.cu: BlockTeam, the matrix in shared or global
// memory) or one CPU thread (SerialTeam: the CPU twin, host/analysis/eig_twin.cpp). A team exposes
// kLanes, rank(), size(), sync(), sync_warp0() (a sync of ranks 0..31 only, called by every
// thread), leader() and all_reduce(Red4&). kLanes > 1 (SerialTeam only: one thread) lets the
// Hessenberg reduction take kLanes rows or columns per pass and runs each QR sweep in an order
// suited to one core (serial_sweep); every entry still sees the same operations in the same order,
// so the twin's bits are those of the team code run by one thread (tests/test_eig_twin.cpp, which
// also runs the team code with concurrent CPU threads; the emulated device runs the kernel). Every
// thread runs all scalar code redundantly on values read after a sync, so all threads take the same
// branches; vector work is split over threads (rows or columns, strided by size()), each phase ends
// with sync(). Scalars derived from shared data are written by the leader only, in a phase in which
// no other thread reads them. No CUDA headers.
//
// Storage: A(i, j) = a[i * ld + j]. The matrix is overwritten.
#pragma once
#include <cmath>
#include <cstddef>
#include <initializer_list>

#include "kernels/hd.hpp"

namespace eirnn::eig {

// LAPACK dlamch values for IEEE double.
constexpr double kSafmin = 2.2250738585072014e-308;  // dlamch('S')
constexpr double kEps = 1.1102230246251565e-16;      // dlamch('E'): relative machine epsilon
constexpr double kUlp = 2.220446049250313e-16;       // dlamch('P') = eps * base
constexpr double kHuge = 1.7976931348623157e308;

/// The per-matrix outcome, like LAPACK's info.
enum : int {
    kConverged = 0,
    kNonFinite = -1,  // the matrix has NaN or infinite entries (eigenvalues NaN)
    // > 0: the QR iteration did not converge; eigenvalues 0..info-1 are missing (1-based info).
};

/// Two sums and two maxima reduced over a team in one step.
struct Red4 {
    double s0 = 0, s1 = 0;
    double m0 = -kHuge, m1 = -kHuge;
};

/// Writes r to 4 doubles (a slot of a team's reduction scratch).
EIRNN_HD inline void store(const Red4& r, double* slot) {
    slot[0] = r.s0;
    slot[1] = r.s1;
    slot[2] = r.m0;
    slot[3] = r.m1;
}

/// Combines `count` slots written by store(), in slot order (so every reader gets the same bits).
EIRNN_HD inline Red4 combine(const double* slots, int count) {
    Red4 t;
    for (int q = 0; q < count; ++q) {
        t.s0 += slots[4 * q + 0];
        t.s1 += slots[4 * q + 1];
        t.m0 = slots[4 * q + 2] > t.m0 ? slots[4 * q + 2] : t.m0;
        t.m1 = slots[4 * q + 3] > t.m1 ? slots[4 * q + 3] : t.m1;
    }
    return t;
}

/// One thread working alone (the CPU twin). work: n doubles of scratch.
struct SerialTeam {
    static constexpr int kLanes = 8;  // rows or columns a thread takes at a time where it can
    double* work = nullptr;
    int rank() const { return 0; }
    int size() const { return 1; }
    bool leader() const { return true; }
    void sync() const {}
    void sync_warp0() const {}
    void all_reduce(Red4&) const {}
};

struct Mat {
    double* a;
    int ld;
    EIRNN_HD double& operator()(int i, int j) const {
        return a[static_cast<std::ptrdiff_t>(i) * ld + j];
    }
};

EIRNN_HD inline double dmax(double a, double b) {
    return a > b ? a : b;
}
EIRNN_HD inline double dmin(double a, double b) {
    return a < b ? a : b;
}
EIRNN_HD inline double sign_of(double a, double b) {  // Fortran SIGN(a, b)
    return b >= 0 ? std::fabs(a) : -std::fabs(a);
}

/// sqrt(x^2 + y^2) without destructive underflow or overflow (LAPACK dlapy2).
EIRNN_HD inline double dlapy2(double x, double y) {
    double xa = std::fabs(x), ya = std::fabs(y);
    double w = dmax(xa, ya), z = dmin(xa, ya);
    if (z == 0 || w > kHuge) return w;
    double q = z / w;
    return w * std::sqrt(1 + q * q);
}

/// Householder reflector of order n for (alpha, x[0..n-2]) in registers (LAPACK dlarfg, n <= 3):
/// alpha becomes beta, x becomes v(2..n), returns tau.
EIRNN_HD inline double dlarfg_small(int n, double& alpha, double* x) {
    if (n <= 1) return 0;
    double xnorm = n == 2 ? std::fabs(x[0]) : dlapy2(x[0], x[1]);
    if (xnorm == 0) return 0;
    double beta = -sign_of(dlapy2(alpha, xnorm), alpha);
    const double safmin = kSafmin / kEps, rsafmn = 1 / safmin;
    int knt = 0;
    if (std::fabs(beta) < safmin) {
        do {
            ++knt;
            for (int j = 0; j < n - 1; ++j) x[j] *= rsafmn;
            beta *= rsafmn;
            alpha *= rsafmn;
        } while (std::fabs(beta) < safmin && knt < 20);
        xnorm = n == 2 ? std::fabs(x[0]) : dlapy2(x[0], x[1]);
        beta = -sign_of(dlapy2(alpha, xnorm), alpha);
    }
    double tau = (beta - alpha) / beta;
    double scal = 1 / (alpha - beta);
    for (int j = 0; j < n - 1; ++j) x[j] *= scal;
    for (int j = 0; j < knt; ++j) beta *= safmin;
    alpha = beta;
    return tau;
}

/// Eigenvalues of the 2 x 2 block [a b; c d] (LAPACK dlanv2, values only).
EIRNN_HD inline void dlanv2(double a, double b, double c, double d, double& rt1r, double& rt1i,
                            double& rt2r, double& rt2i) {
    constexpr double multpl = 4;
    // safmn2 = base^int(log(safmin / eps) / log(base) / 2) with eps = dlamch('P').
    const double safmn2 = 2.0020841800044864e-146;  // 2^-484
    const double safmx2 = 1 / safmn2;
    if (c == 0) {
    } else if (b == 0) {
        double temp = d;
        d = a;
        a = temp;
        b = -c;
        c = 0;
    } else if ((a - d) == 0 && sign_of(1, b) != sign_of(1, c)) {
    } else {
        double temp = a - d;
        double p = 0.5 * temp;
        double bcmax = dmax(std::fabs(b), std::fabs(c));
        double bcmis = dmin(std::fabs(b), std::fabs(c)) * sign_of(1, b) * sign_of(1, c);
        double scale = dmax(std::fabs(p), bcmax);
        double z = (p / scale) * p + (bcmax / scale) * bcmis;
        if (z >= multpl * kUlp) {
            // Real eigenvalues.
            z = p + sign_of(std::sqrt(scale) * std::sqrt(z), p);
            a = d + z;
            d = d - (bcmax / z) * bcmis;
            b = b - c;
            c = 0;
        } else {
            // Complex or nearly equal real eigenvalues: make the diagonal equal.
            int count = 0;
            double sigma = b + c;
            for (;;) {
                ++count;
                scale = dmax(std::fabs(temp), std::fabs(sigma));
                if (scale >= safmx2) {
                    sigma *= safmn2;
                    temp *= safmn2;
                    if (count <= 20) continue;
                }
                if (scale <= safmn2) {
                    sigma *= safmx2;
                    temp *= safmx2;
                    if (count <= 20) continue;
                }
                break;
            }
            p = 0.5 * temp;
            double tau = dlapy2(sigma, temp);
            double cs = std::sqrt(0.5 * (1 + std::fabs(sigma) / tau));
            double sn = -(p / (tau * cs)) * sign_of(1, sigma);
            double aa = a * cs + b * sn, bb = -a * sn + b * cs;
            double cc = c * cs + d * sn, dd = -c * sn + d * cs;
            a = aa * cs + cc * sn;
            b = bb * cs + dd * sn;
            c = -aa * sn + cc * cs;
            d = -bb * sn + dd * cs;
            temp = 0.5 * (a + d);
            a = temp;
            d = temp;
            if (c != 0) {
                if (b != 0) {
                    if (sign_of(1, b) == sign_of(1, c)) {
                        // Real eigenvalues.
                        double sab = std::sqrt(std::fabs(b)), sac = std::sqrt(std::fabs(c));
                        p = sign_of(sab * sac, c);
                        a = temp + p;
                        d = temp - p;
                        b = b - c;
                        c = 0;
                    }
                } else {
                    b = -c;
                    c = 0;
                }
            }
        }
    }
    rt1r = a;
    rt2r = d;
    if (c == 0) {
        rt1i = 0;
        rt2i = 0;
    } else {
        rt1i = std::sqrt(std::fabs(b)) * std::sqrt(std::fabs(c));
        rt2i = -rt1i;
    }
}

/// True on every thread when all n x n entries are finite.
template <class Team>
EIRNN_HD bool all_finite(Team& t, Mat A, int n) {
    Red4 r;
    for (int idx = t.rank(); idx < n * n; idx += t.size()) {
        double v = A(idx / n, idx % n);
        if (!(v - v == 0)) r.s0 += 1;  // NaN or infinite
    }
    t.all_reduce(r);
    return r.s0 == 0;
}

/// Swaps columns i and j over rows 0..rows-1, then rows i and j over columns c0..n-1.
template <class Team>
EIRNN_HD void swap_rows_cols(Team& t, Mat A, int n, int i, int j, int rows, int c0) {
    if (i == j) return;
    for (int r = t.rank(); r < rows; r += t.size()) {
        double tmp = A(r, i);
        A(r, i) = A(r, j);
        A(r, j) = tmp;
    }
    t.sync();
    for (int c = c0 + t.rank(); c < n; c += t.size()) {
        double tmp = A(i, c);
        A(i, c) = A(j, c);
        A(j, c) = tmp;
    }
    t.sync();
}

/// Balancing (dgebal 'B'). On return the eigenvalues of rows/columns outside [ilo, ihi] are the
/// diagonal entries there, and the block [ilo, ihi] is scaled by powers of 2.
template <class Team>
EIRNN_HD void balance(Team& t, Mat A, int n, int& ilo, int& ihi) {
    int k = 0, l = n - 1;
    // Rows isolating an eigenvalue (zero off-diagonal in columns 0..l) go to the bottom.
    for (;;) {
        Red4 r;
        for (int i = t.rank(); i <= l; i += t.size()) {
            bool zero = true;
            for (int j = 0; j <= l && zero; ++j) zero = j == i || A(i, j) == 0;
            if (zero) r.m0 = dmax(r.m0, i);
        }
        t.all_reduce(r);
        if (r.m0 < 0) break;
        swap_rows_cols(t, A, n, static_cast<int>(r.m0), l, l + 1, k);
        if (l == 0) {
            ilo = ihi = 0;
            return;
        }
        --l;
    }
    // Columns isolating an eigenvalue (zero off-diagonal in rows k..l) go to the left.
    for (;;) {
        Red4 r;
        for (int j = k + t.rank(); j <= l; j += t.size()) {
            bool zero = true;
            for (int i = k; i <= l && zero; ++i) zero = i == j || A(i, j) == 0;
            if (zero) r.m0 = dmax(r.m0, -j);
        }
        t.all_reduce(r);
        if (r.m0 == -kHuge) break;
        swap_rows_cols(t, A, n, static_cast<int>(-r.m0), k, l + 1, k);
        ++k;
    }
    ilo = k;
    ihi = l;
    // Scaling of rows and columns k..l by powers of 2 until the norms settle.
    constexpr double sclfac = 2, factor = 0.95;
    const double sfmin1 = kSafmin / kUlp, sfmax1 = 1 / sfmin1;
    const double sfmin2 = sfmin1 * sclfac, sfmax2 = 1 / sfmin2;
    // The scale factors are not kept (eigenvalues do not need them), so the guard against over-
    // and underflow applies to each step's factor f, where dgebal applies it to the accumulated
    // one; the sweeps are capped at 100 (dgebal has no cap; a GPU block must not spin forever).
    bool noconv = true;
    for (int sweep = 0; noconv && sweep < 100; ++sweep) {
        noconv = false;
        for (int i = k; i <= l; ++i) {
            Red4 r;
            for (int j = t.rank(); j < n; j += t.size()) {
                if (j >= k && j <= l) {
                    r.s0 += A(j, i) * A(j, i);  // column i, rows k..l
                    r.s1 += A(i, j) * A(i, j);  // row i, columns k..l
                }
                if (j <= l) r.m0 = dmax(r.m0, std::fabs(A(j, i)));  // column i, rows 0..l
                if (j >= k) r.m1 = dmax(r.m1, std::fabs(A(i, j)));  // row i, columns k..n-1
            }
            t.all_reduce(r);
            double c = std::sqrt(r.s0), rr = std::sqrt(r.s1), ca = r.m0, ra = r.m1;
            if (c == 0 || rr == 0) continue;
            double g = rr / sclfac, f = 1, s = c + rr;
            while (c < g && dmax(f, dmax(c, ca)) < sfmax2 && dmin(rr, dmin(g, ra)) > sfmin2) {
                f *= sclfac;
                c *= sclfac;
                ca *= sclfac;
                rr /= sclfac;
                g /= sclfac;
                ra /= sclfac;
            }
            g = c / sclfac;
            while (g >= rr && dmax(rr, ra) < sfmax2 && dmin(dmin(f, c), dmin(g, ca)) > sfmin2) {
                f /= sclfac;
                c /= sclfac;
                g /= sclfac;
                ca /= sclfac;
                rr *= sclfac;
                ra *= sclfac;
            }
            if ((c + rr) >= factor * s) continue;
            if (f < 1 && f <= sfmin1) continue;
            if (f > 1 && f >= sfmax1) continue;
            noconv = true;
            const double ginv = 1 / f;
            // Row i times 1/f over columns k..n-1, column i times f over rows 0..l; the diagonal
            // entry is unchanged (f is a power of 2).
            for (int j = t.rank(); j < n; j += t.size()) {
                if (j == i) continue;
                if (j >= k) A(i, j) *= ginv;
                if (j <= l) A(j, i) *= f;
            }
            t.sync();
        }
    }
}

/// 2-norm of A(r0..r1, col) over the team (scaled when the plain sum of squares would under- or
/// overflow).
template <class Team>
EIRNN_HD double column_norm(Team& t, Mat A, int col, int r0, int r1) {
    Red4 r;
    for (int i = r0 + t.rank(); i <= r1; i += t.size()) {
        double v = A(i, col);
        r.s0 += v * v;
        r.m0 = dmax(r.m0, std::fabs(v));
    }
    t.all_reduce(r);
    if (r.m0 <= 0) return 0;
    if (r.s0 < kSafmin / kEps || r.s0 > kHuge * kEps) {
        const double m = r.m0;
        Red4 q;
        for (int i = r0 + t.rank(); i <= r1; i += t.size()) {
            double v = A(i, col) / m;
            q.s0 += v * v;
        }
        t.all_reduce(q);
        return m * std::sqrt(q.s0);
    }
    return std::sqrt(r.s0);
}

/// The reflector (1, v) with factor tau, v(c) = u[c * us] for c = i+2..ihi (column i below the
/// subdiagonal, or a contiguous copy of it), applied from the right to the W rows r0..r0+W-1,
/// columns i+1..ihi: one accumulator per row, so a row's sum runs in the same order whatever W is.
template <int W>
EIRNN_HD void reflect_rows(Mat A, int r0, int i, int ihi, double tau, const double* u, int us) {
    double w[W];
    for (int q = 0; q < W; ++q) w[q] = A(r0 + q, i + 1);
    for (int c = i + 2; c <= ihi; ++c) {
        const double v = u[c * us];
        for (int q = 0; q < W; ++q) w[q] += A(r0 + q, c) * v;
    }
    for (int q = 0; q < W; ++q) {
        w[q] *= tau;
        A(r0 + q, i + 1) -= w[q];
    }
    for (int q = 0; q < W; ++q) {
        double* row = &A(r0 + q, 0);
        for (int c = i + 2; c <= ihi; ++c) row[c] -= w[q] * u[c * us];
    }
}

/// The same reflector from the left on rows i+1..ihi of the W columns c0..: one accumulator per
/// column (the same order whatever W is).
template <int W>
EIRNN_HD void reflect_columns(Mat A, int c0, int i, int ihi, double tau) {
    double w[W];
    for (int q = 0; q < W; ++q) w[q] = A(i + 1, c0 + q);
    for (int r = i + 2; r <= ihi; ++r) {
        const double v = A(r, i);
        for (int q = 0; q < W; ++q) w[q] += v * A(r, c0 + q);
    }
    for (int q = 0; q < W; ++q) {
        w[q] *= tau;
        A(i + 1, c0 + q) -= w[q];
    }
    for (int r = i + 2; r <= ihi; ++r) {
        const double v = A(r, i);
        for (int q = 0; q < W; ++q) A(r, c0 + q) -= w[q] * v;
    }
}

/// Step i of the reduction applies its reflector from the right to rows ilo..ihi (columns
/// i+1..ihi), then from the left to columns i+1..ihi. A thread takes Team::kLanes consecutive rows
/// or columns at a time (independent sums that a CPU core runs side by side), the last few one by
/// one.
template <class Team>
EIRNN_HD void reflect_right(Team& t, Mat A, int i, int ilo, int ihi, double tau) {
    constexpr int W = Team::kLanes;
    const double* u = &A(0, i);
    int us = A.ld;
    if constexpr (W > 1) {  // one thread (kLanes > 1 only for SerialTeam): v made contiguous
        for (int c = i + 2; c <= ihi; ++c) t.work[c] = A(c, i);
        u = t.work;
        us = 1;
    }
    for (int r0 = ilo + t.rank() * W; r0 <= ihi; r0 += t.size() * W) {
        if constexpr (W > 1) {
            if (r0 + W - 1 > ihi) {
                for (int r = r0; r <= ihi; ++r) reflect_rows<1>(A, r, i, ihi, tau, u, us);
                break;
            }
        }
        reflect_rows<W>(A, r0, i, ihi, tau, u, us);
    }
}

template <class Team>
EIRNN_HD void reflect_left(Team& t, Mat A, int i, int ihi, double tau) {
    constexpr int W = Team::kLanes;
    for (int c0 = i + 1 + t.rank() * W; c0 <= ihi; c0 += t.size() * W) {
        if constexpr (W > 1) {
            if (c0 + W - 1 > ihi) {
                for (int c = c0; c <= ihi; ++c) reflect_columns<1>(A, c, i, ihi, tau);
                break;
            }
        }
        reflect_columns<W>(A, c0, i, ihi, tau);
    }
}

/// Reduces the block [ilo, ihi] to upper Hessenberg form (dgehd2 restricted to the block, which
/// is all the eigenvalues need). The reflectors are left below the subdiagonal.
template <class Team>
EIRNN_HD void hessenberg(Team& t, Mat A, int ilo, int ihi) {
    const double safmin = kSafmin / kEps, rsafmn = 1 / safmin;
    for (int i = ilo; i + 2 <= ihi; ++i) {
        // Reflector for rows i+1..ihi of column i: alpha = A(i+1, i), x = A(i+2..ihi, i).
        double alpha = A(i + 1, i);
        double xnorm = column_norm(t, A, i, i + 2, ihi);
        if (xnorm == 0) continue;  // tau = 0: nothing to apply (no thread writes: no sync needed)
        double beta = -sign_of(dlapy2(alpha, xnorm), alpha);
        int knt = 0;
        if (std::fabs(beta) < safmin) {
            do {
                ++knt;
                for (int r = i + 2 + t.rank(); r <= ihi; r += t.size()) A(r, i) *= rsafmn;
                t.sync();
                beta *= rsafmn;
                alpha *= rsafmn;
            } while (std::fabs(beta) < safmin && knt < 20);
            xnorm = column_norm(t, A, i, i + 2, ihi);
            beta = -sign_of(dlapy2(alpha, xnorm), alpha);
        }
        const double tau = (beta - alpha) / beta;
        const double scal = 1 / (alpha - beta);
        for (int j = 0; j < knt; ++j) beta *= safmin;
        for (int r = i + 2 + t.rank(); r <= ihi; r += t.size()) A(r, i) *= scal;
        t.sync();
        // v = (1, A(i+2..ihi, i)). From the right on rows ilo..ihi, columns i+1..ihi.
        reflect_right(t, A, i, ilo, ihi, tau);
        // A(i+1, i) = beta: column i is not touched by either application.
        if (t.leader()) A(i + 1, i) = beta;
        t.sync();
        // From the left on rows i+1..ihi, columns i+1..ihi.
        reflect_left(t, A, i, ihi, tau);
        t.sync();
    }
}

/// The entries of column k-1 that step k of a QR sweep (bulge start m, active block l..i) sets:
/// the reflector's beta and two zeros below it, or, for the first step when m > l, the scaled
/// subdiagonal entry (dlahqr's H(k, k-1) * (1 - t1)).
EIRNN_HD inline void finish_column(Mat H, int k, int m, int l, int i, double beta, double t1) {
    if (k > m) {
        H(k, k - 1) = beta;
        H(k + 1, k - 1) = 0;
        if (k < i - 1) H(k + 2, k - 1) = 0;
    } else if (m > l) {
        H(k, k - 1) *= (1 - t1);
    }
}

/// Step k of a QR sweep on the active block ending at row i: the reflector of order nr (3, or 2
/// at the last step) with v = (1, v2, v3), and the last row jend its right application reaches.
struct Bulge {
    int k, nr, jend;
    double v2, v3, t1, t2, t3;
    /// The reflector from the left on column j (rows k..k+nr-1).
    EIRNN_HD void left(Mat H, int j) const {
        if (nr == 3) {
            left3(H, j);
        } else {
            double sum = H(k, j) + v2 * H(k + 1, j);
            H(k, j) -= sum * t1;
            H(k + 1, j) -= sum * t2;
        }
    }
    /// left() for nr = 3, for loops that test nr once.
    EIRNN_HD void left3(Mat H, int j) const {
        double sum = H(k, j) + v2 * H(k + 1, j) + v3 * H(k + 2, j);
        H(k, j) -= sum * t1;
        H(k + 1, j) -= sum * t2;
        H(k + 2, j) -= sum * t3;
    }
    /// The reflector from the right on row j (columns k..k+nr-1).
    EIRNN_HD void right(Mat H, int j) const {
        if (nr == 3) {
            double sum = H(j, k) + v2 * H(j, k + 1) + v3 * H(j, k + 2);
            H(j, k) -= sum * t1;
            H(j, k + 1) -= sum * t2;
            H(j, k + 2) -= sum * t3;
        } else {
            double sum = H(j, k) + v2 * H(j, k + 1);
            H(j, k) -= sum * t1;
            H(j, k + 1) -= sum * t2;
        }
    }
};

/// The reflector of step k from v[0..nr-1] (overwritten, as dlarfg does); beta: its beta.
EIRNN_HD inline Bulge make_bulge(int k, int i, double* v, double& beta) {
    Bulge g;
    g.k = k;
    g.nr = (i - k + 1) < 3 ? (i - k + 1) : 3;
    beta = v[0];
    g.t1 = dlarfg_small(g.nr, beta, v + 1);
    g.v2 = v[1];
    g.t2 = g.t1 * g.v2;
    g.v3 = g.nr == 3 ? v[2] : 0;
    g.t3 = g.t1 * g.v3;
    g.jend = g.nr == 3 ? (k + 3 < i ? k + 3 : i) : i;
    return g;
}

/// One QR sweep (bulge start m, deflation row l, active block l..i, updates on rows i1..i2 and
/// columns i1..i2) by one thread, v: the first step's vector. Every entry sees the operations of
/// dlahqr in dlahqr's order; only independent work is reordered: step k+1's reflector is formed
/// right after step k's corner (rows k..jend, columns k..k+nr-1), which is all it reads, so its
/// chain of divisions and square roots overlaps the rest of step k.
EIRNN_HD inline void serial_sweep(Mat H, int m, int l, int i, int i1, int i2, double* v) {
    double beta;
    Bulge g = make_bulge(m, i, v, beta);
    for (int k = m; k <= i - 1; ++k) {
        finish_column(H, k, m, l, i, beta, g.t1);
        for (int j = k; j < k + g.nr; ++j) g.left(H, j);
        for (int j = k; j <= g.jend; ++j) g.right(H, j);
        Bulge next = g;
        if (k + 1 <= i - 1) {
            for (int j = 0; j < 3 && k + 1 + j <= i; ++j) v[j] = H(k + 1 + j, k);
            next = make_bulge(k + 1, i, v, beta);
        }
        if (g.nr == 3) {
            for (int j = k + 3; j <= i2; ++j) g.left3(H, j);
        } else {
            for (int j = k + 2; j <= i2; ++j) g.left(H, j);
        }
        for (int j = i1; j < k; ++j) g.right(H, j);
        g = next;
    }
}

/// Francis double-shift QR on the upper Hessenberg block [ilo, ihi] (dlahqr with wantt = wantz =
/// false). Writes wr[ilo..ihi], wi[ilo..ihi] (leader). Returns 0, or the 1-based index i + 1 of the
/// block that did not converge within itmax_factor * max(10, nh) iterations.
template <class Team>
EIRNN_HD int hqr(Team& t, Mat H, int ilo, int ihi, double* wr, double* wi, int itmax_factor) {
    if (ilo > ihi) return 0;
    if (ilo == ihi) {
        if (t.leader()) {
            wr[ilo] = H(ilo, ilo);
            wi[ilo] = 0;
        }
        return 0;
    }
    // Clear the reflectors below the subdiagonal where the bulge chase reads.
    for (int j = ilo + t.rank(); j + 3 <= ihi; j += t.size()) {
        H(j + 2, j) = 0;
        H(j + 3, j) = 0;
    }
    if (t.leader() && ilo <= ihi - 2) H(ihi, ihi - 2) = 0;
    t.sync();

    constexpr int kexsh = 10;
    constexpr double dat1 = 0.75, dat2 = -0.4375;
    const int nh = ihi - ilo + 1;
    const double smlnum = kSafmin * (static_cast<double>(nh) / kUlp);
    const int itmax = itmax_factor * (nh > 10 ? nh : 10);
    int kdefl = 0;
    int i = ihi;
    while (i >= ilo) {
        int l = ilo;
        bool converged = false;
        for (int its = 0; its <= itmax; ++its) {
            // Look for a single small subdiagonal element (every thread, read only).
            int k;
            for (k = i; k > l; --k) {
                if (std::fabs(H(k, k - 1)) <= smlnum) break;
                double tst = std::fabs(H(k - 1, k - 1)) + std::fabs(H(k, k));
                if (tst == 0) {
                    if (k - 2 >= ilo) tst += std::fabs(H(k - 1, k - 2));
                    if (k + 1 <= ihi) tst += std::fabs(H(k + 1, k));
                }
                if (std::fabs(H(k, k - 1)) <= kUlp * tst) {
                    double hkk1 = std::fabs(H(k, k - 1)), hk1k = std::fabs(H(k - 1, k));
                    double ab = dmax(hkk1, hk1k), ba = dmin(hkk1, hk1k);
                    double hkk = std::fabs(H(k, k)), diff = std::fabs(H(k - 1, k - 1) - H(k, k));
                    double aa = dmax(hkk, diff), bb = dmin(hkk, diff);
                    double s = aa + ab;
                    if (ba * (ab / s) <= dmax(smlnum, kUlp * (bb * (aa / s)))) break;
                }
            }
            l = k;
            t.sync();  // everyone has read H(l, l-1) before it is set
            if (l > ilo && t.leader()) H(l, l - 1) = 0;
            t.sync();
            if (l >= i - 1) {
                converged = true;
                break;
            }
            ++kdefl;
            const int i1 = l, i2 = i;  // the active block

            double h11, h12, h21, h22;
            if (kdefl % (2 * kexsh) == 0) {
                double s = std::fabs(H(i, i - 1)) + std::fabs(H(i - 1, i - 2));
                h11 = dat1 * s + H(i, i);
                h12 = dat2 * s;
                h21 = s;
                h22 = h11;
            } else if (kdefl % kexsh == 0) {
                double s = std::fabs(H(l + 1, l)) + std::fabs(H(l + 2, l + 1));
                h11 = dat1 * s + H(l, l);
                h12 = dat2 * s;
                h21 = s;
                h22 = h11;
            } else {
                h11 = H(i - 1, i - 1);
                h21 = H(i, i - 1);
                h12 = H(i - 1, i);
                h22 = H(i, i);
            }
            double rt1r, rt1i, rt2r, rt2i;
            {
                double s = std::fabs(h11) + std::fabs(h12) + std::fabs(h21) + std::fabs(h22);
                if (s == 0) {
                    rt1r = rt1i = rt2r = rt2i = 0;
                } else {
                    h11 /= s;
                    h21 /= s;
                    h12 /= s;
                    h22 /= s;
                    double tr = (h11 + h22) / 2;
                    double det = (h11 - tr) * (h22 - tr) - h12 * h21;
                    double rtdisc = std::sqrt(std::fabs(det));
                    if (det >= 0) {
                        rt1r = tr * s;
                        rt2r = rt1r;
                        rt1i = rtdisc * s;
                        rt2i = -rt1i;
                    } else {
                        rt1r = tr + rtdisc;
                        rt2r = tr - rtdisc;
                        if (std::fabs(rt1r - h22) <= std::fabs(rt2r - h22)) {
                            rt1r *= s;
                            rt2r = rt1r;
                        } else {
                            rt2r *= s;
                            rt1r = rt2r;
                        }
                        rt1i = rt2i = 0;
                    }
                }
            }
            // Look for two consecutive small subdiagonal elements.
            int m;
            double v[3] = {0, 0, 0};
            for (m = i - 2; m >= l; --m) {
                double h21s = H(m + 1, m);
                double s = std::fabs(H(m, m) - rt2r) + std::fabs(rt2i) + std::fabs(h21s);
                h21s = H(m + 1, m) / s;
                v[0] = h21s * H(m, m + 1) + (H(m, m) - rt1r) * ((H(m, m) - rt2r) / s) -
                       rt1i * (rt2i / s);
                v[1] = h21s * (H(m, m) + H(m + 1, m + 1) - rt1r - rt2r);
                v[2] = h21s * H(m + 2, m + 1);
                s = std::fabs(v[0]) + std::fabs(v[1]) + std::fabs(v[2]);
                v[0] /= s;
                v[1] /= s;
                v[2] /= s;
                if (m == l) break;
                double h00 = std::fabs(H(m, m - 1)) * (std::fabs(v[1]) + std::fabs(v[2]));
                double h01 =
                    kUlp * std::fabs(v[0]) *
                    (std::fabs(H(m - 1, m - 1)) + std::fabs(H(m, m)) + std::fabs(H(m + 1, m + 1)));
                if (h00 <= h01) break;
            }
            t.sync();  // the shifts and the m scan read what the sweep's first phase writes
            // The double-shift QR sweep: bulge creation at m, then chased down to i, one team sync
            // per step. Step k applies its reflector G (rows/columns k..k+nr-1) from the left to
            // columns k..i2 and from the right to rows i1..jend. Those two parts meet only in the
            // corner (rows k..jend, columns k..k+nr-1), so the team splits the step into
            //   left on columns k+nr..i2 | right on rows i1..k-1 | the corner, left then right,
            // by the threads of the first warp (one warp sync between its two halves); every entry
            // sees the same operations in the same order as in dlahqr. Column k-1 is finished one
            // step later (pending below), when every thread has read it for its v.
            if constexpr (Team::kLanes > 1) {
                serial_sweep(H, m, l, i, i1, i2, v);
            } else {
                int pending = -1;  // the step whose column k-1 the leader still has to write
                double pending_beta = 0, pending_t1 = 0;
                for (k = m; k <= i - 1; ++k) {
                    if (k > m)
                        for (int j = 0; j < 3 && k + j <= i; ++j) v[j] = H(k + j, k - 1);
                    double beta;
                    const Bulge g = make_bulge(k, i, v, beta);
                    // The corner first (the first warp), then the rest.
                    for (int j = k + t.rank(); j < k + g.nr; j += t.size()) g.left(H, j);
                    t.sync_warp0();
                    for (int j = k + t.rank(); j <= g.jend; j += t.size()) g.right(H, j);
                    for (int j = k + g.nr + t.rank(); j <= i2; j += t.size()) g.left(H, j);
                    for (int j = i1 + t.rank(); j < k; j += t.size()) g.right(H, j);
                    if (t.leader() && pending >= 0)
                        finish_column(H, pending, m, l, i, pending_beta, pending_t1);
                    pending = k;
                    pending_beta = beta;
                    pending_t1 = g.t1;
                    t.sync();
                }
                if (t.leader() && pending >= 0)
                    finish_column(H, pending, m, l, i, pending_beta, pending_t1);
                t.sync();
            }
        }
        if (!converged) return i + 1;
        if (t.leader()) {
            if (l == i) {
                wr[i] = H(i, i);
                wi[i] = 0;
            } else {
                dlanv2(H(i - 1, i - 1), H(i - 1, i), H(i, i - 1), H(i, i), wr[i - 1], wi[i - 1],
                       wr[i], wi[i]);
            }
        }
        kdefl = 0;
        i = l - 1;
    }
    return 0;
}

/// All eigenvalues of the n x n matrix A (overwritten) into wr, wi (unsorted). Returns kConverged,
/// kNonFinite (wr = wi = NaN) or the 1-based index of the QR failure.
template <class Team>
EIRNN_HD int eigenvalues(Team& t, Mat A, int n, double* wr, double* wi, int itmax_factor = 30) {
    if (!all_finite(t, A, n)) {
        if (t.leader())
            for (int j = 0; j < n; ++j) wr[j] = wi[j] = NAN;
        return kNonFinite;
    }
    int ilo = 0, ihi = n - 1;
    balance(t, A, n, ilo, ihi);
    if (t.leader()) {
        for (int j = 0; j < ilo; ++j) {
            wr[j] = A(j, j);
            wi[j] = 0;
        }
        for (int j = ihi + 1; j < n; ++j) {
            wr[j] = A(j, j);
            wi[j] = 0;
        }
    }
    hessenberg(t, A, ilo, ihi);
    return hqr(t, A, ilo, ihi, wr, wi, itmax_factor);
}

}  // namespace eirnn::eig

namespace eirnn::eig {

/// How one thread block holds its matrix: on chip (shared memory, row stride ld) or in global
/// memory (in place, ld = N), with the team's reduction scratch in shared memory either way.
struct Shape {
    int N = 0;
    int ld = 0;
    int threads = 0;
    bool onchip = true;
    std::size_t smem_bytes = 0;
};

constexpr int kRedDoubles = 4 * 32;  // all_reduce scratch: 4 values per warp, up to 32 warps
constexpr int kMaxThreads = 256;

/// The odd row stride of a matrix held on chip or copied for the CPU twin: N, or N + 1 when N is
/// even. Walks down a column then fall on distinct shared-memory banks on a GPU and on distinct
/// cache sets on a CPU (where a power-of-two N would map a column to a few sets).
constexpr int odd_stride(int N) {
    return N | 1;
}

/// The shape for N x N matrices under a per-block shared-memory limit (bytes). An odd row stride
/// keeps the threads of a warp that walk down a column on distinct banks; when the padded matrix
/// does not fit, the unpadded one is tried before falling back to global memory.
/// threads: per block, a multiple of 32 up to kMaxThreads; 0 = N rounded up to a warp, capped.
inline Shape make_shape(int N, std::size_t smem_limit, bool force_global = false, int threads = 0) {
    Shape s;
    s.N = N;
    int t = threads > 0 ? threads : (N + 31) / 32 * 32;
    s.threads = t < 32 ? 32 : (t > kMaxThreads ? kMaxThreads : t);
    const std::size_t red = kRedDoubles * sizeof(double);
    for (int ld : {odd_stride(N), N}) {
        std::size_t bytes = red + std::size_t(N) * ld * sizeof(double);
        if (!force_global && bytes <= smem_limit) {
            s.ld = ld;
            s.onchip = true;
            s.smem_bytes = bytes;
            return s;
        }
    }
    s.ld = N;
    s.onchip = false;
    s.smem_bytes = red;
    return s;
}

/// Largest N held on chip under the limit.
inline int max_onchip_n(std::size_t smem_limit) {
    int n = 0;
    while (make_shape(n + 1, smem_limit).onchip) ++n;
    return n;
}

}  // namespace eirnn::eig
