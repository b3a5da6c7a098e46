"""Gamma-distribution quantiles and exact (Garwood) Poisson limits, in pure Python.

The coordinator may not import numpy or scipy (tests/unit/test_import_rules.py), so the
regularized lower incomplete gamma function P(a, x) is computed here the classic way: its
power series below x = a + 1 and Lentz's continued fraction for the upper tail above it
(both converge to double precision within a few hundred terms for the counts seen here).
Quantiles are found by Newton steps on P (monotone in x), safeguarded by bisection.

Garwood's exact limits for a Poisson mean given an observed count k at two-sided level
c (tail t = (1 - c) / 2 on each side) are the gamma quantiles
    lower = Gamma(k, 1).ppf(t)        (0 when k = 0)
    upper = Gamma(k + 1, 1).ppf(1 - t)
(the chi-square form chi2(t; 2k) / 2 and chi2(1 - t; 2k + 2) / 2). They cover the mean
with probability at least c for every mean: the interval is conservative, never short.

Pure standard library; post-processing of released numbers only.
"""

from __future__ import annotations

import math

_EPSILON = 1e-15
_MAX_TERMS = 10_000
_TINY = 1e-300


def regularized_lower_gamma(shape: float, x: float) -> float:
    """P(shape, x) = the Gamma(shape, 1) distribution function at x."""
    if not (shape > 0 and math.isfinite(shape)):
        raise ValueError(f"gamma shape must be a positive finite number, got {shape}")
    if x <= 0:
        return 0.0
    if math.isinf(x):
        return 1.0
    log_prefactor = shape * math.log(x) - x - math.lgamma(shape)
    if x < shape + 1:
        return _series(shape, x, log_prefactor)
    return 1.0 - _continued_fraction(shape, x, log_prefactor)


def _series(shape: float, x: float, log_prefactor: float) -> float:
    term = total = 1.0 / shape
    denominator = shape
    for _ in range(_MAX_TERMS):
        denominator += 1
        term *= x / denominator
        total += term
        if abs(term) < abs(total) * _EPSILON:
            break
    return min(1.0, total * math.exp(log_prefactor))


def _continued_fraction(shape: float, x: float, log_prefactor: float) -> float:
    """Q(shape, x) = 1 - P(shape, x) by the modified Lentz method."""
    b = x + 1 - shape
    c = 1 / _TINY
    d = 1 / b
    h = d
    for index in range(1, _MAX_TERMS):
        an = -index * (index - shape)
        b += 2
        d = an * d + b
        d = _TINY if abs(d) < _TINY else d
        c = b + an / c
        c = _TINY if abs(c) < _TINY else c
        d = 1 / d
        step = d * c
        h *= step
        if abs(step - 1) < _EPSILON:
            break
    return min(1.0, math.exp(log_prefactor) * h)


def gamma_quantile(shape: float, probability: float, scale: float = 1.0) -> float:
    """x with P(Gamma(shape, scale) <= x) = probability, to about 1e-12 relative.

    Newton steps on P (its derivative is the density), kept inside a bracket that
    bisection narrows whenever a step would leave it. For shapes far below 1 a lower
    tail quantile can be smaller than the smallest float: a tiny x is returned (a lower
    limit of about 0, which is what it means). The shapes used here are at least 1.
    """
    if not 0 < probability < 1:
        raise ValueError(f"probability must be in (0, 1), got {probability}")
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError(f"gamma scale must be a positive finite number, got {scale}")
    low, high = 0.0, max(1.0, shape)
    while regularized_lower_gamma(shape, high) < probability:
        low, high = high, 2 * high
    x = (low + high) / 2
    for _ in range(200):
        error = regularized_lower_gamma(shape, x) - probability
        if error < 0:
            low = x
        else:
            high = x
        density = math.exp((shape - 1) * math.log(x) - x - math.lgamma(shape)) if x > 0 else 0.0
        step = x - error / density if density > 0 else math.nan
        x = step if low < step < high else (low + high) / 2
        if high - low <= 1e-12 * max(high, 1e-300) or abs(error) < 1e-15:
            break
    return scale * x


def garwood_limits(count: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact two-sided `confidence` limits for a Poisson mean, given an observed count."""
    if count < 0:
        raise ValueError(f"a Poisson count cannot be negative, got {count}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    tail = (1 - confidence) / 2
    lower = 0.0 if count == 0 else gamma_quantile(count, tail)
    return lower, gamma_quantile(count + 1, 1 - tail)
