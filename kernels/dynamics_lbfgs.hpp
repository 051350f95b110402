// The constants of the fixed-point search's L-BFGS (host/analysis/dynamics.hpp), shared by the
// CPU's batched version (host/analysis/dynamics.cpp) and the GPU's (kernels/cuda/dynamics.cu) so
// that both run one iteration per initial state:
//   direction d by the two-loop recursion over the last `history` pairs (s, y), scaled by
//   s.y / y.y of the newest; steepest descent (and the pairs forgotten) when g.d >= 0; d scaled to
//   a max-norm of at most kMaxStep; backtracking from t = 1, halving, at most kLineSearchTries
//   evaluations, accepting q(x + t d) <= q(x) + kArmijo t g.d; the pair (s, y) written to the
//   slot `head` and kept (head advanced) only when s.y > kMinCurvature; the state stops when
//   q < candidate_q * kDoneFactor, max |g| < kGradTol, the decrease is at most kRelDecrease q, or
//   no step along d decreased q.
#pragma once

namespace eirnn::lbfgs {

constexpr double kArmijo = 1e-4;
constexpr double kMaxStep = 1.0;
constexpr int kLineSearchTries = 40;
constexpr double kMinCurvature = 1e-300;
constexpr double kDoneFactor = 1e-4;  // Newton finishes the candidates
constexpr double kGradTol = 1e-13;
constexpr double kRelDecrease = 1e-13;

}  // namespace eirnn::lbfgs
