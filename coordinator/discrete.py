"""Intervals for a sum of independent discrete Gaussian noises (pooled counts).

Nodes release counts (and sums of integer columns) with OpenDP's discrete Gaussian
noise: P(X = k) is proportional to exp(-k^2 / (2 scale^2)) on the integers. A pooled
count adds one such noise per node, so its noise S is integer-valued and symmetric. A
continuous-Gaussian interval value +/- z * sqrt(sum scale^2) then under-covers at small
scales: it contains the truth only when |S| <= floor(z * std), e.g. 94.0% for three
nodes at scale 2.

`discrete_sum_half_width` returns the smallest integer H with P(|S| <= H) >= confidence:

* **exact** while the noise is small enough for discreteness to matter (combined
  standard deviation up to `EXACT_MAX_STD`): the distribution of S is the convolution
  of the nodes' probability mass functions, each taken over +/- `TAIL_STDS` standard
  deviations (the mass left out is below 1e-13 and counted as *not* covered);
* **a conservative bound** above it: ceil(z * std) + 1, where std^2 = sum scale^2
  bounds the variance of S (a discrete Gaussian's variance is below scale^2). At these
  scales the integer grid adds about one half step of coverage on each side, so one
  extra step over the continuous half-width is never narrower than the exact answer;
  `tests/unit/test_coordinator_discrete.py` checks this across the switch-over.

Pure standard library; never generates noise.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from statistics import NormalDist

EXACT_MAX_STD = 30.0
"""Largest combined standard deviation computed exactly (about 20 ms at the top)."""
TAIL_STDS = 8.0
"""Each node's mass function is kept over +/- this many standard deviations."""


def discrete_gaussian_pmf(scale: float) -> list[float]:
    """P(X = k) for k = -K..K (K = TAIL_STDS * scale + 1) of a discrete Gaussian."""
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive finite number, got {scale}")
    reach = math.ceil(TAIL_STDS * scale) + 1
    weights = [math.exp(-(k * k) / (2 * scale * scale)) for k in range(-2 * reach, 2 * reach + 1)]
    # Normalised over twice the kept range, so the kept mass sums to (just) under 1.
    total = math.fsum(weights)
    return [w / total for w in weights[reach : 3 * reach + 1]]


def convolve(left: Sequence[float], right: Sequence[float]) -> list[float]:
    """Mass function of the sum of two independent integer variables (both centred)."""
    if len(left) < len(right):
        left, right = right, left
    out = [0.0] * (len(left) + len(right) - 1)
    for offset, weight in enumerate(right):
        if weight == 0.0:
            continue
        window = out[offset : offset + len(left)]
        out[offset : offset + len(left)] = [
            o + weight * x for o, x in zip(window, left, strict=True)
        ]
    return out


def exact_half_width(scales: Sequence[float], confidence: float = 0.95) -> int:
    """Smallest integer H with P(|S| <= H) >= confidence, from S's exact distribution."""
    return _exact_half_width(tuple(sorted(scales)), confidence)


@functools.lru_cache(maxsize=256)
def _exact_half_width(scales: tuple[float, ...], confidence: float) -> int:
    pmf = discrete_gaussian_pmf(scales[0])
    variance = scales[0] ** 2
    for scale in scales[1:]:
        variance += scale * scale
        pmf = _trimmed(convolve(pmf, discrete_gaussian_pmf(scale)), math.sqrt(variance))
    centre = len(pmf) // 2
    covered = pmf[centre]
    for half_width in range(centre + 1):
        if covered >= confidence:
            return half_width
        covered += pmf[centre - half_width - 1] + pmf[centre + half_width + 1]
    raise RuntimeError("internal: the discrete noise mass never reached the confidence level")


def _trimmed(pmf: list[float], std: float) -> list[float]:
    """Drop the far tails beyond +/- TAIL_STDS * std (their mass counts as not covered)."""
    centre = len(pmf) // 2
    reach = min(centre, math.ceil(TAIL_STDS * std) + 1)
    return pmf[centre - reach : centre + reach + 1]


def bound_half_width(scales: Sequence[float], confidence: float = 0.95) -> int:
    """ceil(z * std) + 1: never narrower than the exact half-width at large scales."""
    std = math.sqrt(math.fsum(s * s for s in scales))
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    return math.ceil(z * std) + 1


def discrete_sum_half_width(scales: Sequence[float], confidence: float = 0.95) -> int:
    """Integer half-width of the `confidence` interval for a sum of discrete Gaussians."""
    if not scales:
        raise ValueError("a sum needs at least one noise scale")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if math.sqrt(math.fsum(s * s for s in scales)) <= EXACT_MAX_STD:
        return exact_half_width(scales, confidence)
    return bound_half_width(scales, confidence)
