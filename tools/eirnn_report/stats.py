"""Small statistics for the claims table, in numpy only (no scipy).

Student-t distribution through the regularized incomplete beta function (continued fraction, Lentz's
method), mean and standard error, one-sample confidence intervals, Welch's two-sample test, a Welch
contrast of several cell means (Welch-Satterthwaite degrees of freedom), ordinary least squares
with one intercept per stratum ("fixed effects") and the Mann-Whitney U test with its AUC.
"""
from dataclasses import dataclass
import math

import numpy as np

CONFIDENCE = 0.95


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        for numerator in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                          -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with df degrees of freedom (df may be fractional)."""
    if math.isnan(t) or not df > 0:
        return math.nan
    if math.isinf(t):
        return 0.0
    return betainc(df / 2.0, 0.5, df / (df + t * t))


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t."""
    half_tail = 0.5 * t_two_sided_p(t, df)
    return 1.0 - half_tail if t > 0 else half_tail


def t_quantile(q: float, df: float) -> float:
    """The t with P(T <= t) = q, by bisection on t_cdf."""
    if not 0.0 < q < 1.0 or not df > 0:
        return math.nan
    if q < 0.5:
        return -t_quantile(1.0 - q, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < q:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < q:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@dataclass
class Estimate:
    """A quantity with its standard error, degrees of freedom and 95% confidence interval."""
    value: float
    se: float
    df: float
    lo: float
    hi: float
    t: float
    p: float  # two-sided p-value of "value = 0"


def make_estimate(value: float, se: float, df: float) -> Estimate:
    """Confidence interval and t-test of value = 0 from an estimate and its standard error."""
    if se == 0.0:
        p = 1.0 if value == 0.0 else 0.0
        t = 0.0 if value == 0.0 else math.copysign(math.inf, value)
        return Estimate(value, 0.0, df, value, value, t, p)
    half = t_quantile(0.5 + CONFIDENCE / 2.0, df) * se
    t = value / se
    return Estimate(value, se, df, value - half, value + half, t, t_two_sided_p(t, df))


def mean_sem(x) -> tuple[float, float, int]:
    """Mean, standard error of the mean (NaN for n < 2) and n of the finite values of x."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    n = x.size
    if n == 0:
        return math.nan, math.nan, 0
    sem = float(np.std(x, ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return float(np.mean(x)), sem, n


def one_sample(x) -> Estimate | None:
    """95% confidence interval of the mean of x (None for fewer than 2 values)."""
    mean, sem, n = mean_sem(x)
    if n < 2:
        return None
    return make_estimate(mean, sem, n - 1)


def welch_contrast(cells: list[tuple[float, np.ndarray]]) -> Estimate | None:
    """Sum of coef * mean(values) over cells, with a Welch-Satterthwaite standard error and df.

    With cells [(1, a), (-1, b)] this is exactly Welch's two-sample t-test of mean(a) - mean(b).
    """
    value, var, df_den = 0.0, 0.0, 0.0
    for coef, values in cells:
        values = np.asarray(values, dtype=float)
        values = values[np.isfinite(values)]
        n = values.size
        if n < 2:
            return None
        part = coef * coef * float(np.var(values, ddof=1)) / n
        value += coef * float(np.mean(values))
        var += part
        df_den += part * part / (n - 1)
    if df_den > 0.0:
        df = var * var / df_den
    else:
        df = float(sum(np.isfinite(np.asarray(v, dtype=float)).sum() - 1 for _, v in cells))
    return make_estimate(value, math.sqrt(var), df)


def welch(a, b) -> Estimate | None:
    """Welch's two-sample t-test and 95% interval of mean(a) - mean(b)."""
    return welch_contrast([(1.0, a), (-1.0, b)])


def fixed_effects_slope(y, x, strata) -> Estimate | None:
    """OLS slope of y on x with one intercept per stratum; None when x does not vary within strata.

    y, x: (n) float; strata: (n) hashable labels. Degrees of freedom n - strata - 1.
    """
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    labels = sorted(set(strata), key=str)
    index = {label: i for i, label in enumerate(labels)}
    design = np.zeros((y.size, len(labels) + 1))
    design[np.arange(y.size), [index[s] for s in strata]] = 1.0
    design[:, -1] = x
    df = y.size - design.shape[1]
    if df < 1 or np.linalg.matrix_rank(design) < design.shape[1]:
        return None
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - design @ coef
    sigma2 = float(residual @ residual) / df
    covariance = sigma2 * np.linalg.inv(design.T @ design)
    return make_estimate(float(coef[-1]), math.sqrt(max(covariance[-1, -1], 0.0)), df)


EXACT_MAX_PAIRS = 2500  # Mann-Whitney: exact null distribution up to n_a * n_b pairs (no ties)


@dataclass
class RankTest:
    """Mann-Whitney U test of a against b: U counts pairs with a > b (ties 1/2), auc = U / pairs is
    the probability that a random value of a exceeds one of b; p is two-sided. Stratified: U, pairs
    and n summed over the strata, pairs only within a stratum."""
    u: float
    auc: float
    p: float
    n_a: int
    n_b: int
    exact: bool


def _midranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(x.size)
    sorted_x = x[order]
    start = 0
    while start < x.size:
        stop = start
        while stop + 1 < x.size and sorted_x[stop + 1] == sorted_x[start]:
            stop += 1
        ranks[order[start:stop + 1]] = 0.5 * (start + stop) + 1.0
        start = stop + 1
    return ranks


def _u_counts(n_a: int, n_b: int) -> np.ndarray:
    """Number of orderings of n_a + n_b distinct values giving U = 0 .. n_a n_b (exact null)."""
    # table[j] holds the counts for (i, j) while i grows: c(i, j) = c(i-1, j) shifted by j + c(i, j-1)
    table = [np.ones(1, dtype=float) for _ in range(n_b + 1)]
    for i in range(1, n_a + 1):
        row = [np.ones(1, dtype=float)]
        for j in range(1, n_b + 1):
            counts = np.zeros(i * j + 1)
            counts[j:j + table[j].size] += table[j]
            counts[:row[j - 1].size] += row[j - 1]
            row.append(counts)
        table = row
    return table[n_b]


def stratified_mann_whitney(strata: list) -> RankTest | None:
    """Two-sided Mann-Whitney U test of a against b within strata: strata is a list of (a, b); U is
    the sum of the strata's U (each compares only values of the same stratum), so a factor that
    differs between strata cannot make a difference. None when no stratum has values on both sides.

    Exact null distribution (the convolution of the strata's) without ties and up to
    EXACT_MAX_PAIRS pairs; otherwise the normal approximation with the tie correction and a
    continuity correction.
    """
    u, pairs, variance, n_a, n_b, tied, exact_counts = 0.0, 0, 0.0, 0, 0, False, np.ones(1)
    for a, b in strata:
        a = np.asarray(a, dtype=float)
        b = np.asarray(b, dtype=float)
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        if a.size == 0 or b.size == 0:
            continue
        both = np.concatenate([a, b])
        u += float(_midranks(both)[:a.size].sum() - a.size * (a.size + 1) / 2.0)
        pairs += a.size * b.size
        n = both.size
        ties = np.unique(both, return_counts=True)[1]
        tied = tied or ties.max() > 1
        variance += a.size * b.size / 12.0 * ((n + 1) - float((ties ** 3 - ties).sum())
                                              / (n * (n - 1)))
        if not tied and pairs <= EXACT_MAX_PAIRS:
            counts = _u_counts(a.size, b.size)
            exact_counts = np.convolve(exact_counts, counts / counts.sum())
        n_a, n_b = n_a + a.size, n_b + b.size
    if pairs == 0:
        return None
    if not tied and pairs <= EXACT_MAX_PAIRS:
        k = int(round(u))
        lower, upper = exact_counts[:k + 1].sum(), exact_counts[k:].sum()
        return RankTest(u, u / pairs, min(1.0, 2.0 * min(lower, upper)), n_a, n_b, True)
    if variance <= 0.0:
        return RankTest(u, u / pairs, 1.0, n_a, n_b, False)
    z = max(abs(u - pairs / 2.0) - 0.5, 0.0) / math.sqrt(variance)
    return RankTest(u, u / pairs, math.erfc(z / math.sqrt(2.0)), n_a, n_b, False)


def mann_whitney(a, b) -> RankTest | None:
    """Two-sided Mann-Whitney U test of the finite values of a against b (None if either is empty):
    stratified_mann_whitney with one stratum."""
    return stratified_mann_whitney([(a, b)])
