"""Accuracy of released values: 95% half-width <-> noise scale.

Two families of helpers:

* pure ones (standard library only), usable by the coordinator, e.g. the half-width of a
  pooled sum of independent Gaussian noises (variances add);
* OpenDP-backed ones for the discrete Gaussian that the node's counts and integer sums
  use; they import OpenDP inside the function, so importing this module stays cheap and
  never pulls OpenDP into the coordinator.

"Half-width at confidence c" means: with probability at least c the released value is
within that distance of the true value (OpenDP's `*_scale_to_accuracy` with alpha = 1 - c).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from statistics import NormalDist

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE

_MAX_SCALE_SEARCH_STEPS = 200
_SMALL_HALF_WIDTH = 8.0
DISCRETE_HELPER_MAX_SCALE = 5_000.0
_SCALE_PRECISION = 1e-6


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def gaussian_half_width(scale: float, confidence: float = CONFIDENCE) -> float:
    """Half-width of the central interval of continuous Gaussian noise with std `scale`."""
    _check_confidence(confidence)
    return NormalDist().inv_cdf(0.5 + confidence / 2) * scale


def gaussian_scale_for_half_width(half_width: float, confidence: float = CONFIDENCE) -> float:
    """The largest Gaussian std whose central interval is no wider than `half_width`."""
    _check_confidence(confidence)
    return half_width / NormalDist().inv_cdf(0.5 + confidence / 2)


def pooled_gaussian_half_width(scales: Iterable[float], confidence: float = CONFIDENCE) -> float:
    """Half-width for a sum of independent Gaussian noises: the variances add."""
    return gaussian_half_width(math.sqrt(sum(scale * scale for scale in scales)), confidence)


def discrete_gaussian_half_width(scale: float, confidence: float = CONFIDENCE) -> float:
    """Half-width of discrete Gaussian noise with scale `scale`.

    Up to `DISCRETE_HELPER_MAX_SCALE` this is OpenDP's own accuracy helper. Its cost grows
    with the scale (about 40 ms at 1e5), so above that the half-width is the continuous
    Gaussian one rounded up plus two integer steps: OpenDP's helper returns
    ceil(z * scale) + 1 in that range, so this is never narrower (a unit test checks it).
    """
    _check_confidence(confidence)
    if scale > DISCRETE_HELPER_MAX_SCALE:
        return float(math.ceil(gaussian_half_width(scale, confidence)) + 2)
    from privacy.opendp_setup import opendp

    dp = opendp()
    return float(dp.discrete_gaussian_scale_to_accuracy(scale, 1 - confidence))


def discrete_gaussian_scale_for_half_width(
    half_width: float, confidence: float = CONFIDENCE
) -> float:
    """The largest discrete Gaussian scale whose half-width (as above) is at most
    `half_width`, to a relative precision of 1e-6: the cheapest noise meeting the target.

    Small targets start from OpenDP's inverse helper (exact but slow for large targets);
    larger ones from the continuous Gaussian inverse, three integer steps inside. Either
    start is shrunk until `discrete_gaussian_half_width` confirms the target, then grown
    by bisection to the largest scale it still confirms (the half-width moves in whole
    steps, so the first scale that fits can be far below the largest: rho is 1 / scale^2).
    Raises ValueError when no positive scale reaches it.
    """
    _check_confidence(confidence)
    if not (math.isfinite(half_width) and half_width > 0):
        raise ValueError(f"half-width must be a positive finite number, got {half_width}")
    if half_width < _SMALL_HALF_WIDTH:
        from privacy.opendp_setup import opendp

        dp = opendp()
        scale = float(dp.accuracy_to_discrete_gaussian_scale(half_width, 1 - confidence))
    else:
        scale = gaussian_scale_for_half_width(math.floor(half_width) - 3, confidence)
    for _ in range(_MAX_SCALE_SEARCH_STEPS):
        if discrete_gaussian_half_width(scale, confidence) <= half_width:
            return _largest_fitting_scale(scale, half_width, confidence)
        scale *= 0.97 if half_width < _SMALL_HALF_WIDTH else 0.999
    raise ValueError(
        f"no discrete Gaussian scale gives a {confidence:.0%} half-width of {half_width}"
    )


def _largest_fitting_scale(fits: float, half_width: float, confidence: float) -> float:
    """Bisect between a scale that meets `half_width` and one that does not (the
    half-width never shrinks as the scale grows)."""
    too_wide = fits * 2
    while discrete_gaussian_half_width(too_wide, confidence) <= half_width:
        fits, too_wide = too_wide, too_wide * 2
    while too_wide - fits > _SCALE_PRECISION * fits:
        middle = (fits + too_wide) / 2
        if discrete_gaussian_half_width(middle, confidence) <= half_width:
            fits = middle
        else:
            too_wide = middle
    return fits


@functools.lru_cache(maxsize=1024)
def half_width_for(distribution: str, scale: float, confidence: float = CONFIDENCE) -> float:
    """Half-width for an OpenDP distribution name as `summarize_polars_measurement` reports it."""
    if is_discrete(distribution):
        return discrete_gaussian_half_width(scale, confidence)
    return gaussian_half_width(scale, confidence)


def scale_for_half_width(
    distribution: str, half_width: float, confidence: float = CONFIDENCE
) -> float:
    """The largest scale (approximately) meeting `half_width` for an OpenDP distribution name."""
    if is_discrete(distribution):
        return discrete_gaussian_scale_for_half_width(half_width, confidence)
    return gaussian_scale_for_half_width(half_width, confidence)


def is_discrete(distribution: str) -> bool:
    """True for OpenDP's integer-valued noise ("Integer Gaussian")."""
    return distribution.lower().startswith("integer")
