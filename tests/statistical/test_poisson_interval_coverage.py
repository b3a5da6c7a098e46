"""--interval dp+poisson covers the underlying Poisson mean at least 95% of the time.

Counts are drawn from Poisson distributions with small means (rare events, where the
question is asked), DP noise by OpenDP's own discrete Gaussian sampler. Checked per node
and pooled over three nodes. Fixed alpha: 4,000 trials, tolerance 4 standard errors
(a false failure is rarer than 1 in 10,000 runs).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from coordinator.intervals import poisson_mean_interval
from privacy.opendp_setup import opendp

pytestmark = pytest.mark.slow

TRIALS = 4000
SCALE = 2.0
MEANS = (0.5, 3.0, 12.0)
TOLERANCE = 4 * math.sqrt(0.95 * 0.05 / TRIALS)


def test_node_and_pooled_intervals_cover_the_poisson_means() -> None:
    dp = opendp()
    noise = dp.m.make_gaussian(
        dp.vector_domain(dp.atom_domain(T=int)), dp.l2_distance(T=int), scale=SCALE
    )
    rng = np.random.default_rng()
    covered = [0] * len(MEANS)
    pooled_covered = 0
    for _ in range(TRIALS):
        counts = rng.poisson(MEANS)
        noisy: list[int] = noise([int(c) for c in counts])
        for index, (value, mean) in enumerate(zip(noisy, MEANS, strict=True)):
            low, high = poisson_mean_interval(value, [SCALE])
            covered[index] += low <= mean <= high
        low, high = poisson_mean_interval(sum(noisy), [SCALE] * len(MEANS))
        pooled_covered += low <= sum(MEANS) <= high
    for count in covered:
        assert count / TRIALS >= 0.95 - TOLERANCE
    assert pooled_covered / TRIALS >= 0.95 - TOLERANCE
