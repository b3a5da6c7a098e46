"""Pooling node releases into partnership figures, with exact noise accounting.

Jurisdictions hold disjoint records, so a partnership count or sum is the sum of the
nodes' released values. Its noise is the sum of the nodes' independent noises: for
Gaussian noise (the zCDP mechanisms) the sum is Gaussian with variance = sum of
scale^2, so the 95% interval is value +/- z * sqrt(sum scale^2) — exact, and much
narrower than adding the nodes' half-widths. Laplace noise is pooled through its
variance (2 b^2) with a normal approximation (flagged `approximate`). Means are pooled
as pooled sum / pooled count (delta method). Quantiles are not additive: not pooled.

Pure: standard library and privacy.accuracy (stdlib-only helpers). Never generates noise.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

from privacy.accuracy import gaussian_half_width, gaussian_scale_for_half_width
from privacy.centring import CENTRED_SUM
from privacy.release import Estimate, NoiseDistribution

ADDITIVE = frozenset({NoiseDistribution.GAUSSIAN, NoiseDistribution.LAPLACE})


def z_value(confidence: float = 0.95) -> float:
    """Two-sided standard normal quantile: 1.959963... for 95%."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def noise_variance(estimate: Estimate) -> float | None:
    """Variance of the noise added to one released value; None when not additive noise."""
    if estimate.distribution is NoiseDistribution.GAUSSIAN:
        return estimate.scale**2
    if estimate.distribution is NoiseDistribution.LAPLACE:
        return 2 * estimate.scale**2
    return None


@dataclass(frozen=True)
class PooledValue:
    """A partnership figure: the value, its noise standard deviation and 95% interval."""

    name: str
    value: float
    std: float | None
    ci_low: float
    ci_high: float
    approximate: bool = False
    """True when the interval uses a normal approximation (Laplace terms, ratios)."""


def gaussian_interval(value: float, std: float, confidence: float = 0.95) -> tuple[float, float]:
    half_width = gaussian_half_width(std, confidence)
    return value - half_width, value + half_width


def half_width_for_std(std: float, confidence: float = 0.95) -> float:
    """95% half-width of a Gaussian with this standard deviation (privacy.accuracy)."""
    return gaussian_half_width(std, confidence)


def std_for_half_width(half_width: float, confidence: float = 0.95) -> float:
    """Gaussian standard deviation whose 95% half-width is `half_width` (privacy.accuracy)."""
    return gaussian_scale_for_half_width(half_width, confidence)


def pool_sum(estimates: Sequence[Estimate], confidence: float = 0.95) -> PooledValue | None:
    """Sum of independent additive-noise estimates (same name, one per node).

    None when any estimate is not additive (e.g. a quantile), since no sum exists.
    """
    if not estimates:
        return None
    variances = [noise_variance(e) for e in estimates]
    known = [v for v in variances if v is not None]
    if len(known) != len(variances):
        return None
    if len(estimates) == 1:
        only = estimates[0]
        return PooledValue(only.name, only.value, math.sqrt(known[0]), only.ci_low, only.ci_high)
    value = math.fsum(e.value for e in estimates)
    std = math.sqrt(math.fsum(known))
    low, high = gaussian_interval(value, std, confidence)
    approximate = any(e.distribution is NoiseDistribution.LAPLACE for e in estimates)
    return PooledValue(estimates[0].name, value, std, low, high, approximate)


def ratio(
    numerator: PooledValue,
    denominator: PooledValue,
    name: str,
    confidence: float = 0.95,
    bounds: tuple[float, float] | None = None,
) -> PooledValue:
    """numerator / denominator with a delta-method interval (means: sum / count).

    Undefined when the noisy denominator is not positive: the value is NaN and the
    interval unbounded, rather than a misleading number. `bounds` are the public range
    the true ratio lies in (a mean lies within its column's clipping bounds): the value
    and interval are clipped to it, post-processing that can only move them closer to
    the truth.
    """
    if denominator.value <= 0 or numerator.std is None or denominator.std is None:
        return PooledValue(name, math.nan, None, -math.inf, math.inf, approximate=True)
    estimate = numerator.value / denominator.value
    variance = (numerator.std**2 + estimate**2 * denominator.std**2) / denominator.value**2
    std = math.sqrt(variance)
    low, high = gaussian_interval(estimate, std, confidence)
    if bounds is not None:
        lower, upper = bounds
        estimate = min(max(estimate, lower), upper)
        low, high = max(low, lower), min(high, upper)
    return PooledValue(name, estimate, std, low, high, approximate=True)


def pool_cell(
    per_node: Sequence[Sequence[Estimate]],
    confidence: float = 0.95,
    mean_bounds: tuple[float, float] | None = None,
    mean_centre: float = 0.0,
) -> list[PooledValue]:
    """Pool one cell across nodes. `per_node[i]` are node i's estimates for the cell.

    Estimates are matched by name. Additive values are summed; a "mean" is recomputed
    as `mean_centre` + pooled "centred_sum" / pooled "count" (privacy/centring.py), or
    from a pooled "sum" and "count" in releases from before centring, clipped to
    `mean_bounds`, the measured column's public bounds; anything else (a quantile) is
    left out, since partnership quantiles cannot be built from node ones.
    """
    names = _ordered_names(per_node)
    by_name = {
        name: [e for estimates in per_node for e in estimates if e.name == name] for name in names
    }
    pooled: dict[str, PooledValue] = {}
    for name in names:
        group = by_name[name]
        if len(group) != len(per_node):
            continue  # a node did not release this value: a partial sum would mislead
        value = pool_sum(group, confidence)
        if value is not None:
            pooled[name] = value
    if "mean" in names and "count" in pooled and "mean" not in pooled:
        if CENTRED_SUM in pooled:
            pooled["mean"] = _centred_mean(
                pooled[CENTRED_SUM], pooled["count"], confidence, mean_bounds, mean_centre
            )
        elif "sum" in pooled:
            pooled["mean"] = ratio(pooled["sum"], pooled["count"], "mean", confidence, mean_bounds)
    return [pooled[name] for name in names if name in pooled]


def _centred_mean(
    centred_sum: PooledValue,
    count: PooledValue,
    confidence: float,
    bounds: tuple[float, float] | None,
    centre: float,
) -> PooledValue:
    """centre + centred sum / count, with the ratio's interval shifted by the centre."""
    shifted = None if bounds is None else (bounds[0] - centre, bounds[1] - centre)
    value = ratio(centred_sum, count, "mean", confidence, shifted)
    return dataclasses.replace(
        value,
        value=value.value + centre,
        ci_low=value.ci_low + centre,
        ci_high=value.ci_high + centre,
    )


def _ordered_names(per_node: Sequence[Sequence[Estimate]]) -> list[str]:
    names: dict[str, None] = {}
    for estimates in per_node:
        for estimate in estimates:
            names.setdefault(estimate.name, None)
    return list(names)
