"""Pooling node releases into partnership figures, with exact noise accounting.

Jurisdictions hold disjoint records, so a partnership count or sum is the sum of the
nodes' released values. Its noise is the sum of the nodes' independent noises:

* counts (and sums of integer columns) carry discrete Gaussian noise, so the pooled
  noise is integer-valued; its 95% interval is value +/- H with H the smallest integer
  holding 95% of the exact distribution of the summed noise (coordinator/discrete.py).
  A continuous interval would under-cover here (94.0% for three nodes at scale 2);
* continuous Gaussian noise sums to a Gaussian with variance = sum of scale^2, so the
  interval is value +/- z * sqrt(sum scale^2), exact;
* Laplace noise is pooled through its variance (2 b^2) with a normal approximation
  (flagged `approximate`).

Either way the pooled interval is much narrower than adding the nodes' half-widths.
Means are pooled as a weighted average of the nodes' released means, each weighted by
its noisy count clamped at 0 (`pool_mean`); quantiles are not additive: not pooled.

Pure: standard library and privacy.accuracy (stdlib-only helpers). Never generates noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

from coordinator.discrete import discrete_sum_half_width
from privacy.accuracy import gaussian_half_width, gaussian_scale_for_half_width
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


def pool_sum(
    estimates: Sequence[Estimate], confidence: float = 0.95, *, discrete: bool = False
) -> PooledValue | None:
    """Sum of independent additive-noise estimates (same name, one per node).

    `discrete`: the values are integers released with discrete Gaussian noise (counts,
    sums of integer columns); the interval then comes from the exact distribution of the
    summed integer noise. None when any estimate is not additive (e.g. a quantile).
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
    if discrete and _all_discrete_gaussian(estimates):
        half_width = discrete_sum_half_width([e.scale for e in estimates], confidence)
        return PooledValue(estimates[0].name, value, std, value - half_width, value + half_width)
    low, high = gaussian_interval(value, std, confidence)
    approximate = any(e.distribution is NoiseDistribution.LAPLACE for e in estimates)
    return PooledValue(estimates[0].name, value, std, low, high, approximate)


def _all_discrete_gaussian(estimates: Sequence[Estimate]) -> bool:
    """Gaussian noise on integer values: OpenDP's discrete Gaussian (counts, integer sums)."""
    return all(
        e.distribution is NoiseDistribution.GAUSSIAN and float(e.value).is_integer()
        for e in estimates
    )


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


def pool_mean(
    per_node: Sequence[Sequence[Estimate]],
    pooled_sum: PooledValue,
    pooled_count: PooledValue,
    confidence: float = 0.95,
    bounds: tuple[float, float] | None = None,
) -> PooledValue | None:
    """The partnership mean: the nodes' released means weighted by their noisy counts.

    A node's weight is its noisy count clamped at 0, so the pooled mean is a weighted
    average of node means and can never leave their range: a tiny node whose noisy count
    came out negative (or whose noisy sum is wild) gets no or little weight instead of
    dragging the pooled sum / pooled count above every node. With every weight positive
    and no mean clipped this equals pooled sum / pooled count. The interval is the delta
    method's for that ratio (all nodes' sum and count noise), widened to hold the value
    and clipped to `bounds`. None when some node released no mean; NaN when no node
    has a positive noisy count.
    """
    pairs = [_mean_and_count(estimates) for estimates in per_node]
    if any(pair is None for pair in pairs):
        return None
    weighted = [(mean, max(count, 0.0)) for mean, count in (p for p in pairs if p is not None)]
    total_weight = math.fsum(weight for _, weight in weighted)
    if total_weight <= 0:
        return PooledValue("mean", math.nan, None, -math.inf, math.inf, approximate=True)
    estimate = math.fsum(mean * weight for mean, weight in weighted) / total_weight
    spread = ratio(pooled_sum, pooled_count, "mean", confidence)
    if spread.std is None:
        return PooledValue("mean", estimate, None, -math.inf, math.inf, approximate=True)
    low, high = gaussian_interval(estimate, spread.std, confidence)
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return PooledValue(
        "mean", estimate, spread.std, min(low, estimate), max(high, estimate), approximate=True
    )


def _mean_and_count(estimates: Sequence[Estimate]) -> tuple[float, float] | None:
    by_name = {e.name: e.value for e in estimates}
    if "mean" not in by_name or "count" not in by_name:
        return None
    return by_name["mean"], by_name["count"]


def pool_cell(
    per_node: Sequence[Sequence[Estimate]],
    confidence: float = 0.95,
    mean_bounds: tuple[float, float] | None = None,
    discrete_names: frozenset[str] = frozenset(),
) -> list[PooledValue]:
    """Pool one cell across nodes. `per_node[i]` are node i's estimates for the cell.

    Estimates are matched by name. Additive values are summed (`discrete_names` carry
    discrete Gaussian noise: counts, integer sums); a "mean" is pooled from the nodes'
    means and counts (`pool_mean`, clipped to `mean_bounds`, the measured column's
    public bounds); anything else (a quantile) is left out, since partnership quantiles
    cannot be built from node ones.
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
        value = pool_sum(group, confidence, discrete=name in discrete_names)
        if value is not None:
            pooled[name] = value
    if "mean" in names and "sum" in pooled and "count" in pooled and "mean" not in pooled:
        mean = pool_mean(per_node, pooled["sum"], pooled["count"], confidence, mean_bounds)
        if mean is not None:
            pooled["mean"] = mean
    return [pooled[name] for name in names if name in pooled]


def _ordered_names(per_node: Sequence[Sequence[Estimate]]) -> list[str]:
    names: dict[str, None] = {}
    for estimates in per_node:
        for estimate in estimates:
            names.setdefault(estimate.name, None)
    return list(names)
