"""The fast route's noise: OpenDP measurements built once per scale, fresh noise per call."""

from __future__ import annotations

from privacy.fast_noise import integer_gaussian, noisy_min_index
from privacy.opendp_setup import opendp


def test_one_measurement_is_built_per_mechanism_and_scale() -> None:
    assert integer_gaussian(2.5) is integer_gaussian(2.5)
    assert integer_gaussian(2.5) is not integer_gaussian(3.5)
    assert noisy_min_index(2.5) is noisy_min_index(2.5)
    assert noisy_min_index(2.5) is not noisy_min_index(3.5)


def test_a_reused_measurement_draws_fresh_noise_on_every_call() -> None:
    """Two draws of 400 cells at scale 2: each cell repeats with probability about 0.14,
    so identical vectors have probability below 1e-300."""
    gaussian = integer_gaussian(2.0)
    first, second = gaussian([0] * 400), gaussian([0] * 400)
    assert len(first) == len(second) == 400
    assert first != second


def test_a_cached_measurement_is_opendps_measurement_at_that_scale() -> None:
    """Same privacy map as a freshly built OpenDP measurement (rho = d^2 / (2 scale^2))."""
    dp = opendp()
    fresh = dp.m.make_gaussian(
        dp.vector_domain(dp.atom_domain(T="i64")), dp.l2_distance(T="i64"), 2.0
    )
    assert integer_gaussian(2.0).map(1) == fresh.map(1) == 0.125
    assert str(integer_gaussian(2.0).input_domain) == str(fresh.input_domain)
    fresh_min = dp.m.make_noisy_max(
        dp.vector_domain(dp.atom_domain(T="u64")),
        dp.linf_distance(T="u64", monotonic=False),
        dp.zero_concentrated_divergence(),
        scale=7.0,
        negate=True,
    )
    assert noisy_min_index(7.0).map(1) == fresh_min.map(1)
