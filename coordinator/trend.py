"""Trends over time buckets: the slope per year of a weighted least-squares line.

Each bucket's value carries DP noise of known variance; weighting by 1/variance gives
the minimum-variance linear estimate of the slope, whose variance is
1 / sum(w_i (x_i - x_bar_w)^2). The interval therefore describes the noise in the
released numbers: it covers, about 95% of the time, the slope the same fit would give
on the exact (noise-free) numbers of these buckets.

Bucket labels are turned into positions in years (bucket midpoints): "2021" -> 2021.5,
"FY2021" -> 2021.0 (fiscal years are labelled by the year they end in; only spacing
matters for a slope), "2021-Q2" -> 2021.375, "2021-03" -> 2021.208.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from coordinator.pooling import gaussian_interval

_YEAR = re.compile(r"^(\d{4})$")
_FISCAL = re.compile(r"^(?:FY\s?(\d{4})|(\d{4})-?FY)$", re.IGNORECASE)
_QUARTER = re.compile(r"^(\d{4})-?Q([1-4])$", re.IGNORECASE)
_MONTH = re.compile(r"^(\d{4})-(\d{2})(?:-\d{2})?$")


def bucket_position(label: str) -> float | None:
    """A time-bucket label's midpoint in years, or None when it is not a time bucket."""
    text = label.strip()
    if match := _YEAR.match(text):
        return int(match.group(1)) + 0.5
    if match := _FISCAL.match(text):
        return float(int(match.group(1) or match.group(2)))
    if match := _QUARTER.match(text):
        return int(match.group(1)) + (int(match.group(2)) - 0.5) / 4
    if (match := _MONTH.match(text)) and 1 <= int(match.group(2)) <= 12:
        return int(match.group(1)) + (int(match.group(2)) - 0.5) / 12
    return None


def bucket_year(label: str) -> int | None:
    """The calendar (or fiscal) year a bucket label belongs to, for population lookups."""
    position = bucket_position(label)
    if position is None:
        return None
    if _FISCAL.match(label.strip()):
        return int(position)
    return math.floor(position)


@dataclass(frozen=True)
class Point:
    x: float
    """Bucket position in years."""
    y: float
    variance: float
    """Noise variance of y (> 0)."""


@dataclass(frozen=True)
class Slope:
    per_year: float
    std: float
    ci_low: float
    ci_high: float
    points: int


def weighted_slope(points: Sequence[Point], confidence: float = 0.95) -> Slope | None:
    """WLS slope with weights 1/variance; None with fewer than two distinct positions."""
    usable = [p for p in points if p.variance > 0 and math.isfinite(p.y)]
    if len({p.x for p in usable}) < 2:
        return None
    weights = [1 / p.variance for p in usable]
    total = math.fsum(weights)
    x_bar = math.fsum(w * p.x for w, p in zip(weights, usable, strict=True)) / total
    spread = math.fsum(w * (p.x - x_bar) ** 2 for w, p in zip(weights, usable, strict=True))
    slope = math.fsum(w * (p.x - x_bar) * p.y for w, p in zip(weights, usable, strict=True))
    slope /= spread
    std = math.sqrt(1 / spread)
    low, high = gaussian_interval(slope, std, confidence)
    return Slope(per_year=slope, std=std, ci_low=low, ci_high=high, points=len(usable))
