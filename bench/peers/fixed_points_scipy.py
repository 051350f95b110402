"""A straightforward fixed-point finder, one network at a time: for every initial state, SciPy's
least_squares (MINPACK Levenberg-Marquardt, analytic Jacobian) on G(h) = F(h) - h with
F(h) = (1 - alpha) h + alpha tanh(W h + c), then the same keep / de-duplicate / classify rules as
eirnn (q < slow_q kept, max-norm distance < dedup_tol merged, q < fixed_q a fixed point) and numpy's
eigenvalues of the Jacobian at every point. The reference of bench/dynamics_compare.py.
"""

import numpy as np
from scipy.optimize import least_squares

FIXED_Q = 1e-16
SLOW_Q = 1e-4
DEDUP_TOL = 1e-3


def find_fixed_points(w, c, starts, alpha=1.0):
    """Points of one network: list of (h, q, is_fixed, spectral radius of J, n_unstable)."""
    n = w.shape[0]
    eye = np.eye(n)

    def g(h):
        return alpha * (np.tanh(w @ h + c) - h)

    def jac(h):
        t = np.tanh(w @ h + c)
        return alpha * ((1.0 - t * t)[:, None] * w - eye)

    ends = []
    for x0 in starts:
        r = least_squares(g, x0, jac=jac, method="lm", xtol=1e-15, ftol=1e-15, gtol=1e-15)
        q = 0.5 * float(r.fun @ r.fun)
        if q < SLOW_Q:
            ends.append((q, r.x))
    ends.sort(key=lambda e: e[0])
    points = []
    for q, h in ends:
        if any(np.max(np.abs(h - p[1])) < DEDUP_TOL for p in points):
            continue
        points.append((q, h))
    out = []
    for q, h in points:
        t = np.tanh(w @ h + c)
        jm = (1.0 - alpha) * eye + alpha * (1.0 - t * t)[:, None] * w
        mod = np.abs(np.linalg.eigvals(jm))
        out.append((h, q, q < FIXED_Q, float(mod.max()), int((mod > 1.0).sum())))
    return out
