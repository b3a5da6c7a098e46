"""The exact interval for a sum of discrete Gaussian noises (pooled counts)."""

from __future__ import annotations

import math

import pytest

from coordinator.discrete import (
    EXACT_MAX_STD,
    bound_half_width,
    convolve,
    discrete_gaussian_pmf,
    discrete_sum_half_width,
    exact_half_width,
)


@pytest.mark.parametrize("scale", [0.5, 1.0, 2.0, 3.3, 7.0, 12.0, 25.0])
def test_one_nodes_exact_half_width_agrees_with_opendps_accuracy(scale: float) -> None:
    """OpenDP's accuracy a has P(|X| >= a) <= alpha, i.e. it holds |X| <= a - 1."""
    from opendp.accuracy import discrete_gaussian_scale_to_accuracy

    assert exact_half_width([scale]) == discrete_gaussian_scale_to_accuracy(scale, 0.05) - 1


def test_convolution_is_the_distribution_of_the_sum() -> None:
    left, right = discrete_gaussian_pmf(1.5), discrete_gaussian_pmf(0.7)
    joint = convolve(left, right)
    centre_l, centre_r, centre = len(left) // 2, len(right) // 2, len(joint) // 2
    for total in range(-4, 5):
        brute = math.fsum(
            left[centre_l + a] * right[centre_r + total - a]
            for a in range(-centre_l, centre_l + 1)
            if abs(total - a) <= centre_r
        )
        assert joint[centre + total] == pytest.approx(brute, rel=1e-12)


def test_three_nodes_at_scale_two_need_seven_where_the_continuous_interval_holds_six() -> None:
    """The issue's 94.0%: +/-6.79 holds |S| <= 6, which has only 94% of the mass."""
    pmf = convolve(discrete_gaussian_pmf(2.0), discrete_gaussian_pmf(2.0))
    pmf = convolve(pmf, discrete_gaussian_pmf(2.0))
    centre = len(pmf) // 2

    def mass(half_width: int) -> float:
        return math.fsum(pmf[centre - half_width : centre + half_width + 1])

    assert math.floor(1.959964 * math.sqrt(12)) == 6
    assert mass(6) == pytest.approx(0.940, abs=0.001)
    assert exact_half_width([2.0, 2.0, 2.0]) == 7
    assert mass(7) >= 0.95


def test_the_large_scale_bound_is_never_narrower_than_the_exact_half_width() -> None:
    for nodes in (1, 2, 3, 5, 8):
        for step in range(1, 100):
            scale = step / 2
            if math.sqrt(nodes) * scale > 1.5 * EXACT_MAX_STD:
                break
            scales = [scale] * nodes
            assert bound_half_width(scales) >= exact_half_width(scales), scales


def test_above_the_exact_range_the_bound_is_used() -> None:
    scales = [40.0, 40.0]
    assert discrete_sum_half_width(scales) == bound_half_width(scales)
    assert discrete_sum_half_width([2.0, 2.0]) == exact_half_width([2.0, 2.0])


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        discrete_sum_half_width([])
    with pytest.raises(ValueError, match="positive"):
        discrete_gaussian_pmf(0.0)
