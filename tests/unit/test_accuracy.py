"""95% half-width <-> scale helpers agree with OpenDP and meet their targets."""

from __future__ import annotations

import math

import pytest

from privacy.accuracy import (
    DISCRETE_HELPER_MAX_SCALE,
    discrete_gaussian_half_width,
    discrete_gaussian_scale_for_half_width,
    gaussian_half_width,
    pooled_gaussian_half_width,
)
from privacy.opendp_setup import opendp


@pytest.mark.parametrize("scale", [1.0, 3.7, 50.0, 1234.5])
def test_discrete_half_width_is_opendps_for_ordinary_scales(scale: float) -> None:
    expected = opendp().discrete_gaussian_scale_to_accuracy(scale, 0.05)
    assert discrete_gaussian_half_width(scale) == expected


@pytest.mark.parametrize("scale", [DISCRETE_HELPER_MAX_SCALE * 1.01, 12_345.0, 40_000.0])
def test_large_scale_shortcut_is_never_narrower_than_opendp(scale: float) -> None:
    exact = opendp().discrete_gaussian_scale_to_accuracy(scale, 0.05)
    assert exact <= discrete_gaussian_half_width(scale) <= exact + 2


@pytest.mark.parametrize("target", [1.0, 2.5, 3.0, 7.5, 10.0, 250.0, 20_000.0, 1e7])
def test_scale_for_half_width_meets_the_target_closely(target: float) -> None:
    scale = discrete_gaussian_scale_for_half_width(target)
    achieved = discrete_gaussian_half_width(scale)
    assert achieved <= target
    if target >= 10:
        assert achieved >= target - 4


def test_pooled_half_width_adds_variances() -> None:
    assert pooled_gaussian_half_width([3.0, 4.0]) == pytest.approx(gaussian_half_width(5.0))
    assert gaussian_half_width(1.0) == pytest.approx(1.959964, abs=1e-6)
    assert math.isclose(pooled_gaussian_half_width([]), 0.0)


def test_a_half_width_below_one_integer_step_cannot_be_promised() -> None:
    with pytest.raises(ValueError, match="no discrete Gaussian scale"):
        discrete_gaussian_scale_for_half_width(0.5)


@pytest.mark.parametrize("target", [2.5, 5.0, 10.0, 50.0, 200.0, 20_000.0])
def test_scale_for_half_width_is_the_largest_that_meets_the_target(target: float) -> None:
    """The cheapest noise: a scale 1e-5 larger misses the target, so rho (1 / scale^2)
    is within 2e-5 of the least that meets it (at 10 the first fitting scale overspent
    rho 1.85x)."""
    scale = discrete_gaussian_scale_for_half_width(target)
    assert discrete_gaussian_half_width(scale) <= target
    assert discrete_gaussian_half_width(scale * (1 + 1e-5)) > target
