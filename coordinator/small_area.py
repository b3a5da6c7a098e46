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
(Poisson and DP noise, both known given mu). Moments, with N = sum n_i:
* mu: the partnership rate m = sum y_i / N;
* tau^2: sum n_i (r_i - m)^2 has expectation
  tau^2 (N - sum n_i^2 / N) + sum (m + s_i^2 / n_i)(1 - n_i / N), solved for tau^2 and
  floored at 0 (no evidence of between-node variation: every node gets m);
* the weight on the node's own rate: B_i = tau^2 / (tau^2 + v_i), so a small node
  (large v_i) is shrunk more than a large one;
* the small-area rate B_i r_i + (1 - B_i) m, with variance B_i v_i + (1 - B_i)^2 Var(m);
  its interval is that of a gamma distribution with the same mean and variance (rates
  are positive and skewed when events are rare).

The interval treats tau^2 as known, so it can under-cover when few nodes inform it;
tests/statistical/test_small_area_coverage.py measures it. A cell any of whose nodes is
suppressed gets no small-area values: they depend on every node's count.
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


def between_node_variance(nodes: Sequence[NodeCount], pooled_rate: float) -> float:
    """Moment estimate of tau^2 (module docstring), floored at 0."""
    total = math.fsum(node.population for node in nodes)
    spread = math.fsum(
        node.population * (node.count / node.population - pooled_rate) ** 2 for node in nodes
    )
    expected_within = math.fsum(
        (pooled_rate + node.noise_variance / node.population) * (1 - node.population / total)
        for node in nodes
    )
    scale = total - math.fsum(node.population**2 for node in nodes) / total
    return max(0.0, (spread - expected_within) / scale)


def shrink(nodes: Sequence[NodeCount], confidence: float = 0.95) -> list[ShrunkRate] | None:
    """Each node's small-area rate (per child) and interval; None when undefined.

    Undefined with fewer than two nodes, or when the partnership's count is not positive
    (there is no positive rate to shrink toward).
    """
    if len(nodes) < 2 or any(node.population <= 0 for node in nodes):
        return None
    total = math.fsum(node.population for node in nodes)
    pooled_rate = math.fsum(node.count for node in nodes) / total
    if pooled_rate <= 0:
        return None
    tau2 = between_node_variance(nodes, pooled_rate)
    pooled_variance = math.fsum(
        node.population * pooled_rate + node.noise_variance + node.population**2 * tau2
        for node in nodes
    ) / (total**2)
    tail = (1 - confidence) / 2
    shrunk: list[ShrunkRate] = []
    for node in nodes:
        within = pooled_rate / node.population + node.noise_variance / node.population**2
        weight = tau2 / (tau2 + within)
        rate = weight * node.count / node.population + (1 - weight) * pooled_rate
        variance = weight * within + (1 - weight) ** 2 * pooled_variance
        low, high = _positive_interval(rate, variance, tail)
        shrunk.append(ShrunkRate(max(rate, 0.0), low, high, weight))
    return shrunk


def _positive_interval(mean: float, variance: float, tail: float) -> tuple[float, float]:
    """The central interval of the gamma with this mean and variance (mean > 0)."""
    if mean <= 0:  # a node's very negative noisy count outweighed the pull: 0 is the floor
        return 0.0, NormalDist().inv_cdf(1 - tail) * math.sqrt(variance)
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
