"""Intervals for a ratio of two noisy released values: Fieller's method.

A share (events of one kind over all events) and a rate ratio (one group's rate over
another's) divide one noisy value by another. Both values are released with additive
noise of known scale, so for the true ratio theta the pivot `N - theta * D` is a sum of
independent noises with variance `var_n - 2 theta cov + theta^2 var_d`, whatever the
counts are. Fieller's interval is every theta the pivot does not reject:

    (N - theta D)^2 <= z^2 (var_n - 2 theta cov_nd + theta^2 var_d)

a quadratic inequality in theta. Its coverage is the pivot's, so it does not depend on the
counts being large, unlike the delta method (which is centred on N / D and under-covers
when the denominator is small or noisy). It respects monotone transformations: the
interval for log(theta) is the log of this one, so it *is* the log-scale interval, and it
is asymmetric the way log-scale intervals are. When the denominator is not clearly away
from zero (D^2 <= z^2 var_d) the set is unbounded: then the interval is the whole
public range of theta (for a share [0, 1], for a ratio [0, inf)), an honest "unknown".

Discrete noise: nodes add OpenDP's discrete Gaussian to counts. Where the pivot takes
values on a coarse lattice (a share near 1/2 at scale ~2) the continuous bound would
under-cover slightly, as pooled counts did (coordinator/discrete.py). Each integer noise
is therefore given the variance of the continuous noise it approximates plus that of a
rounding step, `scale^2 + 1/12` (Sheppard's correction), which brings coverage back to at
least the nominal level there and changes nothing visible at larger scales.

Post-processing of released values only; pure standard library; never generates noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from coordinator.pooling import z_value

ROUNDING_VARIANCE = 1.0 / 12.0
"""Variance of one rounding step, added to each integer noise's variance (Sheppard)."""


@dataclass(frozen=True)
class NoisyValue:
    """A released (or pooled) unbiased value, its noise variance, and whether the noise is
    integer-valued (discrete Gaussian on counts)."""

    value: float
    variance: float
    discrete: bool = True

    @property
    def interval_variance(self) -> float:
        """The variance the interval uses (with the rounding step for integer noise)."""
        return self.variance + (ROUNDING_VARIANCE if self.discrete else 0.0)


@dataclass(frozen=True)
class RatioInterval:
    """An estimate of numerator / denominator and its Fieller interval.

    `estimate` is None when the noisy denominator is not positive (the ratio is
    undefined); the interval then spans the public range. `bounded` is False when the
    denominator is not clearly away from zero, so the interval is the whole range.
    """

    estimate: float | None
    low: float
    high: float
    bounded: bool


def fieller_interval(
    numerator: float,
    denominator: float,
    var_numerator: float,
    var_denominator: float,
    covariance: float = 0.0,
    *,
    low_limit: float = 0.0,
    high_limit: float = math.inf,
    confidence: float = 0.95,
) -> RatioInterval:
    """Fieller's interval for numerator / denominator, clipped to [low_limit, high_limit].

    The limits are the public range of the true ratio (a share lies in [0, 1], a ratio
    of rates is at least 0); clipping an interval to a range that holds the truth keeps
    its coverage. The estimate is clipped the same way.
    """
    z2 = z_value(confidence) ** 2
    estimate = _clip(numerator / denominator, low_limit, high_limit) if denominator > 0 else None
    a = denominator * denominator - z2 * var_denominator
    if a <= 0:
        return RatioInterval(estimate, low_limit, high_limit, bounded=False)
    b = numerator * denominator - z2 * covariance
    c = numerator * numerator - z2 * var_numerator
    discriminant = max(b * b - a * c, 0.0)
    root = math.sqrt(discriminant)
    low, high = (b - root) / a, (b + root) / a
    if estimate is not None:
        low, high = min(low, estimate), max(high, estimate)
    return RatioInterval(
        estimate,
        _clip(low, low_limit, high_limit),
        _clip(high, low_limit, high_limit),
        bounded=True,
    )


def share_interval(part: NoisyValue, total: NoisyValue, confidence: float = 0.95) -> RatioInterval:
    """part / total where `total` includes `part` (cov = var(part)); within [0, 1]."""
    return fieller_interval(
        part.value,
        total.value,
        part.interval_variance,
        total.interval_variance,
        covariance=part.interval_variance,
        low_limit=0.0,
        high_limit=1.0,
        confidence=confidence,
    )


def ratio_interval(
    numerator: NoisyValue,
    denominator: NoisyValue,
    numerator_factor: float = 1.0,
    denominator_factor: float = 1.0,
    confidence: float = 0.95,
) -> RatioInterval:
    """(numerator * numerator_factor) / (denominator * denominator_factor), independent
    noises; at least 0. The factors are public (e.g. 1 / population for rates)."""
    return fieller_interval(
        numerator.value * numerator_factor,
        denominator.value * denominator_factor,
        numerator.interval_variance * numerator_factor**2,
        denominator.interval_variance * denominator_factor**2,
        confidence=confidence,
    )


def sum_of(values: list[NoisyValue]) -> NoisyValue:
    """The sum of independent noisy values (disjoint cells or nodes)."""
    return NoisyValue(
        math.fsum(v.value for v in values),
        math.fsum(v.variance for v in values),
        discrete=any(v.discrete for v in values),
    )


def _clip(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)
