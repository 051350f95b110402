// The fixed-point search's L-BFGS on the GPU: one warp runs the iteration of
// kernels/dynamics_lbfgs.hpp for one initial state, the iteration of host/analysis/dynamics.cpp for
// one row. Lane l owns the elements i = l, l + 32, ... of every vector of its state (in global
// scratch, coalesced); scalars (q, the step, the dot products) are warp-uniform: sums by an xor
// butterfly, which leaves the same bits on every lane, so the lanes branch together. An evaluation
// of q and grad q,
//   G = a (tanh(W x + c) - x),  grad = a (W^T (D G) - G),  D = diag(1 - tanh^2(W x + c)),
// broadcasts x through the warp's shared vector (lane l: rows l, l + 32, ... of W x), then D G
// through the other one (columns of W^T (D G)). The block's warps share W and c, copied once to
// shared memory when they fit (rows padded to an odd length: the lanes of a row-wise read hit
// distinct banks); the only __syncthreads is after that copy, the warps then run independently.
#include "host/cuda/error.hpp"
#include "kernels/cuda/dynamics.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/dynamics_lbfgs.hpp"

namespace eirnn::cuda {
namespace {

/// Sum (or max) of the 32 lanes' values v[0..31] in one fixed order (four interleaved partial sums,
/// then pairwise): every lane that runs it gets the same bits.
__device__ double tree_sum(const double* v) {
    double a0 = v[0], a1 = v[1], a2 = v[2], a3 = v[3];
    for (int i = 4; i < 32; i += 4) {
        a0 += v[i];
        a1 += v[i + 1];
        a2 += v[i + 2];
        a3 += v[i + 3];
    }
    return (a0 + a1) + (a2 + a3);
}
__device__ double tree_max(const double* v) {
    double a0 = v[0], a1 = v[1], a2 = v[2], a3 = v[3];
    for (int i = 4; i < 32; i += 4) {
        a0 = fmax(a0, v[i]);
        a1 = fmax(a1, v[i + 1]);
        a2 = fmax(a2, v[i + 2]);
        a3 = fmax(a3, v[i + 3]);
    }
    return fmax(fmax(a0, a1), fmax(a2, a3));
}

/// One warp's view of its problem.
struct WarpSystem {
    const double* w;  // row i at w + i * ld
    int ld;
    const double* c;
    double alpha;
    int N;
    int lane;
    double* xs;   // (N) shared: the state being evaluated
    double* dgs;  // (N) shared: D G
    double* red;  // (2,32) shared: the lanes' partials of a reduction, two slots used in turn
    int slot = 0;

    /// The lanes' partials through shared memory: one __syncwarp per reduction. A slot is written
    /// again two reductions later, after the next reduction's __syncwarp has ordered every read.
    __device__ const double* exchange(double v) {
        double* r = red + 32 * slot;
        slot ^= 1;
        r[lane] = v;
        __syncwarp();
        return r;
    }
    __device__ double warp_sum(double v) { return tree_sum(exchange(v)); }
    __device__ double warp_max(double v) { return tree_max(exchange(v)); }

    __device__ double dot(const double* a, const double* b) {
        double s = 0;
        for (int i = lane; i < N; i += 32) s += a[i] * b[i];
        return warp_sum(s);
    }
    __device__ double max_abs(const double* a) {
        double m = 0;
        for (int i = lane; i < N; i += 32) m = fmax(m, fabs(a[i]));
        return warp_max(m);
    }

    /// q(x); grad q into g; G into gs.
    __device__ double evaluate(const double* x, double* g, double* gs) {
        for (int i = lane; i < N; i += 32) xs[i] = x[i];
        __syncwarp();
        double ss = 0;
        for (int i = lane; i < N; i += 32) {
            const double* wi = w + static_cast<std::size_t>(i) * ld;
            double a = 0;
            for (int j = 0; j < N; ++j) a += wi[j] * xs[j];
            const double t = tanh(a + c[i]);
            const double gi = alpha * (t - xs[i]);
            ss += gi * gi;
            gs[i] = gi;
            dgs[i] = (1.0 - t * t) * gi;
        }
        __syncwarp();
        for (int j = lane; j < N; j += 32) {
            double a = 0;
            for (int i = 0; i < N; ++i) a += dgs[i] * w[static_cast<std::size_t>(i) * ld + j];
            g[j] = alpha * (a - gs[j]);
        }
        return 0.5 * warp_sum(ss);
    }
};

__global__ void __launch_bounds__(kDynamicsMaxThreads) dynamics_lbfgs_kernel(DynamicsArgs a) {
    EIRNN_DYNAMIC_SHARED(double, smem);
    const int N = a.N, H = a.history;
    const int prob = a.block_prob[blockIdx.x];
    const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
    const int warps = static_cast<int>(blockDim.x) / 32;
    const std::size_t nn = static_cast<std::size_t>(N) * N;
    const double* w = a.w + prob * nn;
    const double* c = a.c + static_cast<std::size_t>(prob) * N;
    int ld = N;
    const std::size_t per_warp = 2 * static_cast<std::size_t>(N) + 64;
    double* shared_w = smem + per_warp * warps;
    if (a.w_onchip) {
        ld = a.ld;
        double* shared_c = shared_w + static_cast<std::size_t>(N) * ld;
        for (std::size_t e = threadIdx.x; e < nn; e += blockDim.x)
            shared_w[(e / N) * ld + e % N] = w[e];
        for (int i = static_cast<int>(threadIdx.x); i < N; i += static_cast<int>(blockDim.x))
            shared_c[i] = c[i];
        __syncthreads();
        w = shared_w;
        c = shared_c;
    }
    if (warp >= a.block_states[blockIdx.x]) return;
    const std::size_t state = static_cast<std::size_t>(a.block_state[blockIdx.x]) + warp;
    double* mine = smem + per_warp * warp;
    WarpSystem sys{w, ld, c, a.alpha[prob], N, lane, mine, mine + N, mine + 2 * N};

    // Scratch of the state: g, d, trial x, trial g, G, S (H,N), Y (H,N), then per lane rho (H) and
    // the two-loop coefficients (H), interleaved over lanes (each lane reads only what it wrote).
    double* g = a.scratch + state * dynamics_scratch_doubles(N, H);
    double* d = g + N;
    double* xp = d + N;
    double* gp = xp + N;
    double* gs = gp + N;
    double* S = gs + N;
    double* Y = S + static_cast<std::size_t>(H) * N;
    double* rho = Y + static_cast<std::size_t>(H) * N + lane;  // rho[h * 32]
    double* coef = rho + static_cast<std::size_t>(H) * 32;     // coef[j * 32]
    double* const x_out = a.x + state * N;
    double* x = x_out;

    double q = sys.evaluate(x, g, gs);
    double finite = isfinite(q) ? 1.0 : 0.0;
    for (int i = lane; i < N; i += 32)
        if (!isfinite(g[i])) finite = 0.0;
    bool active = -sys.warp_max(-finite) > 0.5;  // every lane's elements finite
    int count = 0, head = 0;
    for (int it = 0; it < a.iterations && active; ++it) {
        // Direction by the two-loop recursion.
        for (int i = lane; i < N; i += 32) d[i] = -g[i];
        for (int j = 0; j < count; ++j) {
            const int h = (head - 1 - j + H) % H;
            const double* sj = S + static_cast<std::size_t>(h) * N;
            const double* yj = Y + static_cast<std::size_t>(h) * N;
            const double aj = rho[h * 32] * sys.dot(sj, d);
            coef[j * 32] = aj;
            for (int i = lane; i < N; i += 32) d[i] += -aj * yj[i];
        }
        if (count > 0) {
            const int h = (head - 1 + H) % H;
            const double* yj = Y + static_cast<std::size_t>(h) * N;
            const double sy = 1.0 / rho[h * 32];
            const double f = sy / sys.dot(yj, yj);
            for (int i = lane; i < N; i += 32) d[i] *= f;
        }
        for (int j = count - 1; j >= 0; --j) {
            const int h = (head - 1 - j + H) % H;
            const double* sj = S + static_cast<std::size_t>(h) * N;
            const double* yj = Y + static_cast<std::size_t>(h) * N;
            const double beta = rho[h * 32] * sys.dot(yj, d);
            const double f = coef[j * 32] - beta;
            for (int i = lane; i < N; i += 32) d[i] += f * sj[i];
        }
        double gd = sys.dot(g, d);
        if (!(gd < 0)) {  // not a descent direction: restart from steepest descent
            count = 0;
            for (int i = lane; i < N; i += 32) d[i] = -g[i];
            gd = -sys.dot(g, g);
        }
        const double dmax = sys.max_abs(d);
        if (dmax > lbfgs::kMaxStep) {
            const double f = lbfgs::kMaxStep / dmax;
            for (int i = lane; i < N; i += 32) d[i] *= f;
            gd *= f;
        }
        // Backtracking (Armijo) line search.
        bool moved = false;
        double t = 1.0;
        for (int ls = 0; ls < lbfgs::kLineSearchTries; ++ls) {
            for (int i = lane; i < N; i += 32) xp[i] = x[i] + t * d[i];
            const double qp = sys.evaluate(xp, gp, gs);
            if (isfinite(qp) && qp <= q + lbfgs::kArmijo * t * gd) {
                double* sh = S + static_cast<std::size_t>(head) * N;
                double* yh = Y + static_cast<std::size_t>(head) * N;
                for (int i = lane; i < N; i += 32) {
                    sh[i] = xp[i] - x[i];
                    yh[i] = gp[i] - g[i];
                }
                const double sy = sys.dot(sh, yh);
                if (sy > lbfgs::kMinCurvature) {
                    rho[head * 32] = 1.0 / sy;
                    head = (head + 1) % H;
                    count = count + 1 < H ? count + 1 : H;
                }
                const double q_old = q;
                // The trial becomes the state (buffers swapped; the endpoint is copied out last).
                double* tx = x;
                x = xp;
                xp = tx;
                double* tg = g;
                g = gp;
                gp = tg;
                q = qp;
                const double gmax = sys.max_abs(g);
                if (q < a.q_done || gmax < lbfgs::kGradTol ||
                    q_old - q <= lbfgs::kRelDecrease * q_old)
                    active = false;
                moved = true;
                break;
            }
            t *= 0.5;
        }
        if (!moved) active = false;  // no decrease along the direction: a minimum of q
    }
    if (x != x_out)
        for (int i = lane; i < N; i += 32) x_out[i] = x[i];
    if (lane == 0) a.q[state] = q;
}

}  // namespace
}  // namespace eirnn::cuda

namespace eirnn::cuda {

int dynamics_ld(int N) {
    return N | 1;
}

std::size_t dynamics_smem_bytes(int N, int warps, bool w_onchip, int ld) {
    std::size_t doubles = (2 * static_cast<std::size_t>(N) + 64) * warps;
    if (w_onchip) doubles += static_cast<std::size_t>(N) * ld + N;
    return doubles * sizeof(double);
}

void launch_dynamics_lbfgs(const DynamicsArgs& a, int blocks, int warps, cudaStream_t s) {
    if (blocks <= 0) return;
    const std::size_t smem = dynamics_smem_bytes(a.N, warps, a.w_onchip, a.ld);
    if (smem > 48 * 1024)
        EIRNN_CHECK_CUDA(cudaFuncSetAttribute(dynamics_lbfgs_kernel,
                                              cudaFuncAttributeMaxDynamicSharedMemorySize,
                                              static_cast<int>(smem)));
    launch_kernel(dynamics_lbfgs_kernel, dim3(static_cast<unsigned>(blocks)),
                  dim3(static_cast<unsigned>(32 * warps)), smem, s, a);
    EIRNN_CHECK_CUDA(cudaGetLastError());
}

}  // namespace eirnn::cuda
