"""Coverage of pooled intervals and trend-slope intervals under the Gaussian noise model.

The noise is simulated here, in the test, with `random.gauss` (the product never makes
noise). Fixed alpha: with N trials and true coverage 0.95, the observed coverage lies
within 0.95 +/- 4 standard errors except with probability < 1e-4.
"""

from __future__ import annotations

import math
import random

import pytest

from coordinator.pooling import pool_sum, z_value
from coordinator.trend import Point, weighted_slope
from privacy.release import Estimate, NoiseDistribution

TRIALS = 4000
TOLERANCE = 4 * math.sqrt(0.95 * 0.05 / TRIALS)  # about 0.0138
Z = z_value()

pytestmark = pytest.mark.slow


def noisy(name: str, truth: float, scale: float, rng: random.Random) -> Estimate:
    value = truth + rng.gauss(0.0, scale)
    return Estimate(
        name=name,
        value=value,
        distribution=NoiseDistribution.GAUSSIAN,
        scale=scale,
        ci_low=value - Z * scale,
        ci_high=value + Z * scale,
    )


def test_pooled_interval_covers_the_true_partnership_total_95_percent() -> None:
    rng = random.Random(20240501)
    truths = [1200.0, 85.0, 3.0, 410.0, 0.0]
    scales = [30.0, 5.0, 2.0, 11.0, 7.5]  # nodes with very different noise
    covered = 0
    for _ in range(TRIALS):
        pooled = pool_sum([noisy("count", t, s, rng) for t, s in zip(truths, scales, strict=True)])
        assert pooled is not None
        covered += pooled.ci_low <= sum(truths) <= pooled.ci_high
    assert abs(covered / TRIALS - 0.95) < TOLERANCE


def test_adding_half_widths_would_overcover_so_pooling_is_not_doing_that() -> None:
    """The naive sum of half-widths is far too wide: coverage near 100%, not 95%."""
    rng = random.Random(7)
    scales = [10.0, 10.0, 10.0, 10.0]
    naive_covered = 0
    for _ in range(TRIALS):
        estimates = [noisy("count", 100.0, s, rng) for s in scales]
        total = sum(e.value for e in estimates)
        half = sum(e.ci_high - e.value for e in estimates)
        naive_covered += total - half <= 400.0 <= total + half
    assert naive_covered / TRIALS > 0.999


def test_trend_slope_interval_covers_the_noise_free_slope_95_percent() -> None:
    rng = random.Random(99)
    xs = [2019.5, 2020.5, 2021.5, 2022.5, 2023.5]
    truths = [120.0, 131.0, 118.0, 150.0, 162.0]  # not on a line: the target is the WLS slope
    scales = [4.0, 6.0, 9.0, 5.0, 12.0]
    exact = weighted_slope([Point(x, y, s**2) for x, y, s in zip(xs, truths, scales, strict=True)])
    assert exact is not None
    covered = 0
    for _ in range(TRIALS):
        points = [
            Point(x, y + rng.gauss(0.0, s), s**2)
            for x, y, s in zip(xs, truths, scales, strict=True)
        ]
        slope = weighted_slope(points)
        assert slope is not None
        covered += slope.ci_low <= exact.per_year <= slope.ci_high
    assert abs(covered / TRIALS - 0.95) < TOLERANCE
