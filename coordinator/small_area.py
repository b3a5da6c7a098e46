"""Small-area rates: each node's rate shrunk toward the partnership rate (empirical Bayes).

A tiny jurisdiction's rate swings with a handful of events and with DP noise; its own
estimate is unbiased but so variable that ranking it against the others misleads. The
small-area estimate borrows strength from the partnership (gamma-Poisson model,
moments, Marshall 1991), using only released counts, their public noise scales and the
nodes' public child populations: post-processing, nothing is charged.

Model, for node i with population n_i, released count y_i = X_i + noise (noise variance
s_i^2) and rate r_i = y_i / n_i: X_i ~ Poisson(n_i theta_i), and the underlying rates
theta_i vary between nodes with mean mu and variance tau^2. Then
    E[r_i] = mu,    Var(r_i) = tau^2 + v_i,    v_i = mu / n_i + s_i^2 / n_i^2
(Poisson and DP noise, both known given mu). Moments:
* mu: the partnership rate m = sum y_i / sum n_i (what every node is pulled toward);
* tau^2: DerSimonian-Laird's moment estimate with weights 1 / v_i (noisy small nodes
  count little), floored at 0 (no evidence of variation: every node gets m);
* the pull toward m: S_i = v_i / (tau^2 + v_i), larger for a small node (large v_i),
  so small nodes are shrunk more; the small-area rate is r_i - S_i (r_i - m);
* its variance, after Morris (1983, JASA 78:47), which adds what estimating m and
  tau^2 costs: v_i (1 - (k - 1) / k * S_i) + 2 / (k - 3) * (S_i (r_i - m))^2, k >= 4
  nodes. The interval is a gamma's with that mean and variance (rates are positive and
  skewed when events are rare), or the normal one floored at 0 where that skew is
  beyond a gamma's.

tests/statistical/test_small_area_coverage.py measures the coverage of the underlying
rates by simulation: 94-96% averaged over 8 nodes in four scenarios (93.8% where
rates vary most). Empirical Bayes intervals are calibrated on average: small nodes
over-cover, the largest (whose rate is pulled toward the others') cover 83-95%. A cell
any of whose nodes is suppressed gets no small-area values: they depend on every count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from coordinator.gamma import gamma_quantile
from coordinator.measures import is_count_name

if TYPE_CHECKING:
    from coordinator.report import Report, ValueRow

SMALL_AREA_STATISTICS = frozenset({"count", "histogram"})
MIN_NODES = 4
"""Morris's variance correction needs k - 3 > 0 nodes."""


class SmallAreaRow(BaseModel):
    """One node's small-area (shrunk) rate for one cell, per 100,000 children."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    key: tuple[str, ...]
    name: str
    rate_per_100k: float
    ci_low: float
    ci_high: float
    weight_on_own_rate: float
    """B_i: 1 keeps the node's own rate, 0 gives it the partnership rate."""
    partnership_rate_per_100k: float


@dataclass(frozen=True)
class NodeCount:
    """What shrinkage needs from one node: its unbiased count, population, noise variance."""

    count: float
    population: int
    noise_variance: float


@dataclass(frozen=True)
class ShrunkRate:
    rate: float
    low: float
    high: float
    weight_on_own_rate: float


def within_variance(node: NodeCount, pooled_rate: float) -> float:
    """v_i: the variance of a node's rate around its underlying rate (Poisson + DP noise)."""
    return pooled_rate / node.population + node.noise_variance / node.population**2


def between_node_variance(nodes: Sequence[NodeCount], pooled_rate: float) -> float:
    """DerSimonian-Laird moment estimate of tau^2 (module docstring), floored at 0."""
    weights = [1 / within_variance(node, pooled_rate) for node in nodes]
    rates = [node.count / node.population for node in nodes]
    total = math.fsum(weights)
    centre = math.fsum(w * r for w, r in zip(weights, rates, strict=True)) / total
    spread = math.fsum(w * (r - centre) ** 2 for w, r in zip(weights, rates, strict=True))
    scale = total - math.fsum(w * w for w in weights) / total
    return max(0.0, (spread - (len(nodes) - 1)) / scale)


def shrink(nodes: Sequence[NodeCount], confidence: float = 0.95) -> list[ShrunkRate] | None:
    """Each node's small-area rate (per child) and interval; None when undefined.

    Undefined with fewer than two nodes, or when the partnership's count is not positive
    (there is no positive rate to shrink toward).
    """
    if len(nodes) < MIN_NODES or any(node.population <= 0 for node in nodes):
        return None
    total = math.fsum(node.population for node in nodes)
    pooled_rate = math.fsum(node.count for node in nodes) / total
    if pooled_rate <= 0:
        return None
    tau2 = between_node_variance(nodes, pooled_rate)
    k = len(nodes)
    tail = (1 - confidence) / 2
    shrunk: list[ShrunkRate] = []
    for node in nodes:
        own = node.count / node.population
        within = within_variance(node, pooled_rate)
        pull = within / (tau2 + within)
        rate = own - pull * (own - pooled_rate)
        correction = 2 / (k - 3) * (pull * (own - pooled_rate)) ** 2
        variance = within * (1 - (k - 1) / k * pull) + correction
        low, high = _positive_interval(rate, variance, tail)
        shrunk.append(ShrunkRate(max(rate, 0.0), low, high, 1 - pull))
    return shrunk


def _positive_interval(mean: float, variance: float, tail: float) -> tuple[float, float]:
    """The central interval of the gamma with this mean and variance (mean > 0)."""
    z = NormalDist().inv_cdf(1 - tail)
    if mean - z * math.sqrt(variance) <= 0:  # too skewed to match a gamma: normal, floored
        return 0.0, max(mean, 0.0) + z * math.sqrt(variance)
    shape = mean * mean / variance
    scale = variance / mean
    return gamma_quantile(shape, tail, scale), gamma_quantile(shape, 1 - tail, scale)


def with_small_area(report: Report) -> Report:
    """The report with a small-area rate for each node's count row that has a rate."""
    from coordinator.report import RATE_BASE

    cells: dict[tuple[tuple[str, ...], str], list[ValueRow]] = {}
    for row in report.rows:
        if row.source in report.pooled_nodes and is_count_name(row.name):
            cells.setdefault((row.key, row.name), []).append(row)
    out: list[SmallAreaRow] = []
    for (key, name), rows in cells.items():
        nodes = _node_counts(rows, len(report.pooled_nodes))
        shrunk = None if nodes is None else shrink(nodes, report.confidence)
        if nodes is None or shrunk is None:
            continue
        pooled = math.fsum(n.count for n in nodes) / math.fsum(n.population for n in nodes)
        out += [
            SmallAreaRow(
                source=row.source,
                key=key,
                name=name,
                rate_per_100k=estimate.rate * RATE_BASE,
                ci_low=estimate.low * RATE_BASE,
                ci_high=estimate.high * RATE_BASE,
                weight_on_own_rate=estimate.weight_on_own_rate,
                partnership_rate_per_100k=pooled * RATE_BASE,
            )
            for row, estimate in zip(rows, shrunk, strict=True)
        ]
    return report.model_copy(update={"small_area": tuple(out)})


def _node_counts(rows: Sequence[ValueRow], expected: int) -> list[NodeCount] | None:
    """Every pooled node's count, population and noise, or None if any is missing."""
    if len(rows) != expected or any(row.suppressed for row in rows):
        return None
    nodes: list[NodeCount] = []
    for row in rows:
        if row.unbiased_estimate is None or not row.population or row.std is None:
            return None
        nodes.append(NodeCount(row.unbiased_estimate, row.population, row.std**2))
    return nodes
